"""History that answers "since when?": where a failure began, when the cell last
passed, what changed (images, quirks, guest file) beside the verdicts, a sparkline,
and regressions linking to the cell's page in both runs."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from harness.results.history import History, file_digest, record
from harness.results.report import build

from .test_report import results

DATA = Path(__file__).parent / "data" / "porters"


def _run(run_id: str, day: int, verdict: str, digest: str, t: float, quirks=()) -> dict:
    r = results(run_id, f"2026-11-0{day}T00:00:00Z", {"g/tcg/bios": verdict})
    r["guests"] = {"g": {"name": "g", "os": "linux", "arch": "x86_64", "digest": digest}}
    r["cells"][0]["quirks"] = list(quirks)
    r["cells"][0]["milestones"][0].update(reached=True, t=t)
    return r


def test_since_when_a_cell_fails_and_what_changed(tmp_path):
    db = tmp_path / "history.sqlite"
    record(db, _run("r1", 1, "pass", "aaaa", 2.0))
    record(db, _run("r2", 2, "pass", "aaaa", 2.5, quirks=["noapic"]))
    record(db, _run("r3", 3, "crash", "bbbb", 1.0, quirks=["noapic"]))
    record(db, _run("r4", 4, "hang", "bbbb", 3.0, quirks=["noapic"]))
    h = History(db)
    try:
        (s,) = h.stories("r4")
        assert s.failing_since.run_id == "r3" and s.last_passed.run_id == "r2"
        assert [(step.run_id, what) for step, what in s.changed()] == [
            ("r2", ["quirks"]), ("r3", ["guest file"])]
        assert [step.last_t for step in s.steps] == [2.0, 2.5, 1.0, 3.0]
        (s2,) = h.stories("r2")  # passing: no failure to date
        assert s2.failing_since is None and s2.last_passed.run_id == "r2"
    finally:
        h.close()


def test_an_older_history_file_gains_the_new_columns(tmp_path):
    db = tmp_path / "history.sqlite"
    with sqlite3.connect(db) as old:
        old.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT,"
            " harness TEXT, host TEXT, folder TEXT);"
            "CREATE TABLE cells (run_id TEXT NOT NULL, cell_id TEXT NOT NULL, guest TEXT NOT "
            "NULL, backend TEXT NOT NULL, firmware TEXT NOT NULL, verdict TEXT NOT NULL, "
            "score REAL, duration REAL, last_t REAL, images TEXT, PRIMARY KEY (run_id, cell_id));"
            "INSERT INTO runs VALUES ('r0', '2026-10-01T00:00:00Z', NULL, '0.1.0', '{}', NULL);"
            "INSERT INTO cells VALUES ('r0', 'g/tcg/bios', 'g', 'tcg', 'bios', 'pass', 1, 1, 1,"
            " 'x');")
    old.close()
    record(db, _run("r1", 1, "crash", "aaaa", 2.0))
    h = History(db)
    try:
        (s,) = h.stories("r1")
        assert s.last_passed.run_id == "r0" and s.failing_since.run_id == "r1"
        assert [what for _, what in s.changed()] == [["images", "guest file"]]
    finally:
        h.close()
    assert file_digest(None) is None and file_digest(tmp_path / "gone.yaml") is None
    assert len(file_digest(db)) == 16


def test_history_page_links_a_regression_to_both_cell_pages(tmp_path):
    reports = tmp_path / "reports"
    for run in ("20261128T030000Z-aaaa", "20261129T030000Z-bbbb"):
        shutil.copytree(DATA / run, reports / run)
        build([reports / run])
    page = (reports / "history.html").read_text()
    regressions = re.search(r"<ul id=regressions>(.*?)</ul>", page).group(1)
    links = re.findall(r"href='([^']+)'", regressions)
    assert links == ["20261128T030000Z-aaaa/cells/linux-busybox-x86_64/tcg-bios/cell.html",
                     "20261129T030000Z-bbbb/cells/linux-busybox-x86_64/tcg-bios/cell.html"]
    assert all((reports / link).is_file() for link in links)
    row = re.search(r"<tr data-cell='linux-busybox-x86_64/tcg/bios'>(.*?)</tr>", page).group(1)
    assert "20261129T030000Z-bbbb" in re.search(r"class=since>(.*?)</td>", row).group(1)
    assert "20261128T030000Z-aaaa" in re.search(r"class=passed>(.*?)</td>", row).group(1)
    assert "<svg class=spark" in page  # the passing cells' times over the two runs
    index = (reports / "20261129T030000Z-bbbb" / "index.html").read_text()
    assert ("href='../20261128T030000Z-aaaa/cells/linux-busybox-x86_64/tcg-bios/cell.html'"
            in index)
