"""VMM processes: started in their own session on a pty, never left behind.

Each VMM gets a new session whose controlling terminal is the harness's pty
(through pexpect), its stderr in a file, and a guard (`guard.py`: Linux's
PR_SET_PDEATHSIG, or the portable watchdog). If the harness is killed, even by
SIGKILL, the pty master closes, the kernel hangs up the session (SIGHUP to the
VMM) and the guard ends the VM. On a
normal end, `stop()` asks politely over QMP, then signals the process group,
then kills it. Every live VM is registered so a signal handler or exit hook
can end them all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pexpect

from . import guard as vm_guard
from .qmp import QMP, QMPError

_LIVE: set[VMProcess] = set()
_LIVE_LOCK = threading.Lock()


class SpawnError(Exception):
    pass


def _child_setup(stderr_path: str, parent: int, guard: vm_guard.Guard) -> None:
    """Runs in the child between fork and exec: stderr to a file, the guard's part."""
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    guard.in_child(parent)


class VMProcess:
    """One VMM process with its console on a pty."""

    stop_keys: tuple[bytes, ...] = ()  # typed to end it politely (Launch.stop_keys)

    def __init__(self, argv: list[str], stderr_path: Path, qmp_socket: Path | str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.argv = argv
        self.stderr_path = stderr_path
        self.qmp_socket = qmp_socket
        parent = os.getpid()
        stderr_path.write_bytes(b"")  # exists before the VMM runs, so it can be followed

        def spawn(guard: vm_guard.Guard) -> int:
            try:
                self.child = pexpect.spawn(
                    argv[0], argv[1:], env=env, cwd=str(cwd) if cwd else None, echo=False,
                    dimensions=(50, 200),
                    preexec_fn=lambda: _child_setup(str(stderr_path), parent, guard),
                )
            except pexpect.ExceptionPexpect as exc:
                raise SpawnError(f"cannot start {argv[0]}: {exc}") from None
            self.child.ptyproc.delayafterclose = 0
            self.child.delayafterclose = 0
            self.fd = self.child.child_fd
            return self.child.pid

        self._start_guarded(spawn)

    def _start_guarded(self, spawn: Callable[[vm_guard.Guard], int]) -> None:
        """The VM guard (guard.py) up before the VMM, the VMM spawned (`spawn` gives
        its pid), then the guard armed on it: no transport runs a VMM unguarded."""
        try:
            guard = self.guard = vm_guard.start()
        except vm_guard.GuardError as exc:
            raise SpawnError(str(exc)) from None
        try:
            self.pid = spawn(guard)
        except SpawnError:
            guard.release()
            raise
        self.started = time.monotonic()
        self.exit_status: int | None = None
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            guard.arm(self.pid)
        except vm_guard.GuardError as exc:
            self.stop(grace=0.5)  # an unguarded VM does not run
            raise SpawnError(str(exc)) from None

    def read(self, timeout: float) -> bytes | None:
        """Console bytes within `timeout` (b"" if none); None at end of file."""
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
        except (OSError, ValueError):
            return None
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 65536)
        except OSError as exc:
            # Linux answers EIO once the pty's slave side is closed: end of file
            if exc.errno in (errno.EIO, errno.EBADF):
                return None
            raise
        return data or None

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def interact(self, escape: bytes, input_filter: Callable[[bytes], bytes],
                 output_filter: Callable[[bytes], bytes]) -> None:
        """The terminal and the console joined until `escape` is typed or the VM ends."""
        self.child.interact(escape_character=escape.decode(), input_filter=input_filter,
                            output_filter=output_filter)

    def alive(self) -> bool:
        if self.exit_status is not None:
            return False
        try:
            if self.child.isalive():
                return True
        except pexpect.ExceptionPexpect:
            self.exit_status = -1
            return False
        status = self.child.exitstatus
        self.exit_status = status if status is not None else -(self.child.signalstatus or 0)
        return False

    def wait(self, timeout: float) -> int | None:
        """The exit status, waiting up to `timeout`; None if still running."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return self.exit_status

    def stop(self, grace: float = 2.0) -> int | None:
        """End the VM: QMP quit (or its stop keys typed), then SIGTERM to its group,
        then SIGKILL."""
        try:
            if self.stop_keys and self.alive():
                for keys in self.stop_keys:
                    self.write(keys)
                    time.sleep(0.2)  # the VMM reads its escape before the next line
                self.wait(grace)
            if self.alive() and self.qmp_socket is not None and (
                    isinstance(self.qmp_socket, str) or self.qmp_socket.exists()):
                with contextlib.suppress(QMPError, OSError), QMP(self.qmp_socket, timeout=1.0) as q:
                    q.connect(wait=0.5)
                    q.command("quit")
                self.wait(grace)
            for hard in (False, True):
                if not self.alive():
                    break
                end_group(self.pid, hard)
                self.wait(grace)
            return self.exit_status
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
            self.child.close(force=True)
        self.guard.release()  # --- guard: the VM is gone, so is its watchdog ---
        with _LIVE_LOCK:
            _LIVE.discard(self)


def end_group(pid: int, hard: bool) -> None:
    """SIGTERM (SIGKILL if `hard`) to the VMM's process group (its session, which it
    leads). Where there are no process groups (Windows) the VMM and every process it
    started are ended through psutil instead: terminate, or kill."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL if hard else signal.SIGTERM)
        return
    import psutil

    try:
        top = psutil.Process(pid)
        tree = [*top.children(recursive=True), top]
    except psutil.Error:
        return
    for p in tree:
        with contextlib.suppress(psutil.Error):
            p.kill() if hard else p.terminate()


def live_vms() -> list[VMProcess]:
    with _LIVE_LOCK:
        return list(_LIVE)


def kill_all() -> None:
    """Kill every VM this process started (for signal handlers and exit hooks)."""
    for vm in live_vms():
        end_group(vm.pid, hard=True)
        vm.wait(2.0)
        vm.close()
