"""`python -m tests.echo_run ARGS…` is `harness ARGS…` with the echo backend
(tests/echo_backend.py) registered: real runs, as a separate process, with no VM."""

from __future__ import annotations

import sys

from harness import knowledge
from harness.cli import main
from harness.model import BackendInfo

ECHO = BackendInfo(name="echo", kind="echo", module="tests.echo_backend",
                   description="a printed console", hardware=False, binary=sys.executable,
                   arches=("x86_64",))

if __name__ == "__main__":
    knowledge.backends()["echo"] = ECHO
    sys.exit(main(sys.argv[1:]))
