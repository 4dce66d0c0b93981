"""HTTP downloads that survive flaky mirrors and never poison the cache.

A download goes to a `.part` file named after the URL, is hashed while it
streams, resumes with a Range request after a cut connection or a stall,
retries with backoff on 5xx, resets and timeouts (never on 404 and other
4xx), and falls through the mirrors in order. The caller verifies the
digest and only then stores the bytes as a blob.

Offline is told apart from flaky: a host name that does not resolve (asked
once, for at most `resolve_timeout` seconds, as a resolver with no network
can take much longer to say so) or a refused connection is not retried, so
a run on a machine without a network says so in seconds, one line an image.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import __version__
from ..files import os_reason
from .cache import Digests

if TYPE_CHECKING:  # requests (and urllib3) load when something is downloaded, not before
    import requests

CHUNK = 1 << 20
ProgressFn = Callable[[str, int, int | None], None]  # (url, bytes so far, total or None)


class DownloadError(Exception):
    """No mirror delivered the file; the message names each URL and why."""


class _Permanent(Exception):
    """A failure that retrying this URL cannot fix (404, refused scheme, ...)."""


@dataclass(frozen=True)
class Downloaded:
    path: Path  # the complete .part file, not yet verified
    url: str  # the URL that delivered it (after redirects)
    size: int
    sha256: str
    sha512: str


@dataclass
class Downloader:
    insecure: bool = False
    retries: int = 4  # further attempts per URL after the first
    backoff: float = 0.5  # seconds before the first retry, doubling
    stall_timeout: float = 30.0  # no byte for this long: the attempt failed
    connect_timeout: float = 15.0
    resolve_timeout: float = 10.0  # a host name not resolved by then: no network
    progress: ProgressFn | None = None
    session: requests.Session | None = None

    def __post_init__(self) -> None:
        if self.session is None:
            import requests

            self.session = requests.Session()
            self.session.headers["User-Agent"] = f"guest-harness/{__version__}"
            self.session.headers["Accept-Encoding"] = "identity"  # the bytes as published

    def fetch(self, urls: Sequence[str], part: Path) -> Downloaded:
        """Download the first of `urls` that works into `part` (resuming it)."""
        problems = []
        for url in urls:
            try:
                return self._fetch_one(url, part)
            except _Permanent as exc:
                problems.append(f"{url}: {exc}")
            except DownloadError as exc:
                problems.append(str(exc))
        raise DownloadError("; ".join(problems))

    def check_scheme(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        if scheme == "https" or (scheme == "http" and self.insecure):
            return
        if scheme == "http":
            raise _Permanent("plain http is refused (set `insecure: true` on the image)")
        raise _Permanent(f"unsupported URL scheme {scheme!r}")

    def _fetch_one(self, url: str, part: Path) -> Downloaded:
        self.check_scheme(url)
        self._check_host(url)
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._attempt(url, part)
            except _Retry as exc:
                last = str(exc)
        raise DownloadError(f"{url}: {last} (after {self.retries + 1} attempts)")

    def _check_host(self, url: str) -> None:
        """Fail at once when the URL's host name does not resolve (no network, or no such
        host); through a proxy, the proxy resolves it and this check is left out."""
        import requests

        if requests.utils.get_environ_proxies(url):
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not resolves(host, parts.port or 443, self.resolve_timeout):
            raise _Permanent(f"cannot resolve {host}: no network?")

    def _attempt(self, url: str, part: Path) -> Downloaded:
        import requests
        import urllib3

        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        assert self.session is not None
        try:
            resp = self.session.get(url, headers=headers, stream=True, allow_redirects=True,
                                    timeout=(self.connect_timeout, self.stall_timeout))
        except requests.exceptions.SSLError as exc:
            raise _Permanent(f"TLS error: {exc}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            if _caused_by(exc, ConnectionRefusedError):  # nothing listens: retrying won't help
                parts = urlsplit(url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                raise _Permanent(f"connection refused by {parts.hostname}:{port}") from None
            if _caused_by(exc, socket.gaierror):
                raise _Permanent(f"cannot resolve {urlsplit(url).hostname}: no network?") from None
            raise _Retry(f"cannot connect: {_short(exc)}") from None
        with contextlib.closing(resp):
            self.check_scheme(resp.url)
            if resp.status_code == 416 and have:  # our partial file is already complete
                total = _total_from_range(resp.headers.get("Content-Range"))
                if total == have:
                    d = Digests.of_file(part)
                    return Downloaded(part, url, d.size, d.sha256, d.sha512)
                part.unlink()
                raise _Retry("the server refused to resume; starting over")
            if resp.status_code >= 500:
                raise _Retry(f"HTTP {resp.status_code} {resp.reason}")
            if resp.status_code >= 400:
                raise _Permanent(f"HTTP {resp.status_code} {resp.reason}")
            if resp.status_code == 206 and have:
                start = _start_from_range(resp.headers.get("Content-Range"))
                if start != have:
                    part.unlink()
                    raise _Retry("the server resumed at the wrong offset; starting over")
                mode = "ab"
                total = _total_from_range(resp.headers.get("Content-Range"))
                hashes = Digests.of_file(part)  # what arrived before, hashed once
            else:
                mode, have = "wb", 0
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                hashes = Digests()
            got = have
            try:
                with part.open(mode) as f:
                    for block in _blocks(resp):
                        f.write(block)
                        hashes.update(block)
                        got += len(block)
                        if self.progress:
                            self.progress(url, got, total)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as exc:
                # (requests' exceptions are OSErrors too: this clause must come first)
                raise _Retry(f"connection lost after {got} bytes: {_short(exc)}") from None
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO,
                                 errno.EFBIG):
                    with contextlib.suppress(OSError):
                        part.unlink()
                    raise DownloadError(f"{url}: {os_reason(exc)} while writing {part}; the "
                                        "partial file was removed") from None
                raise
            if total is not None and got < total:
                raise _Retry(f"truncated: {got} of {total} bytes")
            if got == 0:
                raise _Retry("empty response")
        return Downloaded(part, resp.url or url, hashes.size, hashes.sha256, hashes.sha512)


class _Retry(Exception):
    """A failure worth another attempt (resuming what arrived)."""


def _blocks(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: every byte read is handed on before a failure is raised,
    so a cut connection resumes exactly where it broke."""
    raw = resp.raw
    if hasattr(raw, "read1"):  # urllib3 2
        while block := raw.read1(CHUNK, decode_content=False):
            yield block
    else:
        yield from resp.iter_content(1 << 16)


def _start_from_range(value: str | None) -> int | None:
    try:  # "bytes 100-199/200"
        return int(value.split()[1].split("-")[0]) if value else None
    except (IndexError, ValueError):
        return None


def _total_from_range(value: str | None) -> int | None:
    try:
        total = value.rsplit("/", 1)[1] if value else "*"
        return None if total == "*" else int(total)
    except (IndexError, ValueError):
        return None


def resolves(host: str, port: int, timeout: float) -> bool:
    """Whether `host` resolves within `timeout` s (getaddrinfo has no timeout of its own:
    it is asked in a daemon thread, which a resolver that never answers leaves behind)."""
    answer: list[bool] = []

    def ask() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            answer.append(True)
        except (OSError, UnicodeError):
            answer.append(False)

    t = threading.Thread(target=ask, name=f"resolve {host}", daemon=True)
    t.start()
    t.join(timeout)
    return bool(answer and answer[0])


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is among the causes and contexts of `exc` (requests wraps urllib3,
    which wraps the socket's error, sometimes only in its message's `reason`)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None),
                 *(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))]
    return False


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"
