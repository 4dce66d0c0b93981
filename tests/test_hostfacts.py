"""Host facts on every host, driven by recorded outputs of each host's own sources.

Where each recording comes from (found with the project's search tool in public pages
and repositories; trimmed to the keys the harness reads, values unchanged):
- MAC_INTEL_VM: `sysctl machdep.cpu` of an Intel Core i9-10900K Mac running under a
  hypervisor (features carry VMM, not VMX), quoted in a comment of a C++ library's
  macOS CPU probe (XMachineCpuPrivate).
- MAC_INTEL: `sysctl machdep.cpu` of a Core i7-4650U MacBook (leaf7 and extfeatures
  present), from a public dump of `sysctl -a` in a repository.
- MAC_M2: `sysctl` of an Apple M2 Pro (brand only; the x86 feature keys do not exist
  there), from a test fixture of a host-facts tool.
- FREEBSD: `sysctl hw.model` of a FreeBSD laptop (ThinkPad T530, "Intel(R) Core(TM)
  i7-3630QM CPU @ 2.40GHz") from a FreeBSD set-up note, and the CPU part of
  /var/run/dmesg.boot of a FreeBSD 11 Xeon E3-1231 v3 host from a bhyve blog post.
- OPENBSD: the cpu0 lines of an OpenBSD dmesg on VirtualBox (Core i7-4850HQ, no VMX
  exposed, HV absent) and of a QEMU guest ("QEMU Virtual CPU version 2.5+", with HV),
  both public dmesg files.
- NETBSD: `sysctl hw.model` on NetBSD 10.0 amd64 ("Intel(R) Xeon(R) Gold 6248R CPU @
  3.00GHz"), from a NetBSD provisioning guide.
- WINDOWS: PROCESSOR_IDENTIFIER from a `set` listing of a Windows 10 host
  ("Intel64 Family 6 Model 94 Stepping 3, GenuineIntel").
"""

from __future__ import annotations

import pytest

from harness import scheduler
from harness.backends import hostfacts, probe

MAC_INTEL_VM = {
    "machdep.cpu.brand_string": "Intel(R) Core(TM) i9-10900K CPU @ 3.70GHz",
    "machdep.cpu.features": "FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT "
    "PSE36 CLFSH MMX FXSR SSE SSE2 SS HTT SSE3 PCLMULQDQ MON SSSE3 FMA CX16 SSE4.1 SSE4.2 "
    "x2APIC MOVBE POPCNT AES VMM PCID XSAVE OSXSAVE TSCTMR AVX1.0 RDRAND F16C",
    "machdep.cpu.leaf7_features": "RDWRFSGS TSC_THREAD_OFFSET BMI1 AVX2 SMEP BMI2 ERMS "
    "INVPCID FPU_CSDS RDSEED ADX SMAP CLFSOPT PKU MDCLEAR IBRS STIBP L1DF ACAPMSR SSBD",
    "machdep.cpu.extfeatures": "SYSCALL XD 1GBPAGE EM64T LAHF LZCNT PREFETCHW RDTSCP TSCI",
}
MAC_INTEL = {
    "machdep.cpu.brand_string": "Intel(R) Core(TM) i7-4650U CPU @ 1.70GHz",
    "machdep.cpu.features": "FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT "
    "PSE36 CLFSH DS ACPI MMX FXSR SSE SSE2 SS HTT TM PBE SSE3 PCLMULQDQ DTES64 MON DSCPL VMX "
    "SMX EST TM2 SSSE3 FMA CX16 TPR PDCM SSE4.1 SSE4.2 x2APIC MOVBE POPCNT AES PCID XSAVE "
    "OSXSAVE SEGLIM64 TSCTMR AVX1.0 RDRAND F16C",
    "machdep.cpu.leaf7_features": "SMEP ENFSTRG RDWRFSGS TSC_THREAD_OFFSET BMI1 HLE AVX2 BMI2 "
    "INVPCID RTM",
}
MAC_M2 = {"machdep.cpu.brand_string": "Apple M2 Pro"}

