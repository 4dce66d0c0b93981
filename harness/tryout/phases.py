"""How far a boot got, from what it printed: console and screen text in, sightings out.

The knowledge is data (data/phases.yaml: firmware, boot-loader, kernel and userland
banners, menus, questions and prompts per family, and data/signatures.yaml: the built-in
failure signatures); this module only loads and checks that table and runs it over text.
The classifier is pure (no clock, no I/O): the caller says where text came from and when,
so a recorded transcript classifies exactly as a live boot does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .. import knowledge, validate

PHASES = ("firmware", "bootloader", "kernel", "userland", "desktop")  # how far, in order
KINDS = ("banner", "menu", "question", "prompt", "failure", "error", "shell", "running")
FAILING = ("failure", "error")  # the kinds that carry a verdict
SIGN_SOURCES = ("serial", "screen", "any")
SOURCES = ("serial", "screen")
VERDICTS = ("crash", "fail", "error")  # the verdicts text can prove (hang/timeout are time)
TEXT_MAX = 200  # characters of evidence kept per sighting
TAIL_MAX = 4096  # an unfinished line longer than this (a full-screen TUI) is cut ...
TAIL_KEEP = 1024  # ... to its last TAIL_KEEP characters once checked
SPAN = 256  # the longest text one sign matches: an unfinished line is searched again from
# this far before the new text only (a full-screen TUI never ends its line)
_ROW_KEYS = ("name", "family", "phase", "kind", "pattern", "source", "label", "verdict",
             "answer", "source_of_truth")
_ROW_REQUIRED = ("name", "family", "phase", "kind", "pattern", "label", "source_of_truth")
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Sign:
    """One row of data/phases.yaml (or a built-in failure signature)."""

    name: str
    family: str
    phase: str
    kind: str
    pattern: re.Pattern[str]
    source: str = "any"
    label: str = ""
    verdict: str | None = None  # failure and error kinds: the verdict word it means
    answer: str | None = None  # menu/question kinds: the default answer


@dataclass(frozen=True)
class Seen:
    """A sign's first sighting: the line (or screen text) that showed it, and when."""

    sign: Sign
    text: str
    source: str
    at: float


@dataclass(frozen=True)
class Table:
    signs: tuple[Sign, ...]
    prompts: tuple[re.Pattern[str], ...]


# --- the table ------------------------------------------------------------------------

def _path() -> Path:
    return Path(str(resources.files("harness").joinpath("data", "phases.yaml")))


def load(path: Path | None = None) -> Table:
    """data/phases.yaml (or `path`), every row checked: a bad row is a ConfigError naming
    file:line and key, never a traceback."""
    c, top = validate._open(path or _path())
    top.keys(("signs", "prompts", "signatures"), ("signs",))
    signs: list[Sign] = []
    names: dict[str, int] = {}
    for key, line, value in c.items(top, "signs"):
        m = c.mapping(value, key, line)
        if m is None:
            continue
        sign = _row(m)
        if sign is None:
            continue
        if sign.name in names:
            c.issue(m.line_of("name"), m.path("name"),
                    f"{sign.name!r} is already the name of the row at line {names[sign.name]}")
            continue
        names[sign.name] = m.line_of("name")
        signs.append(sign)
    prompts = top.str_list("prompts", validate._regex) or []
    spec = top.sub("signatures")
    failures = _signature_signs(spec) if spec is not None else ()
    if c.issues:
        raise validate.ConfigError(c.issues)
    taken = set(names)
    return Table(tuple(signs) + tuple(s for s in failures if s.name not in taken),
                 tuple(prompts))


def _row(m: validate._Map) -> Sign | None:
    """One `signs:` row, or None when anything in it is wrong (the issues are recorded)."""
    before = len(m.c.issues)
    m.keys(_ROW_KEYS, _ROW_REQUIRED)
    kind = m.get("kind", validate._one_of(*KINDS))
    fields: dict[str, Any] = {
        "name": m.get("name", validate._str), "family": m.get("family", validate._str),
        "phase": m.get("phase", validate._one_of(*PHASES)), "kind": kind,
        "pattern": m.get("pattern", validate._regex),
        "source": m.get("source", validate._one_of(*SIGN_SOURCES), "any"),
        "label": m.get("label", validate._str, ""),
        "verdict": m.get("verdict", validate._one_of(*VERDICTS)),
        "answer": m.get("answer", validate._str),
    }
    m.get("source_of_truth", validate._str)
    if kind in FAILING and "verdict" not in m.data:
        m.c.issue(m.line, m.path("verdict"), f"a {kind} row says which verdict it means "
                  f"({', '.join(VERDICTS)})")
    if kind is not None and kind not in FAILING and "verdict" in m.data:
        m.c.issue(m.line_of("verdict"), m.path("verdict"),
                  "only failure and error rows have a verdict")
    if kind is not None and kind not in ("menu", "question") and "answer" in m.data:
        m.c.issue(m.line_of("answer"), m.path("answer"),
                  "only menu and question rows have an answer")
    return Sign(**fields) if len(m.c.issues) == before else None


