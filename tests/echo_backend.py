"""A backend kept outside the harness, for tests: one module, one backends.yaml entry.

Its "VM" is a Python process that prints a boot console (the text in the
guest's `cmdline`, with \\n for new lines) and exits, so the whole path
(registry, launch, setup, console, judge, repro.sh) runs without a VMM.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.backends.base import Launch, LaunchContext
from harness.model import Cell


def why_not(cell: Cell) -> str | None:
    return None if cell.guest.boot.kind == "kernel" else "echo boots kernels only"


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    script = ctx.folder / "echo.py"
    # a console line "TEXT@xN" is printed N times (a console larger than its guest file)
    text = ("import re, sys, time\ntext = open(sys.argv[1]).read()\n"
            "sys.stdout.write(re.sub(r'(?m)^(.*)@x(\\d+)$', "
            "lambda m: (m[1] + chr(10)) * int(m[2]), text))\n"
            "sys.stdout.flush()\ntime.sleep(0.2)\n")
    console = ctx.folder / "console.txt"
    return Launch([sys.executable, str(script), str(console)],
                  files={script: text, console: cell.guest.boot.cmdline.replace("\\n", "\n")},
                  setup=[["true"]], teardown=[["rm", "-f", str(console)]], name="echo")
