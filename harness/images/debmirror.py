"""Debian packages straight from the archive, for hosts without apt.

The same questions `AptArchive` puts to apt (which version of a package is
current, where its .deb is, its SHA256), answered by reading the suites of
data/debian.yaml directly: `InRelease` (checked with gpgv against Debian's
keyring when both are on the host), the `Packages.xz` it lists (checked
against its SHA256 there), then each .deb against its Packages entry. So a
NetBSD, macOS or Windows host runs the `local` guests with nothing of
Debian's installed. Without gpgv or a keyring the suites are read over HTTPS
only, and the log says so.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ..knowledge import DebianSources, debian_sources
from .cache import Cache
from .debindex import LIST_MAX_AGE, DebError, lists_age, parse_fields
from .download import Downloader, DownloadError

# " <sha256> <size> <path>" lines of a Release file's SHA256 section
_SUM_LINE = re.compile(r"^ ([0-9a-f]{64})\s+(\d+)\s+(\S+)$", re.M)


class MirrorError(DebError):
    """A suite or package that could not be read from the Debian archive."""


def release_sums(release: str) -> dict[str, tuple[str, int]]:
    """{path: (sha256, size)} of a Release file's SHA256 section."""
    start = release.find("\nSHA256:")
    if start < 0:
        return {}
    section = release[start + 8:]
    end = re.search(r"^\S", section, re.M)  # the next field ends the section
    section = section[:end.start()] if end else section
    return {m[3]: (m[1], int(m[2])) for m in _SUM_LINE.finditer(section)}


def clearsigned_body(text: str) -> str:
    """The signed text of an InRelease file, when it is read without gpgv."""
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return text
    head_end = text.find("\n\n")
    sig = text.find("\n-----BEGIN PGP SIGNATURE-----")
    if head_end < 0 or sig < head_end:
        raise MirrorError("InRelease is not a well-formed signed message")
    lines = text[head_end + 2:sig].split("\n")
    return "\n".join(x[2:] if x.startswith("- ") else x for x in lines) + "\n"


def stanzas_by_name(packages: str) -> dict[str, list[str]]:
    """Packages index text → {package name: its stanzas} (one per version)."""
    out: dict[str, list[str]] = {}
    for stanza in packages.split("\n\n"):
        if stanza.startswith("Package: "):
            out.setdefault(stanza[9:stanza.find("\n")].strip(), []).append(stanza)
    return out


