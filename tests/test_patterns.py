"""Guest patterns cannot freeze the harness: RE2 where it can, a time budget elsewhere.

The rewrite into RE2's syntax must keep Python's meaning: every pattern
the project ships is run through both engines over the recorded consoles
and must give the same matches. Catastrophic patterns finish at once on
RE2, are refused at load time where RE2 cannot take them, and otherwise
end their cell with an `error` verdict after the budget; a run busy in
such patterns still stops on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
import yaml

from harness.console import re2syntax
from harness.console.engine import RE2, PatternTimeout, compile_pattern, load_problem
from harness.console.matcher import Matcher
from harness.model import FailureSignature, Milestone

from . import flood_backend
from .conftest import GUESTS, ROOT, TEST_GUESTS, write
from .test_hygiene import descendants, gone_within

needs_re2 = pytest.mark.skipif(not RE2, reason="google-re2 is not installed")
TRANSCRIPTS = sorted((Path(__file__).parent / "data" / "transcripts").glob("*.log"))
CATASTROPHIC = [r"(a+)+$", r"(x+x+)+y", r"(a|a)*b", r"(a|aa)+$", r"(\w+\s?)+$", r"(.*a){12}"]


def shipped_patterns() -> list[str]:
    """Every `pattern:` in the data tables, the catalog and the test guests."""
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    files = [*(ROOT / "harness" / "data").glob("*.yaml"), *GUESTS.glob("*.yaml"),
             *TEST_GUESTS.glob("*.yaml")]
    for path in files:
        walk(yaml.safe_load(path.read_text()))
    return sorted(set(out))


def every_match(search, text: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of each match, searching on from the last one as the matcher does."""
    out, pos = [], 0
    while pos <= len(text):
        m = search(text, pos)
        if m is None:
            break
        start, end, matched = ((m.start(), m.end(), m.group(0)) if isinstance(m, re.Match)
                               else (m.start, m.end, m.text))
        out.append((start, end, matched))
        pos = max(end, start + 1)
    return out


@needs_re2
def test_the_shipped_patterns_run_on_re2_but_those_with_lookarounds():
    patterns = shipped_patterns()
    assert len(patterns) > 100
    engines = {p: compile_pattern(re.compile(p)).engine for p in patterns}
    assert {p for p, e in engines.items() if e != "re2"} == {
        r"BUG: (?!soft lockup)[^\n]*\n", r"panic (?![^\n]*bootstrap_create)[^\n]*\n"}
    assert all(load_problem(re.compile(p)) is None for p in patterns)


@needs_re2
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.name for p in TRANSCRIPTS])
def test_re2_finds_what_python_finds_in_the_recorded_consoles(path):
    text = path.read_text(errors="replace")
    found = 0
    for p in shipped_patterns():
        python = re.compile(p)
        ours = compile_pattern(python)
        expected = every_match(python.search, text)
        assert every_match(ours.search, text) == expected, p
        found += len(expected)
    assert found > 0


# Constructs whose spelling or meaning differs between Python and RE2, each with texts
# that tell the meanings apart.
TRICKY = [
    (r"a{,2}b", ["aaab", "b", "a{,2}b"]),
    (r"x\s+y", ["x \t\x0b\x0c\x1c\x85\u2003\u3000y", "x\u200by"]),
    (r"\d+", ["12\u0663\u0967 x", "\u00b2"]),
    (r"\w+", ["h\u00e9llo_w\u00f6rld 42 \u00b2 \u2160"]),
    (r"\W+|\S+", ["a b\u00a0c"]),
    (r"[^\d\s]+", ["ab 12\u0663 cd"]),
    (r"ok$", ["ok", "ok\n", "ok\n\n", "ok \n", "okok\n"]),
    (r"(a+)+$", ["aaa\n", "aab", "\u00e9aaa"]),
    (r"(?m)^login: $", ["x\nlogin: \nmore", "login: "]),
    (r"^Welcome", ["Welcome", "x\nWelcome"]),
    (r"end\Z", ["end", "end\n"]),
    (r"a.c", ["a\nc abc", "a\u00e9c"]),
    (r"(?s)a.c", ["a\nc"]),
    (r"(?i)linux VERSION", ["LINUX version", "Linux Version"]),
    (r"(?i:grub)Loader", ["GRUBLoader", "grubloader"]),
    (r"<.*?>", ["<a><b>"]),
    (r"(?P<n>ab)+c|x", ["ababc", "x"]),
    (r"[\]\-^]+", ["a]-^b"]),
    (r"\.\*\+\?\(\)\{\}\|\\\$", [".*+?(){}|\\$"]),
    (r"\x1b\[0m|\t", ["a\x1b[0m\tb"]),
    (r"(?a)\w+\s", ["h\u00e9llo abc "]),
    (r"caf\u00e9 \d", ["un caf\u00e9 7"]),
    (r"\bword\b", ["a word here", "swordfish"]),
]


