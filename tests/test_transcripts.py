"""Guest patterns against real boot consoles (tests/data/transcripts), no VM.

Every transcript is a console some guest really printed: recorded by the
harness from boots on this kind of machine (record.py), or published by
others (index.yaml says where). Each is replayed through the guest's own
milestone and failure patterns, in small and in odd-sized chunks, as a live
run would see it. A guest file that says `verified: transcript` (or names the
milestones it verified) must be backed by one of these or by booting in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import load_guests
from harness.transcripts import replay

from .conftest import GUESTS, ROOT

HERE = Path(__file__).resolve().parent / "data" / "transcripts"
INDEX = yaml.safe_load((HERE / "index.yaml").read_text())
CATALOG = load_guests(GUESTS)


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
@pytest.mark.parametrize("chunk", [512, 7])
def test_each_transcript_matches_its_guest(entry, chunk):
    guest = CATALOG[entry["guest"]]
    data = (HERE / entry["file"]).read_bytes()
    r = replay(guest, data, entry.get("milestones"), chunk=chunk)
    assert r.missing == [] and r.failures == [], (r.missing, r.failures)
    assert r.reached == r.checked  # in the guest's order


def test_the_index_and_the_files_agree():
    files = {p.name for p in HERE.glob("*.log")}
    assert files == {e["file"] for e in INDEX}
    for e in INDEX:
        assert e["origin"].strip(), e["file"]


def test_verified_claims_are_backed():
    by_guest: dict[str, list[dict]] = {}
    for e in INDEX:
        by_guest.setdefault(e["guest"], []).append(e)
    for g in CATALOG.values():
        mine = by_guest.get(g.id, [])
        if g.level == "boots-here":
            # the guest boots in CI (tests/test_catalog.py)
            assert "local" in g.tags, g.id
        elif g.level == "transcript":
            assert any("milestones" not in e for e in mine), f"{g.id}: no whole transcript"
        elif g.verified_partly:
            covered = {m for e in mine for m in e.get("milestones", [])}
            assert set(g.verified_partly) <= covered, g.id
        else:
            assert not mine, f"{g.id} has a transcript: say what it verifies"
        if g.level == "layout":
            assert g.evidence, f"{g.id}: a layout level rests on evidence: list it"


def test_a_cut_transcript_misses_milestones_and_a_panic_is_caught():
    guest = CATALOG["linux-busybox-x86_64"]
    data = (HERE / "linux-busybox-x86_64.tcg-bios.log").read_bytes()
    half = data[: data.index(b"Run /init")]
    r = replay(guest, half)
    assert r.reached == ["kernel"] and r.missing == ["init", "userspace", "checks", "poweroff"]
    crashed = half + b"\r\n[    5.1] Kernel panic - not syncing: VFS: Unable to mount root\r\n"
    r = replay(guest, crashed, ["kernel"])
    assert [f.name for f in r.failures] == ["kernel-panic"] and not r.ok


def test_replay_command(tmp_path):
    import subprocess
    import sys

    log = HERE / "openbsd-5.8-amd64.vmm.log"
    ok = subprocess.run([sys.executable, "-m", "harness", "replay", "openbsd-7.7-amd64",
                         str(log), "--milestones", "kernel,console"], capture_output=True,
                        text=True, cwd=ROOT)
    assert ok.returncode == 0 and "found    kernel" in ok.stdout, ok.stdout + ok.stderr
    whole = subprocess.run([sys.executable, "-m", "harness", "replay", "openbsd-7.7-amd64",
                            str(log)], capture_output=True, text=True, cwd=ROOT)
    assert whole.returncode == 1 and "MISSING  installer" in whole.stdout
    bad = subprocess.run([sys.executable, "-m", "harness", "replay", "openbsd-7.7-amd64",
                          str(log), "--milestones", "kernel,nope"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "no serial text milestone 'nope'" in bad.stderr
