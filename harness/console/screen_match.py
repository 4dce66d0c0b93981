"""Needle and still-screen milestones: screenshots and times in, the milestone reached out.

Pure, beside the VGA-text and image helpers of `screen.py`, so the rules
(similarity thresholds, when stillness starts counting) are tested without
a VM; `watcher.py` does the QMP polling and hands the results to the
tracker. `pending` is always the tracker's screen milestones that may be
reached next, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..model import Milestone
from .screen import is_text_mode, same_screen, similarity

Pending = Sequence[tuple[int, Milestone]]  # (milestone index, milestone)


@dataclass(frozen=True)
class Reached:
    """A screen milestone seen, and why (the event's text)."""

    index: int
    text: str


def in_text_mode(mode: tuple[int, int] | None) -> bool:
    """Until a screenshot says otherwise, a screen is taken to be in a text mode."""
    return mode is None or is_text_mode(mode)


def wants_screenshot(pending: Pending, mode: tuple[int, int] | None,
                     ocr: bool = False) -> bool:
    """A needle is due, or in a graphics mode (where only a screenshot tells
    whether the screen changed) a still screen, or a text pattern when `ocr`
    can read it."""
    text_mode = in_text_mode(mode)
    return any(m.needle is not None
               or (not text_mode and (m.still is not None or (ocr and m.pattern is not None)))
               for _, m in pending)


@dataclass
class ScreenMatcher:
    """When the screen last changed, and since when each still milestone is due."""

    text_changed: float = 0.0  # when the VGA text last changed
    shot_changed: float = 0.0  # when a screenshot last differed (less a still mask)
    armed: dict[int, float] = field(default_factory=dict)  # still milestone -> due since

    def text_seen(self, changed: bool, now: float) -> None:
        if changed:
            self.text_changed = now

    def shot_seen(self, previous: Image.Image | None, shot: Image.Image, pending: Pending,
                  needle_image: Callable[[Path], Image.Image], now: float) -> Reached | None:
        """A new screenshot: the first needle it shows, in order; a still milestone
        whose unmasked screen changed starts counting again."""
        for index, m in pending:
            if m.needle is not None:
                score = similarity(shot, needle_image(m.needle.image), m.needle.x, m.needle.y)
                if score >= m.needle.threshold:
                    return Reached(index, f"needle similarity {score:.3f}")
            elif m.still is not None and (previous is None
                                          or not same_screen(previous, shot, m.still.mask)):
                self.shot_changed = now
        return None

    def still(self, pending: Pending, now: float,
              mode: tuple[int, int] | None) -> Reached | None:
        """A still milestone: in a text mode the text must not change (a screenshot
        would see the cursor blink); in a graphics mode the screenshot, less its mask.
        Stillness counts from when the milestone became due."""
        text_mode = in_text_mode(mode)
        for index, m in pending:
            if m.still is None:
                continue
            armed = self.armed.setdefault(index, now)
            since = max(armed, self.text_changed if text_mode else self.shot_changed)
            if now - since >= m.still.seconds:
                return Reached(index, f"screen unchanged for {m.still.seconds:g} s")
        return None
