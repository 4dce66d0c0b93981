"""Guests that name their own board (#21): machine, CPU, `bios: none` and drives on the
interfaces arches.yaml gives each architecture, as QEMU arguments and as checked config.

No VM here: the catalog's xv6 and uClinux entries boot in tests/test_catalog.py (every
`local` guest) and tests/test_boards_vm.py; their real consoles replay in
tests/test_transcripts.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.backends import probe as probes
from harness.backends import registry
from harness.backends.base import LaunchContext
from harness.backends.qemu import build_launch
from harness.config import ConfigError, load_guest, load_guests
from harness.model import Drive
from harness.plan import make_cell
from harness.results.html import run_page
from harness.transcripts import replay

from .conftest import GUESTS, ROOT, refused_as, write

CATALOG = load_guests(GUESTS)
TRANSCRIPTS = Path(__file__).resolve().parent / "data" / "transcripts"


def launch(gid: str, tmp_path: Path, guest=None):
    g = guest or CATALOG[gid]
    cell = make_cell(g, "tcg", "bios", g.timeouts, g.memory_mb)
    images = {n: Path(f"/cache/{n}.img") for n in g.images}
    return build_launch(cell, images, LaunchContext(tmp_path, tmp_path))


def after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_xv6_boots_with_no_firmware_its_cpu_and_a_virtio_mmio_disk(tmp_path):
    lc = launch("xv6-riscv64", tmp_path)
    a = lc.argv
    assert a[0] == "qemu-system-riscv64"
    assert after(a, "-machine") == ["virt"] and after(a, "-cpu") == ["rv64,pmp=false"]
    assert after(a, "-bios") == ["none"] and after(a, "-kernel") == ["/cache/kernel.img"]
    overlay = tmp_path / "fs.overlay.qcow2"
    assert after(a, "-drive") == [f"file={overlay},if=none,format=qcow2,id=drive0,readonly=off"]
    assert after(a, "-device") == ["virtio-blk-device,drive=drive0,bus=virtio-mmio-bus.0"]
    # xv6 writes its file system: the cached image is only the overlay's backing file
    assert "/cache/fs.img" not in " ".join(a)
    (setup,) = lc.setup
    assert setup[:2] == ["qemu-img", "create"] and setup[-1] == str(overlay)
    assert str(Path("/cache/fs.img").resolve()) in setup


def test_uclinux_names_its_board_and_its_spi_flash(tmp_path):
    lc = launch("uclinux-cortex-m3", tmp_path)
    a = lc.argv
    assert a[0] == "qemu-system-arm" and after(a, "-machine") == ["emcraft-sf2"]
    assert "-cpu" not in a and "-bios" not in a  # the board's own Cortex-M3; U-Boot is -kernel
    assert after(a, "-kernel") == ["/cache/uboot.img"]
    overlay = tmp_path / "spi.overlay.qcow2"
    assert after(a, "-drive") == [f"file={overlay},if=mtd,format=qcow2,readonly=off"]


def test_read_only_drives_are_used_as_they_are_and_count_per_interface(tmp_path):
    g = CATALOG["xv6-riscv64"]
    raw = write(tmp_path / "data.img", "x" * 512)
    g = replace(g, images={**g.images, "data": g.images["fs"]},
                drives=(*g.drives, Drive("data", "virtio-mmio", readonly=True)))
    cell = make_cell(g, "tcg", "bios", g.timeouts, g.memory_mb)
    images = {"kernel": Path("/cache/kernel"), "fs": Path("/cache/fs"), "data": raw}
    lc = build_launch(cell, images, LaunchContext(tmp_path, tmp_path))
    assert after(lc.argv, "-drive")[1] == f"file={raw},if=none,format=raw,id=drive1,readonly=on"
    assert after(lc.argv, "-device")[1] == "virtio-blk-device,drive=drive1,bus=virtio-mmio-bus.1"
    assert len(lc.setup) == 1  # only the writable one gets an overlay


GUEST = """\
id: b
os: linux
arch: {arch}
images:
  k: {{file: /nowhere/k}}
  d: {{file: /nowhere/d}}
boot: {{kernel: k, bios: none}}
{extra}
milestones:
  - {{name: m, pattern: x}}
