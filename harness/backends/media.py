"""Per-cell media: the cached image is never written.

A disk or floppy a guest boots from gets a qcow2 overlay in the cell's
folder (`qemu-img create -b BASE -F FORMAT`); writes land there and the
overlay is removed when the cell ends, unless the user keeps it. CD-ROMs,
kernels and initrds are passed read-only as they are.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..model import Cell

WRITABLE = ("disk", "floppy")


class MediaError(Exception):
    pass


def image_format(path: Path) -> str:
    with path.open("rb") as f:
        return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"


def overlay_argv(base: Path, overlay: Path, qemu_img: str = "qemu-img") -> list[str]:
    return [qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base.resolve()),
            "-F", image_format(base), str(overlay)]


def prepare(cell: Cell, images: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Paths for the command line: overlays for writable boot media, the rest as is."""
    boot = cell.guest.boot
    out = dict(images)
    if boot.kind in WRITABLE and boot.image:
        qemu_img = shutil.which("qemu-img")
        if qemu_img is None:
            raise MediaError("qemu-img not found (Debian package qemu-utils)")
        overlay = folder / f"{boot.image}.overlay.qcow2"
        overlay.unlink(missing_ok=True)
        proc = subprocess.run(overlay_argv(images[boot.image], overlay, qemu_img),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise MediaError(f"qemu-img create failed: {proc.stderr.strip()}")
        out[boot.image] = overlay
    return out


def overlays(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.overlay.qcow2"))
