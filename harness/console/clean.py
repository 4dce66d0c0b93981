"""Bytes from a console to matchable text: UTF-8 decoded, escapes and controls removed.

What comes out holds no character a terminal acts on but newline, tab and
carriage return (kept so that patterns and the transcript see CRLF lines as
before; the transcript turns a lone CR into a line break): the other C0
controls, DEL and the C1 controls (U+0080-U+009F) are removed, and so is
every escape sequence, whole: CSI (ESC [ ... final byte), the strings OSC,
DCS, SOS, PM and APC (ESC ] P X ^ _ ... up to BEL or ST), charset
designations (ESC ( B) and the two-character escapes (ESC 7, ESC c...).

A state machine, fed read by read: a sequence split across reads, however
long, is dropped as it comes and never reaches the text (an OSC 52
clipboard write of 100 kB split over 1000 reads included). An ESC that
starts no valid sequence is dropped alone; an ESC inside a string ends the
string and starts a new sequence (as in a terminal). One safety valve for
broken consoles: a string longer than MAX_PENDING characters also ends at
a newline, so a stray `ESC ]` in line noise cannot swallow the rest of a
boot; the text after that newline has no ESC and is harmless.
"""

from __future__ import annotations

import codecs
import re

MAX_PENDING = 256  # characters of an unterminated string after which a newline ends it

# C0 controls removed before decoding (all but BEL, TAB, LF, CR and ESC, which
# the state machine needs or keeps), and DEL. No UTF-8 byte sequence holds these
# bytes, so deleting them cannot break a character.
_C0 = bytes([*range(0x00, 0x07), 0x08, 0x0B, 0x0C, *range(0x0E, 0x1B), *range(0x1C, 0x20),
             0x7F])
_C1 = {c: None for c in range(0x80, 0xA0)}

_TEXT, _ESC, _CSI, _NF, _STRING, _STRING_ESC = range(6)
_CSI_STOP = re.compile(r"[^\x20-\x3f]")  # anything but parameter and intermediate bytes
_NF_STOP = re.compile(r"[^\x20-\x2f]")  # anything but intermediate bytes
_STRING_STOP = re.compile(r"[\x07\x1b\n]")  # BEL, ESC (of ST, or a new sequence), the valve
_STRINGS = frozenset("]PX^_")  # OSC, DCS, SOS, PM, APC
# A whole sequence that the state machine below would drop, matched at once (it drops
# exactly this span: the same final bytes, and strings without a newline).
_WHOLE = re.compile(r"\x1b(?:\[[\x20-\x3f]*[\x40-\x7e]|[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)"
                    r"|[\x20-\x2f]+[\x30-\x7e]|[\x30-\x4f\x51-\x57\x59\x5a\\\x60-\x7e])")


class Cleaner:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._state = _TEXT
        self._length = 0  # characters of the current string dropped so far

    def feed(self, data: bytes) -> str:
        return self._clean(self._decoder.decode(data.translate(None, _C0)))

    def flush(self) -> str:
        """The end of the stream: an unfinished sequence is dropped."""
        text = self._clean(self._decoder.decode(b"", final=True))
        self._state = _TEXT
        return text

    def _clean(self, text: str) -> str:
        if not text.isascii():
            text = text.translate(_C1)
        if self._state == _TEXT and "\x1b" not in text:
            return text.replace("\x07", "") if "\x07" in text else text
        return self._run(text)

    def _run(self, text: str) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            state = self._state
            if state == _TEXT:
                j = text.find("\x1b", i)
                while j != -1:  # the common case: short sequences, complete in this read
                    out.append(text[i:j])
                    m = _WHOLE.match(text, j)
                    if m is None:
                        break
                    i = m.end()
                    j = text.find("\x1b", i)
                if j == -1:
                    out.append(text[i:])
                    break
                self._state, i = _ESC, j + 1
            elif state == _ESC:
                c = text[i]
                if c == "[":
                    self._state, i = _CSI, i + 1
                elif c in _STRINGS:
                    self._state, self._length, i = _STRING, 0, i + 1
                elif " " <= c <= "/":
                    self._state, i = _NF, i + 1
                elif "0" <= c <= "~":
                    self._state, i = _TEXT, i + 1  # a two-character escape
                else:
                    self._state = _TEXT  # a lone ESC: dropped, what follows is text
            elif state in (_CSI, _NF):
                m = (_CSI_STOP if state == _CSI else _NF_STOP).search(text, i)
                if m is None:
                    break  # the rest is all parameters: dropped, still inside
                j = m.start()
                final = ("@" if state == _CSI else "0") <= text[j] <= "~"
                self._state, i = _TEXT, j + 1 if final else j
            elif state == _STRING:
                m = _STRING_STOP.search(text, i)
                if m is None:
                    self._length += n - i
                    break
                j = m.start()
                self._length += j - i
                c = text[j]
                if c == "\x07":
                    self._state, i = _TEXT, j + 1
                elif c == "\x1b":
                    self._state, i = _STRING_ESC, j + 1
                elif self._length > MAX_PENDING:  # the valve: the newline is text again
                    self._state, i = _TEXT, j
                else:
                    self._length, i = self._length + 1, j + 1
            else:  # _STRING_ESC: ST ends the string, any other ESC starts a new sequence
                if text[i] == "\\":
                    self._state, i = _TEXT, i + 1
                else:
                    self._state = _ESC
        joined = "".join(out)
        return joined.replace("\x07", "") if "\x07" in joined else joined
