"""What an image is, told by its content (never its name), for `harness try`.

A porter hands over a file; before anything boots we say what it is, how
QEMU should boot it (CD, floppy, disk, -kernel, EFI), on which architecture
and with which firmware, and the facts seen, in words a porter reads.
Compressed files are decompressed (streamed, bounded) into a work directory
first. Disk containers (qcow2 …) are confirmed by `qemu-img info`.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from harness.images.archive import ArchiveError, open_decompressed

CHUNK = 1 << 20
HEAD = 1 << 16                 # what is read up front: MBR, GPT, ISO descriptors, kernel headers
LIMIT = 64 << 30               # a decompressed image larger than this is refused
DEPTH = 3                      # nested compression (a zip of an .img.xz) at most this deep

COMPRESSED = {b"\x1f\x8b": "gz", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zst",
              b"PK\x03\x04": "zip"}
FLOPPIES = {163840: "160 KB", 184320: "180 KB", 327680: "320 KB", 368640: "360 KB",
            737280: "720 KB", 1228800: "1.2 MB", 1474560: "1.44 MB", 2949120: "2.88 MB"}
# disk containers: magic at offset 0 -> qemu-img's format name
CONTAINERS = {b"QFI\xfb": "qcow2", b"KDMV": "vmdk", b"# Disk DescriptorFile": "vmdk",
              b"vhdxfile": "vhdx", b"conectix": "vpc"}
VDI_SIGNATURE = (0x40, b"\x7f\x10\xda\xbe")
ELF_MACHINES = {3: "i386", 62: "x86_64", 183: "aarch64", 243: "riscv64", 21: "ppc64", 20: "ppc",
                40: "arm", 8: "mips", 22: "s390x", 2: "sparc", 43: "sparc64", 258: "loongarch64"}
PE_MACHINES = {0x14C: "i386", 0x8664: "x86_64", 0xAA64: "aarch64", 0x1C2: "arm", 0x1C4: "arm",
               0x5064: "riscv64", 0x5032: "riscv32", 0x200: "ia64", 0x6264: "loongarch64"}
PE_SUBSYSTEMS = {10: "EFI application", 11: "EFI boot-service driver",
                 12: "EFI runtime driver", 13: "EFI ROM image"}
EFI_LOADERS = {"BOOTX64.EFI": "x86_64", "BOOTIA32.EFI": "i386", "BOOTAA64.EFI": "aarch64",
               "BOOTARM.EFI": "arm", "BOOTRISCV64.EFI": "riscv64"}
ELTORITO_PLATFORMS = {0: "BIOS (x86)", 1: "PowerPC", 2: "Mac", 0xEF: "UEFI"}
ELTORITO_MEDIA = {0: "no emulation", 1: "1.2 MB floppy emulation", 2: "1.44 MB floppy emulation",
                  3: "2.88 MB floppy emulation", 4: "hard disk emulation"}
MBR_TYPES = {0x01: "FAT12", 0x04: "FAT16", 0x05: "extended", 0x06: "FAT16", 0x07: "NTFS/exFAT",
             0x0B: "FAT32", 0x0C: "FAT32", 0x0E: "FAT16", 0x0F: "extended", 0x82: "Linux swap",
             0x83: "Linux", 0x8E: "Linux LVM", 0xA5: "FreeBSD", 0xA6: "OpenBSD", 0xA9: "NetBSD",
             0xBF: "Solaris", 0xEE: "GPT protective", 0xEF: "EFI system", 0x96: "ISO 9660"}
ESP = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
GPT_TYPES = {ESP: "EFI system", uuid.UUID("21686148-6449-6e6f-744e-656564454649"): "BIOS boot",
             uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4"): "Linux filesystem",
             uuid.UUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"): "Linux root (x86-64)",
             uuid.UUID("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"): "Linux swap",
             uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"): "Microsoft basic data",
             uuid.UUID("83bd6b9d-7f41-11dc-be0b-001560b84f0f"): "FreeBSD boot",
             uuid.UUID("516e7cb6-6ecf-11d6-8ff8-00022d09712b"): "FreeBSD UFS"}
# files people hand over that are not images, and what to say about them
NOT_IMAGES = ((257, b"ustar", "a tar archive, not an image: unpack it and try the image inside"),
              (0, b"070701", "a cpio archive (newc), e.g. an initramfs: pass it as --initrd"),
              (0, b"070702", "a cpio archive (newc, CRC), e.g. an initramfs: pass it as --initrd"),
              (0, b"!<arch>\ndebian-binary", "a Debian package, not an image: boot files inside"),
              (0, b"!<arch>\n", "an ar archive, not an image"))
PC = "x86_64"  # PC boot code says x86 but not its width: x86_64's QEMU runs 16/32-bit code too


class DetectError(Exception):
    """A file that cannot be read or decompressed; the message is `file: reason`."""


@dataclass(frozen=True)
class Detected:
    path: Path              # the file to boot: the input, or its decompressed copy in workdir
    kind: str               # iso | floppy | disk | qcow2 | vmdk | vdi | vhdx | vpc | multiboot
    #                         | elf | bzimage | arm64-image | riscv-image | efi | unknown
    boot: str               # cdrom | floppy | disk | kernel | efi | none
    arch: str | None        # keys of harness/data/arches.yaml; None when the content says nothing
    firmware: list[str]     # plausible firmware, preferred first
    fmt: str = "raw"        # QEMU -drive format= for disk-like kinds
    compression: str | None = None   # gz|xz|bz2|zst|zip when the input was compressed
    facts: tuple[str, ...] = ()      # what was seen, in words a porter reads


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
                return _classify(path, _Source(f, size), probe=True)
    except OSError as exc:
        raise DetectError(f"{path}: {exc.strerror or exc}") from None
    if depth <= 0:
        raise DetectError(f"{path}: compressed more than {DEPTH} times over; refusing")
    out, said = _unzip(path, workdir) if compression == "zip" else _decompress(
        path, compression, workdir)
    inner = _detect(out, workdir, depth - 1)
    facts = (f"{compression}-compressed ({said})", *inner.facts)
    return replace(inner, compression=compression, facts=facts)


class _Source:
    """Random access to the start of an image: an open file, or bytes already read."""

    def __init__(self, f: IO[bytes] | None, size: int, data: bytes = b"") -> None:
        self.f, self.size, self.data = f, size, data

    def read(self, offset: int, n: int) -> bytes:
        if self.f is None:
            return self.data[offset:offset + n]
        self.f.seek(offset)
        return self.f.read(n)


def _compression(head: bytes) -> str | None:
    for magic, kind in COMPRESSED.items():
        if head.startswith(magic):
            return kind
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bz2"
    return None


# --- decompression --------------------------------------------------------------------------

def _decompress(path: Path, kind: str, workdir: Path) -> tuple[Path, str]:
    stem = path.name.rsplit(".", 1)[0] if "." in path.name else path.name
    out = workdir / (stem if stem != path.name else f"{path.name}.out")
    try:
        src = open_decompressed(path, kind)
    except (OSError, ArchiveError) as exc:
        raise DetectError(f"{path}: {exc}") from None
    size = _copy_bounded(src, out, path, kind)
    return out, f"{_human(size)} decompressed into {out}"


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
                raise DetectError(f"{path}: member {info.filename} is {_human(info.file_size)}, "
                                  f"more than the {_human(LIMIT)} limit")
            out = workdir / (Path(info.filename).name or "member")
            size = _copy_bounded(zf.open(info), out, path, "zip")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
            lzma.LZMAError, NotImplementedError) as exc:
        raise DetectError(f"{path}: not a readable zip archive ({exc})") from None
    return out, f"member {info.filename} ({kind}, {why}), {_human(size)}, into {out}"


def _sniff(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A zip member's kind from its first bytes only (no tools, nothing written)."""
    with zf.open(info) as f:
        head = f.read(HEAD)
    if _compression(head):
        return "compressed"
    return _classify(Path(info.filename), _Source(None, info.file_size, head), probe=False).kind


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
                    raise DetectError(f"{path}: decompresses to more than {_human(LIMIT)}; "
                                      "refusing")
                dst.write(block)
        part.replace(out)
    except errors as exc:
        raise DetectError(f"{path}: {kind} data is truncated or corrupt ({exc})") from None
    finally:
        part.unlink(missing_ok=True)
    return total


