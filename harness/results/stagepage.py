"""A staged cell's boots on its page: one row per stage, in order, with its verdict,
reason, time, score and console (kept apart from html.py, which calls it)."""

from __future__ import annotations

from html import escape
from typing import Any


def _esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def booted_stage(cell: dict[str, Any]) -> str:
    """The folder, relative to the cell page, of the last stage that booted ("stages/N/"):
    its console is the one that decided the cell. "" for a guest without stages."""
    booted = [s for s in cell.get("stages") or [] if s.get("artifacts")]
    return f"stages/{booted[-1]['name']}/" if booted else ""


def stages_section(cell: dict[str, Any]) -> str:
    """The cell page's "Stages" table, or "" for a guest without stages."""
    stages = cell.get("stages") or []
    if not stages:
        return ""
    rows = []
    for s in stages:
        name = _esc(s.get("name"))
        console = (f"<a href='stages/{name}/console.log'>console</a>"
                   if (s.get("artifacts") or {}).get("console") else "")
        rows.append(f"<tr class=stage id='stage-{name}'><td>{name}</td>"
                    f"<td><span class='badge v-{_esc(s.get('verdict'))}'>{_esc(s.get('verdict'))}"
                    f"</span></td><td>{_esc(s.get('reason') or '')}</td>"
                    f"<td>{_esc(s.get('duration_s'))}</td><td>{float(s.get('score') or 0):.2f}"
                    f"</td><td>{console}</td></tr>")
    return ("<h2>Stages</h2><table id=stages><tr><th>stage</th><th>verdict</th><th>reason</th>"
            "<th>seconds</th><th>score</th><th></th></tr>" + "".join(rows) + "</table>")
