"""One payload step's console followed to its end (pure: bytes and times in).

A step ends `done` (its end marker, its `until:` pattern, or a raw step
without `until:` at its timeout or when the VM exits), `timeout` (the
marker or pattern never came), `crash` (a fatal failure signature; the
console is still read for CRASH_GRACE seconds, or until quiet for
CRASH_QUIET, so the backtrace is kept) or `exited` (the VM went away first).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..console.engine import compile_pattern
from ..console.matcher import Event, Matcher
from ..console.tracker import CRASH_GRACE, CRASH_QUIET
from ..model import PayloadStep
from .framing import Framed, end_pattern, marker, take_apart

WINDOW = 4096  # characters searched again for an `until:` match split across reads
MARKER_SPAN = 64  # characters kept for an end marker split across reads (it has ~30)


@dataclass
class StepEnd:
    end: str  # done | timeout | crash | exited | interrupted
    t: float  # seconds since the step started
    text: str  # the step's console, cleaned
    framed: Framed | None = None  # posix steps that reached their end marker
    failure: Event | None = None


class StepReader:
    def __init__(self, step: PayloadStep, token: str, matcher: Matcher, start: float,
                 crash_grace: float = CRASH_GRACE, crash_quiet: float = CRASH_QUIET) -> None:
        self.step = step
        self.token = token
        self.matcher = matcher  # the payload's: failure signatures only, cleaner state kept
        self.start = start
        self.grace, self.quiet = crash_grace, crash_quiet
        self.parts: list[str] = []
        self.tail = ""  # the last WINDOW characters: where the end is looked for
        self.last_output = start
        self.failure: Event | None = None
        self.crash_at: float | None = None
        self.result: StepEnd | None = None
        self._end_re = end_pattern(token)
        # `until:` at a bounded cost (RE2, or a time budget): PatternTimeout past it
        self._until = (compile_pattern(step.until, f"payload step {step.name!r} until pattern")
                       if step.until is not None else None)

    @property
    def text(self) -> str:
        """The step's console so far (joined once, not on every read)."""
        if len(self.parts) > 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def feed(self, data: bytes, now: float) -> str:
        """Console bytes read at `now`; the cleaned text (for the transcript)."""
        feed = self.matcher.feed(data, now - self.start, 0)
        if self.result is not None:
            return feed.text
        if data:
            self.last_output = now
        if feed.text:
            self.parts.append(feed.text)
        for ev in feed.events:
            if ev.fatal and self.failure is None:
                self.failure, self.crash_at = ev, now
        if feed.text:
            # the end marker is short: the new text and a few characters before it do;
            # an `until:` match may span lines: the last WINDOW characters
            keep = WINDOW if self._until is not None else MARKER_SPAN
            window = self.tail + feed.text
            if self.crash_at is None:
                self._look_for_end(window, now)
            self.tail = window[-keep:]
        return feed.text

    def _look_for_end(self, window: str, now: float) -> None:
        """The end marker or `until:` in the last reads (bounded: linear in the output)."""
        step = self.step
        if step.shell == "posix":
            if "@@" in window and self._end_re.search(window):
                self._end("done", now, take_apart(self.text, self.token, step.file_on_console))
        elif self._until is not None and self._until.search(window):
            self._end("done", now)

    def exited(self, now: float) -> StepEnd:
        if self.result is None:
            raw_open = self.step.shell == "raw" and self.step.until is None
            ends = "crash" if self.failure is not None else "done" if raw_open else "exited"
            self._end(ends, now)
        assert self.result is not None
        return self.result

    def interrupt(self, now: float) -> StepEnd:
        if self.result is None:
            self._end("interrupted", now)
        assert self.result is not None
        return self.result

    def tick(self, now: float) -> StepEnd | None:
        if self.result is not None:
            return self.result
        if self.crash_at is not None:
            if now - self.crash_at >= self.grace or now - self.last_output >= self.quiet:
                self._end("crash", now)
        elif now - self.start >= self.step.timeout:
            raw_open = self.step.shell == "raw" and self.step.until is None
            self._end("done" if raw_open else "timeout", now)
        return self.result

    def _end(self, end: str, now: float, framed: Framed | None = None) -> None:
        text = self.text
        if self.step.shell == "posix" and framed is None:  # unfinished: the output so far,
            begin = text.find(marker(self.token, "B"))  # not the echoed command line
            text = text[begin + len(marker(self.token, "B")):] if begin >= 0 else ""
        self.result = StepEnd(end, now - self.start, text, framed, self.failure)
