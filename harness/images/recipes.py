"""Build recipes the harness ships (`build:` image sources).

A recipe's output is keyed by the digests of all its inputs plus the
recipe's version, so it is rebuilt only when an input changes, and the same
inputs always give the same bytes (fixed timestamps and owners).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from ..model import ImageSpec
from .cache import Cache
from .debian import archive_for, fetch_deb_file
from .isoimage import Entry, IsoBuildError, build_iso, folder_digest, scan
from .kmods import ModuleError, modules_from_deb, release_of


class RecipeError(Exception):
    """A recipe that could not build (a tool missing, an input of the wrong kind)."""


@dataclass(frozen=True)
class RecipeSpec:
    # name -> kind: str | text | image | images | list | folder (beside the guest file)
    # | size (bytes) | label (an ISO volume id) | modules (kernel module names)
    params: dict[str, str]
    required: tuple[str, ...] = ()
    version: str = "1"  # bump when the output for the same inputs changes


RECIPES: dict[str, RecipeSpec] = {
    # an initramfs: Debian's static BusyBox and the harness's init script, and optionally
    # kernel modules (with their dependencies) out of the package of the guest's `deb:` kernel
    "busybox-initramfs": RecipeSpec({"arch": "str", "kernel": "image", "modules": "modules"},
                                    version="2"),
    # the uncompressed vmlinux of an x86 bzImage, for QEMU's faster PVH entry
    "linux-pvh": RecipeSpec({"kernel": "image"}, ("kernel",)),
    # a GRUB 2 rescue ISO (BIOS and UEFI) holding images and a grub.cfg
    "grub-iso": RecipeSpec({"files": "images", "config": "text"}, ("files", "config")),
    # a freestanding program: C `source` through a (cross) compiler `cc` with `cflags`
    "cc": RecipeSpec({"cc": "str", "source": "text", "cflags": "list"}, ("cc", "source")),
    # an ISO 9660 image (Rock Ridge, Joliet) of a folder beside the guest file: a payload CD
    "iso": RecipeSpec({"folder": "folder", "label": "label"}, ("folder",)),
    # an empty qcow2 disk of a virtual size, for an installer to install onto
    "blank-disk": RecipeSpec({"size": "size"}, ("size",)),
    # an initrd with a folder's files added (a cpio archive appended: Linux unpacks every
    # archive of an initramfs, later files over earlier): debian-installer's /preseed.cfg
    "initrd-append": RecipeSpec({"initrd": "image", "folder": "folder"}, ("initrd", "folder")),
}
DEFAULT_LABEL = "PAYLOAD"


def image_inputs(spec: ImageSpec) -> list[str]:
    """Names of the guest's other images this one is made from (resolved first)."""
    if spec.kind == "from":
        return [spec.params["from"]] if spec.params.get("from") else []
    return recipe_inputs(spec)


def recipe_inputs(spec: ImageSpec) -> list[str]:
    """Names of the guest's other images this build takes as inputs."""
    if spec.kind != "build" or spec.params.get("recipe") not in RECIPES:
        return []
    kinds = RECIPES[spec.params["recipe"]].params
    names: list[str] = []
    for key, kind in kinds.items():
        value = spec.params.get(key)
        if kind == "image" and isinstance(value, str):
            names.append(value)
        elif kind == "images" and isinstance(value, dict):
            names.extend(value.values())
    return names


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


