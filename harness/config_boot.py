"""A guest file's `boot:` (the boot medium, kernel and command line, firmware image,
multiboot modules, a network boot's files), checked like the rest of it. Shared by
the guest's own boot and each of its `stages:`."""

from __future__ import annotations

from pathlib import PurePosixPath

from . import knowledge
from .model import NO_BIOS, BootSpec, ImageSpec, Module
from .validate import _Checker, _Map, _str, _text, shown

BOOT_KINDS = ("kernel", "cdrom", "disk", "floppy", "network")


def boot_spec(c: _Checker, m: _Map, images: dict[str, ImageSpec]) -> BootSpec | None:
    b = m.sub("boot")
    if b is None:
        return None
    b.keys((*BOOT_KINDS, "initrd", "cmdline", "bios", "modules", "bootfile"))
    kinds = [k for k in BOOT_KINDS if k in b.data]
    # a kernel boot may keep its CD attached (an installer ISO whose kernel it boots)
    cd_too = kinds == ["kernel", "cdrom"]
    if cd_too:
        kinds = ["kernel"]
    if not kinds and "bios" in b.data and b.data.keys() <= {"bios"}:
        # the machine's firmware alone (a console ROM, e.g. the MicroVAX 3900's)
        ref = b.get("bios", _str)
        if ref is not None and ref not in images:
            c.issue(b.line_of("bios"), b.path("bios"), f"no image named {shown(ref)} in images")
        return BootSpec("firmware", bios=ref)
    if len(kinds) != 1:
        c.issue(b.line, b.prefix, f"needs exactly one of {', '.join(BOOT_KINDS)} "
                "(a kernel boot may also attach a cdrom; bios alone boots the firmware)")
        return None
    kind = kinds[0]
    kernels: dict[str, str] = {}
    if kind == "kernel" and isinstance(b.data.get("kernel"), dict):
        k = b.sub("kernel")
        assert k is not None
        k.keys(knowledge.FIRMWARES)
        kernels = {fw: ref for fw in knowledge.FIRMWARES if (ref := k.get(fw, _str))}
        for fw, ref in kernels.items():
            if ref not in images:
                c.issue(k.line_of(fw), k.path(fw), f"no image named {shown(ref)} in images")
    refs = (kind, "initrd") if not kernels else ("initrd",)
    if b.data.get("bios") != NO_BIOS:  # `bios: none`: no firmware, not an image
        refs = (*refs, "bios")
    for key in (*refs, "cdrom") if cd_too else refs:
        ref = b.get(key, _str)
        if ref is not None and ref not in images:
            c.issue(b.line_of(key), b.path(key), f"no image named {shown(ref)} in images")
    modules = _modules(c, b, images)
    if "modules" in b.data and "initrd" in b.data:
        c.issue(b.line_of("modules"), b.path("modules"),
                "give an initrd or multiboot modules, not both")
    bios = b.get("bios", _str)
    if kind != "network" and "bootfile" in b.data:
        c.issue(b.line_of("bootfile"), b.path("bootfile"), "only for network boots")
    if kind != "kernel":
        for key in ("initrd", "cmdline", "modules"):
            if key in b.data:
                c.issue(b.line_of(key), b.path(key), "only for kernel boots")
        return BootSpec(kind, image=b.get(kind, _str), bios=bios,
                        bootfiles=_bootfiles(c, b) if kind == "network" else {})
    return BootSpec(
        "kernel",
        kernel=next(iter(kernels.values())) if kernels else b.get("kernel", _str),
        kernels=kernels,
        initrd=b.get("initrd", _str),
        cmdline=b.get("cmdline", _text, ""),
        bios=bios,
        modules=tuple(modules),
        cdrom=b.get("cdrom", _str) if cd_too else None,
    )


def _bootfiles(c: _Checker, b: _Map) -> dict[str, str]:
    """`bootfile:` of a network boot: the file the PXE client asks TFTP for, one for
    every firmware or `{bios: …, uefi: …}`, a path inside the tree."""
    if "bootfile" not in b.data:
        c.issue(b.line, b.path("bootfile"), "a network boot needs the file its PXE client "
                "loads (e.g. pxelinux.0)")
        return {}
    if isinstance(b.data["bootfile"], dict):
        f = b.sub("bootfile")
        assert f is not None
        f.keys(knowledge.FIRMWARES)
        files = {fw: name for fw in knowledge.FIRMWARES if (name := f.get(fw, _str))}
    else:
        files = dict.fromkeys(knowledge.FIRMWARES, b.get("bootfile", _str, ""))
    for name in set(files.values()):
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or ".." in parts or "," in name:
            c.issue(b.line_of("bootfile"), b.path("bootfile"),
                    f"{shown(name)}: expected a relative path inside the tree, without ','")
    return {fw: name for fw, name in files.items() if name}


def _modules(c: _Checker, b: _Map, images: dict[str, ImageSpec]) -> list[Module]:
    out = []
    for key, line, value in c.items(b, "modules"):
        mm = c.mapping(value, key, line)
        if mm is None:
            continue
        mm.keys(("image", "args"), ("image",))
        ref = mm.get("image", _str)
        if ref is not None and ref not in images:
            c.issue(mm.line_of("image"), mm.path("image"), f"no image named {shown(ref)} in images")
        elif ref is not None:
            out.append(Module(ref, mm.get("args", _text, "")))
    return out
