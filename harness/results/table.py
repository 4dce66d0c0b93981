"""The porters' table: per guest, how far it got on each backend, in words.

The table hypervisor porters published by hand ("NetBSD boots to a shell;
Linux needs `noapic`; FreeBSD hangs after the kernel"), from a run's
results.json: one row per guest, one column per backend that ran anything,
each cell's words from data/phrases.yaml, the quirks it needed, its time and
its speed against the guest's fastest backend. Backends that ran nothing are
one line under the table, and what changed since the previous run a short
list. Rendered as Markdown (GitHub, GitLab, wikis), fixed-width text (mail)
and an HTML fragment (the top of index.html, `harness report --format html`).
"""

from __future__ import annotations

import html
import platform
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import knowledge
from .history import Comparison

FORMATS = ("markdown", "html", "text")
REASON_CHARS = 48  # a reason inside the table's words is cut to this many characters
TEXT_COLUMN = 26  # the text table's column width (mail clients wrap at ~78)
SAME_SPEED = 1.05  # a ratio below this is not worth a word


@dataclass(frozen=True)
class Said:
    """One cell in words; each renderer puts the parts together its own way."""

    verdict: str
    words: str  # "boots to shell", "hangs after kernel"
    short: str  # the grid's few words: "shell", "hang after kernel"
    quirks: tuple[str, ...] = ()
    time: str = ""  # "31 s" (time to the last milestone, when it passed)
    ratio: str = ""  # "1.3x" against the guest's fastest backend
    mark: str = ""  # "(xfail: hangs in IOAPIC setup)"
    link: str | None = None  # the expectation's link
    reason: str = ""  # the full reason (hover text, cell page)
    ran: bool = True

    def plain(self) -> str:
        """Words, quirks, time and mark as plain text."""
        out = self.words + (" with " + ", ".join(self.quirks) if self.quirks else "")
        timing = ", ".join(x for x in (self.time, self.ratio) if x)
        return out + (f" ({timing})" if timing else "") + (f" {self.mark}" if self.mark else "")


@dataclass
class Table:
    run_id: str
    host: str
    columns: list[tuple[str, str]]  # (backend, firmware) that ran at least one cell
    labels: dict[tuple[str, str], str]  # column -> its header
    rows: list[tuple[str, str, dict[tuple[str, str], Said]]]  # (guest id, label, cells)
    not_run: list[tuple[str, str]] = field(default_factory=list)  # (backend or column, why)
    changes: list[str] | None = None  # None: no history to compare with


def seconds(t: float) -> str:
    return f"{t:.1f} s" if t < 10 else f"{t:.0f} s"


def cut(text: str | None, n: int = REASON_CHARS) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= n else line[:n - 1].rstrip() + "…"


def _last(cell: dict[str, Any]) -> tuple[str, float | None] | None:
    reached = [m for m in cell.get("milestones") or [] if m.get("reached")]
    return (reached[-1]["name"], reached[-1].get("t")) if reached else None


def describe(cell: dict[str, Any], fastest: float | None = None) -> Said:
    """`cell` in words; `fastest` is the guest's best time to the same milestone."""
    phrases = knowledge.phrases()
    verdict = cell["verdict"]
    base = (cell.get("underlying") or ("pass" if verdict == "xpass" else "fail")
            if verdict in ("xfail", "xpass") else verdict)
    last = _last(cell)
    milestones = cell.get("milestones") or []
    values = {"last": last[0] if last else "",
              "first": milestones[0]["name"] if milestones else "the first milestone",
              "failure": (cell.get("failure") or {}).get("name") or "unknown",
              "reason": cut(cell.get("reason"))}
    entry = phrases.get(base, phrases["fail"])["reached" if last else "none"]
    words, short = (entry["long"].format(**values), entry["short"].format(**values))
    time = ratio = ""
    if base == "pass" and last and last[1] is not None:
        time = seconds(last[1])
        short += f" {time}"
        if fastest and last[1] / fastest >= SAME_SPEED:
            ratio = f"{last[1] / fastest:.1f}x"
    mark, link = "", None
    exp = cell.get("expect")
    if verdict in ("xfail", "xpass"):
        mark = phrases[verdict]["long"].format(reason=cut((exp or {}).get("reason"), 40))
        short += f" ({phrases[verdict]['short']})"
        link = (exp or {}).get("link")
    return Said(verdict, words, short, tuple(cell.get("quirks") or ()), time, ratio, mark,
                link if link and link.startswith(("https://", "http://")) else None,
                cell.get("reason") or "", verdict != "skip")


