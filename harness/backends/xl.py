"""Xen through xl(1): a cell as an xl domain configuration.

Media guests run as HVM domains (SeaBIOS or OVMF from the Xen tools) with
the emulated serial port on a pty (`serial = "pty"`); kernel guests run as
PVH domains, whose console is Xen's PV console (Linux: `console=hvc0`);
their quirks' `append` words join the kernel command line.
The domain is created paused, the console attached, then unpaused, so no
early output is lost; `xl destroy` ends it whatever happened.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..model import Cell
from .base import Launch, LaunchContext, boot_media, vm_name

BOOT_ORDER = {"cdrom": "d", "disk": "c", "floppy": "a"}


def why_not(cell: Cell) -> str | None:
    g = cell.guest
    if g.boot.bios:
        return "xen HVM domains run the firmware of the Xen tools only"
    if g.boot.kind == "kernel" and cell.firmware != "bios":
        return "xen boots kernels directly as PVH domains, without UEFI"
    if g.boot.kind == "kernel" and g.boot.cdrom:
        return "xen boots kernels as PVH domains, which have no CD drive to attach"
    if g.boot.kind == "kernel" and g.boot.modules:
        return "xen does not take multiboot modules for a guest kernel"
    return None


def _q(value: str) -> str:
    return json.dumps(value)  # xl's strings are double-quoted with C escapes


def config(cell: Cell, images: dict[str, Path], name: str) -> str:
    g = cell.guest
    lines = [f"name = {_q(name)}", f"memory = {cell.memory_mb}", f"vcpus = {g.vcpus}",
             'on_poweroff = "destroy"', 'on_reboot = "destroy"', 'on_crash = "preserve"']
    if g.boot.kind == "kernel":
        kernel = g.boot.kernel_for(cell.firmware)
        assert kernel is not None
        lines += ['type = "pvh"', f"kernel = {_q(str(images[kernel]))}"]
        if g.boot.initrd:
            lines.append(f"ramdisk = {_q(str(images[g.boot.initrd]))}")
        cmdline = " ".join(x for x in (g.boot.cmdline, *(a for q in cell.quirks
                                                          for a in q.append)) if x)
        if cmdline:
            lines.append(f"cmdline = {_q(cmdline)}")
        return "\n".join(lines) + "\n"
    kind, media = boot_media(cell, images)
    lines += ['type = "hvm"', f"bios = {_q('ovmf' if cell.firmware == 'uefi' else 'seabios')}",
              'serial = "pty"', "vnc = 0", "sdl = 0", f"boot = {_q(BOOT_ORDER[kind])}"]
    if kind == "cdrom":
        disk = f"format=raw, vdev=hdc, access=ro, devtype=cdrom, target={media}"
    elif kind == "disk":  # qdisk with a snapshot: the image is never written
        disk = f"format=raw, vdev=hda, access=rw, backendtype=qdisk, target={media}"
        lines.append("device_model_args_hvm = [ \"-snapshot\" ]")
    else:
        disk = f"format=raw, vdev=fda, access=ro, target={media}"
    lines.append(f"disk = [ {_q(disk)} ]")
    return "\n".join(lines) + "\n"


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    folder = ctx.folder
    name = vm_name(cell, folder)
    cfg = folder / "xl.cfg"
    console = "pv" if cell.guest.boot.kind == "kernel" else "serial"
    # attach first, unpause a moment later: the console sees the first byte
    argv = ["sh", "-c", 'name="$1"; (sleep 1; xl unpause "$name") & exec xl console -t "$2" '
            '"$name"', "xl-console", name, console]
    return Launch(argv, {cfg: config(cell, images, name)},
                     setup=[["xl", "create", "-p", str(cfg)]],
                     teardown=[["xl", "destroy", name]], name=name)
