"""The data model: what a guest is, what a cell is, what a cell's outcome is.

Plain dataclasses, built by `config` from YAML and consumed by everything
downstream; nothing here does I/O.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from dataclasses import dataclass, field, fields
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


RESULT_FORMATS = ("tap", "junit", "lines", "atf", "none")
CASE_STATUSES = ("passed", "failed", "skipped", "error", "xfail")


@dataclass(frozen=True)
class PayloadStep:
    """One step run inside the guest after its last milestone (`payload:`)."""

    name: str
    run: str | None  # typed at the prompt; None: only read what the guest prints
    timeout: float = 300.0
    results: str = "none"  # one of RESULT_FORMATS: how the step's output (or file) is read
    shell: str = "posix"  # posix: framed by markers, with the exit status | raw: typed as is
    until: re.Pattern[str] | None = None  # raw: the step ends where this matches
    pattern: re.Pattern[str] | None = None  # lines: groups `name` and (optional) `status`
    statuses: tuple[tuple[str, str], ...] = ()  # lines: status word -> passed|failed|skipped
    file: str | None = None  # the results are this file in the guest, sent back base64
    # ... or, with `disk`, this member of a tar archive the step wrote onto that writable
    # drive (`tar cf /dev/vdb …`), read by the harness after the VM is off
    disk: str | None = None
    setup: bool = False  # the harness's own step (the payload folder typed in): no test case

    @property
    def file_on_console(self) -> bool:
        """Whether the results file comes back over the console (base64), not on a disk."""
        return self.file is not None and self.disk is None


@dataclass
class TestCase:
    """One test reported by a payload step."""

    __test__ = False  # not a pytest class

    name: str
    status: str  # one of CASE_STATUSES
    step: str
    output: str = ""  # for failures and errors: what the test said

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "step": self.step,
                "output": self.output}


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
class CheckAnswer:
    """A known output of a host check's command and what it means for a porter."""

    pattern: re.Pattern[str]
    status: str  # missing | unusable | unknown (the check cannot tell; the next ones decide)
    reason: str


@dataclass(frozen=True)
class HostCheck:
    """One thing a backend's probe checks on one host OS (backends.yaml `checks`)."""

    kind: str  # device | file | program | sysctl | command
    target: tuple[str, ...]  # the path, program or sysctl name; a command's argv
    expect: str = ""  # sysctl: the value it must read; command: a regex its output matches
    access: str = "rw"  # device: rw | r (opens that way) | exists
    fix: str = ""  # what a porter does when the check fails
    denied: str = ""  # device: what to do when opening it is refused
    fails_as: str = "unusable"  # command: the status when it fails with no known answer
    answers: tuple[CheckAnswer, ...] = ()
    optional: bool = False  # command: skipped when its program is not on PATH

    @property
    def what(self) -> str:
        return " ".join(self.target)


@dataclass(frozen=True)
class BackendInfo:
    """One entry of data/backends.yaml: a backend as the harness knows it."""

    name: str
    kind: str  # qemu | bochs | vmd | bhyve | xen | virtualbox
    description: str
    hardware: bool
    module: str = "qemu"  # harness.backends.<module> implements the backend protocol
    capabilities: tuple[str, ...] = ()  # monitor, screen, keys, gdb, interactive
    quirk_fields: tuple[str, ...] = ()  # the Quirk fields this backend can apply
    accel: str = ""  # QEMU's -accel name (qemu kind only)
    host_os: tuple[str, ...] = ()
    checks: dict[str, tuple[HostCheck, ...]] = field(default_factory=dict)  # per host OS
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

    def cannot_apply(self, quirk: Quirk) -> list[str]:
        """The fields `quirk` sets that this backend has no way to apply."""
        return [k for k in Quirk.KEYS[1:] if getattr(quirk, k) and k not in self.quirk_fields]


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
    nic: str | None = None  # the -device a network boot uses (its option ROM does PXE)
    # drive interfaces of this arch's boards: name -> QEMU argv template ({file}, {format},
    # {id}, {index}: the drive's number among those on the same interface)
    drives: dict[str, tuple[str, ...]] = field(default_factory=dict)


# How far a guest file's claims were checked, strongest first: booted by this
# project's tests; patterns checked against a real recorded console; written by
# `harness try` from what one boot showed; URL, loader and strings taken from
# upstream sources; not checked at all.
LEVELS = ("boots-here", "transcript", "observed", "layout", "unchecked")


@dataclass(frozen=True)
class Evidence:
    """One public source behind a guest file, and what it confirms."""

    url: str
    confirms: str


