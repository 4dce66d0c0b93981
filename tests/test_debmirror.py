"""`deb:` sources on a host without apt: the Debian archive read directly.

A real HTTP server on 127.0.0.1 serves a small archive laid out like
deb.debian.org (two suites, InRelease signed by a key made for the test,
Packages.xz, by-hash copies, .deb files made here), and the tests tamper with
it the ways a broken or hostile mirror would. One test reads the real
archive and checks it gives the very files apt gives.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.images import debian
from harness.images.cache import Cache
from harness.images.debmirror import (
    MirrorArchive,
    MirrorError,
    clearsigned_body,
    release_sums,
    stanzas_by_name,
)
from harness.knowledge import DebianSources

from .httpd import Server

needs_gpg = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpgv")),
                               reason="gpg and gpgv are needed to sign a test archive")


def make_deb(files: dict[str, bytes]) -> bytes:
    """A Debian package: an ar archive of debian-binary, control and data tars."""
    def tar_xz(members: dict[str, bytes]) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:xz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo("./" + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return raw.getvalue()

    out = b"!<arch>\n"
    for name, data in [("debian-binary", b"2.0\n"),
                       ("control.tar.xz", tar_xz({"control": b"Package: x\n"})),
                       ("data.tar.xz", tar_xz(files))]:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


def stanza(name: str, version: str, filename: str, deb: bytes, depends: str = "") -> str:
    lines = [f"Package: {name}", f"Version: {version}", "Architecture: amd64",
             f"Filename: {filename}", f"Size: {len(deb)}",
             f"SHA256: {hashlib.sha256(deb).hexdigest()}"]
    if depends:
        lines.append(f"Depends: {depends}")
    return "\n".join(lines) + "\n"


class Archive:
    """The fake archive: files on the server, a gpg home that signs."""

    def __init__(self, server: Server, home: Path) -> None:
        self.server, self.home = server, home
        self.keyring = home / "trusted.gpg"
        env = {**os.environ, "GNUPGHOME": str(home)}
        self.env = env
        gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run([*gpg, "--quick-gen-key", "Test Archive <a@example.org>", "ed25519",
                        "sign", "never"], env=env, check=True, capture_output=True)
        subprocess.run([*gpg, "--export", "--output", str(self.keyring)], env=env, check=True)
        self.gpg = gpg

    def sign(self, text: str) -> bytes:
        return subprocess.run([*self.gpg, "--clearsign"], input=text.encode(), env=self.env,
                              check=True, capture_output=True).stdout

    def publish(self, suite: str, packages: str, by_hash: bool = True) -> str:
        xz = lzma.compress(packages.encode())
        digest = hashlib.sha256(xz).hexdigest()
        rel = "main/binary-amd64/Packages.xz"
        self.server.add(f"/debian/dists/{suite}/{rel}", xz)
        self.server.add(f"/debian/dists/{suite}/main/binary-amd64/by-hash/SHA256/{digest}", xz)
        release = (f"Origin: Test\nSuite: {suite}\n"
                   + ("Acquire-By-Hash: yes\n" if by_hash else "")
                   + f"SHA256:\n {'0' * 64}      12 main/binary-i386/Packages.xz\n"
                   f" {digest} {len(xz):>8} {rel}\n")
        self.server.add(f"/debian/dists/{suite}/InRelease", self.sign(release))
        return digest


@pytest.fixture
def archive(tmp_path):
    server = Server()
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    try:
        a = Archive(server, home)
        old = make_deb({"boot/hello-1.0.bin": b"old"})
        new = make_deb({"boot/hello-1.1.bin": b"new kernel"})
        meta = make_deb({"usr/share/doc/hello-meta/README": b"meta"})
        server.add("/debian/pool/h/hello_1.0.deb", old)
        server.add("/debian/pool/h/hello_1.1.deb", new)
        server.add("/debian/pool/h/meta.deb", meta)
        a.publish("stable", stanza("hello", "1.0", "pool/h/hello_1.0.deb", old) + "\n"
                  + stanza("hello-meta", "1", "pool/h/meta.deb", meta, "hello (>= 1.0)"))
        a.publish("stable-updates", stanza("hello", "1.1", "pool/h/hello_1.1.deb", new))
        yield a
    finally:
        server.close()


def sources(archive: Archive, *suites: str) -> DebianSources:
    return DebianSources("stable", "main",
                         ((archive.server.url("/debian"), suites or ("stable", "stable-updates")),),
                         (str(archive.keyring),))


def fetch(cache: Cache, src: DebianSources, package: str, pattern: str,
          monkeypatch, log: list[str] | None = None) -> debian.DebFile:
    monkeypatch.setenv("HARNESS_DEB_FETCH", "mirror")
    monkeypatch.setattr("harness.images.debmirror.debian_sources", lambda: src)
    return debian.fetch_deb_file(cache, "amd64", package, pattern,
                                 log=(log.append if log is not None else lambda m: None))


def test_release_and_packages_parsing():
    rel = ("Origin: Debian\nSHA256:\n abc 1 x\n " + "a" * 64 + "  1234 main/binary-amd64/"
           "Packages.xz\nSHA512:\n " + "b" * 64 + " 9 main/binary-amd64/Packages.gz\n")
    assert release_sums(rel) == {"main/binary-amd64/Packages.xz": ("a" * 64, 1234)}
    signed = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: D\n- -dashed\n"
              "-----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n")
    assert clearsigned_body(signed) == "Origin: D\n-dashed\n"
    with pytest.raises(MirrorError, match="well-formed"):
        clearsigned_body("-----BEGIN PGP SIGNED MESSAGE-----\nno body")
    idx = stanzas_by_name("Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n\nPackage: a\n"
                          "Version: 3\n")
    assert {k: len(v) for k, v in idx.items()} == {"a": 2, "b": 1}


@needs_gpg
def test_the_highest_version_of_any_suite_through_depends(archive, tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    log: list[str] = []
    f = fetch(cache, sources(archive), "hello-meta", "boot/hello-*.bin", monkeypatch, log)
    assert (f.package, f.version, f.member) == ("hello", "1.1", "boot/hello-1.1.bin")
    assert cache.blob_path(f.sha256).read_bytes() == b"new kernel"
    assert any("InRelease checked by gpgv" in line for line in log)
    # Packages.xz came by hash (no race with a mirror mid-update), never by name
    paths = [p for p, _ in archive.server.log]
    assert any("/by-hash/SHA256/" in p for p in paths)
    assert not any(p.endswith("/Packages.xz") for p in paths)
    # the same answer again without another download, even offline
    before = len(archive.server.log)
    again = debian.fetch_deb_file(cache, "amd64", "hello-meta", "boot/hello-*.bin",
                                  offline=True)
    assert again == f and len(archive.server.log) == before


@needs_gpg
def test_a_list_that_differs_from_inrelease_leaves_its_suite_out(archive, tmp_path,
                                                                monkeypatch):
    digest = archive.publish("stable-updates", stanza("hello", "9", "pool/none.deb", b""))
    archive.server.files[f"/debian/dists/stable-updates/main/binary-amd64/by-hash/SHA256/"
                         f"{digest}"] = lzma.compress(b"Package: evil\n")
    log: list[str] = []
    f = fetch(Cache(tmp_path / "c"), sources(archive), "hello", "boot/*", monkeypatch, log)
    assert f.version == "1.0"  # the tampered suite was left out, as apt would
    assert any("stable-updates left out" in line and "differs from the one InRelease lists"
               in line for line in log)
    with pytest.raises(debian.DebError, match=r"no suite of stable has packages.*differs"):
        fetch(Cache(tmp_path / "d"), sources(archive, "stable-updates"), "hello", "boot/*",
              monkeypatch)


@needs_gpg
def test_a_bad_signature_or_an_unknown_key_is_refused(archive, tmp_path, monkeypatch):
    path = "/debian/dists/stable/InRelease"
    archive.server.files[path] = archive.server.files[path].replace(b"Origin: Test",
                                                                    b"Origin: Evil")
    with pytest.raises(debian.DebError, match="bad signature"):
        fetch(Cache(tmp_path / "c"), sources(archive, "stable"), "hello", "boot/*", monkeypatch)
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    stranger = Archive(Server(), other)
    stranger.server.close()
    src = DebianSources("stable", "main", ((archive.server.url("/debian"), ("stable-updates",)),),
                        (str(stranger.keyring),))
    with pytest.raises(debian.DebError, match="bad signature"):
        fetch(Cache(tmp_path / "d"), src, "hello", "boot/*", monkeypatch)


@needs_gpg
def test_without_a_keyring_plain_http_is_refused(archive, tmp_path, monkeypatch):
    """With no signature to check, only HTTPS protects the lists: http is refused."""
    src = DebianSources("stable", "main", ((archive.server.url("/debian"), ("stable",)),),
                        (str(tmp_path / "no-such.gpg"),))
    log: list[str] = []
    with pytest.raises(debian.DebError, match="plain http is refused"):
        fetch(Cache(tmp_path / "c"), src, "hello", "boot/*", monkeypatch, log)
    assert any("signatures NOT checked" in line for line in log)


@needs_gpg
def test_a_deb_that_differs_from_its_packages_entry_is_refused(archive, tmp_path,
                                                              monkeypatch):
    archive.server.files["/debian/pool/h/hello_1.1.deb"] = make_deb({"boot/hello-1.1.bin":
                                                                     b"trojan"})
    cache = Cache(tmp_path / "c")
    with pytest.raises(debian.DebError, match="differs from the archive's Packages index"):
        fetch(cache, sources(archive), "hello", "boot/*", monkeypatch)
    assert not any(cache.sub("blobs").rglob("*"))  # nothing of it was kept


def test_an_unknown_fetcher_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DEB_FETCH", "dnf")
    with pytest.raises(debian.DebError, match="HARNESS_DEB_FETCH='dnf': expected one of apt"):
        debian.fetch_deb_file(Cache(tmp_path), "amd64", "hello", "boot/*")


def test_the_real_archive_gives_the_files_apt_gives(cache, default_images, monkeypatch):
    """Debian's own archive, read without apt, against apt's answer for the
    default guest's kernel (the .deb itself is shared through the cache)."""
    monkeypatch.setenv("HARNESS_DEB_FETCH", "mirror")
    lines: list[str] = []
    f = debian.fetch_deb_file(cache, "amd64", "linux-image-amd64", "boot/vmlinuz-*",
                              log=lines.append)
    assert f.sha256 == default_images["kernel"].sha256
    assert isinstance(MirrorArchive(cache, "amd64").lists_stamp(), str)
