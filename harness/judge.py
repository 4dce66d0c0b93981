"""The one place that judges: a cell and its attempts become its CellResult.

`verdict.py` holds the table (how an ending maps to a verdict, the score,
expectations); this applies it, and nothing else in the harness makes a
verdict: an attempt that could not boot (`Attempt.error`), the VM-exited
reason, expectations (xfail/xpass), the score, retries, reruns and `flaky`,
the failure and warning records, and the cells that never ran (skipped, or
an error before any boot) all come from here, whoever ran the cell (local
scheduler, cluster worker, pytest plugin, repro, bisect-quirks, canary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .backends.base import Launch
from .console.tracker import Outcome
from .model import Cell, CellResult, Verdict
from .payload.outcome import PayloadOutcome
from .verdict import (
    apply_expectation,
    decide,
    expectation_json,
    mark_known,
    milestone_results,
    payload_verdict,
    score,
    stuck_early,
    test_counts,
    what_it_showed,
)


@dataclass
class Attempt:
    """One try at booting a cell: its outcome, or why it could not boot at all."""

    outcome: Outcome | None
    error: str | None = None  # the harness or the host failed before an outcome
    launch: Launch | None = None
    duration: float = 0.0
    stderr_tail: str = ""  # the VMM's last words, for a VM that exited with an error
    shown: dict[str, str] = field(default_factory=dict)  # serial tail, screen text: last seen
    payload: PayloadOutcome | None = None  # the steps run after the boot, when it completed


def attempt_verdict(cell: Cell, attempt: Attempt) -> tuple[Verdict, str | None]:
    """One attempt's verdict and reason, before expectations."""
    if attempt.outcome is None:
        return Verdict.ERROR, attempt.error or "no outcome"
    verdict, reason = decide(cell.guest.milestones, attempt.outcome)
    if attempt.outcome.end == "exited" and verdict is Verdict.ERROR:
        reason = f"{reason}: {attempt.stderr_tail or '(stderr empty)'}"
    if verdict is Verdict.PASS and attempt.payload is not None:
        verdict, reason = payload_verdict(attempt.payload)
    pending = stuck_early(cell.guest.milestones, attempt.outcome, verdict)
    if pending is not None:  # a guest-file mistake or a guest failure? show what it showed
        reason = what_it_showed(reason, pending, attempt.shown, cell.guest.uses_screen)
    return verdict, reason


def _base(cell: Cell, verdict: Verdict, reason: str | None) -> CellResult:
    return CellResult(cell_id=cell.id, guest=cell.guest.id, backend=cell.backend,
                      firmware=cell.firmware, verdict=verdict, reason=reason,
                      quirks=cell.quirk_names, expect=expectation_json(cell.expect))


def skipped(cell: Cell, reason: str) -> CellResult:
    """A cell this host cannot run (no backend, no firmware, no worker...)."""
    return _base(cell, Verdict.SKIP, reason)


def errored(cell: Cell, reason: str) -> CellResult:
    """A cell that failed before any boot (its images, the cluster) and not by the guest."""
    return _base(cell, Verdict.ERROR, reason)


def judge(cell: Cell, attempts: Sequence[Attempt],
          reruns: Sequence[CellResult] = ()) -> CellResult:
    """The cell's result: its last attempt judged, expectations applied, reruns counted."""
    last = attempts[-1]
    verdict, reason = attempt_verdict(cell, last)
    verdict, reason, underlying = apply_expectation(verdict, reason, cell.expect)
    result = _base(cell, verdict, reason)
    result.underlying = underlying
    result.attempts = len(attempts)
    result.duration_s = last.duration
    result.command = list(last.launch.argv) if last.launch is not None else []
    outcome = last.outcome
    if outcome is not None:
        result.milestones = milestone_results(cell.guest.milestones, outcome)
        result.score = score(cell.guest.milestones, outcome)
        if outcome.failure is not None:
            f = outcome.failure
            result.failure = {"name": f.name, "text": f.text.strip(), "t": round(f.t, 3)}
        result.warnings = [{"name": w.name, "text": w.text.strip(), "t": round(w.t, 3)}
                           for w in outcome.warnings]
        if stuck_early(cell.guest.milestones, outcome, result.underlying or verdict):
            result.shown = shown_json(last.shown)
    if last.payload is not None:
        payload = last.payload
        if payload.failure is not None and result.failure is None:
            f = payload.failure
            result.failure = {"name": f.name, "text": f.text.strip(), "t": round(f.t, 3)}
        cases = mark_known(payload.cases, cell.known_failures)
        result.cases = [c.to_json() for c in cases]
        result.tests = test_counts(cases)
        result.steps = list(payload.steps)
    if reruns:
        result.reruns = [str(r.verdict) for r in reruns]
        result.flaky = any(v != str(result.verdict) for v in result.reruns)
    return result


def shown_json(shown: dict[str, str]) -> dict[str, str]:
    """results.json's `shown`: the serial console's last lines and the last screen text."""
    out = {}
    if shown.get("serial"):
        out["serial"] = "\n".join(shown["serial"].splitlines()[-SHOWN_LINES:])
    if shown.get("screen"):
        out["screen"] = shown["screen"]
    return out


SHOWN_LINES = 20


def should_retry(cell: Cell, attempts: Sequence[Attempt], retry_errors: bool) -> bool:
    """Whether another attempt is due: a failure within the cell's retries, or one
    more try when the harness or the host failed (an error, not the guest)."""
    verdict, _ = attempt_verdict(cell, attempts[-1])
    if not verdict.is_failure():
        return False
    if len(attempts) <= cell.retries:
        return True
    return (retry_errors and verdict is Verdict.ERROR
            and len(attempts) == cell.retries + 1)
