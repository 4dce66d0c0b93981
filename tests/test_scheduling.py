"""Scheduling: slots, longest first, shards merged, resume, reruns."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.dispatch import Slots, history, longest_first, needs
from harness.model import BootSpec, Cell, Guest, Milestone, Timeouts

from . import damaged_results
from .conftest import GUESTS, TEST_GUESTS, write
from .test_hygiene import _is_qemu, descendants


def cell(gid: str, vcpus: int = 1, memory: int = 256) -> Cell:
    g = Guest(id=gid, name=gid, os="linux", arch="x86_64", images={}, boot=BootSpec("kernel"),
              firmware=["bios"], memory_mb=memory, vcpus=vcpus, console="serial",
              milestones=[Milestone("m", re.compile("x"))], failures=[])
    return Cell(g, "tcg", "bios", Timeouts(), memory)


def test_cells_start_longest_first_within_cores_and_memory(tmp_path):
    cells = [cell("a"), cell("b", vcpus=2), cell("c", memory=3000), cell("d")]
    order = longest_first(cells, {"a/tcg/bios": 5.0, "b/tcg/bios": 50.0, "d/tcg/bios": 1.0})
    assert [c.guest.id for c in order] == ["b", "a", "c", "d"]  # c: the median, 5 s
    slots = Slots(cores=3, memory_mb=4000, jobs=3)
    pending = list(order)
    assert [c.guest.id for c in slots.startable(pending)] == ["b", "a"]  # c's memory must wait
    assert (slots.used_cores, slots.running) == (3, 2) and needs(cells[2]) == (1, 3200)
    slots.give_back(order[0])
    slots.give_back(order[1])
    assert [c.guest.id for c in slots.startable(pending)] == ["c", "d"]
    assert slots.used_memory == 3200 + 456
    huge = Slots(cores=1, memory_mb=100, jobs=2)
    assert [c.guest.id for c in huge.startable([cell("x", vcpus=4)])] == ["x"]  # alone
    previous = damaged_results.valid()  # a complete results.json (a damaged one: no hints)
    previous["cells"] = [{**damaged_results.cell("a"), "id": "a/tcg/bios", "backend": "tcg",
                          "verdict": "pass", "duration_s": 4.5},
                         {**damaged_results.cell("n"), "id": "n/nvmm/bios", "backend": "nvmm",
                          "verdict": "skip", "duration_s": 0}]
    write(tmp_path / "latest" / "results.json", json.dumps(previous))
    assert history(tmp_path) == {"a/tcg/bios": 4.5}
    write(tmp_path / "latest" / "results.json", json.dumps({"cells": [{"id": 5}]}))
    assert history(tmp_path) == {}


def harness(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def verdicts(results_json) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in json.loads(results_json.read_text())["cells"]}


@pytest.mark.vm
def test_shards_merged_equal_the_unsharded_run(tmp_path, qemu):
    guests = tmp_path / "guests"
    for src in (GUESTS / "linux-busybox-x86_64.yaml", TEST_GUESTS / "test-reboot-early.yaml"):
        write(guests / src.name, src.read_text())
    m = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg, nvmm, whpx, hvf]\n"
                                        "firmware: [bios]\n")
    whole = harness("run", "--matrix", str(m), "--out", str(tmp_path / "whole"))
    assert whole.returncode == 1  # the reboot-early guest fails
    shard_runs = []
    for k in (1, 2, 3):
        proc = harness("run", "--matrix", str(m), "--shard", f"{k}/3", "--out",
                       str(tmp_path / f"shard{k}"))
        assert proc.returncode in (0, 1), proc.stderr
        shard_runs.append(str(tmp_path / f"shard{k}" / "latest"))
    merged = harness("merge", *shard_runs, "--out", str(tmp_path / "merged"))
    assert merged.returncode == 1, merged.stdout + merged.stderr
    folder = Path(re.search(r"merged 3 runs into (\S+)", merged.stdout).group(1))
    expected = verdicts(tmp_path / "whole" / "latest" / "results.json")
    assert len(expected) == 8 and verdicts(folder / "results.json") == expected
    assert len(json.loads((folder / "results.json").read_text())["merged_from"]) == 3
    assert (folder / "cells/linux-busybox-x86_64/tcg-bios/console.log").is_file()
    again = harness("merge", shard_runs[0], shard_runs[0], "--out", str(tmp_path / "m2"))
    assert again.returncode == 2 and "is in both" in again.stderr


@pytest.mark.vm
def test_an_interrupted_run_is_resumed(tmp_path, qemu):
    m = write(tmp_path / "matrix.yaml", "guests: [test-hang, test-reboot-early]\n"
                                        "backends: [tcg]\njobs: 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--matrix", str(m),
                             "--guests", str(TEST_GUESTS)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(_is_qemu(p) for p in descendants(proc.pid)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(1)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "harness run --resume" in err
    run_dir = tmp_path / "reports" / os.readlink(tmp_path / "reports" / "latest")
    before = json.loads((run_dir / "results.json").read_text())
    assert before["interrupted"] and len(before["cells"]) == 1
    resumed = harness("run", "--matrix", str(m), "--guests", str(TEST_GUESTS), "--resume",
                      str(run_dir))
    assert resumed.returncode == 1, resumed.stderr  # both guests fail on purpose
    after = json.loads((run_dir / "results.json").read_text())
    assert "interrupted" not in after and after["resumed"]
    assert {c["id"]: c["verdict"] for c in after["cells"]} == {
        "test-hang/tcg/bios": "hang", "test-reboot-early/tcg/bios": "fail"}


@pytest.mark.vm
def test_failures_rerun_and_flakiness_is_recorded(tmp_path, qemu):
    m = write(tmp_path / "matrix.yaml", "guests: [test-reboot-early]\nbackends: [tcg]\n")
    proc = harness("run", "--matrix", str(m), "--guests", str(TEST_GUESTS),
                   "--rerun-failures", "2")
    assert proc.returncode == 1
    [c] = json.loads((tmp_path / "reports/latest/results.json").read_text())["cells"]
    assert c["verdict"] == "fail" and c["reruns"] == ["fail", "fail"] and c["flaky"] is False
