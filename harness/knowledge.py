"""The harness's built-in knowledge, loaded from the YAML tables in `data/`.

Backends, guest architectures, quirks and failure signatures are data, so
adding an accelerator or a quirk is an edit to a table, not to code. The
tables go through the guest files' loader (bounded, file:line), the quirk
library through the quirk checker; an entry that is wrong in any other way is
a ConfigError naming it, not a traceback at start-up.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from . import validate, yamlpos
from .model import (
    ArchInfo,
    BackendInfo,
    CheckAnswer,
    FailureSignature,
    Guest,
    HostCheck,
    MachineInfo,
    Quirk,
)

T = TypeVar("T")


def _table(name: str) -> dict[str, Any]:
    where = resources.files("harness").joinpath("data", name)
    try:
        data = (yamlpos.load_file(where) if isinstance(where, Path) else
                yamlpos.load_text(yamlpos.decode(where.read_bytes(), name), name))
    except yamlpos.YamlError as exc:
        raise validate.ConfigError([validate.ConfigIssue(str(exc.path), exc.line, "(file)",
                                                         exc.message)]) from None
    if not isinstance(data, dict):
        raise validate.ConfigError([validate.ConfigIssue(str(where), 1, "(top level)",
                                                         "expected a mapping")])
    return data


def _entries(name: str, build: Callable[[str, Any], T]) -> dict[str, T]:
    """Every entry of table `name` through `build`; any entry it cannot build is a
    ConfigError naming the table, line and entry."""
    table, out, issues = _table(name), {}, []
    where = str(resources.files("harness").joinpath("data", name))
    for key, entry in table.items():
        line = table.line_of(key) if isinstance(table, yamlpos.LineDict) else 0
        try:
            if not isinstance(entry, dict):
                raise TypeError("expected a mapping")
            out[str(key)] = build(str(key), entry)
        except (KeyError, TypeError, ValueError, AttributeError, re.error) as exc:
            why = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            issues.append(validate.ConfigIssue(where, line, validate.key_text(key),
                                               why[:200]))
    if issues:
        raise validate.ConfigError(issues)
    return out


def _signatures(items: list[dict[str, Any]]) -> tuple[FailureSignature, ...]:
    return tuple(
        FailureSignature(i["name"], re.compile(i["pattern"]), bool(i.get("fatal", True)))
        for i in items
    )


def _strs(mapping: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (mapping or {}).items()}


_CHECK_KINDS = ("device", "file", "program", "sysctl", "command")
_STATUSES = ("missing", "unusable", "unknown")


def _check(d: dict[str, Any]) -> HostCheck:
    """One entry of a backend's `checks:`: exactly one of the kinds names its target."""
    kinds = [k for k in _CHECK_KINDS if k in d]
    if len(kinds) != 1:
        raise ValueError(f"a check names one of {', '.join(_CHECK_KINDS)}, not {kinds or 'none'}")
    kind = kinds[0]
    target = d[kind]
    answers = tuple(CheckAnswer(re.compile(a["pattern"], re.M), str(a["status"]), str(a["reason"]))
                    for a in d.get("answers", ()))
    if bad := [a.status for a in answers if a.status not in _STATUSES]:
        raise ValueError(f"answer status {bad[0]!r} is not one of {', '.join(_STATUSES)}")
    if d.get("fails_as", "unusable") not in _STATUSES[:2]:
        raise ValueError(f"fails_as {d['fails_as']!r} is not missing or unusable")
    if d.get("access", "rw") not in ("rw", "r", "exists"):
        raise ValueError(f"access {d['access']!r} is not rw, r or exists")
    if kind == "command":
        re.compile(str(d.get("expect", "")))
    return HostCheck(kind=kind,
                     target=tuple(str(x) for x in target) if isinstance(target, list)
                     else (str(target),),
                     expect=str(d.get("value", d.get("expect", ""))),
                     access=str(d.get("access", "rw")), fix=str(d.get("fix", "")),
                     denied=str(d.get("denied", "")),
                     fails_as=str(d.get("fails_as", "unusable")), answers=answers,
                     optional=bool(d.get("optional", False)))


@functools.cache
def backends() -> dict[str, BackendInfo]:
    return _entries("backends.yaml", _backend)


