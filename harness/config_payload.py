"""The guest file's `payload:` steps and `payload_dir:`, checked like the rest of it
(every problem as `file:line: key: message`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .model import CASE_STATUSES, RESULT_FORMATS, Drive, Milestone, PayloadStep
from .validate import _Bad, _Checker, _Map, _one_of, _positive, _regex, _str, _text, shown

DEFAULT_TO = "/tmp/payload"
STEP_KEYS = ("name", "run", "after", "timeout", "results", "shell", "until", "pattern",
             "statuses", "file", "disk")
SHELLS = ("posix", "raw")
DEFAULT_STEP_TIMEOUT = 300.0


def _one_line(v: Any) -> str:
    text = _text(v)
    if "\n" in text.rstrip("\n") or "\r" in text:
        raise _Bad("one command line (chain commands with ; or &&, or run a script)")
    return text.rstrip("\n")


def payload_steps(c: _Checker, m: _Map, milestones: list[Milestone], console: str = "serial",
                  drives: Sequence[Drive] = ()) -> list[PayloadStep]:
    out: list[PayloadStep] = []
    last = milestones[-1].name if milestones else None
    if "payload" in m.data and console != "serial":
        c.issue(m.line_of("payload"), m.path("payload"), "steps are typed and read on a serial "
                "console (console: serial)")
    for s, name in c.named(m, "payload", STEP_KEYS, "step"):
        after = s.get("after", _str)
        if after is not None and after != last:
            c.issue(s.line_of("after"), s.path("after"), f"{shown(after)}: payload steps run "
                    f"after the last milestone ({shown(last)}); make that one the last")
        shell = s.get("shell", _one_of(*SHELLS), "posix")
        results = s.get("results", _one_of(*RESULT_FORMATS), "none")
        run = s.get("run", _one_line)
        until = s.get("until", _regex)
        if shell == "posix" and run is None:
            c.issue(s.line, s.path("run"), "a posix step types a command: give `run:` "
                    "(or `shell: raw` to only read what the guest prints)")
        if shell == "posix" and until is not None:
            c.issue(s.line_of("until"), s.path("until"), "only for `shell: raw` steps "
                    "(a posix step ends at its own end marker)")
        if "file" in s.data and shell != "posix":
            c.issue(s.line_of("file"), s.path("file"), "files come back through a posix "
                    "shell (base64 between markers)")
        disk = s.get("disk", _str)
        writable = [d.image for d in drives if not d.readonly]
        if disk is not None and disk not in writable:
            c.issue(s.line_of("disk"), s.path("disk"), f"{shown(disk)}: the results disk is a "
                    "writable drive of the guest (`drives:`: "
                    f"{', '.join(writable) or 'none'})")
        if disk is not None and "file" not in s.data:
            c.issue(s.line_of("disk"), s.path("disk"), "names the disk a step's `file:` is on "
                    "(the member of the tar archive the step writes there)")
        pattern = s.get("pattern", _regex)
        if pattern is not None and "name" not in pattern.groupindex:
            c.issue(s.line_of("pattern"), s.path("pattern"),
                    "needs a named group `name` (and `status`): (?P<name>...)")
        if results != "lines" and ("pattern" in s.data or "statuses" in s.data):
            c.issue(s.line_of("pattern") or s.line_of("statuses"), s.path("results"),
                    "pattern and statuses are for `results: lines`")
        out.append(PayloadStep(
            name=name, run=run, timeout=s.get("timeout", _positive, DEFAULT_STEP_TIMEOUT),
            results=results, shell=shell, until=until, pattern=pattern,
            statuses=_statuses(c, s), file=s.get("file", _str), disk=disk))
    return out


def _statuses(c: _Checker, s: _Map) -> tuple[tuple[str, str], ...]:
    st = s.sub("statuses")
    if st is None:
        return ()
    allowed = tuple(x for x in CASE_STATUSES if x != "xfail")
    out = []
    for word, value in st.data.items():
        if not isinstance(word, str) or not word:
            c.issue(st.line_of(word), st.path(word), "a status word is a non-empty string")
            continue
        if value not in allowed:
            c.issue(st.line_of(word), st.path(word),
                    f"expected one of {', '.join(allowed)}, got {shown(value)}")
            continue
        out.append((word, value))
    return tuple(out)


def payload_to(m: _Map) -> str:
    """`payload_to:` where the payload folder goes in the guest (an absolute path)."""
    return m.get("payload_to", _absolute, DEFAULT_TO)


def _absolute(v: Any) -> str:
    text = _str(v)
    if not text.startswith("/") or any(c in text for c in "\n'\"$`\\"):
        raise _Bad(f"expected an absolute path without quotes or $, got {shown(text)}")
    return text


def payload_dir(c: _Checker, m: _Map, base: Path) -> Path | None:
    """`payload_dir:` a folder beside the guest file, typed into the guest over its
    console before the steps run (payload/deliver.py)."""
    rel = m.get("payload_dir", _str)
    if rel is None:
        return None
    path = (base / rel).resolve()
    if not path.is_dir():
        c.issue(m.line_of("payload_dir"), m.path("payload_dir"),
                f"{shown(rel)}: no such folder (relative to the guest file)")
        return None
    if "payload" not in m.data:
        c.issue(m.line_of("payload_dir"), m.path("payload_dir"),
                "a payload folder needs `payload:` steps that use it")
    return path
