"""Watching a VM's screen over QMP: VGA text, screenshots, needles, keys.

Every poll reads the whole VGA text window (`pmemsave`, under a
millisecond) and hands the lines not seen before to the tracker as the
"screen" source, so screen milestones are patterns like serial ones. The
interval adapts: 0.1 s while the screen changes, up to 0.5 s when it is
still. Screenshots (`screendump`) are taken when a needle or still-screen
milestone is due, and every few seconds to notice a switch to a graphics
mode. In a graphics mode, screenshots are taken every poll while a screen
pattern is due and read by OCR (`ocr.py`) when they changed: the new lines
go to the tracker as "screen" text like VGA rows, so one pattern serves both.
Keys are typed with `send-key`. Only the I/O is here: what a screenshot or a
still screen means is decided in `screen_match.py`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from PIL import Image

from ..backends.qmp import QMP, QMPError
from . import ocr
from .keys import combo, combos_for_text
from .matcher import Event
from .screen import (
    VGA_TEXT_BASE,
    VGA_TEXT_SIZE,
    is_text_mode,
    new_lines,
    same_screen,
    vga_rows,
    visible_text,
)
from .screen_match import Reached, ScreenMatcher, wants_screenshot
from .tracker import BootTracker
from .transcript import Transcript

FAST, SLOW = 0.1, 0.5  # seconds between polls while the screen changes / is still
SHOT_EVERY = 2.0  # seconds between screenshots kept for mode detection
KEY_GAP = 0.02  # seconds between typed keys


class ScreenWatcher:
    def __init__(self, qmp_socket: Path | str, workdir: Path, folder: Path, tracker: BootTracker,
                 transcript: Transcript | None = None, slow: float = SLOW,
                 fast: float = FAST) -> None:
        self.qmp = QMP(qmp_socket, timeout=5.0)
        self.workdir = workdir  # short paths for QEMU to write into
        self.folder = folder  # the cell folder, for artefacts
        self.tracker = tracker
        self.transcript = transcript
        self.slow, self.fast = slow, fast
        self.interval = fast
        self.next_poll = 0.0
        self.rows: list[str] = []
        self.shot: Image.Image | None = None
        self.shot_at = -1e9
        self.mode: tuple[int, int] | None = None
        self.ocr_rows: list[str] = []  # the last screenshot's text, in a graphics mode
        self.final_rows: list[str] = []  # the screen as the cell ended (save_final)
        self.ocr_shot: Image.Image | None = None  # the last screenshot handed to OCR
        self.reader = ocr.Reader()  # OCR in its own thread: serial keeps being read
        self.ocr_off: str | None = None  # why OCR cannot run (noted once)
        self.ocr_calls = 0
        self.match = ScreenMatcher()  # needles and still screens, pure
        self.polls = 0
        self.connected = False
        self._needles: dict[Path, Image.Image] = {}

    def connect(self, wait: float = 10.0) -> None:
        self.qmp.connect(wait=wait)
        self.connected = True

    def close(self) -> None:
        self.reader.close()
        self.qmp.close()
        self.connected = False

    # --- polling ------------------------------------------------------------

    def due(self, now: float) -> bool:
        return self.connected and now >= self.next_poll

    def poll(self, now: float) -> list[Event]:
        """Read the screen once; the tracker's events for what it showed."""
        self.polls += 1
        events = self._poll_text(now)
        if (wants_screenshot(self.tracker.pending_screen_milestones(), self.mode,
                             ocr.unavailable() is None)
                or now - self.shot_at >= SHOT_EVERY):
            events += self._poll_shot(now)
        still = self.match.still(self.tracker.pending_screen_milestones(), now, self.mode)
        events += self._reach(still, now)
        self.next_poll = now + self.interval
        return events

    def _reach(self, reached: Reached | None, now: float) -> list[Event]:
        return [] if reached is None else self.tracker.reach(reached.index, now, reached.text)

    def _poll_text(self, now: float) -> list[Event]:
        dump = self.workdir / "vga.bin"
        self.qmp.command("pmemsave", val=VGA_TEXT_BASE, size=VGA_TEXT_SIZE, filename=str(dump))
        rows = vga_rows(dump.read_bytes())
        fresh = new_lines(self.rows, rows)
        changed = rows != self.rows
        self.rows = rows
        self.match.text_seen(changed, now)
        self.interval = self.fast if changed else min(self.slow, self.interval * 2)
        if not fresh:
            if changed:
                self.tracker.activity(now)
            return []
        text = "\n".join(fresh) + "\n"
        if self.transcript is not None:
            self.transcript.write(b"", text, now - self.tracker.start)
        return self.tracker.feed(text.encode(), now, source="screen")

    def screenshot(self) -> Image.Image:
        path = self.workdir / "shot.ppm"
        self.qmp.command("screendump", filename=str(path))
        with Image.open(path) as img:
            return img.convert("RGB")

    def _poll_shot(self, now: float) -> list[Event]:
        shot = self.screenshot()
        if shot.size != self.mode:
            if self.mode is not None and self.transcript is not None:
                kind = "text" if is_text_mode(shot.size) else "graphics"
                self.transcript.note(now - self.tracker.start,
                                     f"screen switched to a {kind} mode, "
                                     f"{shot.size[0]}x{shot.size[1]}")
            self.mode = shot.size
        previous, self.shot, self.shot_at = self.shot, shot, now
        if previous is not None and not same_screen(previous, shot):
            self.tracker.activity(now)
        reached = self.match.shot_seen(previous, shot, self.tracker.pending_screen_milestones(),
                                       self._needle, now)
        return self._reach(reached, now) + self._read_shot(shot, now)

    def _read_shot(self, shot: Image.Image, now: float) -> list[Event]:
        """Hand a changed graphics-mode screenshot to OCR; the new lines of the last
        one read, fed as screen text."""
        if is_text_mode(shot.size) or not self._ocr_wanted(now):
            return []
        if self.ocr_shot is None or not same_screen(self.ocr_shot, shot):
            self.ocr_calls += 1
            self.ocr_shot = shot
            self.reader.submit(shot)
        if self.reader.busy:
            self.interval = self.fast  # a reading is due: collect it soon
        return self._ocr_read(now)

    def _ocr_read(self, now: float) -> list[Event]:
        result = self.reader.take()
        if result is None:
            return []
        if isinstance(result, RuntimeError):  # libtesseract's own failure: this shot is lost
            if self.transcript is not None:
                self.transcript.note(now - self.tracker.start, f"OCR failed: {result}")
            return []
        fresh = new_lines(self.ocr_rows, result)
        self.ocr_rows = result
        if not fresh:
            return []
        self.interval = self.fast  # the screen is changing: look again soon
        text = "\n".join(fresh) + "\n"
        if self.transcript is not None:
            self.transcript.write(b"", text, now - self.tracker.start)
        return self.tracker.feed(text.encode(), now, source="screen")

    def _ocr_wanted(self, now: float) -> bool:
        """A screen pattern may come next, and OCR works here (noted once when not)."""
        if not any(m.pattern is not None for _, m in self.tracker.pending_screen_milestones()):
            return False
        reason = ocr.unavailable()
        if reason is not None and self.ocr_off is None:
            self.ocr_off = reason
            if self.transcript is not None:
                self.transcript.note(now - self.tracker.start,
                                     f"the screen is in a graphics mode; {reason}")
        return reason is None

    def _needle(self, path: Path) -> Image.Image:
        if path not in self._needles:
            with Image.open(path) as img:
                self._needles[path] = img.convert("RGB")
        return self._needles[path]

    # --- keys ---------------------------------------------------------------

    def type_text(self, text: str) -> None:
        self._press(combos_for_text(text))

    def press(self, names: tuple[str, ...]) -> None:
        self._press([combo(n) for n in names])

    def _press(self, combos: list[list[str]]) -> None:
        for keys in combos:
            self.qmp.command("send-key", keys=[{"type": "qcode", "data": k} for k in keys])
            time.sleep(KEY_GAP)

    # --- artefacts ----------------------------------------------------------

    def save_screenshot(self, name: str) -> str | None:
        """A PNG of the screen now, in the cell folder; its file name."""
        try:
            shot = self.screenshot()
        except (QMPError, OSError):
            return None
        path = self.folder / f"{name}.png"
        shot.save(path, "PNG")
        return path.name

    def text(self) -> str:
        """The last screen as text (what screen.txt holds): for a cell's reason. In a
        graphics mode that is OCR's reading (save_final's, else the last one taken)."""
        graphics = self.mode is not None and not is_text_mode(self.mode)
        rows = (self.final_rows or self.ocr_rows) if graphics else self.rows
        return visible_text(rows) if rows else ""

    def save_final(self) -> dict[str, str]:
        """screen.txt and screen.png: the screen as the cell ended (in a graphics
        mode, its text by OCR)."""
        out = {}
        with contextlib.suppress(QMPError, OSError):
            self._poll_text(time.monotonic())
        rows = self.rows
        if self.mode is not None and not is_text_mode(self.mode) and ocr.unavailable() is None:
            with contextlib.suppress(QMPError, OSError, RuntimeError, ocr.OCRUnavailable):
                rows = ocr.read_lines(self.screenshot())
        self.final_rows = rows
        if rows:
            (self.folder / "screen.txt").write_text(visible_text(rows))
            out["screen_text"] = "screen.txt"
        if self.save_screenshot("screen"):
            out["screen"] = "screen.png"
        return out
