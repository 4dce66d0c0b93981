"""Cluster mode on Dask distributed: cells go where their backend lives.

`harness worker --scheduler tcp://HOST:PORT` probes its host (static checks
and canaries) and joins the Dask cluster with one resource per usable
backend, `backend-<name>=<slots>`. `harness run --cluster tcp://HOST:PORT`
submits each cell requiring its backend's resource, so a kvm cell only
lands on a host whose KVM works; the worker fetches the images into its own
cache, boots the cell, and sends back the result with the cell folder (logs,
screenshots, repro.sh) as a tar. A worker lost mid-cell makes Dask run the
cell again elsewhere; the client counts the result it receives, once. A
cell no connected worker can run is skipped with that reason.

Needs the optional dependency: pip install 'guest-harness[cluster]'.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .backends import probe as probes
from .backends import registry
from .canary import run_canary
from .executor import CellContext, execute
from .images.archive import safe_member_name
from .images.cache import Cache
from .images.store import ImageError, ImageStore
from .judge import errored, skipped
from .model import Cell, CellResult
from .results.store import RunStore

RESOURCE = "backend-{}"


class ClusterError(Exception):
    pass


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError("cluster mode needs Dask: pip install 'guest-harness[cluster]'") \
            from None
    return distributed


# --- the worker side -----------------------------------------------------------


def usable_backends(log: Callable[[str], None] = print) -> list[str]:
    """Backends this host really runs: static checks, then canaries."""
    host = probes.host_facts()
    cache = Cache()
    store = ImageStore(cache, log=log)
    out = []
    for name in registry.names():
        p = registry.static_probe(name, host)
        if p.usable and p.hardware:
            c = run_canary(cache, store, name, host, log=log)
            if not c.ok:
                log(f"{name}: {c.describe()}")
                continue
        if p.usable:
            out.append(name)
        else:
            log(f"{name}: {p.status}: {p.reason}")
    return out


def worker_resources(backends: Sequence[str], slots: int) -> dict[str, float]:
    return {RESOURCE.format(b): float(slots) for b in backends}


def serve(scheduler: str, backends: Sequence[str], slots: int, name: str | None,
          connect_timeout: float = 30.0) -> None:
    """Join the cluster and run cells until the scheduler goes away or Ctrl-C. A scheduler
    that cannot be reached for `connect_timeout` seconds (Dask's death timeout, at start or
    later) stops the worker: left alone, Dask would retry for ever."""
    distributed = _distributed()

    async def main() -> None:
        async with distributed.Worker(scheduler, nthreads=slots, name=name,
                                      death_timeout=connect_timeout,
                                      resources=worker_resources(backends, slots)) as w:
            await w.finished()

    try:
        asyncio.run(main())
    except (TimeoutError, OSError) as exc:
        raise ClusterError(f"cannot reach the scheduler at {scheduler} (gave up after "
                           f"{connect_timeout:g} s): {exc}") from None


def run_remote(cell: Cell) -> tuple[dict[str, Any], bytes]:
    """Run on a worker: boot the cell; its result and its folder as a tar."""
    worker = socket.gethostname()
    with contextlib.suppress(ValueError):  # ValueError: not inside a Dask worker
        worker = f"{_distributed().get_worker().name}@{worker}"
    try:
        images = ImageStore(Cache(), log=lambda m: None).resolve_guest(cell.guest)
    except ImageError as exc:
        result = errored(cell, f"on {worker}: {exc}")
        result.worker = worker
        return result.to_json(), b""
    with tempfile.TemporaryDirectory(prefix="harness-cell-") as d:
        result = execute(cell, images, CellContext(Path(d)))
        result.worker = worker
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            folder = Path(d) / cell.folder
            if folder.is_dir():
                tar.add(folder, arcname=cell.folder)
    return result.to_json(), buf.getvalue()


# --- the client side -----------------------------------------------------------


def advertised(client: Any) -> dict[str, list[str]]:
    """Resource name -> the workers that offer it."""
    out: dict[str, list[str]] = {}
    for info in client.scheduler_info()["workers"].values():
        for res in info.get("resources", {}):
            out.setdefault(res, []).append(str(info.get("name") or info.get("id")))
    return out


def run_on_cluster(address: str, cells: Sequence[Cell], store: RunStore,
                   on_result: Callable[[CellResult], None],
                   stop: Callable[[], bool] = lambda: False) -> None:
    """Submit every cell to the cluster at `address`; results into `store`."""
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout="20s")
    except OSError as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        offered = advertised(client)
        futures = {}
        for cell in cells:
            resource = RESOURCE.format(cell.backend)
            if resource not in offered:
                workers = ", ".join(sorted({w for ws in offered.values() for w in ws}))
                result = skipped(cell, f"no connected worker runs {cell.backend} "
                                       f"(workers: {workers or 'none'})")
                store.add(result)
                on_result(result)
                continue
            future = client.submit(run_remote, cell, resources={resource: 1}, pure=False,
                                   key=f"cell-{cell.id}-{id(cell)}")
            futures[future] = cell
        for future in distributed.as_completed(list(futures)):
            if stop():
                break
            cell = futures[future]
            try:
                data, archive = future.result()
            except Exception as exc:  # the task failed on every worker it was given to
                result = errored(cell, f"the cluster could not run it: {exc!r}")
            else:
                if archive:
                    _unpack(archive, store.folder)
                result = CellResult.from_json(data)
            store.add(result)
            on_result(result)
    finally:
        client.close()


def _unpack(archive: bytes, dest: Path) -> None:
    """A worker's cell folder into the run folder; nothing may land outside it."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not safe_member_name(member.name) or not (member.isfile() or member.isdir()):
                raise ClusterError(f"refusing {member.name!r} in a worker's archive")
        tar.extractall(dest)
