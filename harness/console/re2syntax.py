"""A Python pattern rewritten in RE2's syntax, with Python's meaning, or why it cannot be.

The pattern is not handed to RE2 as written: the two syntaxes agree on
most text but not all (`{,3}`, `[[:alpha:]]`, `\\Z`, Unicode `\\d` `\\s`
`\\w`, what `$` matches). Python's own parser reads it, and each node of
the tree is written out in RE2's spelling of the same thing: literals as
`\\x{..}`, `\\s` as the explicit Unicode set Python uses, `\\w` as
`[\\p{L}\\p{N}_]` (Python's `str.isalnum()`, checked against every code
point in the tests), `.` as `[^\\n]` unless DOTALL; groups do not capture
(only the whole match is used). What RE2 has no
equivalent for (lookarounds, backreferences, conditionals, atomic groups,
possessive repeats, counts over 1000, a `$` inside the pattern rather than
at its end) raises `Untranslatable`. Pure: no RE2 needed to decide.

Where the rewrite differs from Python: Unicode tables of another version
(RE2's are newer: characters added since count as letters or digits) and
IGNORECASE, which RE2 does by simple case folding (Python by lower-casing;
they differ on a handful of characters such as the Turkish dotless i).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

try:  # the parser is internal to `re`; without it nothing is rewritten
    from re import _constants as _c
    from re import _parser as _p
except ImportError:  # pragma: no cover - other Python versions
    _p = _c = None

RE2_MAX_REPEAT = 1000  # RE2 refuses larger counts

# What Python's `\s` matches in a str pattern (str.isspace), as ranges.
UNICODE_SPACE = ((0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
                 (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
                 (0x3000, 0x3000))
ASCII_SPACE = ((0x09, 0x0D), (0x20, 0x20))
ASCII_DIGIT = ((0x30, 0x39),)
ASCII_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
MAX_CODE = 0x10FFFF


_NEEDS = {"ASSERT": "a lookahead or lookbehind", "ASSERT_NOT": "a negative lookahead or lookbehind",
          "GROUPREF": "a backreference", "GROUPREF_EXISTS": "a conditional group",
          "ATOMIC_GROUP": "an atomic group", "POSSESSIVE_REPEAT": "a possessive repeat"}


class Untranslatable(Exception):
    """The pattern needs something RE2 does not have; the message says what."""


@dataclass(frozen=True)
class Translation:
    source: str  # the pattern in RE2 syntax
    ascii_only: bool = False  # exact on ASCII text only (a Unicode \b or \B)
    dollar: bool = False  # a trailing `$`: the match ends where group 1 starts


def translate(pattern: re.Pattern[str]) -> Translation:
    """`pattern` in RE2 syntax, or `Untranslatable`."""
    if _p is None:
        raise Untranslatable("this Python's regex parser is not available")
    if not isinstance(pattern.pattern, str):
        raise Untranslatable("bytes patterns are not rewritten")
    parsed = _p.parse(pattern.pattern, pattern.flags)
    flags = parsed.state.flags
    if flags & re.LOCALE or (flags & re.ASCII and flags & re.IGNORECASE):
        raise Untranslatable("LOCALE and ASCII|IGNORECASE have no RE2 equivalent")
    w = _Writer()
    items = list(parsed)
    # Python's `$` without MULTILINE matches at the end or before a final newline
    # (a lookahead, which RE2 lacks); at the very end of the pattern it is
    # `(\n?)\z` and the match is cut where that group starts.
    dollar = bool(items) and items[-1] == (_c.AT, _c.AT_END) and not flags & re.MULTILINE
    body = w.seq(items[:-1] if dollar else items, flags)
    if dollar:
        body = f"(?:{body})(\\n?)\\z"
    return Translation(body, w.ascii_only, dollar)


def is_translatable(pattern: re.Pattern[str]) -> bool:
    try:
        translate(pattern)
    except Untranslatable:
        return False
    return True


def nested_unbounded(pattern: re.Pattern[str]) -> bool:
    """A repeat that may run more than once around a body holding an unbounded
    repeat, as in `(a+)+` or `(x+x+)+y`: the shape whose backtracking explodes."""
    if _p is None:
        return False
    return _nested(list(_p.parse(pattern.pattern, pattern.flags)), inside=False)


def expanded_size(pattern: re.Pattern[str]) -> int:
    """The pattern's nodes with each bounded repeat written out: what a compiler that
    expands repeats (the regex module's) builds. `(a{1000}){1000}` is a million."""
    if _p is None:
        return 0
    return _size(list(_p.parse(pattern.pattern, pattern.flags)))


def _size(items: list) -> int:
    total = 0
    for op, av in items:
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            lo, hi, body = av
            total += max(1, _size(list(body))) * max(1, lo + 1 if hi == _c.MAXREPEAT else hi)
        else:
            total += 1 + sum(_size(list(sub)) for sub in _children(op, av))
    return total


def _nested(items: list, inside: bool) -> bool:
    for op, av in items:
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            _, hi, body = av
            if (inside and hi == _c.MAXREPEAT) or _nested(list(body), inside or hi > 1):
                return True
        elif any(_nested(list(sub), inside) for sub in _children(op, av)):
            return True
    return False


def _children(op: object, av: object) -> list:
    """The sequences inside a group, an alternation, a lookaround or a conditional."""
    if op is _c.SUBPATTERN:
        return [av[3]]
    if op is _c.BRANCH:
        return list(av[1])
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if op is _c.ATOMIC_GROUP:
        return [av]
    if op is _c.GROUPREF_EXISTS:
        return [b for b in av[1:] if b is not None]
    return []


def _char(code: int) -> str:
    ch = chr(code)
    return ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"\\x{{{code:X}}}"


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}"
                   for lo, hi in ranges)


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out, at = [], 0
    for lo, hi in ranges:
        if lo > at:
            out.append((at, lo - 1))
        at = hi + 1
    if at <= MAX_CODE:
        out.append((at, MAX_CODE))
    return tuple(out)


