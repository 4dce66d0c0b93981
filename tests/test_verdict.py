"""The verdict table of DESIGN.md, the score, expectations and exit statuses."""

from __future__ import annotations

import re

import pytest

from harness.console.matcher import Event
from harness.console.tracker import Outcome
from harness.model import Expectation, Milestone, Verdict
from harness.verdict import apply_expectation, decide, score

MS = [Milestone("kernel", re.compile("k"), weight=1), Milestone("init", re.compile("i"), weight=3),
      Milestone("off", re.compile("o"), optional=True)]
PANIC = Event("failure", "panic", 2.0, "Kernel panic - not syncing: x", fatal=True)
KVM = Event("failure", "kvm-internal-error", 1.0, "KVM internal error", fatal=True)


@pytest.mark.parametrize("outcome, verdict, reason", [
    (Outcome("complete", 5, {0: 1, 1: 2}), Verdict.PASS, None),
    (Outcome("crash", 3, {0: 1}, PANIC), Verdict.CRASH, "panic: Kernel panic - not syncing: x"),
    (Outcome("crash", 3, {0: 1, 1: 2}, PANIC), Verdict.CRASH,
     "panic: Kernel panic - not syncing: x"),
    (Outcome("hang", 60, {0: 1}, detail="no console output for 60 s"), Verdict.HANG,
     "no console output for 60 s; waiting for 'init'"),
    (Outcome("timeout", 300, {}, detail="the total deadline of 300 s"), Verdict.TIMEOUT,
     "the total deadline of 300 s; waiting for 'kernel'"),
    (Outcome("exited", 4, {0: 1}, exit_status=0), Verdict.FAIL,
     "VM exited while waiting for 'init'"),
    (Outcome("exited", 4, {0: 1}, exit_status=-9), Verdict.FAIL,
     "VM exited (status -9) while waiting for 'init'"),
    (Outcome("exited", 0.1, {}, exit_status=1), Verdict.ERROR,
     "VMM exited with status 1 before any milestone"),
    (Outcome("accel", 1, {}, KVM, detail="KVM internal error. Suberror: 1"), Verdict.ERROR,
     "accelerator failure (kvm-internal-error): KVM internal error. Suberror: 1"),
    (Outcome("hang", 9, {0: 1}, detail="no console output for 9 s (milestone 'init' not "
             "reached within 9 s)"), Verdict.HANG,
     "no console output for 9 s (milestone 'init' not reached within 9 s)"),
    (Outcome("interrupted", 1, {}, detail="interrupted"), Verdict.ERROR,
     "interrupted; waiting for 'kernel'"),
])
def test_decide(outcome, verdict, reason):
    assert decide(MS, outcome) == (verdict, reason)


def test_score_weighs_required_milestones_only():
    assert score(MS, Outcome("hang", 1, {0: 1})) == 0.25
    assert score(MS, Outcome("complete", 1, {0: 1, 1: 2})) == 1.0
    assert score(MS, Outcome("complete", 1, {0: 1, 1: 2, 2: 3})) == 1.0
    assert score(MS, Outcome("timeout", 1, {})) == 0.0


def test_expectations():
    e = Expectation("hangs in IOAPIC setup", backend="haxm")
    assert apply_expectation(Verdict.HANG, "no output", e) == (
        Verdict.XFAIL, "no output (expected: hangs in IOAPIC setup)", Verdict.HANG)
    v, reason, under = apply_expectation(Verdict.PASS, None, e)
    assert (v, under) == (Verdict.XPASS, Verdict.PASS) and "but passed" in reason
    assert apply_expectation(Verdict.SKIP, "no kvm", e) == (Verdict.SKIP, "no kvm", None)
    assert apply_expectation(Verdict.ERROR, "no image", e) == (Verdict.ERROR, "no image", None)
    assert apply_expectation(Verdict.CRASH, "x", None) == (Verdict.CRASH, "x", None)


def test_what_counts_as_failure():
    failing = {v for v in Verdict if v.is_failure()}
    assert failing == {Verdict.CRASH, Verdict.HANG, Verdict.TIMEOUT, Verdict.FAIL, Verdict.ERROR}
    assert Verdict.XPASS.is_failure(strict=True) and not Verdict.XPASS.is_failure()
