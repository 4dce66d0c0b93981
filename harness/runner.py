"""One attempt at a cell, whichever backend runs it: launch, console, outcome.

The backend (see `backends.registry`) describes the launch as data; this
runs it the same way for every VMM: the files it needs, the setup commands
(each must succeed), the VMM on its console transport (a pty, or a socket or
pipes: `backends.transport`, $HARNESS_CONSOLE) read by the console session, the
screen watched over the monitor where the backend has one, and the teardown
commands and clean-up whatever happens, so no VM stays running or
registered. Anything that goes wrong on the way is an `Attempt` with an
error, never an exception escaping to the executor; judging is `judge`'s.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import knowledge
from .backends import registry
from .backends.base import Launch, LaunchContext, LaunchError
from .backends.media import has_boot_sector, overlay_path, overlays
from .backends.qmp import QMP
from .console.engine import PatternTimeout
from .console.matcher import Event
from .console.tracker import BootTracker, Outcome
from .console.transcript import Transcript
from .images.archive import ArchiveError, unpack_tree
from .interact import hand_over, keys_while_booting
from .judge import Attempt, attempt_verdict
from .model import STAGE_SEP, Cell, Stage, Verdict
from .stages import stage_cell, stages_from

SETUP_TIMEOUT = 300.0
TEARDOWN_TIMEOUT = 120.0


@dataclass(frozen=True)
class AttemptContext:
    """What one attempt needs besides the cell and its images."""

    folder: Path
    stop: threading.Event | None = None
    on_event: Callable[[Event], None] | None = None
    keep: bool = False  # leave the disk overlays (the guest's writes) in the folder
    interactive: bool = False  # hand the console over when the boot has its outcome
    gdb_port: int | None = None  # start paused with a gdb stub on this port
    state: Path | None = None  # disk overlays and UEFI variables live here (None: folder)
    fresh: bool = True  # False: boot on the overlays an earlier stage left in `state`


def boot(cell: Cell, images: dict[str, Path], ctx: AttemptContext,
         follow: Callable[..., Any] | None = None) -> Any:
    """Launch the cell once and follow its console to an outcome: an Attempt. A caller
    that watches the boot its own way (`harness try`) passes `follow`, called as
    `_follow` is, and gets what it returns (or an Attempt naming why nothing ran)."""
    folder = ctx.folder
    folder.mkdir(parents=True, exist_ok=True)
    sockdir = Path(tempfile.mkdtemp(prefix="gh-"))  # unix socket paths must stay short
    started = time.monotonic()
    launch: Launch | None = None
    try:
        from .backends.transport import SOCKET, choose, socket_address  # see _follow

        try:
            transport = choose()  # $HARNESS_CONSOLE (a worker's own; the CLI checked ours)
        except ValueError as exc:
            return Attempt(None, str(exc))
        console = socket_address(sockdir) if transport == SOCKET else None
        try:
            launch = registry.get(cell.backend).build_launch(
                cell, images, LaunchContext(folder, sockdir, ctx.gdb_port, console, ctx.state,
                                            ctx.fresh))
        except LaunchError as exc:  # anything else is a harness bug: the executor says so
            return Attempt(None, str(exc))
        for path, text in launch.files.items():
            path.write_text(text)
        if launch.vars_template is not None and launch.vars_file is not None and (
                ctx.fresh or not launch.vars_file.exists()):
            shutil.copyfile(launch.vars_template, launch.vars_file)
        for tree, tar in launch.trees.items():
            try:
                unpack_tree(tar, tree)
            except ArchiveError as exc:
                return Attempt(None, f"cannot unpack the network boot tree: {exc}", launch)
        (folder / "command.txt").write_text(launch.describe())
        log = folder / "vmm.commands.log"
        try:
            for argv in launch.setup:
                failed = run_step(argv, log, SETUP_TIMEOUT)
                if failed:
                    return Attempt(None, failed, launch, time.monotonic() - started)
            return (follow or _follow)(cell, launch, ctx, sockdir, started, transport)
        finally:
            for argv in launch.teardown:
                run_step(argv, log, TEARDOWN_TIMEOUT)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
        if not ctx.keep:
            for path in overlays(ctx.state or folder):
                path.unlink(missing_ok=True)
            for tree in launch.trees if launch is not None else ():
                shutil.rmtree(tree, ignore_errors=True)


def boot_stages(cell: Cell, images: dict[str, Path], ctx: AttemptContext,
                from_stage: str | None = None) -> Attempt:
    """A staged guest's boots in order, each in `stages/NAME/` of the cell folder, all on
    the disk overlays in the cell folder; the first that does not pass ends the run.
    From `from_stage` on, the overlays must be there already (kept by `--keep`)."""
    runs: list[tuple[Stage, Attempt]] = []
    try:
        for stage in stages_from(cell.guest, from_stage):
            scell = stage_cell(cell, stage)
            fresh = not runs and from_stage is None  # the first stage makes the overlays
            unbootable = _left_unbootable(stage, ctx.folder, fresh)
            if unbootable is not None:
                runs.append((stage, unbootable))
                break
            sctx = dataclasses.replace(ctx, folder=ctx.folder / "stages" / stage.name,
                                       state=ctx.folder, keep=True, fresh=fresh,
                                       on_event=_named(ctx.on_event, stage.name))
            runs.append((stage, boot(scell, images, sctx)))
            stopped = ctx.stop is not None and ctx.stop.is_set()
            if stopped or attempt_verdict(scell, runs[-1][1])[0] is not Verdict.PASS:
                break
    finally:
        if not ctx.keep:
            for path in overlays(ctx.folder):
                path.unlink(missing_ok=True)
    if not runs:
        return Attempt(None, "no stage to boot")
    last = runs[-1][1]
    return dataclasses.replace(last, duration=sum(a.duration for _, a in runs), stages=runs)


def _left_unbootable(stage: Stage, state: Path, fresh: bool) -> Attempt | None:
    """A stage that boots a disk an earlier stage wrote, when that disk has no boot sector:
    the guest's failure (`fail`), said before a VM waits in vain on a blank disk."""
    boot = stage.boot
    overlay = overlay_path(state, boot.image) if boot.kind == "disk" and boot.image else None
    if fresh or overlay is None or not overlay.exists() or has_boot_sector(overlay) is not False:
        return None
    detail = (f"the disk {boot.image!r} an earlier stage wrote has no boot sector (no 0x55AA "
              "signature at the end of its first sector): it was left unbootable")
    return Attempt(Outcome("unbootable", 0.0, detail=detail))