@needs_re2
@pytest.mark.parametrize("pattern,texts", TRICKY, ids=[p for p, _ in TRICKY])
def test_the_rewrite_keeps_pythons_meaning(pattern, texts):
    python = re.compile(pattern)
    ours = compile_pattern(python)
    assert ours.engine == "re2", pattern
    for text in texts:
        for pos in range(0, len(text) + 1):
            want = python.search(text, pos)
            got = ours.search(text, pos)
            assert (got and (got.start, got.end, got.text)) == (
                want and (want.start(), want.end(), want.group(0))), (text, pos)


def test_python_whitespace_and_word_characters_are_spelled_out_exactly():
    space = {c for lo, hi in re2syntax.UNICODE_SPACE for c in range(lo, hi + 1)}
    assert space == {c for c in range(0x110000) if re.match(r"\s", chr(c))}
    if RE2:  # \w as [\p{L}\p{N}_], over every character this Python knows
        python, ours = re.compile(r"\w+"), compile_pattern(re.compile(r"\w+"))
        known = "".join(chr(c) for c in range(0x110000)
                        if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn")
        assert every_match(ours.search, known) == every_match(python.search, known)


@pytest.mark.parametrize("pattern,why", [
    (r"(?=x)y", "lookahead"), (r"(a)\1", "backreference"), (r"(?>a+)b", "atomic group"),
    (r"a++", "possessive"), (r"a{2000}", "over 1000"), (r"a$|b", "`$` before the end"),
    (r"[\w\W]", "\\W inside"), (r"(?a)(?i)k", "ASCII|IGNORECASE"),
])
def test_what_re2_lacks_is_named(pattern, why):
    with pytest.raises(re2syntax.Untranslatable, match=re.escape(why)):
        re2syntax.translate(re.compile(pattern))
    assert compile_pattern(re.compile(pattern)).engine == "regex"


@needs_re2
@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_finish_at_once_through_the_matcher(pattern):
    m = Matcher([Milestone("stuck", re.compile(pattern)), Milestone("after", re.compile("END"))],
                [FailureSignature("bad", re.compile(pattern))])
    started = time.monotonic()
    events = []
    for i in range(40):  # 100 kB of 'a' then a 'b', in reads of 2.5 kB
        events += m.feed(b"a" * 2500, float(i), 0).events
    events += m.feed(b"b\nEND\n", 41.0, 0).events
    assert time.monotonic() - started < 10  # minutes per read with Python's re
    assert "after" not in [e.name for e in events if e.kind == "milestone"]


def test_a_pattern_past_the_budget_ends_the_feed_naming_itself():
    m = Matcher([Milestone("stuck", re.compile(r"(?=a)(a|aa)+$"))], [], budget=0.2)
    started = time.monotonic()
    with pytest.raises(PatternTimeout, match=r"milestone 'stuck' pattern took over 0\.2 s"):
        m.feed(b"a" * 60 + b"!", 0.0, 0)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("pattern,message", [
    (r"(?=a)(a+)+$", "nested unbounded repeats"), (r"(x+x+)+(?!y)", "nested unbounded repeats"),
    (r"(\w+)*\1", "nested unbounded repeats"),
    (r"((a{1000}){1000}){1000}", "the pattern expands to more than 100000 steps"),
    ("(" * 600 + ")" * 600, "invalid regular expression: groups nested too deeply"),
])
def test_catastrophic_patterns_re2_cannot_take_are_refused_at_load(tmp_path, pattern, message):
    guest = write(tmp_path / "guests" / "g.yaml", (
        "id: g\nos: linux\narch: x86_64\nimages:\n  kernel: {file: vmlinuz}\n"
        "boot: {kernel: kernel}\nmilestones:\n  - {name: ok, pattern: 'Linux'}\n"
        f"failures:\n  - name: bad\n    pattern: '{pattern}'\n"))
    matrix = write(tmp_path / "matrix.yaml", "guests: [g]\nbackends: [tcg]\n")
    for command in ("list", "run"):
        proc = subprocess.run([sys.executable, "-m", "harness", command, "--matrix",
                               str(matrix), "--guests", str(guest.parent)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{guest}:11: failures[0].pattern: {message}" in proc.stderr
        assert "Traceback" not in proc.stderr


def flood_guest(folder: Path, name: str, console: str, pattern: str) -> None:
    write(folder / "vmlinuz", "")
    write(folder / f"{name}.yaml", (
        f"id: {name}\nos: linux\narch: x86_64\nimages:\n  kernel: {{file: vmlinuz}}\n"
        f"boot: {{kernel: kernel, cmdline: '{console}'}}\n"
        f"milestones:\n  - {{name: stuck, pattern: '{pattern}'}}\n"
        "timeouts: {total: 120, stall: 60}\n"))


SLOW = r"(?=a)(a|aa)+$"  # not nested: accepted at load, exponential in `regex`
A_LINE = "a" * 70 + "!\\n"


def test_a_pattern_past_the_budget_is_the_cells_error_verdict(tmp_path):
    flood_guest(tmp_path / "guests", "slow", A_LINE, SLOW)
    matrix = write(tmp_path / "matrix.yaml", "guests: [slow]\nbackends: [flood]\n")
    proc = flood_backend.run("--matrix", str(matrix), "--guests", str(tmp_path / "guests"),
                             "--out", str(tmp_path / "reports"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    results = yaml.safe_load((tmp_path / "reports/latest/results.json").read_text())
    [cell] = results["cells"]
    assert cell["verdict"] == "error"
    assert cell["reason"] == ("milestone 'stuck' pattern took over 0.5 s on the console; "
                              "simplify it")
    log = (tmp_path / "reports/latest/cells/slow/flood-bios/console.log").read_text()
    assert "### harness: milestone 'stuck' pattern took over 0.5 s" in log


def test_ctrl_c_stops_a_run_busy_in_a_slow_pattern(tmp_path):
    names = [f"slow{i}" for i in range(6)]
    for name in names:
        flood_guest(tmp_path / "guests", name, A_LINE, SLOW)
    matrix = write(tmp_path / "matrix.yaml",
                   f"guests: [{', '.join(names)}]\nbackends: [flood]\njobs: 1\n")
    proc = flood_backend.run("--matrix", str(matrix), "--guests", str(tmp_path / "guests"),
                             "--out", str(tmp_path / "reports"), start_new_session=True)
    deadline = time.monotonic() + 60
    while not (vms := [p for p in descendants(proc.pid) if _is_flood(p)]):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    try:
        time.sleep(0.3)  # inside the patterns' budget
        os.kill(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the run ignored Ctrl-C")
        assert time.monotonic() - sent < 5, "the run took long to honour Ctrl-C"
        assert proc.returncode == 130, out + err
        assert gone_within(vms, 5), "a console process outlived the run"
    finally:  # whatever failed, nothing of this test keeps running
        for pid in [proc.pid, *vms]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def _is_flood(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"flood.py" in f.read()
    except OSError:
        return False


def test_replay_of_a_slow_pattern_ends_with_a_message(tmp_path):
    flood_guest(tmp_path / "guests", "slow", "x", SLOW)
    matrix = write(tmp_path / "matrix.yaml", "guests: [slow]\nbackends: [tcg]\n")
    log = tmp_path / "console.log"
    log.write_bytes(("a" * 70 + "!\n").encode() * 20)
    proc = subprocess.run([sys.executable, "-m", "harness", "replay", "slow", str(log),
                           "--matrix", str(matrix), "--guests", str(tmp_path / "guests")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ("harness: slow: milestone 'stuck' pattern took over 0.5 s on the console; "
            "simplify it (at byte 0 of the transcript)") in proc.stderr


def test_without_re2_a_catastrophic_pattern_is_bounded_by_the_budget():
    """A host without a google-re2 wheel (NetBSD): every pattern backtracks, within budget."""
    ms = [Milestone("kernel", re.compile(r"Linux version \d")),
          Milestone("stuck", re.compile(r"(a+)+$"))]
    m = Matcher(ms, [], budget=0.2, use_re2=False)
    assert [e.name for e in m.feed(b"Linux version 6.1\n", 0.0, 0).events] == ["kernel"]
    started = time.monotonic()
    with pytest.raises(PatternTimeout, match="milestone 'stuck' pattern"):
        m.feed(b"a" * 5000 + b"b", 1.0, 1)
    assert time.monotonic() - started < 5
