"""VMMs beyond QEMU: generated configurations and commands, probes against fake
tools, the runner driving a VMM's setup/console/teardown, and Bochs for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.backends import bhyve, bochs, registry, vbox, vmd, xl
from harness.backends.base import LaunchContext, LaunchError, vm_name
from harness.backends.probe import (
    AVAILABLE,
    MISSING,
    UNUSABLE,
    HostFacts,
    tool_version,
)
from harness.backends.registry import static_probe
from harness.canary import canary_cell
from harness.config import load_guest, load_guests, load_matrix
from harness.executor import CellContext, execute
from harness.model import Cell, Verdict
from harness.plan import expand, make_cell

from .conftest import GUESTS, ROOT, TEST_GUESTS, write

CATALOG = load_guests(GUESTS)
HERE = Path(__file__).resolve().parent
GRUB_LOG = HERE / "data" / "transcripts" / "grub-2.06-iso.tcg-bios.log"


def cell(gid: str, backend: str, firmware: str = "bios", guests=CATALOG) -> Cell:
    g = guests[gid]
    return make_cell(g, backend, firmware, g.timeouts, g.memory_mb)


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


# --- what each VMM can do --------------------------------------------------------

@pytest.mark.parametrize("gid, backend, firmware, why", [
    ("linux-busybox-x86_64", "bochs", "bios", "cannot boot a kernel directly"),
    ("grub-2.06-iso", "bochs", "uefi", "no UEFI"),
    ("freedos-722", "bochs", "bios", "serial-console guests only"),
    ("linux-busybox-aarch64", "bochs", "bios", "emulates x86 PCs"),
    ("grub-2.06-iso", "vmd", "uefi", "SeaBIOS only"),
    ("linux-busybox-x86_64", "vmd", "bios", "ELF kernels without an initrd"),
    ("grub-2.06-iso", "bhyve", "bios", "UEFI firmware"),
    ("xen-4.17-dom0", "xen", "bios", "multiboot modules"),
    ("linux-busybox-x86_64", "virtualbox", "bios", "not a kernel file"),
    ("grub-2.06-iso", "virtualbox", "uefi", None),
    ("linux-busybox-x86_64", "xen", "bios", None),
])
def test_what_each_vmm_refuses_and_why(gid, backend, firmware, why):
    got = registry.get(backend).why_not(cell(gid, backend, firmware))
    assert (got is None) if why is None else (why in (got or "")), got


def test_the_matrix_lists_every_backend_and_skips_with_reasons():
    matrix = load_matrix(ROOT / "matrix.yaml", CATALOG)
    assert set(matrix.backends) == {"tcg", "kvm", "nvmm", "haxm", "whpx", "hvf", "bochs", "vmd",
                                    "bhyve", "xen", "virtualbox", "simh", "gxemul"}
    (c,) = expand(matrix, CATALOG, only=["grub-2.06-iso/bochs/bios"])
    g = CATALOG["grub-2.06-iso"]
    assert c.timeouts.stall == 5 * g.timeouts.stall  # bochs' time_factor
    assert c.guest.milestones[0].timeout == 5 * g.milestones[0].timeout


# --- generated configurations ------------------------------------------------------

def test_bochsrc_for_cdrom_disk_and_floppy(tmp_path):
    c = cell("grub-2.06-iso", "bochs")
    launch = bochs.build_launch(c, {"iso": Path("/c/x.iso"), "kernel": Path("/k"),
                                    "initrd": Path("/i")}, LaunchContext(tmp_path))
    rc = launch.files[tmp_path / "bochsrc"]
    assert launch.argv[-6:] == ["bochs", "-q", "-f", str(tmp_path / "bochsrc"),
                                "-rc", str(tmp_path / "bochs.commands")]
    assert launch.argv[:2] == ["sh", "-c"] and str(tmp_path / "bochs.stdout") in launch.argv
    assert launch.files[tmp_path / "bochs.commands"] == "c\n"  # else its debugger stops
    for line in ("megs: 512", "ata1-master: type=cdrom, path=/c/x.iso, status=inserted",
                 "boot: cdrom", 'display_library: rfb, options="timeout=0"',
                 "com1: enabled=1, mode=term, dev=/dev/tty", "speaker: enabled=0",
                 "panic: action=fatal", f"log: {tmp_path / 'bochs.log'}"):
        assert line in rc.splitlines(), line
    assert re.search(r"^cpu: model=\w+, count=1, ips=\d+, reset_on_triple_fault=0$", rc, re.M)
    disk = write(tmp_path / "d.img", "raw bytes")
    g = load_guest(TEST_GUESTS / "test-grub-disk.yaml")
    rc = bochs.bochsrc(make_cell(g, "bochs", "bios", g.timeouts, 256), {"iso": disk},
                       tmp_path / "l", Path("/b"), Path("/v"))
    journal = tmp_path / "disk.redolog"
    assert f"ata0-master: type=disk, path={disk}, mode=volatile, journal={journal}" in rc
    assert "boot: disk" in rc
    qcow = tmp_path / "q.img"
    qcow.write_bytes(b"QFI\xfb" + bytes(60))
    with pytest.raises(LaunchError, match="raw images only"):
        bochs.bochsrc(make_cell(g, "bochs", "bios", g.timeouts, 256), {"iso": qcow},
                      tmp_path / "l", Path("/b"), Path("/v"))
    launch = bochs.build_launch(make_cell(g, "bochs", "bios", g.timeouts, 256), {"iso": qcow},
                                LaunchContext(tmp_path))
    raw = tmp_path / "disk.raw"
    assert launch.setup == [["qemu-img", "convert", "-O", "raw", str(qcow), str(raw)]]
    assert f"ata0-master: type=disk, path={raw}, mode=volatile" in launch.files[
        tmp_path / "bochsrc"]  # the copy; the redo log beside it in the cell folder
    fd = load_guest(GUESTS / "freedos-722.yaml")  # a screen console: the capability check
    assert "serial-console guests only" in registry.get("bochs").why_not(
        make_cell(fd, "bochs", "bios", fd.timeouts, 64))


def test_vmctl_commands(tmp_path):
    c = cell("grub-2.06-iso", "vmd")
    launch = vmd.build_launch(c, {"iso": Path("/c/x.iso")}, LaunchContext(tmp_path))
    name = launch.name
    assert launch.argv == ["vmctl", "start", "-c", "-m", "512M", "-r", "/c/x.iso", "-B", "cdrom",
                           name]
    assert launch.teardown == [["vmctl", "stop", "-f", name]] and launch.setup == []
    assert len(name) <= 31 and name == vm_name(c, tmp_path)
    qcow = tmp_path / "base.qcow2"
    qcow.write_bytes(b"QFI\xfb" + bytes(60))
    g = load_guest(TEST_GUESTS / "test-grub-disk.yaml")
    launch = vmd.build_launch(make_cell(g, "vmd", "bios", g.timeouts, 256), {"iso": qcow},
                              LaunchContext(tmp_path))
    overlay = str(tmp_path / "disk.overlay.qcow2")
    assert launch.setup == [["vmctl", "create", "-b", str(qcow), overlay]]
    assert opt(launch.argv, "-d") == [overlay] and opt(launch.argv, "-B") == ["disk"]


def test_bhyve_command_line(tmp_path, monkeypatch):
    code, vars_ = write(tmp_path / "CODE.fd", "c"), write(tmp_path / "VARS.fd", "v")
    monkeypatch.setattr(bhyve, "FIRMWARE", [(code, vars_)])
    c = cell("grub-2.06-iso", "bhyve", "uefi")
    launch = bhyve.build_launch(c, {"iso": Path("/c/x.iso")}, LaunchContext(tmp_path))
    a = launch.argv
    assert a[0] == "bhyve" and a[-1] == launch.name
    assert opt(a, "-c") == ["1"] and opt(a, "-m") == ["512M"]
    assert {"-H", "-A", "-P"} <= set(a)
    assert opt(a, "-s") == ["0,hostbridge", "31,lpc", "3,ahci-cd,/c/x.iso,ro"]
    assert opt(a, "-l") == ["com1,stdio", f"bootrom,{code},{tmp_path / 'efivars.fd'}"]
    assert launch.teardown == [["bhyvectl", "--destroy", f"--vm={launch.name}"]]
    assert launch.vars_template == vars_
    monkeypatch.setattr(bhyve, "FIRMWARE", [(tmp_path / "none", tmp_path / "none2")])
    with pytest.raises(LaunchError, match="edk2-bhyve"):
        bhyve.build_launch(c, {"iso": Path("/c/x.iso")}, LaunchContext(tmp_path))


def test_xl_configs_for_hvm_and_pvh(tmp_path):
    c = cell("grub-2.06-iso", "xen", "uefi")
    launch = xl.build_launch(c, {"iso": Path("/c/x.iso")}, LaunchContext(tmp_path))
    cfg = launch.files[tmp_path / "xl.cfg"]
    for line in (f'name = "{launch.name}"', "memory = 512", 'type = "hvm"', 'bios = "ovmf"',
                 'serial = "pty"', 'boot = "d"', 'on_poweroff = "destroy"',
                 'disk = [ "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/c/x.iso" ]'):
        assert line in cfg.splitlines(), line
    assert launch.setup == [["xl", "create", "-p", str(tmp_path / "xl.cfg")]]
    assert launch.teardown == [["xl", "destroy", launch.name]]
    assert launch.argv[:2] == ["sh", "-c"] and launch.argv[-2:] == [launch.name, "serial"]
    assert "xl unpause" in launch.argv[2] and "exec xl console -t" in launch.argv[2]
    k = cell("linux-busybox-x86_64", "xen")
    cfg = xl.config(k, {"kernel": Path("/c/vmlinuz"), "initrd": Path("/c/initrd")}, "n")
    assert 'type = "pvh"' in cfg and 'kernel = "/c/vmlinuz"' in cfg
    assert 'ramdisk = "/c/initrd"' in cfg and 'cmdline = "console=ttyS0 panic=-1"' in cfg


def test_vboxmanage_commands(tmp_path):
    c = cell("grub-2.06-iso", "virtualbox", "uefi")
    launch = vbox.build_launch(c, {"iso": Path("/c/x.iso")}, LaunchContext(tmp_path))
    n = launch.name
    sock = str(Path(tempfile.gettempdir()) / f"{n}.com1")
    create, modify, ctl, attach, start = launch.setup
    assert create == ["VBoxManage", "createvm", "--name", n, "--ostype", "Other_64",
                      "--basefolder", str(tmp_path), "--register"]
    assert modify[:3] == ["VBoxManage", "modifyvm", n]
    assert opt(modify, "--memory") == ["512"] and opt(modify, "--firmware") == ["efi"]
    assert opt(modify, "--uartmode1") == ["server"] and sock in modify
    assert modify[modify.index("--uart1") + 1:modify.index("--uart1") + 3] == ["0x3F8", "4"]
    assert ctl == ["VBoxManage", "storagectl", n, "--name", "IDE", "--add", "ide"]
    assert opt(attach, "--type") == ["dvddrive"] and opt(attach, "--medium") == ["/c/x.iso"]
    assert start == ["VBoxManage", "startvm", n, "--type", "headless"]
    assert launch.argv[-2:] == ["harness.backends.sockconsole", sock]
    assert launch.teardown == [["VBoxManage", "controlvm", n, "poweroff"],
                               ["VBoxManage", "unregistervm", n, "--delete"], ["rm", "-f", sock]]


# --- probes against fake tools ------------------------------------------------------

def fake_tool(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{body}\n")
    path.chmod(0o755)
    tool_version.cache_clear()  # the probe remembers what it found on PATH
    return path


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    tool_version.cache_clear()
    yield bin_dir
    tool_version.cache_clear()


def host(os_name: str) -> HostFacts:
    return HostFacts(os=os_name, arch="x86_64", kernel="1", hostname="h", cpu="c")


def test_probes_of_the_other_vmms(fakes):
    assert static_probe("vmd", host("Linux")).status == MISSING
    p = static_probe("vmd", host("OpenBSD"))
    assert p.status == MISSING and "vmctl not found on PATH" in p.reason
    fake_tool(fakes, "vmctl", 'print("   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    '
                              'STATE   NAME")')
    p = static_probe("vmd", host("OpenBSD"))
    assert p.status == MISSING and "/dev/vmm" in p.reason  # the tool answers; no vmm(4) here
    fake_tool(fakes, "xl", 'print("xen_version            : 4.17.3") if sys.argv[1:] == ["info"] '
                           'else sys.exit(2)')
    p = static_probe("xen", host("Linux"))
    assert p.version == "4.17.3" and p.status == MISSING and "/proc/xen/privcmd" in p.reason
    fake_tool(fakes, "xl", 'print("xencall: error: Could not obtain handle on privileged '
                           'command interface", file=sys.stderr); sys.exit(1)')
    p = static_probe("xen", host("Linux"))
    assert p.status == UNUSABLE and "privileged command interface" in p.reason
    fake_tool(fakes, "VBoxManage", 'print("7.0.20r163906")')
    p = static_probe("virtualbox", host("Linux"))
    assert p.version == "7.0.20" and p.status == MISSING and "/dev/vboxdrv" in p.reason
    p = static_probe("virtualbox", host("Darwin"))  # no device to check there
    assert p.status == AVAILABLE and p.hardware
    fake_tool(fakes, "bhyve", 'print("Usage: bhyve [-AaCDeHhPSuWwxY]", file=sys.stderr); '
                              'sys.exit(1)')
    p = static_probe("bhyve", host("FreeBSD"))  # its checks (test_probe_hosts.py): kldstat first
    assert p.status == MISSING and p.reason == "kldstat not found on PATH"


def test_bochs_probe_here():
    p = static_probe("bochs")
    if p.status == MISSING:
        pytest.skip(p.reason)
    assert p.status == AVAILABLE and p.version and not p.hardware


def test_canaries_pick_what_each_backend_can_boot():
    h = host("Linux")
    assert canary_cell("kvm", h).guest.id == "canary-x86_64"
    b = canary_cell("bochs", h)
    assert b.guest.id == "canary-x86_64-iso" and b.firmware == "bios"
    assert b.timeouts.stall == 5 * 30  # bochs' time_factor
    assert canary_cell("bhyve", h).firmware == "uefi"
    assert canary_cell("vmd", h).guest.id == "canary-x86_64-iso"


# --- the runner drives a VMM through fake tools --------------------------------------

@pytest.mark.parametrize("console", ["pty", "socket"])
def test_a_virtualbox_cell_runs_setup_console_and_teardown(fakes, tmp_path, store,
                                                           monkeypatch, console):
    """A fake VBoxManage: startvm serves a real Linux console on the COM1 socket (read by
    the socket reader on a pty, or on pipes with the socket transport)."""
    monkeypatch.setenv("HARNESS_CONSOLE", console)
    calls = tmp_path / "calls.log"
    fake_tool(fakes, "VBoxManage", f'''
import socket, subprocess
open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "modifyvm":
    sock = sys.argv[sys.argv.index("--uartmode1") + 2]
    open({str(tmp_path / "sock")!r}, "w").write(sock)
if sys.argv[1] == "startvm":
    sock = open({str(tmp_path / "sock")!r}).read()
    code = ("import socket,sys,time\\ns=socket.socket(socket.AF_UNIX)\\ns.bind(sys.argv[1])\\n"
            "s.listen(1)\\nc,_=s.accept()\\nc.sendall(open(sys.argv[2],'rb').read())\\n"
            "time.sleep(0.5)\\nc.close()")
    subprocess.Popen([sys.executable, "-c", code, sock, {str(GRUB_LOG)!r}],
                     start_new_session=True)
    time.sleep(0.3)
''')
    g = load_guest(GUESTS / "grub-2.06-iso.yaml")
    c = make_cell(g, "virtualbox", "bios", g.timeouts, 512)
    images = store.resolve_guest(g)
    r = execute(c, images, CellContext(tmp_path / "run"))
    got = calls.read_text().splitlines()
    verbs = [line.split()[0] for line in got if line != "--version"]  # the probe's
    assert verbs == ["createvm", "modifyvm", "storagectl", "storageattach", "startvm",
                     "controlvm", "unregistervm"], got
    # a real console of this guest, served the way VirtualBox serves COM1
    assert r.verdict is Verdict.PASS, r.reason
    assert all(m.reached for m in r.milestones) and r.vmm["name"] == "virtualbox"
    folder = tmp_path / "run" / c.folder
    assert b"HARNESS-READY" in (folder / "console.raw").read_bytes()
    assert "VBoxManage unregistervm" in (folder / "command.txt").read_text()
    assert "trap teardown EXIT INT TERM" in (folder / "repro.sh").read_text()


def test_a_failing_setup_command_is_an_error_and_teardown_still_runs(fakes, tmp_path, store):
    calls = tmp_path / "calls.log"
    fake_tool(fakes, "xl", f'''
open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "create":
    print("libxl: error: libxl_create.c:1234: domain creation failed", file=sys.stderr)
    sys.exit(3)
''')
    g = CATALOG["linux-busybox-x86_64"]
    c = make_cell(g, "xen", "bios", g.timeouts, 256)
    r = execute(c, store.resolve_guest(g), CellContext(tmp_path / "run"))
    assert r.verdict is Verdict.ERROR and "failed with status 3" in r.reason
    assert "domain creation failed" in r.reason
    verbs = [line.split()[0] for line in calls.read_text().splitlines()]
    assert [v for v in verbs if v != "info"] == ["create", "destroy"]  # info: the probe's


# --- Bochs for real --------------------------------------------------------------------

def _bochs_run(tmp_path, only: str, guests: Path) -> dict:
    if static_probe("bochs").status != AVAILABLE:
        pytest.skip("bochs is not installed (make deps installs it)")
    m = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [bochs]\nfirmware: [bios]\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--matrix", str(m),
                           "--guests", str(guests), "--only", only, "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    cells = json.loads((tmp_path / "r/latest/results.json").read_text())["cells"]
    assert proc.returncode == 0, proc.stdout[-2000:]
    return cells[0]


@pytest.mark.vm
def test_bochs_boots_gnu_mach_from_a_grub_iso(tmp_path):
    c = _bochs_run(tmp_path, "test-gnumach-iso/*", TEST_GUESTS)
    assert c["verdict"] == "pass" and c["vmm"]["name"] == "bochs"
    assert [m["name"] for m in c["milestones"]] == ["grub", "kernel", "bootstrap"]
    console = (tmp_path / "r/latest" / c["artifacts"]["console"]).read_text()
    assert "Bochs x86 Emulator" not in console  # its banner went to bochs.stdout


@pytest.mark.vm
def test_bochs_boots_linux_to_userspace_and_power_off(tmp_path):
    c = _bochs_run(tmp_path, "grub-2.06-iso/*", GUESTS)
    assert c["verdict"] == "pass", c["reason"]
    assert all(m["reached"] for m in c["milestones"])
    assert c["command"][-6:-4] == ["bochs", "-q"]
