"""Results a payload step left on a writable disk, read after the VM is off.

A step with `disk: IMAGE` and `file: MEMBER` writes a tar archive straight onto that
drive (`tar cf /dev/vdb -C /results .`: every Unix has tar, and a raw archive needs no
file system the host must understand); once the VM has quit (QMP `quit` flushes its
disks) the harness reads the start of the drive's overlay and takes MEMBER out. The
archive is read from a bounded region: a hostile or broken guest cannot make the
harness read more than READ_LIMIT bytes or keep a member larger than MEMBER_LIMIT.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from ..backends.media import copy_start

READ_LIMIT = 256 << 20  # bytes of the disk's start where the archive must lie
MEMBER_LIMIT = 64 << 20
BLOCK = 1 << 20


class DiskResultsError(Exception):
    """The results are not on the disk as the step said (the reason, for the cell)."""


def read_member(image: Path | None, member: str, scratch: Path) -> bytes:
    """`member` of the tar archive at the start of `image` (a qcow2 overlay or raw)."""
    if image is None or not image.is_file():
        raise DiskResultsError("the disk is gone (no overlay of it in the cell's folder)")
    with tempfile.TemporaryDirectory(dir=scratch, prefix="results-") as tmp:
        raw = Path(tmp) / "start.raw"
        failed = copy_start(image, raw, READ_LIMIT, BLOCK)
        if failed is not None:
            raise DiskResultsError(f"cannot read the disk: {failed}")
        return _member(raw, member)


def _member(raw: Path, member: str) -> bytes:
    with raw.open("rb") as f:
        if not f.read(tarfile.BLOCKSIZE).strip(b"\0"):
            raise DiskResultsError("no archive on the disk: its start is blank (the step wrote "
                                   "none: `tar cf /dev/…` in the guest)")
    try:
        with tarfile.open(raw, "r:") as tar:  # reads up to the archive's end blocks
            try:
                info = tar.getmember(member.removeprefix("/"))
            except KeyError:
                names = ", ".join(tar.getnames()[:10])
                raise DiskResultsError(f"no {member} in the archive on the disk (it holds: "
                                       f"{names})") from None
            if not info.isfile():
                raise DiskResultsError(f"{member} in the archive on the disk is not a file")
            if info.size > MEMBER_LIMIT:
                raise DiskResultsError(f"{member} is {info.size} bytes: more than the "
                                       f"{MEMBER_LIMIT >> 20} MiB a results file may be")
            f = tar.extractfile(info)
            assert f is not None
            return f.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DiskResultsError(f"no tar archive at the start of the disk (did the step write "
                               f"one with `tar cf /dev/…`?): {exc}") from None
