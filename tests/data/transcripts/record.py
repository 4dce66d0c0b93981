"""Copy the serial consoles of a run's passing cells here, as replay fixtures.

    python tests/data/transcripts/record.py reports/<run-id> [GUEST...]

Each passing cell's console.raw (the bytes as the guest printed them)
becomes <guest>.<backend>-<firmware>.log and gets an entry in index.yaml
(replacing an older one for the same file). Screen-only guests have no
serial transcript and are left out. Only real consoles belong here: this
script is the way they arrive.
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
    run, wanted = Path(argv[0]), set(argv[1:])
    results = json.loads((run / "results.json").read_text())
    index_path = HERE / "index.yaml"
    index = yaml.safe_load(index_path.read_text()) if index_path.exists() else []
    qemu = results["host"].get("qemu") or "?"
    for cell in results["cells"]:
        raw = run / cell["artifacts"].get("console_raw", "-")
        if cell["verdict"] != "pass" or (wanted and cell["guest"] not in wanted):
            continue
        if not raw.is_file() or raw.stat().st_size < 64:
            continue
        name = f"{cell['guest']}.{cell['backend']}-{cell['firmware']}.log"
        shutil.copyfile(raw, HERE / name)
        index = [e for e in index if e["file"] != name]
        index.append({"file": name, "guest": cell["guest"],
                      "origin": f"recorded by harness run {results['run_id']} "
                                f"({cell['backend']}, {cell['firmware']}, QEMU {qemu})"})
        print(f"recorded {name}")
    index.sort(key=lambda e: e["file"])
    index_path.write_text("# Real boot consoles and what each is evidence for; see record.py\n"
                          + yaml.safe_dump(index, sort_keys=False, width=100))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
