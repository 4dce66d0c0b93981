"""The SIMH and GXemul backends: their ini and command lines, the machine table, the
guest-file extension (`machine:`, `simh:`, `boot: {bios: …}` alone), the probes, the
emulators' own stop messages as crash signatures; and real boots (vm): UNIX V6 and
the MicroVAX ROM on SIMH (two V6 cells side by side), a simulator halt, a SIGKILLed
harness, and a test program on GXemul's testmips."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import knowledge
from harness.backends import gxemul, registry, simh
from harness.backends.base import LaunchContext, LaunchError
from harness.backends.hostcheck import HostIO, Ran
from harness.backends.probe import host_facts
from harness.config import ConfigError, load_guest, load_guests
from harness.console.tracker import BootTracker
from harness.model import Timeouts
from harness.plan import make_cell

from .conftest import GUESTS, ROOT, write

CATALOG = load_guests(GUESTS)
SHARED = ROOT.parent / "shared" / "images"


def cell(gid: str, backend: str = "simh", guest=None):
    return make_cell(guest or CATALOG[gid], backend, "bios", Timeouts(60, 20), 256)


def fake_images(tmp_path: Path, guest) -> dict[str, Path]:
    out = {}
    for name in guest.images:
        out[name] = write(tmp_path / "cache" / name, "x")
    return out


# --- the ini and command lines ----------------------------------------------------

def test_the_unix_v6_ini_attaches_copies_and_moves_its_port(tmp_path):
    c = cell("simh-unix-v6-pdp11")
    images = fake_images(tmp_path, c.guest)
    folder = tmp_path / "cell"
    folder.mkdir()
    launch = simh.build_launch(c, images, LaunchContext(folder))
    assert launch.argv == ["pdp11", str(folder / "simh.ini")]
    text = launch.files[folder / "simh.ini"]
    lines = text.splitlines()
    port = re.fullmatch(r"att dci (\d+)", lines[4])
    assert lines[1:4] == ["set cpu 11/40", "set dci en", "set dci lines=8"] and port
    assert int(port.group(1)) != 1106
    assert lines[6:] == [f"attach rk{n} {(folder / f'rk{n}.copy').resolve()}" for n in range(3)] \
        + ["boot rk0"]
    assert str(tmp_path / "cache") not in text  # the cached images are never attached
    assert launch.setup[0] == ["sh", "-c", 'cat "$1" > "$2"', "copy", str(images["rk0"]),
                               str(folder / "rk0.copy")]
    assert launch.teardown == [["rm", "-f", *(str(folder / f"rk{n}.copy") for n in range(3))]]
    assert launch.stop_keys == (b"\x05", b"quit\r")
    # the copy command really copies a read-only file into a writable one
    ro = write(tmp_path / "ro.rk", "pack")
    ro.chmod(0o444)
    subprocess.run([*launch.setup[0][:4], str(ro), str(tmp_path / "w.rk")], check=True)
    assert (tmp_path / "w.rk").read_text() == "pack" and os.access(tmp_path / "w.rk", os.W_OK)


def test_each_launch_picks_its_own_port():
    ports = iter([40001, 40002])
    assert simh.free_ports("att dci 1106", lambda: next(ports)) == "att dci 40001"
    assert simh.free_ports("ATTACH -am dz 2300 ", lambda: next(ports)) == "ATTACH -am dz 40002 "
    for line in ("attach rk0 disk0.rk", "set dci lines=8", "d sr 1"):
        assert simh.free_ports(line, lambda: 1) == line


def test_the_vax_rom_ini_loads_the_rom_sets_memory_and_boots_the_cpu(tmp_path):
    c = cell("simh-vax-rom")
    images = fake_images(tmp_path, c.guest)
    launch = simh.build_launch(c, images, LaunchContext(tmp_path))
    assert launch.argv[0] == "vax"
    assert launch.files[tmp_path / "simh.ini"].splitlines()[1:] == [
        f"load -r {images['rom'].resolve()}", "set cpu 64m", "boot cpu"]
    assert launch.setup == [] and launch.teardown == []


GUEST = """\
id: {gid}
os: unix
arch: {arch}
images:
  d0: {{file: d0.img}}
