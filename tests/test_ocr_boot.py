"""Screens in graphics modes read by OCR, booted under QEMU/TCG (UEFI).

Under UEFI, GRUB's menu and memtest86+'s header are drawn in a framebuffer:
VGA text memory is empty, and only OCR of the screenshots finds the same
`source: screen` patterns that VGA text satisfies under BIOS. Each boot is
short: the cells end at their last milestone.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image

from harness.config import load_guest
from harness.console import ocr
from harness.console.screen import is_text_mode
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


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_one_grub_menu_pattern_for_vga_text_and_a_framebuffer(store, tmp_path, qemu, firmware):
    """The same screen patterns: VGA text memory under BIOS, OCR under UEFI."""
    r, folder = boot("test-grub-screen", store, tmp_path, firmware)
    assert r.verdict is Verdict.PASS, r.reason
    assert [m.name for m in r.milestones if m.reached] == ["menu", "entry", "grub"]
    log = (folder / "screen.log").read_text()
    graphics = "screen switched to a graphics mode" in log
    assert graphics == (firmware == "uefi")  # under UEFI no VGA text: OCR read it
    assert stamped(log, "GNU GRUB") and stamped(log, "Debian kernel + BusyBox")
    # the menu was on the screen before GRUB said "Booting" on serial
    menu, _, grub = r.milestones
    assert menu.t < grub.t


def test_memtest_header_under_uefi_is_read_by_ocr(store, tmp_path, qemu):
    r, folder = boot("test-memtest-screen", store, tmp_path, "uefi")
    assert r.verdict is Verdict.PASS, r.reason
    log = (folder / "screen.log").read_text()
    assert stamped(log, "Memtest86+ v6")
    with Image.open(folder / "milestone-01-banner.png") as img:  # (the first screenshot
        assert not is_text_mode(img.size)  # may already be memtest's: no "switched" note)
    assert "Status: Testing" in (folder / "screen.txt").read_text()  # the last screen, by OCR
