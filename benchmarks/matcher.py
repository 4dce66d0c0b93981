"""Console matcher throughput and memory, side by side with a naive pexpect loop.

A synthetic console of kernel-log-like lines (default 256 MiB) with 20
milestones spread through it and 30 failure patterns that never match is
streamed in 64 KiB reads, as from a pty. Each contender runs in a fresh
process; the script prints MB/s, peak RSS growth and the ratios. The
matcher runs twice: with its native Aho-Corasick literal prefilter (the
default when `ahocorasick_rs` is installed) and with the pure-Python one
it falls back to, so the prefilter's gain is measured in the same run.

    python benchmarks/matcher.py [--mib 256] [--pexpect-mib 32]

pexpect is given a smaller slice by default (it is far slower); its MB/s
is comparable, its total time is not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time

CHUNK = 65536
MILESTONES = [rf"HARNESS-MILESTONE-{i:02d} reached \d+" for i in range(20)]
FAILURES = [
    r"Kernel panic - not syncing", r"Oops(?: -|:)", r"BUG: ", r"IO-APIC \+ timer doesn't work",
    r"soft lockup - CPU#", r"rcu_sched self-detected stall", r"WARNING: CPU: \d+ PID: ",
    r"Unable to handle kernel paging request", r"general protection fault", r"segfault at \w+",
    r"Out of memory: Killed process", r"INFO: task \S+ blocked for more than",
    r"EXT4-fs error", r"I/O error, dev \w+, sector", r"ata\d+: failed command",
    r"panic: ", r"fatal (?:page fault|protection fault|trap|double fault)",
    r"(?:^|\n)db\{?\d*\}?> ", r"Stopped at\s", r"uvm_fault\(", r"Triple fault",
    r"kdb:> ", r"\*\*\* STOP: 0x[0-9A-F]{8}", r"Hardware Dom0 crashed",
    r"KVM internal error", r"emulation failure", r"NVMM: Unexpected VM exit code",
    r"WHPX: Unexpected VP exit code", r"Unknown hax vcpu return", r"Error: HV_",
]
WORDS = [
    "pci", "0000:00:1f.2:", "reg", "0x20:", "[io", "0xc040-0xc05f]", "usb", "1-1:", "new",
    "high-speed", "device", "ACPI:", "Added", "_OSI(Module", "Device)", "clocksource:",
    "tsc-early:", "mask:", "0xffffffffffffffff", "virtio_blk", "virtio1:", "[vda]", "2097152",
    "512-byte", "logical", "blocks", "sd", "0:0:0:0:", "Attached", "systemd[1]:", "Started",
    "Journal", "Service.", "audit:", "type=1400", "apparmor=STATUS",
]


def make_console(path: str, mib: int) -> None:
    rng = random.Random(42)
    size = mib << 20
    marks = [size * (i + 1) // 21 for i in range(20)]
    written, t, nxt = 0, 0.0, 0
    with open(path, "wb") as f:
        buf = []
        while written < size:
            t += rng.random() / 1000
            line = f"[{t:12.6f}] " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
            if nxt < 20 and written >= marks[nxt]:
                line += f" HARNESS-MILESTONE-{nxt:02d} reached {nxt}"
                nxt += 1
            if rng.random() < 0.02:
                line = "\x1b[32m" + line + "\x1b[0m"
            data = (line + "\r\n").encode()
            buf.append(data)
            written += len(data)
            if len(buf) >= 4096:
                f.write(b"".join(buf))
                buf = []
        f.write(b"".join(buf))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_ours(path: str, limit: int, native: bool | None = None) -> dict:
    from harness.console.matcher import Matcher
    from harness.model import FailureSignature, Milestone

    m = Matcher([Milestone(f"m{i}", re.compile(p)) for i, p in enumerate(MILESTONES)],
                [FailureSignature(f"f{i}", re.compile(p)) for i, p in enumerate(FAILURES)],
                native=native)
    before = rss_mb()
    found = cursor = 0  # the cursor moves on as the tracker's does
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        done = 0
        while done < limit and (chunk := f.read(CHUNK)):
            for e in m.feed(chunk, 0.0, cursor).events:
                if e.kind == "milestone":
                    found, cursor = found + 1, e.index + 1
            done += len(chunk)
    return {"seconds": time.perf_counter() - t0, "bytes": done, "found": found,
            "rss_before": before, "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024}


def worker_pexpect(path: str, limit: int) -> dict:
    import pexpect
    from pexpect import fdpexpect

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a writer process feeding the pipe in pty-sized reads
        os.close(r)
        with open(path, "rb") as f:
            done = 0
            while done < limit and (chunk := f.read(CHUNK)):
                os.write(w, chunk)
                done += len(chunk)
        os._exit(0)
    os.close(w)
    child = fdpexpect.fdspawn(r, timeout=None, maxread=CHUNK)
    before = rss_mb()
    found = 0
    t0 = time.perf_counter()
    for pattern in MILESTONES:  # the naive loop: one expect per milestone, failures alongside
        try:
            i = child.expect([re.compile(pattern.encode()), *(re.compile(p.encode())
                                                              for p in FAILURES)])
        except pexpect.EOF:
            break
        if i == 0:
            found += 1
    seconds = time.perf_counter() - t0
    os.waitpid(pid, 0)
    return {"seconds": seconds, "bytes": limit, "found": found, "rss_before": before,
            "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(name: str, path: str, limit: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", name, path, str(limit)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--pexpect-mib", type=int, default=32)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        name, path, limit = args.worker
        if name == "pexpect":
            print(json.dumps(worker_pexpect(path, int(limit))))
        else:
            print(json.dumps(worker_ours(path, int(limit), native=name != "ours-python")))
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "console.bin")
        make_console(path, args.mib)
        total = os.path.getsize(path)
        ours = run_worker("ours", path, total)
        python = run_worker("ours-python", path, total)
        pex_limit = min(total, args.pexpect_mib << 20)
        pex = run_worker("pexpect", path, pex_limit)
    rows = []
    for name, r in (("guest-harness Matcher", ours), ("  pure-Python prefilter", python),
                    ("naive pexpect expect()", pex)):
        mbps = r["bytes"] / r["seconds"] / 1e6
        growth = r["rss_peak"] - r["rss_before"]
        rows.append((name, r["bytes"] >> 20, mbps, growth, r["found"]))
        print(f"{name:<24} {r['bytes'] >> 20:5d} MiB  {mbps:8.1f} MB/s  "
              f"RSS growth {growth:6.1f} MB  milestones found {r['found']}")
    print(f"throughput ratio (ours / pure-Python prefilter): {rows[0][2] / rows[1][2]:.1f}x")
    print(f"throughput ratio (ours / pexpect): {rows[0][2] / rows[2][2]:.1f}x")
    print(f"targets: >= 250 MB/s -> {'met' if rows[0][2] >= 250 else 'NOT met'}; "
          f"<= 100 MB RSS growth -> {'met' if rows[0][3] <= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
