"""One attempt at a cell on a VMM other than QEMU (bochs, vmd, bhyve, xen, virtualbox).

The VMM module (backends/vmm.py) describes the launch; this runs it: the
configuration files, the setup commands (each must succeed), the console
command on a pty read by the same session, tracker and matcher as QEMU's,
and the teardown commands whatever happened, so no VM stays registered or
running. What QEMU alone offers (a monitor for screens and keys, a gdb
stub, the interactive hand-over) is refused with a reason.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import knowledge
from .attempt import Attempt
from .backends import vmm
from .backends.probe import static_probe
from .backends.process import SpawnError, VMProcess
from .backends.qemu import LaunchError
from .console.matcher import Event
from .console.session import Transcript, run_session
from .console.tracker import BootTracker
from .images.store import ResolvedImage
from .model import Cell, Verdict
from .verdict import decide

SETUP_TIMEOUT = 300.0
TEARDOWN_TIMEOUT = 120.0


def attempt(cell: Cell, images: dict[str, ResolvedImage], folder: Path,
            stop: threading.Event | None, on_event: Callable[[Event], None] | None,
            interactive: bool, gdb_port: int | None) -> Attempt:
    started = time.monotonic()
    if gdb_port is not None or interactive:
        return Attempt(None, Verdict.ERROR, f"--gdb and --interactive need QEMU; {cell.backend} "
                       "is run by its own tool", [], 0.0)
    try:
        launch = vmm.build_launch(cell, {k: v.path for k, v in images.items()}, folder)
    except LaunchError as exc:
        return Attempt(None, Verdict.ERROR, str(exc), [], 0.0)
    for path, text in launch.files.items():
        path.write_text(text)
    if launch.vars_template is not None:
        shutil.copyfile(launch.vars_template, folder / "efivars.fd")
    (folder / "command.txt").write_text(describe(launch))
    log = folder / "vmm.commands.log"
    try:
        for argv in launch.setup:
            failed = _run(argv, log, SETUP_TIMEOUT)
            if failed:
                return Attempt(None, Verdict.ERROR, failed, launch.argv,
                               time.monotonic() - started, launch)
        try:
            vm = VMProcess(launch.argv, folder / "vmm.stderr")
        except SpawnError as exc:
            return Attempt(None, Verdict.ERROR, str(exc), launch.argv, 0.0, launch)
        transcript = Transcript(folder)
        tracker = BootTracker(cell.guest.milestones, knowledge.guest_failures(cell.guest),
                              cell.timeouts, knowledge.backends()[cell.backend].failures,
                              start=vm.started)
        try:
            outcome = run_session(vm, tracker, transcript, stop, on_event, None, None)
        finally:
            vm.stop()
            transcript.close()
    finally:
        for argv in launch.teardown:
            _run(argv, log, TEARDOWN_TIMEOUT)
    verdict, reason = decide(cell.guest.milestones, outcome)
    return Attempt(outcome, verdict, reason, launch.argv, time.monotonic() - started, launch)


def _run(argv: list[str], log: Path, timeout: float) -> str | None:
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


def describe(launch: vmm.VmmLaunch) -> str:
    """command.txt: what ran, in order, as shell lines a person can read."""
    out = [f"# write {p}" for p in launch.files]
    out += [shlex.join(a) for a in launch.setup] + [shlex.join(launch.argv)]
    out += [f"# afterwards: {shlex.join(a)}" for a in launch.teardown]
    return "\n".join(out) + "\n"


def vmm_facts(backend: str, launch: vmm.VmmLaunch) -> dict[str, str | None]:
    """results.json's vmm entry for a non-QEMU backend."""
    b = knowledge.backends()[backend]
    p = static_probe(backend)
    return {"name": b.kind, "binary": p.binary or shutil.which(launch.argv[0]),
            "version": p.version, "accelerator": None}
