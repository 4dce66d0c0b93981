"""History that answers "since when?", and changes that link to both sides.

For each cell of the newest run: the run its current failure began in, the
last run it passed, a sparkline of its time to the last milestone over the
last runs, and the runs where its images, quirks or guest file changed (so a
guest-file edit is seen beside the verdict it changed). A regression or fix
links to the cell's page in both runs. Links are relative (history.html sits
beside the run folders; index.html one level down).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from .history import Change, Comparison, History, Step, Story

SPARK_W, SPARK_H = 90, 18


def _h(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def cell_href(folder: str, cell_id: str, prefix: str = "") -> str:
    guest, backend, firmware = cell_id.split("/")
    return f"{prefix}{folder}/cells/{guest}/{backend}-{firmware}/cell.html"


def changes(comp: Comparison, folder: Callable[[str], str], prefix: str = "") -> str:
    """Regressions and fixes, each linking to the cell's page before and after."""
    def items(found: Sequence[Change]) -> str:
        def href(run: str, cell_id: str) -> str:
            return _h(cell_href(folder(run), cell_id, prefix))
        return "".join(
            f"<li>{_h(c.cell_id)}: <a class=before href='{href(c.baseline_run, c.cell_id)}'>"
            f"{_h(c.before)}</a> → <a class=after href='{href(comp.run_id, c.cell_id)}'>"
            f"{_h(c.after)}</a> <span class=muted>(vs {_h(c.baseline_run)})</span></li>"
            for c in found)
    return (f"<div id=changes><b>Since the previous run:</b> {len(comp.regressions)} "
            f"regressions, {len(comp.fixes)} fixes, {len(comp.new)} new cells"
            f"<ul id=regressions>{items(comp.regressions)}</ul>"
            f"<ul id=fixes>{items(comp.fixes)}</ul></div>")


def sparkline(steps: Sequence[Step]) -> str:
    """Time to the last milestone over the runs, as a small inline SVG (no script)."""
    ts = [s.last_t for s in steps]
    known = [t for t in ts if t is not None]
    if len(known) < 2:
        return ""
    low, span = min(known), (max(known) - min(known)) or None
    dx = SPARK_W / max(1, len(ts) - 1)

    def y(t: float) -> float:  # the fastest run at the bottom; all equal: a level line
        return SPARK_H / 2 if span is None else SPARK_H - 1 - (t - low) / span * (SPARK_H - 2)
    pts = " ".join(f"{i * dx:.1f},{y(t):.1f}" for i, t in enumerate(ts) if t is not None)
    return (f"<svg class=spark width={SPARK_W} height={SPARK_H} role=img>"
            f"<title>{_h(', '.join('-' if t is None else f'{t:.1f} s' for t in ts))}</title>"
            f"<polyline fill=none stroke='#0969da' stroke-width=1.5 points='{pts}'/></svg>")


def _step(step: Step | None, cell_id: str) -> str:
    if step is None:
        return "<span class=muted>—</span>"
    return f"<a href='{_h(cell_href(step.folder, cell_id))}'>{_h(step.run_id)}</a>"


def section(h: History, run_id: str, last: int = 10) -> str:
    """The "since when?" table of history.html for run `run_id`."""
    stories: list[Story] = h.stories(run_id, last)
    out = ["<h2>Since when?</h2><p class=muted>each cell of run " + _h(run_id)
           + ": where its failure began, when it last passed, what changed on the way "
           f"(images, quirks, guest file) and its time to the last milestone over the last "
           f"{last} runs</p><table id=since><tr><th>cell</th><th>now</th><th>failing since"
           "</th><th>last passed</th><th>changed</th><th>time</th></tr>"]
    for s in stories:
        now = s.steps[-1] if s.steps else None
        changed = "; ".join(f"{', '.join(what)} in {step.run_id}" for step, what in s.changed())
        digest = now.guest_digest if now else None
        out.append(
            f"<tr data-cell='{_h(s.cell_id)}'><td>{_h(s.cell_id)}</td>"
            f"<td class='v-{_h(now.verdict if now else 'none')}'>"
            f"{_h(now.verdict if now else '')}</td>"
            f"<td class=since>{_step(s.failing_since, s.cell_id)}</td>"
            f"<td class=passed>{_step(s.last_passed, s.cell_id)}</td>"
            f"<td class=changed title='guest file {_h(digest or 'unknown')}; images "
            f"{_h(now.images if now else '')}; quirks {_h(now.quirks if now else '')}'>"
            f"{_h(changed) or '<span class=muted>nothing</span>'}</td>"
            f"<td>{sparkline(s.steps)}</td></tr>")
    return "".join(out) + "</table>"
