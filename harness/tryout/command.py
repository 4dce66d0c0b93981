"""`harness try`: detect an image, boot it on each backend asked for, say how far
it got in the porters' words, and write the guest file that reproduces it."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends import probe as probes
from ..backends import registry
from ..canary import canary_ttl, run_canary
from ..executor import preflight
from ..images.cache import Cache
from ..images.store import ImageError, ImageStore
from ..judge import Attempt
from ..model import Timeouts
from ..plan import make_cell
from ..runner import AttemptContext, boot
from .observe import Observation, observe
from .source import TryError, prepare
from .write import guest_text


@dataclass
class TryOptions:
    image: str | None
    backends: Sequence[str] = ("tcg",)
    firmware: str | None = None
    arch: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    append: str | None = None
    sha256: str | None = None
    write: Path | None = None
    limit: float = 180.0
    answer: bool = True
    quiet: float = 3.0
    hang: float = 60.0
    memory: str = "1024M"
    out: Path | None = None
    offline: bool = False


def _follow(opts: TryOptions, log: Callable[[str], None]):
    """runner.boot's follow step for `try`: the VM watched by `observe`."""
    def follow(cell, launch, ctx, sockdir, started, transport):
        from ..backends.process import SpawnError
        from ..backends.transport import open_console
        from ..console.transcript import Transcript

        folder = ctx.folder
        try:
            vm = open_console(launch, folder / "vmm.stderr", transport)
        except SpawnError as exc:
            return Attempt(None, str(exc), launch)

        def screen(sink):
            if launch.monitor is None or cell.guest.console == "serial":
                return None
            from ..console.watcher import ScreenWatcher

            watcher = ScreenWatcher(launch.monitor, sockdir, folder, sink,
                                    Transcript(folder, name="screen", raw=False))
            watcher.connect()
            return watcher

        try:
            return observe(vm, launch, folder, screen, opts.limit, opts.answer, opts.quiet,
                           log, opts.hang)
        finally:
            vm.stop()
    return follow


def _where_they_part(results: dict[str, Observation]) -> str | None:
    """The first phase two backends' boots did not share, in words."""
    if len(results) < 2:
        return None
    names = {k: [s.sign.name for s in o.seen] for k, o in results.items()}
    common = 0
    seqs = list(names.values())
    while all(len(s) > common for s in seqs) and len({s[common] for s in seqs}) == 1:
        common += 1
    if all(len(s) == common for s in seqs) and len({o.verdict for o in results.values()}) == 1:
        return "all backends showed the same phases"
    last = seqs[0][common - 1] if common else "the start"
    parts = ", ".join(f"{k}: {o.label} ({o.verdict})" for k, o in results.items())
    return f"they part after {last}: {parts}"


def run_try(opts: TryOptions, log: Callable[[str], None] = print) -> int:
    """The whole command; its exit status (0: every boot passed, 1: one did not,
    2: nothing could be tried)."""
    cache = Cache()
    store = ImageStore(cache, opts.offline, log=log)
    out = opts.out or Path(tempfile.mkdtemp(prefix="harness-try-"))
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    try:
        tried = prepare(opts.image, store, work, sha256=opts.sha256, kernel=opts.kernel,
                        initrd=opts.initrd, append=opts.append, arch=opts.arch,
                        memory=opts.memory)
    except ImageError as exc:
        raise TryError(str(exc)) from None
    d = tried.detected
    log(f"{tried.sources['kernel' if opts.kernel else 'image']}: {d.kind}, boots as "
        f"{d.boot}, arch {tried.guest.arch}{'' if d.arch else ' (guessed)'}, "
        f"firmware {'/'.join(d.firmware or ['bios'])}")
    for fact in d.facts:
        log(f"  {fact}")
    host = probes.host_facts()
    firmware = opts.firmware or (d.firmware or ["bios"])[0]
    results: dict[str, Observation] = {}
    status = 0
    for backend in opts.backends:
        guest = tried.guest
        if not registry.get(backend).can("screen"):
            guest = dataclasses.replace(guest, console="serial")
        cell = make_cell(guest, backend, firmware, Timeouts(total=opts.limit + 60),
                         guest.memory_mb)
        probe = registry.static_probe(backend, host)
        why = preflight(cell, probe, host)
        if why is None and probe.hardware:
            canary = run_canary(cache, store, backend, host, canary_ttl(None), False, log)
            why = None if canary.ok else f"{backend} unusable: {canary.describe()}"
        if why:
            log(f"{backend}/{firmware}: skipped: {why}")
            status = max(status, 1)
            continue
        folder = out / f"{backend}-{firmware}"
        folder.mkdir(parents=True, exist_ok=True)
        log(f"{backend}/{firmware}: booting (folder {folder})")
        started = time.monotonic()
        result = boot(cell, {k: v.path for k, v in tried.images.items()},
                      AttemptContext(folder),
                      follow=_follow(opts, log))
        if isinstance(result, Attempt):
            log(f"{backend}/{firmware}: error: {result.error}")
            status = max(status, 1)
            continue
        results[backend] = result
        log(f"{backend}/{firmware}: {result.summary()} "
            f"(answer in {time.monotonic() - started:.1f} s)")
        if result.verdict != "pass":
            status = max(status, 1)
    parting = _where_they_part(results)
    if parting:
        log(parting)
    if opts.write and results:
        backend, obs = next(((b, o) for b, o in results.items() if o.verdict == "pass"),
                            next(iter(results.items())))
        opts.write.parent.mkdir(parents=True, exist_ok=True)
        text = guest_text(tried, obs, backend, firmware, opts.write.stem)
        opts.write.write_text(text)
        log(f"wrote {opts.write} (from {backend}/{firmware}); check it with "
            f"`harness run --guests {opts.write.parent} --only '{opts.write.stem}/*'`")
    if not results:
        return max(status, 1)
    return status
