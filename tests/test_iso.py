"""ISO 9660 members: a kernel out of a CD, by Rock Ridge, Joliet or plain names.

The ISOs are real: built by xorriso (Rock Ridge + Joliet, what installer CDs
carry), by pycdlib without any extension (plain ISO 9660 level 1), and by
grub-mkrescue through the harness's grub-iso recipe from Debian's netboot
kernel and initrd; the harness reads them back through its own code.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import shutil
import subprocess
from pathlib import Path

import pycdlib
import pytest

from harness.backends.base import LaunchContext
from harness.backends.qemu import build_launch
from harness.config import ConfigError, load_guest
from harness.images.cache import Cache
from harness.images.iso import is_iso
from harness.images.store import ImageError, ImageStore
from harness.model import BootSpec, Guest, ImageSpec, Milestone, Timeouts
from harness.plan import make_cell

from .conftest import GUESTS, write

KERNEL = os.urandom(200_000)
INITRD = os.urandom(70_000)


def xorriso_iso(tmp: Path, files: dict[str, bytes], *flags: str) -> bytes:
    src = tmp / "iso-src"
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    out = tmp / "out.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", *flags, "-o", str(out), str(src)],
                   check=True, capture_output=True)
    shutil.rmtree(src)
    return out.read_bytes()


def pycdlib_iso(files: dict[str, bytes], joliet: bool = False) -> bytes:
    """Plain ISO 9660 (level 1: 8.3 upper-case names, `;1` versions), optionally + Joliet."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3 if joliet else None)
    dirs: set[str] = set()
    for name, data in files.items():
        parts = name.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                kw = {"joliet_path": "/" + d} if joliet else {}
                iso.add_directory("/" + d.upper(), **kw)
        stem, _, ext = (re.sub(r"[^A-Z0-9_.]", "_", p) for p in parts[-1].upper().partition("."))
        iso_name = "/".join(p.upper() for p in [*parts[:-1], f"{stem[:8]}.{ext[:3]}"])
        kw = {"joliet_path": "/" + name} if joliet else {}
        iso.add_fp(io.BytesIO(data), len(data), "/" + iso_name.upper() + ";1", **kw)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "cache")


def store(cache: Cache) -> ImageStore:
    return ImageStore(cache, log=lambda m: None, backoff=0.01, stall_timeout=1.0)


def spec(url: str, data: bytes, **params) -> ImageSpec:
    base = {"url": url, "mirrors": [], "sha512": None, "checksums": None, "insecure": True,
            "pin": True, "decompress": "auto", "member": None, **params}
    return ImageSpec("img", "url", base, hashlib.sha256(data).hexdigest())


def test_rock_ridge_member_by_glob_from_a_download(server, cache, tmp_path):
    iso = xorriso_iso(tmp_path, {"boot/vmlinuz-virt": KERNEL, "boot/initramfs-virt": INITRD,
                                 "boot/grub/grub.cfg": b"menuentry"}, "-R", "-J")
    assert iso[0x8001:0x8006] == b"CD001"
    url = server.add("/alpine-virt.iso", iso)
    img = store(cache).resolve(spec(url, iso, member="boot/vmlinuz-*"))
    assert img.path.read_bytes() == KERNEL
    assert img.details["member"] == "boot/vmlinuz-virt"
    # the ISO is told by its content: the same bytes under any name, and compressed
    xz = lzma.compress(iso)
    url = server.add("/renamed.iso.xz", xz)
    img = store(cache).resolve(spec(url, xz, member="./boot/initramfs-virt"))
    assert img.path.read_bytes() == INITRD
    assert img.details == {**img.details, "decompress": "xz", "member": "boot/initramfs-virt"}


def test_plain_iso9660_names_match_without_version_or_case(cache, tmp_path):
    data = pycdlib_iso({"isolinux/linux.bin": KERNEL, "isolinux/initrd.gz": INITRD})
    path = tmp_path / "plain.iso"
    path.write_bytes(data)
    check = pycdlib.PyCdlib()
    check.open(str(path))
    assert not check.has_rock_ridge() and not check.has_joliet()
    check.close()
    img = store(cache).resolve(ImageSpec("k", "file", {
        "path": str(path), "sha512": None, "decompress": "auto", "member": "isolinux/linux.bin"}))
    assert img.path.read_bytes() == KERNEL and img.details["member"] == "ISOLINUX/LINUX.BIN"


def test_joliet_long_names(cache, tmp_path):
    data = pycdlib_iso({"casper/vmlinuz-long-name": KERNEL}, joliet=True)
    path = tmp_path / "joliet.iso"
    path.write_bytes(data)
    img = store(cache).resolve(ImageSpec("k", "file", {
        "path": str(path), "sha512": None, "decompress": "auto", "member": "casper/vmlinuz*"}))
    assert img.path.read_bytes() == KERNEL and img.details["member"] == "casper/vmlinuz-long-name"


def test_iso_errors_are_image_errors(server, cache, tmp_path):
    iso = xorriso_iso(tmp_path, {"boot/vmlinuz": KERNEL, "boot/grub/grub.cfg": b"x"}, "-R")
    url = server.add("/cd.iso", iso)
    with pytest.raises(ImageError, match=r"^image img: no member 'boot/bzImage' in the ISO "
                                         r"image \w+ \(\d+ entries, rr names\)$"):
        store(cache).resolve(spec(url, iso, member="boot/bzImage"))
    with pytest.raises(ImageError, match=r"^image img: \w+: boot/grub is a directory, not a "
                                         "file$"):
        store(cache).resolve(spec(url, iso, member="boot/grub"))
    junk = os.urandom(64 * 1024)
    url = server.add("/not-an.iso", junk)
    with pytest.raises(ImageError, match=r"not a tar, zip, \.deb or ISO 9660 image"):
        store(cache).resolve(spec(url, junk, member="boot/vmlinuz"))


