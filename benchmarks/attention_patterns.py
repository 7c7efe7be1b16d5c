"""Time and peak memory of masked dense attention against sparse attention as the sequence grows (fig. 12.15).

    python benchmarks/attention_patterns.py                     # T = 1k ... 16k, a decoder band of 128 keys, D = 64
    python benchmarks/attention_patterns.py --quick             # tiny sizes, seconds (what the test runs)
    python benchmarks/attention_patterns.py --backward          # forward and backward instead of forward only

One head, one sequence: queries, keys and values ``(1, T, D)`` in float32, and the
decoder's convolutional pattern of fig. 12.15d (query i sees keys i - window + 1 ... i).
"dense" is ``udl.nn.attention.attention`` with the boolean ``(T, T)`` mask (SDPA, which
computes every score and then discards those outside the band); "sparse" is
``udl.nn.sparse_attention.sparse_attention`` over a ``SparsePattern`` of the same band,
read chunk by chunk without forming the ``T × T`` mask. For each size and path the table
gives the seconds to build the mask or pattern (once, reusable across layers and heads),
the best of ``--repeat`` timed calls after one warm-up, the mask's or pattern's own
memory, and the peak memory the call adds on top of its inputs:

- on the CPU, each (size, path) runs in a forked process with one torch thread; the
  peak is how far that process's resident set rises above where it was during the
  warm-up call (Linux's VmHWM, reset before the call after freed memory is handed back;
  so it counts every allocation, torch's included, which ``tracemalloc`` does not see),
  after a call at T = 64 has initialised what every call needs;
- on a GPU (``--device cuda``, the default adds it when one is present),
  ``torch.cuda.max_memory_allocated`` above what was allocated before the call.

Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import resource
import sys
import time
from typing import NamedTuple

import torch

from udl.nn.attention import attention, convolutional_mask
from udl.nn.sparse_attention import SparsePattern, sparse_attention

PATHS = ("dense", "sparse")


class Row(NamedTuple):
    """One path at one sequence length on one device."""

    device: str  # "cpu" or "cuda"
    tokens: int  # T
    path: str  # "dense" (masked) or "sparse"
    build_s: float  # seconds to build the mask or the pattern
    seconds: float  # best of the timed calls
    structure_mb: float  # the mask's or the pattern's own memory
    peak_mb: float  # peak memory the call adds to its inputs (CPU: resident set; GPU: allocated)


def _structure(path: str, t: int, window: int, chunk: int, device: str):
    """The ``(T, T)`` boolean mask (dense) or the SparsePattern (sparse) of the decoder band, and its megabytes."""
    if path == "dense":
        mask = convolutional_mask(t, window, causal=True, device=device)
        return mask, mask.numel() * mask.element_size() / 2**20
    pattern = SparsePattern(lambda rows: convolutional_mask(t, window, causal=True, queries=rows), n_queries=t,
                            chunk=chunk, device=device)
    size = sum(x.numel() * x.element_size() for x in pattern.keys + pattern.allowed)
    return pattern, size / 2**20


def _call(path: str, structure, q, k, v, backward: bool):
    """One attention call (and its backward pass with ``backward``)."""
    with torch.set_grad_enabled(backward):
        out = attention(q, k, v, structure) if path == "dense" else sparse_attention(q, k, v, structure)
        if backward:
            out.sum().backward()
    return out


def _reset_peak_rss() -> int:
    """Return freed heap pages to the system and restart the peak resident set at the current one; its bytes.

    Linux: writing 5 to /proc/self/clear_refs resets VmHWM. Elsewhere the peak cannot be reset, and the
    growth of ``ru_maxrss`` is measured instead (which misses a call whose peak stays below an earlier one).
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # else memory freed by the build would be reused unseen
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_bytes("VmRSS")
    except OSError:
        return _peak_rss()


