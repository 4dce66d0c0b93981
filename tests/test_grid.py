"""The run page at a glance, on a default-shaped run, in headless Chromium.

The run is made up, not booted: every guest of guests/ on the default
matrix's eleven backends and both firmwares, as on this host (kvm's canary
fails, eight other backends are not here), with 28 cells that ran on tcg,
bochs and xen; the rest skipped for their backend's reason. Screenshots are
kept in the test's tmp folder and in reports/page-screenshots/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness.results.history import History, record
from harness.results.html import run_page
from harness.results.report import build

from .conftest import GUESTS, ROOT, chromium

SHOTS = ROOT / "reports" / "page-screenshots"
BACKENDS = ["tcg", "kvm", "nvmm", "haxm", "whpx", "hvf", "bochs", "vmd", "bhyve", "xen",
            "virtualbox"]
MISSING = {"nvmm": "nvmm missing: no /dev/nvmm (NetBSD only)",
           "haxm": "haxm missing: no /dev/HAX; the HAXM driver is not loaded",
           "whpx": "whpx missing: Windows only", "hvf": "hvf missing: macOS only",
           "vmd": "vmd missing: vmctl not found (OpenBSD only)",
           "bhyve": "bhyve missing: FreeBSD only",
           "virtualbox": "virtualbox missing: VBoxManage not found (Debian package virtualbox)"}
KVM = "kvm unusable: canary failed: KVM internal error (the PVM-based /dev/kvm)"


def _ms(names: list[str], upto: int, t0: float) -> list[dict]:
    return [{"name": n, "reached": i < upto, "t": round(t0 * (i + 1), 1) if i < upto else None}
            for i, n in enumerate(names)]


def default_run(run_id: str = "20261129T230000Z-0002", regress: bool = False) -> dict:
    guests, cells = {}, []
    ran = 0
    for path in sorted(GUESTS.glob("*.yaml")):
        g = yaml.safe_load(path.read_text())
        gid, names = g["id"], [m["name"] for m in g.get("milestones") or []] or ["boot"]
        guests[gid] = {"name": g.get("name", gid), "os": g.get("os", "unknown"),
                       "arch": g.get("arch", "")}
        for fw in g.get("firmware") or ["bios"]:
            for b in BACKENDS:
                verdict, reason, ms, quirks, failure = "skip", None, _ms(names, 0, 1), [], None
                if b in MISSING:
                    reason = MISSING[b]
                elif b == "kvm":
                    reason = KVM
                elif (b == "xen" and ran >= 27) or (b == "bochs" and (fw == "uefi" or ran >= 25)):
                    reason = f"{b} has no image of this guest it can boot"
                elif ran < 28 and b in ("tcg", "bochs", "xen") and g["arch"] in ("x86_64", "i386"):
                    ran += 1
                    verdict = ("pass", "pass", "crash", "hang", "pass", "xfail", "timeout")[ran % 7]
                    if regress and ran == 1:
                        verdict = "crash"
                    reach = len(names) if verdict == "pass" else max(1, len(names) // 2)
                    ms = _ms(names, reach, 1.5 + ran / 3)
                    quirks = ["noapic"] if ran % 5 == 0 else []
                    if verdict == "crash":
                        failure = {"name": "panic", "text": "panic: trap 12", "t": 3.0}
                elif g["arch"] not in ("x86_64", "i386"):
                    reason = (f"tcg: {g['arch']} guests need qemu-system-{g['arch']}"
                              if b == "tcg" else f"{b} runs x86 guests only")
                else:
                    reason = "images: not in the cache, and --offline forbids the download"
                cells.append({
                    "id": f"{gid}/{b}/{fw}", "guest": gid, "backend": b, "firmware": fw,
                    "verdict": verdict, "score": 1.0 if verdict == "pass" else 0.5,
                    "duration_s": 20.0 + ran, "milestones": ms, "failure": failure,
                    "reason": reason, "quirks": quirks, "attempts": 0 if reason else 1,
                    "command": [], "images": {}, "artifacts": {},
                    "underlying": "hang" if verdict == "xfail" else None,
                    "expect": ({"reason": "hangs in IOAPIC setup",
                                "link": "https://example.org/136"}
                               if verdict == "xfail" else None)})
    return {"schema": 1, "run_id": run_id, "started": "2026-11-29T23:00:00Z",
            "finished": "2026-11-29T23:40:00Z",
            "host": {"os": "Linux", "arch": "x86_64", "harness": "0.1.0", "qemu": "7.2.22"},
            "guests": guests, "cells": cells}


def test_the_default_shaped_run():
    r = default_run()
    ran = [c for c in r["cells"] if c["verdict"] != "skip"]
    assert len(ran) == 28 and len(r["cells"]) > 200
    page = run_page(r)
    for b in MISSING:  # one line names them; their cells are in the page, hidden
        assert f"class=gone-backend data-backend='{b}'" in page
    assert "data-gone=1>tcg" not in page
    assert page.count("class=tag>noapic</span>") >= 5


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def _shoot(browser, tmp_path: Path, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(max(800, height + 140), 6000))
    browser.save_screenshot(str(tmp_path / name))
    shutil.copy(tmp_path / name, SHOTS / name)
    browser.set_window_size(1280, 800)


def test_the_default_run_page_at_1280_needs_no_horizontal_scroll(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    reports = tmp_path / "reports"
    for run_id, regress in (("20261128T230000Z-0001", False), ("20261129T230000Z-0002", True)):
        (reports / run_id).mkdir(parents=True)
        (reports / run_id / "results.json").write_text(json.dumps(default_run(run_id, regress)))
    build([reports / "20261128T230000Z-0001"])
    build([reports / "20261129T230000Z-0002"])
    browser.set_window_size(1280, 800)
    browser.get((reports / "20261129T230000Z-0002" / "index.html").as_uri())
    inner = browser.execute_script("return window.innerWidth")
    assert 1200 <= inner <= 1280
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    line = browser.find_element(By.ID, "collapsed").text
    for b in [*MISSING, "kvm"]:
        assert b in line
    assert "runs on NetBSD" in line
    shown = {e.get_attribute("data-backend") for e in
             browser.find_elements(By.CSS_SELECTOR, "#grid th.col") if e.is_displayed()}
    assert shown == {"tcg", "bochs", "xen"}
    assert browser.find_element(By.CSS_SELECTOR, "td.regressed").get_attribute("data-cell")
    _shoot(browser, tmp_path, "grid-default.png")
    # the porters' table sits on top and links each cell to its page
    first = browser.find_element(By.CSS_SELECTOR, "#porters td a").get_attribute("href")
    assert "/cells/" in first and first.endswith("/cell.html")
    # a collapsed backend comes back when the filter picks it
    Select(browser.find_element(By.ID, "f-backend")).select_by_value("nvmm")
    cells = [td for td in browser.find_elements(By.CSS_SELECTOR, "td.cell") if td.is_displayed()]
    assert cells and {td.get_attribute("data-backend") for td in cells} == {"nvmm"}
    Select(browser.find_element(By.ID, "f-backend")).select_by_value("")
    browser.find_element(By.ID, "f-regression").click()
    rows = [r.get_attribute("data-guest") for r in
            browser.find_elements(By.CSS_SELECTOR, "tr.guest") if r.is_displayed()]
    assert len(rows) == 1
    browser.find_element(By.ID, "f-regression").click()
    Select(browser.find_element(By.ID, "f-sort")).select_by_value("worst")
    families: dict[str, list[int]] = {}
    for r in browser.find_elements(By.CSS_SELECTOR, "tr.guest"):
        families.setdefault(r.get_attribute("data-os"), []).append(
            int(r.get_attribute("data-worst")))
    assert all(w == sorted(w, reverse=True) for w in families.values())  # worst first
    assert any(len(set(w)) > 1 for w in families.values())  # and that moved rows
    browser.get((reports / "history.html").as_uri())
    since = browser.find_element(By.ID, "since")
    assert "20261129T230000Z-0002" in since.text and since.find_elements(By.TAG_NAME, "svg")
    before, after = browser.find_elements(By.CSS_SELECTOR, "#regressions a")
    assert before.get_attribute("href").endswith("/20261128T230000Z-0001/cells/alpine-3.22-"
                                                 "x86_64/tcg-bios/cell.html")
    assert after.text == "crash"
    _shoot(browser, tmp_path, "history-since.png")
    h = History(reports / "history.sqlite")
    try:
        assert len(h.runs()) == 2
    finally:
        h.close()
    assert record  # the history module is what build() used
