"""Text and key names to QMP send-key combos (data in data/keymap.yaml)."""

from __future__ import annotations

import functools
import string
from importlib import resources

import yaml


class KeyNameError(ValueError):
    """An unknown key name or a character that cannot be typed."""


@functools.cache
def _keymap() -> dict:
    text = resources.files("harness").joinpath("data").joinpath("keymap.yaml").read_text()
    return yaml.safe_load(text)


def qcodes() -> frozenset[str]:
    return frozenset(_keymap()["qcodes"]) | frozenset(string.ascii_lowercase + string.digits)


def combo(name: str) -> list[str]:
    """'ctrl-alt-delete' -> ['ctrl', 'alt', 'delete'] (checked, aliases resolved)."""
    aliases = _keymap()["aliases"]
    known = qcodes()
    out = []
    for part in name.lower().split("-"):
        part = aliases.get(part, part)
        if part not in known:
            raise KeyNameError(f"unknown key {part!r} in {name!r}")
        out.append(part)
    return out


def combos_for_text(text: str) -> list[list[str]]:
    """The key combos that type `text` on a US layout ("\\n" is Return)."""
    chars = _keymap()["chars"]
    out = []
    for ch in text:
        if ch in string.ascii_lowercase or ch in string.digits:
            out.append([ch])
        elif ch in string.ascii_uppercase:
            out.append(["shift", ch.lower()])
        elif ch in chars:
            out.append(combo(chars[ch]))
        else:
            raise KeyNameError(f"cannot type {ch!r} on the screen console")
    return out
