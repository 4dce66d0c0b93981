"""bisect-quirks, for real: a guest that boots only with one quirk among several."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import TEST_GUESTS, write

pytestmark = pytest.mark.vm


def test_bisect_finds_exactly_the_needed_quirk(tmp_path, qemu):
    m = write(tmp_path / "matrix.yaml", "guests: [test-needs-quirk]\nbackends: [tcg]\n"
                                        "firmware: [bios]\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "bisect-quirks",
                           "test-needs-quirk/tcg/bios", "--matrix", str(m), "--guests",
                           str(TEST_GUESTS), "--candidates", "other,noapic,magic,third,nox2apic"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "minimal quirks for test-needs-quirk/tcg/bios: magic -> pass" in proc.stdout
    [summary_file] = (tmp_path / "reports").glob("bisect-*/bisect.json")
    summary = json.loads(summary_file.read_text())
    assert summary["minimal"] == ["magic"] and summary["baseline"]["verdict"] == "fail"
    assert len(summary["trials"]) <= 8
    trials = list((summary_file.parent / "trials").iterdir())
    assert len(trials) == len(summary["trials"])  # every boot kept as evidence
    log = next(summary_file.parent.glob("trials/*-magic/cells/*/*/console.log")).read_text()
    assert "magicword" in log and "HARNESS-READY" in log


def test_unknown_candidates_are_refused(tmp_path):
    m = write(tmp_path / "matrix.yaml", "guests: [test-needs-quirk]\nbackends: [tcg]\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "bisect-quirks",
                           "test-needs-quirk/tcg/bios", "--matrix", str(m), "--guests",
                           str(TEST_GUESTS), "--candidates", "magic,warp"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown quirk 'warp'" in proc.stderr
