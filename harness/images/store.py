"""Resolve a guest's images to verified local files.

One entry point, `ImageStore.resolve_guest`, dispatching on each image's
source kind (recipes after the images they take as inputs). A result names
the file, its digest and where it came from, which is what results.json
records, so a run says exactly which bits booted. Nothing unverified ever
enters the cache: a download is checked against its digest before it is
moved in, and a mismatch leaves the cache as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import sha256_file
from ..model import Guest, ImageSpec
from .archive import (
    ArchiveError,
    check_format,
    compression_for,
    iter_member,
    iter_tree,
    open_decompressed,
)
from .cache import Cache, CacheError, Digests
from .checksums import ChecksumError, Digest, parse_sums, pick
from .debian import DebError, fetch_deb_file
from .download import Downloader, DownloadError, ProgressFn
from .recipes import Input, RecipeError, build, image_inputs


class ImageError(Exception):
    """An image that could not be fetched, built or verified."""


@dataclass(frozen=True)
class ResolvedImage:
    path: Path
    sha256: str
    source: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "source": self.source, **self.details}


def unobtained(guest: Guest) -> str | None:
    """Why a guest cannot run yet: a file only its user can supply is missing.

    Images nobody may redistribute (Windows, QNX, Darwin) are `file:` sources
    with `obtain:` instructions; until the file exists the guest's cells are
    skipped with them, rather than failing every night.
    """
    for spec in guest.images.values():
        p = spec.params
        if spec.kind == "file" and p.get("obtain") and not Path(p["path"]).is_file():
            return f"image {spec.name}: {p['path']} not present; {p['obtain'].strip()}"
    return None


class ImageStore:
    def __init__(self, cache: Cache, offline: bool = False,
                 log: Callable[[str], None] = print, progress: ProgressFn | None = None,
                 stall_timeout: float = 30.0, retries: int = 4, backoff: float = 0.5) -> None:
        self.cache = cache
        self.offline = offline
        self.log = log
        self.progress = progress
        self.stall_timeout = stall_timeout
        self.retries = retries
        self.backoff = backoff

    def resolve_guest(self, guest: Guest) -> dict[str, ResolvedImage]:
        done: dict[str, ResolvedImage] = {}
        pending = dict(guest.images)
        while pending:
            ready = [s for s in pending.values() if all(i in done for i in image_inputs(s))]
            if not ready:
                raise ImageError(f"images {', '.join(pending)}: their recipe inputs form a cycle")
            for spec in ready:
                done[spec.name] = self.resolve(spec, done)
                del pending[spec.name]
        return {name: done[name] for name in guest.images}

    def resolve(self, spec: ImageSpec,
                inputs: dict[str, ResolvedImage] | None = None) -> ResolvedImage:
        try:
            if spec.kind == "build":
                image = self._resolve_build(spec, inputs or {})
            elif spec.kind == "from":
                image = self._resolve_from(spec, inputs or {})
            else:
                image = getattr(self, f"_resolve_{spec.kind}")(spec)
        except (DebError, DownloadError, ChecksumError, ArchiveError, RecipeError,
                CacheError) as exc:
            raise ImageError(f"image {spec.name}: {exc}") from None
        if spec.sha256 and spec.kind in ("deb", "build", "from") and image.sha256 != spec.sha256:
            raise ImageError(f"image {spec.name}: sha256 mismatch: expected {spec.sha256}, "
                             f"got {image.sha256}")
        return image

    # --- url -----------------------------------------------------------------

    def _resolve_url(self, spec: ImageSpec) -> ResolvedImage:
        p = spec.params
        digest = self._expected_digest(spec)
        key = f"download:{digest}" if digest else f"download-url:{p['url']}"
        ref = self.cache.get_ref(key)
        if ref is None:
            if self.offline:
                raise ImageError(f"image {spec.name}: offline, and {p['url']} is not in the "
                                 "cache (run `harness fetch` first, or `harness cache import`)")
            with self.cache.lock(key):
                ref = self.cache.get_ref(key) or self._download(spec, digest, key)
        download = ref["sha256"]
        final, derived = self._derive(self.cache.blob_path(download), download, p)
        if digest is None:
            verified = None
        elif p.get("checksums"):
            verified = f"{digest.algorithm} from {p['checksums']}"
        else:
            verified = digest.algorithm
        details = {"url": ref.get("url", p["url"]), "download_sha256": download,
                   "verified_by": verified, "pinned": digest is not None, **derived}
        if ref.get("imported"):  # seeded by `harness cache import`: same bits, local origin
            details["url"], details["imported_from"] = p["url"], ref.get("url")
        return ResolvedImage(self.cache.blob_path(final), final, f"url:{p['url']}", details)

    def _expected_digest(self, spec: ImageSpec) -> Digest | None:
        p = spec.params
        if spec.sha256:
            return Digest("sha256", spec.sha256)
        if p.get("sha512"):
            return Digest("sha512", p["sha512"])
        if not p.get("checksums"):
            return None
        sums_url = p["checksums"]
        key = f"sums:{sums_url}"
        if self.offline:  # the sums as last fetched
            ref = self.cache.get_ref(key)
            if ref is None:
                raise ImageError(f"image {spec.name}: offline, and the checksums {sums_url} "
                                 "were never fetched")
        else:  # online they are fetched every time: a new release changes them
            part = self._part(sums_url)
            with contextlib.suppress(OSError):
                part.unlink()  # a sums file is small and may change: always fetch it whole
            got = self._downloader(spec).fetch([sums_url], part)
            sha = self.cache.adopt(part, got.sha256).name
            ref = self.cache.set_ref(key, sha, url=got.url)
        text = self.cache.blob_path(ref["sha256"]).read_text(errors="replace")
        return pick(parse_sums(text), p["url"], sums_url)

    def _downloader(self, spec: ImageSpec) -> Downloader:
        return Downloader(insecure=spec.params.get("insecure", False), progress=self.progress,
                          stall_timeout=self.stall_timeout, retries=self.retries,
                          backoff=self.backoff)

    def _part(self, url: str) -> Path:
        return self.cache.sub("tmp") / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".part")

    def _download(self, spec: ImageSpec, digest: Digest | None, key: str) -> dict[str, Any]:
        p = spec.params
        urls = [p["url"], *p.get("mirrors", [])]
        self.log(f"  downloading {p['url']}")
        part = self._part(p["url"])
        got = self._downloader(spec).fetch(urls, part)
        if digest is not None:
            actual = got.sha256 if digest.algorithm == "sha256" else got.sha512
            if actual != digest.hex:
                part.unlink(missing_ok=True)
                raise ImageError(
                    f"image {spec.name}: {got.url}: {digest.algorithm} mismatch: expected "
                    f"{digest.hex}, got {actual}; nothing was stored in the cache")
        self.cache.adopt(part, got.sha256)
        return self.cache.set_ref(key, got.sha256, url=got.url, size=got.size,
                                  sha512=got.sha512, pinned=digest is not None)

    # --- decompression and archive members ----------------------------------

    def _derive(self, path: Path, sha: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Decompress and/or take a member out of a verified file; cached by both."""
        name = p.get("url") or p.get("path", "")
        kind = compression_for(name, p.get("decompress", "auto"))
        member = p.get("member")
        if kind == "none" and not member:
            return sha, {}
        key = f"derive:{sha}:{kind}:{member}"
        ref = self.cache.get_ref(key)
        if ref is None:
            with self.cache.lock(key):
                ref = self.cache.get_ref(key) or self._derive_now(path, kind, member, key)
        details: dict[str, Any] = {"decompress": kind} if kind != "none" else {}
        if member:
            details["member"] = ref.get("member", member)
        return ref["sha256"], details

    def _derive_now(self, path: Path, kind: str, member: str | None, key: str) -> dict:
        final, member_name = "", None
        if kind != "none":
            check_format(path, kind)
            with open_decompressed(path, kind) as src:
                final = self._store_chunks(iter(lambda: src.read(1 << 20), b""), path.name, kind)
            path = self.cache.blob_path(final)
        if member:
            member_name, chunks = (iter_tree(path, member) if member.endswith("/")
                                   else iter_member(path, member))
            final = self._store_chunks(chunks, path.name, "archive")
        return self.cache.set_ref(key, final, member=member_name)

    def _store_chunks(self, chunks: Any, name: str, what: str) -> str:
        try:
            with self.cache.new_blob() as (f, h):
                try:
                    for block in chunks:
                        f.write(block)  # CacheError, not OSError, when the cache is full
                        h.update(block)
                except (OSError, EOFError, ValueError) as exc:
                    raise ArchiveError(f"{name}: corrupt {what} data ({exc})") from None
        except CacheError as exc:
            raise CacheError(exc.reason, exc.root, f"unpacking {name} into") from None
        return h.hexdigest()

    # --- other kinds ----------------------------------------------------------

    def _resolve_deb(self, spec: ImageSpec) -> ResolvedImage:
        p = spec.params
        f = fetch_deb_file(self.cache, p["arch"], p["package"], p["path"], self.offline, self.log)
        details = {"arch": p["arch"], "package": f.package, "version": f.version,
                   "member": f.member, "deb_sha256": f.deb_sha256}
        final = f.sha256
        if p.get("decompress", "none") != "none":  # Xen ships as xen.gz; QEMU wants it plain
            final, derived = self._derive(self.cache.blob_path(f.sha256), f.sha256,
                                          {"path": f.member, "decompress": p["decompress"]})
            details.update(derived)
        return ResolvedImage(self.cache.blob_path(final), final, f"deb:{p['package']}", details)

    def _resolve_build(self, spec: ImageSpec, done: dict[str, ResolvedImage]) -> ResolvedImage:
        params = dict(spec.params)
        recipe = params.pop("recipe")
        inputs = {name: Input(img.sha256, img.path, img.details) for name, img in done.items()}
        built = build(self.cache, recipe, params, inputs, self.offline, self.log)
        return ResolvedImage(self.cache.blob_path(built.sha256), built.sha256,
                             f"build:{recipe}", {"inputs": built.inputs, **params})

    def _resolve_from(self, spec: ImageSpec, done: dict[str, ResolvedImage]) -> ResolvedImage:
        """A member of another image (already verified): a kernel out of an ISO."""
        p = spec.params
        base = done[p["from"]]
        final, derived = self._derive(base.path, base.sha256, {"member": p["member"],
                                                               "decompress": "none"})
        member = derived.get("member", p["member"])
        if p.get("decompress", "none") != "none":
            final, more = self._derive(self.cache.blob_path(final), final,
                                       {"path": member, "decompress": p["decompress"]})
            derived.update(more)
        return ResolvedImage(self.cache.blob_path(final), final, f"from:{p['from']}",
                             {"from_sha256": base.sha256, **derived})

    def _resolve_file(self, spec: ImageSpec) -> ResolvedImage:
        p = spec.params
        path = Path(p["path"])
        if not path.is_file():
            how = f"; {p['obtain'].strip()}" if p.get("obtain") else ""
            raise ImageError(f"image {spec.name}: no such file {path}{how}")
        try:
            if p.get("sha512"):  # both digests in one read
                digests = Digests.of_file(path)
                sha = digests.sha256
                if digests.sha512 != p["sha512"]:
                    raise ImageError(f"image {spec.name}: sha512 mismatch: expected "
                                     f"{p['sha512']}, got {digests.sha512}")
            else:
                sha = sha256_file(path)
        except OSError as exc:  # became unreadable since the guest file was loaded
            raise ImageError(f"image {spec.name}: cannot read {path}: {exc.strerror}") from None
        if spec.sha256 and sha != spec.sha256:
            raise ImageError(f"image {spec.name}: sha256 mismatch: expected {spec.sha256}, "
                             f"got {sha}")
        final, derived = self._derive(path, sha, p)
        out = path if final == sha else self.cache.blob_path(final)
        return ResolvedImage(out, final, f"file:{path}", derived)
