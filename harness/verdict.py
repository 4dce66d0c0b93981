"""From a boot's outcome to the contract's verdict, reason and score.

The table in DESIGN.md, as code in one place: how an ending maps to a
verdict, how expectations turn failures into xfail and passes into xpass,
and how the score weighs required milestones.
"""

from __future__ import annotations

from typing import Any

from .console.tracker import Outcome
from .model import Expectation, Milestone, MilestoneResult, Verdict

# outcome.end -> verdict when the required milestones were not all reached
_ENDINGS = {
    "crash": Verdict.CRASH,
    "hang": Verdict.HANG,
    "timeout": Verdict.TIMEOUT,
    "exited": Verdict.FAIL,
    "accel": Verdict.ERROR,
    "interrupted": Verdict.ERROR,
}


def milestone_results(milestones: list[Milestone], outcome: Outcome) -> list[MilestoneResult]:
    return [
        MilestoneResult(m.name, i in outcome.reached, outcome.reached.get(i), m.optional)
        for i, m in enumerate(milestones)
    ]


def score(milestones: list[Milestone], outcome: Outcome) -> float:
    """Weighted fraction of the required milestones reached."""
    required = [(i, m) for i, m in enumerate(milestones) if not m.optional]
    total = sum(m.weight for _, m in required)
    if total == 0:
        return 0.0
    return sum(m.weight for i, m in required if i in outcome.reached) / total


def decide(milestones: list[Milestone], outcome: Outcome) -> tuple[Verdict, str | None]:
    """The verdict of an outcome, before expectations, with the reason for it."""
    missing = [m.name for i, m in enumerate(milestones)
               if not m.optional and i not in outcome.reached]
    if outcome.end == "crash" and outcome.failure is not None:
        return Verdict.CRASH, f"{outcome.failure.name}: {outcome.failure.text.strip()}"
    if outcome.end == "accel" and outcome.failure is not None:
        return Verdict.ERROR, f"accelerator failure ({outcome.failure.name}): {outcome.detail}"
    if outcome.end == "complete" and not missing:
        return Verdict.PASS, None
    if outcome.end == "exited" and outcome.exit_status not in (0, None) and not outcome.reached:
        return Verdict.ERROR, f"VMM exited with status {outcome.exit_status} before any milestone"
    verdict = _ENDINGS.get(outcome.end, Verdict.ERROR)
    waiting = f"waiting for {missing[0]!r}" if missing else ""
    if outcome.end == "exited":
        status = "" if outcome.exit_status in (0, None) else f" (status {outcome.exit_status})"
        return verdict, f"VM exited{status} while {waiting}" if waiting else "VM exited"
    if missing and f"{missing[0]!r}" in outcome.detail:
        waiting = ""  # the detail already names the milestone
    reason = "; ".join(x for x in (outcome.detail, waiting) if x)
    return verdict, reason or None


def apply_expectation(
    verdict: Verdict, reason: str | None, expect: Expectation | None
) -> tuple[Verdict, str | None, Verdict | None]:
    """(final verdict, reason, underlying verdict) with a known-bad expectation."""
    if expect is None or verdict in (Verdict.SKIP, Verdict.ERROR):
        return verdict, reason, None
    if verdict is Verdict.PASS:
        return Verdict.XPASS, f"expected to fail ({expect.reason}) but passed", verdict
    why = f"{reason} (expected: {expect.reason})" if reason else expect.reason
    return Verdict.XFAIL, why, verdict


def expectation_json(expect: Expectation | None) -> dict[str, Any] | None:
    if expect is None:
        return None
    return {"reason": expect.reason, "link": expect.link}
