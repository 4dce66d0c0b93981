"""A live console session: a VMM process, its transcript and the tracker.

The impure part of the console, with the screen watcher: it reads the
VM's pty continuously (an unread serial port stalls guests), writes the
raw transcript and a timestamped text log, hands bytes and clock ticks to
the pure tracker, types `send:` text, and watches the VMM's stderr for
accelerator failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from ..backends.process import VMProcess
from ..backends.qmp import QMPError
from .matcher import Event
from .tracker import BootTracker, Outcome
from .transcript import Transcript

if TYPE_CHECKING:  # no cycle: the watcher does not import the session
    from .watcher import ScreenWatcher

TICK = 0.1  # seconds between clock checks while the console is quiet


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
            transcript.note(ev.t, f"{ev.kind} {ev.name!r} matched {ev.text[:200]!r}")
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
                feed = tracker.read(data, now)
                transcript.write(data, feed.text, t)
                handle(feed.events)
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
