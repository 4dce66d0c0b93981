"""Handing a cell's console to the person at the terminal (`--interactive`).

Keys, also printed when the console is handed over:
  Ctrl-]   quit: the harness stops the VM and finishes the run
  Ctrl-\\   the QEMU monitor: type one HMP command line, Enter runs it
           (e.g. `info registers`, `info status`, `system_reset`)
Everything the guest prints keeps going to the cell's console.log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .backends.qmp import QMP, QMPError
from .console.transcript import Transcript

if TYPE_CHECKING:  # the pty process needs pexpect: imported where a VM is spawned
    from .backends.process import VMProcess

ESCAPE = b"\x1d"  # Ctrl-]
MONITOR = b"\x1c"  # Ctrl-\
BANNER = ("\r\n### guest-harness: the console is yours. Ctrl-] quits (the VM is stopped); "
          "Ctrl-\\ runs one QEMU monitor command.\r\n")


def stdin_is_tty() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def keys_while_booting() -> Iterator[Callable[[], bool]]:
    """While a cell boots: a check whether the user pressed Ctrl-] (cbreak mode on POSIX,
    the console's own key queue on Windows, which has no termios)."""
    if not stdin_is_tty():
        yield lambda: False
        return
    try:
        import select
        import termios
        import tty
    except ImportError:
        with _windows_keys() as pressed:
            yield pressed
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed() -> bool:
        while select.select([fd], [], [], 0)[0]:
            if os.read(fd, 64).find(ESCAPE) >= 0:
                return True
        return False

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _windows_keys() -> Iterator[Callable[[], bool]]:
    try:
        import msvcrt
    except ImportError:  # neither POSIX nor Windows: Ctrl-C still stops the run
        yield lambda: False
        return

    def pressed() -> bool:
        while msvcrt.kbhit():
            if msvcrt.getch() == ESCAPE:
                return True
        return False

    yield pressed


class _MonitorKeys:
    """Input filter: Ctrl-\\ starts a monitor line, Enter runs it over QMP."""

    def __init__(self, qmp: Callable[[], QMP]) -> None:
        self.qmp = qmp
        self.line: bytearray | None = None

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            b = bytes([byte])
            if self.line is None:
                if b == MONITOR:
                    self.line = bytearray()
                    _say("\r\n(qemu) ")
                else:
                    out += b
            elif b in (b"\r", b"\n"):
                self._run(self.line.decode(errors="replace"))
                self.line = None
            elif b in (b"\x7f", b"\x08"):
                if self.line:
                    self.line.pop()
                    _say("\b \b")
            else:
                self.line += b
                _say(b.decode(errors="replace"))
        return bytes(out)

    def _run(self, command: str) -> None:
        _say("\r\n")
        if not command.strip():
            return
        try:
            reply = self.qmp().command("human-monitor-command", **{"command-line": command})
        except (QMPError, OSError) as exc:
            reply = f"monitor: {exc}\n"
        _say(str(reply).replace("\n", "\r\n"))


def _say(text: str) -> None:
    os.write(sys.stdout.fileno(), text.encode())


def hand_over(vm: VMProcess, transcript: Transcript, started: float,
              qmp: Callable[[], QMP]) -> None:
    """Give the terminal to the guest console until Ctrl-] or the VM's end."""
    if not vm.alive():
        _say("\r\n### guest-harness: the VM has ended; there is no console to hand over.\r\n")
        return
    _say(BANNER)

    def record(data: bytes) -> bytes:
        transcript.write(data, data.decode("utf-8", "replace"), time.monotonic() - started)
        return data

    with contextlib.suppress(OSError):
        vm.interact(ESCAPE, _MonitorKeys(qmp), record)
    transcript.note(time.monotonic() - started, "the user left the console")
    _say("\r\n### guest-harness: console closed; stopping the VM.\r\n")
