"""The console matcher: pure, bytes in, events out."""

from __future__ import annotations

import re
import tracemalloc

from harness.console.clean import Cleaner
from harness.console.matcher import Event, Matcher
from harness.console.order import candidates, finished, required_done
from harness.console.tracker import BootTracker
from harness.model import FailureSignature, Milestone, Timeouts


def ms(name, pattern, **kw):
    return Milestone(name, re.compile(pattern), **kw)


def fail(name, pattern, fatal=True):
    return FailureSignature(name, re.compile(pattern), fatal)


LINUX = [ms("kernel", r"Linux version \d"), ms("init", "Run /init as init process"),
         ms("login", "login: ")]
PANIC = [fail("panic", "Kernel panic - not syncing"), fail("oops", r"Oops(?: -|:)", False)]


class Run:
    """A matcher and a cursor moved on as the tracker moves it (the matcher has none)."""

    def __init__(self, milestones, failures, **kw) -> None:
        self.milestones = list(milestones)
        self.matcher = Matcher(milestones, failures, **kw)
        self.cursor = 0
        self.text = ""

    def feed(self, data: bytes, t: float, source: str = "serial") -> list[Event]:
        feed = self.matcher.feed(data, t, self.cursor, source)
        self.text = feed.text
        for ev in feed.events:
            if ev.kind == "milestone":
                self.cursor = ev.index + 1
        return feed.events

    @property
    def done(self) -> bool:
        return finished(self.milestones, self.cursor)


def feed_all(m: Run, chunks, t=0.0):
    events = []
    for i, c in enumerate(chunks):
        events += m.feed(c, t + i)
    return events


def test_milestones_in_order_with_times():
    m = Run(LINUX, PANIC)
    ev = feed_all(m, [b"Linux version 6.1\r\n", b"noise\r\nRun /init as init process\r\n",
                      b"host login: "])
    assert [(e.name, e.t) for e in ev] == [("kernel", 0), ("init", 1), ("login", 2)]
    assert m.done and all(e.kind == "milestone" for e in ev)


def test_a_pattern_split_across_reads():
    m = Run(LINUX, PANIC)
    data = b"[0.0] Linux version 6.1.0 (debian) Run /init as init process\n"
    ev = feed_all(m, [data[i:i + 3] for i in range(0, len(data), 3)])
    assert [e.name for e in ev] == ["kernel", "init"]


def test_a_prompt_without_newline():
    m = Run([ms("login", "login: $")], [])
    assert [e.name for e in m.feed(b"debian login: ", 1.0)] == ["login"]


def test_ansi_in_the_middle_of_a_pattern_and_split_escape():
    m = Run([ms("grub", "Welcome to GRUB!")], [])
    assert m.feed(b"\x1b[0mWelcome to \x1b[1;3", 0) == []
    assert [e.name for e in m.feed(b"1mGRUB\x1b[0m!\r\n", 1)] == ["grub"]


def test_order_matters_milestones_must_follow_each_other():
    m = Run(LINUX, [])
    assert m.feed(b"Run /init as init process\n", 0) == []  # init before kernel
    assert [e.name for e in m.feed(b"Linux version 6\n", 1)] == ["kernel"]
    assert [e.name for e in m.feed(b"Run /init as init process\n", 2)] == ["init"]


def test_same_chunk_events_come_in_console_order():
    m = Run(LINUX, PANIC)
    ev = m.feed(b"Linux version 6\nOops: 0000\nRun /init as init process\n"
                b"Kernel panic - not syncing: x\nlogin: ", 5.0)
    assert [(e.kind, e.name) for e in ev] == [
        ("milestone", "kernel"), ("failure", "oops"), ("milestone", "init"), ("failure", "panic")]
    assert ev[1].fatal is False and ev[3].fatal is True
    assert m.cursor == 2  # nothing after a fatal failure counts ...
    assert m.feed(b"login: Oops - 1\nBUG: x", 6.0) == []  # ... not even later
    assert m.text == "login: Oops - 1\nBUG: x"  # though the text is still cleaned


def test_a_failure_after_the_last_milestone_is_not_reported():
    m = Run(LINUX[:1], PANIC)
    ev = m.feed(b"Linux version 6\nKernel panic - not syncing: late\n", 0)
    assert [e.name for e in ev] == ["kernel"]
    assert m.feed(b"Kernel panic - not syncing: later\n", 1) == []


def test_a_failure_while_optional_milestones_remain_is_reported():
    m = Run([ms("kernel", "Linux"), ms("off", "Power down", optional=True)], PANIC)
    m.feed(b"Linux\n", 0)
    assert required_done(m.milestones, m.cursor) and not m.done
    assert [e.name for e in m.feed(b"Kernel panic - not syncing: x", 1)] == ["panic"]


