"""Reading a results.json that may be damaged, before anything uses it.

`report`, `merge`, `repro`, `--resume` and the history read run folders that
a full disk, a crash, a hand edit or an attacker may have left behind. One
reader checks the bytes (UTF-8, JSON, no NaN/Infinity, bounded nesting), the
shape (the shipped `data/results.schema.json`, interpreted here for the few
keywords it uses, so the runtime needs no schema library), and what the
schema cannot say (cell ids unique, names safe as folder names). Every
refusal is `path: /json/pointer: what is wrong`.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..files import SAFE_NAME_RULE, safe_name

SCHEMA_VERSION = 1
MAX_DEPTH = 64  # the harness writes 5 levels; deeper is damage, and would recurse later
MAX_BYTES = 1 << 30
MAX_DIGITS = 30  # attempts, counts: an integer longer than this is damage
NAME_KEYS = ("guest", "backend", "firmware")
MAX_ERRORS = 5  # shown per file; the rest are counted
# The keywords this reader understands; a schema using another fails its test.
KEYWORDS = frozenset({"$schema", "$id", "title", "description", "$defs", "$ref", "type",
                      "const", "enum", "pattern", "required", "properties",
                      "additionalProperties", "items", "anyOf", "minimum", "maximum"})


class ResultsError(ValueError):
    """A results.json that cannot be used; the message names the file and the place."""


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("harness").joinpath("data/results.schema.json")
                      .read_text(encoding="utf-8"))


def read_results(path: Path) -> dict[str, Any]:
    """The checked contents of the results.json at `path`; ResultsError if damaged.
    OSError (unreadable file) passes through for the caller to word."""
    with path.open("rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ResultsError(f"{path}: larger than {MAX_BYTES >> 20} MiB; not a results.json")
    try:
        data = parse(raw)
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    found = check(data)
    if found:
        more = f"\n{path}: … and {len(found) - MAX_ERRORS} more" if len(found) > MAX_ERRORS else ""
        raise ResultsError("\n".join(f"{path}: {p}: {m}" for p, m in found[:MAX_ERRORS]) + more)
    return data


def parse(raw: bytes) -> Any:
    """The JSON in `raw`; ResultsError saying why the bytes cannot be a results.json."""
    if not raw.strip():
        raise ResultsError("empty file (the run never wrote it, or a full disk truncated it)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
                           ) from None
    deep = f"nested too deeply to be a results.json (more than {MAX_DEPTH} levels)"
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                          parse_int=_short_int)
    except json.JSONDecodeError as exc:
        stripped = text.strip()
        cut = ("; the file ends early (truncated)" if stripped.startswith("{")
               and not stripped.endswith("}") else "")
        raise ResultsError(f"line {exc.lineno} column {exc.colno}: not JSON: "
                           f"{exc.msg.removesuffix(' at')}{cut}") from None
    except RecursionError:
        raise ResultsError(deep) from None
    except ValueError as exc:  # NaN, Infinity, 1e999, a 5000-digit integer
        raise ResultsError(f"a number a results.json cannot hold: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise ResultsError(deep)
    return data


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a {len(text)}-digit integer")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} (only finite numbers)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} (only finite numbers)")
    return value


def _depth(data: Any) -> int:
    """How deeply `data` nests, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return deepest


def check(data: Any) -> list[tuple[str, str]]:
    """(JSON pointer, problem) for each way `data` breaks the results contract."""
    if isinstance(data, dict) and "schema" in data:
        version = data["schema"]
        if type(version) is int and version > SCHEMA_VERSION:
            return [("/schema", f"version {version} was written by a newer harness; this one "
                                f"reads version {SCHEMA_VERSION}")]
    found = list(_validate(data, schema(), ""))
    return found + [f for f in _contract(data) if f not in found]


