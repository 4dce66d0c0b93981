"""The boot tracker: matcher events plus the clock become one cell outcome.

Pure like the matcher (the caller passes every time stamp): it owns the
milestone cursor (which milestone comes next, giving up optional ones),
the stall timer, the per-milestone and total deadlines, the grace period
that keeps reading after a crash so the backtrace lands in the log, and
the accelerator-failure patterns watched on the VMM's stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import FailureSignature, Milestone, Timeouts
from .matcher import Event, Feed, Matcher
from .order import candidates, finished, required_done

CRASH_GRACE = 3.0  # seconds of reading after a fatal signature ...
CRASH_QUIET = 2.0  # ... or until the console is quiet this long (1 s lost traces on a busy host)
SERIAL_TAIL = 4000  # characters of serial text kept for the reason of a cell stuck early


@dataclass
class Outcome:
    """How a cell's boot ended, before verdicts and expectations.

    end: complete | crash | hang | timeout | exited | accel | interrupted
    """

    end: str
    t: float
    reached: dict[int, float] = field(default_factory=dict)  # milestone index -> t
    failure: Event | None = None
    warnings: list[Event] = field(default_factory=list)
    detail: str = ""
    exit_status: int | None = None


class BootTracker:
    def __init__(
        self,
        milestones: Sequence[Milestone],
        failures: Sequence[FailureSignature],
        timeouts: Timeouts,
        accel_failures: Sequence[FailureSignature] = (),
        start: float = 0.0,
        crash_grace: float = CRASH_GRACE,
        crash_quiet: float = CRASH_QUIET,
    ) -> None:
        self.milestones = tuple(milestones)
        self._matcher = Matcher(self.milestones, failures)
        self._stderr = Matcher([], accel_failures) if accel_failures else None
        self._cursor = 0  # index of the next milestone to look for
        self.timeouts = timeouts
        self.start = start
        self.crash_grace = crash_grace
        self.crash_quiet = crash_quiet
        self.last_output = start
        self.since = start  # when the last milestone was reached (or the start)
        self.reached: dict[int, float] = {}
        self.warnings: list[Event] = []
        self.failure: Event | None = None
        self.crash_at: float | None = None
        self.outcome: Outcome | None = None
        self.serial_tail = ""  # the last of the cleaned serial text: what the guest showed

    # --- what comes next -------------------------------------------------------

    def candidates(self) -> list[int]:
        """Milestone indexes that may be reached next."""
        return list(candidates(self.milestones, self._cursor))

    def pending_screen_milestones(self) -> list[tuple[int, Milestone]]:
        """The candidates the screen watcher looks for: (index, milestone)."""
        return [(i, self.milestones[i]) for i in self.candidates()
                if self.milestones[i].source == "screen"]

    def _done(self) -> bool:
        return finished(self.milestones, self._cursor)

    # --- inputs --------------------------------------------------------------

    def read(self, data: bytes, now: float, source: str = "serial") -> Feed:
        """Console bytes (or new screen text) read at `now`: the events and the
        cleaned text, for the transcript."""
        if self.outcome is not None:
            feed = Feed([], self._matcher.clean(data, source))
        else:
            if data:
                self.last_output = now
            feed = self._matcher.feed(data, now - self.start, self._cursor, source)
            self._take(feed.events, now)
        if source == "serial" and feed.text:
            self.serial_tail = (self.serial_tail + feed.text)[-SERIAL_TAIL:]
        return feed

    def feed(self, data: bytes, now: float, source: str = "serial") -> list[Event]:
        """Console bytes (or new screen text) read at `now`; returns the events."""
        if self.outcome is not None:
            return []
        return self.read(data, now, source).events

    def reach(self, index: int, now: float, text: str = "") -> list[Event]:
        """A needle or still-screen milestone seen by the screen watcher."""
        if (self.outcome is not None or self.crash_at is not None
                or index not in candidates(self.milestones, self._cursor)):
            return []
        m = self.milestones[index]
        ev = Event("milestone", m.name, now - self.start, text, index=index, send=m.send)
        return self._take([ev], now)

    def activity(self, now: float) -> None:
        """The screen changed: output, as far as the stall timer is concerned."""
        self.last_output = max(self.last_output, now)

    def _take(self, events: list[Event], now: float) -> list[Event]:
        for ev in events:
            if ev.kind == "milestone":
                self._cursor = ev.index + 1
                self.reached[ev.index] = ev.t
                self.since = now
            elif ev.fatal:
                self.failure = ev
                self.crash_at = now
            else:
                self.warnings.append(ev)
        if self.crash_at is None and self._done():
            self._end("complete", now)
        return events

    def vmm_stderr(self, data: bytes, now: float) -> None:
        """The VMM's stderr: an accelerator failure ends the cell at once."""
        if self.outcome is not None or self._stderr is None:
            return
        for ev in self._stderr.feed(data, now - self.start, 0).events:
            self._end("accel", now, failure=ev, detail=ev.text.strip())
            return

    def exited(self, now: float, status: int | None) -> Outcome:
        """The VM is gone (its console reached end of file)."""
        if self.outcome is None:
            if self.crash_at is not None:
                self._end("crash", now, exit_status=status)
            elif required_done(self.milestones, self._cursor):
                self._end("complete", now, exit_status=status)
            else:
                self._end("exited", now, exit_status=status)
        assert self.outcome is not None
        return self.outcome

    def interrupt(self, now: float, why: str) -> Outcome:
        if self.outcome is None:
            self._end("interrupted", now, detail=why)
        assert self.outcome is not None
        return self.outcome

    # --- the clock -----------------------------------------------------------

    def tick(self, now: float) -> Outcome | None:
        if self.outcome is not None:
            return self.outcome
        if self.crash_at is not None:
            grace_over = now - self.crash_at >= self.crash_grace
            if grace_over or now - self.last_output >= self.crash_quiet:
                self._end("crash", now)
            return self.outcome
        self._expire_optional(now)
        if self._done():
            self._end("complete", now)
            return self.outcome
        waited = self.pending_timeout()
        if required_done(self.milestones, self._cursor):
            # only optional milestones are left: their wait ends quietly
            if (now - self.last_output >= self.timeouts.stall
                    or now - self.start >= self.timeouts.total):
                self._cursor = len(self.milestones)  # give up the optional ones left
                self._end("complete", now)
            return self.outcome
        if now - self.last_output >= self.timeouts.stall:
            self._end("hang", now, detail=f"no console output for {self.timeouts.stall:g} s")
            return self.outcome
        if now - self.start >= self.timeouts.total:
            deadline = f"the total deadline of {self.timeouts.total:g} s"
        elif waited is not None and now - self.since >= waited:
            name = self.milestones[self._cursor].name
            deadline = f"milestone {name!r} not reached within {waited:g} s"
        else:
            return None
        if self.last_output <= self.since:  # silent since the last milestone: nothing flowed
            quiet = now - self.last_output
            self._end("hang", now, detail=f"no console output for {quiet:.0f} s ({deadline})")
        else:
            self._end("timeout", now, detail=deadline)
        return self.outcome

    def _expire_optional(self, now: float) -> None:
        """Skip optional milestones whose own timeout has run out."""
        while self._cursor < len(self.milestones):
            pending = self.milestones[self._cursor]
            if (not pending.optional or pending.timeout is None
                    or now - self.since < pending.timeout):
                break
            self._cursor += 1

    def pending_timeout(self) -> float | None:
        """The timeout of the milestone being waited for, if it has one."""
        if self._cursor < len(self.milestones):
            return self.milestones[self._cursor].timeout
        return None

    def _end(self, end: str, now: float, failure: Event | None = None, detail: str = "",
             exit_status: int | None = None) -> None:
        self.outcome = Outcome(
            end=end,
            t=now - self.start,
            reached=dict(self.reached),
            failure=failure or self.failure,
            warnings=list(self.warnings),
            detail=detail,
            exit_status=exit_status,
        )