def _backend(name: str, d: dict[str, Any]) -> BackendInfo:
    return BackendInfo(
        name=name,
        kind=d["kind"],
        module=d["module"],
        capabilities=tuple(d.get("capabilities", ())),
        quirk_fields=tuple(d.get("quirk_fields", ())),
        accel=d.get("accel", ""),
        description=d["description"],
        hardware=bool(d["hardware"]),
        host_os=tuple(d.get("host_os", ())),
        checks={str(os_): tuple(_check(c) for c in items)
                for os_, items in (d.get("checks") or {}).items()},
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


@functools.cache
def arches() -> dict[str, ArchInfo]:
    return _entries("arches.yaml", lambda name, d: ArchInfo(
            name=name,
            qemu=d.get("qemu", ""),  # "": QEMU does not run this architecture
            debian=d.get("debian", ""),
            package=d.get("package", ""),
            cpu_base=d.get("cpu_base", ""),
            host=tuple(d.get("host", ())),
            machine=_strs(d.get("machine")),
            firmware=d.get("firmware", {}),
            cpu=d.get("cpu"),
            nic=d.get("nic"),
            drives={str(k): tuple(str(x) for x in v) for k, v in (d.get("drives") or {}).items()},
        ))


@functools.cache
def machines() -> dict[str, MachineInfo]:
    """data/machines.yaml: the SIMH simulators and GXemul machine types, by name."""
    out = {}
    for backend, entries in _table("machines.yaml").items():
        for name, d in (entries or {}).items():
            out[str(name)] = MachineInfo(
                name=str(name), backend=str(backend), arch=str(d["arch"]),
                description=str(d.get("description", "")), default=bool(d.get("default")),
                binary=str(d.get("binary", "")), type=str(d.get("type", "")),
                subtype=str(d.get("subtype", "")), cpu=str(d.get("cpu", "")),
                memory=str(d.get("memory", "")),
                max_mb=int(d["max_mb"]) if d.get("max_mb") is not None else None)
    return out


def machine_for(backend: str, guest: Guest) -> MachineInfo | None:
    """The machine `backend` emulates for `guest`: its `machine:`, else the default of
    its architecture; None if the backend has none for it."""
    table = [m for m in machines().values() if m.backend == backend and m.arch == guest.arch]
    if guest.machine is not None:
        return next((m for m in table if m.name == guest.machine), None)
    return next((m for m in table if m.default), None)


@functools.cache
def quirks() -> dict[str, Quirk]:
    """The quirk library, checked like a guest's `quirk_defs`."""
    where = resources.files("harness").joinpath("data", "quirks.yaml")
    c = validate._Checker(Path(str(where)))
    table = validate._Map(c, _table("quirks.yaml"), "")
    out = {}
    for name in table.data:
        q = table.sub(name)
        if q is not None and (built := validate.quirk(q, str(name))) is not None:
            out[str(name)] = built
    if c.issues:
        raise validate.ConfigError(c.issues)
    return out


def quirk_library(*own: dict[str, Quirk]) -> dict[str, Quirk]:
    """The built-in quirks, overridden by a matrix's and a guest's own definitions."""
    out = dict(quirks())
    for defs in own:
        out.update(defs)
    return out


@functools.cache
def phrases() -> dict[str, Any]:
    """How far a cell got, in words, per verdict (data/phrases.yaml)."""
    return dict(_table("phrases.yaml"))


@functools.cache
def builtin_signatures() -> dict[str, tuple[FailureSignature, ...]]:
    return {family: _signatures(items) for family, items in _table("signatures.yaml").items()}


def signatures_for(os_family: str) -> tuple[FailureSignature, ...]:
    """Built-in failure signatures that apply to a guest of `os_family`."""
    table = builtin_signatures()
    return table.get("any", ()) + table.get(os_family.lower(), ())


FIRMWARES = ("bios", "uefi")


def guest_failures(guest: Guest, emulator: str = "") -> list[FailureSignature]:
    """The guest's own failure signatures, then the built-ins of its OS family, then
    the messages of the emulator (a backend kind: simh, gxemul) that say the guest
    halted or trapped, which apply even without builtin_failures."""
    builtin = signatures_for(guest.os) if guest.builtin_failures else ()
    own = {f.name for f in guest.failures}
    emulated = builtin_signatures().get(f"emulator {emulator}", ()) if emulator else ()
    return [*guest.failures, *(f for f in (*builtin, *emulated) if f.name not in own)]


@dataclass(frozen=True)
class DebianSources:
    """data/debian.yaml: the suites `deb:` sources read on a host without apt."""

    release: str
    component: str
    sources: tuple[tuple[str, tuple[str, ...]], ...]  # (archive URL, its suites)
    keyrings: tuple[str, ...]


@functools.cache
def debian_sources() -> DebianSources:
    d = _table("debian.yaml")
    return DebianSources(
        release=str(d["release"]), component=str(d["component"]),
        sources=tuple((str(s["url"]).rstrip("/"), tuple(map(str, s["suites"])))
                      for s in d["sources"]),
        keyrings=tuple(map(str, d.get("keyrings", ()))),
    )
