"""Kernel modules for the BusyBox initramfs (issue 18): read out of a Debian kernel
package (a real `ar` + data.tar.xz made here, with ELF modules whose .modinfo names
their dependencies), in load order, in one pass unless a dependency came first in
the archive; the init script's loop that insmods them, run by a real shell.

The real Debian 6.1 package and a real boot are in tests/test_stages_vm.py."""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import tarfile
from importlib import resources
from pathlib import Path

import pytest

from harness.images import kmods
from harness.images.cache import Cache
from harness.images.kmods import ModuleError, modinfo, modules_from_deb, release_of
from harness.images.recipes import Input, RecipeError, _kernel_package, busybox_initramfs

from .test_images import parse_newc

RELEASE = "6.1.0-99-test"


def elf_module(info: dict[str, str], wide: bool = True, big: bool = False) -> bytes:
    """A relocatable ELF object with a .modinfo section, as the kernel's modules are."""
    order = ">" if big else "<"
    modinfo_data = b"".join(f"{k}={v}\0".encode() for k, v in info.items())
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    ehsize, shentsize = (64, 64) if wide else (52, 40)
    off_info = ehsize
    off_str = off_info + len(modinfo_data)
    shoff = off_str + len(shstrtab)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 2 if big else 1, 1]) + bytes(9)
    if wide:
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0,
                                     ehsize, 0, 0, shentsize, 3, 2)
    else:
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 1, 3, 1, 0, 0, shoff, 0,
                                     ehsize, 0, 0, shentsize, 3, 2)

    def sh(name: int, kind: int, off: int, size: int) -> bytes:
        if wide:
            return struct.pack(order + "IIQQQQIIQQ", name, kind, 0, 0, off, size, 0, 0, 1, 0)
        return struct.pack(order + "IIIIIIIIII", name, kind, 0, 0, off, size, 0, 0, 1, 0)

    sections = sh(0, 0, 0, 0) + sh(1, 1, off_info, len(modinfo_data)) + sh(
        10, 3, off_str, len(shstrtab))
    return header + modinfo_data + shstrtab + sections


