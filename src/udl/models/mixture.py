"""The mixture of Gaussians as a latent variable model, fitted by expectation maximisation (UDL §17.1).

A discrete latent variable z ∈ {1 … K} picks a component, and the observed x is drawn
from that component's normal distribution:

    Pr(z = k)         = λ_k                                  (the prior: weights, Σ_k λ_k = 1)
    Pr(x | z = k)     = Norm_x[μ_k, Σ_k]                     (the conditional, or likelihood)
    Pr(x, z = k)      = Pr(x | z = k) Pr(z = k)              (the joint)
    Pr(x)             = Σ_k Pr(x, z = k)                     (the marginal: z summed out)
    Pr(z = k | x)     = Pr(x, z = k) / Pr(x)                 (the posterior, or responsibility)

The marginal is a complicated, many-peaked density built from simple pieces: the
book's first example of a latent variable model (fig. 17.1).

Fitting by maximum likelihood has no closed form, because log Pr(x) is the log of a
sum. Expectation maximisation (EM) alternates two steps that each cannot lower the
log-likelihood (the book's ELBO view, §17.4: the E-step makes the bound touch the
log-likelihood, the M-step maximises the bound):

- E-step: r_ik = Pr(z = k | x_i) under the current parameters;
- M-step: with N_k = Σ_i r_ik,  λ_k = N_k / I,  μ_k = Σ_i r_ik x_i / N_k,
  Σ_k = Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / N_k  (+ a small ridge on the diagonal).

Data are batch-first: I points of dimension D are an ``(I, D)`` tensor (the book's
columns are our rows); for D = 1 an ``(I,)`` tensor is accepted too. Everything is
computed in float64 through Cholesky factors and log-sum-exp, so that far-out points
and narrow components neither overflow nor underflow.

Example::

    truth = MixtureOfGaussians([0.3, 0.7], [-2.0, 1.5], [0.5, 1.0])   # D = 1: means (K,), variances (K,)
    x, z = truth.sample(1000, generator=0)                               # z first, then x given z
    fit = fit_em(x, initial_mixture(x, 2, generator=1), steps=100)
    fit.mixture.weights, fit.mixture.means[:, 0]                         # (0.69, 0.31), (1.49, -2.04)
    fit.log_likelihoods[-1], truth.log_likelihood(x)                     # -1.8557 ≥ -1.8580 nats per point
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from udl.validate import as_generator, check_float, check_int, is_real

__all__ = ["MixtureOfGaussians", "EMFit", "e_step", "m_step", "fit_em", "initial_mixture"]

WEIGHT_TOL = 1e-6  # how far the weights may sum from one (they are then renormalised)


def _as_float64(value, name: str, owner: str) -> torch.Tensor:
    """An array-like of finite numbers as a float64 CPU tensor (a copy)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu", torch.float64).clone()
    else:
        if not isinstance(value, (list, tuple, np.ndarray)) and not is_real(value):
            raise TypeError(f"The {name!r} parameter of {owner} must be an array of floats. "
                            f"Got {type(value).__name__} instead.")
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64)).clone()
        except (TypeError, ValueError):
            raise TypeError(f"The {name!r} parameter of {owner} must be an array of floats. "
                            f"Got {value!r} instead.") from None
    if not torch.isfinite(t).all():
        raise ValueError(f"The {name!r} parameter of {owner} must hold finite floats. Got {t.tolist()} instead.")
    return t


def _as_points(x, dim: int, owner: str, name: str = "x", *, min_points: int = 1) -> torch.Tensor:
    """Data points as an (I, D) float64 tensor; for D = 1 an (I,) array is read as I points."""
    t = _as_float64(x, name, owner)
    if t.dim() == 1 and dim == 1:
        t = t[:, None]  # (I,) -> (I, 1)
    if t.dim() != 2 or t.shape[1] != dim or t.shape[0] < min_points:
        wanted = f"an (I, {dim}) array" + (" or an (I,) array" if dim == 1 else "")
        if min_points > 1:
            wanted += f" with I >= {min_points}"
        raise ValueError(f"The {name!r} parameter of {owner} must be {wanted}. Got shape {tuple(t.shape)} instead.")
    return t


