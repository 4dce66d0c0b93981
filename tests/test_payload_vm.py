"""Payloads on real boots under tcg: the example guest's tests exactly as its scripts
print them (results.json against its schema, junit.xml against the JUnit schema, the
cell page in Chromium), and a step that hangs ending the cell as `timeout` naming it."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from .conftest import GUESTS, ROOT, TEST_GUESTS
from .test_report import JUNIT, SCHEMA, browser  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.vm
PAYLOAD_GUEST = "linux-busybox-payload-x86_64"
EXPECTED = [  # (name, status, step): what tap.sh, junit.sh and lines.sh print
    ("proc-mounted", "passed", "tap"), ("arithmetic", "passed", "tap"),
    ("fails-on-purpose", "xfail", "tap"), ("network-up", "skipped", "tap"),
    ("tmp-writable", "passed", "tap"),
    ("demo.kernel-is-linux", "passed", "junit"), ("demo.memory-over-1g", "xfail", "junit"),
    ("demo.kvm-device", "skipped", "junit"),
    ("sysfs", "passed", "lines"), ("dev-null", "passed", "lines"),
    ("framebuffer", "skipped", "lines")]


def run(guests: Path, only: str, out: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--guests", str(guests),
                           "--only", only, "--out", str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=400)
    assert "Traceback" not in proc.stderr, proc.stderr
    folder = next(p for p in out.iterdir() if p.is_dir() and not p.is_symlink())
    return proc, folder


@pytest.fixture(scope="module")
def payload_run(tmp_path_factory):
    return run(GUESTS, f"{PAYLOAD_GUEST}/tcg/bios", tmp_path_factory.mktemp("payload"))


def test_the_example_payload_reports_its_tests_exactly(payload_run):
    proc, folder = payload_run
    assert proc.returncode == 0, proc.stdout[-3000:]
    data = json.loads((folder / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    (cell,) = data["cells"]
    assert cell["verdict"] == "pass", cell["reason"]
    assert [(c["name"], c["status"], c["step"]) for c in cell["cases"]] == EXPECTED
    assert cell["tests"] == {"passed": 6, "failed": 0, "skipped": 3, "errors": 0, "xfail": 2}
    assert [(s["name"], s["end"], s["status"]) for s in cell["steps"]] == [
        ("tap", "done", 0), ("junit", "done", 0), ("lines", "done", None)]
    memory = next(c for c in cell["cases"] if c["name"] == "demo.memory-over-1g")
    assert memory["output"].startswith("MemTotal is ")  # the guest's own message
    assert "tests: 6 passed, 0 failed, 3 skipped, 0 errors, 2 expected failures" in proc.stdout
    # junit.xml: the cell's testcase, then one per test under it
    JUNIT.validate(str(folder / "junit.xml"))
    cases = [c for c in ET.parse(folder / "junit.xml").iter("testcase")
             if c.get("classname") == cell["id"]]
    assert [c.get("name") for c in cases] == [name for name, _, _ in EXPECTED]
    assert sum(1 for c in cases if c.find("skipped") is not None) == 5  # 3 skipped, 2 xfail


def test_the_cell_page_lists_failures_first_in_chromium(payload_run, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    _, folder = payload_run
    page = folder / "cells" / PAYLOAD_GUEST / "tcg-bios" / "cell.html"
    browser.get(page.as_uri())
    counts = {k: browser.find_element(By.ID, f"tests-{k}").text
              for k in ("passed", "failed", "skipped", "errors", "xfail")}
    assert counts == {"passed": "6", "failed": "0", "skipped": "3", "errors": "0", "xfail": "2"}
    rows = browser.find_elements(By.CSS_SELECTOR, "#test-cases tr.case")
    statuses = [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows]
    assert statuses == ["xfail"] * 2 + ["skipped"] * 3 + ["passed"] * 6
    assert "MemTotal is" in rows[1].text or "MemTotal is" in rows[0].text


def test_a_hanging_step_ends_the_cell_as_timeout_naming_it(tmp_path):
    proc, folder = run(TEST_GUESTS, "test-payload-hang/tcg/bios", tmp_path)
    assert proc.returncode == 1
    data = json.loads((folder / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    (cell,) = data["cells"]
    assert cell["verdict"] == "timeout"
    assert cell["reason"] == ("payload step 'hang', test 'slow' running: not finished "
                              "within 3 s (its end marker never came)")
    assert [(s["name"], s["end"]) for s in cell["steps"]] == [("uname", "done"),
                                                              ("hang", "timeout")]
    assert [(c["name"], c["status"]) for c in cell["cases"]] == [
        ("uname", "passed"), ("quick", "passed"), ("slow", "error")]
    assert cell["score"] == 1.0  # the boot itself reached every milestone