"""


@pytest.mark.parametrize("arch, extra, line, message", [
    ("x86_64", "drives:\n  - {image: d, interface: mtd}", 9,
     "drives[0].interface: 'mtd': x86_64 boards have no such drive interface in arches.yaml"),
    ("arm", "drives:\n  - {image: nope, interface: mtd}", 9,
     "drives[0].image: no image named 'nope' in images"),
    ("arm", "drives:\n  - {image: d, interface: mtd, speed: 9}", 9, "drives[0].speed: unknown key"),
    ("arm", "machine: emcraft-sf2 -snapshot", 8, "machine: 'emcraft-sf2 -snapshot': expected a "
     "QEMU machine name"),
    ("riscv64", "cpu: 'rv64,pmp'", 8, "cpu: 'rv64,pmp': expected a QEMU CPU model name"),
])
def test_board_mistakes_are_file_line_key_messages(tmp_path, arch, extra, line, message):
    refused_as(write(tmp_path / "b.yaml", GUEST.format(arch=arch, extra=extra)), line, message)


def test_bios_none_is_a_keyword_not_an_image(tmp_path):
    g = load_guest(write(tmp_path / "b.yaml", GUEST.format(arch="riscv64", extra="")))
    assert g.boot.bios == "none" and g.board
    bad = GUEST.format(arch="riscv64", extra="").replace("bios: none", "bios: opensbi")
    with pytest.raises(ConfigError, match=r"boot\.bios: no image named 'opensbi'"):
        load_guest(write(tmp_path / "b.yaml", bad))


def test_vmms_that_emulate_their_own_pc_skip_board_guests():
    pc = replace(CATALOG["grub-2.06-iso"], machine="isapc")
    cell = make_cell(pc, "bochs", "bios", pc.timeouts, pc.memory_mb)
    assert "names QEMU board parts" in registry.get("bochs").why_not(cell)
    assert registry.get("tcg").why_not(make_cell(pc, "tcg", "bios", pc.timeouts, 64)) is None
    plain = make_cell(CATALOG["grub-2.06-iso"], "bochs", "bios", pc.timeouts, 64)
    assert registry.get("bochs").why_not(plain) is None


def test_hardware_accelerators_skip_foreign_boards_with_their_reason():
    out = subprocess.run([sys.executable, "-m", "harness", "list", "--cells"],
                         capture_output=True, text=True, cwd=ROOT).stdout
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "skip  kvm runs guests of the host's architecture" in rows["xv6-riscv64/kvm/bios"]
    assert rows["xv6-riscv64/kvm/bios"].rstrip().endswith("not riscv64")
    assert rows["uclinux-cortex-m3/kvm/bios"].rstrip().endswith("not arm")
    assert rows["uclinux-cortex-m3/tcg/bios"].split()[1] == "run"


def test_xv6_usertests_console_ends_in_the_known_panic():
    """The console of `usertests` typed at xv6's prompt (recorded with qemu directly):
    the boot milestones are all in it, and the panic is the xv6 family's signature."""
    data = (TRANSCRIPTS / "xv6-usertests.txt").read_bytes()
    for chunk in (512, 7):
        r = replay(CATALOG["xv6-riscv64"], data, chunk=chunk)
        assert r.missing == [] and [f.name for f in r.failures] == ["kernel-panic"]
        assert r.failures[0].text.strip() == "panic: sys_exec kalloc"
    assert b"test manywrites: OK\r\ntest execout: panic: sys_exec kalloc" in data


def test_list_arches_says_binary_machines_drives_and_where_each_runs():
    proc = subprocess.run([sys.executable, "-m", "harness", "list", "--arches"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line[:1].isalpha()}
    arm = rows["arm"]
    assert "qemu-system-arm (qemu-system-arm)" in arm and "emcraft-sf2" in arm
    assert " mtd " in arm and "none (TCG only)" in arm and arm.rstrip().endswith("tcg")
    assert "virtio-mmio" in rows["riscv64"] and "riscv64 hosts" in rows["riscv64"]
    host = probes.host_facts().arch
    assert f"  arm: kvm runs guests of the host's architecture ({host}), not arm" in proc.stdout
    data = json.loads(subprocess.run(
        [sys.executable, "-m", "harness", "list", "--arches", "--json"],
        capture_output=True, text=True, cwd=ROOT).stdout)
    riscv = next(r for r in data if r["arch"] == "riscv64")
    assert riscv["qemu"] == "qemu-system-riscv64" and riscv["guests"] >= 2
    assert "tcg" in riscv["runs_here"] and "not riscv64" in riscv["not_here"]["kvm"]


def test_the_run_page_filters_by_architecture():
    cells = [{"id": f"{g}/tcg/bios", "guest": g, "backend": "tcg", "firmware": "bios",
              "verdict": "pass", "score": 1.0, "duration_s": 1.0, "milestones": []}
             for g in ("xv6-riscv64", "uclinux-cortex-m3")]
    guests = {g: {"os": CATALOG[g].os, "arch": CATALOG[g].arch} for g in CATALOG}
    page = run_page({"run_id": "r", "cells": cells, "guests": guests})
    assert ("<select class=filter id='f-arch'><option value=''>all</option>"
            "<option value='arm'>arm</option><option value='riscv64'>riscv64</option>") in page
    assert "data-guest='xv6-riscv64' data-arch='riscv64'" in page
    assert "r.dataset.arch!==ar" in page


def test_one_machine_key_names_qemu_boards_and_the_other_emulators_machines():
    """`machine:` is QEMU's -machine, or a data/machines.yaml machine: QEMU refuses the
    other emulators' machines it does not have, they refuse QEMU's boards."""
    hello = CATALOG["gxemul-testmips-hello"]
    assert "does not emulate the testmips machine" in registry.get("tcg").why_not(
        make_cell(hello, "tcg", "bios", hello.timeouts, 64))
    assert registry.get("gxemul").why_not(make_cell(hello, "gxemul", "bios", hello.timeouts,
                                                    64)) is None
    malta = CATALOG["linux-malta-mipsel"]  # Malta: a board both emulate
    for backend in ("tcg", "gxemul"):
        assert registry.get(backend).why_not(
            make_cell(malta, backend, "bios", malta.timeouts, 256)) is None, backend
    board = replace(malta, machine="mipssim")  # a QEMU board GXemul does not have
    assert registry.get("tcg").why_not(make_cell(board, "tcg", "bios", board.timeouts,
                                                 256)) is None
    assert "names QEMU board parts" in registry.get("gxemul").why_not(
        make_cell(board, "gxemul", "bios", board.timeouts, 256))
