"""Where a VMM serves a socket the harness connects to (console, QMP monitor).

`unix:PATH` where the host has unix sockets, else `tcp:127.0.0.1:PORT` on a
port free when asked: CPython on Windows has no AF_UNIX. One place picks and
opens both kinds, so the console and the monitor cannot drift apart.
"""

from __future__ import annotations

import socket
from pathlib import Path


def has_unix() -> bool:
    return hasattr(socket, "AF_UNIX")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the VMM takes it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local(path: Path, unix: bool | None = None) -> str:
    """`unix:PATH` for `path`, or a fresh TCP address where there are no unix sockets."""
    if has_unix() if unix is None else unix:
        return f"unix:{path}"
    return f"tcp:127.0.0.1:{free_port()}"


def unix_path(address: str) -> Path | None:
    """The socket file of a `unix:` address (None for TCP)."""
    kind, _, rest = address.partition(":")
    return Path(rest) if kind == "unix" else None


def connect(address: str, timeout: float = 2.0) -> socket.socket:
    """A connection to `unix:PATH` or `tcp:HOST:PORT`; OSError while nobody listens."""
    kind, _, rest = address.partition(":")
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(rest)
        except OSError:
            s.close()
            raise
        return s
    if kind != "tcp":
        raise ValueError(f"not a socket address: {address!r}")
    host, _, port = rest.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=timeout)
