"""Expand a matrix into cells: guests x backends x firmware, filtered.

Order is deterministic (guests by id, backends and firmware in the matrix's
order), so `--shard K/N` splits the same way on every machine.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

from . import knowledge
from .model import Cell, Expectation, Guest, Matrix, Quirk, Timeouts
from .stages import retimed


class PlanError(Exception):
    """A selection that makes no sense (exit status 2)."""


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise PlanError(f"--shard {text!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise PlanError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def _matches(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def find_expectation(guest: Guest, backend: str, firmware: str,
                     matrix_rules: Iterable[Expectation]) -> Expectation | None:
    """The first known-bad rule for the cell (rules naming `tests:` are about tests,
    not the boot: see `known_failures`)."""
    return next((r for r in (*guest.expect, *matrix_rules)
                 if not r.tests and r.matches(guest.id, backend, firmware)), None)


def known_failures(guest: Guest, backend: str, firmware: str,
                   matrix_rules: Iterable[Expectation]) -> tuple[str, ...]:
    """Globs of the tests expected to fail in the cell, from every rule that matches."""
    return tuple(g for r in (*guest.expect, *matrix_rules)
                 if r.tests and r.matches(guest.id, backend, firmware) for g in r.tests)


def make_cell(guest: Guest, backend: str, firmware: str, timeouts: Timeouts, memory_mb: int,
              quirks: Sequence[str] = (), quirk_defs: dict[str, Quirk] | None = None,
              **kw: Any) -> Cell:
    """A cell resolved once: its backend's and architecture's table entries and its
    quirk objects (by name from the library, `quirk_defs` (the matrix's) and the
    guest's own, which win)."""
    defs = {**(quirk_defs or {}), **guest.quirk_defs}
    cell = Cell(guest=guest, backend=backend, firmware=firmware, timeouts=timeouts,
                memory_mb=memory_mb, quirk_defs=defs,
                backend_info=knowledge.backends()[backend],
                arch_info=knowledge.arches()[guest.arch], **kw)
    return with_quirks(cell, quirks)


def with_quirks(cell: Cell, names: Sequence[str]) -> Cell:
    """The cell with these quirks (names), resolved; an unknown name is a PlanError."""
    library = knowledge.quirk_library(cell.quirk_defs)
    unknown = [q for q in names if q not in library]
    if unknown:
        raise PlanError(f"{cell.id}: unknown quirk {unknown[0]!r}")
    return dataclasses.replace(cell, quirks=[library[q] for q in dict.fromkeys(names)])


def expand(
    matrix: Matrix,
    guests: dict[str, Guest],
    only: Sequence[str] = (),
    backends: Sequence[str] = (),
    firmware: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
    retries: int | None = None,
) -> list[Cell]:
    known = knowledge.backends()
    for b in backends:
        if b not in known:
            raise PlanError(f"--backend {b!r}: unknown backend (known: {', '.join(known)})")
    for f in firmware:
        if f not in knowledge.FIRMWARES:
            raise PlanError(f"--firmware {f!r}: expected one of {', '.join(knowledge.FIRMWARES)}")
    ids = sorted(g for g in guests if any(_matches(g, pat) for pat in matrix.guests))
    cells = []
    for gid in ids:
        guest = guests[gid]
        for backend in matrix.backends:
            if backends and backend not in backends:
                continue
            for fw in matrix.firmware:
                if fw not in guest.firmware or (firmware and fw not in firmware):
                    continue
                if any(r.matches(gid, backend, fw) for r in matrix.exclude):
                    continue
                slow_guest, timeouts = for_backend(guest, guest.timeouts or matrix.timeouts,
                                                   backend)
                cells.append(make_cell(
                    slow_guest, backend, fw, timeouts,
                    guest.memory_mb if guest.memory_set else matrix.memory_mb,
                    quirks=_quirks(guest, backend, fw, matrix),
                    quirk_defs=matrix.quirk_defs,
                    retries=matrix.retries if retries is None else retries,
                    expect=find_expectation(guest, backend, fw, matrix.expect),
                    known_failures=known_failures(guest, backend, fw, matrix.expect),
                ))
    if only:
        unmatched = [p for p in only if not any(_matches(c.id, p) for c in cells)]
        if unmatched:
            raise PlanError(f"--only {unmatched[0]!r} matches no cell of the matrix "
                            f"({len(cells)} cells; see `harness list`)")
        cells = [c for c in cells if any(_matches(c.id, p) for p in only)]
    if shard is not None:
        k, n = shard
        cells = [c for i, c in enumerate(cells) if i % n == k - 1]
    return cells


def _quirks(guest: Guest, backend: str, firmware: str, matrix: Matrix) -> list[str]:
    """The cell's quirk names: the guest's for every backend and for this one, then
    the matrix's rules. A quirk given for every backend (`*`, or a matrix glob) is
    left out where the backend cannot apply it (config.py refuses one given for
    that backend by name)."""
    info = knowledge.backends()[backend]
    library = knowledge.quirk_library(matrix.quirk_defs, guest.quirk_defs)

    def applies(q: str) -> bool:
        return q not in library or not info.cannot_apply(library[q])

    rules = [q for r in matrix.quirk_rules if r.matches(guest.id, backend, firmware)
             for q in r.quirks]
    return list(dict.fromkeys([*filter(applies, guest.quirks.get("*", [])),
                               *guest.quirks.get(backend, []), *filter(applies, rules)]))


def for_backend(guest: Guest, timeouts: Timeouts, backend: str) -> tuple[Guest, Timeouts]:
    """The guest and deadlines as `backend` needs them: a slow emulator (its
    `time_factor` in backends.yaml) gets every deadline that many times longer."""
    factor = knowledge.backends()[backend].time_factor
    if factor == 1:
        return guest, timeouts

    def longer(t: Timeouts) -> Timeouts:
        return Timeouts(t.total * factor, t.stall * factor)

    slow = retimed(guest, lambda t: t * factor if t else t,
                   lambda t: longer(t) if t else None)
    return slow, longer(timeouts)
