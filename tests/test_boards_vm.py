"""The catalog's board guests booted for real under tcg (#21): xv6 on RISC-V to its shell
and an `ls`, uClinux on the SmartFusion2 Cortex-M3 to hush and a built-in's output. Both
write to their drives through per-cell overlays: the cached images stay as pinned."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_guests

from .conftest import GUESTS, ROOT

pytestmark = pytest.mark.vm
SHARED = ROOT.parent / "shared" / "images"
CATALOG = load_guests(GUESTS)


def run_guest(tmp_path: Path, gid: str, cache) -> tuple[dict, str]:
    if SHARED.is_dir():
        imported = subprocess.run([sys.executable, "-m", "harness", "cache", "import",
                                   str(SHARED)], capture_output=True, text=True, cwd=ROOT)
        assert imported.returncode == 0, imported.stderr
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--only", f"{gid}/tcg/*",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    run = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    (cell,) = json.loads((run / "results.json").read_text())["cells"]
    assert cell["verdict"] == "pass", (cell["reason"], proc.stdout[-2000:])
    assert proc.returncode == 0
    assert [m["name"] for m in cell["milestones"] if m["reached"]] == [
        m.name for m in CATALOG[gid].milestones]
    console = (run / cell["artifacts"]["console_raw"]).read_text(errors="replace")
    return cell, console


def test_xv6_reaches_its_shell_and_lists_usertests(tmp_path, cache):
    cell, console = run_guest(tmp_path, "xv6-riscv64", cache)
    a = cell["command"]
    assert a[a.index("-bios") + 1] == "none"
    assert "virtio-blk-device,drive=drive0,bus=virtio-mmio-bus.0" in a
    after = console[console.index("init: starting sh"):]
    assert after.index("$ ls") < after.index("usertests")  # typed, then listed
    # xv6 writes its file system (its log) at boot: into the overlay, not the cached image
    fs = CATALOG["xv6-riscv64"].images["fs"].sha256
    blob = Path(a[a.index("-kernel") + 1]).parent / fs
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == fs


def test_uclinux_reaches_hush_and_runs_a_builtin(tmp_path, cache):
    cell, console = run_guest(tmp_path, "uclinux-cortex-m3", cache)
    assert cell["command"][cell["command"].index("-machine") + 1] == "emcraft-sf2"
    assert "U-Boot 2010.03" in console and "Linux version 4.5.0" in console
    after = console[console.index("/ # help"):]
    assert "Built-in commands:" in after  # hush's own help, after the typed command


def test_xv6_usertests_finds_the_kernel_bug_and_reports_the_tests_before_it(tmp_path, cache):
    """xv6's own test suite as a payload: the panic in execout ends the cell as a crash
    (xfail by its expect:), naming the test running; the tests before it passed."""
    if SHARED.is_dir():
        subprocess.run([sys.executable, "-m", "harness", "cache", "import", str(SHARED)],
                       capture_output=True, text=True, cwd=ROOT, check=True)
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--only",
                           "xv6-riscv64-usertests/tcg/*", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:]  # xfail: the catalog run stays green
    run = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    (cell,) = json.loads((run / "results.json").read_text())["cells"]
    assert (cell["verdict"], cell["underlying"]) == ("xfail", "crash"), cell["reason"]
    assert cell["failure"]["text"] == "panic: sys_exec kalloc"
    assert "test 'execout' running" in cell["reason"]
    assert [(c["name"], c["status"]) for c in cell["cases"]] == [
        ("manywrites", "passed"), ("execout", "error")]
    assert cell["steps"][0]["end"] == "crash"
    junit = (run / "junit.xml").read_text()
    assert 'name="manywrites"' in junit and 'name="execout"' in junit
    page = (run / cell["artifacts"]["console"]).parent.joinpath("cell.html").read_text()
    cases = page[page.index("<table id=test-cases>"):]
    assert cases.index("<td>execout</td><td>error</td>") < cases.index(
        "<td>manywrites</td><td>passed</td>")  # failures first
