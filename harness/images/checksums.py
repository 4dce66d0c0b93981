"""Published checksum files: GNU (`hex  name`) and BSD (`SHA512 (name) = hex`).

Projects publish SHA256SUMS, SHA512 or CHECKSUM files beside their
images; the entry is picked by the image's file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from posixpath import basename

_BSD = re.compile(r"^(?P<alg>SHA256|SHA512|SHA-256|SHA-512)\s*\((?P<name>.+)\)\s*=\s*"
                  r"(?P<hex>[0-9a-fA-F]+)\s*$")
_GNU = re.compile(r"^(?P<hex>[0-9a-fA-F]{64}|[0-9a-fA-F]{128})\s+[ *]?(?P<name>.+?)\s*$")


class ChecksumError(Exception):
    pass


@dataclass(frozen=True)
class Digest:
    algorithm: str  # sha256 | sha512
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_sums(text: str) -> dict[str, Digest]:
    """File name -> digest, from either format (both may be mixed in one file)."""
    out: dict[str, Digest] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-----"):
            continue
        if m := _BSD.match(line):
            alg = m["alg"].replace("-", "").lower()
            out[m["name"].strip()] = Digest(alg, m["hex"].lower())
        elif m := _GNU.match(line):
            alg = "sha256" if len(m["hex"]) == 64 else "sha512"
            out[m["name"].strip()] = Digest(alg, m["hex"].lower())
    return out


def pick(sums: dict[str, Digest], url: str, sums_url: str) -> Digest:
    """The entry for the file `url` names (by path, then by base name)."""
    name = basename(url.split("?", 1)[0])
    for key in (name, f"./{name}"):
        if key in sums:
            return sums[key]
    for key, digest in sums.items():
        if basename(key) == name:
            return digest
    raise ChecksumError(f"{sums_url} has no entry for {name!r} "
                        f"({len(sums)} entries{': ' + ', '.join(list(sums)[:5]) if sums else ''})")
