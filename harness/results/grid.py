"""The run page's guests x backends grid, made to read at a glance.

On a default run most backends are not on the host: their columns would
repeat one long skip reason down the page. So a backend that ran no cell is
named once in a line above the grid (its cells stay in the page, hidden,
shown again when the backend filter picks it), a column skipped throughout
for one reason says it once in its header, and each cell that ran is a
milestone progress bar coloured by verdict, a few words (phrases.yaml), its
quirks as tags and the full reason on hover. Rows are grouped by OS family;
a small inline script filters and sorts (nothing is fetched).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .. import knowledge
from . import table

CSS = """
#grid td.cell{font-size:12px;min-width:0;max-width:12em;padding:2px 4px}
#grid th.col{font-size:12px;max-width:12em}#grid th.guest-name{font-size:12px;max-width:16em}
.bar{display:block;height:5px;background:#fff;border:1px solid #bbb;margin:1px 0 2px}
.bar i{display:block;height:100%}.b-pass i,.b-xpass i{background:#1a7f37}
.b-xfail i{background:#6e6ea8}.b-crash i{background:#cf222e}.b-hang i{background:#bc4c00}
.b-timeout i{background:#bf8700}.b-fail i{background:#a40e26}.b-error i{background:#8250df}
.tag{display:inline-block;font-size:11px;padding:0 4px;margin:1px;border-radius:3px;
background:#ddf4ff;border:1px solid #9cd1ff}.regressed{outline:2px solid #cf222e}
tr.family th{background:#e8e8e8;font-size:13px}.colwhy{font-weight:normal;color:#666;
font-size:11px}#grid td.v-skip{color:#999}#collapsed{background:#f6f6f6;padding:4px 8px}
table.porters td,table.porters th{font-size:12px}table.porters td{max-width:18em}
#grid td.v-skip a{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;
max-width:11em;color:#888}
"""

JS = """
function applyFilters(){
  const os=document.getElementById('f-os').value, be=document.getElementById('f-backend').value,
        v=document.getElementById('f-verdict').value, ar=document.getElementById('f-arch').value,
        reg=document.getElementById('f-regression').checked;
  document.querySelectorAll('#grid th.col,#grid td.cell').forEach(function(e){
    e.classList.toggle('hidden', be!=='' ? e.dataset.backend!==be : e.dataset.gone==='1');});
  const families={};
  document.querySelectorAll('tr.guest').forEach(function(r){
    let any=false;
    r.querySelectorAll('td.cell').forEach(function(c){
      const ok=(v===''||c.dataset.verdict===v)&&(be===''||c.dataset.backend===be)&&
               (!reg||c.dataset.regression==='1');
      c.classList.toggle('dim', !ok); if(ok&&c.dataset.verdict!=='none') any=true;});
    const show=!((os!=='' && r.dataset.os!==os) || (ar!=='' && r.dataset.arch!==ar) || !any);
    r.classList.toggle('hidden', !show);
    if(show) families[r.dataset.os]=true;});
  document.querySelectorAll('tr.family').forEach(function(r){
    r.classList.toggle('hidden', !families[r.dataset.os]);});
}
function sortRows(){
  const key=document.getElementById('f-sort').value, body=document.querySelector('#grid tbody');
  document.querySelectorAll('tr.family').forEach(function(f){
    const rows=[]; let n=f.nextElementSibling;
    while(n&&n.classList.contains('guest')){rows.push(n); n=n.nextElementSibling;}
    rows.sort(function(a,b){
      if(key==='name') return a.dataset.name.localeCompare(b.dataset.name);
      return Number(b.dataset[key])-Number(a.dataset[key])||
             a.dataset.name.localeCompare(b.dataset.name);});
    let at=f; rows.forEach(function(r){body.insertBefore(r, at.nextSibling); at=r;});});
}
document.querySelectorAll('.filter').forEach(function(s){
  s.addEventListener('change', applyFilters);});
document.getElementById('f-sort').addEventListener('change', sortRows);
applyFilters();
"""

SEVERITY = {"crash": 6, "error": 5, "fail": 5, "hang": 4, "timeout": 4, "xpass": 2,
            "xfail": 1, "pass": 0, "skip": 0}


def _h(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def columns(cells: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    order = list(knowledge.backends())
    return sorted({(c["backend"], c["firmware"]) for c in cells},
                  key=lambda bf: (order.index(bf[0]) if bf[0] in order else len(order),
                                  bf[0], bf[1]))


def one_reason(cells: Sequence[dict[str, Any]]) -> str | None:
    """The reason every cell of a column was skipped for, if they all share one."""
    reasons = Counter(c.get("reason") or "" for c in cells)
    if cells and all(c["verdict"] == "skip" for c in cells) and len(reasons) == 1:
        return next(iter(reasons)) or None
    return None


def collapsed_line(gone: dict[str, str]) -> str:
    if not gone:
        return ""
    return ("<p id=collapsed><b>Not on this host:</b> " + ", ".join(
        f"<span class=gone-backend data-backend='{_h(b)}'>{_h(b)}</span> "
        f"<span class=muted>({_h(why)})</span>" for b, why in gone.items())
        + " <span class=muted>— pick one in the backend filter to see its cells</span></p>")


def grid(results: dict[str, Any], cell_href: Any, regressions: set[str]) -> str:
    """The filters, the collapsed-backends line and the grid (with its script)."""
    cells = results["cells"]
    guests = results.get("guests") or {}
    gone = table.unavailable(cells, (results.get("host") or {}).get("os"))
    cols = columns(cells)
    by_col: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cells:
        by_col.setdefault((c["backend"], c["firmware"]), []).append(c)
    col_why = {col: one_reason(by_col[col]) for col in cols if col[0] not in gone}
    said = table.said_of(cells)
    by_id = {c["id"]: c for c in cells}
    families: dict[str, list[str]] = {}
    for gid in {c["guest"] for c in cells}:
        families.setdefault(guests.get(gid, {}).get("os", "unknown"), []).append(gid)
    arches = sorted({guests.get(c["guest"], {}).get("arch", "") for c in cells} - {""})
    totals = Counter(c["verdict"] for c in cells)
    out = [collapsed_line(gone), "<p>"
           + _select("f-os", "OS family", sorted(families))
           + _select("f-arch", "architecture", arches)
           + _select("f-backend", "backend", list(dict.fromkeys(b for b, _ in cols)))
           + _select("f-verdict", "verdict", [v for v in SEVERITY if totals[v]])
           + "<label><input type=checkbox class=filter id=f-regression> regressions only"
           "</label> <label>sort <select id=f-sort><option value=name>by name</option>"
           "<option value=worst>worst first</option><option value=slowest>slowest first"
           "</option></select></label> <a href='../history.html'>history</a></p>",
           "<table class=grid id=grid><thead><tr><th>guest</th>"]
    for col in cols:
        b, f = col
        why = col_why.get(col)
        note = (f"<div class=colwhy title='{_h(why)}'>all skipped: {_h(table.cut(why, 40))}"
                "</div>" if why else "")
        out.append(f"<th class='col{' hidden' if b in gone else ''}' data-backend='{_h(b)}'"
                   f"{' data-gone=1' if b in gone else ''}>{_h(b)}<br>"
                   f"<span class=muted>{_h(f)}</span>{note}</th>")
    out.append("</tr></thead><tbody>")
    for family in sorted(families):
        out.append(f"<tr class=family data-os='{_h(family)}'><th colspan={len(cols) + 1}>"
                   f"{_h(family)} <span class=muted>({len(families[family])})</span></th></tr>")
        for gid in sorted(families[family]):
            mine = [by_id.get(f"{gid}/{b}/{f}") for b, f in cols]
            ran = [c for c in mine if c and c["verdict"] != "skip"]
            worst = max((SEVERITY.get(c["verdict"], 0) for c in ran), default=-1)
            slowest = max((t for c in ran if (t := c.get("duration_s"))), default=0)
            info = guests.get(gid, {})
            out.append(f"<tr class=guest data-os='{_h(family)}' data-guest='{_h(gid)}' "
                       f"data-arch='{_h(info.get('arch', ''))}' data-name='{_h(gid)}' "
                       f"data-worst='{worst}' data-slowest='{slowest}'>"
                       f"<th class=guest-name title='{_h(info.get('name') or gid)}'>{_h(gid)}"
                       f"<br><span class=muted>{_h(info.get('arch', ''))}</span></th>")
            for (b, f), c in zip(cols, mine, strict=True):
                out.append(_cell(c, b, f, said.get(c["id"]) if c else None, cell_href,
                                 b in gone, col_why.get((b, f)) is not None,
                                 bool(c) and c["id"] in regressions))
            out.append("</tr>")
    out.append(f"</tbody></table><style>{CSS}</style><script>{JS}</script>")
    return "".join(out)


def _select(ident: str, label: str, values: Sequence[str]) -> str:
    opts = "".join(f"<option value='{_h(v)}'>{_h(v)}</option>" for v in values)
    return (f"<label>{_h(label)} <select class=filter id='{_h(ident)}'><option value=''>all"
            f"</option>{opts}</select></label> ")


def _cell(c: dict[str, Any] | None, backend: str, firmware: str, s: table.Said | None,
          href: Any, gone: bool, header_says: bool, regressed: bool) -> str:
    hidden = " hidden" if gone else ""
    gone_attr = " data-gone='1'" if gone else ""
    if c is None or s is None:
        return (f"<td class='cell v-none{hidden}' data-verdict=none{gone_attr} "
                f"data-backend='{_h(backend)}'><span class=muted>—</span></td>")
    v = c["verdict"]
    ms = c.get("milestones") or []
    reached = sum(1 for m in ms if m.get("reached"))
    title = " — ".join(x for x in (f"{c['id']}: {v}", s.plain(), c.get("reason") or "",
                                   (c.get("failure") or {}).get("text") or "") if x)
    if v == "skip":
        words = "skip" if header_says else _h(table.cut(c.get("reason") or "skip", 40))
        body = f"<a href='{_h(href(c))}'>{words}</a>"
    else:
        pct = round(100 * reached / len(ms)) if ms else 0
        tags = "".join(f"<span class=tag>{_h(q)}</span>" for q in s.quirks)
        body = (f"<span class='bar b-{_h(v)}' title='{reached}/{len(ms)} milestones'>"
                f"<i style='width:{pct}%'></i></span>"
                f"<a href='{_h(href(c))}'>{_h(s.short)}</a>{tags}")
    return (f"<td class='cell v-{_h(v)}{hidden}{' regressed' if regressed else ''}' "
            f"data-verdict='{_h(v)}' data-backend='{_h(backend)}' data-firmware='{_h(firmware)}'"
            f" data-cell='{_h(c['id'])}' data-regression='{int(regressed)}'{gone_attr} "
            f"title='{_h(title)}'>{body}</td>")
