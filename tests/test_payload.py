"""Payload steps without a VM: framing, the step reader on synthetic consoles (xv6's
usertests format among them), the result parsers, the guest file's `payload:` checks."""

from __future__ import annotations

import base64
import re
import textwrap

import pytest

from harness.config import ConfigError, load_guest
from harness.console.matcher import Matcher
from harness.console.tracker import Outcome
from harness.judge import Attempt, judge
from harness.model import FailureSignature, PayloadStep, Timeouts, Verdict
from harness.payload.framing import marker, take_apart, typed
from harness.payload.outcome import PayloadOutcome, conclude
from harness.payload.parsers import ResultsError, parse_atf, parse_junit, parse_lines, parse_tap
from harness.payload.step import StepReader
from harness.plan import known_failures, make_cell

from .conftest import write

XV6_PANIC = [FailureSignature("panic", re.compile(r"panic: .*"))]
USERTESTS = PayloadStep(
    name="usertests", run="usertests", timeout=600, results="lines", shell="raw",
    until=re.compile(r"ALL TESTS PASSED"),
    pattern=re.compile(r"test (?P<name>\w+): (?P<status>OK|FAILED)?"),
    statuses=(("OK", "passed"), ("FAILED", "failed")))


def follow(step, chunks, failures=(), token="abc123", until=None):
    """Feed (t, bytes) chunks to a StepReader; tick after each; the end."""
    reader = StepReader(step, token, Matcher([], list(failures)), start=0.0,
                        crash_grace=1.0, crash_quiet=0.5)
    for t, data in chunks:
        reader.feed(data, t)
        if reader.tick(t):
            break
    t = chunks[-1][0] if chunks else 0.0
    while reader.result is None and t < (until or 1e6):
        t += 0.1
        reader.tick(t)
    return reader.result


def test_xv6_usertests_crash_names_the_running_test():
    console = [(0.1, b"$ usertests\r\nusertests starting\r\n"),
               (0.5, b"test copyin: OK\r\ntest copyout: OK\r\n"),
               (1.0, b"test execout: "), (1.2, b"panic: sys_exec kalloc\r\n")]
    end = follow(USERTESTS, console, XV6_PANIC)
    assert end.end == "crash" and end.failure.name == "panic"
    outcome = PayloadOutcome()
    assert conclude(USERTESTS, end, outcome) is False
    assert [(c.name, c.status) for c in outcome.cases] == [
        ("copyin", "passed"), ("copyout", "passed"), ("execout", "error")]
    assert "sys_exec kalloc" in outcome.cases[-1].output
    assert outcome.end == "crash"
    assert "test 'execout' running" in outcome.detail and "usertests" in outcome.detail


def test_xv6_usertests_that_pass_end_at_until():
    console = [(0.1, b"$ usertests\r\ntest copyin: OK\r\ntest bad: FAILED\r\n"),
               (0.3, b"ALL TESTS PASSED\r\n$ ")]
    end = follow(USERTESTS, console, XV6_PANIC)
    assert end.end == "done"
    outcome = PayloadOutcome()
    assert conclude(USERTESTS, end, outcome) is True
    assert [(c.name, c.status) for c in outcome.cases] == [("copyin", "passed"),
                                                           ("bad", "failed")]


def test_a_raw_step_whose_pattern_never_comes_times_out_naming_the_test():
    step = PayloadStep(**{**USERTESTS.__dict__, "timeout": 2.0})
    end = follow(step, [(0.1, b"test copyin: OK\r\ntest sbrkbugs: ")])
    assert end.end == "timeout" and end.t >= 2.0
    outcome = PayloadOutcome()
    conclude(step, end, outcome)
    assert outcome.end == "timeout" and "sbrkbugs" in outcome.detail
    assert outcome.cases[-1].status == "error"


