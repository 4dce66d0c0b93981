"""The guest file `harness try --write` leaves behind: what one boot showed, as
milestones a `harness run` of the same image reaches again.

Each milestone is a line the classifier recognised (on a screen, the words the
sign matched: OCR reads the rest differently each time), in the order it came,
as a pattern: the text up to a distinctive length, regex characters escaped,
numbers that change between boots (versions, times, counters) generalised.
The Enter the harness pressed becomes the `send:`/`keys:` of the line it
answered; timeouts are the observed times with a margin.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from .observe import Observation
from .phases import FAILING, Seen, prompt_shape
from .source import Tried

ASKING = ("menu", "question", "prompt", "shell")  # signs that wait for an answer
MAX_PATTERN = 48  # characters of a line kept in its pattern: distinctive, not brittle
# a screen replaced this soon by the next sighting (SeaBIOS's "Booting from ROM..." under
# a kernel that clears it) may fall between two polls of a run: an optional milestone
FLEETING = 2.0
_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")
# an Enter typed ahead of a prompt repeats it on its line ("g4u> g4u> "): a run that
# presses no Enter early sees it once
_REPEATED = re.compile(r"^(\S.*?)(?:\s*\1)+\s*$")


def pattern_of(text: str, source: str) -> str:
    """A regular expression matching `text` again on another boot."""
    text = " ".join(text.split())
    if len(text) > MAX_PATTERN:  # cut at a word boundary
        cut = text.rfind(" ", 0, MAX_PATTERN)
        text = text[:cut if cut > MAX_PATTERN // 2 else MAX_PATTERN]
    out = _SPECIAL.sub(r"\\\1", text)
    out = re.sub(r"\d+", r"\\d+", out)
    # OCR and screens normalise spaces; serial consoles may pad them
    return out.replace(" ", " +")


def _evidence(s: Seen) -> str:
    """The text a milestone waits for: on a screen, or in a line too long to keep whole
    (a status bar), the words the sign itself matched (OCR reads the rest of a line
    differently each time; a cut line keeps its head, not what proved the phase); on
    serial the line."""
    if s.sign.kind in ASKING:
        once = _REPEATED.match(s.text.strip())
        if once:
            return once.group(1)
    if s.source == "screen" or len(" ".join(s.text.split())) > MAX_PATTERN:
        found = s.sign.pattern.search(s.text)
        if found and len(found.group(0).strip()) >= 6:
            return found.group(0)
    return s.text


def _timeout(gap: float) -> int:
    return int(min(3600, math.ceil(gap * 3 + 30)))


def milestones(obs: Observation) -> list[dict[str, Any]]:
    """The observed evidence as milestones, answers attached to what they answered."""
    chosen: list[Seen] = [s for s in obs.seen if s.sign.kind not in FAILING]
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    previous = 0.0
    answered = [a for a in obs.answers if a.effect and a.text != "mouse"]
    for i, s in enumerate(chosen):
        name = s.sign.name
        n = 2
        while name in names:
            name, n = f"{s.sign.name}-{n}", n + 1
        names.add(name)
        m: dict[str, Any] = {"name": name, "source": s.source,
                             "pattern": pattern_of(_evidence(s), s.source),
                             "timeout": _timeout(s.at - previous)}
        if (s.source == "screen" and i + 1 < len(chosen)
                and chosen[i + 1].at - s.at < FLEETING):
            m["optional"] = True
        previous = s.at
        out.append(m)
    for a in answered:  # the last milestone seen before the answer gets it, if it asked
        before = [i for i, s in enumerate(chosen) if s.at <= a.at]
        if not before:
            continue
        asked = chosen[before[-1]]
        if asked.sign.kind not in ASKING and not prompt_shape(a.to):
            continue  # an Enter into a quiet boot that happened to go on: not a dialogue
        m = out[before[-1]]
        if a.source == "serial":
            m["send"] = m.get("send", "") + a.text
        else:
            m["keys"] = [*m.get("keys", []), "ret"]
    return out


def guest_text(tried: Tried, obs: Observation, backend: str, firmware: str,
               gid: str | None = None) -> str:
    """The guest file, in the normal format, that reproduces this boot's verdict (its id
    `gid`: a guest file's id is its file name)."""
    data = dict(tried.data)
    data["id"] = gid or data["id"]
    data["images"] = {k: dict(v) for k, v in data["images"].items()}
    main = "kernel" if "kernel" in data["images"] and "kernel" in tried.sources else "image"
    spec = data["images"][main]
    if "file" in spec and "sha256" not in spec:
        spec["sha256"] = tried.raw_sha256
    if "sha256" in spec:
        spec.pop("pin", None)
    data["firmware"] = [firmware]
    sources = {s.source for s in obs.seen}
    data["console"] = ("serial" if sources <= {"serial"} else
                       "screen" if obs.graphics else "vga-text")
    data["milestones"] = milestones(obs) or [{"name": "nothing", "pattern": "(?!)"}]
    last = obs.seen[-1].at if obs.seen else obs.duration
    data["timeouts"] = {"total": math.ceil(last * 3 + 60), "stall": 120}
    data["notes"] = (f"{data['notes']} On {backend}/{firmware} it reached: {obs.label} "
                     f"({obs.verdict}; {obs.end}).")
    return ("# written by `harness try`; check the patterns before trusting them\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
