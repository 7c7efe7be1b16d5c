"""k-fold cross-validation: choose a hyper-parameter without touching the test set (UDL §8.5).

The training data are split into K disjoint folds. For each hyper-parameter value
the model is fitted K times, each time on K - 1 folds, and scored on the fold left
out; the value with the best mean validation score is chosen, and only that choice
is then measured on the separate test set. Every example is used for fitting K - 1
times and for validation once, so less data is held back than with one fixed
validation split.

The folds are exactly those of scikit-learn's ``KFold`` (the well-kept reference),
which :func:`kfold_indices` calls: fold i holds a contiguous block of the (possibly
shuffled) order, the first ``n mod K`` folds one example larger than the rest.

Example::

    >>> folds = kfold_indices(10, 5, shuffle=True, seed=0)
    >>> [len(val) for _, val in folds]
    [2, 2, 2, 2, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from udl.validate import check_callable, check_int

__all__ = ["cross_validate", "kfold_indices"]  # CrossValidation: a return type


def kfold_indices(n: int, k: int = 5, *, shuffle: bool = False,
                  seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The K (train, validation) index pairs of k-fold cross-validation, as scikit-learn's ``KFold``.

    The validation sets are disjoint and together cover 0..n-1; each training set is
    the complement of its validation set. The splits equal
    ``KFold(n_splits=k, shuffle=shuffle, random_state=seed).split(np.zeros(n))``.

    Args:
        n: number of examples N (at least k).
        k: number of folds K, at least 2. Default: 5.
        shuffle: permute the examples before cutting them into folds. Default: False
            (contiguous blocks 0..N/K-1, ...).
        seed: the permutation's seed when ``shuffle`` (scikit-learn's ``random_state``);
            must be None without shuffling. With shuffling, None draws the permutation
            from NumPy's global generator, as scikit-learn does. Default: None.

    Returns:
        A list of K pairs ``(train_index, val_index)`` of sorted int arrays.

    Shape:
        val_index: (N // K or N // K + 1,); train_index: (N - len(val_index),).

    Example::

        >>> [v.tolist() for _, v in kfold_indices(5, 2)]
        [[0, 1, 2], [3, 4]]
    """
    from sklearn.model_selection import KFold

    owner = "kfold_indices"
    check_int(k, "k", owner, minimum=2)
    check_int(n, "n", owner, minimum=k)
    if not isinstance(shuffle, bool):
        raise TypeError(f"The 'shuffle' parameter of {owner} must be a bool. Got {shuffle!r} instead.")
    if seed is not None:
        check_int(seed, "seed", owner, minimum=0)
        if not shuffle:
            raise ValueError(f"The 'seed' parameter of {owner} must be None when shuffle is False "
                             f"(the folds are then not random). Got {seed!r} instead.")
    splitter = KFold(n_splits=k, shuffle=shuffle, random_state=seed if shuffle else None)
    return [(train, val) for train, val in splitter.split(np.zeros((n, 1)))]


@dataclass(frozen=True)
class CrossValidation:
    """The outcome of :func:`cross_validate`.

    Attributes:
        params: the hyper-parameter values tried, in order.
        fold_scores: (len(params), K) validation score of each value on each fold.
        mean_scores: (len(params),) mean over the folds.
        std_scores: (len(params),) standard deviation over the folds.
        best_index: index of the chosen value, the argmax of ``mean_scores`` (first on ties).
        best_param: ``params[best_index]``.
        folds: the K (train_index, val_index) pairs used.
    """

    params: list
    fold_scores: np.ndarray
    mean_scores: np.ndarray
    std_scores: np.ndarray
    best_index: int
    best_param: Any
    folds: list


def cross_validate(fit_score_fn: Callable[[Any, Any, Any, Any, Any], float], x, y, params_grid: Sequence,
                   k: int = 5, seed: int | None = 0, *, shuffle: bool = True) -> CrossValidation:
    """Score every hyper-parameter value by k-fold cross-validation and choose the best.

    For each value θ in ``params_grid`` and each fold i, the model is fitted on the
    other folds and scored on fold i: s_{θ,i} = ``fit_score_fn(θ, x[train_i], y[train_i],
    x[val_i], y[val_i])``. The chosen value maximises the mean score (1/K) Σ_i s_{θ,i}
    (higher is better: pass an accuracy, or minus a loss or an error).

    Args:
        fit_score_fn: ``(param, x_train, y_train, x_val, y_val) -> float``; fits a fresh
            model with hyper-parameter ``param`` and returns its validation score.
        x: inputs, indexable by an int array along the first axis (NumPy array or tensor).
        y: targets with the same first dimension.
        params_grid: the values to try (at least one).
        k: number of folds, at least 2. Default: 5.
        seed: the shuffling seed (``KFold``'s ``random_state``); None without shuffling. Default: 0.
        shuffle: shuffle before cutting the folds. Default: True.

    Returns:
        :class:`CrossValidation` with per-fold and mean scores and the selected value.

    Example::

        >>> x = np.arange(20.0); y = 2 * x
        >>> cv = cross_validate(lambda a, xt, yt, xv, yv: -np.mean((a * xv - yv) ** 2), x, y, [1.0, 2.0, 3.0], k=4)
        >>> cv.best_param
        2.0
    """
    owner = "cross_validate"
    check_callable(fit_score_fn, "fit_score_fn", owner)
    if not hasattr(x, "__len__") or not hasattr(x, "__getitem__"):
        raise TypeError(f"The 'x' parameter of {owner} must be an array or tensor. Got {type(x).__name__} instead.")
    if not hasattr(y, "__len__") or len(y) != len(x):
        raise ValueError(f"The 'y' parameter of {owner} must have one entry per row of x ({len(x)}). "
                         f"Got {len(y) if hasattr(y, '__len__') else y!r} instead.")
    if isinstance(params_grid, (str, bytes)) or not isinstance(params_grid, Sequence) or len(params_grid) == 0:
        raise ValueError(f"The 'params_grid' parameter of {owner} must be a non-empty list. "
                         f"Got {params_grid!r} instead.")
    check_int(k, "k", owner, minimum=2)
    if len(x) < k:
        raise ValueError(f"The 'k' parameter of {owner} must be at most the number of examples ({len(x)}). "
                         f"Got {k} instead.")
    folds = kfold_indices(len(x), k, shuffle=shuffle, seed=seed)

    def rows(a, index):
        return a[index] if isinstance(a, np.ndarray) else a[_as_index(a, index)]

    scores = np.empty((len(params_grid), k))
    for i, param in enumerate(params_grid):
        for j, (train, val) in enumerate(folds):
            score = fit_score_fn(param, rows(x, train), rows(y, train), rows(x, val), rows(y, val))
            scores[i, j] = float(score)
    if not np.isfinite(scores).all():
        raise ValueError(f"The 'fit_score_fn' parameter of {owner} must return finite scores. "
                         f"Got {scores[~np.isfinite(scores)][0]!r} instead.")
    mean = scores.mean(axis=1)
    best = int(np.argmax(mean))
    return CrossValidation(params=list(params_grid), fold_scores=scores, mean_scores=mean,
                           std_scores=scores.std(axis=1), best_index=best, best_param=params_grid[best],
                           folds=folds)


def _as_index(a, index: np.ndarray):
    """An index array in the container's own kind (a torch tensor indexes with a tensor)."""
    try:
        import torch

        if isinstance(a, torch.Tensor):
            return torch.as_tensor(index, dtype=torch.long, device=a.device)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return index
