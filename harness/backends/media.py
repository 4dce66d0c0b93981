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


def copy_start(disk: Path, out: Path, size: int, block: int = 512,
               qemu_img: str = "qemu-img") -> str | None:
    """Copy the first `size` bytes (whole `block`s) of a disk image (qcow2 or raw, as the
    guest sees it) to the raw file `out`; why not, or None."""
    argv = [qemu_img, "dd", "-f", image_format(disk), "-O", "raw", f"bs={block}",
            f"count={size // block}", f"if={disk}", f"of={out}"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0 or not out.is_file():
        return proc.stderr.strip()[-200:] or f"{qemu_img} dd failed"
    return None


def has_boot_sector(disk: Path) -> bool | None:
    """Whether the disk's first sector ends in the PC boot signature 0x55AA (an MBR, or
    GPT's protective MBR): what a BIOS or UEFI disk boot needs. None: it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="gh-mbr-") as tmp:
        out = Path(tmp) / "sector0"
        if copy_start(disk, out, 512) is not None:
            return None
        return out.read_bytes()[510:512] == b"\x55\xaa"
