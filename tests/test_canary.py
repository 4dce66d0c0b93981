"""Accelerator canaries: a backend that opens but cannot run guests is `unusable`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness import canary
from harness.backends.probe import host_facts
from harness.backends.registry import static_probe
from harness.canary import CanaryResult, cached
from harness.files import atomic_write
from harness.images.cache import Cache

from .conftest import GUESTS, write

PVM = os.path.isdir("/sys/module/kvm_pvm")


def store_result(cache: Cache, **kw) -> None:
    r = CanaryResult(**{"backend": "kvm", "ok": False, "reason": "r", "duration_s": 1.0,
                        "checked": time.time(), "host_key": canary.host_key("kvm", host_facts()),
                        **kw})
    atomic_write(cache.sub("canary") / "kvm.json", json.dumps(r.to_json()))


def test_cached_results_expire_and_belong_to_one_host(tmp_path):
    cache = Cache(tmp_path)
    host = host_facts()
    assert cached(cache, "kvm", host, ttl=60) is None
    store_result(cache)
    hit = cached(cache, "kvm", host, ttl=60)
    assert hit is not None and hit.cached and not hit.ok
    store_result(cache, checked=time.time() - 120)
    assert cached(cache, "kvm", host, ttl=60) is None
    store_result(cache, host_key="another-host|5.10|kvm|qemu 8.0")
    assert cached(cache, "kvm", host, ttl=60) is None


def test_ttl_comes_from_the_option_or_the_environment(monkeypatch):
    monkeypatch.delenv("HARNESS_CANARY_TTL", raising=False)
    assert canary.canary_ttl() == 6 * 3600
    monkeypatch.setenv("HARNESS_CANARY_TTL", "90")
    assert canary.canary_ttl() == 90 and canary.canary_ttl(5) == 5


@pytest.mark.vm
@pytest.mark.skipif(static_probe("kvm").status != "available",
                    reason="no KVM device on this host to run a canary on")
def test_probe_runs_the_canary_and_tells_the_truth(tmp_path, default_images):
    proc = subprocess.run([sys.executable, "-m", "harness", "probe", "--fresh", "--json"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    kvm = next(b for b in json.loads(proc.stdout)["backends"] if b["backend"] == "kvm")
    assert kvm["canary"] is not None and kvm["canary"]["cached"] is False
    if PVM:  # this kind of host: /dev/kvm opens, guests cannot run on it
        assert kvm["status"] == "unusable"
        assert kvm["reason"].startswith("canary failed (")
        assert "'kernel'" in kvm["reason"] or "accelerator failure" in kvm["reason"]
    else:
        assert kvm["status"] in ("available", "unusable") and kvm["reason"]

    # a run then skips kvm cells at once, with the cached canary's reason
    m = write(tmp_path / "matrix.yaml", "guests: [linux-busybox-x86_64]\nbackends: [kvm]\n")
    run = subprocess.run([sys.executable, "-m", "harness", "run", "--matrix", str(m),
                          "--guests", str(GUESTS), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=180)
    cells = json.loads((tmp_path / "r/latest/results.json").read_text())["cells"]
    if kvm["status"] == "unusable":
        assert run.returncode == 0, run.stderr
        assert cells[0]["verdict"] == "skip"
        assert cells[0]["reason"].startswith("kvm unusable: canary failed (cached")
        assert cells[0]["attempts"] == 0 and cells[0]["command"] == []  # no boot attempted