def _signature_signs(spec: validate._Map) -> tuple[Sign, ...]:
    """The fatal built-in failure signatures as failure signs. A pattern several families
    share (the BSDs' `panic: `) is one sign of family `any`."""
    spec.keys(("phase", "verdict", "phases"))
    phase = spec.get("phase", validate._one_of(*PHASES), "kernel")
    verdict = spec.get("verdict", validate._one_of(*VERDICTS), "crash")
    phases: dict[str, str] = {}
    sub = spec.sub("phases")
    if sub is not None:
        for name in sub.data:
            phases[str(name)] = sub.get(name, validate._one_of(*PHASES), phase)
    families: dict[str, list[str]] = {}
    first: dict[str, Any] = {}
    for family, sigs in knowledge.builtin_signatures().items():
        for sig in sigs:
            if sig.fatal:
                families.setdefault(sig.pattern.pattern, []).append(family)
                first.setdefault(sig.pattern.pattern, sig)
    out = []
    for text, fams in families.items():
        sig = first[text]
        family = fams[0] if len(fams) == 1 else "any"
        name = sig.name if family == "any" or sig.name.startswith(family) \
            else f"{family}-{sig.name}"
        if any(s.name == name for s in out):
            name = f"{'-'.join(fams)}-{sig.name}"
        out.append(Sign(name=name, family=family, phase=phases.get(sig.name, phase),
                        kind="failure", pattern=sig.pattern,
                        label=f"{sig.name} ({', '.join(fams)})", verdict=verdict))
    return tuple(out)


@functools.cache
def table() -> Table:
    """The built-in table (loaded and checked once)."""
    return load()


def prompt_shape(line: str) -> bool:
    """Whether an unfinished line looks like something waiting for input (the table's
    `prompts:` shapes); only a hint: `try` confirms it by sending a harmless key."""
    text = line.rstrip()[-TEXT_MAX:]
    return bool(text.strip()) and any(p.search(text) for p in table().prompts)


# --- the classifier ------------------------------------------------------------------

class Classifier:
    """Pure: text in, Seen out. Keeps an unfinished line per source (a prompt has no
    newline), so whole lines and the unfinished last line are both checked."""

    def __init__(self, signs: Sequence[Sign] | None = None) -> None:
        self._signs = tuple(table().signs if signs is None else signs)
        self._tails: dict[str, str] = {}
        self._seen: list[Seen] = []
        self._done: set[int] = set()

    def feed(self, text: str, source: str, at: float) -> list[Seen]:
        """New sightings in `text` (each sign once per boot, its first sighting), in the
        order they appear."""
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
        before = self._tails.get(source, "")
        parts = _LINE_END.split(before + text)
        out: list[Seen] = []
        for line in parts[:-1]:
            out += self._check(line + "\n", source, at)
        tail = parts[-1]
        # the same unfinished line as before: only text near the new part can match anew
        start = max(0, len(before) - SPAN) if len(parts) == 1 else 0
        out += self._check(tail, source, at, start)
        self._tails[source] = tail[-TAIL_KEEP:] if len(tail) > TAIL_MAX else tail
        self._seen += out
        return out

    def _check(self, line: str, source: str, at: float, start: int = 0) -> list[Seen]:
        """New sightings in `line`, searched from `start` (`^` still means the line's
        start, and lookbehinds see what stands before)."""
        if not line.strip():
            return []
        found = []
        for i, sign in enumerate(self._signs):
            if i in self._done or sign.source not in ("any", source):
                continue
            m = sign.pattern.search(line, start)
            if m is not None:
                self._done.add(i)
                found.append((m.start(), Seen(sign, _excerpt(line, m), source, at)))
        return [seen for _, seen in sorted(found, key=lambda f: f[0])]

    def tail(self, source: str) -> str:
        """The unfinished last line of that source."""
        return self._tails.get(source, "")

    def seen(self) -> list[Seen]:
        """Every sighting so far, in order."""
        return list(self._seen)

    def reached(self) -> Seen | None:
        """The furthest phase's sighting (the latest of that phase). Failures say what went
        wrong, not how far it got, so they are left out."""
        best: Seen | None = None
        for s in self._seen:
            if s.sign.kind != "failure" and (
                    best is None or PHASES.index(s.sign.phase) >= PHASES.index(best.sign.phase)):
                best = s
        return best

    def failure(self) -> Seen | None:
        """The first failure sighting: a later banner does not undo it."""
        return next((s for s in self._seen if s.sign.kind == "failure"), None)


def _excerpt(line: str, m: re.Match[str]) -> str:
    """The line, stripped, at most TEXT_MAX characters around the match."""
    text = line.strip()
    if len(text) <= TEXT_MAX:
        return text
    start = max(0, m.start() - (len(line) - len(line.lstrip())) - TEXT_MAX // 4)
    return text[start:start + TEXT_MAX].strip()
