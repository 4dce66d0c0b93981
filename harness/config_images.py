"""Validation of a guest file's `images:` (one source kind each, digests, recipes)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import knowledge
from .files import SAFE_NAME_RULE, safe_name
from .images.archive import safe_member_name
from .images.isoimage import VOLUME_ID
from .images.kmods import MODULE_NAME
from .images.recipes import RECIPES, image_inputs
from .model import ImageSpec
from .validate import _Bad, _bool, _Checker, _Map, _one_of, _sha256, _str, _text, shown

# from: a member taken out of another image of the guest (a kernel out of an ISO)
SOURCE_KINDS = ("url", "deb", "build", "file", "from")
IMAGE_KEYS = (*SOURCE_KINDS, "sha256", "sha512", "checksums", "mirrors", "decompress",
              "member", "insecure", "pin", "obtain")
URL_ONLY = ("checksums", "mirrors", "insecure", "pin")
DECOMPRESS = ("auto", "none", "gz", "xz", "bz2", "zst")


def _images(c: _Checker, m: _Map, base: Path, arch: str) -> dict[str, ImageSpec]:
    sub = m.sub("images")
    out: dict[str, ImageSpec] = {}
    if sub is None:
        return out
    for name, value in sub.data.items():
        if not safe_name(name):
            c.issue(sub.line_of(name), sub.path(name),
                    f"an image name is {SAFE_NAME_RULE} characters")
            continue
        im = c.mapping(value, sub.path(str(name)), sub.line_of(name))
        if im is None:
            continue
        im.keys(IMAGE_KEYS)
        kinds = [k for k in SOURCE_KINDS if k in im.data]
        if len(kinds) != 1:
            c.issue(im.line, im.prefix, f"needs exactly one source ({', '.join(SOURCE_KINDS)})")
            continue
        kind = kinds[0]
        for key in im.data:
            if (key in URL_ONLY and kind != "url") or (
                    key == "member" and kind not in ("url", "file", "from")) or (
                    key == "decompress" and kind not in ("url", "file", "deb", "from")) or (
                    key == "obtain" and kind != "file"):
                c.issue(im.line_of(key), im.path(key), f"does not apply to {kind} sources")
        sha = im.get("sha256", _sha256)
        params = _source_params(c, im, kind, base, arch)
        if params is not None:
            out[str(name)] = ImageSpec(str(name), kind, params, sha)
    for spec in out.values():  # recipes and from: take other images of the guest as inputs
        for ref in image_inputs(spec):
            if ref not in out or ref == spec.name:
                what = "from:" if spec.kind == "from" else "recipe input"
                c.issue(sub.line_of(spec.name), sub.path(spec.name),
                        f"{what} {shown(ref)} is not another image of this guest")
        if spec.params.get("modules") and out.get(spec.params.get("kernel", "")) and \
                out[spec.params["kernel"]].kind != "deb":
            c.issue(sub.line_of(spec.name), f"{sub.path(spec.name)}.build.kernel",
                    f"{shown(spec.params['kernel'])} is not a deb: image (kernel modules "
                    "come out of the package the kernel came from)")
    return out


def _url(insecure: bool) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        url = _str(v)
        scheme = urlsplit(url).scheme
        if scheme == "http" and not insecure:
            raise _Bad("plain http is refused; use https, or set `insecure: true` on the image")
        if scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise _Bad(f"expected an https:// URL, got {shown(url)}")
        return url

    return check


PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _image_file(base: Path) -> Callable[[Any], str]:
    """A local image: a regular file, or one still to be obtained (missing). Only
    stat() is used, which neither blocks on a FIFO nor reads a device; /proc, /sys
    and /dev hold no images (/proc/self/mem is "regular" and cannot be read)."""

    def check(v: Any) -> str:
        try:
            path = (base / _str(v)).resolve()
            if any(path.is_relative_to(top) for top in PSEUDO_FILESYSTEMS):
                raise _Bad(f"{shown(str(path))}: an image cannot be in /proc, /sys or /dev")
            if path.exists() and not path.is_file():
                raise _Bad(f"{shown(str(path))}: not a regular file")
        except (OSError, ValueError, RuntimeError) as exc:  # a loop, a NUL, a long name
            raise _Bad(f"cannot use this path: {shown(str(exc))}") from None
        return str(path)

    return check


def _sha512(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[0-9a-fA-F]{128}", v):
        raise _Bad("expected 128 hexadecimal digits")
    return v.lower()


def _member(v: Any) -> str:
    name = _str(v)
    if not safe_member_name(name):
        raise _Bad("an archive member must be a relative path without '..'")
    return name


def _source_params(
    c: _Checker, im: _Map, kind: str, base: Path, arch: str
) -> dict[str, Any] | None:
    debian_arch = knowledge.arches()[arch].debian
    derive = {"decompress": im.get("decompress", _one_of(*DECOMPRESS), "auto"),
              "member": im.get("member", _member)}
    if kind == "url":
        insecure = im.get("insecure", _bool, False)
        url = im.get("url", _url(insecure))
        params = {
            "url": url,
            "mirrors": im.str_list("mirrors", _url(insecure)) or [],
            "sha512": im.get("sha512", _sha512),
            "checksums": im.get("checksums", _url(insecure)),
            "insecure": insecure,
            "pin": im.get("pin", _bool, True),
            **derive,
        }
        digests = [k for k in ("sha256", "sha512", "checksums") if k in im.data]
        if len(digests) > 1:
            c.issue(im.line, im.prefix, f"give one digest, not {' and '.join(digests)}")
        if not digests and params["pin"]:
            c.issue(im.line, im.prefix, "needs sha256, sha512 or checksums "
                    "(or `pin: false` to accept it unverified)")
        return params if url else None
    if kind == "deb":
        d = im.sub("deb")
        if d is None:
            return None
        d.keys(("package", "path", "arch"), ("package", "path"))
        return {
            "package": d.get("package", _str, ""),
            "path": d.get("path", _str, ""),
            "arch": d.get("arch", _str, debian_arch),
            # unlike a download, a packaged file is used as packaged unless told
            "decompress": im.get("decompress", _one_of(*DECOMPRESS), "none"),
        }
    if kind == "from":
        if "member" not in im.data:
            c.issue(im.line, im.prefix, "a from: image needs member: (the file to take out)")
        return {"from": im.get("from", _str, ""), "member": derive["member"],
                # like a packaged file, a member is used as it is unless told
                "decompress": im.get("decompress", _one_of(*DECOMPRESS), "none")}
    if kind == "file":
        path = im.get("file", _image_file(base))
        if path is None:
            return None
        # obtain: how to get a file nobody may redistribute (Windows, QNX, Darwin);
        # a cell whose file is missing is then skipped with these instructions.
        return {"path": path, "sha512": im.get("sha512", _sha512),
                "obtain": im.get("obtain", _text), **derive}
    # build: a recipe name, or a mapping {recipe: name, param: value...}
    value = im.data["build"]
    if isinstance(value, str):
        b = _Map(c, {"recipe": value}, im.path("build"))
    else:
        b = im.sub("build")
        if b is None:
            return None
    recipe = b.get("recipe", _str, "")
    if recipe not in RECIPES:
        c.issue(im.line_of("build"), im.path("build"),
                f"unknown recipe {shown(recipe)} (known: {', '.join(sorted(RECIPES))})")
        return None
    spec = RECIPES[recipe]
    if isinstance(value, str) and spec.required:  # the short form has no parameters
        c.issue(im.line_of("build"), im.path("build"),
                f"recipe {recipe} needs {', '.join(spec.required)}: write "
                f"build: {{recipe: {recipe}, {spec.required[0]}: ...}}")
        return None
    b.keys(("recipe", *spec.params), spec.required)
    params: dict[str, Any] = {"recipe": recipe}
    for key, kind_of in spec.params.items():
        if key in b.data:
            check = _folder(base) if kind_of == "folder" else _RECIPE_PARAM[kind_of]
            params[key] = b.get(key, check)
    if "arch" in spec.params:
        params.setdefault("arch", debian_arch)
    if ("modules" in b.data) != ("kernel" in b.data) and "modules" in spec.params:
        c.issue(b.line, b.prefix, "kernel modules need both `kernel:` (the guest's deb: "
                "kernel image) and `modules:` (their names)")
    return params


def _image_map(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not v:
        raise _Bad("expected a mapping of paths to image names")
    for path, ref in v.items():
        if not isinstance(path, str) or not safe_member_name(path) or not isinstance(ref, str):
            raise _Bad(f"{shown(path)}: expected a relative path (no '..') mapped to an image name")
    return {str(k): str(v) for k, v in v.items()}


def _folder(base: Path) -> Callable[[Any], str]:
    """A folder beside the guest file (relative to it), as an absolute path."""

    def check(v: Any) -> str:
        rel = _str(v)
        try:
            path = (base / rel).resolve()
            if not path.is_dir():
                raise _Bad(f"{shown(rel)}: no such folder (relative to the guest file)")
        except (OSError, ValueError, RuntimeError) as exc:
            raise _Bad(f"cannot use this path: {shown(str(exc))}") from None
        return str(path)

    return check


_SIZE = re.compile(r"([1-9][0-9]{0,15})([KMGT]?)", re.IGNORECASE)
MAX_DISK = 16 << 40  # 16T: qcow2 takes more, but a typo should not


def _size(v: Any) -> int:
    """'64M', '8G', '512K', '1T' or a number of bytes -> bytes (a whole number of sectors)."""
    m = _SIZE.fullmatch(v.strip()) if isinstance(v, str) else None
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        size = v
    elif m:
        size = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]
    else:
        raise _Bad(f"expected a size such as 64M, 8G or 512K, got {shown(v)}")
    if size % 512:
        raise _Bad(f"{shown(v)}: not a whole number of 512-byte sectors")
    if size > MAX_DISK:
        raise _Bad(f"{shown(v)}: more than 16T")
    return size


def _label(v: Any) -> str:
    text = _str(v)
    if not VOLUME_ID.fullmatch(text):
        raise _Bad(f"{shown(text)}: an ISO 9660 volume id is 1 to 32 of A-Z, 0-9 and _")
    return text


def _modules(v: Any) -> list[str]:
    if not isinstance(v, list) or not v:
        raise _Bad("expected a list of kernel module names (virtio_blk, isofs...)")
    names = [_str(x) for x in v]
    for name in names:
        if not MODULE_NAME.fullmatch(name):
            raise _Bad(f"{shown(name)}: a module name is letters, digits, _ and -")
    if len(set(names)) != len(names):
        raise _Bad("a module is named twice")
    return names


_RECIPE_PARAM: dict[str, Callable[[Any], Any]] = {
    "str": _str, "text": _text, "image": _str, "images": _image_map,
    "list": lambda v: [_str(x) for x in (v if isinstance(v, list) else [v])],
    "size": _size, "label": _label, "modules": _modules,
}
