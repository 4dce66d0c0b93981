"""Load and validate guest files and the matrix file.

Every problem is reported as `file:line: key: message`, all of them at once,
so a user fixes a file in one pass. Validation is table-driven: each object
lists its keys and the checker each value goes through.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import knowledge
from .images.archive import safe_member_name
from .images.recipes import RECIPES, recipe_inputs
from .model import (
    BootSpec,
    ExcludeRule,
    Expectation,
    FailureSignature,
    Guest,
    ImageSpec,
    Matrix,
    Milestone,
    Timeouts,
)
from .yamlpos import LineDict, LineList, YamlError, load_file

CONSOLES = ("serial",)
BOOT_KINDS = ("kernel", "cdrom", "disk", "floppy")
SOURCE_KINDS = ("url", "deb", "build", "file")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_MEMORY = re.compile(r"(\d+)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class ConfigError(Exception):
    """One or more problems in configuration files; exit status 2."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        issues = sorted(issues, key=lambda i: (i.file, i.line))
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


class _Bad(Exception):
    """Raised by a checker: the value is wrong, with the message why."""


# --- value checkers: value -> converted value, or raise _Bad -----------------


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(f"expected a non-empty string, got {_kind(v)}")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad(f"expected a string, got {_kind(v)}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"expected true or false, got {_kind(v)}")
    return v


def _positive(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise _Bad(f"expected a positive number, got {v!r}")
    return float(v)


def _count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Bad(f"expected a whole number >= 0, got {v!r}")
    return v


def _vcpus(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _Bad(f"expected a whole number >= 1, got {v!r}")
    return v


def _regex(v: Any) -> re.Pattern[str]:
    try:
        return re.compile(_str(v))
    except re.error as exc:
        raise _Bad(f"invalid regular expression: {exc}") from None


def _sha256(v: Any) -> str:
    if not isinstance(v, str) or not _HEX64.fullmatch(v):
        raise _Bad("expected 64 hexadecimal digits")
    return v.lower()


def memory_mb(v: Any) -> int:
    """'256M', '1G', '1024' (MiB) or an int (MiB) -> MiB."""
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = _MEMORY.fullmatch(v.strip()) if isinstance(v, str) else None
    if not m:
        raise _Bad(f"expected a size such as 256M or 1G, got {v!r}")
    n, unit = int(m.group(1)), m.group(2).upper()
    mib = {"K": n / 1024, "": n, "M": n, "G": n * 1024, "T": n * 1024 * 1024}[unit]
    if mib < 1:
        raise _Bad(f"too small: {v!r}")
    return int(mib)


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise _Bad(f"expected one of {', '.join(choices)}, got {v!r}")
        return v

    return check


def _kind(v: Any) -> str:
    return {dict: "a mapping", LineDict: "a mapping", list: "a list", LineList: "a list"}.get(
        type(v), f"{type(v).__name__} {v!r}"
    )


# --- the walker ---------------------------------------------------------------


class _Checker:
    """Collects issues for one file while its objects are read."""

    def __init__(self, file: Path) -> None:
        self.file = str(file)
        self.issues: list[ConfigIssue] = []

    def issue(self, line: int, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, line, key, message))

    def mapping(self, value: Any, key: str, line: int) -> _Map | None:
        if not isinstance(value, dict):
            self.issue(line, key or "(top level)", f"expected a mapping, got {_kind(value)}")
            return None
        return _Map(self, value, key)

    def items(self, m: _Map, key: str) -> list[tuple[str, int, Any]]:
        """The items of list `key` of `m` as (key path, line, value)."""
        value = m.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.issue(m.line_of(key), m.path(key), f"expected a list, got {_kind(value)}")
            return []
        lines = value.item_lines if isinstance(value, LineList) else [m.line_of(key)] * len(value)
        return [(f"{m.path(key)}[{i}]", lines[i], v) for i, v in enumerate(value)]


class _Map:
    def __init__(self, checker: _Checker, data: dict, prefix: str) -> None:
        self.c = checker
        self.data = data
        self.prefix = prefix

    @property
    def line(self) -> int:
        return getattr(self.data, "line", 0)

    def line_of(self, key: str) -> int:
        return self.data.line_of(key) if isinstance(self.data, LineDict) else 0

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else str(key)

    def keys(self, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        for k in self.data:
            if k not in allowed:
                self.c.issue(
                    self.line_of(k), self.path(str(k)),
                    f"unknown key (allowed here: {', '.join(allowed)})",
                )
        for k in required:
            if k not in self.data:
                self.c.issue(self.line, self.path(k), "required key is missing")

    def get(self, key: str, check: Callable[[Any], Any], default: Any = None) -> Any:
        if key not in self.data:
            return default
        try:
            return check(self.data[key])
        except _Bad as exc:
            self.c.issue(self.line_of(key), self.path(key), str(exc))
            return default

    def sub(self, key: str) -> _Map | None:
        if key not in self.data:
            return None
        return self.c.mapping(self.data[key], self.path(key), self.line_of(key))

    def str_list(self, key: str, check: Callable[[Any], Any] = _str) -> list[Any] | None:
        """A list of strings; a single string is taken as a list of one."""
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.c.issue(self.line_of(key), self.path(key), f"expected a list, got {_kind(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            line = value.line_of(i) if isinstance(value, LineList) else self.line_of(key)
            try:
                out.append(check(item))
            except _Bad as exc:
                self.c.issue(line, f"{self.path(key)}[{i}]", str(exc))
        return out


# --- guest files -------------------------------------------------------------

def _open(path: Path) -> tuple[_Checker, _Map]:
    """Parse `path`; its top level must be a mapping (an empty file is an empty one)."""
    c = _Checker(path)
    try:
        data = load_file(path)
    except YamlError as exc:
        raise ConfigError([ConfigIssue(str(path), exc.line, "(file)", exc.message)]) from None
    if data is None:
        data = LineDict()
        data.line = 1
    m = c.mapping(data, "", getattr(data, "line", 1))
    if m is None:
        raise ConfigError(c.issues)
    return c, m


GUEST_KEYS = (
    "id", "name", "os", "arch", "images", "boot", "firmware", "memory", "vcpus",
    "console", "milestones", "failures", "builtin_failures", "quirks", "expect",
    "timeouts", "notes",
)


def load_guest(path: Path) -> Guest:
    """Load one guest file; raise ConfigError listing every problem in it."""
    c, m = _open(path)
    m.keys(GUEST_KEYS, ("id", "os", "arch", "images", "boot", "milestones"))
    gid = m.get("id", _str, "")
    if gid and gid != path.stem:
        c.issue(m.line_of("id"), "id", f"must equal the file name's stem {path.stem!r}")
    arch = m.get("arch", _one_of(*knowledge.arches()), "x86_64")
    images = _images(c, m, path.parent, arch)
    boot = _boot(c, m, images)
    firmware = m.str_list("firmware", _one_of(*knowledge.FIRMWARES)) or ["bios"]
    milestones = _milestones(c, m)
    failures = _failures(c, m, "failures")
    timeouts = _timeouts(m.sub("timeouts"))
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
        console=m.get("console", _one_of(*CONSOLES), "serial"),
        milestones=milestones,
        failures=failures,
        builtin_failures=m.get("builtin_failures", _bool, True),
        quirks=_quirks(c, m),
        expect=_expectations(c, m, with_guest=False),
        timeouts=timeouts,
        source=path,
    )
    if c.issues:
        raise ConfigError(c.issues)
    return guest


IMAGE_KEYS = (*SOURCE_KINDS, "sha256", "sha512", "checksums", "mirrors", "decompress",
              "member", "insecure", "pin")
URL_ONLY = ("checksums", "mirrors", "insecure", "pin")
DECOMPRESS = ("auto", "none", "gz", "xz", "bz2", "zst")


def _images(c: _Checker, m: _Map, base: Path, arch: str) -> dict[str, ImageSpec]:
    sub = m.sub("images")
    out: dict[str, ImageSpec] = {}
    if sub is None:
        return out
    for name, value in sub.data.items():
        im = c.mapping(value, sub.path(str(name)), sub.line_of(name))
        if im is None:
            continue
        im.keys(IMAGE_KEYS)
        kinds = [k for k in SOURCE_KINDS if k in im.data]
        if len(kinds) != 1:
            c.issue(im.line, im.prefix, f"needs exactly one source ({', '.join(SOURCE_KINDS)})")
            continue
        kind = kinds[0]
        for key in im.data:
            if (key in URL_ONLY and kind != "url") or (
                    key in ("decompress", "member") and kind not in ("url", "file")):
                c.issue(im.line_of(key), im.path(key), f"does not apply to {kind} sources")
        sha = im.get("sha256", _sha256)
        params = _source_params(c, im, kind, base, arch)
        if params is not None:
            out[str(name)] = ImageSpec(str(name), kind, params, sha)
    for spec in out.values():  # recipes may take other images of the guest as inputs
        for ref in recipe_inputs(spec):
            if ref not in out or ref == spec.name:
                c.issue(sub.line_of(spec.name), sub.path(spec.name),
                        f"recipe input {ref!r} is not another image of this guest")
    return out


def _url(insecure: bool) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        url = _str(v)
        scheme = urlsplit(url).scheme
        if scheme == "http" and not insecure:
            raise _Bad("plain http is refused; use https, or set `insecure: true` on the image")
        if scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise _Bad(f"expected an https:// URL, got {url!r}")
        return url

    return check


def _sha512(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[0-9a-fA-F]{128}", v):
        raise _Bad("expected 128 hexadecimal digits")
    return v.lower()


def _member(v: Any) -> str:
    name = _str(v)
    if not safe_member_name(name):
        raise _Bad("an archive member must be a relative path without '..'")
    return name


def _source_params(
    c: _Checker, im: _Map, kind: str, base: Path, arch: str
) -> dict[str, Any] | None:
    debian_arch = knowledge.arches()[arch].debian
    derive = {"decompress": im.get("decompress", _one_of(*DECOMPRESS), "auto"),
              "member": im.get("member", _member)}
    if kind == "url":
        insecure = im.get("insecure", _bool, False)
        url = im.get("url", _url(insecure))
        params = {
            "url": url,
            "mirrors": im.str_list("mirrors", _url(insecure)) or [],
            "sha512": im.get("sha512", _sha512),
            "checksums": im.get("checksums", _url(insecure)),
            "insecure": insecure,
            "pin": im.get("pin", _bool, True),
            **derive,
        }
        digests = [k for k in ("sha256", "sha512", "checksums") if k in im.data]
        if len(digests) > 1:
            c.issue(im.line, im.prefix, f"give one digest, not {' and '.join(digests)}")
        if not digests and params["pin"]:
            c.issue(im.line, im.prefix, "needs sha256, sha512 or checksums "
                    "(or `pin: false` to accept it unverified)")
        return params if url else None
    if kind == "deb":
        d = im.sub("deb")
        if d is None:
            return None
        d.keys(("package", "path", "arch"), ("package", "path"))
        return {
            "package": d.get("package", _str, ""),
            "path": d.get("path", _str, ""),
            "arch": d.get("arch", _str, debian_arch),
        }
    if kind == "file":
        p = im.get("file", _str)
        if p is None:
            return None
        return {"path": str((base / p).resolve()), "sha512": im.get("sha512", _sha512), **derive}
    # build: a recipe name, or a mapping {recipe: name, param: value...}
    value = im.data["build"]
    if isinstance(value, str):
        b = _Map(c, {"recipe": value}, im.path("build"))
    else:
        b = im.sub("build")
        if b is None:
            return None
    recipe = b.get("recipe", _str, "")
    if recipe not in RECIPES:
        c.issue(im.line_of("build"), im.path("build"),
                f"unknown recipe {recipe!r} (known: {', '.join(sorted(RECIPES))})")
        return None
    spec = RECIPES[recipe]
    b.keys(("recipe", *spec.params), spec.required)
    params: dict[str, Any] = {"recipe": recipe}
    for key, kind_of in spec.params.items():
        if key in b.data:
            params[key] = b.get(key, _RECIPE_PARAM[kind_of])
    if "arch" in spec.params:
        params.setdefault("arch", debian_arch)
    return params


def _image_map(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not v:
        raise _Bad("expected a mapping of paths to image names")
    for path, ref in v.items():
        if not isinstance(path, str) or not safe_member_name(path) or not isinstance(ref, str):
            raise _Bad(f"{path!r}: expected a relative path (no '..') mapped to an image name")
    return {str(k): str(v) for k, v in v.items()}


_RECIPE_PARAM: dict[str, Callable[[Any], Any]] = {
    "str": _str, "text": _text, "image": _str, "images": _image_map,
    "list": lambda v: [_str(x) for x in (v if isinstance(v, list) else [v])],
}


def _boot(c: _Checker, m: _Map, images: dict[str, ImageSpec]) -> BootSpec | None:
    b = m.sub("boot")
    if b is None:
        return None
    b.keys((*BOOT_KINDS, "initrd", "cmdline"))
    kinds = [k for k in BOOT_KINDS if k in b.data]
    if len(kinds) != 1:
        c.issue(b.line, "boot", f"needs exactly one of {', '.join(BOOT_KINDS)}")
        return None
    kind = kinds[0]
    for key in (kind, "initrd"):
        ref = b.get(key, _str)
        if ref is not None and ref not in images:
            c.issue(b.line_of(key), b.path(key), f"no image named {ref!r} in images")
    if kind != "kernel":
        for key in ("initrd", "cmdline"):
            if key in b.data:
                c.issue(b.line_of(key), b.path(key), "only for kernel boots")
        return BootSpec(kind, image=b.get(kind, _str))
    return BootSpec(
        "kernel",
        kernel=b.get("kernel", _str),
        initrd=b.get("initrd", _str),
        cmdline=b.get("cmdline", _text, ""),
    )


def _milestones(c: _Checker, m: _Map) -> list[Milestone]:
    out: list[Milestone] = []
    seen: set[str] = set()
    for key, line, value in c.items(m, "milestones"):
        ms = c.mapping(value, key, line)
        if ms is None:
            continue
        ms.keys(("name", "pattern", "timeout", "send", "optional", "weight"), ("name", "pattern"))
        name = ms.get("name", _str, "")
        if name in seen:
            c.issue(ms.line_of("name"), ms.path("name"), f"duplicate milestone name {name!r}")
        seen.add(name)
        pattern = ms.get("pattern", _regex)
        if pattern is None:
            continue
        out.append(Milestone(
            name=name,
            pattern=pattern,
            timeout=ms.get("timeout", _positive),
            send=ms.get("send", _text),
            optional=ms.get("optional", _bool, False),
            weight=ms.get("weight", _positive, 1.0),
        ))
    if "milestones" in m.data and out and all(x.optional for x in out):
        c.issue(m.line_of("milestones"), "milestones", "at least one milestone must be required")
    elif "milestones" in m.data and not out and not c.issues:
        c.issue(m.line_of("milestones"), "milestones", "needs at least one milestone")
    return out


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


def _quirks(c: _Checker, m: _Map) -> dict[str, list[str]]:
    sub = m.sub("quirks")
    if sub is None:
        return {}
    known = knowledge.quirks()
    out: dict[str, list[str]] = {}
    for backend in sub.data:
        if backend not in knowledge.backends():
            c.issue(sub.line_of(backend), sub.path(str(backend)),
                    f"unknown backend (known: {', '.join(knowledge.backends())})")
            continue
        names = sub.str_list(backend) or []
        for i, q in enumerate(names):
            if q not in known:
                c.issue(sub.line_of(backend), f"{sub.path(backend)}[{i}]",
                        f"unknown quirk {q!r} (known: {', '.join(sorted(known))})")
        out[backend] = names
    return out


def _expectations(c: _Checker, m: _Map, with_guest: bool) -> list[Expectation]:
    out = []
    allowed = ("guest", "backend", "firmware", "reason", "link") if with_guest else (
        "backend", "firmware", "reason", "link")
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
        ))
    return out


def _timeouts(t: _Map | None, base: Timeouts | None = None) -> Timeouts | None:
    if t is None:
        return None
    t.keys(("total", "stall"))
    base = base or Timeouts()
    return Timeouts(total=t.get("total", _positive, base.total),
                    stall=t.get("stall", _positive, base.stall))


def load_guests(folder: Path) -> dict[str, Guest]:
    """Every guest file in `folder`, by id; all problems of all files at once."""
    issues: list[ConfigIssue] = []
    guests: dict[str, Guest] = {}
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(str(folder), 0, "(guests)", "no such folder")])
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        try:
            guest = load_guest(path)
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        if guest.id in guests:
            other = guests[guest.id].source
            issues.append(ConfigIssue(str(path), 1, "id",
                                      f"duplicate id {guest.id!r} (also {other})"))
            continue
        guests[guest.id] = guest
    if issues:
        raise ConfigError(issues)
    return guests


# --- the matrix file ---------------------------------------------------------

MATRIX_KEYS = ("guests", "backends", "firmware", "defaults", "exclude", "expect", "jobs")


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
        timeouts = _timeouts(defaults.sub("timeouts")) or timeouts
        retries = defaults.get("retries", _count, 0)
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
    if guests is not None:
        lines = m.data.get("guests")
        for i, g in enumerate(guest_globs):
            if fnmatch.filter(guests, g):
                continue
            line = lines.line_of(i) if isinstance(lines, LineList) else m.line_of("guests")
            literal = not any(ch in g for ch in "*?[")
            c.issue(line, f"guests[{i}]", f"no guest file with id {g!r}" if literal
                    else f"the pattern {g!r} matches no guest")
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
        source=path,
    )
    if c.issues:
        raise ConfigError(c.issues)
    return matrix


def _jobs(v: Any) -> int | None:
    if v == "auto":
        return None
    if _count(v) < 1:
        raise _Bad("expected auto or a number >= 1")
    return v
