"""No VMM is ever left behind: SIGKILL, SIGTERM and Ctrl-C of the harness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import TEST_GUESTS, write

pytestmark = pytest.mark.vm


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_hanging_run(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    m = write(tmp_path / "matrix.yaml", "guests: [test-hang]\nbackends: [tcg]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--matrix", str(m), "--guests",
         str(TEST_GUESTS), "--out", str(tmp_path / "reports")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        qemus = [p for p in descendants(proc.pid) if _is_qemu(p)]
        if qemus:
            time.sleep(1.0)  # mid-boot
            return proc, qemus
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the harness never started QEMU")


def _is_qemu(pid: int) -> bool:
    """A VM of a cell (not the probe's short `qemu-system-x86_64 -accel help`)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"qemu-system" in argv[0] and b"-qmp" in argv


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(exists(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_sigkill_of_the_harness_takes_its_vms_down(tmp_path, qemu):
    proc, qemus = start_hanging_run(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert gone_within(qemus, 5), f"QEMU {qemus} outlived the harness"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_vms_and_keep_results(tmp_path, qemu, sig):
    proc, qemus = start_hanging_run(tmp_path)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert gone_within(qemus, 5)
    results = json.loads((tmp_path / "reports/latest/results.json").read_text())
    assert results["interrupted"] is True and results["finished"]
    [cell] = results["cells"]
    assert cell["verdict"] == "error" and cell["reason"].startswith("interrupted")