def test_optional_milestones_are_skipped_by_later_ones():
    m = Run([ms("a", "AAA"), ms("b", "BBB", optional=True), ms("c", "CCC")], [])
    ev = m.feed(b"AAA then CCC", 0)
    assert [(e.name, e.index) for e in ev] == [("a", 0), ("c", 2)]


def test_a_warning_is_reported_once():
    m = Run(LINUX, PANIC)
    ev = feed_all(m, [b"Oops: 1\n", b"Oops: 2\n", b"Oops - 3\n"])
    assert [e.name for e in ev] == ["oops"]


def test_sends_ride_on_events():
    m = Run([ms("prompt", "# $", send="uname -a\n")], [])
    [e] = m.feed(b"/ # ", 0)
    assert e.send == "uname -a\n"


def test_non_utf8_bytes_and_split_characters():
    m = Run([ms("euro", "price: €5")], [])
    assert m.feed(b"\xff\xfe price: \xe2\x82", 0) == []
    assert [e.name for e in m.feed(b"\xac5", 1)] == ["euro"]


def test_memory_stays_bounded_on_a_flood():
    m = Run(LINUX, PANIC)
    line = b"[ 1.234567] random driver chatter that matches nothing at all 0123456789\r\n"
    chunk = line * (65536 // len(line))
    tracemalloc.start()
    for i in range(2000):  # ~128 MiB of console
        m.feed(chunk, float(i))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(m.matcher._streams["serial"].buf) <= m.matcher.window
    assert peak < 2_000_000  # a few chunks' worth, independent of the 128 MiB fed


def test_cleaner_keeps_text_and_drops_escapes():
    c = Cleaner()
    out = c.feed(b"\x1b]0;title\x07A\x1b(BB\x1b[?25lC\x1b7D\x1b[") + c.feed(b"2JE") + c.flush()
    assert out == "ABCDE"


def tracker(milestones, failures) -> BootTracker:
    return BootTracker(milestones, failures, Timeouts(total=100, stall=20))


def test_sources_keep_their_own_milestones_and_share_the_order():
    ms_list = [ms("grub", "GRUB"), Milestone("welcome", re.compile("Welcome"), source="screen"),
               Milestone("desktop", None, source="screen", optional=True),
               ms("shell", r"\$ ")]
    m = Run(ms_list, [fail("panic", "panic: ")])
    assert m.feed(b"Welcome", 0, source="screen") == []  # GRUB (serial) comes first
    assert [e.name for e in m.feed(b"GRUB 2.06\n", 1)] == ["grub"]
    assert m.feed(b"Welcome to g4u\n", 2) == []  # serial text cannot reach a screen milestone
    assert [e.name for e in m.feed(b"Welcome to g4u\n", 3, source="screen")] == ["welcome"]
    assert list(candidates(ms_list, m.cursor)) == [2, 3]
    t = tracker(ms_list, [fail("panic", "panic: ")])
    t.feed(b"GRUB 2.06\n", 1)
    t.feed(b"Welcome to g4u\n", 3, source="screen")
    assert t.candidates() == [2, 3]
    assert t.pending_screen_milestones() == [(2, ms_list[2])]
    assert [e.name for e in t.reach(3, 4.0)] == ["shell"] and t.outcome.end == "complete"
    m = Run(ms_list, [fail("panic", "panic: ")])
    assert [e.name for e in m.feed(b"panic: trap\n", 1, source="screen")] == ["panic"]


def test_reach_only_takes_the_milestones_that_are_due():
    t = tracker([ms("a", "A"), Milestone("n", None, source="screen"), ms("c", "C")], [])
    assert t.reach(1, 0.5) == []  # 'a' first
    t.feed(b"A", 1)
    [ev] = t.reach(1, 2.0, "needle 0.98")
    assert (ev.name, ev.index, ev.t, ev.text) == ("n", 1, 2.0, "needle 0.98")
    assert t.reach(1, 3.0) == []  # once


def test_the_feed_gives_the_cleaned_text_for_the_transcript():
    m = Matcher(LINUX, PANIC)
    feed = m.feed(b"\x1b[1mLinux version 6\x1b[0m\r\nOops: 1\xe2\x82", 1.0, 0)
    assert feed.text == "Linux version 6\r\nOops: 1"  # the half character waits
    assert [(e.kind, e.name) for e in feed.events] == [("milestone", "kernel"), ("failure", "oops")]
    assert m.feed(b"\xac", 2.0, 1).text == "\u20ac"
    assert m.clean(b"\x1b[0mRun /init as init process", "serial") == "Run /init as init process"


def test_no_milestones_watches_failures_for_as_long_as_it_is_fed():
    m = Matcher([], PANIC)
    assert [e.name for e in m.feed(b"Oops: 1\n", 0, 0).events] == ["oops"]
    assert [e.name for e in m.feed(b"x" * 10000 + b"Kernel panic - not syncing", 1, 0).events] \
        == ["panic"]
