"""Hostile input: names that would leave their folder or run in a shell, and pages a
guest could put script into. (Issue 14's attacks; the rest of it is still to do.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.config import ConfigError, load_guest
from harness.files import safe_name
from harness.results import html
from harness.results.store import check_names, load_results

from .conftest import ROOT, write
from .test_report import browser, results  # noqa: F401  (browser: a fixture)

HOSTILE = ["../../../x", "d`touch X`$(touch Y)", "a b", "a'b", 'a"b', "a\nb", "a\x1bb",
           "..", ".hidden", "-rf", "x/y", "", "a" * 101, "javascript:alert(1)", "a;b", "a$b"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_not_a_safe_name(name):
    assert not safe_name(name)


def test_ordinary_names_are_safe():
    assert all(safe_name(n) for n in ("linux-busybox-x86_64", "kernel", "debian-12.11",
                                      "c++", "iso_2", "a" * 100))


@pytest.mark.parametrize("name", ["../../../x", "d`touch X`$(touch Y)", "a b", "a\nb"])
def test_a_guest_file_with_a_hostile_image_name_is_refused(tmp_path, name):
    text = (ROOT / "guests" / "grub-2.06-iso.yaml").read_text()
    images = re.search(r"^images:\n(  \S.*\n(    .*\n)*)", text, re.M)
    assert images is not None
    first = images.group(1).split(":", 1)[0].strip()
    bad = text.replace(f"\n  {first}:", f"\n  {json.dumps(name)}:", 1)
    with pytest.raises(ConfigError) as err:
        load_guest(write(tmp_path / "grub-2.06-iso.yaml", bad))
    assert "an image name is letters, digits and . _ + - only" in str(err.value)


def test_a_guest_id_with_shell_characters_is_refused(tmp_path):
    text = (ROOT / "guests" / "grub-2.06-iso.yaml").read_text()
    stem = "g$(touch pwned)"
    bad = write(tmp_path / f"{stem}.yaml", text.replace("id: grub-2.06-iso", f"id: '{stem}'"))
    with pytest.raises(ConfigError, match=r"an id is letters, digits"):
        load_guest(bad)


@pytest.mark.parametrize("field, value", [("guest", "../../../etc"), ("backend", "tcg/../.."),
                                          ("firmware", "bios'><script>")])
def test_results_whose_names_leave_the_run_folder_are_refused(tmp_path, field, value):
    data = results("20261121T000000Z-abcd", "2026-11-21T00:00:00Z", {"g/tcg/bios": "pass"})
    data["cells"][0][field] = value
    data["cells"][0]["id"] = "/".join(data["cells"][0][k] for k in ("guest", "backend",
                                                                     "firmware"))
    with pytest.raises(ValueError, match="is not a name"):
        check_names(data)
    run = tmp_path / "runs" / "r"
    write(run / "results.json", json.dumps(data))
    for command in (["report", str(run)], ["merge", str(run), "--out", str(tmp_path / "m")]):
        proc = subprocess.run([sys.executable, "-m", "harness", *command], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2 and "is not a name" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing written outside
    with pytest.raises(ValueError, match="id 'g/tcg/x'"):
        ok = results("20261121T000000Z-abcd", "2026-11-21T00:00:00Z", {"g/tcg/bios": "pass"})
        ok["cells"][0]["id"] = "g/tcg/x"
        check_names(ok)
    assert load_results(write(tmp_path / "fine.json", json.dumps(results(
        "20261121T000000Z-abcd", "2026-11-21T00:00:00Z", {"g/tcg/bios": "pass"}))))


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag):
        self._in_script = False


EVIL_OS = "linux tabindex=1 autofocus onfocus=window.pwned=1 x"


def hostile_run(tmp_path: Path) -> Path:
    data = results("20261121T000000Z-abcd", "2026-11-21T00:00:00Z", {"g/tcg/bios": "pass"})
    data["guests"] = {"g": {"os": EVIL_OS, "arch": "x86_64' onmouseover='window.pwned=2"}}
    data["cells"][0]["verdict"] = "pass onfocus=window.pwned=3"
    data["cells"][0]["artifacts"] = {"screenshots": ["cells/g/tcg-bios/javascript:window."
                                                     "pwned=4", "cells/g/tcg-bios/ok.png"]}
    run = tmp_path / "20261121T000000Z-abcd"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(data))
    (run / "index.html").write_text(html.run_page(data))
    folder = run / "cells" / "g" / "tcg-bios"
    folder.mkdir(parents=True)
    (folder / "cell.html").write_text(html.cell_page(data, data["cells"][0], run, []))
    return run


def test_guest_text_stays_inside_quoted_attributes_and_links_are_files(tmp_path):
    run = hostile_run(tmp_path)
    for page in (run / "index.html", run / "cells" / "g" / "tcg-bios" / "cell.html"):
        p = _Elements()
        p.feed(page.read_text())
        attrs = [a for _, a in p.found]
        assert not any(k.startswith("on") or k == "autofocus" for a in attrs for k in a), page
        hrefs = [a.get("href") or a.get("src") or "" for a in attrs]
        assert not any(h.lower().startswith("javascript:") for h in hrefs), hrefs
        meta = next(a for t, a in p.found if t == "meta" and a.get("http-equiv"))
        policy = meta["content"] or ""
        assert "script-src" in policy and "'unsafe-inline'" not in policy.split("script-src")[1]
        assert len(re.findall(r"'sha256-", policy)) == len(p.scripts)
    rows = [a for t, a in _parsed(run / "index.html") if t == "tr" and "data-os" in a]
    assert rows[0]["data-os"] == EVIL_OS
    shots = [a["src"] for t, a in _parsed(run / "cells/g/tcg-bios/cell.html") if t == "img"]
    assert shots == ["ok.png"]


def _parsed(page: Path) -> list[tuple[str, dict[str, str | None]]]:
    p = _Elements()
    p.feed(page.read_text())
    return p.found


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_no_script_of_a_guest_runs_in_chromium(tmp_path, browser):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    run = hostile_run(tmp_path)
    for page in (run / "index.html", run / "cells" / "g" / "tcg-bios" / "cell.html"):
        browser.get(page.as_uri())
        for el in browser.find_elements(By.CSS_SELECTOR, "tr, td, th, a, img")[:40]:
            ActionChains(browser).move_to_element(el).perform()
        assert browser.execute_script("return window.pwned === undefined")
    browser.get((run / "index.html").as_uri())
    assert browser.find_elements(By.CSS_SELECTOR, "tr.guest")  # the page itself still works


# --- what reaches the terminal ---------------------------------------------------

OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # a clipboard write a terminal would obey


def test_guest_text_reaches_the_terminal_with_its_controls_made_visible():
    import io

    from harness.model import CellResult, MilestoneResult, Verdict
    from harness.progress import Progress, summary_table, visible

    assert visible(f"a{OSC52}b\r\x08\x9b2J") == "a^[]52;c;cHduZWQ=^Gb^M^H\\x9b2J"
    assert visible("x" * 300, 10) == "x" * 9 + "…" and visible("ok ü") == "ok ü"
    r = CellResult("g/tcg/bios", "g", "tcg", "bios", Verdict.CRASH,
                   milestones=[MilestoneResult(f"m{OSC52}", True, 1.0)],
                   reason=f"kernel-panic: {OSC52}\rgone\x1b[2J")
    out = io.StringIO()
    p = Progress(out, live=False)
    p.start(1)
    p.cell_finished(r)
    table = summary_table([r], colour=False)
    for text in (out.getvalue(), table):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text, repr(text)
        assert "^[]52;c;" in text


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "0", "-5", "1e12"])
def test_timeouts_that_would_never_end_are_refused(tmp_path, value):
    text = (ROOT / "guests" / "grub-2.06-iso.yaml").read_text()
    text = re.sub(r"(?m)^timeouts:.*$", "", text) + f"timeouts: {{total: {value}, stall: 10}}\n"
    with pytest.raises(ConfigError, match=r"timeouts.total: expected a positive number up to"):
        load_guest(write(tmp_path / "grub-2.06-iso.yaml", text))


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "soon"])
def test_a_canary_ttl_that_is_not_a_duration_is_a_usage_error(value):
    proc = subprocess.run([sys.executable, "-m", "harness", "probe", "--no-canary",
                           "--canary-ttl", value], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--canary-ttl" in proc.stderr and "Traceback" not in \
        proc.stderr, proc.stderr
