"""Write src/udl/timings.json from gallery records: the newest computed (not cached) time per figure and preset.

    python benchmarks/collect_timings.py RUN_FOLDER... [--machine TEXT] [--out src/udl/timings.json]

Each RUN_FOLDER holds ``<id>.json`` records (``udl gallery`` / ``udl figure`` output); a
figure's newest record (by file time) that succeeded and was not read from the cache
wins. Only registered figures are kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from udl.registry import load_all, sort_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--machine", default="2-core x86-64 Linux VM, one torch thread per process")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "src" / "udl" / "timings.json")
    args = parser.parse_args()
    registered = set(load_all())
    newest: dict[tuple[str, str], tuple[float, float, str]] = {}
    for folder in args.folders:
        for path in folder.rglob("*.json"):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(rec, dict) or rec.get("id") not in registered or rec.get("cached") \
                    or rec.get("ok") is False or not isinstance(rec.get("seconds"), (int, float)):
                continue
            key = (rec["preset"], rec["id"])
            stamp = path.stat().st_mtime
            if key not in newest or stamp > newest[key][0]:
                newest[key] = (stamp, float(rec["seconds"]), str(path.parent.name))
    data: dict = {"machine": args.machine, "threads_per_process": 1,
                  "date": time.strftime("%Y-%m-%d", time.gmtime(max(v[0] for v in newest.values()))),
                  "sources": sorted({v[2] for v in newest.values()})}
    for preset in ("tiny", "full"):
        ids = sorted((i for p, i in newest if p == preset), key=sort_key)
        data[preset] = {i: round(newest[(preset, i)][1], 2) for i in ids}
        missing = sorted(registered - set(ids), key=sort_key)
        print(f"{preset}: {len(ids)} figures, {sum(data[preset].values()):.1f} s in all; missing {missing}")
    args.out.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
