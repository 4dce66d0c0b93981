"""The data model: what a guest is, what a cell is, what a cell's outcome is.

Plain dataclasses, built by `config` from YAML and consumed by everything
downstream; nothing here does I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Verdict(enum.StrEnum):
    PASS = "pass"
    CRASH = "crash"
    HANG = "hang"
    TIMEOUT = "timeout"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    XFAIL = "xfail"
    XPASS = "xpass"

    def is_failure(self, strict: bool = False) -> bool:
        """Whether this verdict makes `harness run` exit 1."""
        if self is Verdict.XPASS:
            return strict
        return self in _FAILURES


_FAILURES = frozenset(
    {Verdict.CRASH, Verdict.HANG, Verdict.TIMEOUT, Verdict.FAIL, Verdict.ERROR}
)


@dataclass(frozen=True)
class Needle:
    """A region of the screen that must look like a reference image."""

    image: Path  # the reference PNG, w x h, beside the guest file
    x: int
    y: int
    threshold: float = 0.95  # similarity 0..1 (1 - mean absolute difference / 255)


@dataclass(frozen=True)
class Still:
    """The screen unchanged for `seconds`, ignoring the masked regions (x, y, w, h)."""

    seconds: float
    mask: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True)
class Milestone:
    name: str
    pattern: re.Pattern[str] | None  # None for needle and still milestones
    timeout: float | None = None  # seconds after the previous milestone (or the start)
    send: str | None = None  # text typed on the console right after the match
    optional: bool = False
    weight: float = 1.0
    source: str = "serial"  # serial | screen: where the pattern is looked for
    needle: Needle | None = None
    still: Still | None = None
    keys: tuple[str, ...] = ()  # key combos pressed after the match ("esc", "ctrl-alt-delete")


@dataclass(frozen=True)
class FailureSignature:
    name: str
    pattern: re.Pattern[str]
    fatal: bool = True


@dataclass(frozen=True)
class Quirk:
    """A named workaround: what it adds to the kernel command line and to QEMU's."""

    name: str
    description: str
    append: tuple[str, ...] = ()
    accel_opts: dict[str, str] = field(default_factory=dict)
    cpu: str | None = None
    cpu_flags: tuple[str, ...] = ()
    machine: str | None = None
    machine_opts: dict[str, str] = field(default_factory=dict)
    qemu_args: tuple[str, ...] = ()
    vcpus: int | None = None  # overrides the guest's vCPU count (HAXM: one only)

    KEYS = ("description", "append", "accel_opts", "cpu", "cpu_flags", "machine",
            "machine_opts", "qemu_args", "vcpus")

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> Quirk:
        def strs(m: Any) -> dict[str, str]:
            return {str(k): str(v) for k, v in (m or {}).items()}

        return cls(name=name, description=str(d.get("description", "")),
                   append=tuple(str(x) for x in d.get("append", ())),
                   accel_opts=strs(d.get("accel_opts")), cpu=d.get("cpu"),
                   cpu_flags=tuple(str(x) for x in d.get("cpu_flags", ())),
                   machine=d.get("machine"), machine_opts=strs(d.get("machine_opts")),
                   qemu_args=tuple(str(x) for x in d.get("qemu_args", ())),
                   vcpus=int(d["vcpus"]) if d.get("vcpus") is not None else None)


@dataclass(frozen=True)
class ImageSpec:
    """One named artefact of a guest; exactly one source kind."""

    name: str
    kind: str  # deb | build | file
    params: dict[str, Any]
    sha256: str | None = None


@dataclass(frozen=True)
class Module:
    """A multiboot module (Xen's dom0 kernel and initrd): an image and its command line."""

    image: str
    args: str = ""


@dataclass(frozen=True)
class BootSpec:
    kind: str  # kernel | cdrom | disk | floppy
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str = ""
    image: str | None = None  # for cdrom / disk / floppy
    bios: str | None = None  # an image loaded as the machine's firmware (-bios), e.g. OpenSBI
    modules: tuple[Module, ...] = ()  # multiboot modules, instead of an initrd
    kernels: dict[str, str] = field(default_factory=dict)  # firmware -> kernel image

    def kernel_for(self, firmware: str) -> str | None:
        """The kernel image booted under `firmware` (memtest86+: .bin vs .efi)."""
        return self.kernels.get(firmware, self.kernel)


@dataclass(frozen=True)
class Timeouts:
    total: float = 300.0
    stall: float = 60.0


@dataclass(frozen=True)
class Expectation:
    """A known-bad cell: its failure becomes xfail, its pass xpass."""

    reason: str
    guest: str = "*"
    backend: str = "*"
    firmware: str = "*"
    link: str | None = None


@dataclass
class Guest:
    id: str
    name: str
    os: str
    arch: str
    images: dict[str, ImageSpec]
    boot: BootSpec
    firmware: list[str]
    memory_mb: int
    vcpus: int
    console: str
    milestones: list[Milestone]
    failures: list[FailureSignature]
    builtin_failures: bool = True
    quirks: dict[str, list[str]] = field(default_factory=dict)
    quirk_defs: dict[str, Quirk] = field(default_factory=dict)  # the guest's own quirks
    expect: list[Expectation] = field(default_factory=list)
    timeouts: Timeouts | None = None  # None: the matrix defaults apply
    memory_set: bool = True  # False: the matrix default memory applies
    source: Path | None = None
    version: str = ""
    verified: bool = False  # every pattern checked against a real boot console
    verified_partly: list[str] = field(default_factory=list)  # or only these milestones
    tags: list[str] = field(default_factory=list)  # free words: local, slow, installer...
    notes: str = ""

    @property
    def required(self) -> list[Milestone]:
        return [m for m in self.milestones if not m.optional]

    @property
    def uses_screen(self) -> bool:
        """Whether the harness must watch the screen (VGA text, screenshots, keys)."""
        return self.console != "serial" or any(m.source == "screen" for m in self.milestones)


