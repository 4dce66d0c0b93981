"""`harness try`'s image detection: every kind built here, by content, never by name (#17)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import struct
import subprocess
import uuid
import zipfile
import zlib
from pathlib import Path

import pytest

from harness.tryout import detect as detect_module
from harness.tryout.detect import DetectError, detect

needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img missing")
needs_mtools = pytest.mark.skipif(not shutil.which("mformat"), reason="mtools missing")
needs_xorriso = pytest.mark.skipif(not shutil.which("xorriso"), reason="xorriso missing")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    out = tmp_path / "work"
    out.mkdir()
    return out


def facts(found) -> str:
    return " | ".join(found.facts)


# --- builders -----------------------------------------------------------------------------

def boot_sector(code: bytes = b"\xfa\xf4") -> bytearray:
    sector = bytearray(512)
    sector[:len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return sector


def mbr_disk(path: Path, parts: list[tuple[int, int, int, bool]], size: int = 4 << 20,
             code: bytes = b"\xfa\xf4") -> Path:
    """A raw disk with an MBR: parts are (type, start sector, sectors, active)."""
    sector = boot_sector(code)
    for n, (ptype, start, count, active) in enumerate(parts):
        entry = struct.pack("<B3sB3sII", 0x80 if active else 0, b"\0\0\0", ptype, b"\0\0\0",
                            start, count)
        sector[446 + 16 * n:462 + 16 * n] = entry
    with path.open("wb") as f:
        f.write(sector)
        f.truncate(size)
    return path


ESP = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
LINUX = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")


def gpt_disk(path: Path, parts: list[tuple[uuid.UUID, int, int]], code: bool,
             size: int = 8 << 20) -> Path:
    """A raw GPT disk (written by hand: header at LBA 1, 128 entries from LBA 2)."""
    mbr = boot_sector(b"\xeb\x63\x90" if code else b"")
    if not code:
        mbr[:440] = bytes(440)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\2", 0xEE, b"\xff\xff\xff", 1,
                               size // 512 - 1)
    entries = bytearray(128 * 128)
    for n, (ptype, first, last) in enumerate(parts):
        entries[n * 128:n * 128 + 48] = ptype.bytes_le + uuid.uuid4().bytes_le + \
            struct.pack("<QQ", first, last)
    header = bytearray(512)
    struct.pack_into("<8sIIIIQQQQ16sQIII", header, 0, b"EFI PART", 0x10000, 92, 0, 0, 1,
                     size // 512 - 1, 34, size // 512 - 34, uuid.uuid4().bytes_le, 2, 128, 128,
                     zlib.crc32(entries))
    struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:92])))
    with path.open("wb") as f:
        f.write(mbr + header + entries)
        f.truncate(size)
    return path


def fat_with_loader(image: Path, offset: int, loader: str) -> None:
    """A FAT file system at `offset` in `image` holding /EFI/BOOT/<loader>."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    target = f"{image}@@{offset}"
    subprocess.run(["mformat", "-i", target, "-T", "4096", "-h", "2", "-s", "32", "::"],
                   check=True, env=env, capture_output=True)
    subprocess.run(["mmd", "-i", target, "::/EFI", "::/EFI/BOOT"], check=True, env=env)
    stub = image.parent / loader
    stub.write_bytes(pe_image(0xAA64 if "AA64" in loader else 0x8664))
    subprocess.run(["mcopy", "-i", target, str(stub), f"::/EFI/BOOT/{loader}"], check=True,
                   env=env)


