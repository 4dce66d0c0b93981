"""Replay a recorded boot console against a guest's patterns, without a VM.

A guest file's milestones and failure signatures are only as good as the
consoles they were checked against. Guests that cannot boot on the machine
that tests them (internet downloads, other architectures' hardware,
non-redistributable systems) are checked by feeding real transcripts
through the same pure matcher a live run uses, in small chunks so that
matches split across reads are exercised too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import knowledge
from .console.engine import PatternTimeout
from .console.matcher import Event, Matcher
from .model import STAGE_SEP, Guest, Milestone

CHUNK = 512  # bytes per feed: smaller than most lines, like a serial port's reads
_SENTINEL = Milestone("end of transcript", re.compile(r"(?!)"))


class ReplayError(Exception):
    """A replay request that names milestones the guest does not have, or a pattern
    that ran past its time budget on the transcript."""


@dataclass
class Replay:
    checked: list[str]  # the milestones looked for, in order
    reached: list[str] = field(default_factory=list)
    failures: list[Event] = field(default_factory=list)  # fatal signatures that matched
    warnings: list[Event] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [m for m in self.checked if m not in self.reached]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.failures


def replay(guest: Guest, data: bytes, milestones: Sequence[str] | None = None,
           source: str = "serial", chunk: int = CHUNK, native: bool | None = None,
           stage: str | None = None) -> Replay:
    """Feed `data` (a console as the guest printed it) to the guest's matcher.

    `milestones` limits the check to those the transcript covers (a log
    that starts at the kernel cannot show the boot loader); by default all
    text milestones of `source` are required in order. Needle and still
    milestones need a screen and are never part of a replay. `native` picks
    the matcher's literal prefilter (None: the fastest available). A staged
    guest's console is one boot's, so `stage` picks whose milestones
    (`stage/name`) it is replayed through; a staged guest needs one.
    """
    text_ms = [m for m in guest.milestones if m.pattern is not None and m.source == source]
    if guest.stages or stage is not None:
        names = [s.name for s in guest.stages]
        if stage not in names:
            raise ReplayError(f"{guest.id} has stages ({', '.join(names) or 'none'}): "
                              f"name the one this console is ({stage!r} is not one)")
        text_ms = [m for m in text_ms if m.name.startswith(stage + STAGE_SEP)]
    if milestones is not None:
        names = {m.name for m in text_ms}
        unknown = [n for n in milestones if n not in names]
        if unknown:
            raise ReplayError(f"{guest.id} has no {source} text milestone "
                              f"{', '.join(map(repr, unknown))} (it has: {', '.join(names)})")
        text_ms = [m for m in text_ms if m.name in milestones]
    # A sentinel that never matches keeps the matcher looking for failure
    # signatures after the last milestone: a live run stops there, but a
    # transcript's tail is evidence too.
    matcher = Matcher([*text_ms, _SENTINEL], knowledge.guest_failures(guest), native=native)
    out = Replay(checked=[m.name for m in text_ms if milestones is not None or not m.optional])
    cursor = 0  # the next milestone, moved on as the tracker would
    for i in range(0, len(data), chunk):
        try:
            events = matcher.feed(data[i:i + chunk], float(i), cursor, source).events
        except PatternTimeout as exc:
            raise ReplayError(f"{guest.id}: {exc} (at byte {i} of the transcript)") from None
        for ev in events:
            if ev.kind == "milestone":
                cursor = ev.index + 1
                out.reached.append(ev.name)  # never the sentinel: it cannot match
            elif ev.fatal:
                out.failures.append(ev)
            else:
                out.warnings.append(ev)
    return out
