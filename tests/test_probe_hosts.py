"""Each host's probe against the recorded outputs of that host's tools.

The probes of NetBSD (NVMM, HAXM), OpenBSD (vmd), FreeBSD (bhyve), macOS
(HVF) and Windows (WHPX, HAXM) cannot run here; their checks are data
(backends.yaml `checks`) read through a `HostIO`, so a fake host answers
them with what `qemu-system-x86_64 -accel help`, `nvmmctl identify`,
`vmctl status`, `kldstat`, `sysctl` and PowerShell print there
(tests/data/probes/, each file saying where it comes from).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness import knowledge
from harness.backends.hostcheck import REAL, HostIO, Ran
from harness.backends.probe import (
    AVAILABLE,
    MISSING,
    UNUSABLE,
    HostFacts,
    parse_accels,
)
from harness.backends.registry import static_probe

DATA = Path(__file__).parent / "data" / "probes"


def recorded(name: str) -> Ran:
    """A recorded output: `#` lines first (source, exit status), then the output."""
    text = (DATA / name).read_bytes().decode()
    status, lines = 0, text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        if lines[0].startswith("# exit:"):
            status = int(lines[0].split(":")[1])
        lines.pop(0)
    return Ran(status, "".join(lines))


class FakeHost(HostIO):
    """A host whose programs answer with recorded outputs; files and devices as listed."""

    def __init__(self, answers: dict[tuple[str, ...], str], files: set[str] = frozenset(),
                 programs: set[str] = frozenset(), open_errors: dict[str, str] | None = None):
        self.answers = answers
        self.files = set(files)
        self.programs = set(programs) | {argv[0] for argv in answers}
        self.open_errors = open_errors or {}
        self.opened: list[tuple[str, bool]] = []

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.programs else None

    def run(self, argv, timeout: float = 15) -> Ran:
        if argv[0] not in self.programs:
            return Ran(None, f"{argv[0]} not found on PATH")
        name = self.answers.get(tuple(argv))
        assert name is not None, f"the probe ran {argv}, which no recording answers"
        return recorded(name)

    def exists(self, path: str) -> bool:
        return path in self.files

    def open_error(self, path: str, write: bool) -> str | None:
        self.opened.append((path, write))
        return self.open_errors.get(path)


def host(os_name: str, arch: str = "x86_64") -> HostFacts:
    return HostFacts(os=os_name, arch=arch, kernel="1", hostname="h", cpu="c")


def qemu(accel_help: str, binary: str = "qemu-system-x86_64") -> dict[tuple[str, ...], str]:
    return {(binary, "--version"): "qemu-version.txt", (binary, "-accel", "help"): accel_help}


# --- QEMU's accelerator list, as each host prints it ----------------------------------

@pytest.mark.parametrize("name, accels", [
    ("linux-qemu-accel-help.txt", {"tcg", "kvm"}),
    ("netbsd-qemu-accel-help.txt", {"tcg", "hax", "nvmm"}),
    ("netbsd-qemu-accel-help-tcg-only.txt", {"tcg"}),
    ("macos-qemu-accel-help.txt", {"hvf", "tcg"}),
    ("windows-qemu-accel-help.txt", {"tcg", "hax", "whpx"}),  # CRLF line ends
])
def test_accelerator_lists(name, accels):
    assert parse_accels(recorded(name).output) == accels


def test_accelerator_list_needs_qemus_header():
    assert parse_accels("qemu-system-x86_64: -accel help: invalid option\n") == frozenset()
    warned = "qemu: warning: something\n" + recorded("linux-qemu-accel-help.txt").output
    assert parse_accels(warned) == {"tcg", "kvm"}


def test_every_recording_says_where_it_comes_from():
    files = sorted(DATA.glob("*.txt"))
    assert len(files) >= 20
    for f in files:
        assert f.read_text().startswith("# source: "), f.name


# --- NetBSD: NVMM and HAXM --------------------------------------------------------------

def netbsd(**kw) -> FakeHost:
    answers = qemu("netbsd-qemu-accel-help.txt")
    answers[("nvmmctl", "identify")] = kw.pop("nvmmctl", "netbsd-nvmmctl-identify.txt")
    return FakeHost(answers, **{"files": {"/dev/nvmm", "/dev/HAX"}, **kw})


def test_netbsd_nvmm_available_and_opened_read_only():
    io = netbsd()
    p = static_probe("nvmm", host("NetBSD"), io)
    assert (p.status, p.version) == (AVAILABLE, "7.2.22"), p.reason
    assert io.opened == [("/dev/nvmm", False)]  # libnvmm opens it O_RDONLY, so do we


def test_netbsd_nvmm_module_not_loaded():
    p = static_probe("nvmm", host("NetBSD"), netbsd(files={"/dev/HAX"}))
    assert p.status == MISSING
    assert p.reason.startswith("/dev/nvmm missing: load the nvmm module (modload nvmm")


def test_netbsd_nvmm_device_refuses_this_user():
    io = netbsd(open_errors={"/dev/nvmm": "Permission denied"})
    p = static_probe("nvmm", host("NetBSD"), io)
    assert p.status == UNUSABLE
    assert p.reason == ("/dev/nvmm cannot be opened for reading: Permission denied: add your "
                        "user to the group that owns /dev/nvmm (ls -l /dev/nvmm)")


def test_netbsd_nvmm_node_without_driver():
    io = netbsd(open_errors={"/dev/nvmm": "Device not configured"})
    p = static_probe("nvmm", host("NetBSD"), io)
    assert p.status == MISSING and "Device not configured: load the nvmm module" in p.reason


def test_netbsd_nvmmctl_answers_decide():
    p = static_probe("nvmm", host("NetBSD"), netbsd(nvmmctl="netbsd-nvmmctl-identify-mismatch.txt"))
    assert p.status == UNUSABLE
    assert p.reason.startswith("`nvmmctl identify`: nvmmctl: nvmm_init failed: Program version "
                               "wrong: libnvmm and the kernel's nvmm are of different versions")
    io = netbsd(nvmmctl="netbsd-nvmmctl-identify-not-loaded.txt")
    p = static_probe("nvmm", host("NetBSD"), io)
    assert p.status == MISSING and p.reason.endswith("modload nvmm")


def test_netbsd_without_nvmmctl_the_device_decides():
    io = FakeHost(qemu("netbsd-qemu-accel-help.txt"), files={"/dev/nvmm"})
    assert static_probe("nvmm", host("NetBSD"), io).status == AVAILABLE


def test_netbsd_qemu_without_nvmm():
    io = netbsd()
    io.answers.update(qemu("netbsd-qemu-accel-help-tcg-only.txt"))
    p = static_probe("nvmm", host("NetBSD"), io)
    assert p.status == MISSING
    assert p.reason == ("accelerator 'nvmm' is not compiled into qemu-system-x86_64 7.2.22 "
                        "(it has: tcg)")


def test_netbsd_haxm():
    io = netbsd()
    p = static_probe("haxm", host("NetBSD"), io)
    assert p.status == AVAILABLE, p.reason
    assert io.opened == [("/dev/HAX", True)]  # QEMU opens /dev/HAX read-write
    p = static_probe("haxm", host("NetBSD"), netbsd(files={"/dev/nvmm"}))
    assert p.status == MISSING and p.reason.startswith(
        "/dev/HAX missing: build and modload HAXM's NetBSD module")


# --- OpenBSD: vmd -----------------------------------------------------------------------

def openbsd(status: str = "openbsd-vmctl-status.txt", files=frozenset({"/dev/vmm"})) -> FakeHost:
    return FakeHost({("vmctl", "status"): status}, files=files)


def test_openbsd_vmd_available_without_opening_dev_vmm():
    io = openbsd()
    p = static_probe("vmd", host("OpenBSD"), io)
    assert p.status == AVAILABLE and p.binary == "/usr/bin/vmctl", p.reason
    assert io.opened == []  # vmd opens /dev/vmm as root; the porter need not


def test_openbsd_vmd_not_running():
    p = static_probe("vmd", host("OpenBSD"), openbsd("openbsd-vmctl-status-no-vmd.txt"))
    assert p.status == UNUSABLE
    assert p.reason == ("`vmctl status`: vmctl: connect: /var/run/vmd.sock: No such file or "
                        "directory: vmd is not running: rcctl enable vmd && rcctl start vmd "
                        "(as root)")


def test_openbsd_vmd_socket_refuses_this_user():
    p = static_probe("vmd", host("OpenBSD"), openbsd("openbsd-vmctl-status-denied.txt"))
    assert p.status == UNUSABLE and "socket owner in vm.conf(5)" in p.reason


def test_openbsd_without_vmm():
    p = static_probe("vmd", host("OpenBSD"), openbsd(files=frozenset()))
    assert p.status == MISSING
    assert p.reason.startswith("/dev/vmm missing: this kernel has no vmm(4)")


def test_openbsd_without_vmctl():
    p = static_probe("vmd", host("OpenBSD"), FakeHost({}, files={"/dev/vmm"}))
    assert p.status == MISSING and p.reason.startswith("vmctl not found on PATH")


# --- FreeBSD: bhyve ---------------------------------------------------------------------

FIRMWARE = {"/usr/local/share/uefi-firmware/BHYVE_UEFI_CODE.fd",
            "/usr/local/share/uefi-firmware/BHYVE_UEFI_VARS.fd"}


def freebsd(kldstat: str = "freebsd-kldstat-vmm-loaded.txt", files=FIRMWARE,
            programs=frozenset({"bhyvectl"})) -> FakeHost:
    return FakeHost({("bhyve", "-h"): "freebsd-bhyve-h.txt",
                     ("kldstat", "-q", "-m", "vmm"): kldstat}, files=files, programs=programs)


def test_freebsd_bhyve_available():
    p = static_probe("bhyve", host("FreeBSD"), freebsd())
    assert p.status == AVAILABLE, p.reason


def test_freebsd_vmm_not_loaded():
    p = static_probe("bhyve", host("FreeBSD"), freebsd("freebsd-kldstat-vmm-not-loaded.txt"))
    assert p.status == MISSING
    assert p.reason == ('`kldstat -q -m vmm` exited 1: vmm.ko is not loaded: kldload vmm '
                        '(vmm_load="YES" in /boot/loader.conf loads it at boot)')


def test_freebsd_without_firmware_or_bhyvectl():
    p = static_probe("bhyve", host("FreeBSD"), freebsd(files=frozenset()))
    assert p.status == MISSING and p.reason == (
        "/usr/local/share/uefi-firmware/BHYVE_UEFI_CODE.fd not found: pkg install "
        "bhyve-firmware (edk2-bhyve)")
    p = static_probe("bhyve", host("FreeBSD"), freebsd(programs=frozenset()))
    assert p.status == MISSING and p.reason.startswith("bhyvectl not found on PATH")


# --- macOS: HVF -------------------------------------------------------------------------

def macos(sysctl: str) -> FakeHost:
    answers = qemu("macos-qemu-accel-help.txt", "qemu-system-aarch64")
    answers[("sysctl", "-n", "kern.hv_support")] = sysctl
    return FakeHost(answers)


def test_macos_hvf_available():
    p = static_probe("hvf", host("Darwin", "aarch64"), macos("macos-sysctl-hv-support-1.txt"))
    assert p.status == AVAILABLE and p.binary.endswith("qemu-system-aarch64"), p.reason


def test_macos_hv_support_0():
    p = static_probe("hvf", host("Darwin", "aarch64"), macos("macos-sysctl-hv-support-0.txt"))
    assert p.status == MISSING
    assert p.reason.startswith("sysctl kern.hv_support is 0, needs 1: this Mac has no "
                               "Hypervisor.framework support")


def test_macos_in_a_vm_has_no_hv_support_oid():
    p = static_probe("hvf", host("Darwin", "aarch64"), macos("macos-sysctl-hv-support-unknown.txt"))
    assert p.status == MISSING
    assert p.reason.startswith("`sysctl -n kern.hv_support`: sysctl: unknown oid "
                               "'kern.hv_support': this macOS has no Hypervisor.framework")


def test_macos_haxm_is_not_in_this_qemu():
    p = static_probe("haxm", host("Darwin", "aarch64"), macos("macos-sysctl-hv-support-1.txt"))
    assert p.status == MISSING and "'hax' is not compiled into" in p.reason


# --- Windows: WHPX and HAXM -------------------------------------------------------------

DLL = "C:\\Windows\\System32\\WinHvPlatform.dll"
FEATURE = ("powershell", "-NoProfile", "-NonInteractive", "-Command",
           "(Get-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform).State")


def windows(feature: str, files=frozenset({DLL}), **kw) -> FakeHost:
    answers = qemu("windows-qemu-accel-help.txt")
    answers[FEATURE] = feature
    return FakeHost(answers, files=files, **kw)


def test_windows_whpx_available():
    p = static_probe("whpx", host("Windows"), windows("windows-hypervisorplatform-enabled.txt"))
    assert (p.status, p.reason) == (
        AVAILABLE, "static checks passed; whether it runs guests is the canary's to say")


def test_windows_feature_disabled():
    p = static_probe("whpx", host("Windows"), windows("windows-hypervisorplatform-disabled.txt"))
    assert p.status == MISSING
    assert p.reason.startswith("`powershell -NoProfile -NonInteractive -Command (Get-Windows"
                               "OptionalFeature -Online -FeatureName HypervisorPlatform).State`: "
                               "Disabled: enable it")


def test_windows_without_administrator_the_library_decides():
    io = windows("windows-hypervisorplatform-not-admin.txt")
    p = static_probe("whpx", host("Windows"), io)
    assert p.status == AVAILABLE
    assert p.reason.endswith("requires elevation.: the feature's state needs an administrator "
                             "shell to read; WinHvPlatform.dll decides")
    p = static_probe("whpx", host("Windows"), windows("windows-hypervisorplatform-not-admin.txt",
                                                      files=frozenset()))
    assert p.status == MISSING
    assert p.reason.startswith(f"{DLL} not found: enable the Windows Hypervisor Platform feature")
    assert "needs an administrator shell" in p.reason


def test_windows_haxm_device():
    io = windows("windows-hypervisorplatform-enabled.txt")
    assert static_probe("haxm", host("Windows"), io).status == AVAILABLE
    assert io.opened == [("\\\\.\\HAX", True)]  # no file to look for: it is opened
    io = windows("windows-hypervisorplatform-enabled.txt",
                 open_errors={"\\\\.\\HAX": "No such file or directory"})
    p = static_probe("haxm", host("Windows"), io)
    assert p.status == MISSING and p.reason.startswith(
        "\\\\.\\HAX cannot be opened read-write: No such file or directory: install Intel HAXM")


# --- the real host's IO and the checks' own validation ---------------------------------

def test_real_io_runs_programs_and_opens_files(tmp_path, monkeypatch):
    tool = tmp_path / "answering-tool"
    tool.write_text(f"#!{sys.executable}\nimport sys\nprint('out')\n"
                    "print('err', file=sys.stderr)\nsys.exit(3)\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert REAL.run(["answering-tool"]) == Ran(3, "out\nerr\n")
    assert REAL.run(["no-such-tool-here"]).status is None
    f = tmp_path / "node"
    f.write_text("")
    assert REAL.open_error(str(f), write=True) is None
    assert REAL.open_error(str(tmp_path / "absent"), write=False) == "No such file or directory"


@pytest.mark.parametrize("entry, why", [
    ({"device": "/dev/x", "file": "/y"}, "a check names one of"),
    ({"command": ["x"], "answers": [{"pattern": "p", "status": "fine", "reason": "r"}]},
     "answer status 'fine'"),
    ({"device": "/dev/x", "access": "w"}, "access 'w'"),
    ({"command": ["x"], "fails_as": "unknown"}, "fails_as 'unknown'"),
])
def test_bad_check_entries_are_refused(entry, why):
    with pytest.raises(ValueError, match=why):
        knowledge._check(entry)
