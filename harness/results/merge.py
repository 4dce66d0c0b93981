"""`harness merge`: shard runs (or runs of several hosts) into one run folder.

The cells, their artefacts and a JUnit file, as one run of the whole matrix
would have them; a cell found in two runs is refused rather than guessed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..files import os_problem
from ..model import CellResult
from .junit import write_junit
from .store import RunStore, load_results


class MergeError(Exception):
    pass


def cell_folder(cell: dict) -> str:
    return f"cells/{cell['guest']}/{cell['backend']}-{cell['firmware']}"


def merge(runs: list[Path], out: Path) -> RunStore:
    loaded = []
    for run in runs:
        try:
            loaded.append((run if run.is_dir() else run.parent, load_results(run)))
        except OSError as exc:
            raise MergeError(f"cannot read {run}: {os_problem(exc)}") from None
        except ValueError as exc:  # names the file and the place
            raise MergeError(str(exc)) from None
    seen: dict[str, Path] = {}
    for folder, data in loaded:
        for cell in data["cells"]:
            if cell["id"] in seen:
                raise MergeError(f"cell {cell['id']} is in both {seen[cell['id']]} and {folder}")
            seen[cell["id"]] = folder
    hosts = [data["host"] for _, data in loaded]
    meta = {"merged_from": [data["run_id"] for _, data in loaded]}
    if any(h != hosts[0] for h in hosts):
        meta["hosts"] = hosts
    store = RunStore(out, {k: v for k, v in hosts[0].items() if k != "harness"}, meta=meta)
    store.data["started"] = min(data["started"] for _, data in loaded)
    cells = sorted(((folder, c) for folder, data in loaded for c in data["cells"]),
                   key=lambda fc: fc[1]["id"])
    for folder, cell in cells:
        src = folder / cell_folder(cell)
        if src.is_dir():
            dst = store.folder / cell_folder(cell)
            try:
                shutil.copytree(src, dst, dirs_exist_ok=True)
            except OSError as exc:  # a full disk: said, and the space goes to results.json
                shutil.rmtree(dst, ignore_errors=True)
                store.note_lost(cell_folder(cell), _first(exc))
    store.cells = [CellResult.from_json(c) for _, c in cells]
    store.finish(interrupted=any(data.get("interrupted") for _, data in loaded))
    try:
        write_junit(store.folder / "junit.xml", store.run_id, store.cells, store.folder)
    except OSError as exc:
        store.note_lost("junit.xml", exc)
    return store  # store.lost: what the merged folder lacks


def _first(exc: OSError) -> OSError:
    """copytree gathers its failures in one shutil.Error: the first, as an OSError."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        why = str(exc.args[0][0][2])  # "[Errno 28] No space left on device: 'a' -> 'b'"
        found = re.match(r"\[Errno \d+\] ([^:]+)", why)
        return OSError(f"{found.group(1).lower() if found else why}; its files were not copied")
    return exc
