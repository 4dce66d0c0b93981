"""Static result pages: a run's grid, a page per cell, the history page.

Every page is one self-contained file (styles, scripts and the vendored
uPlot chart library inline; nothing is fetched). Everything that comes from
a guest or a file (console lines, stderr, reasons, names) is HTML-escaped:
guest output is hostile input. Charts are uPlot, fed by JSON embedded in
the page (with '<' escaped, so no text can close the script element).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..files import safe_name
from . import console_view, grid, since, table
from .history import Comparison, History
from .stagepage import booted_stage, stages_section
from .testpage import test_regressions, tests_section

VERDICTS = ("pass", "xfail", "xpass", "crash", "hang", "timeout", "fail", "error", "skip")
CONSOLE_LINES = 4000  # a cell page shows at most this many console lines (the file has all)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:left}.grid td.cell{min-width:8em;font-size:12px}
.v-pass{background:#c8f0c8}.v-xfail{background:#e4e4f4}.v-xpass{background:#f4e4a0}
.v-crash{background:#f4a0a0}.v-hang{background:#f4b8a0}.v-timeout{background:#f4c8a0}
.v-fail{background:#f4a8b8}.v-error{background:#d8a0f0}.v-skip{background:#eee;color:#777}
.v-none{background:#fff}.badge{display:inline-block;padding:1px 7px;margin:2px;border-radius:3px}
.dim{opacity:.15}.hidden{display:none}pre{background:#f8f8f8;padding:.6em;overflow-x:auto;
font-size:12px;max-height:40em}.muted{color:#777}a{color:#0645ad}
.strip span{display:inline-block;width:14px;height:14px;margin-right:1px}
"""

def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def clean(text: str) -> str:
    """Console text made safe to show: escape sequences and control bytes gone, escaped."""
    return html.escape(_ANSI.sub("", text), quote=False)


def _asset(name: str) -> str:
    return resources.files("harness").joinpath("data", "vendor", "uplot", name).read_text()


def _json_for_script(data: Any) -> str:
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&",
                                                                                    "\\u0026")


