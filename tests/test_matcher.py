"""The console matcher: pure, bytes in, events out."""

from __future__ import annotations

import re
import tracemalloc

from harness.console.clean import Cleaner
from harness.console.matcher import Matcher
from harness.model import FailureSignature, Milestone


def ms(name, pattern, **kw):
    return Milestone(name, re.compile(pattern), **kw)


def fail(name, pattern, fatal=True):
    return FailureSignature(name, re.compile(pattern), fatal)


LINUX = [ms("kernel", r"Linux version \d"), ms("init", "Run /init as init process"),
         ms("login", "login: ")]
PANIC = [fail("panic", "Kernel panic - not syncing"), fail("oops", r"Oops(?: -|:)", False)]


def feed_all(m: Matcher, chunks, t=0.0):
    events = []
    for i, c in enumerate(chunks):
        events += m.feed(c, t + i)
    return events


def test_milestones_in_order_with_times():
    m = Matcher(LINUX, PANIC)
    ev = feed_all(m, [b"Linux version 6.1\r\n", b"noise\r\nRun /init as init process\r\n",
                      b"host login: "])
    assert [(e.name, e.t) for e in ev] == [("kernel", 0), ("init", 1), ("login", 2)]
    assert m.done and not m.crashed


def test_a_pattern_split_across_reads():
    m = Matcher(LINUX, PANIC)
    data = b"[0.0] Linux version 6.1.0 (debian) Run /init as init process\n"
    ev = feed_all(m, [data[i:i + 3] for i in range(0, len(data), 3)])
    assert [e.name for e in ev] == ["kernel", "init"]


def test_a_prompt_without_newline():
    m = Matcher([ms("login", "login: $")], [])
    assert [e.name for e in m.feed(b"debian login: ", 1.0)] == ["login"]


def test_ansi_in_the_middle_of_a_pattern_and_split_escape():
    m = Matcher([ms("grub", "Welcome to GRUB!")], [])
    assert m.feed(b"\x1b[0mWelcome to \x1b[1;3", 0) == []
    assert [e.name for e in m.feed(b"1mGRUB\x1b[0m!\r\n", 1)] == ["grub"]


def test_order_matters_milestones_must_follow_each_other():
    m = Matcher(LINUX, [])
    assert m.feed(b"Run /init as init process\n", 0) == []  # init before kernel
    assert [e.name for e in m.feed(b"Linux version 6\n", 1)] == ["kernel"]
    assert [e.name for e in m.feed(b"Run /init as init process\n", 2)] == ["init"]


def test_same_chunk_events_come_in_console_order():
    m = Matcher(LINUX, PANIC)
    ev = m.feed(b"Linux version 6\nOops: 0000\nRun /init as init process\n"
                b"Kernel panic - not syncing: x\nlogin: ", 5.0)
    assert [(e.kind, e.name) for e in ev] == [
        ("milestone", "kernel"), ("failure", "oops"), ("milestone", "init"), ("failure", "panic")]
    assert ev[1].fatal is False and ev[3].fatal is True
    assert m.crashed and m.next == 2  # nothing after a fatal failure counts


def test_a_failure_after_the_last_milestone_is_not_reported():
    m = Matcher(LINUX[:1], PANIC)
    ev = m.feed(b"Linux version 6\nKernel panic - not syncing: late\n", 0)
    assert [e.name for e in ev] == ["kernel"]
    assert m.feed(b"Kernel panic - not syncing: later\n", 1) == []


def test_a_failure_while_optional_milestones_remain_is_reported():
    m = Matcher([ms("kernel", "Linux"), ms("off", "Power down", optional=True)], PANIC)
    m.feed(b"Linux\n", 0)
    assert m.required_done and not m.done
    assert [e.name for e in m.feed(b"Kernel panic - not syncing: x", 1)] == ["panic"]


def test_optional_milestones_are_skipped_by_later_ones():
    m = Matcher([ms("a", "AAA"), ms("b", "BBB", optional=True), ms("c", "CCC")], [])
    ev = m.feed(b"AAA then CCC", 0)
    assert [(e.name, e.index) for e in ev] == [("a", 0), ("c", 2)]


def test_a_warning_is_reported_once():
    m = Matcher(LINUX, PANIC)
    ev = feed_all(m, [b"Oops: 1\n", b"Oops: 2\n", b"Oops - 3\n"])
    assert [e.name for e in ev] == ["oops"]


def test_sends_ride_on_events():
    m = Matcher([ms("prompt", "# $", send="uname -a\n")], [])
    [e] = m.feed(b"/ # ", 0)
    assert e.send == "uname -a\n"


def test_non_utf8_bytes_and_split_characters():
    m = Matcher([ms("euro", "price: €5")], [])
    assert m.feed(b"\xff\xfe price: \xe2\x82", 0) == []
    assert [e.name for e in m.feed(b"\xac5", 1)] == ["euro"]


def test_memory_stays_bounded_on_a_flood():
    m = Matcher(LINUX, PANIC)
    line = b"[ 1.234567] random driver chatter that matches nothing at all 0123456789\r\n"
    chunk = line * (65536 // len(line))
    tracemalloc.start()
    for i in range(2000):  # ~128 MiB of console
        m.feed(chunk, float(i))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(m._streams["serial"].buf) <= m.window
    assert peak < 2_000_000  # a few chunks' worth, independent of the 128 MiB fed


def test_cleaner_keeps_text_and_drops_escapes():
    c = Cleaner()
    out = c.feed(b"\x1b]0;title\x07A\x1b(BB\x1b[?25lC\x1b7D\x1b[") + c.feed(b"2JE") + c.flush()
    assert out == "ABCDE"


def test_sources_keep_their_own_milestones_and_share_the_order():
    ms_list = [ms("grub", "GRUB"), Milestone("welcome", re.compile("Welcome"), source="screen"),
               Milestone("desktop", None, source="screen", optional=True),
               ms("shell", r"\$ ")]
    m = Matcher(ms_list, [fail("panic", "panic: ")])
    assert m.feed(b"Welcome", 0, source="screen") == []  # GRUB (serial) comes first
    assert [e.name for e in m.feed(b"GRUB 2.06\n", 1)] == ["grub"]
    assert m.feed(b"Welcome to g4u\n", 2) == []  # serial text cannot reach a screen milestone
    assert [e.name for e in m.feed(b"Welcome to g4u\n", 3, source="screen")] == ["welcome"]
    assert m.candidates() == [2, 3]
    assert m.reach(3, 4.0) is not None and m.done
    m = Matcher(ms_list, [fail("panic", "panic: ")])
    assert [e.name for e in m.feed(b"panic: trap\n", 1, source="screen")] == ["panic"]


def test_reach_only_takes_the_milestones_that_are_due():
    m = Matcher([ms("a", "A"), Milestone("n", None, source="screen"), ms("c", "C")], [])
    assert m.reach(1, 0.5) is None  # 'a' first
    m.feed(b"A", 1)
    ev = m.reach(1, 2.0, "needle 0.98")
    assert (ev.name, ev.index, ev.t, ev.text) == ("n", 1, 2.0, "needle 0.98")
