"""`harness repro`: re-run one recorded cell through the executor, and compare.

The recorded cell is found in a run's results.json, rebuilt from today's
guest file with the recorded quirks and firmware, and refused if its images
are not the recorded ones (by digest); each replay goes into a run folder of
its own (reports/latest keeps naming the recorded run). Whether it
reproduced: the same verdict and the same last milestone reached.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import knowledge
from .backends.probe import host_facts
from .executor import CellContext, execute
from .images.cache import Cache
from .images.store import ImageStore
from .model import Cell, CellResult, Guest, Matrix
from .plan import expand, with_quirks
from .results.after import finish_run
from .results.store import RunStore, load_results


class ReproError(Exception):
    """The recorded run or cell cannot be replayed (a usage error)."""


@dataclass
class Replay:
    recorded: dict[str, Any]
    results: list[CellResult]
    folder: Path | None = None
    lost: dict[str, str] = field(default_factory=dict)  # run folder files not written in full

    def reproduced(self, r: CellResult) -> bool:
        """Same verdict and the same last milestone reached."""
        return (str(r.verdict) == self.recorded["verdict"]
                and last_milestone(r.milestones) == last_milestone(self.recorded["milestones"]))

    @property
    def ok(self) -> bool:
        return all(self.reproduced(r) for r in self.results)

    def summary(self) -> str:
        counts = Counter(f"{r.verdict}" for r in self.results)
        same = sum(self.reproduced(r) for r in self.results)
        dist = ", ".join(f"{v} {n}" for v, n in counts.most_common())
        flaky = " (flaky: the runs disagree)" if len(counts) > 1 else ""
        return (f"recorded: {self.recorded['verdict']} at "
                f"{last_milestone(self.recorded['milestones']) or 'no milestone'}; "
                f"replayed {len(self.results)}x: {dist}{flaky}; reproduced {same}/"
                f"{len(self.results)}")


def last_milestone(milestones: list[Any]) -> str | None:
    reached = [m for m in milestones
               if (m["reached"] if isinstance(m, dict) else m.reached)]
    if not reached:
        return None
    last = reached[-1]
    return last["name"] if isinstance(last, dict) else last.name


def recorded_cell(source: Path, pattern: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the recorded run, the one cell of it that `pattern` names)."""
    try:
        run = load_results(source)
    except (OSError, ValueError) as exc:
        raise ReproError(f"cannot read the recorded run {source}: {exc}") from None
    matching = [c for c in run["cells"] if fnmatch.fnmatchcase(c["id"], pattern)]
    if len(matching) != 1:
        ids = ", ".join(c["id"] for c in matching[:5]) or "none"
        raise ReproError(f"{pattern!r} names {len(matching)} cells of {source} ({ids})")
    if matching[0]["verdict"] == "skip":
        raise ReproError(f"{matching[0]['id']} was skipped: {matching[0]['reason']}")
    return run, matching[0]


def rebuild(recorded: dict[str, Any], matrix: Matrix, guests: dict[str, Guest]) -> Cell:
    """The recorded cell from today's guest file, with its recorded quirks, no retries."""
    if recorded["guest"] not in guests:
        raise ReproError(f"no guest file for {recorded['guest']!r} any more")
    if recorded["backend"] not in knowledge.backends():
        raise ReproError(f"{recorded['id']}: backend {recorded['backend']!r} is unknown here "
                         "(backends.yaml)")
    cells = expand(dataclasses.replace(matrix, guests=[recorded["guest"]],
                                       backends=[recorded["backend"]],
                                       firmware=[recorded["firmware"]], exclude=[]), guests)
    if len(cells) != 1:
        raise ReproError(f"{recorded['id']}: today's guest file makes no such cell (firmware "
                         f"{recorded['firmware']!r} or arch no longer offered?)")
    [cell] = cells
    return dataclasses.replace(with_quirks(cell, recorded.get("quirks", [])), retries=0)


def replay(run: dict[str, Any], recorded: dict[str, Any], cell: Cell, out: Path, times: int,
           ctx: CellContext, log: Callable[[str], None] = print) -> Replay:
    """Boot `cell` `times` times with the recorded images into a new run folder."""
    images = ImageStore(Cache(), log=log).resolve_guest(cell.guest)
    changed = [f"{name}: recorded {rec['sha256']}, now {images[name].sha256}"
               for name, rec in recorded.get("images", {}).items()
               if name in images and images[name].sha256 != rec["sha256"]]
    if changed:
        raise ReproError("the guest's images are not the recorded ones (" + "; ".join(changed)
                         + "): check out the guest file of that run")
    store = RunStore(out, host_facts().to_json(),
                     meta={"repro_of": run["run_id"], "cell": recorded["id"]},
                     latest=False)  # reports/latest stays the run being reproduced
    results = []
    for n in range(1, times + 1):
        result = execute(cell, images, dataclasses.replace(
            ctx, run_dir=store.folder / f"replay-{n}"))
        result.artifacts = {k: ([f"replay-{n}/{x}" for x in v] if isinstance(v, list)
                                else f"replay-{n}/{v}") for k, v in result.artifacts.items()}
        store.add(result)
        results.append(result)
        log(f"replay {n}: {result.verdict}" + (f" ({result.reason})" if result.reason else ""))
    finish_run(store)
    return Replay(recorded, results, store.folder, dict(store.lost))
