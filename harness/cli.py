"""The command line: argument parsing, exit statuses, nothing else.

Exit statuses: 0 no cell counts as failure, 1 some cell does, 2 usage or
configuration error, 3 the run folder is incomplete (a write failed, e.g. a full
disk: the last complete results.json is kept), 130 interrupted (results so far
are kept).
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .model import Cell, Guest, Matrix
    from .results.history import Comparison

# Each command imports what it uses when it runs (`harness run` loads no catalog,
# cluster, bisect, downloader or image tools), so that start-up stays short.

EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
MAX_SECONDS = 366 * 86400
GDB_HELP = ("start the VM paused with QEMU's gdb stub and print the gdb command to attach; "
            "implies --interactive and lifts the deadlines")


class UsageError(Exception):
    pass


def _seconds(text: str) -> float:
    """A duration option: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: expected a number of seconds from "
                                         f"0 to {MAX_SECONDS} (a year)")
    return value


def _count(low: int, high: int) -> Callable[[str], int]:
    """A count option within what a host can have: `low`..`high`, a clear error otherwise
    (argparse names the option, exit 2)."""

    def parse(text: str) -> int:
        if not text.strip().lstrip("+-").isdigit() or len(text) > 12:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    parse.__name__ = "count"  # argparse says "invalid count value" for other failures
    return parse


def _address(text: str) -> str:
    """A Dask scheduler address, tcp://HOST:PORT (or tls://): checked here, since Dask
    answers a malformed one with a RuntimeError from deep inside."""
    scheme, _, rest = text.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("tcp", "tls") or not host or not port.isdigit() \
            or not 0 < int(port[:6]) < 65536 or any(c.isspace() or c == "/" for c in host):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not tcp://HOST:PORT")
    return text


