"""Kernels and EFI applications by their headers: Linux bzImage (its setup header),
arm64 and RISC-V Images, ELF (e_machine, Multiboot, PVH), PE/COFF EFI applications.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .detected import Detected, Source, human

ELF_MACHINES = {3: "i386", 62: "x86_64", 183: "aarch64", 243: "riscv64", 21: "ppc64", 20: "ppc",
                40: "arm", 8: "mips", 22: "s390x", 2: "sparc", 43: "sparc64", 258: "loongarch64"}
PE_MACHINES = {0x14C: "i386", 0x8664: "x86_64", 0xAA64: "aarch64", 0x1C2: "arm", 0x1C4: "arm",
               0x5064: "riscv64", 0x5032: "riscv32", 0x200: "ia64", 0x6264: "loongarch64"}
PE_SUBSYSTEMS = {10: "EFI application", 11: "EFI boot-service driver",
                 12: "EFI runtime driver", 13: "EFI ROM image"}


def bzimage(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
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


def riscv_or_arm64(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    magic = head[0x38:0x3C]
    if magic not in (b"ARM\x64", b"RSC\x05"):
        return None
    arm = magic == b"ARM\x64"
    size = struct.unpack_from("<Q", head, 16)[0]
    flags = struct.unpack_from("<Q", head, 24)[0]
    name = "arm64" if arm else "RISC-V"
    endian = "big-endian" if arm and flags & 1 else "little-endian"
    facts = [f"Linux {name} Image, {endian}, image size {human(size)}"]
    firmware = ["bios"]
    if _pe_header(head) is not None:
        facts.append("EFI stub: also a PE/COFF EFI application")
        firmware.append("uefi")
    return Detected(path, "arm64-image" if arm else "riscv-image", "kernel",
                    "aarch64" if arm else "riscv64", firmware, facts=tuple(facts))


def elf(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
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


def _pvh_note(src: Source, head: bytes, bits: int, e: str) -> bool:
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


def multiboot_raw(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    """A non-ELF kernel with a Multiboot header (the a.out kludge)."""
    mb = _multiboot(head)
    if mb is None or head[510:512] == b"\x55\xaa":
        return None
    return Detected(path, "multiboot", "kernel", "i386", ["bios"],
                    facts=(f"a {mb} header in a non-ELF file (i386 protected mode)",))


def _pe_header(head: bytes) -> tuple[int, int, bool] | None:
    """(COFF machine, subsystem, PE32+?) of a PE/COFF image, None if it is not one."""
    if head[:2] != b"MZ" or len(head) < 0x40:
        return None
    pe = struct.unpack_from("<I", head, 0x3C)[0]
    if pe + 24 + 70 > len(head) or head[pe:pe + 4] != b"PE\0\0":
        return None
    machine = struct.unpack_from("<H", head, pe + 4)[0]
    subsystem = struct.unpack_from("<H", head, pe + 24 + 68)[0]
    return machine, subsystem, struct.unpack_from("<H", head, pe + 24)[0] == 0x20B


def pe(path: Path, src: Source, head: bytes, probe: bool) -> Detected | None:
    found = _pe_header(head)
    if found is None:
        return None
    machine, subsystem, plus = found
    arch = PE_MACHINES.get(machine)
    what = PE_SUBSYSTEMS.get(subsystem) or f"program (subsystem {subsystem})"
    text = (f"{'PE32+' if plus else 'PE32'} {what} for {arch or 'an unknown CPU'} "
            f"(machine {machine:#x})")
    if subsystem != 10:
        return Detected(path, "unknown", "none", arch, [],
                        facts=(text, "not an EFI application: nothing to boot directly"))
    return Detected(path, "efi", "efi", arch, ["uefi"], facts=(text,))
