"""GXemul: a command line built from a cell.

Pure, like the others. GXemul emulates whole machines of several
architectures; the machine is a type (`-E`) and, for families, a subtype
(`-e`) from data/machines.yaml (`testmips`; `dec` `3max` for NetBSD/pmax,
`hpcmips` `mobilepro880`, `evbmips` `malta`, `landisk`). A kernel is its last
argument (ELF, loaded by GXemul itself; `cmdline` goes to `-o`); disks and
CD-ROMs are `-d` with the `R` prefix: GXemul opens the file read-only and
keeps the guest's writes in a temporary overlay, so the cached image is never
written. Without X11 or `-x` the first serial port (testmips: its console
device at physical 0x10000000) is GXemul's stdio, which the harness reads. A
guest that writes the testmips halt register (0x10000010) ends GXemul; else
Ctrl-C enters GXemul's debugger, whose `quit` ends it, then signals.
"""

from __future__ import annotations

from pathlib import Path

from .. import knowledge
from ..model import Cell, MachineInfo
from .base import Launch, LaunchContext, LaunchError

STOP_KEYS = (b"\x03", b"quit\r")  # Ctrl-C: GXemul's debugger prompt; then quit
# -d prefixes (gxemul -h): b boot device, c CD-ROM, d disk, f floppy; R read-only
# with a temporary overlay for the guest's writes
_DISK_PREFIX = {"cdrom": "c", "disk": "d", "floppy": "f"}


def machine(cell: Cell) -> MachineInfo | None:
    return knowledge.machine_for("gxemul", cell.guest)


def why_not(cell: Cell) -> str | None:
    """Why GXemul cannot run `cell` at all (checked before any image is fetched)."""
    g = cell.guest
    if machine(cell) is None:
        return f"gxemul has no machine for {g.arch} guests (data/machines.yaml)"
    if cell.firmware != "bios":
        return "gxemul machines have no UEFI firmware"
    if g.boot.kind not in ("kernel", "disk", "cdrom", "floppy"):
        return f"gxemul boots a kernel, disk, cdrom or floppy, not a {g.boot.kind}"
    if g.boot.initrd or g.boot.modules:
        return "gxemul loads a kernel without an initrd or modules"
    if g.boot.bios:
        return "gxemul emulates its machines' firmware itself (no bios image)"
    return None


def argv(cell: Cell, images: dict[str, Path]) -> list[str]:
    """GXemul's command line for `cell`."""
    why = why_not(cell)
    if why:
        raise LaunchError(why)
    g, m = cell.guest, machine(cell)
    assert m is not None
    out = ["gxemul", "-q", "-E", m.type, *(["-e", m.subtype] if m.subtype else []),
           *(["-C", m.cpu] if m.cpu else []), "-M", str(cell.memory_mb)]
    if g.boot.kind == "kernel":
        if g.boot.cdrom:
            out += ["-d", f"cR:{images[g.boot.cdrom]}"]
        if g.boot.cmdline:
            out += ["-o", g.boot.cmdline]
        kernel = g.boot.kernel_for(cell.firmware)
        assert kernel is not None
        return [*out, str(images[kernel])]
    assert g.boot.image is not None
    return [*out, "-d", f"b{_DISK_PREFIX[g.boot.kind]}R:{images[g.boot.image]}"]


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    return Launch(argv(cell, images), stop_keys=STOP_KEYS)