@dataclass(frozen=True)
class ImageSpec:
    """One named artefact of a guest; exactly one source kind."""

    name: str
    kind: str  # url | deb | build | file | from
    params: dict[str, Any]
    sha256: str | None = None


@dataclass(frozen=True)
class Module:
    """A multiboot module (Xen's dom0 kernel and initrd): an image and its command line."""

    image: str
    args: str = ""


@dataclass(frozen=True)
class Drive:
    """A disk attached besides the boot medium, on one of its arch's interfaces
    (arches.yaml `drives`): xv6's file system on virtio-mmio, a board's SPI flash (mtd)."""

    image: str
    interface: str
    readonly: bool = False  # False: writes go to a per-cell overlay, never the cached image


NO_BIOS = "none"  # `boot: {bios: none}`: no firmware at all, the kernel is the first code


@dataclass(frozen=True)
class BootSpec:
    kind: str  # kernel | cdrom | disk | floppy | network
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str = ""
    image: str | None = None  # for cdrom / disk / floppy; network: the TFTP tree (a tar)
    bios: str | None = None  # an image loaded as the machine's firmware (-bios), e.g. OpenSBI;
    # NO_BIOS: none at all (-bios none)
    modules: tuple[Module, ...] = ()  # multiboot modules, instead of an initrd
    kernels: dict[str, str] = field(default_factory=dict)  # firmware -> kernel image
    bootfiles: dict[str, str] = field(default_factory=dict)  # network: firmware -> file
    cdrom: str | None = None  # a CD attached to a kernel boot (the ISO its kernel came from)

    def kernel_for(self, firmware: str) -> str | None:
        """The kernel image booted under `firmware` (memtest86+: .bin vs .efi)."""
        return self.kernels.get(firmware, self.kernel)


@dataclass(frozen=True)
class SimhSetup:
    """A guest file's `simh:` section: what the simulator's ini does besides the
    harness's own lines (the ROM, memory, the ini's TCP ports)."""

    attach: dict[str, str] = field(default_factory=dict)  # unit (rk0) -> image name
    readonly: tuple[str, ...] = ()  # units attached read-only (`attach -r`), uncopied
    boot: str | None = None  # the `boot` command's device: rk0, cpu (a loaded ROM)
    ini: tuple[str, ...] = ()  # further simulator commands, before the attaches


@dataclass(frozen=True)
class MachineInfo:
    """One emulated machine of data/machines.yaml (SIMH simulators, GXemul -e types)."""

    name: str
    backend: str  # simh | gxemul
    arch: str
    description: str
    default: bool = False
    binary: str = ""  # simh: the simulator
    type: str = ""  # gxemul: -E, the machine type
    subtype: str = ""  # gxemul: -e, the model within the type
    cpu: str = ""  # gxemul: -C, the CPU model
    memory: str = ""  # simh: the ini line setting memory ({mb})
    max_mb: int | None = None


@dataclass(frozen=True)
class Timeouts:
    total: float = 300.0
    stall: float = 60.0


class Rule:
    """A rule over cells by glob (guest id, backend, firmware): exclude, expect, quirks.

    One `matches` for every kind of rule; subclasses are dataclasses with the
    three glob fields."""

    guest: str
    backend: str
    firmware: str

    def matches(self, guest: str, backend: str, firmware: str) -> bool:
        return (fnmatch.fnmatchcase(guest, self.guest)
                and fnmatch.fnmatchcase(backend, self.backend)
                and fnmatch.fnmatchcase(firmware, self.firmware))


@dataclass(frozen=True)
class Expectation(Rule):
    """A known-bad cell: its failure becomes xfail, its pass xpass."""

    reason: str
    guest: str = "*"
    backend: str = "*"
    firmware: str = "*"
    link: str | None = None
    tests: tuple[str, ...] = ()  # globs of tests known to fail here (the boot is fine)


@dataclass(frozen=True)
class Stage:
    """One boot of a guest declared in `stages:` (install, then boot the installed disk):
    its own boot medium, milestones, payload and deadlines. The stages of a cell share
    its disk overlays and UEFI variables, so a later stage sees what an earlier wrote."""

    name: str
    boot: BootSpec
    milestones: list[Milestone]
    payload: list[PayloadStep] = field(default_factory=list)
    payload_dir: Path | None = None
    payload_to: str = "/tmp/payload"
    timeouts: Timeouts | None = None  # None: the cell's
    console: str = "serial"  # serial | vga-text | screen: the guest's unless the stage says


