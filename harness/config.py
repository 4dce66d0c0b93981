"""Load and validate guest files and the matrix file.

Every problem is reported as `file:line: key: message`, all of them at once,
so a user fixes a file in one pass. Validation is table-driven: each object
lists its keys and the checker each value goes through (the machinery is in
`validate`, the `images:` section in `config_images`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import knowledge
from .config_board import board
from .config_boot import boot_spec
from .config_images import _images
from .config_milestones import CONSOLES, milestone_list
from .config_payload import payload_dir, payload_steps, payload_to
from .config_stages import stage_list
from .config_stages import timeouts as stage_timeouts
from .files import SAFE_NAME_RULE, safe_name
from .model import (
    LEVELS,
    STAGE_SEP,
    BootSpec,
    Evidence,
    ExcludeRule,
    Expectation,
    FailureSignature,
    Guest,
    ImageSpec,
    Matrix,
    Milestone,
    Quirk,
    QuirkRule,
    SimhSetup,
    Timeouts,
)
from .validate import (
    MAX_JOBS,
    ConfigError,
    ConfigIssue,
    _Bad,
    _bool,
    _Checker,
    _Map,
    _one_of,
    _open,
    _regex,
    _retries,
    _str,
    _text,
    _vcpus,
    memory_mb,
    quirk,
    shown,
)
from .yamlpos import LineList, YamlError, load_file

__all__ = ["ConfigError", "ConfigIssue", "load_guest", "load_guests", "load_matrix",
           "memory_mb"]

# --- guest files -------------------------------------------------------------

GUEST_KEYS = (
    "id", "name", "os", "arch", "images", "boot", "firmware", "memory", "vcpus",
    "console", "milestones", "failures", "builtin_failures", "quirks", "expect",
    "timeouts", "notes", "quirk_defs", "version", "verified", "tags", "evidence",
    "machine", "cpu", "drives", "simh",
    "payload", "payload_dir", "payload_to", "stages",
)


def load_guest(path: Path) -> Guest:
    """Load one guest file; raise ConfigError listing every problem in it."""
    c, m = _open(path)
    staged = "stages" in m.data
    m.keys(GUEST_KEYS, ("id", "os", "arch", "images") if staged
           else ("id", "os", "arch", "images", "boot", "milestones"))
    gid = m.get("id", _str, "")
    if gid and gid != path.stem:
        c.issue(m.line_of("id"), "id", f"must equal the file name's stem {path.stem!r}")
    elif gid and not safe_name(gid):
        c.issue(m.line_of("id"), "id", f"{shown(gid)}: an id is {SAFE_NAME_RULE} characters")
    arch = m.get("arch", _one_of(*knowledge.arches()), "x86_64")
    images = _images(c, m, path.parent, arch)
    boot = boot_spec(c, m, images)
    machine, cpu, drives = board(c, m, images, arch)
    firmware = m.str_list("firmware", _one_of(*knowledge.FIRMWARES)) or ["bios"]
    console = m.get("console", _one_of(*CONSOLES), "serial")
    quirk_defs = _quirk_defs(c, m)
    milestones = milestone_list(c, m, path.parent, console)
    stages = stage_list(c, m, images, path.parent, console, boot, drives)
    if stages:  # listings, scores and `verified:` see every stage's, as `stage/name`
        milestones = [dataclasses.replace(x, name=f"{st.name}{STAGE_SEP}{x.name}")
                      for st in stages for x in st.milestones]
        boot = boot or stages[0].boot
    level, partly = _verified(c, m, milestones)
    failures = _failures(c, m, "failures")
    timeouts = stage_timeouts(m.sub("timeouts"))
    guest = Guest(
        id=gid,
        name=m.get("name", _str, gid),
        os=m.get("os", _str, "unknown"),
        arch=arch,
        images=images,
        boot=boot or BootSpec("kernel"),
        firmware=firmware,
        memory_mb=m.get("memory", memory_mb, 256),
        memory_set="memory" in m.data,
        vcpus=m.get("vcpus", _vcpus, 1),
        console=console,
        milestones=milestones,
        failures=failures,
        builtin_failures=m.get("builtin_failures", _bool, True),
        quirks=_quirks(c, m, quirk_defs),
        quirk_defs=quirk_defs,
        expect=_expectations(c, m, with_guest=False),
        timeouts=timeouts,
        source=path,
        version=str(m.get("version", _scalar_text, "")),
        verified=level in ("boots-here", "transcript"),
        verified_partly=partly,
        level=level,
        evidence=_evidence(c, m),
        tags=m.str_list("tags") or [],
        notes=m.get("notes", _text, ""),
        machine=_machine(c, m, arch, machine),
        cpu=cpu,
        drives=drives,
        simh=_simh(c, m, images),
        payload=[] if stages else payload_steps(c, m, milestones, console, drives),
        payload_dir=None if stages else payload_dir(c, m, path.parent),
        payload_to=payload_to(m),
        stages=stages,
    )
    if c.issues:
        raise ConfigError(c.issues)
    return guest


def _machine(c: _Checker, m: _Map, arch: str, name: str | None) -> str | None:
    """`machine:` (syntax checked by config_board): an emulated machine of
    data/machines.yaml for this architecture, or, where QEMU emulates the arch, a QEMU
    board; an arch only SIMH or GXemul emulates takes only their machines."""
    if name is None:
        return None
    known = [x.name for x in knowledge.machines().values() if x.arch == arch]
    info = knowledge.arches().get(arch)
    if name not in known and (info is None or not info.qemu):
        c.issue(m.line_of("machine"), "machine",
                f"{shown(name)} is not a {arch} machine of data/machines.yaml "
                f"(one of: {', '.join(known) or 'none'})")
        return None
    return name


def _simh(c: _Checker, m: _Map, images: dict[str, ImageSpec]) -> SimhSetup | None:
    """`simh:` - the units images are attached to (per-cell copies; `readonly:` units
    get the cached file read-only), the boot device and further simulator commands
    (`ini:`, a list of lines)."""
    s = m.sub("simh")
    if s is None:
        return None
    s.keys(("attach", "readonly", "boot", "ini"))
    attach: dict[str, str] = {}
    a = s.sub("attach")
    if a is not None:
        for unit in a.data:
            ref = a.get(unit, _str)
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(unit)):
                c.issue(a.line_of(unit), a.path(unit), f"{shown(unit)}: expected a SIMH unit "
                        "name such as rk0")
            elif ref is not None and ref not in images:
                c.issue(a.line_of(unit), a.path(unit), f"no image named {shown(ref)} in images")
            elif ref is not None:
                attach[str(unit).lower()] = ref
    readonly = [u.lower() for u in s.str_list("readonly") or ()]
    for unit in readonly:
        if unit not in attach:
            c.issue(s.line_of("readonly"), s.path("readonly"),
                    f"{shown(unit)} is not a unit of attach")
    return SimhSetup(attach=attach, readonly=tuple(readonly), boot=s.get("boot", _str),
                     ini=tuple(s.str_list("ini", _ini_line) or ()))


def _ini_line(v: Any) -> str:
    text = _str(v)
    if "\n" in text or "\r" in text:
        raise _Bad("one simulator command per line")
    return text


def _verified(c: _Checker, m: _Map, milestones: list[Milestone]) -> tuple[str, list[str]]:
    """(level, milestones checked): a level of LEVELS; or the milestones a partial
    real transcript covers (level `layout` when `evidence:` backs the rest).
    `true`/`false` are the older spelling of `transcript`/`unchecked`."""
    value = m.data.get("verified", "unchecked")
    if isinstance(value, bool):
        return ("transcript" if value else "unchecked"), []
    if isinstance(value, str) and value in LEVELS:
        return value, []
    expected = f"expected {', '.join(LEVELS)} or milestone names"
    names = m.str_list("verified") or []
    known = {x.name for x in milestones}
    for name in names:
        if name not in known:
            c.issue(m.line_of("verified"), "verified",
                    f"{shown(name)} is not a milestone ({expected})")
    return ("layout" if m.data.get("evidence") else "unchecked"), names


def _evidence(c: _Checker, m: _Map) -> list[Evidence]:
    """`evidence:` - where a guest file's facts come from: `{url, confirms}` each."""
    out = []
    for path, line, item in c.items(m, "evidence"):
        e = c.mapping(item, path, line)
        if e is None:
            continue
        e.keys(("url", "confirms"), required=("url", "confirms"))
        url = e.get("url", _str, "")
        if url and not url.startswith(("https://", "http://")):
            c.issue(e.line_of("url"), e.path("url"), f"{shown(url)}: expected an http(s) URL")
        confirms = e.get("confirms", _str, "")
        if url and confirms:
            out.append(Evidence(url, confirms))
    return out


