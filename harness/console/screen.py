"""The screen as data: VGA text memory to lines, screenshots to comparisons.

Pure functions over bytes and images, so they are tested without a VM; the
live polling is in `watcher.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageStat

VGA_TEXT_BASE = 0xB8000
VGA_TEXT_SIZE = 32 * 1024  # the whole window: consoles scroll by moving the display start
# text modes as QEMU's VGA renders them (columns x 8 or 9 pixels, rows x 8, 14 or 16)
TEXT_MODE_SIZES = frozenset({(720, 400), (640, 400), (720, 350), (640, 350), (720, 200),
                             (640, 200), (360, 400), (320, 200)})
_CONTROL = str.maketrans({i: " " for i in range(32)} | {0x7F: " "})


def vga_rows(buf: bytes, cols: int = 80) -> list[str]:
    """Character bytes (every other byte; attributes skipped) as rows of text."""
    text = buf[0::2].decode("cp437").translate(_CONTROL)
    return [text[i:i + cols].rstrip() for i in range(0, len(text), cols)]


def new_lines(previous: Sequence[str], current: Sequence[str]) -> list[str]:
    """Non-blank rows of `current` that `previous` did not have (as a multiset), in order.

    A screen that scrolls shows old rows at new places: only what is new is
    returned, so each line of text reaches the matcher once.
    """
    seen = Counter(r for r in previous if r)
    out = []
    for row in current:
        if not row:
            continue
        if seen[row] > 0:
            seen[row] -= 1
        else:
            out.append(row)
    return out


def visible_text(rows: Sequence[str]) -> str:
    """The rows that hold text, with trailing blank rows dropped."""
    last = max((i for i, r in enumerate(rows) if r), default=-1)
    return "\n".join(rows[: last + 1]) + ("\n" if last >= 0 else "")


def is_text_mode(size: tuple[int, int]) -> bool:
    return size in TEXT_MODE_SIZES


def similarity(screen: Image.Image, needle: Image.Image, x: int, y: int) -> float:
    """1 - mean absolute difference / 255 of the needle against the screen at (x, y)."""
    w, h = needle.size
    if x + w > screen.width or y + h > screen.height:
        return 0.0
    region = screen.crop((x, y, x + w, y + h)).convert("RGB")
    diff = ImageChops.difference(region, needle.convert("RGB"))
    means = ImageStat.Stat(diff).mean
    return 1.0 - sum(means) / len(means) / 255.0


def masked(image: Image.Image, mask: Sequence[tuple[int, int, int, int]]) -> Image.Image:
    out = image.convert("RGB")
    if mask:
        out = out.copy()
        for x, y, w, h in mask:
            out.paste((0, 0, 0), (x, y, x + w, y + h))
    return out


def same_screen(a: Image.Image, b: Image.Image,
                mask: Sequence[tuple[int, int, int, int]] = ()) -> bool:
    if a.size != b.size:
        return False
    return ImageChops.difference(masked(a, mask), masked(b, mask)).getbbox() is None


def cut_needle(screenshot: str, x: int, y: int, w: int, h: int, out: str) -> tuple[int, int]:
    """Save the (x, y, w, h) region of a screenshot as a needle PNG; its size."""
    with Image.open(screenshot) as img:
        if x + w > img.width or y + h > img.height:
            raise ValueError(f"the region {x},{y} {w}x{h} leaves the {img.width}x{img.height} "
                             "screenshot")
        region = img.convert("RGB").crop((x, y, x + w, y + h))
    region.save(out, "PNG")
    return region.size
