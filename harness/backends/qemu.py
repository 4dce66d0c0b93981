"""QEMU, for every accelerator: the backend protocol (see `base`) for QEMU.

Pure: no process is started here. The argv is a list (never a shell
string); what varies by backend, architecture and quirk comes from the
knowledge tables and the cell's resolved quirks, so this module only
assembles. A disk or floppy the guest writes (its boot medium or one of its
`drives:`) gets a qcow2 overlay in the cell folder, made by a setup command
(`qemu-img create -b`), so the cached image is never written and repro.sh
makes the same overlay.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .. import knowledge
from ..model import NO_BIOS, BackendInfo, Cell
from . import addresses
from .base import Launch, LaunchContext, LaunchError
from .media import WRITABLE, image_format, overlay_argv, overlay_path
from .probe import (
    AVAILABLE,
    MISSING,
    HostFacts,
    HostIO,
    Probe,
    foreign_arch,
    host_binary,
    host_checks,
    qemu_info,
    version_tuple,
)

CONSOLE_CHARDEV = "console"


def why_not(cell: Cell) -> str | None:
    """QEMU runs every guest file's boot; a UEFI cell needs this arch's firmware, a
    network boot a boot file for the cell's firmware and a card that boots; a guest
    naming another emulator's machine (data/machines.yaml) runs where QEMU emulates
    that one; any other `machine:` is a QEMU board."""
    boot = cell.guest.boot
    if boot.kind == "firmware":
        return "QEMU boots no firmware-only guest (boot: {bios: …} alone)"
    qemu_machine = cell.arch_info.machine.get(cell.firmware) if cell.arch_info else None
    others = {m.name for m in knowledge.machines().values() if m.arch == cell.guest.arch}
    if cell.guest.machine in others and cell.guest.machine != qemu_machine:
        return (f"QEMU does not emulate the {cell.guest.machine} machine "
                f"(its {cell.guest.arch} machine is {qemu_machine or 'none'})")
    if boot.kind == "network":
        if cell.firmware not in boot.bootfiles:
            return f"the guest names no network boot file for {cell.firmware}"
        if cell.arch_info is not None and not cell.arch_info.nic:
            return f"no network card that boots is known for {cell.guest.arch} (arches.yaml)"
    if cell.firmware != "uefi":
        return None
    try:
        find_uefi(cell.guest.arch)
    except LaunchError as exc:
        return str(exc)
    return None


def probe(info: BackendInfo, host: HostFacts, io: HostIO | None = None) -> Probe:
    """QEMU for the host's architecture, its version, the accelerator compiled in, then
    the host's checks (backends.yaml `checks`)."""
    name = info.name
    binary = host_binary(host)
    if binary is None:
        return Probe(name, MISSING, f"no QEMU target for host architecture {host.arch}",
                     info.hardware)
    q = qemu_info(binary, io)
    if q.error:
        pkg = knowledge.arches()[host.arch].package
        return Probe(name, MISSING, f"{q.error} (Debian package {pkg})", info.hardware, binary)
    if (info.qemu_before and q.version
            and version_tuple(q.version) >= version_tuple(info.qemu_before)):
        return Probe(name, MISSING, f"QEMU {info.qemu_before} removed the {info.accel} "
                     f"accelerator; this QEMU is {q.version}", info.hardware, q.path, q.version)
    if info.accel not in q.accels:
        return Probe(name, MISSING, f"accelerator {info.accel!r} is not compiled into {binary} "
                     f"{q.version} (it has: {', '.join(sorted(q.accels)) or 'none'})",
                     info.hardware, q.path, q.version)
    found = host_checks(info, host, io)
    if found.status:
        return Probe(name, found.status, found.reason + found.suffix(), info.hardware, q.path,
                     q.version)
    reason = ("static checks passed; whether it runs guests is the canary's to say"
              if info.hardware else "software emulation needs no hardware")
    return Probe(name, AVAILABLE, reason + found.suffix(), info.hardware, q.path, q.version)


def runs_arch(info: BackendInfo, guest_arch: str, host: HostFacts) -> str | None:
    why = foreign_arch(info, guest_arch, host)
    if why:
        return why
    arch = knowledge.arches()[guest_arch]
    if not arch.qemu:
        return f"QEMU emulates no {guest_arch} machine (arches.yaml names no binary)"
    q = qemu_info(arch.qemu)
    if q.error:
        return f"{q.error} (Debian package {arch.package})"
    if info.accel not in q.accels:
        return f"accelerator {info.accel!r} is not compiled into {arch.qemu}"
    return None


def facts(info: BackendInfo, launch: Launch) -> dict[str, Any]:
    """results.json's `vmm` entry: the binary, its version, the accelerator."""
    return {"name": "qemu", "binary": shutil.which(launch.argv[0]) or launch.argv[0],
            "version": qemu_info(launch.argv[0]).version, "accelerator": info.accel}


