"""What this host can run: static backend probes and host facts.

The static checks (host OS, QEMU binary and version, accelerator compiled
in, device node present and openable, platform library, sysctl) take well
under two seconds. Whether a hardware accelerator really runs a guest is the
canary's job (`canary.py`).
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
from ..knowledge import BackendInfo

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
    cpu, flags = platform.processor() or "", ()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            info = f.read(65536)
        if m := re.search(r"^model name\s*:\s*(.+)$", info, re.M):
            cpu = m.group(1).strip()
        if m := re.search(r"^flags\s*:\s*(.+)$", info, re.M):
            wanted = {"vmx", "svm", "hypervisor", "lm", "sse4_2", "avx", "avx2", "rdrand"}
            flags = tuple(sorted(set(m.group(1).split()) & wanted))
    except OSError:
        pass
    return HostFacts(
        os=platform.system(),
        arch=normalize_arch(platform.machine()),
        kernel=platform.release(),
        hostname=socket.gethostname(),
        cpu=cpu,
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


def static_probe(name: str, host: HostFacts | None = None) -> Probe:
    """Everything about backend `name` that can be known without booting."""
    host = host or host_facts()
    b = knowledge.backends()[name]
    if b.host_os and host.os not in b.host_os:
        return Probe(name, MISSING, f"{b.description} runs on {', '.join(b.host_os)}; "
                     f"this host runs {host.os}", b.hardware)
    if b.kind != "qemu":
        return _vmm_probe(b, host)
    binary = host_binary(host)
    if binary is None:
        return Probe(name, MISSING, f"no QEMU target for host architecture {host.arch}",
                     b.hardware)
    q = qemu_info(binary)
    if q.error:
        pkg = knowledge.arches()[host.arch].package
        return Probe(name, MISSING, f"{q.error} (Debian package {pkg})", b.hardware, binary)
    if b.qemu_before and q.version and version_tuple(q.version) >= version_tuple(b.qemu_before):
        return Probe(name, MISSING, f"QEMU {b.qemu_before} removed the {b.accel} accelerator; "
                     f"this QEMU is {q.version}", b.hardware, q.path, q.version)
    if b.accel not in q.accels:
        return Probe(name, MISSING, f"accelerator {b.accel!r} is not compiled into {binary} "
                     f"{q.version} (it has: {', '.join(sorted(q.accels)) or 'none'})",
                     b.hardware, q.path, q.version)
    problem = _host_checks(b, host)
    if problem:
        return Probe(name, problem[0], problem[1], b.hardware, q.path, q.version)
    reason = ("static checks passed; whether it runs guests is the canary's to say" if b.hardware
              else "software emulation needs no hardware")
    return Probe(name, AVAILABLE, reason, b.hardware, q.path, q.version)


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


def _vmm_probe(b: BackendInfo, host: HostFacts) -> Probe:
    """A VMM other than QEMU: its tool on PATH answering, then its device or file."""
    assert b.binary is not None
    path, version, error = tool_version(b.binary, b.version)
    if path is None:
        return Probe(b.name, MISSING, f"{error} ({b.package})", b.hardware)
    if error:
        return Probe(b.name, UNUSABLE, error, b.hardware, path)
    problem = _host_checks(b, host)
    if problem:
        return Probe(b.name, problem[0], problem[1], b.hardware, path, version)
    reason = ("static checks passed; whether it runs guests is the canary's to say"
              if b.hardware else f"{b.binary} {version or ''} runs in software".replace("  ", " "))
    return Probe(b.name, AVAILABLE, reason, b.hardware, path, version)


def _host_checks(b: BackendInfo, host: HostFacts) -> tuple[str, str] | None:
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


def runs_arch(backend: str, guest_arch: str, host: HostFacts | None = None) -> str | None:
    """Why `backend` cannot run a `guest_arch` guest on this host, or None."""
    host = host or host_facts()
    b = knowledge.backends()[backend]
    arch = knowledge.arches()[guest_arch]
    if b.kind != "qemu" and guest_arch not in b.arches:
        return f"{backend} runs {', '.join(b.arches)} guests, not {guest_arch}"
    if b.hardware and host.arch not in arch.host:
        return f"{backend} runs guests of the host's architecture ({host.arch}), not {guest_arch}"
    if b.kind != "qemu":
        return None
    q = qemu_info(arch.qemu)
    if q.error:
        return f"{q.error} (Debian package {arch.package})"
    if b.accel not in q.accels:
        return f"accelerator {b.accel!r} is not compiled into {arch.qemu}"
    return None