def test_the_echoed_command_never_holds_a_marker():
    step = PayloadStep(name="s", run="echo hi; false", file="/tmp/r.xml")
    line = typed(step, "abc123")
    for kind in ("B", "F", "E:0", "E:1"):
        assert marker("abc123", kind) not in line
    # the echo, wrapped by a terminal at 40 columns with ANSI: still no end
    echo = "\x1b[1m" + "\r\n".join(line[i:i + 40] for i in range(0, len(line), 40))
    assert take_apart(echo, "abc123", True) is None


def test_a_posix_step_ends_at_its_marker_with_status_and_file():
    step = PayloadStep(name="s", run="./t.sh", results="junit", file="/tmp/r.xml")
    xml = b'<testsuite name="x"><testcase name="a"/><testcase name="b"><failure/></testcase>' \
          b'</testsuite>'
    b64 = base64.encodebytes(xml)
    echo = typed(step, "abc123").encode()
    console = [(0.1, echo.replace(b"\n", b"\r\n")),
               (0.2, b"@@GH:abc123:B@@\r\nrunning\r\n"),
               (0.3, b"\r\n@@GH:abc123:F@@\r\n" + b64.replace(b"\n", b"\r\n")),
               (0.4, b"\r\n@@GH:abc123:E:1@@\r\n/ # ")]
    end = follow(step, console)
    assert end.end == "done" and end.framed.status == 1
    assert end.framed.output == "running" and end.framed.file == xml
    outcome = PayloadOutcome()
    assert conclude(step, end, outcome)
    assert [(c.name, c.status) for c in outcome.cases] == [("a", "passed"), ("b", "failed")]
    assert outcome.steps[0]["status"] == 1


def test_a_results_file_that_is_not_base64_is_an_error_on_the_cell():
    step = PayloadStep(name="s", run="./t.sh", results="junit", file="/nope")
    console = [(0.1, b"@@GH:abc123:B@@\r\n\r\n@@GH:abc123:F@@\r\n"
                     b"base64: can't open '/nope': No such file\r\n@@GH:abc123:E:0@@\r\n")]
    outcome = PayloadOutcome()
    assert not conclude(step, follow(step, console), outcome)
    assert outcome.end == "error" and "/nope" in outcome.detail and "can't open" in outcome.detail


def test_a_step_without_results_is_one_case_from_its_status():
    step = PayloadStep(name="ls", run="ls /nope")
    console = [(0.1, b"@@GH:abc123:B@@\r\nls: /nope: No such file\r\n@@GH:abc123:E:1@@\r\n")]
    outcome = PayloadOutcome()
    conclude(step, follow(step, console), outcome)
    assert [(c.name, c.status) for c in outcome.cases] == [("ls", "failed")]
    assert "No such file" in outcome.cases[0].output


def test_bad_tap_is_an_error_with_the_reason():
    step = PayloadStep(name="t", run="./t", results="tap")
    console = [(0.1, b"@@GH:abc123:B@@\r\nhello\r\n@@GH:abc123:E:0@@\r\n")]
    outcome = PayloadOutcome()
    assert not conclude(step, follow(step, console), outcome)
    assert outcome.end == "error" and "no TAP" in outcome.detail


# --- parsers --------------------------------------------------------------------------


def test_tap14_with_skip_todo_yaml_and_subtests():
    parsed = parse_tap(textwrap.dedent("""\
        TAP version 14
        1..5
        ok 1 - first
        not ok 2 - second
          ---
          message: boom
          ...
        ok 3 - third # SKIP no disk
        not ok 4 - fourth # TODO later
        # Subtest: sub
            ok 1 - inner
            not ok 2 - inner bad
            1..2
        not ok 5 - sub
        """))
    assert parsed.cases == [("first", "passed", ""), ("second", "failed", "message: boom"),
                            ("third", "skipped", "no disk"), ("fourth", "xfail", "later"),
                            ("sub/inner", "passed", ""), ("sub/inner bad", "failed", ""),
                            ("sub", "failed", "")]


