"""Health canaries: does a hardware accelerator really run a 64-bit guest?

A device node that opens is not proof: on a PVM host `/dev/kvm` opens, and
guests crawl through KVM's instruction emulator until QEMU stops with
`KVM internal error`. Before a run uses a hardware accelerator it boots a
small guest (a data file, `data/canary-<host arch>.yaml`) on it with tight
deadlines. The outcome is cached per host, kernel, backend and QEMU version
for a configurable time.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .. import knowledge
from ..config import load_guest
from ..images.cache import Cache, atomic_write
from ..images.store import ImageError, ImageStore
from ..model import Cell, Guest, Timeouts
from .probe import HostFacts, host_binary, qemu_info, static_probe

DEFAULT_TTL = 6 * 3600.0


def canary_ttl(value: float | None = None) -> float:
    """--canary-ttl, else $HARNESS_CANARY_TTL, else six hours (seconds)."""
    if value is not None:
        return value
    env = os.environ.get("HARNESS_CANARY_TTL")
    return float(env) if env else DEFAULT_TTL


@dataclass
class CanaryResult:
    backend: str
    ok: bool
    reason: str
    duration_s: float
    checked: float  # epoch seconds
    host_key: str
    log: str | None = None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        age = time.time() - self.checked
        when = f"cached, {age / 60:.0f} min old" if self.cached else f"{self.duration_s:.1f} s"
        return f"canary {'passed' if self.ok else 'failed'} ({when}): {self.reason}"


def canary_guests(host: HostFacts) -> list[Guest]:
    """The canaries for this host's architecture: a kernel boot first, then media."""
    out = []
    for name in (f"canary-{host.arch}.yaml", f"canary-{host.arch}-iso.yaml"):
        ref = resources.files("harness").joinpath("data").joinpath(name)
        if ref.is_file():
            with resources.as_file(ref) as path:
                out.append(load_guest(Path(path)))
    return out


def canary_cell(backend: str, host: HostFacts) -> Cell | None:
    """The first canary (and firmware) this backend can boot at all."""
    from ..plan import for_backend
    from .vmm import why_not  # vmm imports the backend modules: import late

    for canary in canary_guests(host):
        guest, timeouts = for_backend(canary, canary.timeouts or Timeouts(), backend)
        for firmware in guest.firmware:
            cell = Cell(guest=guest, backend=backend, firmware=firmware, timeouts=timeouts,
                        memory_mb=guest.memory_mb)
            if why_not(cell) is None:
                return cell
    return None


def host_key(backend: str, host: HostFacts) -> str:
    """What a cached canary result is valid for: host, kernel, backend, VMM version."""
    if knowledge.backends()[backend].kind != "qemu":
        p = static_probe(backend, host)
        return f"{host.hostname}|{host.kernel}|{backend}|{p.binary} {p.version}"
    binary = host_binary(host)
    version = qemu_info(binary).version if binary else None
    return f"{host.hostname}|{host.kernel}|{backend}|qemu {version}"


def cached(cache: Cache, backend: str, host: HostFacts, ttl: float) -> CanaryResult | None:
    path = cache.root / "canary" / f"{backend}.json"
    try:
        data = json.loads(path.read_text())
        result = CanaryResult(**{k: v for k, v in data.items() if k != "cached"})
    except (OSError, ValueError, TypeError):
        return None
    if result.host_key != host_key(backend, host) or time.time() - result.checked > ttl:
        return None
    result.cached = True
    return result


def run_canary(
    cache: Cache,
    store: ImageStore,
    backend: str,
    host: HostFacts,
    ttl: float | None = None,
    fresh: bool = False,
    log: Callable[[str], None] = print,
) -> CanaryResult:
    """The canary's verdict on `backend`, from the cache when recent enough."""
    from ..runner import run_cell  # the runner imports backends: import late

    if not fresh:
        hit = cached(cache, backend, host, canary_ttl(ttl))
        if hit is not None:
            return hit
    key = host_key(backend, host)
    cell = canary_cell(backend, host)
    if cell is None:
        return CanaryResult(backend, True, f"no canary {backend} can boot is defined for "
                            f"{host.arch} hosts; not verified", 0.0, time.time(), key)
    guest = cell.guest
    try:
        images = store.resolve_guest(guest)
    except ImageError as exc:
        # no verdict on the accelerator: not cached, so the next run tries again
        return CanaryResult(backend, False, f"canary images unavailable: {exc}", 0.0,
                            time.time(), key)
    run_dir = cache.sub("canary", f"{backend}-run")
    shutil.rmtree(run_dir / "cells", ignore_errors=True)
    log(f"  canary: booting {guest.name} on {backend} ({cell.firmware})")
    started = time.monotonic()
    result = run_cell(cell, images, run_dir)
    ok = not result.verdict.is_failure()
    reached = [m.name for m in result.milestones if m.reached]
    if ok:
        t = max((m.t or 0.0) for m in result.milestones)
        reason = f"{guest.name} reached {reached[-1]!r} in {t:.1f} s"
    else:
        reason = f"{result.verdict}: {result.reason}"
    console = result.artifacts.get("console")
    out = CanaryResult(backend, ok, reason, time.monotonic() - started, time.time(), key,
                       str(run_dir / console) if console else None)
    atomic_write(cache.sub("canary") / f"{backend}.json", json.dumps(out.to_json(), indent=1))
    return out
