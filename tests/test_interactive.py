"""--interactive: the harness itself driven through pexpect, as a person would."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from .conftest import TEST_GUESTS, write
from .test_hygiene import _is_qemu, descendants, gone_within

pytestmark = pytest.mark.vm


def harness_on_a_terminal(tmp_path, *flags: str) -> pexpect.spawn:
    """`harness run` of the one-cell test-interactive matrix, on a pty of our own."""
    m = write(tmp_path / "matrix.yaml", "guests: [test-interactive]\nbackends: [tcg]\n")
    return pexpect.spawn(sys.executable, ["-m", "harness", "run", "--matrix", str(m),
                                          "--guests", str(TEST_GUESTS), *flags],
                         timeout=120, encoding="utf-8", codec_errors="replace",
                         env={**os.environ, "TERM": "dumb"})


def use_the_console(child: pexpect.spawn) -> None:
    """As a person would: a shell command, the QEMU monitor, then Ctrl-] to quit; the
    harness ends with the cell passed (its last milestone came before) and no VM left."""
    try:
        child.expect(r"the console is yours\. Ctrl-\] quits")
        qemus = [p for p in descendants(child.pid) if _is_qemu(p)]
        assert qemus
        time.sleep(0.5)
        child.send("echo answer=$((6*7))\r")
        child.expect("answer=42")
        child.send("\x1c")  # the QEMU monitor
        child.send("info status\r")
        child.expect("VM status: running")
        child.send("\x1d")  # Ctrl-]
        child.expect("console closed; stopping the VM")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert gone_within(qemus, 5)


def test_the_console_is_handed_over_and_quit_with_the_escape_key(tmp_path, qemu):
    use_the_console(harness_on_a_terminal(tmp_path, "--interactive"))
    log = next((tmp_path / "reports/latest/cells/test-interactive").glob("*/console.log"))
    text = log.read_text()
    assert "answer=42" in text and "the user left the console" in text


def test_interactive_needs_one_cell(tmp_path):
    import subprocess

    m = write(tmp_path / "matrix.yaml", "guests: [test-*]\nbackends: [tcg]\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--matrix", str(m),
                           "--guests", str(TEST_GUESTS), "--interactive"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--interactive and --gdb need exactly one cell" in proc.stderr


def test_gdb_starts_the_vm_paused_with_a_stub_to_attach_to(tmp_path, qemu):
    import re
    import socket

    child = harness_on_a_terminal(tmp_path, "--gdb")
    try:
        child.expect(r"gdb -ex 'target remote 127\.0\.0\.1:(\d+)'")
        port = int(child.match.group(1))
        time.sleep(3)  # paused: no deadline may end the cell meanwhile
        qemus = [p for p in descendants(child.pid) if _is_qemu(p)]
        assert qemus and any(b"-S" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
                             for p in qemus)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as gdb:
            gdb.sendall(b"$?#3f")  # the remote protocol: why did you stop?
            reply = b""
            while not re.search(rb"\$[^#]*#..", reply):
                reply += gdb.recv(4096)
            assert re.search(rb"\$(T05|S05)", reply), reply  # stopped by a trap: paused
            gdb.sendall(b"+$c#63")  # continue
            child.expect(r"the console is yours")
        child.send("\x1d")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert gone_within(qemus, 5)
