"""What both ways of reading the Debian archive share: its stanza format, the
error they raise, and how long package lists are trusted."""

from __future__ import annotations

import re
import time
from pathlib import Path

LIST_MAX_AGE = 6 * 3600  # refresh package lists older than this (seconds)
# A field at the start of a line, continued on indented lines.
_FIELD = re.compile(r"^(?P<name>[A-Za-z0-9-]+):[ \t]*(?P<value>.*(?:\n[ \t].*)*)", re.M)


def lists_age(state: Path) -> float:
    """Seconds since a fetcher's lists were last brought up to date (its `updated`
    stamp in `state`); infinite when they never were."""
    stamp = state / "updated"
    return time.time() - stamp.stat().st_mtime if stamp.exists() else float("inf")


class DebError(Exception):
    """A `deb:` source that could not be fetched or had no such file."""


def parse_fields(text: str) -> dict[str, str]:
    """The fields of the first stanza of `apt-cache show` output."""
    stanza = text.strip().split("\n\n", 1)[0]
    return {m["name"]: m["value"].strip() for m in _FIELD.finditer(stanza)}


def first_alternatives(depends: str) -> list[str]:
    """Package names from a Depends field, the first of each alternative."""
    names = []
    for group in depends.split(","):
        first = group.split("|")[0].strip()
        name = re.split(r"[\s(:]", first, maxsplit=1)[0]
        if name:
            names.append(name)
    return names
