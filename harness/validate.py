"""Table-driven validation of YAML configuration, with file:line in every message.

A `_Checker` collects issues for one file; a `_Map` walks one mapping,
checking its keys and passing each value through a checker (a function
that converts the value or raises `_Bad` with the reason). All problems of
a file are reported at once.

Every number has an upper bound a host can have (a typo such as `vcpus: 1000000`
is refused, not planned for), and a message never shows more of a value than
`shown` gives: a bounded, escaped excerpt (a value from the file may be long or
hold terminal controls).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .console.engine import load_problem
from .model import Quirk
from .yamlpos import LineDict, LineList, YamlError, load_file

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MEMORY = re.compile(r"(\d{1,20})\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
_OPTION_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# Upper bounds: what a host can have, with room to spare.
MAX_MEMORY_MB = 16 * 1024 * 1024  # 16 TiB
MAX_VCPUS = 1024
MAX_RETRIES = 100
MAX_JOBS = 1024
MAX_PIXELS = 65535  # a screen coordinate or size
SHOWN = 60  # characters of a value a message shows at most


def shown(v: Any) -> str:
    """A value as a message may show it: collections by kind, text escaped (repr) and
    cut to SHOWN characters, so neither an expanded alias nor a megabyte string nor an
    escape sequence reaches the terminal."""
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list | tuple | set | frozenset):
        return "a list"
    if isinstance(v, str | bytes):
        text = repr(v[:SHOWN])
        return text + ("..." if len(v) > SHOWN else "")
    text = repr(v) if isinstance(v, bool | int | float | type(None)) else type(v).__name__
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def key_text(key: Any) -> str:
    """A key as it appears in a message's key path: as written when it is a short
    printable string, else shown()."""
    if isinstance(key, str) and key.isprintable() and 0 < len(key) <= SHOWN:
        return key
    return shown(key)


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class ConfigError(Exception):
    """One or more problems in configuration files; exit status 2."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        issues = sorted(issues, key=lambda i: (i.file, i.line))
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


class _Bad(Exception):
    """Raised by a checker: the value is wrong, with the message why."""


# --- value checkers: value -> converted value, or raise _Bad -----------------


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(f"expected a non-empty string, got {_kind(v)}")
    return _text(v)


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad(f"expected a string, got {_kind(v)}")
    if "\0" in v:  # a YAML escape ("\0") gets past the loader's check of the raw bytes
        raise _Bad("a NUL character (\\0) has no place in a guest or matrix file")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"expected true or false, got {_kind(v)}")
    return v


MAX_SECONDS = 7 * 24 * 3600.0  # a deadline or weight past a week is a typo, not a plan


def _positive(v: Any) -> float:
    """A positive, finite number (timeouts, weights, still seconds): NaN or .inf would
    make a cell that never ends."""
    if (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            or not 0 < v <= MAX_SECONDS):
        raise _Bad(f"expected a positive number up to {MAX_SECONDS:g}, got {shown(v)}")
    return float(v)


def whole(low: int, high: int) -> Callable[[Any], int]:
    """A checker for a whole number from `low` to `high`."""

    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise _Bad(f"expected a whole number from {low} to {high}, got {shown(v)}")
        return v

    return check


_count = whole(0, MAX_PIXELS)
_vcpus = whole(1, MAX_VCPUS)
_retries = whole(0, MAX_RETRIES)


def _regex(v: Any) -> re.Pattern[str]:
    """A guest pattern: valid for `re`, and not one that may backtrack for ever where
    RE2 cannot run it (`console/engine.py`)."""
    try:
        pattern = re.compile(_str(v))
    except re.error as exc:
        raise _Bad(f"invalid regular expression: {exc}") from None
    except RecursionError:
        raise _Bad("invalid regular expression: groups nested too deeply") from None
    problem = load_problem(pattern)
    if problem:
        raise _Bad(problem)
    return pattern


def _sha256(v: Any) -> str:
    if not isinstance(v, str) or not _HEX64.fullmatch(v):
        raise _Bad("expected 64 hexadecimal digits")
    return v.lower()


def memory_mb(v: Any) -> int:
    """'256M', '1G', '1024' (MiB) or an int (MiB) -> MiB."""
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        mib: float = v
    else:
        m = _MEMORY.fullmatch(v.strip()) if isinstance(v, str) else None
        if not m:
            raise _Bad(f"expected a size such as 256M or 1G, got {shown(v)}")
        n, unit = int(m.group(1)), m.group(2).upper()
        mib = {"K": n / 1024, "": n, "M": n, "G": n * 1024, "T": n * 1024 * 1024}[unit]
        if mib < 1:
            raise _Bad(f"too small: {shown(v)}")
    if mib > MAX_MEMORY_MB:
        raise _Bad(f"more than {MAX_MEMORY_MB // (1024 * 1024)}T: {shown(v)}")
    return int(mib)


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise _Bad(f"expected one of {', '.join(choices)}, got {shown(v)}")
        return v

    return check


def _kind(v: Any) -> str:
    if isinstance(v, dict | list | tuple | set | frozenset):
        return shown(v)
    return f"{type(v).__name__} {shown(v)}"