def _named(hook: Callable[[Event], None] | None,
           stage: str) -> Callable[[Event], None] | None:
    """A stage's events as the cell's progress shows them: `stage/milestone`."""
    if hook is None:
        return None
    return lambda ev: hook(dataclasses.replace(ev, name=f"{stage}{STAGE_SEP}{ev.name}"))


def _follow(cell: Cell, launch: Launch, ctx: AttemptContext, sockdir: Path,
            started: float, transport: str) -> Attempt:
    """The VM on its console transport, the console through the tracker, to an outcome."""
    # imported here, not at the top: the VM processes need pexpect (POSIX only), and
    # `harness list` and `probe` import this module without spawning anything
    from .backends.process import SpawnError
    from .backends.transport import ConsoleLost, open_console
    from .console.session import run_session

    folder = ctx.folder
    try:
        vm = open_console(launch, folder / "vmm.stderr", transport)
    except SpawnError as exc:
        return Attempt(None, str(exc), launch)
    assert cell.backend_info is not None, "cells come from plan.make_cell"
    transcript = Transcript(folder)
    tracker = BootTracker(cell.guest.milestones,
                          knowledge.guest_failures(cell.guest, cell.backend_info.kind),
                          cell.timeouts, cell.backend_info.failures, start=vm.started)
    screen_log = screen = None
    monitor: list[QMP] = []
    screen_text = ""
    payload = None

    def qmp() -> QMP:  # the monitor's connection: the watcher's, or one of its own
        if screen is not None and screen.connected:
            return screen.qmp
        if not monitor:
            assert launch.monitor is not None
            monitor.append(QMP(launch.monitor))
            monitor[0].connect()
        return monitor[0]

    try:
        if cell.guest.uses_screen and launch.monitor is not None:
            from .console.watcher import ScreenWatcher  # (and PIL) for screen guests only

            screen_log = Transcript(folder, name="screen", raw=False)
            screen = ScreenWatcher(launch.monitor, sockdir, folder, tracker, screen_log)
            screen.connect()
        with keys_while_booting() if ctx.interactive else nullcontext(None) as pressed:
            try:
                outcome = run_session(vm, tracker, transcript, ctx.stop, ctx.on_event, screen,
                                      pressed)
            except (PatternTimeout, ConsoleLost) as exc:  # the guest file's or the host's
                transcript.note(time.monotonic() - vm.started, str(exc))  # fault: an error
                return Attempt(None, str(exc), launch, time.monotonic() - started)
            if outcome.end == "complete" and cell.guest.payload:
                from .payload.deliver import guest_steps
                from .payload.run import run_payload

                try:
                    payload = run_payload(vm, guest_steps(cell.guest),
                                          knowledge.guest_failures(cell.guest), transcript,
                                          ctx.stop)
                except (PatternTimeout, ConsoleLost, OSError) as exc:
                    why = f"payload: {exc}"
                    transcript.note(time.monotonic() - vm.started, why)
                    return Attempt(None, why, launch, time.monotonic() - started)
        if ctx.interactive and launch.monitor is not None:
            hand_over(vm, transcript, vm.started, qmp)
    finally:
        for client in monitor:
            client.close()
        if screen is not None:
            if screen.connected:
                screen.save_final()
            screen_text = screen.text()
            screen.close()
        vm.stop()
        transcript.close()
        if screen_log is not None:
            screen_log.close()
    if payload is not None and payload.deferred:  # results left on a disk: the VM is off
        from .payload.disk import read_member
        from .payload.outcome import conclude_deferred

        conclude_deferred(payload, lambda disk, member: read_member(launch.media.get(disk),
                                                                    member, folder))
    tail = _stderr_tail(folder / "vmm.stderr") if outcome.end == "exited" else ""
    shown = {"serial": tracker.serial_tail, "screen": screen_text}
    return Attempt(outcome, None, launch, time.monotonic() - started, tail, shown, payload)


def run_step(argv: list[str], log: Path, timeout: float) -> str | None:
    """Run one setup or teardown command, logged; why it failed, or None."""
    with log.open("a") as f:
        f.write(f"$ {shlex.join(argv)}\n")
        f.flush()
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except FileNotFoundError:
            return f"{argv[0]} not found on PATH"
        except subprocess.TimeoutExpired:
            return f"`{shlex.join(argv[:3])} …` took more than {timeout:.0f} s"
        f.write(f"# exit status {proc.returncode}\n")
    if proc.returncode != 0:
        lines = [x for x in log.read_text(errors="replace").splitlines()
                 if x and not x.startswith(("$ ", "# "))]
        return (f"`{shlex.join(argv[:3])} …` failed with status {proc.returncode}: "
                f"{lines[-1] if lines else 'no output'}")
    return None


def _stderr_tail(path: Path) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no stderr)"
    return lines[-1].strip() if lines else "(stderr empty)"
