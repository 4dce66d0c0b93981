"""The harness cache: content-addressed blobs, named references, locks.

Artefacts are stored once under `blobs/sha256/<hex>` and never written
again (read-only files); a reference (`refs/<digest of key>.json`) maps a
source description to a blob plus what is known about its origin. Writes go
through a temporary file and `os.replace`, so a crash never leaves a
half-written blob under its final name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20


def default_root() -> Path:
    """$HARNESS_CACHE, else the platform's user cache folder."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    system = platform.system()
    home = Path.home()
    if system == "Darwin":
        return home / "Library" / "Caches" / "guest-harness"
    if system == "Windows":
        base = os.environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "guest-harness" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else home / ".cache") / "guest-harness"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Cache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_root()).resolve()

    def sub(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- blobs ---------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    @contextlib.contextmanager
    def new_blob(self) -> Iterator[tuple[IO[bytes], Any]]:
        """Yield (file, hasher) to write; on success the blob is stored by digest.

        The digest is available afterwards as `hasher.hexdigest()`.
        """
        tmpdir = self.sub("tmp")
        fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="blob.")
        hasher = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, hasher
                f.flush()
                os.fsync(f.fileno())
            final = self.blob_path(hasher.hexdigest())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
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
        """The reference for `key`, if its blob is still there."""
        try:
            ref = json.loads(self._ref_path(key).read_text())
        except (OSError, ValueError):
            return None
        if ref.get("key") != key or not self.has_blob(ref.get("sha256", "")):
            return None
        return ref

    def set_ref(self, key: str, sha256: str, **info: Any) -> dict[str, Any]:
        ref = {"key": key, "sha256": sha256, "stored": time.time(), **info}
        atomic_write(self._ref_path(key), json.dumps(ref, indent=1, sort_keys=True))
        return ref

    # --- locks ---------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock between harness processes sharing this cache."""
        path = self.sub("locks") / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")
        with path.open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
