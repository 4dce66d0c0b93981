"""Test results as guests print them, read into test cases: TAP, JUnit, ATF, lines.

Pure: text in, `Parsed` out. Bad input raises `ResultsError` with a reason
for the cell (a line number where there is one); what was read before the
damage is kept (`ResultsError.partial`). TAP is read here rather than with
tap.py (tappy): tappy implements TAP 13 and refuses TAP 14 subtests ("Only one
plan line is permitted per file", python-tap/tappy#122, open), and the subset
a harness needs is short. JUnit (and Kyua's `kyua report-junit`) goes through
junitparser. ATF's `atf-report` text is its ticker format (`    tc: [0.01s]
Passed.`) or its csv (`tc, 0.01, tp, tc, passed`), as NetBSD's atf-report.cpp
writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import regex

DEFAULT_STATUSES = {
    "ok": "passed", "pass": "passed", "passed": "passed",
    "fail": "failed", "failed": "failed", "not ok": "failed",
    "skip": "skipped", "skipped": "skipped",
    "error": "error",
}
OUTPUT_CHARS = 4000  # of a failure's output, kept per case


@dataclass
class Parsed:
    """The cases a step's results held: (name, status, output), and the name of a
    test that started but never ended (the guest crashed or hung in it)."""

    cases: list[tuple[str, str, str]] = field(default_factory=list)
    running: str | None = None


class ResultsError(ValueError):
    def __init__(self, reason: str, partial: Parsed | None = None) -> None:
        super().__init__(reason)
        self.partial = partial or Parsed()


# --- TAP 13 / 14 ----------------------------------------------------------------

_TAP_LINE = re.compile(r"(?P<not>not )?ok\b\s*(?P<num>\d+)?\s*(?:-\s*)?(?P<desc>[^#]*?)\s*"
                       r"(?:#\s*(?P<dir>skip|todo)\S*\s*(?P<why>.*))?$", re.IGNORECASE)
_PLAN = re.compile(r"1\.\.(\d+)")
_SUBTEST = re.compile(r"#\s*Subtest:\s*(.*)")


def parse_tap(text: str) -> Parsed:
    """TAP 13/14: test points, plans, SKIP/TODO, YAML blocks and comments after a
    failure (its output), TAP 14 subtests (indented by four; named parent/child),
    `Bail out!`. Lines that are not TAP are ignored, as the spec says."""
    out = Parsed()
    plans: dict[int, int] = {}
    counts: dict[int, int] = {}
    names: dict[int, str] = {}  # indent -> the subtest name its lines belong to
    last: int | None = None  # index of the last failing case (for its diagnostics)
    in_yaml = False
    seen_tap = False
    for line in text.replace("\r", "").split("\n"):
        stripped = line.lstrip(" ")
        indent = (len(line) - len(stripped)) // 4
        if in_yaml:
            if stripped.rstrip() == "...":
                in_yaml = False
            elif last is not None:
                _add_output(out, last, stripped)
            continue
        if stripped.rstrip() == "---" and last is not None:
            in_yaml = True
            continue
        if stripped.startswith("TAP version"):
            seen_tap = True
            continue
        if stripped.startswith("Bail out!"):
            out.cases.append(("bail out", "error", stripped[9:].strip()))
            return out
        m = _PLAN.match(stripped)
        if m:
            plans[indent] = int(m.group(1))
            seen_tap = True
            continue
        m = _SUBTEST.match(stripped)
        if m:
            names[indent + 1] = m.group(1).strip()
            continue
        if stripped.startswith("#"):
            if last is not None:
                _add_output(out, last, stripped[1:].strip())
            continue
        m = _TAP_LINE.match(stripped)
        if not m:
            continue
        seen_tap = True
        counts[indent] = counts.get(indent, 0) + 1
        desc = m.group("desc").strip() or f"test {m.group('num') or counts[indent]}"
        prefix = "/".join(names[d] for d in range(1, indent + 1) if d in names)
        name = f"{prefix}/{desc}" if prefix else desc
        directive = (m.group("dir") or "").lower()
        failed = bool(m.group("not"))
        if directive == "skip":
            status = "skipped"
        elif directive == "todo":
            status = "xfail" if failed else "passed"
        else:
            status = "failed" if failed else "passed"
        out.cases.append((name, status, (m.group("why") or "").strip()
                          if status != "passed" else ""))
        last = len(out.cases) - 1 if status in ("failed", "xfail") else None
        if indent == 0:
            names = {}
    if not seen_tap:
        raise ResultsError("no TAP: neither a plan (1..N) nor a test line (ok / not ok)")
    planned = plans.get(0)
    if planned is not None and counts.get(0, 0) < planned:
        out.cases.append(("tap plan", "error",
                          f"planned {planned} tests, {counts.get(0, 0)} reported"))
    return out


def _add_output(out: Parsed, index: int, line: str) -> None:
    name, status, text = out.cases[index]
    joined = f"{text}\n{line}" if text else line
    out.cases[index] = (name, status, joined.strip()[:OUTPUT_CHARS])


# --- JUnit XML (also kyua report-junit) -----------------------------------------------


def parse_junit(text: str) -> Parsed:
    """JUnit XML (one <testsuite> or a <testsuites>) through junitparser; a case is
    `classname.name` when it has a class name."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite

    try:  # ElementTree's ParseError and lxml's XMLSyntaxError are both SyntaxErrors
        xml = JUnitXml.fromstring(text.strip().encode())
    except (SyntaxError, ValueError) as exc:
        raise ResultsError(f"not JUnit XML: {exc}") from None
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    out = Parsed()
    for suite in suites:
        for case in suite:
            name = f"{case.classname}.{case.name}" if case.classname else str(case.name)
            results = case.result
            status, output = "passed", ""
            for r in results:
                if isinstance(r, Error):
                    status = "error"
                elif isinstance(r, Failure):
                    status = "failed"
                elif isinstance(r, Skipped):
                    status = "skipped"
                output = "\n".join(x for x in (r.message, r.text) if x)
            if status in ("failed", "error") and case.system_out:
                output = f"{output}\n{case.system_out}".strip()
            out.cases.append((name, status, output[:OUTPUT_CHARS]))
    return out


