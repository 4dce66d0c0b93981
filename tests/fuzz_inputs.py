"""The fuzz suite's machinery: run the command line on an input, bounded in time and memory,
and check the property every input must keep; the valid guest and matrix files that inputs
are mutations of; hostile values.

Two ways to run the command line, both in a process of their own (a hang is killed, a crash
cannot take pytest down): `run_process` starts `python -m tests.fuzz_entry` (a real process,
for the corpus), `run_forked` forks this process and calls `harness.cli.main` in the child
(no interpreter start-up: cheap enough for many hypothesis examples).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOUND_S = 20.0  # every input finishes within this, or the test fails naming it
MEMORY = 2 << 30  # bytes of address space a run may have
ALLOWED = (0, 1, 2)  # DESIGN.md: 0 no cell failed, 1 one did, 2 usage or configuration error


@dataclass
class Outcome:
    argv: list[str]
    code: int | None  # None: still running at the bound, killed
    out: bytes
    err: bytes

    def text(self) -> str:
        return (self.out + self.err).decode("utf-8", "replace")


def _limit_memory(extra: int = 0) -> None:
    limit = MEMORY + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def environment(cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
               HARNESS_CACHE=str(cache), XDG_CACHE_HOME=str(cache / "xdg"))
    env.pop("COLUMNS", None)
    return env


def run_process(argv: list[str], cwd: Path, cache: Path, bound: float = BOUND_S) -> Outcome:
    """`harness ARGV` as a real process (with the test backends), killed at `bound`."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz_entry", *argv], cwd=cwd,
                            env=environment(cache), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=bound)
        return Outcome(argv, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        return Outcome(argv, None, out, err)


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


_COMMAND_MODULES = ("harness.cli", "harness.catalog", "harness.canary", "harness.config",
                    "harness.scheduler", "harness.progress", "harness.reproduce",
                    "harness.transcripts", "harness.results.report", "harness.results.merge",
                    "harness.results.after", "harness.backends.probe", "harness.images.store",
                    "harness.images.manage", "tests.fuzz_entry")


@functools.cache
def _warm() -> None:
    """Import what the commands import, once, here: each forked child then starts warm."""
    for name in _COMMAND_MODULES:
        importlib.import_module(name)


def run_forked(argv: list[str], cwd: Path, cache: Path, bound: float = BOUND_S) -> Outcome:
    """`harness.cli.main(ARGV)` in a forked child: its own process group, its own stdout and
    stderr, at most MEMORY more address space than this process has, killed at `bound`.
    An uncaught exception is printed as Python would print it."""
    _warm()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        extra = _vm_size()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _child(argv, cwd, cache, out.fileno(), err.fileno(), extra)
        code = _wait(pid, bound)
        out.seek(0)
        err.seek(0)
        return Outcome(argv, code, out.read(), err.read())


def _child(argv: list[str], cwd: Path, cache: Path, out: int, err: int, extra: int) -> None:
    code = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                          closefd=False)
        os.environ.update(environment(cache))
        os.chdir(cwd)
        _limit_memory(extra)
        from tests.fuzz_entry import register

        register()
        from harness.cli import main

        code = main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            from harness.cli import _kill_all

            _kill_all()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def _wait(pid: int, bound: float) -> int | None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    _kill_group(pid)
    os.waitpid(pid, 0)
    return None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def first_line_of_trouble(err: bytes) -> str:
    """The exception line of a traceback (its last line), else the first line of stderr."""
    lines = err.decode("utf-8", "replace").strip().splitlines()
    if "Traceback" in err.decode("utf-8", "replace"):
        return next((x for x in reversed(lines) if x and not x.startswith(" ")), lines[-1])
    return lines[0] if lines else ""


