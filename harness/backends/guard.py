"""The guard that ends a VM when the harness dies, even by SIGKILL, on any host.

    python guard.py PIDFILE [GRACE]      (the watchdog; started by `start`, not by hand)

Three mechanisms, one interface (`start` before the VMM is spawned, `in_child`
between its fork and exec, `arm` once it runs, `release` once it is gone):

- ``pdeathsig`` (Linux, the default there): the kernel sends SIGKILL to the VMM
  when the harness dies (``PR_SET_PDEATHSIG``).
- ``portable`` on POSIX (the default elsewhere, selectable on Linux so it is
  tested there): one small watchdog process per VM, in a session of its own
  (Ctrl-C, a terminal hang-up or a signal to the harness's group never reach
  it). Its stdin is a pipe whose write end only the harness holds. The VMM,
  between fork and exec, writes its process group to PIDFILE and then checks the
  harness is still its parent, so a VM never runs unless the watchdog can find
  it. ``done`` on the pipe means the harness ended the VM itself; end of file
  without it means the harness died: the watchdog sends SIGTERM to the group,
  waits GRACE seconds, sends SIGKILL and exits.
- ``portable`` on Windows: every VMM is assigned to a Job Object with
  JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE whose only handle the harness holds; when
  the harness dies the system closes it and ends every process in the job.

One watchdog per VM rather than one per run: a watchdog that cannot start is
that cell's error alone (retried like any host fault), its life is exactly the
VM's, and there is no shared registry to keep consistent across threads.
kqueue's NOTE_EXIT (BSD, macOS) could watch the harness's pid instead of a
pipe; the pipe's end of file already works on every POSIX host and cannot be
fooled by a reused pid, so one mechanism serves them all.
Nothing here but the standard library, so the watchdog runs as a bare script;
`subprocess` and `ctypes` are imported when a guard is made, not at import (the
CLI checks $HARNESS_VM_GUARD at start-up on every host).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping

VARIABLE = "HARNESS_VM_GUARD"
KINDS = ("pdeathsig", "portable")
GRACE = 2.0  # seconds between SIGTERM and SIGKILL
READY_TIMEOUT = 15.0  # for the watchdog to say it runs
DONE = b"done\n"
PR_SET_PDEATHSIG = 1


class GuardError(Exception):
    """The guard cannot be set up: the cell is the host's error, never the guest's."""


def selected(env: Mapping[str, str] | None = None) -> str:
    """The guard $HARNESS_VM_GUARD asks for, else this host's default.

    Raises ValueError with a usage message for a value that is not a guard here.
    """
    value = (os.environ if env is None else env).get(VARIABLE, "").strip()
    linux = sys.platform.startswith("linux")
    if not value:
        return "pdeathsig" if linux else "portable"
    if value not in KINDS:
        raise ValueError(f"{VARIABLE}={value!r}: must be one of {', '.join(KINDS)}")
    if value == "pdeathsig" and not linux:
        raise ValueError(f"{VARIABLE}=pdeathsig: PR_SET_PDEATHSIG exists only on Linux "
                         f"(use portable)")
    return value


def start(kind: str | None = None) -> Guard:
    """A guard for one VM, ready before the VMM is spawned (GuardError if it cannot be)."""
    if kind is None:
        try:
            kind = selected()
        except ValueError as exc:
            raise GuardError(str(exc)) from None
    if kind == "pdeathsig":
        return PdeathsigGuard()
    if sys.platform == "win32":
        return JobGuard()
    return WatchdogGuard()


class Guard:
    """No protection of its own; the interface every guard keeps."""

    kind = "none"

    def in_child(self, parent: int) -> None:
        """Between fork and exec of the VMM (POSIX): only async-signal-safe calls."""

    def arm(self, pid: int) -> None:
        """The VMM runs as `pid` (its process group on POSIX)."""

    def release(self) -> None:
        """The VM is gone: the guard ends, leaving no process behind. Idempotent."""


def _load_prctl():  # resolved in the parent: the child must not dlopen
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL: list = []  # loaded once, by the first PdeathsigGuard


class PdeathsigGuard(Guard):
    kind = "pdeathsig"

    def __init__(self) -> None:
        if not _PRCTL:
            _PRCTL.append(_load_prctl())
        self.prctl = _PRCTL[0]

    def in_child(self, parent: int) -> None:
        if self.prctl is not None:
            self.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the harness died before prctl took effect
                os._exit(1)


class WatchdogGuard(Guard):
    """A watchdog process holding the read end of a pipe only the harness writes."""

    kind = "portable"

    def __init__(self, grace: float = GRACE) -> None:
        import subprocess
        import tempfile

        try:
            fd, self.pidfile = tempfile.mkstemp(prefix="gh-guard-", suffix=".pid")
        except OSError as exc:
            raise GuardError(f"the VM guard cannot create its pid file: {exc}") from None
        os.close(fd)
        read, self._pipe = os.pipe()  # both close-on-exec: no VMM or other child keeps them
        try:
            self.proc = subprocess.Popen(
                watchdog_command(self.pidfile, grace), stdin=read, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        except OSError as exc:
            os.close(self._pipe)
            _unlink(self.pidfile)
            raise GuardError(f"cannot start the VM guard: {exc.strerror or exc}") from None
        finally:
            os.close(read)
        answered = _ready(self.proc, READY_TIMEOUT)
        if answered is not True:
            self.release()  # reaps it: its exit status is known after this
            raise GuardError("the VM guard did not start: " + (
                f"it did not answer within {READY_TIMEOUT:g} s" if answered is None
                else f"it exited with status {self.proc.returncode}"))

    def in_child(self, parent: int) -> None:
        try:
            fd = os.open(self.pidfile, os.O_WRONLY | os.O_TRUNC)
            os.write(fd, b"%d\n" % os.getpgrp())
            os.close(fd)
        except OSError:
            os._exit(1)  # unguarded: better no VM than one nobody can end
        if os.getppid() != parent:  # the harness died before the watchdog could see us
            os._exit(1)

    def release(self) -> None:
        if self._pipe < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._pipe, DONE)
        os.close(self._pipe)
        self._pipe = -1
        import subprocess

        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:  # it must not stay
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        _unlink(self.pidfile)


def watchdog_command(pidfile: str, grace: float) -> list[str]:
    """This file as a script, isolated (-I: no PYTHON* variables, no current folder) and
    without site packages (-S: it needs only the standard library, and starts faster)."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), pidfile, str(grace)]


