"""Time BPE training and encoding on one whitespace-free word of growing length (issue 12, item 12).

    python benchmarks/bpe_scaling.py                          # 10k, 40k, 160k and 1M characters, 100 merges
    python benchmarks/bpe_scaling.py --merges all             # merge until no pair repeats (more for longer words)
    python benchmarks/bpe_scaling.py --sizes 10000 40000 --repeat 3 --limit 60

The word is base64 text of seeded random bytes, cut to length: a "blob" of 64
characters with no whitespace, so BPE sees it as one piece. For each length the table
gives the seconds to learn ``--merges`` merges on it (``all``: until no pair occurs
twice) and to encode it with the tokenizer learned (an empty cache), and both per
character: near-linear work keeps the microseconds per character nearly flat as the
word grows. Each time is the best of ``--repeat`` runs. Once a row takes more than
``--limit`` seconds, the longer words are skipped.

Before issue 12 every merge rewrote the whole word and every encoding step rescanned
it, so the time grew with the length times the merges: quadratic when the merges grow
with the text (160k characters took seconds, 1 MB minutes). To time an older checkout,
run this file with ``PYTHONPATH=<that checkout>/src``. Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import random
import time
from typing import NamedTuple

from udl.text import BPETokenizer


class Row(NamedTuple):
    """One length of word: what was learned and how long it took."""

    chars: int  # the word's length
    merges: int  # merges learned
    tokens: int  # tokens the word is encoded into
    train_s: float  # seconds to train (best of the repeats)
    encode_s: float  # seconds to encode the word with an empty cache (best of the repeats)


def blob(n: int, seed: int = 0) -> str:
    """``n`` characters of base64 text from seeded random bytes: one word, no whitespace."""
    return base64.b64encode(random.Random(seed).randbytes(n))[:n].decode("ascii")


def time_one(n: int, merges: int | None, repeat: int) -> Row:
    """Train on a blob of ``n`` characters (``merges`` merges, None: all) and encode it; the best of ``repeat``."""
    word = blob(n)
    budget = 10**9 if merges is None else merges
    train_s = encode_s = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        tok = BPETokenizer.train(word, n_merges=budget)
        train_s = min(train_s, time.perf_counter() - start)
        fresh = BPETokenizer(tok.alphabet, tok.merges)  # no cached encodings
        start = time.perf_counter()
        ids = fresh.encode(word)
        encode_s = min(encode_s, time.perf_counter() - start)
    return Row(n, len(tok.merges), len(ids), train_s, encode_s)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000, 1_000_000],
                        help="word lengths in characters")
    parser.add_argument("--merges", default="100", help="merges to learn, or 'all' (until no pair repeats)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per length; the best is kept")
    parser.add_argument("--limit", type=float, default=300.0, help="skip longer words once a row takes this long (s)")
    args = parser.parse_args(argv)
    if args.merges != "all" and not args.merges.isdigit():
        parser.error(f"--merges must be a non-negative int or 'all'. Got {args.merges!r} instead.")
    if args.repeat < 1 or any(n < 1 for n in args.sizes):
        parser.error("--repeat and --sizes must be positive.")
    merges = None if args.merges == "all" else int(args.merges)

    print(f"BPE on one word of base64 text, merges: {args.merges}")
    print(f"{'characters':>10} {'merges':>7} {'tokens':>8} {'train s':>9} {'encode s':>9} "
          f"{'train us/char':>14} {'encode us/char':>15}")
    rows = []
    for n in sorted(args.sizes):
        if rows and rows[-1].train_s + rows[-1].encode_s > args.limit:
            print(f"{n:>10} skipped: the row above took over {args.limit:g} s")
            continue
        row = time_one(n, merges, args.repeat)
        rows.append(row)
        print(f"{n:>10} {row.merges:>7} {row.tokens:>8} {row.train_s:>9.3f} {row.encode_s:>9.3f} "
              f"{1e6 * row.train_s / n:>14.2f} {1e6 * row.encode_s / n:>15.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
