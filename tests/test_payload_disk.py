"""Payload results left on a writable disk (`disk:`), without a VM: the step is typed
without base64, its file is taken from the tar archive at the start of the drive's
qcow2 overlay once the VM is off, and whatever is wrong there is the cell's `error`."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from harness.config import ConfigError, load_guest
from harness.model import PayloadStep
from harness.payload.disk import DiskResultsError, read_member
from harness.payload.framing import Framed, typed
from harness.payload.outcome import PayloadOutcome, conclude_deferred
from harness.payload.step import StepEnd

from .conftest import write

TAP = b"1..2\nok 1 - first\nnot ok 2 - second\n# it said why\n"


def disk_with(tmp_path: Path, files: dict[str, bytes], size: int = 8 << 20) -> Path:
    """A qcow2 disk onto whose raw device a guest wrote a tar archive, as `tar cf /dev/vdb`
    does: the archive from byte 0, zeros after it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = tmp_path / "disk.raw"
    raw.write_bytes(buf.getvalue().ljust(size, b"\0"))
    disk = tmp_path / "results.overlay.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(disk)],
                   check=True)
    raw.unlink()
    return disk


def test_a_member_of_the_archive_on_the_disk_is_read_back(tmp_path):
    overlay = disk_with(tmp_path, {"results/tap.txt": TAP, "other": b"x"})
    assert read_member(overlay, "results/tap.txt", tmp_path) == TAP
    assert read_member(overlay, "/results/tap.txt", tmp_path) == TAP  # as the guest named it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("results-")) == []


def test_a_missing_member_names_what_is_there(tmp_path):
    message = "no tap.txt in the archive on the disk (it holds: a.txt, b/c.txt)"
    with pytest.raises(DiskResultsError, match=f"^{re.escape(message)}$"):
        read_member(disk_with(tmp_path, {"a.txt": b"x", "b/c.txt": b"y"}), "tap.txt", tmp_path)


def test_a_disk_the_guest_never_wrote_says_so(tmp_path):
    blank = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "4M"], check=True)
    with pytest.raises(DiskResultsError, match=re.escape(
            "no archive on the disk: its start is blank (the step wrote none: `tar cf /dev/…` "
            "in the guest)")):
        read_member(blank, "tap.txt", tmp_path)
    (tmp_path / "junk.raw").write_bytes(b"not a tar archive".ljust(4096, b"\1"))
    with pytest.raises(DiskResultsError, match=r"^no tar archive at the start of the disk"):
        read_member(tmp_path / "junk.raw", "tap.txt", tmp_path)
    with pytest.raises(DiskResultsError, match="the disk is gone"):
        read_member(tmp_path / "nothing.qcow2", "tap.txt", tmp_path)


def test_the_step_is_typed_without_base64_and_concluded_from_the_disk(tmp_path):
    step = PayloadStep(name="t", run="sh t.sh > /r/tap.txt; tar cf /dev/vdb -C /r tap.txt",
                       results="tap", file="tap.txt", disk="results")
    assert "base64" not in typed(step, "abc") and "@@GH:%s:F@@" not in typed(step, "abc")
    overlay = disk_with(tmp_path, {"tap.txt": TAP})
    outcome = PayloadOutcome(deferred=[(step, StepEnd("done", 1.0, "", Framed("", 0)))])
    conclude_deferred(outcome, lambda disk, member: read_member(
        {"results": overlay}.get(disk), member, tmp_path))
    assert outcome.end == "complete" and outcome.deferred == []
    assert [(c.name, c.status) for c in outcome.cases] == [("first", "passed"),
                                                           ("second", "failed")]
    missing = PayloadOutcome(deferred=[(step, StepEnd("done", 1.0, "", Framed("", 0)))])
    conclude_deferred(missing, lambda disk, member: read_member(None, member, tmp_path))
    assert missing.end == "error"
    assert missing.detail == ("payload step 't': file tap.txt: on disk results: the disk is "
                              "gone (no overlay of it in the cell's folder)")


GUEST = textwrap.dedent("""\
    id: g
    os: linux
    arch: x86_64
    images:
      kernel: {file: vmlinuz}
      cd: {file: cd.iso}
      out: {file: out.img}
    boot: {kernel: kernel}
    drives:
      - {image: cd, interface: virtio, readonly: true}
      - {image: out, interface: virtio}
    milestones:
      - {name: shell, pattern: '# '}
    payload:
      - {name: s, run: "true", results: tap, DISK}
    """)


@pytest.mark.parametrize(("disk", "message"), [
    ("disk: cd, file: t.txt", "15: payload[0].disk: 'cd': the results disk is a writable "
     "drive of the guest (`drives:`: out)"),
    ("disk: out", "15: payload[0].disk: names the disk a step's `file:` is on (the member of "
     "the tar archive the step writes there)"),
])
def test_a_results_disk_must_be_a_writable_drive_and_name_its_file(tmp_path, disk, message):
    path = write(tmp_path / "g.yaml", GUEST.replace("DISK", disk))
    with pytest.raises(ConfigError) as err:
        load_guest(path)
    assert [str(i).removeprefix(f"{path}:") for i in err.value.issues] == [message]
    good = write(tmp_path / "g.yaml", GUEST.replace("DISK", "disk: out, file: t.txt"))
    assert load_guest(good).payload[0].disk == "out"
