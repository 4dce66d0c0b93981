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

from .. import knowledge
from ..files import safe_name
from .history import Comparison, History
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

FILTER_JS = """
function applyFilters(){
  const os=document.getElementById('f-os').value, be=document.getElementById('f-backend').value,
        v=document.getElementById('f-verdict').value;
  document.querySelectorAll('th.col,td.cell').forEach(function(e){
    e.classList.toggle('hidden', be!=='' && e.dataset.backend!==be);});
  document.querySelectorAll('tr.guest').forEach(function(r){
    let any=false;
    r.querySelectorAll('td.cell').forEach(function(c){
      const ok=(v===''||c.dataset.verdict===v)&&(be===''||c.dataset.backend===be);
      c.classList.toggle('dim', !ok); if(ok&&c.dataset.verdict!=='none') any=true;});
    r.classList.toggle('hidden', (os!=='' && r.dataset.os!==os) || !any);});
}
document.querySelectorAll('select.filter').forEach(function(s){
  s.addEventListener('change', applyFilters);});
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


def _last(cell: dict[str, Any]) -> tuple[str, float] | None:
    reached = [m for m in cell.get("milestones", []) if m.get("reached") and m.get("t")]
    return (reached[-1]["name"], reached[-1]["t"]) if reached else None


def cell_page_path(cell: dict[str, Any]) -> str:
    return f"cells/{cell['guest']}/{cell['backend']}-{cell['firmware']}/cell.html"


# --- the run page ---------------------------------------------------------------------

def run_page(results: dict[str, Any], comparison: Comparison | None = None) -> str:
    cells = results["cells"]
    guests_info = results.get("guests") or {}
    cols = sorted({(c["backend"], c["firmware"]) for c in cells},
                  key=lambda bf: (_backend_order(cells).index(bf[0]), bf[1]))
    by_id = {c["id"]: c for c in cells}
    totals = {v: sum(c["verdict"] == v for c in cells) for v in VERDICTS}
    families = sorted({guests_info.get(c["guest"], {}).get("os", "unknown") for c in cells})
    out = [f"<h1>Run {esc(results['run_id'])}</h1>",
           f"<p class=muted>started {esc(results.get('started'))}, finished "
           f"{esc(results.get('finished') or 'not finished')}"
           f"{' (interrupted)' if results.get('interrupted') else ''}; host "
           f"{esc(_host_line(results.get('host') or {}))}</p>",
           "<p id=totals>" + "".join(
               f"<span class='badge v-{v}' data-verdict='{v}'>{v} {n}</span>"
               for v, n in totals.items() if n) + f" <span class=muted>{len(cells)} cells</span>"
           + "</p>"]
    if comparison is not None:
        out.append(_changes(comparison))
    out.append("<p>" + _select("f-os", "OS family", families)
               + _select("f-backend", "backend", [b for b in _backend_order(cells)])
               + _select("f-verdict", "verdict", [v for v in VERDICTS if totals[v]])
               + " <a href='../history.html'>history</a></p>")
    out.append("<table class=grid id=grid><tr><th>guest</th>" + "".join(
        f"<th class=col data-backend='{esc(b)}'>{esc(b)}<br><span class=muted>{esc(f)}</span></th>"
        for b, f in cols) + "</tr>")
    for gid in sorted({c["guest"] for c in cells}):
        info = guests_info.get(gid, {})
        os_family = info.get("os", "unknown")
        out.append(f"<tr class=guest data-os='{esc(os_family)}' data-guest='{esc(gid)}'>"
                   f"<th>{esc(gid)}<br><span class=muted>{esc(os_family)} "
                   f"{esc(info.get('arch', ''))}</span></th>")
        for b, f in cols:
            c = by_id.get(f"{gid}/{b}/{f}")
            out.append(_grid_cell(c, b, f))
        out.append("</tr>")
    out.append("</table>")
    out.append(f"<script>{FILTER_JS}</script>")
    return page(f"run {results['run_id']}", "".join(out))


def _backend_order(cells: Sequence[dict[str, Any]]) -> list[str]:
    """The run's backends in the order of backends.yaml (unknown ones last)."""
    known = list(knowledge.backends())
    have = set(c["backend"] for c in cells)
    return [b for b in known if b in have] + sorted(have - set(known))


def _host_line(h: dict[str, Any]) -> str:
    return (f"{h.get('hostname', '?')}: {h.get('os', '?')} {h.get('kernel', '')} "
            f"{h.get('arch', '')}, {h.get('cpu', '')}, QEMU {h.get('qemu', '?')}, "
            f"guest-harness {h.get('harness', '?')}")


