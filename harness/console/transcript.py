"""A console's transcript on disk: the bytes as read and a timestamped text log.

Its own module so that the session (which writes the serial console) and
the screen watcher (which writes the screen's new lines) share it without
importing each other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO

MAX_RAW = 256 << 20  # the raw transcript stops growing here (the log says so)
TAIL = 64 << 10  # bytes of console text kept in memory for reports
_CRLF = re.compile(r"\r+\n")


class Transcript:
    """NAME.raw (bytes as read, capped) and NAME.log ("[  t] line"); no .raw with raw=False."""

    def __init__(self, folder: Path, max_raw: int = MAX_RAW, name: str = "console",
                 raw: bool = True) -> None:
        self.raw: IO[bytes] | None = (folder / f"{name}.raw").open("wb") if raw else None
        self.log: IO[str] = (folder / f"{name}.log").open("w", encoding="utf-8",
                                                          errors="replace")
        self.max_raw = max_raw
        self.raw_bytes = 0
        self.tail = ""
        self._at_line_start = True
        self._pending: list[str] = []  # notes waiting for the guest's line to end

    def write(self, data: bytes, text: str, t: float) -> None:
        if self.raw is not None and data and self.raw_bytes < self.max_raw:
            room = self.max_raw - self.raw_bytes
            self.raw.write(data[:room])
            self.raw_bytes += min(len(data), room)
            if self.raw_bytes >= self.max_raw:
                self.note(t, f"console.raw truncated at {self.max_raw} bytes")
        if not text:
            return
        stamp = f"[{t:9.3f}] "
        if "\r" in text:  # CRLF is a line end; a lone CR (a progress bar's) starts a line too
            text = _CRLF.sub("\n", text).rstrip("\r").replace("\r", "\n")
        lines = text.split("\n")
        out = []
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            out.append((stamp if self._at_line_start else "") + line + ("" if last else "\n"))
            self._at_line_start = not last
            if not last and self._pending:  # the line they concern is whole now
                out += self._pending
                self._pending = []
        self.log.write("".join(out))
        self.tail = (self.tail + text)[-TAIL:]

    def note(self, t: float, message: str) -> None:
        """A line of the harness's own, marked as such, in the text log. It never splits
        a guest's line: in the middle of one (a read ended there), it waits for the line's
        end and follows it."""
        line = f"[{t:9.3f}] ### harness: {message}\n"
        if self._at_line_start:
            self.log.write(line)
        else:
            self._pending.append(line)

    def close(self) -> None:
        if self._pending:  # the guest's last line never ended (a prompt): end it here
            self.log.write("\n" + "".join(self._pending))
            self._pending = []
            self._at_line_start = True
        if self.raw is not None:
            self.raw.close()
        self.log.close()
