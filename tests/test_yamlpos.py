"""The YAML loader's bounds, on their edges (issue #14)."""

from __future__ import annotations

import os

import pytest

from harness import knowledge, yamlpos
from harness.validate import ConfigError
from harness.yamlpos import MAX_DEPTH, MAX_NODES, YamlError, load_file, load_text


def nested(levels: int) -> str:
    return "[" * levels + "x" + "]" * levels


def test_nesting_up_to_the_bound_loads_and_one_more_is_refused():
    value = load_text(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == ["x"]
    with pytest.raises(YamlError, match=f"nested more than {MAX_DEPTH} levels deep"):
        load_text(nested(MAX_DEPTH + 1))


def test_aliases_count_what_they_expand_to():
    def text(aliases: int) -> str:  # the list *a is 10 values, itself included
        return f"a: &a [{', '.join(['v'] * 9)}]\nb: [{', '.join(['*a'] * aliases)}]\n"

    fits = (MAX_NODES - 20) // 10
    assert len(load_text(text(fits))["b"]) == fits
    with pytest.raises(YamlError, match="once aliases are expanded") as err:
        load_text(text(fits + 3))
    assert err.value.line == 2


def test_shared_anchors_of_the_shipped_tables_still_load():
    assert knowledge.backends()["kvm"].quirk_fields == knowledge.backends()["tcg"].quirk_fields
    assert knowledge.builtin_signatures()["openbsd"] == knowledge.builtin_signatures()["netbsd"]


def test_merge_keys_still_work():
    assert load_text("a: &a {x: 1}\nb: {<<: *a, y: 2}\n")["b"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(("data", "line", "message"), [
    (b"a: 1\nb: 2\x00\n", 2, "a NUL byte (this is not a text file)"),
    (b"a: 1\n\nb: \xc3\x28\n", 3, "not UTF-8 (byte 0xc3)"),
])
def test_bad_bytes_name_their_line(tmp_path, data, line, message):
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(YamlError) as err:
        load_file(path)
    assert (err.value.line, err.value.message) == (line, message)


def test_numbers_are_bounded_in_digits_but_ordinary_ones_load():
    assert load_text("a: 1_000\nb: 0x1f\nc: " + "9" * 40) == {
        "a": 1000, "b": 31, "c": int("9" * 40)}
    with pytest.raises(YamlError, match="more than 40 digits"):
        load_text("a: 1\nb: " + "9" * 41)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "f.yaml")
    with pytest.raises(YamlError, match="not a regular file"):
        load_file(tmp_path / "f.yaml")


def test_a_file_past_the_size_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlpos, "MAX_BYTES", 100)
    (tmp_path / "f.yaml").write_text("a: " + "x" * 100)
    with pytest.raises(YamlError, match="larger than"):
        load_file(tmp_path / "f.yaml")


def test_a_broken_table_entry_is_a_config_error_naming_it(monkeypatch):
    table = load_text("good: {qemu: q, debian: d, package: p, cpu_base: c}\nbad: {qemu: q}\n")
    monkeypatch.setattr(knowledge, "_table", lambda name: table)
    with pytest.raises(ConfigError) as err:
        knowledge._entries("arches.yaml", lambda name, d: (d["qemu"], d["debian"]))
    [issue] = err.value.issues
    assert (issue.line, issue.key, issue.message) == (2, "bad", "missing key 'debian'")
