"""Bagging (bootstrap aggregating, UDL §9.3.2): fit one model per resampled dataset, average.

An ensemble combines M models f_m; its prediction is the mean of theirs. Bagging
makes the members differ by training each on a bootstrap resample of the N training
pairs: N draws *with replacement*, so some pairs appear several times and, on
average, a fraction 1 - (1 - 1/N)^N (→ 1 - 1/e ≈ 63.2%) appears at all (fig. 9.7)::

    f_ens[x] = (1/M) Σ_m f_m[x]                          (regression: mean of outputs)
    Pr(y = k | x) = (1/M) Σ_m softmax_k[f_m[x]]         (classification: mean of probabilities)

Any fitting procedure can be bagged: :class:`BaggingEnsemble` takes a function
``fit_fn(x, y) -> predictor`` and calls it once per resample.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from udl.validate import as_generator, check_choice, check_int

__all__ = ["bootstrap_indices", "bootstrap_counts", "BaggingEnsemble"]

_KINDS = ("regression", "classification")


def bootstrap_indices(n: int, n_models: int, *, generator: torch.Generator | int = 0) -> np.ndarray:
    """Row indices of ``n_models`` bootstrap resamples of ``n`` items (draws with replacement).

    Each row holds n indices drawn uniformly from {0, ..., n-1} with replacement, so
    the expected fraction of distinct items in a row is 1 - (1 - 1/n)^n (≈ 63.2% for
    large n).

    Args:
        n: the number of training items N.
        n_models: the number of resamples M.
        generator: the draws: a ``torch.Generator`` or an int seed. Default 0.

    Shape:
        -> (M, N), int64.

    Example:
        >>> idx = bootstrap_indices(15, 4, generator=0)
        >>> idx.shape, int(idx.min()) >= 0, int(idx.max()) < 15
        ((4, 15), True, True)
    """
    owner = "bootstrap_indices"
    n = check_int(n, "n", owner)
    n_models = check_int(n_models, "n_models", owner)
    generator = as_generator(generator, owner, optional=False)
    return torch.randint(n, (n_models, n), generator=generator, device=generator.device).cpu().numpy()  # (M, N)


def bootstrap_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How many times each of the n items appears in each resample (the point sizes of fig. 9.7).

    Shape:
        indices: (M, K) -> (M, n), int64; each row sums to K.

    Example:
        >>> bootstrap_counts(np.array([[0, 0, 2]]), 3).tolist()
        [[2, 0, 1]]
    """
    owner = "bootstrap_counts"
    n = check_int(n, "n", owner)
    indices = np.asarray(indices)
    if indices.ndim != 2 or not np.issubdtype(indices.dtype, np.integer) or \
            (indices.size and (indices.min() < 0 or indices.max() >= n)):
        raise ValueError(f"The 'indices' parameter of {owner} must be an (M, K) array of ints in [0, {n}). "
                         f"Got shape {indices.shape}, dtype {indices.dtype} instead.")
    return np.stack([np.bincount(row, minlength=n) for row in indices])  # (M, n)


def _take(data: Any, rows: np.ndarray) -> Any:
    """``data[rows]`` for a numpy array or a torch tensor (indexed on its own device)."""
    if isinstance(data, torch.Tensor):
        return data[torch.from_numpy(rows).to(data.device)]
    return data[rows]


def _length(data: Any, name: str, owner: str) -> int:
    if not isinstance(data, (np.ndarray, torch.Tensor)) or data.ndim == 0:
        raise TypeError(f"The {name!r} parameter of {owner} must be a numpy array or torch tensor with a "
                        f"first (batch) dimension. Got {type(data).__name__} instead.")
    return int(data.shape[0])


class BaggingEnsemble:
    """A bagged ensemble: M predictors, each fitted to a bootstrap resample (UDL §9.3.2, fig. 9.7).

    Args:
        fit_fn: ``fit_fn(x, y) -> predictor``, called once per resample with the
            resampled rows of x and y; the predictor is any callable ``predictor(x)``
            (an ``nn.Module``, a fitted function ...).
        n_models: the number of members M. Default 4 (as fig. 9.7).
        generator: the resamples' draws: a ``torch.Generator`` (each :meth:`fit` continues
            its stream) or an int seed. Default 0.
        kind: ``"regression"`` averages the members' outputs; ``"classification"``
            treats the members' outputs as logits over the last axis and averages
            their softmax probabilities. Default ``"regression"``.

    Attributes (after :meth:`fit`):
        indices: (M, N) the bootstrap rows of each member.
        members: the M fitted predictors.

    Shape:
        predict: x (K, ...) -> (K, ...) the mean of the members' outputs (classification:
        (K, C) probabilities).

    Example::

        >>> x = torch.linspace(0, 1, 15); y = 2 * x + 1
        >>> line = lambda xb, yb: (lambda t, c=torch.linalg.lstsq(
        ...     torch.stack([torch.ones_like(xb), xb], 1), yb[:, None]).solution[:, 0]: c[0] + c[1] * t)
        >>> bag = BaggingEnsemble(line, n_models=4, generator=0).fit(x, y)
        >>> torch.allclose(bag.predict(x), y, atol=1e-5)   # noise-free data: every member is exact
        True
    """

    def __init__(self, fit_fn: Callable[[Any, Any], Callable], n_models: int = 4, *,
                 generator: torch.Generator | int = 0, kind: str = "regression"):
        owner = "BaggingEnsemble"
        if not callable(fit_fn):
            raise TypeError(f"The 'fit_fn' parameter of {owner} must be callable, fit_fn(x, y) -> predictor. "
                            f"Got {fit_fn!r} instead.")
        self.fit_fn = fit_fn
        self.n_models = check_int(n_models, "n_models", owner)
        self.generator = as_generator(generator, owner, optional=False)
        self.kind = check_choice(kind, "kind", owner, _KINDS)
        self.indices: np.ndarray | None = None
        self.members: list[Callable] = []

    def fit(self, x, y) -> "BaggingEnsemble":
        """Draw M bootstrap resamples of the rows of (x, y) and fit one member to each; return ``self``."""
        owner = "BaggingEnsemble.fit"
        n = _length(x, "x", owner)
        if _length(y, "y", owner) != n:
            raise ValueError(f"The 'y' parameter of {owner} must have one row per row of x ({n}). "
                             f"Got {y.shape[0]} instead.")
        self.indices = bootstrap_indices(n, self.n_models, generator=self.generator)  # (M, N)
        self.members = []
        for rows in self.indices:
            member = self.fit_fn(_take(x, rows), _take(y, rows))
            if not callable(member):
                raise TypeError(f"The 'fit_fn' parameter of BaggingEnsemble must return a callable predictor. "
                                f"Got {member!r} instead.")
            self.members.append(member)
        return self

    def member_predictions(self, x) -> torch.Tensor:
        """Every member's output at x, stacked. Shape: x (K, ...) -> (M, K, ...)."""
        if not self.members:
            raise RuntimeError("BaggingEnsemble.fit must be called before predicting.")
        with torch.no_grad():
            outs = [torch.as_tensor(member(x)) for member in self.members]
        return torch.stack(outs)  # (M, K, ...)

    def predict(self, x) -> torch.Tensor:
        """The ensemble's prediction: mean output (regression) or mean softmax probabilities (classification)."""
        outs = self.member_predictions(x)  # (M, K, ...)
        if self.kind == "classification":
            outs = torch.softmax(outs, dim=-1)  # each member's Pr(y = k | x)
        return outs.mean(0)  # (1/M) Σ_m

    __call__ = predict
