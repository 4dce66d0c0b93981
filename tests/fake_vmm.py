"""A fake VMM for the console transports (tests/test_transport.py), no QEMU.

    python fake_vmm.py ADDRESS MODE

ADDRESS is where it serves its console, as QEMU would: `unix:PATH` or
`tcp:HOST:PORT` (a server that waits for one client, like `wait=on`), or
`stdio` (the console on its stdout and stdin: a pty or pipes). MODE:
  boot   prints a boot console, waits for "poweroff" typed at its prompt, exits 0
  hang   prints a boot console up to the prompt, then keeps running silently
  close  prints part of a boot, closes the console and keeps running
  never  never serves a console, keeps running
"""

from __future__ import annotations

import os
import socket
import sys
import time

BOOT = [b"Linux version 6.1.0 (fake)\r\n", b"Run /init as init process\r\n", b"/ # "]


def serve(address: str) -> tuple[callable, callable, callable]:
    """write, read-a-line and close functions for the console at `address`."""
    if address == "stdio":
        out, inp = sys.stdout.fileno(), sys.stdin.fileno()
        return (lambda b: os.write(out, b)), (lambda: os.read(inp, 4096)), (lambda: None)
    kind, _, rest = address.partition(":")
    if kind == "unix":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        time.sleep(0.3)  # QEMU makes its socket a moment after it starts
        server.bind(rest)
    else:
        host, _, port = rest.rpartition(":")
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        time.sleep(0.3)
        server.bind((host, int(port)))
    server.listen(1)
    conn, _ = server.accept()
    server.close()
    return conn.sendall, (lambda: conn.recv(4096)), conn.close


def main(address: str, mode: str) -> int:
    if mode == "never":
        time.sleep(3600)
        return 0
    write, read, close = serve(address)
    if mode == "close":
        write(BOOT[0])
        time.sleep(0.2)
        close()
        time.sleep(3600)
        return 0
    for line in BOOT:
        write(line)
        time.sleep(0.05)
    if mode == "hang":
        time.sleep(3600)
        return 0
    typed = b""
    while b"poweroff" not in typed:
        data = read()
        if not data:
            return 3
        typed += data
    write(b"\r\nyou typed: " + typed.strip() + b"\r\nreboot: Power down\r\n")
    time.sleep(0.1)
    close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