def busybox_initramfs(busybox: bytes, init_script: bytes,
                      modules: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """A gzip'd initramfs: /init (the harness's script) and a static BusyBox; kernel
    modules as /lib/modules/NAME.ko with /lib/modules/load, their names in load order,
    which the init script insmods."""
    cpio = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin"):
        cpio.directory(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", init_script, 0o755)
    if modules:
        cpio.directory("lib")
        cpio.directory("lib/modules")
        for name, data in modules:
            cpio.file(f"lib/modules/{name}.ko", data)
        cpio.file("lib/modules/load", "".join(f"{n}\n" for n, _ in modules).encode())
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


class Input(NamedTuple):
    """A resolved input image: its digest, file, and where it came from (results.json's
    details: a `deb:` kernel's package, version and member)."""
    sha256: str
    path: Path
    details: dict[str, Any] = {}  # never mutated


Inputs = dict[str, Input]  # image name -> the resolved image
Plan = tuple[dict[str, str], Callable[[], bytes]]  # (input digests, the build itself)


@dataclass(frozen=True)
class Built:
    sha256: str
    inputs: dict[str, str]  # input name -> sha256 (or version)


def _plan_busybox_initramfs(cache: Cache, params: dict, inputs: Inputs, offline: bool,
                            log: Callable[[str], None]) -> Plan:
    busybox = fetch_deb_file(cache, params["arch"], "busybox-static", "bin/busybox",
                             offline, log)
    script = resources.files("harness").joinpath("data").joinpath("busybox-init.sh").read_bytes()
    digests = {"busybox": busybox.sha256, "init": hashlib.sha256(script).hexdigest()}
    names = list(params.get("modules") or [])
    if not names:
        return digests, lambda: busybox_initramfs(
            cache.blob_path(busybox.sha256).read_bytes(), script)
    kernel = inputs[params["kernel"]]
    deb, what, release = _kernel_package(cache, kernel, offline, log)
    digests["kernel-deb"] = kernel.details.get("deb_sha256", "")
    digests["kernel-release"] = release or ""
    digests["modules"] = hashlib.sha256("\0".join(names).encode()).hexdigest()

    def make() -> bytes:
        log(f"  reading kernel modules {', '.join(names)} out of {what}")
        try:
            mods = modules_from_deb(deb, release, names, what, log)
        except ModuleError as exc:
            raise RecipeError(str(exc)) from None
        return busybox_initramfs(cache.blob_path(busybox.sha256).read_bytes(), script, mods)

    return digests, make


def _kernel_package(cache: Cache, kernel: Input, offline: bool,
                    log: Callable[[str], None]) -> tuple[Path, str, str | None]:
    """(the .deb a `deb:` kernel image came from, its name for messages, the kernel
    release): the same package and version, from the cache (downloaded again if the
    cache lost it)."""
    d = kernel.details
    if not d.get("package") or not d.get("version"):
        raise RecipeError("kernel modules need the kernel to be a deb: image (its package "
                          "holds the modules)")
    what = f"{d['package']} {d['version']} ({d.get('arch', '?')})"
    deb = cache.blob_path(d["deb_sha256"]) if d.get("deb_sha256") else None
    if deb is None or not deb.is_file():
        if offline:
            raise RecipeError(f"offline, and the package {what} is not in the cache")
        archive = archive_for(cache, d["arch"], log)
        archive.update()  # the version must be in the package lists apt answers from
        deb = archive.download(d["package"], d["version"], None)
    return deb, what, release_of(d.get("member", ""))


def _plan_linux_pvh(cache: Cache, params: dict, inputs: Inputs, offline: bool,
                    log: Callable[[str], None]) -> Plan:
    kernel = inputs[params["kernel"]]
    return {"kernel": kernel.sha256}, lambda: linux_pvh(kernel.path.read_bytes())


def _plan_grub_iso(cache: Cache, params: dict, inputs: Inputs, offline: bool,
                   log: Callable[[str], None]) -> Plan:
    files = {iso: inputs[name][:2] for iso, name in params["files"].items()}
    config = params["config"]
    digests = {f"file:{iso}": d for iso, (d, _) in sorted(files.items())}
    digests["grub.cfg"] = hashlib.sha256(config.encode()).hexdigest()
    digests["grub"] = _grub_version()
    return digests, lambda: grub_iso({iso: p for iso, (_, p) in files.items()}, config)


def _plan_cc(cache: Cache, params: dict, inputs: Inputs, offline: bool,
             log: Callable[[str], None]) -> Plan:
    cc, source, flags = params["cc"], params["source"], list(params.get("cflags") or [])
    digests = {"source": hashlib.sha256(source.encode()).hexdigest(),
               "cflags": hashlib.sha256("\0".join(flags).encode()).hexdigest(),
               "cc": _cc_version(cc)}
    return digests, lambda: compile_c(cc, source, flags)


def _scan_folder(folder: Path) -> list[Entry]:
    """A `folder` parameter's entries, each checked (symlinks kept inside it)."""
    if not folder.is_dir():
        raise RecipeError(f"{folder}: no such folder")
    try:
        return scan(folder)
    except (IsoBuildError, OSError) as exc:
        raise RecipeError(str(exc)) from None


def _plan_iso(cache: Cache, params: dict, inputs: Inputs, offline: bool,
              log: Callable[[str], None]) -> Plan:
    folder, label = Path(params["folder"]), params.get("label") or DEFAULT_LABEL
    entries = _scan_folder(folder)

    def make() -> bytes:
        try:
            return build_iso(folder, label)
        except (IsoBuildError, OSError) as exc:
            raise RecipeError(str(exc)) from None

    return {"folder": folder_digest(entries, label), "pycdlib": _pycdlib_version()}, make


def _plan_blank_disk(cache: Cache, params: dict, inputs: Inputs, offline: bool,
                     log: Callable[[str], None]) -> Plan:
    size = int(params["size"])
    return {"size": str(size), "qemu-img": _qemu_img_version()}, lambda: blank_disk(size)


def _plan_initrd_append(cache: Cache, params: dict, inputs: Inputs, offline: bool,
                        log: Callable[[str], None]) -> Plan:
    initrd, folder = inputs[params["initrd"]], Path(params["folder"])
    entries = _scan_folder(folder)
    return ({"initrd": initrd.sha256, "folder": folder_digest(entries, "")},
            lambda: initrd_append(initrd.path.read_bytes(), folder, entries))


def initrd_append(initrd: bytes, folder: Path, entries: Sequence[Entry]) -> bytes:
    """`initrd` unchanged, padded to 4 bytes (where the kernel looks for the next archive),
    then a gzip'd newc cpio of the folder's entries (owners root, times zero)."""
    cpio = CpioWriter()
    for e in entries:
        if e.kind == "dir":
            cpio.directory(e.rel)
        elif e.kind == "link":
            cpio.symlink(e.rel, e.target)
        else:
            cpio.file(e.rel, (folder / e.rel).read_bytes(), 0o755 if e.mode & 0o111 else 0o644)
    return (initrd + b"\0" * (-len(initrd) % 4)
            + gzip.compress(cpio.finish(), compresslevel=9, mtime=0))


_PLANS = {
    "busybox-initramfs": _plan_busybox_initramfs,
    "linux-pvh": _plan_linux_pvh,
    "grub-iso": _plan_grub_iso,
    "cc": _plan_cc,
    "iso": _plan_iso,
    "blank-disk": _plan_blank_disk,
    "initrd-append": _plan_initrd_append,
}


def build(cache: Cache, recipe: str, params: dict, inputs: Inputs, offline: bool,
          log: Callable[[str], None] = print) -> Built:
    """Build a recipe's output, or find it in the cache by its inputs' digests."""
    if recipe not in _PLANS:
        raise RecipeError(f"unknown recipe {recipe!r}")
    digests, make = _PLANS[recipe](cache, params, inputs, offline, log)
    key = f"build:{recipe}:{RECIPES[recipe].version}:" + ":".join(
        f"{k}={v}" for k, v in sorted(digests.items()))
    ref = cache.get_ref(key)
    if ref is None:
        with cache.lock(key):
            ref = cache.get_ref(key)
            if ref is None:
                log(f"  building {recipe}")
                sha = cache.put_bytes(make())
                ref = cache.set_ref(key, sha, recipe=recipe, inputs=digests)
    return Built(ref["sha256"], digests)


# --- linux-pvh ------------------------------------------------------------------

XZ_MAGIC = b"\xfd7zXZ\x00"
# An ELF note "Xen", type 18 (XEN_ELFNOTE_PHYS32_ENTRY): the PVH entry point QEMU needs.
# Its address is pointer-sized: 8 bytes in 64-bit kernels, 4 in 32-bit ones.
PVH_NOTES = tuple(struct.pack("<III", 4, size, 18) + b"Xen\0" for size in (8, 4))


def linux_pvh(bzimage: bytes) -> bytes:
    """The vmlinux inside an xz-compressed x86 bzImage; it must have a PVH entry."""
    at = bzimage.find(XZ_MAGIC)
    if at < 0:
        raise RecipeError("no xz payload in this kernel (not an xz-compressed x86 bzImage)")
    try:
        vmlinux = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[at:])
    except lzma.LZMAError as exc:
        raise RecipeError(f"the kernel's xz payload does not decompress: {exc}") from None
    if not vmlinux.startswith(b"\x7fELF"):
        raise RecipeError("the kernel's payload is not an ELF vmlinux")
    if not any(note in vmlinux for note in PVH_NOTES):
        raise RecipeError("this vmlinux has no PVH entry note (kernel built without CONFIG_PVH)")
    return vmlinux


# --- grub-iso ---------------------------------------------------------------------


def _grub_version() -> str:
    if shutil.which("grub-mkrescue") is None:
        raise RecipeError("grub-mkrescue not found (Debian packages grub-pc-bin, "
                          "grub-efi-amd64-bin, xorriso, mtools)")
    out = subprocess.run(["grub-mkrescue", "--version"], capture_output=True, text=True)
    return out.stdout.strip().rsplit(" ", 1)[-1]


def grub_iso(files: dict[str, Path], config: str) -> bytes:
    """A GRUB rescue ISO with `files` at their paths and `config` as boot/grub/grub.cfg."""
    with tempfile.TemporaryDirectory(prefix="grub-iso-") as tmp:
        root = Path(tmp) / "root"
        for iso_path, src in files.items():
            dest = root / iso_path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        cfg = root / "boot" / "grub" / "grub.cfg"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(config)
        out = Path(tmp) / "out.iso"
        proc = subprocess.run(["grub-mkrescue", "-o", str(out), str(root)], capture_output=True,
                              text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
        if proc.returncode != 0 or not out.exists():
            tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
            raise RecipeError(f"grub-mkrescue failed: {tail}")
        return out.read_bytes()


# --- cc ------------------------------------------------------------------------


def _cc_version(cc: str) -> str:
    if shutil.which(cc) is None:
        raise RecipeError(f"{cc} not found (a cross compiler: Debian's gcc-mipsel-linux-gnu "
                          "installs mipsel-linux-gnu-gcc)")
    out = subprocess.run([cc, "-dumpfullversion"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def compile_c(cc: str, source: str, flags: list[str]) -> bytes:
    """The linked program `cc` makes of `source` (no build id: the same bytes each time)."""
    with tempfile.TemporaryDirectory(prefix="cc-") as tmp:
        src, out = Path(tmp) / "program.c", Path(tmp) / "program"
        src.write_text(source)
        proc = subprocess.run([cc, *flags, "-Wl,--build-id=none", "-o", str(out), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
            raise RecipeError(f"{cc} failed: {tail}")
        return out.read_bytes()


# --- iso, blank-disk ---------------------------------------------------------------


def _pycdlib_version() -> str:
    from importlib.metadata import version

    return version("pycdlib")


def _qemu_img_version() -> str:
    if shutil.which("qemu-img") is None:
        raise RecipeError("qemu-img not found (Debian package qemu-utils)")
    out = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0].strip() if out.stdout else "?"


def blank_disk(size: int) -> bytes:
    """An empty qcow2 of `size` bytes (qemu-img writes no date: the same bytes each time)."""
    with tempfile.TemporaryDirectory(prefix="blank-disk-") as tmp:
        out = Path(tmp) / "disk.qcow2"
        proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(out), str(size)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise RecipeError(f"qemu-img create failed: {proc.stderr.strip()}")
        return out.read_bytes()