def test_tap_short_of_its_plan_and_bail_out():
    assert parse_tap("1..3\nok 1 a\n").cases[-1] == ("tap plan", "error",
                                                     "planned 3 tests, 1 reported")
    assert parse_tap("1..3\nok 1 a\nBail out! no disk\n").cases[-1] == ("bail out", "error",
                                                                        "no disk")


def test_junit_and_kyua_report_junit():
    parsed = parse_junit(
        '<?xml version="1.0" encoding="iso-8859-1"?><testsuites><testsuite name="kyua">'
        '<testcase classname="lib__libc__t_strlen" name="strlen_basic" time="0.01"/>'
        '<testcase classname="lib__libc__t_x" name="bad"><failure message="oops">at x'
        '</failure></testcase><testcase classname="a" name="s"><skipped/></testcase>'
        '<testcase classname="a" name="e"><error message="broken"/></testcase>'
        '</testsuite></testsuites>')
    assert parsed.cases == [("lib__libc__t_strlen.strlen_basic", "passed", ""),
                            ("lib__libc__t_x.bad", "failed", "oops\nat x"),
                            ("a.s", "skipped", ""), ("a.e", "error", "broken")]
    with pytest.raises(ResultsError, match="not JUnit XML"):
        parse_junit("<testsuite><testcase")


def test_atf_report_ticker_and_csv():
    ticker = ("lib/libc/t_a (1/2): 2 test cases\n    one: [0.01s] Passed.\n"
              "    two: [0.02s] Failed: it broke\n[0.1s]\n\n"
              "lib/libc/t_b (2/2): 1 test cases\n    three: [0.0s] Expected failure: PR 1\n"
              "    four: ")
    parsed = parse_atf(ticker)
    assert parsed.cases == [("lib/libc/t_a:one", "passed", ""),
                            ("lib/libc/t_a:two", "failed", "it broke"),
                            ("lib/libc/t_b:three", "xfail", "PR 1")]
    assert parsed.running == "lib/libc/t_b:four"
    csv = "tc, 0.01, t_a, one, passed\ntc, 0.02, t_a, two, skipped, no root\n"
    assert parse_atf(csv).cases == [("t_a:one", "passed", ""), ("t_a:two", "skipped", "no root")]


def test_plain_lines_and_an_unknown_status_word():
    parsed = parse_lines("PASS alpha\nFAIL beta\nSKIP gamma\n", None)
    assert [(n, s) for n, s, _ in parsed.cases] == [("alpha", "passed"), ("beta", "failed"),
                                                    ("gamma", "skipped")]
    with pytest.raises(ResultsError, match="unknown status 'MAYBE'") as err:
        parse_lines("t1 OK\nt2 MAYBE\n", re.compile(r"(?P<name>t\d) (?P<status>\w+)"))
    assert err.value.partial.cases == [("t1", "passed", "")]


# --- the verdict -------------------------------------------------------------------


def _cell(tmp_path, payload_yaml: str, expect: str = ""):
    path = write(tmp_path / "guests" / "g1.yaml", textwrap.dedent("""\
        id: g1
        os: linux
        arch: x86_64
        images:
          kernel: {file: vmlinuz}
        boot: {kernel: kernel}
        milestones:
          - {name: shell, pattern: '# $'}
        """) + payload_yaml + expect)
    guest = load_guest(path)
    return make_cell(guest, "tcg", "bios", Timeouts(), 256,
                     known_failures=known_failures(guest, "tcg", "bios", []))


def test_failed_tests_keep_the_boot_verdict_and_known_ones_are_xfail(tmp_path):
    cell = _cell(tmp_path, "payload:\n  - {name: t, run: ./t, results: tap}\n",
                 "expect:\n  - {reason: known, tests: ['b*']}\n")
    assert cell.expect is None and cell.known_failures == ("b*",)
    step = cell.guest.payload[0]
    end = follow(step, [(0.1, b"@@GH:abc123:B@@\r\n1..3\r\nok 1 a\r\nnot ok 2 bee\r\n"
                              b"not ok 3 cee\r\n@@GH:abc123:E:1@@\r\n")])
    payload = PayloadOutcome()
    conclude(step, end, payload)
    result = judge(cell, [Attempt(Outcome("complete", 1.0, {0: 0.5}), payload=payload)])
    assert result.verdict is Verdict.PASS
    assert result.tests == {"passed": 1, "failed": 1, "skipped": 0, "errors": 0, "xfail": 1}
    assert [c["status"] for c in result.cases] == ["passed", "xfail", "failed"]


