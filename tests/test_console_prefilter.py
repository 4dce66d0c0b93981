"""The literal prefilter decides only where regexes run, never what matches.

The native (Aho-Corasick) and the pure-Python paths must give the same
events as each other and as running every regex everywhere, on real
transcripts and on text built to trip the fast path's shortcuts
(overlapping words, words split across reads, non-ASCII text).
"""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest
import yaml

from harness import knowledge
from harness.config import load_guests
from harness.console import matcher as matcher_module
from harness.console import prefilter
from harness.console.matcher import Matcher
from harness.console.prefilter import Prefilter
from harness.model import FailureSignature, Milestone
from harness.transcripts import replay

from .conftest import GUESTS

HERE = Path(__file__).resolve().parent / "data" / "transcripts"
INDEX = yaml.safe_load((HERE / "index.yaml").read_text())

native = pytest.mark.skipif(not prefilter.NATIVE, reason="ahocorasick_rs is not installed")


def events_of(matcher: Matcher, chunks: list[tuple[bytes, str]]) -> list[tuple]:
    cursor, out = 0, []
    for i, (data, source) in enumerate(chunks):
        for ev in matcher.feed(data, float(i), cursor, source).events:
            if ev.kind == "milestone":
                cursor = ev.index + 1
            out.append((ev.kind, ev.name, ev.t, ev.text, ev.index, ev.fatal))
    return out


def every_way(milestones, failures, chunks, monkeypatch) -> list[list[tuple]]:
    """The events with the native prefilter (when there is one), the pure-Python
    one, and none at all (every regex runs on every read)."""
    out = []
    if prefilter.NATIVE:
        out.append(events_of(Matcher(milestones, failures, native=True), chunks))
    out.append(events_of(Matcher(milestones, failures, native=False), chunks))
    with monkeypatch.context() as m:
        m.setattr(matcher_module, "required_literals", lambda regex: None)
        out.append(events_of(Matcher(milestones, failures), chunks))
    return out


@pytest.mark.parametrize("chunk", [7, 512])
def test_transcripts_give_the_same_events_every_way(chunk, monkeypatch):
    catalog = load_guests(GUESTS)
    for entry in INDEX:
        guest = catalog[entry["guest"]]
        data = (HERE / entry["file"]).read_bytes()
        names = entry.get("milestones")  # what the transcript covers, as replay() takes it
        stage = entry.get("stage")  # a staged guest's console is one stage's boot
        text_ms = [m for m in guest.milestones if m.pattern is not None
                   and m.source == "serial" and (names is None or m.name in names)
                   and (stage is None or m.name.startswith(stage + "/"))]
        chunks = [(data[i:i + chunk], "serial") for i in range(0, len(data), chunk)]
        first, *rest = every_way(text_ms, knowledge.guest_failures(guest), chunks, monkeypatch)
        assert any(e[0] == "milestone" for e in first), entry["file"]
        for other in rest:
            assert other == first, entry["file"]
        if prefilter.NATIVE:
            assert replay(guest, data, names, chunk=chunk, native=True, stage=stage) \
                == replay(guest, data, names, chunk=chunk, native=False, stage=stage)


def test_random_text_built_to_overlap_gives_the_same_events_every_way(monkeypatch):
    rng = random.Random(7)
    alphabet = ["a", "b", "c", "ab", "abc", "bca", "\n", " ", "\u20ac", "\x1b[1m", "dd", "D"]
    for _ in range(40):
        milestones = [
            Milestone("m0", re.compile(r"abca?b")),
            Milestone("m1", re.compile(r"bc(?:ab|\u20acc)"), optional=True),
            Milestone("m2", re.compile(r"cab+c"), source=rng.choice(["serial", "screen"])),
            Milestone("m3", re.compile(r"(?i)dd\w")),
            Milestone("m4", re.compile(r"(?:^|\n)dd a")),
        ]
        failures = [FailureSignature("f0", re.compile(r"bcab"), fatal=False),
                    FailureSignature("f1", re.compile(r"ca\u20acb"), fatal=False),
                    FailureSignature("f2", re.compile(r"abcabcab"), fatal=rng.random() < 0.3),
                    FailureSignature("f3", re.compile(r"a b|ccc"), fatal=False)]
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(50, 3000))).encode()
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 60))))
        bounds = [0, *cuts, len(text)]
        chunks = [(text[a:b], rng.choice(["serial", "serial", "screen"]))
                  for a, b in itertools.pairwise(bounds)]
        first, *rest = every_way(milestones, failures, chunks, monkeypatch)
        for other in rest:
            assert other == first


@native
def test_hits_include_words_hidden_inside_a_longer_one():
    words = [["abcd"], ["bc"], ["cdx"], ["xy", "dx"], None]
    for text in ("zabcdxy", "zabcdxy\u20ac"):  # bytes and str automata
        for hits in (Prefilter(words, native=True).scan(text),
                     Prefilter(words, native=False).scan(text)):
            assert [hits.first(p, 0) for p in range(4)] == [1, 2, 3, 4]
            assert [hits.first(p, 3) for p in range(4)] == [-1, -1, 3, 4]
            assert hits.first(4, 6) == 6  # no words: always runs
            assert hits.first(3, 6) == -1


def test_without_the_package_the_pure_python_path_runs(monkeypatch):
    monkeypatch.setattr(prefilter, "_ac", None)
    monkeypatch.setattr(prefilter, "NATIVE", False)
    with pytest.raises(RuntimeError):
        Prefilter([["ab"]], native=True)
    m = Matcher([Milestone("login", re.compile("login: "))],
                [FailureSignature("panic", re.compile("panic: "))])
    assert [e.name for e in m.feed(b"host login: ", 0.0, 0).events] == ["login"]