def pe_image(machine: int, subsystem: int = 10, plus: bool = True) -> bytes:
    data = bytearray(1024)
    data[:2] = b"MZ"
    struct.pack_into("<I", data, 0x3C, 0x80)
    data[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HH", data, 0x84, machine, 1)
    struct.pack_into("<H", data, 0x98, 0x20B if plus else 0x10B)
    struct.pack_into("<H", data, 0x98 + 68, subsystem)
    return bytes(data)


def elf(machine: int, bits: int = 32, multiboot: int | None = None, etype: int = 2) -> bytes:
    data = bytearray(16384)
    data[:4] = b"\x7fELF"
    data[4], data[5], data[6] = (1 if bits == 32 else 2), 1, 1
    struct.pack_into("<HH", data, 16, etype, machine)
    if multiboot == 1:
        struct.pack_into("<III", data, 0x1000, 0x1BADB002, 3, (-(0x1BADB002 + 3)) & 0xFFFFFFFF)
    elif multiboot == 2:
        struct.pack_into("<IIII", data, 0x1000, 0xE85250D6, 0, 24,
                         (-(0xE85250D6 + 24)) & 0xFFFFFFFF)
    return bytes(data)


def linux_image(magic: bytes, flags: int = 0) -> bytes:
    data = bytearray(4096)
    struct.pack_into("<QQQ", data, 8, 0x80000, 0x200000, flags)
    data[0x38:0x3C] = magic
    return bytes(data)


def bzimage_header(protocol: int, xloadflags: int, version: bytes) -> bytes:
    data = bytearray(0x4000)
    data[0x1F1] = 4
    data[510:512] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, protocol)
    struct.pack_into("<H", data, 0x20E, 0x1000)  # version string at 0x1000 + 0x200
    data[0x211] = 1
    struct.pack_into("<H", data, 0x236, xloadflags)
    data[0x1200:0x1200 + len(version)] = version
    return bytes(data)


def iso(tmp: Path, name: str, *, bios: bool, efi_loader: str | None, hybrid: bool = False,
        label: str = "TESTISO") -> Path:
    root = tmp / f"{name}-root"
    (root / "boot").mkdir(parents=True)
    args = ["xorriso", "-as", "mkisofs", "-V", label]
    if hybrid:
        mbr = tmp / "mbr.bin"
        mbr.write_bytes(b"\xfa\xeb\xfe" + bytes(509))
        args += ["-isohybrid-mbr", str(mbr)]
    if bios:
        (root / "boot" / "bios.bin").write_bytes(b"\xfa\xf4" + bytes(2046))
        args += ["-b", "boot/bios.bin", "-no-emul-boot", "-boot-load-size", "4"]
    if efi_loader:
        efi = root / "boot" / "efi.img"
        efi.write_bytes(b"")
        with efi.open("wb") as f:
            f.truncate(2 << 20)
        fat_with_loader(efi, 0, efi_loader)
        args += (["-eltorito-alt-boot"] if bios else []) + ["-e", "boot/efi.img",
                                                            "-no-emul-boot"]
        if hybrid:
            args += ["-isohybrid-gpt-basdat"]
    out = tmp / name
    subprocess.run([*args, "-o", str(out), str(root)], check=True, capture_output=True)
    return out


# --- floppies and disks -------------------------------------------------------------------

@needs_mtools
def test_fat_floppy_is_a_floppy_whatever_its_name(tmp_path, work):
    image = tmp_path / "looks-like.iso"
    subprocess.run(["mformat", "-i", str(image), "-C", "-f", "1440", "-v", "PORTER", "::"],
                   check=True, capture_output=True)
    found = detect(image, work)
    assert (found.kind, found.boot, found.firmware, found.arch) == \
        ("floppy", "floppy", ["bios"], "x86_64")
    assert found.path == image and found.compression is None
    assert "1474560 bytes: a 1.44 MB floppy; boot sector ends 55 AA" in found.facts
    assert "FAT12" in facts(found) and "'PORTER'" in facts(found)


@pytest.mark.parametrize("size,label", [(163840, "160 KB"), (368640, "360 KB"),
                                        (737280, "720 KB"), (1228800, "1.2 MB"),
                                        (2949120, "2.88 MB")])
def test_floppy_sizes(tmp_path, work, size, label):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(boot_sector(b"\xeb\x3c\x90MSDOS5.0")).ljust(size, b"\0"))
    found = detect(image, work)
    assert found.kind == "floppy"
    assert f"a {label} floppy" in facts(found)


def test_zero_floppy_is_a_floppy_without_boot_signature(tmp_path, work):
    image = tmp_path / "zero.img"
    image.write_bytes(bytes(1474560))
    found = detect(image, work)
    assert (found.kind, found.boot, found.arch) == ("floppy", "floppy", None)
    assert "no boot signature" in facts(found)
    assert "not a bootable disk" in facts(found)


def test_mbr_disk_lists_its_partitions(tmp_path, work):
    image = mbr_disk(tmp_path / "disk.bin", [(0x83, 2048, 4096, True), (0x82, 6144, 2048, False)])
    found = detect(image, work)
    assert (found.kind, found.boot, found.fmt, found.firmware) == ("disk", "disk", "raw", ["bios"])
    assert found.arch == "x86_64"
    assert "MBR disk: 1: Linux (active) 2 MiB, 2: Linux swap 1 MiB" in found.facts
    assert "boot code in the MBR" in found.facts