# --- ATF: atf-report's ticker and csv ---------------------------------------------------

_ATF_TP = re.compile(r"(?P<tp>\S+) \(\d+/\d+\): \d+ test cases?$")
_ATF_TC = re.compile(r" {4}(?P<tc>[^:\s]+): (?:\[[\d.]+s\] )?(?P<state>Passed\.|Failed: |"
                     r"Skipped: |Expected failure: )(?P<why>.*)$")
_ATF_CSV = re.compile(r"tc, [\d.]+, (?P<tp>[^,]+), (?P<tc>[^,]+), (?P<state>passed|failed|"
                      r"skipped|expected_\w+)(?:, (?P<why>.*))?$")
_ATF_STATE = {"Passed.": "passed", "Failed: ": "failed", "Skipped: ": "skipped",
              "Expected failure: ": "xfail", "passed": "passed", "failed": "failed",
              "skipped": "skipped"}


def parse_atf(text: str) -> Parsed:
    """atf-report's default (ticker) text or its `-o csv:-` output; a case is `tp:tc`. A
    test case that started (`    tc: `) and never ended is the running one."""
    out = Parsed()
    tp = ""
    seen = False
    for line in text.replace("\r", "").split("\n"):
        if m := _ATF_TP.match(line):
            tp, seen = m.group("tp"), True
        elif m := _ATF_TC.match(line):
            state = _ATF_STATE[m.group("state")]
            out.cases.append((f"{tp}:{m.group('tc')}", state,
                              m.group("why").strip() if state != "passed" else ""))
        elif m := _ATF_CSV.match(line):
            seen = True
            state = _ATF_STATE.get(m.group("state"), "xfail")
            out.cases.append((f"{m.group('tp')}:{m.group('tc')}", state,
                              (m.group("why") or "").strip()))
        elif tp and (m := re.match(r" {4}([^:\s]+): ?$", line)):
            out.running = f"{tp}:{m.group(1)}"
    if not seen and not out.cases:
        raise ResultsError("no atf-report output (neither 'tp (1/N): K test cases' nor "
                           "'tc, …' lines)")
    return out


# --- plain lines ------------------------------------------------------------------


def parse_lines(text: str, pattern: re.Pattern[str] | None,
                statuses: dict[str, str] | None = None) -> Parsed:
    """Lines such as `PASS name` or xv6's `test NAME: OK`: `pattern` has groups `name`
    and `status` (a status that did not match means the test started and never ended:
    the guest crashed or hung in it). Status words map through `statuses` (case-blind),
    then the defaults (ok/pass, fail, skip, error)."""
    pattern = pattern or re.compile(
        r"^(?P<status>PASS|FAIL|SKIP|ERROR)\b[:\s]+(?P<name>\S+)", re.MULTILINE)
    table = {**DEFAULT_STATUSES, **{k.lower(): v for k, v in (statuses or {}).items()}}
    out = Parsed()
    text = text.replace("\r", "")
    try:  # the `regex` engine, for its time limit: a guest's pattern cannot freeze a run
        found = list(_bounded(pattern).finditer(text, timeout=PATTERN_SECONDS))
    except TimeoutError:
        raise ResultsError(f"the lines pattern took over {PATTERN_SECONDS:g} s; "
                           "simplify it") from None
    for m in found:
        name = (m.group("name") or "").strip()
        word = m.groupdict().get("status")
        if not name:
            continue
        if word is None:
            out.running = name
            continue
        status = table.get(word.strip().lower())
        if status is None:
            raise ResultsError(f"test {name!r}: unknown status {word.strip()!r} (known: "
                               f"{', '.join(sorted(table))})", out)
        out.cases.append((name, status, m.group(0).strip() if status != "passed" else ""))
        out.running = None  # a test that ended after it: that one did not hang
    return out


PATTERN_SECONDS = 5.0


def _bounded(pattern: re.Pattern[str]) -> regex.Pattern[str]:
    flags = pattern.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE)
    if pattern.flags & re.ASCII:
        flags |= regex.ASCII
    return regex.compile(pattern.pattern, flags | regex.VERSION0)


def parse(kind: str, text: str, pattern: re.Pattern[str] | None = None,
          statuses: dict[str, str] | None = None) -> Parsed:
    if kind == "tap":
        return parse_tap(text)
    if kind == "junit":
        return parse_junit(text)
    if kind == "atf":
        return parse_atf(text)
    if kind == "lines":
        return parse_lines(text, pattern, statuses)
    return Parsed()