# Upper bounds of the count options: far beyond any real use, low enough that a typo
# cannot ask for a million VMs.
MAX_JOBS = 1024
MAX_RETRIES = 100


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Boot guest operating systems on every virtualization backend of this "
                    "host and score how far each gets, from its console.",
        epilog="Exit status: 0 no cell failed, 1 a cell failed, 2 usage or configuration "
               "error, 3 the run folder is incomplete (a write failed), 130 interrupted. "
               "Cache: $HARNESS_CACHE, else ~/.cache/guest-harness on Linux and the "
               "platform's user cache folder elsewhere.",
    )
    p.add_argument("--version", action="version", version=f"guest-harness {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def matrix_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--matrix", type=Path, default=Path("matrix.yaml"), metavar="FILE",
                        help="the matrix file (default: ./matrix.yaml)")
        sp.add_argument("--guests", type=Path, metavar="DIR",
                        help="folder of guest files (default: guests/ next to the matrix)")

    def select_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="only cells whose id (guest/backend/firmware) matches; repeatable")
        sp.add_argument("--backend", action="append", default=[], metavar="NAME",
                        help="only this backend; repeatable")
        sp.add_argument("--firmware", action="append", default=[], metavar="NAME",
                        help="only this firmware (bios, uefi); repeatable")
        sp.add_argument("--shard", metavar="K/N", help="only the K-th of N equal parts")
        sp.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only guests with this tag (local: runs without internet "
                             "downloads; slow; installer; ...); repeatable, any matches")

    def canary_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--canary-ttl", type=_seconds, metavar="SECONDS",
                        help="reuse a canary result this long (default: $HARNESS_CANARY_TTL "
                             "or 21600)")

    def console_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--console-transport", choices=("pty", "socket"), metavar="pty|socket",
                        help="how the VMM's serial console is read: a pty, or a socket QEMU "
                             "serves (pipes for other VMMs); default: $HARNESS_CONSOLE, else "
                             "pty (socket on Windows)")

    run = sub.add_parser("run", help="run the matrix and write a run folder",
                         description="Run the matrix: probe backends, fetch images, boot "
                                     "every cell and score it; results in OUT/<run-id>/.")
    matrix_args(run)
    select_args(run)
    canary_args(run)
    run.add_argument("--jobs", type=_count(1, MAX_JOBS), metavar="N",
                     help="cells at once (default: the matrix's jobs, else what fits the "
                          "host's cores and memory)")
    run.add_argument("--out", type=Path, metavar="DIR",
                     help="where run folders go (default: reports/ next to the matrix)")
    run.add_argument("--offline", action="store_true",
                     help="use only images already in the cache")
    run.add_argument("--verify-cache", action="store_true",
                     help="re-hash cached files instead of trusting their size and mtime")
    run.add_argument("--retries", type=_count(0, MAX_RETRIES), metavar="N",
                     help="re-run a failing cell up to N times (default: the matrix's)")
    run.add_argument("--strict", action="store_true", help="an xpass counts as a failure")
    run.add_argument("--fail-on", choices=("any", "tests", "regression"), default="any",
                     help="exit 1 when any cell fails or reports failed tests (default), only "
                          "when a payload reports failed tests (tests), or only when a cell "
                          "or a test that passed in its previous recorded run fails now "
                          "(regression: nightly CI)")
    run.add_argument("--rerun-failures", type=_count(0, MAX_RETRIES), default=0, metavar="N",
                     help="re-run each failing cell N more times; a cell whose reruns disagree "
                          "is marked flaky in results.json")
    run.add_argument("--cluster", type=_address, metavar="tcp://HOST:PORT",
                     help="run the cells on the workers of this Dask scheduler (each cell "
                          "where its backend is; needs guest-harness[cluster])")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="finish an interrupted run: keep its finished cells, run the rest "
                          "into the same folder")
    run.add_argument("--keep", action="store_true",
                     help="keep each cell's disk overlay (the guest's writes) in its folder")
    run.add_argument("--from-stage", metavar="NAME",
                     help="boot staged guests (`stages:`) from this stage on, on the disk "
                          "overlays an earlier run with --keep left (copied; that run stays "
                          "as it was): re-run only the stage after an install")
    run.add_argument("--kept", type=Path, metavar="RUN_DIR",
                     help="with --from-stage: the run whose kept overlays to boot on "
                          "(default: OUT/latest)")
    run.add_argument("--gdb", action="store_true",
                     help=GDB_HELP)
    run.add_argument("--interactive", action="store_true",
                     help="with one cell: hand its console to you when it has its outcome, or "
                          "at Ctrl-]; then Ctrl-] quits, Ctrl-\\ runs a QEMU monitor command")
    console_arg(run)
    run.add_argument("--fresh-canary", action="store_true",
                     help="run the accelerator canaries even if a recent result is cached")

    ls = sub.add_parser("list", help="the guest catalog, or the cells and why any would "
                                     "be skipped",
                        description="The guest catalog of the matrix: per guest its OS, "
                                    "version, arch, console, where its images come from and "
                                    "how they are verified, whether its patterns were checked "
                                    "against a real console, and the backends of this host it "
                                    "would run on. --cells lists every cell instead, --arches "
                                    "the architectures (QEMU binary, machines, backends). Nothing "
                                    "is booted (accelerator canaries: cached results only).")
    matrix_args(ls)
    select_args(ls)
    canary_args(ls)
    ls.add_argument("--cells", action="store_true",
                    help="one line per cell: runs, or why it would be skipped")
    ls.add_argument("--arches", action="store_true",
                    help="one line per guest architecture: its QEMU binary and package, "
                         "machines, drive interfaces and the backends that run it here")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--markdown", action="store_true",
                    help="the catalog as a Markdown table (for a README)")

    rp = sub.add_parser("replay", help="check a guest's patterns against a recorded console "
                                       "or a screenshot",
                        description="Feed a recorded console log (raw bytes, as the guest "
                                    "printed them) through GUEST's milestone and failure "
                                    "patterns, as a live run would; no VM. A PNG screenshot "
                                    "is read by OCR and checked against the screen patterns. "
                                    "Exit 0 when the milestones are found in order and no "
                                    "fatal signature is.")
    matrix_args(rp)
    rp.add_argument("guest_id", metavar="GUEST")
    rp.add_argument("log", type=Path, metavar="LOG")
    rp.add_argument("--milestones", metavar="A,B,...",
                    help="only these milestones (the ones the log covers), in the guest's order")
    rp.add_argument("--source", choices=("serial", "screen"),
                    help="which console the log is (default: serial; screen for a PNG)")
    rp.add_argument("--stage", metavar="NAME",
                    help="a staged guest's: which stage's boot the log is (its milestones "
                         "are then named NAME/milestone)")

    pr = sub.add_parser("probe", help="which backends this host has, and whether they work")
    canary_args(pr)
    pr.add_argument("--no-canary", action="store_true",
                    help="static checks only (under two seconds)")
    pr.add_argument("--canary", action="store_true",
                    help="run the canary on every available backend, software ones (tcg, "
                         "bochs) too: proof that each boots a 64-bit kernel here")
    pr.add_argument("--fresh", action="store_true", help="ignore cached canary results")
    pr.add_argument("--json", action="store_true", help="machine-readable output")
    pr.add_argument("--offline", action="store_true",
                    help="canaries use cached images only")

    fe = sub.add_parser("fetch", help="download and verify guest images into the cache",
                        description="Download, verify and prepare the images of guests, "
                                    "with a progress bar per file on a terminal.")
    matrix_args(fe)
    fe.add_argument("guest_ids", nargs="*", metavar="GUEST",
                    help="guest ids (default: every guest of the matrix)")
    fe.add_argument("--tag", action="append", default=[], metavar="TAG",
                    help="only guests with this tag (e.g. local); repeatable")
    fe.add_argument("--offline", action="store_true",
                    help="check the cache only; say what is missing")
    fe.add_argument("--verify-cache", action="store_true",
                    help="re-hash cached files instead of trusting their size and mtime")

    wk = sub.add_parser("worker", help="serve cells to a Dask cluster from this host",
                        description="Probe this host (static checks and canaries) and join "
                                    "the Dask scheduler with one resource per usable backend "
                                    "(backend-kvm=N, ...). Needs guest-harness[cluster].")
    wk.add_argument("--scheduler", type=_address, required=True, metavar="tcp://HOST:PORT")
    wk.add_argument("--slots", type=_count(1, MAX_JOBS), metavar="N",
                    help="cells at once (default: this host's cores)")
    wk.add_argument("--name", help="the worker's name (default: Dask's)")
    wk.add_argument("--connect-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                    help="give up when the scheduler cannot be reached (or is lost) for "
                         "this long (default 30, Dask's own connect timeout)")
    wk.add_argument("--advertise", metavar="B1,B2",
                    help="offer these backends without probing (for tests, or a host whose "
                         "probing is known)")

    bq = sub.add_parser("bisect-quirks", help="find the quirks a failing cell needs",
                        description="Boot the cell with candidate quirks, all at once and then "
                                    "fewer (delta debugging), and report the minimal set that "
                                    "reaches the most milestones. Every trial is kept.")
    bq.add_argument("cell", metavar="CELL", help="a cell id of the matrix (guest/backend/fw)")
    matrix_args(bq)
    bq.add_argument("--candidates", metavar="Q1,Q2",
                    help="quirks to try (default: the library's and the guest's own)")
    bq.add_argument("--max-runs", type=_count(2, 1000), default=20, metavar="N",
                    help="at most N boots (default 20)")
    bq.add_argument("--out", type=Path, metavar="DIR",
                    help="where the trials go (default: reports/ next to the matrix)")

    rep = sub.add_parser("report", help="(re)build the HTML pages and the history of runs",
                         description="Record each run folder in the history of its reports "
                                     "folder (history.sqlite) and write its pages: "
                                     "RUN_DIR/index.html (the guests x backends grid), a page "
                                     "per cell, and history.html beside the run folders "
                                     "(regressions, fixes, flaky cells, boot-time trends). "
                                     "Pages are single files that fetch nothing.")
    rep.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    rep.add_argument("--baseline", metavar="RUN_ID",
                     help="compare with this run instead of each cell's previous run")
    rep.add_argument("--history", type=_count(1, 1000), default=10, metavar="N",
                     help="runs shown per cell on the history page (default 10)")
    rep.add_argument("--format", choices=("markdown", "html", "text"),
                     help="also print each run's porters' table (per guest, how far it got on "
                          "each backend, in words) to standard output in this format; the "
                          "other messages go to standard error")

    mg = sub.add_parser("merge", help="combine shard runs into one run folder",
                        description="Combine the run folders of `harness run --shard K/N` (or "
                                    "of several hosts) into one run: results.json, junit.xml "
                                    "and every cell's artefacts.")
    mg.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    mg.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                    help="where the merged run folder goes (default: reports/)")

    rp = sub.add_parser("repro", help="re-run one recorded cell and say if it reproduced",
                        description="Re-run a cell of a recorded run through the harness with "
                                    "the recorded images (checked by digest), quirks and "
                                    "firmware, and report whether the verdict and the last "
                                    "milestone reproduced. Each cell folder also holds a "
                                    "standalone repro.sh.")
    rp.add_argument("cell", metavar="CELL", help="the cell id, guest/backend/firmware (a glob "
                                                 "that names one cell)")
    rp.add_argument("--from", dest="source", type=Path, metavar="RUN_DIR|results.json",
                    help="the recorded run (default: reports/latest next to the matrix)")
    rp.add_argument("--times", type=_count(1, 1000), default=1, metavar="N",
                    help="re-run N times and show the distribution (flaky or not)")
    matrix_args(rp)
    rp.add_argument("--out", type=Path, metavar="DIR",
                    help="where the replay's run folder goes (default: reports/)")
    rp.add_argument("--gdb", action="store_true",
                    help=GDB_HELP)
    rp.add_argument("--keep", action="store_true",
                    help="keep the disk overlay (the guest's writes) and print its path")
    console_arg(rp)
    rp.add_argument("--interactive", action="store_true",
                    help="hand the console to you when the replay has its outcome, or at "
                         "Ctrl-]; then Ctrl-] quits, Ctrl-\\ runs a QEMU monitor command")

    ne = sub.add_parser("needle", help="cut a needle (a screen region to match) out of a "
                                       "screenshot",
                        description="Cut the region X,Y WxH out of a screenshot (PNG or PPM, "
                                    "e.g. a cell's screen.png) into a needle PNG, and print the "
                                    "milestone that uses it.")
    ne.add_argument("screenshot", type=Path)
    ne.add_argument("--x", type=_count(0, 65535), required=True)
    ne.add_argument("--y", type=_count(0, 65535), required=True)
    ne.add_argument("--w", type=_count(1, 65535), required=True)
    ne.add_argument("--h", type=_count(1, 65535), required=True)
    ne.add_argument("-o", "--out", type=Path, required=True, metavar="NEEDLE.png")
    ne.add_argument("--threshold", type=float, default=0.95)

    tr = sub.add_parser(
        "try", help="boot an image nobody wrote a guest file for; say how far it got",
        description="Detect what IMAGE is from its content (ISO, floppy, disk, qcow2/vmdk/vdi, "
                    "a kernel; compressed or not; a URL through the cache), boot it on each "
                    "backend, watch the serial console and the screen (OCR in graphics "
                    "modes), name the phase it reached (firmware, boot loader, kernel, "
                    "userland, desktop) with the lines that prove it, and write a guest file "
                    "that reproduces it. When the guest is quiet the harness presses Enter "
                    "and watches for an answer: that is how it knows a prompt waits for input. "
                    "The way to start on a new OS.",
        epilog="Exit status: 0 every boot passed (reached a prompt or desktop that answers), "
               "1 one did not, 2 the image cannot be tried.")
    tr.add_argument("image", nargs="?", metavar="IMAGE",
                    help="a file or URL; with --kernel, a CD attached as well")
    tr.add_argument("--backend", action="append", metavar="NAME",
                    help="boot on this backend (repeatable; default: tcg); several show "
                         "where they part")
    tr.add_argument("--firmware", choices=("bios", "uefi"),
                    help="default: what the content suggests (BIOS when both do)")
    tr.add_argument("--arch", help="the guest architecture when the content does not say")
    tr.add_argument("--kernel", metavar="FILE", help="boot this kernel directly")
    tr.add_argument("--initrd", metavar="FILE", help="with --kernel")
    tr.add_argument("--append", metavar="CMDLINE",
                    help="the kernel command line (default: console=ttyS0)")
    tr.add_argument("--sha256", metavar="HEX", help="the digest a URL must have")
    tr.add_argument("--write", type=Path, metavar="guests/ID.yaml",
                    help="write the guest file that reproduces what was seen")
    tr.add_argument("--time", type=_seconds, default=180.0, metavar="S",
                    help="give up after this long per boot (default 180 s)")
    tr.add_argument("--quiet", type=_seconds, default=3.0, metavar="S",
                    help="silence before the harness presses Enter (default 3 s)")
    tr.add_argument("--hang", type=_seconds, default=60.0, metavar="S",
                    help="silence that is a hang once the Enters are spent (default 60 s, "
                         "as a guest file's stall: an unknown system may think for long "
                         "without a word)")
    tr.add_argument("--no-answer", action="store_true",
                    help="never press Enter: only watch")
    tr.add_argument("--memory", default="1024M", help="guest memory (default 1024M)")
    tr.add_argument("--out", type=Path, metavar="DIR",
                    help="where consoles and screenshots go (default: a new temporary folder)")
    tr.add_argument("--offline", action="store_true", help="use cached images only")

    ca = sub.add_parser("cache", help="list, prune or seed the image cache",
                        description="The image cache: $HARNESS_CACHE, else the platform's user "
                                    "cache folder.")
    csub = ca.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    csub.add_parser("ls", help="every cached image: kind, size, last use, pinned?")
    pr_ = csub.add_parser("prune", help="remove what is old or over a size limit")
    pr_.add_argument("--older-than", metavar="D", help="unused for this long (30d, 12h, 90m)")
    pr_.add_argument("--max-size", metavar="S",
                     help="then the least recently used until the cache fits (10G, 500M)")
    im = csub.add_parser("import", help="add local files whose digest a guest file names")
    im.add_argument("folder", type=Path, metavar="DIR")
    matrix_args(im)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    atexit.register(_kill_all)
    try:
        _check_vm_guard()
        return {"run": cmd_run, "list": cmd_list, "probe": cmd_probe, "fetch": cmd_fetch,
                "cache": cmd_cache, "needle": cmd_needle, "repro": cmd_repro,
                "merge": cmd_merge, "worker": cmd_worker,
                "bisect-quirks": cmd_bisect, "replay": cmd_replay,
                "report": cmd_report, "try": cmd_try}[args.command](args)
    except UsageError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file the host would not let us read or write
        print(f"harness: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if not _usage_problem(exc):
            raise
        return EXIT_USAGE


def _os_error(exc: OSError) -> str:
    """`exc` as the user needs it: the file, then what the system said."""
    if exc.filename is None or exc.strerror is None:
        return str(exc)
    return f"{exc.filename}: {exc.strerror[:1].lower()}{exc.strerror[1:]}"


def _out_dir(option: str, path: Path) -> Path:
    """The folder an option names for output, checked now (nothing is created yet), so that
    a file in its place or a read-only disk is a usage error before anything runs."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: not a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        import errno

        try:  # access() says no; the system says why (read-only, permissions)
            os.mkdir(existing / f".harness-probe-{os.getpid()}")
        except OSError as exc:
            why = exc.strerror
        else:
            os.rmdir(existing / f".harness-probe-{os.getpid()}")
            return path
        raise UsageError(f"{option} {path}: cannot write in {existing}: "
                         f"{why or os.strerror(errno.EACCES)}")
    return path


def _kill_all() -> None:
    """At exit, no VMM is left running. Only the process module spawns them: when a
    command never loaded it, there is nothing to kill (and nothing to import)."""
    process = sys.modules.get(f"{__package__}.backends.process")
    if process is not None:
        process.kill_all()


def _check_vm_guard() -> None:
    """$HARNESS_VM_GUARD is checked before any command, as a usage error: every command
    may start a VM (runs, canaries, reproductions, workers)."""
    from .backends.guard import selected

    try:
        selected()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _usage_problem(exc: Exception) -> bool:
    """Print `exc` if it is a usage or configuration error (exit status 2). The modules
    that define these errors are imported here, not at start-up: the one that raised
    `exc` is loaded already."""
    from .config import ConfigError

    if isinstance(exc, ConfigError):
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return True
    from .cluster import ClusterError
    from .plan import PlanError
    from .reproduce import ReproError
    from .scheduler import ResumeError

    if isinstance(exc, (PlanError, ResumeError, ClusterError, ReproError)):
        print(f"harness: {exc}", file=sys.stderr)
        return True
    return False


def _load(args: argparse.Namespace) -> tuple[Matrix, dict[str, Guest]]:
    from .config import load_guests, load_matrix

    matrix_path: Path = args.matrix
    if not matrix_path.is_file():
        raise UsageError(f"no matrix file {matrix_path} (give one with --matrix)")
    guests_dir = args.guests or matrix_path.parent / "guests"
    guests = load_guests(guests_dir)
    return load_matrix(matrix_path, guests), guests


def _cells(args: argparse.Namespace, matrix: Matrix, guests: dict[str, Guest],
           retries: int | None = None) -> list:
    from .plan import expand, parse_shard

    shard = parse_shard(args.shard) if args.shard else None
    if args.tag:
        guests = {k: g for k, g in guests.items() if set(args.tag) & set(g.tags)}
        if not guests:
            raise UsageError(f"no guest has the tag {' or '.join(args.tag)}")
    return expand(matrix, guests, args.only, args.backend, args.firmware, shard, retries)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_run(args: argparse.Namespace) -> int:
    from .images.cache import Cache
    from .progress import Progress, summary_table
    from .scheduler import RunOptions, Scheduler

    _console_transport(args)
    matrix, guests = _load(args)
    if args.resume is not None and not (args.resume / "results.json").is_file():
        raise UsageError(f"--resume {args.resume}: no results.json there")
    cells = _cells(args, matrix, guests, args.retries)
    if not cells:
        raise UsageError("the selection has no cells (see `harness list`)")
    args.interactive = args.interactive or args.gdb
    if args.interactive and len(cells) != 1:
        raise UsageError(f"--interactive and --gdb need exactly one cell; the selection has "
                         f"{len(cells)} (narrow it with --only)")
    _require(args, cells)
    gdb_port = _gdb_setup(cells) if args.gdb else None
    out = _out_dir("--out", args.out or args.matrix.parent / "reports")
    kept = _from_stage(args, cells, out)
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGHUP"):  # POSIX only: Windows has no hang-up signal
        signal.signal(signal.SIGHUP, _terminate)
    from .results.history import file_digest

    progress = Progress(live=False) if args.interactive else Progress()
    options = RunOptions(
        out=out, cache=Cache(verify=args.verify_cache), jobs=args.jobs or matrix.jobs,
        strict=args.strict, offline=args.offline, canary_ttl=args.canary_ttl,
        fresh_canary=args.fresh_canary, keep=args.keep, interactive=args.interactive,
        gdb_port=gdb_port, rerun_failures=args.rerun_failures, resume=args.resume,
        cluster=args.cluster, from_stage=args.from_stage, kept=kept,
        meta={"matrix": str(args.matrix), "argv": sys.argv[1:], "guests": {
            c.guest.id: {"name": c.guest.name, "os": c.guest.os, "arch": c.guest.arch,
                         "version": c.guest.version, "digest": file_digest(c.guest.source)}
            for c in cells}},
    )
    outcome = Scheduler(options, progress).run(cells)
    print(summary_table(outcome.results, colour=sys.stdout.isatty()))
    print(f"\nrun folder: {outcome.store.folder}")
    changes = _pages(outcome.store.folder)
    if args.keep:
        _print_overlays(outcome.store.folder)
    if outcome.interrupted:
        print("interrupted: the cells above finished; the rest did not run", file=sys.stderr)
    elif outcome.store.lost:
        print("incomplete: the run folder could not be written in full:\n  "
              + "\n  ".join(outcome.store.lost.values()), file=sys.stderr)
        return EXIT_INCOMPLETE
    elif args.fail_on == "regression":  # no history to compare with fails safe
        return 1 if changes is None or changes.regressions or changes.test_regressions else 0
    if outcome.interrupted:
        return outcome.exit_status(args.strict)  # 130
    from .verdict import counts_as_failure

    return 1 if any(counts_as_failure(r, args.strict, args.fail_on)
                    for r in outcome.results) else 0


def _from_stage(args: argparse.Namespace, cells: list[Cell], out: Path) -> Path | None:
    """--from-stage and --kept checked: every selected cell has that stage, and the run
    whose kept overlays it boots on exists; that run's folder."""
    if args.from_stage is None:
        if args.kept is not None:
            raise UsageError("--kept: only with --from-stage")
        return None
    from .stages import StageError, stages_from

    if args.cluster or args.resume:
        raise UsageError("--from-stage: runs here, on a kept disk: not with --cluster or "
                         "--resume")
    for cell in cells:
        try:
            stages_from(cell.guest, args.from_stage)
        except StageError as exc:
            raise UsageError(f"--from-stage: {exc} (narrow the selection with --only)") from None
    kept = args.kept or out / "latest"
    if not (kept / "results.json").is_file():
        raise UsageError(f"--kept {kept}: not a run folder (no results.json); give the run "
                         "that kept the overlays (`harness run --keep`)")
    return kept.resolve()


def cmd_list(args: argparse.Namespace) -> int:
    from . import catalog
    from .backends import probe as probes
    from .canary import canary_ttl
    from .images.cache import Cache

    matrix, guests = _load(args)
    if args.arches:
        from . import arches

        table = arches.arch_rows(list(guests.values()), probes.host_facts(), Cache(),
                                 canary_ttl(args.canary_ttl))
        print(json.dumps([r.to_json() for r in table], indent=1) if args.json
              else arches.text_table(table))
        return 0
    cells = _cells(args, matrix, guests)
    rows = catalog.cell_rows(cells, probes.host_facts(), Cache(), canary_ttl(args.canary_ttl))
    if args.cells:
        if args.json:
            print(json.dumps([r.to_json() for r in rows], indent=1))
            return 0
        print(catalog.cells_text(rows))
        return 0
    listed = [guests[g] for g in dict.fromkeys(c.guest.id for c in cells)]
    table = catalog.guest_rows(listed, rows)
    if args.json:
        print(json.dumps([dict(g.to_json(), cells=[r.to_json() for r in rows
                                                   if r.id.startswith(g.id + "/")])
                          for g in table], indent=1))
    elif args.markdown:
        print(catalog.markdown_table(table))
    else:
        print(catalog.text_table(table))
        print("\n" + catalog.summary_line(table, rows))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .transcripts import ReplayError, replay

    _, guests = _load(args)
    guest = guests.get(args.guest_id)
    if guest is None:
        raise UsageError(f"no guest {args.guest_id!r} (known: {', '.join(sorted(guests))})")
    try:
        data = args.log.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.log}: {exc.strerror}") from None
    names = [n.strip() for n in args.milestones.split(",")] if args.milestones else None
    source = args.source or "serial"
    if data.startswith(PNG_MAGIC):  # a screenshot: its text, as the screen watcher reads it
        if args.source == "serial":
            raise UsageError("--source: a screenshot is the screen (leave out --source serial)")
        data, source = _screenshot_text(args.log), "screen"
    try:
        r = replay(guest, data, names, source, stage=args.stage)
    except ReplayError as exc:
        raise UsageError(str(exc)) from None
    for name in r.checked:
        print(f"  {'found  ' if name in r.reached else 'MISSING'}  {name}")
    for ev in r.failures:
        print(f"  FAILURE  {ev.name}: {ev.text.strip()[:100]!r}")
    for ev in r.warnings:
        print(f"  warning  {ev.name}: {ev.text.strip()[:100]!r}")
    print(f"{args.log}: {'ok' if r.ok else 'does not match'} for {guest.id}")
    return 0 if r.ok else 1


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _screenshot_text(path: Path) -> bytes:
    """A screenshot's lines by OCR, as the bytes a replay reads."""
    from PIL import UnidentifiedImageError

    from .console import ocr

    try:
        lines = ocr.read_file(path)
    except ocr.OCRUnavailable as exc:
        raise UsageError(f"{path}: cannot read a screenshot here: {exc}") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable PNG: {exc}") from None
    return "".join(f"{line}\n" for line in lines).encode()


