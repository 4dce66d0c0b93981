"""SIMH: a simulator ini and command line built from a cell.

Pure, like the others: nothing is started here. SIMH (the Computer History
Simulation Project) has one simulator binary per machine (`pdp11`, `vax`,
`vax780`: data/machines.yaml); it reads commands from the ini file named on
its command line, and its console is the terminal it runs on (stdio), which
the harness reads like QEMU's serial port. The ini is written from the guest
file: the machine's ROM (`load -r`, a `boot: {bios: …}` guest), the guest's
`simh: ini:` lines, its images attached to their units (`simh: attach:`), always
per-cell copies so the cached image is never written (or the cached file with
`attach -r` for the `simh: readonly:` units: a CD-ROM), and `boot DEVICE`.

A TCP port the ini opens (`attach dci 1106`: the DC11 terminal lines) is
rewritten to a port free now, so cells of one guest run side by side. A
simulator is stopped by its escape character (Ctrl-E) and `quit`, so it
closes its attached files itself and exits 0; SIGTERM (then SIGKILL) follows
only if it is still running.
Facts of Debian 12's simh 3.8.1: with no ini argument it runs `<name>.ini` of
the current folder, and at the end of its standard input it prints `sim> `
forever, so the probe gives it a command file that ends in `quit`.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .. import knowledge
from ..model import BackendInfo, Cell, MachineInfo
from .addresses import free_port
from .base import Launch, LaunchContext, LaunchError
from .hostcheck import REAL as REAL_IO
from .probe import AVAILABLE, MISSING, HostFacts, HostIO, Probe

ESCAPE = b"\x05"  # SIMH's default WRU character: stop the simulation, back to sim>
STOP_KEYS = (ESCAPE, b"quit\r")
# `attach [-switches] UNIT PORT`: a terminal multiplexer listening on TCP PORT
_PORT_LINE = re.compile(r"^(\s*att(?:ach)?\s+(?:-\S+\s+)*\S+\s+)(\d{1,5})(\s*)$", re.I)
_VERSION = re.compile(r"simulator V(\S+)")


def machine(cell: Cell) -> MachineInfo | None:
    return knowledge.machine_for("simh", cell.guest)


def why_not(cell: Cell) -> str | None:
    """Why SIMH cannot run `cell` at all (checked before any image is fetched)."""
    g = cell.guest
    m = machine(cell)
    if m is None:
        return f"simh has no simulator for {g.arch} guests (data/machines.yaml)"
    if cell.firmware != "bios":
        return "simh machines have no UEFI firmware"
    if g.boot.kind not in ("disk", "firmware"):
        return ("simh boots a disk attached to a unit (simh: attach:) or the machine's ROM "
                f"(boot: {{bios: …}}), not a {g.boot.kind}")
    if g.boot.kind == "disk" and g.boot.image not in (g.simh.attach.values() if g.simh else ()):
        return "simh needs the boot disk attached to a unit: simh: {attach: {UNIT: IMAGE}}"
    if g.memory_set and m.max_mb is not None and g.memory_mb > m.max_mb:
        return f"the {m.description} takes at most {m.max_mb} MiB; this guest asks {g.memory_mb}"
    return None


def boot_device(cell: Cell) -> str:
    """`boot`'s device: the guest's `simh: boot:`, else the unit its boot disk is
    attached to, else `cpu` (a machine booting its ROM)."""
    g = cell.guest
    if g.simh is not None and g.simh.boot:
        return g.simh.boot
    units = [u for u, ref in (g.simh.attach.items() if g.simh else ()) if ref == g.boot.image]
    return units[0] if g.boot.kind == "disk" and units else "cpu"


def free_ports(line: str, pick: Any = free_port) -> str:
    """`line` with the TCP port it attaches a multiplexer to replaced by a free one."""
    m = _PORT_LINE.match(line)
    return f"{m.group(1)}{pick()}{m.group(3)}" if m else line


def ini(cell: Cell, images: dict[str, Path], copies: dict[str, Path],
        pick: Any = free_port) -> str:
    """The simulator's command file for `cell`; `copies`: unit -> its disk copy."""
    why = why_not(cell)
    if why:
        raise LaunchError(why)
    g, m = cell.guest, machine(cell)
    assert m is not None
    lines = [f"; guest-harness: {cell.id}"]
    if g.boot.kind == "firmware":
        assert g.boot.bios is not None
        lines.append(f"load -r {_path(images[g.boot.bios])}")
    if g.memory_set and m.memory:
        lines.append(m.memory.format(mb=g.memory_mb))
    lines += [free_ports(x, pick) for x in (g.simh.ini if g.simh else ())]
    readonly = g.simh.readonly if g.simh else ()
    lines += [f"attach -r {unit} {_path(images[ref])}" for unit, ref in
              (g.simh.attach.items() if g.simh else ()) if unit in readonly]
    lines += [f"attach {unit} {_path(copy)}" for unit, copy in copies.items()]
    lines.append(f"boot {boot_device(cell)}")
    return "\n".join(lines) + "\n"


