"""The harness's built-in knowledge, loaded from the YAML tables in `data/`.

Backends, guest architectures, quirks and failure signatures are data, so
adding an accelerator or a quirk is an edit to a table, not to code.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import yaml

from .model import ArchInfo, BackendInfo, FailureSignature, Guest, Quirk


def _table(name: str) -> dict[str, Any]:
    text = resources.files("harness").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


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
            module=d["module"],
            capabilities=tuple(d.get("capabilities", ())),
            quirk_fields=tuple(d.get("quirk_fields", ())),
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


def quirk_library(*own: dict[str, Quirk]) -> dict[str, Quirk]:
    """The built-in quirks, overridden by a matrix's and a guest's own definitions."""
    out = dict(quirks())
    for defs in own:
        out.update(defs)
    return out


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
