"""The phase classifier of `harness try` (#17), on real text, no VM.

Every recorded console in tests/data/transcripts/ is classified to the phase a person
would name, fed whole and in small odd-sized chunks through the same cleaner a live
console goes through. The screen texts are those of the local screen guests as their
screenshots in ../shared/images show them (FreeDOS, the OpenBSD 2.8 floppy, NetBSD g4u)
and KolibriOS's desktop captions as OCR reads them (tests/test_ocr.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.console.clean import Cleaner
from harness.tryout import phases
from harness.tryout.phases import PHASES, Classifier, prompt_shape
from harness.validate import ConfigError

TRANSCRIPTS = Path(__file__).resolve().parent / "data" / "transcripts"

# file -> (phase reached, the sign that proves it, the failure sign or None, its verdict)
EXPECTED = {
    # preseeded: d-i asks nothing, so no question screen is seen; its last sign is /init
    "debian-12-amd64-preseed.tcg-bios.install.log": ("userland", "linux-init", None, None),
    "debian-12-amd64-preseed.tcg-bios.test.log": ("userland", "unix-shell", None, None),
    "debian-installer-12-amd64.tcg-bios.log": ("userland", "debian-installer", None, None),
    "debian-installer-12-amd64.tcg-uefi.log": ("userland", "debian-installer", None, None),
    "debian-installer-12-arm64.tcg-bios.log": ("userland", "debian-installer", None, None),
    "debian-installer-12-arm64.tcg-uefi.log": ("userland", "debian-installer", None, None),
    "debian-installer-12-i386.tcg-bios.log": ("userland", "debian-installer", None, None),
    "debian-installer-12-ppc64el.tcg-bios.log": ("userland", "debian-installer", None, None),
    "gnumach-1.8-i386.tcg-bios.log": ("kernel", "gnumach-banner", "hurd-mach-panic", "crash"),
    "grub-2.06-iso.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "grub-2.06-iso.tcg-uefi.log": ("userland", "busybox-harness-init", None, None),
    "ipxe.tcg-bios.log": ("firmware", "seabios-device-failed", "ipxe-no-more-devices", "fail"),
    "linux-busybox-aarch64.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-aarch64.tcg-uefi.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-i386.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-i386.tcg-uefi.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-ppc64le.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-x86_64-pvh.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-x86_64.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "linux-busybox-x86_64.tcg-uefi.log": ("userland", "busybox-harness-init", None, None),
    "linux-malta-mipsel.tcg-bios.log": ("kernel", "linux-banner", None, None),
    "memtest86plus.tcg-bios.log": ("kernel", "memtest-testing", None, None),
    "memtest86plus.tcg-uefi.log": ("kernel", "memtest-testing", None, None),
    "openbsd-5.8-amd64.vmm.log": ("kernel", "openbsd-kernel", None, None),
    "opensbi-uboot-riscv64.tcg-bios.log": ("firmware", "u-boot-prompt", None, None),
    # the V6 login and shell lines carry their echoed answers ("login: root", "# ls /")
    "simh-unix-v6-pdp11.simh-bios.log": ("kernel", "unix-v6-kernel", None, None),
    "simh-vax-rom.simh-bios.log": ("firmware", "vax-console-prompt", None, None),
    "xen-4.17-dom0.tcg-bios.log": ("userland", "busybox-harness-init", None, None),
    "uclinux-cortex-m3.tcg-bios.log": ("userland", "busybox-init", None, None),
    "xv6-riscv64.tcg-bios.log": ("userland", "xv6-init", None, None),
}


# consoles where the harness typed answers at prompts (`send:`): fed whole, the prompt
# and its echoed answer are one line ("login: root"), which no prompt sign matches
ANSWERED = {"simh-unix-v6-pdp11.simh-bios.log", "debian-12-amd64-preseed.tcg-bios.test.log"}


def classify(data: bytes, chunk: int | None = None, source: str = "serial") -> Classifier:
    """Feed `data` as a console would: bytes through the cleaner, `chunk` bytes a read."""
    c, cleaner = Classifier(), Cleaner()
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        c.feed(cleaner.feed(data[i:i + step]), source, i / 1000)
    c.feed(cleaner.flush(), source, len(data) / 1000)
    return c


def test_every_recorded_transcript_has_an_expectation():
    assert sorted(p.name for p in TRANSCRIPTS.glob("*.log")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("chunk", [None, 37, 251])
def test_recorded_transcripts_reach_the_phase_a_person_would_name(name, chunk):
    phase, proof, failure, verdict = EXPECTED[name]
    c = classify((TRANSCRIPTS / name).read_bytes(), chunk)
    reached = c.reached()
    assert reached is not None and (reached.sign.phase, reached.sign.name) == (phase, proof)
    assert reached.text and len(reached.text) <= phases.TEXT_MAX
    assert reached.text == reached.text.strip() and reached.source == "serial"
    got = c.failure()
    assert (got and got.sign.name, got and got.sign.verdict) == (failure, verdict)


# Consoles where the harness typed a command at a prompt: read a byte at a time, the prompt
# is an unfinished line before the command's echo arrives (as it was live), so its sign is
# seen too; read whole, the line is "$ ls".
TYPED_AT = {"xv6-riscv64.tcg-bios.log": "unix-shell"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunking_does_not_change_what_is_seen(name):
    data = (TRANSCRIPTS / name).read_bytes()
    whole = [s.sign.name for s in classify(data).seen()]
    chunked = [s.sign.name for s in classify(data, 13).seen()]
    if name in ANSWERED:  # a read may end between a prompt and its echoed answer
        assert [n for n in chunked if n in whole] == whole
    else:
        assert chunked == whole
    if len(data) < 3000:  # the short ones a byte a read, as a slow serial line gives them
        bytewise = [s.sign.name for s in classify(data, 1).seen()]
        if name in TYPED_AT:
            assert TYPED_AT[name] in bytewise and TYPED_AT[name] not in whole
            bytewise.remove(TYPED_AT[name])
        if name in ANSWERED:  # a prompt is seen before its echoed answer, as it was live
            assert [n for n in bytewise if n in whole] == whole and len(bytewise) > len(whole)
        else:
            assert bytewise == whole


def test_what_the_transcripts_show_on_the_way():
    names = {n: {s.sign.name for s in classify((TRANSCRIPTS / n).read_bytes()).seen()}
             for n in EXPECTED}
    assert {"seabios", "seabios-booting", "ipxe-init", "no-bootable-device"} <= names[
        "ipxe.tcg-bios.log"]
    assert {"ovmf-loading", "grub-welcome", "grub-booting", "linux-banner"} <= names[
        "grub-2.06-iso.tcg-uefi.log"]
    assert {"opensbi", "u-boot"} <= names["opensbi-uboot-riscv64.tcg-bios.log"]
    assert {"xen-banner", "linux-banner"} <= names["xen-4.17-dom0.tcg-bios.log"]
    assert "slof" in names["linux-busybox-ppc64le.tcg-bios.log"]
    # GRUB's harmless "error: no suitable video mode found." is no failure
    assert not any(s.startswith("grub-error") for s in names["grub-2.06-iso.tcg-uefi.log"])
    memtest = classify((TRANSCRIPTS / "memtest86plus.tcg-bios.log").read_bytes()).reached()
    assert memtest is not None and memtest.sign.family == "memtest86+"


def test_times_are_those_of_the_first_sighting():
    c = Classifier()
    c.feed("SeaBIOS (version 1.16.2)\n", "serial", 0.5)
    c.feed("Booting from Floppy...\n", "serial", 1.25)
    c.feed("SeaBIOS (version 1.16.2)\n", "serial", 9.0)
    assert [(s.sign.name, s.at) for s in c.seen()] == [("seabios", 0.5), ("seabios-booting", 1.25)]


# --- the screen guests ---------------------------------------------------------------

FREEDOS = """Booting from Floppy...
FreeDOS kernel - SVN (build 2040 OEM:0xfd) [compiled Apr  7 2012]
Kernel compatibility 7.10 - WATCOMC - FAT32 support
FreeCom version 0.82 pl 3 XMS_Swap [Dec 10 2003 06:49:21]
Welcome to FreeDOS (http://www.freedos.org)!
A:\\>"""
OPENBSD_28 = """rd0: fixed, 3560 blocks
rootdev=0x1100 rrootdev=0x2f00 rawdev=0x2f02
WARNING: file system time much less than clock time
erase ^?, werase ^W, kill ^U, intr ^C, status ^T
(I)nstall, (U)pgrade or (S)hell? """
G4U = """ Welcome to g4u Harddisk Image Cloning 2.5!
 * This screen:                          help
g4u> """
KOLIBRI = "KFM EOLITE SHELL\nPIPES XONIX FLOOD-IT CHECKERS CLICKS SNAKE MBLOCKS\nSUDOKU GOMOKU\n"


@pytest.mark.parametrize("text,phase,name,kind", [
    (FREEDOS, "userland", "dos-prompt", "shell"),
    (OPENBSD_28, "userland", "openbsd-installer", "question"),
    (G4U, "userland", "g4u-prompt", "shell"),
    (KOLIBRI, "desktop", "kolibri-desktop", "banner"),
])
def test_screen_guests_reach_their_phase(text, phase, name, kind):
    c = Classifier()
    for i, line in enumerate(text.splitlines(keepends=True)):
        c.feed(line, "screen", float(i))
    reached = c.reached()
    assert reached is not None
    assert (reached.sign.phase, reached.sign.name, reached.sign.kind) == (phase, name, kind)
    assert reached.source == "screen" and c.failure() is None


def test_a_screen_only_sign_is_not_taken_from_the_serial_console():
    c = Classifier()
    c.feed(KOLIBRI, "serial", 1.0)
    assert all(s.sign.name != "kolibri-desktop" for s in c.seen())
    c.feed(KOLIBRI, "screen", 2.0)
    assert c.reached() is not None and c.reached().sign.name == "kolibri-desktop"


# --- behaviour -------------------------------------------------------------------------

def test_a_failure_wins_over_a_later_banner():
    c = Classifier()
    c.feed("SeaBIOS (version 1.16.2)\nNo bootable device.\n", "serial", 1.0)
    c.feed("Booting from Floppy...\n[    0.000000] Linux version 6.1.0\n", "serial", 2.0)
    c.feed("Kernel panic - not syncing: VFS: Unable to mount root fs\n", "serial", 3.0)
    failure = c.failure()
    assert failure is not None and failure.sign.name == "no-bootable-device"
    assert failure.sign.verdict == "fail" and failure.at == 1.0
    assert c.reached() is not None and c.reached().sign.name == "linux-banner"


def test_a_kernel_panic_is_a_crash():
    c = Classifier()
    c.feed("[    1.0] Kernel panic - not syncing: Attempted to kill init!\n", "serial", 4.0)
    failure = c.failure()
    assert failure is not None and failure.sign.verdict == "crash"
    assert failure.sign.phase == "kernel" and failure.sign.family == "linux"


def test_each_sign_is_reported_once():
    c = Classifier()
    assert [s.sign.name for s in c.feed("GNU GRUB  version 2.06\n", "serial", 1.0)] == [
        "grub-menu"]
    assert c.feed("GNU GRUB  version 2.06\n", "serial", 2.0) == []
    assert c.feed("GNU GRUB  version 2.06\n", "screen", 3.0) == []
    assert len(c.seen()) == 1


def test_an_unfinished_line_is_checked_and_kept_as_the_tail():
    c = Classifier()
    seen = c.feed("\r\nWelcome to Alpine\r\nalpine login: ", "serial", 5.0)
    assert [s.sign.name for s in seen] == ["login"] and seen[0].text == "alpine login:"
    assert c.tail("serial") == "alpine login: " and c.tail("screen") == ""
    assert prompt_shape(c.tail("serial"))
    assert c.feed("root\n", "serial", 6.0) == []  # the line it was in, finished: not again
    assert c.tail("serial") == ""


def test_a_sign_split_across_reads_is_found():
    c = Classifier()
    for part in ("Lin", "ux vers", "ion 6", ".1.0-56-amd64 (debian", ")\n"):
        c.feed(part, "serial", 1.0)
    assert [s.sign.name for s in c.seen()] == ["linux-banner"]
    # reported as soon as it shows, with the line as far as it had come
    assert "Linux version 6.1.0-56-amd64 (debian)".startswith(c.seen()[0].text)
    assert c.seen()[0].text.startswith("Linux version 6.1")


def test_a_long_line_without_newline_stays_bounded():
    c = Classifier()
    for _ in range(200):
        c.feed("x" * 997, "screen", 1.0)
    assert len(c.tail("screen")) <= phases.TAIL_MAX
    c.feed(" [!!] Select a language ", "screen", 2.0)
    assert c.reached() is not None and c.reached().sign.name == "debian-installer"
    assert len(c.reached().text) <= phases.TEXT_MAX


def test_a_bad_source_is_refused():
    with pytest.raises(ValueError):
        Classifier().feed("x", "vga", 0.0)


def test_menus_and_questions_carry_their_default_answer():
    signs = {s.name: s for s in phases.table().signs}
    assert signs["grub-menu"].answer == "\n" and signs["grub-menu"].kind == "menu"
    assert signs["windows-press-any-key"].answer == "\n"
    assert all(s.answer is None for s in signs.values() if s.kind not in ("menu", "question"))
    assert all(s.verdict for s in signs.values() if s.kind == "failure")
    assert {s.phase for s in signs.values()} == set(PHASES)


@pytest.mark.parametrize("line", [
    "root@debian:~# ", "$ ", "% ", "alpine login: ", "Password: ", "A:\\>", "C:\\DOS>",
    "boot: ", "boot> ", "Shell> ", "=> ", "(I)nstall, (U)pgrade or (S)hell? ",
    "Console type [vt100]: ", "Press any key to boot from CD or DVD..", "[!!] Select a language",
    "user[glenda]: ", "grub> ",
])
def test_prompt_shapes(line):
    assert prompt_shape(line)


@pytest.mark.parametrize("line", [
    "", "   ", "[    1.640435] Run /init as init process", "Booting from Floppy...",
    "Loading Environment from nowhere... OK", "HARNESS-CHECKS done failed=0",
    "The selected language will also be the default", "FreeDOS kernel - SVN (build 2040)",
])
def test_not_prompt_shapes(line):
    assert not prompt_shape(line)


# --- the table -------------------------------------------------------------------------

def test_the_built_in_table_loads_with_the_built_in_failure_signatures():
    signs = phases.table().signs
    names = [s.name for s in signs]
    assert len(names) == len(set(names))
    assert {"linux-kernel-panic", "hurd-mach-panic", "triple-fault"} <= set(names)
    assert all(s.verdict == "crash" for s in signs if s.name == "linux-kernel-panic")
    # warnings (fatal: false) are not failures
    assert "linux-soft-lockup" not in names
    assert phases.table().prompts


def test_a_bad_row_is_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "phases.yaml"
    bad.write_text(
        "signs:\n"
        "  - {name: a, family: x, phase: kernel, kind: banner, pattern: 'A', label: A,\n"
        "     source_of_truth: here}\n"
        "  - {name: b, family: x, phase: later, kind: banner, pattern: 'B', label: B,\n"
        "     source_of_truth: here}\n"
        "  - {name: c, family: x, phase: kernel, kind: failure, pattern: 'C', label: C,\n"
        "     source_of_truth: here}\n"
        "  - {name: d, family: x, phase: kernel, kind: banner, pattern: '(', label: D,\n"
        "     source_of_truth: here}\n"
        "  - {name: a, family: x, phase: kernel, kind: banner, pattern: 'E', label: E,\n"
        "     source_of_truth: here}\n"
        "  - {name: f, family: x, phase: kernel, kind: banner, pattern: 'F', label: F}\n"
        "  - {name: g, family: x, phase: kernel, kind: prompt, pattern: 'G', label: G,\n"
        "     answer: y, colour: red, source_of_truth: here}\n"
        "prompts: ['[']\n")
    with pytest.raises(ConfigError) as info:
        phases.load(bad)
    text = str(info.value)
    for expected in (f"{bad}:4: signs[1].phase: expected one of firmware",
                     f"{bad}:6: signs[2].verdict: a failure row says which verdict",
                     f"{bad}:8: signs[3].pattern: invalid regular expression",
                     f"{bad}:10: signs[4].name: 'a' is already the name of the row at line 2",
                     f"{bad}:12: signs[5].source_of_truth: required key is missing",
                     f"{bad}:14: signs[6].colour: unknown key",
                     f"{bad}:14: signs[6].answer: only menu and question rows have an answer",
                     f"{bad}:15: prompts[0]: invalid regular expression"):
        assert expected in text, text
    assert "Traceback" not in text


def test_a_table_that_is_not_yaml_is_a_config_error(tmp_path):
    bad = tmp_path / "phases.yaml"
    bad.write_text("signs: [\n")
    with pytest.raises(ConfigError) as info:
        phases.load(bad)
    assert str(info.value).startswith(f"{bad}:")


@pytest.mark.parametrize("lines,failure,verdict", [
    # a zero-filled floppy under SeaBIOS
    (["SeaBIOS (version 1.16.2)", "Booting from Floppy...", "Boot failed: not a bootable disk",
      "", "No bootable device.  Retrying in 60 seconds."], "no-bootable-device", "fail"),
    (["BdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM QM00003 \" from PciRoot(0x0): Not Found",
      "BdsDxe: No bootable option or device was found."], "ovmf-no-boot-option", "fail"),
    (["Welcome to GRUB!", "error: unknown filesystem.", "grub rescue> "], "grub-rescue", "fail"),
    (["ISOLINUX 6.04 20200816 ETCD", "boot: ", "Could not find kernel image: linux"],
     "syslinux-no-kernel", "fail"),
    (["Missing operating system"], "mbr-error", "fail"),
    (["Non-System disk or disk error", "Replace and strike any key when ready"],
     "non-system-disk", "fail"),
    (["iPXE initialising devices...ok", "No more network devices"], "ipxe-no-more-devices",
     "fail"),
    (["NetBSD 10.1 (GENERIC) #0", "panic: init died (signal 0, exit 12)"], "panic", "crash"),
    (["(XEN) Xen version 4.17.7", "(XEN) Panic on CPU 0:"], "xen-panic", "crash"),
])
def test_boot_failures_name_their_verdict(lines, failure, verdict):
    c = Classifier()
    for i, line in enumerate(lines):
        c.feed(line if i == len(lines) - 1 else line + "\r\n", "serial", float(i))
    got = c.failure()
    assert got is not None and (got.sign.name, got.sign.verdict) == (failure, verdict)
    assert got.sign.kind == "failure"