def test_mbr_disk_with_an_esp_offers_uefi_too(tmp_path, work):
    image = mbr_disk(tmp_path / "disk.bin", [(0xEF, 2048, 4096, False)])
    assert detect(image, work).firmware == ["bios", "uefi"]
    bare = mbr_disk(tmp_path / "bare.bin", [(0xEF, 2048, 4096, False)], code=b"")
    found = detect(bare, work)
    assert found.firmware == ["uefi"] and "no boot code in the MBR" in found.facts


def test_gpt_disk_with_esp_and_boot_code(tmp_path, work):
    image = gpt_disk(tmp_path / "gpt.raw", [(ESP, 2048, 6143), (LINUX, 6144, 16000)], code=True)
    found = detect(image, work)
    assert (found.kind, found.boot, found.firmware) == ("disk", "disk", ["uefi", "bios"])
    assert "GPT disk (512-byte sectors): EFI system, Linux filesystem" in found.facts
    assert "EFI system partition at byte 1048576" in found.facts


def test_gpt_disk_without_boot_code_is_uefi_only(tmp_path, work):
    image = gpt_disk(tmp_path / "gpt.raw", [(ESP, 2048, 6143)], code=False)
    found = detect(image, work)
    assert found.firmware == ["uefi"]
    assert found.arch is None


@needs_mtools
def test_gpt_esp_loader_tells_the_arch(tmp_path, work):
    image = gpt_disk(tmp_path / "gpt.raw", [(ESP, 2048, 14000)], code=False)
    fat_with_loader(image, 2048 * 512, "BOOTAA64.EFI")
    found = detect(image, work)
    assert found.arch == "aarch64"
    assert "EFI boot loader BOOTAA64.EFI: aarch64" in found.facts


# --- disk containers through qemu-img ----------------------------------------------------

@needs_qemu_img
def test_qcow2_and_its_overlay(tmp_path, work):
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "2G"], check=True)
    found = detect(base, work)
    assert (found.kind, found.boot, found.fmt) == ("qcow2", "disk", "qcow2")
    assert "qcow2 (qemu-img): virtual size 2 GiB" in found.facts
    overlay = tmp_path / "overlay.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(overlay)], check=True)
    found = detect(overlay, work)
    assert found.kind == "qcow2"
    assert f"an overlay on {base}" in facts(found)


@needs_qemu_img
@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vdi", "vhdx", "vpc"])
def test_containers_converted_from_a_gpt_disk_say_what_is_inside(tmp_path, work, fmt):
    raw = gpt_disk(tmp_path / "gpt.raw", [(ESP, 2048, 6143)], code=True)
    out = tmp_path / "disk.bin"   # the name says nothing; the magic does
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(out)],
                   check=True)
    found = detect(out, work)
    assert (found.kind, found.fmt, found.boot) == (fmt, fmt, "disk")
    assert facts(found).startswith(f"{fmt} (qemu-img): virtual size")
    assert found.firmware == ["uefi", "bios"]
    assert "inside: GPT disk (512-byte sectors): EFI system" in found.facts


@needs_qemu_img
def test_fixed_vhd_is_vpc_by_its_footer(tmp_path, work):
    raw = mbr_disk(tmp_path / "disk.raw", [(0x83, 2048, 4096, True)])
    out = tmp_path / "fixed.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed",
                    str(raw), str(out)], check=True)
    found = detect(out, work)
    assert (found.kind, found.fmt, found.firmware) == ("vpc", "vpc", ["bios"])
    assert "a fixed VHD (its footer at the end)" in found.facts[0]
    assert "inside: MBR disk: 1: Linux (active) 2 MiB" in found.facts


@needs_qemu_img
def test_a_broken_qcow2_is_a_detect_error(tmp_path, work):
    image = tmp_path / "broken.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\xff" * 508)
    with pytest.raises(DetectError, match=r"broken.qcow2: looks qcow2 but qemu-img cannot"):
        detect(image, work)


# --- ISO 9660 -----------------------------------------------------------------------------

