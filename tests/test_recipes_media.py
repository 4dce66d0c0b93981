"""The image recipes of issue 18 that make media: `iso` (a payload CD from a folder
beside the guest file) and `blank-disk` (an empty qcow2 to install onto), their
checked parameters, and the x86 `drives:` interfaces (virtio, ide) as QEMU 7.2 takes
them. No guest boots here: tests/test_stages_vm.py boots one with all of it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pycdlib
import pytest

from harness.backends.base import LaunchContext
from harness.backends.media import overlay_argv
from harness.backends.qemu import build_launch
from harness.config import load_guest
from harness.images.cache import Cache
from harness.images.isoimage import build_iso
from harness.images.recipes import RecipeError, build
from harness.model import Drive
from harness.plan import make_cell

from .conftest import ROOT, TEST_GUESTS, refused_as, write


def payload_folder(root: Path) -> Path:
    write(root / "run.sh", "#!/bin/sh\necho ran\n").chmod(0o755)
    write(root / "data" / "a long file name with spaces.txt", "spaces\n")
    write(root / "data" / "plain.txt", "plain\n").chmod(0o644)
    (root / "data" / "link").symlink_to("plain.txt")
    return root


def rock_ridge(image: bytes) -> dict[str, tuple[int, bytes | str]]:
    """path -> (mode, content or link target), as a Rock Ridge reader sees the image."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    out: dict[str, tuple[int, bytes | str]] = {}
    try:
        for top, dirs, files in iso.walk(rr_path="/"):
            for name in files:
                path = f"{top.rstrip('/')}/{name}"
                rec = iso.get_record(rr_path=path)
                mode = rec.rock_ridge.get_file_mode()
                if rec.rock_ridge.is_symlink():
                    out[path] = (mode, rec.rock_ridge.symlink_path().decode())
                    continue
                data = io.BytesIO()
                iso.get_file_from_iso_fp(data, rr_path=path)
                out[path] = (mode, data.getvalue())
            for name in dirs:
                path = f"{top.rstrip('/')}/{name}"
                out[path] = (iso.get_record(rr_path=path).rock_ridge.get_file_mode(), "")
        assert iso.pvd.volume_identifier.rstrip() in (b"PAYLOAD", b"ANSWERS")
        out["(joliet)"] = (0, str(iso.has_joliet()))
    finally:
        iso.close()
    return out


def test_an_iso_keeps_names_exec_bits_and_links_and_is_the_same_each_time(tmp_path):
    folder = payload_folder(tmp_path / "payload")
    image = build_iso(folder, "PAYLOAD")
    seen = rock_ridge(image)
    assert seen["/run.sh"] == (0o100555, b"#!/bin/sh\necho ran\n")
    assert seen["/data/plain.txt"] == (0o100444, b"plain\n")
    assert seen["/data/a long file name with spaces.txt"][1] == b"spaces\n"
    assert seen["/data/link"][1] == "plain.txt" and seen["/data"][0] == 0o040555
    assert seen["(joliet)"] == (0, "True")
    # the same bytes in another process, in another time zone, a minute later
    code = ("import sys; from pathlib import Path; from harness.images.isoimage import "
            "build_iso; sys.stdout.buffer.write(build_iso(Path(sys.argv[1]), 'PAYLOAD'))")
    for tz in ("Asia/Tokyo", "America/Los_Angeles"):
        other = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                               cwd=ROOT, env={**os.environ, "TZ": tz}, check=True).stdout
        assert other == image


def test_a_symlink_out_of_the_folder_is_refused_clearly(tmp_path):
    folder = payload_folder(tmp_path / "payload")
    (folder / "data" / "secret").symlink_to("../../outside.txt")
    with pytest.raises(RecipeError) as err:
        build(Cache(tmp_path / "cache"), "iso", {"folder": str(folder)}, {}, True, print)
    assert str(err.value) == (f"data/secret is a symlink to '../../outside.txt', outside the "
                              f"folder {folder}: refused (copy the file in instead)")
    (folder / "data" / "secret").unlink()
    (folder / "data" / "abs").symlink_to("/etc/passwd")
    with pytest.raises(RecipeError, match="data/abs is a symlink to '/etc/passwd', outside"):
        build(Cache(tmp_path / "cache"), "iso", {"folder": str(folder)}, {}, True, print)


