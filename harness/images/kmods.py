"""Linux kernel modules out of the Debian package a `deb:` kernel came from.

Debian's linux-image packages ship no modules.dep (their postinst runs depmod on
the installed system; `dpkg-deb -c linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb`
lists modules.builtin, modules.order and the .ko files only), so dependencies come
from where depmod itself reads them: each module's `.modinfo` ELF section
(`depends=a,b`). The package is read in one streaming pass: every module's
dependencies are indexed, and a module's bytes are kept once it is wanted (asked
for, or needed by a kept one). Only a dependency that came earlier in the archive
than the module needing it is read by a second pass, which takes all such at once.
"""

from __future__ import annotations

import difflib
import lzma
import re
import struct
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .archive import _deb_data

_RELEASE = re.compile(r"(?:boot/)?vmlinu[xz]-(.+)$")
_MODULES = re.compile(r"^(?:\./)?(?:usr/)?lib/modules/([^/]+)/(.+)$")
MODULE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ModuleError(Exception):
    """A module the package does not have, or a package that cannot be read."""


def module_name(text: str) -> str:
    """The kernel's name of a module: file stem, with '-' read as '_' (as modprobe does)."""
    base = PurePosixPath(text).name
    for suffix in (".xz", ".ko"):
        base = base.removesuffix(suffix)
    return base.replace("-", "_")


def release_of(member: str) -> str | None:
    """The kernel release of a packaged kernel image: boot/vmlinuz-6.1.0-57-amd64."""
    m = _RELEASE.search(member)
    return m.group(1) if m else None


def modinfo(ko: bytes) -> dict[str, str]:
    """The `key=value` strings of an ELF module's .modinfo section (first of each key)."""
    if ko[:4] != b"\x7fELF" or len(ko) < 64:
        raise ModuleError("not an ELF object")
    wide, order = ko[4] == 2, "<" if ko[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(order + "Q", ko, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", ko, 0x3A)
    else:
        shoff, = struct.unpack_from(order + "I", ko, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", ko, 0x2E)

    def section(i: int) -> tuple[int, int, int]:  # (name offset, file offset, size)
        at = shoff + i * shentsize
        if wide:
            name, = struct.unpack_from(order + "I", ko, at)
            off, size = struct.unpack_from(order + "QQ", ko, at + 0x18)
        else:
            name, = struct.unpack_from(order + "I", ko, at)
            off, size = struct.unpack_from(order + "II", ko, at + 0x10)
        return name, off, size

    try:
        _, strtab, _ = section(shstrndx)
        for i in range(shnum):
            name, off, size = section(i)
            end = ko.find(b"\0", strtab + name)
            if ko[strtab + name:end] == b".modinfo":
                info: dict[str, str] = {}
                for item in ko[off:off + size].split(b"\0"):
                    key, eq, value = item.decode("utf-8", "replace").partition("=")
                    if eq:
                        info.setdefault(key, value)
                return info
    except struct.error:
        raise ModuleError("a truncated ELF object") from None
    return {}


@dataclass
class _Index:
    release: str | None
    wanted: set[str]
    deps: dict[str, list[str]] = field(default_factory=dict)  # every module seen
    kept: dict[str, bytes] = field(default_factory=dict)
    builtin: set[str] = field(default_factory=set)
    releases: set[str] = field(default_factory=set)

    def want(self, name: str) -> None:
        if name in self.wanted:
            return
        self.wanted.add(name)
        for dep in self.deps.get(name, ()):
            self.want(dep)


def _walk(deb: Path, index: _Index, only: set[str] | None) -> None:
    """One pass over the package's data: index modules, keep the wanted ones' bytes."""
    stream, label = _deb_data(deb)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                m = _MODULES.match(info.name)
                if not m or not info.isfile():
                    continue
                release, rest = m.groups()
                index.releases.add(release)
                if index.release is not None and release != index.release:
                    continue
                if rest == "modules.builtin" and only is None:
                    src = tar.extractfile(info)
                    assert src is not None
                    index.builtin |= {module_name(x) for x in src.read().decode().split()}
                    continue
                if not (rest.endswith(".ko") or rest.endswith(".ko.xz")):
                    continue
                name = module_name(rest)
                if only is not None and name not in only:
                    continue
                src = tar.extractfile(info)
                assert src is not None
                data = src.read()
                if rest.endswith(".xz"):
                    data = lzma.decompress(data)
                if only is None:
                    depends = modinfo(data).get("depends", "")
                    index.deps[name] = [module_name(d) for d in depends.split(",") if d]
                if name in index.wanted:
                    index.kept[name] = data
                    for dep in index.deps.get(name, ()):
                        index.want(dep)
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
        raise ModuleError(f"{label}: cannot read its data ({exc})") from None
    finally:
        stream.close()


def modules_from_deb(deb: Path, release: str | None, names: Iterable[str],
                     what: str, log: Callable[[str], None] = print) -> list[tuple[str, bytes]]:
    """The modules `names` and their dependencies, in load order (dependencies first),
    as (name, bytes). Built-in modules are left out (nothing to load). `what` names the
    package in messages."""
    asked = [module_name(n) for n in names]
    index = _Index(release, set())
    for name in asked:
        index.want(name)
    _walk(deb, index, None)
    if release is None and len(index.releases) > 1:
        raise ModuleError(f"{what} holds modules of several kernels "
                          f"({', '.join(sorted(index.releases))}); which one is not known")
    if not index.deps:
        raise ModuleError(f"{what} has no kernel modules"
                          + (f" for {release}" if release else ""))
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order or name in index.builtin:
            return
        if name not in index.deps:
            close = difflib.get_close_matches(name, list(index.deps), n=3)
            hint = f" (close: {', '.join(close)})" if close else ""
            via = f" (needed by {chain[-1]})" if chain else ""
            raise ModuleError(f"no kernel module {name!r}{via} in {what}{hint}")
        if name in chain:
            raise ModuleError(f"kernel modules depend on each other in a cycle: "
                              f"{' -> '.join((*chain, name))}")
        for dep in index.deps[name]:
            visit(dep, (*chain, name))
        order.append(name)

    for name in asked:
        if name in index.builtin:
            log(f"  kernel module {name} is built into the kernel: nothing to load")
        visit(name, ())
    missing = {n for n in order if n not in index.kept}
    if missing:  # dependencies the archive held before the modules needing them
        index.wanted |= missing
        _walk(deb, index, missing)
    return [(n, index.kept[n]) for n in order]
