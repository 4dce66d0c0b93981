"""Per-cell media: the cached image is never written.

A disk or floppy a guest boots from gets a qcow2 overlay in the cell's
folder (`qemu-img create -b BASE -F FORMAT`); writes land there and the
overlay is removed when the cell ends, unless the user keeps it. CD-ROMs,
kernels and initrds are passed read-only as they are. The backends make
the overlays (as setup commands); these are the shared pieces.
"""

from __future__ import annotations

from pathlib import Path

WRITABLE = ("disk", "floppy")


def image_format(path: Path) -> str:
    with path.open("rb") as f:
        return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"


def overlay_argv(base: Path, overlay: Path, qemu_img: str = "qemu-img") -> list[str]:
    """`qemu-img create` of a qcow2 overlay over `base` (which is never written)."""
    fmt = image_format(base) if base.exists() else "raw"
    return [qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base.resolve()),
            "-F", fmt, str(overlay)]


def overlays(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.overlay.qcow2"))
