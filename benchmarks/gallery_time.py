"""Time every figure at each preset and print a table (figure, preset, seconds, checks).

    python benchmarks/gallery_time.py [--preset tiny full] [--chapter 3 ...] [--device auto]

Results are computed afresh (no cache). Targets (issue 2): the foundation figures at
`full` in under 60 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time

from udl.registry import load_all
from udl.runner import run_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--chapter", nargs="*", default=None, help="chapters to include (default: all)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    specs = [s for s in load_all().values() if args.chapter is None or str(s.chapter) in args.chapter]
    print(f"{'figure':<14} {'preset':<6} {'seconds':>8}  checks")
    totals = {}
    for preset in args.preset:
        for spec in specs:
            start = time.perf_counter()
            try:
                result = run_figure(spec.id, preset, device=args.device, cache=False)
                checks = f"{sum(c.ok for c in result.checks)}/{len(result.checks)}"
            except Exception as error:  # noqa: BLE001 - a benchmark reports, it does not stop
                checks = f"error: {type(error).__name__}: {error}"
            seconds = time.perf_counter() - start
            totals[preset] = totals.get(preset, 0.0) + seconds
            print(f"{spec.id:<14} {preset:<6} {seconds:8.2f}  {checks}", flush=True)
    for preset, seconds in totals.items():
        print(f"{'total':<14} {preset:<6} {seconds:8.2f}  ({len(specs)} figures)")


if __name__ == "__main__":
    main()
