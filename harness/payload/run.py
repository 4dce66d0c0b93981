"""The payload on a live console: each step typed, read to its end, concluded.

The impure part (the VM's console, the clock, the transcript); what a step's
console means is decided by `step`, `framing` and `outcome`, which are pure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..console.matcher import Matcher
from ..console.transcript import Transcript
from ..model import FailureSignature, PayloadStep
from .framing import new_token, typed
from .outcome import PayloadOutcome, conclude
from .step import StepReader

if TYPE_CHECKING:  # the VM process needs pexpect: imported by the runner, late
    from ..backends.process import VMProcess

TICK = 0.1


def run_payload(vm: VMProcess, steps: Sequence[PayloadStep],
                failures: Sequence[FailureSignature], transcript: Transcript,
                stop: threading.Event | None = None) -> PayloadOutcome:
    """Run `steps` in order on `vm`'s console; stop at the first that ends badly."""
    outcome = PayloadOutcome()
    matcher = Matcher([], failures)
    for step in steps:
        token = new_token()
        started = time.monotonic()
        transcript.note(started - vm.started, f"payload step {step.name!r} started")
        text = typed(step, token)
        if text:
            vm.write(text.encode())
        reader = StepReader(step, token, matcher, started)
        while reader.result is None:
            data = vm.read(TICK)
            now = time.monotonic()
            if data is None:
                reader.exited(now)
                break
            if data:
                transcript.write(data, reader.feed(data, now), now - vm.started)
            if stop is not None and stop.is_set():
                reader.interrupt(now)
            reader.tick(now)
        end = reader.result
        assert end is not None
        transcript.note(time.monotonic() - vm.started,
                        f"payload step {step.name!r} ended: {end.end}")
        if step.disk is not None and end.end == "done" and end.framed is not None:
            outcome.deferred.append((step, end))  # its results: on the disk, once it is off
        elif not conclude(step, end, outcome):
            break
    return outcome
