"""VMMs other than QEMU: one launch description, one module per VMM.

Each VMM module turns a cell into a `VmmLaunch`: files to write (its
configuration), commands to run before the VM (`setup`), the command whose
terminal is the guest's serial console (`argv`, run on a pty like QEMU),
and commands that always run afterwards (`teardown`: destroy the VM,
unregister it). Everything is an argv list, never a shell string, so the
commands can be compared in tests with what each tool accepts. `why_not`
says, before any image is fetched, what a VMM cannot do for a cell.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import knowledge
from ..model import Cell


@dataclass(frozen=True)
class VmmLaunch:
    argv: list[str]  # its terminal is the guest's serial console
    files: dict[Path, str] = field(default_factory=dict)  # written first
    setup: list[list[str]] = field(default_factory=list)  # each must succeed, in order
    teardown: list[list[str]] = field(default_factory=list)  # always run, errors ignored
    firmware_files: tuple[Path, ...] = ()
    vars_template: Path | None = None  # copied to the cell's vars file before setup
    name: str = ""  # the VM's name in the VMM's own registry


def vm_name(cell: Cell, folder: Path) -> str:
    """A name unique per cell folder and short enough for every VMM (bhyve: 31)."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10]
    return f"gh-{cell.guest.id[:16]}-{digest}"


Builder = Callable[[Cell, dict[str, Path], Path], VmmLaunch]


def _modules() -> dict[str, tuple[Callable[[Cell], str | None], Builder]]:
    from . import bhyve, bochs, vbox, vmd, xl

    return {"bochs": (bochs.why_not, bochs.build_launch), "vmd": (vmd.why_not, vmd.build_launch),
            "bhyve": (bhyve.why_not, bhyve.build_launch), "xen": (xl.why_not, xl.build_launch),
            "virtualbox": (vbox.why_not, vbox.build_launch)}


def is_vmm(backend: str) -> bool:
    return knowledge.backends()[backend].kind != "qemu"


def why_not(cell: Cell) -> str | None:
    """What this cell asks that its (non-QEMU) VMM cannot do, or None."""
    if not is_vmm(cell.backend):
        return None
    kind = knowledge.backends()[cell.backend].kind
    if cell.guest.uses_screen:
        return (f"{cell.backend} has no monitor the harness can read the screen or type keys "
                f"through: serial-console guests only")
    return _modules()[kind][0](cell)


def build_launch(cell: Cell, images: dict[str, Path], folder: Path) -> VmmLaunch:
    kind = knowledge.backends()[cell.backend].kind
    return _modules()[kind][1](cell, images, folder)


def boot_media(cell: Cell, images: dict[str, Path]) -> tuple[str, Path]:
    """(kind, path) of a media-boot guest: cdrom, disk or floppy."""
    boot = cell.guest.boot
    assert boot.image is not None, "media boots only"
    return boot.kind, images[boot.image]
