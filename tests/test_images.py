"""Images: the cache, Debian package metadata, the initramfs recipe."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from harness.images.cache import Cache
from harness.images.debian import first_alternatives, parse_fields
from harness.images.recipes import CpioWriter, busybox_initramfs


def parse_newc(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """A reader for the newc format, independent of the writer."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos: pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body, rdev))


def test_cpio_newc_round_trip():
    w = CpioWriter()
    w.directory("dev")
    w.chardev("dev/console", 5, 1)
    w.file("init", b"#!/bin/sh\n", 0o755)
    w.symlink("bin/sh", "busybox")
    data = w.finish()
    assert len(data) % 512 == 0
    entries = parse_newc(data)
    assert [(n, oct(m)) for n, m, _, _ in entries] == [
        ("dev", "0o40755"), ("dev/console", "0o20600"), ("init", "0o100755"),
        ("bin/sh", "0o120777")]
    assert entries[1][3] == (5, 1) and entries[2][2] == b"#!/bin/sh\n"
    assert entries[3][2] == b"busybox"


def test_initramfs_is_deterministic_and_complete():
    a = busybox_initramfs(b"\x7fELF-busybox", b"#!/bin/busybox sh\necho hi\n")
    b = busybox_initramfs(b"\x7fELF-busybox", b"#!/bin/busybox sh\necho hi\n")
    assert a == b  # same inputs, same bytes: digests are stable
    names = {e[0] for e in parse_newc(gzip.decompress(a))}
    assert {"init", "bin/busybox", "bin/sh", "dev/console", "proc", "sys"} <= names


def test_apt_fields_and_depends():
    text = ("Package: linux-image-amd64\nVersion: 6.1.1\nDepends: linux-image-6.1.0-9-amd64 "
            "(= 6.1.1), foo | bar,\n baz:any (>= 1)\nSHA256: abc\n\nPackage: other\n")
    f = parse_fields(text)
    assert f["Version"] == "6.1.1" and f["SHA256"] == "abc"
    assert first_alternatives(f["Depends"]) == ["linux-image-6.1.0-9-amd64", "foo", "baz"]


def test_cache_blobs_are_content_addressed_and_read_only(tmp_path):
    cache = Cache(tmp_path)
    sha = cache.put_bytes(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    path = cache.blob_path(sha)
    assert path.read_bytes() == b"hello" and not os.stat(path).st_mode & 0o222
    cache.set_ref("deb:amd64:x", sha, package="x")
    assert cache.get_ref("deb:amd64:x")["package"] == "x"
    assert cache.get_ref("deb:amd64:y") is None
    os.chmod(path, 0o644)
    path.unlink()
    assert cache.get_ref("deb:amd64:x") is None  # a reference to a lost blob is no hit


def test_a_failed_write_leaves_no_blob(tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(RuntimeError), cache.new_blob() as (f, _):
        f.write(b"partial")
        raise RuntimeError("interrupted")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_default_images_come_from_debian_with_provenance(default_images):
    kernel, initrd = default_images["kernel"], default_images["initrd"]
    assert kernel.source == "deb:linux-image-amd64"
    assert kernel.details["package"].startswith("linux-image-6.")  # followed the meta-package
    assert kernel.details["member"].startswith("boot/vmlinuz-")
    assert hashlib.sha256(kernel.path.read_bytes()).hexdigest() == kernel.sha256
    assert initrd.source == "build:busybox-initramfs"
    assert set(initrd.details["inputs"]) == {"busybox", "init"}
    entries = {e[0]: e for e in parse_newc(gzip.decompress(initrd.path.read_bytes()))}
    assert entries["bin/busybox"][2][:4] == b"\x7fELF"


def test_foreign_architecture_packages_leave_apt_alone(store):
    import subprocess

    from harness.config import load_guest

    from .conftest import GUESTS

    def apt_state():
        foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                                 text=True).stdout
        lists = sorted(os.listdir("/var/lib/apt/lists"))
        return foreign, lists

    before = apt_state()
    images = store.resolve_guest(load_guest(GUESTS / "linux-busybox-i386.yaml"))
    assert images["kernel"].details["arch"] == "i386"
    assert images["kernel"].details["package"].endswith("-686")
    assert apt_state() == before


def test_a_deb_answer_is_reused_while_the_package_lists_are_the_same(cache, default_images,
                                                                     monkeypatch):
    """apt-cache re-reads every package list (about a second a call): the file a deb
    source names is looked up again only when the lists changed."""
    from harness.images import debian

    monkeypatch.setenv("HARNESS_DEB_FETCH", "apt")
    # (the answer may have come from the archive read without apt: asked again once)
    first = debian.fetch_deb_file(cache, "amd64", "linux-image-amd64", "boot/vmlinuz-*")
    assert first.sha256 == default_images["kernel"].sha256
    asked: list[str] = []
    real = debian.AptArchive.show
    monkeypatch.setattr(debian.AptArchive, "show",
                        lambda self, package: asked.append(package) or real(self, package))
    again = debian.fetch_deb_file(cache, "amd64", "linux-image-amd64", "boot/vmlinuz-*")
    assert again == first and asked == []
    stamp = debian.AptArchive(cache, "amd64").state / "updated"
    os.utime(stamp, ns=(stamp.stat().st_atime_ns, stamp.stat().st_mtime_ns + 1))
    assert debian.fetch_deb_file(cache, "amd64", "linux-image-amd64",
                                 "boot/vmlinuz-*") == first
    assert asked[0] == "linux-image-amd64"  # new lists: asked again, same answer
