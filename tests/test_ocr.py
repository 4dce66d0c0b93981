"""OCR of graphics-mode screens, on real screenshots (tests/data/screens), no VM.

The screenshots were taken by the harness from guests booted here under
QEMU/TCG: GRUB 2.06's menu and memtest86+ 6.10 under OVMF (1280x800 and
640x480 framebuffers), KolibriOS's 800x600 desktop, and syslinux's
vesamenu.c32 over Debian's splash (640x480) in a PXE boot of the netboot tree. They are read by
the same code the screen watcher runs, and checked against the same guest
patterns a live run uses.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from harness import cli
from harness.config import load_guest
from harness.console import ocr
from harness.console.screen import new_lines
from harness.console.screen_match import wants_screenshot
from harness.console.tracker import BootTracker
from harness.console.transcript import Transcript
from harness.console.watcher import ScreenWatcher
from harness.model import Timeouts
from harness.transcripts import replay

from .conftest import GUESTS, ROOT, TEST_GUESTS

SCREENS = Path(__file__).resolve().parent / "data" / "screens"
needs_ocr = pytest.mark.skipif(ocr.unavailable() is not None, reason=ocr.unavailable() or "")


def lines(name: str) -> list[str]:
    return ocr.read_file(SCREENS / name)


def screen_text(name: str) -> bytes:
    return "".join(f"{line}\n" for line in lines(name)).encode()


# --- pure parts ---------------------------------------------------------------

def test_whitespace_is_normalised():
    assert ocr.normalise("  GNU GRUB \t version  2.06 ") == "GNU GRUB version 2.06"
    assert ocr.normalise(" \t ") == ""


def test_dark_screens_are_inverted_and_upscaled():
    dark = Image.new("RGB", (40, 20), (0, 0, 0))
    dark.paste((200, 200, 200), (5, 5, 15, 10))  # a light "glyph"
    out = ocr.prepare(dark, scale=3)
    assert out.size == (120, 60) and out.mode == "L"
    assert out.getpixel((0, 0)) == 255 and out.getpixel((30, 21)) < 100  # dark text, light ground
    light = Image.new("RGB", (40, 20), (230, 230, 230))
    assert ocr.prepare(light, scale=1).getpixel((0, 0)) == 230  # kept as it is


def test_screenshots_are_wanted_for_text_patterns_only_in_graphics_modes_with_ocr():
    guest = load_guest(TEST_GUESTS / "test-grub-screen.yaml")
    pending = [(0, guest.milestones[0])]
    assert wants_screenshot(pending, (1280, 800), ocr=True)
    assert not wants_screenshot(pending, (1280, 800), ocr=False)  # nothing could read it
    assert not wants_screenshot(pending, (720, 400), ocr=True)  # VGA text reads it
    assert not wants_screenshot(pending, None, ocr=True)  # a text mode until shown otherwise


# --- real screenshots -----------------------------------------------------------

@needs_ocr
def test_grub_menu_in_a_framebuffer_passes_the_guest_screen_patterns():
    text = lines("grub-uefi-menu.png")
    assert "Debian kernel + BusyBox" in text  # the highlighted (inverted) entry too
    guest = load_guest(TEST_GUESTS / "test-grub-screen.yaml")
    r = replay(guest, screen_text("grub-uefi-menu.png"), source="screen")
    assert r.reached == ["menu", "entry"] and r.ok


@needs_ocr
def test_memtest_text_split_by_a_changing_clock_and_progress_bar():
    """Between the two shots the clock, the progress bars and the test name change:
    the lines that hold them are new lines again, and a pattern across the clock
    (which is whitespace-normalised) matches both."""
    early, late = lines("memtest-uefi-0s.png"), lines("memtest-uefi-53s.png")
    status = re.compile(r"SMP: Disabled Time: \S+ Status: Testing")
    for shot in (early, late):
        assert shot[0].startswith("Memtest86+ v6.10")  # the grey title bar on blue
        assert any(status.search(line) for line in shot), shot
    fresh = new_lines(early, late)
    assert any(status.search(line) for line in fresh)  # the clock moved: the line is new
    assert not any(line.startswith("Memtest86+ v6.10") for line in fresh)  # unchanged: not
    guest = load_guest(TEST_GUESTS / "test-memtest-screen.yaml")
    assert replay(guest, screen_text("memtest-uefi-53s.png"), source="screen").ok


@needs_ocr
def test_kolibrios_desktop_captions_are_read():
    guest = load_guest(GUESTS / "kolibrios-0.7.7.yaml")
    r = replay(guest, screen_text("kolibrios-desktop.png"), ["desktop-text"], source="screen")
    assert r.reached == ["desktop-text"]
    assert not replay(guest, screen_text("grub-uefi-menu.png"), ["desktop-text"],
                      source="screen").reached


@needs_ocr
def test_syslinux_vesamenu_over_a_splash_is_read():
    """The PXE menu of Debian's netboot tree: white text over a picture."""
    guest = load_guest(GUESTS / "debian-installer-12-amd64-pxe.yaml")
    text = screen_text("debian-pxe-vesamenu.png")
    assert b"Advanced options" in text
    r = replay(guest, text, ["menu"], source="screen")
    assert r.reached == ["menu"]


