"""Damaged run folders get a clear refusal: `report`, `merge`, `repro` and `run --resume`
read results.json through one checked reader (results/validate.py). Exit 2, the file and
the place named, never a traceback, in bounded time; the history takes duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.results.history import History, record
from harness.results.validate import KEYWORDS, ResultsError, parse, read_results, schema

from .conftest import ROOT, write
from .damaged_results import RUN_ID, WRONG_TYPES, cell, changed, corpus, dumps, valid

CORPUS = corpus()
# One of each kind, for the other commands (the whole corpus would take a minute).
SAMPLE = [c for c in CORPUS if c[0] in {
    "empty", "null", "truncated at 10", "latin-1", "deep list", "NaN score", "schema 999",
    "unknown verdict", "duplicate cell", "escaping guest ../../../etc", "wrong type /cells",
    "wrong type /cells/0/milestones/0", "missing /cells/0/id", "5000-digit attempts"}]
GUEST = """id: {id}
name: {id}
os: linux
arch: x86_64
images:
  kernel: {{file: {kernel}}}
boot: {{kernel: kernel, cmdline: 'Linux version 6.1\\nRun /init as init process\\n'}}
firmware: [bios]
memory: 64M
milestones:
  - {{name: kernel, pattern: 'Linux version \\d'}}
  - {{name: init, pattern: 'Run /init'}}
