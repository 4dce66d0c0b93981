"""The porters' table (`harness report --format`), from recorded runs.

tests/data/porters/ holds two recorded run folders of four guests on five
backends (tcg, kvm and bochs ran; nvmm and haxm are not on the host): the
second run has a regression, an xfail with a link, quirks, a cross-architecture
skip and a hang. Its Markdown table must equal expected.md byte for byte.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from harness.results import table
from harness.results.store import load_results

from .conftest import ROOT

DATA = Path(__file__).parent / "data" / "porters"
OLD, NEW = "20261128T030000Z-aaaa", "20261129T030000Z-bbbb"


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "report", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def _copy(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    for run in (OLD, NEW):
        shutil.copytree(DATA / run, reports / run)
    return reports


def test_markdown_of_a_recorded_multi_backend_run_equals_the_expected_file(tmp_path):
    reports = _copy(tmp_path)
    assert _report(str(reports / OLD)).returncode == 0
    out = _report(str(reports / NEW), "--format", "markdown")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (DATA / "expected.md").read_text()
    assert "1 regressions" in out.stderr and "pages written" in out.stderr
    assert (reports / NEW / "index.html").is_file()  # the pages are built as before


def test_the_table_in_words_quirks_times_and_marks():
    t = table.build(load_results(DATA / NEW))
    assert [t.labels[c] for c in t.columns] == ["tcg", "kvm", "bochs"]
    assert [b for b, _ in t.not_run] == ["nvmm", "haxm"]
    assert dict(t.not_run)["nvmm"] == "runs on NetBSD"  # backends.yaml host_os, not the reason
    rows = {gid: cells for gid, _, cells in t.rows}
    netbsd = rows["netbsd-10-amd64"]
    assert netbsd[("tcg", "bios")].plain() == "boots to installer (31 s, 2.5x)"
    assert netbsd[("kvm", "bios")].plain() == "boots to installer (13 s)"  # the fastest
    bochs = netbsd[("bochs", "bios")]
    assert bochs.words == "hangs after kernel" and bochs.quirks == ("noapic",)
    assert bochs.mark.startswith("(xfail: ") and bochs.link == "https://example.org/bochs/136"
    assert rows["linux-busybox-x86_64"][("tcg", "bios")].short == "crash: panic"
    assert rows["freebsd-14-amd64"][("tcg", "bios")].words == "hangs after kernel"
    assert t.changes is None  # no history given


def test_text_is_fixed_width_and_html_escapes(tmp_path):
    t = table.build(load_results(DATA / NEW))
    lines = table.text(t).splitlines()
    ruled = [x for x in lines if x.startswith(("|", "+"))]
    assert len({len(x) for x in ruled}) == 1 and len(ruled) > 8
    assert any("hangs after kernel" in x for x in ruled)
    frag = table.html_fragment(t)
    assert "FreeBSD 14.1 &lt;amd64&gt;" in frag and "<amd64>" not in frag
    assert "<span class=tag>noapic</span>" in frag
    reports = _copy(tmp_path)
    out = _report(str(reports / NEW), "--format", "text")
    assert out.returncode == 0 and out.stdout.startswith(f"Run {NEW}")
    bad = _report(str(reports / NEW), "--format", "pdf")
    assert bad.returncode == 2 and "--format" in bad.stderr and "Traceback" not in bad.stderr
