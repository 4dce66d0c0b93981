"""The host's CPU model and flags, from the sources each host has.

Linux has /proc/cpuinfo; macOS answers `sysctl machdep.cpu.*`; the BSDs answer
`sysctl hw.model` and keep their boot messages (with the CPU's feature lists) in
/var/run/dmesg.boot; Windows names the CPU in PROCESSOR_IDENTIFIER. Each source is
optional: a host that answers none still gets facts (an empty model, no flags).
The readers are passed in, so every host's branch is tested here with recorded
outputs (tests/test_hostfacts.py).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping

Read = Callable[[str], "str | None"]  # a file's text; None when it cannot be read
Sysctl = Callable[[str], "str | None"]  # `sysctl -n NAME`'s answer; None when there is none

# The flags the harness reports, as Linux names them, from each host's spelling of them
# (macOS: AVX1.0, EM64T, VMM; FreeBSD: LM, HV; OpenBSD: LONG, HV; NetBSD: SSE42)
FLAG_NAMES = {
    "VMX": "vmx", "SVM": "svm",
    "HYPERVISOR": "hypervisor", "HV": "hypervisor", "VMM": "hypervisor",
    "LM": "lm", "LONG": "lm", "EM64T": "lm",
    "SSE4_2": "sse4_2", "SSE4.2": "sse4_2", "SSE42": "sse4_2",
    "AVX": "avx", "AVX1.0": "avx", "AVX2": "avx2", "RDRAND": "rdrand",
}
BSDS = ("FreeBSD", "OpenBSD", "NetBSD", "DragonFly")
DARWIN_FEATURE_KEYS = ("machdep.cpu.features", "machdep.cpu.leaf7_features",
                       "machdep.cpu.extfeatures")


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except (OSError, ValueError):
        return None


def sysctl(name: str) -> str | None:
    try:
        proc = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def flags_in(text: str) -> tuple[str, ...]:
    """The reported flags among the words of `text`, by any host's name for them."""
    words = re.findall(r"[A-Za-z0-9_.]+", text)
    return tuple(sorted({FLAG_NAMES[w.upper()] for w in words if w.upper() in FLAG_NAMES}))


def linux_cpu(read: Read) -> tuple[str, tuple[str, ...]]:
    info = read("/proc/cpuinfo") or ""
    cpu = m.group(1).strip() if (m := re.search(r"^model name\s*:\s*(.+)$", info, re.M)) else ""
    flags = m.group(1) if (m := re.search(r"^flags\s*:\s*(.+)$", info, re.M)) else ""
    # Linux's own names: a lower-case word list, so `lm` and `avx` are never a BSD spelling
    wanted = set(FLAG_NAMES.values())
    return cpu, tuple(sorted(set(flags.split()) & wanted))


def darwin_cpu(ask: Sysctl) -> tuple[str, tuple[str, ...]]:
    """Intel Macs list features in three keys; Apple silicon has only the brand."""
    features = " ".join(ask(key) or "" for key in DARWIN_FEATURE_KEYS)
    return ask("machdep.cpu.brand_string") or "", flags_in(features)


def bsd_cpu(ask: Sysctl, read: Read) -> tuple[str, tuple[str, ...]]:
    """hw.model names the CPU; the feature lists are in the boot messages (FreeBSD:
    `Features2=...<...,VMX,...>`, OpenBSD: `cpu0: FPU,VME,...`). NetBSD's
    `cpuctl identify` would list them too, but it needs root."""
    boot = read("/var/run/dmesg.boot") or ""
    lines = [ln for ln in boot.splitlines()
             if re.match(r"\s*(cpu0:|\w+( \w+)* Features\w*=|Features\w*=)", ln)]
    return ask("hw.model") or "", flags_in("\n".join(lines))


def windows_cpu(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """PROCESSOR_IDENTIFIER (`Intel64 Family 6 Model 94 Stepping 3, GenuineIntel`) is in
    every Windows environment; the brand string would need the registry."""
    return env.get("PROCESSOR_IDENTIFIER", "").strip(), ()


def cpu_identity(system: str, read: Read, ask: Sysctl,
                 env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """(CPU model, flags) on `system` (platform.system()'s name for the host)."""
    if system == "Linux":
        cpu, flags = linux_cpu(read)
    elif system == "Darwin":
        cpu, flags = darwin_cpu(ask)
    elif system in BSDS:
        cpu, flags = bsd_cpu(ask, read)
    elif system == "Windows":
        cpu, flags = windows_cpu(env)
    else:
        cpu, flags = "", ()
    return cpu, flags
