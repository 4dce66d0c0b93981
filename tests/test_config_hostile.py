"""Hostile configuration files: each is refused with `file:line: key: message` and
exit status 2, in bounded time, never with a traceback (issue #14)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT, write
from .test_config import GOOD

GUEST = GOOD  # a guest file that loads; each test breaks it in one place
MATRIX = "guests: ['*']\nbackends: [tcg]\nfirmware: [bios]\n"
BOMB = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 10)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)]
)  # 10**9 values once expanded, in nine short lines


def harness(tmp_path: Path, command: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HARNESS_CACHE=str(tmp_path / "cache"))
    return subprocess.run(
        [sys.executable, "-m", "harness", command, "--matrix", str(tmp_path / "matrix.yaml"),
         "--guests", str(tmp_path / "guests"), *extra],
        capture_output=True, text=True, timeout=10, env=env, cwd=tmp_path, check=False)


def refused(tmp_path: Path, where: str, *, matrix: str = MATRIX) -> str:
    """Run `list` and `run` on the folder; both must exit 2 naming `where`."""
    write(tmp_path / "matrix.yaml", matrix)
    stderr = ""
    for command, extra in (("list", ()), ("run", ("--offline", "--out", str(tmp_path / "r")))):
        done = harness(tmp_path, command, *extra)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert where in done.stderr, done.stderr
        assert "\x1b" not in done.stderr
        stderr = done.stderr
    assert not (tmp_path / "r").exists()  # refused before anything ran
    return stderr


def guest(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "guests" / "g1.yaml", text)


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    path = guest(tmp_path, BOMB.replace("l", "x") + GUEST + "timeouts: {total: *x8}\n")
    stderr = refused(tmp_path, f"{path}:")
    assert "once aliases are expanded" in stderr


def test_an_alias_bomb_in_the_matrix_is_refused(tmp_path):
    guest(tmp_path, GUEST)
    matrix = BOMB.replace("l", "x") + MATRIX + "jobs: *x8\n"
    stderr = refused(tmp_path, f"{tmp_path / 'matrix.yaml'}:", matrix=matrix)
    assert "once aliases are expanded" in stderr


@pytest.mark.parametrize(("field", "value", "message"), [
    ("append", "5", "expected a list, got int 5"),
    ("vcpus", "x", "expected a whole number from 1 to 1024, got 'x'"),
    ("vcpus", "1000000", "expected a whole number from 1 to 1024, got 1000000"),
    ("accel_opts", "[1, 2]", "expected a mapping of option names to values, got a list"),
    ("accel_opts", "{thread: [a]}", "thread: expected a string without commas"),
    ("accel_opts", "{'a,b': x}", "an option name is letters"),
    ("machine_opts", "{hpet: off}", "quote on, off, yes and no"),
    ("cpu", "[x]", "expected a non-empty string, got a list"),
    ("qemu_args", "[{a: 1}]", "expected a non-empty string, got a mapping"),
    ("description", "{a: 1}", "expected a string, got a mapping"),
])
def test_wrong_types_in_a_quirk_definition(tmp_path, field, value, message):
    path = guest(tmp_path, GUEST + f"quirk_defs:\n  mine:\n    {field}: {value}\n")
    assert message in refused(tmp_path, f"{path}:11: quirk_defs.mine.{field}")


def test_wrong_types_in_a_matrix_quirk_definition(tmp_path):
    guest(tmp_path, GUEST)
    matrix = MATRIX + "quirk_defs:\n  mine: {vcpus: x, append: 5}\n"
    stderr = refused(tmp_path, f"{tmp_path / 'matrix.yaml'}:5: quirk_defs.mine.vcpus:",
                     matrix=matrix)
    assert "quirk_defs.mine.append: expected a list" in stderr


def test_a_good_quirk_definition_still_applies(tmp_path):
    from harness.config import load_guest

    path = guest(tmp_path, GUEST + "quirk_defs:\n  mine: {vcpus: 1, accel_opts: {tb-size: 64},"
                 " append: [noapic], machine_opts: {hpet: 'off'}}\nquirks: {tcg: [mine]}\n")
    q = load_guest(path).quirk_defs["mine"]
    assert (q.vcpus, q.accel_opts, q.append, q.machine_opts) == (
        1, {"tb-size": "64"}, ("noapic",), {"hpet": "off"})


def test_a_nul_byte(tmp_path):
    path = guest(tmp_path, GUEST + "notes: a\x00b\n")
    assert "a NUL byte" in refused(tmp_path, f"{path}:9: (file):")


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "guests" / "g1.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(GUEST.encode() + b"notes: caf\xe9\n")
    assert "not UTF-8 (byte 0xe9)" in refused(tmp_path, f"{path}:9: (file):")


def test_a_5000_digit_integer(tmp_path):
    path = guest(tmp_path, GUEST + "vcpus: " + "9" * 5000 + "\n")
    assert "more than 40 digits" in refused(tmp_path, f"{path}:9: (file):")


@pytest.mark.parametrize("text", ["[" * 100000, "[" * 65 + "]" * 65, "- " * 200 + "x",
                                  "".join("  " * i + f"k{i}:\n" for i in range(500))])
def test_deep_nesting(tmp_path, text):
    path = guest(tmp_path, GUEST + "notes: " + text + "\n" if text.startswith("[") else
                 GUEST + "tags:\n" + textwrap.indent(text, "  ") + "\n")
    stderr = refused(tmp_path, f"{path}:")
    assert "nest" in stderr and "RecursionError" not in stderr


def test_an_alias_inside_its_own_anchor(tmp_path):
    path = guest(tmp_path, GUEST + "tags: &t [a, *t]\n")
    assert "inside its own anchor" in refused(tmp_path, f"{path}:9: (file):")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("memory", "99999999999999999999999T", "expected a size such as 256M"),
    ("memory", "999999T", "more than 16T"),
    ("memory", "99999999999", "more than 16T"),
    ("vcpus", "1000000", "expected a whole number from 1 to 1024"),
    ("timeouts", "{total: 1e12}", "expected a positive number up to 604800"),
    ("timeouts", "{stall: .nan}", "expected a positive number up to 604800"),
])
def test_absurd_guest_values(tmp_path, key, value, message):
    path = guest(tmp_path, GUEST + f"{key}: {value}\n")
    assert message in refused(tmp_path, f"{path}:9: {key}")


@pytest.mark.parametrize(("text", "where", "message"), [
    ("defaults: {retries: 1000}", "4: defaults.retries", "from 0 to 100"),
    ("defaults: {memory: 99999999999999999999999T}", "4: defaults.memory", "expected a size"),
    ("jobs: 100000", "4: jobs", "from 1 to 1024"),
    ("jobs: " + "9" * 5000, "4: (file)", "more than 40 digits"),
])
def test_absurd_matrix_values(tmp_path, text, where, message):
    guest(tmp_path, GUEST)
    stderr = refused(tmp_path, f"{tmp_path / 'matrix.yaml'}:{where}:", matrix=MATRIX + text)
    assert message in stderr


def test_a_long_hostile_value_is_shown_short_and_escaped(tmp_path):
    path = guest(tmp_path, GUEST.replace("arch: x86_64", 'arch: "\\e]52;c;' + "A" * 100000 + '"'))
    stderr = refused(tmp_path, f"{path}:3: arch: expected one of")
    assert len(stderr) < 2000 and "\\x1b]52" in stderr


def test_a_hostile_key_is_shown_escaped(tmp_path):
    path = guest(tmp_path, GUEST + '"\\e[2J\\e]0;pwned\\a": 1\n')
    assert "'\\x1b[2J\\x1b]0;pwned\\x07': unknown key" in refused(tmp_path, f"{path}:9: ")


@pytest.mark.parametrize("target", ["/proc/self/mem", "/dev/zero", "/proc/self/environ",
                                    "fifo", "folder"])
def test_an_image_file_that_is_not_a_regular_file(tmp_path, target):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    path = guest(tmp_path, GUEST.replace("vmlinuz", str(tmp_path / target)
                                         if "/" not in target else target))
    stderr = refused(tmp_path, f"{path}:5: images.kernel.file: ")
    assert "not a regular file" in stderr or "cannot be in /proc, /sys or /dev" in stderr


@pytest.mark.parametrize("kind", ["fifo", "folder", "devzero", "huge"])
def test_a_guest_file_that_is_not_a_small_regular_file(tmp_path, kind):
    path = tmp_path / "guests" / "g1.yaml"
    path.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block without O_NONBLOCK
    elif kind == "folder":
        path.mkdir()
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    else:
        path.write_text(GUEST + "notes: '" + "x" * (1 << 20) + "'\n")
    stderr = refused(tmp_path, f"{path}:0: (file): ")
    assert ("larger than 1024 KiB" if kind == "huge" else "not a regular file") in stderr


def test_a_matrix_file_that_cannot_be_read(tmp_path):
    guest(tmp_path, GUEST)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HARNESS_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "harness", "list", "--matrix", "/proc/self/mem",
                           "--guests", str(tmp_path / "guests")], capture_output=True, text=True,
                          timeout=10, env=env, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "/proc/self/mem:0: (file): cannot read" in done.stderr