def test_the_iso_is_rebuilt_when_a_path_a_mode_or_a_byte_changes(tmp_path):
    folder = payload_folder(tmp_path / "payload")
    cache, said = Cache(tmp_path / "cache"), []
    params = {"folder": str(folder), "label": "ANSWERS"}

    def sha() -> str:
        return build(cache, "iso", params, {}, True, said.append).sha256

    first = sha()
    assert sha() == first and said == ["  building iso"]  # unchanged: from the cache
    assert rock_ridge(cache.blob_path(first).read_bytes())["/run.sh"][1] == b"#!/bin/sh\n" \
        b"echo ran\n"
    digests = [first]
    for change in (lambda: (folder / "data" / "plain.txt").write_text("plain!\n"),
                   lambda: (folder / "data" / "plain.txt").chmod(0o755),
                   lambda: (folder / "run.sh").rename(folder / "go.sh"),
                   lambda: (folder / "empty").mkdir()):
        change()
        digests.append(sha())
    assert len(set(digests)) == 5 and len(said) == 5
    modes = rock_ridge(cache.blob_path(digests[2]).read_bytes())
    assert modes["/data/plain.txt"] == (0o100555, b"plain!\n")


def test_a_blank_disk_is_an_empty_qcow2_of_its_size_and_takes_an_overlay(tmp_path):
    cache, said = Cache(tmp_path / "cache"), []
    made = build(cache, "blank-disk", {"size": 64 << 20}, {}, True, said.append)
    again = build(Cache(tmp_path / "other"), "blank-disk", {"size": 64 << 20}, {}, True,
                  said.append)
    assert made.sha256 == again.sha256  # deterministic: two caches, the same bytes
    disk = cache.blob_path(made.sha256)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 << 20
    overlay = tmp_path / "target.overlay.qcow2"
    subprocess.run(overlay_argv(disk, overlay), check=True)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename-format"] == "qcow2" and info["virtual-size"] == 64 << 20
    assert build(cache, "blank-disk", {"size": 8 << 30}, {}, True, said.append).sha256 \
        != made.sha256


GUEST = """\
id: g
os: linux
arch: x86_64
images:
  kernel: {{deb: {{package: linux-image-amd64, path: "boot/vmlinuz-*"}}}}
  vmlinuz: {{file: /nowhere/vmlinuz}}
  {extra}
boot: {{kernel: kernel}}
milestones:
  - {{name: m, pattern: x}}
"""


