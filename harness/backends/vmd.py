"""OpenBSD vmd(8) through vmctl(8): a cell as `vmctl start` arguments.

vmd boots with SeaBIOS (no UEFI), an ISO as `-r`, disks as `-d` (raw or
qcow2; a qcow2 overlay made with `vmctl create -b` keeps the image
unwritten), and kernels as `-b` only when they are ELF kernels it can load
itself (OpenBSD's bsd); it has no floppy. `-c` makes vmctl attach the
console (through cu(1)) in the terminal it runs in, which is the harness's
pty. `vmctl stop -f` ends the VM whatever state it is in.
"""

from __future__ import annotations

from pathlib import Path

from ..model import Cell
from .base import Launch, LaunchContext, boot_media, vm_name
from .media import image_format


def why_not(cell: Cell) -> str | None:
    g = cell.guest
    if cell.firmware != "bios":
        return "vmd boots guests with SeaBIOS only (no UEFI)"
    if g.boot.bios:
        return "vmd runs its own SeaBIOS only"
    if g.boot.kind == "floppy":
        return "vmd has no floppy drive"
    if g.boot.kind == "kernel" and (g.boot.initrd or g.boot.modules or g.os != "openbsd"):
        return ("vmd loads ELF kernels without an initrd (OpenBSD's bsd); boot this guest "
                "from a cdrom or disk image")
    return None


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    folder = ctx.folder
    name = vm_name(cell, folder)
    argv = ["vmctl", "start", "-c", "-m", f"{cell.memory_mb}M"]
    setup: list[list[str]] = []
    if cell.guest.boot.kind == "kernel":
        kernel = cell.guest.boot.kernel_for(cell.firmware)
        assert kernel is not None
        argv += ["-b", str(images[kernel])]
    else:
        kind, media = boot_media(cell, images)
        if kind == "cdrom":
            argv += ["-r", str(media), "-B", "cdrom"]
        else:
            disk = media
            if media.exists() and image_format(media) == "qcow2":
                disk = folder / "disk.overlay.qcow2"
                setup.append(["vmctl", "create", "-b", str(media), str(disk)])
            argv += ["-d", str(disk), "-B", "disk"]
    argv.append(name)
    return Launch(argv, setup=setup, teardown=[["vmctl", "stop", "-f", name]], name=name)
