"""Backends by name: `data/backends.yaml` names each one's module and capabilities.

A new backend is one module (the protocol in `base`) plus one entry in
backends.yaml; nothing else in the harness names backends or branches on
their kind. Capabilities (`monitor`, `screen`, `keys`, `gdb`,
`interactive`) are checked here, before any image is fetched, so a cell
that needs one its backend lacks is skipped with the reason, and a command
line asking for one is a usage error.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import knowledge
from ..model import BackendInfo, Cell
from ..stages import stage_cell
from . import tool
from .base import Launch, LaunchContext
from .probe import MISSING, HostFacts, HostIO, Probe, host_facts


@dataclass(frozen=True)
class Backend:
    info: BackendInfo
    module: ModuleType

    @property
    def name(self) -> str:
        return self.info.name

    def can(self, capability: str) -> bool:
        return capability in self.info.capabilities

    def why_not(self, cell: Cell) -> str | None:
        """What the cell asks that this backend cannot do, or None."""
        if cell.guest.stages:
            if not self.can("stages"):
                return (f"{self.name} cannot boot a guest in stages (one set of disk "
                        "overlays across boots)")
            for stage in cell.guest.stages:
                why = self.why_not(stage_cell(cell, stage))
                if why:
                    return f"stage {stage.name}: {why}"
            return None
        if cell.guest.uses_screen and not self.can("screen"):
            return (f"{self.name} has no monitor the harness can read the screen or type "
                    f"keys through: serial-console guests only")
        if any(m.keys for m in cell.guest.milestones) and not self.can("keys"):
            return f"{self.name} cannot type keys into the guest: serial-console guests only"
        if cell.guest.boot.kind == "network" and not self.can("netboot"):
            return f"{self.name} cannot serve a network boot's TFTP tree"
        if not self.can("boards") and (cell.guest.board or (
                cell.guest.machine is not None
                and knowledge.machine_for(self.info.kind, cell.guest) is None)):
            return (f"{self.name} emulates its own machine; this guest names QEMU board "
                    f"parts (machine, cpu, drives or bios: none)")
        return self.module.why_not(cell)

    def build_launch(self, cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
        return self.module.build_launch(cell, images, ctx)

    def probe(self, host: HostFacts, io: HostIO | None = None) -> Probe:
        return getattr(self.module, "probe", tool.probe)(self.info, host, io)

    def runs_arch(self, guest_arch: str, host: HostFacts) -> str | None:
        return getattr(self.module, "runs_arch", tool.runs_arch)(self.info, guest_arch, host)

    def facts(self, launch: Launch) -> dict[str, Any]:
        return getattr(self.module, "facts", tool.facts)(self.info, launch)


def get(name: str) -> Backend:
    info = knowledge.backends()[name]
    return Backend(info, _module(info.module))


@functools.cache
def _module(name: str) -> ModuleType:
    """harness.backends.<name>, or a dotted module path (a backend kept elsewhere)."""
    return importlib.import_module(name if "." in name else f"harness.backends.{name}")


def names() -> list[str]:
    return list(knowledge.backends())


def static_probe(name: str, host: HostFacts | None = None, io: HostIO | None = None) -> Probe:
    """Everything about backend `name` that can be known without booting (`io`: what
    the host's tools answer; tests pass recorded outputs)."""
    host = host or host_facts()
    b = knowledge.backends()[name]
    if b.host_os and host.os not in b.host_os:
        return Probe(name, MISSING, f"{b.description} runs on {', '.join(b.host_os)}; "
                     f"this host runs {host.os}", b.hardware)
    return get(name).probe(host, io)


def runs_arch(name: str, guest_arch: str, host: HostFacts | None = None) -> str | None:
    """Why backend `name` cannot run a `guest_arch` guest on this host, or None."""
    return get(name).runs_arch(guest_arch, host or host_facts())


def lacking(cells: Sequence[Cell], capability: str) -> list[str]:
    """The backends of `cells` without `capability` (for usage errors)."""
    return [b for b in dict.fromkeys(c.backend for c in cells) if not get(b).can(capability)]