def fastest_times(cells: Sequence[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(guest, last milestone) -> the best time any passing cell took to reach it."""
    best: dict[tuple[str, str], float] = {}
    for c in cells:
        last = _last(c)
        if c["verdict"] in ("pass", "xpass") and last and last[1]:
            key = (c["guest"], last[0])
            best[key] = min(best.get(key, last[1]), last[1])
    return best


def said_of(cells: Sequence[dict[str, Any]]) -> dict[str, Said]:
    """Cell id -> its words, speed ratios against the same guest's fastest cell."""
    best = fastest_times(cells)
    out = {}
    for c in cells:
        last = _last(c)
        out[c["id"]] = describe(c, best.get((c["guest"], last[0])) if last else None)
    return out


def unavailable(cells: Sequence[dict[str, Any]], host_os: str | None = None) -> dict[str, str]:
    """Backends that ran no cell of the run (on any of its hosts) -> why, in a few words:
    "runs on NetBSD" when backends.yaml says the host's OS cannot have it, else the
    commonest skip reason, cut short."""
    info = knowledge.backends()
    reasons: dict[str, Counter[str]] = {}
    ran = {c["backend"] for c in cells if c["verdict"] != "skip"}
    for c in cells:
        if c["backend"] not in ran:
            reasons.setdefault(c["backend"], Counter())[c.get("reason") or "not run"] += 1
    out = {}
    for b, counter in reasons.items():
        b_info = info.get(b)
        if b_info and b_info.host_os and (host_os or platform.system()) not in b_info.host_os:
            out[b] = "runs on " + ", ".join(b_info.host_os)
        else:
            why = counter.most_common(1)[0][0]
            out[b] = cut(why.removeprefix(f"{b} ").removeprefix("missing: "), 60)
    return out


def guest_label(gid: str, info: dict[str, Any]) -> str:
    name = info.get("name") or gid
    arch = info.get("arch") or ""
    return name if not arch or arch in name else f"{name} ({arch})"


def build(results: dict[str, Any], comparison: Comparison | None = None) -> Table:
    cells = results["cells"]
    guests = results.get("guests") or {}
    host = results.get("host") or {}
    order = list(knowledge.backends())
    gone = unavailable(cells, host.get("os"))
    kept = [c for c in cells if c["backend"] not in gone]
    ran_cols = {(c["backend"], c["firmware"]) for c in kept if c["verdict"] != "skip"}
    columns = sorted(ran_cols, key=lambda bf: (order.index(bf[0]) if bf[0] in order
                                               else len(order), bf[0], bf[1]))
    firmwares: dict[str, set[str]] = {}
    for b, f in columns:
        firmwares.setdefault(b, set()).add(f)
    labels = {(b, f): b if len(firmwares[b]) == 1 else f"{b} {f}" for b, f in columns}
    not_run = [(b, why) for b, why in sorted(gone.items(), key=lambda kv: (
        order.index(kv[0]) if kv[0] in order else len(order), kv[0]))]
    for col in sorted({(c["backend"], c["firmware"]) for c in kept} - ran_cols):
        whys = Counter(c.get("reason") or "not run" for c in kept
                       if (c["backend"], c["firmware"]) == col)
        not_run.append((f"{col[0]} {col[1]}", cut(whys.most_common(1)[0][0], 60)))
    said = said_of(kept)
    rows = []
    for gid in sorted({c["guest"] for c in kept}, key=lambda g: guest_label(g, guests.get(g, {}))):
        mine = {(c["backend"], c["firmware"]): said[c["id"]] for c in kept if c["guest"] == gid}
        if any(s.ran for s in mine.values()) or not columns:
            rows.append((gid, guest_label(gid, guests.get(gid, {})), mine))
    changes = None if comparison is None else change_lines(comparison)
    host_line = " ".join(x for x in (host.get("hostname"), host.get("os"), host.get("arch"),
                                     f"QEMU {host['qemu']}" if host.get("qemu") else "") if x)
    return Table(results["run_id"], host_line, columns, labels, rows, not_run, changes)


def change_lines(comp: Comparison) -> list[str]:
    out = [f"regression: {c.cell_id}: {c.before} → {c.after}" for c in comp.regressions]
    out += [f"fixed: {c.cell_id}: {c.before} → {c.after}" for c in comp.fixes]
    if comp.new:
        more = f" and {len(comp.new) - 5} more" if len(comp.new) > 5 else ""
        out.append(f"new: {', '.join(comp.new[:5])}{more}")
    return out or ["nothing changed"]


# --- renderers -------------------------------------------------------------------------

def _md(text: str) -> str:
    """Guest-given text safe in a Markdown table cell: no column break, no HTML, no markup."""
    for ch in "\\`*_[]<>|":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _md_cell(s: Said | None) -> str:
    if s is None:
        return ""
    out = _md(s.words) + (" with " + ", ".join(f"`{q.replace('`', '')}`" for q in s.quirks)
                          if s.quirks else "")
    timing = ", ".join(x for x in (s.time, s.ratio) if x)
    out += f" ({timing})" if timing else ""
    if s.mark:
        out += " " + (f"[{_md(s.mark[1:-1])}]({s.link.replace(')', '%29')})" if s.link
                      else _md(s.mark))
    return out


def markdown(t: Table) -> str:
    out = [f"**Run {_md(t.run_id)}**" + (f" on {_md(t.host)}" if t.host else ""), ""]
    if t.columns:
        out.append("| guest | " + " | ".join(_md(t.labels[c]) for c in t.columns) + " |")
        out.append("|---" * (len(t.columns) + 1) + "|")
        for _, label, cells in t.rows:
            out.append(f"| {_md(label)} | "
                       + " | ".join(_md_cell(cells.get(c)) for c in t.columns) + " |")
    else:
        out.append("No cell ran.")
    if t.not_run:
        out += ["", "Not run on this host: " + "; ".join(f"{_md(b)} ({_md(w)})"
                                                        for b, w in t.not_run) + "."]
    if t.changes is not None:
        out += ["", "Since the previous run:", ""] + [f"- {_md(c)}" for c in t.changes]
    return "\n".join(out) + "\n"


def text(t: Table, width: int = TEXT_COLUMN) -> str:
    """Fixed width for mail: each cell wrapped to `width` columns, rows ruled apart."""
    out = [f"Run {t.run_id}" + (f" on {t.host}" if t.host else ""), ""]
    if t.columns:
        first = max([len("guest")] + [min(len(r[1]), 30) for r in t.rows])
        widths = [first] + [width] * len(t.columns)
        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

        def row(texts: Sequence[str]) -> list[str]:
            wrapped = [textwrap.wrap(x, w) or [""] for x, w in zip(texts, widths, strict=True)]
            return ["| " + " | ".join((parts[i] if i < len(parts) else "").ljust(w)
                                      for parts, w in zip(wrapped, widths, strict=True)) + " |"
                    for i in range(max(len(p) for p in wrapped))]

        out += [rule, *row(["guest", *(t.labels[c] for c in t.columns)]), rule]
        for _, label, cells in t.rows:
            out += row([label] + [cells[c].plain() if c in cells else "" for c in t.columns])
            out.append(rule)
    else:
        out.append("No cell ran.")
    if t.not_run:
        out += ["", *textwrap.wrap("Not run on this host: " + "; ".join(
            f"{b} ({w})" for b, w in t.not_run) + ".", 78)]
    if t.changes is not None:
        out += ["", "Since the previous run:"] + [f"  - {c}" for c in t.changes]
    return "\n".join(out) + "\n"


def _h(value: Any) -> str:
    return html.escape(str(value), quote=True)


def html_cell(s: Said | None, href: str | None = None) -> str:
    if s is None:
        return "<td></td>"
    words = _h(s.words)
    if href:
        words = f"<a href='{_h(href)}'>{words}</a>"
    quirks = "".join(f" <span class=tag>{_h(q)}</span>" for q in s.quirks)
    timing = ", ".join(x for x in (s.time, s.ratio) if x)
    mark = ""
    if s.mark:
        mark = " " + (f"<a href='{_h(s.link)}'>{_h(s.mark)}</a>" if s.link else _h(s.mark))
    return (f"<td class='v-{_h(s.verdict)}' title='{_h(s.reason)}'>{words}{quirks}"
            f"{' (' + _h(timing) + ')' if timing else ''}{mark}</td>")


def html_fragment(t: Table, hrefs: dict[tuple[str, tuple[str, str]], str] | None = None) -> str:
    """The table as an HTML fragment (no page around it); `hrefs` links cells to pages."""
    hrefs = hrefs or {}
    out = ["<div id=porters>"]
    if t.columns:
        out.append("<table class=porters><tr><th>guest</th>" + "".join(
            f"<th>{_h(t.labels[c])}</th>" for c in t.columns) + "</tr>")
        for gid, label, cells in t.rows:
            out.append(f"<tr><th>{_h(label)}</th>" + "".join(
                html_cell(cells.get(c), hrefs.get((gid, c))) for c in t.columns) + "</tr>")
        out.append("</table>")
    else:
        out.append("<p>No cell ran.</p>")
    if t.not_run:
        out.append("<p id=not-run class=muted>Not run on this host: " + "; ".join(
            f"<b>{_h(b)}</b> ({_h(w)})" for b, w in t.not_run) + ".</p>")
    if t.changes is not None:
        out.append("<p>Since the previous run:</p><ul id=changed>"
                   + "".join(f"<li>{_h(c)}</li>" for c in t.changes) + "</ul>")
    return "".join(out) + "</div>"


def render(t: Table, fmt: str) -> str:
    if fmt == "markdown":
        return markdown(t)
    if fmt == "text":
        return text(t)
    return html_fragment(t) + "\n"
