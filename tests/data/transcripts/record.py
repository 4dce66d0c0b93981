"""Copy the serial consoles of a run's passing cells here, as replay fixtures.

    python tests/data/transcripts/record.py reports/<run-id> [--partial] [GUEST...]

Each passing cell's console.raw (the bytes as the guest printed them)
becomes <guest>.<backend>-<firmware>.log and gets an entry in index.yaml
(replacing an older one for the same file). A staged guest's boots are one
console each: <guest>.<backend>-<firmware>.<stage>.log with `stage:`, replayed
through that stage's milestones. With --partial a stage that booted but did
not pass is recorded too, with `milestones:` the ones it reached (the
evidence a cut-short real console is). Screen-only guests have no serial
transcript and are left out. Only real consoles belong here: this script is
the way they arrive.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    partial = "--partial" in argv[1:]
    run, wanted = Path(argv[0]), set(argv[1:]) - {"--partial"}
    results = json.loads((run / "results.json").read_text())
    index_path = HERE / "index.yaml"
    index = yaml.safe_load(index_path.read_text()) if index_path.exists() else []
    qemu = results["host"].get("qemu") or "?"
    for cell in results["cells"]:
        if wanted and cell["guest"] not in wanted:
            continue
        origin = (f"recorded by harness run {results['run_id']} "
                  f"({cell['backend']}, {cell['firmware']}, QEMU {qemu})")
        base = f"{cell['guest']}.{cell['backend']}-{cell['firmware']}"
        for name, raw, extra in _consoles(run, cell, base, partial):
            if not raw.is_file() or raw.stat().st_size < 64:
                continue
            shutil.copyfile(raw, HERE / name)
            index = [e for e in index if e["file"] != name]
            index.append({"file": name, "guest": cell["guest"], **extra, "origin": origin})
            print(f"recorded {name}")
    index.sort(key=lambda e: e["file"])
    index_path.write_text("# Real boot consoles and what each is evidence for; see record.py\n"
                          + yaml.safe_dump(index, sort_keys=False, width=100))
    return 0


def _consoles(run: Path, cell: dict, base: str, partial: bool):
    """(file name, console.raw, index keys) of each console of the cell worth keeping."""
    if not cell.get("stages"):
        if cell["verdict"] == "pass":
            yield f"{base}.log", run / cell["artifacts"].get("console_raw", "-"), {}
        return
    reached = {m["name"] for m in cell["milestones"] if m["reached"]}
    for stage in cell["stages"]:
        raw = stage["artifacts"].get("console_raw")
        if raw is None or (stage["verdict"] != "pass" and not partial):
            continue
        extra: dict = {"stage": stage["name"]}
        if stage["verdict"] != "pass":  # cut short: evidence for what it reached only
            extra["milestones"] = [m["name"] for m in cell["milestones"]
                                   if m["name"] in reached
                                   and m["name"].startswith(stage["name"] + "/")]
        yield f"{base}.{stage['name']}.log", run / raw, extra


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
