"""The defaults of a backend driven by one command-line tool (vmctl, bhyve, xl...).

A backend module that does not define `probe`, `runs_arch` or `facts` gets
these (see `registry`): the tool on PATH answering its version question,
the host's device or file, and the guest architectures listed in
backends.yaml.
"""

from __future__ import annotations

import shutil
from typing import Any

from ..model import BackendInfo
from .base import Launch
from .probe import (
    AVAILABLE,
    MISSING,
    UNUSABLE,
    HostFacts,
    HostIO,
    Probe,
    foreign_arch,
    host_checks,
    tool_version,
)


def probe(info: BackendInfo, host: HostFacts, io: HostIO | None = None) -> Probe:
    """The tool on PATH answering, then the host's checks (backends.yaml `checks`)."""
    assert info.binary is not None, f"{info.name}: backends.yaml names no binary"
    path, version, error = tool_version(info.binary, info.version, io)
    if path is None:
        return Probe(info.name, MISSING, f"{error} ({info.package})", info.hardware)
    if error:
        return Probe(info.name, UNUSABLE, error, info.hardware, path)
    found = host_checks(info, host, io)
    if found.status:
        return Probe(info.name, found.status, found.reason + found.suffix(), info.hardware,
                     path, version)
    reason = ("static checks passed; whether it runs guests is the canary's to say"
              if info.hardware
              else f"{info.binary} {version or ''} runs in software".replace("  ", " "))
    return Probe(info.name, AVAILABLE, reason + found.suffix(), info.hardware, path, version)


def runs_arch(info: BackendInfo, guest_arch: str, host: HostFacts) -> str | None:
    if guest_arch not in info.arches:
        return f"{info.name} runs {', '.join(info.arches)} guests, not {guest_arch}"
    return foreign_arch(info, guest_arch, host)


def facts(info: BackendInfo, launch: Launch) -> dict[str, Any]:
    """results.json's `vmm` entry: which tool, which version (the probe's cached answer;
    the host's device checks are the probe's business, not each cell's)."""
    assert info.binary is not None, f"{info.name}: backends.yaml names no binary"
    path, version, _ = tool_version(info.binary, info.version)
    return {"name": info.kind, "binary": path or shutil.which(launch.argv[0]),
            "version": version, "accelerator": None}
