"""A minimal QMP client over a unix socket (TCP where there are none): enough to
control a VM.

QMP is line-delimited JSON; after the greeting, `qmp_capabilities` enters
command mode. Asynchronous events are kept, not lost, while waiting for a
command's answer.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from . import addresses


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path: Path | str, timeout: float = 5.0) -> None:
        """`path`: the monitor's unix socket, or a `tcp:HOST:PORT` address."""
        self.path = path
        self.address = path if isinstance(path, str) else f"unix:{path}"
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self, wait: float = 5.0) -> dict[str, Any]:
        """Connect (retrying while QEMU creates the socket); the greeting."""
        deadline = time.monotonic() + wait
        while True:
            try:
                sock = addresses.connect(self.address, self.timeout)
                sock.settimeout(self.timeout)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    raise QMPError(f"no QMP socket at {self.path}") from None
                time.sleep(0.05)
        self._sock = sock
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self.command("qmp_capabilities")
        return greeting

    def command(self, name: str, **arguments: Any) -> Any:
        if self._sock is None:
            raise QMPError("not connected")
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QMPError(f"{name}: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")

    def _read(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise QMPError(f"QMP connection: {exc}") from None
            if not chunk:
                raise QMPError("QMP connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as exc:
            raise QMPError(f"bad QMP message: {line[:200]!r}") from exc

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> QMP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
