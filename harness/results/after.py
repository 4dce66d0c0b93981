"""The after-work every run gets, whoever ran it (local, cluster, pytest, repro).

Speed ratios and console divergence across a guest's backends, the final
results.json, junit.xml, then the pages and the history: one function for
the files, one for the pages, so no caller does a different subset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .compare import add_divergence, add_only_failing, add_speed
from .junit import write_junit
from .store import RunStore

if TYPE_CHECKING:  # the history (and sqlite3) loads when pages are written
    from .history import Comparison


def finish_run(store: RunStore, interrupted: bool = False) -> None:
    """Cross-cell facts, then results.json and junit.xml, written for good."""
    add_speed(store.cells)
    add_divergence(store.cells, store.folder)
    add_only_failing(store.cells)
    store.finish(interrupted)
    try:
        write_junit(store.folder / "junit.xml", store.run_id, store.cells, store.folder)
    except OSError as exc:  # a full disk: results.json holds the cells; say so
        store.note_lost("junit.xml", exc)


def write_pages(run_dir: Path) -> Comparison:
    """Record the run in its reports folder's history and write its pages; its changes
    since the previous runs. Raises OSError, ValueError or sqlite3.Error."""
    from .report import build  # the page writer loads only when pages are written

    built = build([run_dir])
    return next(iter(built.comparisons.values()))
