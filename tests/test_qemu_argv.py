"""QEMU command lines for every accelerator, firmware, boot kind and quirk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import knowledge
from harness.backends.qemu import LaunchError, build_launch, find_uefi
from harness.model import BootSpec, Cell, Guest, Milestone, Timeouts

IMAGES = {"kernel": Path("/c/vmlinuz"), "initrd": Path("/c/initrd"), "iso": Path("/c/x.iso"),
          "disk": Path("/c/d.qcow2"), "fd": Path("/c/f.img")}


def cell(backend="tcg", firmware="bios", boot=None, arch="x86_64", vcpus=1, quirks=()):
    g = Guest(id="g", name="g", os="linux", arch=arch, images={},
              boot=boot or BootSpec("kernel", kernel="kernel", initrd="initrd",
                                    cmdline="console=ttyS0"),
              firmware=["bios", "uefi"], memory_mb=256, vcpus=vcpus, console="serial",
              milestones=[Milestone("m", re.compile("x"))], failures=[])
    return Cell(g, backend, firmware, Timeouts(), 384, quirks=list(quirks))


def argv(c, **kw) -> list[str]:
    return build_launch(c, IMAGES, Path("/tmp/q.sock"), Path("/run/vars.fd"), **kw).argv


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
    assert opt(a, "-qmp") == ["unix:/tmp/q.sock,server=on,wait=off"]
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
    launch = build_launch(cell(firmware="uefi"), IMAGES, Path("/q"), Path("/run/vars.fd"))
    code, template = find_uefi("x86_64")
    drives = opt(launch.argv, "-drive")
    assert drives[:2] == [f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                          "if=pflash,format=raw,unit=1,file=/run/vars.fd"]
    assert launch.vars_template == template and template != Path("/run/vars.fd")
    assert opt(launch.argv, "-machine") == ["q35"]
    with pytest.raises(LaunchError, match="per-cell copy"):
        build_launch(cell(firmware="uefi"), IMAGES, Path("/q"), None)


def test_boot_media_are_never_written(tmp_path):
    a = argv(cell(boot=BootSpec("cdrom", image="iso")))
    assert opt(a, "-drive") == ["file=/c/x.iso,media=cdrom,readonly=on,if=ide,index=2"]
    assert opt(a, "-boot") == ["d"] and "-kernel" not in a
    disk = tmp_path / "d.img"
    disk.write_bytes(b"QFI\xfb" + bytes(60))
    images = {**IMAGES, "disk": disk, "fd": tmp_path / "f.img"}
    (tmp_path / "f.img").write_bytes(bytes(512))
    a = build_launch(cell(boot=BootSpec("disk", image="disk")), images, Path("/q")).argv
    assert opt(a, "-drive") == [f"file={disk},format=qcow2,snapshot=on,if=ide,index=0"]
    a = build_launch(cell(boot=BootSpec("floppy", image="fd")), images, Path("/q")).argv
    assert opt(a, "-drive") == [f"file={tmp_path / 'f.img'},format=raw,snapshot=on,if=floppy,"
                                "index=0"]
    assert opt(a, "-boot") == ["a"]
    overlay = tmp_path / "disk.overlay.qcow2"
    a = build_launch(cell(boot=BootSpec("disk", image="disk")), {**images, "disk": overlay},
                     Path("/q")).argv
    assert opt(a, "-drive") == [f"file={overlay},format=qcow2,if=ide,index=0"]


def test_writable_media_get_an_overlay_and_the_base_stays(tmp_path, qemu):
    import hashlib
    import subprocess

    from harness.backends.media import overlays, prepare

    base = tmp_path / "base.img"
    base.write_bytes(bytes(1 << 20))
    before = hashlib.sha256(base.read_bytes()).hexdigest()
    c = cell(boot=BootSpec("floppy", image="fd"))
    folder = tmp_path / "cell"
    folder.mkdir()
    media = prepare(c, {"fd": base}, folder)
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
        sock, vars_file = tmp_path / f"{firmware}.sock", tmp_path / f"{firmware}.fd"
        launch = build_launch(c, {k: v.path for k, v in default_images.items()}, sock, vars_file)
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
