"""`harness report`: record runs in the history and (re)build their pages.

A run folder gets index.html (the grid) and cells/*/*/cell.html; the
reports folder (the run folders' parent) gets history.sqlite and
history.html. `harness run` does the same for the run it just made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write
from . import html, table
from .history import FILE, Comparison, History, ingest
from .store import load_results


class BaselineError(ValueError):
    """The run named by --baseline is not in the history (and only that)."""


@dataclass
class Built:
    pages: list[Path] = field(default_factory=list)
    comparisons: dict[str, Comparison] = field(default_factory=dict)  # run id -> changes
    tables: dict[str, table.Table] = field(default_factory=dict)  # run id -> porters' table


def build(run_dirs: Sequence[Path], baseline: str | None = None, last: int = 10) -> Built:
    """Pages for each run folder and the history of their reports folder."""
    built = Built()
    written = built.pages
    by_parent: dict[Path, list[Path]] = {}
    for d in run_dirs:
        by_parent.setdefault(d.resolve().parent, []).append(d.resolve())
    for parent, dirs in by_parent.items():
        db = parent / FILE
        ids = ingest(db, dirs)
        h = History(db)
        try:
            if baseline is not None and baseline not in {r for r, _ in h.runs()}:
                raise BaselineError(f"run {baseline!r} is not in {db}")
            comparison = None
            for run_dir, run_id in zip(dirs, ids, strict=True):
                comparison = h.compare(run_id, baseline)
                built.comparisons[run_id] = comparison
                built.tables[run_id] = table.build(load_results(run_dir), comparison)
                written += run_pages(run_dir, h, comparison)
            _write(parent / "history.html", html.history_page(h, comparison, last))
            written.append(parent / "history.html")
        finally:
            h.close()
    return built


def run_pages(run_dir: Path, h: History, comparison: Comparison | None) -> list[Path]:
    results = load_results(run_dir)
    _write(run_dir / "index.html", html.run_page(results, comparison))
    out = [run_dir / "index.html"]
    for cell in results["cells"]:
        path = run_dir / html.cell_page_path(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        previous = h.previous_times(results["run_id"], cell["id"])
        _write(path, html.cell_page(results, cell, run_dir, previous))
        out.append(path)
    return out


def _write(path: Path, text: str) -> None:
    """Pages are for publishing: world-readable, unlike the cache's private files."""
    atomic_write(path, text)
    os.chmod(path, 0o644)
