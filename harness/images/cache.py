"""The harness cache: content-addressed blobs, named references, locks.

Artefacts are stored once under `blobs/sha256/<hex>` and never written
again (read-only files); a reference (`refs/<digest of key>.json`) maps a
source description to a blob plus what is known about its origin. Writes go
through a temporary file and `os.replace`, so a crash never leaves a
half-written blob under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import platformdirs
from filelock import FileLock

from ..files import CHUNK, atomic_write, os_reason, sha256_file


class CacheError(Exception):
    """The cache could not be written (a full disk, a read-only file system, ...)."""

    def __init__(self, reason: str, root: Path, doing: str = "writing into") -> None:
        super().__init__(f"{reason} while {doing} the cache {root}")
        self.reason, self.root = reason, root


class BlobWriter:
    """A new blob's file: a failed write is the cache's error (CacheError), never
    mistaken for the reader's (a corrupt archive, a cut connection)."""

    def __init__(self, f: IO[bytes], root: Path) -> None:
        self._f, self._root = f, root

    def write(self, block: bytes) -> int:
        try:
            return self._f.write(block)
        except OSError as exc:
            raise CacheError(os_reason(exc), self._root) from None


def default_root() -> Path:
    """$HARNESS_CACHE, else the platform's user cache folder (platformdirs). On Linux
    that is $XDG_CACHE_HOME/guest-harness or ~/.cache/guest-harness, as it always was:
    run folders and repro scripts written earlier name it."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    if platform.system() == "Linux":
        xdg = os.environ.get("XDG_CACHE_HOME")
        return (Path(xdg) if xdg else Path.home() / ".cache") / "guest-harness"
    # macOS ~/Library/Caches/guest-harness, Windows %LOCALAPPDATA%\guest-harness\Cache,
    # the BSDs $XDG_CACHE_HOME or ~/.cache
    return Path(platformdirs.user_cache_dir("guest-harness", appauthor=False))



class Digests:
    """SHA-256 and SHA-512 of a stream of bytes, in one pass."""

    def __init__(self) -> None:
        self.h256, self.h512, self.size = hashlib.sha256(), hashlib.sha512(), 0

    def update(self, block: bytes) -> None:
        self.h256.update(block)
        self.h512.update(block)
        self.size += len(block)

    @classmethod
    def of_file(cls, path: Path) -> Digests:
        d = cls()
        with path.open("rb") as f:
            while block := f.read(CHUNK):
                d.update(block)
        return d

    @property
    def sha256(self) -> str:
        return self.h256.hexdigest()

    @property
    def sha512(self) -> str:
        return self.h512.hexdigest()



@dataclass(frozen=True)
class CacheEntry:
    """One reference, as `harness cache ls` shows it."""

    key: str
    sha256: str
    size: int
    last_used: float
    info: dict[str, Any]


class Cache:
    """`verify=True` re-hashes every blob on use instead of trusting its stamp."""

    def __init__(self, root: Path | None = None, verify: bool = False) -> None:
        self.root = (root or default_root()).resolve()
        self.verify = verify

    def sub(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- blobs ---------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / sha256

    def _stamp_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / f"{sha256}.stamp"

    def _stamp(self, sha256: str) -> None:
        """Record size and mtime of a verified blob, so a hit needs no re-hash (without
        a stamp, say on a full disk, the blob is hashed again when next used)."""
        with contextlib.suppress(OSError):
            st = self.blob_path(sha256).stat()
            atomic_write(self._stamp_path(sha256), f"{st.st_size} {st.st_mtime_ns}\n")

    def has_blob(self, sha256: str) -> bool:
        """Whether a sound blob with this digest is stored.

        Trusts the blob when its size and mtime still match the stamp written
        at verification (one stat); otherwise, or with `verify`, re-hashes it,
        and a blob whose bytes no longer match is deleted.
        """
        if not sha256 or "/" in sha256:
            return False
        path = self.blob_path(sha256)
        try:
            st = path.stat()
        except OSError:
            return False
        if not self.verify:
            try:
                size, mtime = self._stamp_path(sha256).read_text().split()
                if int(size) == st.st_size and int(mtime) == st.st_mtime_ns:
                    return True
            except (OSError, ValueError):
                pass
        if sha256_file(path) == sha256:
            self._stamp(sha256)
            return True
        self.remove_blob(sha256)
        return False

    def remove_blob(self, sha256: str) -> None:
        for p in (self.blob_path(sha256), self._stamp_path(sha256)):
            with contextlib.suppress(OSError):
                p.chmod(0o644)
                p.unlink()

    def adopt(self, path: Path, sha256: str) -> Path:
        """Move a verified file (on the cache's file system) in as a blob."""
        final = self.blob_path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o444)
        os.replace(path, final)
        self._stamp(sha256)
        return final

    @contextlib.contextmanager
    def new_blob(self) -> Iterator[tuple[BlobWriter, Any]]:
        """Yield (file, hasher) to write; on success the blob is stored by digest.

        The digest is available afterwards as `hasher.hexdigest()`. A write that
        fails (a full disk) raises CacheError, not OSError: callers reading from an
        archive or a network while writing tell their own errors from the cache's.
        """
        try:
            fd, tmp = tempfile.mkstemp(dir=self.sub("tmp"), prefix="blob.")
        except OSError as exc:
            raise CacheError(os_reason(exc), self.root) from None
        hasher = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as f:
                yield BlobWriter(f, self.root), hasher
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as exc:
                    raise CacheError(os_reason(exc), self.root) from None
            try:
                self.adopt(Path(tmp), hasher.hexdigest())
            except OSError as exc:
                raise CacheError(os_reason(exc), self.root) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_bytes(self, data: bytes) -> str:
        with self.new_blob() as (f, h):
            f.write(data)
            h.update(data)
        return h.hexdigest()

    # --- references ----------------------------------------------------------

    def _ref_path(self, key: str) -> Path:
        return self.root / "refs" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def get_ref(self, key: str) -> dict[str, Any] | None:
        """The reference for `key`, if its blob is still there and sound."""
        path = self._ref_path(key)
        try:
            ref = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if ref.get("key") != key or not self.has_blob(ref.get("sha256", "")):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # "last used", for `cache ls` and `cache prune`
        return ref

    def entries(self) -> list[CacheEntry]:
        out = []
        for path in sorted((self.root / "refs").glob("*.json")):
            try:
                ref = json.loads(path.read_text())
                size = self.blob_path(ref["sha256"]).stat().st_size
                used = path.stat().st_mtime
            except (OSError, ValueError, KeyError):
                continue
            info = {k: v for k, v in ref.items() if k not in ("key", "sha256")}
            out.append(CacheEntry(ref["key"], ref["sha256"], size, used, info))
        return out

    def prune(self, older_than: float | None = None, max_size: int | None = None,
              now: float | None = None) -> tuple[int, int]:
        """Drop references unused for `older_than` seconds, then the least recently
        used until the blobs fit in `max_size` bytes; blobs no reference keeps are
        deleted. Returns (blobs removed, bytes freed)."""
        now = time.time() if now is None else now
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        keep = []
        for e in entries:
            if older_than is not None and now - e.last_used > older_than:
                self._ref_path(e.key).unlink(missing_ok=True)
            else:
                keep.append(e)
        if max_size is not None:
            while keep and sum({e.sha256: e.size for e in keep}.values()) > max_size:
                e = keep.pop(0)
                self._ref_path(e.key).unlink(missing_ok=True)
        wanted = {e.sha256 for e in keep}
        removed, freed = 0, 0
        for blob in (self.root / "blobs" / "sha256").glob("*"):
            if blob.suffix == ".stamp" or blob.name in wanted:
                continue
            freed += blob.stat().st_size
            removed += 1
            self.remove_blob(blob.name)
        stale = older_than if older_than is not None else 86400.0
        for part in (self.root / "tmp").glob("*"):  # downloads nobody finished
            if now - part.stat().st_mtime > stale:
                freed += part.stat().st_size
                part.unlink(missing_ok=True)
        return removed, freed

    def set_ref(self, key: str, sha256: str, **info: Any) -> dict[str, Any]:
        ref = {"key": key, "sha256": sha256, "stored": time.time(), **info}
        atomic_write(self._ref_path(key), json.dumps(ref, indent=1, sort_keys=True))
        return ref

    # --- locks ---------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock between harness processes (and threads) sharing this cache:
        `filelock` takes flock on POSIX and msvcrt.locking on Windows, so the cache
        needs no `fcntl` to import. The lock file stays, as it did with flock."""
        path = self.sub("locks") / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")
        with FileLock(path):
            yield