def _scalar_text(v: Any) -> str:
    """A version: `10.1` is written unquoted, and YAML reads it as a number."""
    if isinstance(v, bool) or not isinstance(v, str | int | float) or v == "":
        raise _Bad(f"expected a version string, got {shown(v)}")
    return str(v)


def _failures(c: _Checker, m: _Map, key: str) -> list[FailureSignature]:
    out = []
    for path, line, value in c.items(m, key):
        f = c.mapping(value, path, line)
        if f is None:
            continue
        f.keys(("name", "pattern", "fatal"), ("name", "pattern"))
        pattern = f.get("pattern", _regex)
        if pattern is not None:
            out.append(FailureSignature(f.get("name", _str, ""), pattern,
                                        f.get("fatal", _bool, True)))
    return out


QUIRK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,99}")
QUIRK_NAME_RULE = "letters, digits and . _ + = - only, starting with a letter or a digit"


def _quirk_defs(c: _Checker, m: _Map) -> dict[str, Quirk]:
    """A guest's own quirks, in the form of the library (data/quirks.yaml)."""
    sub = m.sub("quirk_defs")
    out: dict[str, Quirk] = {}
    if sub is None:
        return out
    for name in sub.data:
        if not isinstance(name, str) or not QUIRK_NAME.fullmatch(name):
            c.issue(sub.line_of(name), sub.path(name), f"a quirk name is {QUIRK_NAME_RULE}")
            continue
        q = sub.sub(name)
        if q is not None and (defined := quirk(q, name)) is not None:
            out[name] = defined
    return out


