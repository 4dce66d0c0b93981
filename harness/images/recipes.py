"""Build recipes the harness ships (`build:` image sources).

A recipe's output is keyed by the digests of all its inputs plus the
recipe's version, so it is rebuilt only when an input changes, and the same
inputs always give the same bytes (fixed timestamps and owners).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from .cache import Cache
from .debian import fetch_deb_file

# recipe name -> the parameters a guest file may give it (besides `recipe`)
RECIPES: dict[str, tuple[str, ...]] = {
    "busybox-initramfs": ("arch",),
}

BUSYBOX_INITRAMFS_VERSION = "1"


@dataclass(frozen=True)
class Built:
    sha256: str
    inputs: dict[str, str]  # input name -> sha256


# --- cpio "newc", the initramfs format ---------------------------------------

S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR = 0o040000, 0o100000, 0o120000, 0o020000


class CpioWriter:
    """Writes a cpio archive in the "newc" format the Linux kernel unpacks."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        encoded = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + encoded)
        self.out.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, S_IFDIR | 0o755, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        data = self.out.getvalue()
        return data + b"\0" * (-len(data) % 512)


def busybox_initramfs(busybox: bytes, init_script: bytes) -> bytes:
    """A gzip'd initramfs: /init (the harness's script) and a static BusyBox."""
    cpio = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin"):
        cpio.directory(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", init_script, 0o755)
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def build(cache: Cache, recipe: str, params: dict, offline: bool,
          log: Callable[[str], None] = print) -> Built:
    if recipe == "busybox-initramfs":
        return _build_busybox_initramfs(cache, params["arch"], offline, log)
    raise ValueError(f"unknown recipe {recipe!r}")


def _build_busybox_initramfs(cache: Cache, arch: str, offline: bool,
                             log: Callable[[str], None]) -> Built:
    busybox = fetch_deb_file(cache, arch, "busybox-static", "bin/busybox", offline, log)
    script = resources.files("harness").joinpath("data", "busybox-init.sh").read_bytes()
    inputs = {"busybox": busybox.sha256, "init": hashlib.sha256(script).hexdigest()}
    key = "build:busybox-initramfs:" + BUSYBOX_INITRAMFS_VERSION + ":" + ":".join(
        f"{k}={v}" for k, v in sorted(inputs.items()))
    ref = cache.get_ref(key)
    if ref is not None:
        return Built(ref["sha256"], inputs)
    with cache.lock(key):
        ref = cache.get_ref(key)
        if ref is not None:
            return Built(ref["sha256"], inputs)
        log(f"  building busybox-initramfs ({arch})")
        data = busybox_initramfs(cache.blob_path(busybox.sha256).read_bytes(), script)
        sha = cache.put_bytes(data)
        cache.set_ref(key, sha, recipe="busybox-initramfs", inputs=inputs,
                      busybox_version=busybox.version)
    return Built(sha, inputs)
