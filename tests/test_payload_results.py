"""Payload tests as results, without a VM: junit.xml test cases under the cell, the cell
page's table, history (a test that regressed since the last run, per backend), tests
failing on one backend only, and which cells make `harness run` exit 1 (--fail-on)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import jsonschema

from harness.model import CellResult, MilestoneResult, Verdict
from harness.results import testpage
from harness.results.compare import add_only_failing
from harness.results.history import History, record
from harness.results.junit import write_junit
from harness.verdict import counts_as_failure

from .test_report import JUNIT, SCHEMA


def cell(backend: str, cases: dict[str, str], verdict: Verdict = Verdict.PASS) -> CellResult:
    r = CellResult(f"g/{backend}/bios", "g", backend, "bios", verdict, score=1.0,
                   milestones=[MilestoneResult("shell", True, 1.0)])
    r.cases = [{"name": n, "status": s, "step": "tap", "output": "boom" if s == "failed"
                else ""} for n, s in cases.items()]
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "xfail": 0}
    for s in cases.values():
        counts["errors" if s == "error" else s] += 1
    r.tests = counts
    return r


def run_json(run_id: str, started: str, cells: list[CellResult]) -> dict:
    return {"schema": 1, "run_id": run_id, "started": started, "finished": None,
            "host": {"os": "Linux", "arch": "x86_64", "harness": "0.1.0"},
            "cells": [c.to_json() for c in cells]}


def test_junit_has_the_tests_under_their_cell(tmp_path):
    r = cell("tcg", {"a": "passed", "b": "failed", "c": "skipped", "d": "error", "e": "xfail"})
    write_junit(tmp_path / "junit.xml", "run", [r], tmp_path)
    JUNIT.validate(str(tmp_path / "junit.xml"))
    cases = list(ET.parse(tmp_path / "junit.xml").iter("testcase"))
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("g", "tcg/bios"), *[("g/tcg/bios", n) for n in "abcde"]]
    kinds = [[child.tag for child in c if child.tag != "properties"] for c in cases[1:]]
    assert kinds == [[], ["failure"], ["skipped"], ["error"], ["skipped"]]
    assert cases[2].find("failure").text == "boom"
    props = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert props["tests.failed"] == "1" and props["tests.errors"] == "1"


def test_the_cell_page_counts_and_puts_failures_first():
    r = cell("tcg", {"a": "passed", "<b>": "failed", "c": "skipped"})
    html = testpage.tests_section(r.to_json())
    assert "id='tests-failed'>1<" in html
    assert html.index("&lt;b&gt;") < html.index(">c<") < html.index(">a<")
    assert "<pre>boom</pre>" in html and "<b>" not in html.replace("<b>Failing", "")
    assert testpage.tests_section(CellResult("g/tcg/bios", "g", "tcg", "bios", Verdict.PASS)
                         .to_json()) == ""


def test_a_test_that_regressed_since_the_last_run_per_backend(tmp_path):
    db = tmp_path / "history.sqlite"
    record(db, run_json("r1", "2026-11-01T00:00:00Z", [
        cell("tcg", {"a": "passed", "b": "passed"}), cell("nvmm", {"a": "passed"})]))
    second = [cell("tcg", {"a": "passed", "b": "failed"}), cell("nvmm", {"a": "error"})]
    jsonschema.validate(run_json("20261102T000000Z-0002", "2026-11-02T00:00:00Z", second),
                        SCHEMA)
    record(db, run_json("r2", "2026-11-02T00:00:00Z", second))
    h = History(db)
    try:
        c = h.compare("r2")
    finally:
        h.close()
    assert c.regressions == []  # the boots still pass
    assert [(t.cell_id, t.name, t.before, t.after) for t in c.test_regressions] == [
        ("g/nvmm/bios", "a", "passed", "error"), ("g/tcg/bios", "b", "passed", "failed")]
    html = testpage.test_regressions(c.test_regressions)
    assert "g/nvmm/bios: a: passed → error (vs r1)" in html


def test_tests_failing_on_one_backend_only():
    tcg = cell("tcg", {"a": "passed", "b": "passed", "c": "failed"})
    kvm = cell("kvm", {"a": "passed", "b": "passed", "c": "failed"})
    nvmm = cell("nvmm", {"a": "failed", "b": "passed", "c": "failed"})
    add_only_failing([tcg, kvm, nvmm])
    assert nvmm.only_failing_here == ["a"]  # c fails everywhere: not nvmm's problem
    assert tcg.only_failing_here == [] and kvm.only_failing_here == []
    assert "Failing only on this backend" in testpage.tests_section(nvmm.to_json())


def test_which_cells_fail_the_run():
    ok = cell("tcg", {"a": "passed", "b": "xfail"})
    tests = cell("tcg", {"a": "failed"})
    boot = cell("tcg", {}, Verdict.CRASH)
    assert [counts_as_failure(r, False) for r in (ok, tests, boot)] == [False, True, True]
    assert [counts_as_failure(r, False, "tests") for r in (ok, tests, boot)] == [
        False, True, False]


def test_an_expected_crash_owns_the_error_of_the_test_it_stopped():
    """xv6's known panic in execout: the cell is xfail and execout's error is that
    failure's own; a test that failed before it is still news."""
    known = cell("tcg", {"manywrites": "passed", "execout": "error"}, Verdict.XFAIL)
    also = cell("tcg", {"manywrites": "failed", "execout": "error"}, Verdict.XFAIL)
    unknown = cell("tcg", {"manywrites": "passed", "execout": "error"}, Verdict.CRASH)
    assert [counts_as_failure(r, False, "tests") for r in (known, also, unknown)] == [
        False, True, True]
    assert counts_as_failure(known, False) is False
