"""Cluster mode: a real Dask scheduler and harness workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from .conftest import GUESTS, TEST_GUESTS, write
from .test_hygiene import _is_qemu, descendants, gone_within

pytestmark = pytest.mark.vm
distributed = pytest.importorskip("distributed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    port = free_port()
    with (tmp_path / "sched.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                 "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                stdout=subprocess.DEVNULL, stderr=log)
    address = f"tcp://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, (tmp_path / "sched.log").read_text()
            time.sleep(0.2)
    procs: list[subprocess.Popen] = [proc]

    def worker(name: str, backends: str) -> subprocess.Popen:
        with (tmp_path / f"{name}.log").open("w") as log:
            w = subprocess.Popen([sys.executable, "-m", "harness", "worker", "--scheduler",
                                  address, "--advertise", backends, "--slots", "1", "--name",
                                  name], stdout=subprocess.DEVNULL, stderr=log)
        procs.append(w)
        return w

    def wait_for(n: int) -> None:
        with distributed.Client(address, timeout="20s") as client:
            client.wait_for_workers(n, timeout=60)

    yield address, worker, wait_for
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def run(address: str, matrix, guests, out):
    return subprocess.run([sys.executable, "-m", "harness", "run", "--matrix", str(matrix),
                           "--guests", str(guests), "--cluster", address, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)


def cells_of(out):
    data = json.loads((out / "latest" / "results.json").read_text())
    return {c["id"]: c for c in data["cells"]}


def test_cells_land_where_their_backend_is(tmp_path, scheduler, qemu, default_images):
    address, worker, wait_for = scheduler
    worker("w-tcg", "tcg")
    worker("w-nvmm", "nvmm")
    wait_for(2)
    m = write(tmp_path / "matrix.yaml", "guests: [linux-busybox-x86_64]\n"
                                        "backends: [tcg, nvmm, hvf]\nfirmware: [bios]\n")
    proc = run(address, m, GUESTS, tmp_path / "r")
    cells = cells_of(tmp_path / "r")
    assert cells["linux-busybox-x86_64/tcg/bios"]["verdict"] == "pass", proc.stderr
    assert cells["linux-busybox-x86_64/tcg/bios"]["worker"].startswith("w-tcg@")
    # this host has no NVMM: the worker that advertised it fails to start QEMU with it
    assert cells["linux-busybox-x86_64/nvmm/bios"]["worker"].startswith("w-nvmm@")
    hvf = cells["linux-busybox-x86_64/hvf/bios"]
    assert hvf["verdict"] == "skip" and hvf["reason"].startswith("no connected worker runs hvf")
    folder = tmp_path / "r" / "latest" / "cells/linux-busybox-x86_64/tcg-bios"
    assert b"reboot: Power down" in (folder / "console.raw").read_bytes()
    assert (folder / "repro.sh").is_file()


def test_a_worker_lost_mid_cell_reruns_it_elsewhere_once(tmp_path, scheduler, qemu,
                                                         default_images):
    address, worker, wait_for = scheduler
    workers = {"w1": worker("w1", "tcg"), "w2": worker("w2", "tcg")}
    wait_for(2)
    m = write(tmp_path / "matrix.yaml", "guests: [test-hang]\nbackends: [tcg]\n")
    client = subprocess.Popen([sys.executable, "-m", "harness", "run", "--matrix", str(m),
                               "--guests", str(TEST_GUESTS), "--cluster", address, "--out",
                               str(tmp_path / "r")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        assert time.monotonic() < deadline
        for name, w in workers.items():
            qemus = [p for p in descendants(w.pid) if _is_qemu(p)]
            if qemus:
                victim = name
                break
        time.sleep(0.2)
    time.sleep(1)
    os.kill(workers[victim].pid, signal.SIGKILL)
    assert gone_within(qemus, 5)
    _, err = client.communicate(timeout=200)
    [cell] = cells_of(tmp_path / "r").values()
    assert cell["verdict"] == "hang", err
    survivor = "w2" if victim == "w1" else "w1"
    assert cell["worker"].startswith(f"{survivor}@")
