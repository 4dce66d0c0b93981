"""`harness run` end to end: exit statuses, results.json, junit.xml, the run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import GUESTS, TEST_GUESTS, write

pytestmark = pytest.mark.vm


def harness(*args: str, cwd: Path | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def matrix(tmp_path: Path, body: str) -> Path:
    return write(tmp_path / "matrix.yaml", body)


def test_a_passing_run_writes_the_contract(tmp_path, qemu):
    m = matrix(tmp_path, "guests: [linux-busybox-x86_64]\nbackends: [tcg]\nfirmware: [bios]\n")
    out = tmp_path / "reports"
    proc = harness("run", "--matrix", str(m), "--guests", str(GUESTS), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "linux-busybox-x86_64/tcg/bios  pass" in proc.stdout
    assert "totals: pass 1" in proc.stdout
    latest = out / "latest"
    assert latest.is_symlink()
    results = json.loads((latest / "results.json").read_text())
    assert results["schema"] == 1 and results["finished"]
    assert results["run_id"] == os.readlink(latest)
    assert set(results["host"]) >= {"os", "arch", "cpu", "qemu", "harness"}
    [cell] = results["cells"]
    assert cell["id"] == "linux-busybox-x86_64/tcg/bios"
    assert (cell["verdict"], cell["score"], cell["failure"], cell["reason"]) == (
        "pass", 1.0, None, None)
    assert [m["name"] for m in cell["milestones"]] == [
        "kernel", "init", "userspace", "checks", "poweroff"]
    assert all(m["reached"] and m["t"] > 0 for m in cell["milestones"])
    assert cell["images"]["kernel"]["source"] == "deb:linux-image-amd64"
    assert len(cell["images"]["initrd"]["sha256"]) == 64
    assert cell["command"][0] == "qemu-system-x86_64"
    assert cell["artifacts"]["console"] == "cells/linux-busybox-x86_64/tcg-bios/console.log"
    for rel in cell["artifacts"].values():
        assert (latest / rel).is_file()
    suite = ET.parse(latest / "junit.xml").getroot()
    [case] = suite.iter("testcase")
    assert case.get("classname") == "linux-busybox-x86_64" and case.get("name") == "tcg/bios"
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == "pass" and float(props["milestone.poweroff"]) > 0
    assert "reboot: Power down" in case.find("system-out").text


def test_failures_exit_1_and_expectations_turn_them_around(tmp_path, qemu):
    guests = tmp_path / "guests"
    guests.mkdir()
    for name in ("test-panic.yaml",):
        (guests / name).write_text((TEST_GUESTS / name).read_text())
    (guests / "linux-busybox-x86_64.yaml").write_text(
        (GUESTS / "linux-busybox-x86_64.yaml").read_text())
    m = matrix(tmp_path, "guests: ['*']\nbackends: [tcg]\nfirmware: [bios]\n")
    proc = harness("run", "--matrix", str(m), "--only", "test-panic/*")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "reports/latest/results.json").read_text())
    assert results["cells"][0]["verdict"] == "crash"
    case = next(ET.parse(tmp_path / "reports/latest/junit.xml").getroot().iter("testcase"))
    assert case.find("failure").get("message").startswith("crash: kernel-panic")

    matrix(tmp_path, "guests: ['*']\nbackends: [tcg]\nfirmware: [bios]\nexpect:\n"
           "  - {guest: '*', backend: tcg, reason: known, link: 'https://example.org/1'}\n")
    proc = harness("run", "--matrix", str(m), "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = {c["guest"]: c for c in
             json.loads((tmp_path / "reports/latest/results.json").read_text())["cells"]}
    assert cells["test-panic"]["verdict"] == "xfail"
    assert cells["test-panic"]["underlying"] == "crash"
    assert cells["linux-busybox-x86_64"]["verdict"] == "xpass"
    assert cells["linux-busybox-x86_64"]["expect"]["link"] == "https://example.org/1"
    proc = harness("run", "--matrix", str(m), "--only", "linux-*", "--strict")
    assert proc.returncode == 1


def test_backends_that_cannot_run_are_skipped_with_reasons(tmp_path, qemu):
    m = matrix(tmp_path, "guests: [linux-busybox-x86_64]\nbackends: [nvmm, whpx, hvf, haxm]\n"
                         "firmware: [bios]\n")
    proc = harness("run", "--matrix", str(m), "--guests", str(GUESTS), "--out",
                   str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    cells = json.loads((tmp_path / "r/latest/results.json").read_text())["cells"]
    assert {c["verdict"] for c in cells} == {"skip"}
    assert all(c["reason"] for c in cells)
    proc = harness("list", "--cells", "--matrix", str(m), "--guests", str(GUESTS))
    assert proc.returncode == 0
    assert "linux-busybox-x86_64/nvmm/bios  skip  nvmm missing:" in proc.stdout


def test_usage_errors_exit_2(tmp_path):
    m = matrix(tmp_path, "guests: [linux-busybox-x86_64]\nbackends: [tcg]\n")
    for args in (["--only", "nothing/*"], ["--backend", "vmware"], ["--shard", "5/2"],
                 ["--jobs", "0"]):
        proc = harness("run", "--matrix", str(m), "--guests", str(GUESTS), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        # argparse's own refusals (bounded counts) come with the usage line
        assert proc.stderr.startswith("harness: ") or "harness run: error: argument --jobs" \
            in proc.stderr, proc.stderr


def test_help_explains_the_commands():
    proc = harness("--help")
    assert proc.returncode == 0
    for word in ("run", "list", "probe", "fetch", "Exit status"):
        assert word in proc.stdout
    proc = harness("run", "--help")
    for flag in ("--matrix", "--guests", "--only", "--backend", "--firmware", "--jobs", "--out",
                 "--offline", "--retries", "--shard", "--strict"):
        assert flag in proc.stdout
