"""Command-line misuse (issue 14): absurd counts, output folders that cannot be written,
an unreachable scheduler and recorded cells today's files cannot make are each one line
and exit 2, before anything runs; never a traceback, never a hang."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import GUESTS, write
from .test_report import results

# a cell this host skips at once (no NVMM on Linux): `run` gets to its run folder
SKIPPED = ["--guests", str(GUESTS), "--only", "linux-busybox-x86_64/nvmm/bios"]


def harness(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout)


def refused(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    return write(tmp_path / "matrix.yaml",
                 "guests: [linux-busybox-x86_64, linux-busybox-x86_64-pvh]\n"
                 "backends: [nvmm, tcg]\nfirmware: [bios]\n")


@pytest.mark.parametrize("argv, message", [
    (["run", "--jobs", "0"], "argument --jobs: 0 is not between 1 and 1024"),
    (["run", "--jobs", "1000000"], "argument --jobs: 1000000 is not between 1 and 1024"),
    (["run", "--jobs", "9" * 5000], "argument --jobs: '99999"),
    (["run", "--jobs", "x"], "argument --jobs: 'x' is not a whole number"),
    (["run", "--retries", "-1"], "argument --retries: -1 is not between 0 and 100"),
    (["run", "--rerun-failures", "101"], "argument --rerun-failures: 101 is not between"),
    (["run", "--canary-ttl", "nan"], "argument --canary-ttl: 'nan': expected a number"),
    (["run", "--canary-ttl", "-5"], "argument --canary-ttl: '-5': expected a number"),
    (["run", "--canary-ttl", "1e300"], "argument --canary-ttl: '1e300': expected a number"),
    (["run", "--cluster", "localhost"], "argument --cluster: 'localhost' is not tcp://HOST:PORT"),
    (["worker", "--scheduler", "tcp://h:1", "--slots", "0"],
     "argument --slots: 0 is not between 1 and 1024"),
    (["worker", "--scheduler", "tcp://h:99999"], "argument --scheduler: 'tcp://h:99999' is not"),
    (["worker", "--scheduler", "tcp://h:1", "--connect-timeout", "inf"],
     "argument --connect-timeout: 'inf'"),
    (["repro", "g/tcg/bios", "--times", "0"], "argument --times: 0 is not between 1 and 1000"),
    (["report", "x", "--history", "0"], "argument --history: 0 is not between 1 and 1000"),
    (["bisect-quirks", "g/tcg/bios", "--max-runs", "1"], "argument --max-runs: 1 is not"),
    (["needle", "s.png", "--x", "-1", "--y", "0", "--w", "1", "--h", "1", "-o", "n.png"],
     "argument --x: -1 is not between 0 and 65535"),
])
def test_absurd_options_are_refused_by_name(argv, message):
    refused(harness(*argv), message)


def test_worker_connect_timeout_zero_would_mean_for_ever():
    refused(harness("worker", "--scheduler", "tcp://127.0.0.1:9", "--advertise", "tcg",
                    "--connect-timeout", "0"), "--connect-timeout must be more than 0")


def test_a_worker_gives_up_on_an_unreachable_scheduler(tmp_path):
    with contextlib.closing(__import__("socket").socket()) as s:
        s.bind(("127.0.0.1", 0))  # a port nobody listens on: bound, never listening
        port = s.getsockname()[1]
        start = time.monotonic()
        proc = harness("worker", "--scheduler", f"tcp://127.0.0.1:{port}", "--advertise",
                       "tcg", "--slots", "1", "--connect-timeout", "2", timeout=60)
    assert time.monotonic() - start < 45  # Dask alone retries for ever
    refused(proc, f"cannot reach the scheduler at tcp://127.0.0.1:{port} (gave up after 2 s)")


def test_out_that_is_a_file_is_refused_before_anything_runs(tmp_path, matrix):
    afile = write(tmp_path / "afile", "mine\n")
    refused(harness("run", "--matrix", str(matrix), *SKIPPED, "--out", str(afile)),
            f"--out {afile}: not a folder")
    refused(harness("run", "--matrix", str(matrix), *SKIPPED, "--out", str(afile / "x")),
            f"{afile} is not a folder")
    assert afile.read_text() == "mine\n"


def test_out_on_a_read_only_filesystem_is_refused(tmp_path, matrix):
    ro = tmp_path / "ro"
    ro.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                           capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mount.stderr!r}")
    try:
        refused(harness("run", "--matrix", str(matrix), *SKIPPED, "--out", str(ro / "x")),
                "cannot write in")
        refused(harness("run", "--matrix", str(matrix), *SKIPPED, "--out", str(ro / "x")),
                "Read-only file system")
        run = tmp_path / "runs" / "r"
        write(run / "results.json", json.dumps(results("20261121T000000Z-abcd",
                                                       "2026-11-21T00:00:00Z",
                                                       {"g/tcg/bios": "pass"})))
        refused(harness("merge", str(run), "--out", str(ro)), "Read-only file system")
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_a_writable_out_still_runs(tmp_path, matrix):
    out = tmp_path / "new" / "deep"
    proc = harness("run", "--matrix", str(matrix), *SKIPPED, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "latest" / "results.json").is_file()


@pytest.mark.parametrize("field, value, message", [
    ("backend", "foo", "backend 'foo' is unknown here"),
    ("firmware", "uefi", "today's guest file makes no such cell"),  # it offers bios only
    ("guest", "no-such-guest", "no guest file for 'no-such-guest'"),
])
def test_repro_of_a_cell_today_s_files_cannot_make(tmp_path, matrix, field, value, message):
    cell = {"guest": "linux-busybox-x86_64-pvh", "backend": "tcg", "firmware": "bios",
            field: value}
    cid = "/".join(cell[k] for k in ("guest", "backend", "firmware"))
    run = tmp_path / "runs" / "r"
    write(run / "results.json", json.dumps(results("20261121T000000Z-abcd",
                                                   "2026-11-21T00:00:00Z", {cid: "fail"})))
    refused(harness("repro", cid, "--from", str(run), "--matrix", str(matrix),
                    "--guests", str(GUESTS), "--out", str(tmp_path / "out")), message)
