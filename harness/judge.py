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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .backends.base import Launch
from .console.matcher import Event
from .console.tracker import Outcome
from .model import STAGE_SEP, Cell, CellResult, MilestoneResult, Stage, TestCase, Verdict
from .payload.outcome import PayloadOutcome
from .stages import stage_cell
from .verdict import (
    NOT_BOOTED,
    apply_expectation,
    decide,
    expectation_json,
    mark_known,
    milestone_results,
    payload_verdict,
    stuck_early,
    test_counts,
    weights,
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
    # a staged guest: each stage booted, in order, with its own attempt (the fields above
    # are the last stage's, its duration all of theirs)
    stages: list[tuple[Stage, Attempt]] = field(default_factory=list)


def attempt_verdict(cell: Cell, attempt: Attempt) -> tuple[Verdict, str | None]:
    """One attempt's verdict and reason, before expectations; a staged attempt's is its
    first stage that did not pass (the reason names the stage), else pass."""
    if attempt.stages:
        for stage, run in attempt.stages:
            verdict, reason = attempt_verdict(stage_cell(cell, stage), run)
            if verdict is not Verdict.PASS:
                return verdict, f"stage {stage.name}: {reason or verdict}"
        return Verdict.PASS, None
    if attempt.outcome is None:
        return Verdict.ERROR, attempt.error or "no outcome"
    verdict, reason = decide(cell.guest.milestones, attempt.outcome)
    if attempt.outcome.end == "exited" and verdict is Verdict.ERROR:
        reason = f"{reason}: {attempt.stderr_tail or '(stderr empty)'}"
    if verdict is Verdict.PASS and attempt.payload is not None:
        verdict, reason = payload_verdict(attempt.payload)
    pending = (stuck_early(cell.guest.milestones, attempt.outcome, verdict)
               if attempt.outcome.end not in NOT_BOOTED else None)  # no VM: nothing shown
    if pending is not None:  # a guest-file mistake or a guest failure? show what it showed
        reason = what_it_showed(reason, pending, attempt.shown, cell.guest.uses_screen)
    return verdict, reason


@dataclass(frozen=True)
class _Run:
    """One boot the result is made of: the cell's only one, or one stage of it (None: a
    stage never booted because an earlier one did not pass)."""

    cell: Cell
    attempt: Attempt | None
    stage: str = ""  # the stage's name; milestone and step names get it as a prefix

    def named(self, name: str) -> str:
        return f"{self.stage}{STAGE_SEP}{name}" if self.stage else name


def _runs(cell: Cell, attempt: Attempt) -> list[_Run]:
    """The boots of an attempt: the stages from the first it booted (`--from-stage`)."""
    if not cell.guest.stages:
        return [_Run(cell, attempt)]
    ran = {stage.name: run for stage, run in attempt.stages}
    names = [s.name for s in cell.guest.stages]
    start = names.index(attempt.stages[0][0].name) if attempt.stages else 0
    return [_Run(stage_cell(cell, s), ran.get(s.name), s.name) for s in cell.guest.stages[start:]]


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
    runs = _runs(cell, last)
    reached = total = 0.0
    cases: list[TestCase] = []
    tested = False  # a payload ran: its counts are reported, even all zero
    offset = 0.0  # a stage's milestone times count from the first stage's start
    deciding = _deciding(runs)
    for run in runs:
        milestones = run.cell.guest.milestones
        outcome = run.attempt.outcome if run.attempt is not None else None
        # a stage that did not boot lists its milestones unreached; a lone boot, none
        results = (milestone_results(milestones, outcome) if outcome is not None else
                   [MilestoneResult(m.name, False, None, m.optional) for m in milestones]
                   if run.stage else [])
        result.milestones += [dataclasses.replace(m, name=run.named(m.name), t=None if m.t is None
                                                  else m.t + offset) for m in results]
        offset += run.attempt.duration if run.attempt is not None else 0.0
        r, t = weights(milestones, outcome)
        reached, total = reached + r, total + t
        if outcome is not None:
            if outcome.failure is not None and result.failure is None:
                result.failure = _event_json(outcome.failure)
            result.warnings += [_event_json(w) for w in outcome.warnings]
            if run.attempt is deciding and stuck_early(milestones, outcome,
                                                       result.underlying or verdict):
                result.shown = shown_json(run.attempt.shown)
        payload = run.attempt.payload if run.attempt is not None else None
        if payload is not None:
            if payload.failure is not None and result.failure is None:
                result.failure = _event_json(payload.failure)
            cases += [dataclasses.replace(c, step=run.named(c.step)) for c in payload.cases]
            result.steps += [{**st, "name": run.named(str(st["name"]))} for st in payload.steps]
            tested = True
    result.score = reached / total if total else 0.0
    if tested:
        marked = mark_known(cases, cell.known_failures)
        result.cases = [c.to_json() for c in marked]
        result.tests = test_counts(marked)
    if cell.guest.stages:
        result.stages = [_stage_json(run) for run in runs]
    if reruns:
        result.reruns = [str(r.verdict) for r in reruns]
        result.flaky = any(v != str(result.verdict) for v in result.reruns)
    return result


def _deciding(runs: Sequence[_Run]) -> Attempt | None:
    """The last stage that booted: the one whose outcome decided a staged cell."""
    booted = [r.attempt for r in runs if r.attempt is not None]
    return booted[-1] if booted else None


def _event_json(ev: Event) -> dict[str, object]:
    return {"name": ev.name, "text": ev.text.strip(), "t": round(ev.t, 3)}


def _stage_json(run: _Run) -> dict[str, object]:
    """results.json's entry for one stage: how it ended (`skip`: never booted)."""
    if run.attempt is None:
        return {"name": run.stage, "verdict": str(Verdict.SKIP),
                "reason": "not booted: an earlier stage did not pass", "duration_s": 0.0,
                "score": 0.0}
    verdict, reason = attempt_verdict(run.cell, run.attempt)
    r, t = weights(run.cell.guest.milestones, run.attempt.outcome)
    return {"name": run.stage, "verdict": str(verdict), "reason": reason,
            "duration_s": round(run.attempt.duration, 3), "score": round(r / t, 4) if t else 0.0}


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
