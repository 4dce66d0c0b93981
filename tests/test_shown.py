"""A cell stuck at its boot loader says what the guest showed (issue 16, item 4).

So a porter can tell a guest file's mistake (a menu pattern that never
matches what the guest printed) from a guest failure (a guest that printed
nothing): the reason names the milestone, its pattern and the last text,
in results.json, the summary, junit.xml and the cell page. The echo backend
(tests/echo_backend.py) runs real processes with no VM.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from harness.console.tracker import Outcome
from harness.executor import CellContext, execute
from harness.judge import Attempt, judge
from harness.model import BootSpec, Expectation, Guest, Milestone, Timeouts, Verdict
from harness.plan import make_cell
from harness.progress import summary_table
from harness.results.html import cell_page
from harness.results.junit import write_junit
from harness.results.validate import schema

from .conftest import register_backend

MENU = Milestone("boot-menu", re.compile("Choose an option"), timeout=30, keys=("ret",))
KERNEL = Milestone("kernel", re.compile(r"Linux version \d"))
INIT = Milestone("init", re.compile("Run /init"))


def guest(milestones, console="serial", cmdline="") -> Guest:
    return Guest(id="g", name="g", os="linux", arch="x86_64", images={},
                 boot=BootSpec("kernel", kernel="k", cmdline=cmdline), firmware=["bios"],
                 memory_mb=64, vcpus=1, console=console, milestones=list(milestones),
                 failures=[])


def result(g: Guest, outcome: Outcome, shown: dict[str, str]):
    cell = make_cell(g, "tcg", "bios", Timeouts(60, 30), 64)
    return judge(cell, [Attempt(outcome, shown=shown)])


def test_a_screen_guest_stuck_at_its_menu_shows_the_screen():
    screen = ("   GNU GRUB  version 2.06\n\n  *Install\x1b[0m   \n   Advanced options\n")
    r = result(guest([MENU, KERNEL], console="vga-text"),
               Outcome("timeout", 30.0, detail="milestone 'boot-menu' not reached within 30 s"),
               {"serial": "", "screen": screen})
    assert r.verdict is Verdict.TIMEOUT
    assert r.reason == ("waiting for milestone 'boot-menu' (pattern 'Choose an option'): not "
                        "reached within 30 s; the screen showed: 'GNU GRUB version 2.06 / "
                        "*Install\\x1b[0m / Advanced options'")
    assert r.shown == {"screen": screen}
    assert "\n" not in r.reason and r.reason in summary_table([r])  # the whole line


def test_a_serial_guest_that_printed_nothing_says_so():
    r = result(guest([KERNEL, INIT]),
               Outcome("hang", 20.0, detail="no console output for 20 s (milestone 'kernel' "
                                            "not reached within 20 s)"),
               {"serial": "", "screen": ""})
    assert r.reason == ("waiting for milestone 'kernel' (pattern 'Linux version \\\\d'): no "
                        "console output for 20 s (not reached within 20 s); the console "
                        "showed nothing")
    assert r.shown == {}


def test_the_serial_tail_is_its_end_and_the_screen_its_top():
    serial = "".join(f"line {i}\n" for i in range(200)) + "SeaBIOS: Booting from Hard Disk..."
    r = result(guest([KERNEL]), Outcome("timeout", 60.0, detail="the total deadline of 60 s"),
               {"serial": serial})
    seen = r.reason.split("; the console showed: ")[1]
    assert seen.startswith("'…") and seen.endswith("line 199 / SeaBIOS: Booting from Hard Disk...'")
    assert len(seen) < 110
    assert r.shown["serial"].splitlines()[-1] == "SeaBIOS: Booting from Hard Disk..."
    assert len(r.shown["serial"].splitlines()) == 20
    screen = "".join(f"row {i:02d} " * 8 + "\n" for i in range(25))
    r = result(guest([MENU], console="vga-text"), Outcome("timeout", 30.0), {"screen": screen})
    assert "the screen showed: 'row 00 row 00" in r.reason and r.reason.endswith("…'")


def test_only_the_boot_loader_stage_shows_the_screen():
    # reached the kernel, stuck before init: an ordinary timeout, as before
    r = result(guest([KERNEL, INIT]),
               Outcome("timeout", 60.0, reached={0: 3.0},
                       detail="milestone 'init' not reached within 30 s"),
               {"serial": "Linux version 6.1\n..."})
    assert r.reason == "milestone 'init' not reached within 30 s" and r.shown is None
    # reached the menu, typed its keys, and the kernel never came: did the keys work?
    r = result(guest([MENU, KERNEL], console="vga-text"),
               Outcome("timeout", 60.0, reached={0: 2.0},
                       detail="milestone 'kernel' not reached within 30 s"),
               {"serial": "", "screen": "  *Install\n   Advanced options\n"})
    assert r.reason == ("waiting for milestone 'kernel' (pattern 'Linux version \\\\d'): not "
                        "reached within 30 s; the screen showed: '*Install / Advanced options'")
    # a crash says what crashed; the screen is not the story
    panic = result(guest([KERNEL]), Outcome("crash", 5.0), {"serial": "x"})
    assert panic.shown is None and "showed" not in (panic.reason or "")


def test_an_expected_failure_keeps_what_it_showed():
    g = guest([MENU], console="vga-text")
    cell = make_cell(g, "tcg", "bios", Timeouts(60, 30), 64,
                     expect=Expectation(reason="menu drawn in graphics", backend="tcg"))
    r = judge(cell, [Attempt(Outcome("timeout", 30.0), shown={"screen": "Boot: _"})])
    assert r.verdict is Verdict.XFAIL and r.underlying is Verdict.TIMEOUT
    assert "the screen showed: 'Boot: _'" in r.reason and r.shown == {"screen": "Boot: _"}


@pytest.fixture
def echo(monkeypatch):
    return register_backend(monkeypatch, "echo", "tests.echo_backend", "a printed console")


def test_a_real_console_stuck_at_a_loader_through_results_junit_and_the_page(echo, tmp_path):
    console = (r"SeaBIOS (version 1.16.2)\n"
               r"ISOLINUX 6.04 ETCD\n"
               r"boot: <script>alert(1)</script>\n")
    g = guest([MENU, KERNEL], cmdline=console)
    cell = make_cell(g, "echo", "bios", Timeouts(20, 10), 64)
    r = execute(cell, {}, CellContext(tmp_path))
    assert r.verdict is Verdict.FAIL
    want = ("waiting for milestone 'boot-menu' (pattern 'Choose an option'): VM exited; the "
            "console showed: 'SeaBIOS (version 1.16.2) / ISOLINUX 6.04 ETCD / boot: "
            "<script>alert(1)</script>'")
    assert r.reason == want
    assert r.shown["serial"].splitlines()[-1] == "boot: <script>alert(1)</script>"
    # results.json keeps it (and validates: the schema knows `shown`)
    data = json.loads(json.dumps(r.to_json()))
    assert data["reason"] == want and data["shown"] == r.shown
    defs = schema()["$defs"]
    jsonschema.validate(data, {"$defs": defs, "$ref": "#/$defs/cell"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "shown": {"serial": 3}}, {"$defs": defs,
                                                                "$ref": "#/$defs/cell"})

    # the summary table, junit.xml and the cell page say the same
    assert want in summary_table([r])
    write_junit(tmp_path / "junit.xml", "run", [r], tmp_path)
    (failure,) = ET.parse(tmp_path / "junit.xml").iter("failure")
    assert failure.get("message") == f"fail: {want}"
    page = cell_page({"run_id": "run", "cells": [data], "host": {}}, data, tmp_path, None)
    assert "the console showed: &#x27;SeaBIOS" in page or "the console showed: 'SeaBIOS" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
