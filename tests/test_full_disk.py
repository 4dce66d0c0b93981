"""Full disks lose nothing: results.json keeps every cell that was written, a failed
write is said (and retried), the exit status says the run is incomplete (3), and a full
cache while unpacking is a full cache, not corrupt data.

The real thing needs root (a small tmpfs); the same paths are also driven without root:
an injected ENOSPC at the one write function, and RLIMIT_FSIZE (EFBIG, a real error from
the kernel) for the cache."""

from __future__ import annotations

import errno
import gzip
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from harness.files import atomic_write
from harness.model import CellResult, Verdict
from harness.results import store as results_store
from harness.results.store import RunStore
from harness.results.validate import read_results

from .conftest import ROOT, write
from .test_damaged import echo_matrix, harness

WRITE_ERRORS = [errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO]


def result(guest: str) -> CellResult:
    return CellResult(f"{guest}/echo/bios", guest, "echo", "bios", Verdict.PASS, score=1.0)


def _mountable() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path("/tmp") / f"harness-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    except OSError:
        return False
    finally:
        probe.rmdir()


needs_mount = pytest.mark.skipif(not _mountable(), reason="needs root and mount (tmpfs)")


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KiB file system; grow it with `mount -o remount,size=…`."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(where)], check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("code", WRITE_ERRORS, ids=[errno.errorcode[c] for c in WRITE_ERRORS])
def test_a_failed_write_keeps_the_previous_results_json(tmp_path, monkeypatch, code):
    said: list[str] = []
    store = RunStore(tmp_path, {"os": "Linux", "arch": "x86_64"}, latest=False)
    store.log = said.append
    store.add(result("g1"))
    real = results_store.atomic_write

    def failing(path, data):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(results_store, "atomic_write", failing)
    store.add(result("g2"))
    store.add(result("g3"))
    reason = os.strerror(code).lower()
    assert said == [f"results.json: {reason}; kept the previous complete file with 1 cell"]
    assert [c["id"] for c in read_results(store.folder / "results.json")["cells"]] == [
        "g1/echo/bios"]
    assert store.lost
    monkeypatch.setattr(results_store, "atomic_write", real)
    store.finish()  # the space came back: every cell is written
    data = read_results(store.folder / "results.json")
    assert len(data["cells"]) == 3 and data["finished"] and not store.lost
    assert said[-1] == "results.json: written again, with 3 cells"


def test_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = write(tmp_path / "results.json", "old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        atomic_write(path, "new\n" * 1000)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "results.json"]


def _check_incomplete(proc: subprocess.CompletedProcess, folder: Path) -> None:
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert ("results.json: no space left on device; kept the previous complete file with "
            "1 cell") in proc.stderr
    assert "incomplete: the run folder could not be written in full" in proc.stderr
    cells = read_results(folder / "results.json")["cells"]
    assert [c["verdict"] for c in cells] == ["pass"]


def test_a_run_whose_disk_fills_ends_incomplete_and_keeps_its_cells(tmp_path):
    """Without root: results.json may be written twice (the start, the first cell)."""
    opts = echo_matrix(tmp_path)
    m = Path(opts[1])
    m.write_text(m.read_text() + "jobs: 1\n")
    out = tmp_path / "reports"
    proc = harness_env({"ECHO_RUN_FULL_AFTER": "2"}, "run", *opts, "--offline", "--out",
                       str(out))
    _check_incomplete(proc, out / "latest")


def harness_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, "-m", "tests.echo_run", *args], capture_output=True,
                          text=True, cwd=ROOT, env=full, timeout=60)


@needs_mount
def test_a_run_on_a_full_file_system_then_resumed(tmp_path, small_disk):
    """For real: the second guest's console fills the disk; the first cell stays, and once
    the file system grows, --resume finishes the run."""
    opts = echo_matrix(tmp_path)
    m = Path(opts[1])
    m.write_text(m.read_text() + "jobs: 1\n")
    big = tmp_path / "guests" / "g2.yaml"
    big.write_text(big.read_text().replace("init process", "init process" + "x" * 300_000))
    out = small_disk / "reports"
    proc = harness("run", *opts, "--offline", "--out", str(out), timeout=60)
    folder = (out / "latest").resolve()
    _check_incomplete(proc, folder)
    assert read_results(folder / "results.json")["cells"][0]["id"] == "g1/echo/bios"
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    for leftover in (folder / "cells" / "g2").rglob("console.txt"):
        leftover.unlink()
    again = harness("run", *opts, "--offline", "--resume", str(folder), timeout=60)
    assert again.returncode == 0, again.stderr[-2000:]
    data = read_results(folder / "results.json")
    assert sorted((c["id"], c["verdict"]) for c in data["cells"]) == [
        ("g1/echo/bios", "pass"), ("g2/echo/bios", "pass")]
    assert (folder / "junit.xml").is_file()


