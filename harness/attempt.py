"""One try at booting a cell, whichever VMM ran it (runner.py and runner_vmm.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .backends.qemu import QemuLaunch
from .backends.vmm import VmmLaunch
from .console.tracker import Outcome
from .model import Verdict


@dataclass
class Attempt:
    outcome: Outcome | None
    verdict: Verdict
    reason: str | None
    command: list[str]
    duration: float
    launch: QemuLaunch | VmmLaunch | None = None
    media: dict[str, Path] | None = None
