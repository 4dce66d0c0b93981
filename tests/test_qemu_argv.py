"""QEMU command lines for every accelerator, firmware, boot kind and quirk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import knowledge
from harness.backends.base import LaunchContext, LaunchError
from harness.backends.media import overlay_argv
from harness.backends.qemu import build_launch, find_uefi
from harness.model import BootSpec, Guest, Milestone, Timeouts
from harness.plan import make_cell

CTX = LaunchContext(Path("/run"), Path("/tmp"))

IMAGES = {"kernel": Path("/c/vmlinuz"), "initrd": Path("/c/initrd"), "iso": Path("/c/x.iso"),
          "disk": Path("/c/d.qcow2"), "fd": Path("/c/f.img")}


def cell(backend="tcg", firmware="bios", boot=None, arch="x86_64", vcpus=1, quirks=()):
    g = Guest(id="g", name="g", os="linux", arch=arch, images={},
              boot=boot or BootSpec("kernel", kernel="kernel", initrd="initrd",
                                    cmdline="console=ttyS0"),
              firmware=["bios", "uefi"], memory_mb=256, vcpus=vcpus, console="serial",
              milestones=[Milestone("m", re.compile("x"))], failures=[])
    return make_cell(g, backend, firmware, Timeouts(), 384, quirks=quirks)


def argv(c, **kw) -> list[str]:
    return build_launch(c, IMAGES, CTX, **kw).argv


def opt(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_the_tcg_kernel_boot_command_line():
    a = argv(cell())
    assert a[0] == "qemu-system-x86_64"
    assert opt(a, "-machine") == ["pc"] and opt(a, "-accel") == ["tcg"]
    assert opt(a, "-m") == ["384"] and opt(a, "-smp") == ["1"]
    assert opt(a, "-kernel") == ["/c/vmlinuz"] and opt(a, "-initrd") == ["/c/initrd"]
    assert opt(a, "-append") == ["console=ttyS0"]
    assert opt(a, "-chardev") == ["stdio,id=console,signal=off"]
    assert opt(a, "-serial") == ["chardev:console"]
    assert opt(a, "-qmp") == ["unix:/tmp/qmp.sock,server=on,wait=off"]
    for flag in ("-no-reboot", "-nodefaults", "-no-user-config"):
        assert flag in a
    assert "-cpu" not in a
    assert all(isinstance(x, str) for x in a)


@pytest.mark.parametrize("backend, accel, cpu", [
    ("tcg", "tcg", None), ("kvm", "kvm", None), ("nvmm", "nvmm", None), ("haxm", "hax", None),
    ("whpx", "whpx,kernel-irqchip=off", None), ("hvf", "hvf", "host"),
])
def test_each_accelerator(backend, accel, cpu):
    a = argv(cell(backend))
    assert opt(a, "-accel") == [accel]
    assert opt(a, "-cpu") == ([cpu] if cpu else [])


def test_smp_runs_tcg_multithreaded():
    a = argv(cell(vcpus=4))
    assert opt(a, "-accel") == ["tcg,thread=multi"] and opt(a, "-smp") == ["4"]
    assert opt(argv(cell("kvm", vcpus=4)), "-accel") == ["kvm"]


def test_quirks_change_the_command_line():
    a = argv(cell("whpx", quirks=["noapic", "no_timer_check", "mtrr-mce", "no-hpet"]))
    assert opt(a, "-append") == ["console=ttyS0 noapic no_timer_check"]
    assert opt(a, "-cpu") == ["qemu64,+mtrr,+mce"]
    assert opt(a, "-machine") == ["pc,hpet=off"]
    a = argv(cell("kvm", quirks=["kernel-irqchip=split", "cpu-max", "i440fx"], firmware="uefi"))
    assert opt(a, "-accel") == ["kvm,kernel-irqchip=split"]
    assert opt(a, "-cpu") == ["max"] and opt(a, "-machine") == ["pc"]


def test_every_quirk_in_the_library_builds():
    for name in knowledge.quirks():
        assert argv(cell(quirks=[name]))[0] == "qemu-system-x86_64"


def test_uefi_uses_pflash_with_a_per_cell_vars_copy():
    launch = build_launch(cell(firmware="uefi"), IMAGES, CTX)
    code, template = find_uefi("x86_64")
    drives = opt(launch.argv, "-drive")
    assert drives[:2] == [f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                          "if=pflash,format=raw,unit=1,file=/run/efivars.fd"]
    assert launch.vars_template == template and launch.vars_file == Path("/run/efivars.fd")
    assert opt(launch.argv, "-machine") == ["q35"]
    assert opt(launch.argv, "-qmp") == ["unix:/tmp/qmp.sock,server=on,wait=off"]
    assert launch.monitor == Path("/tmp/qmp.sock")


def test_boot_media_are_never_written(tmp_path):
    a = argv(cell(boot=BootSpec("cdrom", image="iso")))
    assert opt(a, "-drive") == ["file=/c/x.iso,media=cdrom,readonly=on,if=ide,index=2"]
    assert opt(a, "-boot") == ["d"] and "-kernel" not in a
    disk = tmp_path / "d.img"
    disk.write_bytes(b"QFI\xfb" + bytes(60))
    images = {**IMAGES, "disk": disk, "fd": tmp_path / "f.img"}
    (tmp_path / "f.img").write_bytes(bytes(512))
    ctx = LaunchContext(tmp_path / "cell")
    launch = build_launch(cell(boot=BootSpec("disk", image="disk")), images, ctx)
    overlay = ctx.folder / "disk.overlay.qcow2"
    assert opt(launch.argv, "-drive") == [f"file={overlay},format=qcow2,if=ide,index=0"]
    assert launch.setup == [overlay_argv(disk, overlay)] and launch.media["disk"] == overlay
    assert launch.setup[0][-3:] == ["-F", "qcow2", str(overlay)]
    launch = build_launch(cell(boot=BootSpec("floppy", image="fd")), images, ctx)
    overlay = ctx.folder / "fd.overlay.qcow2"
    assert opt(launch.argv, "-drive") == [f"file={overlay},format=qcow2,if=floppy,index=0"]
    assert opt(launch.argv, "-boot") == ["a"] and launch.setup[0][-3:] == ["-F", "raw",
                                                                          str(overlay)]


def test_writable_media_get_an_overlay_and_the_base_stays(tmp_path, qemu):
    import hashlib
    import subprocess

    from harness.backends.media import overlays
    from harness.runner import run_step

    base = tmp_path / "base.img"
    base.write_bytes(bytes(1 << 20))
    before = hashlib.sha256(base.read_bytes()).hexdigest()
    c = cell(boot=BootSpec("floppy", image="fd"))
    folder = tmp_path / "cell"
    folder.mkdir()
    launch = build_launch(c, {"fd": base}, LaunchContext(folder))
    for argv in launch.setup:  # as the runner runs them
        assert run_step(argv, folder / "vmm.commands.log", 30) is None
    media = launch.media
    assert media["fd"] == folder / "fd.overlay.qcow2" and overlays(folder) == [media["fd"]]
    info = subprocess.run(["qemu-img", "info", "--output=json", str(media["fd"])],
                          capture_output=True, text=True, check=True).stdout
    assert f'"backing-filename": "{base}"' in info and '"backing-filename-format": "raw"' in info
    subprocess.run(["qemu-io", "-c", "write -P 0x55 0 4k", str(media["fd"])], check=True,
                   capture_output=True)
    assert hashlib.sha256(base.read_bytes()).hexdigest() == before


def test_architectures_pick_their_binary_and_defaults():
    assert argv(cell(arch="i386"))[0] == "qemu-system-i386"
    a = argv(cell(arch="aarch64"))
    assert a[0] == "qemu-system-aarch64" and opt(a, "-cpu") == ["cortex-a57"]
    assert opt(a, "-machine") == ["virt"]
    assert argv(cell(arch="ppc64le"))[0] == "qemu-system-ppc64"


def test_missing_uefi_firmware_says_which_package(monkeypatch):
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    with pytest.raises(LaunchError, match=r"UEFI firmware for x86_64 not found \(Debian package "
                                          r"ovmf\)"):
        find_uefi("x86_64")
    with pytest.raises(LaunchError, match="no UEFI firmware is known for riscv64"):
        find_uefi("riscv64")


def test_this_qemu_accepts_the_command_line(default_images, tmp_path):
    """Real QEMU parses and sets up what we build (paused with -S), answering on QMP."""
    from harness.backends.process import VMProcess
    from harness.backends.qmp import QMP

    for firmware in ("bios", "uefi"):
        c = cell(firmware=firmware, quirks=["noapic", "mtrr-mce", "no-hpet"])
        folder = tmp_path / firmware
        folder.mkdir()
        launch = build_launch(c, {k: v.path for k, v in default_images.items()},
                              LaunchContext(folder, folder))
        sock, vars_file = launch.monitor, launch.vars_file
        if launch.vars_template:
            vars_file.write_bytes(launch.vars_template.read_bytes())
        vm = VMProcess([*launch.argv, "-S"], tmp_path / "stderr", sock)
        try:
            with QMP(sock) as q:
                q.connect(wait=10)
                assert q.command("query-status")["status"] == "prelaunch"
                assert q.command("query-name") == {"name": "g"}
        finally:
            vm.stop()
        assert not vm.alive()
        assert (tmp_path / "stderr").read_text() == ""


def test_without_unix_sockets_qmp_is_served_on_tcp_and_answers(default_images, tmp_path,
                                                               monkeypatch):
    """Windows' Python has no AF_UNIX: the monitor is a TCP port on 127.0.0.1, which
    real QEMU serves and the QMP client (and a polite quit) use."""
    from harness.backends import addresses
    from harness.backends.process import VMProcess
    from harness.backends.qmp import QMP

    monkeypatch.setattr(addresses, "has_unix", lambda: False)
    launch = build_launch(cell(), {k: v.path for k, v in default_images.items()},
                          LaunchContext(tmp_path, tmp_path))
    [qmp] = opt(launch.argv, "-qmp")
    assert re.fullmatch(r"tcp:127\.0\.0\.1:\d+,server=on,wait=off", qmp)
    assert launch.monitor == qmp.removesuffix(",server=on,wait=off")
    vm = VMProcess([*launch.argv, "-S"], tmp_path / "stderr", launch.monitor)
    try:
        with QMP(launch.monitor) as q:
            q.connect(wait=10)
            assert q.command("query-status")["status"] == "prelaunch"
        assert vm.stop(grace=5.0) == 0  # ended by QMP `quit`, not by a signal
    finally:
        vm.stop()
    assert not vm.alive()
