"""The VM guard: no VM outlives the harness, even killed by SIGKILL, with either guard.

Real processes, no QEMU: a stand-in harness (tests/guard_harness.py) starts a fake
VMM through `VMProcess` the way the runner does; the fake VMM ignores SIGHUP, so
the pty hang-up cannot do the guard's work for it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.backends import guard as vm_guard
from harness.backends.process import SpawnError, VMProcess

from .conftest import ROOT
from .test_damaged import echo_matrix

posix = pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)  # a group of zombies only is gone (ESRCH) too
    except ProcessLookupError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    """Running (a zombie is not: nobody may reap an orphan here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def gone_within(alive, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive():
            return True
        time.sleep(0.05)
    return False


def stand_in(kind: str, mode: str = "polite") -> tuple[subprocess.Popen, int, int]:
    """The stand-in harness in a session of its own (as a shell's foreground job would
    be a group of its own); its VMM's group and its watchdog's pid once the VMM runs."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.guard_harness", kind, mode],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"the stand-in harness failed: {proc.communicate()[1]}")
    group, watchdog = map(int, line.split())
    return proc, group, watchdog


@posix
@pytest.mark.parametrize("mode", ["polite", "stubborn"])
def test_sigkill_of_the_harness_ends_the_vm_group_with_the_portable_guard(mode):
    proc, group, watchdog = stand_in("portable", mode)
    try:
        assert group_alive(group) and pid_alive(watchdog)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # SIGTERM, a grace of 2 s, then SIGKILL for the stubborn one
        assert gone_within(lambda: group_alive(group), 10), f"VM group {group} outlived it"
        assert gone_within(lambda: pid_alive(watchdog), 5), "the watchdog stayed"
    finally:
        if group_alive(group):
            os.killpg(group, signal.SIGKILL)


@posix
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_the_harness_ends_the_vm_with_pdeathsig():
    proc, group, watchdog = stand_in("pdeathsig")
    try:
        assert watchdog == 0  # no watchdog process on this path
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # the death signal kills the VMM itself (not its children: QEMU has none)
        assert gone_within(lambda: pid_alive(group), 5), f"VMM {group} outlived the harness"
    finally:
        if group_alive(group):
            os.killpg(group, signal.SIGKILL)


@posix
def test_without_a_guard_the_fake_vm_would_survive():
    """The control: the tests above can fail. No guard, SIGHUP ignored: the VM stays."""
    proc, group, _ = stand_in("none")
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)
        assert group_alive(group)
    finally:
        os.killpg(group, signal.SIGKILL)


@posix
def test_ctrl_c_reaches_the_harness_not_the_watchdog():
    """Ctrl-C goes to the foreground group: the harness stops its VM itself and says
    `done`; the watchdog, in a session of its own and ignoring SIGINT, neither dies
    early nor kills anything, and does not outlive the VM."""
    proc, group, watchdog = stand_in("portable")
    try:
        os.kill(watchdog, signal.SIGINT)  # even sent to it directly
        os.kill(watchdog, signal.SIGHUP)
        time.sleep(0.5)
        assert pid_alive(watchdog) and group_alive(group)
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the harness's group
        assert proc.wait(15) == 130, proc.stderr.read()
        assert gone_within(lambda: group_alive(group), 5)
        assert gone_within(lambda: pid_alive(watchdog), 5)
    finally:
        if proc.poll() is None:
            proc.kill()
        if group_alive(group):
            os.killpg(group, signal.SIGKILL)


FAKE = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(1000)"]


@posix
def test_a_normal_stop_tells_the_watchdog_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_VM_GUARD", "portable")
    vm = VMProcess(FAKE, tmp_path / "stderr")
    guard = vm.guard
    assert isinstance(guard, vm_guard.WatchdogGuard)
    assert Path(guard.pidfile).read_text().strip() == str(vm.pid)  # written before exec
    assert guard.proc.poll() is None
    vm.stop(grace=1.0)
    assert guard.proc.returncode == 0  # it exited on `done`, reaped: no process left
    assert not Path(guard.pidfile).exists()
    assert not group_alive(vm.pid)
    vm.close()  # twice is harmless


@posix
@pytest.mark.parametrize("command, why", [
    (lambda pidfile, grace: ["/nonexistent/python"], "cannot start the VM guard"),
    (lambda pidfile, grace: [sys.executable, "-c", "raise SystemExit(3)"],
     "it exited with status 3"),
])
def test_a_guard_that_cannot_start_is_a_spawn_error_and_no_vm(tmp_path, monkeypatch,
                                                                 command, why):
    monkeypatch.setenv("HARNESS_VM_GUARD", "portable")
    monkeypatch.setattr(vm_guard, "watchdog_command", command)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    marker = tmp_path / "ran"
    with pytest.raises(SpawnError, match=why):
        VMProcess([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], tmp_path / "stderr")
    time.sleep(0.3)
    assert not marker.exists()
    assert not list(temp.iterdir())  # its pid file is gone too


BROKEN_GUARD_RUN = """
import sys
from harness import knowledge
from harness.backends import guard
from harness.cli import main
from tests.echo_run import ECHO
guard.watchdog_command = lambda pidfile, grace: ["/nonexistent/guard-python"]
knowledge.backends()["echo"] = ECHO
sys.exit(main(sys.argv[1:]))
"""


@posix
def test_a_guard_that_cannot_start_ends_the_cell_as_error(tmp_path):
    """The host's fault, retried once as any, never a guest verdict."""
    args = echo_matrix(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", BROKEN_GUARD_RUN, "run", *args, "--only", "g1/*",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
        env={**ENV, "HARNESS_VM_GUARD": "portable"}, timeout=60)
    assert proc.returncode == 1, proc.stderr
    results = json.loads((tmp_path / "out/latest/results.json").read_text())
    [cell] = results["cells"]
    assert cell["verdict"] == "error", cell
    assert "cannot start the VM guard" in cell["reason"]
    assert cell["attempts"] == 2  # retried once, as any host fault


def test_the_guard_is_chosen_by_the_environment_and_refuses_nonsense(monkeypatch):
    linux = sys.platform.startswith("linux")
    assert vm_guard.selected({}) == ("pdeathsig" if linux else "portable")
    assert vm_guard.selected({"HARNESS_VM_GUARD": "portable"}) == "portable"
    with pytest.raises(ValueError, match="HARNESS_VM_GUARD='pdeath': must be one of"):
        vm_guard.selected({"HARNESS_VM_GUARD": "pdeath"})
    monkeypatch.setattr(sys, "platform", "darwin")
    assert vm_guard.selected({}) == "portable"
    with pytest.raises(ValueError, match="exists only on Linux"):
        vm_guard.selected({"HARNESS_VM_GUARD": "pdeathsig"})


def test_an_unknown_guard_is_a_usage_error_naming_the_variable():
    proc = subprocess.run([sys.executable, "-m", "harness", "list"], capture_output=True,
                          text=True, cwd=ROOT, env={**ENV, "HARNESS_VM_GUARD": "pdeath-sig"},
                          timeout=30)
    assert proc.returncode == 2
    assert proc.stderr == ("harness: HARNESS_VM_GUARD='pdeath-sig': must be one of "
                           "pdeathsig, portable\n")


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="the 64-bit layout")
def test_the_job_object_structure_has_the_windows_x64_layout():
    """What can be checked off Windows: the layout SetInformationJobObject reads.
    Windows x64 (LLP64) and this host agree on every type used (no `long`). The declaration
    is winnt.h's; the x64 offsets of the basic part are those other bindings spell out by
    hand (e.g. Meziantou.Framework's JOBOBJECT_BASIC_LIMIT_INFORMATION64 [FieldOffset]s:
    16, 24, 32, 40, 48, 56); the extended structure is 144 bytes on x64."""
    basic, io, extended = vm_guard.job_structures()
    assert ctypes.sizeof(basic) == 64
    assert basic.LimitFlags.offset == 16
    assert basic.ActiveProcessLimit.offset == 40
    assert basic.Affinity.offset == 48
    assert basic.SchedulingClass.offset == 60
    assert ctypes.sizeof(io) == 48
    assert ctypes.sizeof(extended) == 144
    assert extended.IoInfo.offset == 64
    assert extended.ProcessMemoryLimit.offset == 112
    assert extended.PeakJobMemoryUsed.offset == 136
    info = extended()
    info.BasicLimitInformation.LimitFlags = vm_guard.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    raw = bytes(info)
    assert int.from_bytes(raw[16:20], "little") == 0x2000 and raw.count(0) == 143


def test_the_watchdog_refuses_bad_arguments():
    script = str(Path(vm_guard.__file__))
    for argv in ([], ["a", "b", "c"], ["pidfile", "soon"]):
        proc = subprocess.run([sys.executable, "-I", "-S", script, *argv],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, argv


class FakeKernel32:
    """Records the Job Object calls (the real ones exist on Windows only)."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple] = []
        self.fail = fail
        for name in ("CreateJobObjectW", "SetInformationJobObject", "OpenProcess",
                     "AssignProcessToJobObject", "CloseHandle"):
            setattr(self, name, self._call(name))

    def _call(self, name: str):
        def call(*args):
            self.calls.append((name, *args))
            if name == self.fail:
                return 0
            return {"CreateJobObjectW": 1000, "OpenProcess": 2000}.get(name, 1)

        class Fn:  # takes restype/argtypes like a ctypes function
            __call__ = staticmethod(call)

        return Fn()


@pytest.mark.parametrize("fail", ["", "AssignProcessToJobObject"])
def test_the_windows_guard_makes_a_kill_on_close_job_and_assigns_the_vm(monkeypatch, fail):
    """The call sequence with a stand-in kernel32; whether Windows then ends the VM with
    the harness is not testable here (no Windows host was used)."""
    kernel32 = FakeKernel32(fail)
    monkeypatch.setattr(ctypes, "WinDLL", lambda name, **kw: kernel32, raising=False)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: 5, raising=False)
    monkeypatch.setattr(ctypes, "FormatError", lambda code: "Access is denied.", raising=False)
    monkeypatch.setattr(vm_guard, "_JOB", None)
    guard = vm_guard.JobGuard()
    name, job, klass, info, size = kernel32.calls[1]
    assert kernel32.calls[0][0] == "CreateJobObjectW"
    assert (name, job, klass) == ("SetInformationJobObject", 1000, 9)
    assert info._obj.BasicLimitInformation.LimitFlags == 0x2000
    assert size == ctypes.sizeof(vm_guard.job_structures()[2])
    if fail:
        with pytest.raises(vm_guard.GuardError,
                           match=r"cannot assign process 42 to its job: Access is denied\."):
            guard.arm(42)
    else:
        guard.arm(42)
    assert kernel32.calls[2:] == [("OpenProcess", 0x0101, False, 42),
                                  ("AssignProcessToJobObject", 1000, 2000),
                                  ("CloseHandle", 2000)]
    vm_guard.JobGuard()  # one job per harness process
    assert [c[0] for c in kernel32.calls].count("CreateJobObjectW") == 1