# --- the watcher's wiring, without a VM -----------------------------------------------

def watcher(tmp_path: Path) -> tuple[ScreenWatcher, Transcript]:
    guest = load_guest(TEST_GUESTS / "test-grub-screen.yaml")
    tracker = BootTracker(guest.milestones, [], Timeouts(), start=0.0)
    log = Transcript(tmp_path, name="screen", raw=False)
    return ScreenWatcher(tmp_path / "no-qmp.sock", tmp_path, tmp_path, tracker, log), log


@needs_ocr
def test_a_changed_graphics_screen_is_read_once_and_fed_as_screen_text(tmp_path):
    w, log = watcher(tmp_path)
    with Image.open(SCREENS / "grub-uefi-menu.png") as img:
        shot = img.convert("RGB")
    assert w._read_shot(shot, 7.0) == [] and w.ocr_calls == 1  # read in OCR's thread
    assert w.reader.wait(30)
    events = w._read_shot(shot.copy(), 7.5)  # unchanged: not read again, the reading taken
    assert [e.name for e in events] == ["menu", "entry"] and w.ocr_calls == 1
    assert w._read_shot(shot.copy(), 8.0) == [] and w.ocr_calls == 1  # taken once
    text_mode = Image.new("RGB", (720, 400))
    assert w._read_shot(text_mode, 8.5) == [] and w.ocr_calls == 1  # VGA text's job
    w.close()
    log.close()
    written = (tmp_path / "screen.log").read_text()
    assert re.search(r"^\[ +7\.500\] GNU GRUB version 2\.06", written, re.M), written


def test_without_tesseract_a_graphics_screen_is_noted_once(tmp_path, monkeypatch):
    reason = "OCR needs the tesserocr binding (test)"
    monkeypatch.setattr(ocr, "unavailable", lambda: reason)
    w, log = watcher(tmp_path)
    shot = Image.new("RGB", (640, 480), (0, 0, 170))
    assert w._read_shot(shot, 1.0) == [] and w._read_shot(shot, 2.0) == []
    assert w.ocr_calls == 0
    log.close()
    written = (tmp_path / "screen.log").read_text()
    assert written.count(reason) == 1 and "graphics mode" in written


# --- harness replay with a screenshot ---------------------------------------------

def harness_replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "replay", "--guests",
                           str(TEST_GUESTS), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


@needs_ocr
def test_replay_reads_a_screenshot():
    ok = harness_replay("test-grub-screen", str(SCREENS / "grub-uefi-menu.png"))
    assert ok.returncode == 0, ok.stderr
    assert re.search(r"found +menu", ok.stdout) and re.search(r"found +entry", ok.stdout)
    assert "grub" not in ok.stdout.split("ok for")[0].split()  # the serial milestone is not
    missing = harness_replay("test-grub-screen", str(SCREENS / "kolibrios-desktop.png"))
    assert missing.returncode == 1 and re.search(r"MISSING +menu", missing.stdout)


def test_replay_screenshot_errors_are_usage_errors(tmp_path, monkeypatch, capsys):
    png = SCREENS / "grub-uefi-menu.png"
    serial = harness_replay("test-grub-screen", str(png), "--source", "serial")
    assert serial.returncode == 2 and "--source: a screenshot is the screen" in serial.stderr
    broken = tmp_path / "cut.png"
    broken.write_bytes(png.read_bytes()[:100])
    if ocr.unavailable() is None:
        r = harness_replay("test-grub-screen", str(broken))
        assert r.returncode == 2 and "not a readable PNG" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    monkeypatch.setattr(ocr, "unavailable", lambda: "OCR needs the tesserocr binding (test)")
    code = cli.main(["replay", "--guests", str(TEST_GUESTS), "--matrix",
                     str(ROOT / "matrix.yaml"), "test-grub-screen", str(png)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot read a screenshot here: OCR needs the tesserocr" in err
