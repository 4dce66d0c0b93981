"""`harness fetch` and `harness cache` from the command line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.images.cache import Cache
from harness.images.manage import parse_duration, parse_size

from .conftest import ROOT, write
from .httpd import Server

SHARED = ROOT.parent / "shared" / "images"
FREEDOS = SHARED / "freedos" / "freedos722.img"
FREEDOS_SHA = "6c7b3c62823d538e20797fecae6dc55d2572455791a573a7de2cdba0b583f6be"
FREEDOS_URL = ("https://raw.githubusercontent.com/copy/images/"
               "7b438d488cf48136dea57825208c7e2b513fe263/freedos722.img")


def harness(*args: str, cache: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=120, env=env, **kw)


def project(tmp_path: Path, guests: dict[str, str]) -> Path:
    for gid, images in guests.items():
        write(tmp_path / "guests" / f"{gid}.yaml", f"""\
id: {gid}
os: dos
arch: i386
images:
{images}
boot: {{floppy: disk}}
milestones: [{{name: prompt, pattern: 'A:\\\\>'}}]
""")
    return write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg]\n")


def test_fetch_downloads_verifies_and_works_offline_afterwards(tmp_path):
    server = Server()
    try:
        data = os.urandom(50_000)
        url = server.add("/fd.img", data)
        m = project(tmp_path, {"fd": f"  disk: {{url: '{url}', insecure: true, "
                                     f"sha256: {hashlib.sha256(data).hexdigest()}}}"})
        cache = tmp_path / "cache"
        proc = harness("fetch", "--matrix", str(m), "--offline", cache=cache)
        assert proc.returncode == 1
        assert "FAILED: image disk: offline, and" in proc.stdout and "not in the cache" in \
            proc.stdout
        proc = harness("fetch", "--matrix", str(m), cache=cache)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"disk: {hashlib.sha256(data).hexdigest()}  url:{url}" in proc.stdout
        proc = harness("fetch", "--matrix", str(m), "--offline", cache=cache)
        assert proc.returncode == 0 and len(server.requests_for("/fd.img")) == 1
        proc = harness("cache", "ls", cache=cache)
        assert proc.returncode == 0
        assert any(line.startswith("download") and "yes" in line and url in line
                   for line in proc.stdout.splitlines())
    finally:
        server.close()


@pytest.mark.skipif(not FREEDOS.is_file(), reason="../shared/images is not beside the checkout")
def test_cache_import_seeds_images_from_a_folder(tmp_path):
    m = project(tmp_path, {"freedos": f"  disk: {{url: '{FREEDOS_URL}', sha256: {FREEDOS_SHA}}}"})
    cache = tmp_path / "cache"
    proc = harness("cache", "import", str(SHARED), "--matrix", str(m), cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert f"imported {FREEDOS}  for freedos/disk" in proc.stdout
    assert "1 files imported" in proc.stdout
    proc = harness("fetch", "--matrix", str(m), "--offline", cache=cache)
    assert proc.returncode == 0, proc.stdout
    assert f"disk: {FREEDOS_SHA}  url:{FREEDOS_URL}" in proc.stdout
    blob = Cache(cache).blob_path(FREEDOS_SHA)
    assert blob.read_bytes() == FREEDOS.read_bytes() and FREEDOS.is_file()  # a copy


def test_prune_by_age_and_size(tmp_path):
    cache = Cache(tmp_path / "cache")
    old = cache.put_bytes(b"o" * 4000)
    new = cache.put_bytes(b"n" * 3000)
    cache.set_ref("download:sha256:old", old, url="https://x/old")
    cache.set_ref("download:sha256:new", new, url="https://x/new")
    orphan = cache.put_bytes(b"nobody refers to me")
    ref = cache._ref_path("download:sha256:old")
    os.utime(ref, (time.time() - 40 * 86400,) * 2)
    removed, freed = cache.prune(older_than=30 * 86400)
    assert (removed, freed) == (2, 4000 + len(b"nobody refers to me"))
    assert not cache.has_blob(old) and not cache.has_blob(orphan) and cache.has_blob(new)
    assert cache.prune(max_size=1000) == (1, 3000)
    assert cache.entries() == []
    proc = harness("cache", "prune", cache=tmp_path / "cache")
    assert proc.returncode == 2 and "needs --older-than, --max-size or both" in proc.stderr
    proc = harness("cache", "prune", "--older-than", "1x", cache=tmp_path / "cache")
    assert proc.returncode == 2 and "expected a duration" in proc.stderr


def test_a_tampered_blob_is_detected(tmp_path):
    cache = Cache(tmp_path / "cache")
    sha = cache.put_bytes(b"good bytes")
    path = cache.blob_path(sha)
    path.chmod(0o644)
    path.write_bytes(b"evil bytes")  # same size, new mtime: the stamp no longer matches
    assert not cache.has_blob(sha) and not path.exists()
    sha = cache.put_bytes(b"good bytes")
    st = cache.blob_path(sha).stat()
    cache.blob_path(sha).chmod(0o644)
    cache.blob_path(sha).write_bytes(b"evil bytes")
    os.utime(cache.blob_path(sha), ns=(st.st_atime_ns, st.st_mtime_ns))  # stamp fooled ...
    assert cache.has_blob(sha)
    assert not Cache(tmp_path / "cache", verify=True).has_blob(sha)  # ... --verify-cache not


def test_durations_and_sizes():
    assert parse_duration("30d") == 30 * 86400 and parse_duration("90m") == 5400
    assert parse_duration("12") == 12
    assert parse_size("10G") == 10 << 30 and parse_size("500MiB") == 500 << 20
    for bad in ("soon", "-1d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
