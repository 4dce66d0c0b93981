"""`harness try`'s time to its answer against `harness run` of a guest file for the
same image, side by side in one run (target <= 1.5x).

For each local image: (a) `python -m harness try IMAGE --write …` from exec to exit,
then (b) `python -m harness run` of the guest file it wrote, from exec to exit,
alternately, `--runs` times. Both include start-up, images from the cache and the
boot; `try` also detects the image, waits out the quiet period (3 s) and presses
Enter to see the prompt answer, which `run` does not need: the quiet period is
the part of the ratio a short boot cannot hide.

    python benchmarks/try.py [--runs 3] [--quiet 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "images"
IMAGES = {
    "fd722": SHARED / "freedos" / "freedos722.img",
    "kolibri": SHARED / "kolibrios" / "kolibri.img",
    "obsd28": SHARED / "openbsd-2.8-floppy" / "openbsd.img",
}


def timed(argv: list[str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", *argv], cwd=ROOT,
                          capture_output=True, text=True)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:2])}: exit {proc.returncode}\n{proc.stdout[-1500:]}"
                 f"{proc.stderr[-1500:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quiet", default="3")
    args = ap.parse_args()
    for gid, image in IMAGES.items():
        if not image.is_file():
            print(f"{gid}: {image} missing, skipped")
            continue
        work = Path(tempfile.mkdtemp(prefix=f"bench-try-{gid}-"))
        guests = work / "guests"
        tries, runs = [], []
        for n in range(args.runs):
            tries.append(timed(["try", str(image), "--write", str(guests / f"{gid}.yaml"),
                                "--quiet", args.quiet, "--out", str(work / f"try{n}")]))
            runs.append(timed(["run", "--guests", str(guests), "--only", f"{gid}/tcg/*",
                               "--out", str(work / f"run{n}")]))
        t, r = statistics.median(tries), statistics.median(runs)
        print(f"{gid}: try {t:.2f} s vs run {r:.2f} s (medians of {args.runs}, alternated): "
              f"ratio {t / r:.2f} (target <= 1.5); try {', '.join(f'{x:.1f}' for x in tries)}"
              f"; run {', '.join(f'{x:.1f}' for x in runs)}")


if __name__ == "__main__":
    main()