timeouts: {{total: 20, stall: 10}}
"""


def echo_matrix(tmp: Path) -> list[str]:
    """A matrix of guests g1 and g2 on the echo backend; its command-line options."""
    kernel = write(tmp / "k.bin", "kernel\n")
    for g in ("g1", "g2"):
        write(tmp / "guests" / f"{g}.yaml", GUEST.format(id=g, kernel=kernel))
    m = write(tmp / "matrix.yaml", "guests: ['*']\nbackends: [echo]\nfirmware: [bios]\n")
    return ["--matrix", str(m), "--guests", str(tmp / "guests")]


def harness(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`harness ARGS` as its own process (with the echo backend registered)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "tests.echo_run", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def refusals(tmp: Path, cases, command) -> list[str]:
    """Run `command(run_folder)` on each damaged results.json; what went wrong."""
    def one(case):
        name, raw, pointer = case
        folder = tmp / f"case{CORPUS.index(case)}" / RUN_ID
        (folder).mkdir(parents=True)
        (folder / "results.json").write_bytes(raw)
        try:
            proc = harness(*command(folder))
        except subprocess.TimeoutExpired:
            return f"{name}: still running after 30 s"
        where = f"{folder / 'results.json'}: {pointer or ''}"
        if proc.returncode != 2 or "Traceback" in proc.stderr or where not in proc.stderr:
            return f"{name}: exit {proc.returncode}: {proc.stderr[-600:]}"
        if "--baseline" in proc.stderr:
            return f"{name}: blames --baseline: {proc.stderr}"
        return None

    with ThreadPoolExecutor(4) as pool:
        return [r for r in pool.map(one, cases) if r]


def test_the_corpus_is_what_the_issue_lists():
    assert len(CORPUS) >= 36 and len({name for name, _, _ in CORPUS}) == len(CORPUS)


def test_report_refuses_every_damaged_results_json(tmp_path):
    assert refusals(tmp_path, CORPUS, lambda f: ["report", str(f)]) == []
    assert not list(tmp_path.rglob("*.html")) and not list(tmp_path.rglob("history.sqlite"))


def test_merge_refuses_every_damaged_results_json(tmp_path):
    good = tmp_path / "good" / "20261121T050000Z-0000"
    data = valid()
    data.update(run_id=good.name, cells=[cell("g9")])
    write(good / "results.json", json.dumps(data))
    out = tmp_path / "merged"
    assert refusals(tmp_path, SAMPLE, lambda f: ["merge", str(good), str(f),
                                                 "--out", str(out)]) == []
    assert not out.exists()


def test_repro_refuses_a_damaged_recorded_run(tmp_path):
    opts = echo_matrix(tmp_path)
    assert refusals(tmp_path, SAMPLE, lambda f: ["repro", "g1/echo/bios", "--from",
                                                 str(f / "results.json"), *opts]) == []


def test_resume_refuses_a_damaged_run_folder(tmp_path):
    opts = echo_matrix(tmp_path)
    assert refusals(tmp_path, SAMPLE, lambda f: ["run", *opts, "--offline", "--resume",
                                                 str(f), "--out", str(tmp_path / "r")]) == []


def test_a_valid_run_is_read_and_reported(tmp_path):
    run = tmp_path / RUN_ID
    write(run / "results.json", dumps(valid()).decode())
    assert read_results(run / "results.json")["cells"][1]["verdict"] == "fail"
    proc = harness("report", str(run))
    assert proc.returncode == 0, proc.stderr
    assert (run / "index.html").is_file()


def test_a_baseline_is_blamed_only_when_it_is_the_baseline(tmp_path):
    run = tmp_path / RUN_ID
    write(run / "results.json", dumps(valid()).decode())
    proc = harness("report", str(run), "--baseline", "20200101T000000Z-ffff")
    assert proc.returncode == 2 and "--baseline: run '20200101T000000Z-ffff' is not in" \
        in proc.stderr, proc.stderr
    assert harness("report", str(run), "--baseline", RUN_ID).returncode == 0


@pytest.mark.parametrize("name, raw, pointer", CORPUS, ids=[c[0] for c in CORPUS])
def test_the_reader_names_the_place(tmp_path, name, raw, pointer):
    path = tmp_path / "results.json"
    path.write_bytes(raw)
    with pytest.raises(ResultsError) as exc:
        read_results(path)
    assert str(exc.value).startswith(f"{path}: ")
    if pointer is not None:
        assert f"{path}: {pointer}: " in str(exc.value)


def test_the_schema_uses_only_keywords_the_reader_knows():
    def keywords(node, where="#"):
        if isinstance(node, dict):
            for key, value in node.items():
                inside = key in ("properties", "$defs")
                if not inside:
                    assert key in KEYWORDS, f"{where}: {key} (teach validate.py this keyword)"
                for k, v in (value.items() if inside else [(key, value)]):
                    keywords(v, f"{where}/{k}")
        elif isinstance(node, list):
            for item in node:
                keywords(item, where)
    keywords(schema())


def _schema_verdict(data) -> bool:
    try:
        jsonschema.validate(data, schema())
    except jsonschema.ValidationError:
        return False
    return True


def test_the_reader_refuses_whatever_jsonschema_refuses(tmp_path):
    """The shipped schema, read by jsonschema (a dev dependency), as the reference."""
    path = tmp_path / "results.json"
    checked = 0
    for name, raw, _ in CORPUS:
        try:
            data = parse(raw)  # not JSON, or numbers JSON Schema cannot judge (NaN)
        except ResultsError:
            continue
        checked += 1
        assert not _schema_verdict(data) or name.startswith(("duplicate", "escaping", "id not",
                                                             "schema 999")), name
    assert checked > 50
    path.write_bytes(dumps(valid()))
    assert _schema_verdict(read_results(path))


_json = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**6)
                     | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
                     | st.sampled_from(["pass", "bios", "echo", "2026-11-21T04:30:00Z"]),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(pointer=st.sampled_from(sorted(WRONG_TYPES)), value=_json)
def test_any_value_anywhere_is_accepted_only_if_the_schema_accepts_it(tmp_path_factory,
                                                                      pointer, value):
    path = tmp_path_factory.mktemp("h") / "results.json"
    data = changed(pointer, value)
    path.write_bytes(dumps(data))
    try:
        read_results(path)
    except ResultsError:
        return
    assert _schema_verdict(data), (pointer, value)


def test_the_replays_of_one_cell_may_repeat_its_id(tmp_path):
    data = valid()
    data.update(repro_of="20261121T000000Z-0000", cells=[cell("g1"), cell("g1", "fail")])
    path = write(tmp_path / "results.json", json.dumps(data))
    assert [c["verdict"] for c in read_results(path)["cells"]] == ["pass", "fail"]


def test_history_takes_a_run_twice_and_a_cell_twice(tmp_path):
    db = tmp_path / "history.sqlite"
    data = valid()
    record(db, data)
    record(db, data)  # the same run imported again: replaced
    twice = valid()
    twice["cells"].append({**cell("g1"), "verdict": "crash"})
    record(db, twice)  # the same cell twice in one run: the last entry wins
    h = History(db)
    try:
        assert h.runs() == [(RUN_ID, "2026-11-21T04:30:00Z")]
        assert h.strips()["g1/echo/bios"] == [(RUN_ID, "crash")]
        assert len(h.strips()) == 2
    finally:
        h.close()


def test_report_twice_and_a_copied_run_folder(tmp_path):
    run = tmp_path / RUN_ID
    write(run / "results.json", dumps(valid()).decode())
    copy = write(tmp_path / "copy" / "results.json", dumps(valid()).decode()).parent
    for _ in range(2):
        proc = harness("report", str(run), str(copy))
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