def cmd_probe(args: argparse.Namespace) -> int:
    from .backends import probe as probes
    from .canary import probe_all
    from .images.cache import Cache
    from .progress import Progress

    host = probes.host_facts()
    progress = Progress(live=False)
    results = probe_all(host, Cache(), args.offline, canary=args.canary,
                        no_canary=args.no_canary, ttl=args.canary_ttl, fresh=args.fresh,
                        log=progress.info)
    if args.json:
        print(json.dumps({"host": host.to_json(), "backends": [p.to_json() for p in results]},
                         indent=1))
        return 0
    print(f"host: {host.os} {host.kernel} {host.arch}, {host.cpu or 'unknown CPU'}")
    width = max(len(p.backend) for p in results)
    for p in results:
        print(f"  {p.backend:<{width}} {p.status:<9} {p.reason}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .images.cache import Cache
    from .images.store import ImageError, ImageStore
    from .plan import expand
    from .progress import DownloadBar, Progress

    matrix, guests = _load(args)
    wanted = args.guest_ids or sorted({c.guest.id for c in expand(matrix, guests)
                                       if not args.tag or set(args.tag) & set(c.guest.tags)})
    unknown = [g for g in wanted if g not in guests]
    if unknown:
        raise UsageError(f"no guest {unknown[0]!r} (known: {', '.join(sorted(guests))})")
    progress = Progress(live=False)
    store = ImageStore(Cache(verify=args.verify_cache), args.offline, progress.info,
                       progress=DownloadBar())
    failed = 0
    for gid in wanted:
        print(f"{gid}:")
        try:
            images = store.resolve_guest(guests[gid])
        except ImageError as exc:
            failed += 1
            print(f"  FAILED: {exc}")
            continue
        for name, img in images.items():
            pinned = "" if img.details.get("pinned", True) else "  (UNPINNED: no digest)"
            print(f"  {name}: {img.sha256}  {img.source}{pinned}")
    return 1 if failed else 0


def cmd_cache(args: argparse.Namespace) -> int:
    from .images.cache import Cache
    from .images.manage import human_size, import_dir, listing, parse_duration, parse_size

    cache = Cache()
    if args.cache_command == "ls":
        for line in listing(cache):
            print(line)
        print(f"\n{cache.root}")
        return 0
    if args.cache_command == "prune":
        try:
            older = parse_duration(args.older_than) if args.older_than else None
            limit = parse_size(args.max_size) if args.max_size else None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if older is None and limit is None:
            raise UsageError("cache prune needs --older-than, --max-size or both")
        removed, freed = cache.prune(older, limit)
        print(f"removed {removed} files, freed {human_size(freed)}")
        return 0
    _, guests = _load(args)
    if not args.folder.is_dir():
        raise UsageError(f"no folder {args.folder}")
    found = import_dir(cache, args.folder, guests)
    for item in found:
        if item.images:
            print(f"imported {item.path}  for {', '.join(item.images)}")
    skipped = [i for i in found if not i.images]
    print(f"{len(found) - len(skipped)} files imported, {len(skipped)} named by no guest file")
    return 0


def cmd_try(args: argparse.Namespace) -> int:
    from .backends import registry
    from .tryout.command import TryOptions, run_try
    from .tryout.source import TryError

    backends = args.backend or ["tcg"]
    unknown = [b for b in backends if b not in registry.names()]
    if unknown:
        raise UsageError(f"--backend: unknown {', '.join(unknown)} (known: "
                         f"{', '.join(registry.names())})")
    if not args.image and not args.kernel:
        raise UsageError("give an IMAGE, or --kernel")
    if args.write is not None and args.write.suffix != ".yaml":
        raise UsageError("--write: a guest file is named ID.yaml")
    out = _out_dir("--out", args.out) if args.out else None
    opts = TryOptions(args.image, backends, args.firmware, args.arch, args.kernel, args.initrd,
                      args.append, args.sha256, args.write, args.time, not args.no_answer,
                      args.quiet, memory=args.memory, out=out, offline=args.offline,
                      hang=args.hang)
    try:
        return run_try(opts)
    except TryError as exc:
        raise UsageError(str(exc)) from None


def cmd_needle(args: argparse.Namespace) -> int:
    from .console.screen import cut_needle

    if not args.screenshot.is_file():
        raise UsageError(f"no screenshot {args.screenshot}")
    if not 0 < args.threshold <= 1:  # NaN fails this too
        raise UsageError("--threshold must be in (0, 1]")
    try:
        w, h = cut_needle(str(args.screenshot), args.x, args.y, args.w, args.h, str(args.out))
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.out} ({w}x{h}); a milestone using it (image: relative to the guest "
          "file):")
    print(f"  - {{name: NAME, needle: {{image: {args.out.name}, x: {args.x}, y: {args.y}, "
          f"threshold: {args.threshold}}}}}")
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    from . import reproduce
    from .executor import CellContext

    _console_transport(args)
    args.interactive = args.interactive or args.gdb
    if args.interactive and args.times != 1:
        raise UsageError("--interactive and --gdb replay once (leave out --times)")
    source = args.source or args.matrix.parent / "reports" / "latest"
    run, recorded = reproduce.recorded_cell(source, args.cell)
    matrix, guests = _load(args)
    cells = [reproduce.rebuild(recorded, matrix, guests)]
    _require(args, cells)
    gdb_port = _gdb_setup(cells) if args.gdb else None
    ctx = CellContext(Path(), keep=args.keep, interactive=args.interactive, gdb_port=gdb_port)
    out = _out_dir("--out", args.out or args.matrix.parent / "reports")
    done = reproduce.replay(run, recorded, cells[0], out, args.times, ctx)
    if args.keep:
        _print_overlays(done.folder)
    print(done.summary())
    print(f"replays in {done.folder}")
    if done.lost:
        print("incomplete: the replay's folder could not be written in full:\n  "
              + "\n  ".join(done.lost.values()), file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0 if done.ok else 1


def _console_transport(args: argparse.Namespace) -> None:
    """--console-transport wins over $HARNESS_CONSOLE; it is passed on through the
    environment, as the variable would be (and recorded in results.json's env). A bad
    $HARNESS_CONSOLE is a usage error now, not an error in every cell."""
    from .backends.transport import ENV, choose

    try:
        choose(args.console_transport)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.console_transport:
        os.environ[ENV] = args.console_transport


def _require(args: argparse.Namespace, cells: list) -> None:
    """--gdb and --interactive need backends that have them: a usage error otherwise."""
    if not (args.gdb or args.interactive):
        return
    from .backends import registry

    for flag, capability in (("--gdb", "gdb"), ("--interactive", "interactive")):
        if getattr(args, flag[2:]) and (lacking := registry.lacking(cells, capability)):
            raise UsageError(f"{flag} needs a backend with a {capability} capability; "
                             f"{', '.join(lacking)} has none (backends.yaml)")


def _gdb_setup(cells: list) -> int:
    """A free port for the gdb stub, the deadlines lifted, and the command to attach."""
    from .executor import for_gdb, free_port

    cells[:] = [for_gdb(c) for c in cells]
    port = free_port()
    print(f"the VM starts paused with its gdb stub on 127.0.0.1:{port}; attach with:\n"
          f"  gdb -ex 'target remote 127.0.0.1:{port}'   (then `continue`)", file=sys.stderr)
    return port


def _print_overlays(folder: Path) -> None:
    for overlay in sorted(folder.rglob("*.overlay.qcow2")):
        print(f"kept overlay (the guest's writes): {overlay}")


def _pages(run_dir: Path) -> Comparison | None:
    """Record a finished run in the history and write its pages; its changes."""
    import sqlite3

    from .results.after import write_pages

    try:
        changes = write_pages(run_dir)
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"harness: the run's pages were not written: {exc}", file=sys.stderr)
        return None
    print(f"page: {run_dir / 'index.html'} ({len(changes.regressions)} regressions, "
          f"{len(changes.fixes)} fixes since the previous runs)")
    for c in changes.regressions:
        print(f"  REGRESSION {c.cell_id}: {c.before} -> {c.after} (vs {c.baseline_run})")
    for t in changes.test_regressions:
        print(f"  TEST REGRESSION {t.cell_id}: {t.name}: {t.before} -> {t.after} "
              f"(vs {t.baseline_run})")
    return changes


