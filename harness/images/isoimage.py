"""An ISO 9660 image made from a folder (the `iso` recipe): a payload CD for a guest.

Rock Ridge carries the real names, modes (the exec bit) and symlinks, which is what
Linux and the BSDs mount by default; Joliet carries the names for Windows when every
name fits its 64 characters. The same folder always gives the same bytes: pycdlib
stamps dates with time.time() and time.localtime(), so the build sees a clock that
reads a fixed date in UTC. A symlink out of the folder, or anything not a file,
folder or symlink, is refused: the image holds the folder and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .archive import _inside

FIXED_DATE = 946684800.0  # 2000-01-01 00:00:00 UTC: any fixed date will do
VOLUME_ID = re.compile(r"[A-Z0-9_]{1,32}")  # ISO 9660 d-characters
JOLIET_MAX = 64
_LOCK = threading.Lock()  # the fixed clock is pycdlib's module state


class IsoBuildError(Exception):
    """A folder that cannot become an ISO image (an unsafe symlink, a device...)."""


@dataclass(frozen=True)
class Entry:
    rel: str  # POSIX path relative to the folder
    kind: str  # dir | file | link
    mode: int  # permission bits as they go on the image
    target: str = ""  # a symlink's target
    sha256: str = ""  # a file's content


def scan(folder: Path) -> list[Entry]:
    """The folder's entries in a fixed order, each checked; symlinks are not followed."""
    entries: list[Entry] = []
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in [*sorted(dirs), *sorted(files)]:
            path = Path(top) / name
            rel = path.relative_to(folder).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                if not _inside(rel, target):
                    raise IsoBuildError(f"{rel} is a symlink to {target!r}, outside the "
                                        f"folder {folder}: refused (copy the file in instead)")
                entries.append(Entry(rel, "link", 0o777, target))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(Entry(rel, "dir", 0o555))
            elif stat.S_ISREG(st.st_mode):
                mode = 0o555 if st.st_mode & 0o111 else 0o444
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries.append(Entry(rel, "file", mode, sha256=digest))
            else:
                raise IsoBuildError(f"{rel} in {folder} is not a file, folder or symlink")
    return entries


def folder_digest(entries: list[Entry], label: str) -> str:
    """What the image is made of: every path, kind, exec bit, content and link target."""
    h = hashlib.sha256(f"label={label}\0".encode())
    for e in entries:
        h.update(f"{e.rel}\0{e.kind}\0{e.mode:o}\0{e.sha256}\0{e.target}\0".encode())
    return h.hexdigest()


def _iso_name(name: str, is_dir: bool, taken: set[str]) -> str:
    """An ISO 9660 level-3 name (d-characters, 8.3 style) unique in its folder."""
    stem, _, ext = name.rpartition(".") if "." in name and not is_dir else (name, "", "")
    clean = re.sub(r"[^A-Z0-9_]", "_", stem.upper())[:8] or "_"
    tail = re.sub(r"[^A-Z0-9_]", "_", ext.upper())[:3]
    n = 0
    while True:
        base = clean if n == 0 else f"{clean[:8 - len(str(n)) - 1]}_{n}"
        full = base if is_dir else f"{base}.{tail};1"
        if full not in taken:
            taken.add(full)
            return full
        n += 1


class _FixedClock:
    """The `time` module as pycdlib sees it during a build: a fixed date, in UTC."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def time(self) -> float:
        return FIXED_DATE

    def localtime(self, secs: float | None = None) -> time.struct_time:
        return self.real.gmtime(FIXED_DATE if secs is None else secs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def build_iso(folder: Path, label: str) -> bytes:
    """The ISO 9660 image (Rock Ridge 1.09, Joliet when the names fit) of `folder`."""
    import pycdlib
    from pycdlib import dates, headervd, pycdlibexception
    from pycdlib import pycdlib as core

    entries = scan(folder)
    joliet = all(len(Path(e.rel).name) <= JOLIET_MAX for e in entries)
    modules = (core, headervd, dates)
    with _LOCK:
        saved = [m.time for m in modules]
        for m in modules:
            m.time = _FixedClock(time)  # type: ignore[assignment]
        try:
            iso = pycdlib.PyCdlib()
            iso.new(interchange_level=3, vol_ident=label, rock_ridge="1.09",
                    joliet=3 if joliet else None)
            isopaths: dict[str, str] = {"": ""}
            taken: dict[str, set[str]] = {}
            for e in entries:
                parent, _, name = e.rel.rpartition("/")
                iso_path = isopaths[parent] + "/" + _iso_name(
                    name, e.kind == "dir", taken.setdefault(parent, set()))
                jpath = "/" + e.rel if joliet else None
                if e.kind == "dir":
                    isopaths[e.rel] = iso_path
                    iso.add_directory(iso_path, rr_name=name, joliet_path=jpath,
                                      file_mode=0o040000 | e.mode)
                elif e.kind == "file":
                    data = (folder / e.rel).read_bytes()
                    iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=name,
                               joliet_path=jpath, file_mode=0o100000 | e.mode)
                else:
                    iso.add_symlink(iso_path, rr_symlink_name=name, rr_path=e.target)
            out = io.BytesIO()
            iso.write_fp(out)
            iso.close()
            return out.getvalue()
        except pycdlibexception.PyCdlibException as exc:
            raise IsoBuildError(f"pycdlib: {exc}") from None
        finally:
            for m, t in zip(modules, saved, strict=True):
                m.time = t  # type: ignore[assignment]
