"""A live console session: a VMM process, its transcript and the tracker.

The only impure part of the console: it reads the VM's pty continuously (an
unread serial port stalls guests), writes the raw transcript and a
timestamped text log, hands bytes and clock ticks to the pure tracker,
types `send:` text, and watches the VMM's stderr for accelerator failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..backends.process import VMProcess
from ..backends.qmp import QMPError
from .matcher import Event
from .tracker import BootTracker, Outcome

if TYPE_CHECKING:
    from .watcher import ScreenWatcher

TICK = 0.1  # seconds between clock checks while the console is quiet
MAX_RAW = 256 << 20  # the raw transcript stops growing here (the log says so)
TAIL = 64 << 10  # bytes of console text kept in memory for reports


class Transcript:
    """NAME.raw (bytes as read, capped) and NAME.log ("[  t] line"); no .raw with raw=False."""

    def __init__(self, folder: Path, max_raw: int = MAX_RAW, name: str = "console",
                 raw: bool = True) -> None:
        self.raw: IO[bytes] | None = (folder / f"{name}.raw").open("wb") if raw else None
        self.log: IO[str] = (folder / f"{name}.log").open("w", encoding="utf-8",
                                                          errors="replace")
        self.max_raw = max_raw
        self.raw_bytes = 0
        self.tail = ""
        self._at_line_start = True

    def write(self, data: bytes, text: str, t: float) -> None:
        if self.raw is not None and data and self.raw_bytes < self.max_raw:
            room = self.max_raw - self.raw_bytes
            self.raw.write(data[:room])
            self.raw_bytes += min(len(data), room)
            if self.raw_bytes >= self.max_raw:
                self.note(t, f"console.raw truncated at {self.max_raw} bytes")
        if not text:
            return
        stamp = f"[{t:9.3f}] "
        lines = text.replace("\r\n", "\n").split("\n")
        out = []
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            line = line.rstrip("\r")
            out.append((stamp if self._at_line_start else "") + line + ("" if last else "\n"))
            self._at_line_start = not last
        self.log.write("".join(out))
        self.tail = (self.tail + text)[-TAIL:]

    def note(self, t: float, message: str) -> None:
        """A line of the harness's own, marked as such, in the text log."""
        prefix = "" if self._at_line_start else "\n"
        self.log.write(f"{prefix}[{t:9.3f}] ### harness: {message}\n")
        self._at_line_start = True

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        self.log.close()


def run_session(
    vm: VMProcess,
    tracker: BootTracker,
    transcript: Transcript,
    stop: threading.Event | None = None,
    on_event: Callable[[Event], None] | None = None,
    screen: ScreenWatcher | None = None,
    escape: Callable[[], bool] | None = None,
) -> Outcome:
    """Drive one boot to its outcome; the VM is still running when this returns.

    `escape`, polled each tick, ends the boot early when it answers True (the
    user asked for the console)."""
    stderr = vm.stderr_path.open("rb") if vm.stderr_path.exists() else None

    def handle(events: list[Event]) -> None:
        for ev in events:
            transcript.note(ev.t, f"{ev.kind} {ev.name!r} matched")
            if ev.kind == "milestone":
                milestone = tracker.milestones[ev.index]
                if ev.send and milestone.source == "screen" and screen is not None:
                    screen.type_text(ev.send)
                elif ev.send:
                    vm.write(ev.send.encode())
                if milestone.keys and screen is not None:
                    screen.press(milestone.keys)
            if screen is not None:
                name = (f"milestone-{ev.index + 1:02d}-{ev.name}" if ev.kind == "milestone"
                        else f"failure-{ev.name}")
                screen.save_screenshot(name)
            if on_event:
                on_event(ev)

    try:
        while tracker.outcome is None:
            data = vm.read(TICK)
            now = time.monotonic()
            t = now - tracker.start
            if data is None:  # the VM is gone: read what is left of stderr first
                _drain_stderr(stderr, tracker, now)
                status = vm.wait(5.0)
                transcript.note(t, f"VM exited with status {status}")
                tracker.exited(now, status)
                break
            if data:
                events = tracker.feed(data, now)
                transcript.write(data, tracker.matcher.text, t)
                handle(events)
            if screen is not None and screen.due(now):
                try:
                    handle(screen.poll(now))
                except (QMPError, OSError) as exc:
                    transcript.note(t, f"screen watching stopped: {exc}")
                    screen.close()
            _drain_stderr(stderr, tracker, now)
            if stop is not None and stop.is_set():
                tracker.interrupt(now, "interrupted")
            elif escape is not None and escape():
                tracker.interrupt(now, "interrupted: the user took the console")
            tracker.tick(now)
        outcome = tracker.outcome
        assert outcome is not None
        transcript.note(outcome.t, f"outcome: {outcome.end} {outcome.detail}".rstrip())
        return outcome
    finally:
        if stderr is not None:
            stderr.close()


def _drain_stderr(stderr: IO[bytes] | None, tracker: BootTracker, now: float) -> None:
    if stderr is None:
        return
    data = stderr.read()
    if data:
        tracker.vmm_stderr(data, now)
