"""Cache housekeeping behind `harness cache`: import, listing, pruning.

`import` lets an air-gapped lab (and the test suite) seed the cache with
local copies of images whose digests the guest files name, so the same
guest files that download from upstream work offline.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..model import Guest
from .cache import Cache, CacheEntry, Digests

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30d', '12h', '90m', '45s' or plain seconds -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r}: expected a duration such as 30d, 12h or 90m")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return float(m.group(1)) * unit


def parse_size(text: str) -> int:
    """'10G', '500M', '2T' or plain bytes -> bytes."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r}: expected a size such as 10G or 500M")
    unit = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * unit)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_age(seconds: float) -> str:
    for limit, unit in ((120, "s"), (7200, "min"), (172800, "h")):
        if seconds < limit:
            return f"{seconds / {'s': 1, 'min': 60, 'h': 3600}[unit]:.0f} {unit} ago"
    return f"{seconds / 86400:.0f} d ago"


def wanted_digests(guests: dict[str, Guest]) -> dict[str, list[str]]:
    """'sha256:<hex>' / 'sha512:<hex>' -> the guest images that name it."""
    out: dict[str, list[str]] = {}
    for guest in guests.values():
        for spec in guest.images.values():
            if spec.kind != "url":
                continue
            for alg, value in (("sha256", spec.sha256), ("sha512", spec.params.get("sha512"))):
                if value:
                    out.setdefault(f"{alg}:{value}", []).append(f"{guest.id}/{spec.name}")
    return out


@dataclass
class Imported:
    path: Path
    images: list[str]  # guest/image names it serves; empty when no guest names it


def import_dir(cache: Cache, folder: Path, guests: dict[str, Guest]) -> list[Imported]:
    """Copy every file under `folder` whose digest a guest names into the cache."""
    wanted = wanted_digests(guests)
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        d = Digests.of_file(path)
        keys = [k for k in (f"sha256:{d.sha256}", f"sha512:{d.sha512}") if k in wanted]
        if not keys:
            out.append(Imported(path, []))
            continue
        sha = d.sha256
        if not cache.has_blob(sha):
            fd, tmp = tempfile.mkstemp(dir=cache.sub("tmp"), prefix="import.")
            with open(fd, "wb") as dst, path.open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
            cache.adopt(Path(tmp), sha)
        for key in keys:
            cache.set_ref(f"download:{key}", sha, url=f"file://{path.resolve()}",
                          size=path.stat().st_size, sha512=d.sha512, pinned=True,
                          imported=True)
        out.append(Imported(path, sorted({n for k in keys for n in wanted[k]})))
    return out


def describe(entry: CacheEntry) -> tuple[str, str, bool | None]:
    """(kind, what, pinned) of a cache entry, for `harness cache ls`."""
    kind = entry.key.split(":", 1)[0]
    info = entry.info
    if kind in ("download", "download-url"):
        return "download", str(info.get("url", "")), bool(info.get("pinned", kind == "download"))
    if kind == "deb":
        return "deb", f"{info.get('package')} {info.get('version')} {info.get('member')}", True
    if kind == "debfile":
        return "debfile", entry.key.split(":", 2)[2], True
    if kind == "build":
        return "build", str(info.get("recipe", "")), None
    if kind == "sums":
        return "sums", str(info.get("url", entry.key[5:])), None
    if kind == "derive":
        return "derived", str(info.get("member") or entry.key.split(":")[2]), None
    return kind, entry.key, None


def listing(cache: Cache, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    rows = [("kind", "size", "last used", "pinned", "what")]
    seen = set()
    for e in sorted(cache.entries(), key=lambda e: -e.last_used):
        kind, what, pinned = describe(e)
        if (kind, e.sha256) in seen:  # another name for the same thing (e.g. "latest")
            continue
        seen.add((kind, e.sha256))
        rows.append((kind, human_size(e.size), human_age(now - e.last_used),
                     {True: "yes", False: "NO", None: "-"}[pinned], what))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join([*(r[i].ljust(widths[i]) for i in range(4)), r[4]]).rstrip()
            for r in rows]
