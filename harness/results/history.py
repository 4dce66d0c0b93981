"""Run history in one SQLite file (reports/history.sqlite), and what it tells.

Each run is recorded once (re-recording a run replaces it, so `harness
report` may be run again on the same folders, or on two copies of a run
folder); a cell recorded twice in one run keeps its last entry (the reader
refuses such files, but the history never fails on them). From the records:
regressions and fixes between a run and its baseline (by default, for each
cell, the newest earlier run that has it), the payload tests that regressed
in a cell (passed in its baseline, fail now: per backend), flaky cells (verdict changed
while the images and the harness stayed the same), per-cell strips of the
last N verdicts, and boot-time trends per guest and backend.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import Verdict
from .store import load_results

FILE = "history.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT, harness TEXT,
    host TEXT, folder TEXT);
CREATE TABLE IF NOT EXISTS cells (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL, guest TEXT NOT NULL, backend TEXT NOT NULL, firmware TEXT NOT NULL,
    verdict TEXT NOT NULL, score REAL, duration REAL, last_t REAL, images TEXT,
    quirks TEXT, guest_digest TEXT,
    PRIMARY KEY (run_id, cell_id));
CREATE INDEX IF NOT EXISTS cells_by_cell ON cells(cell_id);
CREATE TABLE IF NOT EXISTS tests (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (run_id, cell_id, name));
"""
FAILING = {str(v) for v in Verdict if v.is_failure()}


def _failing(verdict: str) -> bool:
    return verdict in FAILING


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(_SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(cells)")}
    for column in ("quirks", "guest_digest"):  # a history file older than these columns
        if column not in have:
            db.execute(f"ALTER TABLE cells ADD COLUMN {column} TEXT")
    return db


def images_key(cell: dict[str, Any]) -> str:
    """One digest for all of a cell's images: what 'same images' means for flakiness."""
    shas = sorted(f"{k}={v.get('sha256')}" for k, v in (cell.get("images") or {}).items())
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()[:16]


def file_digest(path: Path | None) -> str | None:
    """A guest file's digest (16 hex digits), recorded per run: a changed guest file is
    seen beside the verdict it changed; None when there is no file or it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path else None
    except OSError:
        return None


def last_t(cell: dict[str, Any]) -> float | None:
    times = [m["t"] for m in cell.get("milestones", []) if m.get("reached") and m.get("t")]
    return max(times) if times else None


def record(path: Path, results: dict[str, Any], folder: Path | None = None) -> None:
    """Add (or replace) one run's results in the history file at `path`."""
    with closing(open_db(path)) as db, db:
        run_id = results["run_id"]
        db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                   (run_id, results.get("started") or "", results.get("finished"),
                    (results.get("host") or {}).get("harness"),
                    json.dumps(results.get("host") or {}), str(folder) if folder else None))
        guests = results.get("guests") or {}
        db.executemany(
            "INSERT OR REPLACE INTO cells (run_id, cell_id, guest, backend, firmware, verdict, "
            "score, duration, last_t, images, quirks, guest_digest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (run_id, c["id"], c["guest"], c["backend"], c["firmware"], c["verdict"],
                 c.get("score"), c.get("duration_s"), last_t(c), images_key(c),
                 ",".join(c.get("quirks") or []),
                 (guests.get(c["guest"]) or {}).get("digest"))
                for c in results["cells"]])
        db.executemany("INSERT OR REPLACE INTO tests VALUES (?, ?, ?, ?)", [
            (run_id, c["id"], str(t.get("name")), str(t.get("status")))
            for c in results["cells"] for t in c.get("cases") or [] if isinstance(t, dict)])


@dataclass(frozen=True)
class TestChange:
    """A payload test of one cell that passed in the baseline and fails now."""

    __test__ = False  # not a pytest class

    cell_id: str
    name: str
    before: str
    after: str
    baseline_run: str


@dataclass(frozen=True)
class Change:
    cell_id: str
    before: str  # verdict in the baseline
    after: str
    baseline_run: str


@dataclass
class Comparison:
    run_id: str
    regressions: list[Change]
    fixes: list[Change]
    new: list[str]  # cells the baseline did not have
    test_regressions: list[TestChange] = field(default_factory=list)


