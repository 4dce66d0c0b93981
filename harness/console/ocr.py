"""Screenshots to lines of text, by Tesseract OCR: for screens in a graphics mode.

VGA text memory says nothing once a guest draws in a framebuffer (UEFI
consoles, GRUB's gfxterm, memtest86+ under UEFI, desktops); OCR turns the
screenshot into lines the same matcher reads under `source: screen`. The
binding is `tesserocr` (libtesseract in-process: no process per shot, the
model loaded once per thread); the language data is Debian's
`tesseract-ocr-eng`. Pure but for Tesseract itself: image in, lines out.
"""

from __future__ import annotations

import os
import re
import threading
from functools import cache
from pathlib import Path

from PIL import Image, ImageOps

# where distributions put eng.traineddata (the tesserocr wheel knows none of them)
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata",
                 "/opt/homebrew/share/tessdata", "/usr/pkg/share/tessdata")
LANG = "eng"
SCALE = 2  # VGA-sized glyphs (8x16) are below the x-height Tesseract reads best
_SPACE = re.compile(r"\s+")
_local = threading.local()


class OCRUnavailable(Exception):
    """Tesseract or its English data is missing: why, in words."""


@cache
def tessdata() -> str | None:
    """The folder holding LANG's data: $TESSDATA_PREFIX first, then the usual places."""
    env = os.environ.get("TESSDATA_PREFIX")
    for folder in ([env] if env else []) + list(TESSDATA_DIRS):
        if (Path(folder) / f"{LANG}.traineddata").is_file():
            return folder
    return None


@cache
def unavailable() -> str | None:
    """Why OCR cannot run here, or None when it can."""
    try:
        import tesserocr  # noqa: F401
    except ImportError as exc:
        return (f"OCR needs the tesserocr binding ({exc}); `make venv` installs it, "
                "or pip install tesserocr")
    if tessdata() is None:
        return (f"OCR needs Tesseract's {LANG}.traineddata (Debian: tesseract-ocr-eng) in "
                f"$TESSDATA_PREFIX or one of {', '.join(TESSDATA_DIRS)}")
    return None


def prepare(image: Image.Image, scale: int = SCALE) -> Image.Image:
    """Greyscale, dark text on a light ground (consoles are the other way round),
    upscaled: what Tesseract's models were trained on. No contrast stretching or
    thresholding of our own: Tesseract's Otsu binarisation per region does better
    on screens that mix polarities (memtest86+'s grey title bar on blue)."""
    grey = image.convert("L")
    hist = grey.histogram()
    if sum(hist[:128]) > sum(hist[128:]):  # mostly dark: a console's background
        grey = ImageOps.invert(grey)
    if scale > 1:
        grey = grey.resize((grey.width * scale, grey.height * scale), Image.Resampling.BICUBIC)
    return grey


def normalise(line: str) -> str:
    """One space between words, none at the ends: OCR's spacing is not the screen's."""
    return _SPACE.sub(" ", line).strip()


def _api():  # one engine per thread: libtesseract's objects are not shared between threads
    api = getattr(_local, "api", None)
    if api is None:
        import tesserocr

        # PSM 3 (automatic layout): it finds menus, headers and status lines scattered
        # over a screen, and inverted (highlighted) entries that PSM 11 loses
        api = tesserocr.PyTessBaseAPI(path=tessdata(), lang=LANG, psm=tesserocr.PSM.AUTO)
        _local.api = api
    return api


def read_lines(image: Image.Image) -> list[str]:
    """The screen's text, top to bottom, one normalised line per text line."""
    reason = unavailable()
    if reason is not None:
        raise OCRUnavailable(reason)
    api = _api()
    api.SetImage(prepare(image))
    text = api.GetUTF8Text()
    return [n for n in (normalise(line) for line in text.splitlines()) if n]


class Reader:
    """OCR off the caller's thread: the latest screenshot submitted is read next
    (older unread ones are dropped), so a screen watcher keeps reading the serial
    port and its clock while Tesseract works (~0.3-1 s a screen)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: Image.Image | None = None
        self._result: list[str] | RuntimeError | None = None
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None

    def submit(self, image: Image.Image) -> None:
        with self._cond:
            self._pending = image
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ocr", daemon=True)
                self._thread.start()
            self._cond.notify()

    def take(self) -> list[str] | RuntimeError | None:
        """The newest finished reading (lines, or libtesseract's error), once; None if none."""
        with self._cond:
            result, self._result = self._result, None
            return result

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy or self._pending is not None

    def wait(self, timeout: float) -> bool:
        """Until nothing is pending or being read (tests, the last screen); whether so."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._pending is None,
                                       timeout)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._pending is not None)
                if self._stop:
                    return
                image, self._pending, self._busy = self._pending, None, True
            try:
                result: list[str] | RuntimeError = read_lines(image)
            except (RuntimeError, OCRUnavailable) as exc:
                result = RuntimeError(str(exc))
            with self._cond:
                self._result, self._busy = result, False
                self._cond.notify_all()


def read_file(path: Path) -> list[str]:
    """`read_lines` of a picture on disk (a screenshot given to `harness replay`)."""
    with Image.open(path) as img:
        return read_lines(img.convert("RGB"))
