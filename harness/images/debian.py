"""Files out of Debian packages of any architecture, without touching apt's state.

On a host with apt, apt runs with a private state folder in the cache
(package lists, status, archives) and the system's sources, so `deb:` sources
work for foreign architectures (i386 on an amd64 host) and nothing is
installed or reconfigured. Elsewhere (or with HARNESS_DEB_FETCH=mirror) the
archive is read directly (debmirror.py). Either way the package is read in
Python (an `ar` file holding data.tar.*): the wanted member is extracted in
one pass, with no dpkg-deb.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import sha256_file
from .archive import ArchiveError, NoMember, iter_member, iter_tree
from .cache import Cache
from .debindex import LIST_MAX_AGE, DebError, first_alternatives, lists_age, parse_fields

MAX_DEPTH = 3  # how far to follow Depends of a meta-package


@dataclass(frozen=True)
class DebFile:
    sha256: str
    package: str  # the package the file came from (after following Depends)
    version: str
    member: str  # path inside the package
    deb_sha256: str


class AptArchive:
    """apt-get/apt-cache for one Debian architecture with private state."""

    def __init__(self, cache: Cache, arch: str, log: Callable[[str], None] = print) -> None:
        self.cache = cache
        self.arch = arch
        self.log = log
        self.state = cache.sub("apt", arch)
        for sub in ("lists/partial", "archives/partial", "cache"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        (self.state / "status").touch()

    def options(self) -> list[str]:
        s = self.state
        return [
            "-o", f"APT::Architecture={self.arch}",
            "-o", f"APT::Architectures::={self.arch}",
            "-o", f"Dir::State::Lists={s / 'lists'}",
            "-o", f"Dir::State::status={s / 'status'}",
            "-o", f"Dir::Cache={s / 'cache'}",
            "-o", f"Dir::Cache::archives={s / 'archives'}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Retries=3",
        ]

    def _run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [tool, *self.options(), *args], cwd=cwd, capture_output=True, text=True,
                timeout=900,
            )
        except FileNotFoundError:
            raise DebError(f"{tool} not found: deb sources need Debian's apt") from None
        except subprocess.TimeoutExpired:
            raise DebError(f"{tool} {' '.join(args)} took more than 15 minutes") from None

    def lists_stamp(self) -> str:
        """Which package lists apt answers from (their last update), or "" if none."""
        stamp = self.state / "updated"
        return str(stamp.stat().st_mtime_ns) if stamp.exists() else ""

    def update(self, offline: bool = False) -> None:
        """Refresh the private package lists when they are missing or old."""
        if offline or lists_age(self.state) < LIST_MAX_AGE:
            return
        with self.cache.lock(f"apt-update-{self.arch}"):
            if lists_age(self.state) < LIST_MAX_AGE:
                return
            self.log(f"  updating Debian package lists for {self.arch}")
            proc = self._run("apt-get", "-q", "update")
            # A mirror mid-sync fails one suite while the others work: keep going
            # as long as some lists arrived.
            lists = [p for p in (self.state / "lists").glob("*_Packages*") if p.stat().st_size]
            if not lists:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise DebError(f"apt-get update for {self.arch} fetched no package list: "
                               + " / ".join(tail))
            (self.state / "updated").touch()

    def show(self, package: str) -> dict[str, str]:
        proc = self._run("apt-cache", "show", "--no-all-versions", f"{package}:{self.arch}")
        if proc.returncode != 0 or not proc.stdout.strip():
            proc = self._run("apt-cache", "show", "--no-all-versions", package)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise DebError(f"no package {package!r} for {self.arch} in the Debian archive")
        return parse_fields(proc.stdout)

    def download(self, package: str, version: str, sha256: str | None) -> Path:
        """The .deb of package=version, downloaded once into the cache's blobs."""
        key = f"debfile:{self.arch}:{package}={version}"
        ref = self.cache.get_ref(key)
        if ref is not None:
            return self.cache.blob_path(ref["sha256"])
        with self.cache.lock(key):
            ref = self.cache.get_ref(key)
            if ref is not None:
                return self.cache.blob_path(ref["sha256"])
            self.log(f"  downloading {package} {version} ({self.arch})")
            workdir = Path(tempfile.mkdtemp(dir=self.cache.sub("tmp"), prefix="deb-"))
            try:
                proc = self._run("apt-get", "-q", "download",
                                 f"{package}:{self.arch}={version}", cwd=workdir)
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
                    raise DebError(f"apt-get download {package}={version}: " + " / ".join(tail))
                debs = list(workdir.glob("*.deb"))
                if len(debs) != 1:
                    raise DebError(f"apt-get download {package} left {len(debs)} .deb files")
                digest = sha256_file(debs[0])
                if sha256 and digest != sha256:
                    raise DebError(f"{debs[0].name}: SHA256 {digest} differs from the "
                                   f"archive's Packages index ({sha256})")
                path = self.cache.adopt(debs[0], digest)
                self.cache.set_ref(key, digest, file=debs[0].name)
                return path
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