def _contract(data: Any) -> list[tuple[str, str]]:
    """What the schema cannot say: cell ids unique (but in the replays of `harness repro`)
    and made of safe names (they become folders: a `../` must never leave the run
    folder). Looks only at what has the right type, so that it adds to the schema's
    findings rather than repeating them."""
    if not isinstance(data, dict):
        return []
    found = []
    if isinstance(data.get("run_id"), str) and not safe_name(data["run_id"]):
        found.append(("/run_id", f"{data['run_id']!r}: a run id is {SAFE_NAME_RULE} "
                                 "characters"))
    cells = data.get("cells")
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells if isinstance(cells, list) else []):
        if not isinstance(cell, dict):
            continue
        parts = [cell.get(k) for k in NAME_KEYS]
        bad = next((k for k, p in zip(NAME_KEYS, parts, strict=True)
                    if isinstance(p, str) and not safe_name(p)), None)
        cell_id = cell.get("id")
        if bad is not None:
            found.append((f"/cells/{i}/{bad}", f"{cell[bad]!r} is not a name "
                                               f"({SAFE_NAME_RULE} characters)"))
        elif not all(isinstance(p, str) for p in parts) or not isinstance(cell_id, str):
            continue
        elif cell_id != "/".join(parts):
            found.append((f"/cells/{i}/id", f"id {cell_id!r} is not guest/backend/firmware"))
        elif cell_id in seen and "repro_of" not in data:  # `repro --times N`: N replays
            found.append((f"/cells/{i}/id", f"{cell_id!r} is also /cells/{seen[cell_id]}; "
                                            "a run has each cell once"))
        else:
            seen[cell_id] = i
    return found


# --- the schema keywords this harness uses ------------------------------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, dict | list) else (
        "an object" if isinstance(value, dict) else "an array")
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _validate(value: Any, rule: dict[str, Any], where: str):
    """Yield (pointer, problem) for `value` against one schema node."""
    if "$ref" in rule:
        yield from _validate(value, _resolve(rule["$ref"]), where)
    here = where or "/"
    if "type" in rule:
        types = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
        if not any(_TYPES[t](value) for t in types):
            yield here, f"{_show(value)} is not {' or '.join(types)}"
            return
    if "const" in rule and not (value == rule["const"] and type(value) is type(rule["const"])):
        yield here, f"{_show(value)}: expected {_show(rule['const'])}"
        return
    if "enum" in rule and not (isinstance(value, str) and value in rule["enum"]):
        yield here, f"{_show(value)} is not one of {', '.join(rule['enum'])}"
        return
    if "anyOf" in rule:
        tries = [list(_validate(value, r, where)) for r in rule["anyOf"]]
        if all(tries):
            # a branch whose type fits says more than "is not null"
            prefix = f"{_show(value)} is not "
            types = [t[0][1].removeprefix(prefix) for t in tries
                     if len(t) == 1 and t[0][0] == here and t[0][1].startswith(prefix)]
            deep = [t for t in tries if not (len(t) == 1 and t[0][1].startswith(prefix)
                                             and t[0][0] == here)]
            yield from deep[0] if deep else [(here, prefix + " or ".join(types))]
            return
    if isinstance(value, str) and "pattern" in rule and not re.search(rule["pattern"], value):
        yield here, f"{_show(value)} does not match {rule['pattern']}"
    if _TYPES["number"](value):
        if "minimum" in rule and value < rule["minimum"]:
            yield here, f"{_show(value)} is below {rule['minimum']}"
        if "maximum" in rule and value > rule["maximum"]:
            yield here, f"{_show(value)} is above {rule['maximum']}"
    if isinstance(value, dict):
        for key in rule.get("required", []):
            if key not in value:
                yield here, f"{key!r} is missing"
        props = rule.get("properties", {})
        extra = rule.get("additionalProperties")
        for key, item in value.items():
            sub = f"{where}/{_escape(key)}"
            if key in props:
                yield from _validate(item, props[key], sub)
            elif isinstance(extra, dict):
                yield from _validate(item, extra, sub)
    if isinstance(value, list) and "items" in rule:
        for i, item in enumerate(value):
            yield from _validate(item, rule["items"], f"{where}/{i}")


def _escape(key: str) -> str:
    """A JSON pointer token (RFC 6901), made printable."""
    return key.replace("~", "~0").replace("/", "~1").encode("unicode_escape").decode()
