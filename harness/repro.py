"""Reproducing a cell without the harness: a standalone repro.sh.

repro.sh is POSIX shell, one writer for every backend's `Launch`: it takes
each image from the harness cache when it is there, else downloads it by
its recorded URL (curl or wget) and checks its SHA-256, writes the launch's
files, copies the UEFI variables, runs the setup commands (a qcow2 overlay
for a writable disk, a VM's registration), then the exact VMM command line
with the console on the terminal, and the teardown commands when it ends
or on Ctrl-C; saying what it does before doing it. Every recorded path
(cell folder, socket folder, images) becomes a variable.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from . import __version__
from .backends.base import Launch
from .images.store import ResolvedImage
from .model import Cell

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


def repro_script(cell: Cell, images: dict[str, ResolvedImage], launch: Launch,
                 folder: Path, run_id: str) -> str:
    """repro.sh for one attempt of a cell, whichever backend ran it."""
    out = ["#!/bin/sh",
           f"# Reproduces cell {cell.id} of run {run_id} (guest-harness {__version__}) on "
           f"{cell.backend}.",
           "# Images come from the harness cache ($HARNESS_CACHE) when present, else from",
           "# their recorded URLs, checked by SHA-256. Work files go to $REPRO_DIR (default:",
           "# a new temporary folder). The console is this terminal; the VM ends when the",
           "# guest powers off or resets, or: kill the PID it prints. Teardown commands",
           "# (if any) run when it ends or on Ctrl-C.", _PRELUDE]
    replace = {str(folder): "$WORK", str(folder.resolve()): "$WORK"}
    if isinstance(launch.monitor, Path):
        replace[str(launch.monitor.parent)] = "$WORK"
    for i, (name, img) in enumerate(sorted(images.items())):
        out += _image_block(f"IMG{i}", name, img)
        replace[str(img.path)] = replace[str(img.path.resolve())] = f"${{IMG{i}}}"

    def sub(text: str) -> str:  # file text for an unquoted here-document
        for old, new in sorted(replace.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(old, new)
        return text

    def line(argv: list[str]) -> str:
        return " ".join(_word(a, replace) for a in argv)

    for path, text in launch.files.items():
        out += [f'say "writing {sub(str(path))}"', f'cat > "{sub(str(path))}" <<REPRO_EOF',
                sub(text).rstrip("\n"), "REPRO_EOF"]
    if launch.vars_template is not None and launch.vars_file is not None:
        vars_file = _word(str(launch.vars_file), replace)
        out += [f'say "copying the UEFI variables template {launch.vars_template}"',
                f"cp {shlex.quote(str(launch.vars_template))} {vars_file}"]
    for tree, tar in launch.trees.items():
        dest = _word(str(tree), replace)
        out += [f'say "unpacking the network boot tree into {dest}"',
                f"mkdir -p {dest} && tar -xf {_word(str(tar), replace)} -C {dest}"]
    if launch.teardown:
        out += ["teardown() {", *(f"  {line(a)} || true" for a in launch.teardown), "}",
                "trap teardown EXIT INT TERM"]
    out += [f"say {shlex.quote('running: ' + ' '.join(a[:3]))}; {line(a)}"
            for a in launch.done_before + launch.setup]
    argv = launch.terminal_argv or launch.argv  # the console on this terminal, not a socket
    words = [_word(a, replace) for a in argv]
    lines, i = [], 0
    while i < len(words):  # an option and its value on one line
        if words[i].startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("-"):
            lines.append(f"{words[i]} {words[i + 1]}")
            i += 2
        else:
            lines.append(words[i])
            i += 1
    run = ("" if launch.teardown else "exec ") + " \\\n  ".join(lines)
    out += [f"say {shlex.quote('starting ' + cell.backend + '; its console follows:')}",
            "say " + shlex.quote(shlex.join(argv)), run]
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
                      f"{q('./' + member)} 2>/dev/null || unzip -p {src} {q(member)}) > {target}"
                      f" || {{ rm -f {target}; xorriso -osirrox on -indev {src} -extract "
                      f"{q('/' + member)} {target} >/dev/null 2>&1; }}"]
            src = target
        if src != target:
            lines.append(f"  mv {src} {target}")
        lines += [f"  verify {q(name)} {target} {img.sha256}", f"  {var}={target}"]
    elif img.source.startswith("file:"):
        q, path = shlex.quote, img.source[5:]
        lines += [f"  [ -f {q(path)} ] || die {q(name + ': no file ' + path)}",
                  f"  verify {q(name)} {q(path)} {img.sha256}",
                  f"  {var}={q(path)}"]
    else:  # deb:, build: and from: images come from the harness itself
        if img.source.startswith("deb:"):
            how = f"package {d.get('package')} {d.get('version')} ({d.get('arch')})"
        elif img.source.startswith("from:"):
            how = f"{d.get('member')} out of image {img.source[5:]}"
        else:
            how = f"recipe {img.source[6:]}"
        why = f"{name}: not in the cache; it comes from {how}: run `harness fetch` first"
        lines.append(f"  die {shlex.quote(why)}")
    lines.append("fi")
    return lines
