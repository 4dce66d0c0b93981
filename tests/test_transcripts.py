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
    r = replay(guest, data, entry.get("milestones"), chunk=chunk, stage=entry.get("stage"))
    # `fails:` a console that ended in a failure the guest knows (kept as its evidence)
    assert r.missing == [] and [f.name for f in r.failures] == entry.get("fails", []), \
        (r.missing, r.failures)
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
            # a staged guest's consoles are one a stage: each stage needs a whole one
            for stage in [s.name for s in g.stages] or [None]:
                assert any("milestones" not in e and e.get("stage") == stage for e in mine), \
                    f"{g.id}: no whole transcript" + (f" of stage {stage}" if stage else "")
        elif g.verified_partly:
            covered = {m for e in mine for m in e.get("milestones", [])}
            for e in mine:  # a whole console of one stage covers that stage's milestones
                if "milestones" not in e and e.get("stage"):
                    covered |= {m.name for m in g.milestones
                                if m.name.startswith(e["stage"] + "/")}
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


def test_a_staged_guests_console_is_replayed_through_its_stage():
    from harness.transcripts import ReplayError

    guest = CATALOG["debian-12-amd64-preseed"]
    data = (HERE / "debian-12-amd64-preseed.tcg-bios.install.log").read_bytes()
    with pytest.raises(ReplayError, match="name the one this console is"):
        replay(guest, data)  # one boot's console cannot show both stages
    r = replay(guest, data, stage="install")
    assert r.reached == ["install/kernel", "install/init", "install/syslog", "install/nic",
                         "install/components"]
    assert r.missing == ["install/late-command", "install/power-down"]
    assert [f.name for f in r.failures] == ["d-i-stuck"]
    assert "Download installer components" in r.failures[0].text
    r = replay(guest, data, stage="test")  # the installer's kernel is Debian 12's too, no more
    assert r.reached == ["test/kernel"]
    assert r.missing == ["test/issue", "test/login", "test/password", "test/shell"]


def test_replay_command_stage(tmp_path):
    import subprocess
    import sys

    log = HERE / "debian-12-amd64-preseed.tcg-bios.install.log"
    cmd = [sys.executable, "-m", "harness", "replay", "debian-12-amd64-preseed", str(log)]
    out = subprocess.run([*cmd, "--stage", "install", "--milestones",
                          "install/kernel,install/components"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "found    install/components" in out.stdout, out.stdout
    assert "FAILURE  d-i-stuck" in out.stdout
    bad = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "name the one this console is" in bad.stderr


def test_record_keeps_one_console_a_stage(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("record", HERE / "record.py")
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    cell = {"verdict": "fail", "artifacts": {"console_raw": "c/test.raw"},
            "milestones": [{"name": "install/kernel", "reached": True},
                           {"name": "install/done", "reached": False},
                           {"name": "test/kernel", "reached": False}],
            "stages": [{"name": "install", "verdict": "fail",
                        "artifacts": {"console_raw": "c/install.raw"}},
                       {"name": "test", "verdict": "skip", "artifacts": {}}]}
    assert list(record._consoles(tmp_path, cell, "g.tcg-bios", partial=False)) == []
    got = list(record._consoles(tmp_path, cell, "g.tcg-bios", partial=True))
    assert got == [("g.tcg-bios.install.log", tmp_path / "c/install.raw",
                    {"stage": "install", "milestones": ["install/kernel"]})]
    cell["stages"][0]["verdict"] = "pass"
    got = list(record._consoles(tmp_path, cell, "g.tcg-bios", partial=False))
    assert got == [("g.tcg-bios.install.log", tmp_path / "c/install.raw", {"stage": "install"})]
