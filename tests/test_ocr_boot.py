"""Screens in graphics modes read by OCR, booted under QEMU/TCG (UEFI).

Under UEFI, GRUB's menu and memtest86+'s header are drawn in a framebuffer:
VGA text memory is empty, and only OCR of the screenshots finds the same
`source: screen` patterns that VGA text satisfies under BIOS. Each boot is
short: the cells end at their last milestone.
"""

from __future__ import annotations

import re

import pytest

from harness.config import load_guest
from harness.console import ocr
from harness.executor import CellContext, execute
from harness.model import Verdict
from harness.plan import make_cell

from .conftest import TEST_GUESTS

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(ocr.unavailable() is not None,
                                 reason=ocr.unavailable() or "")]


def boot(name, store, tmp_path, firmware):
    guest = load_guest(TEST_GUESTS / f"{name}.yaml")
    cell = make_cell(guest, "tcg", firmware, guest.timeouts, guest.memory_mb)
    r = execute(cell, store.resolve_guest(guest), CellContext(tmp_path))
    return r, tmp_path / cell.folder


def stamped(log: str, text: str) -> bool:
    """`text` on a time-stamped line of screen.log, as the watcher writes new screen lines."""
    return re.search(rf"^\[ *\d+\.\d{{3}}\] .*{re.escape(text)}", log, re.M) is not None


def test_grub_menu_under_uefi_is_read_by_ocr(store, tmp_path, qemu):
    r, folder = boot("test-grub-screen", store, tmp_path, "uefi")
    assert r.verdict is Verdict.PASS, r.reason
    assert [m.name for m in r.milestones if m.reached] == ["menu", "entry", "grub"]
    log = (folder / "screen.log").read_text()
    assert "screen switched to a graphics mode" in log  # not VGA text: OCR read it
    assert stamped(log, "GNU GRUB") and stamped(log, "Debian kernel + BusyBox")
    # the menu was on the screen before GRUB said "Booting" on serial
    menu, _, grub = r.milestones
    assert menu.t < grub.t


def test_memtest_header_under_uefi_is_read_by_ocr(store, tmp_path, qemu):
    r, folder = boot("test-memtest-screen", store, tmp_path, "uefi")
    assert r.verdict is Verdict.PASS, r.reason
    log = (folder / "screen.log").read_text()
    assert "screen switched to a graphics mode, 640x480" in log
    assert stamped(log, "Memtest86+ v6")
    assert (folder / "milestone-01-banner.png").is_file()
    assert "Status: Testing" in (folder / "screen.txt").read_text()  # the last screen, by OCR