def _ready(proc, timeout: float) -> bool | None:
    """True once the watchdog says `ready` (its signals are set up); False if it said
    something else or ended; None if it said nothing within `timeout`."""
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() == b"ready\n" if ready else None


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# --- Windows: a Job Object that ends its processes when its last handle closes ----------

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9  # JobObjectExtendedLimitInformation
PROCESS_TERMINATE = 0x0001
PROCESS_SET_QUOTA = 0x0100


def job_structures():
    """The ctypes layouts of JOBOBJECT_EXTENDED_LIMIT_INFORMATION (winnt.h), on any host."""
    import ctypes

    dword, size_t, large = ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int64

    class Basic(ctypes.Structure):  # JOBOBJECT_BASIC_LIMIT_INFORMATION
        _fields_ = [("PerProcessUserTimeLimit", large), ("PerJobUserTimeLimit", large),
                    ("LimitFlags", dword), ("MinimumWorkingSetSize", size_t),
                    ("MaximumWorkingSetSize", size_t), ("ActiveProcessLimit", dword),
                    ("Affinity", size_t), ("PriorityClass", dword), ("SchedulingClass", dword)]

    class IoCounters(ctypes.Structure):  # IO_COUNTERS
        _fields_ = [(name, ctypes.c_uint64) for name in (
            "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
            "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]

    class Extended(ctypes.Structure):  # JOBOBJECT_EXTENDED_LIMIT_INFORMATION
        _fields_ = [("BasicLimitInformation", Basic), ("IoInfo", IoCounters),
                    ("ProcessMemoryLimit", size_t), ("JobMemoryLimit", size_t),
                    ("PeakProcessMemoryUsed", size_t), ("PeakJobMemoryUsed", size_t)]

    return Basic, IoCounters, Extended


_JOB = None  # one job per harness process, never closed: the system closes it at our death


class JobGuard(Guard):
    """Windows: the VMM joins this harness's kill-on-close Job Object."""

    kind = "portable"

    def __init__(self) -> None:
        global _JOB
        if _JOB is None:
            _JOB = _create_job()

    def arm(self, pid: int) -> None:
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        kernel32.OpenProcess.restype = ctypes.c_void_p
        kernel32.OpenProcess.argtypes = [ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32]
        kernel32.AssignProcessToJobObject.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
        process = kernel32.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, False, pid)
        if not process:
            raise GuardError(f"the VM guard cannot open process {pid}: "
                             f"{ctypes.FormatError(ctypes.get_last_error())}")  # type: ignore
        try:
            if not kernel32.AssignProcessToJobObject(_JOB, process):
                raise GuardError(f"the VM guard cannot assign process {pid} to its job: "
                                 f"{ctypes.FormatError(ctypes.get_last_error())}")  # type: ignore
        finally:
            kernel32.CloseHandle(process)


def _create_job():
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.CreateJobObjectW.restype = ctypes.c_void_p
    kernel32.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
    kernel32.SetInformationJobObject.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        raise GuardError(f"the VM guard cannot create a job object: "
                         f"{ctypes.FormatError(ctypes.get_last_error())}")  # type: ignore
    _, _, extended = job_structures()
    info = extended()
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    if not kernel32.SetInformationJobObject(job, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
                                            ctypes.byref(info), ctypes.sizeof(info)):
        raise GuardError(f"the VM guard cannot set up its job object: "
                         f"{ctypes.FormatError(ctypes.get_last_error())}")  # type: ignore
    return job


# --- the watchdog program --------------------------------------------------------------

def watch(pidfile: str, grace: float) -> int:
    """Wait for `done` or end of file on stdin; at end of file end the VM's group."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTSTP, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe tells this process what to do
    os.write(1, b"ready\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing more to say: the harness may be gone
    os.close(devnull)
    message = b""
    while True:
        try:
            chunk = os.read(0, 64)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        message += chunk
    try:
        if message.startswith(DONE.strip()):
            return 0
        group = _group(pidfile)
        if group is not None:
            end_group(group, grace)
        return 0
    finally:
        _unlink(pidfile)


def _group(pidfile: str) -> int | None:
    try:
        with open(pidfile, "rb") as f:
            group = int(f.read().strip() or b"0")
    except (OSError, ValueError):
        return None
    return group if group > 1 else None  # never 0 or 1: our own group, or everyone's


def end_group(group: int, grace: float) -> bool:
    """SIGTERM to `group`, `grace` seconds, then SIGKILL; True once it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            time.sleep(0.05)
    return False


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        grace = float(argv[1]) if len(argv) > 1 else GRACE
    except ValueError:
        print(f"guard: GRACE: not a number: {argv[1]!r}", file=sys.stderr)
        return 2
    return watch(argv[0], grace)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
