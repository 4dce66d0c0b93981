"""The one backend protocol: every backend turns a cell into a `Launch`.

A backend is a module named in `data/backends.yaml` (see `registry`) with:

- `why_not(cell) -> str | None`: what this VMM cannot do for the cell, said
  before any image is fetched (it becomes the cell's skip reason);
- `build_launch(cell, images, ctx) -> Launch`: pure, nothing is started;
- optionally `probe(info, host)`, `runs_arch(info, arch, host)` and
  `facts(info, launch)`; the defaults in `tool` serve VMMs driven by one
  command-line tool.

A `Launch` is everything the runner needs, as data: files to write, commands
to run before (`setup`, each must succeed) and after (`teardown`, always),
and the command whose terminal is the guest's serial console (or, where the
context asks for one and the VMM can, that serves it on a socket). Everything is
an argv list, never a shell string, so tests compare it with what each tool
really accepts, and one repro-script writer renders any backend's launch.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..model import Cell


class LaunchError(Exception):
    """The cell cannot be turned into a launch on this host (missing firmware...)."""


VARS_FILE = "efivars.fd"  # a cell's UEFI variables store, beside its disk overlays


@dataclass(frozen=True)
class LaunchContext:
    """Where a launch lives: the cell folder, a short folder for sockets, a gdb port."""

    folder: Path
    sockdir: Path | None = None  # unix socket paths must stay short: not the cell folder
    gdb_port: int | None = None  # start paused with a gdb stub (backends with `gdb`)
    console: str | None = None  # serve the console here (`unix:PATH`, `tcp:HOST:PORT`)
    # what outlives one boot (disk overlays, UEFI variables) lives here, not in `folder`:
    # the stages of a staged cell boot in folders of their own on the same disks
    state: Path | None = None
    fresh: bool = True  # False: a later stage: use the overlays an earlier boot left

    @property
    def state_dir(self) -> Path:
        return self.state or self.folder

    @property
    def vars_file(self) -> Path:
        """The cell's copy of the UEFI variables store."""
        return self.state_dir / VARS_FILE


@dataclass(frozen=True)
class Launch:
    argv: list[str]  # its terminal is the guest's serial console
    files: dict[Path, str] = field(default_factory=dict)  # written first
    setup: list[list[str]] = field(default_factory=list)  # each must succeed, in order
    # setup an earlier stage of the cell already did (its disk overlays): not run again,
    # but repro.sh, which starts from nothing, runs them first
    done_before: list[list[str]] = field(default_factory=list)
    teardown: list[list[str]] = field(default_factory=list)  # always run, errors ignored
    firmware_files: tuple[Path, ...] = ()
    vars_template: Path | None = None  # copied to `vars_file` before setup
    vars_file: Path | None = None
    # QMP (screens, keys, a polite quit): its unix socket, or "tcp:HOST:PORT" on hosts
    # without unix sockets
    monitor: Path | str | None = None
    name: str = ""  # the VM's name in the VMM's own registry
    media: dict[str, Path] = field(default_factory=dict)  # image -> path it is used by
    console: str | None = None  # where argv serves the console; None: on its terminal
    terminal_argv: list[str] | None = None  # argv with the console on the terminal (repro.sh)
    trees: dict[Path, Path] = field(default_factory=dict)  # folder -> tar unpacked into it
    # typed on the console, one by one, to end the VMM politely where it has no QMP
    # (SIMH: its escape, Ctrl-E, then `quit`); signals follow if it is still running
    stop_keys: tuple[bytes, ...] = ()


    def describe(self) -> str:
        """command.txt: what runs, in order, as shell lines a person can read."""
        out = [f"# write {p}" for p in self.files]
        if self.vars_template is not None:
            out.append(f"# copy {self.vars_template} to {self.vars_file}")
        out += [f"# unpack {tar} into {folder}" for folder, tar in self.trees.items()]
        out += [f"# done by an earlier stage: {shlex.join(a)}" for a in self.done_before]
        out += [shlex.join(a) for a in self.setup] + [shlex.join(self.argv)]
        out += [f"# afterwards: {shlex.join(a)}" for a in self.teardown]
        return "\n".join(out) + "\n"


def vm_name(cell: Cell, folder: Path) -> str:
    """A name unique per cell folder and short enough for every VMM (bhyve: 31)."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10]
    return f"gh-{cell.guest.id[:16]}-{digest}"


def boot_media(cell: Cell, images: dict[str, Path]) -> tuple[str, Path]:
    """(kind, path) of a media-boot guest: cdrom, disk or floppy."""
    boot = cell.guest.boot
    assert boot.image is not None, "media boots only"
    return boot.kind, images[boot.image]