def cmd_report(args: argparse.Namespace) -> int:
    import sqlite3

    from .results.report import BaselineError
    from .results.report import build as build_report
    from .results.store import load_results

    for d in args.runs:
        if not (d / "results.json").is_file():
            raise UsageError(f"{d}: no results.json (not a run folder)")
        try:
            load_results(d)
        except OSError as exc:
            raise UsageError(f"{d / 'results.json'}: {exc.strerror or exc}") from None
        except ValueError as exc:  # names the file and the place
            raise UsageError(str(exc)) from None
    try:
        built = build_report(args.runs, args.baseline, args.history)
    except BaselineError as exc:
        raise UsageError(f"--baseline: {exc}") from None
    except (OSError, ValueError, sqlite3.Error) as exc:
        raise UsageError(str(exc)) from None
    say = sys.stderr if args.format else sys.stdout
    for run_id, c in built.comparisons.items():
        print(f"{run_id}: {len(c.regressions)} regressions, {len(c.fixes)} fixes, "
              f"{len(c.new)} new cells", file=say)
        for ch in c.regressions:
            print(f"  REGRESSION {ch.cell_id}: {ch.before} -> {ch.after} (vs {ch.baseline_run})",
                  file=say)
    print(f"{len(built.pages)} pages written; open {args.runs[-1] / 'index.html'}", file=say)
    if args.format:
        from .results import table

        print("\n".join(table.render(t, args.format) for t in built.tables.values()), end="")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from .progress import summary_table
    from .results.merge import MergeError, merge

    _out_dir("--out", args.out)
    try:
        store = merge(args.runs, args.out)
    except MergeError as exc:
        raise UsageError(str(exc)) from None
    print(summary_table(store.cells, colour=sys.stdout.isatty()))
    print(f"\nmerged {len(args.runs)} runs into {store.folder}")
    _pages(store.folder)
    if store.lost:
        print("incomplete: the merged folder could not be written in full:\n  "
              + "\n  ".join(store.lost.values()), file=sys.stderr)
        return EXIT_INCOMPLETE
    return 1 if any(c.verdict.is_failure() for c in store.cells) else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from . import knowledge
    from .cluster import serve, usable_backends

    slots = args.slots or os.cpu_count() or 1
    if args.connect_timeout <= 0:
        raise UsageError("--connect-timeout must be more than 0 seconds")
    if args.advertise:
        backends = [b.strip() for b in args.advertise.split(",") if b.strip()]
        unknown = [b for b in backends if b not in knowledge.backends()]
        if unknown:
            raise UsageError(f"--advertise {unknown[0]!r}: unknown backend")
    else:
        backends = usable_backends(log=lambda m: print(m, file=sys.stderr))
    if not backends:
        raise UsageError("this host runs no backend; nothing to offer")
    print(f"joining {args.scheduler} with {', '.join(f'backend-{b}={slots}' for b in backends)}",
          file=sys.stderr)
    signal.signal(signal.SIGTERM, _terminate)
    serve(args.scheduler, backends, slots, args.name, args.connect_timeout)
    print("harness: the scheduler went away; the worker stopped", file=sys.stderr)
    return 0


