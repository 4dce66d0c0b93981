"""Matrix expansion: guests x backends x firmware, exclude, expect, selection."""

from __future__ import annotations

import re

import pytest

from harness.model import (
    BootSpec,
    ExcludeRule,
    Expectation,
    Guest,
    Matrix,
    Milestone,
    Timeouts,
)
from harness.plan import PlanError, expand, parse_shard


def guest(gid: str, firmware=("bios", "uefi"), **kw) -> Guest:
    return Guest(
        id=gid, name=gid, os="linux", arch="x86_64", images={}, boot=BootSpec("kernel"),
        firmware=list(firmware), memory_mb=128, vcpus=1, console="serial",
        milestones=[Milestone("m", re.compile("x"))], failures=[], **kw,
    )


GUESTS = {
    "linux-a": guest("linux-a", quirks={"haxm": ["noapic"]},
                     expect=[Expectation("hangs", backend="haxm")]),
    "linux-b": guest("linux-b", firmware=("bios",), timeouts=Timeouts(30, 5)),
    "win-7": guest("win-7", firmware=("uefi",)),
}


def matrix(**kw) -> Matrix:
    base = dict(guests=["*"], backends=["tcg", "kvm", "haxm"], firmware=["bios", "uefi"],
                timeouts=Timeouts(300, 60))
    base.update(kw)
    return Matrix(**base)


def ids(cells) -> list[str]:
    return [c.id for c in cells]


def test_expansion_order_and_firmware_filtering():
    cells = expand(matrix(), GUESTS)
    assert ids(cells) == [
        "linux-a/tcg/bios", "linux-a/tcg/uefi", "linux-a/kvm/bios", "linux-a/kvm/uefi",
        "linux-a/haxm/bios", "linux-a/haxm/uefi",
        "linux-b/tcg/bios", "linux-b/kvm/bios", "linux-b/haxm/bios",
        "win-7/tcg/uefi", "win-7/kvm/uefi", "win-7/haxm/uefi",
    ]


def test_quirks_expectations_and_timeouts_per_cell():
    cells = {c.id: c for c in expand(matrix(), GUESTS)}
    assert cells["linux-a/haxm/bios"].quirk_names == ["noapic"]
    assert cells["linux-a/tcg/bios"].quirk_names == []
    assert cells["linux-a/haxm/uefi"].expect.reason == "hangs"
    assert cells["linux-a/kvm/bios"].expect is None
    assert cells["linux-b/tcg/bios"].timeouts == Timeouts(30, 5)
    assert cells["linux-a/tcg/bios"].timeouts == Timeouts(300, 60)


def test_matrix_level_exclude_and_expect():
    m = matrix(exclude=[ExcludeRule(guest="win-*", backend="tcg")],
               expect=[Expectation("no UEFI", guest="linux-*", firmware="uefi")])
    cells = {c.id: c for c in expand(m, GUESTS)}
    assert "win-7/tcg/uefi" not in cells and "win-7/kvm/uefi" in cells
    assert cells["linux-a/kvm/uefi"].expect.reason == "no UEFI"
    assert cells["linux-a/haxm/uefi"].expect.reason == "hangs"  # the guest's own rule first


def test_selection_by_only_backend_firmware():
    assert ids(expand(matrix(), GUESTS, only=["*/kvm/*"], firmware=["bios"])) == [
        "linux-a/kvm/bios", "linux-b/kvm/bios"]
    assert ids(expand(matrix(), GUESTS, backends=["haxm"], only=["win-*"])) == ["win-7/haxm/uefi"]
    with pytest.raises(PlanError, match="matches no cell"):
        expand(matrix(), GUESTS, only=["freebsd-*"])
    with pytest.raises(PlanError, match="unknown backend"):
        expand(matrix(), GUESTS, backends=["vmware"])


def test_guest_globs_of_the_matrix():
    assert {c.guest.id for c in expand(matrix(guests=["linux-*"]), GUESTS)} == {
        "linux-a", "linux-b"}


def test_shards_partition_the_cells():
    all_ids = ids(expand(matrix(), GUESTS))
    parts = [ids(expand(matrix(), GUESTS, shard=(k, 3))) for k in (1, 2, 3)]
    assert sorted(x for part in parts for x in part) == sorted(all_ids)
    assert parts == [ids(expand(matrix(), GUESTS, shard=(k, 3))) for k in (1, 2, 3)]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(PlanError):
            parse_shard(bad)


def test_memory_and_retries_defaults():
    m = matrix(memory_mb=777, retries=2)
    cells = {c.id: c for c in expand(m, GUESTS)}
    assert cells["linux-a/tcg/bios"].memory_mb == 128  # the guest says its memory
    g = guest("nomem", memory_set=False)
    [cell] = expand(matrix(backends=["tcg"], firmware=["bios"]), {"nomem": g})
    assert cell.memory_mb == 512 and cell.retries == 0
    [cell] = expand(matrix(backends=["tcg"], firmware=["bios"], memory_mb=777, retries=2),
                    {"nomem": g}, retries=1)
    assert cell.memory_mb == 777 and cell.retries == 1


def test_matrix_quirk_rules_and_definitions():
    from harness.model import Quirk, QuirkRule

    slow = Quirk("slow-tsc", "", append=("tsc=unstable",))
    m = matrix(quirk_defs={"slow-tsc": slow},
               quirk_rules=[QuirkRule(("noapic", "slow-tsc"), guest="linux-*", backend="haxm"),
                            QuirkRule(("no-hpet",), firmware="uefi")])
    cells = {c.id: c for c in expand(m, GUESTS)}
    assert cells["linux-a/haxm/bios"].quirk_names == ["noapic", "slow-tsc"]  # deduplicated
    assert cells["linux-a/haxm/uefi"].quirk_names == ["noapic", "slow-tsc", "no-hpet"]
    assert cells["win-7/kvm/uefi"].quirk_names == ["no-hpet"]
    assert cells["linux-b/tcg/bios"].quirk_names == []
    assert cells["linux-a/haxm/bios"].quirk_defs["slow-tsc"] is slow


def test_a_guest_s_own_quirk_definition_wins_over_the_matrix_s():
    import dataclasses

    from harness.model import Quirk, QuirkRule

    mine = Quirk("slow-tsc", "the guest's", append=("tsc=reliable",))
    theirs = Quirk("slow-tsc", "the matrix's", append=("tsc=unstable",))
    guests = {"linux-a": dataclasses.replace(GUESTS["linux-a"], quirk_defs={"slow-tsc": mine})}
    m = matrix(quirk_defs={"slow-tsc": theirs},
               quirk_rules=[QuirkRule(("slow-tsc",), backend="haxm")])
    cell = next(c for c in expand(m, guests) if c.id == "linux-a/haxm/bios")
    assert cell.quirks[-1] is mine and cell.quirk_defs["slow-tsc"] is mine