def _gz_guest(tmp_path: Path) -> list[str]:
    packed = write(tmp_path / "k.gz", "").with_suffix(".gz")
    packed.write_bytes(gzip.compress(b"\0" * 4_000_000))
    write(tmp_path / "guests" / "g.yaml", (
        "id: g\nname: g\nos: linux\narch: x86_64\nimages:\n"
        f"  kernel: {{file: {packed}}}\n"
        "boot: {kernel: kernel}\nfirmware: [bios]\nmemory: 64M\n"
        "milestones:\n  - {name: kernel, pattern: 'Linux'}\n"
        "timeouts: {total: 20, stall: 10}\n"))
    m = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg]\nfirmware: [bios]\n")
    return ["--matrix", str(m), "--guests", str(tmp_path / "guests")]


def _fetch(tmp_path: Path, cache: Path, limit: int | None = None):
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "harness", "fetch", *_gz_guest(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
                          preexec_fn=small_files if limit else None)


def test_a_cache_that_cannot_take_the_unpacked_image_says_so(tmp_path):
    """Without root: files may not grow past 1 MB (EFBIG from the kernel, a real error)."""
    proc = _fetch(tmp_path, tmp_path / "cache", limit=1_000_000)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in text, text
    assert f"file too large while unpacking k.gz into the cache {tmp_path / 'cache'}" in text
    assert "corrupt" not in text
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []  # no half blob left


@needs_mount
def test_a_full_cache_while_unpacking_is_no_space_not_corrupt_data(tmp_path, small_disk):
    proc = _fetch(tmp_path, small_disk / "cache")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in text, text
    assert f"no space left on device while unpacking k.gz into the cache {small_disk}" in text
    assert "corrupt" not in text
    assert list((small_disk / "cache" / "tmp").iterdir()) == []



def test_a_merge_that_cannot_write_its_results_ends_incomplete(tmp_path):
    from .damaged_results import RUN_ID, dumps, valid

    run = write(tmp_path / "runs" / RUN_ID / "results.json", dumps(valid()).decode()).parent
    proc = harness_env({"ECHO_RUN_FULL_AFTER": "1"}, "merge", str(run), "--out",
                       str(tmp_path / "merged"))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert ("results.json: no space left on device; kept the previous complete file with "
            "0 cells") in proc.stderr
    merged = next(p for p in (tmp_path / "merged").iterdir() if p.name[0].isdigit())
    assert read_results(merged / "results.json")["cells"] == []


@needs_mount
def test_a_merge_onto_a_full_file_system(tmp_path, small_disk):
    from .damaged_results import RUN_ID, dumps, valid

    run = write(tmp_path / "runs" / RUN_ID / "results.json", dumps(valid()).decode()).parent
    write(run / "cells" / "g1" / "echo-bios" / "console.log", "x" * 400_000)
    proc = harness("merge", str(run), "--out", str(small_disk / "merged"))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert "cells/g1/echo-bios: no space left on device; its files were not copied" \
        in proc.stderr
    merged = next(p for p in (small_disk / "merged").iterdir() if p.name[0].isdigit())
    assert len(read_results(merged / "results.json")["cells"]) == 2


@needs_mount
def test_a_console_that_fills_the_disk_is_an_error_cell_not_a_traceback(tmp_path, small_disk):
    opts = echo_matrix(tmp_path)
    m = Path(opts[1])
    m.write_text(m.read_text() + "jobs: 1\n")
    g2 = tmp_path / "guests" / "g2.yaml"
    g2.write_text(g2.read_text().replace(r"6.1\n", r"6.1\n" + "x" * 70 + r"@x5000\n"))
    out = small_disk / "reports"
    proc = harness("run", *opts, "--offline", "--out", str(out), timeout=60)
    _check_incomplete(proc, (out / "latest").resolve())
    assert "g2/echo/bios  error" in proc.stdout and "no space left on device" in proc.stdout