def _opts(name: str, opts: dict[str, str]) -> str:
    return ",".join([name, *(f"{k}={v}" for k, v in opts.items())])


def find_uefi(arch: str) -> tuple[Path, Path]:
    """The first (code, vars template) pair of this architecture that exists."""
    info = knowledge.arches()[arch]
    uefi = info.firmware.get("uefi")
    if not uefi:
        raise LaunchError(f"no UEFI firmware is known for {arch} guests")
    for code, vars_ in uefi.get("pairs", []):
        if Path(code).is_file() and Path(vars_).is_file():
            return Path(code), Path(vars_)
    raise LaunchError(f"UEFI firmware for {arch} not found (Debian package {uefi.get('package')})")


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext,
                 binary: str | None = None) -> Launch:
    """The QEMU launch that boots `cell` with its resolved `images`."""
    guest = cell.guest
    arch, backend, quirks = cell.arch_info, cell.backend_info, cell.quirks
    assert arch is not None and backend is not None, "cells come from plan.make_cell"

    machine = (guest.machine or arch.machine.get(cell.firmware)
               or arch.machine.get("bios", "pc"))
    machine_opts: dict[str, str] = {}
    accel_opts = dict(backend.accel_opts)
    cpu = backend.cpu or guest.cpu or arch.cpu
    cpu_flags: list[str] = []
    append: list[str] = []
    extra: list[str] = []
    vcpus = guest.vcpus
    for q in quirks:
        vcpus = q.vcpus or vcpus
        machine = q.machine or machine
        machine_opts.update(q.machine_opts)
        accel_opts.update(q.accel_opts)
        cpu = q.cpu or cpu
        cpu_flags.extend(q.cpu_flags)
        append.extend(q.append)
        extra.extend(q.qemu_args)
    if cpu_flags and not cpu:
        cpu = arch.cpu_base
    if vcpus > 1:
        accel_opts = {**backend.smp_accel_opts, **accel_opts}

    argv = [
        binary or arch.qemu,
        "-name", f"guest={guest.id},debug-threads=on",
        "-machine", _opts(machine, machine_opts),
        "-accel", _opts(backend.accel, accel_opts),
    ]
    if cpu:
        argv += ["-cpu", ",".join([cpu, *cpu_flags])]
    argv += [
        "-m", str(cell.memory_mb),
        "-smp", str(vcpus),
        "-nodefaults", "-no-user-config",
        "-display", "none",
        *(["-vga", "std"] if guest.uses_screen else []),
        "-chardev", console_chardev(ctx.console),
        "-serial", f"chardev:{CONSOLE_CHARDEV}",
    ]
    monitor = None
    if ctx.sockdir is not None:  # QMP: a unix socket, or TCP on hosts without them
        address = addresses.local(ctx.sockdir / "qmp.sock")
        monitor = addresses.unix_path(address) or address
        argv += ["-qmp", f"{address},server=on,wait=off"]
    argv.append("-no-reboot")

    vars_template = vars_file = None
    firmware_files: tuple[Path, ...] = ()
    if cell.firmware == "uefi":
        code, vars_template = find_uefi(guest.arch)
        vars_file = ctx.vars_file
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
        ]
        firmware_files = (code, vars_template)

    media, setup, done_before = _media(cell, images, ctx)
    trees: dict[Path, Path] = {}
    if guest.boot.kind == "network":  # QEMU's own DHCP and TFTP serve the tree
        assert guest.boot.image is not None
        trees[media[guest.boot.image]] = images[guest.boot.image]
    argv += _boot_args(cell, media, append)
    argv += _drive_args(cell, media)
    argv += extra
    if ctx.gdb_port is not None:  # paused at the first instruction, the stub listening
        argv += ["-S", "-gdb", f"tcp:127.0.0.1:{ctx.gdb_port}"]
    terminal = None
    if ctx.console is not None:  # repro.sh keeps the console on its terminal
        at = argv.index(console_chardev(ctx.console))
        terminal = [*argv[:at], console_chardev(None), *argv[at + 1:]]
    return Launch(argv, setup=setup, done_before=done_before, firmware_files=firmware_files,
                  vars_template=vars_template, vars_file=vars_file, monitor=monitor,
                  media=media, console=ctx.console, terminal_argv=terminal, trees=trees)


def console_chardev(address: str | None) -> str:
    """The serial console's -chardev: stdio (the pty), or a socket server at `address`
    (`unix:PATH` or `tcp:HOST:PORT`). `wait=on`: QEMU starts the guest only once the
    harness is connected, so no early byte is dropped (an unconnected socket drops)."""
    if address is None:
        return f"stdio,id={CONSOLE_CHARDEV},signal=off"
    kind, _, rest = address.partition(":")
    if kind == "unix":
        where = f"path={rest}"
    else:
        host, _, port = rest.rpartition(":")
        where = f"host={host},port={port}"
    return f"socket,id={CONSOLE_CHARDEV},{where},server=on,wait=on"


