"""Members out of ISO 9660 images (CDs), through pycdlib.

An ISO is recognised by its content (the primary volume descriptor's
`CD001` at byte 0x8001), not by its name, so a decompressed `.iso.xz` or an
ISO pulled out of a .deb is read the same way. Names are taken from the
richest tree the image has: Rock Ridge (what Linux installer CDs use, e.g.
Debian's mini.iso), else Joliet, else plain ISO 9660, whose upper-case
`NAME.EXT;1` names are matched without the version and case-insensitively.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path

ISO_MAGIC_OFFSET = 0x8001
ISO_MAGIC = b"CD001"
CHUNK = 1 << 20


class IsoError(Exception):
    pass


def is_iso(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(ISO_MAGIC_OFFSET)
        return f.read(len(ISO_MAGIC)) == ISO_MAGIC


def _plain(name: str) -> str:
    """An ISO 9660 level-1 name as people write it: no `;1`, no bare trailing dot."""
    name = name.split(";", 1)[0]
    return name[:-1] if name.endswith(".") else name


def _names(iso: object) -> tuple[str, list[tuple[str, bool]]]:
    """(the path keyword pycdlib wants, [(path without leading '/', is_dir)])."""
    if iso.has_rock_ridge():  # type: ignore[attr-defined]
        kw = "rr_path"
    elif iso.has_joliet():  # type: ignore[attr-defined]
        kw = "joliet_path"
    else:
        kw = "iso_path"
    out: list[tuple[str, bool]] = []
    for top, dirs, files in iso.walk(**{kw: "/"}):  # type: ignore[attr-defined]
        base = top.strip("/")
        out += [(f"{base}/{d}".lstrip("/"), True) for d in dirs]
        out += [(f"{base}/{f}".lstrip("/"), False) for f in files]
    return kw, out


def _match(name: str, pattern: str, plain: bool) -> bool:
    if plain:  # plain ISO 9660 names: upper case, with versions
        name = "/".join(_plain(p) for p in name.split("/")).lower()
        pattern = pattern.lower()
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def iso_member(path: Path, pattern: str) -> tuple[str, Iterator[bytes]]:
    """(member name, its bytes in chunks) for the first file matching `pattern`."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    want = pattern[2:] if pattern.startswith("./") else pattern.lstrip("/")
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(path))
    except (PyCdlibException, OSError, ValueError) as exc:
        raise IsoError(f"{path.name}: not a readable ISO 9660 image ({exc})") from None
    try:
        kw, names = _names(iso)
    except PyCdlibException as exc:
        iso.close()
        raise IsoError(f"{path.name}: unreadable ISO 9660 directory ({exc})") from None
    plain = kw == "iso_path"
    hits = [(n, d) for n, d in names if _match(n, want, plain)]
    files = [n for n, d in hits if not d]
    if not files:
        iso.close()
        if hits:
            raise IsoError(f"{path.name}: {hits[0][0]} is a directory, not a file")
        raise IsoError(f"no member {pattern!r} in the ISO image {path.name} "
                       f"({len(names)} entries, {kw.split('_')[0]} names)")
    name = sorted(files)[0]

    def gen() -> Iterator[bytes]:
        try:
            with iso.open_file_from_iso(**{kw: "/" + name}) as src:
                while block := src.read(CHUNK):
                    yield block
        except PyCdlibException as exc:  # the caller reports OSError as corrupt data
            raise OSError(str(exc)) from None
        finally:
            iso.close()

    shown = "/".join(_plain(p) for p in name.split("/")) if plain else name
    return shown, gen()