@pytest.mark.parametrize("extra, message", [
    ("cd: {build: {recipe: iso, folder: nowhere}}",
     "images.cd.build.folder: 'nowhere': no such folder (relative to the guest file)"),
    ("cd: {build: iso}", "images.cd.build: recipe iso needs folder: write build: "
     "{recipe: iso, folder: ...}"),
    ("cd: {build: {recipe: iso, folder: payload, label: payload}}",
     "images.cd.build.label: 'payload': an ISO 9660 volume id is 1 to 32 of A-Z, 0-9 and _"),
    ("disk: {build: {recipe: blank-disk, size: 8Q}}",
     "images.disk.build.size: expected a size such as 64M, 8G or 512K, got '8Q'"),
    ("disk: {build: {recipe: blank-disk, size: 1000}}",
     "images.disk.build.size: 1000: not a whole number of 512-byte sectors"),
    ("disk: {build: {recipe: blank-disk, size: 17T}}", "images.disk.build.size: '17T': more "
     "than 16T"),
    ("i: {build: {recipe: busybox-initramfs, modules: [isofs]}}",
     "images.i.build: kernel modules need both `kernel:` (the guest's deb: kernel image) and "
     "`modules:` (their names)"),
    ("i: {build: {recipe: busybox-initramfs, kernel: kernel, modules: [isofs, isofs]}}",
     "images.i.build.modules: a module is named twice"),
    ("i: {build: {recipe: busybox-initramfs, kernel: kernel, modules: ['iso fs']}}",
     "images.i.build.modules: 'iso fs': a module name is letters, digits, _ and -"),
    ("i: {build: {recipe: busybox-initramfs, kernel: vmlinuz, modules: [isofs]}}",
     "images.i.build.kernel: 'vmlinuz' is not a deb: image (kernel modules come out of the "
     "package the kernel came from)"),
    ("i: {build: {recipe: busybox-initramfs, kernel: nope, modules: [isofs]}}",
     "images.i: recipe input 'nope' is not another image of this guest"),
])
def test_recipe_parameter_mistakes_are_file_line_key_messages(tmp_path, extra, message):
    (tmp_path / "payload").mkdir()
    refused_as(write(tmp_path / "g.yaml", GUEST.format(extra=extra)), 7, message)


def test_recipe_parameters_are_resolved_at_load_time(tmp_path):
    (tmp_path / "payloads" / "cd").mkdir(parents=True)
    extra = ("cd: {build: {recipe: iso, folder: payloads/cd}}\n"
             "  disk: {build: {recipe: blank-disk, size: 512K}}\n"
             "  i: {build: {recipe: busybox-initramfs, kernel: kernel, "
             "modules: [virtio_blk, nls_iso8859-1]}}")
    g = load_guest(write(tmp_path / "g.yaml", GUEST.format(extra=extra)))
    assert g.images["cd"].params == {"recipe": "iso",
                                     "folder": str((tmp_path / "payloads" / "cd").resolve())}
    assert g.images["disk"].params == {"recipe": "blank-disk", "size": 512 * 1024}
    assert g.images["i"].params["modules"] == ["virtio_blk", "nls_iso8859-1"]
    assert g.images["i"].params["arch"] == "amd64"


