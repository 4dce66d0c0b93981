"""url sources against a real HTTP server on 127.0.0.1 that misbehaves on cue."""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import io
import lzma
import multiprocessing
import os
import socket
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import zstandard

from harness.config import ConfigError, load_guest
from harness.images.cache import Cache
from harness.images.download import Downloader, DownloadError
from harness.images.store import ImageError, ImageStore
from harness.model import ImageSpec

from .conftest import write

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "cache")


def store(cache, **kw) -> ImageStore:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("stall_timeout", 1.0)
    return ImageStore(cache, log=lambda m: None, **kw)


def spec(url, sha256=None, name="img", **params) -> ImageSpec:
    base = {"url": url, "mirrors": [], "sha512": None, "checksums": None, "insecure": True,
            "pin": True, "decompress": "auto", "member": None}
    base.update(params)
    return ImageSpec(name, "url", base, sha256)


def blobs(cache: Cache) -> list[str]:
    d = cache.root / "blobs" / "sha256"
    return sorted(p.name for p in d.glob("*") if p.suffix != ".stamp") if d.exists() else []


def test_download_verify_and_hit_the_cache(server, cache):
    url = server.add("/disk.img", DATA)
    img = store(cache).resolve(spec(url, SHA))
    assert img.sha256 == SHA and img.path.read_bytes() == DATA
    assert img.details["url"] == url and img.details["pinned"] is True
    assert img.details["verified_by"] == "sha256"
    assert store(cache).resolve(spec(url, SHA)).path == img.path
    assert server.requests_for("/disk.img") == [None]  # the second time: no request


def test_resume_after_the_connection_is_cut(server, cache):
    url = server.add("/big.img", DATA, "cut:100000")
    img = store(cache).resolve(spec(url, SHA))
    assert img.path.read_bytes() == DATA
    assert server.requests_for("/big.img") == [None, "bytes=100000-"]


def test_a_truncated_response_is_resumed(server, cache):
    url = server.add("/short.img", DATA, "short:5000")
    assert store(cache).resolve(spec(url, SHA)).sha256 == SHA
    assert server.requests_for("/short.img") == [None, "bytes=5000-"]


def test_a_stall_is_retried_and_then_given_up(server, cache):
    url = server.add("/stall.img", DATA, "stall:2000")
    assert store(cache).resolve(spec(url, SHA)).sha256 == SHA
    assert server.requests_for("/stall.img") == [None, "bytes=2000-"]
    other = DATA[::-1]  # not in the cache yet
    url = server.add("/dead.img", other, *["stall:10"] * 9)
    with pytest.raises(ImageError, match=r"/dead\.img: connection lost .*after 2 attempts"):
        store(cache, retries=1).resolve(spec(url, hashlib.sha256(other).hexdigest()))


def test_checksum_mismatch_stores_nothing(server, cache):
    url = server.add("/evil.img", DATA)
    wrong = "0" * 64
    with pytest.raises(ImageError) as err:
        store(cache).resolve(spec(url, wrong))
    assert f"sha256 mismatch: expected {wrong}, got {SHA}" in str(err.value)
    assert "nothing was stored" in str(err.value)
    assert blobs(cache) == [] and list((cache.root / "tmp").iterdir()) == []


def test_404_is_not_retried_and_names_the_url(server, cache):
    url = server.url("/missing.img")
    with pytest.raises(ImageError, match=r"missing\.img: HTTP 404"):
        store(cache).resolve(spec(url, SHA))
    assert server.requests_for("/missing.img") == [None]


def test_5xx_is_retried_with_backoff(server, cache):
    url = server.add("/flaky.img", DATA, "500", "500")
    assert store(cache).resolve(spec(url, SHA)).sha256 == SHA
    assert len(server.requests_for("/flaky.img")) == 3


def test_redirects_are_followed(server, cache):
    server.add("/new.img", DATA)
    url = server.add("/old.img", b"", "redirect:/new.img")
    img = store(cache).resolve(spec(url, SHA))
    assert img.sha256 == SHA and img.details["url"] == server.url("/new.img")


