"""Table-driven validation of YAML configuration, with file:line in every message.

A `_Checker` collects issues for one file; a `_Map` walks one mapping,
checking its keys and passing each value through a checker (a function
that converts the value or raises `_Bad` with the reason). All problems of
a file are reported at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .console.engine import load_problem
from .yamlpos import LineDict, LineList, YamlError, load_file

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MEMORY = re.compile(r"(\d+)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


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
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad(f"expected a string, got {_kind(v)}")
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
        raise _Bad(f"expected a positive number up to {MAX_SECONDS:g}, got {v!r}")
    return float(v)


def _count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Bad(f"expected a whole number >= 0, got {v!r}")
    return v


def _vcpus(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _Bad(f"expected a whole number >= 1, got {v!r}")
    return v


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
        return v
    m = _MEMORY.fullmatch(v.strip()) if isinstance(v, str) else None
    if not m:
        raise _Bad(f"expected a size such as 256M or 1G, got {v!r}")
    n, unit = int(m.group(1)), m.group(2).upper()
    mib = {"K": n / 1024, "": n, "M": n, "G": n * 1024, "T": n * 1024 * 1024}[unit]
    if mib < 1:
        raise _Bad(f"too small: {v!r}")
    return int(mib)


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise _Bad(f"expected one of {', '.join(choices)}, got {v!r}")
        return v

    return check


def _kind(v: Any) -> str:
    return {dict: "a mapping", LineDict: "a mapping", list: "a list", LineList: "a list"}.get(
        type(v), f"{type(v).__name__} {v!r}"
    )


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

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else str(key)

    def keys(self, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        for k in self.data:
            if k not in allowed:
                self.c.issue(
                    self.line_of(k), self.path(str(k)),
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
