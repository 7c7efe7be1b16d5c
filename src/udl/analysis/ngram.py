"""Unigram and bigram language models: the baselines a transformer must beat (UDL §12.5-12.7).

A unigram model predicts every token from its overall frequency; a bigram model from
the previous token only. Both are fitted by counting on training tokens with add-k
(Laplace) smoothing, so every token of the vocabulary keeps a non-zero probability::

    Pr(x_t = j)                = (c_j + k) / (T + k·|V|)
    Pr(x_t = j | x_{t-1} = i)  = (c_ij + k) / (c_i + k·|V|)

The quality of a model on held-out tokens is its cross-entropy (mean negative log
probability, nats per token) and its perplexity, exp(cross-entropy).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from udl.validate import check_float, check_int

__all__ = ["UnigramModel", "BigramModel", "perplexity"]


def _tokens(tokens, owner: str, vocab_size: int) -> np.ndarray:
    try:
        t = np.asarray(tokens, dtype=np.int64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"The 'tokens' parameter of {owner} must be a sequence of ints. "
                        f"Got {type(tokens).__name__} instead.") from None
    if t.size and (t.min() < 0 or t.max() >= vocab_size):
        raise ValueError(f"The 'tokens' parameter of {owner} must hold ids in [0, {vocab_size}). "
                         f"Got ids from {t.min()} to {t.max()} instead.")
    return t


class UnigramModel:
    """Token frequencies with add-k smoothing.

    Args:
        vocab_size: |V|.
        k: the smoothing pseudo-count (default 1).

    Example::

        >>> m = UnigramModel(3).fit([0, 0, 1])
        >>> round(m.probabilities[0], 3)
        0.5
    """

    def __init__(self, vocab_size: int, *, k: float = 1.0):
        self.vocab_size = check_int(vocab_size, "vocab_size", "UnigramModel")
        self.k = check_float(k, "k", "UnigramModel", low=0.0, low_open=True)
        self.probabilities = np.full(vocab_size, 1.0 / vocab_size)

    def fit(self, tokens: Sequence[int]) -> "UnigramModel":
        t = _tokens(tokens, "UnigramModel.fit", self.vocab_size)
        counts = np.bincount(t, minlength=self.vocab_size).astype(np.float64)
        self.probabilities = (counts + self.k) / (counts.sum() + self.k * self.vocab_size)
        return self

    def cross_entropy(self, tokens: Sequence[int]) -> float:
        """Mean −log Pr(x_t) over the tokens (nats per token)."""
        t = _tokens(tokens, "UnigramModel.cross_entropy", self.vocab_size)
        return float(-np.log(self.probabilities[t]).mean())


class BigramModel:
    """Next-token probabilities given the previous token, with add-k smoothing.

    The first token of a sequence is scored by the unigram model fitted on the same
    tokens.

    Args:
        vocab_size: |V|.
        k: the smoothing pseudo-count (default 0.1).
    """

    def __init__(self, vocab_size: int, *, k: float = 0.1):
        self.vocab_size = check_int(vocab_size, "vocab_size", "BigramModel")
        self.k = check_float(k, "k", "BigramModel", low=0.0, low_open=True)
        self.unigram = UnigramModel(vocab_size, k=k)
        self.counts = np.zeros((vocab_size, vocab_size))

    def fit(self, tokens: Sequence[int]) -> "BigramModel":
        t = _tokens(tokens, "BigramModel.fit", self.vocab_size)
        self.unigram.fit(t)
        self.counts = np.zeros((self.vocab_size, self.vocab_size))
        np.add.at(self.counts, (t[:-1], t[1:]), 1.0)  # c_ij: token i followed by token j
        return self

    def conditional(self, previous: int) -> np.ndarray:
        """Pr(x_t = • | x_{t-1} = previous), a distribution over the vocabulary."""
        row = self.counts[previous]
        return (row + self.k) / (row.sum() + self.k * self.vocab_size)

    def cross_entropy(self, tokens: Sequence[int]) -> float:
        """Mean −log Pr(x_t | x_{t-1}) (the first token by its unigram probability)."""
        t = _tokens(tokens, "BigramModel.cross_entropy", self.vocab_size)
        if t.size == 0:
            raise ValueError("BigramModel.cross_entropy: no tokens to score.")
        row_sums = self.counts.sum(1)  # c_i
        p = (self.counts[t[:-1], t[1:]] + self.k) / (row_sums[t[:-1]] + self.k * self.vocab_size)
        nll = -np.log(self.unigram.probabilities[t[0]]) - np.log(p).sum()
        return float(nll / len(t))


def perplexity(cross_entropy: float) -> float:
    """exp(cross-entropy in nats per token)."""
    return math.exp(check_float(cross_entropy, "cross_entropy", "perplexity", low=0.0))
