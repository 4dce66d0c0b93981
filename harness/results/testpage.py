"""The payload's tests on a cell page: counts, then the cases, failures first with their
output, and the steps (kept apart from html.py, which calls `tests_section`)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

ORDER = {"failed": 0, "error": 1, "xfail": 2, "skipped": 3, "passed": 4}
COUNTS = ("passed", "failed", "skipped", "errors", "xfail")


def _esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def tests_section(cell: dict[str, Any]) -> str:
    """The cell page's "Tests" part, or "" when no payload ran."""
    tests = cell.get("tests")
    if not tests and not cell.get("steps"):
        return ""
    counts = "".join(f"<td class='t-{k}' id='tests-{k}'>{int(tests.get(k, 0))}</td>"
                     for k in COUNTS) if tests else ""
    out = ["<h2>Tests</h2>"]
    if tests:
        out.append("<table id=test-counts><tr>" + "".join(f"<th>{k}</th>" for k in COUNTS)
                   + f"</tr><tr>{counts}</tr></table>")
    only = cell.get("only_failing_here") or []
    if only:
        out.append("<p id=only-here><b>Failing only on this backend</b> (passed on the others): "
                   + ", ".join(_esc(n) for n in only) + "</p>")
    cases = sorted(cell.get("cases") or [], key=lambda c: ORDER.get(c.get("status"), 9))
    if cases:
        rows = []
        for c in cases:
            output = c.get("output") or ""
            shown = f"<pre>{_esc(output)}</pre>" if output and c.get("status") != "passed" else ""
            rows.append(f"<tr class='case s-{_esc(c.get('status'))}'><td>{_esc(c.get('name'))}"
                        f"</td><td>{_esc(c.get('status'))}</td><td>{_esc(c.get('step'))}</td>"
                        f"<td>{shown}</td></tr>")
        out.append("<table id=test-cases><tr><th>test</th><th>status</th><th>step</th>"
                   "<th>output</th></tr>" + "".join(rows) + "</table>")
    steps = cell.get("steps") or []
    if steps:
        out.append("<h3>Payload steps</h3><table id=payload-steps><tr><th>step</th><th>end</th>"
                   "<th>exit status</th><th>seconds</th><th>tests</th></tr>" + "".join(
                       f"<tr><td>{_esc(s.get('name'))}</td><td>{_esc(s.get('end'))}</td>"
                       f"<td>{_esc(s.get('status'))}</td><td>{_esc(s.get('duration_s'))}</td>"
                       f"<td>{_esc(s.get('tests'))}</td></tr>" for s in steps) + "</table>")
    return "".join(out)


def test_regressions(changes: Sequence[Any]) -> str:
    """The history page's list of payload tests that regressed, per cell (backend)."""
    if not changes:
        return ""
    return ("<h2>Tests that regressed</h2><p class=muted>passed in the cell's previous run, "
            "fail now (per backend)</p><ul id=test-regressions>" + "".join(
                f"<li>{_esc(t.cell_id)}: {_esc(t.name)}: {_esc(t.before)} → {_esc(t.after)} "
                f"(vs {_esc(t.baseline_run)})</li>" for t in changes) + "</ul>")