def _media(cell: Cell, images: dict[str, Path], ctx: LaunchContext
           ) -> tuple[dict[str, Path], list[list[str]], list[list[str]]]:
    """Paths for the command line: an overlay (and the command that makes it) for a
    writable boot medium, the rest as they are. A later stage (`ctx.fresh` false) boots
    on the overlays an earlier one wrote."""
    boot = cell.guest.boot
    if boot.kind == "network" and boot.image:  # the tree's tar, unpacked here (trees)
        return {**images, boot.image: ctx.folder / "tftp"}, [], []
    writable = [d.image for d in cell.guest.drives if not d.readonly]
    if boot.kind in WRITABLE and boot.image:
        writable.insert(0, boot.image)
    media, setup, done_before = dict(images), [], []
    for name in dict.fromkeys(writable):
        overlay = overlay_path(ctx.state_dir, name)
        media[name] = overlay
        fresh = ctx.fresh or not overlay.exists()
        (setup if fresh else done_before).append(overlay_argv(images[name], overlay))
    return media, setup, done_before


def _drive_args(cell: Cell, media: dict[str, Path]) -> list[str]:
    """The guest's `drives:`, each through its interface's template in arches.yaml;
    a writable one is its overlay (qcow2), a read-only one the image as it is."""
    assert cell.arch_info is not None
    argv: list[str] = []
    boot = cell.guest.boot
    # the harness's own media on the IDE bus (`_boot_args`): a boot disk at index 0, a CD at
    # 2; drives take the indices left, so a disk keeps its place (wd0, then wd1) whether a
    # stage installs onto it from a CD or boots it
    taken = {"ide": {0} if boot.kind == "disk" else {2} if boot.kind == "cdrom" or boot.cdrom
             else set()}
    count: dict[str, int] = {}
    for n, drive in enumerate(cell.guest.drives):
        path = media[drive.image]
        index = count.get(drive.interface, 0)
        while index in taken.get(drive.interface, ()):
            index += 1
        count[drive.interface] = index + 1
        fmt = "qcow2" if not drive.readonly else image_format(path) if path.exists() else "raw"
        values = {"file": str(path), "format": fmt, "id": f"drive{n}", "index": str(index),
                  "readonly": "on" if drive.readonly else "off",
                  "media": "cdrom" if drive.readonly else "disk"}
        argv += [arg.format(**values) for arg in cell.arch_info.drives[drive.interface]]
    return argv


def _boot_args(cell: Cell, images: dict[str, Path], append: list[str]) -> list[str]:
    boot = cell.guest.boot
    bios = (["-bios", NO_BIOS] if boot.bios == NO_BIOS
            else ["-bios", str(images[boot.bios])] if boot.bios else [])
    return bios + _media_args(cell, images, append)


def _multiboot(path: Path, args: str) -> str:
    """One module of QEMU's multiboot -initrd list; a comma is written ',,'."""
    return " ".join(x for x in (str(path), args) if x).replace(",", ",,")


def _media_args(cell: Cell, images: dict[str, Path], append: list[str]) -> list[str]:
    boot = cell.guest.boot
    if boot.kind == "kernel":
        kernel = boot.kernel_for(cell.firmware)
        assert kernel is not None
        args = ["-kernel", str(images[kernel])]
        if boot.initrd:
            args += ["-initrd", str(images[boot.initrd])]
        elif boot.modules:
            args += ["-initrd", ",".join(_multiboot(images[m.image], m.args)
                                         for m in boot.modules)]
        cmdline = " ".join(x for x in (boot.cmdline, *append) if x)
        if cmdline:
            args += ["-append", cmdline]
        if boot.cdrom:  # attached, not booted: the kernel is loaded directly
            args += ["-drive", f"file={images[boot.cdrom]},media=cdrom,readonly=on,if=ide,index=2"]
        return args
    assert boot.image is not None
    path = images[boot.image]
    if boot.kind == "network":
        assert cell.arch_info is not None and cell.arch_info.nic
        bootfile = boot.bootfiles[cell.firmware]  # `path`: the tree, unpacked (`_media`)
        return ["-netdev", f"user,id=pxe,tftp={path},bootfile={bootfile}",
                "-device", f"{cell.arch_info.nic},netdev=pxe", "-boot", "n"]
    if boot.kind == "cdrom":
        return ["-drive", f"file={path},media=cdrom,readonly=on,if=ide,index=2", "-boot", "d"]
    media = f"file={path},format=qcow2"  # the per-cell overlay (`_media`) takes the writes
    if boot.kind == "floppy":
        return ["-drive", f"{media},if=floppy,index=0", "-boot", "a"]
    return ["-drive", f"{media},if=ide,index=0", "-boot", "c"]
