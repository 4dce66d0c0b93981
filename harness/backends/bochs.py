"""Bochs: a bochsrc and a command line built from a cell.

Pure, like `qemu`: nothing is started here. Bochs emulates a whole PC in
software, so it runs x86 guests that boot from media (a CD-ROM, a disk or
a floppy); it has no direct kernel boot, no UEFI and no monitor socket, so
kernel-boot guests, UEFI cells and screen consoles are refused with a
reason. Facts of Debian's build (2.7) shape the file: it has no `nogui`
display, so the RFB display is used without waiting for a viewer; without
`-rc` holding `c` its debugger would stop at the first instruction; the
speaker and sound drivers are off (its sound code crashed otherwise); COM1
is the terminal Bochs was started on, which the harness reads like QEMU's
stdio; a guest power-off ends Bochs with status 1 and "soft power off" in
its log.
"""

from __future__ import annotations

from pathlib import Path

from ..model import Cell
from .base import Launch, LaunchContext, LaunchError, boot_media
from .media import image_format

BINARY = "bochs"
# Debian's bochsbios and vgabios packages
BIOS = (Path("/usr/share/bochs/BIOS-bochs-latest"),
        Path("/usr/local/share/bochs/BIOS-bochs-latest"))
VGABIOS = (Path("/usr/share/vgabios/vgabios.bin"), Path("/usr/share/bochs/VGABIOS-lgpl-latest"),
           Path("/usr/local/share/bochs/VGABIOS-lgpl-latest"))
IPS = 100_000_000
# a 64-bit model for both: 32-bit guests expect CMOV and friends (GNU Mach's "486"
# build triple-faults on Bochs's pentium model)
CPU_MODEL = {"x86_64": "corei7_sandy_bridge_2600k", "i386": "corei7_sandy_bridge_2600k"}


def why_not(cell: Cell) -> str | None:
    """Why Bochs cannot run `cell` at all (checked before any image is fetched)."""
    g = cell.guest
    if g.arch not in CPU_MODEL:
        return f"bochs emulates x86 PCs; this guest is {g.arch}"
    if cell.firmware != "bios":
        return "bochs has no UEFI firmware"
    if g.boot.kind == "kernel":
        return "bochs cannot boot a kernel directly; it needs a cdrom, disk or floppy guest"
    if g.boot.bios:
        return "bochs runs its own BIOS only"
    return None


def first(paths: tuple[Path, ...], package: str) -> Path:
    for p in paths:
        if p.is_file():
            return p
    raise LaunchError(f"{paths[0].name} not found in {', '.join(map(str, paths))} "
                      f"(Debian package {package})")


def bochsrc(cell: Cell, images: dict[str, Path], log: Path, bios: Path, vgabios: Path) -> str:
    """The configuration file for `cell`; every device the guest needs, nothing else."""
    why = why_not(cell)
    if why:
        raise LaunchError(why)
    g = cell.guest
    kind, media = boot_media(cell, images)
    if kind != "cdrom" and media.exists() and image_format(media) != "raw":
        raise LaunchError(f"bochs reads raw images only; {media.name} is "
                          f"{image_format(media)} (build_launch converts qcow2 disks)")
    lines = [
        f"# guest-harness: {cell.id}",
        f"megs: {cell.memory_mb}",
        f"romimage: file={bios}",
        f"vgaromimage: file={vgabios}",
        # ips above what Bochs reaches keeps guest time at or below real time: with
        # the default, Linux's clock ran 5x fast and its watchdog saw soft lockups
        f"cpu: model={CPU_MODEL[g.arch]}, count=1, ips={IPS}, reset_on_triple_fault=0",
        "clock: sync=none, time0=946684800",
        'display_library: rfb, options="timeout=0"',
        "com1: enabled=1, mode=term, dev=/dev/tty",
        f"log: {log}",
        "panic: action=fatal",
        "error: action=report",
        "info: action=report",
        "debug: action=ignore",
        "speaker: enabled=0",
        "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy",
        "mouse: enabled=0",
        "ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14",
        "ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15",
    ]
    if kind == "cdrom":
        lines += [f"ata1-master: type=cdrom, path={media}, status=inserted", "boot: cdrom"]
    elif kind == "disk":
        # volatile: the guest's writes go to a redo log in the cell folder (journal=),
        # the image (in the cache) stays as it is
        lines += [f"ata0-master: type=disk, path={media}, mode=volatile, "
                  f"journal={log.parent / 'disk.redolog'}", "boot: disk"]
    else:
        lines += [f"floppya: 1_44={media}, status=inserted, write_protected=1",
                  "boot: floppy"]
    return "\n".join(lines) + "\n"


def build_launch(cell: Cell, images: dict[str, Path], ctx: LaunchContext) -> Launch:
    folder = ctx.folder
    """The Bochs command line and its files, for a cell folder."""
    bios, vgabios = first(BIOS, "bochsbios"), first(VGABIOS, "vgabios")
    rc, commands = folder / "bochsrc", folder / "bochs.commands"
    setup: list[list[str]] = []
    kind, media = boot_media(cell, images)
    if kind == "disk" and media.exists() and image_format(media) == "qcow2":
        # Bochs reads raw disks only: a raw copy in the cell folder (a cloud image)
        raw = folder / "disk.raw"
        setup.append(["qemu-img", "convert", "-O", "raw", str(media), str(raw)])
        assert cell.guest.boot.image is not None
        images = {**images, cell.guest.boot.image: raw}
    text = bochsrc(cell, images, folder / "bochs.log", bios, vgabios)
    # Bochs prints its banner and start-up notes on stdout, which is the terminal
    # COM1 writes to (/dev/tty): stdout goes to a file instead, so the console is
    # the guest's alone (stderr, with Bochs's last words, still reaches vmm.stderr)
    argv = ["sh", "-c", 'out="$1"; shift; exec "$@" >"$out"', "bochs-console",
            str(folder / "bochs.stdout"), BINARY, "-q", "-f", str(rc), "-rc", str(commands)]
    return Launch(argv, {rc: text, commands: "c\n"}, setup=setup,
                     teardown=[["rm", "-f", str(folder / "disk.raw")]] if setup else [],
                     firmware_files=(bios, vgabios))
