"""The run folder and its results.json, written incrementally and atomically.

After every finished cell the whole results.json is rewritten through a
temporary file and a rename, so a crash, Ctrl-C or SIGKILL mid-run leaves a
valid file holding every cell finished so far. When a write fails (a full
disk, a read-only or failing filesystem), the previous complete file stays,
the failure is said once, later writes try again, and `lost` tells the
caller that the run folder is incomplete (exit status 3).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..files import atomic_write, os_reason
from ..model import CellResult
from .validate import ResultsError, check, read_results

SCHEMA = 1


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


class RunStore:
    def __init__(self, out: Path, host: dict[str, Any], run_id: str | None = None,
                 meta: dict[str, Any] | None = None, latest: bool = True) -> None:
        self.out = out
        self.run_id = run_id or new_run_id()
        self.folder = out / self.run_id
        self.folder.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()
        self._init_writes()
        self.cells: list[CellResult] = []
        self.data: dict[str, Any] = {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "started": _iso(dt.datetime.now(dt.UTC)),
            "finished": None,
            "host": {**host, "harness": __version__},
            **(meta or {}),
            "cells": [],
        }
        self._write()
        if latest:
            self._point_latest()

    @classmethod
    def reopen(cls, folder: Path, keep: list[CellResult]) -> RunStore:
        """An existing run folder, to finish (`--resume`): `keep` are the cells that stay."""
        store = cls.__new__(cls)
        store.out, store.folder = folder.parent, folder
        store.data = load_results(folder)
        store.run_id = store.data["run_id"]
        store._lock = threading.Lock()
        store._init_writes()
        store._saved = len(store.data["cells"])
        store.cells = list(keep)
        store.data.pop("interrupted", None)
        store.data.setdefault("resumed", []).append(_iso(dt.datetime.now(dt.UTC)))
        store._write()
        return store

    def add(self, result: CellResult) -> None:
        with self._lock:
            self.cells.append(result)
            self._write()

    def finish(self, interrupted: bool = False) -> None:
        with self._lock:
            self.data["finished"] = _iso(dt.datetime.now(dt.UTC))
            if interrupted:
                self.data["interrupted"] = True
            self._write()

    def _init_writes(self) -> None:
        self.log: Callable[[str], None] = lambda m: print(f"harness: {m}", file=sys.stderr)
        self.lost: dict[str, str] = {}  # file in the run folder -> why it is not complete
        self._saved: int | None = None  # cells in the last complete results.json

    def note_lost(self, name: str, exc: OSError) -> None:
        """A file of the run folder that could not be written (said once per file)."""
        problem = f"{name}: {os_reason(exc)}"
        if self.lost.get(name) != problem:
            self.log(problem)
        self.lost[name] = problem

    def _write(self) -> None:
        self.data["cells"] = [c.to_json() for c in self.cells]
        text = json.dumps(self.data, indent=1) + "\n"
        try:
            atomic_write(self.folder / "results.json", text)
        except OSError as exc:
            kept = ("no complete file yet" if self._saved is None else
                    f"kept the previous complete file with {self._saved} "
                    f"cell{'s' if self._saved != 1 else ''}")
            problem = f"results.json: {os_reason(exc)}; {kept}"
            if self.lost.get("results.json", "").split(";")[0] != problem.split(";")[0]:
                self.log(problem)
            self.lost["results.json"] = problem
            return
        if self.lost.pop("results.json", None):
            self.log(f"results.json: written again, with {len(self.cells)} cells")
        self._saved = len(self.cells)

    def _point_latest(self) -> None:
        """reports/latest -> this run (replaced atomically)."""
        link = self.out / "latest"
        tmp = self.out / f".latest-{self.run_id}"
        with contextlib.suppress(OSError):
            tmp.unlink()
        try:
            os.symlink(self.run_id, tmp)
            os.replace(tmp, link)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def load_results(path: Path) -> dict[str, Any]:
    """A results.json, given the file or its run folder, checked against the results
    contract (validate.py); ResultsError (a ValueError) naming the file and the place
    if it is damaged, OSError if it cannot be read."""
    if path.is_dir():
        path = path / "results.json"
    return read_results(path)


def check_names(data: Any) -> None:
    """ResultsError unless `data` keeps the results contract, names included: the run id
    and every cell's guest, backend and firmware become folders that `report`, `merge`,
    `repro` and `--resume` write, which must stay inside the run folder."""
    found = check(data)
    if found:
        raise ResultsError("\n".join(f"{where}: {what}" for where, what in found))
