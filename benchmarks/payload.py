"""The payload's console framing against bare QEMU: a step that prints 50 MB.

The BusyBox guest booted to its shell (harness.mode=shell) runs one command
that prints MB megabytes (`yes LINE | head -c N`), alternately (1) as a
payload step through the harness (typed with its markers, read by the step
reader: cleaning, failure signatures, the end marker, the transcript) and
(2) typed by a minimal loop on QEMU's pty, same argv, which waits for the
shell's marker, types the same command followed by `echo` of an end word,
and reads until that word. Each side's time is from typing the command to
its end marker; the script prints both medians and the ratio (target <= 1.05).

    python benchmarks/payload.py [--runs 3] [--mb 50]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness.backends.base import LaunchContext
from harness.backends.qemu import build_launch
from harness.config import load_guest
from harness.executor import CellContext, execute
from harness.images.cache import Cache
from harness.images.store import ImageStore
from harness.model import PayloadStep
from harness.plan import make_cell

ROOT = Path(__file__).resolve().parent.parent
LINE = "0123456789" * 7  # 70 characters and a newline per line


def bare(argv: list[str], command: str, timeout: float) -> float:
    """QEMU on a pty: wait for the shell, type `command`, read to the end word."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    os.close(slave)
    seen, t0 = b"", None
    end = b"FLOOD-42-END"
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            data = os.read(master, 65536)
            if not data:
                break
            seen = seen[-64:] + data
            if t0 is None and b"HARNESS-SHELL" in seen:
                os.write(master, f"{command}; echo FLOOD-$((40+2))-END\n".encode())
                t0, seen = time.monotonic(), b""
            elif t0 is not None and end in seen:
                return time.monotonic() - t0
        raise RuntimeError("the bare loop never saw its end word")
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=float, default=50.0)
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    command = f"yes {LINE} | head -c {size}"
    guest = load_guest(ROOT / "guests" / "linux-busybox-payload-x86_64.yaml")
    step = PayloadStep(name="flood", run=command, timeout=3600.0)
    guest = dataclasses.replace(guest, payload=[step], payload_dir=None, expect=[],
                                timeouts=dataclasses.replace(guest.timeouts, total=3600.0))
    images = ImageStore(Cache(), log=lambda m: None).resolve_guest(guest)
    cell = make_cell(guest, "tcg", "bios", guest.timeouts, guest.memory_mb)
    framed, plain = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            r = execute(cell, images, CellContext(Path(d) / f"h{i}"))
            if r.verdict.value != "pass" or not r.steps:
                raise RuntimeError(f"harness: {r.verdict} {r.reason}")
            framed.append(float(r.steps[0]["duration_s"]))
            argv = build_launch(cell, {k: v.path for k, v in images.items()},
                                LaunchContext(Path(d), Path(d))).argv
            plain.append(bare(argv, command, 3600.0))
            print(f"run {i + 1}: harness step {framed[-1]:.3f} s, bare loop {plain[-1]:.3f} s "
                  f"({args.mb:g} MB)")
    h, b = statistics.median(framed), statistics.median(plain)
    ratio = h / b
    print(f"median: harness {h:.3f} s ({args.mb / h:.2f} MB/s), bare {b:.3f} s "
          f"({args.mb / b:.2f} MB/s)")
    print(f"framing ratio: {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
