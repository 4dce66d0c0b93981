"""VirtualBox through VBoxManage: a cell as a registered, headless VM.

The VM is created in the cell folder, gets the guest's memory, firmware
(BIOS or EFI), its medium (a DVD, an immutable disk whose writes go to a
differencing image VirtualBox discards, or a floppy) and COM1 as a local
socket VirtualBox serves (`--uartmode1 server`). It starts headless; the
console is the harness's small socket reader, on a pty (or on pipes with the
socket transport: its stdout is the console, as for any non-QEMU VMM). Afterwards it is
powered off and unregistered with its files deleted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..model import Cell
from .base import Launch, LaunchContext, boot_media, vm_name

OSTYPE = {"x86_64": "Other_64", "i386": "Other"}
CONTROLLER = {"cdrom": ("IDE", "ide", "dvddrive", "dvd"), "disk": ("SATA", "sata", "hdd", "disk"),
              "floppy": ("FDC", "floppy", "fdd", "floppy")}


def why_not(cell: Cell) -> str | None:
    g = cell.guest
    if g.boot.kind == "kernel" or g.boot.bios:
        return "virtualbox boots media (cdrom, disk, floppy), not a kernel file"
    return None


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    folder = ctx.folder
    name = vm_name(cell, folder)
    # a Unix socket path must stay under ~100 bytes: the temp folder, named after the VM
    sock = Path(tempfile.gettempdir()) / f"{name}.com1"
    kind, media = boot_media(cell, images)
    ctl, bus, dev, boot = CONTROLLER[kind]
    vbm = "VBoxManage"
    attach = [vbm, "storageattach", name, "--storagectl", ctl, "--port", "0", "--device", "0",
              "--type", dev, "--medium", str(media)]
    if kind == "disk":
        attach += ["--mtype", "immutable"]
    setup = [
        [vbm, "createvm", "--name", name, "--ostype", OSTYPE[cell.guest.arch],
         "--basefolder", str(folder), "--register"],
        [vbm, "modifyvm", name, "--memory", str(cell.memory_mb), "--cpus", str(cell.guest.vcpus),
         "--firmware", "efi" if cell.firmware == "uefi" else "bios", "--boot1", boot,
         "--boot2", "none", "--nic1", "none", "--audio", "none",
         "--uart1", "0x3F8", "4", "--uartmode1", "server", str(sock)],
        [vbm, "storagectl", name, "--name", ctl, "--add", bus],
        attach,
        [vbm, "startvm", name, "--type", "headless"],
    ]
    argv = [sys.executable, "-m", "harness.backends.sockconsole", str(sock)]
    teardown = [[vbm, "controlvm", name, "poweroff"],
                [vbm, "unregistervm", name, "--delete"], ["rm", "-f", str(sock)]]
    return Launch(argv, setup=setup, teardown=teardown, name=name)