class MirrorArchive:
    """One Debian architecture, read from the archive's suites over HTTP(S)."""

    def __init__(self, cache: Cache, arch: str, log: Callable[[str], None] = print,
                 sources: DebianSources | None = None) -> None:
        self.cache = cache
        self.arch = arch
        self.log = log
        self.sources = sources or debian_sources()
        self.state = cache.sub("debmirror", arch)
        self.state.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, list[tuple[str, str]]] | None = None  # name → (base, stanza)

    # --- where and how ---------------------------------------------------------

    def _suites(self) -> list[tuple[str, str]]:
        """(archive URL, suite) pairs, the first URL replaced by HARNESS_DEBIAN_MIRROR."""
        pairs = []
        for i, (url, suites) in enumerate(self.sources.sources):
            if i == 0 and os.environ.get("HARNESS_DEBIAN_MIRROR"):
                url = os.environ["HARNESS_DEBIAN_MIRROR"].rstrip("/")
            pairs += [(url, s) for s in suites]
        return pairs

    def keyring(self) -> str | None:
        """The keyring gpgv checks InRelease with, or None (then HTTPS only)."""
        if not shutil.which("gpgv"):
            return None
        wanted = os.environ.get("HARNESS_DEBIAN_KEYRING")
        candidates = [wanted] if wanted else list(self.sources.keyrings)
        return next((k for k in candidates if k and Path(k).is_file()), None)

    def _fetch(self, url: str, signed: bool) -> tuple[Path, str]:
        """Download `url` into the state folder's tmp; (path, sha256). Plain http is
        taken only when the InRelease signature is checked (apt's own model)."""
        part = Path(tempfile.mkstemp(dir=self.cache.sub("tmp"), prefix="deb-")[1])
        part.unlink()
        try:
            got = Downloader(insecure=signed).fetch([url], part)
        except DownloadError as exc:
            part.unlink(missing_ok=True)
            raise MirrorError(str(exc)) from None
        return got.path, got.sha256

    # --- the lists -------------------------------------------------------------

    def _name(self, base: str, suite: str) -> str:
        host = urlsplit(base).netloc + urlsplit(base).path
        return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{host}_{suite}")

    def lists_stamp(self) -> str:
        """Which lists answers come from (a digest of their Release files), "" if none."""
        stamp = self.state / "updated"
        return stamp.read_text().strip() if stamp.exists() else ""

    def update(self, offline: bool = False) -> None:
        """Fetch and check every suite's InRelease and Packages.xz for this arch."""
        if offline or lists_age(self.state) < LIST_MAX_AGE:
            return
        with self.cache.lock(f"debmirror-update-{self.arch}"):
            if lists_age(self.state) < LIST_MAX_AGE:
                return
            keyring = self.keyring()
            trust = (f"InRelease checked by gpgv with {keyring}" if keyring else
                     "no gpgv or Debian keyring here: lists read over HTTPS only, "
                     "signatures NOT checked")
            self.log(f"  reading Debian {self.sources.release} lists for {self.arch} "
                     f"({trust})")
            digest = hashlib.sha256()
            found = 0
            problems = []
            for base, suite in self._suites():
                # like apt, a suite that fails (a mirror mid-sync, a bad signature) is
                # left out with a warning, its last checked list kept, while others work
                try:
                    release = self._release(base, suite, keyring)
                    digest.update(release.encode())
                    if self._packages(base, suite, release, keyring is not None):
                        found += 1
                except MirrorError as exc:
                    problems.append(str(exc))
                    self.log(f"  warning: {suite} left out: {exc}")
            if not found:
                raise MirrorError(f"no suite of {self.sources.release} has packages for "
                                  f"{self.arch} ({self.sources.component})"
                                  + (f": {'; '.join(problems)}" if problems else ""))
            (self.state / "updated").write_text(digest.hexdigest() + "\n")
            self._index = None

    def _release(self, base: str, suite: str, keyring: str | None) -> str:
        path, _ = self._fetch(f"{base}/dists/{suite}/InRelease", keyring is not None)
        try:
            if keyring is None:
                return clearsigned_body(path.read_text(errors="replace"))
            proc = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", str(path)],
                                  capture_output=True, timeout=120)
            if proc.returncode != 0:
                why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
                raise MirrorError(f"{base}/dists/{suite}/InRelease: bad signature "
                                  f"({' '.join(why) or 'gpgv failed'})")
            return proc.stdout.decode(errors="replace")
        finally:
            path.unlink(missing_ok=True)

    def _packages(self, base: str, suite: str, release: str, signed: bool) -> bool:
        """Store the suite's Packages.xz after checking it; False when it has none."""
        rel = f"{self.sources.component}/binary-{self.arch}/Packages.xz"
        want = release_sums(release).get(rel)
        target = self.state / f"{self._name(base, suite)}_Packages.xz"
        if want is None:
            target.unlink(missing_ok=True)
            return False
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == want[0]:
            return True  # unchanged since the last update
        # by-hash names the exact file InRelease lists: no race with a mirror that
        # has already replaced Packages.xz with a newer one (apt does the same)
        by_hash = re.search(r"^Acquire-By-Hash:\s*yes", release, re.M | re.I)
        url = (f"{base}/dists/{suite}/{rel.rsplit('/', 1)[0]}/by-hash/SHA256/{want[0]}"
               if by_hash else f"{base}/dists/{suite}/{rel}")
        path, sha = self._fetch(url, signed)
        if sha != want[0]:
            path.unlink(missing_ok=True)
            raise MirrorError(f"{url}: SHA256 {sha} differs from "
                              f"the one InRelease lists ({want[0]})")
        os.replace(path, target)
        return True

    # --- packages --------------------------------------------------------------

    def _stanzas(self, package: str) -> list[tuple[str, str]]:
        if self._index is None:
            if not self.lists_stamp():
                raise MirrorError(f"no Debian lists for {self.arch} yet (offline?)")
            index: dict[str, list[tuple[str, str]]] = {}
            for base, suite in self._suites():
                target = self.state / f"{self._name(base, suite)}_Packages.xz"
                if not target.exists():
                    continue
                try:
                    text = lzma.decompress(target.read_bytes()).decode(errors="replace")
                except (OSError, EOFError, lzma.LZMAError) as exc:
                    raise MirrorError(f"{target}: unreadable ({exc})") from None
                for name, stanzas in stanzas_by_name(text).items():
                    index.setdefault(name, []).extend((base, s) for s in stanzas)
            self._index = index
        return self._index.get(package, [])

    def show(self, package: str) -> dict[str, str]:
        """The fields of the highest version of `package` in any suite (as apt-cache
        show would answer), plus `_url`: where its .deb is."""
        from debian.debian_support import version_compare

        best: dict[str, str] | None = None
        for base, stanza in self._stanzas(package):
            fields = parse_fields(stanza)
            if best is None or version_compare(fields.get("Version", ""),
                                               best.get("Version", "")) > 0:
                best = {**fields, "_url": f"{base}/{fields.get('Filename', '')}"}
        if best is None:
            raise MirrorError(f"no package {package!r} for {self.arch} in Debian "
                              f"{self.sources.release}")
        return best

    def download(self, package: str, version: str, sha256: str | None) -> Path:
        """The .deb of package=version, downloaded once into the cache's blobs."""
        key = f"debfile:{self.arch}:{package}={version}"
        ref = self.cache.get_ref(key)
        if ref is not None:
            return self.cache.blob_path(ref["sha256"])
        fields = self.show(package)
        if fields.get("Version") != version:
            raise MirrorError(f"{package} {version} is no longer in the archive's lists")
        with self.cache.lock(key):
            ref = self.cache.get_ref(key)
            if ref is not None:
                return self.cache.blob_path(ref["sha256"])
            self.log(f"  downloading {package} {version} ({self.arch})")
            path, digest = self._fetch(fields["_url"], self.keyring() is not None)
            try:
                if not sha256 or digest != sha256:
                    raise MirrorError(f"{fields['_url']}: SHA256 {digest} differs from the "
                                      f"archive's Packages index ({sha256})")
                stored = self.cache.adopt(path, digest)
            finally:
                path.unlink(missing_ok=True)
            self.cache.set_ref(key, digest, file=fields["_url"].rsplit("/", 1)[-1])
            return stored
