"""The harness's built-in knowledge, loaded from the YAML tables in `data/`.

Backends, guest architectures, quirks and failure signatures are data, so
adding an accelerator or a quirk is an edit to a table, not to code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .model import FailureSignature, Guest, Quirk


def _table(name: str) -> dict[str, Any]:
    text = resources.files("harness").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    kind: str  # qemu | bochs | vmd | bhyve | xen | virtualbox
    description: str
    hardware: bool
    accel: str = ""  # QEMU's -accel name (qemu kind only)
    host_os: tuple[str, ...] = ()
    device: dict[str, str] = field(default_factory=dict)
    host_file: dict[str, str] = field(default_factory=dict)
    sysctl: dict[str, str] | None = None
    qemu_before: str | None = None
    accel_opts: dict[str, str] = field(default_factory=dict)
    smp_accel_opts: dict[str, str] = field(default_factory=dict)
    cpu: str | None = None
    failures: tuple[FailureSignature, ...] = ()
    binary: str | None = None  # other VMMs: the tool the probe looks for
    package: str = ""
    version: tuple[str, ...] = ()  # args..., then the regex whose group 1 is the version
    arches: tuple[str, ...] = ()  # other VMMs: the guest architectures they run
    time_factor: float = 1.0  # deadlines are this many times longer (slow emulators)


@dataclass(frozen=True)
class ArchInfo:
    name: str
    qemu: str
    debian: str
    package: str
    cpu_base: str
    host: tuple[str, ...]
    machine: dict[str, str]
    firmware: dict[str, dict[str, Any]]
    cpu: str | None = None


def _signatures(items: list[dict[str, Any]]) -> tuple[FailureSignature, ...]:
    return tuple(
        FailureSignature(i["name"], re.compile(i["pattern"]), bool(i.get("fatal", True)))
        for i in items
    )


def _strs(mapping: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (mapping or {}).items()}


@functools.cache
def backends() -> dict[str, BackendInfo]:
    out = {}
    for name, d in _table("backends.yaml").items():
        out[name] = BackendInfo(
            name=name,
            kind=d["kind"],
            accel=d.get("accel", ""),
            description=d["description"],
            hardware=bool(d["hardware"]),
            host_os=tuple(d.get("host_os", ())),
            device=_strs(d.get("device")),
            host_file=_strs(d.get("host_file")),
            sysctl=_strs(d["sysctl"]) if d.get("sysctl") else None,
            qemu_before=d.get("qemu_before"),
            accel_opts=_strs(d.get("accel_opts")),
            smp_accel_opts=_strs(d.get("smp_accel_opts")),
            cpu=d.get("cpu"),
            failures=_signatures(d.get("failures", [])),
            binary=d.get("binary"),
            package=d.get("package", ""),
            version=tuple(str(x) for x in d.get("version", ())),
            arches=tuple(d.get("arches", ())),
            time_factor=float(d.get("time_factor", 1.0)),
        )
    return out


@functools.cache
def arches() -> dict[str, ArchInfo]:
    return {
        name: ArchInfo(
            name=name,
            qemu=d["qemu"],
            debian=d["debian"],
            package=d["package"],
            cpu_base=d["cpu_base"],
            host=tuple(d.get("host", ())),
            machine=_strs(d.get("machine")),
            firmware=d.get("firmware", {}),
            cpu=d.get("cpu"),
        )
        for name, d in _table("arches.yaml").items()
    }


@functools.cache
def quirks() -> dict[str, Quirk]:
    return {name: Quirk.from_dict(name, d) for name, d in _table("quirks.yaml").items()}


@functools.cache
def builtin_signatures() -> dict[str, tuple[FailureSignature, ...]]:
    return {family: _signatures(items) for family, items in _table("signatures.yaml").items()}


def signatures_for(os_family: str) -> tuple[FailureSignature, ...]:
    """Built-in failure signatures that apply to a guest of `os_family`."""
    table = builtin_signatures()
    return table.get("any", ()) + table.get(os_family.lower(), ())


FIRMWARES = ("bios", "uefi")


def guest_failures(guest: Guest) -> list[FailureSignature]:
    """The guest's own failure signatures, then the built-ins of its OS family."""
    builtin = signatures_for(guest.os) if guest.builtin_failures else ()
    own = {f.name for f in guest.failures}
    return [*guest.failures, *(f for f in builtin if f.name not in own)]
