"""A real HTTP server on 127.0.0.1 whose misbehaviour the tests script.

Each path serves bytes; a per-path queue of behaviours is consumed one per
request: "ok", "404", "500", "cut:N" (send N bytes of the body, then drop
the connection), "short:N" (announce the full length, send N bytes, close
cleanly), "stall:N" (send N bytes, then go silent), "slow" (send in small
pieces with pauses), "redirect:/path". Range requests are honoured. Every
request is logged as (path, Range header).
"""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.behaviours: dict[str, list[str]] = {}
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, data: bytes, *behaviours: str) -> str:
        self.files[path] = data
        self.behaviours[path] = list(behaviours)
        return self.url(path)

    def requests_for(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        rng = h.headers.get("Range")
        with self.lock:
            self.log.append((path, rng))
            queue = self.behaviours.get(path, [])
            what = queue.pop(0) if queue else "ok"
        if path not in self.files or what == "404":
            self._simple(h, 404, b"not found")
            return
        if what == "500":
            self._simple(h, 500, b"oops")
            return
        if what.startswith("redirect:"):
            h.send_response(302)
            h.send_header("Location", what.split(":", 1)[1])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data, start = self.files[path], 0
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        kind, _, arg = what.partition(":")
        with contextlib.suppress(OSError):
            if kind in ("cut", "short", "stall"):
                h.wfile.write(body[: int(arg)])
                h.wfile.flush()
                if kind == "stall":
                    time.sleep(5)
                h.close_connection = True
                if kind == "cut":
                    h.connection.shutdown(2)
                return
            if kind == "slow":
                for i in range(0, len(body), max(1, len(body) // 20)):
                    h.wfile.write(body[i: i + max(1, len(body) // 20)])
                    h.wfile.flush()
                    time.sleep(0.05)
                return
            h.wfile.write(body)

    @staticmethod
    def _simple(h: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
