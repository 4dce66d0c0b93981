"""Real boots under QEMU/TCG: every verdict from a real guest, at the right time."""

from __future__ import annotations

import pytest

from harness.config import load_guest
from harness.executor import CellContext, execute
from harness.model import Verdict
from harness.plan import make_cell

from .conftest import GUESTS, TEST_GUESTS

pytestmark = pytest.mark.vm


def boot(path, store, tmp_path, firmware="bios", backend="tcg"):
    guest = load_guest(path)
    cell = make_cell(guest, backend, firmware, guest.timeouts, guest.memory_mb)
    return execute(cell, store.resolve_guest(guest), CellContext(tmp_path))


def test_the_default_guest_passes_with_plausible_times(store, tmp_path, qemu):
    r = boot(GUESTS / "linux-busybox-x86_64.yaml", store, tmp_path)
    assert r.verdict is Verdict.PASS, r.reason
    assert r.score == 1.0 and r.attempts == 1 and r.failure is None
    times = [m.t for m in r.milestones]
    assert [m.name for m in r.milestones] == ["kernel", "init", "userspace", "checks", "poweroff"]
    assert all(m.reached for m in r.milestones)
    assert times == sorted(times) and 0 < times[0] < times[-1] < 60
    assert r.duration_s >= times[-1]
    log = (tmp_path / r.artifacts["console"]).read_text()
    assert "### harness: milestone 'kernel' matched" in log  # the harness's own, whole lines
    assert b"HARNESS-CHECK ok: cpu-works" in (tmp_path / r.artifacts["console_raw"]).read_bytes()
    assert (tmp_path / r.artifacts["console_raw"]).read_bytes().count(b"Linux version") == 1
    assert r.command[0] == "qemu-system-x86_64" and "-no-reboot" in r.command


def test_the_default_guest_passes_under_uefi(store, tmp_path, qemu):
    r = boot(GUESTS / "linux-busybox-x86_64.yaml", store, tmp_path, firmware="uefi")
    assert r.verdict is Verdict.PASS, r.reason
    assert any("if=pflash" in a for a in r.command)
    assert (tmp_path / "cells/linux-busybox-x86_64/tcg-uefi/efivars.fd").stat().st_size > 0


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_the_i386_guest_passes(store, tmp_path, qemu, firmware):
    r = boot(GUESTS / "linux-busybox-i386.yaml", store, tmp_path, firmware=firmware)
    assert r.verdict is Verdict.PASS, r.reason
    assert r.command[0] == "qemu-system-i386"
    # console.raw: console.log's lines are split where the reads fell
    assert b"arch=i686" in (tmp_path / r.artifacts["console_raw"]).read_bytes()


def test_a_panic_is_a_crash_within_seconds_with_its_backtrace(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-panic.yaml", store, tmp_path)
    assert r.verdict is Verdict.CRASH
    assert r.failure["name"] == "kernel-panic"
    assert r.failure["text"] == "Kernel panic - not syncing"
    assert r.reason.startswith("kernel-panic: Kernel panic - not syncing")
    userspace = next(m for m in r.milestones if m.name == "userspace")
    assert userspace.reached and r.duration_s < userspace.t + 10  # not the 120 s deadline
    assert 0 < r.score < 1
    assert b"Call Trace" in (tmp_path / r.artifacts["console_raw"]).read_bytes()


def test_silence_after_the_marker_is_a_hang_at_the_stall_timeout(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-hang.yaml", store, tmp_path)
    assert r.verdict is Verdict.HANG
    assert r.reason == "no console output for 10 s; waiting for 'poweroff'"
    userspace = next(m for m in r.milestones if m.name == "userspace")
    assert userspace.t + 5 <= r.duration_s < userspace.t + 15


def test_a_reboot_before_the_marker_is_a_fail(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-reboot-early.yaml", store, tmp_path)
    assert r.verdict is Verdict.FAIL
    assert r.reason == "VM exited while waiting for 'userspace'"
    assert [m.reached for m in r.milestones] == [True, True, False, False]


def test_send_types_into_the_guest(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-shell.yaml", store, tmp_path)
    assert r.verdict is Verdict.PASS, r.reason
    assert b"SUM=42" in (tmp_path / r.artifacts["console_raw"]).read_bytes()


def test_a_harness_bug_in_one_cell_is_that_cells_error(store, default_guest, tmp_path,
                                                       monkeypatch):
    from harness.backends import qemu

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(qemu, "build_launch", broken)
    cell = make_cell(default_guest, "tcg", "bios", default_guest.timeouts, 256)
    r = execute(cell, {}, CellContext(tmp_path))
    assert r.verdict is Verdict.ERROR and r.reason.startswith("harness error: ValueError('boom')")
    assert "Traceback" in (tmp_path / cell.folder / "harness-error.txt").read_text()


def test_the_pvh_variant_boots_from_an_extracted_vmlinux(store, tmp_path, qemu):
    r = boot(GUESTS / "linux-busybox-x86_64-pvh.yaml", store, tmp_path)
    assert r.verdict is Verdict.PASS, r.reason
    assert r.images["kernel"]["source"] == "build:linux-pvh"
    kernel = store.resolve_guest(load_guest(GUESTS / "linux-busybox-x86_64-pvh.yaml"))["kernel"]
    assert kernel.path.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.parametrize("kind, firmware", [("cdrom", "bios"), ("cdrom", "uefi"),
                                            ("disk", "bios")])
def test_grub_iso_recipe_boots_linux(store, tmp_path, qemu, kind, firmware):
    path = GUESTS / "grub-2.06-iso.yaml" if kind == "cdrom" else TEST_GUESTS / "test-grub-disk.yaml"
    r = boot(path, store, tmp_path, firmware=firmware)
    assert r.verdict is Verdict.PASS, r.reason
    iso = r.images["iso"]
    assert iso["source"] == "build:grub-iso" and set(iso["inputs"]) >= {
        "file:boot/vmlinuz", "file:boot/initrd.gz", "grub.cfg", "grub"}
    folder = tmp_path / f"cells/{load_guest(path).id}/tcg-{firmware}"
    assert not list(folder.glob("*.overlay.qcow2"))  # removed at the end of the cell
    if kind == "disk":
        assert any("iso.overlay.qcow2,format=qcow2" in a for a in r.command)
