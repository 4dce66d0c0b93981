"""A backend kept outside the harness, for tests: a "VM" that prints one line for ever.

Its console is the guest's `cmdline` (with \\n for new lines) printed again
and again until the harness stops it, like a guest stuck in a loop. `run`
starts a real `harness run` process with this backend registered, so tests
can signal it and watch its children.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.backends.base import Launch, LaunchContext
from harness.model import Cell

ROOT = Path(__file__).resolve().parent.parent
_LOOP = ("import sys, time\ntext = open(sys.argv[1], 'rb').read()\n"
         "while True:\n    sys.stdout.buffer.write(text)\n    sys.stdout.flush()\n"
         "    time.sleep(0.01)\n")
# `harness run` with this module registered as the backend "flood", then argv
_MAIN = ("import sys\nfrom harness import knowledge\nfrom harness.model import BackendInfo\n"
         "knowledge.backends()['flood'] = BackendInfo(name='flood', kind='flood', "
         "module='tests.flood_backend', description='a console in a loop', hardware=False, "
         "binary=sys.executable, arches=('x86_64',))\n"
         "from harness.cli import main\nsys.exit(main(sys.argv[1:]))\n")


def why_not(cell: Cell) -> str | None:
    return None if cell.guest.boot.kind == "kernel" else "flood boots kernels only"


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    script = ctx.folder / "flood.py"
    console = ctx.folder / "console.txt"
    return Launch([sys.executable, str(script), str(console)],
                  files={script: _LOOP, console: cell.guest.boot.cmdline.replace("\\n", "\n")},
                  name="flood")


def run(*argv: str, **kw) -> subprocess.Popen:
    """`harness run ARGV...` in a process of its own, with the flood backend known."""
    return subprocess.Popen([sys.executable, "-c", _MAIN, "run", *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
