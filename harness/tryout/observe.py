"""`harness try`: one boot of an image nobody wrote a guest file for, watched.

The impure loop of `try`: the VM on its console transport, the screen through
the screen watcher (VGA text, OCR in graphics modes), every line handed to the
classifier (phases.py: what a line means is knowledge, not code). When the
guest has been quiet for a while, the loop asks whether something waits for
input by sending a harmless Enter and watching for an answer: that is what
turns "looks like a prompt" into "reached an interactive prompt".
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import Launch
from ..backends.qmp import QMPError
from ..console.clean import Cleaner
from ..console.screen import is_text_mode
from ..console.transcript import Transcript
from ..model import Milestone
from .phases import FAILING, PHASES, Classifier, Seen, prompt_shape

QUIET = 3.0  # seconds of silence before asking whether something waits for input
# ... once a shell, login or question of a userland is on the console: it is known to
# wait, so the Enter only confirms it (a 1.5 s DOS boot is not kept waiting 3 s more)
WAITING_QUIET = 1.0
ANSWER_WAIT = 4.0  # seconds an answer has to show an effect
MAX_ANSWERS = 4  # default answers (Enter) at most, per boot
# silence that makes a hang once the answers are spent: an unknown system may think
# for long (NetBSD 5.99's IDE probe is silent for 13 s under tcg here, 30 s when the
# host is busy; MAKEDEV another 5-30 s); the catalog's own stall default is 60 s too
HANG = 60.0
TICK = 0.1
# the screen watcher wants screenshots (and OCR) while a text pattern is due: one always is
_ANY_TEXT = Milestone("screen-text", re.compile(r"(?!)"), source="screen")


@dataclass
class Answer:
    """One default answer the harness gave, and whether the guest reacted."""

    at: float
    source: str  # serial (typed on the console) | screen (a key press)
    text: str
    to: str  # the line or screen text it answered
    effect: bool = False  # the console or screen changed within ANSWER_WAIT


@dataclass
class Observation:
    """What one boot showed: the verdict word, how far, and the evidence."""

    verdict: str  # pass | fail | crash | hang | timeout | error
    phase: str | None  # the furthest of PHASES reached
    label: str  # in the porter's words: "FreeDOS prompt", "no bootable device"
    end: str  # why watching stopped
    seen: list[Seen] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    interactive: bool = False  # an answer made the guest react: it waits for input
    duration: float = 0.0
    graphics: bool = False  # the display went to a graphics mode
    shots: list[str] = field(default_factory=list)  # screenshots at each new phase

    def summary(self) -> str:
        how = f"{self.label}" + (" (answers input)" if self.interactive else "")
        return f"{self.verdict}: {how}; {self.end} after {self.duration:.1f} s"


class _ScreenSink:
    """What the screen watcher hands a boot tracker, turned to the classifier: new
    screen text, and "the screen changed" (activity) - in a graphics mode only: in a
    text mode the cursor blinks, and new text arrives as text."""

    def __init__(self, start: float, watch: _Watch) -> None:
        self.start = start
        self.watch = watch
        self.screen = None  # the watcher feeding this sink, once made

    def feed(self, data: bytes, now: float, source: str = "screen") -> list:
        self.watch.text(data.decode("utf-8", "replace"), "screen", now)
        return []

    def activity(self, now: float) -> None:
        mode = getattr(self.screen, "mode", None)
        if mode is not None and not is_text_mode(mode):
            self.watch.changed(now)

    def reach(self, index: int, now: float, text: str) -> list:
        return []

    def pending_screen_milestones(self) -> list[tuple[int, Milestone]]:
        return [(0, _ANY_TEXT)]


class _Watch:
    """The pure bookkeeping of one boot: lines to the classifier, when output last
    came, phases reached (for screenshots), answers pending."""

    def __init__(self, start: float, classifier: Classifier) -> None:
        self.start = start
        self.classifier = classifier
        self.last_change = start  # output, or an answer given (the quiet before the next)
        self.last_output = start  # output only: the silence a hang is measured by
        self.new_phase: list[Seen] = []
        self.best = -1
        self.last_source = ""

    def text(self, text: str, source: str, now: float) -> None:
        if not text:
            return
        self.last_change = self.last_output = now
        if text.strip():
            self.last_source = source
        for s in self.classifier.feed(text, source, now - self.start):
            rank = PHASES.index(s.sign.phase) if s.sign.phase in PHASES else -1
            if rank > self.best or s.sign.kind in FAILING:
                self.best = max(self.best, rank)
                self.new_phase.append(s)

    def changed(self, now: float) -> None:
        self.last_change = self.last_output = now


def observe(vm, launch: Launch, folder: Path, screen_factory, limit: float,
            answer: bool = True, quiet: float = QUIET, log=lambda line: None,
            hang: float = HANG) -> Observation:
    """Watch the running `vm` until it reaches an interactive prompt or a desktop,
    fails, stops, or `limit` seconds pass. `screen_factory(sink)` gives a connected
    ScreenWatcher (or None where the backend cannot show the screen)."""
    start = vm.started
    classifier = Classifier()
    watch = _Watch(start, classifier)
    cleaner = Cleaner()
    transcript = Transcript(folder)
    sink = _ScreenSink(start, watch)
    screen = sink.screen = screen_factory(sink)
    answers: list[Answer] = []
    shots: list[str] = []
    pending: Answer | None = None
    graphics = went_graphics = False
    end = verdict = ""
    try:
        while True:
            data = vm.read(TICK)
            now = time.monotonic()
            t = now - start
            if data is None:
                status = vm.wait(5.0)
                transcript.note(t, f"VM exited with status {status}")
                end = f"the VM stopped (exit status {status})"
                verdict = "fail" if status else "pass"
                break
            if data:
                text = cleaner.feed(data)
                transcript.write(data, text, t)
                watch.text(text, "serial", now)
            if screen is not None and screen.due(now):
                try:
                    screen.poll(now)
                except (QMPError, OSError) as exc:
                    transcript.note(t, f"screen watching stopped: {exc}")
                    screen.close()
                    screen = None
                else:  # the mode now (QEMU's first screen is a 640x480 placeholder)
                    graphics = screen.mode is not None and not is_text_mode(screen.mode)
                    went_graphics = went_graphics or graphics
            for s in watch.new_phase:  # a new phase: its evidence, and a picture of it
                transcript.note(s.at, f"{s.sign.phase}: {s.sign.label or s.sign.name} "
                                      f"({s.source}: {s.text[:80]!r})")
                log(f"  {s.at:6.1f} s  {s.sign.phase:<10} {s.sign.label or s.sign.name}")
                if screen is not None:
                    with contextlib.suppress(QMPError, OSError):
                        name = screen.save_screenshot(f"phase-{len(shots) + 1:02d}-{s.sign.name}")
                        if name:
                            shots.append(name)
            watch.new_phase.clear()
            failure = classifier.failure()
            if failure is not None:
                end = f"{failure.sign.label or failure.sign.name}: {failure.text[:80]}"
                verdict = failure.sign.verdict or "fail"
                break
            reached = classifier.reached()
            if reached is not None and reached.sign.kind == "running":
                end, verdict = "it runs by itself", "pass"
                break
            if pending is not None:
                if watch.last_change > start + pending.at + 0.05:
                    pending.effect = True
                    pending = None
                    if _settled(classifier, graphics):
                        end, verdict = "it answered input", "pass"
                        break
                elif t - pending.at >= ANSWER_WAIT:
                    pending = None
            elif now - watch.last_change >= (wait := _quiet(reached, graphics, quiet)) or (
                    _unconfirmed(classifier, answers, graphics, t, wait)):
                if (_settled(classifier, graphics) and answers and answers[-1].effect
                        and reached is not None and answers[-1].at >= reached.at):
                    end, verdict = "it answered input", "pass"
                    break
                # one more answer is always allowed to confirm a prompt reached late
                confirm = reached is not None and (not answers or answers[-1].at < reached.at)
                if answer and (len(answers) < MAX_ANSWERS
                               or (confirm and _settled(classifier, graphics))):
                    pending = _answer(vm, screen, classifier, watch.last_source, graphics, t)
                    answers.append(pending)
                    transcript.note(t, f"answered {pending.text!r} ({pending.source}) to "
                                       f"{pending.to[:60]!r}")
                    what = "moved the mouse" if pending.text == "mouse" else "pressed Enter"
                    log(f"  {t:6.1f} s  quiet for {wait:g} s: {what} ({pending.source})")
                    watch.last_change = now
                elif now - watch.last_output >= max(quiet * 3, hang):
                    end, verdict = f"no output for {now - watch.last_output:.0f} s", "hang"
                    break
            if t >= limit:
                end, verdict = f"time limit ({limit:g} s)", "timeout"
                break
        transcript.write(b"", cleaner.flush(), time.monotonic() - start)
    finally:
        if screen is not None:
            with contextlib.suppress(QMPError, OSError):
                screen.save_final()
            screen.close()
    return _judge(classifier, verdict, end, answers, time.monotonic() - start, graphics,
                  went_graphics, shots)


def _quiet(reached: Seen | None, graphics: bool, quiet: float) -> float:
    """The silence to wait before the next answer: shorter at a userland's shell, login
    or question on a text console, which waits by what it is."""
    if (reached is not None and reached.sign.phase == "userland"
            and reached.sign.kind in WAITS and not graphics):
        return min(quiet, WAITING_QUIET)
    return quiet


def _unconfirmed(classifier: Classifier, answers: list[Answer], graphics: bool, t: float,
                 quiet: float) -> bool:
    """A prompt or desktop reached `quiet` seconds ago and not yet asked whether it
    answers: a desktop with a clock or an animation is never quiet, so it is asked
    anyway."""
    reached = classifier.reached()
    return (reached is not None and _settled(classifier, graphics)
            and t - reached.at >= quiet
            and not any(a.at >= reached.at for a in answers))


WAITS = ("shell", "prompt", "question")  # userland signs that wait for input


def _settled(classifier: Classifier, graphics: bool) -> bool:
    """Whether the boot is as far as a boot goes: a shell, login, installer question
    or desktop; or, on a screen in graphics mode, a still desktop. A userland banner
    ("Run /init") is not: the installer behind it is still loading."""
    reached = classifier.reached()
    if reached is None:
        return False
    if reached.sign.phase == "desktop" or (reached.sign.phase == "userland"
                                           and reached.sign.kind in WAITS):
        return True
    return graphics and reached.sign.phase == "kernel"


def _answer(vm, screen, classifier: Classifier, last_source: str, graphics: bool,
            t: float) -> Answer:
    """Enter, where the guest is likely to read it: the serial console when the
    last words came there (or there is no screen), else the keyboard."""
    serial_tail = classifier.tail("serial")
    screen_last = classifier.tail("screen")
    on_serial = screen is None or bool(serial_tail.strip()) or (
        not graphics and not screen_last.strip() and last_source == "serial")
    if on_serial:
        vm.write(b"\r")
        return Answer(t, "serial", "\n", serial_tail or "(quiet)")
    reached = classifier.reached()
    if graphics and (reached is None or reached.sign.phase in ("kernel", "desktop")):
        # a desktop answers the mouse: its pointer moves (a key may do nothing there)
        with contextlib.suppress(QMPError, OSError):
            screen.qmp.command("input-send-event", events=[
                {"type": "rel", "data": {"axis": "x", "value": 40}},
                {"type": "rel", "data": {"axis": "y", "value": 30}}])
        return Answer(t, "screen", "mouse", screen_last or "(quiet screen)")
    with contextlib.suppress(QMPError, OSError):
        screen.press(("ret",))
    return Answer(t, "screen", "\n", screen_last or "(quiet screen)")


def _judge(classifier: Classifier, verdict: str, end: str, answers: list[Answer],
           duration: float, graphics: bool, went_graphics: bool,
           shots: list[str]) -> Observation:
    """One verdict word plus the phase reached, from what was seen: the only place
    `try` decides."""
    reached = classifier.reached()
    failure = classifier.failure()
    interactive = any(a.effect for a in answers)
    confirmed = reached is not None and any(a.effect and a.at >= reached.at for a in answers)
    phase = reached.sign.phase if reached is not None else None
    if failure is not None:
        label = failure.sign.label or failure.sign.name
        phase = failure.sign.phase if phase is None else phase
    elif reached is not None and graphics and reached.sign.phase == "kernel" and any(
            a.effect and a.text == "mouse" for a in answers):
        phase, label = "desktop", "a graphical desktop (it answers the mouse)"
    elif reached is not None and reached.sign.kind == "error" and verdict != "pass":
        # an error it went on from, but nothing came after it: that is where it stopped
        label, verdict = reached.sign.label or reached.sign.name, reached.sign.verdict or "fail"
        end = f"{end}; last: {reached.text[:80]}"
    elif reached is not None:
        label = reached.sign.label or reached.sign.name
    else:
        label = "nothing recognised"
    if verdict in ("hang", "timeout") and confirmed and reached is not None and (
            reached.sign.phase == "desktop" or reached.sign.kind in WAITS
            or prompt_shape(reached.text)):
        verdict, end = "pass", f"it answered input ({end})"
    if verdict == "pass" and reached is None:
        verdict = "fail"  # it stopped or answered, but nothing says what it is
    return Observation(verdict, phase, label, end, classifier.seen(), answers, interactive,
                       duration, went_graphics, shots)
