"""The board a guest needs, read from its guest file: `machine:`, `cpu:` and `drives:`.

Guests that are not PCs name the emulated board's parts themselves (a SmartFusion2
SoM with its SPI flash, RISC-V `virt` with a virtio-mmio disk and no firmware); how
each drive interface becomes QEMU arguments is data, per architecture
(`drives:` in data/arches.yaml), so a new board is a guest file, not code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import knowledge
from .model import Drive, ImageSpec
from .validate import _Bad, _bool, _Checker, _Map, _str, shown

DRIVE_KEYS = ("image", "interface", "readonly")
# a -machine or -cpu value: a name, then name=value properties; no spaces, nothing QEMU's
# option parser would take as a second option
_OPTION = re.compile(r"[A-Za-z0-9_.+-]+(?:,[A-Za-z0-9_.+-]+=[A-Za-z0-9_.+-]+)*")


def _option(what: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        s = _str(v)
        if not _OPTION.fullmatch(s):
            raise _Bad(f"{shown(s)}: expected a QEMU {what} name, optionally followed by "
                       f",prop=value properties (e.g. rv64,pmp=false)")
        return s
    return check


def board(c: _Checker, m: _Map, images: dict[str, ImageSpec],
          arch: str) -> tuple[str | None, str | None, tuple[Drive, ...]]:
    """(machine, cpu, drives) of the guest file `m`, each checked against its arch."""
    machine = m.get("machine", _option("machine"))
    cpu = m.get("cpu", _option("CPU model"))
    interfaces = knowledge.arches()[arch].drives if arch in knowledge.arches() else {}
    drives = []
    for key, line, value in c.items(m, "drives"):
        d = c.mapping(value, key, line)
        if d is None:
            continue
        d.keys(DRIVE_KEYS, ("image", "interface"))
        ref, iface = d.get("image", _str), d.get("interface", _str)
        if ref is not None and ref not in images:
            c.issue(d.line_of("image"), d.path("image"), f"no image named {shown(ref)} in images")
            ref = None
        if iface is not None and iface not in interfaces:
            known = ", ".join(interfaces) or "none"
            c.issue(d.line_of("interface"), d.path("interface"),
                    f"{shown(iface)}: {arch} boards have no such drive interface in "
                    f"arches.yaml (known: {known})")
            iface = None
        if ref is not None and iface is not None:
            drives.append(Drive(ref, iface, d.get("readonly", _bool, False)))
    return machine, cpu, tuple(drives)