def extract_member(cache: Cache, deb: Path, pattern: str) -> tuple[str, str] | None:
    """Store the first member of `deb` matching glob `pattern`; (member, sha256).
    A pattern ending in "/" is a folder: everything under it, stored as a tar."""
    try:
        name, chunks = (iter_tree(deb, pattern) if pattern.endswith("/")
                        else iter_member(deb, pattern))
        with cache.new_blob() as (f, h):
            for block in chunks:
                f.write(block)
                h.update(block)
    except NoMember:
        return None
    except (ArchiveError, OSError, EOFError, ValueError) as exc:
        raise DebError(f"{deb.name}: cannot read its data: {exc}") from None
    return name, h.hexdigest()


FETCHERS = ("apt", "mirror")


def archive_for(cache: Cache, arch: str, log: Callable[[str], None] = print) -> Any:
    """apt where the host has it, the archive read directly elsewhere;
    HARNESS_DEB_FETCH=apt|mirror chooses."""
    how = os.environ.get("HARNESS_DEB_FETCH", "") or (
        "apt" if shutil.which("apt-get") else "mirror")
    if how not in FETCHERS:
        raise DebError(f"HARNESS_DEB_FETCH={how!r}: expected one of {', '.join(FETCHERS)}")
    if how == "apt":
        return AptArchive(cache, arch, log)
    from .debmirror import MirrorArchive

    return MirrorArchive(cache, arch, log)


def fetch_deb_file(
    cache: Cache, arch: str, package: str, pattern: str, offline: bool = False,
    log: Callable[[str], None] = print,
) -> DebFile:
    """The file matching `pattern` in `package` (or in what it depends on)."""
    latest_key = f"deb:{arch}:{package}:{pattern}"
    if offline:
        ref = cache.get_ref(latest_key)
        if ref is None:
            raise DebError(f"offline, and {package} ({arch}) {pattern} is not in the cache")
        return _from_ref(ref)
    apt = archive_for(cache, arch, log)
    apt.update()
    # The answer depends on the package lists alone: while they are the ones it came
    # from, it is reused (apt-cache show re-reads every list, ~1 s a call)
    lists = apt.lists_stamp()
    ref = cache.get_ref(latest_key)
    if ref is not None and lists and ref.get("lists") == lists:
        return _from_ref(ref)
    result = _search(cache, apt, package, pattern, depth=0, seen=set())
    cache.set_ref(latest_key, result.sha256, lists=lists, **_ref_info(result))
    return result


def _search(cache: Cache, apt: Any, package: str, pattern: str, depth: int,
            seen: set[str]) -> DebFile:
    seen.add(package)
    fields = apt.show(package)
    version = fields.get("Version", "")
    key = f"deb:{apt.arch}:{package}={version}:{pattern}"
    ref = cache.get_ref(key)
    if ref is not None:
        return _from_ref(ref)
    deb = apt.download(package, version, fields.get("SHA256"))
    found = extract_member(cache, deb, pattern)
    if found is not None:
        member, sha = found
        result = DebFile(sha, package, version, member, deb.name)
        cache.set_ref(key, sha, **_ref_info(result))
        return result
    if depth < MAX_DEPTH:
        for dep in first_alternatives(fields.get("Depends", "")):
            if dep in seen:
                continue
            try:
                return _search(cache, apt, dep, pattern, depth + 1, seen)
            except DebError:
                continue
    raise DebError(f"no file matching {pattern!r} in {package} {version} ({apt.arch}) "
                   "or the packages it depends on")


def _ref_info(f: DebFile) -> dict[str, str]:
    return {"package": f.package, "version": f.version, "member": f.member,
            "deb_sha256": f.deb_sha256}


def _from_ref(ref: dict) -> DebFile:
    return DebFile(ref["sha256"], ref["package"], ref["version"], ref["member"],
                   ref.get("deb_sha256", ""))
