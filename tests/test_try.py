"""`harness try`: an image nobody wrote a guest file for, booted, named, written.

Pure parts here (patterns from observed lines, where backends part, usage errors);
real boots of the local images in test_try_boot.py."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from harness.tryout.command import _where_they_part
from harness.tryout.observe import Answer, Observation
from harness.tryout.phases import Seen, Sign
from harness.tryout.source import guest_id
from harness.tryout.write import milestones, pattern_of

from .conftest import ROOT


@pytest.mark.parametrize("line, again", [
    ("SeaBIOS (version 1.16.2-debian-1.16.2-1)", "SeaBIOS (version 1.17.0-debian-1.17.0-3)"),
    ("Autoboot in 5 seconds. [Space] to pause", "Autoboot in 10 seconds. [Space] to pause"),
    ("C:\\>", "C:\\>"),
    ("Linux version 6.1.0-40-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0",
     "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0"),
])
def test_a_pattern_matches_the_line_again_with_other_numbers(line, again):
    p = re.compile(pattern_of(line, "serial"))
    assert p.search(line) and p.search(again)
    assert not p.search("something else entirely")


def test_a_long_line_keeps_a_distinctive_head():
    p = pattern_of("Welcome to the installer of a system with a very long banner line indeed", "x")
    assert len(p) < 80 and re.compile(p).search("Welcome to the installer of a system with a")


def sign(name: str, phase: str, kind: str = "banner") -> Sign:
    return Sign(name, "fam", phase, kind, re.compile(name))


def obs(*names: str, verdict: str = "pass", answers=()) -> Observation:
    seen = [Seen(sign(n, "userland" if n.endswith("prompt") else "firmware"), n, "serial",
                 float(i)) for i, n in enumerate(names)]
    return Observation(verdict, seen[-1].sign.phase, names[-1], "x", seen, list(answers))


def test_the_answer_goes_to_the_line_it_answered():
    o = obs("seabios", "dos-prompt", answers=[Answer(1.5, "serial", "\n", "C:\\>", True),
                                             Answer(3.0, "serial", "\n", "x", False)])
    ms = milestones(o)
    assert [m["name"] for m in ms] == ["seabios", "dos-prompt"]
    assert ms[1]["send"] == "\n" and "send" not in ms[0]
    assert ms[0]["timeout"] >= 30 and ms[1]["timeout"] >= 30


@pytest.mark.parametrize("kind, line, want", [
    ("shell", "g4u> g4u> g4u>", "g4u>"),  # Enters typed ahead of NetBSD g4u's prompt
    ("shell", "g4u> ", "g4u>"),
    ("prompt", "boot: boot:", "boot:"),
    ("banner", "la la la", "la la la"),  # only a waiting line is a repeated prompt
])
def test_a_prompt_repeated_by_enters_typed_ahead_is_waited_for_once(kind, line, want):
    s = Seen(Sign("s", "fam", "userland", kind, re.compile("x")), line, "serial", 1.0)
    (m,) = milestones(Observation("pass", "userland", "s", "x", [s], []))
    assert m["pattern"] == pattern_of(want, "serial")


def test_where_backends_part():
    same = {"tcg": obs("seabios", "dos-prompt"), "kvm": obs("seabios", "dos-prompt")}
    assert _where_they_part(same) == "all backends showed the same phases"
    apart = {"tcg": obs("seabios", "dos-prompt"),
             "kvm": obs("seabios", "hang-here", verdict="hang")}
    assert _where_they_part(apart) == ("they part after seabios: tcg: dos-prompt (pass), "
                                       "kvm: hang-here (hang)")
    assert _where_they_part({"tcg": obs("seabios")}) is None


def test_guest_ids_come_from_file_names():
    assert guest_id("/x/FreeDOS_1.3-LiveCD.iso.xz") == "freedos-1-3-livecd"
    assert guest_id("https://h/p/netbsd.img?x=1") == "netbsd"
    assert guest_id("!!!") == "image"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args, message", [
    ((), "give an IMAGE, or --kernel"),
    (("x.img", "--backend", "nope"), "--backend: unknown nope"),
    (("x.img", "--write", "g.txt"), "--write: a guest file is named ID.yaml"),
    (("/no/such/file.img",), "/no/such/file.img: no such file"),
])
def test_usage_errors(args, message):
    proc = harness("try", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_long_status_line_is_waited_for_by_what_proved_the_phase():
    line = "es 1 Threads SMP: Disabled | Time: 0:00:02 Status: Testing (    )  Pass 1"
    s = Seen(Sign("memtest-testing", "memtest86+", "kernel", "running",
                  re.compile("Status: Testing")), line, "serial", 1.0)
    (m,) = milestones(Observation("pass", "kernel", "x", "x", [s], []))
    assert m["pattern"] == "Status: +Testing"


def test_a_screen_replaced_at_once_is_an_optional_milestone():
    """A run polls the screen and may miss what was there for a moment; the last line and
    the lines that stayed are required."""
    seen = [Seen(sign("seabios", "firmware"), "SeaBIOS (version 1.16)", "screen", 0.2),
            Seen(sign("booting", "firmware"), "Booting from ROM...", "screen", 0.3),
            Seen(sign("memtest", "kernel"), "Memtest86+ v6.10", "serial", 5.0),
            Seen(sign("testing", "kernel"), "Status: Testing", "screen", 5.5)]
    ms = milestones(Observation("pass", "kernel", "x", "x", seen, []))
    assert [m.get("optional", False) for m in ms] == [True, False, False, False]
