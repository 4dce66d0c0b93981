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

from .backends import registry
from .backends.probe import UNUSABLE, HostFacts, Probe
from .config import load_guest
from .executor import CellContext, execute
from .files import atomic_write
from .images.cache import Cache
from .images.store import ImageError, ImageStore
from .model import Cell, Guest, Timeouts
from .plan import for_backend, make_cell

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
    for canary in canary_guests(host):
        guest, timeouts = for_backend(canary, canary.timeouts or Timeouts(), backend)
        for firmware in guest.firmware:
            cell = make_cell(guest, backend, firmware, timeouts, guest.memory_mb)
            if registry.get(backend).why_not(cell) is None:
                return cell
    return None


def host_key(backend: str, host: HostFacts) -> str:
    """What a cached canary result is valid for: host, kernel, backend, VMM version."""
    p = registry.static_probe(backend, host)
    return f"{host.hostname}|{host.kernel}|{backend}|{p.binary} {p.version}"


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
    result = execute(cell, images, CellContext(run_dir))
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


def probe_all(host: HostFacts, cache: Cache, offline: bool = False, canary: bool = False,
              no_canary: bool = False, ttl: float | None = None, fresh: bool = False,
              log: Callable[[str], None] = print) -> list[Probe]:
    """`harness probe`: every backend's static probe, then the canary of each usable
    hardware backend (of every usable backend with `canary`), unless `no_canary`."""
    store = ImageStore(cache, offline, log=log)
    results = []
    for name in registry.names():
        p = registry.static_probe(name, host)
        if p.usable and (p.hardware or canary) and not no_canary:
            c = run_canary(cache, store, name, host, ttl, fresh, log)
            p.canary = c.to_json()
            p.reason = c.describe()
            if not c.ok:
                p.status = UNUSABLE
        results.append(p)
    return results
