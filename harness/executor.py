"""The one cell executor: preflight → images → launch → console → judge.

Shared by the local scheduler, the cluster worker, the pytest plugin,
`repro`, `bisect-quirks` and the canary, so a cell runs and is judged the
same way whoever asked for it. `preflight` says, before any image is
fetched, why a cell cannot run here; `execute` boots it (with its retries,
one more try when the harness or the host failed, and the reruns asked
for), has `judge` make the result, and adds what the run left: artefacts,
the VMM's facts, firmware digests and repro.sh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backends import registry
from .backends.base import VARS_FILE
from .backends.media import overlays
from .backends.probe import HostFacts, Probe, foreign_arch
from .console.matcher import Event
from .files import os_problem, sha256_file
from .images.store import ResolvedImage, unobtained
from .judge import Attempt, judge, should_retry
from .model import Cell, CellResult, Timeouts
from .repro import repro_script
from .runner import AttemptContext, boot, boot_stages
from .stages import retimed

EventHook = Callable[[Cell, Event], None]
ENV_PREFIXES = ("QEMU", "HARNESS_", "LIBVIRT", "TMPDIR")
ARTEFACTS = (("console", "console.log"), ("console_raw", "console.raw"),
             ("stderr", "vmm.stderr"), ("screen_log", "screen.log"),
             ("screen_text", "screen.txt"), ("screen", "screen.png"),
             ("vmm_commands", "vmm.commands.log"), ("vmm_log", "bochs.log"))
PER_ATTEMPT = [name for _, name in ARTEFACTS] + ["bochs.stdout", "stages"]


@dataclass(frozen=True)
class CellContext:
    """How cells are run, the same for every cell of one command."""

    run_dir: Path
    stop: threading.Event | None = None
    on_event: EventHook | None = None
    keep: bool = False  # keep each cell's disk overlay (the guest's writes)
    interactive: bool = False  # hand the console over when the boot has its outcome
    gdb_port: int | None = None  # start paused with a gdb stub (see `for_gdb`)
    rerun_failures: int = 0  # boot a failing cell this many more times (flaky or not)
    retry_errors: bool = False  # one more try when the harness or the host failed
    # a staged guest from this stage on, on the disks `--keep` left in `kept`'s cell folder
    from_stage: str | None = None
    kept: Path | None = None


def preflight(cell: Cell, probe: Probe, host: HostFacts) -> str | None:
    """Why `cell` cannot run on this host, before any image is fetched, or None."""
    if cell.skip_reason:
        return cell.skip_reason
    # A same-architecture-only accelerator (backends.yaml `hardware`) cannot run a foreign
    # guest whatever its probe or canary says: that is the cell's reason, not theirs.
    wrong_arch = foreign_arch(registry.get(cell.backend).info, cell.guest.arch, host)
    if wrong_arch:
        return wrong_arch
    if not probe.usable:
        return f"{cell.backend} {probe.status}: {probe.reason}"
    return (registry.runs_arch(cell.backend, cell.guest.arch, host)
            or registry.get(cell.backend).why_not(cell) or unobtained(cell.guest))


def execute(cell: Cell, images: dict[str, ResolvedImage], ctx: CellContext) -> CellResult:
    """Boot `cell` and return its judged result; its artefacts in its folder."""
    attempts = _boot(cell, images, ctx, ctx.run_dir)
    reruns: list[CellResult] = []
    if judge(cell, attempts).verdict.is_failure():
        for n in range(1, ctx.rerun_failures + 1):
            if _stopped(ctx):
                break
            folder = ctx.run_dir / "reruns" / str(n)
            reruns.append(_finish(cell, images, _boot(cell, images, ctx, folder), folder))
    return _finish(cell, images, attempts, ctx.run_dir, reruns)


def _stopped(ctx: CellContext) -> bool:
    return ctx.stop is not None and ctx.stop.is_set()


def _boot(cell: Cell, images: dict[str, ResolvedImage], ctx: CellContext,
          run_dir: Path) -> list[Attempt]:
    """The attempts at `cell` while `judge.should_retry` says so; earlier attempts'
    artefacts move to attempt-N/."""
    folder = run_dir / cell.folder
    folder.mkdir(parents=True, exist_ok=True)
    actx = AttemptContext(folder, ctx.stop,
                          (lambda ev: ctx.on_event(cell, ev)) if ctx.on_event else None,
                          ctx.keep, ctx.interactive, ctx.gdb_port)
    paths = {k: v.path for k, v in images.items()}
    attempts: list[Attempt] = []
    while True:
        if attempts:
            _keep_attempt(folder, len(attempts))
        try:
            if not cell.guest.stages:
                attempts.append(boot(cell, paths, actx))
            elif ctx.from_stage is not None and (missing := _take_kept(cell, ctx, folder)):
                attempts.append(Attempt(None, missing))
            else:
                attempts.append(boot_stages(cell, paths, actx, ctx.from_stage))
        except Exception as exc:  # a harness bug: this cell is an error, the run goes on
            with contextlib.suppress(OSError):  # a full disk must not hide the first error
                (folder / "harness-error.txt").write_text(traceback.format_exc())
            what = os_problem(exc) if isinstance(exc, OSError) else repr(exc)
            attempts.append(Attempt(None, f"harness error: {what} (see "
                                          f"{cell.folder}/harness-error.txt)"))
        retry_errors = ctx.retry_errors and not ctx.interactive and ctx.gdb_port is None
        if _stopped(ctx) or not should_retry(cell, attempts, retry_errors):
            return attempts


def _take_kept(cell: Cell, ctx: CellContext, folder: Path) -> str | None:
    """Copy the disk overlays (and UEFI variables) `--keep` left for this cell in the run
    `ctx.kept` into its folder, for `--from-stage`; why not, or None. Copied, not moved:
    the kept run stays as it was, so a later stage can be re-run again and again."""
    source = (ctx.kept or ctx.run_dir) / cell.folder
    kept = overlays(source)
    if not kept:
        return (f"--from-stage {ctx.from_stage}: no disk overlay kept in {source} (run the "
                "cell with --keep first)")
    if source.resolve() != folder.resolve():
        for path in [*kept, source / VARS_FILE]:
            if path.exists():
                shutil.copyfile(path, folder / path.name)
    return None


def _finish(cell: Cell, images: dict[str, ResolvedImage], attempts: list[Attempt],
            run_dir: Path, reruns: list[CellResult] | None = None) -> CellResult:
    """The judged result, with what the last attempt left and how to reproduce it."""
    result = judge(cell, attempts, reruns or ())
    folder = run_dir / cell.folder
    result.images = {name: img.to_json() for name, img in images.items()}
    launch = attempts[-1].launch
    if launch is not None:
        result.vmm = registry.get(cell.backend).facts(launch)
        result.firmware_files = {str(p): _digest(p) for p in launch.firmware_files}
        result.env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        (folder / "repro.sh").write_text(repro_script(cell, images, launch, folder,
                                                      run_dir.name))
        (folder / "repro.sh").chmod(0o755)
    for stage in result.stages:
        stage["artifacts"] = _artifacts(cell, folder, f"stages/{stage['name']}")
    booted = [st for st in result.stages if st["artifacts"]]
    result.artifacts = _artifacts(cell, folder, f"stages/{booted[-1]['name']}" if booted else "")
    if (folder / "repro.sh").exists():
        result.artifacts["repro"] = f"{cell.folder}/repro.sh"
    return result


@functools.cache
def _digest(path: Path) -> str:
    """A firmware file's digest, computed once per process."""
    return sha256_file(path)


