"""`harness bisect-quirks`: which quirks make a failing cell boot.

The cell runs with all candidate quirks at once; if that reaches more
milestones than without them, delta debugging (ddmin) shrinks the set to a
minimal one that still does as well, each trial a real boot kept in the run
folder as evidence. If all at once does not help (quirks can fight), each
candidate is tried alone. Runs are bounded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import knowledge
from .executor import CellContext, execute
from .images.store import ResolvedImage
from .model import Cell, CellResult
from .plan import with_quirks


@dataclass
class Trial:
    quirks: tuple[str, ...]
    result: CellResult

    @property
    def reached(self) -> tuple[int, float]:
        """How far it got: milestones reached, then score."""
        return sum(m.reached for m in self.result.milestones), self.result.score


def candidate_quirks(cell: Cell, given: str | None) -> list[str]:
    """The quirks to try: those named (comma-separated), else every quirk of the library
    and the guest's own that the cell does not have yet. ValueError for unknown names."""
    library = knowledge.quirk_library(cell.quirk_defs)
    if not given:
        return [q for q in library if q not in cell.quirk_names]
    names = [q.strip() for q in given.split(",") if q.strip()]
    unknown = [q for q in names if q not in library]
    if unknown:
        raise ValueError(f"unknown quirk {unknown[0]!r} (known: {', '.join(sorted(library))})")
    return names


class Bisector:
    def __init__(self, cell: Cell, images: dict[str, ResolvedImage], folder: Path,
                 max_runs: int = 20, log: Callable[[str], None] = print) -> None:
        self.cell = cell
        self.images = images
        self.folder = folder
        self.max_runs = max_runs
        self.log = log
        self.trials: dict[frozenset[str], Trial] = {}

    def trial(self, quirks: Sequence[str]) -> Trial | None:
        key = frozenset(quirks)
        if key in self.trials:
            return self.trials[key]
        if len(self.trials) >= self.max_runs:
            return None
        name = f"{len(self.trials) + 1:02d}-" + ("+".join(sorted(key)) or "none")
        cell = dataclasses.replace(with_quirks(self.cell, [*self.cell.quirk_names, *quirks]),
                                   retries=0)
        result = execute(cell, self.images, CellContext(self.folder / "trials" / name[:120]))
        t = Trial(tuple(sorted(key)), result)
        self.trials[key] = t
        self.log(f"  trial {name}: {result.verdict}, {t.reached[0]} milestones")
        return t

    def run(self, candidates: Sequence[str]) -> tuple[Trial, Trial | None]:
        """(the cell as it is, the minimal quirk set's trial or None if none helps)."""
        base = self.trial([])
        assert base is not None
        everything = self.trial(candidates)
        if everything is not None and everything.reached > base.reached:
            return base, self._ddmin(list(candidates), everything.reached)
        singles = [t for q in candidates if (t := self.trial([q])) is not None]
        best = max(singles, key=lambda t: t.reached, default=None)
        return base, best if best is not None and best.reached > base.reached else None

    def write_summary(self, candidates: Sequence[str], base: Trial,
                      found: Trial | None) -> Path:
        """bisect.json beside the trials: every trial and the minimal set."""
        summary = {"cell": self.cell.id, "candidates": list(candidates),
                   "baseline": {"verdict": str(base.result.verdict),
                                "milestones": base.reached[0]},
                   "trials": [{"quirks": list(t.quirks), "verdict": str(t.result.verdict),
                               "milestones": t.reached[0], "score": t.result.score}
                              for t in self.trials.values()],
                   "minimal": list(found.quirks) if found else None}
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "bisect.json"
        path.write_text(json.dumps(summary, indent=1) + "\n")
        return path

    def _ddmin(self, quirks: list[str], target: tuple[int, float]) -> Trial:
        def good(subset: list[str]) -> bool:
            t = self.trial(subset)
            return t is not None and t.reached >= target

        n = 2
        while len(quirks) >= 2:
            size = -(-len(quirks) // n)
            chunks = [quirks[i:i + size] for i in range(0, len(quirks), size)]
            for chunk in chunks:
                if good(chunk):
                    quirks, n = chunk, 2
                    break
            else:
                for chunk in chunks:
                    rest = [q for q in quirks if q not in chunk]
                    if rest and good(rest):
                        quirks, n = rest, max(n - 1, 2)
                        break
                else:
                    if n >= len(quirks):
                        break
                    n = min(len(quirks), n * 2)
        found = self.trials[frozenset(quirks)]
        return found
