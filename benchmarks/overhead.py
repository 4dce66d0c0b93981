"""The harness's overhead on a real boot, measured side by side with bare QEMU.

The same guest with the same QEMU command line, booted alternately
(1) through the harness (`run_cell`: pty, matcher, transcripts, QMP) and
(2) by a minimal loop that reads QEMU's pty and stops at the line of the
last milestone. Each side's time is from just after QEMU was spawned to
the last milestone's text; the script prints both medians and their ratio
(target <= 1.05).

    python benchmarks/overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.backends.qemu import build_launch
from harness.config import load_guest
from harness.images.cache import Cache
from harness.images.store import ImageStore
from harness.model import Cell
from harness.runner import run_cell

ROOT = Path(__file__).resolve().parent.parent


def bare(argv: list[str], needle: bytes) -> float:
    """QEMU on a pty read by the smallest loop that finds `needle`."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0 = time.monotonic()
    os.close(slave)
    seen = b""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                raise RuntimeError("QEMU ended before the last milestone") from None
            seen = seen[-len(needle):] + data
            if needle in seen:
                return time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--guest", default=str(ROOT / "guests" / "linux-busybox-x86_64.yaml"))
    args = ap.parse_args()
    guest = load_guest(Path(args.guest))
    images = ImageStore(Cache(), log=lambda m: None).resolve_guest(guest)
    cell = Cell(guest, "tcg", "bios", guest.timeouts, guest.memory_mb)
    last = guest.milestones[-1]
    literal = last.pattern.pattern.replace("\\", "").encode()
    harness_t, bare_t = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            r = run_cell(cell, images, Path(d) / f"h{i}")
            assert r.milestones[-1].reached, r.reason
            harness_t.append(r.milestones[-1].t)
            argv = build_launch(cell, {k: v.path for k, v in images.items()},
                                Path(d) / f"q{i}.sock").argv
            bare_t.append(bare(argv, literal))
            print(f"run {i + 1}: harness {harness_t[-1]:.3f} s, bare {bare_t[-1]:.3f} s")
    h, b = statistics.median(harness_t), statistics.median(bare_t)
    ratio = h / b
    print(f"median time to {last.name!r}: harness {h:.3f} s, bare QEMU {b:.3f} s")
    print(f"overhead ratio: {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
