"""`python -m tests.fuzz_entry ARGS`: the harness's command line with two more backends, so
that a fuzzed run gets past validation without a VM.

- `echo` (tests/echo_backend.py) prints the guest's `cmdline` as its console;
- `chunks` (this module) prints its kernel image's bytes as its console, in the pieces
  between `\\x00CUT\\x00` markers, each its own write after a pause: escape sequences
  split across reads, NUL, invalid UTF-8, megabyte lines, any byte a broken or hostile
  guest could send.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import knowledge
from harness.backends.base import Launch, LaunchContext
from harness.model import BackendInfo, Cell

CUT = b"\x00CUT\x00"

_SCRIPT = f"""import os, sys, time
data = open(sys.argv[1], 'rb').read()
for piece in data.split({CUT!r}):
    os.write(1, piece)
    time.sleep(0.05)
time.sleep(0.2)
"""


def why_not(cell: Cell) -> str | None:
    return None if cell.guest.boot.kind == "kernel" else "chunks boots kernels only"


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    script = ctx.folder / "chunks.py"
    return Launch([sys.executable, str(script), str(images[cell.guest.boot.kernel])],
                  files={script: _SCRIPT}, name="chunks")


def register() -> None:
    """Add `echo` and `chunks` to this process's backend table."""
    table = knowledge.backends()
    for name, module in (("echo", "tests.echo_backend"), ("chunks", "tests.fuzz_entry")):
        table[name] = BackendInfo(name=name, kind=name, module=module,
                                  description="a printed console", hardware=False,
                                  binary=sys.executable, arches=("x86_64",))


if __name__ == "__main__":
    register()
    from harness.cli import main

    sys.exit(main(sys.argv[1:]))
