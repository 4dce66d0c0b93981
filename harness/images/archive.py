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
import posixpath
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


class NoMember(ArchiveError):
    """The archive is fine; nothing in it matches the pattern."""


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
        raise NoMember(f"no member {pattern!r} in {path.name}")

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
    raise NoMember(f"no member {pattern!r} in {label}")


def _deb_member(path: Path, pattern: str) -> tuple[str, Iterator[bytes]]:
    """A .deb is an ar archive; the files are in its data.tar.* member."""
    stream, label = _deb_data(path)
    return _tar_member(stream, pattern, label)


def _deb_data(path: Path) -> tuple[IO[bytes], str]:
    """The data.tar.* stream of a .deb (decompressed where tarfile cannot), its label."""
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
            return stream, f"{path.name}:{name}"
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


# --- a folder out of an archive (a TFTP tree for a network boot) ----------------


def _inside(rel: str, link: str) -> bool:
    """Whether symlink `rel` -> `link` stays inside the tree it is part of."""
    if link.startswith("/"):
        return False
    target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
    return target != ".." and not target.startswith("../")


class _Sink:
    """Where tarfile writes: the bytes are handed on as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def iter_tree(path: Path, folder: str) -> tuple[str, Iterator[bytes]]:
    """(folder, a tar of everything under `folder` of a tar/.deb, paths relative to it):
    directories, files and symlinks that stay inside; nothing else is taken."""
    prefix = _normal(folder).strip("/") + "/"
    with path.open("rb") as f:
        deb = f.read(8) == b"!<arch>\n"
    src, label = _deb_data(path) if deb else (path.open("rb"), path.name)

    def gen() -> Iterator[bytes]:
        sink, found = _Sink(), 0
        try:
            with tarfile.open(fileobj=src, mode="r|*") as tin, \
                    tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tout:
                for info in tin:
                    name = _normal(info.name)
                    rel = name[len(prefix):].strip("/") if name.startswith(prefix) else ""
                    if not rel or not (info.isfile() or info.isdir() or info.issym()):
                        continue
                    if not safe_member_name(rel) or (info.issym()
                                                     and not _inside(rel, info.linkname)):
                        raise ArchiveError(f"{label}: refusing {name!r} (it leads out of "
                                           f"{prefix})")
                    out = tarfile.TarInfo(rel)
                    out.type, out.mode, out.mtime = info.type, info.mode & 0o755, info.mtime
                    out.linkname, out.size = info.linkname, info.size if info.isfile() else 0
                    tout.addfile(out, tin.extractfile(info) if info.isfile() else None)
                    found += 1
                    yield sink.take()
        except tarfile.TarError as exc:
            raise ArchiveError(f"{label}: not a readable tar archive ({exc})") from None
        finally:
            src.close()
        if not found:
            raise NoMember(f"no folder {prefix!r} in {label}")
        yield sink.take()  # the end-of-archive blocks, written as the writer closed

    return prefix, gen()


def unpack_tree(tar: Path, dest: Path) -> None:
    """Unpack a tree made by `iter_tree` into `dest`, checking every name again (the
    tar came from the cache, but a cache is a file system anyone may have written)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tar, mode="r:*") as t:
            for info in t:
                if not safe_member_name(info.name) or not (
                        info.isfile() or info.isdir()
                        or (info.issym() and _inside(info.name, info.linkname))):
                    raise ArchiveError(f"{tar.name}: refusing {info.name!r}")
                target = dest / info.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if info.isdir():
                    target.mkdir(exist_ok=True)
                elif info.issym():
                    target.symlink_to(info.linkname)
                else:
                    src = t.extractfile(info)
                    assert src is not None
                    with src, target.open("wb") as out:
                        while block := src.read(CHUNK):
                            out.write(block)
    except tarfile.TarError as exc:
        raise ArchiveError(f"{tar.name}: not a readable tar archive ({exc})") from None
