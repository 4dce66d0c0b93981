"""`harness try`'s input made into a guest: an image file or URL, or a kernel with
its initrd, detected by content (detect.py), then written as the guest file the
backends boot (the same text `--write` starts from, so what was tried is what
is written)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import load_guest
from ..images.store import ImageStore, ResolvedImage
from ..model import Guest
from .detect import Detected, detect

# detect.py's boot kinds -> the guest file's boot kinds
BOOT_KIND = {"cdrom": "cdrom", "floppy": "floppy", "disk": "disk", "kernel": "kernel"}
PLACEHOLDER = {"name": "watching", "pattern": "(?!)"}  # never matches: try watches itself


class TryError(Exception):
    """An image `try` cannot boot: a clear reason, exit status 2."""


@dataclass
class Tried:
    """The guest `try` boots, its images, and what detection said about them."""

    guest: Guest
    data: dict[str, Any]  # the guest file's content, without milestones
    images: dict[str, ResolvedImage]
    detected: Detected
    sources: dict[str, str]  # image name -> what the user gave (path or URL)
    raw_sha256: str  # of the boot image as given (before any decompression)


def guest_id(name: str) -> str:
    """A guest id from a file or URL name: lower case, [a-z0-9-], no extensions."""
    stem = re.sub(r"(\.(iso|img|ima|bin|qcow2|vmdk|vdi|raw|gz|xz|bz2|zst|zip|efi))+$", "",
                  Path(name.split("?")[0]).name.lower())
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-")[:60] or "image"


def _spec(src: str, sha256: str | None) -> dict[str, Any]:
    if re.match(r"^[a-z][a-z0-9+.-]*://", src):
        return {"url": src, "sha256": sha256} if sha256 else {"url": src, "pin": False}
    path = Path(src).expanduser()
    if not path.is_file():
        raise TryError(f"{src}: no such file")
    spec: dict[str, Any] = {"file": str(path.resolve())}
    if sha256:
        spec["sha256"] = sha256
    return spec


def _load(data: dict[str, Any], where: Path) -> Guest:
    path = where / f"{data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_guest(path)


def _resolve_raw(name: str, spec: dict[str, Any], store: ImageStore,
                 workdir: Path) -> ResolvedImage:
    """The bytes as given (not decompressed by name: the content decides)."""
    stub = {"id": "probe-" + name, "os": "unknown", "arch": "x86_64",
            "images": {name: {**spec, "decompress": "none"}}, "boot": {"disk": name},
            "milestones": [PLACEHOLDER]}
    guest = _load(stub, workdir)
    return store.resolve_guest(guest)[name]


def prepare(image: str | None, store: ImageStore, workdir: Path, *, sha256: str | None = None,
            kernel: str | None = None, initrd: str | None = None, append: str | None = None,
            arch: str | None = None, memory: str = "1024M") -> Tried:
    """Detect what was given and make the guest that boots it."""
    images: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    main = "kernel" if kernel else "image"
    for name, src in (("image", image), ("kernel", kernel), ("initrd", initrd)):
        if src:
            images[name] = _spec(src, sha256 if name == main else None)
            sources[name] = src
    if not images:
        raise TryError("give an image, or --kernel (with --initrd)")
    if initrd and not kernel:
        raise TryError("--initrd needs --kernel")
    raw = _resolve_raw(main, images[main], store, workdir)
    found = detect(raw.path, workdir)
    if found.compression == "zip":
        images[main]["member"] = found.path.name
    elif found.compression:
        images[main]["decompress"] = found.compression
    boot: dict[str, Any]
    if kernel:
        boot = {"kernel": "kernel", "cmdline": append if append is not None
                else "console=ttyS0"}
        if initrd:
            boot["initrd"] = "initrd"
        if image:
            boot["cdrom"] = "image"
    elif found.boot == "kernel":
        boot = {"kernel": "image", "cmdline": append if append is not None else "console=ttyS0"}
    elif found.boot in BOOT_KIND:
        boot = {BOOT_KIND[found.boot]: "image"}
    elif found.boot == "efi":
        # UEFI firmware starts any EFI application given to QEMU's -kernel (OVMF loads
        # it with LoadImage before it tries the Linux protocol): no FAT disk needed
        boot = {"kernel": "image", **({"cmdline": append} if append else {})}
    else:
        raise TryError(f"{sources[main]}: not something a machine boots "
                       f"({'; '.join(found.facts) or found.kind})")
    guest_arch = arch or found.arch or "x86_64"
    data: dict[str, Any] = {
        "id": guest_id(sources[main]), "name": f"{Path(sources[main]).name} (tried)",
        "os": "unknown", "arch": guest_arch, "verified": "observed", "tags": ["tried"],
        "notes": "Written by `harness try` from what one boot showed. Detected: "
                 + "; ".join(found.facts or (found.kind,)) + ".",
        "images": images, "boot": boot,
        "firmware": list(found.firmware or ["bios"]),
        "memory": memory, "console": "screen",
        "milestones": [PLACEHOLDER],
    }
    guest = _load(data, workdir)
    resolved = store.resolve_guest(guest)
    return Tried(guest, data, resolved, found, sources, raw.sha256)
