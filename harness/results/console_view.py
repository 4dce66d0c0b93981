"""A cell page's console view: whole guest lines, the harness's notes apart.

console.log holds the guest's lines ("[  t] text") and, each on its own line
after the line it concerns, the harness's notes ("### harness: milestone
'kernel' matched 'Linux version 6'"). The view numbers the lines (anchors
#L1…), sets the notes apart, marks the matched text in the guest line the
note follows, and lists the milestones with a link to their line. All text
is escaped: guest output is hostile input.
"""

from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOTE = re.compile(r"^\[\s*[\d.]+\] ### harness: ")
_MATCHED = re.compile(r"### harness: (?P<kind>milestone|failure) (?P<name>'[^']*'|\"[^\"]*\") "
                      r"matched(?: (?P<text>.+))?$")
LOOK_BACK = 5  # guest lines searched above a note for its matched text

CSS = """
#console .note{color:#8250df;background:#f6f0ff;display:block}
#console mark{background:#fff08a;outline:1px solid #bf8700}
#console .ln:target{background:#ddf4ff}
"""


@dataclass
class Match:
    kind: str
    name: str
    text: str
    line: int | None  # the guest line (1-based, of the shown lines) it concerns


def _literal(s: str | None) -> str:
    if not s:
        return ""
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return ""
    return value if isinstance(value, str) else ""


def parse(lines: list[str]) -> tuple[list[Match], dict[int, tuple[int, int]]]:
    """The matches the notes name, and per guest line the span to mark in it."""
    matches: list[Match] = []
    marks: dict[int, tuple[int, int]] = {}
    for i, line in enumerate(lines):
        m = _MATCHED.search(line) if _NOTE.match(line) else None
        if not m:
            continue
        text = _literal(m.group("text"))
        first = text.split("\n")[0] if text else ""
        where = None
        for j in range(i - 1, max(-1, i - 1 - LOOK_BACK * 2), -1):
            if _NOTE.match(lines[j]):
                continue
            body = _ANSI.sub("", lines[j])
            at = body.find(first) if first else -1
            if at >= 0 or where is None:
                where = j
            if at >= 0:
                marks.setdefault(j, (at, at + len(first)))
                break
        matches.append(Match(m.group("kind"), _literal(m.group("name")), text,
                             None if where is None else where + 1))
    return matches, marks


def render_lines(lines: list[str]) -> tuple[str, list[Match]]:
    matches, marks = parse(lines)
    out = []
    for i, line in enumerate(lines):
        body = _ANSI.sub("", line)
        if _NOTE.match(line):
            out.append(f"<span class=note id=L{i + 1}>{html.escape(body, quote=False)}</span>")
            continue
        if i in marks:
            a, b = marks[i]
            text = (html.escape(body[:a], quote=False) + "<mark>"
                    + html.escape(body[a:b], quote=False) + "</mark>"
                    + html.escape(body[b:], quote=False))
        else:
            text = html.escape(body, quote=False)
        out.append(f"<span class=ln id=L{i + 1}>{text}</span>\n")
    return "".join(out), matches


def relative(text: str, run_id: str) -> str:
    """`text` with every absolute path into the run folder made relative to it: a
    published run folder names no path of the machine that ran it."""
    return re.sub(r"(?:/[^\s'\"/]+)*/" + re.escape(run_id) + "/", "", text)


def block(path: Path, tail: int, href: str | None = None) -> str:
    """The console section of a cell page (empty when the file cannot be read); `href`:
    the file's link from the page (default: beside it)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    cut = len(lines) - tail
    lines = lines[-tail:]
    body, matches = render_lines(lines)
    link = html.escape(href or path.name)
    note = (f"<p class=muted>the first {cut} lines are only in <a href='{link}'>"
            f"{html.escape(path.name)}</a></p>" if cut > 0 else "")
    index = ""
    if matches:
        index = "<ol id=matches>" + "".join(
            f"<li class='{m.kind}'>{html.escape(m.kind)} <b>{html.escape(m.name)}</b>"
            + (f": <a href='#L{m.line}'>line {m.line}</a>" if m.line else "")
            + (f" <code>{html.escape(m.text[:120])}</code>" if m.text else "") + "</li>"
            for m in matches) + "</ol>"
    return (f"<style>{CSS}</style><h2>Console <a href='{link}' class=muted>"
            f"(file)</a></h2>{note}{index}<pre id=console>{body}</pre>")
