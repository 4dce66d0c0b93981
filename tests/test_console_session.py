"""The session loop with a scripted VM: transcript text, sends, outcome (no QEMU)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from harness.console import session
from harness.console.session import run_session
from harness.console.tracker import BootTracker
from harness.console.transcript import Transcript
from harness.model import FailureSignature, Milestone, Timeouts


class ScriptedVM:
    """Reads come from a list; None is end of file (the VM exited)."""

    def __init__(self, folder: Path, reads: list[bytes | None]) -> None:
        self.stderr_path = folder / "vmm.stderr"
        self.stderr_path.write_bytes(b"")
        self.reads = list(reads)
        self.written: list[bytes] = []

    def read(self, timeout: float) -> bytes | None:
        return self.reads.pop(0) if self.reads else None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def wait(self, timeout: float) -> int:
        return 0


def test_a_session_logs_the_cleaned_text_and_types_sends(tmp_path):
    ms = [Milestone("kernel", re.compile("Linux version")),
          Milestone("prompt", re.compile(r"# $"), send="poweroff\n"),
          Milestone("off", re.compile("Power down"), optional=True)]
    fail = [FailureSignature("oops", re.compile("Oops: "), fatal=False)]
    vm = ScriptedVM(tmp_path, [b"\x1b[1mLinux version 6\x1b[0m\r\n", b"Oops: 1\r\n/ # ", b"",
                               b"reboot: Power down\r\n"])
    tracker = BootTracker(ms, fail, Timeouts(total=100, stall=20), start=time.monotonic())
    transcript = Transcript(tmp_path)
    seen = []
    outcome = run_session(vm, tracker, transcript, on_event=lambda ev: seen.append(ev.name))
    transcript.close()
    assert outcome.end == "complete" and sorted(outcome.reached) == [0, 1, 2]
    assert seen == ["kernel", "oops", "prompt", "off"] and vm.written == [b"poweroff\n"]
    log = (tmp_path / "console.log").read_text()
    assert "Linux version 6\n" in log and "\x1b" not in log  # the text the patterns saw
    assert "### harness: milestone 'prompt' matched" in log
    assert (tmp_path / "console.raw").read_bytes().startswith(b"\x1b[1mLinux version 6")


def test_the_vm_exiting_early_is_noted(tmp_path):
    vm = ScriptedVM(tmp_path, [b"Linux version 6\n", None])
    tracker = BootTracker([Milestone("kernel", re.compile("Linux version")),
                           Milestone("init", re.compile("Run /init"))], [],
                          Timeouts(total=100, stall=20), start=time.monotonic())
    with_log = Transcript(tmp_path, raw=False)
    outcome = run_session(vm, tracker, with_log)
    with_log.close()
    assert outcome.end == "exited" and outcome.reached.keys() == {0}
    assert "VM exited with status 0" in (tmp_path / "console.log").read_text()
    assert not (tmp_path / "console.raw").exists()


def test_transcript_is_still_importable_from_the_session():
    assert session.Transcript is Transcript  # harness/interact.py imports it from there
