"""Shared fixtures: the repository's paths, the image cache, real images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config import load_guest
from harness.images.cache import Cache
from harness.images.store import ImageStore

from .httpd import Server

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests"
TEST_GUESTS = Path(__file__).resolve().parent / "guests"


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 whose misbehaviour the test scripts (httpd.py)."""
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="session")
def cache() -> Cache:
    """The user's (or $HARNESS_CACHE's) cache: downloads survive between test runs."""
    return Cache()


@pytest.fixture(scope="session")
def store(cache: Cache) -> ImageStore:
    return ImageStore(cache, log=lambda message: None)


@pytest.fixture(scope="session")
def default_guest():
    return load_guest(GUESTS / "linux-busybox-x86_64.yaml")


@pytest.fixture(scope="session")
def default_images(store, default_guest):
    return store.resolve_guest(default_guest)


@pytest.fixture(scope="session")
def qemu() -> str:
    path = shutil.which("qemu-system-x86_64")
    assert path, "qemu-system-x86_64 is missing: `make test` installs it (qemu-system-x86)"
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refused_as(path: Path, line: int, message: str) -> None:
    """The guest file at `path` is refused with `path:line: message`, by the loader and by
    the command line (exit 2, no traceback)."""
    import subprocess
    import sys

    from harness.config import ConfigError

    with pytest.raises(ConfigError) as err:
        load_guest(path)
    assert f"{path}:{line}: {message}" in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "harness", "list", "--guests", str(path.parent)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def register_backend(monkeypatch, name: str, module: str, description: str):
    """backends.yaml with one more entry, whose module lives in tests/ (for this test)."""
    import sys

    from harness import knowledge
    from harness.model import BackendInfo

    info = BackendInfo(name=name, kind=name, module=module, description=description,
                       hardware=False, binary=sys.executable, arches=("x86_64",))
    monkeypatch.setitem(knowledge.backends(), name, info)
    return info


def chromium(width: int = 1280, height: int = 800, scrollbars: bool = False):
    """Headless Chromium (a generator, for each module's browser fixture); skips where
    Debian's chromium and chromium-driver are missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed (make deps)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-dev-shm-usage",
                *(() if scrollbars else ("--hide-scrollbars",))):
        opts.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    yield b
    b.quit()
