"""CDs, floppies and disks by their content: ISO 9660 and El Torito, floppy sizes and
boot sectors, MBR and GPT partition tables, disk containers (qcow2, vmdk, vdi, vhdx, vpc)
confirmed by `qemu-img info`, and the EFI loader on an EFI system partition.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import uuid
from pathlib import Path

from .detected import HEAD, PC, Detected, DetectError, Source, human, text

FLOPPIES = {163840: "160 KB", 184320: "180 KB", 327680: "320 KB", 368640: "360 KB",
            737280: "720 KB", 1228800: "1.2 MB", 1474560: "1.44 MB", 2949120: "2.88 MB"}
CONTAINERS = {b"QFI\xfb": "qcow2", b"KDMV": "vmdk", b"# Disk DescriptorFile": "vmdk",
              b"vhdxfile": "vhdx", b"conectix": "vpc"}
VDI_SIGNATURE = (0x40, b"\x7f\x10\xda\xbe")
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


def container(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    fmt = next((f for m, f in CONTAINERS.items() if head.startswith(m)), None)
    if fmt is None and head[VDI_SIGNATURE[0]:VDI_SIGNATURE[0] + 4] == VDI_SIGNATURE[1]:
        fmt = "vdi"  # the text before it differs (Oracle's, QEMU's): the signature decides
    fixed = fmt is None and src.size >= 1024 and src.read(src.size - 512, 8) == b"conectix"
    if fixed:
        fmt = "vpc"  # a fixed VHD: raw data and a footer; qemu-img probes it as raw
    if fmt is None:
        return None
    facts = [f"{fmt} disk image (by its magic)"]
    firmware, arch = ["bios", "uefi"], None
    if probe:
        facts[0] = _qemu_img_info(path, fmt, fixed)
        inner = _container_head(path, fmt)
        if inner is not None:
            seen = _disk(path, Source(None, len(inner), inner), inner, probe=False)
            if seen is not None:
                firmware, arch = seen.firmware, seen.arch
                facts += [f"inside: {fact}" for fact in seen.facts]
    return Detected(path, fmt, "disk", arch, firmware, fmt=fmt, facts=tuple(facts))


def _qemu_img_info(path: Path, fmt: str, fixed: bool = False) -> str:
    if not shutil.which("qemu-img"):
        return f"{fmt} disk image (by its magic; qemu-img is not installed to confirm it)"
    named = ["-f", fmt] if fixed else []  # otherwise qemu-img's own probe must agree
    try:
        run = subprocess.run(["qemu-img", "info", "-U", *named, "--output=json", str(path)],
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
    said = f"{fmt} (qemu-img): virtual size {human(int(info.get('virtual-size', 0)))}"
    if fixed:
        said += ", a fixed VHD (its footer at the end)"
    if info.get("backing-filename"):
        said += f", an overlay on {info['backing-filename']}"
    return said


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


def iso(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    if head[0x8001:0x8006] != b"CD001":
        return None
    label, catalog, volume_size = "", None, 0
    for n in range(16, 64):
        vd = src.read(n * 2048, 2048)
        if len(vd) < 2048 or vd[1:6] != b"CD001" or vd[0] == 255:
            break
        if vd[0] == 1:
            label = text(vd[40:72])
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
        facts.append(f"truncated: the volume is {human(volume_size)} but the file only "
                     f"{human(src.size)}")
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
        image = pycdlib.PyCdlib()
        image.open(str(path))
    except Exception:  # pycdlib raises many kinds; the ISO is an ISO all the same
        return []
    try:
        children = list(image.list_children(iso_path="/EFI/BOOT"))
    except Exception:  # no such directory
        children = []
    finally:
        image.close()
    names = [c.file_identifier().decode("ascii", "replace").split(";")[0].upper()
             for c in children]
    return [(n, EFI_LOADERS[n]) for n in names if n in EFI_LOADERS]


def gpt(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    return _disk(path, src, head, probe) if _gpt_offset(head) is not None else None


def _gpt_offset(head: bytes) -> int | None:
    return next((s for s in (512, 4096) if head[s:s + 8] == b"EFI PART"), None)


def mbr(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    return _disk(path, src, head, probe) if head[510:512] == b"\x55\xaa" else None


def _disk(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
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
        if esp is not None:
            firmware = ["uefi", "bios"] if code else ["uefi"]
        else:  # no ESP: BIOS through the MBR's code if there is any, else nothing boots it
            firmware = ["bios"] if code else ["uefi"]
    else:
        parts = _mbr_partitions(head)
        if not parts:
            if head[510:512] != b"\x55\xaa":
                return None
            facts = ["a boot sector ending 55 AA but no partition table"]
            return Detected(path, "disk", "disk", PC, ["bios"], facts=tuple(facts))
        esp = next((start * 512 for n, t, start, _, _ in parts if t == 0xEF), None)
        listed = ", ".join(f"{n}: {MBR_TYPES.get(t, f'type {t:#04x}')}"
                           f"{' (active)' if active else ''} {human(size * 512)}"
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


def _gpt_partitions(src: Source, head: bytes, sector: int) -> list[tuple[str, int]]:
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


def floppy(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
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
        oem, fs, vol = (text(head[a:b]) for a, b in ((3, 11), (0x36, 0x3E), (0x2B, 0x36)))
        if head[0x26] != 0x29:  # no extended BPB: no file system type or volume label
            fs = vol = ""
        facts.append(f"BIOS parameter block: OEM {oem!r}"
                     + (f", {fs}" if fs.startswith("FAT") else "")
                     + (f", volume {vol!r}" if vol and vol != "NO NAME" else ""))
    return Detected(path, "floppy", "floppy", PC, ["bios"], facts=tuple(facts))