def make_deb(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A Debian package: an ar archive holding debian-binary, control and data.tar.xz."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body in members:
            info = tarfile.TarInfo("./" + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))

    def ar_member(name: str, body: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
        return head + body + (b"\n" if len(body) % 2 else b"")

    path.write_bytes(b"!<arch>\n" + ar_member("debian-binary", b"2.0\n")
                     + ar_member("control.tar.xz", b"") + ar_member("data.tar.xz",
                                                                    data.getvalue()))
    return path


def mod(name: str, depends: str = "") -> bytes:
    return elf_module({"license": "GPL", "depends": depends, "name": name.replace("-", "_")})


def kernel_deb(tmp_path: Path) -> Path:
    """In archive order: `early` comes before `needs_early`, which depends on it; `top`
    depends on `mid` and `base`, which come after it; one module has a '-' in its name."""
    k = f"lib/modules/{RELEASE}/"
    return make_deb(tmp_path / "linux-image-test.deb", [
        (f"boot/vmlinuz-{RELEASE}", b"kernel"),
        (k + "kernel/lib/early.ko", mod("early")),
        (k + "kernel/drivers/needs_early.ko", mod("needs_early", "early")),
        (k + "kernel/fs/top.ko", mod("top", "mid,base")),
        (k + "kernel/fs/mid.ko", mod("mid", "base")),
        (k + "kernel/fs/base.ko", mod("base")),
        (k + "kernel/fs/nls/nls_iso8859-1.ko", mod("nls_iso8859-1")),
        (k + "kernel/misc/unrelated.ko", mod("unrelated")),
        ("lib/modules/5.10.0-1-other/kernel/fs/other.ko", mod("other")),
        (k + "modules.builtin", b"kernel/fs/ext4/ext4.ko\nkernel/fs/builtin_fs.ko\n"),
    ])


def test_modinfo_reads_the_section_in_every_elf_flavour():
    info = {"license": "GPL", "depends": "a,b", "name": "x"}
    for wide in (True, False):
        for big in (False, True):
            assert modinfo(elf_module(info, wide, big)) == info
    with pytest.raises(ModuleError, match="not an ELF"):
        modinfo(b"MZ" + bytes(100))
    with pytest.raises(ModuleError, match="truncated"):
        modinfo(elf_module(info)[:-30])


def test_the_kernel_release_comes_from_the_packaged_image_name():
    assert release_of("boot/vmlinuz-6.1.0-57-amd64") == "6.1.0-57-amd64"
    assert release_of("boot/vmlinux-6.1.0-50-powerpc64le") == "6.1.0-50-powerpc64le"
    assert release_of("boot/bzImage") is None


def test_modules_come_with_their_dependencies_in_load_order(tmp_path, monkeypatch):
    deb = kernel_deb(tmp_path)
    passes = []
    real_walk = kmods._walk
    monkeypatch.setattr(kmods, "_walk", lambda *a: passes.append(a[2]) or real_walk(*a))
    got = modules_from_deb(deb, RELEASE, ["top", "nls_iso8859-1"], "linux-image-test")
    assert [n for n, _ in got] == ["base", "mid", "top", "nls_iso8859_1"]
    assert dict(got)["mid"] == mod("mid", "base")  # the module's own bytes
    assert passes == [None]  # every dependency came after its user: one pass


def test_a_dependency_earlier_in_the_archive_costs_one_more_pass_for_all_of_them(
        tmp_path, monkeypatch):
    deb = kernel_deb(tmp_path)
    passes = []
    real_walk = kmods._walk
    monkeypatch.setattr(kmods, "_walk", lambda *a: passes.append(a[2]) or real_walk(*a))
    got = modules_from_deb(deb, RELEASE, ["needs_early", "top"], "linux-image-test")
    assert [n for n, _ in got] == ["early", "needs_early", "base", "mid", "top"]
    assert dict(got)["early"] == mod("early")
    assert passes == [None, {"early"}]


def test_unknown_builtin_and_other_kernels_modules(tmp_path):
    deb = kernel_deb(tmp_path)
    with pytest.raises(ModuleError) as err:
        modules_from_deb(deb, RELEASE, ["base", "topp"], "linux-image-test 1.0 (amd64)")
    assert str(err.value) == ("no kernel module 'topp' in linux-image-test 1.0 (amd64) "
                              "(close: top)")
    with pytest.raises(ModuleError, match="no kernel module 'other'"):  # another release's
        modules_from_deb(deb, RELEASE, ["other"], "p")
    said = []
    got = modules_from_deb(deb, RELEASE, ["builtin_fs", "base"], "p", said.append)
    assert [n for n, _ in got] == ["base"]
    assert said == ["  kernel module builtin_fs is built into the kernel: nothing to load"]
    with pytest.raises(ModuleError, match="modules of several kernels"):
        modules_from_deb(deb, None, ["base"], "p")


def test_a_missing_dependency_names_the_module_that_needs_it(tmp_path):
    deb = make_deb(tmp_path / "k.deb", [
        (f"lib/modules/{RELEASE}/kernel/a.ko", mod("a", "gone"))])
    with pytest.raises(ModuleError, match=r"no kernel module 'gone' \(needed by a\) in p"):
        modules_from_deb(deb, RELEASE, ["a"], "p")


def test_the_kernel_package_is_the_one_the_kernel_image_came_from(tmp_path):
    cache = Cache(tmp_path / "cache")
    deb = kernel_deb(tmp_path)
    digest = cache.put_bytes(deb.read_bytes())
    kernel = Input("0" * 64, tmp_path / "vmlinuz", {
        "arch": "amd64", "package": "linux-image-6.1.0-99-test", "version": "6.1.999-1",
        "member": f"boot/vmlinuz-{RELEASE}", "deb_sha256": digest})
    path, what, release = _kernel_package(cache, kernel, True, print)
    assert path.read_bytes() == deb.read_bytes() and release == RELEASE
    assert what == "linux-image-6.1.0-99-test 6.1.999-1 (amd64)"
    with pytest.raises(RecipeError, match=r"offline, and the package linux-image-6\.1\.0-99"):
        _kernel_package(cache, kernel._replace(details={**kernel.details,
                                                        "deb_sha256": "f" * 64}), True, print)
    with pytest.raises(RecipeError, match="need the kernel to be a deb: image"):
        _kernel_package(cache, Input("0" * 64, tmp_path / "k", {"url": "x"}), True, print)


def test_the_initramfs_holds_the_modules_and_their_load_list(tmp_path):
    deb = kernel_deb(tmp_path)
    mods = modules_from_deb(deb, RELEASE, ["top"], "p")
    image = busybox_initramfs(b"\x7fELF-busybox", b"#!/bin/busybox sh\n", mods)
    assert image == busybox_initramfs(b"\x7fELF-busybox", b"#!/bin/busybox sh\n", mods)
    files = {name: body for name, _, body, _ in parse_newc(gzip.decompress(image))}
    assert files["lib/modules/load"] == b"base\nmid\ntop\n"
    assert files["lib/modules/top.ko"] == mod("top", "mid,base")
    plain = {n for n, _, _, _ in parse_newc(gzip.decompress(
        busybox_initramfs(b"\x7fELF-busybox", b"#!/bin/busybox sh\n")))}
    assert not any(n.startswith("lib") for n in plain)  # no modules: as before


def test_the_init_script_loads_the_list_and_reports_a_failure_as_a_check(tmp_path):
    """The init script's module loop, run by a real sh with a fake insmod: a module
    that does not load is a HARNESS-CHECK FAILED line, counted before the marker."""
    script = resources.files("harness").joinpath("data", "busybox-init.sh").read_text()
    start = script.index("failed=0")
    end = script.index('echo "HARNESS-READY')
    part = script[start:end].replace("/lib/modules", str(tmp_path / "modules"))
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "load").write_text("good\nbad\n")
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "insmod"
    fake.write_text('#!/bin/sh\ncase "$1" in *bad.ko) echo "Unknown symbol in module" >&2; '
                    "exit 1;; esac\n")
    fake.chmod(0o755)
    proc = subprocess.run(["sh", "-c", f'PATH={tmp_path / "bin"}:$PATH\n{part}\n'
                           'echo "failed=$failed"'], capture_output=True, text=True)
    assert proc.stdout.splitlines() == [
        "HARNESS-CHECK ok: module-good",
        "HARNESS-CHECK FAILED: module-bad Unknown symbol in module", "failed=1"]
