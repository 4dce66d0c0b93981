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
        return ANSI.sub("", text)

    def flush(self) -> str:
        """What is held back, at the end of the stream."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return ANSI.sub("", text)
