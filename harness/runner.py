"""Run one cell end to end: command line, VM, console session, verdict.

Everything that can go wrong on the way (no firmware, QEMU missing, the
VMM dying) ends as a CellResult with a verdict and a reason, never as an
exception escaping to the scheduler; and the VM is stopped whatever
happens.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from . import knowledge
from .attempt import Attempt
from .backends import vmm
from .backends.media import MediaError, overlays
from .backends.media import prepare as prepare_media
from .backends.probe import qemu_info
from .backends.process import SpawnError, VMProcess
from .backends.qemu import LaunchError, build_launch
from .backends.qmp import QMP
from .console.matcher import Event
from .console.session import Transcript, run_session
from .console.tracker import BootTracker
from .console.watcher import ScreenWatcher
from .images.cache import sha256_file
from .images.store import ResolvedImage
from .interact import hand_over, keys_while_booting
from .model import Cell, CellResult, Timeouts, Verdict
from .repro import repro_script, vmm_repro_script
from .runner_vmm import attempt as vmm_attempt
from .runner_vmm import vmm_facts
from .verdict import apply_expectation, decide, expectation_json, milestone_results, score

EventHook = Callable[[Cell, Event], None]


ENV_PREFIXES = ("QEMU", "HARNESS_", "LIBVIRT", "TMPDIR")


@functools.cache
def _digest(path: Path) -> str:
    """A firmware file's digest, computed once per process."""
    return sha256_file(path)


def skipped(cell: Cell, reason: str, verdict: Verdict = Verdict.SKIP) -> CellResult:
    return CellResult(
        cell_id=cell.id, guest=cell.guest.id, backend=cell.backend, firmware=cell.firmware,
        verdict=verdict, reason=reason, quirks=list(cell.quirks),
        milestones=[],
        expect=expectation_json(cell.expect),
    )


def run_cell(
    cell: Cell,
    images: dict[str, ResolvedImage],
    run_dir: Path,
    stop: threading.Event | None = None,
    on_event: EventHook | None = None,
    keep: bool = False,
    interactive: bool = False,
    gdb_port: int | None = None,
) -> CellResult:
    """Boot `cell` (with retries) and return its result; artefacts in its folder.

    `keep` leaves the disk overlays (the guest's writes) in the cell folder;
    `interactive` hands the console to the user when the boot has its outcome
    (or at Ctrl-]), see `interact`; `gdb_port` starts the VM paused with QEMU's
    gdb stub on that port (see `for_gdb`)."""
    folder = run_dir / cell.folder
    folder.mkdir(parents=True, exist_ok=True)
    attempts: list[Attempt] = []
    for n in range(1, cell.retries + 2):
        if n > 1:
            _keep_attempt(folder, n - 1)
        try:
            if vmm.is_vmm(cell.backend):
                attempt = vmm_attempt(cell, images, folder, stop,
                                      (lambda ev: on_event(cell, ev)) if on_event else None,
                                      interactive, gdb_port)
            else:
                attempt = _attempt(cell, images, folder, stop, on_event, keep, interactive,
                                   gdb_port)
        except Exception as exc:  # a harness bug: this cell is an error, the run goes on
            (folder / "harness-error.txt").write_text(traceback.format_exc())
            attempt = Attempt(None, Verdict.ERROR, f"harness error: {exc!r} (see "
                              f"{cell.folder}/harness-error.txt)", [], 0.0)
        attempts.append(attempt)
        interrupted = stop is not None and stop.is_set()
        if not attempt.verdict.is_failure() or interrupted:
            break
    last = attempts[-1]
    verdict, reason, underlying = apply_expectation(last.verdict, last.reason, cell.expect)
    outcome = last.outcome
    result = CellResult(
        cell_id=cell.id, guest=cell.guest.id, backend=cell.backend, firmware=cell.firmware,
        verdict=verdict, reason=reason, underlying=underlying,
        expect=expectation_json(cell.expect),
        quirks=list(cell.quirks), attempts=len(attempts), command=last.command,
        duration_s=last.duration,
        images={name: img.to_json() for name, img in images.items()},
        artifacts=_artifacts(cell, folder),
    )
    if isinstance(last.launch, vmm.VmmLaunch):
        result.vmm = vmm_facts(cell.backend, last.launch)
        result.firmware_files = {str(p): _digest(p) for p in last.launch.firmware_files}
        (folder / "repro.sh").write_text(vmm_repro_script(cell, images, last.launch, folder,
                                                          run_dir.name))
        (folder / "repro.sh").chmod(0o755)
        result.artifacts["repro"] = f"{cell.folder}/repro.sh"
    elif last.launch is not None:
        binary = shutil.which(last.launch.argv[0]) or last.launch.argv[0]
        result.vmm = {"name": "qemu", "binary": binary,
                      "version": qemu_info(last.launch.argv[0]).version,
                      "accelerator": knowledge.backends()[cell.backend].accel}
        result.firmware_files = {str(p): _digest(p) for p in last.launch.firmware_files}
        result.env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        script = repro_script(cell, result, images, last.launch, last.media or {},
                              run_dir.name)
        (folder / "repro.sh").write_text(script)
        (folder / "repro.sh").chmod(0o755)
        result.artifacts["repro"] = f"{cell.folder}/repro.sh"
    if outcome is not None:
        result.milestones = milestone_results(cell.guest.milestones, outcome)
        result.score = score(cell.guest.milestones, outcome)
        if outcome.failure is not None:
            f = outcome.failure
            result.failure = {"name": f.name, "text": f.text.strip(), "t": round(f.t, 3)}
        result.warnings = [{"name": w.name, "text": w.text.strip(), "t": round(w.t, 3)}
                           for w in outcome.warnings]
    return result


