"""The bias-variance-noise decomposition of the expected test error (UDL §8.2).

For a regression problem with least-squares loss, a model fitted to a random training
set D gives a function f[x, φ[D]]. Its squared error on a fresh test target
y = μ(x) + ε (ε with variance σ², independent of D) splits into three parts
(UDL eq. 8.7)::

    E_D E_y[(f[x, φ[D]] - y)²] =  E_D[(f[x, φ[D]] - f̄(x))²]      variance
                                +  (f̄(x) - μ(x))²                bias (squared)
                                +  σ²                             noise

with f̄(x) = E_D[f[x, φ[D]]] the average fit over training sets. :func:`decompose`
estimates all three by Monte Carlo — it draws ``n_datasets`` training sets, fits
each, and averages over them and over the test inputs — and it *measures* the left
side directly on fresh noisy test targets, so the identity can be checked rather
than assumed. :func:`capacity_sweep` repeats this for a list of model capacities
(the bias-variance trade-off of §8.3.3, fig. 8.9).

Averages over x weight the given test inputs equally: pass a uniform grid to
estimate the expectation over inputs drawn uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from udl.validate import check_array, check_callable, check_float, check_int

__all__ = ["decompose", "capacity_sweep"]  # BiasVariance and CapacitySweep: return types


@dataclass(frozen=True)
class BiasVariance:
    """The result of :func:`decompose`: the three error sources and the measured error.

    Scalars are averages over the test inputs; ``*_x`` arrays are per test input, shape (M,).

    Attributes:
        x_test: the test inputs, shape (M,).
        truth: μ(x_test), shape (M,).
        predictions: every fit on the test inputs, shape (K, M) for K training sets.
        mean_prediction: f̄(x_test), the average fit, shape (M,).
        noise: measured mean of (y - μ(x))² over the fresh test targets (≈ σ²).
        noise_var: the σ² the test targets were drawn with.
        bias2: mean over x of (f̄(x) - μ(x))².
        variance: mean over x of the variance of the fits across training sets.
        expected_error: mean of (f[x, φ[D]] - y)² measured on fresh noisy targets.
        expected_error_se: its Monte-Carlo standard error (over the K training sets).
        gap_se: standard error of ``expected_error - total`` (the cross term
            2ε(μ - f), whose expectation is zero), for a tolerance on the identity.
        noise_se: standard error of ``noise``.
        noise_x, bias2_x, variance_x, error_x: the same per test input, shape (M,).
    """

    x_test: np.ndarray
    truth: np.ndarray
    predictions: np.ndarray
    mean_prediction: np.ndarray
    noise: float
    noise_var: float
    bias2: float
    variance: float
    expected_error: float
    expected_error_se: float
    gap_se: float
    noise_se: float
    noise_x: np.ndarray
    bias2_x: np.ndarray
    variance_x: np.ndarray
    error_x: np.ndarray

    @property
    def n_datasets(self) -> int:
        """K, the number of training sets."""
        return int(self.predictions.shape[0])

    @property
    def total(self) -> float:
        """noise + bias² + variance, the right side of eq. 8.7 (measured noise)."""
        return self.noise + self.bias2 + self.variance


@dataclass(frozen=True)
class CapacitySweep:
    """The result of :func:`capacity_sweep`: one decomposition per capacity.

    Attributes:
        capacities: the capacities swept, shape (C,).
        noise, bias2, variance, expected_error, expected_error_se: shape (C,).
        results: the full :class:`BiasVariance` of each capacity.
    """

    capacities: np.ndarray
    noise: np.ndarray
    bias2: np.ndarray
    variance: np.ndarray
    expected_error: np.ndarray
    expected_error_se: np.ndarray
    results: tuple

    @property
    def best_capacity(self):
        """The capacity where bias² + variance (the reducible error) is smallest."""
        return self.capacities[int(np.argmin(self.bias2 + self.variance))]


def _as_numpy(values: Any, m: int, owner: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().to(torch.float64).numpy()
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.shape != (m,):
        raise ValueError(f"The predictor returned by 'fit_fn' in {owner} must give one value per test input, "
                         f"shape ({m},). Got {np.shape(values)} instead.")
    return out


def _check_seed(seed, owner: str) -> None:
    check_int(seed, "seed", owner, minimum=0)


def decompose(fit_fn: Callable, sample_fn: Callable[[np.random.Generator], tuple], truth: Callable,
              x_test, noise_var: float, n_datasets: int = 100, *, seed: int = 0) -> BiasVariance:
    """Estimate noise, bias² and variance of a fitting procedure, and measure the test error (UDL eq. 8.7).

    For k = 1..K: draw a training set ``(x, y) = sample_fn(rng_k)``, fit it,
    ``predictor = fit_fn(x, y)``, and predict ``f_k = predictor(x_test)``; draw fresh
    test targets ``y_k = μ(x_test) + √σ² ε``, ε ~ N(0, 1). Then, per test input,

        f̄ = mean_k f_k,  bias² = (f̄ - μ)²,  variance = mean_k (f_k - f̄)²,
        noise = mean_k (y_k - μ)²,  error = mean_k (f_k - y_k)²

    (population variance, 1/K, so that mean_k (f_k - μ)² = bias² + variance exactly).
    ``error - (noise + bias² + variance)`` is then exactly the cross term
    mean_k 2(y_k - μ)(μ - f_k), zero in expectation; ``gap_se`` is its standard error.

    Args:
        fit_fn: ``fit_fn(x, y) -> predictor``, any fitting procedure; the predictor maps
            the test inputs (a float64 numpy array, shape (M,)) to M predictions
            (numpy array or tensor).
        sample_fn: ``sample_fn(rng) -> (x, y)``, draws one training set from a
            ``numpy.random.Generator``.
        truth: μ(x), the noise-free function (numpy in, numpy out).
        x_test: the test inputs, shape (M,); averages weight them equally.
        noise_var: σ², the variance of the test-target noise (≥ 0).
        n_datasets: K ≥ 2, the number of training sets. Default 100 (as the book).
        seed: int ≥ 0; the k-th training set and the test noise come from
            independent streams spawned from ``SeedSequence(seed)``, so two
            calls with the same seed see the same training sets (common random
            numbers across procedures).

    Returns:
        :class:`BiasVariance`.

    Example::

        >>> from udl.data.toy import make_regression_1d
        >>> from udl.nn.fixed_joints import FixedJointNetwork
        >>> sample = lambda rng: (lambda d: (d.x, d.y))(make_regression_1d(seed=rng))
        >>> fit = lambda x, y: FixedJointNetwork(3).double().fit_least_squares(x, y)
        >>> bv = decompose(fit, sample, np.exp, np.linspace(0, 1, 50), 0.09, 20)
        >>> bv.predictions.shape
        (20, 50)
    """
    owner = "decompose"
    check_callable(fit_fn, "fit_fn", owner)
    check_callable(sample_fn, "sample_fn", owner)
    check_callable(truth, "truth", owner)
    x = check_array(x_test, "x_test", owner)
    noise_var = check_float(noise_var, "noise_var", owner, low=0)
    k = check_int(n_datasets, "n_datasets", owner, minimum=2)
    _check_seed(seed, owner)
    train_seeds = np.random.SeedSequence(seed).spawn(k + 1)
    test_rng = np.random.default_rng(train_seeds.pop())
    m = x.shape[0]
    mu = _as_numpy(truth(x), m, owner)

    preds = np.empty((k, m))
    for i, s in enumerate(train_seeds):
        x_train, y_train = sample_fn(np.random.default_rng(s))
        preds[i] = _as_numpy(fit_fn(x_train, y_train)(x.copy()), m, owner)
    eps = np.sqrt(noise_var) * test_rng.standard_normal((k, m))  # (K, M) fresh test noise
    y = mu[None, :] + eps  # (K, M) noisy test targets

    mean_pred = preds.mean(axis=0)
    noise_x = (eps ** 2).mean(axis=0)
    bias2_x = (mean_pred - mu) ** 2
    variance_x = ((preds - mean_pred[None, :]) ** 2).mean(axis=0)
    sq_err = (preds - y) ** 2  # (K, M)
    error_x = sq_err.mean(axis=0)
    per_set_error = sq_err.mean(axis=1)  # (K,) independent across training sets
    per_set_cross = (2 * eps * (mu[None, :] - preds)).mean(axis=1)  # (K,)
    return BiasVariance(
        x_test=x, truth=mu, predictions=preds, mean_prediction=mean_pred,
        noise=float(noise_x.mean()), noise_var=noise_var, bias2=float(bias2_x.mean()),
        variance=float(variance_x.mean()), expected_error=float(error_x.mean()),
        expected_error_se=float(per_set_error.std(ddof=1) / np.sqrt(k)),
        gap_se=float(per_set_cross.std(ddof=1) / np.sqrt(k)),
        noise_se=float((eps ** 2).mean(axis=1).std(ddof=1) / np.sqrt(k)),
        noise_x=noise_x, bias2_x=bias2_x, variance_x=variance_x, error_x=error_x)


def capacity_sweep(make_fit: Callable[[Any], Callable], capacities: Sequence, sample_fn: Callable, truth: Callable,
                   x_test, noise_var: float, n_datasets: int = 100, *, seed: int = 0) -> CapacitySweep:
    """The bias-variance trade-off: :func:`decompose` for each capacity (UDL §8.3.3, fig. 8.9).

    Every capacity sees the same K training sets and test noise (the same ``seed``),
    so differences between capacities are not Monte-Carlo noise in the data.

    Args:
        make_fit: ``make_fit(capacity) -> fit_fn`` (see :func:`decompose`), e.g.
            ``lambda d: lambda x, y: FixedJointNetwork(d).double().fit_least_squares(x, y)``.
        capacities: a non-empty sequence of capacities (hidden units, degree, ...).
        sample_fn, truth, x_test, noise_var, n_datasets, seed: as in :func:`decompose`.

    Returns:
        :class:`CapacitySweep`; ``best_capacity`` is the argmin of bias² + variance.
    """
    owner = "capacity_sweep"
    check_callable(make_fit, "make_fit", owner)
    if isinstance(capacities, (str, bytes)) or not isinstance(capacities, (list, tuple, np.ndarray)) \
            or len(capacities) == 0:
        raise TypeError(f"The 'capacities' parameter of {owner} must be a non-empty list. "
                        f"Got {capacities!r} instead.")
    check_array(x_test, "x_test", owner)
    check_float(noise_var, "noise_var", owner, low=0)
    check_int(n_datasets, "n_datasets", owner, minimum=2)
    _check_seed(seed, owner)
    results = tuple(decompose(make_fit(c), sample_fn, truth, x_test, noise_var, n_datasets, seed=seed)
                    for c in capacities)

    def col(name):
        return np.array([getattr(r, name) for r in results])

    return CapacitySweep(capacities=np.asarray(capacities), noise=col("noise"), bias2=col("bias2"),
                         variance=col("variance"), expected_error=col("expected_error"),
                         expected_error_se=col("expected_error_se"), results=results)