def _option_map(v: Any) -> dict[str, str]:
    """QEMU sub-options (`accel_opts`, `machine_opts`): name -> string or number. A
    comma would start another option, so neither side may hold one."""
    if not isinstance(v, dict):
        raise _Bad(f"expected a mapping of option names to values, got {_kind(v)}")
    out = {}
    for key, value in v.items():
        if not isinstance(key, str) or not _OPTION_KEY.fullmatch(key):
            raise _Bad(f"{shown(key)}: an option name is letters, digits and _ . - only")
        if isinstance(value, bool) or not isinstance(value, str | int) or (
                isinstance(value, str) and (not value or "," in value or len(value) > 256)):
            raise _Bad(f"{key}: expected a string without commas or a whole number, got "
                       f"{shown(value)} (quote on, off, yes and no)")
        out[key] = str(value)
    return out


# --- the walker ---------------------------------------------------------------


class _Checker:
    """Collects issues for one file while its objects are read."""

    def __init__(self, file: Path) -> None:
        self.file = str(file)
        self.issues: list[ConfigIssue] = []

    def issue(self, line: int, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, line, key, message))

    def mapping(self, value: Any, key: str, line: int) -> _Map | None:
        if not isinstance(value, dict):
            self.issue(line, key or "(top level)", f"expected a mapping, got {_kind(value)}")
            return None
        return _Map(self, value, key)

    def items(self, m: _Map, key: str) -> list[tuple[str, int, Any]]:
        """The items of list `key` of `m` as (key path, line, value)."""
        value = m.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.issue(m.line_of(key), m.path(key), f"expected a list, got {_kind(value)}")
            return []
        lines = value.item_lines if isinstance(value, LineList) else [m.line_of(key)] * len(value)
        return [(f"{m.path(key)}[{i}]", lines[i], v) for i, v in enumerate(value)]

    def named(self, m: _Map, key: str, allowed: Sequence[str],
              what: str) -> list[tuple[_Map, str]]:
        """The mappings of list `key` of `m` (milestones, payload steps), each checked for
        its `allowed` keys and a `name` unique in the list, as (mapping, name)."""
        out: list[tuple[_Map, str]] = []
        seen: set[str] = set()
        for path, line, value in self.items(m, key):
            row = self.mapping(value, path, line)
            if row is None:
                continue
            row.keys(allowed, ("name",))
            name = row.get("name", _str, "")
            if name in seen:
                self.issue(row.line_of("name"), row.path("name"),
                           f"duplicate {what} name {shown(name)}")
            seen.add(name)
            out.append((row, name))
        return out


class _Map:
    def __init__(self, checker: _Checker, data: dict, prefix: str) -> None:
        self.c = checker
        self.data = data
        self.prefix = prefix

    @property
    def line(self) -> int:
        return getattr(self.data, "line", 0)

    def line_of(self, key: str) -> int:
        return self.data.line_of(key) if isinstance(self.data, LineDict) else 0

    def path(self, key: Any) -> str:
        return f"{self.prefix}.{key_text(key)}" if self.prefix else key_text(key)

    def keys(self, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        for k in self.data:
            if k not in allowed:
                self.c.issue(
                    self.line_of(k), self.path(k),
                    f"unknown key (allowed here: {', '.join(allowed)})",
                )
        for k in required:
            if k not in self.data:
                self.c.issue(self.line, self.path(k), "required key is missing")

    def get(self, key: str, check: Callable[[Any], Any], default: Any = None) -> Any:
        if key not in self.data:
            return default
        try:
            return check(self.data[key])
        except _Bad as exc:
            self.c.issue(self.line_of(key), self.path(key), str(exc))
            return default

    def sub(self, key: str) -> _Map | None:
        if key not in self.data:
            return None
        return self.c.mapping(self.data[key], self.path(key), self.line_of(key))

    def str_list(self, key: str, check: Callable[[Any], Any] = _str) -> list[Any] | None:
        """A list of strings; a single string is taken as a list of one."""
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.c.issue(self.line_of(key), self.path(key), f"expected a list, got {_kind(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            line = value.line_of(i) if isinstance(value, LineList) else self.line_of(key)
            try:
                out.append(check(item))
            except _Bad as exc:
                self.c.issue(line, f"{self.path(key)}[{i}]", str(exc))
        return out


def quirk(q: _Map, name: str) -> Quirk | None:
    """One quirk definition (a guest's or matrix's `quirk_defs`, or data/quirks.yaml),
    every field checked; None when any is wrong (the issues are recorded)."""
    before = len(q.c.issues)
    q.keys(Quirk.KEYS)
    lists = {key: tuple(q.str_list(key) or ()) for key in ("append", "cpu_flags", "qemu_args")}
    opts = {key: q.get(key, _option_map, {}) for key in ("accel_opts", "machine_opts")}
    built = Quirk(name=name, description=q.get("description", _text, ""),
                  cpu=q.get("cpu", _str), machine=q.get("machine", _str),
                  vcpus=q.get("vcpus", _vcpus), **lists, **opts)
    return built if len(q.c.issues) == before else None


def _open(path: Path) -> tuple[_Checker, _Map]:
    """Parse `path`; its top level must be a mapping (an empty file is an empty one)."""
    c = _Checker(path)
    try:
        data = load_file(path)
    except YamlError as exc:
        raise ConfigError([ConfigIssue(str(path), exc.line, "(file)", exc.message)]) from None
    if data is None:
        data = LineDict()
        data.line = 1
    m = c.mapping(data, "", getattr(data, "line", 1))
    if m is None:
        raise ConfigError(c.issues)
    return c, m
