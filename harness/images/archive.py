"""Decompression and archive members, streamed, refusing unsafe paths.

Formats: gz, xz, bz2 (standard library), zst (zstandard); members out of
tar (any compression), zip, Debian .deb archives (an `ar` file holding
data.tar.*) and ISO 9660 images (iso.py), read without unpacking anything
else to disk. The kind of archive is told by its content, never its name.
"""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import lzma
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from .iso import IsoError, is_iso, iso_member

CHUNK = 1 << 20
SUFFIXES = {".gz": "gz", ".tgz": "gz", ".xz": "xz", ".bz2": "bz2", ".zst": "zst"}
MAGIC = {b"\x1f\x8b": "gz", b"\xfd7zXZ\x00": "xz", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zst"}


class ArchiveError(Exception):
    pass


def compression_for(name: str, setting: str) -> str:
    """`decompress:` auto|none|gz|xz|bz2|zst, with auto decided by the file name."""
    if setting != "auto":
        return setting
    path = PurePosixPath(name.split("?", 1)[0])
    if path.suffix == ".tgz" or path.suffixes[-2:] == [".tar", ".gz"]:
        return "none"  # a compressed tar: the member step reads it as it is
    if path.suffixes[-2:-1] == [".tar"]:
        return "none"
    return SUFFIXES.get(path.suffix, "none")


def open_decompressed(path: Path, kind: str) -> IO[bytes]:
    if kind == "gz":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "zst":
        return _zstd_reader(path.open("rb"))
    raise ArchiveError(f"unknown compression {kind!r}")


def _zstd_reader(src: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise ArchiveError("zst needs the zstandard package (pip install zstandard)") from None
    return zstandard.ZstdDecompressor().stream_reader(src, closefd=True)


def check_format(path: Path, kind: str) -> None:
    with path.open("rb") as f:
        head = f.read(8)
    found = next((k for magic, k in MAGIC.items() if head.startswith(magic)), None)
    if found != kind:
        raise ArchiveError(f"{path.name} is not {kind}-compressed"
                           + (f" (it looks {found}-compressed)" if found else ""))


def safe_member_name(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and not name.startswith("\\")


def _normal(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _matching(names: list[str], pattern: str) -> str | None:
    want = _normal(pattern)
    for raw in names:
        name = _normal(raw)
        if name == want or fnmatch.fnmatchcase(name, want):
            if not safe_member_name(name):
                raise ArchiveError(f"refusing archive member {raw!r}: absolute or '..' path")
            return raw
    return None


def iter_member(path: Path, pattern: str) -> tuple[str, Iterator[bytes]]:
    """(member name, its bytes in chunks) for the first member matching `pattern`."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        return _zip_member(path, pattern)
    if head == b"!<arch>\n":
        return _deb_member(path, pattern)
    if is_iso(path):
        try:
            return iso_member(path, pattern)
        except IsoError as exc:
            raise ArchiveError(str(exc)) from None
    return _tar_member(path.open("rb"), pattern, path.name,
                       "not a tar, zip, .deb or ISO 9660 image")


def _chunks(src: IO[bytes]) -> Iterator[bytes]:
    with src:
        while block := src.read(CHUNK):
            yield block


def _zip_member(path: Path, pattern: str) -> tuple[str, Iterator[bytes]]:
    zf = zipfile.ZipFile(path)
    name = _matching([i.filename for i in zf.infolist() if not i.is_dir()], pattern)
    if name is None:
        zf.close()
        raise ArchiveError(f"no member {pattern!r} in {path.name}")

    def gen() -> Iterator[bytes]:
        with zf:
            yield from _chunks(zf.open(name))

    return _normal(name), gen()


def _tar_member(fileobj: IO[bytes], pattern: str, label: str,
                what: str = "not a readable tar archive") -> tuple[str, Iterator[bytes]]:
    try:
        tar = tarfile.open(fileobj=fileobj, mode="r|*")  # noqa: SIM115 (the reader closes it)
        for info in tar:
            if _matching([info.name], pattern) is None:
                continue
            if not info.isfile():
                raise ArchiveError(f"{label}: {info.name} is not a regular file")
            src = tar.extractfile(info)
            assert src is not None

            def gen(tar: tarfile.TarFile = tar, src: IO[bytes] = src) -> Iterator[bytes]:
                with tar:
                    yield from _chunks(src)

            return _normal(info.name), gen()
    except tarfile.TarError as exc:
        raise ArchiveError(f"{label}: {what} ({exc})") from None
    tar.close()
    raise ArchiveError(f"no member {pattern!r} in {label}")


def _deb_member(path: Path, pattern: str) -> tuple[str, Iterator[bytes]]:
    """A .deb is an ar archive; the files are in its data.tar.* member."""
    f = path.open("rb")
    f.read(8)
    while header := f.read(60):
        if len(header) < 60:
            break
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        if name.startswith("data.tar"):
            data = _Window(f, size)
            # tarfile's "r|*" reads gz, bz2 and xz itself; zstd it does not know
            stream = _zstd_reader(data) if name.endswith(".zst") else data
            return _tar_member(stream, pattern, f"{path.name}:{name}")
        f.seek(size + (size & 1), 1)
    f.close()
    raise ArchiveError(f"{path.name}: no data.tar member (not a Debian package?)")


class _Window:
    """The next `size` bytes of a file, as a read-only stream."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> _Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