STAGE_SEP = "/"  # a staged guest's milestone names are `stage/milestone`


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
    level: str = "unchecked"  # one of LEVELS
    evidence: list[Evidence] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # free words: local, slow, installer...
    notes: str = ""
    # the machine: a data/machines.yaml name (SIMH, GXemul) or QEMU's -machine (a board
    # instead of the arch's default); None: the arch's default machine
    machine: str | None = None
    cpu: str | None = None  # the CPU model and its properties (-cpu), instead of the arch's
    drives: tuple[Drive, ...] = ()
    simh: SimhSetup | None = None  # the `simh:` section
    payload: list[PayloadStep] = field(default_factory=list)  # run after the last milestone
    payload_dir: Path | None = None  # a folder typed into the guest before the steps
    payload_to: str = "/tmp/payload"  # where in the guest that folder goes
    # `stages:` boots in order; then `milestones` is every stage's, named `stage/name`
    # (listings and scores), `boot` the first stage's, and `payload` empty
    stages: list[Stage] = field(default_factory=list)

    @property
    def board(self) -> bool:
        """Whether the guest names QEMU board parts (CPU, drives, no firmware) that only
        QEMU's own backends can give it (a machine is each backend's own question)."""
        return bool(self.cpu or self.drives or self.boot.bios == NO_BIOS)

    @property
    def required(self) -> list[Milestone]:
        return [m for m in self.milestones if not m.optional]

    @property
    def uses_screen(self) -> bool:
        """Whether the harness must watch the screen (VGA text, screenshots, keys)."""
        return self.console != "serial" or any(m.source == "screen" for m in self.milestones)


@dataclass(frozen=True)
class ExcludeRule(Rule):
    guest: str = "*"
    backend: str = "*"
    firmware: str = "*"


@dataclass(frozen=True)
class QuirkRule(Rule):
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
    """One (guest, backend, firmware) combination, ready to run.

    Resolved once, at plan time (`plan.make_cell`): it carries its backend's
    and architecture's table entries and its quirk objects, so nothing
    downstream looks them up again."""

    guest: Guest
    backend: str
    firmware: str
    timeouts: Timeouts
    memory_mb: int
    retries: int = 0
    quirks: list[Quirk] = field(default_factory=list)
    expect: Expectation | None = None
    skip_reason: str | None = None
    quirk_defs: dict[str, Quirk] = field(default_factory=dict)  # the matrix's, then the guest's
    backend_info: BackendInfo | None = None
    arch_info: ArchInfo | None = None
    known_failures: tuple[str, ...] = ()  # globs of tests expected to fail (expect: tests)

    @property
    def quirk_names(self) -> list[str]:
        return [q.name for q in self.quirks]

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


def _key(f: Any) -> str:
    """A field's name in results.json (`cell_id` is `id` there)."""
    return f.metadata.get("json", f.name)


@dataclass
class CellResult:
    """One cell's entry of results.json: to_json/from_json follow the fields, in order
    (renames and rounding are the fields' metadata); results.schema.json and its test
    keep the two in step."""

    cell_id: str = field(metadata={"json": "id"})
    guest: str
    backend: str
    firmware: str
    verdict: Verdict
    score: float = field(default=0.0, metadata={"round": 4})
    duration_s: float = field(default=0.0, metadata={"round": 3})
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
    # what the guest last showed (serial tail, screen text) when it failed at its boot loader
    shown: dict[str, str] | None = None
    # payload: counts (passed, failed, skipped, errors, xfail), the cases, the steps
    tests: dict[str, int] | None = None
    cases: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    # tests failing here that passed on every other backend of the guest (compare.py)
    only_failing_here: list[str] = field(default_factory=list)
    # a staged guest's boots in order: name, verdict, reason, duration_s, score, artifacts
    stages: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CellResult:
        """A cell of a results.json, back as a CellResult (for resume and merge)."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if _key(f) not in d:
                continue
            v = d[_key(f)]
            if f.name == "milestones":
                v = [MilestoneResult(m["name"], m["reached"], m.get("t")) for m in v]
            elif f.name in ("verdict", "underlying"):
                v = Verdict(v) if v else None
            elif isinstance(v, list):
                v = list(v)
            kw[f.name] = v
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "milestones":
                v = [m.to_json() for m in v]
            elif isinstance(v, Verdict):
                v = str(v)
            elif "round" in f.metadata:
                v = round(v, f.metadata["round"])
            elif isinstance(v, list):
                v = list(v)
            out[_key(f)] = v
        return out