def _quirks(c: _Checker, m: _Map, defs: dict[str, Quirk]) -> dict[str, list[str]]:
    sub = m.sub("quirks")
    if sub is None:
        return {}
    known = knowledge.quirk_library(defs)
    out: dict[str, list[str]] = {}
    for backend in sub.data:
        if backend != "*" and backend not in knowledge.backends():
            c.issue(sub.line_of(backend), sub.path(str(backend)),
                    f"unknown backend (known: {', '.join(knowledge.backends())})")
            continue
        names = sub.str_list(backend) or []
        for i, q in enumerate(names):
            if q not in known:
                c.issue(sub.line_of(backend), f"{sub.path(backend)}[{i}]",
                        f"unknown quirk {shown(q)} (known: {', '.join(sorted(known))})")
            elif why := _cannot_apply(backend, known[q]):
                c.issue(sub.line_of(backend), f"{sub.path(backend)}[{i}]", why)
        out[backend] = names
    return out


def _cannot_apply(backend: str, quirk: Quirk) -> str | None:
    """Why a quirk given for this backend by name can never take effect, or None."""
    info = knowledge.backends().get(backend)
    if info is None or not (fields := info.cannot_apply(quirk)):
        return None
    can = ", ".join(info.quirk_fields) or "no quirk fields"
    return (f"quirk {quirk.name!r} sets {', '.join(fields)}, which {backend} cannot apply "
            f"(it applies: {can})")


def _expectations(c: _Checker, m: _Map, with_guest: bool) -> list[Expectation]:
    out = []
    allowed = ("guest", "backend", "firmware", "reason", "link", "tests") if with_guest else (
        "backend", "firmware", "reason", "link", "tests")
    for key, line, value in c.items(m, "expect"):
        e = c.mapping(value, key, line)
        if e is None:
            continue
        e.keys(allowed, ("reason",))
        out.append(Expectation(
            reason=e.get("reason", _str, ""),
            guest=e.get("guest", _str, "*"),
            backend=e.get("backend", _str, "*"),
            firmware=e.get("firmware", _str, "*"),
            link=e.get("link", _str),
            tests=tuple(e.str_list("tests") or ()),
        ))
    return out


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def load_guests(folder: Path, note: Callable[[str], None] = _note) -> dict[str, Guest]:
    """Every guest file in `folder`, by id; all problems of all files at once. A matrix
    file kept among them (told by its keys) is skipped with a note, not read as a guest."""
    issues: list[ConfigIssue] = []
    guests: dict[str, Guest] = {}
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(str(folder), 0, "(guests)", "no such folder")])
    # not only regular files: a FIFO or a folder named *.yaml is refused, not skipped
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    for path in files:
        if keys := matrix_keys(path):
            note(f"{path}: a matrix file (keys {', '.join(keys)}), not a guest: skipped")
            continue
        try:
            guest = load_guest(path)
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        if guest.id in guests:
            other = guests[guest.id].source
            issues.append(ConfigIssue(str(path), 1, "id",
                                      f"duplicate id {shown(guest.id)} (also {other})"))
            continue
        guests[guest.id] = guest
    if issues:
        raise ConfigError(issues)
    return guests


