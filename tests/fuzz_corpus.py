"""The fuzz suite's inputs: the corpus of the cases issue 14 names (malformed guest and
matrix files, command-line misuse, damaged results.json files, a hostile console) and the
hypothesis strategies that generate more of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hypothesis import strategies as st

from . import fuzz_inputs as fz
from .fuzz_inputs import dump, echo_guest, echo_matrix

# --- the corpus: guest files ------------------------------------------------------------

def _guest_text(kernel: Path, **changes) -> str:
    g = echo_guest("e", kernel)
    for key, value in changes.items():
        g[key] = value
    return dump(g)


def _raw(kernel: Path, key: str, value_text: str) -> str:
    """The echo guest with `key:` given as literal YAML text (what dump cannot write)."""
    g = echo_guest("e", kernel)
    g.pop(key, None)
    return dump(g) + f"{key}: {value_text}\n"


_T = {"total": 20, "stall": 10}
GUEST_CORPUS: dict[str, object] = {
    # wrong types inside quirk_defs
    "quirk_defs-append-5": lambda k: _guest_text(k, quirk_defs={"q": {"append": 5}}),
    "quirk_defs-vcpus-x": lambda k: _guest_text(k, quirk_defs={"q": {"vcpus": "x"}}),
    "quirk_defs-accel_opts-list": lambda k: _guest_text(k, quirk_defs={"q": {
        "accel_opts": [1, 2]}}),
    "quirk_defs-not-a-map": lambda k: _guest_text(k, quirk_defs={"q": 5}),
    # bytes a YAML file must not hold
    "nul-escaped-in-name": lambda k: _raw(k, "name", '"a\\0b"'),
    "nul-byte-in-file": lambda k: _raw(k, "name", "a\x00b").encode(),
    "non-utf8": lambda k: _raw(k, "name", "caf").encode() + b"\xe9\xff\xfe\n",
    "utf16-bom": lambda k: _guest_text(k).encode("utf-16"),
    # numbers
    "memory-5000-digits": lambda k: _raw(k, "memory", "1" * 5000),
    "vcpus-5000-digits": lambda k: _raw(k, "vcpus", "9" * 5000),
    "memory-huge-T": lambda k: _guest_text(k, memory="99999999999999999999999T"),
    "memory-negative": lambda k: _guest_text(k, memory="-64M"),
    "vcpus-1000000": lambda k: _guest_text(k, vcpus=1000000),
    "vcpus-0": lambda k: _guest_text(k, vcpus=0),
    "timeouts-total-nan": lambda k: _raw(k, "timeouts", "{total: .nan, stall: 10}"),
    "timeouts-total-inf": lambda k: _raw(k, "timeouts", "{total: .inf, stall: 10}"),
    "timeouts-stall-negative": lambda k: _raw(k, "timeouts", "{total: 20, stall: -5}"),
    "timeouts-stall-5000-digits": lambda k: _raw(k, "timeouts", "{total: 20, stall: "
                                                 + "9" * 5000 + "}"),
    "milestone-timeout-nan": lambda k: _guest_text(k, milestones=[
        {"name": "kernel", "pattern": "Linux", "timeout": float("nan")}]),
    "milestone-timeout-huge": lambda k: _guest_text(k, milestones=[
        {"name": "kernel", "pattern": "Linux", "timeout": 10 ** 30}]),
    # structure bombs
    "alias-bomb-name": lambda k: _raw(k, "name", fz.alias_bomb()),
    "alias-bomb-tags": lambda k: _raw(k, "tags", fz.alias_bomb()),
    "alias-bomb-memory": lambda k: _raw(k, "memory", fz.alias_bomb()),
    "alias-bomb-milestones": lambda k: _raw(k, "milestones", fz.alias_bomb()),
    "deep-list-name": lambda k: _raw(k, "name", fz.deep(100_000)),
    "deep-map-notes": lambda k: _raw(k, "notes", fz.deep(100_000, "map")),
    "deep-list-milestones": lambda k: _raw(k, "milestones", fz.deep(100_000)),
    # paths and names
    "file-proc-self-mem": lambda k: _guest_text(k, images={"kernel": {"file": "/proc/self/mem"}}),
    "file-dev-zero": lambda k: _guest_text(k, images={"kernel": {"file": "/dev/zero"}}),
    "file-a-folder": lambda k: _guest_text(k, images={"kernel": {"file": "/"}}),
    **{f"image-name-{i}": (lambda k, n=n: _guest_text(
        k, images={n: {"file": str(k)}}, boot={"kernel": n, "cmdline": "x"}))
       for i, n in enumerate(["../../../x", "d`touch X`$(touch Y)", "a\nb", "a\x1bb", "..",
                              "x/y", "$(reboot)", "a" * 300])},
    "name-1MB": lambda k: _guest_text(k, name="n" * 1_000_000),
    "cmdline-1MB": lambda k: _guest_text(k, boot={"kernel": "kernel", "cmdline": "c" * 1_000_000}),
    "os-attribute-injection": lambda k: _guest_text(k, os="linux tabindex=1 autofocus "
                                                       "onfocus=alert(1) x"),
    # patterns
    "pattern-invalid": lambda k: _guest_text(k, milestones=[{"name": "m", "pattern": "(["}]),
    "pattern-catastrophic-a": lambda k: _guest_text(k, milestones=[
        {"name": "m", "pattern": "(a+)+$"}]),
    "pattern-catastrophic-x": lambda k: _guest_text(k, failures=[
        {"name": "f", "pattern": "(x+x+)+y"}]),
    "pattern-huge-repeat": lambda k: _guest_text(k, milestones=[
        {"name": "m", "pattern": "a{1000000}{1000000}"}]),
    # missing keys and wrong documents
    **{f"missing-{key}": (lambda k, key=key: dump({x: v for x, v in echo_guest(
        "e", k).items() if x != key})) for key in ("id", "os", "arch", "images", "boot",
                                                   "milestones")},
    "empty-file": lambda k: "",
    "a-list": lambda k: "- 1\n- 2\n",
    "a-scalar": lambda k: "just text\n",
    "tabs-and-garbage": lambda k: "id: e\n\tname: [\n",
    "python-tag": lambda k: _raw(k, "name", "!!python/object/apply:os.system ['touch pwned']"),
    "duplicate-keys": lambda k: _guest_text(k) + "id: e\n",
}

# The cases that are no configuration at all: they must be refused.
GUEST_MAY_PASS = {"file-proc-self-mem", "file-dev-zero", "file-a-folder", "name-1MB",
                  "cmdline-1MB", "os-attribute-injection", "pattern-catastrophic-a",
                  "pattern-catastrophic-x", "duplicate-keys"}


HOSTILE_STEMS = ["..", "a$(touch pwned)", "a`id`", "a\nb", "a\x1bb", "-rf", ".hidden", "a b",
                 "x" * 200, "a;b", "<script>"]


# --- the corpus: matrix files -----------------------------------------------------------

def _matrix(**changes) -> str:
    m = echo_matrix()
    for key, value in changes.items():
        if value is _DELETE:
            m.pop(key)
        else:
            m[key] = value
    return dump(m)


def _raw_matrix(key: str, value_text: str) -> str:
    m = echo_matrix()
    m.pop(key, None)
    return dump(m) + f"{key}: {value_text}\n"


_DELETE = object()
MATRIX_CORPUS: dict[str, object] = {
    "guests-5": _matrix(guests=5),
    "guests-list-of-ints": _matrix(guests=[5, None]),
    "backends-a-string": _matrix(backends="echo"),
    "backends-unknown": _matrix(backends=["nope"]),
    "backends-hostile": _matrix(backends=["../x"]),
    "firmware-7": _matrix(firmware=[7]),
    "firmware-unknown": _matrix(firmware=["coreboot"]),
    "defaults-5": _matrix(defaults=5),
    "defaults-total-nan": _raw_matrix("defaults", "{timeouts: {total: .nan, stall: 10}}"),
    "defaults-total-inf": _raw_matrix("defaults", "{timeouts: {total: .inf}}"),
    "defaults-stall-negative": _raw_matrix("defaults", "{timeouts: {stall: -1}}"),
    "defaults-retries-huge": _matrix(defaults={"retries": 10 ** 9}),
    "defaults-retries-negative": _matrix(defaults={"retries": -1}),
    "defaults-retries-x": _matrix(defaults={"retries": "x"}),
    "defaults-memory-huge": _matrix(defaults={"memory": "99999999999999999999999T"}),
    "jobs-0": _matrix(jobs=0),
    "jobs-negative": _matrix(jobs=-1),
    "jobs-huge": _matrix(jobs=10 ** 6),
    "jobs-x": _matrix(jobs="x"),
    "jobs-nan": _raw_matrix("jobs", ".nan"),
    "jobs-5000-digits": _raw_matrix("jobs", "9" * 5000),
    "exclude-5": _matrix(exclude=5),
    "exclude-list-of-ints": _matrix(exclude=[5]),
    "expect-empty-entry": _matrix(expect=[{}]),
    "expect-javascript-link": _matrix(expect=[{"guest": "e", "backend": "echo", "reason": "r",
                                               "link": "javascript:alert(1)"}]),
    "quirks-5": _matrix(quirks=5),
    "quirks-unknown": _matrix(quirks=[{"backend": "echo", "quirks": ["nope"]}]),
    "unknown-key": _matrix(colour="blue"),
    "missing-backends": _matrix(backends=_DELETE),
    "alias-bomb-guests": _raw_matrix("guests", fz.alias_bomb()),
    "alias-bomb-defaults": _raw_matrix("defaults", fz.alias_bomb()),
    "deep-list-guests": _raw_matrix("guests", fz.deep(100_000)),
    "deep-map-defaults": _raw_matrix("defaults", fz.deep(100_000, "map")),
    "nul-byte": _raw_matrix("jobs", "1\x00"),
    "non-utf8": _matrix().encode() + b"# \xff\xfe\n",
    "empty": "",
    "a-list": "- echo\n",
}
# Lenient but harmless: an empty matrix is all defaults, one backend may be a string, and a
# page checks links itself.
MATRIX_MAY_PASS = {"missing-backends", "empty", "backends-a-string", "expect-javascript-link"}


def cli_cases(root: Path, m: Path, run: Path) -> dict[str, list[str]]:
    a_file = root / "a-file"  # the test writes it, and makes the folder root/empty
    return {
        "run-out-is-a-file": ["run", "--matrix", str(m), "--out", str(a_file)],
        "run-out-under-a-file": ["run", "--matrix", str(m), "--out", str(a_file / "sub")],
        "run-out-read-only-fs": ["run", "--matrix", str(m), "--out", "/sys/harness-fuzz"],
        "run-out-missing-fs": ["run", "--matrix", str(m), "--out", "/proc/harness-fuzz/x"],
        "merge-out-is-a-file": ["merge", str(run), "--out", str(a_file)],
        "merge-out-read-only-fs": ["merge", str(run), "--out", "/sys/harness-fuzz"],
        "merge-out-missing-fs": ["merge", str(run), "--out", "/proc/harness-fuzz/x"],
        "run-jobs-0": ["run", "--matrix", str(m), "--jobs", "0"],
        "run-jobs-huge": ["run", "--matrix", str(m), "--jobs", "1000000000"],
        "run-retries-huge": ["run", "--matrix", str(m), "--retries", "1000000000"],
        "run-retries-negative": ["run", "--matrix", str(m), "--retries", "-1"],
        "run-rerun-failures-huge": ["run", "--matrix", str(m), "--rerun-failures", "1000000000"],
        "run-canary-ttl-nan": ["run", "--matrix", str(m), "--canary-ttl", "nan"],
        "list-canary-ttl-inf": ["list", "--matrix", str(m), "--canary-ttl", "inf"],
        "probe-canary-ttl-negative": ["probe", "--no-canary", "--canary-ttl", "-5"],
        "run-shard-0-of-0": ["run", "--matrix", str(m), "--shard", "0/0"],
        "run-shard-huge": ["run", "--matrix", str(m), "--shard", "1/" + "9" * 5000],
        "run-resume-a-file": ["run", "--matrix", str(m), "--resume", str(a_file)],
        "run-resume-missing": ["run", "--matrix", str(m), "--resume", str(root / "none")],
        "run-matrix-a-folder": ["run", "--matrix", str(root)],
        "run-matrix-dev-zero": ["list", "--matrix", "/dev/zero"],
        "run-guests-a-file": ["run", "--matrix", str(m), "--guests", str(a_file)],
        "worker-slots-0": ["worker", "--scheduler", "tcp://127.0.0.1:1", "--slots", "0",
                           "--advertise", "echo"],
        "worker-slots-negative": ["worker", "--scheduler", "tcp://127.0.0.1:1", "--slots",
                                  "-3", "--advertise", "echo"],
        # the default gives up after 30 s (Dask alone retries for ever); the bound is 20 s
        "worker-unreachable-scheduler": ["worker", "--scheduler", "tcp://127.0.0.1:1",
                                         "--slots", "1", "--advertise", "echo",
                                         "--connect-timeout", "3"],
        "worker-scheduler-not-a-url": ["worker", "--scheduler", "$(touch pwned)", "--slots",
                                       "1", "--advertise", "echo"],
        "repro-cell-not-recorded": ["repro", "nothing/echo/bios", "--from", str(run),
                                    "--matrix", str(m)],
        "repro-guest-not-in-guests": ["repro", "e/echo/bios", "--from", str(run),
                                      "--matrix", str(m), "--guests", str(root / "empty")],
        "repro-cell-glob-everything": ["repro", "*", "--from", str(run), "--matrix", str(m)],
        "repro-times-0": ["repro", "e/echo/bios", "--from", str(run), "--matrix", str(m),
                          "--times", "0"],
        "repro-from-missing": ["repro", "e/echo/bios", "--from", str(root / "none"),
                               "--matrix", str(m)],
        "report-history-0": ["report", str(run), "--history", "0"],
        "report-history-huge": ["report", str(run), "--history", "9" * 5000],
        "report-baseline-unknown": ["report", str(run), "--baseline", "../../x"],
        "report-not-a-run": ["report", str(root)],
        "replay-log-missing": ["replay", "e", str(root / "none"), "--matrix", str(m)],
        "replay-log-a-folder": ["replay", "e", str(root), "--matrix", str(m)],
        "replay-unknown-milestone": ["replay", "e", str(a_file), "--matrix", str(m),
                                     "--milestones", "nope,,"],
        "needle-negative": ["needle", str(a_file), "--x", "-1", "--y", "0", "--w", "0",
                            "--h", "0", "-o", str(root / "n.png")],
        "needle-not-an-image": ["needle", str(a_file), "--x", "0", "--y", "0", "--w", "1",
                                "--h", "1", "-o", str(root / "n.png")],
        "cache-prune-nonsense": ["cache", "prune", "--older-than", "-5d", "--max-size", "nan"],
        "cache-import-a-file": ["cache", "import", str(a_file), "--matrix", str(m)],
        "bisect-not-a-cell": ["bisect-quirks", "../../x", "--matrix", str(m)],
        "bisect-max-runs-negative": ["bisect-quirks", "e/echo/bios", "--matrix", str(m),
                                     "--max-runs", "-1"],
        "fetch-unknown-guest": ["fetch", "../x", "--matrix", str(m)],
    }


def cli_names() -> list[str]:
    return sorted(cli_cases(Path("/r"), Path("/m"), Path("/run")))


# The option values these must refuse (exit 2); the others may also succeed.
CLI_REFUSED = {"bisect-max-runs-negative", "bisect-not-a-cell", "cache-import-a-file",
               "cache-prune-nonsense", "fetch-unknown-guest", "list-canary-ttl-inf",
               "merge-out-is-a-file", "merge-out-missing-fs", "merge-out-read-only-fs",
               "needle-negative", "probe-canary-ttl-negative", "replay-log-a-folder",
               "replay-log-missing", "report-history-0", "report-not-a-run",
               "repro-cell-not-recorded", "repro-from-missing", "repro-guest-not-in-guests",
               "repro-times-0", "run-canary-ttl-nan", "run-guests-a-file", "run-jobs-0",
               "run-jobs-huge", "run-matrix-a-folder", "run-out-is-a-file", "run-out-missing-fs",
               "run-out-read-only-fs", "run-out-under-a-file", "run-resume-a-file",
               "run-resume-missing", "run-retries-huge", "run-retries-negative",
               "run-shard-0-of-0", "worker-scheduler-not-a-url", "worker-slots-0",
               "worker-slots-negative"}


def _cells(d: dict) -> list:
    return d["cells"]


def _set(path: tuple, value):
    return lambda d: fz.mutate(d, path, value)


RESULTS_CORPUS: dict[str, object] = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "not-json": lambda text: "<html>",
    "a-list": lambda text: "[]",
    "null": lambda text: "null",
    "non-utf8": lambda text: text.encode()[:40] + b"\xff\xfe" + text.encode()[40:],
    "deep-nesting": lambda text: text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nan-literal": lambda text: text.replace('"score": 1.0', '"score": NaN'),
    "huge-number": lambda text: text.replace('"score": 1.0', '"score": ' + "9" * 5000),
}
RESULTS_MUTATIONS: dict[str, object] = {
    "cells-5": _set(("cells",), 5),
    "cells-list-of-ints": _set(("cells",), [5]),
    "cell-no-id": lambda d: fz.mutate(d, ("cells", 0, "id"), None, delete=True),
    "verdict-5": _set(("cells", 0, "verdict"), 5),
    "verdict-unknown": _set(("cells", 0, "verdict"), "passed"),
    "score-string": _set(("cells", 0, "score"), "x"),
    "score-negative": _set(("cells", 0, "score"), -1.0),
    "milestones-5": _set(("cells", 0, "milestones"), 5),
    "milestones-list-of-ints": _set(("cells", 0, "milestones"), [5]),
    "artifacts-list": _set(("cells", 0, "artifacts"), ["a"]),
    "artifact-outside": _set(("cells", 0, "artifacts", "console"), "../../../../etc/passwd"),
    "artifact-not-a-string": _set(("cells", 0, "artifacts", "console"), True),
    "images-5": _set(("cells", 0, "images"), 5),
    "host-5": _set(("host",), 5),
    "schema-999": _set(("schema",), 999),
    "schema-string": _set(("schema",), "1"),
    "run-id-5": _set(("run_id",), 5),
    "run-id-dotdot": _set(("run_id",), "../../x"),
    "started-5": _set(("started",), 5),
    "started-not-a-time": _set(("started",), "yesterday"),
    "guests-5": _set(("guests",), 5),
    "duplicate-cell": lambda d: fz.mutate(d, ("cells",), d["cells"] * 2),
    "cell-id-dotdot": lambda d: fz.mutate(fz.mutate(d, ("cells", 0, "id"), "../../../x/y/z"),
                                          ("cells", 0, "guest"), "../../../x"),
    "command-5": _set(("cells", 0, "command"), 5),
    "missing-cells": lambda d: fz.mutate(d, ("cells",), None, delete=True),
}
# The schema allows any artifact path (the pages and merge must confine it) and history
# tolerates a duplicate cell (issue 14): refused or not, no traceback, nothing outside.
RESULTS_MAY_PASS = {"artifact-outside", "artifact-not-a-string", "duplicate-cell"}


def damaged(real_run: Path, tmp_path: Path, case: str) -> Path:
    run = tmp_path / "box" / real_run.name
    shutil.copytree(real_run, run)
    path = run / "results.json"
    if case in RESULTS_CORPUS:
        new = RESULTS_CORPUS[case](path.read_text())  # type: ignore[operator]
    else:
        new = json.dumps(RESULTS_MUTATIONS[case](json.loads(path.read_text())))  # type: ignore
    path.write_bytes(new if isinstance(new, bytes) else new.encode())
    return run


def results_argv(command: str, run: Path, out: Path, matrix: Path) -> list[str]:
    return {"report": ["report", str(run)],
            "merge": ["merge", str(run), "--out", str(out)],
            "repro": ["repro", "e/echo/bios", "--from", str(run), "--matrix", str(matrix),
                      "--out", str(out)],
            "resume": ["run", "--matrix", str(matrix), "--resume", str(run), "--out",
                       str(out)]}[command]


def values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                        st.sampled_from(fz.HOSTILE_NUMBERS), st.sampled_from(fz.HOSTILE_STRINGS),
                        st.text(max_size=20))
    return st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                        | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=5)


# Each subcommand's options (from `--help`) and what kind of value each takes.
OPTIONS: dict[str, dict[str, str]] = {
    "run": {"--only": "text", "--backend": "text", "--firmware": "text", "--shard": "text",
            "--tag": "text", "--canary-ttl": "number", "--jobs": "number", "--out": "path",
            "--offline": "flag", "--verify-cache": "flag", "--retries": "number",
            "--strict": "flag", "--fail-on": "text", "--rerun-failures": "number",
            "--resume": "path", "--keep": "flag", "--gdb": "flag", "--interactive": "flag",
            "--fresh-canary": "flag", "--guests": "path"},
    "list": {"--only": "text", "--backend": "text", "--firmware": "text", "--shard": "text",
             "--tag": "text", "--canary-ttl": "number", "--cells": "flag", "--json": "flag",
             "--markdown": "flag", "--arches": "flag", "--guests": "path"},
    "replay": {"--milestones": "text", "--source": "text"},
    "probe": {"--canary-ttl": "number", "--json": "flag", "--offline": "flag"},
    "fetch": {"--tag": "text", "--offline": "flag", "--verify-cache": "flag"},
    "report": {"--baseline": "text", "--history": "number"},
    "merge": {"--out": "path"},
    "repro": {"--from": "path", "--times": "number", "--out": "path", "--keep": "flag"},
    "needle": {"--x": "number", "--y": "number", "--w": "number", "--h": "number",
               "-o": "path", "--threshold": "number"},
    "bisect-quirks": {"--candidates": "text", "--max-runs": "number", "--out": "path"},
    "cache": {},
}
POSITIONAL = {"replay": ["GUEST", "PATH"], "report": ["RUN"], "merge": ["RUN"],
              "repro": ["CELL"], "needle": ["PATH"], "bisect-quirks": ["CELL"],
              "fetch": ["GUEST"], "cache": ["CACHE"]}
NUMBERS = ["-1", "0", "1", "2", "nan", "inf", "-inf", "1e999", "99999999999999999999", "",
           "0x10", "1.5", "-0", " 3"]
TEXTS = ["", "*", "e/echo/bios", "echo", "bios", "1/2", "0/0", "3/2", "../../x", "a\nb",
         "\x1b[2J", "$(touch pwned)", "any", "regression", "serial", "screen", "e", "e,e",
         "-", "--", "tcp://127.0.0.1:1"]


def _value(draw, kind: str, where: dict[str, Path]) -> str:
    if kind == "number":
        return draw(st.one_of(st.sampled_from(NUMBERS), st.integers().map(str)))
    if kind == "path":
        return str(draw(st.sampled_from(sorted(where.values()))))
    return draw(st.one_of(st.sampled_from(TEXTS), st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)))


@st.composite
def command_lines(draw, command: str, where: dict[str, Path]) -> list[str]:
    argv = [command]
    for slot in POSITIONAL.get(command, []):
        if slot == "GUEST":
            argv.append(draw(st.sampled_from(["e", "nothing", "../e", ""])))
        elif slot == "RUN":
            argv.append(str(where[draw(st.sampled_from(["run", "damaged", "file", "missing"]))]))
        elif slot == "CELL":
            argv.append(draw(st.sampled_from(["e/echo/bios", "*", "x/y/z", "../../x"])))
        elif slot == "CACHE":
            argv += draw(st.sampled_from([["ls"], ["prune", "--older-than", "-1d"],
                                          ["prune", "--max-size", "nan"],
                                          ["import", str(where["file"])]]))
        else:
            argv.append(str(draw(st.sampled_from(sorted(where.values())))))
    if command == "probe":
        argv.append("--no-canary")  # a canary boots a VM
    opts = OPTIONS[command]
    for name in draw(st.lists(st.sampled_from(sorted(opts)), max_size=4)) if opts else []:
        argv.append(name)
        if opts[name] != "flag":
            argv.append(_value(draw, opts[name], where))
    return argv


CUT = b"\x00CUT\x00"
XSS = (b"<script>alert(1)</script><img src=x onerror=alert(2)>"
       b"\" onmouseover=\"window.pwned=1\" x=\" javascript:alert(3) ")
HOSTILE_CONSOLE = b"".join([
    b"Linux version 6.1 \x1b[2J\x1b[31mred\x1b[0m\r\n",
    b"clip \x1b]52;c;", CUT, b"cHduZWQ=", CUT, b"\x07 done\r\n",  # OSC 52, split across reads
    b"bell \x07 back\x08\x08 cr\rover \x00nul\x9b2J c1 \xff\xfe invalid utf-8\r\n",
    b"long ", b"L" * 1_000_000, b"\r\n",
    b"Run /init as init process ", XSS, b"\r\n",
    b"FATAL: bel\x07 bs\x08 cr\r c1\x9b2J ", XSS, b" \x1b]52;c;", CUT, b"cHduZWQ=\x07",
    b"\x1b[?1049h\r\n",
])


