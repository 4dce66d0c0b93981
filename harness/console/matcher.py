"""The console matcher: bytes in, milestone and failure events out.

Pure and deterministic (the caller passes the time), so it is tested and
benchmarked without a VM. Work is linear in the console's length: each
pattern is searched once per chunk over the new text plus a bounded
carry-over (for matches split across reads), and a pattern's regex runs
only where one of its required literals occurs. Memory is bounded by the
carry-over, whatever the guest prints.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..model import FailureSignature, Milestone
from .clean import Cleaner
from .literals import required_literals

WINDOW = 2048  # characters kept from earlier chunks; longer matches may be missed


@dataclass(frozen=True)
class Event:
    kind: str  # "milestone" | "failure"
    name: str
    t: float
    text: str  # the matched text
    index: int = -1  # the milestone's position in the guest's list
    fatal: bool = False
    send: str | None = None


class _Pattern:
    """A compiled pattern with its literal prefilter."""

    __slots__ = ("literals", "regex")

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex
        self.literals = required_literals(regex)

    def search(self, text: str, start: int) -> re.Match[str] | None:
        lits = self.literals
        if lits is not None:
            first = -1
            for lit in lits:
                at = text.find(lit, start)
                if at != -1 and (first == -1 or at < first):
                    first = at
            if first == -1:
                return None
        return self.regex.search(text, start)


class _Stream:
    """What the matcher keeps per console source (serial, screen)."""

    __slots__ = ("buf", "cleaner", "fail_from", "ms_from")

    def __init__(self) -> None:
        self.cleaner = Cleaner()
        self.buf = ""
        self.ms_from = 0
        self.fail_from = 0


class Matcher:
    """Finds milestones in order and failure signatures, in console order.

    Each milestone belongs to a source ("serial" or "screen"); text fed from
    a source can only reach milestones of that source, while the order runs
    across both. Needle and still milestones are reached from outside
    (`reach`). After a fatal failure it reports nothing more; after the last
    milestone (optional ones included) it stops looking at all.
    """

    def __init__(self, milestones: Sequence[Milestone], failures: Sequence[FailureSignature],
                 window: int = WINDOW) -> None:
        self.milestones = list(milestones)
        self.failures = list(failures)
        self._ms = [_Pattern(m.pattern) if m.pattern is not None else None
                    for m in self.milestones]
        self._fail = [_Pattern(f.pattern) for f in self.failures]
        self.window = window
        self._streams: dict[str, _Stream] = {}
        self.next = 0  # index of the next milestone to look for
        self.crashed = False
        self.text = ""  # the cleaned text of the last feed, for transcripts
        self._reported: set[str] = set()

    @property
    def done(self) -> bool:
        """Nothing more to look for (a matcher with no milestones watches failures only)."""
        return self.crashed or (bool(self.milestones) and self.next >= len(self.milestones))

    @property
    def required_done(self) -> bool:
        return all(m.optional for m in self.milestones[self.next:])

    def candidates(self) -> list[int]:
        """Indexes that may be reached next: optional ones up to the next required one."""
        out = []
        for index in range(self.next, len(self.milestones)):
            out.append(index)
            if not self.milestones[index].optional:
                break
        return out

    def feed(self, data: bytes, t: float, source: str = "serial") -> list[Event]:
        stream = self._streams.get(source)
        if stream is None:
            stream = self._streams[source] = _Stream()
        self.text = stream.cleaner.feed(data)
        return self.match(self.text, t, source)

    def reach(self, index: int, t: float, text: str = "") -> Event | None:
        """Mark milestone `index` reached by other means (a needle, a still screen)."""
        if self.done or index not in self.candidates():
            return None
        self.next = index + 1
        m = self.milestones[index]
        return Event("milestone", m.name, t, text, index=index, send=m.send)

    def skip_optional(self) -> None:
        """Give up on the optional milestones left (their wait is over)."""
        while self.next < len(self.milestones) and self.milestones[self.next].optional:
            self.next += 1

    def match(self, text: str, t: float, source: str = "serial") -> list[Event]:
        if self.done or not text:
            return []
        stream = self._streams.setdefault(source, _Stream())
        buf = stream.buf + text
        events: list[Event] = []
        ms = self._find_milestone(stream, buf, source)
        fl = self._find_failure(stream, buf)
        while ms is not None or fl is not None:
            if fl is not None and (ms is None or fl[0].start() < ms[0].start()):
                m, sig = fl
                stream.fail_from = max(m.end(), m.start() + 1)
                if sig.name not in self._reported:
                    self._reported.add(sig.name)
                    events.append(Event("failure", sig.name, t, m.group(0), fatal=sig.fatal))
                if sig.fatal:
                    self.crashed = True
                    break
                fl = self._find_failure(stream, buf)
            else:
                m, index = ms
                stream.ms_from = max(m.end(), m.start() + 1)
                milestone = self.milestones[index]
                events.append(Event("milestone", milestone.name, t, m.group(0), index=index,
                                    send=milestone.send))
                self.next = index + 1
                if self.done:
                    break
                ms = self._find_milestone(stream, buf, source)
        self._carry(stream, buf)
        return events

    def _find_milestone(self, stream: _Stream, buf: str,
                        source: str) -> tuple[re.Match[str], int] | None:
        best = None
        for index in self.candidates():
            pattern = self._ms[index]
            if pattern is None or self.milestones[index].source != source:
                continue
            m = pattern.search(buf, stream.ms_from)
            if m is not None and (best is None or m.start() < best[0].start()):
                best = (m, index)
        return best

    def _find_failure(self, stream: _Stream,
                      buf: str) -> tuple[re.Match[str], FailureSignature] | None:
        best = None
        for pattern, sig in zip(self._fail, self.failures, strict=True):
            m = pattern.search(buf, stream.fail_from)
            if m is not None and (best is None or m.start() < best[0].start()):
                best = (m, sig)
        return best

    def _carry(self, stream: _Stream, buf: str) -> None:
        keep_from = max(len(buf) - self.window, min(stream.ms_from, stream.fail_from), 0)
        stream.buf = buf[keep_from:]
        stream.ms_from = max(0, stream.ms_from - keep_from)
        stream.fail_from = max(0, stream.fail_from - keep_from)