def _select(ident: str, label: str, values: Sequence[str]) -> str:
    opts = "".join(f"<option value='{esc(v)}'>{esc(v)}</option>" for v in values)
    return (f"<label>{esc(label)} <select class=filter id='{esc(ident)}'><option value=''>all"
            f"</option>{opts}</select></label> ")


def _grid_cell(c: dict[str, Any] | None, backend: str, firmware: str) -> str:
    if c is None:
        return (f"<td class='cell v-none' data-verdict=none data-backend='{esc(backend)}'>"
                f"<span class=muted>—</span></td>")
    v = c["verdict"]
    last = _last(c)
    bits = [f"<a href='{esc(cell_page_path(c))}'><b>{esc(v)}</b></a>"]
    if v != "skip":
        bits.append(f"score {c.get('score', 0):.2f}")
    if last:
        bits.append(f"{esc(last[0])} {last[1]:.1f} s")
    if c.get("quirks"):
        bits.append("quirks: " + esc(", ".join(c["quirks"])))
    exp = c.get("expect")
    if exp:
        link = exp.get("link")
        mark = f"expected: {esc(exp.get('reason'))}"
        bits.append(f"<a href='{esc(link)}'>{mark}</a>" if link and _safe_url(link) else mark)
    if v == "skip" and c.get("reason"):
        bits.append(f"<span class=muted title='{esc(c['reason'])}'>{esc(c['reason'][:60])}</span>")
    return (f"<td class='cell v-{esc(v)}' data-verdict='{esc(v)}' data-backend='{esc(backend)}' "
            f"data-firmware='{esc(firmware)}' data-cell='{esc(c['id'])}'>{'<br>'.join(bits)}</td>")


def _safe_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _changes(comp: Comparison) -> str:
    def items(changes: Sequence[Any]) -> str:
        return "".join(f"<li>{esc(c.cell_id)}: {esc(c.before)} → {esc(c.after)} "
                       f"<span class=muted>(vs {esc(c.baseline_run)})</span></li>" for c in changes)
    return (f"<div id=changes><b>Since the previous run:</b> {len(comp.regressions)} "
            f"regressions, {len(comp.fixes)} fixes, {len(comp.new)} new cells"
            f"<ul id=regressions>{items(comp.regressions)}</ul>"
            f"<ul id=fixes>{items(comp.fixes)}</ul></div>")


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
    out.append("<h2>Reproduce</h2><pre>" + esc(
        f"sh {folder / 'repro.sh'}\nharness repro {cell['id']} --from {run_dir}") + "</pre>")
    out.append(_file_block("Console", folder / "console.log", "console", tail=CONSOLE_LINES))
    out.append(_file_block("VMM stderr", folder / "vmm.stderr", "stderr", tail=200))
    out.append(_file_block("VMM commands (setup and teardown)", folder / "vmm.commands.log",
                           "vmm-commands", tail=200))
    out.append("<h2>Images</h2><table><tr><th>image</th><th>sha256</th><th>source</th></tr>"
               + "".join(
        f"<tr><td>{esc(n)}</td><td><code>{esc(i.get('sha256'))}</code></td>"
        f"<td>{esc(i.get('source'))}</td></tr>" for n, i in (cell.get("images") or {}).items())
        + "</table>")
    out.append("<h2>Command</h2><pre>" + esc(" ".join(cell.get("command") or [])) + "</pre>")
    out.append("<h2>Host</h2><pre>" + esc(json.dumps(results.get("host"), indent=1)) + "</pre>")
    return page(cell["id"], "".join(out), charts=charts)


def _file_block(title: str, path: Path, ident: str, tail: int) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    cut = len(lines) - tail
    note = (f"<p class=muted>the first {cut} lines are only in <a href='{esc(path.name)}'>"
            f"{esc(path.name)}</a></p>" if cut > 0 else "")
    return (f"<h2>{esc(title)} <a href='{esc(path.name)}' class=muted>(file)</a></h2>{note}"
            f"<pre id='{esc(ident)}'>" + clean("\n".join(lines[-tail:])) + "</pre>")


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
        out.append(f"<p>Run {esc(comparison.run_id)}:</p>" + _changes(comparison))
        out.append(test_regressions(comparison.test_regressions))
    flaky = h.flaky(last)
    out.append("<h2>Flaky cells</h2><p class=muted>verdict changed while the images and the "
               "harness stayed the same</p><ul id=flaky>" + "".join(
                   f"<li>{esc(c)}: {esc(' → '.join(v))}</li>" for c, v in sorted(flaky.items()))
               + "</ul>")
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
