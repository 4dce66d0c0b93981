"""Staged guests without a VM: `stages:` in a guest file (and its mistakes as
file:line: key: message), a stage as the cell it boots, and the judge's verdict,
score, milestones and tests across stages."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.backends.base import LaunchContext
from harness.backends.qemu import build_launch
from harness.config import ConfigError, load_guest
from harness.console.matcher import Event
from harness.console.tracker import Outcome
from harness.files import SAFE_NAME_RULE
from harness.judge import Attempt, judge
from harness.model import Drive, TestCase, Timeouts
from harness.payload.outcome import PayloadOutcome
from harness.plan import for_backend, make_cell
from harness.stages import StageError, stage_cell, stages_from

from .conftest import ROOT, write

STAGED = textwrap.dedent("""\
    id: st
    os: linux
    arch: x86_64
    images:
      kernel: {file: vmlinuz}
      disk: {file: disk.img}
    boot: {kernel: kernel, cmdline: "console=ttyS0"}
    stages:
      - name: install
        milestones:
          - {name: kernel, pattern: 'Linux version', timeout: 30}
          - {name: done, pattern: 'INSTALLED', weight: 3}
        payload:
          - {name: write, run: "echo hi"}
        timeouts: {total: 900, stall: 120}
      - name: boot
        boot: {disk: disk}
        milestones:
          - {name: login, pattern: 'login:'}
    """)


def load(tmp_path: Path, text: str = STAGED):
    return load_guest(write(tmp_path / "guests" / "st.yaml", text))


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path / "guests" / "st.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_guest(path)
    found = [str(i).removeprefix(f"{path}:") for i in err.value.issues]
    return sorted(found, key=lambda x: int(x.split(":")[0]))


def test_stages_load_in_order_and_their_milestones_are_named_by_stage(tmp_path):
    g = load(tmp_path)
    assert [s.name for s in g.stages] == ["install", "boot"]
    assert [m.name for m in g.milestones] == ["install/kernel", "install/done", "boot/login"]
    install, boot = g.stages
    assert install.boot is g.boot and install.boot.cmdline == "console=ttyS0"  # the default
    assert boot.boot.kind == "disk" and boot.boot.image == "disk"
    assert [p.name for p in install.payload] == ["write"] and not boot.payload
    assert install.timeouts == Timeouts(900, 120) and boot.timeouts is None
    assert g.payload == []


def test_a_stage_may_watch_another_console(tmp_path):
    g = load(tmp_path, STAGED.replace("  - name: boot\n", "  - name: boot\n    console: screen\n"))
    install, boot = g.stages
    assert install.console == "serial" and boot.console == "screen"
    assert {m.source for m in install.milestones} == {"serial"}
    assert {m.source for m in boot.milestones} == {"screen"}
    cell = make_cell(g, "tcg", "bios", Timeouts(300, 60), 256)
    assert not stage_cell(cell, install).guest.uses_screen
    assert stage_cell(cell, boot).guest.uses_screen
    assert problems(tmp_path, STAGED.replace("  - name: install\n", "  - name: install\n"
                                             "    console: screen\n")) == [
        "14: stages[0].payload: steps are typed and read on a serial console (console: serial)"]


def test_stage_mistakes_name_their_line_and_key(tmp_path):
    text = STAGED.replace("    boot: {disk: disk}\n", "    boot: {disk: nodisk}\n")
    text = text.replace("name: boot\n", "name: boot\n    colour: red\n")
    text += "milestones:\n  - {name: x, pattern: y}\n"
    assert problems(tmp_path, text) == [
        "17: stages[1].colour: unknown key (allowed here: name, boot, console, milestones, "
        "payload, payload_dir, payload_to, timeouts)",
        "18: stages[1].boot.disk: no image named 'nodisk' in images",
        "21: milestones: a guest with `stages:` gives each stage its own `milestones:` "
        "(move it into the stage it belongs to)",
    ]


def test_a_stage_needs_milestones_a_boot_and_a_unique_safe_name(tmp_path):
    text = textwrap.dedent("""\
        id: st
        os: linux
        arch: x86_64
        images:
          kernel: {file: vmlinuz}
        stages:
          - name: one
            milestones: [{name: a, pattern: b}]
          - name: one
            boot: {kernel: kernel}
          - name: "bad name"
            boot: {kernel: kernel}
            milestones: [{name: a, pattern: b}]
        """)
    assert problems(tmp_path, text) == [
        "7: stages[0].boot: needs `boot:` (the guest has none for its stages)",
        "9: stages[1].name: duplicate stage name 'one'",
        "9: stages[1].milestones: a stage needs its milestones (the last one is where it "
        "ends, or where its payload starts)",
        f"11: stages[2].name: 'bad name': a stage name is {SAFE_NAME_RULE} characters",
    ]


def test_a_stage_boots_as_a_cell_and_its_boot_disk_leaves_the_drives(tmp_path):
    g = dataclasses.replace(load(tmp_path), drives=(Drive("disk", "ide"), Drive("cd", "ide")))
    cell = make_cell(g, "tcg", "bios", Timeouts(300, 60), 256)
    install, boot = (stage_cell(cell, s) for s in g.stages)
    assert [d.image for d in install.guest.drives] == ["disk", "cd"]
    assert [d.image for d in boot.guest.drives] == ["cd"]  # the disk is what it boots
    assert install.timeouts == Timeouts(900, 120) and boot.timeouts == Timeouts(300, 60)
    assert [m.name for m in boot.guest.milestones] == ["login"] and not boot.guest.stages
    assert install.id == cell.id  # one cell, one folder
    assert [s.name for s in stages_from(g, "boot")] == ["boot"]
    with pytest.raises(StageError, match="has no stage 'test' \\(its stages: install, boot\\)"):
        stages_from(g, "test")


def test_a_slow_backend_stretches_every_stage(tmp_path):
    g = load(tmp_path)
    slow, _ = for_backend(g, Timeouts(300, 60), "bochs")  # bochs: time_factor in backends.yaml
    factor = slow.stages[0].timeouts.total / 900
    assert factor > 1 and slow.stages[1].timeouts is None
    assert slow.stages[0].milestones[0].timeout == 30 * factor
    assert slow.stages[0].milestones[1].timeout is None


def _attempt(end: str, reached: dict[int, float], payload: PayloadOutcome | None = None,
             failure: Event | None = None, duration: float = 10.0) -> Attempt:
    return Attempt(Outcome(end, 5.0, reached, failure), duration=duration, payload=payload)


def staged(cell, *runs: Attempt) -> Attempt:
    pairs = list(zip(cell.guest.stages, runs, strict=False))
    return dataclasses.replace(runs[-1], stages=pairs, duration=sum(a.duration for a in runs))


def test_the_judge_passes_a_cell_whose_stages_all_pass(tmp_path):
    cell = make_cell(load(tmp_path), "tcg", "bios", Timeouts(300, 60), 256)
    payload = PayloadOutcome(steps=[{"name": "write", "end": "done", "status": 0}],
                             cases=[TestCase("write", "passed", "write")])
    result = judge(cell, [staged(cell, _attempt("complete", {0: 1.0, 1: 4.0}, payload),
                                 _attempt("complete", {0: 2.0}, duration=6.0))])
    assert result.verdict == "pass" and result.score == 1.0 and result.duration_s == 16.0
    assert [(m.name, m.reached, m.t) for m in result.milestones] == [
        ("install/kernel", True, 1.0), ("install/done", True, 4.0), ("boot/login", True, 12.0)]
    assert [(s["name"], s["verdict"]) for s in result.stages] == [("install", "pass"),
                                                                  ("boot", "pass")]
    assert result.cases == [{"name": "write", "status": "passed", "step": "install/write",
                             "output": ""}]
    assert result.steps[0]["name"] == "install/write"


def test_the_first_stage_that_fails_decides_and_the_rest_never_boot(tmp_path):
    cell = make_cell(load(tmp_path), "tcg", "bios", Timeouts(300, 60), 256)
    result = judge(cell, [staged(cell, _attempt("timeout", {0: 1.0}))])
    assert result.verdict == "timeout"
    assert result.reason.startswith("stage install: ")
    assert "'done'" in result.reason
    assert result.stages[1] == {"name": "boot", "verdict": "skip", "reason":
                                "not booted: an earlier stage did not pass",
                                "duration_s": 0.0, "score": 0.0}
    assert result.score == pytest.approx(1 / 5)  # weights: kernel 1, done 3, login 1
    assert [m.reached for m in result.milestones] == [True, False, False]


def test_a_later_stage_that_fails_names_itself(tmp_path):
    cell = make_cell(load(tmp_path), "tcg", "bios", Timeouts(300, 60), 256)
    panic = Event("failure", "panic", 3.0, "Kernel panic - not syncing", fatal=True)
    result = judge(cell, [staged(cell, _attempt("complete", {0: 1.0, 1: 2.0}),
                                 _attempt("crash", {}, failure=panic))])
    assert result.verdict == "crash"
    assert result.reason == "stage boot: panic: Kernel panic - not syncing"
    assert result.failure["name"] == "panic"
    assert result.score == pytest.approx(4 / 5)
    assert [s["verdict"] for s in result.stages] == ["pass", "crash"]


def test_from_a_later_stage_only_that_stage_counts(tmp_path):
    g = load(tmp_path)
    cell = make_cell(g, "tcg", "bios", Timeouts(300, 60), 256)
    only = dataclasses.replace(_attempt("complete", {0: 2.0}), stages=[
        (g.stages[1], _attempt("complete", {0: 2.0}))])
    result = judge(cell, [only])
    assert result.verdict == "pass" and result.score == 1.0
    assert [s["name"] for s in result.stages] == ["boot"]
    assert [m.name for m in result.milestones] == ["boot/login"]


def test_a_disk_keeps_its_ide_place_from_the_install_cd_to_its_own_boot(tmp_path):
    """Installed from a CD as the first IDE disk (wd0, ada0), booted as the first IDE
    disk: the answers CD moves out of the way of the boot disk, not onto it."""
    g = dataclasses.replace(load(tmp_path, STAGED.replace(
        "boot: {kernel: kernel, cmdline: \"console=ttyS0\"}", "boot: {cdrom: cd}").replace(
        "  disk: {file: disk.img}\n", "  disk: {file: disk.img}\n  cd: {file: cd.iso}\n"
        "  answers: {file: answers.iso}\n")),
        drives=(Drive("disk", "ide"), Drive("answers", "ide", readonly=True)))
    cell = make_cell(g, "tcg", "bios", Timeouts(300, 60), 256)
    images = {name: tmp_path / f"{name}.img" for name in g.images}
    argvs = [build_launch(stage_cell(cell, s), images,
                          LaunchContext(tmp_path / s.name, None, state=tmp_path)).argv
             for s in g.stages]
    places = [{re.search(r"file=([^,]+)", a)[1]: re.search(r"index=(\d)", a)[1]
               for a in argv if "if=ide" in a} for argv in argvs]
    overlay, answers, cd = (str(tmp_path / "disk.overlay.qcow2"), str(images["answers"]),
                            str(images["cd"]))
    assert places[0] == {cd: "2", overlay: "0", answers: "1"}  # installing from the CD
    assert places[1] == {overlay: "0", answers: "1"}  # booting the installed disk


@pytest.mark.parametrize(("extra", "message"), [
    (["--from-stage", "check"], "--from-stage: linux-busybox-stages-x86_64 has no stage "
     "'check' (its stages: install, verify) (narrow the selection with --only)"),
    (["--kept", "x"], "--kept: only with --from-stage"),
    (["--from-stage", "verify", "--kept", "nowhere"], "--kept nowhere: not a run folder (no "
     "results.json); give the run that kept the overlays (`harness run --keep`)"),
])
def test_from_stage_mistakes_are_refused_before_anything_boots(tmp_path, extra, message):
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--only",
                           "linux-busybox-stages-x86_64/tcg/bios", "--out", str(tmp_path),
                           *extra], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(message), proc.stderr
    assert not any(tmp_path.iterdir())  # no run folder: nothing ran


def test_from_stage_needs_a_staged_guest(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--only",
                           "linux-busybox-x86_64/tcg/bios", "--out", str(tmp_path),
                           "--from-stage", "verify"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 2
    assert "linux-busybox-x86_64 has no stage 'verify' (its stages: none: it is not a staged " \
           "guest)" in proc.stderr


def test_the_nightly_matrix_names_guests_that_exist():
    from harness.config import load_guests, load_matrix

    guests = load_guests(ROOT / "guests")
    matrix = load_matrix(ROOT / "nightly.yaml", guests)
    assert matrix.backends == ["tcg", "nvmm"]
    assert all(g in guests and (guests[g].payload or guests[g].stages) for g in matrix.guests)


def test_a_paused_debugger_lifts_every_stage_deadline(tmp_path):
    from harness.executor import for_gdb

    g = load(tmp_path)
    assert g.stages[0].milestones[0].timeout == 30
    cell = for_gdb(make_cell(g, "tcg", "bios", Timeouts(300, 60), 256))
    for stage in cell.guest.stages:
        staged = stage_cell(cell, stage)
        assert staged.timeouts.total == float("inf") and staged.timeouts.stall == float("inf")
        assert all(m.timeout is None for m in staged.guest.milestones)


def test_a_later_stage_boots_on_the_overlay_and_its_repro_sh_makes_one(tmp_path):
    """The runner does not make the overlay a later stage boots on again (that would undo
    the install); repro.sh, which starts from nothing, does."""
    from harness.images.store import ResolvedImage
    from harness.repro import repro_script

    g = dataclasses.replace(load(tmp_path), drives=(Drive("disk", "virtio"),))
    cell = make_cell(g, "tcg", "bios", Timeouts(300, 60), 256)
    images = {name: tmp_path / f"{name}.img" for name in g.images}
    overlay = tmp_path / "disk.overlay.qcow2"
    overlay.write_bytes(b"what stage install wrote")
    first, later = (build_launch(stage_cell(cell, g.stages[0]), images, LaunchContext(
        tmp_path / "install", None, state=tmp_path, fresh=fresh)) for fresh in (True, False))
    assert [a[1] for a in first.setup] == ["create"] and first.done_before == []
    assert later.setup == [] and later.done_before == first.setup
    assert "# done by an earlier stage: qemu-img create" in later.describe()
    resolved = {n: ResolvedImage(p, "0" * 64, "file") for n, p in images.items()}
    script = repro_script(cell, resolved, later, tmp_path, "run")
    assert "qemu-img create" in script and "disk.overlay.qcow2" in script


def test_a_stage_left_with_no_boot_sector_fails_before_any_vm_waits_on_it(tmp_path):
    from harness.runner import AttemptContext, boot_stages

    g = load(tmp_path)
    cell = make_cell(g, "tcg", "bios", Timeouts(300, 60), 256)
    folder = tmp_path / "cell"
    folder.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                    str(folder / "disk.overlay.qcow2"), "1M"], check=True)
    attempt = boot_stages(cell, {}, AttemptContext(folder, keep=True), from_stage="boot")
    result = judge(cell, [attempt])
    assert result.verdict == "fail"
    assert result.reason.startswith(
        "stage boot: the disk 'disk' an earlier stage wrote has no boot sector (no 0x55AA "
        "signature at the end of its first sector): it was left unbootable")
    assert [s["verdict"] for s in result.stages] == ["fail"]
    assert not (folder / "stages").exists()  # no VM was started for it
