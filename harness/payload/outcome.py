"""A finished payload step as results: its record, its test cases, what went wrong.

Pure. The step's console (or the file it sent back) is parsed in the step's
format; a step that ended badly names the test that was running in it
(a `lines` pattern whose status never came, an ATF test case left open),
and that test is an `error` case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..console.matcher import Event
from ..model import PayloadStep, TestCase
from .parsers import OUTPUT_CHARS, Parsed, ResultsError, parse
from .step import StepEnd


@dataclass
class PayloadOutcome:
    """How the payload went: `complete`, or the first step that ended badly
    (crash | timeout | exited | error | interrupted) and why."""

    end: str = "complete"
    detail: str = ""
    steps: list[dict[str, object]] = field(default_factory=list)
    cases: list[TestCase] = field(default_factory=list)
    failure: Event | None = None
    # steps whose results are on a disk: concluded by `conclude_deferred` once the VM is off
    deferred: list[tuple[PayloadStep, StepEnd]] = field(default_factory=list)


def _text_of(step: PayloadStep, end: StepEnd) -> tuple[str, str | None]:
    """The text to parse (the step's output, or its file) and a problem with the file."""
    if end.framed is None:
        return end.text, None
    if step.file is None:
        return end.framed.output, None
    if end.framed.file is None:
        return "", f"file {step.file}: {end.framed.file_error}"
    return end.framed.file.decode("utf-8", "replace"), None


def conclude(step: PayloadStep, end: StepEnd, outcome: PayloadOutcome) -> bool:
    """Add a finished step to `outcome`; whether the payload may go on."""
    text, file_problem = _text_of(step, end)
    status = end.framed.status if end.framed is not None else None
    problem: str | None = file_problem
    try:
        parsed = parse(step.results, text, step.pattern, dict(step.statuses))
    except ResultsError as exc:
        parsed = exc.partial
        problem = problem or f"results ({step.results}) do not parse: {exc}"
    cases = [TestCase(n, s, step.name, o) for n, s, o in parsed.cases]
    if step.setup:  # the harness's own step: a failure is the harness's side, no test
        if end.end == "done" and status not in (0, None):
            problem = problem or f"failed with status {status}: {_tail(text)[-200:].strip()}"
    elif step.results == "none" and end.end == "done":
        failed = status not in (0, None)
        cases.append(TestCase(step.name, "failed" if failed else "passed", step.name,
                              _tail(text) if failed else ""))
    running = _running(parsed, end)
    if running is not None:
        cases.append(TestCase(running, "error", step.name, _why(step, end)))
    outcome.cases.extend(cases)
    if step.setup and end.end == "done" and problem is None:
        return True  # not listed: one line of a file typed in
    outcome.steps.append({"name": step.name, "end": end.end, "status": status,
                          "duration_s": round(end.t, 3), "tests": len(cases)})
    if end.end != "done":
        outcome.end = end.end
        outcome.failure = end.failure
        outcome.detail = _detail(step, end, running)
        return False
    if problem is not None:
        outcome.end, outcome.detail = "error", f"payload step {step.name!r}: {problem}"
        return False
    return True


def conclude_deferred(outcome: PayloadOutcome, read: Callable[[str, str], bytes]) -> None:
    """Conclude the steps whose results file is on a disk (`disk:`), in order, now that
    `read(disk, member)` can take it off the disk (it raises DiskResultsError)."""
    from .disk import DiskResultsError

    waiting, outcome.deferred = outcome.deferred, []
    first_bad = (outcome.end, outcome.detail, outcome.failure)  # a later step's, kept
    for step, end in waiting:
        assert end.framed is not None and step.disk is not None and step.file is not None
        try:
            framed = replace(end.framed, file=read(step.disk, step.file), file_error=None)
        except DiskResultsError as exc:
            framed = replace(end.framed, file=None, file_error=f"on disk {step.disk}: {exc}")
        if not conclude(step, replace(end, framed=framed), outcome):
            break
    if first_bad[0] != "complete":
        outcome.end, outcome.detail, outcome.failure = first_bad


def _running(parsed: Parsed, end: StepEnd) -> str | None:
    return parsed.running if end.end != "done" else None


def _why(step: PayloadStep, end: StepEnd) -> str:
    if end.end == "crash" and end.failure is not None:
        return f"the guest crashed while it ran: {end.failure.text.strip()}"
    if end.end == "timeout":
        return f"still running when step {step.name!r} timed out ({step.timeout:g} s)"
    return f"never finished: the step ended ({end.end})"


def _detail(step: PayloadStep, end: StepEnd, running: str | None) -> str:
    where = f"payload step {step.name!r}" + (f", test {running!r} running" if running else "")
    if end.end == "crash" and end.failure is not None:
        return f"{end.failure.name}: {end.failure.text.strip()} ({where})"
    if end.end == "timeout":
        what = "its end marker" if step.shell == "posix" else "its `until:` pattern"
        return f"{where}: not finished within {step.timeout:g} s ({what} never came)"
    if end.end == "exited":
        return f"VM exited during {where}"
    return f"{where}: interrupted"


def _tail(text: str) -> str:
    return text[-OUTPUT_CHARS:]