boot: {boot}
{extra}milestones:
  - {{name: x, pattern: 'x'}}
"""


def guest_file(tmp_path: Path, gid: str = "g", arch: str = "pdp11", boot: str = "{disk: d0}",
               extra: str = "") -> Path:
    write(tmp_path / "guests" / "d0.img", "")
    return write(tmp_path / "guests" / f"{gid}.yaml",
                 GUEST.format(gid=gid, arch=arch, boot=boot, extra=extra))


def issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_guest(path)
    return [str(i) for i in err.value.issues]


def test_what_simh_and_gxemul_refuse_and_why(tmp_path):
    v6 = CATALOG["simh-unix-v6-pdp11"]
    assert "attached to a unit" in simh.why_not(cell("", guest=load_guest(
        guest_file(tmp_path, extra="simh: {ini: [set cpu 11/40]}\n"))))
    big = load_guest(guest_file(tmp_path, "big", "vax", "{bios: d0}", "memory: 128M\n"))
    assert simh.why_not(cell("", guest=big)) == (
        "the DEC MicroVAX 3900 (KA655 CPU; needs its console ROM, ka655x.bin) takes at most "
        "64 MiB; this guest asks 128")
    cd = load_guest(guest_file(tmp_path, "cd", boot="{cdrom: d0}"))
    assert "not a cdrom" in simh.why_not(cell("", guest=cd))
    assert simh.why_not(make_cell(v6, "simh", "uefi", Timeouts(), 256)) == \
        "simh machines have no UEFI firmware"
    assert simh.why_not(cell("grub-2.06-iso")) == \
        "simh has no simulator for x86_64 guests (data/machines.yaml)"
    assert gxemul.why_not(cell("simh-vax-rom", "gxemul")) == \
        "gxemul has no machine for vax guests (data/machines.yaml)"
    with pytest.raises(LaunchError):
        simh.ini(cell("", guest=big), {}, {})
    host = host_facts()
    assert registry.runs_arch("tcg", "pdp11", host) == \
        "QEMU emulates no pdp11 machine (arches.yaml names no binary)"
    assert registry.runs_arch("simh", "mipsel", host) == "simh runs pdp11, vax guests, not mipsel"


def test_the_guest_file_extension_is_checked_with_file_line_and_key(tmp_path):
    path = guest_file(tmp_path, extra=(
        "machine: vax780\n"
        "simh:\n"
        "  attach: {rk0: d9, 'r k': d0}\n"
        "  ini: [set cpu 11/40, {a: 1}]\n"
        "  colour: blue\n"))
    assert issues(path) == [
        f"{path}:7: machine: 'vax780' is not a pdp11 machine of data/machines.yaml "
        "(one of: pdp11)",
        f"{path}:9: simh.attach.rk0: no image named 'd9' in images",
        f"{path}:9: simh.attach.r k: 'r k': expected a SIMH unit name such as rk0",
        f"{path}:10: simh.ini[1]: expected a non-empty string, got a mapping",
        f"{path}:11: simh.colour: unknown key (allowed here: attach, readonly, boot, ini)",
    ]
    rom = load_guest(guest_file(tmp_path, "rom", "vax", "{bios: d0}", "machine: vax780\n"))
    assert rom.boot.kind == "firmware" and rom.boot.bios == "d0" and rom.machine == "vax780"
    assert knowledge.machine_for("simh", rom).binary == "vax780"
    bad = guest_file(tmp_path, "nob", "vax", "{bios: d7}")
    assert issues(bad) == [f"{bad}:6: boot.bios: no image named 'd7' in images"]


def test_gxemul_command_lines(tmp_path):
    hello = CATALOG["gxemul-testmips-hello"]
    images = fake_images(tmp_path, hello)
    launch = gxemul.build_launch(cell("", "gxemul", hello), images, LaunchContext(tmp_path))
    assert launch.argv == ["gxemul", "-q", "-E", "testmips", "-M", "256",
                           str(images["program"])]
    assert launch.stop_keys == (b"\x03", b"quit\r")
    disk = load_guest(guest_file(tmp_path, "pm", "mipsel", "{disk: d0}", "machine: pmax\n"))
    d0 = write(tmp_path / "d0.img", "")
    assert gxemul.argv(cell("", "gxemul", disk), {"d0": d0}) == [
        "gxemul", "-q", "-E", "dec", "-e", "3max", "-M", "256", "-d", f"bdR:{d0}"]
    malta = gxemul.build_launch(cell("linux-malta-mipsel", "gxemul"), {"kernel": d0},
                                LaunchContext(tmp_path))
    assert malta.argv == ["gxemul", "-q", "-E", "evbmips", "-e", "malta", "-C", "24KEc", "-M",
                          "256", "-o", "console=ttyS0 panic=-1", str(d0)]


# --- probes -----------------------------------------------------------------------

class Recorded(HostIO):
    """What Debian 12's simulators answer (recorded here: `pdp11 FILE` where FILE
    says `show version` and `quit`)."""

    def __init__(self, present: dict[str, str]) -> None:
        self.present = present

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.present else None

    def run(self, argv, timeout: float = 15) -> Ran:
        script = Path(argv[1]).read_text()
        assert script == "show version\nquit\n"
        return Ran(0, self.present[argv[0]])


PDP11 = "\nPDP-11 simulator V3.8-1\nsim> show version\nPDP-11 simulator V3.8-1 [32b data, " \
        "32b addresses, Ethernet support]\nsim> quit\nGoodbye\n"


def test_the_simh_probe_lists_each_simulator_and_its_version():
    info = knowledge.backends()["simh"]
    host = host_facts()
    got = simh.probe(info, host, Recorded({"pdp11": PDP11, "vax": "VAX simulator V3.8-1\n"}))
    assert (got.status, got.reason, got.version) == (
        "available", "simulators pdp11 3.8-1, vax 3.8-1 run in software; not installed: vax780",
        "3.8-1")
    none = simh.probe(info, host, Recorded({}))
    assert (none.status, none.reason) == (
        "missing", "no SIMH simulator on PATH (pdp11, vax, vax780) (Debian package simh)")
    odd = simh.probe(info, host, Recorded({"pdp11": "sim> sim> "}))
    assert odd.status == "missing" and "pdp11 did not answer show version" in odd.reason


@pytest.mark.skipif(not shutil.which("pdp11"), reason="Debian package simh is not installed")
def test_the_simh_probe_here():
    got = registry.static_probe("simh")
    assert got.status == "available" and "pdp11 3.8-1" in got.reason, got


# --- the emulators' own words -----------------------------------------------------

@pytest.mark.parametrize("emulator, text, name", [
    ("simh", "\r\nHALT instruction, PC: 000002 (HALT)\r\nsim> ", "simh-halt"),
    ("simh", "Trap stack push abort, PC: 141224 (MOV R0,-(SP))\r\n", "simh-trap"),
    ("simh", "Infinite loop, PC: 20041F2B (BRB 20041F2B)\n", "simh-trap"),
    ("gxemul", "[ UNIMPLEMENTED instruction at 0x80010000 ]\n", "gxemul-unimplemented"),
])
def test_emulator_stop_messages_are_crashes(emulator, text, name):
    guest = CATALOG["simh-unix-v6-pdp11"]
    tracker = BootTracker(guest.milestones, knowledge.guest_failures(guest, emulator),
                          Timeouts(60, 20))
    events = tracker.feed(text.encode(), 1.0)
    assert [e.name for e in events if e.kind == "failure"] == [name], events
    outcome = tracker.tick(30.0)
    assert outcome is not None and outcome.end == "crash", outcome
    plain = BootTracker(guest.milestones, knowledge.guest_failures(guest), Timeouts(60, 20))
    assert not [e for e in plain.feed(text.encode(), 1.0) if e.kind == "failure"]  # not QEMU's


# --- real boots -------------------------------------------------------------------

def harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def seeded() -> None:
    if not shutil.which("pdp11"):
        pytest.skip("Debian package simh is not installed")
    if SHARED.is_dir():
        assert harness("cache", "import", str(SHARED)).returncode == 0


def results(out: Path) -> dict[str, dict]:
    run = next(p for p in out.iterdir() if p.is_dir() and not p.is_symlink())
    return {c["id"]: {**c, "folder": (run / c["artifacts"]["console"]).parent}
            for c in json.loads((run / "results.json").read_text())["cells"]}


@pytest.mark.vm
def test_unix_v6_twice_side_by_side_and_the_vax_rom(tmp_path):
    seeded()
    guests = tmp_path / "guests"
    guests.mkdir()
    v6 = (GUESTS / "simh-unix-v6-pdp11.yaml").read_text()
    for gid in ("v6-a", "v6-b"):
        write(guests / f"{gid}.yaml", v6.replace("id: simh-unix-v6-pdp11", f"id: {gid}"))
    shutil.copy(GUESTS / "simh-vax-rom.yaml", guests)
    proc = harness("run", "--guests", str(guests), "--backend", "simh", "--jobs", "3",
                   "--out", str(tmp_path / "out"))
    cells = results(tmp_path / "out")
    assert {k: c["verdict"] for k, c in cells.items()} == dict.fromkeys(
        ["v6-a/simh/bios", "v6-b/simh/bios", "simh-vax-rom/simh/bios"], "pass"), proc.stdout
    ports = set()
    for gid in ("v6-a", "v6-b"):
        folder = cells[f"{gid}/simh/bios"]["folder"]
        console = (folder / "console.log").read_text()
        raw = (folder / "console.raw").read_bytes()  # as printed: `ls /` lists the kernel
        assert re.search(rb"# ls /\r\n(?:\w+\r\n)*unix\r\n", raw), raw[-300:]
        port = re.search(r"att dci (\d+)", (folder / "simh.ini").read_text()).group(1)
        assert f"Listening on port {port} " in console  # SIMH could listen there
        ports.add(port)
        assert not list(folder.glob("*.copy"))  # the copies went with the cell
    assert len(ports) == 2 and "1106" not in ports
    vax = (cells["simh-vax-rom/simh/bios"]["folder"] / "console.log").read_text()
    assert ">>>" in vax and "-XQA0 (08-00-2B-AA-BB-CC)" in vax
    assert cells["simh-vax-rom/simh/bios"]["vmm"]["version"] == "3.8-1"


@pytest.mark.vm
def test_a_simulator_halt_is_a_crash_with_simhs_message(tmp_path):
    seeded()
    write(tmp_path / "guests" / "blank.rk", "\0" * 65536)
    write(tmp_path / "guests" / "halts.yaml", """\
