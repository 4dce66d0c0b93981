"""A backend's host checks: device nodes, files, programs, sysctls and commands.

What each backend needs on each host OS is data (`checks:` in
data/backends.yaml: `/dev/nvmm` on NetBSD, `vmctl status` and `/dev/vmm`
on OpenBSD, `kldstat -q -m vmm` on FreeBSD, `kern.hv_support` on macOS,
the Hypervisor Platform feature on Windows); this module only runs them.
Every look at the host goes through a `HostIO`, so the tests feed the
recorded outputs of those tools (tests/data/probes/) to the same code
that reads the real ones. A failing check says what failed and what the
porter does about it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ..model import HostCheck

AVAILABLE, UNUSABLE, MISSING, UNKNOWN = "available", "unusable", "missing", "unknown"


@dataclass(frozen=True)
class Ran:
    """A command's exit status (None: it did not run) and its stdout then stderr."""

    status: int | None
    output: str


class HostIO:
    """The real host: programs on PATH, files, device nodes. Tests pass their own."""

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def run(self, argv: Sequence[str], timeout: float = 15) -> Ran:
        path = self.which(argv[0])
        if path is None:
            return Ran(None, f"{argv[0]} not found on PATH")
        try:
            proc = subprocess.run([path, *argv[1:]], capture_output=True, text=True,
                                  errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Ran(None, f"{' '.join(argv)} does not run: {exc}")
        return Ran(proc.returncode, proc.stdout + proc.stderr)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def open_error(self, path: str, write: bool) -> str | None:
        """Why `path` cannot be opened (read-write when `write`), or None."""
        try:
            fd = os.open(path, (os.O_RDWR if write else os.O_RDONLY)
                         | getattr(os, "O_CLOEXEC", 0))
            os.close(fd)
        except OSError as exc:
            return exc.strerror or str(exc)
        return None


REAL = HostIO()


@dataclass(frozen=True)
class Finding:
    """The checks' verdict: `status` None when none failed; notes from the undecided."""

    status: str | None = None
    reason: str = ""
    notes: tuple[str, ...] = ()

    def suffix(self) -> str:
        return "".join(f"; {n}" for n in self.notes)


def run_checks(checks: Sequence[HostCheck], io: HostIO | None = None) -> Finding:
    """The checks in order; the first that fails decides."""
    io = io or REAL
    notes: list[str] = []
    for check in checks:
        status, reason = _CHECKERS[check.kind](check, io)
        if status == UNKNOWN:
            notes.append(reason)
        elif status is not None:
            return Finding(status, reason, tuple(notes))
    return Finding(None, "", tuple(notes))


Outcome = tuple[str | None, str]


def _with_fix(what: str, fix: str) -> str:
    return f"{what}: {fix}" if fix else what


def _device(c: HostCheck, io: HostIO) -> Outcome:
    path = c.target[0]
    win32_device = path.startswith("\\\\.\\")  # \\.\HAX has no file to look for
    if not win32_device and not io.exists(path):
        return MISSING, _with_fix(f"{path} missing", c.fix)
    if c.access == "exists":
        return None, ""
    error = io.open_error(path, write=c.access == "rw")
    if error is None:
        return None, ""
    mode = "read-write" if c.access == "rw" else "for reading"
    if "ermission" in error or "denied" in error.lower():
        return UNUSABLE, _with_fix(f"{path} cannot be opened {mode}: {error}", c.denied)
    if win32_device or error in _NO_DRIVER:
        return MISSING, _with_fix(f"{path} cannot be opened {mode}: {error}", c.fix)
    return UNUSABLE, f"{path} cannot be opened {mode}: {error}"


# a node whose driver is not attached: ENXIO (BSD, Linux wording) and ENODEV
_NO_DRIVER = ("Device not configured", "No such device or address", "No such device",
              "Operation not supported by device")


def _file(c: HostCheck, io: HostIO) -> Outcome:
    path = c.target[0]
    return (None, "") if io.exists(path) else (MISSING, _with_fix(f"{path} not found", c.fix))


def _program(c: HostCheck, io: HostIO) -> Outcome:
    name = c.target[0]
    found = io.which(name)
    return (None, "") if found else (MISSING, _with_fix(f"{name} not found on PATH", c.fix))


def _answer(c: HostCheck, output: str, said: str) -> Outcome | None:
    """The first known answer the output carries, with the line that carries it."""
    for a in c.answers:
        if m := a.pattern.search(output):
            start = output.rfind("\n", 0, m.start()) + 1
            end = output.find("\n", m.end())
            line = output[start:end if end >= 0 else None].strip()[:200]
            return a.status, f"`{said}`: {line}: {a.reason}"
    return None


def _sysctl(c: HostCheck, io: HostIO) -> Outcome:
    name = c.target[0]
    ran = io.run(["sysctl", "-n", name], timeout=5)
    if ran.status is None:
        return MISSING, f"cannot read sysctl {name}: {ran.output}"
    if (known := _answer(c, ran.output, f"sysctl -n {name}")) is not None:
        return known
    value = ran.output.strip()
    if ran.status == 0 and value == c.expect:
        return None, ""
    return MISSING, _with_fix(f"sysctl {name} is {value or 'unset'}, needs {c.expect}", c.fix)


def _command(c: HostCheck, io: HostIO) -> Outcome:
    ran = io.run(c.target)
    if ran.status is None:
        return (None, "") if c.optional else (MISSING, ran.output)  # fix: for its answers
    if (known := _answer(c, ran.output, c.what)) is not None:
        return known
    if ran.status == 0 and (not c.expect or re.search(c.expect, ran.output, re.M)):
        return None, ""
    tail = (ran.output.strip().splitlines() or [""])[-1][:160]
    said = f"`{c.what}` exited {ran.status}" + (f": {tail}" if tail else "")
    return c.fails_as, _with_fix(said, c.fix)


_CHECKERS = {"device": _device, "file": _file, "program": _program, "sysctl": _sysctl,
             "command": _command}
