"""Milestone order: which milestones may be reached next.

One rule, shared by the tracker (which owns the cursor, the index of the
next milestone) and the matcher (which advances a copy of it within one
read, when a chunk holds several milestones): the next milestone and the
optional ones before it may be reached; reaching one skips the optional
ones it passes. The order runs across sources (serial and screen).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Milestone


def candidates(milestones: Sequence[Milestone], cursor: int) -> range:
    """Indexes that may be reached next: optional ones up to the next required one."""
    for index in range(cursor, len(milestones)):
        if not milestones[index].optional:
            return range(cursor, index + 1)
    return range(cursor, len(milestones))


def finished(milestones: Sequence[Milestone], cursor: int) -> bool:
    """Every milestone is behind the cursor (a list with none is never finished:
    it watches failures only)."""
    return bool(milestones) and cursor >= len(milestones)


def required_done(milestones: Sequence[Milestone], cursor: int) -> bool:
    """Only optional milestones are left."""
    return all(m.optional for m in milestones[cursor:])
