"""FreeBSD bhyve(8): a cell as one bhyve command line with UEFI firmware.

bhyve boots non-FreeBSD guests through the edk2-bhyve UEFI firmware
(`-l bootrom,CODE,VARS`, the variables a per-cell copy); bhyveload(8) would
boot FreeBSD kernels only, so BIOS cells are refused. Devices: the
hostbridge and LPC bridge, an AHCI CD-ROM or a virtio-blk disk, and COM1 on
bhyve's stdio, which is the harness's pty. `-H -A -P` (yield on HLT, ACPI
tables, exit on PAUSE) are what vm-bhyve and the handbook use. A VM's
kernel state outlives the process, so `bhyvectl --destroy` runs after it
(and before, in case a crashed run left one of the same name).
"""

from __future__ import annotations

from pathlib import Path

from ..model import Cell
from .base import Launch, LaunchContext, LaunchError, boot_media, vm_name

# edk2-bhyve's files (FreeBSD ports sysutils/edk2, flavour bhyve)
FIRMWARE = [(Path("/usr/local/share/uefi-firmware/BHYVE_UEFI_CODE.fd"),
             Path("/usr/local/share/uefi-firmware/BHYVE_UEFI_VARS.fd"))]


def why_not(cell: Cell) -> str | None:
    g = cell.guest
    if cell.firmware != "uefi":
        return "bhyve boots guests with UEFI firmware here (bhyveload runs FreeBSD kernels only)"
    if g.boot.kind in ("kernel", "floppy") or g.boot.bios:
        return f"bhyve boots cdrom and disk images, not a {g.boot.kind}"
    return None


def find_firmware() -> tuple[Path, Path]:
    for code, vars_ in FIRMWARE:
        if code.is_file() and vars_.is_file():
            return code, vars_
    raise LaunchError(f"bhyve UEFI firmware not found ({FIRMWARE[0][0]}; FreeBSD package "
                      "edk2-bhyve)")


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    folder = ctx.folder
    name = vm_name(cell, folder)
    code, template = find_firmware()
    vars_file = ctx.vars_file
    kind, media = boot_media(cell, images)
    setup: list[list[str]] = []
    if kind == "cdrom":
        device = f"3,ahci-cd,{media},ro"
    else:  # bhyve writes raw disks in place: it gets a copy of its own
        disk = folder / "disk.img"
        setup.append(["cp", str(media), str(disk)])
        device = f"3,virtio-blk,{disk}"
    argv = ["bhyve", "-c", str(cell.guest.vcpus), "-m", f"{cell.memory_mb}M", "-H", "-A", "-P",
            "-s", "0,hostbridge", "-s", "31,lpc", "-s", device,
            "-l", "com1,stdio", "-l", f"bootrom,{code},{vars_file}", name]
    destroy = ["bhyvectl", "--destroy", f"--vm={name}"]
    return Launch(argv, setup=setup, teardown=[destroy], firmware_files=(code, template),
                     vars_template=template, vars_file=vars_file, name=name)
