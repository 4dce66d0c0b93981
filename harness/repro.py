"""Reproducing a cell: a standalone repro.sh, and `harness repro` through the harness.

repro.sh is POSIX shell: it takes each image from the harness cache when it
is there, else downloads it by its recorded URL (curl or wget) and checks
its SHA-256, prepares the same media (a qcow2 overlay for a writable disk,
a copy of the UEFI variables) and runs the exact QEMU command line with the
console on the terminal, saying what it does before doing it.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .backends.media import image_format
from .backends.qemu import QemuLaunch
from .backends.vmm import VmmLaunch
from .images.store import ResolvedImage
from .model import Cell, CellResult

# how repro.sh turns a download into the image, per `decompress`
_DECOMPRESS = {"gz": "gzip -dc", "xz": "xz -dc", "bz2": "bzip2 -dc", "zst": "zstd -dc"}

_PRELUDE = r'''set -eu
CACHE="${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/guest-harness}"
WORK="${REPRO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/repro.XXXXXX")}"
mkdir -p "$WORK"
say() { printf 'repro: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}
download() {  # download FILE URL
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$1" "$2"
  else wget -q -O "$1" "$2"; fi
}
# image NAME SHA256: sets IMG to a verified file, from the cache or downloaded
image() {
  IMG="$CACHE/blobs/sha256/$2"
  if [ -f "$IMG" ]; then say "$1: from the harness cache ($IMG)"; return 0; fi
  IMG="$WORK/$1"
  [ -f "$IMG" ] && [ "$(sha256 "$IMG")" = "$2" ] && { say "$1: already in $WORK"; return 0; }
  return 1
}
verify() {  # verify NAME FILE SHA256
  got=$(sha256 "$2")
  [ "$got" = "$3" ] || die "$1: sha256 mismatch: expected $3, got $got"
  say "$1: sha256 verified"
}
'''


def vmm_repro_script(cell: Cell, images: dict[str, ResolvedImage], launch: VmmLaunch,
                     folder: Path, run_id: str) -> str:
    """repro.sh for a cell of a VMM other than QEMU: its files, setup, VM and teardown."""
    out = ["#!/bin/sh",
           f"# Reproduces cell {cell.id} of run {run_id} (guest-harness {__version__}) on "
           f"{cell.backend}.",
           "# Images come from the harness cache ($HARNESS_CACHE) when present, else from",
           "# their recorded URLs, checked by SHA-256. The VM's files go to $REPRO_DIR",
           "# (default: a new temporary folder); its console is this terminal, and the",
           "# teardown commands run when it ends or on Ctrl-C.", _PRELUDE]
    replace = {str(folder): "$WORK"}
    for i, (name, img) in enumerate(sorted(images.items())):
        out += _image_block(f"IMG{i}", name, img)
        replace[str(img.path)] = f"${{IMG{i}}}"

    def sub(text: str) -> str:  # file text for an unquoted here-document
        for old, new in sorted(replace.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(old, new)
        return text

    def line(argv: list[str]) -> str:
        return " ".join(_word(a, replace) for a in argv)

    for path, text in launch.files.items():
        out += [f'say "writing {sub(str(path))}"', f'cat > "{sub(str(path))}" <<REPRO_EOF',
                sub(text).rstrip("\n"), "REPRO_EOF"]
    if launch.vars_template is not None:
        out.append(f'cp {shlex.quote(str(launch.vars_template))} "$WORK/efivars.fd"')
    if launch.teardown:
        out += ["teardown() {", *(f"  {line(a)} || true" for a in launch.teardown), "}",
                "trap teardown EXIT INT TERM"]
    out += [f"say {shlex.quote('running: ' + a[0] + ' ' + a[1])}; {line(a)}"
            for a in launch.setup]
    out += [f"say {shlex.quote('starting ' + cell.backend + '; its console follows')}",
            line(launch.argv)]
    return "\n".join(out) + "\n"


def _word(arg: str, replace: dict[str, str]) -> str:
    """One shell word: the recorded paths in `arg` become variables, the rest stays literal."""
    olds = sorted((o for o in replace if o and o in arg), key=len, reverse=True)
    if not olds:
        return shlex.quote(arg)
    parts, pos = [], 0
    for m in re.finditer("|".join(map(re.escape, olds)), arg):
        parts += [_DQ_SPECIAL.sub(r"\\\g<0>", arg[pos:m.start()]), replace[m.group()]]
        pos = m.end()
    parts.append(_DQ_SPECIAL.sub(r"\\\g<0>", arg[pos:]))
    return '"' + "".join(parts) + '"'


_DQ_SPECIAL = re.compile(r'[\\"$`]')  # what a double-quoted shell word would expand


def _image_block(var: str, name: str, img: ResolvedImage) -> list[str]:
    """Shell lines that set ${var} to the verified image."""
    d = img.details
    lines = [f"if image {shlex.quote(name)} {img.sha256}; then {var}=$IMG; else"]
    if img.source.startswith("url:"):
        url = d.get("url") or img.source[4:]
        download_sha = d.get("download_sha256", img.sha256)
        dl = f'"$WORK/{name}.download"'
        q = shlex.quote
        lines += [f"  say {q(name + ': downloading ' + url)}",
                  f"  download {dl} {q(url)} || die {q(name + ': download failed')}",
                  f"  verify {q(name)} {dl} {download_sha}"]
        src = dl
        kind = d.get("decompress")
        if kind in _DECOMPRESS:
            lines += [f"  say {q(name + ': decompressing (' + kind + ')')}",
                      f'  {_DECOMPRESS[kind]} {src} > "$WORK/{name}.plain"']
            src = f'"$WORK/{name}.plain"'
        target = f'"$WORK/{name}"'
        if d.get("member"):
            member = d["member"]
            lines += [f"  say {q(name + ': taking ' + member + ' out of the archive')}",
                      f"  (tar -xOf {src} {q(member)} 2>/dev/null || tar -xOf {src} "
                      f"{q('./' + member)} 2>/dev/null || unzip -p {src} {q(member)}) > {target}"]
            src = target
        if src != target:
            lines.append(f"  mv {src} {target}")
        lines += [f"  verify {q(name)} {target} {img.sha256}", f"  {var}={target}"]
    elif img.source.startswith("file:"):
        q, path = shlex.quote, img.source[5:]
        lines += [f"  [ -f {q(path)} ] || die {q(name + ': no file ' + path)}",
                  f"  verify {q(name)} {q(path)} {img.sha256}",
                  f"  {var}={q(path)}"]
    else:  # deb: and build: images come from the harness itself
        how = (f"package {d.get('package')} {d.get('version')} ({d.get('arch')})"
               if img.source.startswith("deb:") else f"recipe {img.source[6:]}")
        why = f"{name}: not in the cache; it comes from {how}: run `harness fetch` first"
        lines.append(f"  die {shlex.quote(why)}")
    lines.append("fi")
    return lines


def repro_script(cell: Cell, result: CellResult, images: dict[str, ResolvedImage],
                 launch: QemuLaunch, media: dict[str, Path], run_id: str) -> str:
    """The text of repro.sh for one attempt of a cell."""
    out = ["#!/bin/sh",
           f"# Reproduces cell {cell.id} of run {run_id} (guest-harness {__version__}).",
           "# Images come from the harness cache ($HARNESS_CACHE) when present, else from",
           "# their recorded URLs, checked by SHA-256. Work files go to $REPRO_DIR (default:",
           "# a new temporary folder). The console is this terminal; QEMU ends when the",
           "# guest powers off or resets (-no-reboot), or: kill the PID it prints.",
           _PRELUDE]
    replace: dict[str, str] = {}
    for i, (name, img) in enumerate(sorted(images.items())):
        var = f"IMG{i}"
        out += _image_block(var, name, img)
        replace[str(media.get(name, img.path))] = f"${{{var}}}"
        replace[str(img.path)] = f"${{{var}}}"
    boot = cell.guest.boot
    if boot.image and str(media.get(boot.image, "")).endswith(".overlay.qcow2"):
        var = f"IMG{sorted(images).index(boot.image)}"
        fmt = image_format(images[boot.image].path)
        out += [f'say "creating the writable overlay $WORK/{boot.image}.overlay.qcow2"',
                f'qemu-img create -q -f qcow2 -b "${{{var}}}" -F {fmt} '
                f'"$WORK/{boot.image}.overlay.qcow2"']
        replace[str(media[boot.image])] = f"$WORK/{boot.image}.overlay.qcow2"
    if launch.vars_template is not None:
        out += [f'say "copying the UEFI variables template {launch.vars_template}"',
                f'cp {shlex.quote(str(launch.vars_template))} "$WORK/efivars.fd"']
    argv = []
    for arg in launch.argv:
        quoted = _word(arg, replace)
        if "efivars.fd" in arg and launch.vars_template is not None:
            quoted = '"' + arg[: arg.index("file=") + 5] + '$WORK/efivars.fd"'
        if arg.startswith("unix:") and "qmp.sock" in arg:
            quoted = '"unix:$WORK/qmp.sock,server=on,wait=off"'
        argv.append(quoted)
    lines, i = [], 0
    while i < len(argv):  # an option and its value on one line
        if argv[i].startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            lines.append(f"{argv[i]} {argv[i + 1]}")
            i += 2
        else:
            lines.append(argv[i])
            i += 1
    out += ['say "running QEMU (console below; QMP at $WORK/qmp.sock):"',
            "say " + shlex.quote(" ".join(launch.argv)),
            "exec " + " \\\n  ".join(lines)]
    return "\n".join(out) + "\n"


@dataclass
class Replay:
    recorded: dict[str, Any]
    results: list[CellResult]

    def reproduced(self, r: CellResult) -> bool:
        """Same verdict and the same last milestone reached."""
        return (str(r.verdict) == self.recorded["verdict"]
                and last_milestone(r.milestones) == last_milestone(self.recorded["milestones"]))

    def summary(self) -> str:
        counts = Counter(f"{r.verdict}" for r in self.results)
        same = sum(self.reproduced(r) for r in self.results)
        dist = ", ".join(f"{v} {n}" for v, n in counts.most_common())
        flaky = " (flaky: the runs disagree)" if len(counts) > 1 else ""
        return (f"recorded: {self.recorded['verdict']} at "
                f"{last_milestone(self.recorded['milestones']) or 'no milestone'}; "
                f"replayed {len(self.results)}x: {dist}{flaky}; reproduced {same}/"
                f"{len(self.results)}")


def last_milestone(milestones: list[Any]) -> str | None:
    reached = [m for m in milestones
               if (m["reached"] if isinstance(m, dict) else m.reached)]
    if not reached:
        return None
    last = reached[-1]
    return last["name"] if isinstance(last, dict) else last.name