@needs_xorriso
@needs_mtools
def test_hybrid_iso_with_bios_and_uefi_entries(tmp_path, work):
    image = iso(tmp_path, "cd.img", bios=True, efi_loader="BOOTX64.EFI", hybrid=True,
                label="FREEDOS")
    found = detect(image, work)
    assert (found.kind, found.boot, found.firmware, found.arch) == \
        ("iso", "cdrom", ["bios", "uefi"], "x86_64")
    assert found.facts[0] == ("ISO 9660 volume 'FREEDOS' with an El Torito catalog: BIOS (x86) "
                              "(no emulation), UEFI (no emulation) boot entries")
    assert "hybrid ISO (also an MBR disk) with a GPT" in found.facts
    assert "EFI boot loader BOOTX64.EFI: x86_64" in found.facts


@needs_xorriso
@needs_mtools
def test_uefi_only_arm64_iso_takes_its_arch_from_the_efi_image(tmp_path, work):
    found = detect(iso(tmp_path, "arm.iso", bios=False, efi_loader="BOOTAA64.EFI"), work)
    assert (found.firmware, found.arch) == (["uefi"], "aarch64")
    assert not any("hybrid" in f for f in found.facts)


@needs_xorriso
def test_iso_without_el_torito(tmp_path, work):
    found = detect(iso(tmp_path, "data.iso", bios=False, efi_loader=None), work)
    assert (found.kind, found.boot) == ("iso", "cdrom")
    assert "without an El Torito boot record" in facts(found)


@needs_xorriso
@needs_mtools
def test_xz_compressed_iso_is_decompressed_into_workdir(tmp_path, work):
    image = iso(tmp_path, "cd.iso", bios=True, efi_loader="BOOTX64.EFI")
    packed = tmp_path / "cd.iso.xz"
    with image.open("rb") as src, lzma.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    found = detect(packed, work)
    assert (found.kind, found.compression, found.path) == ("iso", "xz", work / "cd.iso")
    assert found.path.read_bytes() == image.read_bytes()
    assert found.facts[0].startswith("xz-compressed (")
    assert "El Torito catalog" in found.facts[1]
    assert not list(work.glob("*.part"))


# --- compression --------------------------------------------------------------------------

@pytest.mark.parametrize("kind,opener", [("gz", gzip.open), ("bz2", bz2.open),
                                         ("xz", lzma.open)])
def test_compressed_floppies(tmp_path, work, kind, opener):
    packed = tmp_path / "floppy"   # no suffix: the magic decides
    with opener(packed, "wb") as f:
        f.write(bytes(boot_sector(b"\xeb\x3c\x90")).ljust(737280, b"\0"))
    found = detect(packed, work)
    assert (found.kind, found.compression) == ("floppy", kind)
    assert found.path.parent == work and found.path.stat().st_size == 737280


def test_zstd_compressed_kernel(tmp_path, work):
    zstandard = pytest.importorskip("zstandard")
    packed = tmp_path / "Image.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(linux_image(b"ARM\x64")))
    found = detect(packed, work)
    assert (found.kind, found.compression, found.arch) == ("arm64-image", "zst", "aarch64")


def test_zip_with_one_image_among_other_files(tmp_path, work):
    packed = tmp_path / "download.zip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.TXT", "x" * 3_000_000)   # larger, but not bootable
        zf.writestr("disks/FDBOOT.IMG", bytes(boot_sector(b"\xeb\x3c\x90")).ljust(1474560, b"\0"))
    found = detect(packed, work)
    assert (found.kind, found.compression, found.path) == ("floppy", "zip", work / "FDBOOT.IMG")
    assert "member disks/FDBOOT.IMG (floppy, its only bootable member)" in found.facts[0]


def test_zip_with_several_images_takes_the_largest_and_says_so(tmp_path, work):
    packed = tmp_path / "set.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("small.img", bytes(boot_sector(b"\xeb\x3c\x90")).ljust(368640, b"\0"))
        zf.writestr("big.img", bytes(boot_sector(b"\xeb\x3c\x90")).ljust(1474560, b"\0"))
    found = detect(packed, work)
    assert found.path == work / "big.img"
    assert "the largest of 2 bootable members" in found.facts[0]