def _path(p: Path) -> str:
    """A path as SIMH 3.8's command parser takes it: one word, no quoting."""
    text = str(p.resolve())
    if any(c.isspace() for c in text) or ";" in text:
        raise LaunchError(f"simh cannot open {text!r}: its commands take paths without "
                          "spaces or ';'")
    return text


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    """The simulator, its ini and the disk copies (setup), for a cell folder."""
    folder = ctx.folder
    m = machine(cell)
    if m is None:
        raise LaunchError(why_not(cell) or "no simh machine")
    simh_ = cell.guest.simh
    attach = {u: ref for u, ref in simh_.attach.items() if u not in simh_.readonly} if simh_ \
        else {}
    copies = {unit: folder / f"{unit}.copy" for unit in attach}
    # copies, never the cached image; `cat`, not cp, so a read-only cache file still
    # gives a writable copy
    setup = [["sh", "-c", 'cat "$1" > "$2"', "copy", str(images[ref]), str(copies[unit])]
             for unit, ref in attach.items()]
    path = folder / "simh.ini"
    text = ini(cell, images, copies)
    return Launch([m.binary, str(path)], {path: text}, setup=setup,
                  teardown=[["rm", "-f", *map(str, copies.values())]] if copies else [],
                  stop_keys=STOP_KEYS)


# --- probe: which simulators this host has, and their versions -------------------

def simulators() -> list[MachineInfo]:
    return [m for m in knowledge.machines().values() if m.backend == "simh"]


@functools.cache
def _version(binary: str, io: HostIO | None = None) -> tuple[str | None, str]:
    """(version, what it answered) of one simulator: `show version` from a command file."""
    io = io or REAL_IO
    with tempfile.TemporaryDirectory(prefix="gh-simh-") as tmp:
        script = Path(tmp) / "version.ini"
        script.write_text("show version\nquit\n")
        ran = io.run([binary, str(script)])
    m = _VERSION.search(ran.output)
    tail = (ran.output.strip().splitlines() or ["no output"])[-1][:120]
    return (m.group(1) if m else None), tail


def probe(info: BackendInfo, host: HostFacts, io: HostIO | None = None) -> Probe:
    """Each simulator of the table on PATH answering `show version`."""
    io = io or REAL_IO
    found, bad, missing = [], [], []
    first = None
    for m in simulators():
        path = io.which(m.binary)
        if path is None:
            missing.append(m.binary)
            continue
        version, tail = _version(m.binary, io)
        if version is None:
            bad.append(f"{m.binary} did not answer show version: {tail}")
            continue
        found.append(f"{m.binary} {version}")
        first = first or (path, version)
    if not found:
        why = "; ".join(bad) or f"no SIMH simulator on PATH ({', '.join(missing)})"
        return Probe(info.name, MISSING, f"{why} ({info.package})", False)
    reason = f"simulators {', '.join(found)} run in software"
    if missing:
        reason += f"; not installed: {', '.join(missing)}"
    if bad:
        reason += f"; {'; '.join(bad)}"
    assert first is not None
    return Probe(info.name, AVAILABLE, reason, False, first[0], first[1])


def runs_arch(info: BackendInfo, guest_arch: str, host: HostFacts) -> str | None:
    table = [m for m in simulators() if m.arch == guest_arch]
    if not table:
        return f"simh runs {', '.join(info.arches)} guests, not {guest_arch}"
    if not any(shutil.which(m.binary) for m in table):
        return (f"no {guest_arch} simulator on PATH ({', '.join(m.binary for m in table)}; "
                f"{info.package})")
    return None


def facts(info: BackendInfo, launch: Launch) -> dict[str, Any]:
    """results.json's `vmm` entry: the simulator and its version."""
    binary = launch.argv[0]
    version = _version(binary)[0] if shutil.which(binary) else None
    return {"name": "simh", "binary": shutil.which(binary) or binary, "version": version,
            "accelerator": None}