class History:
    """Read-only questions to the history file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_db(path)

    def close(self) -> None:
        self.db.close()

    def runs(self) -> list[tuple[str, str]]:
        """(run_id, started), oldest first."""
        return list(self.db.execute("SELECT run_id, started FROM runs ORDER BY started, run_id"))

    def _verdicts(self, run_id: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT cell_id, verdict FROM cells WHERE run_id = ?",
                                    (run_id,)))

    def compare(self, run_id: str, baseline: str | None = None) -> Comparison:
        """What changed in `run_id` against `baseline`, or against each cell's previous run."""
        now = self._verdicts(run_id)
        started = self._started(run_id)
        regressions, fixes, new = [], [], []
        tests: list[TestChange] = []
        for cell_id, after in sorted(now.items()):
            if after == "skip":  # not run: neither new nor changed
                continue
            if baseline is not None:
                row = self.db.execute("SELECT verdict, run_id FROM cells WHERE run_id = ? AND "
                                      "cell_id = ?", (baseline, cell_id)).fetchone()
            else:
                row = self._before(run_id, started, cell_id, "c.verdict, c.run_id")
            if row is None:
                new.append(cell_id)
                continue
            before, base = row
            tests += self._test_changes(run_id, base, cell_id)
            if before in ("pass", "xpass") and _failing(after):
                regressions.append(Change(cell_id, before, after, base))
            elif _failing(before) and after in ("pass", "xpass"):
                fixes.append(Change(cell_id, before, after, base))
        return Comparison(run_id, regressions, fixes, new, tests)

    def _test_changes(self, run_id: str, base: str, cell_id: str) -> list[TestChange]:
        """The cell's tests that passed in run `base` and failed (or erred) in `run_id`."""
        rows = self.db.execute(
            "SELECT n.name, b.status, n.status FROM tests n JOIN tests b "
            "ON b.run_id = ? AND b.cell_id = n.cell_id AND b.name = n.name "
            "WHERE n.run_id = ? AND n.cell_id = ? AND b.status = 'passed' "
            "AND n.status IN ('failed', 'error') ORDER BY n.name", (base, run_id, cell_id))
        return [TestChange(cell_id, name, before, after, base) for name, before, after in rows]

    def _before(self, run_id: str, started: str, cell_id: str, columns: str) -> Any:
        """`columns` of the newest earlier run in which `cell_id` ran (was not skipped)."""
        return self.db.execute(
            f"SELECT {columns} FROM cells c JOIN runs r USING (run_id) "
            "WHERE c.cell_id = ? AND c.verdict != 'skip' AND "
            "(r.started < ? OR (r.started = ? AND r.run_id < ?)) "
            "ORDER BY r.started DESC, r.run_id DESC LIMIT 1",
            (cell_id, started, started, run_id)).fetchone()

    def _started(self, run_id: str) -> str:
        row = self.db.execute("SELECT started FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"run {run_id} is not in {self.path}")
        return row[0]

    def strips(self, last: int = 10) -> dict[str, list[tuple[str, str]]]:
        """Cell id -> its last `last` (run_id, verdict), oldest first."""
        runs = [r for r, _ in self.runs()][-last:]
        out: dict[str, list[tuple[str, str]]] = {}
        for run_id in runs:
            for cell_id, verdict in sorted(self._verdicts(run_id).items()):
                out.setdefault(cell_id, []).append((run_id, verdict))
        return out

    def flaky(self, last: int = 10) -> dict[str, list[str]]:
        """Cells whose verdict changed among their last runs with the same images and harness."""
        out: dict[str, list[str]] = {}
        rows = self.db.execute(
            "SELECT c.cell_id, c.verdict, c.images, r.harness FROM cells c JOIN runs r "
            "USING (run_id) WHERE c.verdict != 'skip' ORDER BY r.started, r.run_id")
        seen: dict[tuple[str, str, str], list[str]] = {}
        for cell_id, verdict, images, harness in rows:
            seen.setdefault((cell_id, images, harness or ""), []).append(verdict)
        for (cell_id, _, _), verdicts in seen.items():
            recent = verdicts[-last:]
            if len(set(recent)) > 1:
                out.setdefault(cell_id, recent)
        return out

    def stories(self, run_id: str, last: int = 10) -> list[Story]:
        """"Since when?" for each cell that ran in `run_id` (failing cells first)."""
        out = [story(self.db, cell_id, last, run_id) for cell_id, v in sorted(
            self._verdicts(run_id).items()) if v != "skip"]
        return sorted(out, key=lambda s: s.failing_since is None)

    def folder(self, run_id: str) -> str:
        """The run folder's name beside history.html (the run id unless renamed)."""
        row = self.db.execute("SELECT folder FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return Path(row[0]).name if row and row[0] else run_id

    def trends(self) -> dict[tuple[str, str], list[tuple[str, float]]]:
        """(guest, backend) -> (run_id, time to the last milestone) of passing cells."""
        out: dict[tuple[str, str], list[tuple[str, float]]] = {}
        rows = self.db.execute(
            "SELECT c.guest, c.backend || '/' || c.firmware, c.run_id, c.last_t FROM cells c "
            "JOIN runs r USING (run_id) WHERE c.verdict = 'pass' AND c.last_t IS NOT NULL "
            "ORDER BY r.started, r.run_id")
        for guest, backend, run_id, t in rows:
            out.setdefault((guest, backend), []).append((run_id, t))
        return out

    def previous_times(self, run_id: str, cell_id: str) -> tuple[str, list[Any]] | None:
        """The previous run of a cell that reached milestones: (run_id, its milestones)."""
        row = self._before(run_id, self._started(run_id), cell_id, "r.folder, r.run_id")
        if row is None or not row[0]:
            return None
        try:  # an older run folder, damaged or gone since: no previous times
            data = load_results(Path(row[0]))
        except (OSError, ValueError):
            return None
        for c in data.get("cells", []):
            if c["id"] == cell_id:
                return row[1], c.get("milestones", [])
        return None


@dataclass(frozen=True)
class Step:
    """One run of a cell, with what it ran with."""

    run_id: str
    folder: str  # the run folder's name beside history.html (its run id unless renamed)
    verdict: str
    images: str
    quirks: str
    guest_digest: str | None
    last_t: float | None


@dataclass
class Story:
    """A cell's "since when?": its last runs, oldest first, and where its streak began."""

    cell_id: str
    steps: list[Step]
    failing_since: Step | None  # the first run of the current failing streak
    last_passed: Step | None

    def changed(self) -> list[tuple[Step, list[str]]]:
        """The runs whose images, quirks or guest file differ from the run before."""
        out = []
        for before, now in zip(self.steps, self.steps[1:], strict=False):
            what = [name for name, a, b in (
                ("images", before.images, now.images), ("quirks", before.quirks, now.quirks),
                ("guest file", before.guest_digest, now.guest_digest)) if a != b]
            if what:
                out.append((now, what))
        return out


def _story_steps(db: sqlite3.Connection, cell_id: str) -> list[Step]:
    rows = db.execute(
        "SELECT c.run_id, r.folder, c.verdict, c.images, c.quirks, c.guest_digest, c.last_t "
        "FROM cells c JOIN runs r USING (run_id) WHERE c.cell_id = ? AND c.verdict != 'skip' "
        "ORDER BY r.started, r.run_id", (cell_id,))
    return [Step(run_id, Path(folder).name if folder else run_id, verdict, images or "",
                 quirks or "", digest, t) for run_id, folder, verdict, images, quirks, digest, t
            in rows]


def story(db: sqlite3.Connection, cell_id: str, last: int = 10,
          upto: str | None = None) -> Story:
    """The cell's story up to run `upto` (by default, its newest run)."""
    steps = _story_steps(db, cell_id)
    ids = [s.run_id for s in steps]
    if upto in ids:
        steps = steps[:ids.index(upto) + 1]
    since = None
    for step in reversed(steps):
        if not _failing(step.verdict):
            break
        since = step
    passed = next((s for s in reversed(steps) if s.verdict in ("pass", "xpass")), None)
    return Story(cell_id, steps[-last:], since, passed)


def ingest(path: Path, folders: Iterable[Path]) -> list[str]:
    """Record every run folder's results.json; their run ids. ResultsError (a
    ValueError) if one is damaged: nothing is recorded from it."""
    ids = []
    for folder in folders:
        data = load_results(folder)
        record(path, data, folder.resolve())
        ids.append(data["run_id"])
    return ids
