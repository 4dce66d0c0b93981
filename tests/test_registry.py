"""The backend registry: a new backend is one module plus one backends.yaml entry."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from harness.backends import registry
from harness.config import ConfigError, load_guest
from harness.executor import CellContext, execute, preflight
from harness.model import BootSpec, Guest, Milestone, Timeouts, Verdict
from harness.plan import make_cell

from .conftest import ROOT, register_backend, write


@pytest.fixture
def echo(monkeypatch):
    return register_backend(monkeypatch, "echo", "tests.echo_backend", "a printed console")


def guest(console: str, **kw) -> Guest:
    ms = [Milestone("kernel", re.compile(r"Linux version \d")),
          Milestone("init", re.compile(r"Run /init"))]
    return Guest(id="g", name="g", os="linux", arch="x86_64", images={},
                 boot=BootSpec("kernel", kernel="k", cmdline=console), firmware=["bios"],
                 memory_mb=64, vcpus=1, console="serial", milestones=ms, failures=[], **kw)


def test_a_backend_from_one_module_and_one_entry_runs_a_cell(echo, tmp_path):
    cell = make_cell(guest(r"Linux version 6.1\nRun /init as init process\n"), "echo", "bios",
                     Timeouts(20, 10), 64)
    probe = registry.static_probe("echo")
    assert probe.usable, probe.reason
    assert preflight(cell, probe, registry.host_facts()) is None
    r = execute(cell, {}, CellContext(tmp_path))
    assert r.verdict is Verdict.PASS, r.reason
    assert [m.reached for m in r.milestones] == [True, True]
    assert r.vmm["name"] == "echo" and r.artifacts["repro"].endswith("repro.sh")
    folder = tmp_path / cell.folder
    assert "# afterwards: rm -f" in (folder / "command.txt").read_text()
    assert not (folder / "console.txt").exists()  # the teardown ran
    script = (folder / "repro.sh").read_text()
    assert 'cat > "$WORK/echo.py"' in script and "trap teardown EXIT INT TERM" in script
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_capabilities_are_checked_before_anything_runs(echo, tmp_path):
    screen = make_cell(guest("x"), "echo", "bios", Timeouts(), 64)
    screen.guest.console = "vga-text"
    assert "serial-console guests only" in registry.get("echo").why_not(screen)
    assert registry.lacking([screen], "gdb") == ["echo"]
    tcg = make_cell(guest("x"), "tcg", "bios", Timeouts(), 64)
    assert registry.lacking([tcg], "gdb") == [] and registry.get("tcg").can("screen")
    disk = make_cell(guest("x"), "echo", "bios", Timeouts(), 64)
    disk.guest.boot = BootSpec("disk", image="d")
    assert registry.get("echo").why_not(disk) == "echo boots kernels only"


def test_gdb_and_interactive_on_a_backend_without_them_are_usage_errors():
    for flag in ("--gdb", "--interactive"):
        proc = subprocess.run([sys.executable, "-m", "harness", "run", "--matrix",
                               str(ROOT / "matrix.yaml"), "--only", "grub-2.06-iso/bochs/bios",
                               flag], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert f"{flag} needs a backend with a {flag[2:]} capability; bochs has none" \
            in proc.stderr


def test_a_quirk_a_backend_cannot_apply_is_a_load_time_error(tmp_path):
    text = (ROOT / "guests" / "grub-2.06-iso.yaml").read_text()
    assert "\nquirks:" not in text
    bad = write(tmp_path / "grub-2.06-iso.yaml", text + "quirks:\n  bochs: [noapic]\n")
    with pytest.raises(ConfigError) as err:
        load_guest(bad)
    assert re.search(rf"{re.escape(str(bad))}:\d+: quirks\.bochs\[0\]: quirk 'noapic' sets "
                     r"append, which bochs cannot apply \(it applies: no quirk fields\)",
                     str(err.value)), str(err.value)
    ok = write(tmp_path / "ok" / "grub-2.06-iso.yaml", text + "quirks:\n  xen: [noapic]\n")
    assert load_guest(ok).quirks == {"xen": ["noapic"]}  # xl puts `append` on the cmdline


def test_a_foreign_guest_on_a_same_arch_accelerator_is_skipped_for_its_arch():
    """Not with the canary's reason: no working KVM would run an arm64 guest on x86_64."""
    from harness.backends.probe import UNUSABLE, HostFacts, Probe

    host = HostFacts(os="Linux", arch="x86_64", kernel="6.1", hostname="h", cpu="c")
    canary = Probe("kvm", UNUSABLE, "canary failed: KVM internal error", True)
    arm = make_cell(guest("x"), "kvm", "bios", Timeouts(), 64)
    arm.guest.arch = "aarch64"
    assert preflight(arm, canary, host) == (
        "kvm runs guests of the host's architecture (x86_64), not aarch64")
    same = make_cell(guest("x"), "kvm", "bios", Timeouts(), 64)
    assert preflight(same, canary, host) == "kvm unusable: canary failed: KVM internal error"
    soft = make_cell(guest("x"), "tcg", "bios", Timeouts(), 64)
    soft.guest.arch = "aarch64"  # tcg is not hardware: its probe decides, as before
    tcg_gone = Probe("tcg", UNUSABLE, "broken", False)
    assert preflight(soft, tcg_gone, host) == "tcg unusable: broken"
