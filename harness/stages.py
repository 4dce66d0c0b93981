"""A staged guest's boots as cells of their own (pure).

A guest with `stages:` (install from the installer medium, then boot the installed
disk) runs as one cell; each stage is booted as the cell with that stage's boot
medium, milestones, payload and deadlines, so the runner, the tracker and the judge
treat a stage exactly as they treat any boot. A drive a stage boots from is
attached as its boot disk instead of as a drive; its overlay is the same file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .model import Cell, Guest, Milestone, Stage, Timeouts


class StageError(ValueError):
    """A stage name that is not one of the guest's (`--from-stage`)."""


def stage_cell(cell: Cell, stage: Stage) -> Cell:
    """The cell as its `stage` boots: that stage's medium, milestones, payload, deadlines."""
    guest = cell.guest
    booted = stage.boot.image if stage.boot.kind in ("disk", "floppy") else None
    staged = dataclasses.replace(
        guest, boot=stage.boot, milestones=list(stage.milestones), payload=list(stage.payload),
        payload_dir=stage.payload_dir, payload_to=stage.payload_to, console=stage.console,
        drives=tuple(d for d in guest.drives if d.image != booted), stages=[])
    return dataclasses.replace(cell, guest=staged, timeouts=stage.timeouts or cell.timeouts)


def stages_from(guest: Guest, name: str | None) -> list[Stage]:
    """The stages a run boots: all, or from the one named (`--from-stage`) on."""
    if name is None:
        return list(guest.stages)
    names = [s.name for s in guest.stages]
    if name not in names:
        known = ", ".join(names) if names else "none: it is not a staged guest"
        raise StageError(f"{guest.id} has no stage {name!r} (its stages: {known})")
    return guest.stages[names.index(name):]


def retimed(guest: Guest, deadline: Callable[[float | None], float | None],
            stage_timeouts: Callable[[Timeouts | None], Timeouts | None]) -> Guest:
    """The guest with every milestone's deadline (its own and each stage's) and each stage's
    timeouts mapped: a slow emulator stretches them, a VM paused for a debugger lifts them."""
    def each(milestones: list[Milestone]) -> list[Milestone]:
        return [dataclasses.replace(m, timeout=deadline(m.timeout)) for m in milestones]

    return dataclasses.replace(guest, milestones=each(guest.milestones), stages=[
        dataclasses.replace(s, milestones=each(s.milestones), timeouts=stage_timeouts(s.timeouts))
        for s in guest.stages])
