"""Which cells to start now: longest expected first, within cores and memory.

Pure bookkeeping for the scheduler: a cell needs its vCPUs as cores and its
memory plus QEMU's own; cells start in order of expected duration (the last
run's, from history) while they fit. A cell larger than the whole host
still runs, alone, rather than never.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .model import Cell
from .results.store import load_results

CELL_OVERHEAD_MB = 200  # QEMU's own memory beside the guest's
DEFAULT_SECONDS = 60.0  # a cell never run before, when history knows nothing at all


def needs(cell: Cell) -> tuple[int, int]:
    return cell.guest.vcpus, cell.memory_mb + CELL_OVERHEAD_MB


def history(out: Path) -> dict[str, float]:
    """Cell id -> duration in the newest run under `out` (reports/latest)."""
    try:  # a damaged previous run only loses its durations, it stops no new run
        data = load_results(out / "latest")
    except (OSError, ValueError):
        return {}
    return {c["id"]: float(c.get("duration_s") or 0.0) for c in data.get("cells", [])
            if c.get("verdict") != "skip" and c.get("duration_s")}


def longest_first(cells: Sequence[Cell], known: dict[str, float]) -> list[Cell]:
    """Expected longest first; unknown cells count as the median known duration."""
    default = statistics.median(known.values()) if known else DEFAULT_SECONDS
    return sorted(cells, key=lambda c: -known.get(c.id, default))


@dataclass
class Slots:
    cores: int
    memory_mb: int
    jobs: int
    used_cores: int = 0
    used_memory: int = 0
    running: int = 0

    def fits(self, cell: Cell) -> bool:
        if self.running >= self.jobs:
            return False
        if self.running == 0:
            return True  # even a cell larger than the host runs, alone
        cores, memory = needs(cell)
        return (self.used_cores + cores <= self.cores
                and self.used_memory + memory <= self.memory_mb)

    def take(self, cell: Cell) -> None:
        cores, memory = needs(cell)
        self.used_cores += cores
        self.used_memory += memory
        self.running += 1

    def give_back(self, cell: Cell) -> None:
        cores, memory = needs(cell)
        self.used_cores -= cores
        self.used_memory -= memory
        self.running -= 1

    def startable(self, pending: list[Cell]) -> list[Cell]:
        """Take, in order, the pending cells that fit now (the head never waits for a
        smaller one behind it to finish first)."""
        out = []
        for cell in list(pending):
            if not self.fits(cell):
                break
            self.take(cell)
            pending.remove(cell)
            out.append(cell)
        return out
