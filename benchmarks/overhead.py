"""The harness's overhead on a real boot, measured side by side with bare QEMU.

The same guest with the same QEMU command line, booted alternately
(1) through the harness (`executor.execute`: pty, matcher, transcripts, QMP),
(2) the same with the socket console (HARNESS_CONSOLE=socket: QEMU serves the
serial console on a unix socket the harness connects to), and (3) by a
minimal loop that reads QEMU's pty and stops at the line of the last
milestone. Each side's time is from just after QEMU was spawned to the last
milestone's text (the socket side includes connecting); the script prints
the medians side by side and each transport's ratio to bare QEMU (target
<= 1.05 for both).

Then the same for the whole process, also alternately: (a) `python -m
harness run` of a matrix with just this guest on tcg/bios, from exec to
exit (start-up imports, loading the guests, images from the cache, the
boot, results.json, the pages and the history), against (b) a bare QEMU
process with the same argv, from exec until it exits by itself when the
guest powers off (the default guest powers off after its last milestone).
Target <= 1.05 too.

    python benchmarks/overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.backends.base import LaunchContext
from harness.backends.qemu import build_launch
from harness.config import load_guest
from harness.executor import CellContext, execute
from harness.images.cache import Cache
from harness.images.store import ImageStore
from harness.plan import make_cell

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


def bare_process(argv: list[str], timeout: float) -> float:
    """QEMU from exec until it exits by itself (its console on a pty that is drained)."""
    master, slave = os.openpty()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    os.close(slave)
    try:
        while True:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"QEMU did not exit within {timeout:.0f} s")
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                if not os.read(master, 65536):
                    break
            except OSError:  # EIO: the last writer (QEMU) is gone
                break
        rc = proc.wait(timeout)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    if rc != 0:
        raise RuntimeError(f"QEMU exited with status {rc}")
    return took


def harness_process(matrix: Path, guests: Path, out: Path) -> float:
    """`python -m harness run` of a one-cell matrix, from exec to exit."""
    argv = [sys.executable, "-m", "harness", "run", "--matrix", str(matrix),
            "--guests", str(guests), "--out", str(out)]
    log = out.with_suffix(".log")
    with open(log, "wb") as f:
        t0 = time.monotonic()
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                            cwd=ROOT).returncode
        took = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError(f"harness run exited with {rc}:\n{log.read_text()}")
    results = json.loads((out / "latest" / "results.json").read_text())
    cell = results["cells"][0]
    if cell["verdict"] != "pass":
        raise RuntimeError(f"harness run: {cell['id']} {cell['verdict']}: {cell['reason']}")
    if not (out / "latest" / "index.html").is_file():
        raise RuntimeError("harness run exited before its pages were written")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--guest", default=str(ROOT / "guests" / "linux-busybox-x86_64.yaml"))
    args = ap.parse_args()
    guest = load_guest(Path(args.guest))
    images = ImageStore(Cache(), log=lambda m: None).resolve_guest(guest)
    cell = make_cell(guest, "tcg", "bios", guest.timeouts, guest.memory_mb)
    last = guest.milestones[-1]
    literal = last.pattern.pattern.replace("\\", "").encode()
    harness_t: dict[str, list[float]] = {"pty": [], "socket": []}
    bare_t: list[float] = []
    saved = os.environ.get("HARNESS_CONSOLE")
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            for console, times in harness_t.items():
                os.environ["HARNESS_CONSOLE"] = console
                r = execute(cell, images, CellContext(Path(d) / f"h{i}-{console}"))
                assert r.milestones[-1].reached, r.reason
                times.append(r.milestones[-1].t)
            _restore(saved)
            argv = build_launch(cell, {k: v.path for k, v in images.items()},
                                LaunchContext(Path(d), Path(d))).argv
            bare_t.append(bare(argv, literal))
            print(f"run {i + 1}: harness on a pty {harness_t['pty'][-1]:.3f} s, on a socket "
                  f"{harness_t['socket'][-1]:.3f} s, bare {bare_t[-1]:.3f} s")
        # the whole process, alternately: `harness run` of a one-cell matrix, bare QEMU
        matrix = Path(d) / "matrix.yaml"
        matrix.write_text(f"guests: [{guest.id}]\nbackends: [tcg]\nfirmware: [bios]\n")
        timeout = float(guest.timeouts.total) if guest.timeouts else 300.0
        whole_h, whole_b = [], []
        for i in range(args.runs):
            whole_h.append(harness_process(matrix, Path(args.guest).resolve().parent,
                                           Path(d) / f"run{i}"))
            argv = build_launch(cell, {k: v.path for k, v in images.items()},
                                LaunchContext(Path(d), Path(d))).argv
            whole_b.append(bare_process(argv, timeout))
            print(f"whole process, run {i + 1}: harness run {whole_h[-1]:.3f} s, "
                  f"bare QEMU {whole_b[-1]:.3f} s")
    b = statistics.median(bare_t)
    hp, hs = (statistics.median(harness_t[c]) for c in ("pty", "socket"))
    print(f"median time to {last.name!r}: harness on a pty {hp:.3f} s, on a socket {hs:.3f} s, "
          f"bare QEMU {b:.3f} s")
    for console, h in (("pty", hp), ("socket", hs)):
        ratio = h / b
        print(f"overhead ratio, {console} console: {ratio:.3f} "
              f"(target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    wh, wb = statistics.median(whole_h), statistics.median(whole_b)
    wratio = wh / wb
    print(f"median whole process: harness run {wh:.3f} s, bare QEMU {wb:.3f} s")
    print(f"whole-process ratio: {wratio:.3f} "
          f"(target <= 1.05: {'met' if wratio <= 1.05 else 'NOT met'})")


def _restore(saved: str | None) -> None:
    if saved is None:
        os.environ.pop("HARNESS_CONSOLE", None)
    else:
        os.environ["HARNESS_CONSOLE"] = saved


if __name__ == "__main__":
    main()