# --- the matrix file ---------------------------------------------------------

MATRIX_KEYS = ("guests", "backends", "firmware", "defaults", "exclude", "expect", "jobs",
               "quirk_defs", "quirks")


MATRIX_ONLY_KEYS = ("guests", "backends", "defaults", "exclude", "jobs")  # never a guest's


def matrix_keys(path: Path) -> list[str]:
    """The keys that make `path` a matrix file: no `id`, only matrix keys, and at least
    one a guest never has. Empty for anything else (load_guest then says what is wrong)."""
    try:
        data = load_file(path)
    except YamlError:
        return []
    if not isinstance(data, dict) or "id" in data or not set(data) <= set(MATRIX_KEYS):
        return []
    return [str(k) for k in data if k in MATRIX_ONLY_KEYS]


def load_matrix(path: Path, guests: dict[str, Guest] | None = None) -> Matrix:
    """Load the matrix file; with `guests`, also check that named ids exist."""
    c, m = _open(path)
    m.keys(MATRIX_KEYS)
    known = knowledge.backends()
    guest_globs = m.str_list("guests") or ["*"]
    backends = m.str_list("backends", _one_of(*known)) or ["tcg"]
    firmware = m.str_list("firmware", _one_of(*knowledge.FIRMWARES)) or ["bios"]
    defaults = m.sub("defaults")
    timeouts, retries, memory = Timeouts(), 0, 512
    if defaults is not None:
        defaults.keys(("timeouts", "retries", "memory"))
        timeouts = stage_timeouts(defaults.sub("timeouts")) or timeouts
        retries = defaults.get("retries", _retries, 0)
        memory = defaults.get("memory", memory_mb, 512)
    excludes = []
    for key, line, value in c.items(m, "exclude"):
        e = c.mapping(value, key, line)
        if e is None:
            continue
        e.keys(("guest", "backend", "firmware"))
        if not e.data:
            c.issue(line, key, "an empty rule would exclude every cell")
        excludes.append(ExcludeRule(e.get("guest", _str, "*"), e.get("backend", _str, "*"),
                                    e.get("firmware", _str, "*")))
    jobs = m.get("jobs", _jobs)
    quirk_defs = _quirk_defs(c, m)
    known_quirks = knowledge.quirk_library(quirk_defs)
    rules = []
    for key, line, value in c.items(m, "quirks"):
        r = c.mapping(value, key, line)
        if r is None:
            continue
        r.keys(("guest", "backend", "firmware", "quirks"), ("quirks",))
        names = r.str_list("quirks") or []
        for i, q in enumerate(names):
            if q not in known_quirks:
                c.issue(r.line_of("quirks"), f"{key}.quirks[{i}]",
                        f"unknown quirk {shown(q)} (known: {', '.join(sorted(known_quirks))})")
            elif why := _cannot_apply(r.get("backend", _str, "*"), known_quirks[q]):
                c.issue(r.line_of("quirks"), f"{key}.quirks[{i}]", why)
        rules.append(QuirkRule(tuple(names), r.get("guest", _str, "*"),
                               r.get("backend", _str, "*"), r.get("firmware", _str, "*")))
    if guests is not None:
        lines = m.data.get("guests")
        for i, g in enumerate(guest_globs):
            if fnmatch.filter(guests, g):
                continue
            line = lines.line_of(i) if isinstance(lines, LineList) else m.line_of("guests")
            literal = not any(ch in g for ch in "*?[")
            c.issue(line, f"guests[{i}]", f"no guest file with id {shown(g)}" if literal
                    else f"the pattern {shown(g)} matches no guest")
    matrix = Matrix(
        guests=guest_globs,
        backends=backends,
        firmware=firmware,
        timeouts=timeouts,
        retries=retries,
        memory_mb=memory,
        exclude=excludes,
        expect=_expectations(c, m, with_guest=True),
        jobs=jobs,
        quirk_defs=quirk_defs,
        quirk_rules=rules,
        source=path,
    )
    if c.issues:
        raise ConfigError(c.issues)
    return matrix


def _jobs(v: Any) -> int | None:
    if v == "auto":
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_JOBS:
        raise _Bad(f"expected auto or a whole number from 1 to {MAX_JOBS}, got {shown(v)}")
    return v