FREEBSD_MODEL = "Intel(R) Core(TM) i7-3630QM CPU @ 2.40GHz"
FREEBSD_DMESG = """\
FreeBSD clang version 3.8.0 (tags/RELEASE_380/final 262564) (based on LLVM 3.8.0)
VT(vga): resolution 640x480
CPU: Intel(R) Xeon(R) CPU E3-1231 v3 @ 3.40GHz (3392.22-MHz K8-class CPU)
  Origin="GenuineIntel"  Id=0x306c3  Family=0x6  Model=0x3c  Stepping=3
  Features=0xbfebfbff<FPU,VME,DE,PSE,TSC,MSR,PAE,MCE,CX8,APIC,SEP,MTRR,PGE,MCA,CMOV,PAT,PSE36,\
CLFLUSH,DTS,ACPI,MMX,FXSR,SSE,SSE2,SS,HTT,TM,PBE>
  Features2=0x7ffafbff<SSE3,PCLMULQDQ,DTES64,MON,DS_CPL,VMX,SMX,EST,TM2,SSSE3,SDBG,FMA,CX16,\
xTPR,PDCM,PCID,SSE4.1,SSE4.2,x2APIC,MOVBE,POPCNT,TSCDLT,AESNI,XSAVE,OSXSAVE,AVX,F16C,RDRAND>
  AMD Features=0x2c100800<SYSCALL,NX,Page1GB,RDTSCP,LM>
  AMD Features2=0x21<LAHF,ABM>
  Structured Extended Features=0x2fbb<FSGSBASE,TSCADJ,BMI1,HLE,AVX2,SMEP,BMI2,ERMS,INVPCID,\
RTM,NFPUSG>
  XSAVE Features=0x1<XSAVEOPT>
  VT-x: PAT,HLT,MTF,PAUSE,EPT,UG,VPID
real memory  = 34359738368 (32768 MB)
"""
OPENBSD_VBOX_DMESG = """\
cpu0 at mainbus0: apid 0 (boot processor)
cpu0: Intel(R) Core(TM) i7-4850HQ CPU @ 2.30GHz, 2287.99 MHz
cpu0: FPU,VME,DE,PSE,TSC,MSR,PAE,MCE,CX8,APIC,SEP,MTRR,PGE,MCA,CMOV,PAT,PSE36,CFLUSH,MMX,FXSR,\
SSE,SSE2,SSE3,PCLMUL,MWAIT,SSSE3,CX16,SSE4.1,SSE4.2,MOVBE,POPCNT,AES,XSAVE,AVX,RDRAND,NXE,\
RDTSCP,LONG,LAHF,ABM,ITSC
cpu0: 256KB 64b/line 8-way L2 cache
"""
OPENBSD_QEMU_DMESG = """\
cpu0: QEMU Virtual CPU version 2.5+, 2400.11 MHz, 06-06-03
cpu0: FPU,VME,DE,PSE,TSC,MSR,PAE,MCE,CX8,APIC,SEP,MTRR,PGE,MCA,CMOV,PAT,PSE36,CFLUSH,MMX,FXSR,\
SSE,SSE2,SSE3,CX16,x2APIC,HV,NXE,LONG,LAHF
cpu0: 512KB 64b/line 16-way L2 cache
"""
NETBSD_MODEL = "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz"
WINDOWS_ID = "Intel64 Family 6 Model 94 Stepping 3, GenuineIntel"
LINUX_CPUINFO = """\
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx \
fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl \
pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand \
hypervisor lahf_lm cmp_legacy svm cr8_legacy abm sse4a avx2
"""


def files(table: dict[str, str]):
    return table.get


def nothing(_: str) -> None:
    return None


def answers(table: dict[str, str]):
    asked: list[str] = []

    def ask(name: str) -> str | None:
        asked.append(name)
        return table.get(name)

    ask.asked = asked  # type: ignore[attr-defined]
    return ask


def test_linux_reads_proc_cpuinfo():
    cpu, flags = hostfacts.cpu_identity("Linux", files({"/proc/cpuinfo": LINUX_CPUINFO}),
                                        nothing, {})
    assert cpu == "AMD EPYC 7B13"
    assert flags == ("avx", "avx2", "hypervisor", "lm", "rdrand", "sse4_2", "svm")


def test_linux_without_proc_has_no_model_and_no_flags():
    assert hostfacts.cpu_identity("Linux", nothing, nothing, {}) == ("", ())


