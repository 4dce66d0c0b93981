"""`python -m tests.echo_run ARGS…` is `harness ARGS…` with the echo backend
(tests/echo_backend.py) registered: real runs, as a separate process, with no VM.

With ECHO_RUN_FULL_AFTER=N in the environment, results.json can be written N
times; every later write fails as on a full disk (ENOSPC), for tests that have
no root to mount a small file system."""

from __future__ import annotations

import errno
import os
import sys

from harness import knowledge
from harness.cli import main
from harness.model import BackendInfo

ECHO = BackendInfo(name="echo", kind="echo", module="tests.echo_backend",
                   description="a printed console", hardware=False, binary=sys.executable,
                   arches=("x86_64",))



def _fill_disk_after(n: int) -> None:
    from harness.results import store

    real = store.atomic_write
    done = [0]

    def atomic_write(path, data):
        if path.name == "results.json":
            done[0] += 1
            if done[0] > n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    store.atomic_write = atomic_write


if __name__ == "__main__":
    knowledge.backends()["echo"] = ECHO
    if "ECHO_RUN_FULL_AFTER" in os.environ:
        _fill_disk_after(int(os.environ["ECHO_RUN_FULL_AFTER"]))
    sys.exit(main(sys.argv[1:]))
