"""Progress while a run goes on, and the summary table at its end.

On a terminal: a live block with each running cell, its last milestone and
its age, redrawn in place, with finished cells scrolling above it. Anywhere
else (CI logs, pipes): one plain line per event.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from .console.matcher import Event
from .model import Cell, CellResult, Verdict

_COLOURS = {
    Verdict.PASS: "32", Verdict.XFAIL: "33", Verdict.XPASS: "35", Verdict.SKIP: "2",
    Verdict.CRASH: "31;1", Verdict.HANG: "31", Verdict.TIMEOUT: "31", Verdict.FAIL: "31",
    Verdict.ERROR: "31;7",
}


class Silent:
    """A stream that drops everything: progress for callers that report elsewhere."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class Progress:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        if live is None:
            live = self.stream.isatty() and os.environ.get("TERM", "dumb") != "dumb"
        self.live = live
        self.total = 0
        self.done = 0
        self._running: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._drawn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- plain messages ------------------------------------------------------

    def info(self, message: str) -> None:
        with self._lock:
            self._clear()
            self.stream.write(message + "\n")
            self._draw()
            self.stream.flush()

    # --- cells ---------------------------------------------------------------

    def start(self, total: int) -> None:
        self.total = total
        if self.live and self._thread is None:
            self._thread = threading.Thread(target=self._refresh, daemon=True)
            self._thread.start()

    def cell_started(self, cell: Cell) -> None:
        with self._lock:
            self._running[cell.id] = (time.monotonic(), "starting")
        if not self.live:
            self.info(f"[{self.done}/{self.total}] start {cell.id}")

    def cell_event(self, cell: Cell, ev: Event) -> None:
        name = visible(ev.name, 60)
        label = f"{name} ({ev.t:.1f} s)" if ev.kind == "milestone" else f"FAILURE {name}"
        with self._lock:
            started, _ = self._running.get(cell.id, (time.monotonic(), ""))
            self._running[cell.id] = (started, label)
        if not self.live:
            self.info(f"    {cell.id}: {ev.kind} {label}")

    def cell_finished(self, result: CellResult) -> None:
        with self._lock:
            self._running.pop(result.cell_id, None)
            self.done += 1
        self.info(f"[{self.done}/{self.total}] {self.verdict(result.verdict):>7} "
                  f"{result.cell_id}  {_brief(result)}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._clear()
            self.stream.flush()

    def verdict(self, v: Verdict) -> str:
        text = str(v).upper()
        if not self.live:
            return text
        return f"\x1b[{_COLOURS.get(v, '0')}m{text}\x1b[0m"

    # --- the live block ------------------------------------------------------

    def _refresh(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._clear()
                self._draw()
                self.stream.flush()

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if not self.live or not self._running:
            return
        now = time.monotonic()
        lines = [f"  running {len(self._running)}, done {self.done}/{self.total}"]
        lines += [f"  {cid:<50} {label:<28} {now - t0:6.1f} s"
                  for cid, (t0, label) in sorted(self._running.items())]
        self.stream.write("\n".join(lines) + "\n")
        self._drawn = len(lines)


_CARET = {i: f"^{chr(i + 64)}" for i in range(32)} | {0x7F: "^?"} | {
    i: f"\\x{i:02x}" for i in range(0x80, 0xA0)}


def visible(text: str, limit: int = 200) -> str:
    """Text from a guest as a terminal may show it: control characters made visible
    (ESC as ^[, BEL as ^G, C1 controls as \\x9b...), so no escape sequence a guest
    printed (a clipboard write, a title change, a cursor move) reaches the terminal,
    and cut to `limit` characters."""
    out = text.translate(_CARET)
    return out if len(out) <= limit else out[:limit - 1] + "…"


REASON_CHARS = 260  # room for what a cell stuck at its boot loader showed (verdict.py)


def _brief(r: CellResult) -> str:
    reached = [m for m in r.milestones if m.reached]
    parts = []
    if r.verdict is not Verdict.SKIP:
        parts.append(f"score {r.score:.2f}")
    if reached:
        parts.append(f"{visible(reached[-1].name, 60)} at {reached[-1].t:.1f} s")
    if r.reason:
        parts.append(visible(r.reason, REASON_CHARS))
    return " | ".join(parts)


SKIPS_LISTED = 20  # more skipped cells than this are summed up by reason


def _test_lines(results: list[CellResult]) -> list[str]:
    """Each payload's test counts, its failed tests, and those failing on one backend only."""
    lines = []
    for r in sorted(results, key=lambda r: r.cell_id):
        if not r.tests:
            continue
        t = r.tests
        lines.append(f"{r.cell_id} tests: {t['passed']} passed, {t['failed']} failed, "
                     f"{t['skipped']} skipped, {t['errors']} errors"
                     + (f", {t['xfail']} expected failures" if t.get("xfail") else ""))
        bad = [visible(str(c["name"]), 80) for c in r.cases if c["status"] in ("failed", "error")]
        if bad:
            lines.append(f"  failed: {', '.join(bad[:20])}" + (" …" if len(bad) > 20 else ""))
        if r.only_failing_here:
            lines.append(f"  failing only on {r.backend}/{r.firmware}: "
                         + ", ".join(visible(n, 80) for n in r.only_failing_here[:20]))
    return lines


def summary_table(results: list[CellResult], colour: bool = False) -> str:
    """A fixed-width table of the cells, and totals per verdict.

    Skipped cells are listed one by one while few; a matrix over every backend
    has hundreds (no NVMM on Linux, no Xen tools...), so then they are counted
    per reason instead (each is in results.json, the run page and `harness
    list --cells`)."""
    skipped = [r for r in results if r.verdict is Verdict.SKIP]
    grouped = len(skipped) > SKIPS_LISTED
    shown = [r for r in results if not (grouped and r.verdict is Verdict.SKIP)]
    rows = [("cell", "verdict", "score", "last milestone", "speed", "reason")]
    for r in sorted(shown, key=lambda r: r.cell_id):
        reached = [m for m in r.milestones if m.reached]
        last = f"{visible(reached[-1].name, 60)} {reached[-1].t:.1f}s" if reached else "-"
        score = "-" if r.verdict is Verdict.SKIP else f"{r.score:.2f}"
        speed = f"{r.speed['ratio']:.2f}x" if r.speed and r.speed.get("ratio") else "-"
        reason = visible(r.reason or "", REASON_CHARS)
        rows.append((r.cell_id, str(r.verdict), score, last, speed, reason))
    n = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(n)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(n)]
        if colour and row is not rows[0]:
            v = Verdict(row[1])
            cells[1] = f"\x1b[{_COLOURS.get(v, '0')}m{cells[1]}\x1b[0m"
        lines.append("  ".join([*cells, row[n]]).rstrip())
    for r in sorted(results, key=lambda r: r.cell_id):
        d = r.divergence
        if d and d.get("line"):
            lines.append(f"{r.cell_id} parts from {d['from']} after "
                         f"{d['last_common_milestone'] or 'the start'!r}, console line "
                         f"{d['line']}: expected {d['expected']!r}, got {d['got']!r}")
    lines += _test_lines(results)
    if grouped:
        reasons: dict[str, int] = {}
        for r in skipped:
            reasons[r.reason or "-"] = reasons.get(r.reason or "-", 0) + 1
        lines.append(f"\n{len(skipped)} cells skipped:")
        lines += [f"  {n:>4} x {visible(why, 150)}" for why, n in
                  sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.verdict)] = counts.get(str(r.verdict), 0) + 1
    lines.append("")
    lines.append("totals: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    return "\n".join(lines)


class DownloadBar:
    """One progress line per file on a terminal: bytes, rate, ETA; silent elsewhere."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._url = ""
        self._start = 0.0
        self._last = 0.0

    def __call__(self, url: str, done: int, total: int | None) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if url != self._url:
            self._url, self._start, self._last = url, now, 0.0
        if now - self._last < 0.2 and (total is None or done < total):
            return
        self._last = now
        rate = done / max(now - self._start, 1e-6)
        name = url.rsplit("/", 1)[-1][:40]
        if total:
            eta = (total - done) / rate if rate > 0 else 0
            text = (f"  {name:<40} {done / 1e6:8.1f}/{total / 1e6:.1f} MB "
                    f"{rate / 1e6:6.1f} MB/s  ETA {eta:4.0f} s")
        else:
            text = f"  {name:<40} {done / 1e6:8.1f} MB {rate / 1e6:6.1f} MB/s"
        end = "\n" if total is not None and done >= total else ""
        self.stream.write("\r\x1b[K" + text + end)
        self.stream.flush()
