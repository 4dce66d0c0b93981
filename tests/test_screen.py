"""Screen consoles without a VM: VGA text, new lines, needles, still screens, keys, config."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from harness.config import ConfigError, load_guest
from harness.console.keys import KeyNameError, combo, combos_for_text
from harness.console.screen import (
    is_text_mode,
    new_lines,
    same_screen,
    similarity,
    vga_rows,
    visible_text,
)
from harness.console.screen_match import Reached, ScreenMatcher, wants_screenshot
from harness.model import Milestone, Needle, Still

from .conftest import write


def vga(lines: list[str], cols: int = 80, rows: int = 25) -> bytes:
    buf = bytearray()
    for r in range(rows):
        text = lines[r] if r < len(lines) else ""
        for ch in text.ljust(cols).encode("cp437"):
            buf += bytes([ch, 0x07])
    return bytes(buf)


def test_vga_text_memory_to_rows():
    rows = vga_rows(vga(["A:\\>", "", "\u2554\u2550 box"]))
    assert rows[0] == "A:\\>" and rows[1] == "" and rows[2] == "\u2554\u2550 box"
    assert len(rows) == 25
    assert vga_rows(b"\x00\x07" * 80) == [""]  # NULs are blanks
    assert visible_text(rows) == "A:\\>\n\n\u2554\u2550 box\n"


def test_only_new_lines_reach_the_matcher_even_when_the_screen_scrolls():
    first = ["boot", "kernel 1", "A:\\>"]
    scrolled = ["kernel 1", "A:\\>dir", "A:\\>"]
    assert new_lines([], first) == first
    assert new_lines(first, scrolled) == ["A:\\>dir"]
    assert new_lines(scrolled, scrolled) == []
    assert new_lines(["A:\\>"], ["A:\\>", "A:\\>"]) == ["A:\\>"]  # a second prompt is new


def test_needles_and_still_screens():
    screen = Image.new("RGB", (800, 600), (40, 120, 90))
    screen.paste((0, 100, 0), (2, 574, 46, 598))
    needle = screen.crop((2, 574, 46, 598))
    assert similarity(screen, needle, 2, 574) == 1.0
    assert similarity(screen, needle, 300, 300) < 0.9  # below the default 0.95
    assert similarity(screen, needle, 790, 590) == 0.0  # outside the screen
    clock = screen.copy()
    clock.paste((255, 255, 255), (740, 576, 790, 596))
    assert not same_screen(screen, clock)
    assert same_screen(screen, clock, mask=[(730, 570, 70, 30)])
    assert is_text_mode((720, 400)) and not is_text_mode((800, 600))


def test_keys():
    assert combo("ctrl-alt-delete") == ["ctrl", "alt", "delete"]
    assert combo("Enter") == ["ret"] and combo("esc") == ["esc"]
    assert combos_for_text("Dir A:\\\n") == [["shift", "d"], ["i"], ["r"], ["spc"],
                                            ["shift", "a"], ["shift", "semicolon"],
                                            ["backslash"], ["ret"]]
    with pytest.raises(KeyNameError):
        combo("hyper-x")
    with pytest.raises(KeyNameError):
        combos_for_text("€")


SCREEN_GUEST = """\
id: s
os: dos
arch: i386
console: vga-text
images: {{fd: {{file: fd.img}}}}
boot: {{floppy: fd}}
milestones:
{milestones}
"""


def test_screen_milestones_in_guest_files(tmp_path):
    (tmp_path / "g").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "g" / "menu.png")
    good = write(tmp_path / "g" / "s.yaml", SCREEN_GUEST.format(milestones="""\
  - {name: grub, pattern: GRUB, source: serial, send: "boot\\n"}
  - {name: prompt, pattern: 'A:\\\\>', keys: [y, ctrl-alt-delete], send: "dir\\n"}
  - {name: desktop, needle: {image: menu.png, x: 2, y: 574}}
  - {name: idle, still: {seconds: 3, mask: [[740, 576, 50, 20]]}}"""))
    g = load_guest(good)
    assert [m.source for m in g.milestones] == ["serial", "screen", "screen", "screen"]
    assert g.milestones[1].keys == ("y", "ctrl-alt-delete") and g.uses_screen
    assert g.milestones[2].needle.image == tmp_path / "g" / "menu.png"
    assert g.milestones[2].needle.threshold == 0.95
    assert g.milestones[3].still.mask == ((740, 576, 50, 20),)
    bad = write(tmp_path / "g" / "s.yaml", SCREEN_GUEST.format(milestones="""\
  - {name: a, pattern: x, keys: [hyper]}
  - {name: b, needle: {image: nope.png, x: 0, y: 0}}
  - {name: c, still: {seconds: 2, mask: [[1, 2]]}}
  - {name: d, pattern: x, needle: {image: menu.png, x: 0, y: 0}}
  - {name: e, needle: {image: menu.png, x: 0, y: 0}, source: serial}
  - {name: f, pattern: x, send: "\u20ac"}"""))
    with pytest.raises(ConfigError) as err:
        load_guest(bad)
    msgs = [str(i) for i in err.value.issues]
    assert f"{bad}:8: milestones[0].keys[0]: unknown key 'hyper' in 'hyper'" in msgs
    assert any(m.startswith(f"{bad}:9: milestones[1].needle.image: no such file") for m in msgs)
    assert f"{bad}:10: milestones[2].still.mask[0]: expected [x, y, w, h], got [1, 2]" in msgs
    assert f"{bad}:11: milestones[3]: needs exactly one of pattern, needle, still" in msgs
    assert f"{bad}:12: milestones[4].needle: needs the screen (source: screen)" in msgs
    assert f"{bad}:13: milestones[5].send: cannot type '\u20ac' on the screen console" in msgs


def test_the_needle_command_cuts_a_region(tmp_path):
    shot = tmp_path / "screen.png"
    img = Image.new("RGB", (800, 600), (0, 0, 0))
    img.paste((0, 100, 0), (2, 574, 46, 598))
    img.save(shot)
    out = tmp_path / "menu.png"
    proc = subprocess.run([sys.executable, "-m", "harness", "needle", str(shot), "--x", "2",
                           "--y", "574", "--w", "44", "--h", "24", "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "needle: {image: menu.png, x: 2, y: 574, threshold: 0.95}" in proc.stdout
    with Image.open(out) as needle:
        assert needle.size == (44, 24) and needle.getpixel((0, 0)) == (0, 100, 0)
    proc = subprocess.run([sys.executable, "-m", "harness", "needle", str(shot), "--x", "790",
                           "--y", "0", "--w", "44", "--h", "24", "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "leaves the 800x600 screenshot" in proc.stderr


def screen_ms(name, **kw):
    return Milestone(name, None, source="screen", **kw)


def test_a_needle_is_reached_when_the_screenshot_shows_it(tmp_path):
    screen = Image.new("RGB", (800, 600), (40, 120, 90))
    screen.paste((0, 100, 0), (2, 574, 46, 598))
    needle = screen.crop((2, 574, 46, 598))
    menu = screen_ms("menu", needle=Needle(tmp_path / "menu.png", 2, 574))
    far = screen_ms("far", needle=Needle(tmp_path / "menu.png", 300, 300))
    match = ScreenMatcher()
    loaded = []

    def image(path):
        loaded.append(path)
        return needle

    assert match.shot_seen(None, screen, [(4, far)], image, 1.0) is None  # below 0.95
    assert match.shot_seen(None, screen, [(4, far), (5, menu)], image, 2.0) == Reached(
        5, "needle similarity 1.000")
    assert loaded == [tmp_path / "menu.png"] * 3
    assert wants_screenshot([(5, menu)], None)


def test_a_still_screen_counts_from_when_it_is_due():
    idle = screen_ms("idle", still=Still(3.0, ((730, 570, 70, 30),)))
    match = ScreenMatcher()
    text = (720, 400)
    match.text_seen(True, 10.0)
    assert match.still([(2, idle)], 11.0, text) is None  # due (armed) from 11
    assert match.still([(2, idle)], 13.9, text) is None
    match.text_seen(False, 13.95)  # an unchanged poll does not restart it
    assert match.still([(2, idle)], 14.0, text) == Reached(2, "screen unchanged for 3 s")
    match = ScreenMatcher()
    assert match.still([(2, idle)], 1.0, text) is None
    match.text_seen(True, 2.0)  # the text changed: counting starts again
    assert match.still([(2, idle)], 4.5, text) is None
    assert match.still([(2, idle)], 5.0, text) is not None


def test_a_still_screen_in_a_graphics_mode_ignores_its_mask():
    idle = screen_ms("idle", still=Still(2.0, ((730, 570, 70, 30),)))
    graphics = (800, 600)
    assert not wants_screenshot([(0, idle)], (720, 400)) and wants_screenshot([(0, idle)], graphics)
    a = Image.new("RGB", graphics, (40, 120, 90))
    clock = a.copy()
    clock.paste((255, 255, 255), (740, 576, 790, 596))  # inside the mask
    moved = a.copy()
    moved.paste((255, 255, 255), (10, 10, 50, 50))
    match = ScreenMatcher()
    match.text_seen(True, 9.0)  # text changes do not count in a graphics mode
    assert match.shot_seen(None, a, [(0, idle)], Image.open, 1.0) is None
    assert match.still([(0, idle)], 1.0, graphics) is None
    assert match.shot_seen(a, clock, [(0, idle)], Image.open, 2.0) is None
    assert match.still([(0, idle)], 2.5, graphics) is None  # changed at 1.0
    assert match.still([(0, idle)], 3.0, graphics) == Reached(0, "screen unchanged for 2 s")
    match = ScreenMatcher()
    match.shot_seen(None, a, [(0, idle)], Image.open, 1.0)
    match.still([(0, idle)], 1.0, graphics)
    match.shot_seen(a, moved, [(0, idle)], Image.open, 2.5)  # outside the mask: restarts
    assert match.still([(0, idle)], 3.0, graphics) is None
    assert match.still([(0, idle)], 4.5, graphics) is not None
