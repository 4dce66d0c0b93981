"""Guest patterns run at a bounded cost: RE2 where it can, a time budget where it cannot.

A guest file's regex runs on text the guest prints, and Python's `re`
backtracks: `(a+)+$` on a line of 30 `a`s takes minutes inside one C call,
during which the harness honours no signal. So each pattern is compiled
once, by `compile_pattern`, into a `Search`:

- RE2 (the google-re2 binding) when the pattern can be rewritten in its
  syntax with Python's meaning (`re2syntax.py`): linear time in the text,
  whatever the pattern;
- otherwise (lookarounds, backreferences..., or no google-re2 wheel for
  this host) the `regex` module, which backtracks like `re` but stops at a
  timeout: each search gets what is left of the caller's budget and a
  search that runs out raises `PatternTimeout`.

When the guest file is read (`load_problem`), patterns that look
catastrophic (`re2syntax.nested_unbounded`) and cannot go to RE2 are
refused, and so are patterns whose repeats written out pass MAX_SIZE steps
(the regex module's compiler writes them out: `(a{1000}){1000}` would take
minutes and gigabytes before the first search).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from .re2syntax import Translation, Untranslatable, expanded_size, nested_unbounded, translate

try:
    import re2 as _re2

    _UNANCHORED = _re2._Anchor.UNANCHORED
except (ImportError, AttributeError):  # pragma: no cover - no google-re2 wheel (NetBSD...)
    _re2 = _UNANCHORED = None

RE2 = _re2 is not None
BUDGET = 0.5  # seconds of backtracking-engine time per read of the console
MAX_SIZE = 100_000  # a pattern's size with its repeats expanded (the regex module's compile)


class PatternTimeout(Exception):
    """A pattern ran past the budget on some console text."""

    def __init__(self, what: str, budget: float) -> None:
        super().__init__(f"{what} took over {budget:g} s on the console; simplify it")
        self.what = what
        self.budget = budget


@dataclass(frozen=True)
class Found:
    """A match: where it starts and ends in the searched text, and its text."""

    start: int
    end: int
    text: str


class Search:
    """One compiled guest pattern; `search` is `re.Pattern.search` at a bounded cost."""

    engine = ""

    def search(self, text: str, pos: int = 0, timeout: float = BUDGET) -> Found | None:
        raise NotImplementedError


class _RE2Search(Search):
    """RE2 through the binding's compiled object: its Python wrapper costs ten times
    the search itself on console-sized text (it decodes and re-encodes offsets)."""

    engine = "re2"

    def __init__(self, regexp: object, tr: Translation, fallback: Search) -> None:
        self._match = regexp.Match  # type: ignore[attr-defined]
        self._dollar = tr.dollar
        self._ascii_only = tr.ascii_only
        self._fallback = fallback

    def search(self, text: str, pos: int = 0, timeout: float = BUDGET) -> Found | None:
        ascii_text = text.isascii()
        if self._ascii_only and not ascii_text:  # a Unicode \b: only Python's is exact
            return self._fallback.search(text, pos, timeout)
        data = text.encode("utf-8", "surrogatepass")
        if not ascii_text:
            pos = len(text[:pos].encode("utf-8", "surrogatepass"))
        spans = self._match(_UNANCHORED, data, pos, len(data))
        start, end = spans[0]
        if start < 0:
            return None
        if self._dollar:
            end = spans[1][0]
        if not ascii_text:  # byte offsets to character offsets
            start, end = (len(data[:start].decode("utf-8", "surrogatepass")),
                          len(data[:end].decode("utf-8", "surrogatepass")))
        return Found(start, end, text[start:end])


class _RegexSearch(Search):
    engine = "regex"

    def __init__(self, pattern: re.Pattern[str], what: str) -> None:
        self._pattern = pattern
        self._regex: regex.Pattern[str] | None = None  # compiled on first use
        self._what = what

    def search(self, text: str, pos: int = 0, timeout: float = BUDGET) -> Found | None:
        if self._regex is None:
            flags = self._pattern.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL
                                           | re.VERBOSE)
            if self._pattern.flags & re.ASCII:  # the one flag whose value differs
                flags |= regex.ASCII
            self._regex = regex.compile(self._pattern.pattern, flags | regex.VERSION0)
        try:
            m = self._regex.search(text, pos, timeout=max(timeout, 0.001))
        except TimeoutError:
            raise PatternTimeout(self._what, timeout) from None
        return None if m is None else Found(m.start(), m.end(), m.group(0))


def compile_pattern(pattern: re.Pattern[str], what: str = "",
                    use_re2: bool | None = None) -> Search:
    """`pattern` (already compiled by `re`, so known to be valid) as a bounded search.
    `what` names it in a timeout's message ("milestone 'login' pattern ...")."""
    what = what or f"pattern {pattern.pattern!r}"
    fallback = _RegexSearch(pattern, what)
    if not (RE2 if use_re2 is None else use_re2):
        return fallback
    try:
        tr = translate(pattern)
    except (Untranslatable, RecursionError):
        return fallback
    compiled = _re2_compile(tr)
    return fallback if compiled is None else _RE2Search(compiled, tr, fallback)


def _re2_compile(tr: Translation) -> object | None:
    """RE2's compiled program, or None where RE2 refuses it (too large for its
    memory budget): quietly, without RE2 logging to stderr. Only a trailing `$`
    needs a capturing group."""
    if _re2 is None:
        return None
    options = _re2.Options()
    options.log_errors = False
    options.never_capture = not tr.dollar
    try:
        return _re2.compile(tr.source, options)._regexp
    except (_re2.error, AttributeError):
        return None


def load_problem(pattern: re.Pattern[str]) -> str | None:
    """Why a guest file may not carry `pattern`, or None: the same answer on every
    host (it does not depend on whether google-re2 is installed)."""
    try:
        size = expanded_size(pattern)
        if size > MAX_SIZE:
            return (f"the pattern expands to more than {MAX_SIZE} steps (its repeat counts "
                    f"multiply: {size}); use smaller counts")
        if not nested_unbounded(pattern):
            return None
        translate(pattern)
    except RecursionError:
        return "the pattern nests groups too deeply"
    except Untranslatable as exc:
        return (f"nested unbounded repeats (as in `(a+)+`) can take exponential time, and "
                f"the pattern cannot run on RE2 ({exc}); remove the nesting or the "
                f"construct that needs backtracking")
    return None
