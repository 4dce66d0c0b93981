"""The guest catalog: every entry loads, says what it is, and the runnable ones boot.

The catalog-wide checks are pure (no VM); `test_every_local_guest_passes_under_tcg`
boots every guest tagged `local` (images from the Debian archive, the
harness's recipes, or ../shared/images) through the command line, as CI does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import probe as probes
from harness.backends.base import LaunchContext
from harness.backends.qemu import build_launch
from harness.catalog import cell_rows, guest_rows
from harness.config import ConfigError, load_guest, load_guests, load_matrix
from harness.images.cache import Cache
from harness.images.store import unobtained
from harness.plan import expand, make_cell

from .conftest import GUESTS, ROOT, write

CTX = LaunchContext(Path("/run"), Path("/tmp"))

CATALOG = load_guests(GUESTS)
SHARED = ROOT.parent / "shared" / "images"

# The target list of the catalog issue: each needs at least one guest of this os/arch.
TARGETS = [
    ("netbsd", "x86_64"), ("netbsd", "i386"), ("linux", "x86_64"), ("windows", "i386"),
    ("windows", "x86_64"), ("dragonfly", "x86_64"), ("dos", "i386"), ("linux", "i386"),
    ("freebsd", "x86_64"), ("freebsd", "i386"), ("haiku", "x86_64"), ("kolibrios", "i386"),
    ("minix", "i386"), ("openbsd", "x86_64"), ("openbsd", "i386"), ("plan9", "x86_64"),
    ("toaruos", "x86_64"), ("darwin", "x86_64"), ("reactos", "i386"), ("qnx", "x86_64"),
    ("illumos", "x86_64"), ("aros", "i386"), ("xen", "x86_64"),
]
DISTROS = ["debian", "ubuntu", "arch", "alpine", "fedora", "android"]


def harness(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, **kw)


def test_the_catalog_covers_the_target_list():
    have = {(g.os, g.arch) for g in CATALOG.values()}
    assert [t for t in TARGETS if t not in have] == []
    names = " ".join(g.id for g in CATALOG.values())
    assert [d for d in DISTROS if d not in names] == []


@pytest.mark.parametrize("gid", sorted(CATALOG))
def test_each_entry_says_what_it_is(gid):
    g = CATALOG[gid]
    assert g.version and g.name != g.id and g.notes.strip(), "version, name and notes"
    assert g.required, "at least one required milestone"
    for spec in g.images.values():
        if spec.kind == "url":
            assert spec.params["url"].startswith("https://") or spec.params["insecure"]
            pinned = spec.sha256 or spec.params["sha512"] or spec.params["checksums"]
            assert pinned or "UNPINNED" in g.notes, (
                f"{spec.name}: a catalog download is verified by a digest or a sums file, "
                f"or its notes say why not")
        if spec.kind == "file":
            assert spec.params["obtain"], f"{spec.name}: a file source says how to get it"
    if "local" in g.tags:
        assert g.verified, "a guest that boots in CI has checked patterns"


def test_files_nobody_may_redistribute_skip_with_instructions():
    closed = [g for g in CATALOG.values() if any(s.kind == "file" for s in g.images.values())]
    assert {g.os for g in closed} >= {"windows", "qnx", "darwin"}
    for g in closed:
        why = unobtained(g)
        assert why and "not present" in why and len(why) > 60, g.id


def test_a_file_source_that_exists_is_not_skipped(tmp_path):
    iso = write(tmp_path / "local" / "windows-7-sp1-i386.iso", "x")
    g = write(tmp_path / "w.yaml", (GUESTS / "windows-7-sp1-i386.yaml").read_text()
              .replace("id: windows-7-sp1-i386", "id: w"))
    guest = load_guest(g)
    assert iso.exists() and unobtained(guest) is None


def test_list_shows_the_catalog_with_status_and_where_each_runs():
    proc = harness("list")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    shown = {"unchecked": "UNCHECKED", "layout": "layout", "transcript": "transcript"}
    assert shown[CATALOG["freebsd-14.3-amd64"].level] in lines["freebsd-14.3-amd64"]
    assert "download.freebsd.org" in lines["freebsd-14.3-amd64"]
    assert "sums file" in lines["freebsd-14.3-amd64"]
    assert lines["linux-busybox-aarch64"].rstrip().endswith("tcg")
    assert re.search(r"boots here\s+tcg$", lines["xen-4.17-dom0"])
    assert "nothing (until you supply its image" in lines["windows-10-22h2-x86_64"]
    assert re.search(r"\d+ guests, \d+ run here", proc.stdout)


def test_list_json_and_markdown():
    rows = json.loads(harness("list", "--json", "--only", "gnumach*").stdout)
    assert [r["id"] for r in rows] == ["gnumach-1.8-i386"]
    r = rows[0]
    assert r["os"] == "hurd" and r["verified"] is True and r["runs_on"] == ["tcg"]
    assert r["level"] == "boots-here" and isinstance(r["evidence"], list)
    assert r["source"] == "Debian archive" and r["verify"] == "apt (signed)"
    assert {c["id"] for c in r["cells"]} >= {"gnumach-1.8-i386/tcg/bios"}
    md = harness("list", "--markdown", "--tag", "nonfree").stdout.splitlines()
    assert md[0].startswith("| guest | OS |") and len(md) >= 5
    levels = ("**unchecked**", "boots here", "transcript", "layout")
    assert all(any(x in line for x in levels) for line in md[2:])


def test_tag_selects_guests_and_an_unknown_tag_is_a_usage_error():
    proc = harness("list", "--cells", "--tag", "installer", "--backend", "tcg")
    ids = {line.split()[0].split("/")[0] for line in proc.stdout.splitlines()[:-2] if line}
    assert ids == {g.id for g in CATALOG.values() if "installer" in g.tags}
    proc = harness("list", "--tag", "no-such-tag")
    assert proc.returncode == 2 and "no guest has the tag no-such-tag" in proc.stderr


def test_list_never_boots_and_explains_skips(tmp_path):
    matrix = load_matrix(ROOT / "matrix.yaml", CATALOG)
    cells = expand(matrix, CATALOG, only=["windows-7*"])
    rows = cell_rows(cells, probes.host_facts(), Cache(tmp_path), 0)
    assert rows and not any(r.runs for r in rows)
    (g,) = guest_rows([CATALOG["windows-7-sp1-i386"]], rows)
    assert g.runs_on == [] and "until you supply its image" in (g.skipped or "")
    assert all("not present" in r.note for r in rows if r.backend == "tcg")


def test_multiboot_modules_bios_image_and_per_firmware_kernels():
    xen = CATALOG["xen-4.17-dom0"]
    paths = {n: Path(f"/c/{n},x") for n in xen.images}
    (cell,) = expand(load_matrix(ROOT / "matrix.yaml", CATALOG), CATALOG,
                     only=["xen-4.17-dom0/tcg/bios"])
    a = build_launch(cell, paths, CTX).argv
    initrd = a[a.index("-initrd") + 1]
    assert initrd.startswith("/c/dom0,,x console=hvc0 ") and initrd.endswith(",/c/initrd,,x")
    assert a[a.index("-append") + 1].startswith("console=com1 com1=115200,8n1")
    assert a[a.index("-cpu") + 1] == "qemu64"
    sbi = CATALOG["opensbi-uboot-riscv64"]
    paths = {n: Path(f"/c/{n}") for n in sbi.images}
    a = build_launch(make_cell(sbi, "tcg", "bios", sbi.timeouts, 256), paths, CTX).argv
    assert a[0] == "qemu-system-riscv64" and a[a.index("-bios") + 1] == "/c/opensbi"
    assert a[a.index("-kernel") + 1] == "/c/uboot"
    mt = CATALOG["memtest86plus"]
    paths = {n: Path(f"/c/{n}") for n in mt.images}
    for fw, kernel in (("bios", "/c/bin"), ("uefi", "/c/efi")):
        (cell,) = expand(load_matrix(ROOT / "matrix.yaml", CATALOG), CATALOG,
                         only=[f"memtest86plus/tcg/{fw}"])
        a = build_launch(cell, paths, CTX).argv
        assert a[a.index("-kernel") + 1] == kernel and "std" in a


def test_boot_section_errors(tmp_path):
    base = (GUESTS / "xen-4.17-dom0.yaml").read_text()
    bad = base.replace("    - {image: initrd}", "    - {image: initrd}\n    - {image: nope}")
    bad = bad.replace("  kernel: xen\n", "  kernel: xen\n  initrd: initrd\n")
    with pytest.raises(ConfigError) as err:
        load_guest(write(tmp_path / "xen-4.17-dom0.yaml", bad))
    text = str(err.value)
    assert "boot.modules[2].image: no image named 'nope'" in text
    assert "give an initrd or multiboot modules, not both" in text
    mt = (GUESTS / "memtest86plus.yaml").read_text().replace("uefi: efi}", "efi: efi}")
    with pytest.raises(ConfigError, match=r"boot.kernel.efi: unknown key"):
        load_guest(write(tmp_path / "memtest86plus.yaml", mt))


def test_haxm_runs_one_vcpu_through_the_matrix_quirk():
    matrix = load_matrix(ROOT / "matrix.yaml", CATALOG)
    (cell,) = expand(matrix, CATALOG, only=["alpine-3.22-x86_64/haxm/bios"])
    assert "one-vcpu" in cell.quirk_names and cell.guest.vcpus > 1
    paths = {n: Path(f"/c/{n}") for n in cell.guest.images}
    a = build_launch(cell, paths, CTX).argv
    assert a[a.index("-smp") + 1] == "1"
    (tcg,) = expand(matrix, CATALOG, only=["alpine-3.22-x86_64/tcg/bios"])
    a = build_launch(tcg, paths, CTX).argv
    assert a[a.index("-smp") + 1] == str(tcg.guest.vcpus)


@pytest.mark.vm
def test_every_local_guest_passes_under_tcg(tmp_path, cache):
    """Under tcg, or under SIMH or GXemul for the machines QEMU does not emulate: each
    local guest passes on one of them (or fails as its expect: says: xv6's usertests
    finds its known panic), and every other cell is a skip."""
    if SHARED.is_dir():
        assert harness("cache", "import", str(SHARED)).returncode == 0
    proc = harness("run", "--tag", "local", "--backend", "tcg", "--backend", "simh",
                   "--backend", "gxemul", "--jobs", "2", "--out", str(tmp_path), timeout=1500)
    run = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink())
    cells = json.loads((run / "results.json").read_text())["cells"]
    local = {g.id for g in CATALOG.values() if "local" in g.tags}
    known_bad = {g.id for g in CATALOG.values() if "local" in g.tags
                 and any(not e.tests for e in g.expect)}
    assert known_bad == {"xv6-riscv64-usertests"}
    assert {c["guest"] for c in cells if c["verdict"] in ("pass", "xfail")} == local
    bad = {c["id"]: (c["verdict"], c["reason"]) for c in cells
           if c["verdict"] not in ("skip", "xfail" if c["guest"] in known_bad else "pass")}
    assert bad == {}, proc.stdout[-3000:]
    assert proc.returncode == 0


def test_every_entry_from_outside_carries_its_evidence():
    """#16: a guest this project does not boot says where each of its facts comes from."""
    for g in CATALOG.values():
        if "local" in g.tags:
            continue
        assert g.evidence, f"{g.id}: no evidence: list for a guest not booted here"
        assert g.level != "boots-here", g.id


def test_a_guest_built_only_by_recipes_says_so():
    guests = load_guests(GUESTS)
    (row,) = guest_rows([guests["gxemul-testmips-hello"]], [])
    assert (row.source, row.verify) == ("built here", "its inputs' digests")
    (deb,) = guest_rows([guests["linux-busybox-stages-x86_64"]], [])
    assert (deb.source, deb.verify) == ("Debian archive", "apt (signed)")  # recipes add none