def test_mirrors_are_tried_in_order(server, cache):
    good = server.add("/mirror2/x.img", DATA)
    img = store(cache).resolve(spec(server.url("/mirror1/x.img"), SHA, mirrors=[good]))
    assert img.details["url"] == good


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connections_name_every_url_and_are_not_retried(cache):
    port, other = closed_port(), closed_port()
    urls = [f"http://127.0.0.1:{port}/a.img", f"http://localhost:{other}/a.img"]
    started = time.monotonic()
    with pytest.raises(ImageError) as err:  # 4 retries from 5 s on would take 75 s
        store(cache, retries=4, backoff=5.0).resolve(spec(urls[0], SHA, mirrors=urls[1:]))
    assert time.monotonic() - started < 5
    assert str(err.value) == (f"image img: {urls[0]}: connection refused by 127.0.0.1:{port}; "
                              f"{urls[1]}: connection refused by localhost:{other}")
    assert blobs(cache) == []


def test_a_name_that_does_not_resolve_fails_at_once(cache):
    started = time.monotonic()  # .invalid never resolves (RFC 6761)
    with pytest.raises(ImageError) as err:
        store(cache, retries=4, backoff=5.0).resolve(
            spec("https://nonexistent.invalid/os.iso", SHA))
    assert time.monotonic() - started < 15  # the resolver is asked once, for 10 s at most
    assert str(err.value) == ("image img: https://nonexistent.invalid/os.iso: cannot resolve "
                              "nonexistent.invalid: no network?")


def test_a_resolver_that_never_answers_is_given_up(monkeypatch, tmp_path):
    def silent(*args, **kwargs):
        time.sleep(60)

    monkeypatch.setattr(socket, "getaddrinfo", silent)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"cannot resolve cdn\.netbsd\.org: no network\?$"):
        Downloader(resolve_timeout=0.5, retries=4, backoff=5.0).fetch(
            ["https://cdn.netbsd.org/pub/NetBSD/x.iso"], tmp_path / "x.part")
    assert time.monotonic() - started < 5


def test_timeouts_are_still_retried(monkeypatch, tmp_path):
    """Not every connection failure is final: a connect timeout is tried again."""
    with socket.socket() as listener:  # accepts nothing: the backlog fills, connects hang
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        d = Downloader(insecure=True, retries=1, backoff=0.01, connect_timeout=0.3,
                       stall_timeout=0.3)
        with pytest.raises(DownloadError, match=r"\(after 2 attempts\)$"):
            d.fetch([f"http://127.0.0.1:{port}/x"], tmp_path / "x.part")


def test_plain_http_needs_insecure(server, cache):
    url = server.add("/x.img", DATA)
    with pytest.raises(ImageError, match="plain http is refused"):
        store(cache).resolve(spec(url, SHA, insecure=False))


@pytest.mark.parametrize("fmt", ["gnu", "bsd"])
@pytest.mark.parametrize("alg", ["sha256", "sha512"])
def test_published_sums_files(server, cache, fmt, alg):
    hexd = hashlib.new(alg, DATA).hexdigest()
    other = hashlib.new(alg, b"other").hexdigest()
    if fmt == "gnu":
        sums = f"{other}  other.iso\n{hexd} *release.iso\n"
    else:
        sums = f"{alg.upper()} (other.iso) = {other}\n{alg.upper()} (release.iso) = {hexd}\n"
    server.add(f"/pub/{alg}{fmt}/SUMS", sums.encode())
    url = server.add(f"/pub/{alg}{fmt}/release.iso", DATA)
    img = store(cache).resolve(spec(url, checksums=server.url(f"/pub/{alg}{fmt}/SUMS")))
    assert img.sha256 == SHA and img.details["verified_by"].startswith(alg)
    server.files[f"/pub/{alg}{fmt}/SUMS"] = sums.replace(hexd, other).encode()
    cache2 = Cache(cache.root.parent / "cache2")
    with pytest.raises(ImageError, match="mismatch"):
        store(cache2).resolve(spec(url, checksums=server.url(f"/pub/{alg}{fmt}/SUMS")))