id: halts
os: unix
arch: pdp11
images:
  pack: {file: blank.rk}
boot: {disk: pack}
simh: {attach: {rk0: pack}, ini: [set cpu 11/40]}
milestones:
  - {name: boot-prompt, pattern: '(?m)^@', timeout: 20}
""")
    harness("run", "--guests", str(tmp_path / "guests"), "--backend", "simh",
            "--out", str(tmp_path / "out"))
    (c,) = results(tmp_path / "out").values()
    assert c["verdict"] == "crash", c
    assert "HALT instruction, PC: 000002 (HALT)" in c["reason"], c["reason"]


def simulators_of(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.vm
def test_sigkill_of_the_harness_leaves_no_simulator(tmp_path):
    seeded()
    guests = tmp_path / "guests"
    text = (GUESTS / "simh-unix-v6-pdp11.yaml").read_text()
    text = text.replace("id: simh-unix-v6-pdp11", "id: v6-waits")
    text = text.replace("pattern: '(?m)^unix\\r?\\n', timeout: 20",
                        "pattern: 'never printed', timeout: 120")
    write(guests / "v6-waits.yaml", text.replace("total: 60", "total: 200"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--guests", str(guests),
                             "--backend", "simh", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not simulators_of(str(out)) and time.monotonic() < deadline:
            time.sleep(0.2)
        running = simulators_of(str(out))
        assert running, "the simulator never started"
        logs = list(out.glob("*/cells/v6-waits/simh-bios/console.log"))
        while logs and "# " not in logs[0].read_text() and time.monotonic() < deadline:
            time.sleep(0.2)  # booted to its shell: a busy simulator, not a starting one
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while simulators_of(str(out)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert simulators_of(str(out)) == []
    finally:
        for pid in simulators_of(str(out)):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


HELLO = r"""
/* A line on GXemul's testmips console device (dev_cons at physical 0x10000000,
   here through kseg1), then its halt register (0x10000010) ends the emulator. */