def test_nested_compression_keeps_only_the_final_copy(tmp_path, work):
    inner = tmp_path / "kernel"
    inner.write_bytes(gzip.compress(linux_image(b"RSC\x05")))
    packed = tmp_path / ".zip"   # a name with nothing before its dot
    with zipfile.ZipFile(packed, "w") as zf:
        zf.write(inner, "boot/Image.gz")
    found = detect(packed, work)
    assert (found.kind, found.compression, found.arch) == ("riscv-image", "zip", "riscv64")
    assert found.facts[0].startswith("zip-compressed (member boot/Image.gz (compressed, its only")
    assert found.facts[1].startswith("gz-compressed (")
    assert list(work.iterdir()) == [found.path] and found.path.name == "Image"


def test_encrypted_zip_is_a_detect_error(tmp_path, work):
    packed = tmp_path / "secret.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("disk.img", b"x" * 100)
    data = bytearray(packed.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the 'encrypted' flag bit everywhere
        at = data.find(sig)
        flag = at + (6 if sig == b"PK\x03\x04" else 8)
        data[flag] |= 1
    packed.write_bytes(bytes(data))
    with pytest.raises(DetectError, match=r"secret.zip: not a readable zip archive"):
        detect(packed, work)


def test_truncated_gzip_is_a_detect_error_and_leaves_nothing(tmp_path, work):
    whole = gzip.compress(os.urandom(200_000))
    broken = tmp_path / "broken.img.gz"
    broken.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DetectError, match=r"broken.img.gz: gz data is truncated or corrupt"):
        detect(broken, work)
    assert list(work.iterdir()) == []


def test_decompression_is_bounded(tmp_path, work, monkeypatch):
    monkeypatch.setattr(detect_module, "LIMIT", 1 << 20)
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(bytes(2 << 20))
    with pytest.raises(DetectError, match=r"bomb.gz: decompresses to more than 1 MiB"):
        detect(bomb, work)
    assert list(work.iterdir()) == []


# --- kernels and EFI applications ---------------------------------------------------------

def test_real_bzimage_from_the_default_guest(default_images, work):
    kernel = next(i.path for name, i in default_images.items() if "kernel" in name)
    found = detect(kernel, work)
    assert (found.kind, found.boot, found.arch) == ("bzimage", "kernel", "x86_64")
    assert "64-bit entry" in found.facts[0] and found.facts[0].startswith("Linux bzImage 6.")
    assert "boot protocol 2." in found.facts[0]


def test_bzimage_header_by_hand(tmp_path, work):
    image = tmp_path / "vmlinuz"
    image.write_bytes(bzimage_header(0x20F, 0, b"6.1.0-40-686 (debian@example) #1 SMP"))
    found = detect(image, work)
    assert (found.kind, found.arch, found.firmware) == ("bzimage", "i386", ["bios"])
    assert found.facts == ("Linux bzImage 6.1.0-40-686 (boot protocol 2.15), no 64-bit entry",)
    image.write_bytes(bzimage_header(0x20F, 1, b"6.1.0-40-amd64"))
    assert detect(image, work).arch == "x86_64"


@pytest.mark.parametrize("multiboot,word", [(1, "Multiboot"), (2, "Multiboot2")])
def test_elf_with_a_multiboot_header(tmp_path, work, multiboot, word):
    image = tmp_path / "kernel"
    image.write_bytes(elf(3, multiboot=multiboot))
    found = detect(image, work)
    assert (found.kind, found.boot, found.arch, found.firmware) == \
        ("multiboot", "kernel", "i386", ["bios"])
    assert found.facts == (f"ELF 32-bit LSB executable for i386 (e_machine 3) with a {word} "
                           "header",)


def test_multiboot_checksum_must_hold(tmp_path, work):
    data = bytearray(elf(3, multiboot=1))
    data[0x1008] ^= 1
    image = tmp_path / "kernel"
    image.write_bytes(bytes(data))
    assert detect(image, work).kind == "elf"


@pytest.mark.parametrize("machine,bits,arch", [(62, 64, "x86_64"), (183, 64, "aarch64"),
                                               (243, 64, "riscv64")])
def test_plain_elf_kernels(tmp_path, work, machine, bits, arch):
    image = tmp_path / "kernel"
    image.write_bytes(elf(machine, bits=bits))
    found = detect(image, work)
    assert (found.kind, found.boot, found.arch) == ("elf", "kernel", arch)


def test_an_arch_the_harness_cannot_run_is_said(tmp_path, work):
    image = tmp_path / "vmlinux"
    image.write_bytes(elf(8))   # MIPS
    found = detect(image, work)
    assert found.arch == "mips"
    assert "mips is not in harness/data/arches.yaml: the harness cannot boot it yet" \
        in found.facts