@dataclass(frozen=True)
class ExcludeRule:
    guest: str = "*"
    backend: str = "*"
    firmware: str = "*"


@dataclass(frozen=True)
class QuirkRule:
    """Quirks the matrix applies to the cells its globs match."""

    quirks: tuple[str, ...]
    guest: str = "*"
    backend: str = "*"
    firmware: str = "*"


@dataclass
class Matrix:
    guests: list[str]
    backends: list[str]
    firmware: list[str]
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 0
    memory_mb: int = 512
    exclude: list[ExcludeRule] = field(default_factory=list)
    expect: list[Expectation] = field(default_factory=list)
    jobs: int | None = None  # None = auto
    quirk_defs: dict[str, Quirk] = field(default_factory=dict)  # the matrix's own quirks
    quirk_rules: list[QuirkRule] = field(default_factory=list)  # quirks applied by pattern
    source: Path | None = None


@dataclass
class Cell:
    """One (guest, backend, firmware) combination, ready to run."""

    guest: Guest
    backend: str
    firmware: str
    timeouts: Timeouts
    memory_mb: int
    retries: int = 0
    quirks: list[str] = field(default_factory=list)
    expect: Expectation | None = None
    skip_reason: str | None = None
    quirk_defs: dict[str, Quirk] = field(default_factory=dict)  # the matrix's and the guest's

    @property
    def id(self) -> str:
        return f"{self.guest.id}/{self.backend}/{self.firmware}"

    @property
    def folder(self) -> str:
        """The cell's folder below the run folder."""
        return f"cells/{self.guest.id}/{self.backend}-{self.firmware}"


@dataclass
class MilestoneResult:
    name: str
    reached: bool
    t: float | None = None
    optional: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reached": self.reached, "t": self.t}


@dataclass
class CellResult:
    cell_id: str
    guest: str
    backend: str
    firmware: str
    verdict: Verdict
    score: float = 0.0
    duration_s: float = 0.0
    milestones: list[MilestoneResult] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    reason: str | None = None
    underlying: Verdict | None = None  # for xfail/xpass: the verdict before expectations
    expect: dict[str, Any] | None = None
    quirks: list[str] = field(default_factory=list)
    attempts: int = 0
    command: list[str] = field(default_factory=list)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    vmm: dict[str, Any] = field(default_factory=dict)  # name, binary, version, accelerator
    firmware_files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    env: dict[str, str] = field(default_factory=dict)  # the environment that matters
    reruns: list[str] = field(default_factory=list)  # verdicts of --rerun-failures runs
    flaky: bool = False  # the reruns disagreed with the first verdict
    worker: str | None = None  # the cluster worker's host that ran it (--cluster)
    speed: dict[str, Any] | None = None  # time to the last common milestone vs the fastest
    divergence: dict[str, Any] | None = None  # where it parted from a passing backend

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CellResult:
        """A cell of a results.json, back as a CellResult (for resume and merge)."""
        return cls(
            cell_id=d["id"], guest=d["guest"], backend=d["backend"], firmware=d["firmware"],
            verdict=Verdict(d["verdict"]), score=d.get("score", 0.0),
            duration_s=d.get("duration_s", 0.0),
            milestones=[MilestoneResult(m["name"], m["reached"], m.get("t"))
                        for m in d.get("milestones", [])],
            failure=d.get("failure"), reason=d.get("reason"),
            underlying=Verdict(d["underlying"]) if d.get("underlying") else None,
            expect=d.get("expect"), quirks=list(d.get("quirks", [])),
            attempts=d.get("attempts", 0), command=list(d.get("command", [])),
            images=d.get("images", {}), artifacts=d.get("artifacts", {}),
            warnings=d.get("warnings", []), vmm=d.get("vmm", {}),
            firmware_files=d.get("firmware_files", {}), env=d.get("env", {}),
            reruns=list(d.get("reruns", [])), flaky=bool(d.get("flaky", False)),
            worker=d.get("worker"), speed=d.get("speed"), divergence=d.get("divergence"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.cell_id,
            "guest": self.guest,
            "backend": self.backend,
            "firmware": self.firmware,
            "verdict": str(self.verdict),
            "score": round(self.score, 4),
            "duration_s": round(self.duration_s, 3),
            "milestones": [m.to_json() for m in self.milestones],
            "failure": self.failure,
            "reason": self.reason,
            "underlying": str(self.underlying) if self.underlying else None,
            "expect": self.expect,
            "quirks": list(self.quirks),
            "attempts": self.attempts,
            "command": list(self.command),
            "images": self.images,
            "artifacts": self.artifacts,
            "warnings": self.warnings,
            "vmm": self.vmm,
            "firmware_files": self.firmware_files,
            "env": self.env,
            "reruns": self.reruns,
            "flaky": self.flaky,
            "worker": self.worker,
            "speed": self.speed,
            "divergence": self.divergence,
        }
