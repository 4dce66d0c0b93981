"""What is typed for a payload step, and how its output is found again (pure).

A posix step is typed as one line that prints a start marker, runs the
command through `eval`, prints the file asked for in base64 between two
more markers, and an end marker with the command's exit status:

    printf '@@GH:%s:B@@\\n' TOKEN; eval 'CMD'; gh_s=$?; printf … "$gh_s"

The markers are built by printf from a format and the random token as two
arguments, so the echoed command line never holds a marker literally: the
echo (however the terminal wraps it, whatever escapes it adds) cannot end
the step. Markers are looked for in the cleaned console text (ANSI removed).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import shlex
from dataclasses import dataclass

from ..model import PayloadStep


def new_token() -> str:
    return secrets.token_hex(6)


def marker(token: str, kind: str) -> str:
    return f"@@GH:{token}:{kind}@@"


def end_pattern(token: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"@@GH:{token}:E:") + r"(\d+)@@")


def typed(step: PayloadStep, token: str) -> str:
    """The text typed on the console for `step` (with its newline)."""
    if step.shell == "raw":
        return f"{step.run}\n" if step.run is not None else ""
    parts = [f"printf '@@GH:%s:B@@\\n' {token}", f"eval {shlex.quote(step.run or ':')}",
             "gh_s=$?"]
    if step.file_on_console:
        parts += [f"printf '\\n@@GH:%s:F@@\\n' {token}", f"base64 {shlex.quote(step.file)}"]
    parts.append(f"printf '\\n@@GH:%s:E:%s@@\\n' {token} \"$gh_s\"")
    return "; ".join(parts) + "\n"


@dataclass
class Framed:
    """A finished posix step's console, taken apart."""

    output: str
    status: int
    file: bytes | None = None
    file_error: str | None = None


def _between(text: str, start: str) -> str:
    """The text after the line holding `start`, line endings made plain."""
    i = text.find(start)
    body = text[i + len(start):] if i >= 0 else text
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body[1:] if body.startswith("\n") else body


def take_apart(text: str, token: str, want_file: bool) -> Framed | None:
    """The output, status and file of a step whose end marker is in `text`, else None."""
    end = end_pattern(token).search(text)
    if end is None:
        return None
    status = int(end.group(1))
    head = text[:end.start()]
    begin = marker(token, "B")
    file_at = head.find(marker(token, "F")) if want_file else -1
    body = head[:file_at] if file_at >= 0 else head
    output = _between(body, begin) if begin in body else ""
    output = output.rstrip("\n")  # the newline before the marker, and the last line's
    framed = Framed(output, status)
    if want_file:
        if file_at < 0:
            framed.file_error = "the file's markers never came"
        else:
            encoded = "".join(_between(head[file_at:], marker(token, "F")).split())
            try:
                framed.file = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                shown = _between(head[file_at:], marker(token, "F")).strip()[:200]
                framed.file_error = f"not base64 (the guest said: {shown!r})"
    return framed
