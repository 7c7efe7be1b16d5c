"""The book's 1D toy problems, generated from their definitions.

- :func:`make_regression_1d`: the regression data of chapters 8-9 (the true function
  ``exp(sin(2πx))`` on [0, 1], one noisy sample per interval).
- :func:`make_classification_1d`: a 1D binary-classification set for §5.4 whose labels
  come from a known Bernoulli probability, so a fitted model can be compared with
  the truth.
- :func:`make_multiclass_1d`: the same for K classes (§5.5), with a known softmax.

Every generator takes ``seed`` (an int or a ``numpy.random.Generator``) and returns
a :class:`ToyData` of NumPy float64 arrays; ``torch.from_numpy`` turns them into
tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from udl.validate import check_float, check_int, is_real


@dataclass(frozen=True)
class ToyData:
    """A 1D dataset and the function that generated it.

    Attributes:
        x: inputs, shape (N,), float64, sorted ascending.
        y: targets, shape (N,): float64 for regression, int64 labels for classification.
        truth: the true function of x: E[y|x] for regression, Pr(y=1|x) for binary
            classification, the (N, K) class probabilities for multiclass.
        noise_sd: the standard deviation σ of the regression noise (0 for classification).
    """

    x: np.ndarray
    y: np.ndarray
    truth: Callable[[np.ndarray], np.ndarray]
    noise_sd: float = 0.0

    def __post_init__(self):
        owner = "ToyData"
        for name in ("x", "y"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray):
                raise TypeError(f"The {name!r} parameter of {owner} must be a numpy array. Got {value!r} instead.")
        if self.x.ndim != 1:
            raise ValueError(f"The 'x' parameter of {owner} must be one-dimensional, shape (N,). "
                             f"Got {self.x.shape} instead.")
        if self.y.shape[:1] != self.x.shape:
            raise ValueError(f"The 'y' parameter of {owner} must have one entry per input, shape "
                             f"({self.x.shape[0]},). Got {self.y.shape} instead.")
        if not callable(self.truth):
            raise TypeError(f"The 'truth' parameter of {owner} must be callable. Got {self.truth!r} instead.")
        check_float(self.noise_sd, "noise_sd", owner, low=0)


def _rng(seed, owner: str) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    check_int(seed, "seed", owner, minimum=0)
    return np.random.default_rng(seed)


def _as_array(x, owner: str) -> np.ndarray:
    if not (is_real(x) or isinstance(x, (np.ndarray, list, tuple))):
        raise TypeError(f"The 'x' parameter of {owner} must be a float or an array of floats. Got {x!r} instead.")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"The 'x' parameter of {owner} must hold finite numbers. Got {x!r} instead.")
    return x


# --------------------------------------------------------------------------- regression (chapters 8-9)
def regression_truth(x) -> np.ndarray:
    """The true function of the chapters 8-9 toy regression: ``f(x) = exp(sin(2πx))``.

    Shape: any; the output has the shape of ``x``.
    """
    return np.exp(np.sin(2 * np.pi * _as_array(x, "regression_truth")))


def make_regression_1d(n: int = 15, noise_sd: float = 0.3, *, seed: int | np.random.Generator = 0) -> ToyData:
    """The book's 1D regression data (UDL §8.2): ``y = exp(sin(2πx)) + ε``.

    One input is drawn uniformly in each interval ``[i/n, (i+1)/n)``, i = 0..n-1, so
    the inputs cover [0, 1] evenly and come out sorted; ε ~ N(0, σ²) with σ = 0.3.

    Args:
        n: number of training points, default 15 (as the book).
        noise_sd: the noise standard deviation σ, default 0.3 (as the book); 0 gives
            noise-free samples of the true function.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        :class:`ToyData` with x, y of shape (n,) and ``truth = regression_truth``.

    Example:
        >>> data = make_regression_1d(seed=0)
        >>> data.x.shape, bool(np.all(np.diff(data.x) > 0))
        ((15,), True)
    """
    owner = "make_regression_1d"
    check_int(n, "n", owner)
    noise_sd = check_float(noise_sd, "noise_sd", owner, low=0)
    rng = _rng(seed, owner)
    x = (np.arange(n) + rng.uniform(0, 1, n)) / n  # one point in each [i/n, (i+1)/n)
    y = regression_truth(x) + noise_sd * rng.standard_normal(n)
    return ToyData(x=x, y=y, truth=regression_truth, noise_sd=noise_sd)


def regression_sampler(n: int = 15, noise_sd: float = 0.3) -> Callable[[np.random.Generator], tuple]:
    """``sample(rng) -> (x, y)``: draws one training set of :func:`make_regression_1d` from ``rng``.

    The ``sample_fn`` that :func:`udl.analysis.bias_variance.decompose` and
    ``capacity_sweep`` take: each call draws a fresh set of ``n`` noisy samples of
    ``exp(sin(2πx))`` (UDL §8.2), the random training sets whose fits make up the
    variance term.

    Args:
        n: points per training set, default 15 (as the book).
        noise_sd: the noise standard deviation σ, default 0.3 (as the book).

    Returns:
        A function of a ``numpy.random.Generator`` giving ``(x, y)``, float64 arrays of shape (n,).

    Example:
        >>> x, y = regression_sampler(10)(np.random.default_rng(0))
        >>> x.shape, y.shape
        ((10,), (10,))
    """
    owner = "regression_sampler"
    check_int(n, "n", owner)
    noise_sd = check_float(noise_sd, "noise_sd", owner, low=0)

    def sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        data = make_regression_1d(n, noise_sd, seed=rng)
        return data.x, data.y

    return sample


# --------------------------------------------------------------------------- binary classification (§5.4)
def classification_logit(x) -> np.ndarray:
    """The true logit of the §5.4 toy: ``f(x) = 4 sin(2πx) + 2x - 1``.

    A smooth, non-monotonic function of x, so the Bernoulli probability rises and
    falls across [0, 1] and a linear model cannot follow it.

    Shape: any; the output has the shape of ``x``.
    """
    x = _as_array(x, "classification_logit")
    return 4 * np.sin(2 * np.pi * x) + 2 * x - 1


def classification_truth(x) -> np.ndarray:
    """The true probability ``Pr(y=1|x) = sig[f(x)]`` of the §5.4 toy (UDL eq. 5.19).

    Shape: any; the output has the shape of ``x``.
    """
    f = classification_logit(x)
    return 0.5 * (1 + np.tanh(f / 2))  # = 1 / (1 + exp(-f)), without overflow


def make_classification_1d(n: int = 200, *, seed: int | np.random.Generator = 0) -> ToyData:
    """A 1D binary-classification set with a known Bernoulli probability (UDL §5.4).

    x is uniform on [0, 1]; each label is drawn from a Bernoulli distribution with
    ``λ(x) = sig[4 sin(2πx) + 2x - 1]`` (:func:`classification_truth`), which swings
    between about 0.03 and 0.97, so a fitted model's probabilities can be compared
    with the truth.

    Args:
        n: number of examples, default 200.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        :class:`ToyData` with x (n,) float64 sorted, y (n,) int64 in {0, 1}, and
        ``truth = classification_truth``.

    Example:
        >>> data = make_classification_1d(100, seed=0)
        >>> sorted(set(data.y.tolist()))
        [0, 1]
    """
    owner = "make_classification_1d"
    check_int(n, "n", owner)
    rng = _rng(seed, owner)
    x = np.sort(rng.uniform(0, 1, n))
    y = (rng.uniform(0, 1, n) < classification_truth(x)).astype(np.int64)  # y ~ Bernoulli(λ(x))
    return ToyData(x=x, y=y, truth=classification_truth)


# --------------------------------------------------------------------------- multiclass classification (§5.5)
def multiclass_truth(x, k: int = 3) -> np.ndarray:
    """Class probabilities ``softmax[f(x)]`` of the §5.5 toy, shape (..., K) (UDL eq. 5.22).

    The logit of class j is ``f_j(x) = 4 cos(2π(x - j/K))``: each class peaks at its
    own place in [0, 1].

    Shape: x of any shape → (*x.shape, K).
    """
    owner = "multiclass_truth"
    check_int(k, "k", owner, minimum=2)
    x = _as_array(x, owner)
    f = 4 * np.cos(2 * np.pi * (x[..., None] - np.arange(k) / k))  # (..., K)
    f = f - f.max(axis=-1, keepdims=True)
    e = np.exp(f)
    return e / e.sum(axis=-1, keepdims=True)


def make_multiclass_1d(n: int = 300, k: int = 3, *, seed: int | np.random.Generator = 0) -> ToyData:
    """A 1D K-class set with known class probabilities (UDL §5.5).

    x is uniform on [0, 1]; each label is drawn from the categorical distribution
    :func:`multiclass_truth` (x).

    Args:
        n: number of examples, default 300.
        k: number of classes K ≥ 2, default 3.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        :class:`ToyData` with x (n,) float64 sorted, y (n,) int64 in {0..K-1}, and
        ``truth(x) = multiclass_truth(x, k)`` of shape (n, K).
    """
    owner = "make_multiclass_1d"
    check_int(n, "n", owner)
    check_int(k, "k", owner, minimum=2)
    rng = _rng(seed, owner)
    x = np.sort(rng.uniform(0, 1, n))
    probs = multiclass_truth(x, k)  # (n, K)
    u = rng.uniform(0, 1, (n, 1))
    y = np.minimum((u > probs.cumsum(axis=1)).sum(axis=1), k - 1).astype(np.int64)  # inverse-CDF draw

    def truth(x_new):
        return multiclass_truth(x_new, k)

    return ToyData(x=x, y=y, truth=truth)


__all__ = ["ToyData", "regression_truth", "make_regression_1d", "regression_sampler", "classification_logit",
           "classification_truth",
           "make_classification_1d", "multiclass_truth", "make_multiclass_1d"]