_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def csp(document: str) -> str:
    """A Content-Security-Policy that runs the page's own inline scripts (by their
    SHA-256) and nothing else: no inline event handler, no `javascript:` URL, no
    fetch. Whatever a guest managed to put into the page cannot run."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode()
        + "'" for m in _SCRIPT.finditer(document))
    return (f"default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
            f"script-src {hashes or chr(39) + 'none' + chr(39)}; base-uri 'none'; "
            "form-action 'none'")


def page(title: str, body: str, charts: bool = False) -> str:
    head = [f"<style>{CSS}</style>"]
    if charts:
        head.append(f"<style>{_asset('uPlot.min.css')}</style>"
                    f"<script>{_asset('uPlot.iife.min.js')}</script>")
    rest = "".join(head) + f"</head><body>{body}</body></html>\n"
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv=Content-Security-Policy content=\"{esc(csp(rest))}\">"
            f"<meta name=viewport content='width=device-width'><title>{esc(title)}</title>"
            + rest)


def file_link(name: str) -> str | None:
    """A link to a file beside the page, or None when the name is not a plain file
    name (a scheme such as `javascript:`, a path, a quote)."""
    return name if safe_name(name) else None


def cell_page_path(cell: dict[str, Any]) -> str:
    return f"cells/{cell['guest']}/{cell['backend']}-{cell['firmware']}/cell.html"


# --- the run page ---------------------------------------------------------------------

def run_page(results: dict[str, Any], comparison: Comparison | None = None) -> str:
    cells = results["cells"]
    totals = {v: sum(c["verdict"] == v for c in cells) for v in VERDICTS}
    out = [f"<h1>Run {esc(results['run_id'])}</h1>",
           f"<p class=muted>started {esc(results.get('started'))}, finished "
           f"{esc(results.get('finished') or 'not finished')}"
           f"{' (interrupted)' if results.get('interrupted') else ''}; host "
           f"{esc(_host_line(results.get('host') or {}))}</p>",
           "<p id=totals>" + "".join(
               f"<span class='badge v-{v}' data-verdict='{v}'>{v} {n}</span>"
               for v, n in totals.items() if n) + f" <span class=muted>{len(cells)} cells</span>"
           + "</p>"]
    porters = table.build(results)
    porters.not_run = []  # said once, above the grid
    hrefs = {(c["guest"], (c["backend"], c["firmware"])): cell_page_path(c) for c in cells}
    out.append("<h2>How far each guest got</h2>" + table.html_fragment(porters, hrefs))
    if comparison is not None:
        out.append(since.changes(comparison, lambda run: run, "../"))
    regressions = {c.cell_id for c in comparison.regressions} if comparison else set()
    out.append("<h2>All cells</h2>" + grid.grid(results, cell_page_path, regressions))
    return page(f"run {results['run_id']}", "".join(out))


def _host_line(h: dict[str, Any]) -> str:
    return (f"{h.get('hostname', '?')}: {h.get('os', '?')} {h.get('kernel', '')} "
            f"{h.get('arch', '')}, {h.get('cpu', '')}, QEMU {h.get('qemu', '?')}, "
            f"guest-harness {h.get('harness', '?')}")


# --- a cell's page --------------------------------------------------------------------

def cell_page(results: dict[str, Any], cell: dict[str, Any], run_dir: Path,
              previous: tuple[str, list[Any]] | None) -> str:
    folder = run_dir / Path(cell_page_path(cell)).parent
    v = cell["verdict"]
    out = [f"<p><a href='../../../index.html'>run {esc(results['run_id'])}</a></p>",
           f"<h1>{esc(cell['id'])} <span class='badge v-{esc(v)}' id=verdict>{esc(v)}</span></h1>"]
    facts = [("score", f"{cell.get('score', 0):.2f}"),
             ("duration", f"{cell.get('duration_s', 0)} s"),
             ("reason", cell.get("reason")), ("quirks", ", ".join(cell.get("quirks") or [])),
             ("attempts", cell.get("attempts"))]
    if cell.get("failure"):
        facts.append(("failure", f"{cell['failure']['name']}: {cell['failure']['text']}"))
    if cell.get("expect"):
        facts.append(("expected", cell["expect"].get("reason")))
        if cell["expect"].get("link"):
            facts.append(("link", cell["expect"]["link"]))
    if cell.get("speed"):
        facts.append(("speed", json.dumps(cell["speed"])))
    if cell.get("divergence"):
        facts.append(("divergence", json.dumps(cell["divergence"])))
    out.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(val)}</td></tr>"
                                   for k, val in facts if val not in (None, "")) + "</table>")
    out.append(stages_section(cell))
    out.append(tests_section(cell))
    charts = False
    series = _timeline(results, cell, previous)
    if series:
        charts = True
        out.append("<h2>Milestones (seconds from start)</h2><div id=timeline></div>"
                   f"<script>const T={_json_for_script(series)};{TIMELINE_JS}</script>")
    shots = [n for s in cell.get("artifacts", {}).get("screenshots") or []
             if isinstance(s, str) and (n := file_link(Path(s).name))]
    if shots:
        out.append("<h2>Screenshots</h2>" + "".join(
            f"<a href='{esc(n)}'><img src='{esc(n)}' width=360 alt='{esc(n)}'></a> "
            for n in shots))
    out.append("<h2>Reproduce</h2><p class=muted>from the run folder (where index.html is)</p>"
               "<pre id=repro>" + esc(
                   f"sh {Path(cell_page_path(cell)).parent / 'repro.sh'}\n"
                   f"harness repro {cell['id']} --from results.json") + "</pre>")
    sub = booted_stage(cell)  # a staged cell's files: its last booted stage's folder
    out.append(console_view.block(folder / sub / "console.log", CONSOLE_LINES,
                                  f"{sub}console.log"))
    rid = results["run_id"]
    out.append(_file_block("VMM stderr", folder / sub / "vmm.stderr", "stderr", 200, rid,
                           sub))
    out.append(_file_block("VMM commands (setup and teardown)",
                           folder / sub / "vmm.commands.log", "vmm-commands", 200, rid, sub))
    out.append("<h2>Images</h2><table><tr><th>image</th><th>sha256</th><th>source</th></tr>"
               + "".join(
        f"<tr><td>{esc(n)}</td><td><code>{esc(i.get('sha256'))}</code></td>"
        f"<td>{esc(i.get('source'))}</td></tr>" for n, i in (cell.get("images") or {}).items())
        + "</table>")
    out.append("<h2>Command</h2><p class=muted>paths in the run folder are relative to it</p>"
               "<pre>" + esc(console_view.relative(" ".join(cell.get("command") or []), rid))
               + "</pre>")
    out.append("<h2>Host</h2><pre>" + esc(json.dumps(results.get("host"), indent=1)) + "</pre>")
    return page(cell["id"], "".join(out), charts=charts)


def _file_block(title: str, path: Path, ident: str, tail: int, run_id: str = "",
                sub: str = "") -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    cut = len(lines) - tail
    href = esc(sub + path.name)
    note = (f"<p class=muted>the first {cut} lines are only in <a href='{href}'>"
            f"{esc(path.name)}</a></p>" if cut > 0 else "")
    return (f"<h2>{esc(title)} <a href='{href}' class=muted>(file)</a></h2>{note}"
            f"<pre id='{esc(ident)}'>" + clean(console_view.relative("\n".join(lines[-tail:]),
                                                                     run_id) if run_id else
                                               "\n".join(lines[-tail:])) + "</pre>")


TIMELINE_JS = """
(function(){const el=document.getElementById('timeline');
const colours=['#1a7f37','#888','#0969da','#bf8700','#cf222e','#8250df','#1b7c83','#953800'];
const opts={width:Math.min(900,window.innerWidth-40),height:300,
  scales:{x:{time:false}},
  axes:[{values:(u,vals)=>vals.map(v=>T.names[v]??'')},{label:'seconds'}],
  series:[{}].concat(T.series.map((s,i)=>({label:s.label,stroke:colours[i%colours.length],
    width:2,points:{size:6}})))};
new uPlot(opts,[T.names.map((_,i)=>i)].concat(T.series.map(s=>s.t)),el);})();
"""


def _timeline(results: dict[str, Any], cell: dict[str, Any],
              previous: tuple[str, list[Any]] | None) -> dict[str, Any] | None:
    names = [m["name"] for m in cell.get("milestones", [])]
    if not names or cell["verdict"] == "skip":
        return None

    def times(milestones: Sequence[dict[str, Any]]) -> list[float | None]:
        got = {m["name"]: m.get("t") for m in milestones if m.get("reached")}
        return [got.get(n) for n in names]

    series = [{"label": f"this run ({cell['backend']}/{cell['firmware']})",
               "t": times(cell["milestones"])}]
    if previous:
        series.append({"label": f"previous run {previous[0]}", "t": times(previous[1])})
    for other in results["cells"]:
        if other["guest"] == cell["guest"] and other["id"] != cell["id"] and \
                other["verdict"] != "skip":
            series.append({"label": f"{other['backend']}/{other['firmware']}",
                           "t": times(other.get("milestones", []))})
    return {"names": names, "series": series}


# --- the history page ------------------------------------------------------------------

def history_page(h: History, comparison: Comparison | None, last: int = 10) -> str:
    runs = h.runs()
    out = [f"<h1>History</h1><p class=muted>{len(runs)} runs recorded; the last {last} shown</p>"]
    if comparison is not None:
        out.append(f"<p>Run {esc(comparison.run_id)}:</p>" + since.changes(comparison, h.folder))
        out.append(test_regressions(comparison.test_regressions))
    flaky = h.flaky(last)
    out.append("<h2>Flaky cells</h2><p class=muted>verdict changed while the images and the "
               "harness stayed the same</p><ul id=flaky>" + "".join(
                   f"<li>{esc(c)}: {esc(' → '.join(v))}</li>" for c, v in sorted(flaky.items()))
               + "</ul>")
    newest = comparison.run_id if comparison is not None else (runs[-1][0] if runs else None)
    if newest is not None:
        out.append(since.section(h, newest, last))
    out.append("<h2>Last runs per cell</h2><table id=strips><tr><th>cell</th><th>oldest → newest"
               "</th></tr>")
    for cell_id, strip in sorted(h.strips(last).items()):
        out.append(f"<tr><td>{esc(cell_id)}</td><td class=strip>" + "".join(
            f"<span class='v-{esc(v)}' title='{esc(r)}: {esc(v)}'></span>" for r, v in strip)
            + "</td></tr>")
    out.append("</table>")
    trends = {f"{g} on {b}": pts for (g, b), pts in sorted(h.trends().items()) if len(pts) > 1}
    if trends:
        data = {"runs": [r for r, _ in runs],
                "trends": {k: {"runs": [r for r, _ in v], "t": [t for _, t in v]}
                           for k, v in trends.items()}}
        out.append("<h2>Boot time to the last milestone, per guest and backend</h2>"
                   f"<div id=trends></div><script>const H={_json_for_script(data)};"
                   f"{TRENDS_JS}</script>")
    return page("history", "".join(out), charts=bool(trends))


TRENDS_JS = """
(function(){const root=document.getElementById('trends');
Object.keys(H.trends).forEach(function(k){const d=H.trends[k];
  const box=document.createElement('div');box.className='trend';root.appendChild(box);
  const xs=d.runs.map(r=>H.runs.indexOf(r));
  new uPlot({title:k,width:Math.min(700,window.innerWidth-40),height:200,scales:{x:{time:false}},
    axes:[{values:(u,vals)=>vals.map(v=>Number.isInteger(v)?(H.runs[v]||'').slice(0,15):'')},
          {label:'seconds'}],
    series:[{},{label:'seconds',stroke:'#0969da',width:2,points:{size:5}}]},[xs,d.t],box);});})();
"""
