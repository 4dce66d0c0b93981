"""No VMM is ever left behind: SIGKILL, SIGTERM and Ctrl-C of the harness, with either
VM guard (HARNESS_VM_GUARD: Linux's PR_SET_PDEATHSIG, or the portable watchdog other hosts
use). On a pty the hang-up ends QEMU too; with the socket console the guard is alone."""

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
GUARDS = ["pdeathsig", "portable"]


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


def start_hanging_run(tmp_path: Path, guard: str) -> tuple[subprocess.Popen, list[int]]:
    m = write(tmp_path / "matrix.yaml", "guests: [test-hang]\nbackends: [tcg]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--matrix", str(m), "--guests",
         str(TEST_GUESTS), "--out", str(tmp_path / "reports")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "HARNESS_VM_GUARD": guard})
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


def watchdogs(pid: int) -> dict[int, int]:
    """The portable guard's watchdogs below `pid`: the VMM group each one watches."""
    out = {}
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg.endswith(b"backends/guard.py"):  # guard.py PIDFILE GRACE
                with open(argv[i + 1]) as f:
                    out[p] = int(f.read())
    return out


def check_guards(proc: subprocess.Popen, qemus: list[int], guard: str) -> list[int]:
    """The guard asked for is the one at work: a watchdog per VM for portable, armed
    with the VM's group (which is its pid), none for pdeathsig. Their pids."""
    found = watchdogs(proc.pid)
    assert sorted(found.values()) == (sorted(qemus) if guard == "portable" else []), found
    return list(found)


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(exists(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("guard", GUARDS)
def test_sigkill_of_the_harness_takes_its_vms_down(tmp_path, qemu, guard):
    proc, qemus = start_hanging_run(tmp_path, guard)
    guards = check_guards(proc, qemus, guard)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert gone_within(qemus, 5), f"QEMU {qemus} outlived the harness"
    assert gone_within(guards, 5), f"watchdogs {guards} outlived their VMs"


@pytest.mark.parametrize("guard", GUARDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_vms_and_keep_results(tmp_path, qemu, sig, guard):
    proc, qemus = start_hanging_run(tmp_path, guard)
    guards = check_guards(proc, qemus, guard)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert gone_within(qemus, 5)
    assert not any(exists(p) for p in guards), "a watchdog outlived the run"
    results = json.loads((tmp_path / "reports/latest/results.json").read_text())
    assert results["interrupted"] is True and results["finished"]
    [cell] = results["cells"]
    assert cell["verdict"] == "error" and cell["reason"].startswith("interrupted")
