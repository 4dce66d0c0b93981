"""Reproduction: repro.sh in a clean environment, and `harness repro`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import GUESTS, TEST_GUESTS, write
from .httpd import Server

pytestmark = pytest.mark.vm


def harness(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_repro_sh_replays_a_cell_from_urls_in_a_clean_environment(tmp_path, default_images,
                                                                   qemu):
    server = Server()
    try:
        urls = {name: server.add(f"/{name}.img", img.path.read_bytes())
                for name, img in default_images.items()}
        guest = (GUESTS / "linux-busybox-x86_64.yaml").read_text()
        images_block = guest[guest.index("images:"):guest.index("boot:")]
        guest = guest.replace(images_block, "images:\n" + "".join(
            f"  {n}: {{url: '{u}', insecure: true, sha256: {default_images[n].sha256}}}\n"
            for n, u in urls.items()))
        write(tmp_path / "guests" / "linux-busybox-x86_64.yaml", guest)
        m = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg]\nfirmware: [uefi]\n")
        proc = harness("run", "--matrix", str(m), env={"HARNESS_CACHE": str(tmp_path / "c1")})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = json.loads((tmp_path / "reports/latest/results.json").read_text())
        [cell] = results["cells"]
        assert cell["vmm"]["name"] == "qemu" and cell["vmm"]["accelerator"] == "tcg"
        assert cell["vmm"]["version"] and len(cell["firmware_files"]) == 2
        assert all(len(v) == 64 for v in cell["firmware_files"].values())
        script = tmp_path / "reports/latest" / cell["artifacts"]["repro"]
        before = len(server.log)
        env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "empty"),
               "REPRO_DIR": str(tmp_path / "work")}
        run = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=120,
                             env=env, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, run.stderr[-2000:]
        for name in ("kernel", "initrd"):
            assert f"repro: {name}: downloading {urls[name]}" in run.stderr
            assert f"repro: {name}: sha256 verified" in run.stderr
        assert "copying the UEFI variables template" in run.stderr
        for text in ("Linux version", "HARNESS-READY", "HARNESS-CHECKS done failed=0",
                     "reboot: Power down"):
            assert text in run.stdout
        assert len(server.log) == before + 2
        assert not (tmp_path / "empty").exists()  # the script never writes the cache
    finally:
        server.close()


def test_harness_repro_reproduces_a_pass_and_a_crash(tmp_path, qemu):
    m = write(tmp_path / "matrix.yaml", "guests: [test-panic, test-shell]\nbackends: [tcg]\n")
    args = ["--matrix", str(m), "--guests", str(TEST_GUESTS)]
    proc = harness("run", *args)
    assert proc.returncode == 1  # the panic
    for cell, verdict, last in (("test-panic/tcg/bios", "crash", "userspace"),
                                ("test-shell/tcg/bios", "pass", "poweroff")):
        proc = harness("repro", cell, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"recorded: {verdict} at {last}; replayed 1x: {verdict} 1; reproduced 1/1" \
            in proc.stdout
    latest = os.readlink(tmp_path / "reports/latest")
    results = json.loads((tmp_path / "reports" / latest / "results.json").read_text())
    assert "repro_of" not in results  # reports/latest still names the recorded run
    proc = harness("repro", "nothing/*", *args)
    assert proc.returncode == 2 and "names 0 cells" in proc.stderr
