"""The recipes of issue 18 on a real boot under tcg (about 15 s of guest time): the
BusyBox initramfs loads virtio, ISO 9660 and FAT modules taken out of the kernel's own
Debian package, mounts the payload CD built from tests/guests/payloads/disk-recipes on
the second virtio drive, and runs its script, which partitions the blank qcow2 on the
first, formats it, writes a file from the CD and reads it back."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest

from .conftest import ROOT, TEST_GUESTS
from .test_report import SCHEMA

pytestmark = pytest.mark.vm
GUEST = "test-disk-recipes"


def test_modules_a_blank_disk_and_a_payload_cd_on_virtio(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--guests", str(TEST_GUESTS),
                           "--only", f"{GUEST}/tcg/bios", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=400)
    assert "Traceback" not in proc.stderr, proc.stderr
    folder = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    data = json.loads((folder / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    (cell,) = data["cells"]
    assert proc.returncode == 0 and cell["verdict"] == "pass", cell["reason"]
    assert [m["name"] for m in cell["milestones"] if m["reached"]] == [
        "kernel", "modules", "checks", "shell", "disk", "poweroff"]
    console = (folder / "cells" / GUEST / "tcg-bios" / "console.log").read_text(errors="replace")
    # the load list is the modules asked for with their dependencies, dependencies first
    loaded = re.findall(r"^\[[ \d.]+\] HARNESS-CHECK ok: module-(\S+)\s*$", console, re.MULTILINE)
    assert loaded == ["virtio_ring", "virtio", "virtio_blk", "virtio_pci_modern_dev",
                      "virtio_pci_legacy_dev", "virtio_pci", "cdrom", "isofs", "fat", "vfat",
                      "nls_cp437", "nls_ascii"]
    # the CD's file, copied onto the new FAT partition of /dev/vda and read back
    assert "DISK-READY fs=vfat table=1 sum=941f9fa7" in console
    images = cell["images"]
    assert images["target"]["source"] == "build:blank-disk" and images["target"]["size"] == 64 << 20
    assert images["payload"]["source"] == "build:iso" and images["payload"]["label"] == "PAYLOAD"
    # the modules came from the very package the booted kernel came from
    assert images["initrd"]["inputs"]["kernel-deb"] == images["kernel"]["deb_sha256"]
    assert images["initrd"]["inputs"]["kernel-release"] in images["kernel"]["member"]
