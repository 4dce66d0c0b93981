"""What this host is and has: host facts, tool versions, device checks.

The pieces every backend's static probe is made of (the probes themselves
are the backends', see `registry.static_probe`): the host's OS and CPU, a
QEMU binary's version and accelerators, a tool answering its version
question, a device node that opens, a platform library, a sysctl. They take
well under two seconds. Whether a hardware accelerator really runs a guest
is the canary's job (`harness/canary.py`).
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import knowledge
from ..model import BackendInfo
from . import hostfacts

AVAILABLE, UNUSABLE, MISSING = "available", "unusable", "missing"
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


@functools.cache
def qemu_info(binary: str) -> QemuInfo:
    """Where `binary` is, its version and the accelerators compiled into it."""
    path = shutil.which(binary)
    if path is None:
        return QemuInfo(binary, None, None, error=f"{binary} not found on PATH")
    try:
        ver = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        acc = subprocess.run([path, "-accel", "help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return QemuInfo(binary, path, None, error=f"{binary} does not run: {exc}")
    m = re.search(r"version (\d+\.\d+(?:\.\d+)?)", ver.stdout)
    accels = frozenset(
        line.strip() for line in acc.stdout.splitlines()[1:] if re.fullmatch(r"\s*\w+\s*", line)
    )
    return QemuInfo(binary, path, m.group(1) if m else None, accels)


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
def tool_version(binary: str, args: tuple[str, ...]) -> tuple[str | None, str | None, str | None]:
    """(path, version, error) of a VMM's tool: `args` are its arguments, then a regex."""
    path = shutil.which(binary)
    if path is None:
        return None, None, f"{binary} not found on PATH"
    if not args:
        return path, None, None
    *argv, pattern = args
    try:
        proc = subprocess.run([path, *argv], capture_output=True, text=True, timeout=15,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return path, None, f"{binary} {' '.join(argv)} does not run: {exc}"
    out = proc.stdout + proc.stderr
    m = re.search(pattern, out, re.M)
    if m is None:
        tail = (out.strip().splitlines() or ["no output"])[-1][:160]
        return path, None, (f"`{binary} {' '.join(argv)}` exited {proc.returncode} without "
                            f"the expected answer: {tail}")
    return path, m.group(1), None


def host_checks(b: BackendInfo, host: HostFacts) -> tuple[str, str] | None:
    device = b.device.get(host.os)
    if device:
        if host.os != "Windows" and not os.path.exists(device):
            return MISSING, f"no {device} (is the {b.name} driver loaded?)"
        try:
            fd = os.open(device, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
            os.close(fd)
        except PermissionError:
            return UNUSABLE, f"{device} exists but cannot be opened read-write (permission denied)"
        except OSError as exc:
            return UNUSABLE, f"{device} cannot be opened: {exc.strerror}"
    path = b.host_file.get(host.os)
    if path and not os.path.exists(path):
        return MISSING, f"{path} not found (is the {b.description} feature enabled?)"
    if b.sysctl:
        try:
            out = subprocess.run(["sysctl", "-n", b.sysctl["name"]], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            return MISSING, f"cannot read sysctl {b.sysctl['name']}: {exc}"
        if out != b.sysctl["value"]:
            name, value = b.sysctl["name"], b.sysctl["value"]
            return MISSING, f"sysctl {name} is {out or 'unset'}, needs {value}"
    return None


def foreign_arch(b: BackendInfo, guest_arch: str, host: HostFacts) -> str | None:
    """A hardware accelerator runs guests of the host's own architecture only."""
    if b.hardware and host.arch not in knowledge.arches()[guest_arch].host:
        return f"{b.name} runs guests of the host's architecture ({host.arch}), not {guest_arch}"
    return None
