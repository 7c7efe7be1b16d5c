"""How many torch threads should udl use on a CPU? Time the same work with 1, 2, ... threads.

    python benchmarks/cpu_threads.py [--threads 1 2] [--busy 0 1] [--part layers figures]
                                     [--figures 3.5:full 10.mnist1d:full:steps=1000 ...]

Two tables:

- ``layers``: milliseconds per training step (forward, backward, Adam) of a multi-layer
  perceptron, a 1D convolutional network and a transformer layer at growing sizes, in
  this process, for each thread count;
- ``figures``: seconds of whole figures, each run as ``udl figure ID --preset P --no-cache``
  in a fresh process with ``UDL_NUM_THREADS`` set and an empty ``UDL_DATA_DIR`` (so that
  shared trained models and tokenizers are trained in every run), for each thread count.

``--busy 1`` repeats every measurement while another process keeps one core busy (a
second figure of ``udl gallery --jobs 2``, a browser, another user): the case where a
thread waiting for a descheduled sibling stalls every kernel.

The decision this informs is made in one place, :func:`udl.devices.cpu_threads`;
results measured for it are in ``benchmarks/RESULTS.md``. Run it on an otherwise idle
machine: the numbers are wall-clock times.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as udl does on import

import torch  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_FIGURES = ["3.5:tiny", "3.5:full", "10.mnist1d:tiny", "10.mnist1d:full:steps=1000",
                   "11.13:tiny", "12.12:tiny",
                   "12.12:full:steps=60:warmup=10"]


def _spin() -> None:
    while True:
        pass


class BusyCore:
    """A context in which ``n`` other processes each keep one core busy."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(self.n)]
        for p in self.procs:
            p.start()
        time.sleep(0.3 if self.n else 0)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
            p.join()


def _networks():
    """(name, size, model, input, target) for each workload of the layer table."""
    g = torch.Generator().manual_seed(0)
    for width in (32, 128, 512, 2048):
        model = nn.Sequential(nn.Linear(40, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                              nn.Linear(width, 10))
        yield "MLP, batch 100", f"width {width}", model, torch.randn(100, 40, generator=g), torch.randn(100, 10)
    for channels in (8, 32, 128):
        model = nn.Sequential(nn.Conv1d(1, channels, 5, padding=2), nn.ReLU(),
                              nn.Conv1d(channels, channels, 5, padding=2), nn.ReLU(),
                              nn.Flatten(), nn.Linear(channels * 40, 10))
        yield "conv1d, batch 100", f"{channels} channels", model, torch.randn(100, 1, 40, generator=g), \
            torch.randn(100, 10)
    for d in (64, 256, 768):
        layer = nn.TransformerEncoderLayer(d, max(1, d // 64), 4 * d, dropout=0.0, batch_first=True)
        yield "transformer layer, 16 x 64 tokens", f"D = {d}", layer, torch.randn(16, 64, d, generator=g), \
            torch.randn(16, 64, d)


def _ms_per_step(model, x, y, threads: int, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.25:
            step()
            n += 1
        times.append((time.perf_counter() - start) / n * 1e3)
    return statistics.median(times)


def layer_table(threads: list[int], busy: list[int]) -> None:
    print(f"\n{'workload':<34} {'size':<13}" + "".join(f" {f'{t} thr, busy {b}':>15}" for b in busy for t in threads)
          + "   (ms per training step)")
    for name, size, model, x, y in _networks():
        cells = []
        for b in busy:
            with BusyCore(b):
                cells += [_ms_per_step(model, x, y, t) for t in threads]
        print(f"{name:<34} {size:<13}" + "".join(f" {c:15.2f}" for c in cells), flush=True)


def _figure_seconds(spec: str, threads: int) -> float:
    fig_id, preset, *sets = spec.split(":")
    cmd = [sys.executable, "-m", "udl", "figure", fig_id, "--preset", preset, "--no-cache",
           "--out", os.path.join(os.environ.get("TMPDIR", "/tmp"), "udl-threads-bench")]
    for s in sets:
        cmd += ["--set", s]
    with tempfile.TemporaryDirectory() as data:  # --no-cache skips the figure cache; this, the trained models
        env = {**os.environ, "UDL_NUM_THREADS": str(threads), "MPLBACKEND": "Agg", "UDL_DATA_DIR": data}
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: a check failed (shortened runs may), still timed
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return seconds


def figure_table(figures: list[str], threads: list[int], busy: list[int]) -> None:
    print(f"\n{'figure (udl figure ... --no-cache)':<34}" + "".join(f" {f'{t} thr, busy {b}':>15}"
                                                                  for b in busy for t in threads)
          + "   (seconds, whole process)")
    for spec in figures:
        cells = []
        for b in busy:
            with BusyCore(b):
                cells += [_figure_seconds(spec, t) for t in threads]
        print(f"{spec:<34}" + "".join(f" {c:15.1f}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="cores kept busy by other processes")
    parser.add_argument("--part", nargs="+", default=["layers", "figures"], choices=["layers", "figures"])
    parser.add_argument("--figures", nargs="+", default=DEFAULT_FIGURES, help="ID:PRESET[:KEY=VALUE...]")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} logical CPUs, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY')}")
    if "layers" in args.part:
        layer_table(args.threads, args.busy)
    if "figures" in args.part:
        figure_table(args.figures, args.threads, args.busy)


if __name__ == "__main__":
    main()
