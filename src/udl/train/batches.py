"""The order of the batches, a pure function of (seed, epoch), so a run resumes exactly.

``fit`` takes its data in one of two forms.

1. **A dataset and a batch size** (a ``torch.utils.data.Dataset``, or a tuple of
   tensors with the same first dimension). The loop owns the order: epoch e visits
   the N rows in the permutation drawn by a ``torch.Generator`` seeded from
   (seed, e), cut into ⌊N/B⌋ batches of B rows; the last N mod B rows of the
   permutation sit that epoch out and are shuffled back in for the next. Batch b of
   epoch e is therefore known without replaying anything: a run resumed at epoch e,
   batch b sees exactly the batches an uninterrupted run would have seen.
2. **An iterable of batches** (a ``DataLoader``, a list of ``(x, y)`` pairs). The loop
   iterates it once per epoch; on resume it skips, by iterating, the batches the
   checkpoint had already consumed in its epoch. This is exact only if every pass
   yields the same batches in the same order. A ``DataLoader(shuffle=True)`` does
   not: it draws each pass's order from the global RNG when the pass begins.

With several processes each global batch is split between them
(``distributed.shard``), so the processes together see the batches that a single
process would.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset, default_collate

from udl.train.distributed import shard


def mixed_seed(*parts: int) -> int:
    """One non-negative 63-bit seed mixed from several ints by NumPy's ``SeedSequence``.

    ``(seed, step)`` and ``(step, seed)``, or ``(0, 1)`` and ``(1, 0)``, give unrelated
    seeds, as ``seed + step`` would not: the draws of step s of a run are a function of
    (seed, s) alone, so a resumed run draws what an uninterrupted one would.
    """
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def epoch_order(n: int, epoch: int, *, seed: int, shuffle: bool = True) -> torch.Tensor:
    """The order in which epoch ``epoch`` visits rows 0..n-1: a permutation, shape (n,)."""
    if not shuffle:
        return torch.arange(n)
    # SeedSequence mixes (seed, epoch) into one 64-bit seed, so that (seed=0, epoch=1)
    # and (seed=1, epoch=0) give unrelated permutations, as seed + epoch would not.
    mixed = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(mixed)))


def batches_per_epoch(data: Dataset | Iterable, batch_size: int | None) -> int:
    """How many batches one epoch holds."""
    return len(data) if batch_size is None else len(data) // batch_size


def epoch_batches(data: Dataset | Iterable, batch_size: int | None, *, epoch: int, seed: int,
                  shuffle: bool, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """This process's share of batches ``start``, ``start + 1``, ... of epoch ``epoch``."""
    if batch_size is None:
        for batch in itertools.islice(data, start, None):
            yield tuple(shard(t) for t in _as_tuple(batch))
        return
    n_batches = batches_per_epoch(data, batch_size)
    order = epoch_order(len(data), epoch, seed=seed, shuffle=shuffle)[: n_batches * batch_size]
    for rows in order.view(n_batches, batch_size)[start:]:  # rows: (B,)
        yield _fetch(data, shard(rows))


def batch_stream(data: Dataset | Iterable, batch_size: int | None, *, seed: int, shuffle: bool,
                 epoch: int = 0, start: int = 0) -> Iterator[tuple[int, int, tuple[torch.Tensor, ...]]]:
    """Yield ``(epoch, batches consumed in that epoch, batch)`` forever, from batch ``start`` of ``epoch``."""
    while True:
        consumed = start
        for consumed, batch in enumerate(epoch_batches(data, batch_size, epoch=epoch, seed=seed,
                                                       shuffle=shuffle, start=start), start + 1):
            yield epoch, consumed, batch
        if consumed == 0:
            raise ValueError("The 'data' parameter of fit must yield at least one batch. Got none instead.")
        epoch, start = epoch + 1, 0


def _fetch(dataset: Dataset, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows ``rows`` of ``dataset`` stacked into one batch."""
    if isinstance(dataset, TensorDataset):
        return dataset[rows]  # one gather per tensor instead of B look-ups
    return _as_tuple(default_collate([dataset[i] for i in rows.tolist()]))


def _as_tuple(batch) -> tuple[torch.Tensor, ...]:
    """A batch as a tuple of tensors: ``x`` -> ``(x,)``, ``[x, y]`` -> ``(x, y)``."""
    return (batch,) if isinstance(batch, torch.Tensor) else tuple(batch)
