"""One scan per chunk for the required literals of every pattern.

A pattern's regex runs only where one of its required literals occurs
(`literals.py`); most console text holds none, so the cost that matters is
finding literals. The native path scans each chunk once for all
patterns' literals together (the `ahocorasick_rs` package: leftmost-first
Aho-Corasick automata with a SIMD prefilter; the 2-character literals in
an automaton of their own, as they would slow the other's prefilter
tenfold). The pure-Python path, when the package is missing, does one
`str.find` per literal. Both answer the same question exactly, so the
matcher's events do not depend on which ran (tests/test_console_prefilter.py).

pyahocorasick was measured too: its automaton walks every character in a
Python-object trie (45 MB/s here, slower than the `str.find` loop).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

try:
    import ahocorasick_rs as _ac
except ImportError:  # pragma: no cover - exercised by forcing native=False
    _ac = None

NATIVE = _ac is not None
SHORT = 3  # words shorter than this are scanned apart (see Prefilter._groups)


class Hits:
    """Where the literals of each pattern occur in one scanned text."""

    def first(self, pattern: int, start: int) -> int:
        """The first position >= `start` where a literal of `pattern` occurs; -1 if
        none does (`start` itself for patterns without literals: they always run)."""
        raise NotImplementedError

    def live(self, patterns: Sequence[int]) -> Sequence[int]:
        """Those of `patterns` that may match somewhere (a superset is fine)."""
        return patterns


class Prefilter:
    """The literals of patterns 0..n-1 (None: the pattern always runs)."""

    def __init__(self, literals: Sequence[Sequence[str] | None],
                 native: bool | None = None) -> None:
        if native is None:
            native = NATIVE
        if native and _ac is None:
            raise RuntimeError("the native prefilter needs the ahocorasick_rs package")
        self.native = native
        self.always = frozenset(i for i, lits in enumerate(literals)
                                if lits is None or "" in lits)
        self.words: list[str] = []  # unique literals
        self.owners: list[tuple[int, ...]] = []  # word -> the patterns it serves
        self.by_pattern: list[tuple[int, ...]] = []  # pattern -> its words
        index: dict[str, int] = {}
        owners: list[list[int]] = []
        for pid, lits in enumerate(literals):
            mine = []
            for lit in () if pid in self.always else lits or ():
                if lit not in index:
                    index[lit] = len(self.words)
                    self.words.append(lit)
                    owners.append([])
                owners[index[lit]].append(pid)
                mine.append(index[lit])
            self.by_pattern.append(tuple(mine))
        self.owners = [tuple(o) for o in owners]
        self._automata: dict[bool, list[_Group]] = {}  # ascii text? -> automata

    def scan(self, text: str) -> Hits:
        if not self.native or not self.words:
            return _FindHits(self, text)
        return self._native_scan(text)

    # --- the native path -------------------------------------------------------

    def _groups(self, ascii_text: bool) -> list[_Group]:
        """Built on first use: bytes automata for ASCII text (most consoles, and
        the fastest), str ones (character offsets) for the rest. Words of
        fewer than SHORT characters get an automaton of their own: with them
        the automaton's SIMD prefilter falls back to a much slower scan."""
        groups = self._automata.get(ascii_text)
        if groups is None:
            groups = []
            for short in (False, True):
                ids = [i for i, w in enumerate(self.words) if (len(w) < SHORT) == short]
                if ids:
                    groups.append(_Group(ids, [self.words[i] for i in ids], ascii_text))
            self._automata[ascii_text] = groups
        return groups

    def _native_scan(self, text: str) -> Hits:
        ascii_text = text.isascii()
        hay: str | bytes = text.encode() if ascii_text else text
        found: dict[int, list[int]] = {}
        for group in self._groups(ascii_text):
            for word, at in group.occurrences(hay):
                for pid in self.owners[word]:
                    found.setdefault(pid, []).append(at)
        for positions in found.values():
            positions.sort()
        return _NativeHits(self, found)


class _Group:
    """Words scanned together: a fast gate, then exact occurrences near its hits."""

    __slots__ = ("every", "gate", "ids", "longest")

    def __init__(self, ids: list[int], words: list[str], ascii_text: bool) -> None:
        assert _ac is not None
        self.ids = ids
        self.longest = max(len(w) for w in words)
        if ascii_text:
            encoded = [w.encode() for w in words]
            self.gate = _ac.BytesAhoCorasick(encoded, matchkind=_ac.MatchKind.LeftmostFirst)
            self.every = _ac.BytesAhoCorasick(encoded)
        else:
            self.gate = _ac.AhoCorasick(words, matchkind=_ac.MatchKind.LeftmostFirst)
            self.every = _ac.AhoCorasick(words)

    def occurrences(self, hay: str | bytes) -> list[tuple[int, int]]:
        """(word id, position) of every occurrence of every word in `hay`.

        The leftmost-first scan is the fast one, but it reports no match that
        overlaps an earlier one. Every occurrence does start inside a reported
        match, though, so an overlapping scan of just those spans finds all."""
        out = []
        for _, a, b in self.gate.find_matches_as_indexes(hay):
            for word, start, _end in self.every.find_matches_as_indexes(
                    hay[a:b + self.longest - 1], overlapping=True):
                if start < b - a:
                    out.append((self.ids[word], a + start))
        return out


class _NativeHits(Hits):
    __slots__ = ("_always", "_found")

    def __init__(self, prefilter: Prefilter, found: dict[int, list[int]]) -> None:
        self._always = prefilter.always
        self._found = found

    def first(self, pattern: int, start: int) -> int:
        if pattern in self._always:
            return start
        positions = self._found.get(pattern)
        if not positions:
            return -1
        i = bisect.bisect_left(positions, start)
        return positions[i] if i < len(positions) else -1

    def live(self, patterns: Sequence[int]) -> Sequence[int]:
        if not self._found and not self._always:
            return ()
        return [p for p in patterns if p in self._found or p in self._always]


class _FindHits(Hits):
    """The pure-Python path: `str.find` per word, each word's answer reused."""

    __slots__ = ("_cache", "_pf", "_text")

    def __init__(self, prefilter: Prefilter, text: str) -> None:
        self._pf = prefilter
        self._text = text
        self._cache: dict[int, tuple[int, int]] = {}  # word -> (searched from, found at)

    def first(self, pattern: int, start: int) -> int:
        if pattern in self._pf.always:
            return start
        best = -1
        for word in self._pf.by_pattern[pattern]:
            at = self._find(word, start)
            if at != -1 and (best == -1 or at < best):
                best = at
        return best

    def _find(self, word: int, start: int) -> int:
        cached = self._cache.get(word)
        if cached is not None:
            since, at = cached
            if since <= start and (at == -1 or at >= start):
                return at
        at = self._text.find(self._pf.words[word], start)
        self._cache[word] = (start, at)
        return at
