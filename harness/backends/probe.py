"""What this host is and has: host facts, tool versions, device checks.

The pieces every backend's static probe is made of (the probes themselves
are the backends', see `registry.static_probe`): the host's OS and CPU, a
QEMU binary's version and accelerators, a tool answering its version
question, and the host checks of `hostcheck` (device nodes, files,
sysctls, commands). They take well under two seconds. Whether a hardware
accelerator really runs a guest is the canary's job (`harness/canary.py`).
"""

from __future__ import annotations

import functools
import os
import platform
import re
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import knowledge
from ..model import BackendInfo
from . import hostfacts
from .hostcheck import AVAILABLE as AVAILABLE  # the statuses, for who imports them from here
from .hostcheck import MISSING as MISSING
from .hostcheck import REAL, Finding, HostIO, run_checks
from .hostcheck import UNUSABLE as UNUSABLE

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i686": "i386", "i586": "i386",
                 "x86": "i386", "arm64": "aarch64", "ppc64el": "ppc64le"}


@dataclass(frozen=True)
class HostFacts:
    os: str
    arch: str
    kernel: str
    hostname: str
    cpu: str
    cpu_flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_flags"] = list(self.cpu_flags)
        return d


def normalize_arch(machine: str) -> str:
    m = machine.lower()
    return _ARCH_ALIASES.get(m, m)


@functools.cache
def host_facts() -> HostFacts:
    """OS and kernel from `platform`; the CPU from the host's own sources (hostfacts)."""
    system = platform.system()
    cpu, flags = hostfacts.cpu_identity(system, hostfacts.read_text, hostfacts.sysctl,
                                        os.environ)
    return HostFacts(
        os=system,
        arch=normalize_arch(platform.machine()),
        kernel=platform.release(),
        hostname=socket.gethostname(),
        cpu=cpu or platform.processor() or "",
        cpu_flags=flags,
    )


@dataclass(frozen=True)
class QemuInfo:
    binary: str
    path: str | None
    version: str | None
    accels: frozenset[str] = frozenset()
    error: str | None = None


ACCEL_HEADER = "Accelerators supported in QEMU binary:"


def parse_accels(text: str) -> frozenset[str]:
    """The accelerators `-accel help` lists: one a line after QEMU's header (any
    warning before it and Windows line ends are ignored)."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip() == ACCEL_HEADER), None)
    if at is None:
        return frozenset()
    return frozenset(w.strip() for w in lines[at + 1:] if re.fullmatch(r"\s*\w+\s*", w))


@functools.cache
def qemu_info(binary: str, io: HostIO | None = None) -> QemuInfo:
    """Where `binary` is, its version and the accelerators compiled into it."""
    io = io or REAL
    path = io.which(binary)
    if path is None:
        return QemuInfo(binary, None, None, error=f"{binary} not found on PATH")
    ver = io.run([binary, "--version"], timeout=10)
    acc = io.run([binary, "-accel", "help"], timeout=10)
    if ver.status is None or acc.status is None:
        why = ver.output if ver.status is None else acc.output
        return QemuInfo(binary, path, None, error=f"{binary} does not run: {why}")
    m = re.search(r"version (\d+\.\d+(?:\.\d+)?)", ver.output)
    return QemuInfo(binary, path, m.group(1) if m else None, parse_accels(acc.output))


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


@dataclass
class Probe:
    backend: str
    status: str
    reason: str
    hardware: bool
    binary: str | None = None
    version: str | None = None
    canary: dict[str, Any] | None = field(default=None)

    @property
    def usable(self) -> bool:
        return self.status == AVAILABLE

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def host_binary(host: HostFacts) -> str | None:
    """The QEMU binary for the host's own architecture."""
    info = knowledge.arches().get(host.arch)
    return info.qemu if info else None


@functools.cache
def tool_version(binary: str, args: tuple[str, ...],
                 io: HostIO | None = None) -> tuple[str | None, str | None, str | None]:
    """(path, version, error) of a VMM's tool: `args` are its arguments, then a regex."""
    io = io or REAL
    path = io.which(binary)
    if path is None:
        return None, None, f"{binary} not found on PATH"
    if not args:
        return path, None, None
    *argv, pattern = args
    ran = io.run([binary, *argv])
    if ran.status is None:
        return path, None, ran.output
    m = re.search(pattern, ran.output, re.M)
    if m is None:
        tail = (ran.output.strip().splitlines() or ["no output"])[-1][:160]
        return path, None, (f"`{binary} {' '.join(argv)}` exited {ran.status} without "
                            f"the expected answer: {tail}")
    return path, m.group(1), None


def host_checks(b: BackendInfo, host: HostFacts, io: HostIO | None = None) -> Finding:
    """Backend `b`'s checks for the host's OS (data/backends.yaml `checks`)."""
    return run_checks(b.checks.get(host.os, ()), io)


def foreign_arch(b: BackendInfo, guest_arch: str, host: HostFacts) -> str | None:
    """A hardware accelerator runs guests of the host's own architecture only."""
    if b.hardware and host.arch not in knowledge.arches()[guest_arch].host:
        return f"{b.name} runs guests of the host's architecture ({host.arch}), not {guest_arch}"
    return None
