"""Scheduling efficiency: makespan of 40 cells of known durations vs the ideal.

A tiny stand-in VMM (a shell script named qemu-system-x86_64, first on
PATH) prints a kernel banner, sleeps the duration written in its kernel
command line, prints the last milestone and exits. 40 such cells run on N
slots (N = this host's cores), twice: without history, then with the first
run as history (longest expected first). The lower bound is
max(sum of durations / N, the longest duration); the script prints
makespan / bound (target <= 1.10).

    python benchmarks/scheduling.py [--cells 40] [--slots N]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from harness.config import load_guests, load_matrix
from harness.images.cache import Cache
from harness.plan import expand
from harness.progress import Progress, Silent
from harness.scheduler import RunOptions, Scheduler

FAKE_QEMU = r"""#!/bin/sh
case "$*" in
  *--version*) echo "QEMU emulator version 7.2.0 (stand-in)"; exit 0 ;;
  *"-accel help"*) printf 'Accelerators supported in QEMU binary:\ntcg\n'; exit 0 ;;
esac
secs=$(printf '%s\n' "$@" | sed -n 's/.*bench\.seconds=\([0-9.]*\).*/\1/p')
echo "Linux version 1.0 (stand-in)"
sleep "$secs"
echo "BENCH-DONE"
"""

GUEST = """\
id: bench-{n:02d}
os: linux
arch: x86_64
images: {{kernel: {{file: kernel.bin}}}}
boot: {{kernel: kernel, cmdline: "bench.seconds={secs:.2f}"}}
memory: 64M
milestones:
  - {{name: kernel, pattern: 'Linux version'}}
  - {{name: done, pattern: 'BENCH-DONE'}}
timeouts: {{total: 60, stall: 30}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--slots", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    rng = random.Random(7)
    durations = [round(rng.uniform(0.1, 1.5), 2) for _ in range(args.cells)]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "bin").mkdir()
        fake = root / "bin" / "qemu-system-x86_64"
        fake.write_text(FAKE_QEMU)
        fake.chmod(0o755)
        os.environ["PATH"] = f"{root / 'bin'}:{os.environ['PATH']}"
        guests_dir = root / "guests"
        guests_dir.mkdir()
        (guests_dir / "kernel.bin").write_bytes(b"stand-in")
        for n, secs in enumerate(durations):
            (guests_dir / f"bench-{n:02d}.yaml").write_text(GUEST.format(n=n, secs=secs))
        (root / "matrix.yaml").write_text("guests: ['*']\nbackends: [tcg]\nfirmware: [bios]\n")
        guests = load_guests(guests_dir)
        cells = expand(load_matrix(root / "matrix.yaml", guests), guests)
        bound = max(sum(durations) / args.slots, max(durations))
        for label in ("no history", "with history (longest first)"):
            options = RunOptions(out=root / "reports", cache=Cache(root / "cache"),
                                 jobs=args.slots)
            t = time.monotonic()
            outcome = Scheduler(options, Progress(stream=Silent(), live=False)).run(cells)
            makespan = time.monotonic() - t
            assert all(str(r.verdict) == "pass" for r in outcome.results)
            print(f"{label:<30} makespan {makespan:6.2f} s, ideal bound {bound:6.2f} s "
                  f"({args.cells} cells, {args.slots} slots): ratio {makespan / bound:.3f} "
                  f"(target <= 1.10)")


if __name__ == "__main__":
    main()
