"""Across the backends of one guest: how fast each is, and where a failure parts.

Speed: for each guest and firmware, the last milestone every cell that got
anywhere reached, and each cell's time to it divided by the fastest's —
"HAXM is 80% as fast as KVM" becomes a number. Divergence: for a cell that
failed where another backend of the same guest passed, the last milestone
both reached and the first console line where they differ, with every time
stamp stripped. Tests: the payload tests that fail on one backend and pass on
every other backend of the same guest that ran them (`only_failing_here`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import islice
from pathlib import Path
from typing import Any

from ..model import CellResult, Verdict

_STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")  # ours, then a kernel's: both are time, not text
MAX_LINES = 200_000


def _groups(results: list[CellResult]) -> dict[tuple[str, str], list[CellResult]]:
    out: dict[tuple[str, str], list[CellResult]] = defaultdict(list)
    for r in results:
        if r.verdict is not Verdict.SKIP and any(m.reached for m in r.milestones):
            out[(r.guest, r.firmware)].append(r)
    return out


def add_speed(results: list[CellResult]) -> None:
    """Set `speed` on cells whose guest ran on two backends or more."""
    for cells in _groups(results).values():
        if len(cells) < 2:
            continue
        names = [m.name for m in cells[0].milestones]
        common = [i for i, _ in enumerate(names)
                  if all(i < len(c.milestones) and c.milestones[i].reached for c in cells)]
        if not common:
            continue
        i = common[-1]
        fastest = min(cells, key=lambda c: c.milestones[i].t or 0.0)
        ref_t = fastest.milestones[i].t or 0.0
        for c in cells:
            t = c.milestones[i].t or 0.0
            c.speed = {"milestone": names[i], "reference": f"{fastest.backend}",
                       "t": round(t, 3), "reference_t": round(ref_t, 3),
                       "ratio": round(t / ref_t, 3) if ref_t > 0 else None}


def _lines(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return [_STAMP.sub("", _STAMP.sub("", line.rstrip("\n"))).rstrip()
                    for line in islice(f, MAX_LINES) if "### harness:" not in line]
    except OSError:
        return []


def add_divergence(results: list[CellResult], run_folder: Path) -> None:
    """Set `divergence` on failing cells of a guest that passed on another backend."""
    for cells in _groups(results).values():
        good = next((c for c in cells if c.verdict is Verdict.PASS), None)
        if good is None:
            continue
        for bad in cells:
            if not (bad.underlying or bad.verdict).is_failure():
                continue
            bad.divergence = divergence(good, bad, run_folder)


def divergence(good: CellResult, bad: CellResult, run_folder: Path) -> dict[str, Any]:
    common = None
    for g, b in zip(good.milestones, bad.milestones, strict=False):
        if not (g.reached and b.reached):
            break
        common = g.name
    out: dict[str, Any] = {"from": f"{good.backend}/{good.firmware}",
                           "last_common_milestone": common}
    key = "console" if good.artifacts.get("console") else "screen_log"
    a = _lines(run_folder / good.artifacts.get(key, "missing"))
    b = _lines(run_folder / bad.artifacts.get(key, "missing"))
    for n, (x, y) in enumerate(zip(a, b, strict=False), start=1):
        if x != y:
            out.update(line=n, expected=x[:300], got=y[:300])
            return out
    if len(a) != len(b):
        n = min(len(a), len(b)) + 1
        out.update(line=n, expected=(a[n - 1][:300] if len(a) >= n else "(end of console)"),
                   got=(b[n - 1][:300] if len(b) >= n else "(end of console)"))
    return out


FAILED_CASE = ("failed", "error")


def add_only_failing(results: list[CellResult]) -> None:
    """Set `only_failing_here` on cells with payload tests that failed there and passed
    on every other backend of the guest (same firmware) that ran them."""
    for cells in _groups(results).values():
        ran = [c for c in cells if c.cases]
        if len(ran) < 2:
            continue
        status = {c.cell_id: {str(t["name"]): t["status"] for t in c.cases} for c in ran}
        for c in ran:
            others = [status[o.cell_id] for o in ran if o is not c]
            only = [name for name, st in status[c.cell_id].items() if st in FAILED_CASE
                    and all(o.get(name) == "passed" for o in others)]
            c.only_failing_here = only
