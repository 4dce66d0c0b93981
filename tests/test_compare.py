"""Speed ratios and console divergence across the backends of one guest."""

from __future__ import annotations

from harness.model import CellResult, MilestoneResult, Verdict
from harness.progress import summary_table
from harness.results.compare import add_divergence, add_speed

from .conftest import write


def result(backend: str, verdict: Verdict, times: list[float | None]) -> CellResult:
    names = ["kernel", "init", "shell"]
    return CellResult(
        cell_id=f"g/{backend}/bios", guest="g", backend=backend, firmware="bios",
        verdict=verdict, score=1.0,
        milestones=[MilestoneResult(n, t is not None, t) for n, t in zip(names, times,
                                                                         strict=True)],
        artifacts={"console": f"cells/g/{backend}-bios/console.log"})


def test_speed_is_the_ratio_to_the_fastest_at_the_last_common_milestone():
    kvm = result("kvm", Verdict.PASS, [0.5, 1.0, 2.0])
    haxm = result("haxm", Verdict.PASS, [0.6, 1.25, 2.5])
    tcg = result("tcg", Verdict.HANG, [3.0, 5.0, None])
    skipped = CellResult("g/hvf/bios", "g", "hvf", "bios", Verdict.SKIP)
    cells = [kvm, haxm, tcg, skipped]
    add_speed(cells)
    assert kvm.speed == {"milestone": "init", "reference": "kvm", "t": 1.0, "reference_t": 1.0,
                         "ratio": 1.0}
    assert haxm.speed["ratio"] == 1.25 and tcg.speed["ratio"] == 5.0
    assert skipped.speed is None
    table = summary_table(cells)
    assert "1.25x" in table and "5.00x" in table


def test_divergence_names_the_first_differing_line_without_time_stamps(tmp_path):
    good = result("tcg", Verdict.PASS, [1.0, 2.0, 3.0])
    bad = result("kvm", Verdict.CRASH, [0.5, 1.0, None])
    write(tmp_path / good.artifacts["console"],
          "[    0.100] [    0.000000] Linux version 6.1\n[    1.000] [    0.512000] ACPI: ok\n"
          "[    1.100] ### harness: milestone 'init' matched\n"
          "[    1.200] [    0.600000] Run /init as init process\n")
    write(tmp_path / bad.artifacts["console"],
          "[    0.300] [    0.000000] Linux version 6.1\n[    0.700] [    0.498000] ACPI: ok\n"
          "[    0.900] [    0.550000] traps: init[1] general protection fault\n")
    add_divergence([good, bad], tmp_path)
    assert good.divergence is None
    assert bad.divergence == {"from": "tcg/bios", "last_common_milestone": "init", "line": 3,
                              "expected": "Run /init as init process",
                              "got": "traps: init[1] general protection fault"}
    assert ("g/kvm/bios parts from tcg/bios after 'init', console line 3: expected "
            "'Run /init as init process', got 'traps: init[1] general protection fault'"
            ) in summary_table([good, bad])


def test_many_skipped_cells_are_counted_per_reason():
    from harness.model import CellResult, Verdict

    cells = [CellResult(f"g{i}/nvmm/bios", f"g{i}", "nvmm", "bios", Verdict.SKIP,
                        reason="nvmm missing: runs on NetBSD") for i in range(30)]
    cells += [CellResult("g0/tcg/bios", "g0", "tcg", "bios", Verdict.PASS, score=1.0)]
    table = summary_table(cells)
    assert "g0/tcg/bios" in table and "g5/nvmm/bios" not in table
    assert "30 cells skipped:" in table and "  30 x nvmm missing: runs on NetBSD" in table
    assert table.endswith("totals: pass 1, skip 30")
    few = summary_table(cells[:3])
    assert "g1/nvmm/bios" in few and "skipped:" not in few
