"""A backend kept in tests/ whose "VMM" is tests/fake_vmm.py: it serves its console
on the socket the launch context asks for (as QEMU does), else on its stdout. The
mode (boot, hang, close, never) is the guest's kernel command line."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.backends.base import Launch, LaunchContext
from harness.model import Cell

FAKE = Path(__file__).resolve().parent / "fake_vmm.py"


def why_not(cell: Cell) -> str | None:
    return None


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    mode = cell.guest.boot.cmdline
    argv = [sys.executable, str(FAKE), ctx.console or "stdio", mode]
    terminal = [sys.executable, str(FAKE), "stdio", mode] if ctx.console else None
    return Launch(argv, console=ctx.console, terminal_argv=terminal, name="fake")
