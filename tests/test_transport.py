"""Console transports without QEMU: a fake VMM (tests/fake_vmm.py) serving its console on
a unix socket, TCP or pipes, read through the real VM classes, the session and the runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends import transport
from harness.backends.base import Launch, LaunchContext
from harness.backends.process import SpawnError, VMProcess, live_vms
from harness.backends.qemu import build_launch
from harness.backends.transport import ConsoleLost, PipeVM, SocketVM, choose, socket_address
from harness.console.session import run_session
from harness.console.tracker import BootTracker
from harness.console.transcript import Transcript
from harness.executor import CellContext, execute
from harness.model import BootSpec, Guest, Milestone, Timeouts, Verdict
from harness.plan import make_cell

from .conftest import register_backend
from .test_qemu_argv import IMAGES, opt
from .test_qemu_argv import cell as qemu_cell

FAKE = str(Path(__file__).resolve().parent / "fake_vmm.py")
MILESTONES = [Milestone("kernel", re.compile(r"Linux version \d")),
              Milestone("prompt", re.compile(r"/ # $"), send="poweroff\n"),
              Milestone("off", re.compile(r"Power down"))]


def gone(pid: int) -> bool:
    """No such process, or only its zombie left (reaped by whoever waits for it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def session(vm, folder: Path, stall: float = 10):
    tracker = BootTracker(MILESTONES, [], Timeouts(total=30, stall=stall),
                          start=time.monotonic())
    transcript = Transcript(folder)
    try:
        return run_session(vm, tracker, transcript)
    finally:
        transcript.close()


# --- choosing ---------------------------------------------------------------------

def test_the_option_wins_over_the_environment_which_wins_over_the_host_default():
    assert choose(None, {}, "posix") == "pty" and choose(None, {}, "nt") == "socket"
    assert choose(None, {"HARNESS_CONSOLE": "socket"}, "posix") == "socket"
    assert choose("pty", {"HARNESS_CONSOLE": "socket"}, "nt") == "pty"
    with pytest.raises(ValueError, match="HARNESS_CONSOLE: 'tcp' is not a console transport"):
        choose(None, {"HARNESS_CONSOLE": "tcp"})
    with pytest.raises(ValueError, match="--console-transport: 'x'"):
        choose("x", {})


@pytest.mark.parametrize("args, env, message", [
    (["--console-transport", "tcp"], {}, "argument --console-transport: invalid choice: 'tcp'"),
    ([], {"HARNESS_CONSOLE": "serial"}, "HARNESS_CONSOLE: 'serial' is not a console transport"),
])
def test_a_bad_transport_is_a_usage_error(tmp_path, args, env, message):
    for command in (["run"], ["repro", "a/b/c"]):
        proc = subprocess.run([sys.executable, "-m", "harness", *command, "--matrix",
                               str(tmp_path / "none.yaml"), *args],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


# --- QEMU's command line --------------------------------------------------------------

@pytest.mark.parametrize("address, chardev", [
    ("unix:/tmp/gh-x/console.sock",
     "socket,id=console,path=/tmp/gh-x/console.sock,server=on,wait=on"),
    ("tcp:127.0.0.1:4555", "socket,id=console,host=127.0.0.1,port=4555,server=on,wait=on"),
])
def test_qemu_serves_the_console_on_a_socket_and_repro_keeps_the_terminal(address, chardev):
    launch = build_launch(qemu_cell(), IMAGES, LaunchContext(Path("/run"), Path("/tmp/gh-x"),
                                                             console=address))
    assert opt(launch.argv, "-chardev") == [chardev] and launch.console == address
    assert opt(launch.argv, "-serial") == ["chardev:console"]
    assert opt(launch.argv, "-qmp") == ["unix:/tmp/gh-x/qmp.sock,server=on,wait=off"]
    assert launch.terminal_argv is not None
    assert opt(launch.terminal_argv, "-chardev") == ["stdio,id=console,signal=off"]
    assert [a for a in launch.terminal_argv if a not in launch.argv] == \
        ["stdio,id=console,signal=off"]
    pty = build_launch(qemu_cell(), IMAGES, LaunchContext(Path("/run"), Path("/tmp/gh-x")))
    assert pty.terminal_argv is None and pty.argv == launch.terminal_argv


def test_a_socket_address_is_unix_where_the_host_has_it_else_local_tcp(tmp_path):
    assert socket_address(tmp_path, unix=True) == f"unix:{tmp_path}/console.sock"
    assert re.fullmatch(r"tcp:127\.0\.0\.1:\d+", socket_address(tmp_path, unix=False))


# --- the VM classes through the session ---------------------------------------------

@pytest.mark.parametrize("unix", [True, False], ids=["unix", "tcp"])
def test_a_boot_on_a_socket_console_passes_and_typed_text_reaches_the_vmm(tmp_path, unix):
    address = socket_address(tmp_path, unix)
    vm = SocketVM([sys.executable, FAKE, address, "boot"], tmp_path / "vmm.stderr", address)
    try:
        outcome = session(vm, tmp_path)
        assert outcome.end == "complete", outcome
        assert sorted(outcome.reached) == [0, 1, 2]
        assert vm.wait(5) == 0
    finally:
        vm.stop()
    assert "you typed: poweroff" in (tmp_path / "console.log").read_text()
    assert gone(vm.pid) and vm not in live_vms()


def test_a_boot_on_pipes_passes(tmp_path):
    vm = PipeVM([sys.executable, FAKE, "stdio", "boot"], tmp_path / "vmm.stderr")
    try:
        outcome = session(vm, tmp_path)
        assert outcome.end == "complete" and vm.wait(5) == 0
    finally:
        vm.stop()
    assert "you typed: poweroff" in (tmp_path / "console.log").read_text()


def test_a_socket_nobody_serves_is_a_spawn_error_and_no_process_is_left(tmp_path):
    address = socket_address(tmp_path, True)
    t0 = time.monotonic()
    with pytest.raises(SpawnError, match=r"console socket unix:.* accepted no connection "
                                         r"within 1 s"):
        SocketVM([sys.executable, FAKE, address, "never"], tmp_path / "vmm.stderr", address,
                 connect_timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert not [vm for vm in live_vms() if vm.argv[1] == FAKE]
    assert not _fake_processes(address)


def test_a_console_that_closes_mid_boot_is_lost_and_the_vmm_is_stopped(tmp_path):
    address = socket_address(tmp_path, True)
    vm = SocketVM([sys.executable, FAKE, address, "close"], tmp_path / "vmm.stderr", address)
    try:
        with pytest.raises(ConsoleLost, match=r"console socket unix:.* closed while"):
            session(vm, tmp_path)
        assert vm.alive()  # the VMM runs on: only stop() ends it
    finally:
        vm.stop()
    assert gone(vm.pid) and vm not in live_vms()


def test_a_vmm_that_exits_before_serving_is_an_exit_with_its_stderr(tmp_path):
    address = socket_address(tmp_path, True)
    vm = SocketVM([sys.executable, "-c", "import sys; sys.exit('no such machine')"],
                  tmp_path / "vmm.stderr", address)
    outcome = session(vm, tmp_path)
    vm.stop()
    assert outcome.end == "exited" and outcome.exit_status == 1
    assert "no such machine" in (tmp_path / "vmm.stderr").read_text()


def _fake_processes(marker: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and not gone(int(entry)):
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and FAKE.encode() in cmdline:
                out.append(int(entry))
    return out


# --- the runner, as a run uses it -------------------------------------------------------

@pytest.fixture
def fake(monkeypatch):
    register_backend(monkeypatch, "fake", "tests.fake_vmm_backend", "tests/fake_vmm.py")


def fake_cell(mode: str, stall: float = 10):
    g = Guest(id="g", name="g", os="linux", arch="x86_64", images={},
              boot=BootSpec("kernel", kernel="k", cmdline=mode), firmware=["bios"],
              memory_mb=64, vcpus=1, console="serial", milestones=MILESTONES, failures=[])
    return make_cell(g, "fake", "bios", Timeouts(total=30, stall=stall), 64)


@pytest.mark.parametrize("console", ["pty", "socket"])
def test_a_run_passes_on_either_transport_and_repro_keeps_the_terminal(
        fake, tmp_path, monkeypatch, console):
    monkeypatch.setenv("HARNESS_CONSOLE", console)
    c = fake_cell("boot")
    r = execute(c, {}, CellContext(tmp_path))
    assert r.verdict is Verdict.PASS, r.reason
    folder = tmp_path / c.folder
    assert ("console.sock" in (folder / "command.txt").read_text()) == (console == "socket")
    script = (folder / "repro.sh").read_text()
    assert "stdio boot" in script and "console.sock" not in script


@pytest.mark.parametrize("console", ["pty", "socket"])
def test_a_silent_guest_is_a_hang_on_either_transport(fake, tmp_path, monkeypatch, console):
    monkeypatch.setenv("HARNESS_CONSOLE", console)
    r = execute(fake_cell("hang", stall=1), {}, CellContext(tmp_path))
    assert r.verdict is Verdict.HANG, r.reason


def test_a_lost_console_is_an_error_retried_once_never_a_guest_verdict(
        fake, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CONSOLE", "socket")
    r = execute(fake_cell("close"), {}, CellContext(tmp_path, retry_errors=True))
    assert r.verdict is Verdict.ERROR and r.attempts == 2
    assert re.search(r"the console socket unix:\S+ closed while python\S* \(pid \d+\) was "
                     r"still running", r.reason or ""), r.reason
    assert not live_vms() and not _fake_processes("close")


def test_a_bad_transport_in_the_environment_is_a_cell_error(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CONSOLE", "serial")
    r = execute(fake_cell("boot"), {}, CellContext(tmp_path))
    assert r.verdict is Verdict.ERROR and "HARNESS_CONSOLE: 'serial'" in (r.reason or "")


def test_the_pty_stays_the_posix_default_and_a_socket_needs_a_launch_that_serves_one(
        tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_CONSOLE", raising=False)
    assert transport.choose() == "pty"
    launch = Launch([sys.executable, FAKE, "stdio", "hang"])
    for console, kind in (("pty", VMProcess), ("socket", PipeVM)):
        vm = transport.open_console(launch, tmp_path / "vmm.stderr", console)
        try:
            assert type(vm) is kind
            assert b"Linux version" in _read_until(vm, b"/ # ")
        finally:
            vm.stop()
        assert gone(vm.pid)


def _read_until(vm, end: bytes, within: float = 10) -> bytes:
    got, deadline = b"", time.monotonic() + within
    while end not in got and time.monotonic() < deadline:
        got += vm.read(0.1) or b""
    return got


def test_without_process_groups_a_vmm_and_its_children_are_still_ended(tmp_path, monkeypatch):
    """Windows has no killpg: stop() ends the VMM and every process it started through
    psutil, first politely, then by force."""
    import psutil

    monkeypatch.delattr(os, "killpg")
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', " \
             "'import time; time.sleep(300)']); print('up', flush=True); time.sleep(300)"
    vm = PipeVM([sys.executable, "-c", script], tmp_path / "vmm.stderr")
    try:
        assert vm.read(10.0)  # "up": its child has been started
        children = psutil.Process(vm.pid).children(recursive=True)
        assert children
    finally:
        vm.stop(grace=2.0)
    assert gone(vm.pid) and vm not in live_vms()
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