def test_a_sums_file_without_the_entry(server, cache):
    server.add("/SUMS", f"{SHA}  something-else.iso\n".encode())
    url = server.add("/wanted.iso", DATA)
    with pytest.raises(ImageError, match=r"has no entry for 'wanted\.iso'"):
        store(cache).resolve(spec(url, checksums=server.url("/SUMS")))


def test_unpinned_sources_are_marked(server, cache):
    url = server.add("/unpinned.img", DATA)
    img = store(cache).resolve(spec(url, pin=False))
    assert img.details["pinned"] is False and img.details["verified_by"] is None


def test_offline_uses_the_cache_or_says_what_is_missing(server, cache):
    url = server.add("/o.img", DATA)
    with pytest.raises(ImageError, match=r"offline, and .*/o\.img is not in the cache"):
        store(cache, offline=True).resolve(spec(url, SHA))
    assert server.log == []
    store(cache).resolve(spec(url, SHA))
    assert store(cache, offline=True).resolve(spec(url, SHA)).sha256 == SHA


COMPRESS = {"gz": lambda d: gzip.compress(d, mtime=0), "xz": lzma.compress,
            "bz2": bz2.compress, "zst": lambda d: zstandard.ZstdCompressor().compress(d)}


@pytest.mark.parametrize("fmt", sorted(COMPRESS))
def test_each_decompression_format(server, cache, fmt):
    packed = COMPRESS[fmt](DATA)
    url = server.add(f"/disk.img.{fmt}", packed)
    img = store(cache).resolve(spec(url, hashlib.sha256(packed).hexdigest()))
    assert img.sha256 == SHA and img.path.read_bytes() == DATA
    assert img.details["decompress"] == fmt
    assert img.details["download_sha256"] == hashlib.sha256(packed).hexdigest()


def test_a_file_that_is_not_what_its_name_says(server, cache):
    url = server.add("/disk.img.xz", DATA)
    with pytest.raises(ImageError, match="is not xz-compressed"):
        store(cache).resolve(spec(url, SHA))


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _deb(members: dict[str, bytes]) -> bytes:
    data_tar = _tar({f"./{k}": v for k, v in members.items()}, "w:xz")
    out = b"!<arch>\n"
    for name, body in (("debian-binary", b"2.0\n"), ("control.tar.xz", _tar({}, "w:xz")),
                       ("data.tar.xz", data_tar)):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
        out += body + (b"\n" if len(body) % 2 else b"")
    return out


@pytest.mark.parametrize("kind, builder, suffix", [
    ("tar", _tar, ".tar.gz"), ("zip", _zip, ".zip"), ("deb", _deb, ".deb")])
def test_archive_members(server, cache, kind, builder, suffix):
    packed = builder({"boot/readme.txt": b"hello", "boot/vmlinuz-6.1": DATA})
    url = server.add(f"/pkg{suffix}", packed)
    img = store(cache).resolve(spec(url, hashlib.sha256(packed).hexdigest(),
                                    member="boot/vmlinuz-*"))
    assert img.path.read_bytes() == DATA and img.details["member"] == "boot/vmlinuz-6.1"


def test_archive_traversal_is_refused(server, cache, tmp_path):
    packed = _tar({"../../etc/evil": b"x", "ok": b"y"})
    url = server.add("/evil.tar.gz", packed)
    with pytest.raises(ImageError, match=r"refusing archive member '\.\./\.\./etc/evil'"):
        store(cache).resolve(spec(url, hashlib.sha256(packed).hexdigest(), member="*evil"))
    g = write(tmp_path / "g" / "g.yaml", f"""\
id: g
os: linux
arch: x86_64
images:
  k: {{url: "https://example.org/a.tar", sha256: {SHA}, member: ../etc/passwd}}
boot: {{kernel: k}}
milestones: [{{name: m, pattern: x}}]
""")
    with pytest.raises(ConfigError, match=r"g\.yaml:5: images\.k\.member: an archive member "
                                          "must be a relative path"):
        load_guest(g)


