"""File helpers every stage may use: atomic writes, digests, safe names.

They live here, below `images/` and `results/`, so neither of those imports
the other for a helper (the results pages once imported `images.cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

CHUNK = 1 << 20
# Guest ids, image names, backends and firmware become path components, shell words
# and HTML: letters, digits and `._+-`, starting with a letter or digit (so never `..`,
# a slash, a space, a quote, `$`, a backtick or a control character), 100 at most.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
SAFE_NAME_RULE = ("letters, digits and . _ + - only, starting with a letter or a digit, "
                  "at most 100")


def safe_name(name: object) -> bool:
    """Whether `name` may be a path component, a shell word or an HTML value as it is."""
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None


def os_reason(exc: OSError) -> str:
    """Why an OS call failed, as the user should read it: `no space left on device`."""
    return exc.strerror.lower() if exc.strerror else str(exc)


def os_problem(exc: OSError) -> str:
    """`path: no space left on device`."""
    return f"{exc.filename}: {os_reason(exc)}" if exc.filename else os_reason(exc)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
