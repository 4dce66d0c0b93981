"""Console transports: the guest's serial console on a pty, a socket or pipes.

The pty (`process.VMProcess`, through pexpect) is the default on POSIX hosts.
Hosts without ptys (Windows) read the console from a socket the VMM serves
(QEMU's `-chardev socket`: a unix socket where the host has AF_UNIX, else TCP
on 127.0.0.1) or, for a VMM whose console is its stdout, from pipes. The
classes here are VMProcess-like (read, write, alive, wait, stop, close,
interact), so the session, `send:`, `keys:` and --interactive work unchanged.
A console that cannot be opened, or that closes while the VMM still runs, is
the host's fault: `SpawnError` or `ConsoleLost`, an attempt in error, never a
guest verdict; the VMM is stopped either way.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

from . import addresses
from . import guard as vm_guard
from .base import Launch
from .process import _LIVE, _LIVE_LOCK, SpawnError, VMProcess, _child_setup, end_group

PTY, SOCKET = "pty", "socket"
TRANSPORTS = (PTY, SOCKET)
ENV = "HARNESS_CONSOLE"
CONNECT_TIMEOUT = 10.0  # QEMU makes its socket after it starts: retry this long
EOF_GRACE = 3.0  # a console at its end: how long the VMM may take to exit after it


class ConsoleLost(Exception):
    """The console closed while the VMM was still running (the host's fault)."""


def choose(option: str | None = None, env: Mapping[str, str] | None = None,
           os_name: str = os.name) -> str:
    """The transport: the option, else $HARNESS_CONSOLE, else the host's default
    (the socket where there are no ptys, i.e. on Windows). ValueError if unknown."""
    value = option or (os.environ if env is None else env).get(ENV, "").strip()
    if not value:
        return SOCKET if os_name == "nt" else PTY
    if value not in TRANSPORTS:
        where = "--console-transport" if option else ENV
        raise ValueError(f"{where}: {value[:40]!r} is not a console transport "
                         f"(one of: {', '.join(TRANSPORTS)})")
    return value


def socket_address(sockdir: Path, unix: bool | None = None) -> str:
    """Where a VMM serves the console: `unix:PATH` where the host has unix sockets,
    else `tcp:127.0.0.1:PORT` with a port that is free now."""
    return addresses.local(sockdir / "console.sock", unix)


connect = addresses.connect


def open_console(launch: Launch, stderr_path: Path, transport: str) -> VMProcess:
    """Start the launch's VMM with its console on `transport`: the pty; the socket
    the launch serves it on; or, for a VMM whose console is its stdout, pipes."""
    vm: VMProcess
    if transport == PTY:
        vm = VMProcess(launch.argv, stderr_path, launch.monitor)
    elif launch.console is not None:
        vm = SocketVM(launch.argv, stderr_path, launch.console, launch.monitor)
    else:
        vm = PipeVM(launch.argv, stderr_path, launch.monitor)
    vm.stop_keys = launch.stop_keys
    return vm


def _spawn(argv: list[str], stderr_path: Path, stdin: int, stdout: int,
           env: dict[str, str] | None, cwd: Path | None,
           guard: vm_guard.Guard) -> subprocess.Popen:
    """The VMM in a session of its own, stderr to its file (as `VMProcess` does)."""
    stderr_path.write_bytes(b"")  # exists before the VMM runs, so it can be followed
    parent = os.getpid()
    posix = os.name == "posix"
    err: IO[bytes] | None = None if posix else stderr_path.open("ab")
    try:
        return subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=err, env=env, cwd=cwd,
            start_new_session=posix,
            preexec_fn=(lambda: _child_setup(str(stderr_path), parent, guard)) if posix
            else None,
            creationflags=0 if posix else getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
    except OSError as exc:
        raise SpawnError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    finally:
        if err is not None:
            err.close()


class _PopenVM(VMProcess):
    """A VMM started without a pty; subclasses say where its console is."""

    what = "console"

    def __init__(self, argv: list[str], stderr_path: Path, qmp_socket: Path | str | None,
                 stdin: int, stdout: int, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.argv = argv
        self.stderr_path = stderr_path
        self.qmp_socket = qmp_socket

        def spawn(guard: vm_guard.Guard) -> int:
            self.popen = _spawn(argv, stderr_path, stdin, stdout, env, cwd, guard)
            return self.popen.pid

        self._start_guarded(spawn)  # the VM guard as for the pty (process.py)

    def alive(self) -> bool:
        if self.exit_status is not None:
            return False
        status = self.popen.poll()
        if status is None:
            return True
        self.exit_status = status
        return False

    def _at_end(self) -> None:
        """The console reached its end: fine if the VMM exits, ConsoleLost if it goes on."""
        if self.wait(EOF_GRACE) is None:
            raise ConsoleLost(f"the {self.what} closed while {Path(self.argv[0]).name} "
                              f"(pid {self.pid}) was still running")

    def interact(self, escape: bytes, input_filter: Callable[[bytes], bytes],
                 output_filter: Callable[[bytes], bytes]) -> None:
        """The terminal and the console joined until `escape` is typed or the VM ends."""
        fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
        with _raw(fd_in), contextlib.suppress(ConsoleLost):
            while True:
                data = self.read(0.05)
                if data is None:
                    return
                if data:
                    os.write(fd_out, output_filter(data))
                if not select.select([fd_in], [], [], 0)[0]:
                    continue
                typed = os.read(fd_in, 1024)
                data = input_filter(typed)  # filtered, then the escape looked for (as pexpect)
                cut = data.rfind(escape)
                self.write(data[:cut] if cut >= 0 else data)
                if cut >= 0 or not typed:
                    return

    def close(self) -> None:
        if self.alive():  # never left behind, whoever closes it
            end_group(self.pid, hard=True)
            self.wait(2.0)
        for f in (self.popen.stdin, self.popen.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self.guard.release()  # the VM is gone, so is its watchdog
        with _LIVE_LOCK:
            _LIVE.discard(self)


class SocketVM(_PopenVM):
    """A VMM serving its console on a socket (`unix:PATH` or `tcp:HOST:PORT`)."""

    def __init__(self, argv: list[str], stderr_path: Path, address: str,
                 qmp_socket: Path | str | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        super().__init__(argv, stderr_path, qmp_socket, subprocess.DEVNULL,
                         subprocess.DEVNULL, env, cwd)
        self.address = address
        self.what = f"console socket {address}"
        try:
            self.sock = self._connect(connect_timeout)
        except BaseException:
            self.stop(grace=0.5)
            raise

    def _connect(self, timeout: float) -> socket.socket | None:
        """The connection, retried while the VMM runs; None if it ended first (the
        session then sees it exit, with its stderr, as on a pty)."""
        deadline = time.monotonic() + timeout
        while self.alive():
            try:
                s = connect(self.address)
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise SpawnError(f"the {self.what} accepted no connection within "
                                     f"{timeout:g} s: {exc.strerror or exc}") from None
                time.sleep(0.05)
                continue
            s.settimeout(None)
            return s
        return None

    def read(self, timeout: float) -> bytes | None:
        if self.sock is None:
            self.wait(EOF_GRACE)
            return None
        try:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return b""
            data = self.sock.recv(65536)
        except (OSError, ValueError):  # reset, or closed here
            data = b""
        if data:
            return data
        self._at_end()
        return None

    def write(self, data: bytes) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(data)

    def close(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close()
        super().close()


class PipeVM(_PopenVM):
    """A VMM whose console is its stdout and stdin, on pipes (no pty)."""

    what = "console pipe"

    def __init__(self, argv: list[str], stderr_path: Path, qmp_socket: Path | str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        super().__init__(argv, stderr_path, qmp_socket, subprocess.PIPE, subprocess.PIPE,
                         env, cwd)
        self._chunks: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._eof = False
        # a thread, not select(): pipes cannot be select()ed on Windows
        threading.Thread(target=self._pump, daemon=True, name=f"console-{self.pid}").start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            self._chunks.put(data)
            if not data:
                return

    def read(self, timeout: float) -> bytes | None:
        if self._eof:
            return None
        try:
            data = self._chunks.get(timeout=timeout)
        except queue.Empty:
            return b""
        if data:
            return data
        self._eof = True
        self._at_end()
        return None

    def write(self, data: bytes) -> None:
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.popen.stdin.write(data)
                self.popen.stdin.flush()


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    """The terminal in raw mode (every key to the guest) where it is a POSIX tty."""
    try:
        import termios
        import tty
    except ImportError:  # not POSIX: the terminal stays as it is
        yield
        return
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
