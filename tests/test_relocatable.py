"""A run folder works wherever it is published, and its console view keeps lines whole.

A real run (the echo backend of tests/echo_backend.py: no VM) is moved to
another path and served there by http.server; in headless Chromium every
link and image of its pages (run page, cell pages, history) must resolve,
no page may name the path it was made in, and the console view must show no
harness note inside a guest line and link each milestone to its line.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, chromium, write
from .test_damaged import GUEST, harness

SHOTS = ROOT / "reports" / "page-screenshots"


def _run(tmp: Path) -> Path:
    kernel = write(tmp / "k.bin", "kernel\n")
    write(tmp / "guests" / "g1.yaml", GUEST.format(id="g1", kernel=kernel))
    write(tmp / "guests" / "g2.yaml", GUEST.format(id="g2", kernel=kernel).replace(
        "Run /init as init process", "Kernel panic - not syncing: VFS"))
    m = write(tmp / "matrix.yaml", "guests: ['*']\nbackends: [echo, nvmm]\nfirmware: [bios]\n")
    out = harness("run", "--matrix", str(m), "--out", str(tmp / "reports"), timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr  # g2 crashed
    return tmp / "reports"


@pytest.fixture
def served(tmp_path):
    made = _run(tmp_path / "made")
    site = tmp_path / "elsewhere" / "site"
    site.mkdir(parents=True)
    shutil.move(str(made), str(site / "reports"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/reports/", site / "reports", str(made)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_moved_run_folder_served_elsewhere_has_no_dead_link(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, reports, old = served
    run = next(p.name for p in reports.iterdir() if p.is_dir() and p.name[0].isdigit())
    for page in reports.rglob("*.html"):  # nothing points back to where it was made
        assert old not in page.read_text(), page
    pages = [f"{base}{run}/index.html", f"{base}history.html"]
    seen: set[str] = set()
    checked = 0
    while pages:
        url = pages.pop()
        if url in seen:
            continue
        seen.add(url)
        browser.get(url)
        links = [e.get_attribute("href") for e in browser.find_elements(By.CSS_SELECTOR, "a")]
        links += [e.get_attribute("src") for e in browser.find_elements(By.CSS_SELECTOR, "img")]
        for link in filter(None, links):
            if not link.startswith(base):
                continue  # an expectation's link to a bug tracker, say
            target, _, frag = link.partition("#")
            assert _status(target) == 200, f"{url}: dead link {link}"
            checked += 1
            if frag and target == url:
                assert browser.find_elements(By.ID, frag), f"{url}: no #{frag}"
            if target.endswith(".html"):
                pages.append(target)
    assert checked > 10 and any(u.endswith("/cell.html") for u in seen)
    # the reproduce commands are relative to the run folder, and there they are
    browser.get(f"{base}{run}/cells/g1/echo-bios/cell.html")
    repro = browser.find_element(By.ID, "repro").text.splitlines()
    assert repro == ["sh cells/g1/echo-bios/repro.sh",
                     "harness repro g1/echo/bios --from results.json"]
    assert (reports / run / "cells/g1/echo-bios/repro.sh").is_file()
    # the console view: notes apart from whole guest lines; milestones link to theirs
    for line in browser.find_elements(By.CSS_SELECTOR, "#console span.ln"):
        assert "### harness" not in line.text
    notes = browser.find_elements(By.CSS_SELECTOR, "#console span.note")
    assert any("milestone 'kernel' matched" in n.text for n in notes)
    marks = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#console mark")]
    assert marks == ["Linux version 6", "Run /init"]
    link = browser.find_element(By.CSS_SELECTOR, "#matches li.milestone a")
    line = browser.find_element(By.ID, link.get_attribute("href").split("#")[1])
    assert "Linux version 6.1" in line.text and line.get_attribute("class") == "ln"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("document.getElementById('matches').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "cell-console.png"))
    shutil.copy(tmp_path / "cell-console.png", SHOTS / "cell-console.png")
