"""Literal text a regular expression cannot match without.

The matcher scans for these (`prefilter.py`: one pass for all patterns,
much faster than the regex engine on text that does not match) and runs
a regex only where one of its literals occurs. Only what is certain is
returned; `None` means "always run it".
"""

from __future__ import annotations

import re

try:  # the parser is internal to `re`; without it every pattern just runs as is
    from re import _constants as _c
    from re import _parser as _p
except ImportError:  # pragma: no cover - other Python versions
    _p = _c = None

MIN_LITERAL = 2


def required_literals(pattern: re.Pattern[str]) -> list[str] | None:
    """Strings of which at least one occurs in any text `pattern` matches."""
    if _p is None or pattern.flags & re.IGNORECASE:
        return None
    try:
        parsed = _p.parse(pattern.pattern, pattern.flags)
    except Exception:
        return None
    return _sequence(list(parsed))


def _sequence(items: list) -> list[str] | None:
    if len(items) == 1 and items[0][0] is _c.BRANCH:
        out: list[str] = []
        for branch in items[0][1][1]:
            lits = _sequence(list(branch))
            if lits is None:
                return None
            out.extend(lits)
        return out
    best, run = "", []
    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        best = max(best, "".join(run), key=len)
        run = []
    best = max(best, "".join(run), key=len)
    return [best] if len(best) >= MIN_LITERAL else None