def _as_any_points(x, owner: str, name: str = "x", *, min_points: int = 1) -> torch.Tensor:
    """Data points of any dimension D as an (I, D) float64 tensor; an (I,) array is I points in D = 1."""
    t = _as_float64(x, name, owner)
    return _as_points(t, t.shape[1] if t.dim() == 2 else 1, owner, name, min_points=min_points)


def _log_normal(x: torch.Tensor, means: torch.Tensor, cholesky: torch.Tensor) -> torch.Tensor:
    """log Norm_x[μ_k, Σ_k] for every point and component, with Σ_k = L_k L_kᵀ.

    log Norm = −D/2 log 2π − Σ_d log L_k[d, d] − ½ ‖L_k⁻¹ (x − μ_k)‖².

    Shape: x (I, D), means (K, D), cholesky (K, D, D) → (I, K).
    """
    d = x.shape[1]
    diff = (x[None] - means[:, None]).transpose(1, 2)  # (K, D, I)
    solved = torch.linalg.solve_triangular(cholesky, diff, upper=False)  # (K, D, I): L_k⁻¹ (x − μ_k)
    mahalanobis = solved.pow(2).sum(1)  # (K, I)
    half_log_det = torch.diagonal(cholesky, dim1=1, dim2=2).log().sum(-1)  # (K,): ½ log |Σ_k|
    return (-0.5 * d * math.log(2 * math.pi) - half_log_det[:, None] - 0.5 * mahalanobis).T  # (I, K)


