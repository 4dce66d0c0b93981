"""Configuration errors: every one names file:line and the key, exit status 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import knowledge
from harness.cli import main
from harness.config import ConfigError, load_guest, load_guests, load_matrix

from .conftest import GUESTS, write

GOOD = textwrap.dedent("""\
    id: g1
    os: linux
    arch: x86_64
    images:
      kernel: {file: vmlinuz}
    boot: {kernel: kernel, cmdline: "console=ttyS0"}
    milestones:
      - {name: kernel, pattern: 'Linux version'}
    """)


def guest_file(tmp_path: Path, text: str, name: str = "g1") -> Path:
    return write(tmp_path / "guests" / f"{name}.yaml", text)


def issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_guest(path)
    return [str(i) for i in err.value.issues]


def test_the_shipped_guests_and_matrix_load():
    guests = load_guests(GUESTS)
    assert {"linux-busybox-x86_64", "linux-busybox-i386"} <= set(guests)
    matrix = load_matrix(GUESTS.parent / "matrix.yaml", guests)
    assert matrix.backends == ["tcg", "kvm", "nvmm", "haxm", "whpx", "hvf", "bochs", "vmd",
                               "bhyve", "xen", "virtualbox", "simh", "gxemul"]
    assert matrix.firmware == ["bios", "uefi"]


def test_a_good_guest_loads(tmp_path):
    g = load_guest(guest_file(tmp_path, GOOD))
    assert g.id == "g1" and g.boot.kind == "kernel" and g.boot.cmdline == "console=ttyS0"
    assert g.images["kernel"].params["path"] == str(tmp_path / "guests" / "vmlinuz")
    assert g.memory_mb == 256 and g.firmware == ["bios"] and g.console == "serial"


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = guest_file(tmp_path, GOOD + "colour: blue\n")
    assert issues(path) == [f"{path}:9: colour: unknown key (allowed here: "
                            "id, name, os, arch, images, boot, firmware, memory, vcpus, console, "
                            "milestones, failures, builtin_failures, quirks, expect, timeouts, "
                            "notes, quirk_defs, version, verified, tags, evidence, machine, cpu, "
                            "drives, simh, payload, payload_dir, payload_to, stages)"]


def test_names_repeated_in_a_list_are_named_by_file_line_and_key(tmp_path):
    path = guest_file(tmp_path, GOOD + "  - {name: kernel, pattern: 'again'}\n"
                      "payload:\n  - {name: t, run: 'true'}\n  - {name: t, run: 'false'}\n")
    assert issues(path) == [
        f"{path}:9: milestones[1].name: duplicate milestone name 'kernel'",
        f"{path}:12: payload[1].name: duplicate step name 't'"]


def test_levels_and_evidence(tmp_path):
    ok = GOOD + ("verified: layout\nevidence:\n"
                 "  - {url: 'https://example.org/SHA256', confirms: file name and digest}\n")
    g = load_guest(guest_file(tmp_path, ok))
    assert g.level == "layout" and not g.verified
    assert [(e.url, e.confirms) for e in g.evidence] == [
        ("https://example.org/SHA256", "file name and digest")]
    # the older spelling still loads; a partial transcript rests on evidence for the rest
    assert load_guest(guest_file(tmp_path, GOOD + "verified: true\n")).level == "transcript"
    part = load_guest(guest_file(tmp_path, ok.replace("verified: layout", "verified: [kernel]")))
    assert (part.level, part.verified_partly) == ("layout", ["kernel"])
    bad = GOOD + ("verified: layuot\nevidence:\n  - {url: 'ftp.example.org', confirms: ''}\n"
                  "  - just a string\n")
    path = guest_file(tmp_path, bad)
    assert issues(path) == [
        f"{path}:9: verified: 'layuot' is not a milestone (expected boots-here, transcript, "
        "observed, layout, unchecked or milestone names)",
        f"{path}:11: evidence[0].url: 'ftp.example.org': expected an http(s) URL",
        f"{path}:11: evidence[0].confirms: expected a non-empty string, got str ''",
        f"{path}:12: evidence[1]: expected a mapping, got str 'just a string'",
    ]


def test_nested_unknown_key_has_its_own_line(tmp_path):
    text = GOOD.replace("  - {name: kernel, pattern: 'Linux version'}",
                        "  - name: kernel\n    pattern: 'Linux version'\n    tiemout: 5")
    path = guest_file(tmp_path, text)
    [msg] = issues(path)
    assert msg.startswith(f"{path}:10: milestones[0].tiemout: unknown key")


def test_wrong_types(tmp_path):
    text = GOOD + "vcpus: two\nmemory: lots\nbuiltin_failures: 1\n"
    path = guest_file(tmp_path, text)
    assert issues(path) == [
        f"{path}:9: vcpus: expected a whole number from 1 to 1024, got 'two'",
        f"{path}:10: memory: expected a size such as 256M or 1G, got 'lots'",
        f"{path}:11: builtin_failures: expected true or false, got int 1",
    ]


def test_invalid_regular_expression(tmp_path):
    path = guest_file(tmp_path, GOOD.replace("'Linux version'", "'Linux (version'"))
    [msg] = issues(path)
    assert msg.startswith(f"{path}:8: milestones[0].pattern: invalid regular expression: "
                          "missing ), unterminated subpattern")


def test_unknown_backend_and_quirk(tmp_path):
    path = guest_file(tmp_path, GOOD + "quirks:\n  kvm: [noapic, warp-drive]\n  qemu-kvm: []\n")
    msgs = issues(path)
    assert msgs[0].startswith(f"{path}:10: quirks.kvm[1]: unknown quirk 'warp-drive'")
    assert msgs[1].startswith(f"{path}:11: quirks.qemu-kvm: unknown backend (known: tcg, kvm")


def test_reference_to_a_missing_image(tmp_path):
    path = guest_file(tmp_path, GOOD.replace("cmdline:", "initrd: initrd, cmdline:"))
    assert issues(path) == [f"{path}:6: boot.initrd: no image named 'initrd' in images"]


def test_id_must_match_file_name(tmp_path):
    path = guest_file(tmp_path, GOOD, name="other")
    assert issues(path) == [f"{path}:1: id: must equal the file name's stem 'other'"]


def test_missing_required_keys(tmp_path):
    path = guest_file(tmp_path, "id: g1\nos: linux\n")
    msgs = issues(path)
    for key in ("images", "boot", "milestones"):
        assert f"{path}:1: {key}: required key is missing" in msgs


def test_yaml_syntax_error_and_duplicate_key(tmp_path):
    bad = guest_file(tmp_path, GOOD + "name: [unclosed\n")
    [msg] = issues(bad)
    assert msg.startswith(f"{bad}:10: (file): invalid YAML")
    dup = guest_file(tmp_path, GOOD + "os: netbsd\n")
    assert issues(dup) == [f"{dup}:9: (file): os: duplicate key"]


def test_empty_files_and_wrong_top_levels(tmp_path):
    empty = guest_file(tmp_path, "")
    assert f"{empty}:1: id: required key is missing" in issues(empty)
    listed = guest_file(tmp_path, "- id: g1\n")
    assert issues(listed) == [f"{listed}:1: (top level): expected a mapping, got a list"]


def test_yaml_is_loaded_safely(tmp_path):
    path = guest_file(tmp_path, GOOD + "name: !!python/object/apply:os.system ['true']\n")
    [msg] = issues(path)
    assert "could not determine a constructor" in msg


def test_duplicate_ids_across_files(tmp_path):
    guest_file(tmp_path, GOOD)
    write(tmp_path / "guests" / "g1.yml", GOOD)
    with pytest.raises(ConfigError) as err:
        load_guests(tmp_path / "guests")
    assert any("duplicate id 'g1'" in str(i) for i in err.value.issues)


def test_all_problems_are_reported_at_once(tmp_path):
    guest_file(tmp_path, GOOD + "colour: blue\n")
    guest_file(tmp_path, GOOD.replace("g1", "g2") + "vcpus: 0\n", name="g2")
    with pytest.raises(ConfigError) as err:
        load_guests(tmp_path / "guests")
    assert len(err.value.issues) == 2


def test_matrix_errors(tmp_path):
    guests = {"g1": load_guest(guest_file(tmp_path, GOOD))}
    path = write(tmp_path / "matrix.yaml", textwrap.dedent("""\
        guests: [g1, nope, "win-*"]
        backends: [tcg, vmware]
        exclude:
          - {}
        jobs: -3
        """))
    with pytest.raises(ConfigError) as err:
        load_matrix(path, guests)
    msgs = [str(i) for i in err.value.issues]
    assert f"{path}:2: backends[1]: expected one of tcg, kvm, nvmm, haxm, whpx, hvf, bochs, " \
           "vmd, bhyve, xen, virtualbox, simh, gxemul, got 'vmware'" in msgs
    assert f"{path}:1: guests[1]: no guest file with id 'nope'" in msgs
    assert f"{path}:1: guests[2]: the pattern 'win-*' matches no guest" in msgs
    assert f"{path}:4: exclude[0]: an empty rule would exclude every cell" in msgs
    assert f"{path}:5: jobs: expected auto or a whole number from 1 to 1024, got -3" in msgs


def test_cli_exits_2_with_file_line(tmp_path, capsys):
    guest_file(tmp_path, GOOD + "colour: blue\n")
    matrix = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg]\n")
    assert main(["list", "--matrix", str(matrix)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'guests' / 'g1.yaml'}:9: colour: unknown key" in err


def test_cli_exits_2_without_a_matrix(tmp_path, capsys):
    assert main(["run", "--matrix", str(tmp_path / "none.yaml")]) == 2
    assert "no matrix file" in capsys.readouterr().err


def test_matrix_quirks_and_their_definitions(tmp_path):
    guests = {"g1": load_guest(guest_file(tmp_path, GOOD))}
    path = write(tmp_path / "matrix.yaml", textwrap.dedent("""\
        guests: [g1]
        backends: [tcg, haxm]
        quirk_defs:
          slow-tsc: {description: TSC is unstable here, append: [tsc=unstable]}
        quirks:
          - {backend: haxm, quirks: [noapic, slow-tsc]}
          - {guest: 'g*', quirks: [warp]}
        """))
    with pytest.raises(ConfigError) as err:
        load_matrix(path, guests)
    assert [str(i) for i in err.value.issues] == [
        f"{path}:7: quirks[1].quirks[0]: unknown quirk 'warp' (known: "
        + ", ".join(sorted([*knowledge.quirks(), "slow-tsc"]))
        + ")"]
    path.write_text(path.read_text().replace("[warp]", "[nosmp]"))
    matrix = load_matrix(path, guests)
    assert matrix.quirk_defs["slow-tsc"].append == ("tsc=unstable",)
    assert [r.quirks for r in matrix.quirk_rules] == [("noapic", "slow-tsc"), ("nosmp",)]


def test_a_matrix_file_in_the_guests_folder_is_skipped_with_a_note(tmp_path, capsys):
    folder = tmp_path / "guests"
    folder.mkdir()
    name = "linux-busybox-x86_64.yaml"
    (folder / name).write_text((GUESTS / name).read_text())
    (folder / "nightly.yaml").write_text((GUESTS.parent / "matrix.yaml").read_text())
    write(folder / "quirky.yaml", "quirks: []\nexclude: []\n")  # matrix keys only: a matrix
    notes: list[str] = []
    assert list(load_guests(folder, note=notes.append)) == ["linux-busybox-x86_64"]
    assert len(notes) == 2
    assert notes[0].startswith(f"{folder / 'nightly.yaml'}: a matrix file (keys guests, ")
    assert notes[1] == f"{folder / 'quirky.yaml'}: a matrix file (keys exclude), not a guest: " \
        "skipped"
    # a guest file that merely lacks its id is still a guest file, with its error
    write(folder / "broken.yaml", "backends: [tcg]\nos: linux\nmilestones: []\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:1: backends: unknown key"):
        load_guests(folder, note=notes.append)
    # through the command line: the note on stderr, the guests listed
    (folder / "broken.yaml").unlink()
    matrix = write(tmp_path / "matrix.yaml", "guests: ['*']\nbackends: [tcg]\n")
    assert main(["list", "--matrix", str(matrix), "--guests", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "linux-busybox-x86_64" in out and "nightly" not in out
    assert "nightly.yaml: a matrix file" in err
