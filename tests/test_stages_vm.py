"""Staged guests on real boots under tcg: linux-busybox-stages-x86_64 installs onto its
blank disk in stage `install` and checks what it wrote in stage `verify` (results.json
against its schema, the cell page in Chromium); a wrong checksum written by stage 1
fails stage 2's check; `--from-stage verify` boots only the check, on the disk a run
with `--keep` left, and leaves that disk as it was."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from .conftest import GUESTS, ROOT
from .test_report import SCHEMA, browser  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.vm
GUEST = "linux-busybox-stages-x86_64"
CELL = f"{GUEST}/tcg/bios"
TESTS = [("scripts-cd", "install/scripts-cd"), ("partition", "install/install"),
         ("format", "install/install"), ("mount", "install/install"),
         ("write-files", "install/install"), ("unmount", "install/install"),
         ("scripts-cd", "verify/scripts-cd"), ("mount-installed-disk", "verify/verify"),
         ("file1", "verify/verify"), ("file2", "verify/verify"), ("file3", "verify/verify")]


def run(out: Path, *extra: str, guests: Path = GUESTS) -> tuple[subprocess.CompletedProcess[str],
                                                               Path, dict]:
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--guests", str(guests),
                           "--only", CELL, "--out", str(out), *extra], capture_output=True,
                          text=True, cwd=ROOT, timeout=400)
    assert "Traceback" not in proc.stderr, proc.stderr
    folder = (out / "latest").resolve()
    data = json.loads((folder / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    return proc, folder, data["cells"][0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return run(tmp_path_factory.mktemp("stages"), "--keep")


def test_the_two_stages_install_then_verify_on_one_disk(installed):
    proc, folder, cell = installed
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert cell["verdict"] == "pass" and cell["score"] == 1.0, cell["reason"]
    assert [(s["name"], s["verdict"]) for s in cell["stages"]] == [("install", "pass"),
                                                                  ("verify", "pass")]
    assert [m["name"] for m in cell["milestones"] if m["reached"]] == [
        "install/kernel", "install/modules", "install/checks", "install/shell",
        "verify/kernel", "verify/checks", "verify/shell"]
    times = [m["t"] for m in cell["milestones"]]
    assert times == sorted(times)  # seconds from the first stage's start
    assert [(c["name"], c["step"]) for c in cell["cases"]] == TESTS
    assert cell["tests"] == {"passed": 11, "failed": 0, "skipped": 0, "errors": 0, "xfail": 0}
    here = folder / "cells" / GUEST / "tcg-bios"
    install = (here / "stages" / "install" / "console.log").read_text(errors="replace")
    # the modules asked for, with their dependencies first, from the kernel's own package
    loaded = re.findall(r"^\[[ \d.]+\] HARNESS-CHECK ok: module-(\S+)\s*$", install,
                        re.MULTILINE)
    assert loaded == ["virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev",
                      "virtio_pci_legacy_dev", "virtio_pci", "cdrom", "isofs", "fat", "vfat",
                      "nls_cp437", "nls_ascii"]
    images = cell["images"]
    assert images["initrd"]["inputs"]["kernel-deb"] == images["kernel"]["deb_sha256"]
    assert images["target"]["source"] == "build:blank-disk"
    assert cell["artifacts"]["console"].endswith("stages/verify/console.log")
    # verify's TAP came back as a tar on the third disk, read after power-off: no base64
    verify = (here / "stages" / "verify" / "console.log").read_text(errors="replace")
    assert "tar cf /dev/vdc -C /tmp verify.tap" in verify and ":F@@" not in verify
    assert (here / "target.overlay.qcow2").is_file()  # --keep


def test_the_cell_page_shows_the_stages_in_order_in_chromium(installed, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    _, folder, _ = installed
    browser.get((folder / "cells" / GUEST / "tcg-bios" / "cell.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#stages tr.stage")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["install", "verify"]
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["pass", "pass"]
    link = rows[0].find_element(By.LINK_TEXT, "console").get_attribute("href")
    assert link.endswith("stages/install/console.log") and Path(link[7:]).is_file()
    assert "ok 4 - file3" in browser.find_element(By.ID, "console").text  # verify's console


def test_from_stage_boots_only_the_check_on_the_kept_disk(installed, tmp_path):
    _, kept_run, _ = installed
    overlay = kept_run / "cells" / GUEST / "tcg-bios" / "target.overlay.qcow2"
    before = hashlib.sha256(overlay.read_bytes()).hexdigest()
    proc, folder, cell = run(tmp_path, "--from-stage", "verify", "--kept", str(kept_run))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [s["name"] for s in cell["stages"]] == ["verify"]
    assert cell["verdict"] == "pass" and cell["tests"]["passed"] == 5
    assert [c["name"] for c in cell["cases"]][-3:] == ["file1", "file2", "file3"]
    assert hashlib.sha256(overlay.read_bytes()).hexdigest() == before  # copied, not used
    assert not (folder / "cells" / GUEST / "tcg-bios" / "target.overlay.qcow2").exists()


def test_a_wrong_checksum_from_stage_one_fails_the_check_in_stage_two(tmp_path):
    guests = tmp_path / "guests"
    guests.mkdir()
    text = (GUESTS / f"{GUEST}.yaml").read_text()
    text = text.replace("folder: payloads/busybox-stages",
                        f"folder: {GUESTS / 'payloads' / 'busybox-stages'}")
    text = text.replace('run: "sh /cd/install.sh"', 'run: "sh /cd/install.sh --wrong-checksum"')
    assert "--wrong-checksum" in text
    (guests / f"{GUEST}.yaml").write_text(text)
    proc, _, cell = run(tmp_path / "out", guests=guests)
    assert proc.returncode == 1, proc.stdout[-3000:]  # failed tests fail the run
    assert cell["verdict"] == "pass"  # both boots went as they should
    failed = [(c["name"], c["step"]) for c in cell["cases"] if c["status"] == "failed"]
    assert failed == [("file2", "verify/verify")]
    output = next(c["output"] for c in cell["cases"] if c["name"] == "file2")
    recorded, on_disk = re.findall(r"(?:recorded|on disk): +([0-9a-f]{16})", output)
    # every hex digit moved by one: what --wrong-checksum recorded, not what was written
    assert recorded == on_disk.translate(str.maketrans("0123456789abcdef", "123456789abcdef0"))
    assert cell["tests"]["failed"] == 1 and cell["tests"]["passed"] == 10
    # that run kept no disk: re-running its check says so, as the cell's error
    proc, _, cell = run(tmp_path / "again", "--from-stage", "verify", "--kept",
                        str((tmp_path / "out" / "latest").resolve()), guests=guests)
    assert proc.returncode == 1 and cell["verdict"] == "error"
    assert cell["reason"].startswith("--from-stage verify: no disk overlay kept in ")
    assert cell["reason"].endswith("(run the cell with --keep first)")
