"""A serial console served on a local socket, copied to this terminal.

    python -m harness.backends.sockconsole PATH [--wait SECONDS]

VirtualBox serves COM1 as a Unix socket; the harness runs this on a pty so
such a console looks like any VMM's terminal: bytes from the socket go to
stdout, bytes typed on stdin go to the socket. It waits for the socket to
appear, and ends when the VMM closes it.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    path, wait = argv[0], float(argv[2]) if argv[1:2] == ["--wait"] else 30.0
    deadline = time.monotonic() + wait
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            s.connect(path)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                print(f"sockconsole: cannot connect to {path}: {exc.strerror}", file=sys.stderr)
                return 1
            time.sleep(0.1)
    out, inp = sys.stdout.fileno(), sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([s, inp], [], [])
        if s in ready:
            data = s.recv(65536)
            if not data:
                return 0
            os.write(out, data)
        if inp in ready:
            data = os.read(inp, 65536)
            if not data:
                return 0
            s.sendall(data)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