def cmd_bisect(args: argparse.Namespace) -> int:
    from .bisect import Bisector, candidate_quirks
    from .images.cache import Cache
    from .images.store import ImageStore
    from .plan import expand
    from .results.store import new_run_id

    matrix, guests = _load(args)
    cells = expand(matrix, guests, only=[args.cell])
    if len(cells) != 1:
        raise UsageError(f"{args.cell!r} names {len(cells)} cells; give one cell id")
    cell = cells[0]
    try:
        candidates = candidate_quirks(cell, args.candidates)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    images = ImageStore(Cache(), log=print).resolve_guest(cell.guest)
    out = _out_dir("--out", args.out or args.matrix.parent / "reports") / f"bisect-{new_run_id()}"
    print(f"bisecting {cell.id} over {len(candidates)} candidate quirks "
          f"(at most {args.max_runs} boots) -> {out}")
    bisector = Bisector(cell, images, out, args.max_runs)
    base, found = bisector.run(candidates)
    bisector.write_summary(candidates, base, found)
    if found is None:
        print(f"no candidate quirk gets {cell.id} further than without "
              f"({base.reached[0]} milestones, {base.result.verdict})")
        return 1
    print(f"minimal quirks for {cell.id}: {', '.join(found.quirks)} -> {found.result.verdict}, "
          f"{found.reached[0]} milestones (without: {base.result.verdict}, "
          f"{base.reached[0]}); {len(bisector.trials)} boots")
    return 0
