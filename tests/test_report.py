"""Result pages, history and machine-readable outputs.

History logic is tested on small hand-made results; the rest on real runs:
a guest that passes, then panics (a regression `--fail-on regression`
catches), then passes again (a fix), and a guest whose kernel echoes a
`<script>` element in its command line. The pages are loaded from disk in
Debian's headless Chromium; screenshots of each page type are kept in
reports/page-screenshots/ for people to look at.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from harness.results.history import History, record
from harness.results.html import clean, run_page

from .conftest import GUESTS, ROOT, chromium, write

SCHEMA = json.loads((ROOT / "harness/data/results.schema.json").read_text())
JUNIT = xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit.xsd"))
SHOTS = ROOT / "reports" / "page-screenshots"


def results(run_id: str, started: str, verdicts: dict[str, str], images: str = "a") -> dict:
    cells = []
    for cid, v in verdicts.items():
        guest, backend, fw = cid.split("/")
        cells.append({"id": cid, "guest": guest, "backend": backend, "firmware": fw,
                      "verdict": v, "score": 1.0 if v == "pass" else 0.0, "duration_s": 1.0,
                      "milestones": [{"name": "m", "reached": v == "pass", "t": 1.0}],
                      "failure": None, "reason": None, "quirks": [], "attempts": 1,
                      "command": [], "artifacts": {},
                      "images": {"k": {"sha256": images * 64, "source": "x"}}})
    return {"schema": 1, "run_id": run_id, "started": started, "finished": None,
            "host": {"os": "Linux", "arch": "x86_64", "harness": "0.1.0"}, "cells": cells}


def test_history_regressions_fixes_flaky_and_trends(tmp_path):
    db = tmp_path / "history.sqlite"
    record(db, results("r1", "2026-11-01T00:00:00Z", {"g/tcg/bios": "pass", "h/tcg/bios": "hang"}))
    record(db, results("r2", "2026-11-02T00:00:00Z", {"g/tcg/bios": "crash", "h/tcg/bios": "pass",
                                                      "n/tcg/bios": "fail"}))
    record(db, results("r3", "2026-11-03T00:00:00Z", {"g/tcg/bios": "pass", "h/tcg/bios": "skip"}))
    record(db, results("r3", "2026-11-03T00:00:00Z", {"g/tcg/bios": "pass", "h/tcg/bios": "skip"}))
    h = History(db)
    try:
        c = h.compare("r2")
        assert [(x.cell_id, x.before, x.after) for x in c.regressions] == [
            ("g/tcg/bios", "pass", "crash")]
        assert [x.cell_id for x in c.fixes] == ["h/tcg/bios"] and c.new == ["n/tcg/bios"]
        c3 = h.compare("r3")
        assert [x.cell_id for x in c3.fixes] == ["g/tcg/bios"] and not c3.regressions
        assert h.compare("r3", baseline="r1").regressions == []  # g passed in both
        assert h.flaky()["g/tcg/bios"] == ["pass", "crash", "pass"]
        assert [v for _, v in h.strips()["h/tcg/bios"]] == ["hang", "pass", "skip"]
        assert len(h.runs()) == 3  # recording r3 twice replaced it
        assert [t for _, t in h.trends()[("g", "tcg/bios")]] == [1.0, 1.0]
    finally:
        h.close()
    record(db, results("r4", "2026-11-04T00:00:00Z", {"g/tcg/bios": "crash"}, images="b"))
    h = History(db)
    try:  # different images: a change, but not flakiness of the same bits
        assert h.flaky()["g/tcg/bios"] == ["pass", "crash", "pass"]
        assert len(h.flaky()["g/tcg/bios"]) == 3
    finally:
        h.close()


def test_pages_escape_guest_text():
    r = results("20261121T000000Z-abcd", "2026-11-21T00:00:00Z", {"g/tcg/bios": "skip"})
    r["cells"][0]["reason"] = "<img src=x onerror=alert(1)>"
    r["cells"][0]["expect"] = {"reason": "x", "link": "javascript:alert(1)"}
    page = run_page(r)
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert "javascript:" not in page
    assert clean("a\x1b[31m<b>red</b>\x07") == "a&lt;b&gt;red&lt;/b&gt;"


# --- real runs ---------------------------------------------------------------------------

def _guest(folder: Path, gid: str, cmdline: str) -> None:
    text = (GUESTS / "linux-busybox-x86_64.yaml").read_text()
    text = text.replace("id: linux-busybox-x86_64", f"id: {gid}")
    text = text.replace('cmdline: "console=ttyS0 panic=-1"', f"cmdline: {json.dumps(cmdline)}")
    write(folder / f"{gid}.yaml", text)


def _run(tmp_path: Path, mode: str, *extra: str) -> subprocess.CompletedProcess:
    guests = tmp_path / "guests"
    _guest(guests, "flip", f"console=ttyS0 panic=-1 harness.mode={mode}")
    _guest(guests, "hostile", "console=ttyS0 panic=-1 harness.note=<script>document.title="
                              "'pwned'</script>")
    m = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg, nvmm]\nfirmware: [bios]\n"
                                        "defaults: {timeouts: {total: 60, stall: 30}}\n")
    return subprocess.run([sys.executable, "-m", "harness", "run", "--matrix", str(m), "--out",
                           str(tmp_path / "reports"), *extra], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    procs = [_run(tmp, "poweroff", "--fail-on", "regression"),
             _run(tmp, "panic", "--fail-on", "regression"),
             _run(tmp, "poweroff", "--fail-on", "regression")]
    runs = sorted(p for p in (tmp / "reports").iterdir() if p.is_dir() and p.name[0].isdigit())
    return tmp, procs, runs


@pytest.mark.vm
def test_fail_on_regression_and_the_pages_of_three_runs(three_runs):
    tmp, procs, runs = three_runs
    assert [p.returncode for p in procs] == [0, 1, 0], [p.stdout[-800:] for p in procs]
    assert "REGRESSION flip/tcg/bios: pass -> crash" in procs[1].stdout
    for run in runs:
        data = json.loads((run / "results.json").read_text())
        jsonschema.validate(data, SCHEMA)
        JUNIT.validate(str(run / "junit.xml"))
        assert (run / "index.html").stat().st_size < 2_000_000
        for c in data["cells"]:
            assert (run / f"cells/{c['guest']}/{c['backend']}-{c['firmware']}/cell.html").is_file()
    assert data["guests"]["flip"]["os"] == "linux"
    assert (tmp / "reports" / "history.html").is_file()
    out = subprocess.run([sys.executable, "-m", "harness", "report", str(runs[2]), "--baseline",
                          runs[1].name], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "0 regressions, 1 fixes" in out.stdout, out.stdout + out.stderr


def test_report_usage_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "harness", "report", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "no results.json" in out.stderr


def test_schema_rejects_what_the_contract_does_not_allow():
    bad = results("20261121T000000Z-abcd", "2026-11-21T00:00:00Z", {"g/tcg/bios": "pass"})
    bad.update(schema=1, finished=None)
    for c in bad["cells"]:
        c.update(failure=None, reason=None, quirks=[], attempts=1, command=[], artifacts={})
    bad["host"].update(os="Linux", arch="x86_64")
    jsonschema.validate(bad, SCHEMA)
    bad["cells"][0]["verdict"] = "passed"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


# --- in a real browser -------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    yield from chromium(1400, 1000, scrollbars=True)


@pytest.mark.vm
def test_pages_in_chromium(three_runs, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _, _, runs = three_runs
    SHOTS.mkdir(parents=True, exist_ok=True)
    run = runs[1]  # the run with the regression
    data = json.loads((run / "results.json").read_text())
    browser.get((run / "index.html").as_uri())
    for c in data["cells"]:
        td = browser.find_element(By.CSS_SELECTOR, f"td[data-cell='{c['id']}']")
        assert f"v-{c['verdict']}" in td.get_attribute("class").split()
    assert "flip/tcg/bios" in browser.find_element(By.ID, "regressions").text
    browser.save_screenshot(str(SHOTS / "run.png"))
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("crash")
    visible = [r.get_attribute("data-guest") for r in
               browser.find_elements(By.CSS_SELECTOR, "tr.guest") if r.is_displayed()]
    assert visible == ["flip"]
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("")
    Select(browser.find_element(By.ID, "f-backend")).select_by_value("nvmm")
    shown = {td.get_attribute("data-backend") for td in
             browser.find_elements(By.CSS_SELECTOR, "td.cell") if td.is_displayed()}
    assert shown == {"nvmm"}
    # the hostile guest's console: the <script> is text, and nothing ran
    browser.get((run / "cells/hostile/tcg-bios/cell.html").as_uri())
    assert browser.title == "hostile/tcg/bios"
    console = browser.find_element(By.ID, "console")
    assert "<script>document.title='pwned'</script>" in console.text
    assert console.find_elements(By.TAG_NAME, "script") == []
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline canvas")  # uPlot drew
    browser.save_screenshot(str(SHOTS / "cell.png"))
    browser.get((run.parent / "history.html").as_uri())
    strips = browser.find_element(By.ID, "strips")
    assert "flip/tcg/bios" in strips.text
    assert browser.find_elements(By.CSS_SELECTOR, "#strips span.v-crash")
    assert "flip/tcg/bios" in browser.find_element(By.ID, "flaky").text
    browser.save_screenshot(str(SHOTS / "history.png"))
    assert browser.execute_script("return typeof uPlot") in ("function", "undefined")


def test_a_hundred_cell_run_page_stays_small():
    verdicts = {f"guest-{i:02d}/{b}/bios": v for i in range(25)
                for b, v in zip(("tcg", "kvm", "bochs", "xen"), ("pass", "crash", "skip", "hang"),
                                strict=True)}
    r = results("20261121T000000Z-abcd", "2026-11-21T00:00:00Z", verdicts)
    for c in r["cells"]:
        c["reason"] = "x" * 300
        c["quirks"] = ["noapic", "no_timer_check"]
    page = run_page(r)
    assert len(verdicts) == 100 and page.count("data-cell=") == 100
    assert len(page.encode()) < 2_000_000


def test_the_schema_and_the_cell_result_dataclass_name_the_same_keys():
    """results.json's cells are written from CellResult's fields: every field is in the
    schema and every schema property is a field, and a result survives the round trip."""
    from harness.model import CellResult, MilestoneResult, Verdict

    cell = SCHEMA["$defs"]["cell"]
    r = CellResult("g/tcg/bios", "g", "tcg", "bios", Verdict.XFAIL, score=0.5, duration_s=1.25,
                   milestones=[MilestoneResult("m", True, 0.5)], underlying=Verdict.CRASH,
                   quirks=["noapic"], reruns=["crash"], flaky=True)
    data = r.to_json()
    assert set(data) == set(cell["properties"]) and set(cell["required"]) <= set(data)
    assert CellResult.from_json(data) == r
    assert data["verdict"] == "xfail" and data["underlying"] == "crash"
