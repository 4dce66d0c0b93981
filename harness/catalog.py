"""What `harness list` shows: the guest catalog and the cells of the matrix.

One row per guest (what it is, where its images come from, how they are
verified, whether its patterns were checked against a real console, and
on which backends of this host it would run), built from one row per cell
(runs here, or the reason it would be skipped). Reading only: probes are
the static ones plus cached canary results, so listing never boots a VM.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .backends import probe as probes
from .backends import registry
from .canary import cached
from .executor import preflight
from .images.cache import Cache
from .images.store import unobtained
from .model import LEVELS, Cell, Guest, ImageSpec


@dataclass
class CellRow:
    id: str
    backend: str
    runs: bool
    note: str  # "runs", or why it would be skipped
    quirks: list[str] = field(default_factory=list)
    expect: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "runs": self.runs, "note": self.note, "quirks": self.quirks,
                "expect": self.expect}


def cell_rows(cells: Sequence[Cell], host: probes.HostFacts, cache: Cache,
              ttl: float) -> list[CellRow]:
    found = {b: registry.static_probe(b, host) for b in dict.fromkeys(c.backend for c in cells)}
    rows = []
    for cell in cells:
        p = found[cell.backend]
        note = "runs"
        why = preflight(cell, p, host)
        if why is None and p.hardware:
            hit = cached(cache, cell.backend, host, ttl)
            if hit is None:
                note = "runs after a canary on this backend"
            elif hit.ok:
                note = "runs (canary passed)"
            else:
                why = f"{cell.backend} unusable: {hit.describe()}"
        rows.append(CellRow(cell.id, cell.backend, why is None, why or note, cell.quirk_names,
                            cell.expect.reason if cell.expect else None))
    return rows


def describe_source(spec: ImageSpec) -> tuple[str, str] | None:
    """(where an image comes from, how its bits are verified); None for recipe builds,
    which are made from the guest's other images and the harness's own files."""
    p = spec.params
    if spec.kind == "url":
        where = urlsplit(p["url"]).netloc
        if spec.sha256 or p.get("sha512"):
            return where, "pinned digest"
        return where, "sums file" if p.get("checksums") else "UNPINNED"
    if spec.kind == "deb":
        return "Debian archive", "apt (signed)"
    if spec.kind in ("build", "from"):
        return None
    if p.get("obtain"):
        return "you (see notes)", "pinned digest" if spec.sha256 or p.get("sha512") else "-"
    return "local file", "pinned digest" if spec.sha256 or p.get("sha512") else "unverified"


@dataclass
class GuestRow:
    id: str
    os: str
    version: str
    arch: str
    console: str
    source: str
    verify: str
    verified: bool
    verified_partly: list[str]
    level: str
    evidence: list[dict[str, str]]
    tags: list[str]
    runs_on: list[str]  # backends with at least one cell that would run here
    skipped: str | None  # when it runs nowhere: the first reason
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def guest_rows(guests: Sequence[Guest], cells: Sequence[CellRow]) -> list[GuestRow]:
    rows = []
    for g in guests:
        mine = [c for c in cells if c.id.startswith(g.id + "/")]
        runs_on = list(dict.fromkeys(c.backend for c in mine if c.runs))
        sources = [d for s in g.images.values() if (d := describe_source(s))]
        # a guest made only by recipes (a C program through a cross compiler) downloads nothing
        where = ", ".join(dict.fromkeys(w for w, _ in sources)) or "built here"
        verify = ", ".join(dict.fromkeys(v for _, v in sources)) or "its inputs' digests"
        missing = unobtained(g)
        skipped = None if runs_on else (
            "until you supply its image: see its notes" if missing
            else next((c.note for c in mine), "no cell in the matrix"))
        rows.append(GuestRow(g.id, g.os, g.version or "-", g.arch, g.console, where, verify,
                             g.verified, list(g.verified_partly), g.level,
                             [{"url": e.url, "confirms": e.confirms} for e in g.evidence],
                             list(g.tags), runs_on,
                             skipped, g.name))
    return rows


def text_table(rows: Sequence[GuestRow]) -> str:
    head = ("guest", "os", "version", "arch", "console", "images from", "verified by",
            "checked", "runs here on")
    body = [(r.id, r.os, r.version, r.arch, r.console, r.source, r.verify,
             _patterns(r, "UNCHECKED"),
             ", ".join(r.runs_on) if r.runs_on else f"nothing ({_short(r.skipped)})")
            for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head) - 1)]
    lines = []
    for row in (head, *body):
        cols = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cols, row[-1]]).rstrip())
    return "\n".join(lines)


def markdown_table(rows: Sequence[GuestRow]) -> str:
    out = ["| guest | OS | version | arch | console | images from | verified by | checked "
           "| runs here on |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = ", ".join(r.runs_on) if r.runs_on else f"— ({_short(r.skipped, 80)})"
        out.append(f"| `{r.id}` | {r.os} | {r.version} | {r.arch} | {r.console} | {r.source} "
                   f"| {r.verify} | {_patterns(r, '**unchecked**')} | {runs} |")
    return "\n".join(out)


def _patterns(r: GuestRow, unverified: str) -> str:
    """The guest's level (model.LEVELS) as a reader wants it: how much to trust it."""
    text = unverified if r.level == "unchecked" else r.level.replace("-", " ")
    if r.verified_partly:
        text += f"; transcript: {', '.join(r.verified_partly)}"
    if r.evidence and r.level != "boots-here":
        n = len(r.evidence)
        text += f" ({n} source{'' if n == 1 else 's'})"
    return text


def _short(text: str | None, limit: int = 60) -> str:
    text = (text or "").split(";")[0]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def cells_text(rows: Sequence[CellRow]) -> str:
    """`harness list --cells`: a line per cell, runs or why not, then the count."""
    width = max((len(r.id) for r in rows), default=4)
    lines = []
    for r in rows:
        extra = (f" [quirks: {', '.join(r.quirks)}]" if r.quirks else "") + (
            f" [expected to fail: {r.expect}]" if r.expect else "")
        lines.append(f"{r.id:<{width}}  {'run ' if r.runs else 'skip'}  {r.note}{extra}")
    lines.append(f"\n{len(rows)} cells, {sum(r.runs for r in rows)} would run")
    return "\n".join(lines)


def summary_line(table: Sequence[GuestRow], rows: Sequence[CellRow]) -> str:
    levels = Counter(g.level for g in table)
    checked = ", ".join(f"{levels[x]} {x}" for x in LEVELS if levels[x])
    return (f"{len(table)} guests, {sum(bool(g.runs_on) for g in table)} run here; "
            f"{len(rows)} cells, {sum(r.runs for r in rows)} would run; checked: {checked} "
            f"(`harness list --cells` for every cell)")
