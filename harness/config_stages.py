"""A guest file's `stages:`: boots in order on one set of disks (an installer, then the
installed system), each with its own boot medium, milestones, payload and deadlines,
checked like the rest of the file (`file:line: stages[1].milestones[0].pattern: …`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config_boot import boot_spec
from .config_milestones import CONSOLES, milestone_list
from .config_payload import payload_dir, payload_steps, payload_to
from .files import SAFE_NAME_RULE, safe_name
from .model import BootSpec, Drive, ImageSpec, Stage, Timeouts
from .validate import _Checker, _Map, _one_of, _positive, shown

STAGE_KEYS = ("name", "boot", "console", "milestones", "payload", "payload_dir", "payload_to",
              "timeouts")
PER_STAGE = ("milestones", "payload", "payload_dir", "payload_to")  # not beside `stages:`


def timeouts(t: _Map | None, base: Timeouts | None = None) -> Timeouts | None:
    """`timeouts: {total, stall}`, each defaulting to `base`'s."""
    if t is None:
        return None
    t.keys(("total", "stall"))
    base = base or Timeouts()
    return Timeouts(total=t.get("total", _positive, base.total),
                    stall=t.get("stall", _positive, base.stall))


def stage_list(c: _Checker, m: _Map, images: dict[str, ImageSpec], base: Path,
               console: str, boot: BootSpec | None, drives: Sequence[Drive] = ()) -> list[Stage]:
    """The stages, in order; a stage without `boot:` boots the guest's `boot:`."""
    if "stages" not in m.data:
        return []
    for key in PER_STAGE:
        if key in m.data:
            c.issue(m.line_of(key), key, "a guest with `stages:` gives each stage its own "
                    f"`{key}:` (move it into the stage it belongs to)")
    out: list[Stage] = []
    for s, name in c.named(m, "stages", STAGE_KEYS, "stage"):
        if name and not safe_name(name):
            c.issue(s.line_of("name"), s.path("name"),
                    f"{shown(name)}: a stage name is {SAFE_NAME_RULE} characters")
        stage_boot = boot_spec(c, s, images) if "boot" in s.data else boot
        if "boot" not in s.data and boot is None:
            c.issue(s.line, s.path("boot"), "needs `boot:` (the guest has none for its stages)")
        if "milestones" not in s.data:
            c.issue(s.line, s.path("milestones"), "a stage needs its milestones (the last one "
                    "is where it ends, or where its payload starts)")
        # a stage may watch another console (an installer on the screen, then a serial login)
        stage_console = s.get("console", _one_of(*CONSOLES), console)
        milestones = milestone_list(c, s, base, stage_console)
        out.append(Stage(name=name, boot=stage_boot or BootSpec("kernel"), milestones=milestones,
                         console=stage_console,
                         payload=payload_steps(c, s, milestones, stage_console, drives),
                         payload_dir=payload_dir(c, s, base), payload_to=payload_to(s),
                         timeouts=timeouts(s.sub("timeouts"))))
    if not out and not c.issues:
        c.issue(m.line_of("stages"), "stages", "needs at least one stage")
    return out
