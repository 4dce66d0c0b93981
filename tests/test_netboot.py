"""Network boots: a folder out of a package or tarball served by QEMU's own DHCP and
TFTP, as a real PXE boot would be. No VM here; the boot itself is in test_pxe.py."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

from harness.backends import registry
from harness.backends.qemu import build_launch
from harness.config import ConfigError, load_guest
from harness.images.archive import ArchiveError, NoMember, iter_tree, unpack_tree
from harness.model import BootSpec

from .conftest import write
from .test_qemu_argv import CTX, IMAGES, cell, opt


def tar_of(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return raw.getvalue()


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def tree_bytes(path: Path, folder: str) -> bytes:
    _, chunks = iter_tree(path, folder)
    return b"".join(chunks)


def test_a_folder_comes_out_with_its_symlinks_relative_to_it(tmp_path):
    src = tmp_path / "src.tar"
    src.write_bytes(tar_of([
        ("./usr/lib/di/text/debian-installer/amd64/pxelinux.0", b"PXE"),
        ("./usr/lib/di/text/debian-installer/amd64/boot-screens/syslinux.cfg", b"menu"),
        link("./usr/lib/di/text/pxelinux.0", "debian-installer/amd64/pxelinux.0"),
        link("./usr/lib/di/text/debian-installer/amd64/pxelinux.cfg/default",
             "../boot-screens/syslinux.cfg"),
        ("./usr/lib/di/gtk/other", b"not this folder"),
    ]))
    out = tmp_path / "tree.tar"
    out.write_bytes(tree_bytes(src, "usr/lib/di/text/"))
    with tarfile.open(out) as t:
        assert sorted(t.getnames()) == [
            "debian-installer/amd64/boot-screens/syslinux.cfg",
            "debian-installer/amd64/pxelinux.0",
            "debian-installer/amd64/pxelinux.cfg/default", "pxelinux.0"]
    dest = tmp_path / "tftp"
    unpack_tree(out, dest)
    assert (dest / "pxelinux.0").read_bytes() == b"PXE"
    assert (dest / "debian-installer/amd64/pxelinux.cfg/default").read_bytes() == b"menu"
    assert not (dest / "other").exists()


@pytest.mark.parametrize("member", [link("./t/escape", "../../etc/passwd"),
                                    link("./t/abs", "/etc/passwd")])
def test_a_symlink_out_of_the_folder_is_refused(tmp_path, member):
    src = tmp_path / "src.tar"
    src.write_bytes(tar_of([("./t/ok", b"1"), member]))
    with pytest.raises(ArchiveError, match="leads out of"):
        tree_bytes(src, "t/")


def test_a_missing_folder_is_no_member(tmp_path):
    src = tmp_path / "src.tar"
    src.write_bytes(tar_of([("./t/ok", b"1")]))
    with pytest.raises(NoMember, match="no folder 'u/'"):
        tree_bytes(src, "u/")


def test_unpacking_checks_names_again(tmp_path):
    """A tree tar in the cache is a file anyone may have written: checked on the way out."""
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_of([("../evil", b"x")]))
    with pytest.raises(ArchiveError, match=r"refusing '\.\./evil'"):
        unpack_tree(bad, tmp_path / "tftp")
    assert not (tmp_path / "evil").exists()


GUEST = textwrap.dedent("""\
    id: pxe
    os: linux
    arch: x86_64
    images:
      tftp: {file: tree.tar}
    boot: {network: tftp, bootfile: BOOTFILE}
    firmware: [bios, uefi]
    milestones:
      - {name: kernel, pattern: 'Linux version'}
    """)


def test_a_network_boot_in_a_guest_file(tmp_path):
    path = write(tmp_path / "pxe.yaml", GUEST.replace(
        "BOOTFILE", "{bios: pxelinux.0, uefi: debian-installer/amd64/bootnetx64.efi}"))
    g = load_guest(path)
    assert (g.boot.kind, g.boot.image) == ("network", "tftp")
    assert g.boot.bootfiles == {"bios": "pxelinux.0",
                                "uefi": "debian-installer/amd64/bootnetx64.efi"}
    one = load_guest(write(tmp_path / "pxe.yaml", GUEST.replace("BOOTFILE", "pxelinux.0")))
    assert one.boot.bootfiles == {"bios": "pxelinux.0", "uefi": "pxelinux.0"}


@pytest.mark.parametrize("bootfile, message", [
    ("../pxelinux.0", "expected a relative path inside the tree, without ','"),
    ("'a,b'", "expected a relative path inside the tree, without ','"),
])
def test_a_bad_bootfile_names_its_line(tmp_path, bootfile, message):
    path = write(tmp_path / "pxe.yaml", GUEST.replace("BOOTFILE", bootfile))
    with pytest.raises(ConfigError) as err:
        load_guest(path)
    assert [str(i) for i in err.value.issues] == [
        f"{path}:6: boot.bootfile: {bootfile.strip(chr(39))!r}: {message}"]


def test_a_bootfile_needs_a_network_boot_and_a_network_boot_a_bootfile(tmp_path):
    no_file = write(tmp_path / "pxe.yaml", GUEST.replace(", bootfile: BOOTFILE", ""))
    with pytest.raises(ConfigError, match="a network boot needs the file its PXE client"):
        load_guest(no_file)
    cd = write(tmp_path / "pxe.yaml", GUEST.replace("network: tftp", "cdrom: tftp")
               .replace("BOOTFILE", "x"))
    with pytest.raises(ConfigError, match="bootfile: only for network boots"):
        load_guest(cd)


def test_qemu_serves_the_tree_by_tftp_and_boots_from_the_card():
    c = cell(boot=BootSpec("network", image="iso", bootfiles={"bios": "pxelinux.0"}))
    launch = build_launch(c, IMAGES, CTX)
    assert opt(launch.argv, "-netdev") == [
        "user,id=pxe,tftp=/run/tftp,bootfile=pxelinux.0"]
    assert opt(launch.argv, "-device")[-1] == "e1000,netdev=pxe"
    assert opt(launch.argv, "-boot") == ["n"]
    assert launch.trees == {Path("/run/tftp"): IMAGES["iso"]}
    assert "# unpack /c/x.iso into /run/tftp" in launch.describe()


def test_who_cannot_boot_from_the_network_says_why():
    net = BootSpec("network", image="iso", bootfiles={"bios": "pxelinux.0"})
    assert registry.get("tcg").why_not(cell(boot=net, firmware="uefi")) == (
        "the guest names no network boot file for uefi")
    assert registry.get("bochs").why_not(cell(boot=net, backend="bochs")) == (
        "bochs cannot serve a network boot's TFTP tree")
    assert registry.get("xen").why_not(cell(boot=net, backend="xen")) == (
        "xen cannot serve a network boot's TFTP tree")
    assert registry.get("tcg").why_not(cell(boot=net, arch="aarch64")) == (
        "no network card that boots is known for aarch64 (arches.yaml)")
