"""The `try` watch loop against a scripted console (no VM): when it presses Enter,
when silence is a hang, and that a long quiet stretch inside a boot (NetBSD's MAKEDEV)
is not one while output may still come."""

from __future__ import annotations

import time

from harness.backends.base import Launch
from harness.tryout.observe import observe


class ScriptedConsole:
    """A VM's console that says each line at its time (seconds from the start) and
    echoes a new prompt for every Enter once `prompt_at` has passed."""

    def __init__(self, script: list[tuple[float, str]], prompt: str = "", prompt_at: float = 0):
        self.started = time.monotonic()
        self.script = list(script)
        self.prompt, self.prompt_at = prompt, prompt_at
        self.out = b""
        self.enters: list[float] = []

    def read(self, timeout: float) -> bytes:
        time.sleep(timeout)
        t = time.monotonic() - self.started
        while self.script and self.script[0][0] <= t:
            self.out += self.script.pop(0)[1].encode()
        data, self.out = self.out, b""
        return data

    def write(self, data: bytes) -> None:
        t = time.monotonic() - self.started
        self.enters.append(t)
        if self.prompt and t >= self.prompt_at:
            self.out += f"\r\n{self.prompt}".encode()

    def wait(self, timeout: float) -> int:
        return 0


def watch(vm: ScriptedConsole, tmp_path, **kw):
    return observe(vm, Launch(argv=[]), tmp_path, lambda sink: None, limit=20, **kw)


KERNEL = "NetBSD 5.99.15 (G4U-KERNEL) #0: Sun Jan  4 2009\r\n"


def test_silence_after_the_answers_is_a_hang(tmp_path):
    vm = ScriptedConsole([(0.1, KERNEL)])
    o = watch(vm, tmp_path, quiet=0.3, hang=2.0)
    assert o.verdict == "hang" and o.phase == "kernel", o
    assert len(vm.enters) == 4  # the bounded answers, then the hang
    assert o.end.startswith("no output for")


def test_a_long_quiet_stretch_with_output_after_it_is_no_hang(tmp_path):
    """Four Enters go into the kernel's quiet start; MAKEDEV is silent longer than the
    Enters last; then the g4u prompt comes and answers (the Enters typed ahead show)."""
    vm = ScriptedConsole([(0.1, KERNEL), (0.2, "Running MAKEDEV all ...\r\n"),
                          (4.0, " Welcome to g4u Harddisk Image Cloning 2.5!\r\ng4u> ")],
                         prompt="g4u> ", prompt_at=4.0)
    o = watch(vm, tmp_path, quiet=0.3, hang=3.0)
    assert o.verdict == "pass" and o.label == "g4u shell", o
    assert o.interactive


def test_without_answers_silence_is_a_hang_as_well(tmp_path):
    vm = ScriptedConsole([(0.1, KERNEL)])
    o = watch(vm, tmp_path, quiet=0.3, hang=1.0, answer=False)
    assert o.verdict == "hang" and not vm.enters
    assert o.duration < 5  # the silence the caller set, not the answers' time


def test_a_program_that_runs_by_itself_needs_no_prompt(tmp_path):
    """Memtest86+ tests memory for ever and never asks: testing is as far as it goes."""
    vm = ScriptedConsole([(0.1, "      Memtest86+ v6.10  \r\n"),
                          (0.5, "| Status: Testing (      )\r\n")])
    o = watch(vm, tmp_path, quiet=0.3, hang=2.0)
    assert (o.verdict, o.label, o.end) == ("pass", "Memtest86+ testing", "it runs by itself")
    assert o.duration < 4  # no Enter waited for


GRUB_ERROR = "Welcome to GRUB!\r\n\r\nerror: no such device: /.disk/info.\r\n"


def test_an_error_the_loader_goes_on_from_is_not_the_end(tmp_path):
    """Debian's monolithic grubx64.efi looks for its CD, says so, and gives its prompt."""
    vm = ScriptedConsole([(0.1, GRUB_ERROR), (0.3, "grub> ")], prompt="grub> ")
    o = watch(vm, tmp_path, quiet=0.3, hang=1.0)
    assert (o.verdict, o.label) == ("pass", "GRUB command line"), o


def test_an_error_with_nothing_after_it_is_the_verdict(tmp_path):
    vm = ScriptedConsole([(0.1, GRUB_ERROR)])
    o = watch(vm, tmp_path, quiet=0.3, hang=1.0, answer=False)
    assert (o.verdict, o.label) == ("fail", "GRUB error"), o
    assert "no such device" in o.end


def test_a_shell_on_the_console_is_confirmed_after_a_short_silence(tmp_path):
    """A userland shell waits by what it is: its Enter comes after WAITING_QUIET, not after
    the full quiet period a boot that may still go on gets (FreeDOS boots in 1.5 s)."""
    vm = ScriptedConsole([(0.1, "FreeCom version 0.82 pl 3\r\n/ # ")], prompt="/ # ")
    o = watch(vm, tmp_path, quiet=3.0, hang=5.0)
    assert (o.verdict, o.label) == ("pass", "shell prompt"), o
    assert vm.enters and vm.enters[0] < 2.5, vm.enters
