"""A guest file's `milestones:` (patterns, needles, stills; what is typed or pressed
after each), checked like the rest of it: every problem as `file:line: key: message`.
Shared by the guest's own milestones and each of its `stages:`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .console.keys import KeyNameError, combo, combos_for_text
from .model import Milestone, Needle, Still
from .validate import (
    MAX_PIXELS,
    _Bad,
    _bool,
    _Checker,
    _count,
    _Map,
    _one_of,
    _positive,
    _regex,
    _str,
    _text,
    shown,
)

CONSOLES = ("serial", "vga-text", "screen")
MILESTONE_KEYS = ("name", "pattern", "needle", "still", "source", "timeout", "send", "keys",
                  "optional", "weight")


SOURCES = ("serial", "screen")


def milestone_list(c: _Checker, m: _Map, base: Path, console: str) -> list[Milestone]:
    out: list[Milestone] = []
    default_source = "serial" if console == "serial" else "screen"
    for ms, name in c.named(m, "milestones", MILESTONE_KEYS, "milestone"):
        kinds = [k for k in ("pattern", "needle", "still") if k in ms.data]
        if len(kinds) != 1:
            c.issue(ms.line, ms.prefix, "needs exactly one of pattern, needle, still")
            continue
        source = ms.get("source", _one_of(*SOURCES), default_source)
        if kinds[0] != "pattern" and source != "screen":
            c.issue(ms.line_of(kinds[0]), ms.path(kinds[0]), "needs the screen (source: screen)")
        pattern = ms.get("pattern", _regex)
        needle = _needle(ms.sub("needle"), base)
        still = _still(ms.sub("still"))
        if pattern is None and needle is None and still is None:
            continue
        out.append(Milestone(
            name=name,
            pattern=pattern,
            timeout=ms.get("timeout", _positive),
            send=ms.get("send", _typeable if source == "screen" else _text),
            optional=ms.get("optional", _bool, False),
            weight=ms.get("weight", _positive, 1.0),
            source=source,
            needle=needle,
            still=still,
            keys=tuple(ms.str_list("keys", _key_combo) or ()),
        ))
    if "milestones" in m.data and out and all(x.optional for x in out):
        c.issue(m.line_of("milestones"), m.path("milestones"),
                "at least one milestone must be required")
    elif "milestones" in m.data and not out and not c.issues:
        c.issue(m.line_of("milestones"), m.path("milestones"), "needs at least one milestone")
    return out


def _typeable(v: Any) -> str:
    text = _text(v)
    try:
        combos_for_text(text)
    except KeyNameError as exc:
        raise _Bad(str(exc)) from None
    return text


def _key_combo(v: Any) -> str:
    try:
        combo(_str(v))
    except KeyNameError as exc:
        raise _Bad(str(exc)) from None
    return v


def _region(v: Any) -> tuple[int, int, int, int]:
    if (not isinstance(v, list) or len(v) != 4 or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_PIXELS for x in v)):
        got = (f"[{', '.join(map(shown, v))}]" if isinstance(v, list) and len(v) <= 4
               else shown(v))  # whole numbers from 0 to MAX_PIXELS
        raise _Bad(f"expected [x, y, w, h], got {got}")
    return (v[0], v[1], v[2], v[3])


def _needle(n: _Map | None, base: Path) -> Needle | None:
    if n is None:
        return None
    n.keys(("image", "x", "y", "threshold"), ("image", "x", "y"))
    image = n.get("image", _str)
    path = (base / image).resolve() if image else None
    if path is not None and not path.is_file():
        n.c.issue(n.line_of("image"), n.path("image"), f"no such file {path}")
        return None
    x, y = n.get("x", _count, 0), n.get("y", _count, 0)
    threshold = n.get("threshold", _fraction, 0.95)
    return Needle(path, x, y, threshold) if path else None


def _fraction(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise _Bad(f"expected a number between 0 and 1, got {shown(v)}")
    return float(v)


def _still(s: _Map | None) -> Still | None:
    if s is None:
        return None
    s.keys(("seconds", "mask"), ("seconds",))
    seconds = s.get("seconds", _positive)
    mask = []
    for path, line, value in s.c.items(s, "mask"):
        try:
            mask.append(_region(value))
        except _Bad as exc:
            s.c.issue(line, path, str(exc))
    return Still(seconds, tuple(mask)) if seconds else None
