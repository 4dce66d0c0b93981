"""Resolve a guest's images to verified local files.

One entry point, `ImageStore.resolve`, dispatching on the source kind; the
result names the file, its digest and where it came from, which is what
results.json records so a run says exactly which bits booted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import Guest, ImageSpec
from .cache import Cache, sha256_file
from .debian import DebError, fetch_deb_file
from .recipes import build


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


class ImageStore:
    def __init__(self, cache: Cache, offline: bool = False,
                 log: Callable[[str], None] = print) -> None:
        self.cache = cache
        self.offline = offline
        self.log = log

    def resolve(self, spec: ImageSpec) -> ResolvedImage:
        try:
            image = getattr(self, f"_resolve_{spec.kind}")(spec)
        except DebError as exc:
            raise ImageError(f"image {spec.name}: {exc}") from None
        if spec.sha256 and image.sha256 != spec.sha256:
            raise ImageError(f"image {spec.name}: sha256 {image.sha256} differs from the "
                             f"guest file's {spec.sha256}")
        return image

    def resolve_guest(self, guest: Guest) -> dict[str, ResolvedImage]:
        return {name: self.resolve(spec) for name, spec in guest.images.items()}

    def _resolve_deb(self, spec: ImageSpec) -> ResolvedImage:
        p = spec.params
        f = fetch_deb_file(self.cache, p["arch"], p["package"], p["path"], self.offline, self.log)
        return ResolvedImage(
            self.cache.blob_path(f.sha256), f.sha256, f"deb:{p['package']}",
            {"arch": p["arch"], "package": f.package, "version": f.version, "member": f.member,
             "deb_sha256": f.deb_sha256},
        )

    def _resolve_build(self, spec: ImageSpec) -> ResolvedImage:
        params = dict(spec.params)
        recipe = params.pop("recipe")
        built = build(self.cache, recipe, params, self.offline, self.log)
        return ResolvedImage(self.cache.blob_path(built.sha256), built.sha256,
                             f"build:{recipe}", {"inputs": built.inputs, **params})

    def _resolve_file(self, spec: ImageSpec) -> ResolvedImage:
        path = Path(spec.params["path"])
        if not path.is_file():
            raise ImageError(f"image {spec.name}: no such file {path}")
        return ResolvedImage(path, sha256_file(path), f"file:{path}")