#define PUTCHAR ((volatile unsigned char *)0xb0000000)
#define HALT ((volatile unsigned char *)0xb0000010)
void __start(void) {
    const char *s = "hello from testmips\n";
    while (*s) *PUTCHAR = *s++;
    *HALT = 0;
    for (;;) ;
}
"""
CC = "mipsel-linux-gnu-gcc"
CFLAGS = ["-O2", "-ffreestanding", "-nostdlib", "-fno-pic", "-mno-abicalls", "-G0",
          "-march=mips32", "-static", "-Wl,-Ttext=0x80010000", "-Wl,-e,__start"]


def build_hello(folder: Path) -> Path:
    if not shutil.which(CC) or not shutil.which("gxemul"):
        pytest.skip(f"{CC} or gxemul is not installed (Debian gcc-mipsel-linux-gnu, gxemul)")
    src = write(folder / "hello.c", HELLO)
    out = folder / "hello"
    subprocess.run([CC, *CFLAGS, "-o", str(out), str(src)], check=True)
    return out


@pytest.mark.vm
def test_a_test_program_prints_its_line_on_gxemul(tmp_path):
    guests = tmp_path / "guests"
    build_hello(guests)
    text = (GUESTS / "gxemul-testmips-hello.yaml").read_text()
    write(guests / "gxemul-testmips-hello.yaml", text)
    harness("run", "--guests", str(guests), "--backend", "gxemul", "--out", str(tmp_path / "o"))
    (c,) = results(tmp_path / "o").values()
    assert c["verdict"] == "pass", c
    assert "hello from testmips" in (c["folder"] / "console.log").read_text()


def test_a_readonly_unit_gets_the_cached_file_uncopied(tmp_path):
    c = cell("netbsd-10.1-vax-simh")
    images = fake_images(tmp_path, c.guest)
    launch = simh.build_launch(c, images, LaunchContext(tmp_path))
    assert launch.files[tmp_path / "simh.ini"].splitlines()[1:] == [
        f"load -r {images['rom'].resolve()}", "set cpu 64m", "set rq3 cdrom",
        f"attach -r rq3 {images['iso'].resolve()}", "boot cpu"]
    assert launch.setup == [] and launch.teardown == []
    bad = guest_file(tmp_path, extra="simh: {attach: {rk0: d0}, readonly: [rk1]}\n")
    assert issues(bad) == [f"{bad}:7: simh.readonly: 'rk1' is not a unit of attach"]


@pytest.mark.vm
def test_simh_is_stopped_by_its_escape_and_quit_not_by_signals(tmp_path):
    seeded()
    packs = SHARED / "simh-unix-v6"
    if not packs.is_dir():
        pytest.skip(f"{packs} is not here (../shared/images)")
    from harness.backends.transport import PTY, open_console

    c = cell("simh-unix-v6-pdp11")
    images = {f"rk{n}": packs / f"disk{n}.rk" for n in range(3)}
    launch = simh.build_launch(c, images, LaunchContext(tmp_path))
    for path, text in launch.files.items():
        path.write_text(text)
    for argv in launch.setup:
        subprocess.run(argv, check=True)
    vm = open_console(launch, tmp_path / "vmm.stderr", PTY)
    seen, deadline = b"", time.monotonic() + 30
    while b"@" not in seen and time.monotonic() < deadline:
        seen += vm.read(0.5) or b""
    assert b"@" in seen, seen
    started = time.monotonic()
    assert vm.stop(grace=5.0) == 0  # `quit` ends it with status 0; a signal would not
    assert time.monotonic() - started < 5.0
