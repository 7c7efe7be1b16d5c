"""Loss functions as negative log-likelihoods (UDL chapter 5).

The book builds every loss the same way (§5.2): choose a distribution Pr(y|θ) over
the output, let the network predict its parameters θ = f[x, φ], and minimise the
negative log-likelihood of the training data, summed over examples (eq. 5.3)::

    L[φ] = -Σ_i log Pr(y_i | f[x_i, φ])

- normal distribution, fixed variance → least squares (§5.3.1; eq. 6.9 uses it);
- normal distribution, predicted variance → Gaussian negative log-likelihood (§5.3.3);
- Bernoulli distribution + logistic sigmoid → binary cross-entropy (§5.4, eqs. 5.19-5.20);
- categorical distribution + softmax → multiclass cross-entropy (§5.5, eq. 5.24).

The book sums over the training set; every function here does the same by default
(``reduction="sum"``) and also offers ``"mean"`` (what ``torch.nn.functional``
defaults to) and ``"none"`` (one loss per example). Each is written from its
formula and tested equal to its ``torch.nn.functional`` counterpart in values and
gradients.
"""

from __future__ import annotations

import math

import torch

from udl.validate import check_choice, check_tensor

REDUCTIONS = ("sum", "mean", "none")


# --------------------------------------------------------------------------- helpers
def _check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str, owner: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"The {names} parameters of {owner} must have the same shape. "
                         f"Got {tuple(a.shape)} and {tuple(b.shape)} instead.")


def _check_in_unit_interval(value: torch.Tensor, name: str, owner: str) -> None:
    if value.numel() and not bool(((value >= 0) & (value <= 1)).all()):
        raise ValueError(f"The {name!r} parameter of {owner} must hold values in [0, 1]. "
                         f"Got values in [{value.min().item():g}, {value.max().item():g}] instead.")


