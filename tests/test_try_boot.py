"""`harness try` on real images under tcg: it names the phase a person would, and the
guest file it writes passes `harness run` (three times out of three where a boot takes
seconds; once for the slow OpenBSD floppy, to keep CI short). Images that cannot boot
get a clear verdict within the time limit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_guest

from .conftest import GUESTS, ROOT

pytestmark = pytest.mark.vm
SHARED = ROOT.parent / "shared" / "images"


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/images)")
    return path


def harness(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def try_image(tmp_path: Path, gid: str, *args: str, time: str = "120") -> tuple[
        subprocess.CompletedProcess[str], Path]:
    written = tmp_path / "guests" / f"{gid}.yaml"
    proc = harness("try", *args, "--out", str(tmp_path / "try"), "--write", str(written),
                   "--time", time)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, written


def runs_pass(tmp_path: Path, gid: str, times: int) -> None:
    """`harness run` of the written guest file: pass, `times` times."""
    for n in range(times):
        out = tmp_path / f"run{n}"
        proc = harness("run", "--guests", str(tmp_path / "guests"), "--only", f"{gid}/tcg/*",
                       "--out", str(out))
        run = next(p for p in out.iterdir() if p.is_dir() and not p.is_symlink())
        (cell,) = json.loads((run / "results.json").read_text())["cells"]
        assert cell["verdict"] == "pass", (n, cell["reason"], proc.stdout[-2000:])


def test_a_freedos_floppy_reaches_its_prompt(tmp_path):
    proc, written = try_image(tmp_path, "fd722", shared("freedos/freedos722.img"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "floppy, boots as floppy" in proc.stdout
    assert "tcg/bios: pass: DOS prompt (answers input)" in proc.stdout
    g = load_guest(written)
    assert g.level == "observed" and g.boot.kind == "floppy"
    assert g.milestones[-1].keys == ("ret",)  # the Enter it answered the prompt with
    runs_pass(tmp_path, "fd722", 3)


def test_a_kernel_and_initrd_reach_their_shell(tmp_path, default_images):
    proc, written = try_image(tmp_path, "busybox", "--kernel",
                              str(default_images["kernel"].path), "--initrd",
                              str(default_images["initrd"].path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bzimage, boots as kernel" in proc.stdout
    assert "tcg/bios: pass: BusyBox shell" in proc.stdout
    assert load_guest(written).boot.cmdline == "console=ttyS0"
    runs_pass(tmp_path, "busybox", 3)


def test_kolibrios_reaches_a_desktop_that_answers_the_mouse(tmp_path):
    proc, _ = try_image(tmp_path, "kolibri", shared("kolibrios/kolibri.img"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tcg/bios: pass: KolibriOS desktop (answers input)" in proc.stdout
    assert "moved the mouse" in proc.stdout
    runs_pass(tmp_path, "kolibri", 3)


def test_the_openbsd_floppy_reaches_its_installer_question(tmp_path):
    proc, _ = try_image(tmp_path, "obsd28", shared("openbsd-2.8-floppy/openbsd.img"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pass: OpenBSD installer question" in proc.stdout
    runs_pass(tmp_path, "obsd28", 1)


def test_ipxe_with_no_network_card_has_no_boot_device(tmp_path, store):
    images = store.resolve_guest(load_guest(GUESTS / "ipxe.yaml"))
    kernel = next(img.path for img in images.values())
    proc, _ = try_image(tmp_path, "ipxe", "--kernel", str(kernel), "--append", "", time="60")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "tcg/bios: fail: no more network devices" in proc.stdout.lower() or (
        "fail:" in proc.stdout and "network" in proc.stdout.lower()), proc.stdout


def test_images_that_cannot_boot_get_a_clear_verdict(tmp_path):
    zero = tmp_path / "zero.img"
    zero.write_bytes(bytes(1474560))
    proc, _ = try_image(tmp_path, "zero", str(zero), time="60")
    assert proc.returncode == 1 and "tcg/bios: fail: no bootable device" in proc.stdout, (
        proc.stdout + proc.stderr)
    noise = tmp_path / "noise.img"
    noise.write_bytes(os.urandom(1 << 20))
    proc = harness("try", str(noise), "--out", str(tmp_path / "n"))
    assert proc.returncode == 2 and "not something a machine boots" in proc.stderr, (
        proc.stdout + proc.stderr)
    assert "Traceback" not in proc.stderr


def test_the_debian_installer_kernel_reaches_its_first_question(tmp_path, store):
    """A userland banner ("Run /init") is not the end: the installer behind it loads
    for half a minute, then asks."""
    images = store.resolve_guest(load_guest(GUESTS / "debian-installer-12-amd64.yaml"))
    proc, _ = try_image(tmp_path, "di", "--kernel", str(images["kernel"].path), "--initrd",
                        str(images["initrd"].path), time="150")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tcg/bios: pass: Debian installer (answers input)" in proc.stdout
    runs_pass(tmp_path, "di", 1)


def test_netbsd_g4u_reaches_its_shell_through_grub(tmp_path, store):
    """A screen-only system whose kernel thinks for long without a word (MAKEDEV): the
    Enters pressed into that silence are typed ahead of its prompt ("g4u> g4u> "), and
    the written milestone still waits for one prompt."""
    images = store.resolve_guest(load_guest(GUESTS / "netbsd-g4u-i386.yaml"))
    proc, written = try_image(tmp_path, "g4u", str(images["iso"].path), time="150")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "iso, boots as cdrom" in proc.stdout
    assert "tcg/bios: pass: g4u shell (answers input)" in proc.stdout
    assert load_guest(written).milestones[-1].pattern.pattern == r"g\d+u>"
    runs_pass(tmp_path, "g4u", 1)


def test_the_grub_iso_boots_its_kernel_to_the_shell(tmp_path, store):
    images = store.resolve_guest(load_guest(GUESTS / "grub-2.06-iso.yaml"))
    proc, _ = try_image(tmp_path, "grubiso", str(images["iso"].path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bootloader GRUB" in proc.stdout and "kernel     Linux kernel" in proc.stdout
    assert "tcg/bios: pass: BusyBox shell" in proc.stdout
    runs_pass(tmp_path, "grubiso", 1)


def test_memtest_runs_by_itself(tmp_path, store):
    """A memory tester never asks and never goes quiet: testing is as far as it goes."""
    images = store.resolve_guest(load_guest(GUESTS / "memtest86plus.yaml"))
    proc, written = try_image(tmp_path, "mt", str(images["bin"].path), "--memory", "128M",
                              time="90")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tcg/bios: pass: Memtest86+ testing" in proc.stdout and "it runs by itself" in (
        proc.stdout)
    assert load_guest(written).milestones[-1].pattern.pattern == "Status: +Testing"
    runs_pass(tmp_path, "mt", 1)


def test_a_truncated_iso_is_said_and_does_not_boot(tmp_path, store):
    images = store.resolve_guest(load_guest(GUESTS / "netbsd-g4u-i386.yaml"))
    cut = tmp_path / "cut.iso"
    cut.write_bytes(images["iso"].path.read_bytes()[:6_000_000])
    proc, _ = try_image(tmp_path, "cut", str(cut), time="60")
    assert "truncated: the volume is 24.6 MiB but the file only 5.7 MiB" in proc.stdout
    assert proc.returncode == 1 and "tcg/bios: fail: no bootable device" in proc.stdout, (
        proc.stdout + proc.stderr)


def test_a_bare_efi_application_boots_under_uefi(tmp_path):
    """Debian's monolithic GRUB (grub-efi-amd64-bin) as a bare EFI application: OVMF
    starts it from QEMU's -kernel; it looks for its CD ("error: no such device", which
    it goes on from) and gives its command line."""
    app = Path("/usr/lib/grub/x86_64-efi/monolithic/grubx64.efi")
    if not app.is_file():
        pytest.skip(f"{app} is not here (Debian's grub-efi-amd64-bin)")
    proc, written = try_image(tmp_path, "grubefi", str(app), "--hang", "15")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "efi, boots as efi, arch x86_64, firmware uefi" in proc.stdout
    assert "bootloader GRUB error" in proc.stdout
    assert "tcg/uefi: pass: GRUB command line (answers input)" in proc.stdout
    assert list(load_guest(written).firmware) == ["uefi"]
    runs_pass(tmp_path, "grubefi", 1)
