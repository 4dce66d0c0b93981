"""Run many cells: probe, fetch, canary, then boot in parallel.

The stages follow the design's flow: backends are probed once (static checks,
then a canary for each hardware accelerator the plan uses), images are
fetched once per guest, and only then do cells run, `jobs` at a time. Each
finished cell is stored at once; Ctrl-C or SIGTERM stops the running VMs,
keeps what finished and marks the run interrupted.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .backends import probe as probes
from .backends import registry
from .canary import run_canary
from .dispatch import CELL_OVERHEAD_MB, Slots, history, longest_first
from .executor import CellContext, execute, preflight
from .files import os_problem
from .images.cache import Cache
from .images.store import ImageError, ImageStore, ResolvedImage
from .judge import errored, skipped
from .model import Cell, CellResult
from .progress import Progress
from .results.after import finish_run
from .results.store import RunStore, load_results


@dataclass
class RunOptions:
    out: Path
    cache: Cache
    jobs: int | None = None
    strict: bool = False
    offline: bool = False
    canary_ttl: float | None = None
    fresh_canary: bool = False
    keep: bool = False
    interactive: bool = False
    gdb_port: int | None = None
    rerun_failures: int = 0
    resume: Path | None = None
    cluster: str | None = None  # a Dask scheduler address
    from_stage: str | None = None  # staged guests from this stage on (--from-stage)
    kept: Path | None = None  # the run whose kept overlays they boot on
    meta: dict = field(default_factory=dict)


@dataclass
class RunOutcome:
    store: RunStore
    results: list[CellResult]
    interrupted: bool

    def exit_status(self, strict: bool) -> int:
        if self.interrupted:
            return 130
        return 1 if any(r.verdict.is_failure(strict) for r in self.results) else 0


def available_memory_mb() -> int | None:
    """Memory free for new VMs, from psutil (it knows every host the harness runs on:
    /proc/meminfo's MemAvailable on Linux, sysctl on the BSDs and macOS, the Windows
    API); sysconf where psutil cannot answer, else None (no memory limit)."""
    try:
        import psutil

        return psutil.virtual_memory().available // (1 << 20)
    except (ImportError, OSError, RuntimeError, AttributeError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except (ValueError, OSError, AttributeError):
        return None


def auto_jobs(cells: Sequence[Cell]) -> int:
    """Parallel cells that fit this host's cores and memory."""
    if not cells:
        return 1
    cores = os.cpu_count() or 1
    per_cell = max(c.memory_mb for c in cells) + CELL_OVERHEAD_MB
    mem = available_memory_mb()
    by_memory = int(mem * 0.8) // per_cell if mem else cores
    return max(1, min(cores, by_memory, len(cells)))


