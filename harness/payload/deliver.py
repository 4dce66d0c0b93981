"""A payload folder carried into the guest over its console, as posix steps (pure).

Each file is typed in base64 chunks (`printf %s CHUNK | base64 -d >> FILE`),
one framed step per line, so every line waits for the shell to finish the
one before (no typed-ahead text overflows a tty's buffer) and a line stays
well under a shell's line-editing limit (BusyBox ash: 1024 characters). This
needs only a posix shell and `base64` in the guest: no driver for an extra
drive (the BusyBox initramfs guest has no CD-ROM or ISO 9660 modules).
"""

from __future__ import annotations

import base64
import shlex
from pathlib import Path, PurePosixPath

from ..model import Guest, PayloadStep

CHUNK = 384  # bytes of a file per typed line: 512 characters of base64
DEFAULT_TO = "/tmp/payload"
STEP_TIMEOUT = 60.0


def delivery_steps(folder: Path, to: str = DEFAULT_TO) -> list[PayloadStep]:
    """The steps that recreate `folder` under `to` in the guest (modes: executable or not)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    dirs = sorted({str(PurePosixPath(to, *p.parent.relative_to(folder).parts)) for p in files}
                  | {to})
    steps = [_step("mkdir", "mkdir -p " + " ".join(shlex.quote(d) for d in dirs))]
    for path in files:
        rel = path.relative_to(folder).as_posix()
        dest = shlex.quote(str(PurePosixPath(to, rel)))
        data = path.read_bytes()
        steps.append(_step(rel, f": > {dest}"))
        for i in range(0, len(data), CHUNK):
            chunk = base64.b64encode(data[i:i + CHUNK]).decode()
            steps.append(_step(rel, f"printf %s {chunk} | base64 -d >> {dest}"))
        if path.stat().st_mode & 0o111:
            steps.append(_step(rel, f"chmod +x {dest}"))
    return steps


def _step(what: str, command: str) -> PayloadStep:
    return PayloadStep(name=f"deliver {what}", run=command, timeout=STEP_TIMEOUT, setup=True)


def guest_steps(guest: Guest) -> list[PayloadStep]:
    """Every step of a guest's payload: its folder typed in first, then its own steps.
    OSError when the folder cannot be read (gone since the guest file was loaded)."""
    if guest.payload_dir is None:
        return list(guest.payload)
    return delivery_steps(guest.payload_dir, guest.payload_to) + list(guest.payload)
