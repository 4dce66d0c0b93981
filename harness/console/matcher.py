"""The console matcher: bytes in, milestone and failure events and clean text out.

Pure and deterministic: the caller passes the time and its cursor (the
index of the next milestone; the tracker owns it), so it is tested and
benchmarked without a VM. Work is linear in the console's length: each
chunk is scanned once for the required literals of all patterns at once
(`prefilter.py`), a pattern's regex runs only where one of its literals
occurs, over the new text plus a bounded carry-over (for matches split
across reads). Memory is bounded by the carry-over, whatever the guest
prints. Each regex runs through `engine.py` (RE2, or a backtracking engine
with a time budget of BUDGET seconds per feed): a guest's pattern cannot
freeze the harness; past the budget a feed raises `PatternTimeout`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import FailureSignature, Milestone
from .clean import Cleaner
from .engine import BUDGET, Found, PatternTimeout, Search, compile_pattern
from .literals import required_literals
from .order import candidates, finished
from .prefilter import Hits, Prefilter

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


@dataclass(frozen=True)
class Feed:
    """What one read gave: its events in console order, and its text as cleaned
    (for the transcript, which logs what the patterns saw)."""

    events: list[Event] = field(default_factory=list)
    text: str = ""


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
    across both. Needle and still milestones are reached outside (the
    tracker moves its cursor). Each non-fatal failure is reported once;
    after a fatal failure nothing more is; once the cursor is past the last
    milestone (optional ones included) it stops looking at all, but with no
    milestones it watches failures for as long as it is fed.
    """

    def __init__(self, milestones: Sequence[Milestone], failures: Sequence[FailureSignature],
                 window: int = WINDOW, native: bool | None = None,
                 budget: float = BUDGET, use_re2: bool | None = None) -> None:
        self.milestones = tuple(milestones)
        self.failures = tuple(failures)
        self.window = window
        self.budget = budget  # seconds of backtracking per feed, all patterns together
        n = len(self.milestones)
        # pattern ids: milestones 0..n-1 (None for needle/still ones), failures n..
        regexes: list[re.Pattern[str] | None] = [m.pattern for m in self.milestones]
        regexes += [f.pattern for f in self.failures]
        names = [f"milestone {m.name!r} pattern" for m in self.milestones]
        names += [f"failure signature {f.name!r} pattern" for f in self.failures]
        self._regex: list[Search | None] = [
            None if r is None else compile_pattern(r, name, use_re2)
            for r, name in zip(regexes, names, strict=True)]
        self._fail_ids = tuple(range(n, n + len(self.failures)))
        self._prefilter = Prefilter(
            [required_literals(r) if r is not None else () for r in regexes], native)
        self._deadline = 0.0
        self._streams: dict[str, _Stream] = {}
        self._crashed = False
        self._reported: set[str] = set()

    def _stream(self, source: str) -> _Stream:
        stream = self._streams.get(source)
        if stream is None:
            stream = self._streams[source] = _Stream()
        return stream

    def clean(self, data: bytes, source: str = "serial") -> str:
        """Only decode and strip `data` (a read that is logged, not matched)."""
        return self._stream(source).cleaner.feed(data)

    def feed(self, data: bytes, t: float, cursor: int, source: str = "serial") -> Feed:
        """A read from `source` at time `t`, looking for milestones from `cursor` on.

        Raises `PatternTimeout` when the backtracking engine spends more than
        the budget on this read: the cell cannot be judged on its patterns."""
        stream = self._stream(source)
        text = stream.cleaner.feed(data)
        self._deadline = time.monotonic() + self.budget
        return Feed(self._match(stream, text, t, cursor, source), text)

    def _search(self, regex: Search, buf: str, start: int) -> Found | None:
        try:
            return regex.search(buf, start, self._deadline - time.monotonic())
        except PatternTimeout as exc:
            raise PatternTimeout(exc.what, self.budget) from None

    def _match(self, stream: _Stream, text: str, t: float, cursor: int,
               source: str) -> list[Event]:
        if self._crashed or not text or finished(self.milestones, cursor):
            return []
        buf = stream.buf + text
        hits = self._prefilter.scan(buf)
        events: list[Event] = []
        ms = self._find_milestone(stream, buf, hits, cursor, source)
        fl = self._find_failure(stream, buf, hits)
        while ms is not None or fl is not None:
            if fl is not None and (ms is None or fl[0].start < ms[0].start):
                m, sig = fl
                stream.fail_from = max(m.end, m.start + 1)
                if sig.name not in self._reported:
                    self._reported.add(sig.name)
                    events.append(Event("failure", sig.name, t, m.text, fatal=sig.fatal))
                if sig.fatal:
                    self._crashed = True
                    break
                fl = self._find_failure(stream, buf, hits)
            else:
                m, index = ms
                stream.ms_from = max(m.end, m.start + 1)
                milestone = self.milestones[index]
                events.append(Event("milestone", milestone.name, t, m.text, index=index,
                                    send=milestone.send))
                cursor = index + 1
                if finished(self.milestones, cursor):
                    break
                ms = self._find_milestone(stream, buf, hits, cursor, source)
        self._carry(stream, buf)
        return events

    def _find_milestone(self, stream: _Stream, buf: str, hits: Hits, cursor: int,
                        source: str) -> tuple[Found, int] | None:
        best = None
        start = stream.ms_from
        for index in candidates(self.milestones, cursor):
            regex = self._regex[index]
            if (regex is None or self.milestones[index].source != source
                    or hits.first(index, start) == -1):
                continue
            m = self._search(regex, buf, start)
            if m is not None and (best is None or m.start < best[0].start):
                best = (m, index)
        return best

    def _find_failure(self, stream: _Stream, buf: str,
                      hits: Hits) -> tuple[Found, FailureSignature] | None:
        best = None
        start = stream.fail_from
        first = len(self.milestones)
        for pid in hits.live(self._fail_ids):
            if hits.first(pid, start) == -1:
                continue
            regex = self._regex[pid]
            assert regex is not None
            m = self._search(regex, buf, start)
            if m is not None and (best is None or m.start < best[0].start):
                best = (m, self.failures[pid - first])
        return best

    def _carry(self, stream: _Stream, buf: str) -> None:
        keep_from = max(len(buf) - self.window, min(stream.ms_from, stream.fail_from), 0)
        stream.buf = buf[keep_from:]
        stream.ms_from = max(0, stream.ms_from - keep_from)
        stream.fail_from = max(0, stream.fail_from - keep_from)