def test_a_full_disk_leaves_no_partial_file(server, cache, monkeypatch):
    url = server.add("/full.img", DATA)
    real_open = Path.open

    class Full(io.RawIOBase):
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, b):
            self.n += len(b)
            if self.n > 100_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(b)

        def __exit__(self, *a):
            self.f.close()

    def fake_open(self, mode="r", *a, **kw):
        f = real_open(self, mode, *a, **kw)
        return Full(f) if self.suffix == ".part" and "b" in mode and "r" not in mode else f

    monkeypatch.setattr(Path, "open", fake_open)
    with pytest.raises(ImageError, match="no space left on device while writing"):
        store(cache).resolve(spec(url, SHA))
    assert list((cache.root / "tmp").glob("*.part")) == [] and blobs(cache) == []


def _race(root: str, url: str, sha: str, q) -> None:
    img = ImageStore(Cache(Path(root)), log=lambda m: None).resolve(spec(url, sha))
    q.put(img.sha256)


def test_two_processes_racing_download_once(server, cache):
    url = server.add("/race.img", DATA, "slow", "slow")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(cache.root), url, SHA, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(q.get(timeout=5) for _ in procs) == [SHA, SHA]
    assert server.requests_for("/race.img") == [None]


def test_url_sources_in_guest_files(tmp_path):
    g = write(tmp_path / "g" / "g.yaml", f"""\
id: g
os: linux
arch: x86_64
images:
  a: {{url: "https://example.org/a.iso", checksums: "https://example.org/SHA256SUMS"}}
  b: {{url: "http://example.org/b.iso", sha256: {SHA}}}
  c: {{url: "https://example.org/c.iso"}}
  d: {{url: "https://example.org/d.iso", pin: false, mirrors: ["https://m.example/d.iso"]}}
  e: {{deb: {{package: p, path: x}}, mirrors: []}}
boot: {{cdrom: a}}
milestones: [{{name: m, pattern: x}}]
""")
    with pytest.raises(ConfigError) as err:
        load_guest(g)
    msgs = [str(i) for i in err.value.issues]
    assert msgs == [
        f"{g}:6: images.b.url: plain http is refused; use https, or set `insecure: true` on "
        "the image",
        f"{g}:7: images.c: needs sha256, sha512 or checksums (or `pin: false` to accept it "
        "unverified)",
        f"{g}:9: images.e.mirrors: does not apply to deb sources",
    ]


def test_file_sources_check_digests_and_decompress(cache, tmp_path):
    packed = lzma.compress(DATA)
    path = tmp_path / "local.img.xz"
    path.write_bytes(packed)
    file_spec = ImageSpec("f", "file", {"path": str(path), "sha512": None,
                                        "decompress": "auto", "member": None},
                          hashlib.sha256(packed).hexdigest())
    img = store(cache).resolve(file_spec)
    assert img.sha256 == SHA and img.details == {"decompress": "xz"}
    bad = ImageSpec("f", "file", dict(file_spec.params), "1" * 64)
    with pytest.raises(ImageError, match="sha256 mismatch: expected 1111"):
        store(cache).resolve(bad)


def test_the_download_bar_shows_bytes_rate_and_eta():
    from harness.progress import DownloadBar

    out = io.StringIO()
    bar = DownloadBar(out, live=True)
    bar("https://x/os.iso", 50_000_000, 100_000_000)
    bar("https://x/os.iso", 100_000_000, 100_000_000)
    text = out.getvalue()
    assert "os.iso" in text and "100.0/100.0 MB" in text and "MB/s" in text and "ETA" in text
    quiet = io.StringIO()
    DownloadBar(quiet, live=False)("https://x/os.iso", 1, 2)
    assert quiet.getvalue() == ""
