"""A corpus of damaged results.json files, as (name, bytes, JSON pointer or None).

Generated in code from one valid run of two cells: truncations, wrong
encodings, hostile numbers and nesting, a wrong type for every field the
harness reads, contract breaks (verdicts, schema version, duplicate and
escaping cell ids). The pointer, when given, is where the refusal must point.
"""

from __future__ import annotations

import copy
import json
from typing import Any

RUN_ID = "20261121T043000Z-1a2b"
SHA = "ab" * 32


def cell(guest: str, verdict: str = "pass") -> dict[str, Any]:
    return {
        "id": f"{guest}/echo/bios", "guest": guest, "backend": "echo", "firmware": "bios",
        "verdict": verdict, "score": 1.0 if verdict == "pass" else 0.0, "duration_s": 5.2,
        "milestones": [{"name": "kernel", "reached": True, "t": 0.81},
                       {"name": "init", "reached": verdict == "pass", "t": 1.5}],
        "failure": None, "reason": None, "underlying": None, "expect": None, "quirks": [],
        "attempts": 1, "command": ["python3", "echo.py"],
        "images": {"kernel": {"sha256": SHA, "source": "file:/tmp/k"}},
        "artifacts": {"console": f"cells/{guest}/echo-bios/console.log"},
        "warnings": [], "vmm": {"name": "echo"}, "env": {}, "reruns": ["pass"], "flaky": False,
    }


def valid() -> dict[str, Any]:
    return {"schema": 1, "run_id": RUN_ID, "started": "2026-11-21T04:30:00Z",
            "finished": "2026-11-21T04:31:00Z",
            "host": {"os": "Linux", "arch": "x86_64", "cpu": "x", "qemu": "7.2.22",
                     "harness": "0.1.0"},
            "guests": {"g1": {"name": "g1", "os": "linux", "arch": "x86_64", "version": ""}},
            "cells": [cell("g1"), cell("g2", "fail")]}


def dumps(data: Any) -> bytes:
    return json.dumps(data, indent=1).encode()


def changed(pointer: str, value: Any) -> dict[str, Any]:
    """The valid run with the value at `pointer` replaced (or removed, for ...)."""
    data = valid()
    *path, last = [int(p) if p.isdigit() else p for p in pointer.strip("/").split("/")]
    node: Any = data
    for p in path:
        node = node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


# A value of the wrong type for each field the harness reads (not the free-form ones).
WRONG_TYPES = {
    "/schema": "1", "/run_id": 5, "/started": None, "/finished": 17, "/host": [],
    "/host/harness": 1, "/host/os": None, "/cells": {}, "/cells/0": "g1/echo/bios",
    "/cells/0/id": None, "/cells/0/guest": 1, "/cells/0/backend": ["echo"],
    "/cells/0/firmware": 0, "/cells/0/verdict": True, "/cells/0/score": "1.0",
    "/cells/0/duration_s": [5], "/cells/0/milestones": {"kernel": 1},
    "/cells/0/milestones/0": "kernel", "/cells/0/milestones/0/name": 3,
    "/cells/0/milestones/0/reached": "yes", "/cells/0/milestones/0/t": "0.8",
    "/cells/0/failure": "panic", "/cells/0/reason": 4, "/cells/0/underlying": 9,
    "/cells/0/expect": "known", "/cells/0/quirks": "noapic", "/cells/0/command/0": None,
    "/cells/0/attempts": 1.5, "/cells/0/command": "qemu -m 1",
    "/cells/0/images": [], "/cells/0/images/kernel": "abc",
    "/cells/0/images/kernel/sha256": 12, "/cells/0/artifacts": "x",
    "/cells/0/warnings": {}, "/cells/0/reruns/0": 1, "/cells/0/flaky": "no",
}
MISSING = ["/run_id", "/cells", "/host", "/started", "/schema", "/cells/0/verdict",
           "/cells/0/id", "/cells/0/milestones", "/cells/0/milestones/0/reached",
           "/host/harness"]