def test_a_damaged_iso_is_an_image_error(server, cache, tmp_path):
    iso = bytearray(xorriso_iso(tmp_path, {"boot/vmlinuz": KERNEL}, "-R"))
    iso[0x8000 + 156: 0x8000 + 190] = b"\xff" * 34  # the root directory record
    url = server.add("/bad.iso", bytes(iso))
    with pytest.raises(ImageError, match=r"^image img: \w+: "):
        store(cache).resolve(spec(url, bytes(iso), member="boot/vmlinuz"))


GUEST = """\
id: g
os: linux
arch: x86_64
images:
  cd: {{file: cd.iso, sha256: {sha}}}
  kernel: {{from: cd, member: boot/vmlinuz-virt}}
  initrd: {{from: cd, member: boot/initramfs-virt{extra}}}
boot: {{kernel: kernel, initrd: initrd, cdrom: cd, cmdline: console=ttyS0}}
milestones: [{{name: m, pattern: x}}]
"""


def test_a_guest_boots_members_of_the_cd_it_attaches(cache, tmp_path):
    iso = xorriso_iso(tmp_path, {"boot/vmlinuz-virt": KERNEL,
                                 "boot/initramfs-virt": lzma.compress(INITRD)}, "-R")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "cd.iso").write_bytes(iso)
    g = load_guest(write(tmp_path / "g" / "g.yaml", GUEST.format(
        sha=hashlib.sha256(iso).hexdigest(), extra=", decompress: xz")))
    assert g.boot.kind == "kernel" and g.boot.cdrom == "cd"
    got = store(cache).resolve_guest(g)
    assert got["kernel"].path.read_bytes() == KERNEL
    assert got["initrd"].path.read_bytes() == INITRD
    assert got["kernel"].source == "from:cd"
    assert got["kernel"].details["from_sha256"] == got["cd"].sha256
    assert got["initrd"].details == {**got["initrd"].details, "decompress": "xz"}
    cell = make_cell(g, "tcg", "bios", Timeouts(), 384)
    paths = {name: img.path for name, img in got.items()}
    argv = build_launch(cell, paths, LaunchContext(tmp_path / "run", tmp_path)).argv
    assert f"file={got['cd'].path},media=cdrom,readonly=on,if=ide,index=2" in argv
    assert argv[argv.index("-kernel") + 1] == str(got["kernel"].path)
    assert "-boot" not in argv  # the kernel is booted; the CD is only attached


def test_from_sources_are_checked_in_the_guest_file(tmp_path):
    bad = GUEST.format(sha="ab" * 32, extra="").replace(
        "{from: cd, member: boot/vmlinuz-virt}", "{from: nothere, member: x}").replace(
        "{from: cd, member: boot/initramfs-virt}", "{from: cd}")
    path = write(tmp_path / "g" / "g.yaml", bad)
    with pytest.raises(ConfigError) as err:
        load_guest(path)
    msgs = [str(i) for i in err.value.issues]
    assert f"{path}:7: images.initrd: a from: image needs member: (the file to take out)" in msgs
    assert f"{path}:6: images.kernel: from: 'nothere' is not another image of this guest" in msgs


def test_xen_refuses_a_kernel_boot_with_a_cd():
    from harness.backends import xl
    g = Guest(id="g", name="g", os="linux", arch="x86_64", images={},
              boot=BootSpec("kernel", kernel="k", cdrom="cd"), firmware=["bios"],
              memory_mb=256, vcpus=1, console="serial",
              milestones=[Milestone("m", re.compile("x"))], failures=[])
    assert "no CD drive" in (xl.why_not(make_cell(g, "xen", "bios", Timeouts(), 384)) or "")


def test_the_catalog_iso_guest_takes_the_netboot_kernel_back_out_of_its_cd():
    """The real thing: grub-mkrescue's CD (Rock Ridge) holding Debian's netboot kernel
    and initrd; the members taken out are byte for byte the packaged files."""
    g = load_guest(GUESTS / "debian-installer-12-amd64-iso.yaml")
    got = ImageStore(Cache(), log=lambda m: None).resolve_guest(g)  # the user's cache
    assert is_iso(got["cd"].path)
    assert got["kernel"].sha256 == got["netboot-kernel"].sha256
    assert got["initrd"].sha256 == got["netboot-initrd"].sha256
    assert got["kernel"].details["member"] == "install.amd/vmlinuz"



@pytest.mark.parametrize("log", ["tcg-bios", "tcg-uefi"])
def test_the_iso_guest_patterns_match_the_netboot_installer_transcripts(log):
    """Same kernel, initrd and command line as debian-installer-12-amd64: its real
    recorded consoles are this guest's too."""
    from harness.transcripts import replay

    g = load_guest(GUESTS / "debian-installer-12-amd64-iso.yaml")
    data = (Path(__file__).parent / "data" / "transcripts" /
            f"debian-installer-12-amd64.{log}.log").read_bytes()
    r = replay(g, data, None, chunk=512)
    assert r.missing == [] and r.failures == [] and r.reached == [m.name for m in g.milestones]


# The guest's boot itself (bios and uefi, to 'Select a language') is one of the cells of
# tests/test_catalog.py::test_every_local_guest_passes_under_tcg: not booted twice.
