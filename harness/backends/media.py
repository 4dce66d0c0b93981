"""Per-cell media: the cached image is never written.

A disk or floppy a guest boots from gets a qcow2 overlay in the cell's
folder (`qemu-img create -b BASE -F FORMAT`); writes land there and the
overlay is removed when the cell ends, unless the user keeps it. CD-ROMs,
kernels and initrds are passed read-only as they are. The backends make
the overlays (as setup commands); these are the shared pieces.
"""

from __future__ import annotations

import subprocess
import tempfile
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


def overlay_path(folder: Path, image: str) -> Path:
    """The per-cell overlay of image `image` (a later stage boots the same file)."""
    return folder / f"{image}.overlay.qcow2"


def overlays(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.overlay.qcow2"))


def has_boot_sector(disk: Path, qemu_img: str = "qemu-img") -> bool | None:
    """Whether the disk's first sector ends in the PC boot signature 0x55AA (an MBR, or
    GPT's protective MBR): what a BIOS or UEFI disk boot needs. None: it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="gh-mbr-") as tmp:
        out = Path(tmp) / "sector0"
        try:
            proc = subprocess.run([qemu_img, "dd", "-f", image_format(disk), "-O", "raw",
                                   "bs=512", "count=1", f"if={disk}", f"of={out}"],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0 or not out.is_file():
            return None
        return out.read_bytes()[510:512] == b"\x55\xaa"
