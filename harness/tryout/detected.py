"""The vocabulary of image detection: what was found, and how it is read.

Shared by detect.py (the entry point), media.py (CDs, floppies, disks) and
kernels.py (kernels and EFI applications) so that none imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

HEAD = 1 << 16                 # what is read up front: MBR, GPT, ISO descriptors, kernel headers
PC = "x86_64"  # PC boot code says x86 but not its width: x86_64's QEMU runs 16/32-bit code too


class DetectError(Exception):
    """A file that cannot be read or decompressed; the message is `file: reason`."""


@dataclass(frozen=True)
class Detected:
    path: Path              # the file to boot: the input, or its decompressed copy in workdir
    kind: str               # iso | floppy | disk | qcow2 | vmdk | vdi | vhdx | vpc | multiboot
    #                         | elf | bzimage | arm64-image | riscv-image | efi | unknown
    boot: str               # cdrom | floppy | disk | kernel | efi | none
    arch: str | None        # keys of harness/data/arches.yaml; None when the content says nothing
    firmware: list[str]     # plausible firmware, preferred first
    fmt: str = "raw"        # QEMU -drive format= for disk-like kinds
    compression: str | None = None   # gz|xz|bz2|zst|zip when the input was compressed
    facts: tuple[str, ...] = ()      # what was seen, in words a porter reads


class Source:
    """Random access to the start of an image: an open file, or bytes already read."""

    def __init__(self, f: IO[bytes] | None, size: int, data: bytes = b"") -> None:
        self.f, self.size, self.data = f, size, data

    def read(self, offset: int, n: int) -> bytes:
        if self.f is None:
            return self.data[offset:offset + n]
        self.f.seek(offset)
        return self.f.read(n)


def text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip(" \0")


def human(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