class MixtureOfGaussians:
    """A mixture of K normal distributions in D dimensions, as the joint of x and a discrete z.

    Pr(x) = Σ_k λ_k Norm_x[μ_k, Σ_k]  (UDL §17.1, fig. 17.1), with the prior λ, the
    conditionals Pr(x | z = k), the joint, the marginal and the posterior each available.
    The parameters are stored, never changed: EM returns a new mixture.

    Args:
        weights: λ, shape (K,): positive, summing to one (within 1e-6; renormalised).
        means: μ, shape (K, D); or (K,) for D = 1.
        covariances: Σ, shape (K, D, D), each symmetric positive definite; or (K,)
            variances for D = 1 (means given as (K,) or (K, 1)).

    Attributes:
        weights (K,), means (K, D), covariances (K, D, D): float64 tensors.
        n_components: K.  dim: D.

    Shape:
        Methods take points x of shape (I, D) (or (I,) for D = 1) and return (I,) for
        per-point values, (I, K) for per-point-and-component values.

    Example::

        >>> g = MixtureOfGaussians([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])
        >>> g.joint([0.0, 2.0]).sum(1)            # the marginal: the joint summed over z
        tensor([0.2420, 0.1232], dtype=torch.float64)
        >>> g.prob([0.0, 2.0]), g.posterior([2.0])
        (tensor([0.2420, 0.1232], dtype=torch.float64), tensor([[0.0180, 0.9820]], dtype=torch.float64))
    """

    def __init__(self, weights, means, covariances):
        owner = "MixtureOfGaussians"
        w = _as_float64(weights, "weights", owner)
        if w.dim() != 1 or w.numel() < 1 or (w <= 0).any() or abs(float(w.sum()) - 1.0) > WEIGHT_TOL:
            raise ValueError(f"The 'weights' parameter of {owner} must be a 1D array of positive floats summing to "
                             f"one. Got {w.tolist()} instead.")
        k = w.numel()
        mu = _as_float64(means, "means", owner)
        if mu.dim() == 1:
            mu = mu[:, None]  # (K,) -> (K, 1): D = 1
        if mu.dim() != 2 or mu.shape[0] != k:
            raise ValueError(f"The 'means' parameter of {owner} must have shape ({k}, D) (or ({k},) for D = 1), "
                             f"one row per weight. Got shape {tuple(mu.shape)} instead.")
        d = mu.shape[1]
        cov = _as_float64(covariances, "covariances", owner)
        if cov.dim() == 1 and d == 1:
            cov = cov[:, None, None]  # variances (K,) -> (K, 1, 1)
        if cov.shape != (k, d, d):
            raise ValueError(f"The 'covariances' parameter of {owner} must have shape ({k}, {d}, {d})"
                             + (f" (or ({k},) variances)" if d == 1 else "") + f". Got shape {tuple(cov.shape)} "
                             "instead.")
        if not torch.allclose(cov, cov.transpose(1, 2), rtol=1e-10, atol=1e-12):
            raise ValueError(f"The 'covariances' parameter of {owner} must hold symmetric matrices. Got an "
                             "asymmetric one instead.")
        cholesky, info = torch.linalg.cholesky_ex(cov)
        if (info != 0).any():
            bad = int(torch.nonzero(info)[0])
            raise ValueError(f"The 'covariances' parameter of {owner} must hold positive definite matrices. Got "
                             f"{cov[bad].tolist()} (component {bad}) instead.")
        self.weights = w / w.sum()
        self.means = mu
        self.covariances = cov
        self._cholesky = cholesky  # (K, D, D): Σ_k = L_k L_kᵀ

    @property
    def n_components(self) -> int:
        return self.weights.numel()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __repr__(self) -> str:
        return f"MixtureOfGaussians(K={self.n_components}, D={self.dim}, weights={np.round(self.weights.numpy(), 4)})"

    # ------------------------------------------------------------------ densities
    def log_conditional(self, x) -> torch.Tensor:
        """log Pr(x | z = k) = log Norm_x[μ_k, Σ_k]: (I, K)."""
        return _log_normal(_as_points(x, self.dim, "MixtureOfGaussians.log_conditional"), self.means,
                           self._cholesky)

    def conditional(self, x) -> torch.Tensor:
        """Pr(x | z = k): (I, K); column k integrates to one over x."""
        return self.log_conditional(x).exp()

    def log_joint(self, x) -> torch.Tensor:
        """log Pr(x, z = k) = log Pr(x | z = k) + log λ_k: (I, K)."""
        x = _as_points(x, self.dim, "MixtureOfGaussians.log_joint")
        return _log_normal(x, self.means, self._cholesky) + self.weights.log()  # (I, K) + (K,)

    def joint(self, x) -> torch.Tensor:
        """Pr(x, z = k): (I, K)."""
        return self.log_joint(x).exp()

    def log_prob(self, x) -> torch.Tensor:
        """log Pr(x) = log Σ_k Pr(x, z = k), the log of the marginal: (I,)."""
        return torch.logsumexp(self.log_joint(x), dim=1)

    def prob(self, x) -> torch.Tensor:
        """Pr(x) = Σ_k λ_k Norm_x[μ_k, Σ_k], the marginal density: (I,)."""
        return self.log_prob(x).exp()

    def posterior(self, x) -> torch.Tensor:
        """Pr(z = k | x) = Pr(x, z = k) / Pr(x), the responsibilities: (I, K), rows sum to one (Bayes' rule)."""
        return torch.softmax(self.log_joint(x), dim=1)

    def log_likelihood(self, x) -> float:
        """The mean log-likelihood (1/I) Σ_i log Pr(x_i), in nats per point (scikit-learn's ``score``)."""
        return float(self.log_prob(x).mean())

    def cdf(self, x) -> torch.Tensor:
        """Pr(X ≤ x) = Σ_k λ_k Φ[(x − μ_k) / σ_k], for D = 1 only: (I,)."""
        if self.dim != 1:
            raise ValueError(f"The 'x' parameter of MixtureOfGaussians.cdf must be 1-dimensional points (the CDF "
                             f"of a mixture in D > 1 is not computed). Got a mixture in D = {self.dim} instead.")
        x = _as_points(x, 1, "MixtureOfGaussians.cdf")
        sd = self._cholesky[:, 0, 0]  # (K,)
        phi = 0.5 * torch.special.erfc(-(x - self.means[:, 0]) / (sd * math.sqrt(2.0)))  # (I, K)
        return phi @ self.weights  # (I,)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, *, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: z from the prior Pr(z), then x from Pr(x | z).

        Args:
            n: how many points.
            generator: a ``torch.Generator`` or an int seed (None: torch's global generator).

        Returns:
            ``(x, z)``: x of shape (n, D), float64; z of shape (n,), int64 in [0, K).
        """
        n = check_int(n, "n", "MixtureOfGaussians.sample")
        g = as_generator(generator, "MixtureOfGaussians.sample")
        z = torch.multinomial(self.weights, n, replacement=True, generator=g)  # (n,)
        eps = torch.randn(n, self.dim, 1, generator=g, dtype=torch.float64)  # (n, D, 1)
        x = self.means[z] + (self._cholesky[z] @ eps)[..., 0]  # μ_z + L_z ε, (n, D)
        return x, z


# ====================================================================== EM
class EMFit(NamedTuple):
    """What :func:`fit_em` returns."""
    mixture: MixtureOfGaussians  # the parameters after the last step
    log_likelihoods: list[float]  # mean log Pr(x_i): at the start and after each M-step
    steps: int  # the EM steps taken (E-step + M-step each)
    converged: bool  # whether the last step raised the mean log-likelihood by less than tol


def e_step(mixture: MixtureOfGaussians, x) -> tuple[torch.Tensor, float]:
    """The E-step: each point's responsibilities r_ik = Pr(z = k | x_i), and the mean log-likelihood.

    Setting q_i(z) to this posterior makes the evidence lower bound equal to log Pr(x_i)
    (UDL §17.4), which the M-step then maximises.

    Returns:
        ``(r, log_likelihood)``: r of shape (I, K), rows summing to one; the mean
        log Pr(x_i) under ``mixture``.
    """
    if not isinstance(mixture, MixtureOfGaussians):
        raise TypeError(f"The 'mixture' parameter of e_step must be a MixtureOfGaussians. "
                        f"Got {type(mixture).__name__} instead.")
    log_joint = mixture.log_joint(_as_points(x, mixture.dim, "e_step"))  # (I, K)
    log_px = torch.logsumexp(log_joint, dim=1, keepdim=True)  # (I, 1)
    return (log_joint - log_px).exp(), float(log_px.mean())


def m_step(x, responsibilities, *, reg_covar: float = 1e-6) -> MixtureOfGaussians:
    """The M-step: the weights, means and covariances that maximise the bound for fixed responsibilities.

    N_k = Σ_i r_ik,   λ_k = N_k / I,   μ_k = Σ_i r_ik x_i / N_k,
    Σ_k = Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / N_k + reg_covar · 𝟙

    the responsibility-weighted versions of the fraction, mean and covariance of the
    points. ``reg_covar`` (scikit-learn's default, 1e-6) keeps a component that collapses
    onto one point from a singular covariance; 0 gives the plain maximum.

    Args:
        x: points (I, D) (or (I,) for D = 1).
        responsibilities: r, (I, K), non-negative rows summing to one.
        reg_covar: added to every covariance's diagonal, >= 0. Default 1e-6.

    Returns:
        The new :class:`MixtureOfGaussians`.
    """
    owner = "m_step"
    r = _as_float64(responsibilities, "responsibilities", owner)
    if r.dim() != 2 or (r < 0).any() or not torch.allclose(r.sum(1), torch.ones(len(r), dtype=r.dtype), atol=1e-6):
        raise ValueError(f"The 'responsibilities' parameter of {owner} must be an (I, K) array of non-negative rows "
                         f"summing to one. Got shape {tuple(r.shape)} instead.")
    x = _as_any_points(x, owner)
    if len(x) != len(r):
        raise ValueError(f"The 'responsibilities' parameter of {owner} must have one row per point ({len(x)}). "
                         f"Got {len(r)} rows instead.")
    reg_covar = check_float(reg_covar, "reg_covar", owner, low=0.0)
    n_k = r.sum(0) + 10 * torch.finfo(torch.float64).eps  # (K,): keeps an empty component from dividing by 0
    weights = n_k / len(x)  # (K,)
    means = (r.T @ x) / n_k[:, None]  # (K, I) @ (I, D) -> (K, D)
    diff = x[None] - means[:, None]  # (K, I, D)
    covariances = torch.einsum("ik,kid,kie->kde", r, diff, diff) / n_k[:, None, None]  # (K, D, D)
    covariances = covariances + reg_covar * torch.eye(x.shape[1], dtype=torch.float64)
    return MixtureOfGaussians(weights / weights.sum(), means, 0.5 * (covariances + covariances.transpose(1, 2)))


def fit_em(x, initial: MixtureOfGaussians, *, steps: int = 100, tol: float = 0.0,
           reg_covar: float = 1e-6) -> EMFit:
    """Maximum likelihood by expectation maximisation, from the given starting mixture.

    Each step is an E-step then an M-step; the mean log-likelihood is recorded at the
    start and after every M-step, and never goes down (up to rounding). With ``tol = 0``
    exactly ``steps`` steps are taken (scikit-learn's ``GaussianMixture`` with
    ``max_iter=steps, tol=0`` and the same initial parameters lands on the same mixture).

    Args:
        x: points (I, D) (or (I,) for D = 1), I >= 2.
        initial: the starting :class:`MixtureOfGaussians` (its K and D are kept).
        steps: the most EM steps. Default 100.
        tol: stop once a step raises the mean log-likelihood by less than this (>= 0;
            0 never stops early). Default 0.
        reg_covar: the ridge the M-step adds to each covariance's diagonal. Default 1e-6.

    Returns:
        An :class:`EMFit`: the mixture, the mean log-likelihoods (length steps taken + 1),
        the steps taken and whether ``tol`` stopped it.
    """
    owner = "fit_em"
    if not isinstance(initial, MixtureOfGaussians):
        raise TypeError(f"The 'initial' parameter of {owner} must be a MixtureOfGaussians. "
                        f"Got {type(initial).__name__} instead.")
    x = _as_points(x, initial.dim, owner, min_points=2)
    steps = check_int(steps, "steps", owner)
    tol = check_float(tol, "tol", owner, low=0.0)
    reg_covar = check_float(reg_covar, "reg_covar", owner, low=0.0)
    mixture = initial
    r, ll = e_step(mixture, x)
    history, converged, taken = [ll], False, 0
    for taken in range(1, steps + 1):
        mixture = m_step(x, r, reg_covar=reg_covar)
        r, ll = e_step(mixture, x)  # the next E-step also scores the new parameters
        history.append(ll)
        if tol > 0 and history[-1] - history[-2] < tol:
            converged = True
            break
    return EMFit(mixture, history, taken, converged)


def initial_mixture(x, n_components: int, *, generator=None) -> MixtureOfGaussians:
    """A starting point for EM: K distinct data points as the means, equal weights, and every component
    with the covariance of all the data (plus 1e-6 on the diagonal).

    Args:
        x: points (I, D) (or (I,) for D = 1) with at least ``n_components`` distinct points.
        n_components: K.
        generator: a ``torch.Generator`` or an int seed (None: torch's global generator),
            to choose the points.

    Returns:
        A :class:`MixtureOfGaussians` with K components.
    """
    owner = "initial_mixture"
    x = _as_any_points(x, owner, min_points=2)
    k = check_int(n_components, "n_components", owner)
    g = as_generator(generator, owner)
    distinct = torch.unique(x, dim=0)  # (U, D)
    if len(distinct) < k:
        raise ValueError(f"The 'n_components' parameter of {owner} must be at most the number of distinct points "
                         f"({len(distinct)}). Got {k} instead.")
    means = distinct[torch.randperm(len(distinct), generator=g)[:k]]  # (K, D)
    cov = torch.atleast_2d(torch.cov(x.T)) + 1e-6 * torch.eye(x.shape[1], dtype=torch.float64)  # (D, D)
    return MixtureOfGaussians(torch.full((k,), 1.0 / k, dtype=torch.float64), means, cov.expand(k, -1, -1).clone())