@pytest.mark.parametrize("table, cpu, flags", [
    (MAC_INTEL_VM, "Intel(R) Core(TM) i9-10900K CPU @ 3.70GHz",
     ("avx", "avx2", "hypervisor", "lm", "rdrand", "sse4_2")),
    (MAC_INTEL, "Intel(R) Core(TM) i7-4650U CPU @ 1.70GHz",
     ("avx", "avx2", "rdrand", "sse4_2", "vmx")),
    (MAC_M2, "Apple M2 Pro", ()),
])
def test_macos_asks_sysctl_machdep_cpu(table, cpu, flags):
    ask = answers(table)
    assert hostfacts.cpu_identity("Darwin", nothing, ask, {}) == (cpu, flags)
    assert "machdep.cpu.brand_string" in ask.asked and "machdep.cpu.features" in ask.asked


def test_freebsd_names_the_cpu_by_hw_model_and_flags_by_dmesg_boot():
    ask = answers({"hw.model": FREEBSD_MODEL})
    cpu, flags = hostfacts.cpu_identity(
        "FreeBSD", files({"/var/run/dmesg.boot": FREEBSD_DMESG}), ask, {})
    assert cpu == FREEBSD_MODEL and ask.asked == ["hw.model"]
    assert flags == ("avx", "avx2", "lm", "rdrand", "sse4_2", "vmx")


@pytest.mark.parametrize("dmesg, flags", [
    (OPENBSD_VBOX_DMESG, ("avx", "lm", "rdrand", "sse4_2")),
    (OPENBSD_QEMU_DMESG, ("hypervisor", "lm")),
])
def test_openbsd_spells_long_mode_and_the_hypervisor_its_own_way(dmesg, flags):
    ask = answers({"hw.model": "Intel(R) Core(TM) i7-4850HQ CPU @ 2.30GHz"})
    cpu, got = hostfacts.cpu_identity("OpenBSD", files({"/var/run/dmesg.boot": dmesg}), ask, {})
    assert cpu.startswith("Intel(R) Core(TM) i7-4850HQ") and got == flags


def test_netbsd_asks_hw_model_only_and_never_needs_root():
    ask = answers({"hw.model": NETBSD_MODEL})
    assert hostfacts.cpu_identity("NetBSD", nothing, ask, {}) == (NETBSD_MODEL, ())
    assert ask.asked == ["hw.model"]


def test_windows_reads_processor_identifier():
    got = hostfacts.cpu_identity("Windows", nothing, nothing,
                                 {"PROCESSOR_IDENTIFIER": WINDOWS_ID})
    assert got == (WINDOWS_ID, ())


def test_an_unknown_host_gets_empty_facts_not_an_error():
    assert hostfacts.cpu_identity("Haiku", nothing, nothing, {}) == ("", ())


def test_words_inside_a_model_name_are_not_flags():
    assert hostfacts.flags_in("cpu0: Intel(R) Core(TM) i7 LONGER HVX") == ()


def test_sysctl_that_is_missing_or_fails_answers_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sysctl at all
    assert hostfacts.sysctl("hw.model") is None
    fake = tmp_path / "sysctl"
    fake.write_text("#!/bin/sh\n[ \"$2\" = hw.model ] && echo 'Some CPU' && exit 0\n"
                    "echo \"sysctl: unknown oid '$2'\" >&2; exit 1\n")
    fake.chmod(0o755)
    assert hostfacts.sysctl("hw.model") == "Some CPU"
    assert hostfacts.sysctl("machdep.cpu.brand_string") is None


def test_host_facts_on_this_host_agree_with_proc():
    facts = probe.host_facts()
    with open("/proc/cpuinfo") as f:
        info = f.read()
    if "model name" in info:
        assert facts.cpu in info
    assert facts.os == "Linux" and facts.kernel


def test_available_memory_comes_from_psutil(monkeypatch):
    import psutil

    class Memory:
        available = 3 << 30

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory())
    assert scheduler.available_memory_mb() == 3072


def test_available_memory_falls_back_when_psutil_cannot_answer(monkeypatch):
    import psutil

    def denied():
        raise PermissionError(13, "no /proc")

    monkeypatch.setattr(psutil, "virtual_memory", denied)
    mb = scheduler.available_memory_mb()
    assert mb is not None and mb > 0
