"""The pytest plugin: a matrix as test items, with pytest's skip, xfail and failures."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from .conftest import GUESTS, TEST_GUESTS, write

pytestmark = pytest.mark.vm


def test_cells_become_items_with_skips_xfails_and_console_tails(tmp_path, qemu):
    guests = tmp_path / "guests"
    guests.mkdir()
    shutil.copy(GUESTS / "linux-busybox-x86_64.yaml", guests)
    shutil.copy(TEST_GUESTS / "test-panic.yaml", guests)
    # a boot that passes and a payload test that fails: a failed item, naming the test
    hang = (TEST_GUESTS / "test-payload-hang.yaml").read_text()
    fails = hang[:hang.index("  - {name: hang")] + "  - {name: fails, run: \"echo nope; false\"}\n"
    write(guests / "test-payload-fails.yaml", fails.replace("id: test-payload-hang",
                                                              "id: test-payload-fails")
          + hang[hang.index("timeouts:"):])
    write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg, nvmm]\nfirmware: [bios]\n"
                                    "expect:\n  - {guest: test-panic, backend: nvmm, reason: x}\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--harness-matrix", "matrix.yaml", "-v", "-rs"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "::linux-busybox-x86_64/tcg/bios PASSED" in out
    assert "::linux-busybox-x86_64/nvmm/bios SKIPPED" in out
    assert "::test-panic/tcg/bios FAILED" in out
    assert "test-panic/tcg/bios: crash: kernel-panic: Kernel panic - not syncing" in out
    assert "--- console tail ---" in out and "Call Trace" in out
    assert "nvmm missing: NetBSD Virtual Machine Monitor runs on NetBSD" in out
    assert "::test-payload-fails/tcg/bios FAILED" in out
    assert ("test-payload-fails/tcg/bios: 1 of its tests failed: fails: fails (failed)\n"
            "--- what the failed tests said ---\nfails: nope") in out
    assert "2 failed, 1 passed, 3 skipped" in out
    write(tmp_path / "matrix.yaml", "guests: [test-panic]\nbackends: [tcg]\nfirmware: [bios]\n"
                                    "expect:\n  - {guest: test-panic, reason: panics on purpose}\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--harness-matrix", "matrix.yaml", "--harness-only", "*/tcg/*"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "1 xfailed" in proc.stdout, proc.stdout


def test_with_pytest_xdist(tmp_path, qemu):
    pytest.importorskip("xdist")
    guests = tmp_path / "guests"
    guests.mkdir()
    shutil.copy(GUESTS / "linux-busybox-x86_64.yaml", guests)
    write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg, nvmm, whpx]\n"
                                    "firmware: [bios, uefi]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                           "--harness-matrix", "matrix.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert "2 passed, 4 skipped" in proc.stdout