def check(o: Outcome, what: object, codes: tuple[int, ...] = ALLOWED) -> None:
    """The property every input keeps: it finishes within the bound, with an allowed exit
    status, no traceback, and a message when it did not succeed."""
    where = f"input {what!r}, argv {o.argv!r}"
    assert o.code is not None, f"hang: still running after {BOUND_S:.0f} s, killed; {where}"
    err = o.err.decode("utf-8", "replace")
    assert "Traceback" not in err, f"{first_line_of_trouble(o.err)}; {where}\n{err[-3000:]}"
    assert o.code in codes, f"exit status {o.code}, wanted one of {codes}; {where}\n" \
        f"{o.text()[-1500:]}"
    if o.code == 2:
        assert err.strip(), f"exit status 2 without a message; {where}"
    elif o.code != 0:
        assert o.text().strip(), f"exit status {o.code} without a message; {where}"


# --- valid inputs, to mutate ------------------------------------------------------------

def echo_guest(gid: str, kernel: Path, console: str = "Linux version 6.1\\nRun /init as "
               "init process\\n") -> dict[str, Any]:
    """A guest the `echo` backend runs: its console is `console`."""
    return {
        "id": gid, "name": "echo guest", "os": "linux", "arch": "x86_64", "version": "1",
        "tags": ["fuzz"], "notes": "a guest for the fuzz suite",
        "images": {"kernel": {"file": str(kernel)}},
        "boot": {"kernel": "kernel", "cmdline": console},
        "firmware": ["bios"], "memory": "64M", "vcpus": 1, "console": "serial",
        "milestones": [{"name": "kernel", "pattern": r"Linux version \d", "timeout": 10},
                       {"name": "init", "pattern": "Run /init", "send": "x\n"}],
        "failures": [{"name": "panic", "pattern": "Kernel panic - not syncing"},
                     {"name": "oops", "pattern": "Oops", "fatal": False}],
        "expect": [{"backend": "tcg", "reason": "known", "link": "https://example.org/1"}],
        "quirks": {"tcg": ["noapic"]},
        "quirk_defs": {"q": {"description": "d", "append": ["x"], "vcpus": 1,
                             "accel_opts": {"k": "v"}}},
        "timeouts": {"total": 20, "stall": 10},
    }


def echo_matrix(backend: str = "echo") -> dict[str, Any]:
    return {
        "guests": ["*"], "backends": [backend], "firmware": ["bios"],
        "defaults": {"timeouts": {"total": 20, "stall": 10}, "retries": 0, "memory": "64M"},
        "exclude": [{"guest": "nothing-*", "backend": backend}],
        "expect": [{"guest": "nothing", "backend": backend, "reason": "r",
                    "link": "https://example.org/2"}],
        "jobs": 1,
    }


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000)


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a loaded YAML document (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            found += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += paths(v, (*prefix, i))
    return found


def mutate(data: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    """A copy of `data` with the value at `path` replaced (or deleted)."""
    import copy

    data = copy.deepcopy(data)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


HOSTILE_STRINGS = [
    "", " ", "../../../x", "..", "/", "x/y", "d`touch X`$(touch Y)", "$(touch pwned)",
    "a\nb", "a\rb", "\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "a\x00b", "\x07\x08", "-rf",
    "<script>alert(1)</script>", "\" onmouseover=alert(1) x=\"", "javascript:alert(1)",
    "/proc/self/mem", "/dev/zero", "99999999999999999999999T", "-5", "nan", "inf", "1e999",
    "0x10", "(a+)+$", "(x+x+)+y", "[", "(?P<", "\\", "*", "**/*", "~", "%s%n", "{}", "\u202e",
    "x" * 5000,
]

HOSTILE_NUMBERS = [0, -1, -(2 ** 63), 2 ** 63, 10 ** 30, 10 ** 400, 1e308, -1e308,
                   float("nan"), float("inf"), float("-inf"), 0.5, 1e-300, True, False]


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A 'billion laughs' value: small text, width**levels leaves once expanded."""
    rows = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "{" + ", ".join(rows) + "}"


def deep(depth: int = 100_000, kind: str = "list") -> str:
    return "[" * depth + "]" * depth if kind == "list" else "{a: " * depth + "1" + "}" * depth
