"""From a boot's outcome to the contract's verdict, reason and score.

The table in DESIGN.md, as code in one place: how an ending maps to a
verdict, how expectations turn failures into xfail and passes into xpass,
and how the score weighs required milestones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .console.tracker import Outcome
from .model import CellResult, Expectation, Milestone, MilestoneResult, TestCase, Verdict
from .payload.outcome import PayloadOutcome

# outcome.end -> verdict when the required milestones were not all reached
_ENDINGS = {
    "crash": Verdict.CRASH,
    "hang": Verdict.HANG,
    "timeout": Verdict.TIMEOUT,
    "exited": Verdict.FAIL,
    "accel": Verdict.ERROR,
    "interrupted": Verdict.ERROR,
    "unbootable": Verdict.FAIL,  # a stage's boot disk that an earlier stage left unbootable
}
NOT_BOOTED = frozenset({"unbootable"})  # endings found before any VM ran: it showed nothing


def milestone_results(milestones: list[Milestone], outcome: Outcome) -> list[MilestoneResult]:
    return [
        MilestoneResult(m.name, i in outcome.reached, outcome.reached.get(i), m.optional)
        for i, m in enumerate(milestones)
    ]


def score(milestones: list[Milestone], outcome: Outcome) -> float:
    """Weighted fraction of the required milestones reached."""
    reached, total = weights(milestones, outcome)
    return reached / total if total else 0.0


def weights(milestones: list[Milestone], outcome: Outcome | None) -> tuple[float, float]:
    """(weight of the required milestones reached, weight of all required ones): a staged
    cell's score adds its stages' (a stage never booted reached none)."""
    required = [(i, m) for i, m in enumerate(milestones) if not m.optional]
    total = sum(m.weight for _, m in required)
    done = outcome.reached if outcome is not None else {}
    return sum(m.weight for i, m in required if i in done), total


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


SHOWN_CHARS = 100  # of what the guest showed, in a one-line reason
_STUCK = (Verdict.HANG, Verdict.TIMEOUT, Verdict.FAIL)


def stuck_early(milestones: list[Milestone], outcome: Outcome,
                verdict: Verdict) -> tuple[int, Milestone] | None:
    """The milestone a failed boot waited for, when that is where a guest file's mistake
    shows: no milestone reached at all, or a boot-loader one — the first, one that types
    `send:`/`keys:`, or the one after them (did the keys do what the file meant?)."""
    if verdict not in _STUCK:
        return None
    pending = next(((i, m) for i, m in enumerate(milestones)
                    if not m.optional and i not in outcome.reached), None)
    if pending is None:
        return None
    i, m = pending
    last = milestones[max(outcome.reached)] if outcome.reached else None
    if last is None or i == 0 or m.send or m.keys or last.send or last.keys:
        return pending
    return None


def what_it_looks_for(m: Milestone) -> str:
    if m.pattern is not None:
        return f"pattern {m.pattern.pattern!r}" + (" on the screen" if m.source == "screen"
                                                  else "")
    if m.needle is not None:
        return "a needle on the screen"
    return "a still screen"


def _one_line(text: str, head: bool) -> str:
    """Short, one line, escaped (repr): the first (screen) or last (serial) characters."""
    words = " / ".join(" ".join(x.split()) for x in text.splitlines() if x.strip())
    if len(words) > SHOWN_CHARS:
        words = words[:SHOWN_CHARS] + "…" if head else "…" + words[-SHOWN_CHARS:]
    return repr(words)


def what_it_showed(reason: str | None, pending: tuple[int, Milestone],
                   shown: dict[str, str], screen: bool) -> str:
    """The reason of a cell stuck early, on one line: what it waited for, how that
    ended, and what the guest showed, so a pattern that never matched (the guest
    file's mistake) is told from a guest that showed nothing (its failure). The
    screen's text when the console has a screen, else the serial console's tail."""
    _, m = pending
    waiting = f"waiting for milestone {m.name!r} ({what_it_looks_for(m)})"
    how = reason or ""
    for said in (f" while waiting for {m.name!r}", f"; waiting for {m.name!r}",
                 f"waiting for {m.name!r}"):
        how = how.replace(said, "")
    how = how.replace(f"milestone {m.name!r} not reached", "not reached")
    screen_text = shown.get("screen", "").strip()
    if screen and (screen_text or m.source == "screen"):
        seen = (f"the screen showed: {_one_line(screen_text, head=True)}" if screen_text
                else "the screen showed no text")
    else:
        serial = shown.get("serial", "").strip()
        seen = (f"the console showed: {_one_line(serial, head=False)}" if serial
                else "the console showed nothing")
    return f"{waiting}: {how}; {seen}" if how else f"{waiting}; {seen}"


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


# --- payloads: the steps after the boot, and their tests ------------------------------

_PAYLOAD_ENDINGS = {"crash": Verdict.CRASH, "timeout": Verdict.TIMEOUT, "exited": Verdict.FAIL,
                    "error": Verdict.ERROR, "interrupted": Verdict.ERROR}
FAIL_ON = ("any", "tests", "regression")


def payload_verdict(payload: PayloadOutcome) -> tuple[Verdict, str | None]:
    """A booted cell's verdict after its payload: still `pass` when every step ended
    (failed tests are counted, not a verdict), else how the first bad step ended."""
    if payload.end == "complete":
        return Verdict.PASS, None
    return _PAYLOAD_ENDINGS.get(payload.end, Verdict.ERROR), payload.detail or None


def mark_known(cases: Sequence[TestCase], known: Sequence[str]) -> list[TestCase]:
    """Failed tests an expectation names (`expect: [{tests: [glob]}]`) become xfail."""
    return [replace(c, status="xfail") if c.status == "failed"
            and any(fnmatch.fnmatchcase(c.name, g) for g in known) else c for c in cases]


def test_counts(cases: Sequence[TestCase]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "xfail": 0}
    for c in cases:
        counts["errors" if c.status == "error" else c.status] += 1
    return counts


def tests_failed(result: CellResult) -> bool:
    """Whether a cell's payload reported failed tests or errors (xfail ones aside). In a
    cell whose failure was expected (xfail) the errors are that failure's own - the test
    running when the known panic came (xv6's execout) - not news."""
    if not result.tests:
        return False
    errors = 0 if result.verdict == Verdict.XFAIL else result.tests["errors"]
    return result.tests["failed"] + errors > 0


def counts_as_failure(result: CellResult, strict: bool, fail_on: str = "any") -> bool:
    """Whether a cell makes `harness run` exit 1: its verdict, or its failed tests;
    `--fail-on tests` looks at the tests only (regression is the history's question)."""
    if fail_on == "tests":
        return tests_failed(result)
    return result.verdict.is_failure(strict) or tests_failed(result)
