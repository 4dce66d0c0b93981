"""Bytes from a console to matchable text: UTF-8 decoded, ANSI escapes removed.

Incremental: a multi-byte character or an escape sequence split across two
reads is held back until it is complete, so matching never sees half of one.
"""

from __future__ import annotations

import codecs
import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings,
# charset designations (ESC ( B) and the two-byte escapes (ESC 7, ESC =, ...;
# not the introducers of the longer forms, which wait for the rest).
ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|[PX^_][^\x1b]*\x1b\\"
    r"|[()*+\-./][0-~]"
    r"|[0-OQ-WYZ\\`-~])"
)
MAX_PENDING = 256  # an "escape sequence" longer than this is let through as text


def strip_ansi(text: str) -> str:
    """`ANSI.sub("", text)`, several times faster on console text.

    `str.find` (memchr) jumps from ESC to ESC where the regex engine would
    test every character; escapes are sparse in real consoles.
    """
    at = text.find("\x1b")
    if at == -1:
        return text
    out: list[str] = []
    last = 0
    match = ANSI.match
    while at != -1:
        m = match(text, at)
        if m is None:
            at = text.find("\x1b", at + 1)
            continue
        out.append(text[last:at])
        last = m.end()
        at = text.find("\x1b", last)
    out.append(text[last:])
    return "".join(out)


class Cleaner:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def feed(self, data: bytes) -> str:
        text = self._decoder.decode(data)
        if self._pending:
            text = self._pending + text
            self._pending = ""
        esc = text.rfind("\x1b")
        if esc == -1:
            return text
        if len(text) - esc < MAX_PENDING and not ANSI.match(text, esc):
            self._pending = text[esc:]
            text = text[:esc]
        return strip_ansi(text)

    def flush(self) -> str:
        """What is held back, at the end of the stream."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return strip_ansi(text)
