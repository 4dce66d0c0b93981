"""`harness bisect-quirks`: which quirks make a failing cell boot.

The cell runs with all candidate quirks at once; if that reaches more
milestones than without them, delta debugging (ddmin) shrinks the set to a
minimal one that still does as well, each trial a real boot kept in the run
folder as evidence. If all at once does not help (quirks can fight), each
candidate is tried alone. Runs are bounded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .images.store import ResolvedImage
from .model import Cell, CellResult
from .runner import run_cell


@dataclass
class Trial:
    quirks: tuple[str, ...]
    result: CellResult

    @property
    def reached(self) -> tuple[int, float]:
        """How far it got: milestones reached, then score."""
        return sum(m.reached for m in self.result.milestones), self.result.score


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
        ordered = tuple(q for q in dict.fromkeys([*self.cell.quirks, *quirks]))
        name = f"{len(self.trials) + 1:02d}-" + ("+".join(sorted(key)) or "none")
        cell = dataclasses.replace(self.cell, quirks=list(ordered), retries=0)
        result = run_cell(cell, self.images, self.folder / "trials" / name[:120])
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