def _artifacts(cell: Cell, folder: Path, sub: str = "") -> dict[str, object]:
    """What the cell (or its stage in `sub`) left in its folder, relative to the run
    folder (a staged cell's own are its last booted stage's)."""
    if sub:
        folder = folder / sub
    rel = f"{cell.folder}/{sub}" if sub else cell.folder
    out: dict[str, object] = {key: f"{rel}/{name}" for key, name in ARTEFACTS
                              if (folder / name).exists()}
    shots = sorted(p.name for p in folder.glob("*.png") if p.name != "screen.png")
    if shots:
        out["screenshots"] = [f"{rel}/{s}" for s in shots]
    return out


def _keep_attempt(folder: Path, n: int) -> None:
    """Move an earlier attempt's artefacts to attempt-N/ so the next starts clean."""
    dest = folder / f"attempt-{n}"
    dest.mkdir(exist_ok=True)
    for name in PER_ATTEMPT + [p.name for p in folder.glob("*.png")]:
        if (folder / name).exists():
            (folder / name).replace(dest / name)


def for_gdb(cell: Cell) -> Cell:
    """The cell without deadlines: a VM paused for a debugger must not time out."""
    never = float("inf")
    guest = retimed(cell.guest, lambda _: None, lambda _: None)
    return dataclasses.replace(cell, guest=guest, timeouts=Timeouts(never, never), retries=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
