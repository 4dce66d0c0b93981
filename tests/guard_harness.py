"""`python -m tests.guard_harness KIND MODE`: a stand-in harness for the VM guard tests.

It starts one fake VMM through `VMProcess` exactly as the runner does (own
session, pty console, the guard KIND: portable, pdeathsig, or none for the
control), prints `VMM-GROUP WATCHDOG-PID` once the VMM runs, and waits; on
Ctrl-C it stops its VM as the harness does and exits 130.

The fake VMM ignores SIGHUP, so the pty hang-up cannot do the guard's work,
and starts a child in its group (`sleep`), so "the group is gone" means more
than one process. MODE `stubborn` also ignores SIGTERM: only SIGKILL ends it.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

from harness.backends import guard as vm_guard
from harness.backends.process import VMProcess

FAKE_VMM = """
import signal, subprocess, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen(["sleep", "1000"])
print("vmm ready", flush=True)
time.sleep(1000)
"""


def start(kind: str, mode: str, stderr: Path) -> VMProcess:
    if kind == "none":
        vm_guard.start = lambda kind=None: vm_guard.Guard()
    else:
        real = vm_guard.start
        vm_guard.start = lambda _=None: real(kind)
    vm = VMProcess([sys.executable, "-c", FAKE_VMM, mode], stderr)
    seen = b""
    deadline = time.monotonic() + 20
    while b"vmm ready" not in seen:  # its signals are set: only the guard can end it now
        data = vm.read(0.5)
        if data is None or time.monotonic() > deadline:
            raise SystemExit(f"the fake VMM did not start: {seen!r}")
        seen += data
    return vm


def main(kind: str, mode: str) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stderr = Path(tempfile.mkdtemp(prefix="gh-test-")) / "vmm.stderr"
    vm = start(kind, mode, stderr)
    proc = getattr(vm.guard, "proc", None)
    print(vm.pid, proc.pid if proc is not None else 0, flush=True)
    try:
        time.sleep(1000)
    except KeyboardInterrupt:
        vm.stop(grace=1.0)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
