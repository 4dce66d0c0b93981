"""Real boots with the socket console and the portable VM guard forced: the paths hosts
without ptys or PR_SET_PDEATHSIG (Windows, the BSDs, macOS) take, exercised here on every
commit. The default guest passes (on a unix socket and on TCP), a panic is a crash,
silence a hang, `send:` types, and --interactive hands the console over, exactly as on
the pty; and a SIGKILLed harness leaves no VM under either guard."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness.backends import transport
from harness.model import Verdict

from .conftest import GUESTS, TEST_GUESTS
from .test_boot import boot
from .test_hygiene import gone_within, start_hanging_run
from .test_interactive import harness_on_a_terminal, use_the_console

pytestmark = pytest.mark.vm


@pytest.fixture(autouse=True)
def other_hosts_paths(monkeypatch):
    monkeypatch.setenv("HARNESS_CONSOLE", "socket")
    monkeypatch.setenv("HARNESS_VM_GUARD", "portable")


def chardev(command: list[str]) -> str:
    return command[command.index("-chardev") + 1]


@pytest.mark.parametrize("unix", [True, False], ids=["unix", "tcp"])
def test_the_default_guest_passes_on_a_socket_console(store, tmp_path, qemu, monkeypatch,
                                                      unix):
    address = transport.socket_address  # runner imports it where it launches
    monkeypatch.setattr(transport, "socket_address", lambda sockdir: address(sockdir, unix))
    r = boot(GUESTS / "linux-busybox-x86_64.yaml", store, tmp_path)
    assert r.verdict is Verdict.PASS, r.reason
    assert all(m.reached for m in r.milestones) and r.attempts == 1
    assert chardev(r.command).startswith("socket,id=console,")
    assert ("path=" in chardev(r.command)) == unix
    assert chardev(r.command).endswith(",server=on,wait=on")
    raw = (tmp_path / r.artifacts["console_raw"]).read_bytes()
    assert raw.count(b"Linux version") == 1 and b"HARNESS-CHECK ok: cpu-works" in raw
    assert "stdio,id=console,signal=off" in (tmp_path / r.artifacts["repro"]).read_text()


def test_a_panic_is_a_crash_on_a_socket_console(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-panic.yaml", store, tmp_path)
    assert r.verdict is Verdict.CRASH, r.reason
    assert r.failure["name"] == "kernel-panic"
    assert b"Call Trace" in (tmp_path / r.artifacts["console_raw"]).read_bytes()


def test_silence_is_a_hang_on_a_socket_console(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-hang.yaml", store, tmp_path)
    assert r.verdict is Verdict.HANG
    assert r.reason == "no console output for 10 s; waiting for 'poweroff'"


def test_send_types_into_the_guest_on_a_socket_console(store, tmp_path, qemu):
    r = boot(TEST_GUESTS / "test-shell.yaml", store, tmp_path)
    assert r.verdict is Verdict.PASS, r.reason
    assert b"SUM=42" in (tmp_path / r.artifacts["console_raw"]).read_bytes()


def test_the_socket_console_is_handed_over_interactively(tmp_path, qemu, monkeypatch):
    monkeypatch.delenv("HARNESS_CONSOLE")  # the option alone chooses it
    use_the_console(harness_on_a_terminal(tmp_path, "--interactive",
                                          "--console-transport", "socket"))
    folder = next((tmp_path / "reports/latest/cells/test-interactive").glob("*"))
    assert "console.sock" in (folder / "command.txt").read_text()
    text = (folder / "console.log").read_text()
    assert "answer=42" in text and "the user left the console" in text


@pytest.mark.parametrize("guard", ["pdeathsig", "portable"])
def test_sigkill_of_the_harness_takes_its_socket_console_vm_down(tmp_path, qemu, guard):
    """No pty to hang up here: only the VM guard can end the VM — the kernel's
    PR_SET_PDEATHSIG, or the watchdog other hosts use (the path no pty helps)."""
    proc, qemus = start_hanging_run(tmp_path, guard)  # and HARNESS_CONSOLE=socket
    assert any(b"socket,id=console," in Path(f"/proc/{p}/cmdline").read_bytes() for p in qemus)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert gone_within(qemus, 5), f"QEMU {qemus} outlived the harness"


def test_repro_sh_of_a_socket_console_run_boots_on_the_terminal(tmp_path, default_images,
                                                                 qemu):
    """The run's console is a socket; its repro.sh, for a person, keeps QEMU's stdio."""
    from .test_repro import test_repro_sh_replays_a_cell_from_urls_in_a_clean_environment

    test_repro_sh_replays_a_cell_from_urls_in_a_clean_environment(tmp_path, default_images,
                                                                   qemu)
    folder = next((tmp_path / "reports/latest/cells").glob("*/*"))
    assert "socket,id=console," in (folder / "command.txt").read_text()
    assert "stdio,id=console,signal=off" in (folder / "repro.sh").read_text()