def _check_prediction_and_target(prediction: torch.Tensor, y: torch.Tensor, name: str, reduction: str,
                                  owner: str) -> None:
    """What every elementwise loss checks: a float prediction and target of one shape, and a known reduction."""
    check_tensor(prediction, name, owner, dtype="float")
    check_tensor(y, "y", owner, dtype="float")
    _check_same_shape(prediction, y, f"{name!r} and 'y'", owner)
    check_choice(reduction, "reduction", owner, REDUCTIONS)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def softplus(z: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(z))`` computed without overflow: ``max(z, 0) + log(1 + exp(-|z|))``.

    It is the negative log of the sigmoid of ``-z``: ``-log sig[-z] = softplus(z)``.

    Shape: any; the output has the shape of ``z``.
    """
    check_tensor(z, "z", "softplus", dtype="float")
    return z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))


# --------------------------------------------------------------------------- regression
def least_squares(f: torch.Tensor, y: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """Least-squares loss ``L = Σ_i (y_i - f[x_i, φ])²`` (UDL §5.3.1, eq. 6.9).

    The negative log-likelihood of a normal distribution with fixed variance,
    dropping the terms that do not depend on φ. The book sums over examples
    (``reduction="sum"``); ``torch.nn.functional.mse_loss`` averages by default.

    Args:
        f: model predictions f[x_i, φ].
        y: targets y_i, same shape as ``f``.
        reduction: ``"sum"`` (default, as the book), ``"mean"`` or ``"none"``.

    Shape:
        f, y: any shape, equal. Output: a scalar, or the shape of ``f`` for ``"none"``.

    Example:
        >>> least_squares(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(5.)
    """
    _check_prediction_and_target(f, y, "f", reduction, "least_squares")
    return _reduce((y - f) ** 2, reduction)


def gaussian_nll(mu: torch.Tensor, y: torch.Tensor, sigma_sq: torch.Tensor, *, reduction: str = "sum",
                 full: bool = True) -> torch.Tensor:
    """Negative log-likelihood of y under a normal N(μ, σ²) (UDL §5.3, eq. 5.7; §5.3.3).

    With the normal density of eq. 5.7, each example contributes::

        -log Pr(y | μ, σ²) = (y - μ)² / (2σ²) + ½ log σ² + ½ log 2π

    When the network predicts both μ and σ² (heteroscedastic regression, §5.3.3) this
    is the loss; with σ² fixed it is least squares up to a scale and a constant.

    Args:
        mu: predicted means μ.
        y: targets, same shape as ``mu``.
        sigma_sq: variances σ² > 0, same shape as ``mu`` (or a tensor that broadcasts
            to it, e.g. one shared variance).
        reduction: ``"sum"`` (default, as the book), ``"mean"`` or ``"none"``.
        full: include the constant ½ log 2π (default True: the exact negative
            log-likelihood). ``torch.nn.functional.gaussian_nll_loss`` leaves it out
            unless ``full=True``.

    Shape:
        mu, y: any shape, equal. Output: a scalar, or the shape of ``mu`` for ``"none"``.

    Example:
        >>> gaussian_nll(torch.zeros(1), torch.zeros(1), torch.ones(1))  # ½ log 2π
        tensor(0.9189)
    """
    owner = "gaussian_nll"
    _check_prediction_and_target(mu, y, "mu", reduction, owner)
    check_tensor(sigma_sq, "sigma_sq", owner, dtype="float")
    try:
        broadcasts = torch.broadcast_shapes(sigma_sq.shape, mu.shape) == mu.shape
    except RuntimeError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(f"The 'sigma_sq' parameter of {owner} must broadcast to the shape of 'mu' "
                         f"{tuple(mu.shape)}. Got {tuple(sigma_sq.shape)} instead.")
    if sigma_sq.numel() and not bool((sigma_sq > 0).all()):
        raise ValueError(f"The 'sigma_sq' parameter of {owner} must be positive. "
                         f"Got a minimum of {sigma_sq.min().item():g} instead.")
    if not isinstance(full, bool):
        raise TypeError(f"The 'full' parameter of {owner} must be a bool. Got {full!r} instead.")
    # -log N(y; μ, σ²)  (UDL eq. 5.7)
    loss = (y - mu) ** 2 / (2 * sigma_sq) + 0.5 * torch.log(sigma_sq)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------- binary classification
def binary_cross_entropy(lam: torch.Tensor, y: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """Binary cross-entropy from probabilities λ = Pr(y=1|x) (UDL eq. 5.20).

    The negative log-likelihood of the Bernoulli distribution
    ``Pr(y|λ) = (1-λ)^(1-y) λ^y`` (eq. 5.17)::

        L = Σ_i -(1 - y_i) log(1 - λ_i) - y_i log λ_i

    Each log is clamped at -100, as ``torch.nn.functional.binary_cross_entropy``
    does, so that λ = 0 or 1 gives a large finite loss instead of infinity. Prefer
    :func:`binary_cross_entropy_with_logits` when the network outputs a logit: it is
    exact for every logit, however large.

    Args:
        lam: probabilities λ in [0, 1].
        y: targets in [0, 1] (labels 0/1, or soft labels), same shape as ``lam``.
        reduction: ``"sum"`` (default, as the book), ``"mean"`` or ``"none"``.

    Shape:
        lam, y: any shape, equal. Output: a scalar, or the shape of ``lam`` for ``"none"``.

    Example:
        >>> binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.0]))  # log 2
        tensor(0.6931)
    """
    owner = "binary_cross_entropy"
    _check_prediction_and_target(lam, y, "lam", reduction, owner)
    _check_in_unit_interval(lam, "lam", owner)
    _check_in_unit_interval(y, "y", owner)
    log_lam = torch.log(lam).clamp(min=-100)
    log_one_minus_lam = torch.log1p(-lam).clamp(min=-100)
    # -(1-y) log(1-λ) - y log λ  (UDL eq. 5.20)
    return _reduce(-(1 - y) * log_one_minus_lam - y * log_lam, reduction)


def binary_cross_entropy_with_logits(z: torch.Tensor, y: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """Binary cross-entropy from the logit z = f[x, φ], with λ = sig[z] (UDL eqs. 5.19-5.20).

    Substituting λ = sig[z] in eq. 5.20 and using ``-log sig[z] = softplus(-z)`` and
    ``-log(1 - sig[z]) = softplus(z)``::

        L = Σ_i (1 - y_i) softplus(z_i) + y_i softplus(-z_i) = Σ_i softplus(z_i) - y_i z_i

    ``softplus(z) = max(z, 0) + log(1 + exp(-|z|))`` never overflows, so the loss is
    exact for logits of any size (no clamping, unlike the probability form).

    Args:
        z: logits, the network's unbounded output f[x, φ].
        y: targets in [0, 1], same shape as ``z``.
        reduction: ``"sum"`` (default, as the book), ``"mean"`` or ``"none"``.

    Shape:
        z, y: any shape, equal. Output: a scalar, or the shape of ``z`` for ``"none"``.

    Example:
        >>> binary_cross_entropy_with_logits(torch.tensor([0.0]), torch.tensor([1.0]))  # log 2
        tensor(0.6931)
    """
    owner = "binary_cross_entropy_with_logits"
    _check_prediction_and_target(z, y, "z", reduction, owner)
    _check_in_unit_interval(y, "y", owner)
    return _reduce(softplus(z) - y * z, reduction)


# --------------------------------------------------------------------------- multiclass classification
def log_softmax(z: torch.Tensor) -> torch.Tensor:
    """Logarithm of the softmax over the last axis (UDL eq. 5.22), stably.

    ``log softmax_k[z] = z_k - log Σ_k' exp(z_k')``, with the maximum subtracted
    before exponentiating so that nothing overflows.

    Shape: (..., K) → (..., K).
    """
    check_tensor(z, "z", "log_softmax", dtype="float")
    if z.dim() == 0:
        raise ValueError("The 'z' parameter of log_softmax must have at least one axis. Got a scalar instead.")
    z_max = z.amax(dim=-1, keepdim=True).detach()  # a constant shift: no gradient needed
    log_sum_exp = z_max + torch.log(torch.exp(z - z_max).sum(dim=-1, keepdim=True))  # (..., 1)
    return z - log_sum_exp


def cross_entropy(z: torch.Tensor, y: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """Multiclass cross-entropy from logits (UDL eq. 5.24).

    The network outputs K logits z = f[x, φ]; the softmax (eq. 5.22) turns them into
    the parameters of a categorical distribution, and the loss is its negative
    log-likelihood::

        L = -Σ_i log softmax_{y_i}[f[x_i, φ]]

    Args:
        z: logits, one row of K per example.
        y: class indices in {0, ..., K-1} (an integer tensor).
        reduction: ``"sum"`` (default, as the book), ``"mean"`` or ``"none"``.

    Shape:
        z: (N, K); y: (N,). Output: a scalar, or (N,) for ``"none"``.

    Example:
        >>> cross_entropy(torch.zeros(1, 4), torch.tensor([2]))  # log 4
        tensor(1.3863)
    """
    owner = "cross_entropy"
    check_tensor(z, "z", owner, shape=("N", "K"), dtype="float")
    check_tensor(y, "y", owner, shape=(z.shape[0],), dtype="int")  # class indices
    if y.numel() and not bool(((y >= 0) & (y < z.shape[1])).all()):
        raise ValueError(f"The 'y' parameter of {owner} must hold class indices in [0, {z.shape[1] - 1}]. "
                         f"Got values in [{y.min().item()}, {y.max().item()}] instead.")
    check_choice(reduction, "reduction", owner, REDUCTIONS)
    log_p = log_softmax(z)  # (N, K)
    # -log softmax_{y_i}[z_i]  (UDL eq. 5.24)
    return _reduce(-log_p.gather(1, y.long()[:, None])[:, 0], reduction)  # (N,)


__all__ = ["least_squares", "gaussian_nll", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "log_softmax", "softplus"]