def for_gdb(cell: Cell) -> Cell:
    """The cell without deadlines: a VM paused for a debugger must not time out."""
    never = float("inf")
    guest = dataclasses.replace(cell.guest, milestones=[
        dataclasses.replace(m, timeout=None) for m in cell.guest.milestones])
    return dataclasses.replace(cell, guest=guest, timeouts=Timeouts(never, never), retries=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _artifacts(cell: Cell, folder: Path) -> dict[str, object]:
    """What the cell left in its folder, relative to the run folder."""
    rel = cell.folder
    out: dict[str, object] = {}
    for key, name in (("console", "console.log"), ("console_raw", "console.raw"),
                      ("stderr", "vmm.stderr"), ("screen_log", "screen.log"),
                      ("screen_text", "screen.txt"), ("screen", "screen.png"),
                      ("vmm_commands", "vmm.commands.log"), ("vmm_log", "bochs.log")):
        if (folder / name).exists():
            out[key] = f"{rel}/{name}"
    shots = sorted(p.name for p in folder.glob("*.png") if p.name != "screen.png")
    if shots:
        out["screenshots"] = [f"{rel}/{s}" for s in shots]
    return out


def _keep_attempt(folder: Path, n: int) -> None:
    """Move an earlier attempt's artefacts to attempt-N/ so the next starts clean."""
    dest = folder / f"attempt-{n}"
    dest.mkdir(exist_ok=True)
    names = ["console.log", "console.raw", "vmm.stderr", "screen.log", "screen.txt",
             "vmm.commands.log", "bochs.log", "bochs.stdout"]
    for name in names + [p.name for p in folder.glob("*.png")]:
        if (folder / name).exists():
            (folder / name).replace(dest / name)


def _attempt(cell: Cell, images: dict[str, ResolvedImage], folder: Path,
             stop: threading.Event | None, on_event: EventHook | None,
             keep: bool = False, interactive: bool = False,
             gdb_port: int | None = None) -> Attempt:
    sockdir = Path(tempfile.mkdtemp(prefix="gh-"))  # unix socket paths must stay short
    started = time.monotonic()
    try:
        vars_file = folder / "efivars.fd" if cell.firmware == "uefi" else None
        try:
            media = prepare_media(cell, {k: v.path for k, v in images.items()}, folder)
            launch = build_launch(cell, media, sockdir / "qmp.sock", vars_file)
            if gdb_port is not None:  # paused at the first instruction, the stub listening
                launch = dataclasses.replace(launch, argv=[
                    *launch.argv, "-S", "-gdb", f"tcp:127.0.0.1:{gdb_port}"])
        except (LaunchError, MediaError) as exc:
            return Attempt(None, Verdict.ERROR, str(exc), [], 0.0)
        if launch.vars_template is not None and vars_file is not None:
            shutil.copyfile(launch.vars_template, vars_file)
        (folder / "command.txt").write_text(" ".join(launch.argv) + "\n")
        try:
            vm = VMProcess(launch.argv, folder / "vmm.stderr", sockdir / "qmp.sock")
        except SpawnError as exc:
            return Attempt(None, Verdict.ERROR, str(exc), launch.argv, 0.0, launch, media)
        transcript = Transcript(folder)
        tracker = BootTracker(
            cell.guest.milestones, knowledge.guest_failures(cell.guest), cell.timeouts,
            knowledge.backends()[cell.backend].failures, start=vm.started,
        )
        screen_log = screen = None
        monitor: list[QMP] = []

        def qmp() -> QMP:  # the monitor's connection: the watcher's, or one of its own
            if screen is not None and screen.connected:
                return screen.qmp
            if not monitor:
                monitor.append(QMP(sockdir / "qmp.sock"))
                monitor[0].connect()
            return monitor[0]

        try:
            if cell.guest.uses_screen:
                screen_log = Transcript(folder, name="screen", raw=False)
                screen = ScreenWatcher(sockdir / "qmp.sock", sockdir, folder, tracker, screen_log)
                screen.connect()
            with keys_while_booting() if interactive else nullcontext(None) as pressed:
                outcome = run_session(
                    vm, tracker, transcript, stop,
                    (lambda ev: on_event(cell, ev)) if on_event else None, screen, pressed,
                )
            if interactive:
                hand_over(vm, transcript, vm.started, qmp)
        finally:
            for client in monitor:
                client.close()
            if screen is not None:
                if screen.connected:
                    screen.save_final()
                screen.close()
            vm.stop()
            transcript.close()
            if screen_log is not None:
                screen_log.close()
        verdict, reason = decide(cell.guest.milestones, outcome)
        if outcome.end == "exited" and verdict is Verdict.ERROR:
            reason = f"{reason}: {_stderr_tail(folder / 'vmm.stderr')}"
        return Attempt(outcome, verdict, reason, launch.argv, time.monotonic() - started,
                       launch, media)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
        if not keep:
            for path in overlays(folder):
                path.unlink(missing_ok=True)


def _stderr_tail(path: Path) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no stderr)"
    return lines[-1].strip() if lines else "(stderr empty)"
