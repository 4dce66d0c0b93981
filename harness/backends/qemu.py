"""QEMU command lines for every accelerator, built from a cell.

Pure: no process is started here. The argv is a list (never a shell
string); what varies by backend, architecture and quirk comes from the
knowledge tables, so this module only assembles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import knowledge
from ..model import Cell
from .media import image_format

CONSOLE_CHARDEV = "console"


class LaunchError(Exception):
    """The cell cannot be turned into a command line on this host."""


@dataclass(frozen=True)
class QemuLaunch:
    argv: list[str]
    vars_template: Path | None = None  # copied to the vars path before each launch
    firmware_files: tuple[Path, ...] = ()


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


def build_launch(
    cell: Cell,
    images: dict[str, Path],
    qmp_socket: Path,
    vars_file: Path | None = None,
    binary: str | None = None,
) -> QemuLaunch:
    """The QEMU command line that boots `cell` with its resolved `images`."""
    guest = cell.guest
    arch = knowledge.arches()[guest.arch]
    backend = knowledge.backends()[cell.backend]
    library = {**knowledge.quirks(), **guest.quirk_defs, **cell.quirk_defs}
    quirks = [library[q] for q in cell.quirks]

    machine = arch.machine.get(cell.firmware) or arch.machine.get("bios", "pc")
    machine_opts: dict[str, str] = {}
    accel_opts = dict(backend.accel_opts)
    cpu = backend.cpu or arch.cpu
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
        "-chardev", f"stdio,id={CONSOLE_CHARDEV},signal=off",
        "-serial", f"chardev:{CONSOLE_CHARDEV}",
        "-qmp", f"unix:{qmp_socket},server=on,wait=off",
        "-no-reboot",
    ]

    vars_template = None
    firmware_files: tuple[Path, ...] = ()
    if cell.firmware == "uefi":
        code, vars_template = find_uefi(guest.arch)
        if vars_file is None:
            raise LaunchError("UEFI needs a per-cell copy of the variables file")
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
        ]
        firmware_files = (code, vars_template)

    argv += _boot_args(cell, images, append)
    argv += extra
    return QemuLaunch(argv, vars_template, firmware_files)


def _boot_args(cell: Cell, images: dict[str, Path], append: list[str]) -> list[str]:
    boot = cell.guest.boot
    bios = ["-bios", str(images[boot.bios])] if boot.bios else []
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
        return args
    assert boot.image is not None
    path = images[boot.image]
    if boot.kind == "cdrom":
        return ["-drive", f"file={path},media=cdrom,readonly=on,if=ide,index=2", "-boot", "d"]
    # A per-cell overlay (media.prepare) takes the writes; anything else is protected
    # by snapshot=on, so the cached image is never written either way.
    if path.name.endswith(".overlay.qcow2"):
        media = f"file={path},format=qcow2"
    else:
        media = f"file={path},format={image_format(path) if path.exists() else 'raw'},snapshot=on"
    if boot.kind == "floppy":
        return ["-drive", f"{media},if=floppy,index=0", "-boot", "a"]
    return ["-drive", f"{media},if=ide,index=0", "-boot", "c"]
