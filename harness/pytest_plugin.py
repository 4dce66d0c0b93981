"""The matrix as pytest items: `pytest --harness-matrix matrix.yaml`.

Each cell becomes a test item whose id is the cell id; a cell the host
cannot run is skipped with its reason, a known-bad cell is marked xfail,
and a failing cell's report ends with its console tail. Registered as a
pytest plugin (entry point `harness`); inert without `--harness-matrix`
(and light: the harness itself is imported only then).
Works with pytest-xdist: each worker boots the cells it is given.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("guest-harness")
    group.addoption("--harness-matrix", metavar="FILE",
                    help="run this guest-harness matrix: one test item per cell")
    group.addoption("--harness-guests", metavar="DIR",
                    help="guest files (default: guests/ next to the matrix)")
    group.addoption("--harness-only", action="append", default=[], metavar="GLOB",
                    help="only cells whose id matches; repeatable")
    group.addoption("--harness-out", metavar="DIR",
                    help="where the run folder goes (default: reports/ next to the matrix)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    matrix_option = config.getoption("harness_matrix")
    if not matrix_option:
        return
    from .config import load_guests, load_matrix
    from .plan import expand
    from .pytest_items import CellItem, _Runner

    matrix_path = Path(matrix_option).resolve()
    guests_dir = config.getoption("harness_guests")
    guests = load_guests(Path(guests_dir) if guests_dir else matrix_path.parent / "guests")
    matrix = load_matrix(matrix_path, guests)
    runner = _Runner(config, matrix_path)
    config._harness_runner = runner  # type: ignore[attr-defined]
    for cell in expand(matrix, guests, only=config.getoption("harness_only")):
        items.append(CellItem.from_parent(session, name=cell.id, cell=cell, runner=runner))


def pytest_sessionfinish(session: pytest.Session) -> None:
    runner = getattr(session.config, "_harness_runner", None)
    if runner is not None:
        runner.finish()