def _peak_rss() -> int:
    """The peak resident set since the last reset (VmHWM), in bytes; ``ru_maxrss`` where /proc is missing."""
    try:
        return _status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024  # "VmHWM:   123456 kB"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(path: str, t: int, *, window: int, dim: int, chunk: int, repeat: int, backward: bool,
            device: str = "cpu") -> Row:
    """Build the structure, run one warm-up call (its peak memory) and ``repeat`` timed calls, in this process."""
    if t > 64:  # a first small call loads and initialises what any call needs, so the peak below is this size's own
        measure(path, 64, window=min(window, 64), dim=dim, chunk=chunk, repeat=0, backward=backward, device=device)
    g = torch.Generator().manual_seed(t)
    q, k, v = (torch.randn(1, t, dim, generator=g).to(device).requires_grad_(backward) for _ in range(3))
    _sync(device)
    start = time.perf_counter()
    structure, structure_mb = _structure(path, t, window, chunk, device)
    _sync(device)
    build_s = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _reset_peak_rss()
    out = _call(path, structure, q, k, v, backward)
    _sync(device)
    if device == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        peak_mb = (_peak_rss() - before) / 2**20
    del out
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        _call(path, structure, q, k, v, backward)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return Row(device, t, path, build_s, best, structure_mb, peak_mb)


def _child(conn, path, t, kwargs):
    torch.set_num_threads(1)
    try:
        conn.send(measure(path, t, **kwargs))
    except BaseException as error:  # reported by the parent, which goes on with the other rows
        conn.send(f"{type(error).__name__}: {error}")
    conn.close()


def measure_cpu(path: str, t: int, **kwargs) -> Row:
    """:func:`measure` in a fresh forked process, so that its peak resident memory is this call's alone."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, path, t, kwargs))
    process.start()
    child.close()
    result = parent.recv()
    process.join()
    if isinstance(result, str):
        raise RuntimeError(f"{path} attention at T = {t} failed: {result}")
    return result


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384], help="tokens T")
    parser.add_argument("--window", type=int, default=128, help="keys each query sees (the band's width)")
    parser.add_argument("--dim", type=int, default=64, help="D, the queries', keys' and values' size")
    parser.add_argument("--chunk", type=int, default=64, help="queries per chunk of the sparse path")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per row; the best is kept")
    parser.add_argument("--backward", action="store_true", help="time forward and backward passes")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: the CPU, and a GPU when one is present")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (T = 64, 128; window 8; D = 8; one call)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.window, args.dim, args.chunk, args.repeat = [64, 128], 8, 8, 16, 1
    if min(args.sizes + [args.window, args.dim, args.chunk, args.repeat]) < 1:
        parser.error("--sizes, --window, --dim, --chunk and --repeat must be positive.")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is present.")
    devices = {"auto": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"],
               "cuda": ["cuda"]}[args.device]
    kwargs = dict(window=args.window, dim=args.dim, chunk=args.chunk, repeat=args.repeat, backward=args.backward)

    what = "forward and backward" if args.backward else "forward"
    print(f"decoder band of {args.window} keys, one head, D = {args.dim}, float32, {what}; "
          f"sparse chunk {args.chunk}; best of {args.repeat}")
    print(f"{'device':>6} {'T':>6} {'path':>6} {'build s':>8} {'call s':>9} {'mask/pattern MB':>16} "
          f"{'peak MB':>9} {'dense/sparse time':>18}")
    rows = []
    for device in devices:
        for t in sorted(args.sizes):
            pair = {}
            for path in PATHS:
                row = measure_cpu(path, t, **kwargs) if device == "cpu" else measure(path, t, device=device, **kwargs)
                pair[path] = row
                rows.append(row)
                ratio = f"{pair['dense'].seconds / row.seconds:>18.1f}" if path == "sparse" else ""
                print(f"{device:>6} {t:>6} {path:>6} {row.build_s:>8.3f} {row.seconds:>9.4f} "
                      f"{row.structure_mb:>16.2f} {row.peak_mb:>9.1f} {ratio}", flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
