"""The boot tracker's clock: stall, deadlines, crash grace, VM exit, accelerator errors."""

from __future__ import annotations

import re

from harness.console.tracker import BootTracker
from harness.model import FailureSignature, Milestone, Timeouts

MS = [Milestone("kernel", re.compile("Linux version")),
      Milestone("init", re.compile("Run /init"), timeout=10),
      Milestone("off", re.compile("Power down"), optional=True)]
FAIL = [FailureSignature("panic", re.compile("Kernel panic - not syncing"))]
KVM = [FailureSignature("kvm-internal-error", re.compile("KVM internal error"))]


def tracker(**kw) -> BootTracker:
    args = dict(milestones=MS, failures=FAIL, timeouts=Timeouts(total=100, stall=20),
                accel_failures=KVM, start=1000.0)
    args.update(kw)
    return BootTracker(**args)


def test_complete_when_every_milestone_is_reached():
    t = tracker()
    t.feed(b"Linux version 6\n", 1001)
    t.feed(b"Run /init\n", 1002)
    assert t.outcome is None  # still waiting for the optional power-off
    t.feed(b"reboot: Power down\n", 1003)
    assert t.outcome.end == "complete" and t.outcome.reached == {0: 1, 1: 2, 2: 3}


def test_optional_wait_ends_with_the_vm_or_the_stall():
    t = tracker()
    t.feed(b"Linux version 6\nRun /init\n", 1001)
    assert t.exited(1002, 0).end == "complete"
    t = tracker()
    t.feed(b"Linux version 6\nRun /init\n", 1001)
    assert t.tick(1020.9) is None
    assert t.tick(1021.0).end == "complete"


def test_stall_is_a_hang():
    t = tracker(milestones=[MS[0], Milestone("init", re.compile("Run /init"))])
    t.feed(b"Linux version 6\n", 1005)
    t.feed(b"chatter\n", 1006)
    assert t.tick(1025.9) is None
    out = t.tick(1026.0)
    assert out.end == "hang" and out.t == 26.0 and out.detail == "no console output for 20 s"


def test_a_deadline_with_nothing_printed_since_the_last_milestone_is_a_hang():
    t = tracker()
    t.feed(b"Linux version 6\n", 1005)
    assert t.tick(1014.9) is None
    out = t.tick(1015.0)
    assert out.end == "hang"
    assert out.detail == "no console output for 10 s (milestone 'init' not reached within 10 s)"


def test_output_that_keeps_flowing_hits_the_deadlines():
    t = tracker()
    t.feed(b"Linux version 6\n", 1001)
    for now in range(1002, 1011):
        t.feed(b"chatter\n", now)
        assert t.tick(now) is None
    t.feed(b"chatter\n", 1011)
    out = t.tick(1011)
    assert out.end == "timeout" and out.detail == "milestone 'init' not reached within 10 s"
    t = tracker(milestones=MS[:1], timeouts=Timeouts(total=5, stall=20))
    for now in range(1000, 1006):
        t.feed(b"x", now)
        t.tick(now)
    assert t.outcome.end == "timeout" and t.outcome.detail == "the total deadline of 5 s"


def test_crash_keeps_reading_for_the_backtrace():
    t = tracker()
    t.feed(b"Linux version 6\nKernel panic - not syncing: VFS\n", 1001)
    assert t.tick(1001.5) is None
    t.feed(b"Call Trace:\n", 1001.9)
    assert t.tick(1003.5) is None
    assert t.tick(1003.95).end == "crash"  # quiet for CRASH_QUIET (2 s)
    t = tracker()
    t.feed(b"Kernel panic - not syncing: x\n", 1001)
    for now in (1001.5, 1002, 1002.5, 1003, 1003.5):
        t.feed(b"more backtrace\n", now)
        t.tick(now)
    t.tick(1004)
    assert t.outcome.end == "crash" and t.outcome.t == 4.0  # 3 s grace, however chatty


def test_a_panic_followed_by_the_vm_exiting_is_a_crash():
    t = tracker()
    t.feed(b"Linux version\nKernel panic - not syncing: Attempted to kill init!\n", 1001)
    out = t.exited(1001.2, 0)
    assert out.end == "crash" and out.failure.name == "panic"


def test_the_vm_exiting_early_is_exited():
    t = tracker()
    t.feed(b"Linux version 6\n", 1001)
    out = t.exited(1002, 0)
    assert out.end == "exited" and out.exit_status == 0 and out.reached == {0: 1}


def test_accelerator_failure_on_stderr_ends_the_cell():
    t = tracker()
    t.vmm_stderr(b"KVM internal error. Suberror: 1\nemulation failure\n", 1003)
    assert t.outcome.end == "accel" and t.outcome.failure.name == "kvm-internal-error"
    assert t.outcome.detail == "KVM internal error"


def test_an_optional_milestone_with_a_timeout_is_given_up():
    ms = [Milestone("a", re.compile("AAA")),
          Milestone("banner", re.compile("BANNER"), optional=True, timeout=2),
          Milestone("c", re.compile("CCC"))]
    t = tracker(milestones=ms)
    t.feed(b"AAA\n", 1001)
    t.feed(b"...\n", 1003.5)
    assert t.tick(1003.5) is None and t.candidates() == [2]  # the banner is given up
    t.feed(b"BANNER CCC\n", 1004)
    assert t.outcome.end == "complete" and 1 not in t.outcome.reached


def test_read_gives_the_cleaned_text_and_the_events():
    t = tracker()
    feed = t.read(b"\x1b[0mLinux version 6\r\n", 1001)
    assert feed.text == "Linux version 6\r\n" and [e.name for e in feed.events] == ["kernel"]
    assert t.candidates() == [1]
    t.interrupt(1002, "stop")
    assert t.read(b"\x1b[1mRun /init\n", 1003).text == "Run /init\n"  # logged, not matched
    assert t.feed(b"Run /init\n", 1003) == [] and t.outcome.reached == {0: 1}


def test_screen_milestones_pending_and_a_crash_stops_reaching():
    ms = [Milestone("menu", None, source="screen"), Milestone("prompt", re.compile("A:>"),
                                                              source="screen", optional=True),
          Milestone("idle", None, source="screen")]
    t = tracker(milestones=ms)
    assert t.pending_screen_milestones() == [(0, ms[0])]
    assert [e.name for e in t.reach(0, 1001, "needle similarity 0.990")] == ["menu"]
    assert t.pending_screen_milestones() == [(1, ms[1]), (2, ms[2])]
    t.feed(b"Kernel panic - not syncing: x\n", 1002)
    assert t.reach(2, 1002.5) == []  # nothing is reached after a fatal failure
    assert t.tick(1005).end == "crash" and t.outcome.reached == {0: 1}
