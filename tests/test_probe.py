"""Backend probes: static checks with their reasons, on this host and on pretend hosts."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

from harness.backends import probe as probes
from harness.backends import qemu, registry
from harness.backends.probe import MISSING, UNUSABLE, HostFacts, QemuInfo
from harness.backends.registry import static_probe

LINUX = probes.host_facts()


def host(**kw) -> HostFacts:
    return dataclasses.replace(LINUX, **kw)


def fake_qemu(monkeypatch, version="7.2.0", accels=("tcg", "kvm", "nvmm", "hax", "whpx", "hvf")):
    info = QemuInfo("qemu-system-x86_64", "/usr/bin/qemu-system-x86_64", version, frozenset(accels))
    monkeypatch.setattr(qemu, "qemu_info", lambda binary, io=None: info)


def test_this_host_tcg_is_available_and_others_have_reasons():
    found = {b: static_probe(b) for b in ("tcg", "kvm", "nvmm", "haxm", "whpx", "hvf")}
    assert found["tcg"].status == "available" and not found["tcg"].hardware
    assert found["nvmm"].status == MISSING and "runs on NetBSD" in found["nvmm"].reason
    assert found["whpx"].status == MISSING and "runs on Windows" in found["whpx"].reason
    assert found["hvf"].status == MISSING and "runs on Darwin" in found["hvf"].reason
    assert found["haxm"].status == MISSING and "'hax' is not compiled" in found["haxm"].reason
    assert found["tcg"].version and found["tcg"].binary.endswith("qemu-system-x86_64")


def test_wrong_host_os(monkeypatch):
    fake_qemu(monkeypatch)
    p = static_probe("nvmm", host(os="Linux"))
    assert (p.status, p.reason) == (MISSING, "NetBSD Virtual Machine Monitor runs on NetBSD; "
                                             "this host runs Linux")


def test_missing_and_unopenable_device_nodes(monkeypatch, tmp_path):
    fake_qemu(monkeypatch)
    b = probes.knowledge.backends()
    node = str(tmp_path / "nvmm")
    check = dataclasses.replace(b["nvmm"].checks["NetBSD"][0], target=(node,))
    monkeypatch.setitem(b, "nvmm", dataclasses.replace(b["nvmm"], checks={"NetBSD": (check,)}))
    p = static_probe("nvmm", host(os="NetBSD"))
    assert p.status == MISSING
    assert p.reason.startswith(f"{node} missing: load the nvmm module (modload nvmm")
    (tmp_path / "nvmm").mkdir()  # exists, but a directory is no device: it opens, read-only
    assert static_probe("nvmm", host(os="NetBSD")).status == "available"
    check = dataclasses.replace(check, access="rw")  # read-write it cannot be opened
    monkeypatch.setitem(b, "nvmm", dataclasses.replace(b["nvmm"], checks={"NetBSD": (check,)}))
    p = static_probe("nvmm", host(os="NetBSD"))
    assert (p.status, p.reason) == (UNUSABLE, f"{node} cannot be opened read-write: Is a directory")


def test_accelerator_not_compiled_in_and_removed_versions(monkeypatch):
    fake_qemu(monkeypatch, accels=("tcg",))
    p = static_probe("kvm", host(os="Linux"))
    assert p.status == MISSING and "'kvm' is not compiled into qemu-system-x86_64" in p.reason
    fake_qemu(monkeypatch, version="8.2.0")
    p = static_probe("haxm", host(os="Windows"))
    assert p.status == MISSING and p.reason == ("QEMU 8.2 removed the hax accelerator; "
                                                "this QEMU is 8.2.0")


def test_platform_feature_and_sysctl(monkeypatch, tmp_path):
    """The real HostIO runs the checks' programs from PATH (here: fakes of them)."""
    fake_qemu(monkeypatch)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    p = static_probe("whpx", host(os="Windows"))
    assert (p.status, p.reason) == (MISSING, "powershell not found on PATH")
    fake = tmp_path / "sysctl"
    fake.write_text("#!/bin/sh\n[ \"$2\" = kern.hv_support ] && echo 0\n")
    fake.chmod(0o755)
    p = static_probe("hvf", host(os="Darwin"))
    assert p.status == MISSING and p.reason.startswith("sysctl kern.hv_support is 0, needs 1: ")
    fake.write_text("#!/bin/sh\necho 1\n")
    assert static_probe("hvf", host(os="Darwin")).status == "available"


def test_guest_architecture_against_host():
    assert registry.runs_arch("kvm", "aarch64", host(arch="x86_64")).startswith(
        "kvm runs guests of the host's architecture (x86_64), not aarch64")
    assert registry.runs_arch("kvm", "i386", host(arch="x86_64")) is None
    assert registry.runs_arch("tcg", "x86_64") is None


def test_probe_command_without_canary():
    proc = subprocess.run([sys.executable, "-m", "harness", "probe", "--no-canary"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for b in ("tcg", "kvm", "nvmm", "haxm", "whpx", "hvf"):
        assert f"  {b} " in proc.stdout
    assert re.search(r"^  tcg +available", proc.stdout, re.M)
