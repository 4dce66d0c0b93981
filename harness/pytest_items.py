"""The pytest items of the plugin (`pytest_plugin`): imported only when it is used."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .backends import probe as probes
from .executor import CellContext, execute, preflight
from .images.cache import Cache
from .images.store import ImageError, ImageStore, ResolvedImage
from .judge import errored
from .model import Cell
from .progress import Progress, Silent
from .results.after import finish_run, write_pages
from .results.junit import console_tail
from .results.store import RunStore
from .scheduler import RunOptions, Scheduler
from .verdict import tests_failed


class _Runner:
    """What the items of one pytest process share: probes, images, a run folder."""

    def __init__(self, config: pytest.Config, matrix_path: Path) -> None:
        self.config = config
        self.matrix_path = matrix_path
        out = config.getoption("harness_out")
        self.out = Path(out) if out else matrix_path.parent / "reports"
        self.scheduler = Scheduler(RunOptions(out=self.out, cache=Cache()),
                                   Progress(live=False, stream=Silent()))
        self._store: RunStore | None = None
        self._probes: dict[str, probes.Probe] = {}
        self._images: dict[str, dict[str, ResolvedImage]] = {}

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = RunStore(self.out, probes.host_facts().to_json(),
                                   meta={"matrix": str(self.matrix_path), "pytest": True},
                                   latest=False)
        return self._store

    def blocker(self, cell: Cell) -> str | None:
        if cell.backend not in self._probes:
            self._probes.update(self.scheduler.probe_backends([cell]))
        return preflight(cell, self._probes[cell.backend], self.scheduler.host)

    def images(self, cell: Cell) -> dict[str, ResolvedImage]:
        if cell.guest.id not in self._images:
            store = ImageStore(Cache(), log=lambda m: None)
            self._images[cell.guest.id] = store.resolve_guest(cell.guest)
        return self._images[cell.guest.id]

    def finish(self) -> None:
        """The after-work of any run: speed, divergence, results, JUnit, pages."""
        if self._store is not None:
            finish_run(self._store)
            try:
                write_pages(self._store.folder)
            except (OSError, ValueError, sqlite3.Error) as exc:
                print(f"harness: the run's pages were not written: {exc}")


class CellItem(pytest.Item):
    def __init__(self, *, cell: Cell, runner: _Runner, **kw: Any) -> None:
        super().__init__(**kw)
        self.cell = cell
        self.runner = runner
        self.result = None
        if cell.expect is not None:
            self.add_marker(pytest.mark.xfail(reason=cell.expect.reason, strict=False))

    def runtest(self) -> None:
        why = self.runner.blocker(self.cell)
        if why:
            pytest.skip(why)
        store = self.runner.store
        try:
            images = self.runner.images(self.cell)
        except ImageError as exc:
            store.add(errored(self.cell, str(exc)))
            raise CellFailed(f"error: {exc}", "") from None
        result = execute(self.cell, images, CellContext(store.folder))
        store.add(result)
        self.result = result
        verdict = result.underlying or result.verdict  # xfail marks map expectations
        if verdict.is_failure():
            raise CellFailed(f"{verdict}: {result.reason}", console_tail(store.folder, result))
        if tests_failed(result):  # the boot went well; the guest's own tests did not
            bad = [c for c in result.cases if c["status"] in ("failed", "error")]
            raise CellFailed(f"{len(bad)} of its tests failed: "
                             + ", ".join(f"{c['step']}: {c['name']} ({c['status']})"
                                         for c in bad[:20]),
                             "\n".join(f"{c['name']}: {c['output'].strip()}" for c in bad),
                             "what the failed tests said")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
                     ) -> str | Any:
        if isinstance(excinfo.value, CellFailed):
            message, tail, *label = excinfo.value.args
            return (f"{self.cell.id}: {message}\n--- {label[0] if label else 'console tail'} "
                    f"---\n{tail[-3000:]}")
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.runner.matrix_path, None, self.cell.id


class CellFailed(Exception):
    """A cell whose verdict or tests count as failure (message, console tail or the
    failed tests' output, and optionally what that text is)."""