def test_virtio_and_ide_drives_as_qemu_takes_them(tmp_path, qemu):
    """The x86 interfaces' arguments, then QEMU 7.2 itself (paused, never booting) shows
    the drives where they were meant to go."""
    g = load_guest(TEST_GUESTS / "test-disk-recipes.yaml")
    g = replace(g, images={**g.images, "disk": g.images["target"], "cd": g.images["payload"]},
                drives=(*g.drives, Drive("disk", "ide"), Drive("cd", "ide", True)))
    cell = make_cell(g, "tcg", "bios", g.timeouts, g.memory_mb)
    disk = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    cd = write(tmp_path / "cd.iso", "")
    cd.write_bytes(build_iso(payload_folder(tmp_path / "p"), "PAYLOAD"))
    cd2 = write(tmp_path / "cd2.iso", "")
    cd2.write_bytes(cd.read_bytes())
    images = {"kernel": tmp_path / "k", "initrd": tmp_path / "i", "target": disk,
              "payload": cd, "disk": disk, "cd": cd2}
    lc = build_launch(cell, images, LaunchContext(tmp_path, tmp_path))
    target, second = tmp_path / "target.overlay.qcow2", tmp_path / "disk.overlay.qcow2"
    drives = [lc.argv[i + 1] for i, a in enumerate(lc.argv) if a == "-drive"]
    assert drives == [
        f"file={target},if=none,format=qcow2,id=drive0,readonly=off",
        f"file={cd},if=none,format=raw,id=drive1,readonly=on",
        f"file={second},if=ide,index=0,media=disk,format=qcow2,readonly=off",
        f"file={cd2},if=ide,index=1,media=cdrom,format=raw,readonly=on"]
    assert [lc.argv[i + 1] for i, a in enumerate(lc.argv) if a == "-device"] == [
        "virtio-blk-pci,drive=drive0", "virtio-blk-pci,drive=drive1"]
    for setup in lc.setup:
        subprocess.run(setup, check=True)
    at = next(i for i, a in enumerate(lc.argv) if a == "-drive")
    argv = [qemu, "-machine", "pc,accel=tcg", "-nodefaults", "-display", "none", "-S",
            "-monitor", "stdio", "-serial", "none", *lc.argv[at:at + 12]]
    assert lc.argv[at + 11] == drives[-1]
    proc = subprocess.run(argv, input="info block\nquit\n", capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    blocks = {m[0]: (m[1], m[2]) for m in re.findall(
        r"^(\S+) \(#block\d+\): (\S+) \(([^)]*)\)", proc.stdout, re.MULTILINE)}
    assert blocks == {"drive0": (str(target), "qcow2"), "drive1": (str(cd), "raw, read-only"),
                      "ide0-hd0": (str(second), "qcow2"), "ide0-cd1": (str(cd2), "raw, read-only")}


def newc(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, content) of every entry of concatenated newc cpio archives, as the
    kernel reads an initramfs: archive after archive, skipping the zero padding."""
    out, at = [], 0
    while at < len(data):
        if data[at:at + 4] == b"\0\0\0\0":
            at += 4
            continue
        assert data[at:at + 6] == b"070701", f"no cpio header at {at}"
        fields = [int(data[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[at + 110:at + 110 + namesize - 1].decode()
        body = at + 110 + namesize + (-(110 + namesize) % 4)
        out.append((name, mode, data[body:body + size]))
        at = body + size + (-size % 4)
    return out


def test_initrd_append_adds_a_folder_after_the_initrd_as_linux_unpacks_it(tmp_path, cache):
    """Debian's preseed flow: the netboot initrd, then /preseed.cfg (and a script) in a
    second archive; the first archive's bytes are untouched."""
    from harness.images.recipes import CpioWriter, Input

    initrd, script = write(tmp_path / "initrd.gz", ""), b"#!/bin/sh\n"
    while len(initrd.read_bytes()) % 4 != 2:  # an initrd whose end needs padding
        script += b"#"
        base = CpioWriter()
        base.file("init", script, 0o755)
        initrd.write_bytes(gzip.compress(base.finish(), mtime=0))
    folder = tmp_path / "preseed"
    write(folder / "preseed.cfg", "d-i debian-installer/locale string en_US\n")
    write(folder / "late" / "gh-late.sh", "#!/bin/sh\necho late\n").chmod(0o755)
    inputs = {"initrd": Input(hashlib.sha256(initrd.read_bytes()).hexdigest(), initrd, {})}
    params = {"recipe": "initrd-append", "initrd": "initrd", "folder": str(folder)}
    built = build(cache, "initrd-append", params, inputs, offline=True, log=lambda _: None)
    data = cache.blob_path(built.sha256).read_bytes()
    assert data.startswith(initrd.read_bytes())
    size = len(initrd.read_bytes())
    assert data[size:size + 2] == b"\0\0" and data[size + 2:size + 4] == b"\x1f\x8b"
    assert newc(gzip.decompress(data[:size]))[0][0] == "init"
    second = gzip.decompress(data[size + 2:])
    entries = [(n, oct(m), c) for n, m, c in newc(second)]
    assert entries == [
        ("late", "0o40755", b""), ("preseed.cfg", "0o100644", folder.joinpath(
            "preseed.cfg").read_bytes()),
        ("late/gh-late.sh", "0o100755", b"#!/bin/sh\necho late\n"), ("TRAILER!!!", "0o0", b"")]
    again = build(cache, "initrd-append", params, inputs, offline=True, log=lambda _: None)
    assert again.sha256 == built.sha256
    write(folder / "preseed.cfg", "d-i debian-installer/locale string de_DE\n")
    changed = build(cache, "initrd-append", params, inputs, offline=True, log=lambda _: None)
    assert changed.sha256 != built.sha256
