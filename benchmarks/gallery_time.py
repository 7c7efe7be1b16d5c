"""Time a whole gallery at several settings (processes x threads): seconds per figure and in all.

    python benchmarks/gallery_time.py [--preset tiny|full] [--chapter 3 ...] [--settings 1x1 2x1 1x2]
                                      [--data cold|warm] [--keep DIR] [--json FILE]

Each setting runs ``udl.gallery.build_gallery`` in a fresh Python process, with
``--no-cache`` semantics (every figure computed), ``P`` figure processes (``jobs=P``) of
``T`` torch threads each (``$UDL_NUM_THREADS=T``), a fresh figure cache, and either a
fresh ``$UDL_DATA_DIR`` for every setting (``--data cold``: data sets made and shared
models trained inside the run, as on a first install) or one data folder made once
before the first timed setting and kept (``--data warm``, the default).

The table has a row per figure (its own compute seconds at each setting) and the
totals: the wall time of the whole run (what a reader waits; the number the issues'
targets name), the sum of the figures' seconds, and the longest figure. The total is
decided by the longest figures: with P processes it is at least max(longest, sum / P).

Only meaningful on an otherwise idle machine: say how idle it was beside the numbers.
Results go to benchmarks/RESULTS.md ("Whole gallery").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import json, sys
from udl.gallery import build_gallery
from udl.schedule import resolve_jobs
chapters = json.loads(sys.argv[3])
summary = build_gallery(preset=sys.argv[1], out=sys.argv[2], jobs=resolve_jobs(sys.argv[4]), chapters=chapters,
                        cache=False)
print(json.dumps({"ok": summary["ok"], "figures": summary["figures"]}))
"""


def parse_setting(text: str) -> tuple[int, int]:
    """``"2x1"`` -> (2 processes, 1 thread)."""
    try:
        processes, threads = (int(v) for v in text.lower().split("x"))
    except ValueError:
        processes = threads = 0
    if processes < 1 or threads < 1:
        raise argparse.ArgumentTypeError(f"expected PROCESSESxTHREADS such as 2x1, got {text!r}")
    return processes, threads


def chapter(text: str) -> int | str:
    return int(text) if text.isdigit() else text.upper()


def run_setting(preset: str, chapters, processes: int, threads: int, data: Path, work: Path) -> dict:
    """One gallery run in a fresh process; returns wall seconds, the records' seconds and the run's summary."""
    out = work / f"out-{processes}x{threads}"
    env = {**os.environ, "UDL_NUM_THREADS": str(threads), "UDL_DATA_DIR": str(data),
           "UDL_CACHE_DIR": str(work / f"cache-{processes}x{threads}"), "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN, preset, str(out), json.dumps(chapters), str(processes)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0,) and not done.stdout.strip():
        raise SystemExit(f"the {processes}x{threads} run failed:\n{done.stderr[-3000:]}")
    seconds = {}
    for path in out.glob("*.json"):
        rec = json.loads(path.read_text())
        if isinstance(rec, dict) and "id" in rec and "seconds" in rec:
            seconds[rec["id"]] = (rec["seconds"], rec.get("ok", True))
    return {"wall": wall, "seconds": seconds, "summary": json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "full"])
    parser.add_argument("--chapter", nargs="*", type=chapter, default=None, help="chapters (default: all)")
    parser.add_argument("--settings", nargs="+", type=parse_setting, default=[(1, 1), (2, 1), (1, 2)],
                        metavar="PxT", help="processes x threads (default 1x1 2x1 1x2)")
    parser.add_argument("--data", choices=["cold", "warm"], default="warm",
                        help="cold: a fresh data folder per setting; warm: one, filled before timing (default)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder (default: a tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="udl-gallery-time-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        shared = work / "data"
        if args.data == "warm":  # fill the data folder (data sets, tokenizers, trained models) untimed
            print("warming the data folder ...", file=sys.stderr, flush=True)
            run_setting(args.preset, args.chapter, 1, 1, shared, work / "warm-up")
        runs = {}
        for processes, threads in args.settings:
            data = shared if args.data == "warm" else work / f"data-{processes}x{threads}"
            print(f"running {processes}x{threads} ...", file=sys.stderr, flush=True)
            runs[f"{processes}x{threads}"] = run_setting(args.preset, args.chapter, processes, threads, data, work)

    from udl.registry import sort_key

    names = list(runs)
    ids = sorted({i for r in runs.values() for i in r["seconds"]}, key=sort_key)
    print(f"udl gallery --preset {args.preset}, data {args.data}, chapters {args.chapter or 'all'}; seconds")
    print(f"{'figure':<18}" + "".join(f"{n:>10}" for n in names))
    for fig_id in ids:
        cells = []
        for n in names:
            secs, ok = runs[n]["seconds"].get(fig_id, (float("nan"), True))
            cells.append(f"{secs:9.2f}{' ' if ok else '!'}")
        print(f"{fig_id:<18}" + "".join(cells))
    for label, value in (("sum of figures", lambda r: sum(s for s, _ in r["seconds"].values())),
                         ("longest figure", lambda r: max((s for s, _ in r["seconds"].values()), default=0.0)),
                         ("wall (total)", lambda r: r["wall"])):
        print(f"{label:<18}" + "".join(f"{value(runs[n]):10.2f}" for n in names))
    print("(! = the figure failed)")
    if args.json:
        args.json.write_text(json.dumps({"preset": args.preset, "data": args.data, "chapters": args.chapter,
                                         "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