class Scheduler:
    def __init__(self, options: RunOptions, progress: Progress | None = None) -> None:
        self.opts = options
        self.progress = progress or Progress()
        self.host = probes.host_facts()
        self.images = ImageStore(options.cache, options.offline, self._log)
        self.stop = threading.Event()

    def _log(self, message: str) -> None:
        self.progress.info(message)

    # --- stages --------------------------------------------------------------

    def probe_backends(self, cells: Sequence[Cell]) -> dict[str, probes.Probe]:
        """Static probe of every backend in the plan, then canaries."""
        found: dict[str, probes.Probe] = {}
        for backend in dict.fromkeys(c.backend for c in cells):
            found[backend] = registry.static_probe(backend, self.host)
        for backend, p in found.items():
            if not (p.usable and p.hardware):
                continue
            if not any(c.backend == backend and preflight(c, p, self.host) is None
                       for c in cells):
                continue
            result = run_canary(self.opts.cache, self.images, backend, self.host,
                                self.opts.canary_ttl, self.opts.fresh_canary, self._log)
            p.canary = result.to_json()
            if not result.ok:
                p.status, p.reason = probes.UNUSABLE, result.describe()
            self._log(f"{backend}: {result.describe()}")
        return found

    def fetch(self, cells: Sequence[Cell]) -> dict[str, dict[str, ResolvedImage] | str]:
        """Images per guest, or the reason they could not be had."""
        out: dict[str, dict[str, ResolvedImage] | str] = {}
        for cell in cells:
            gid = cell.guest.id
            if gid in out:
                continue
            self._log(f"images for {gid}")
            try:
                out[gid] = self.images.resolve_guest(cell.guest)
                for name, img in out[gid].items():
                    if img.details.get("pinned") is False:
                        self._log(f"  {gid}/{name} is UNPINNED: no digest verifies {img.source}")
            except ImageError as exc:
                out[gid] = str(exc)
                self._log(f"  {exc}")
        return out

    # --- the run -------------------------------------------------------------

    def run(self, cells: Sequence[Cell]) -> RunOutcome:
        host = self.host.to_json()
        binary = probes.host_binary(self.host)
        host["qemu"] = probes.qemu_info(binary).version if binary else None
        known = history(self.opts.out)  # before this run becomes reports/latest
        if self.opts.resume is not None:
            store, cells = self._reopen(self.opts.resume, cells)
        else:
            store = RunStore(self.opts.out, host, meta=self.opts.meta)
        self.progress.start(len(cells))
        self._log(f"run {store.run_id}: {len(cells)} cells -> {store.folder}")
        interrupted = False
        try:
            if self.opts.cluster:
                from .cluster import run_on_cluster  # Dask loads only for --cluster

                self._log(f"submitting to the Dask cluster at {self.opts.cluster}")
                run_on_cluster(self.opts.cluster, cells, store, self.progress.cell_finished,
                               self.stop.is_set)
                return RunOutcome(store, list(store.cells), False)
            runnable = self._prepare(cells, store)
            jobs = self.opts.jobs or auto_jobs([c for c, _ in runnable])
            if runnable:
                self._log(f"booting {len(runnable)} cells, {jobs} at a time")
            interrupted = self._boot_all(runnable, store, jobs, known)
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()
        finally:
            finish_run(store, interrupted)
            self.progress.close()
        return RunOutcome(store, list(store.cells), interrupted)

    def _reopen(self, folder: Path, cells: Sequence[Cell]) -> tuple[RunStore, list[Cell]]:
        """--resume: keep the cells a run finished; what is left of `cells` runs now."""
        try:
            recorded = load_results(folder)
        except (OSError, ValueError) as exc:
            raise ResumeError(f"cannot resume {folder}: {exc}") from None
        wanted = {c.id for c in cells}
        keep = [CellResult.from_json(c) for c in recorded["cells"]
                if c["id"] in wanted and not (c["verdict"] == "error"
                                              and (c.get("reason") or "").startswith("interr"))]
        done = {r.cell_id for r in keep}
        self._log(f"resuming {folder}: {len(done)} cells kept, {len(wanted - done)} to run")
        return RunStore.reopen(folder, keep), [c for c in cells if c.id not in done]

    def _prepare(self, cells: Sequence[Cell],
                 store: RunStore) -> list[tuple[Cell, dict[str, ResolvedImage]]]:
        found = self.probe_backends(cells)
        ready = []
        for cell in cells:
            why = preflight(cell, found[cell.backend], self.host)
            if why:
                self._finish(store, skipped(cell, why))
            else:
                ready.append(cell)
        images = self.fetch(ready)
        runnable = []
        for cell in ready:
            got = images[cell.guest.id]
            if isinstance(got, str):
                self._finish(store, errored(cell, got))
            else:
                runnable.append((cell, got))
        return runnable

    def _finish(self, store: RunStore, result: CellResult) -> None:
        store.add(result)
        self.progress.cell_finished(result)

    def context(self, run_dir: Path) -> CellContext:
        """How this run boots each cell."""
        o = self.opts
        return CellContext(run_dir, self.stop, self.progress.cell_event, o.keep, o.interactive,
                           o.gdb_port, o.rerun_failures, retry_errors=True,
                           from_stage=o.from_stage, kept=o.kept)

    def _boot_one(self, cell: Cell, images: dict[str, ResolvedImage],
                  store: RunStore) -> CellResult | None:
        if self.stop.is_set():
            return None
        self.progress.cell_started(cell)
        try:
            result = execute(cell, images, self.context(store.folder))
        except OSError as exc:  # its folder could not be written (a full disk): an error
            store.note_lost(cell.folder, exc)
            result = errored(cell, f"its files could not be written: {os_problem(exc)}")
        self._finish(store, result)
        return result

    def _boot_all(self, runnable: list[tuple[Cell, dict[str, ResolvedImage]]],
                  store: RunStore, jobs: int, known: dict[str, float]) -> bool:
        if not runnable:
            return False
        images = {c.id: imgs for c, imgs in runnable}
        pending = longest_first([c for c, _ in runnable], known)
        slots = Slots(os.cpu_count() or 1, available_memory_mb() or 1 << 20, jobs)
        pool = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cell")
        running: dict[cf.Future, Cell] = {}
        try:
            while pending or running:
                for cell in slots.startable(pending):
                    running[pool.submit(self._boot_one, cell, images[cell.id], store)] = cell
                done, _ = cf.wait(running, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    slots.give_back(running.pop(future))
                    future.result()  # re-raise a harness bug instead of hiding it
            return False
        except KeyboardInterrupt:
            self.stop.set()
            self._log("interrupted: stopping the running VMs (finished cells are kept; "
                      f"`harness run --resume {store.folder}` runs the rest)")
            cf.wait(running, timeout=30)
            return True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class ResumeError(Exception):
    """A run folder that cannot be resumed."""