def corpus() -> list[tuple[str, bytes, str | None]]:
    good = dumps(valid())
    out: list[tuple[str, bytes, str | None]] = [
        ("empty", b"", None), ("blank", b" \n\t\n", None),
        ("list", b"[]", "/"), ("null", b"null", "/"), ("number", b"0", "/"),
        ("string", b'"results"', "/"), ("empty object", b"{}", "/"),
        ("not json", b"results: yes\n", None), ("html", b"<html></html>", None),
        ("bom", b"\xef\xbb\xbf" + good, None), ("nul byte", good[:40] + b"\0" + good[40:], None),
        ("latin-1", good.replace(b'"g1"', b'"g\xe91"', 1), None),
        ("utf-16", json.dumps(valid()).encode("utf-16"), None),
        ("invalid utf-8 in a string", good.replace(b"Linux", b"Li\xff\xfeux"), None),
        ("deep list", b"[" * 100_000, None), ("deep closed list", b"[" * 5000 + b"]" * 5000, None),
        ("deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, None),
        ("deep artifacts", dumps(changed("/cells/0/artifacts",
                                          json.loads("[" * 200 + "]" * 200))), None),
        ("NaN score", good.replace(b'"score": 1.0', b'"score": NaN', 1), None),
        ("Infinity duration", good.replace(b'"duration_s": 5.2', b'"duration_s": Infinity', 1),
         None),
        ("-Infinity time", good.replace(b'"t": 0.81', b'"t": -Infinity', 1), None),
        ("1e999 score", good.replace(b'"score": 1.0', b'"score": 1e999', 1), None),
        ("5000-digit attempts", good.replace(b'"attempts": 1', b'"attempts": 1' + b"0" * 5000, 1),
         None),
        ("huge score", dumps(changed("/cells/0/score", 1e300)), "/cells/0/score"),
        ("negative duration", dumps(changed("/cells/0/duration_s", -1)), "/cells/0/duration_s"),
        ("unknown verdict", dumps(changed("/cells/0/verdict", "passed")), "/cells/0/verdict"),
        ("unknown underlying", dumps(changed("/cells/0/underlying", "ok")),
         "/cells/0/underlying"),
        ("unknown firmware", dumps(changed("/cells/0/firmware", "coreboot")),
         "/cells/0/firmware"),
        ("schema 999", dumps(changed("/schema", 999)), "/schema"),
        ("schema 0", dumps(changed("/schema", 0)), "/schema"),
        ("bad run id", dumps(changed("/run_id", "../../x")), "/run_id"),
        ("bad sha256", dumps(changed("/cells/0/images/kernel/sha256", "zz")),
         "/cells/0/images/kernel/sha256"),
    ]
    for cut in (1, 2, 10, len(good) // 3, len(good) // 2, len(good) - 20, len(good) - 2):
        out.append((f"truncated at {cut}", good[:cut], None))
    for pointer, value in WRONG_TYPES.items():
        out.append((f"wrong type {pointer}", dumps(changed(pointer, value)), pointer))
    for pointer in MISSING:
        parent = pointer.rsplit("/", 1)[0] or "/"
        out.append((f"missing {pointer}", dumps(changed(pointer, ...)), parent))
    dup = valid()
    dup["cells"].append(copy.deepcopy(dup["cells"][0]))
    out.append(("duplicate cell", dumps(dup), "/cells/2/id"))
    for field, name in (("guest", "../../../etc"), ("backend", "echo/../.."),
                        ("guest", "a b"), ("guest", "$(touch x)")):
        bad = valid()
        bad["cells"][0][field] = name
        bad["cells"][0]["id"] = "/".join(bad["cells"][0][k]
                                         for k in ("guest", "backend", "firmware"))
        out.append((f"escaping {field} {name}", dumps(bad), f"/cells/0/{field}"))
    mismatch = valid()
    mismatch["cells"][0]["id"] = "g2/echo/bios"
    out.append(("id not guest/backend/firmware", dumps(mismatch), "/cells/0/id"))
    return out
