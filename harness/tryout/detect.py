"""What an image is, told by its content (never its name), for `harness try`.

A porter hands over a file; before anything boots we say what it is, how
QEMU should boot it (CD, floppy, disk, -kernel, EFI), on which architecture
and with which firmware, and the facts seen, in words a porter reads.
Compressed files are decompressed (streamed, bounded) into a work directory
first. Disk containers (qcow2 …) are confirmed by `qemu-img info`.
"""

from __future__ import annotations

import lzma
import os
import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path
from typing import IO

from harness import knowledge
from harness.images.archive import ArchiveError, open_decompressed

from . import kernels, media
from .detected import HEAD, Detected, DetectError, Source, human

__all__ = ["DetectError", "Detected", "detect"]

CHUNK = 1 << 20
LIMIT = 64 << 30               # a decompressed image larger than this is refused
DEPTH = 3                      # nested compression (a zip of an .img.xz) at most this deep

COMPRESSED = {b"\x1f\x8b": "gz", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zst",
              b"PK\x03\x04": "zip"}
# files people hand over that are not images, and what to say about them
NOT_IMAGES = ((257, b"ustar", "a tar archive, not an image: unpack it and try the image inside"),
              (0, b"070701", "a cpio archive (newc), e.g. an initramfs: pass it as --initrd"),
              (0, b"070702", "a cpio archive (newc, CRC), e.g. an initramfs: pass it as --initrd"),
              (0, b"!<arch>\ndebian-binary", "a Debian package, not an image: boot files inside"),
              (0, b"!<arch>\n", "an ar archive, not an image"))


def detect(path: Path, workdir: Path) -> Detected:
    """Say what `path` is; compressed inputs are decompressed into `workdir` first."""
    return _detect(Path(path), Path(workdir), DEPTH)


def _detect(path: Path, workdir: Path, depth: int) -> Detected:
    if path.is_dir():
        raise DetectError(f"{path}: is a directory, not an image file")
    try:
        with path.open("rb") as f:
            head = f.read(HEAD)
            size = os.fstat(f.fileno()).st_size
            compression = _compression(head)
            if compression is None:
                return _classify(path, Source(f, size), probe=True)
    except OSError as exc:
        raise DetectError(f"{path}: {exc.strerror or exc}") from None
    if depth <= 0:
        raise DetectError(f"{path}: compressed more than {DEPTH} times over; refusing")
    out, said = _unzip(path, workdir) if compression == "zip" else _decompress(
        path, compression, workdir)
    inner = _detect(out, workdir, depth - 1)
    if inner.path != out:  # decompressed once more: this middle copy is not needed
        out.unlink(missing_ok=True)
    facts = (f"{compression}-compressed ({said})", *inner.facts)
    return replace(inner, compression=compression, facts=facts)


def _compression(head: bytes) -> str | None:
    for magic, kind in COMPRESSED.items():
        if head.startswith(magic):
            return kind
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bz2"
    return None


# --- decompression ---------------------------------------------------------------------------

def _decompress(path: Path, kind: str, workdir: Path) -> tuple[Path, str]:
    stem = path.name.rsplit(".", 1)[0]
    out = _fresh(workdir / (stem if stem and stem != path.name else f"{path.name}.out"), path)
    try:
        src = open_decompressed(path, kind)
    except (OSError, ArchiveError) as exc:
        raise DetectError(f"{path}: {exc}") from None
    size = _copy_bounded(src, out, path, kind)
    return out, f"{human(size)} decompressed into {out}"


def _unzip(path: Path, workdir: Path) -> tuple[Path, str]:
    """The single bootable member of a zip, or the largest bootable one if several."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if not members:
                raise DetectError(f"{path}: an empty zip archive")
            sniffed = [(i, _sniff(zf, i)) for i in members]
            bootable = [(i, k) for i, k in sniffed if k not in ("unknown",)]
            pool = bootable or sniffed
            info, kind = max(pool, key=lambda p: p[0].file_size)
            why = ("its only bootable member" if len(bootable) == 1 else
                   f"the largest of {len(bootable)} bootable members" if bootable else
                   f"the largest of {len(members)} members, none recognised")
            if info.file_size > LIMIT:
                raise DetectError(f"{path}: member {info.filename} is {human(info.file_size)}, "
                                  f"more than the {human(LIMIT)} limit")
            out = _fresh(workdir / (Path(info.filename).name or "member"), path)
            size = _copy_bounded(zf.open(info), out, path, "zip")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
            lzma.LZMAError, NotImplementedError, RuntimeError) as exc:  # RuntimeError: encrypted
        raise DetectError(f"{path}: not a readable zip archive ({exc})") from None
    return out, f"member {info.filename} ({kind}, {why}), {human(size)}, into {out}"


def _fresh(out: Path, source: Path) -> Path:
    """`out`, unless that is the input itself (a zip in the workdir holding its own name)."""
    return out.with_name(out.name + ".out") if out.resolve() == source.resolve() else out


def _sniff(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A zip member's kind from its first bytes only (no tools, nothing written)."""
    with zf.open(info) as f:
        head = f.read(HEAD)
    if _compression(head):
        return "compressed"
    return _classify(Path(info.filename), Source(None, info.file_size, head), probe=False).kind


def _copy_bounded(src: IO[bytes], out: Path, path: Path, kind: str) -> int:
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error,
                                               ValueError, zipfile.BadZipFile)
    try:
        import zstandard
        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    total = 0
    try:
        with src, part.open("wb") as dst:
            while block := src.read(CHUNK):
                total += len(block)
                if total > LIMIT:
                    raise DetectError(f"{path}: decompresses to more than {human(LIMIT)}; "
                                      "refusing")
                dst.write(block)
        part.replace(out)
    except errors as exc:
        raise DetectError(f"{path}: {kind} data is truncated or corrupt ({exc})") from None
    finally:
        part.unlink(missing_ok=True)
    return total


# --- classification -------------------------------------------------------------------------

def _classify(path: Path, src: Source, probe: bool) -> Detected:
    head = src.read(0, HEAD)
    if not head:
        return Detected(path, "unknown", "none", None, [], facts=("empty file (0 bytes)",))
    padded = head.ljust(4096, b"\0")  # header fields of a short file read as zeros
    try:
        for check in (media.container, media.iso, kernels.bzimage, kernels.riscv_or_arm64,
                      kernels.elf, kernels.pe, kernels.multiboot_raw, media.gpt, media.floppy,
                      media.mbr):
            found = check(path, src, padded, probe)
            if found is not None:
                return _known_arch(found)
    except (struct.error, ValueError) as exc:
        raise DetectError(f"{path}: a header that cannot be parsed ({exc})") from None
    return Detected(path, "unknown", "none", None, [], facts=(_unknown(head, src.size),))


def _known_arch(found: Detected) -> Detected:
    """Say so when the content names an architecture the harness has no QEMU setup for."""
    if found.arch is None or found.arch in knowledge.arches():
        return found
    return replace(found, facts=(*found.facts, f"{found.arch} is not in harness/data/arches.yaml:"
                                 " the harness cannot boot it yet"))


def _unknown(head: bytes, size: int) -> str:
    for offset, magic, what in NOT_IMAGES:
        if head[offset:offset + len(magic)] == magic:
            return f"{size} bytes: {what}"
    if not head.strip(b"\0"):
        return f"{size} bytes, the first {human(len(head))} all zeros: nothing to boot"
    first = head[:16]
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
    return f"{size} bytes of unrecognised content; first bytes {first.hex(' ')} ({text!r})"
