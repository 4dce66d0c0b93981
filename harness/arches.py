"""`harness list --arches`: the architecture table (data/arches.yaml) as a porter reads it.

Per architecture: the QEMU binary and Debian package it needs, the machine types
(the arch's default per firmware, and the boards guests of the catalog name
themselves), the drive interfaces its guests may use, the hosts whose hardware
accelerators run it, and the backends that would run it on this host, or why
each would not. Reading only, like the rest of `harness list`: static probes and
cached canary results, never a boot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import knowledge
from .backends import probe as probes
from .backends import registry
from .canary import cached
from .images.cache import Cache
from .model import Guest


@dataclass
class ArchRow:
    arch: str
    qemu: str
    package: str
    machines: list[str]  # "firmware: machine" defaults, then boards guests name
    drives: list[str]
    hardware_hosts: list[str]  # host arches whose hardware accelerators run it
    runs_here: list[str]
    not_here: dict[str, str]  # backend -> why not on this host
    notes: list[str]  # why this host OS's hardware accelerators do not run it here
    guests: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def arch_rows(guests: Sequence[Guest], host: probes.HostFacts, cache: Cache,
              ttl: float) -> list[ArchRow]:
    found = {b: registry.static_probe(b, host) for b in knowledge.backends()}
    rows = []
    for name, info in knowledge.arches().items():
        mine = [g for g in guests if g.arch == name]
        machines = [f"{fw}: {m}" for fw, m in info.machine.items()]
        machines += sorted({g.machine for g in mine if g.machine})
        runs, why_not, notes = [], {}, []
        for b, p in found.items():
            # the architecture first: kvm never runs arm on an x86_64 host, /dev/kvm or not
            why = registry.runs_arch(b, name, host) or (
                None if p.usable else f"{b} {p.status}: {p.reason}")
            if why is None and p.hardware:
                hit = cached(cache, b, host, ttl)
                if hit is not None and not hit.ok:
                    why = f"{b} unusable: {hit.describe()}"
            if why is None:
                runs.append(b)
                continue
            why_not[b] = why
            b_info = knowledge.backends()[b]
            if b_info.kind == "qemu" and b_info.hardware and (
                    not b_info.host_os or host.os in b_info.host_os):
                why = why if why.startswith(b) else f"{b}: {why}"
                notes.append(why.split("; ")[0])  # this OS's accelerator, and why not here
        rows.append(ArchRow(name, info.qemu, info.package, machines, list(info.drives),
                            list(info.host), runs, why_not, notes, len(mine)))
    return rows


def text_table(rows: Sequence[ArchRow]) -> str:
    head = ("arch", "QEMU binary (Debian package)", "machines", "drives",
            "hardware accel on", "guests", "runs here on")
    body = [(r.arch, f"{r.qemu} ({r.package})", ", ".join(r.machines),
             ", ".join(r.drives) or "-",
             ", ".join(f"{h} hosts" for h in r.hardware_hosts) or "none (TCG only)",
             str(r.guests), ", ".join(r.runs_here) or "nothing") for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)),
                        row[-1]]).rstrip() for row in (head, *body)]
    lines += [f"  {r.arch}: {n}" for r in rows for n in r.notes]
    return "\n".join(lines)
