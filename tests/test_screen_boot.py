"""Real guests that only draw on the screen, booted under QEMU/TCG.

The images come from ../shared/images, imported into the cache the way a
lab without internet would (`harness cache import`); the guest files name
their real upstream URLs.
"""

from __future__ import annotations

import pytest
from PIL import Image

from harness.config import load_guest, load_guests
from harness.console import ocr
from harness.executor import CellContext, execute
from harness.images.manage import import_dir
from harness.model import Verdict
from harness.plan import make_cell

from .conftest import GUESTS, ROOT, TEST_GUESTS

pytestmark = pytest.mark.vm
SHARED = ROOT.parent / "shared" / "images"


@pytest.fixture(scope="session")
def shared_images(cache):
    if not SHARED.is_dir():
        pytest.skip("../shared/images is not beside the checkout")
    guests = {**load_guests(GUESTS), **load_guests(TEST_GUESTS)}
    imported = [i for i in import_dir(cache, SHARED, guests) if i.images]
    assert len(imported) >= 6
    return imported


def boot(path, tmp_path, cache):
    from harness.images.store import ImageStore

    guest = load_guest(path)
    images = ImageStore(cache, offline=True, log=lambda m: None).resolve_guest(guest)
    cell = make_cell(guest, "tcg", "bios", guest.timeouts, guest.memory_mb)
    return execute(cell, images, CellContext(tmp_path)), tmp_path / cell.folder


@pytest.mark.parametrize("gid, last_text", [
    ("freedos-722", "A:\\>"),
    ("freedos-std144", "A:\\>"),
    ("openbsd-2.8-i386-floppy", "(I)nstall, (U)pgrade or (S)hell?"),
    ("netbsd-g4u-i386", "g4u>"),
])
def test_text_mode_guests_pass_from_video_memory(gid, last_text, tmp_path, cache,
                                                 shared_images, qemu):
    r, folder = boot(GUESTS / f"{gid}.yaml", tmp_path, cache)
    assert r.verdict is Verdict.PASS, r.reason
    assert r.images[next(iter(r.images))]["url"].startswith("https://raw.githubusercontent.com/")
    assert last_text in (folder / "screen.txt").read_text()
    assert last_text in (folder / "screen.log").read_text()
    shots = r.artifacts["screenshots"]
    assert len(shots) == len(r.milestones)
    with Image.open(tmp_path / r.artifacts["screen"]) as img:
        assert img.size == (720, 400)


def test_netbsd_uses_serial_for_grub_and_the_screen_for_the_rest(tmp_path, cache,
                                                                 shared_images, qemu):
    r, folder = boot(GUESTS / "netbsd-g4u-i386.yaml", tmp_path, cache)
    assert r.verdict is Verdict.PASS, r.reason
    # console.raw: console.log's lines are split where the reads fell
    assert b"Booting `NetBSD g4u'" in (folder / "console.raw").read_bytes()
    assert "Welcome to g4u" in (folder / "screen.log").read_text()
    assert r.images["iso"]["source"] == "build:grub-iso"


def test_kolibrios_desktop_is_found_by_a_needle(tmp_path, cache, shared_images, qemu):
    r, folder = boot(GUESTS / "kolibrios-0.7.7.yaml", tmp_path, cache)
    assert r.verdict is Verdict.PASS, r.reason
    assert "screen switched to a graphics mode, 800x600" in (folder / "screen.log").read_text()
    with Image.open(folder / "milestone-03-desktop.png") as img:
        assert img.size == (800, 600)
    if ocr.unavailable() is None:  # the same desktop, read as text (an optional milestone)
        assert r.milestones[3].name == "desktop-text" and r.milestones[3].reached
        assert (folder / "milestone-04-desktop-text.png").is_file()


def test_typing_into_the_screen_and_a_still_screen(tmp_path, cache, shared_images, qemu):
    r, folder = boot(TEST_GUESTS / "test-freedos-typing.yaml", tmp_path, cache)
    assert r.verdict is Verdict.PASS, r.reason
    assert "A:\\>echo Typed-By_QMP!" in (folder / "screen.txt").read_text()
    output, idle = r.milestones[1], r.milestones[2]
    assert idle.t - output.t >= 2.0