# --- classification -------------------------------------------------------------------------

def _classify(path: Path, src: _Source, probe: bool) -> Detected:
    head = src.read(0, HEAD)
    if not head:
        return Detected(path, "unknown", "none", None, [], facts=("empty file (0 bytes)",))
    padded = head.ljust(4096, b"\0")  # header fields of a short file read as zeros
    try:
        for check in (_container, _iso, _bzimage, _riscv_or_arm64, _elf, _pe, _multiboot_raw,
                      _gpt, _floppy, _mbr):
            found = check(path, src, padded, probe)
            if found is not None:
                return found
    except (struct.error, ValueError) as exc:
        raise DetectError(f"{path}: a header that cannot be parsed ({exc})") from None
    return Detected(path, "unknown", "none", None, [], facts=(_unknown(head, src.size),))


def _unknown(head: bytes, size: int) -> str:
    for offset, magic, what in NOT_IMAGES:
        if head[offset:offset + len(magic)] == magic:
            return f"{size} bytes: {what}"
    if not head.strip(b"\0"):
        return f"{size} bytes, the first {_human(len(head))} all zeros: nothing to boot"
    first = head[:16]
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
    return f"{size} bytes of unrecognised content; first bytes {first.hex(' ')} ({text!r})"


def _container(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    fmt = next((f for m, f in CONTAINERS.items() if head.startswith(m)), None)
    if fmt is None and head[VDI_SIGNATURE[0]:VDI_SIGNATURE[0] + 4] == VDI_SIGNATURE[1]:
        fmt = "vdi"  # the text before it differs (Oracle's, QEMU's): the signature decides
    if fmt is None:
        return None
    facts = [f"{fmt} disk image (by its magic)"]
    firmware, arch = ["bios", "uefi"], None
    if probe:
        facts[0] = _qemu_img_info(path, fmt)
        inner = _container_head(path, fmt)
        if inner is not None:
            disk = _disk(path, _Source(None, len(inner), inner), inner, probe=False)
            if disk is not None:
                firmware, arch = disk.firmware, disk.arch
                facts += [f"inside: {fact}" for fact in disk.facts]
    return Detected(path, fmt, "disk", arch, firmware, fmt=fmt, facts=tuple(facts))


def _qemu_img_info(path: Path, fmt: str) -> str:
    if not shutil.which("qemu-img"):
        return f"{fmt} disk image (by its magic; qemu-img is not installed to confirm it)"
    try:
        run = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DetectError(f"{path}: qemu-img info failed ({exc})") from None
    if run.returncode != 0:
        reason = run.stderr.strip().splitlines()[-1:] or ["no message"]
        raise DetectError(f"{path}: looks {fmt} but qemu-img cannot open it ({reason[0]})")
    info = json.loads(run.stdout)
    seen = info.get("format")
    if seen != fmt:
        raise DetectError(f"{path}: looks {fmt} by its magic but qemu-img says {seen}")
    text = f"{fmt} (qemu-img): virtual size {_human(int(info.get('virtual-size', 0)))}"
    if info.get("backing-filename"):
        text += f", an overlay on {info['backing-filename']}"
    return text


def _container_head(path: Path, fmt: str) -> bytes | None:
    """The guest's first 64 KiB through `qemu-img dd` (None if that fails, e.g. no backing)."""
    if not shutil.which("qemu-img"):
        return None
    with tempfile.TemporaryDirectory(prefix="detect-") as tmp:
        out = Path(tmp) / "head.raw"
        try:
            run = subprocess.run(["qemu-img", "dd", "-U", "-f", fmt, "-O", "raw", f"bs={HEAD}",
                                  "count=1", f"if={path}", f"of={out}"],
                                 capture_output=True, timeout=30)
            return out.read_bytes() if run.returncode == 0 and out.exists() else None
        except (OSError, subprocess.TimeoutExpired):
            return None


def _iso(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    if head[0x8001:0x8006] != b"CD001":
        return None
    label, catalog, volume_size = "", None, 0
    for n in range(16, 64):
        vd = src.read(n * 2048, 2048)
        if len(vd) < 2048 or vd[1:6] != b"CD001" or vd[0] == 255:
            break
        if vd[0] == 1:
            label = _text(vd[40:72])
            volume_size = struct.unpack_from("<I", vd, 80)[0] * struct.unpack_from("<H", vd, 128)[0]
        elif vd[0] == 0 and vd[7:30] == b"EL TORITO SPECIFICATION":
            catalog = struct.unpack_from("<I", vd, 0x47)[0]
    facts, firmware, arch = [], [], None
    entries = _eltorito(src.read(catalog * 2048, 2048)) if catalog else []
    platforms = [p for p, _, _ in entries]
    if 0 in platforms:
        firmware.append("bios")
        arch = PC
    if 0xEF in platforms:
        firmware.append("uefi")
    said = ", ".join(dict.fromkeys(f"{ELTORITO_PLATFORMS.get(p, f'platform {p:#x}')} ({m})"
                                   for p, m, _ in entries))
    volume = f"ISO 9660 volume {label!r}"
    if catalog is None:
        facts.append(f"{volume} without an El Torito boot record: firmware will not boot it "
                     "from CD")
    elif not entries:
        facts.append(f"{volume} with an El Torito record but no bootable catalog entry")
    else:
        facts.append(f"{volume} with an El Torito catalog: {said} boot entries")
    if volume_size > src.size and src.f is not None:
        facts.append(f"truncated: the volume is {_human(volume_size)} but the file only "
                     f"{_human(src.size)}")
    if head[510:512] == b"\x55\xaa" and _mbr_partitions(head):
        facts.append("hybrid ISO (also an MBR disk)"
                     + (" with a GPT" if head[512:520] == b"EFI PART" else ""))
    if probe and src.f is not None:
        loaders = [found for p, _, rba in entries if p == 0xEF
                   for found in [_fat_efi_arch(path, rba * 2048)] if found] or _iso_loaders(path)
        for name, loader_arch in loaders:
            facts.append(f"EFI boot loader {name}: {loader_arch}")
        if loaders and arch is None:
            arch = loaders[0][1]
    return Detected(path, "iso", "cdrom", arch, firmware or ["bios"], facts=tuple(facts))


def _eltorito(cat: bytes) -> list[tuple[int, str, int]]:
    """(platform id, media, load sector) of each bootable entry in an El Torito catalog."""
    if len(cat) < 64 or cat[0] != 1 or cat[30:32] != b"\x55\xaa":
        return []
    out: list[tuple[int, str, int]] = []

    def entry(platform: int, off: int) -> None:
        if cat[off] == 0x88:
            media = ELTORITO_MEDIA.get(cat[off + 1] & 0x0F, "unknown media")
            out.append((platform, media, struct.unpack_from("<I", cat, off + 8)[0]))

    entry(cat[1], 32)
    off, last = 64, False
    while off + 32 <= len(cat) and not last and cat[off] in (0x90, 0x91):
        platform, count = cat[off + 1], struct.unpack_from("<H", cat, off + 2)[0]
        last = cat[off] == 0x91
        off += 32
        for _ in range(count):
            if off + 32 > len(cat):
                break
            entry(platform, off)
            off += 32
            while off + 32 <= len(cat) and cat[off] == 0x44:  # section entry extensions
                off += 32
    return out


def _iso_loaders(path: Path) -> list[tuple[str, str]]:
    """(name, arch) of the removable-media EFI loaders in the ISO's own /EFI/BOOT."""
    try:
        import pycdlib
        iso = pycdlib.PyCdlib()
        iso.open(str(path))
    except Exception:
        return []
    try:
        children = list(iso.list_children(iso_path="/EFI/BOOT"))
    except Exception:
        children = []
    finally:
        iso.close()
    names = [c.file_identifier().decode("ascii", "replace").split(";")[0].upper()
             for c in children]
    return [(n, EFI_LOADERS[n]) for n in names if n in EFI_LOADERS]


def _bzimage(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    if head[0x202:0x206] != b"HdrS":
        return None
    proto = struct.unpack_from("<H", head, 0x206)[0]
    version = ""
    ptr = struct.unpack_from("<H", head, 0x20E)[0]
    if ptr:
        raw = src.read(ptr + 0x200, 256).split(b"\0", 1)[0]
        version = raw.decode("ascii", "replace").split(" ", 1)[0]
    x64 = proto >= 0x20C and bool(struct.unpack_from("<H", head, 0x236)[0] & 1)
    big = head[0x211] & 1
    text = (f"Linux {'bzImage' if big else 'zImage'} {version} (boot protocol "
            f"{proto >> 8}.{proto & 0xFF}), {'64-bit entry' if x64 else 'no 64-bit entry'}")
    facts, firmware = [text.replace("  ", " ")], ["bios"]
    if _pe_header(head) is not None:
        facts.append("EFI stub: also a PE/COFF EFI application")
        firmware.append("uefi")
    return Detected(path, "bzimage", "kernel", "x86_64" if x64 else "i386", firmware,
                    facts=tuple(facts))


def _riscv_or_arm64(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    magic = head[0x38:0x3C]
    if magic not in (b"ARM\x64", b"RSC\x05"):
        return None
    arm = magic == b"ARM\x64"
    size = struct.unpack_from("<Q", head, 16)[0]
    flags = struct.unpack_from("<Q", head, 24)[0]
    name = "arm64" if arm else "RISC-V"
    endian = "big-endian" if arm and flags & 1 else "little-endian"
    facts = [f"Linux {name} Image, {endian}, image size {_human(size)}"]
    firmware = ["bios"]
    if head[:2] == b"MZ" and _pe_header(head) is not None:
        facts.append("EFI stub: also a PE/COFF EFI application")
        firmware.append("uefi")
    return Detected(path, "arm64-image" if arm else "riscv-image", "kernel",
                    "aarch64" if arm else "riscv64", firmware, facts=tuple(facts))


def _elf(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    if head[:4] != b"\x7fELF" or src.size < 52:  # shorter than an ELF header: not one
        return None
    bits = {1: 32, 2: 64}.get(head[4], 0)
    big = head[5] == 2
    e = ">" if big else "<"
    etype, machine = struct.unpack_from(f"{e}HH", head, 16)
    arch = ELF_MACHINES.get(machine)
    if arch == "ppc64" and not big:
        arch = "ppc64le"
    if arch == "riscv64" and bits == 32:
        arch = "riscv32"
    what = {1: "relocatable (an object or module, not bootable by itself)", 2: "executable",
            3: "shared object / PIE", 4: "core dump"}.get(etype, f"type {etype}")
    text = (f"ELF {bits}-bit {'MSB' if big else 'LSB'} {what} for "
            f"{arch or 'unknown machine'} (e_machine {machine})")
    mb = _multiboot(head)
    if mb:
        return Detected(path, "multiboot", "kernel", arch, ["bios"],
                        facts=(f"{text} with a {mb} header",))
    boot = "kernel" if etype in (2, 3) else "none"
    facts = [text]
    if boot == "kernel" and _pvh_note(src, head, bits, e):
        facts.append("a PVH entry note (Xen ELF note 18): QEMU's -kernel boots it directly")
    elif arch in ("i386", "x86_64") and boot == "kernel":
        facts.append("no Multiboot header: QEMU's -kernel boots an x86 ELF only through "
                     "Multiboot or a PVH note")
    return Detected(path, "elf", boot, arch, ["bios"] if boot == "kernel" else [],
                    facts=tuple(facts))


def _pvh_note(src: _Source, head: bytes, bits: int, e: str) -> bool:
    """Whether a PT_NOTE segment holds Xen's PHYS32_ENTRY note (what QEMU's PVH boot needs)."""
    if bits == 64:
        phoff, phsize, phnum = (struct.unpack_from(f"{e}Q", head, 32)[0],
                                *struct.unpack_from(f"{e}HH", head, 54))
    else:
        phoff, phsize, phnum = (struct.unpack_from(f"{e}I", head, 28)[0],
                                *struct.unpack_from(f"{e}HH", head, 42))
    if phsize < (56 if bits == 64 else 32):
        return False
    table = src.read(phoff, phsize * min(phnum, 64))
    for i in range(0, len(table) - phsize + 1, phsize):
        if struct.unpack_from(f"{e}I", table, i)[0] != 4:  # PT_NOTE
            continue
        if bits == 64:
            offset, size = struct.unpack_from(f"{e}Q", table, i + 8)[0], \
                struct.unpack_from(f"{e}Q", table, i + 32)[0]
        else:
            offset, size = struct.unpack_from(f"{e}I", table, i + 4)[0], \
                struct.unpack_from(f"{e}I", table, i + 16)[0]
        notes = src.read(offset, min(size, 1 << 16))
        pos = 0
        while pos + 12 <= len(notes):
            namesz, descsz, ntype = struct.unpack_from(f"{e}III", notes, pos)
            name = notes[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + (namesz + 3 & ~3) + (descsz + 3 & ~3)
    return False


def _multiboot(head: bytes) -> str | None:
    """'Multiboot' / 'Multiboot2' when a valid header sits where the specs say."""
    for off in range(0, min(len(head), 8192) - 11, 4):
        magic, flags, check = struct.unpack_from("<III", head, off)
        if magic == 0x1BADB002 and (magic + flags + check) & 0xFFFFFFFF == 0:
            return "Multiboot"
    for off in range(0, min(len(head), 32768) - 15, 8):
        magic, arch, length, check = struct.unpack_from("<IIII", head, off)
        if magic == 0xE85250D6 and (magic + arch + length + check) & 0xFFFFFFFF == 0:
            return "Multiboot2"
    return None


def _multiboot_raw(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    """A non-ELF kernel with a Multiboot header (the a.out kludge)."""
    mb = _multiboot(head)
    if mb is None or head[510:512] == b"\x55\xaa":
        return None
    return Detected(path, "multiboot", "kernel", "i386", ["bios"],
                    facts=(f"a {mb} header in a non-ELF file (i386 protected mode)",))


def _pe_header(head: bytes) -> tuple[int, int] | None:
    """(COFF machine, subsystem) of a PE/COFF image, None if it is not one."""
    if head[:2] != b"MZ" or len(head) < 0x40:
        return None
    pe = struct.unpack_from("<I", head, 0x3C)[0]
    if pe + 24 + 70 > len(head) or head[pe:pe + 4] != b"PE\0\0":
        return None
    machine = struct.unpack_from("<H", head, pe + 4)[0]
    subsystem = struct.unpack_from("<H", head, pe + 24 + 68)[0]
    return machine, subsystem


def _pe(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    found = _pe_header(head)
    if found is None:
        return None
    machine, subsystem = found
    arch = PE_MACHINES.get(machine)
    kind = "PE32+" if struct.unpack_from("<H", head, struct.unpack_from("<I", head, 0x3C)[0]
                                         + 24)[0] == 0x20B else "PE32"
    what = PE_SUBSYSTEMS.get(subsystem)
    text = f"{kind} {what or f'program (subsystem {subsystem})'} for {arch or 'an unknown CPU'}" \
           f" (machine {machine:#x})"
    if subsystem != 10:
        return Detected(path, "unknown", "none", arch, [],
                        facts=(text, "not an EFI application: nothing to boot directly"))
    return Detected(path, "efi", "efi", arch, ["uefi"], facts=(text,))


def _gpt(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    return _disk(path, src, head, probe) if _gpt_offset(head) is not None else None


def _gpt_offset(head: bytes) -> int | None:
    return next((s for s in (512, 4096) if head[s:s + 8] == b"EFI PART"), None)


def _mbr(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    return _disk(path, src, head, probe) if head[510:512] == b"\x55\xaa" else None


def _disk(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    """An MBR or GPT disk: its partitions, which firmware can boot it, the ESP's loader."""
    code = bool(head[:440].strip(b"\0")) and head[510:512] == b"\x55\xaa"
    sector = _gpt_offset(head)
    esp: int | None = None
    if sector is not None:
        parts = _gpt_partitions(src, head, sector)
        esp = next((start for name, start in parts if name == "EFI system"), None)
        listed = ", ".join(name for name, _ in parts) or "no partitions"
        facts = [f"GPT disk ({sector}-byte sectors): {listed}"]
        if code:
            facts.append("protective MBR with boot code (BIOS can boot it too)")
        firmware = (["uefi", "bios"] if code else ["uefi"]) if esp is not None or not code \
            else ["bios"]
    else:
        parts = _mbr_partitions(head)
        if not parts:
            if head[510:512] != b"\x55\xaa":
                return None
            facts = ["a boot sector ending 55 AA but no partition table"]
            return Detected(path, "disk", "disk", PC, ["bios"], facts=tuple(facts))
        esp = next((start * 512 for n, t, start, _, _ in parts if t == 0xEF), None)
        listed = ", ".join(f"{n}: {MBR_TYPES.get(t, f'type {t:#04x}')}"
                           f"{' (active)' if active else ''} {_human(size * 512)}"
                           for n, t, _, size, active in parts)
        facts = [f"MBR disk: {listed}"]
        facts.append("boot code in the MBR" if code else "no boot code in the MBR")
        firmware = (["bios", "uefi"] if code else ["uefi"]) if esp is not None else ["bios"]
    arch = PC if code else None
    if esp is not None:
        facts.append(f"EFI system partition at byte {esp}")
        loader = _fat_efi_arch(path, esp) if probe and src.f is not None else None
        if loader:
            facts.append(f"EFI boot loader {loader[0]}: {loader[1]}")
            arch = loader[1]
    return Detected(path, "disk", "disk", arch, firmware, facts=tuple(facts))


def _mbr_partitions(head: bytes) -> list[tuple[int, int, int, int, bool]]:
    """(number, type, start sector, sectors, active) of a plausible MBR partition table."""
    out = []
    for n in range(4):
        entry = head[446 + 16 * n:462 + 16 * n]
        if len(entry) < 16 or entry[0] not in (0, 0x80):
            return []
        ptype, start, size = entry[4], *struct.unpack_from("<II", entry, 8)
        if ptype and size:
            out.append((n + 1, ptype, start, size, entry[0] == 0x80))
    return out


def _gpt_partitions(src: _Source, head: bytes, sector: int) -> list[tuple[str, int]]:
    """(type name, start byte) of each used GPT entry (at most 128 read)."""
    lba, count, size = struct.unpack_from("<QII", head, sector + 72)
    if not 128 <= size <= 4096 or lba * sector > (64 << 20):
        return []
    table = src.read(lba * sector, min(count, 128) * size)
    out = []
    for off in range(0, len(table) - size + 1, size):
        raw = table[off:off + 16]
        if raw.strip(b"\0"):
            kind = uuid.UUID(bytes_le=raw)
            start = struct.unpack_from("<Q", table, off + 32)[0]
            out.append((GPT_TYPES.get(kind, str(kind)), start * sector))
    return out


def _fat_efi_arch(path: Path, offset: int) -> tuple[str, str] | None:
    """The removable-media loader in a FAT file system at `offset`, listed by mtools."""
    if not shutil.which("mdir"):
        return None
    try:
        run = subprocess.run(["mdir", "-b", "-i", f"{path}@@{offset}", "::/EFI/BOOT"],
                             capture_output=True, text=True, timeout=10,
                             env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in run.stdout.splitlines():
        name = line.rsplit("/", 1)[-1].strip().upper()
        if name in EFI_LOADERS:
            return name, EFI_LOADERS[name]
    return None


def _floppy(path: Path, src: _Source, head: bytes, probe: bool) -> Detected | None:
    label = FLOPPIES.get(src.size)
    if label is None:
        return None
    sig = head[510:512] == b"\x55\xaa"
    jump = (head[0] == 0xEB and head[2] == 0x90) or head[0] == 0xE9
    start = f"{src.size} bytes: a {label} floppy"
    if not sig and not jump:
        what = "all zeros" if not head.strip(b"\0") else "no FAT BPB jump"
        return Detected(path, "floppy", "floppy", None, ["bios"],
                        facts=(f"{start}; no boot signature ({what}): the BIOS will say it is "
                               "not a bootable disk",))
    facts = [f"{start}; boot sector " + ("ends 55 AA" if sig else
                                         "starts with a FAT BPB jump but lacks 55 AA")]
    if jump:
        oem, fs, vol = (_text(head[a:b]) for a, b in ((3, 11), (0x36, 0x3E), (0x2B, 0x36)))
        if head[0x26] != 0x29:  # no extended BPB: no file system type or volume label
            fs = vol = ""
        facts.append(f"FAT BPB: OEM {oem!r}" + (f", {fs}" if fs.startswith("FAT") else "")
                     + (f", volume {vol!r}" if vol and vol != "NO NAME" else ""))
    return Detected(path, "floppy", "floppy", PC, ["bios"], facts=tuple(facts))


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip(" \0")


def _human(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