def test_a_hanging_step_makes_the_cell_timeout_naming_it(tmp_path):
    cell = _cell(tmp_path, "payload:\n  - {name: hang, run: sleep 999, timeout: 1}\n")
    end = follow(cell.guest.payload[0], [(0.1, b"@@GH:abc123:B@@\r\n")])
    payload = PayloadOutcome()
    conclude(cell.guest.payload[0], end, payload)
    result = judge(cell, [Attempt(Outcome("complete", 1.0, {0: 0.5}), payload=payload)])
    assert result.verdict is Verdict.TIMEOUT and "payload step 'hang'" in result.reason


# --- the guest file ----------------------------------------------------------------


def test_payload_mistakes_are_file_line_key_messages(tmp_path):
    with pytest.raises(ConfigError) as err:
        _cell(tmp_path, textwrap.dedent("""\
            payload:
              - {name: a, run: x, until: y}
              - {name: b, shell: raw, file: /r}
              - {name: c, run: x, results: lines, pattern: 'no group'}
              - {name: d, run: x, results: csv}
              - {name: e, run: x, after: kernel}
              - {name: f, run: x, results: lines, statuses: {OK: good}}
            payload_dir: nowhere
            """))
    text = "\n".join(str(i) for i in err.value.issues)
    assert "g1.yaml:10: payload[0].until: only for `shell: raw` steps" in text
    assert "g1.yaml:11: payload[1].file: files come back through a posix shell" in text
    assert "g1.yaml:12: payload[2].pattern: needs a named group `name`" in text
    assert "g1.yaml:13: payload[3].results: expected one of" in text
    assert "g1.yaml:14: payload[4].after: 'kernel': payload steps run after the last" in text
    assert "payload[5].statuses.OK: expected one of passed, failed, skipped, error" in text
    assert "g1.yaml:16: payload_dir: 'nowhere': no such folder" in text


def test_an_unfinished_posix_step_parses_its_output_not_the_echo():
    step = PayloadStep(name="t", run="echo 'PASS fake'; sleep 9", results="lines", timeout=1)
    echo = typed(step, "abc123").encode()
    end = follow(step, [(0.1, echo), (0.2, b"@@GH:abc123:B@@\r\nPASS real\r\n")])
    assert end.end == "timeout" and "PASS fake" not in end.text
    outcome = PayloadOutcome()
    conclude(step, end, outcome)
    assert [(c.name, c.status) for c in outcome.cases] == [("real", "passed")]


def test_a_payload_needs_a_serial_console(tmp_path):
    path = write(tmp_path / "guests" / "g1.yaml", textwrap.dedent("""\
        id: g1
        os: linux
        arch: x86_64
        images:
          kernel: {file: vmlinuz}
        boot: {kernel: kernel}
        console: screen
        milestones:
          - {name: shell, pattern: '# $'}
        payload:
          - {name: t, run: ./t}
        """))
    with pytest.raises(ConfigError, match=r"g1.yaml:10: payload: steps are typed and read on "
                                          r"a serial console"):
        load_guest(path)


def test_markers_split_across_one_byte_reads():
    step = PayloadStep(name="t", run="./t", results="tap")
    console = b"@@GH:abc123:B@@\r\n1..1\r\nok 1 - one\r\n\r\n@@GH:abc123:E:0@@\r\n/ # "
    end = follow(step, [(i / 1000, console[i:i + 1]) for i in range(len(console))])
    assert end.end == "done" and end.framed.status == 0 and end.framed.output == "1..1\nok 1 - one"