def test_elf_module_is_not_bootable(tmp_path, work):
    image = tmp_path / "miniroot.kmod"
    image.write_bytes(elf(3, etype=1))
    found = detect(image, work)
    assert (found.kind, found.boot) == ("elf", "none")
    assert "relocatable" in found.facts[0]


@pytest.mark.parametrize("magic,kind,arch", [(b"ARM\x64", "arm64-image", "aarch64"),
                                             (b"RSC\x05", "riscv-image", "riscv64")])
def test_linux_images(tmp_path, work, magic, kind, arch):
    image = tmp_path / "Image"
    image.write_bytes(linux_image(magic))
    found = detect(image, work)
    assert (found.kind, found.boot, found.arch, found.firmware) == (kind, "kernel", arch, ["bios"])
    assert "image size 2 MiB" in found.facts[0]


def test_arm64_image_with_efi_stub_offers_uefi(tmp_path, work):
    data = bytearray(pe_image(0xAA64))
    data.extend(bytes(4096 - len(data)))
    data[8:0x38] = linux_image(b"ARM\x64")[8:0x38]
    data[0x38:0x3C] = b"ARM\x64"
    data[0x3C:0x40] = struct.pack("<I", 0x80)
    image = tmp_path / "vmlinuz"
    image.write_bytes(bytes(data))
    found = detect(image, work)
    assert (found.kind, found.firmware) == ("arm64-image", ["bios", "uefi"])


@pytest.mark.parametrize("machine,arch", [(0x8664, "x86_64"), (0x14C, "i386"),
                                          (0xAA64, "aarch64"), (0x5064, "riscv64")])
def test_efi_application(tmp_path, work, machine, arch):
    image = tmp_path / "grubx64.bin"
    image.write_bytes(pe_image(machine))
    found = detect(image, work)
    assert (found.kind, found.boot, found.arch, found.firmware) == ("efi", "efi", arch, ["uefi"])
    assert found.facts[0] == f"PE32+ EFI application for {arch} (machine {machine:#x})"


def test_windows_program_is_not_an_efi_application(tmp_path, work):
    image = tmp_path / "setup.efi"
    image.write_bytes(pe_image(0x14C, subsystem=3, plus=False))
    found = detect(image, work)
    assert (found.kind, found.boot) == ("unknown", "none")
    assert "not an EFI application" in facts(found)


# --- the rest: unknown, empty, unreadable -------------------------------------------------

def test_random_bytes_are_unknown_and_shown(tmp_path, work):
    data = b"\x13\x37" + os.urandom(999_998)
    image = tmp_path / "random.img"
    image.write_bytes(data)
    found = detect(image, work)
    assert (found.kind, found.boot, found.arch, found.firmware) == ("unknown", "none", None, [])
    assert data[:16].hex(" ") in found.facts[0]


def test_empty_file(tmp_path, work):
    image = tmp_path / "empty.iso"
    image.write_bytes(b"")
    found = detect(image, work)
    assert (found.kind, found.boot, found.facts) == ("unknown", "none", ("empty file (0 bytes)",))


def test_truncated_headers_are_not_a_traceback(tmp_path, work):
    image = tmp_path / "short.bin"
    image.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(40))   # shorter than an ELF header
    assert detect(image, work).kind == "unknown"
    image.write_bytes(bzimage_header(0x20F, 1, b"6.1")[:0x210])  # cut inside the setup header
    assert detect(image, work).kind == "bzimage"


@needs_xorriso
def test_truncated_iso_is_still_an_iso(tmp_path, work):
    whole = iso(tmp_path, "cd.iso", bios=True, efi_loader=None).read_bytes()
    image = tmp_path / "cut.iso"
    image.write_bytes(whole[:0x9000])   # the descriptors survive, the catalog does not
    found = detect(image, work)
    assert (found.kind, found.boot) == ("iso", "cdrom")
    assert "El Torito record but no bootable catalog entry" in facts(found)
    assert f"truncated: the volume is {len(whole) >> 10} KiB but the file only 36 KiB" \
        in found.facts


def test_directory_and_missing_file_are_detect_errors(tmp_path, work):
    with pytest.raises(DetectError, match=r": is a directory, not an image file"):
        detect(tmp_path, work)
    with pytest.raises(DetectError, match=r"nope.img: No such file or directory"):
        detect(tmp_path / "nope.img", work)
