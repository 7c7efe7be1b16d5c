"""Generated token sequences for testing memory: the label is the first token, the rest are distractors.

A recurrent network reads a sequence one token at a time and hands on a hidden state
(UDL fig. 12.19); whether it "forgets" early tokens is measured by a task whose answer
sits only at the start: the first token is one of ``n_classes`` label tokens (0 ...
K - 1) and is the label; the ``length - 1`` tokens after it are distractors drawn
uniformly from the other ``vocab_size - n_classes`` tokens and carry no information.
A classifier reading the final output must carry the first token over ``length - 1``
steps. Chance accuracy is 1/K (the labels are balanced on average).

Example i is drawn from ``np.random.default_rng([seed, length, i])``, so it does not
depend on how many examples are asked for.

Example::

    >>> tokens, labels = first_token_task(3, 5, seed=0)
    >>> tokens.shape, bool((tokens[:, 0] == labels).all()), bool((tokens[:, 1:] >= 2).all())
    (torch.Size([3, 5]), True, True)
"""

from __future__ import annotations

import numpy as np
import torch

from udl.validate import check_int

__all__ = ["first_token_task"]


def first_token_task(n: int, length: int, *, n_classes: int = 2, vocab_size: int = 10,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences whose label is their first token, followed by random distractor tokens.

    Args:
        n: the number of sequences.
        length: T, tokens per sequence (the label token included), at least 1.
        n_classes: K, the label tokens 0 ... K - 1 (at least 2). Default 2.
        vocab_size: all tokens; the distractors are K ... vocab_size - 1, so at least K + 1.
            Default 10.
        seed: names the data set (a non-negative int). Default 0.

    Returns:
        ``(tokens (n, T) int64, labels (n,) int64)`` with ``tokens[:, 0] == labels``.
    """
    owner = "first_token_task"
    n = check_int(n, "n", owner)
    length = check_int(length, "length", owner)
    n_classes = check_int(n_classes, "n_classes", owner, minimum=2)
    vocab_size = check_int(vocab_size, "vocab_size", owner, minimum=n_classes + 1)
    seed = check_int(seed, "seed", owner, minimum=0)
    tokens = np.empty((n, length), dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng([seed, length, i])
        tokens[i, 0] = rng.integers(n_classes)
        tokens[i, 1:] = rng.integers(n_classes, vocab_size, size=length - 1)
    tokens = torch.from_numpy(tokens)
    return tokens, tokens[:, 0].clone()
