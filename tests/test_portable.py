"""The harness starts on hosts without POSIX-only modules or /proc (issue 15).

Windows has no `fcntl`, `termios`, `pty` or `tty` (and pexpect cannot spawn there);
the BSDs and macOS have no /proc. Each command is run in a subprocess whose bootstrap
makes importing those modules fail (`sys.modules[name] = None`) and makes every open
of a /proc path raise PermissionError, then runs `harness` as `python -m harness`
would. The commands must still exit 0 and say something sensible.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.images.cache import Cache

from .conftest import ROOT, TEST_GUESTS, write

POSIX_ONLY = ("fcntl", "termios", "pty", "tty", "pexpect")
# The pty process is the one module allowed to need them at import: it is imported
# where a VM is spawned (runner._follow), never by list/probe/--help.
ALLOWED = {"harness/backends/process.py"}

BOOTSTRAP = f"""
import builtins, io, os, sys
for name in {POSIX_ONLY!r}:
    sys.modules[name] = None

def _proc(path):
    if isinstance(path, int):
        return False
    try:
        p = os.path.abspath(os.fsdecode(os.fspath(path)))
    except TypeError:
        return False
    if p == "/proc" or p.startswith("/proc/"):
        print("blocked:", p, file=sys.stderr)
        return True
    return False

_open, _os_open = builtins.open, os.open

def _blocked_open(file, *args, **kwargs):
    if _proc(file):
        raise PermissionError(13, "no /proc on this host", str(file))
    return _open(file, *args, **kwargs)

def _blocked_os_open(path, *args, **kwargs):
    if _proc(path):
        raise PermissionError(13, "no /proc on this host", str(path))
    return _os_open(path, *args, **kwargs)

builtins.open = io.open = _blocked_open  # pathlib.Path.open calls io.open
os.open = _blocked_os_open
"""
RUN_HARNESS = BOOTSTRAP + "import runpy; runpy.run_module('harness', run_name='__main__')\n"


def blocked(code: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_the_bootstrap_really_blocks(tmp_path):
    """Else the tests below would prove nothing."""
    proc = blocked(BOOTSTRAP + f"""
import importlib, pathlib
for name in {POSIX_ONLY!r}:
    try:
        importlib.import_module(name)
    except ImportError:
        print("no", name)
for read in (lambda: open("/proc/self/status"), lambda: pathlib.Path("/proc/cpuinfo").read_text(),
             lambda: os.open("/proc/meminfo", os.O_RDONLY)):
    try:
        read()
    except PermissionError:
        print("denied")
""", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == [f"no {n}" for n in POSIX_ONLY] + ["denied"] * 3


def test_help_needs_no_posix_module(tmp_path):
    proc = blocked(RUN_HARNESS, "--help", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "probe" in proc.stdout and "Traceback" not in proc.stderr


def test_list_needs_no_posix_module_and_no_proc(tmp_path):
    m = write(tmp_path / "matrix.yaml",
              "guests: [test-shell, test-panic]\nbackends: [tcg, kvm, hvf]\nfirmware: [bios]\n")
    proc = blocked(RUN_HARNESS, "list", "--matrix", str(m), "--guests", str(TEST_GUESTS),
                   "--cells", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for cell in ("test-shell/tcg/bios", "test-panic/tcg/bios", "test-shell/hvf/bios"):
        assert cell in proc.stdout
    assert "blocked: /proc/cpuinfo" in proc.stderr  # the host facts asked, and coped


def test_probe_needs_no_posix_module_and_no_proc(tmp_path):
    proc = blocked(RUN_HARNESS, "probe", "--no-canary", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("host: Linux ")
    backends = {ln.split()[0]: ln.split()[1] for ln in lines[1:] if ln.startswith("  ")}
    assert {"tcg", "kvm", "hvf", "whpx", "nvmm"} <= set(backends)
    assert backends["hvf"] == "missing"  # a macOS accelerator, on Linux
    assert set(backends.values()) <= {"available", "unusable", "missing"}


def test_probe_json_still_names_the_cpu_without_proc(tmp_path):
    proc = blocked(RUN_HARNESS, "probe", "--no-canary", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)["host"]
    assert host["os"] == "Linux" and host["kernel"] and host["arch"]
    assert host["cpu_flags"] == []  # they came from /proc/cpuinfo, which was denied


def test_the_cache_imports_without_fcntl(tmp_path):
    proc = blocked(BOOTSTRAP + "import harness.images.cache as c; print(c.Cache().root)",
                   tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str((tmp_path / "cache").resolve())


def _top_level_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the module is: not in functions, not under TYPE_CHECKING,
    not in a try whose handler catches ImportError."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                guarded = any("ImportError" in ast.unparse(h.type or ast.Name("x"))
                              for h in node.handlers)
                if not guarded:
                    visit(node.body)

    visit(tree.body)
    return names


def test_no_module_but_the_pty_process_imports_posix_only_modules_at_import():
    offenders = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found = _top_level_imports(ast.parse(path.read_text())) & set(POSIX_ONLY)
        if found and rel not in ALLOWED:
            offenders[rel] = sorted(found)
    assert offenders == {}


# --- the cache's lock, now filelock: processes and threads still exclude each other --------

HOLDER = """
import sys, time
from pathlib import Path
from harness.images.cache import Cache
with Cache(Path(sys.argv[1])).lock("the-key"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
print("released", flush=True)
"""


def test_a_lock_held_by_another_process_excludes_until_released(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        got = threading.Event()

        def take() -> None:
            with Cache(tmp_path).lock("the-key"):
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not got.wait(1.5), "the lock was taken while another process held it"
        with Cache(tmp_path).lock("another-key"):  # other names are not held up
            pass
        holder.stdin.close()
        assert got.wait(10), "the lock was not taken after the other process let go"
        taker.join(10)
    finally:
        holder.kill()
        holder.wait()


def test_threads_of_one_process_exclude_each_other(tmp_path):
    cache, inside, most = Cache(tmp_path), [0], [0]
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            with cache.lock("shared"):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.01)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most[0] == 1


@pytest.mark.parametrize("system, env, want", [
    ("Linux", {}, "{home}/.cache/guest-harness"),
    ("Linux", {"XDG_CACHE_HOME": "/x/cache"}, "/x/cache/guest-harness"),
    ("Linux", {"HARNESS_CACHE": "/y/c"}, "/y/c"),
    ("Darwin", {"HARNESS_CACHE": "/y/c"}, "/y/c"),
])
def test_the_default_cache_folder(monkeypatch, system, env, want):
    """Linux keeps the folder it always had; $HARNESS_CACHE wins everywhere."""
    from harness.images import cache as cache_mod

    for name in ("HARNESS_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cache_mod.platform, "system", lambda: system)
    assert str(cache_mod.default_root()) == want.format(home=Path.home())


def test_elsewhere_the_cache_folder_is_platformdirs(monkeypatch):
    import platformdirs

    from harness.images import cache as cache_mod

    monkeypatch.delenv("HARNESS_CACHE", raising=False)
    monkeypatch.setattr(cache_mod.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platformdirs, "user_cache_dir",
                        lambda name, appauthor=None: f"/Users/u/Library/Caches/{name}")
    assert str(cache_mod.default_root()) == "/Users/u/Library/Caches/guest-harness"