class _Writer:
    def __init__(self) -> None:
        self.ascii_only = False

    def seq(self, items: list, flags: int) -> str:
        return "".join(self.item(op, av, flags) for op, av in items)

    def item(self, op: object, av: object, flags: int) -> str:
        fold = "(?i:{})" if flags & re.IGNORECASE else "{}"
        if op is _c.LITERAL:
            return fold.format(_char(av))
        if op is _c.NOT_LITERAL:
            return fold.format(f"[^{_ranges(((av, av),))}]")
        if op is _c.ANY:
            return "(?s:.)" if flags & re.DOTALL else "[^\\n]"
        if op is _c.IN:
            return fold.format(self.charset(av, flags))
        if op is _c.CATEGORY:
            return self.charset([(op, av)], flags)
        if op is _c.BRANCH:
            return "(?:" + "|".join(self.seq(list(b), flags) for b in av[1]) + ")"
        if op is _c.SUBPATTERN:
            _, add, remove, body = av
            return f"(?:{self.seq(list(body), (flags | add) & ~remove)})"  # only group 0 is used
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            return self.repeat(op, av, flags)
        if op is _c.AT:
            return self.at(av, flags)
        raise Untranslatable(f"{_NEEDS.get(str(op), str(op).lower())} needs a backtracking "
                             f"engine")

    def repeat(self, op: object, av: tuple, flags: int) -> str:
        lo, hi, body = av
        if lo > RE2_MAX_REPEAT or (hi != _c.MAXREPEAT and hi > RE2_MAX_REPEAT):
            raise Untranslatable(f"a repeat count over {RE2_MAX_REPEAT}")
        if hi == _c.MAXREPEAT:
            count = {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
        elif (lo, hi) == (0, 1):
            count = "?"
        else:
            count = f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"
        lazy = "?" if op is _c.MIN_REPEAT else ""
        return f"(?:{self.seq(list(body), flags)}){count}{lazy}"

    def at(self, where: object, flags: int) -> str:
        multiline = flags & re.MULTILINE
        if where is _c.AT_BEGINNING:
            return "(?m:^)" if multiline else "\\A"
        if where is _c.AT_BEGINNING_STRING:
            return "\\A"
        if where is _c.AT_END_STRING:
            return "\\z"
        if where is _c.AT_END:
            if multiline:
                return "(?m:$)"
            raise Untranslatable("a `$` before the end of the pattern needs a lookahead")
        if where in (_c.AT_BOUNDARY, _c.AT_NON_BOUNDARY):
            self.ascii_only = self.ascii_only or not flags & re.ASCII
            return "\\b" if where is _c.AT_BOUNDARY else "\\B"
        raise Untranslatable(f"{str(where).lower()} has no RE2 equivalent")

    def charset(self, items: list, flags: int) -> str:
        negate = False
        parts: list[str] = []
        for op, av in items:
            if op is _c.NEGATE:
                negate = True
            elif op is _c.LITERAL:
                parts.append(_ranges(((av, av),)))
            elif op is _c.RANGE:
                parts.append(_ranges((av,)))
            elif op is _c.CATEGORY:
                parts.append(self.category(av, flags, alone=len(items) == 1))
            else:
                raise Untranslatable(f"{str(op).lower()} in a character class")
        inner = "".join(parts)
        if len(items) == 1 and inner.startswith("[^"):
            return inner  # a lone \W, already a class of its own
        return f"[{'^' if negate else ''}{inner}]"

    @staticmethod
    def category(cat: object, flags: int, alone: bool) -> str:
        ascii_ = flags & re.ASCII
        table = {
            _c.CATEGORY_DIGIT: (ASCII_DIGIT, None) if ascii_ else (None, "\\p{Nd}"),
            _c.CATEGORY_SPACE: (ASCII_SPACE if ascii_ else UNICODE_SPACE, None),
            _c.CATEGORY_WORD: (ASCII_WORD, None) if ascii_ else (None, "\\p{L}\\p{N}_"),
        }
        negated = {_c.CATEGORY_NOT_DIGIT: _c.CATEGORY_DIGIT,
                   _c.CATEGORY_NOT_SPACE: _c.CATEGORY_SPACE,
                   _c.CATEGORY_NOT_WORD: _c.CATEGORY_WORD}
        positive = negated.get(cat, cat)
        if positive not in table:
            raise Untranslatable(f"{str(cat).lower()} has no RE2 equivalent")
        ranges, props = table[positive]
        if cat is positive:
            return _ranges(ranges) if ranges is not None else props
        if ranges is not None:
            return _ranges(_complement(ranges))
        if props == "\\p{Nd}":
            return "\\P{Nd}"
        if alone:  # \W: a class of its own
            return f"[^{props}]"
        raise Untranslatable("\\W inside a character class has no RE2 equivalent")
