"""The "simplified" shallow network of UDL chapters 8-9, with joints fixed in advance.

The book's bias-variance and regularization experiments (figs. 8.4-8.9, 9.2, 9.6,
9.7, 9.9) use a 1D shallow network whose hidden units have fixed slopes and fixed
joints spread evenly over the input range; only the output layer is learned::

    y = β + Σ_{j=0}^{D-1} ω_j · ReLU(x - x_j),      x_j = lo + j·(hi - lo)/D

With joints at 0, 1/D, ..., (D-1)/D on [0, 1] this is a piecewise linear function
with D regions on [0, 1] (the first joint sits at the left edge, so its unit is a
plain linear term there). The output is linear in the parameters φ = (β, ω), so the
least-squares fit has a closed form (the normal equations), and the L2-regularised
(ridge) fit too (UDL eq. 9.5):

    φ̂ = argmin_φ  Σ_i (y_i - f[x_i, φ])² + λ Σ_k φ_k²  =  (AᵀA + λI)⁻¹ Aᵀy

where A is the N x (D+1) design matrix [1, ReLU(x - x_j)...] (:meth:`features`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from udl.nn.init import fan_in_uniform_
from udl.validate import as_generator, check_callable, check_float, check_int

__all__ = ["FixedJointNetwork", "sgd_batches", "least_squares_fitter"]

_OWNER = "FixedJointNetwork"


def sgd_batches(n: int, batch_size: int, steps: int, *, seed: int = 0) -> np.ndarray:
    """The rows of each SGD step's batch: every epoch a fresh permutation of 0..n-1, cut into ⌊n/B⌋ batches.

    The last n mod B rows of each permutation sit that epoch out (as in ``udl.train.fit``).
    All permutations are drawn at once from ``numpy.random.default_rng(seed)``.

    Args:
        n: number of examples N.
        batch_size: B, 1 ≤ B ≤ N.
        steps: number of steps.
        seed: int ≥ 0. Default 0.

    Returns:
        int64 array, shape (steps, B): row s - 1 holds the examples of step s.

    Example::

        >>> rows = sgd_batches(15, 5, 6, seed=0)
        >>> rows.shape, sorted(rows[:3].ravel().tolist()) == list(range(15))
        ((6, 5), True)
    """
    owner = "sgd_batches"
    check_int(n, "n", owner)
    check_int(batch_size, "batch_size", owner)
    check_int(steps, "steps", owner)
    check_int(seed, "seed", owner, minimum=0)
    if batch_size > n:
        raise ValueError(f"The 'batch_size' parameter of {owner} must be at most n={n}. Got {batch_size} instead.")
    per_epoch = n // batch_size
    epochs = -(-steps // per_epoch)  # ceil
    rng = np.random.default_rng(seed)
    orders = rng.permuted(np.tile(np.arange(n), (epochs, 1)), axis=1)  # (epochs, n), each row a permutation
    batches = orders[:, : per_epoch * batch_size].reshape(epochs * per_epoch, batch_size)  # (epochs·batches, B)
    return batches[:steps]


class FixedJointNetwork(nn.Module):
    """A 1D shallow ReLU network with D fixed joints; only β and ω are parameters (UDL fig. 8.4).

    ``y = β + Σ_j ω_j · ReLU(x - x_j)`` with joints ``x_j = lo + j·(hi - lo)/D``,
    j = 0..D-1, so the network has D + 1 parameters and D linear regions on [lo, hi].

    Args:
        n_hidden: number of hidden units D (= number of regions on [lo, hi]).
        lo: left end of the input range; the first joint. Default 0.0.
        hi: right end of the input range (> lo). Default 1.0.
        generator: draws the initial β and ω from U(-1/√D, 1/√D), as ``nn.Linear(D, 1)``
            initialises its weights: a ``torch.Generator`` or an int seed; None uses
            torch's global generator.

    Shape:
        x: (N,) or (N, 1) -> y: (N,).

    Example::

        >>> net = FixedJointNetwork(3, generator=torch.Generator().manual_seed(0))
        >>> [round(v, 4) for v in net.joints.tolist()]
        [0.0, 0.3333, 0.6667]
        >>> x = torch.linspace(0, 1, 15); y = torch.exp(torch.sin(2 * math.pi * x))
        >>> net.fit_least_squares(x, y)(x).shape
        torch.Size([15])
    """

    def __init__(self, n_hidden: int, *, lo: float = 0.0, hi: float = 1.0,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.n_hidden = check_int(n_hidden, "n_hidden", _OWNER)
        lo = check_float(lo, "lo", _OWNER)
        hi = check_float(hi, "hi", _OWNER)
        if not hi > lo:
            raise ValueError(f"The 'hi' parameter of {_OWNER} must be a float greater than lo={lo!r}. "
                             f"Got {hi!r} instead.")
        generator = as_generator(generator, _OWNER)
        self.lo, self.hi = lo, hi
        self._joint_cache: dict = {}
        self.beta = nn.Parameter(torch.zeros(()))  # the offset β (scalar)
        self.omega = nn.Parameter(torch.zeros(n_hidden))  # the output weights ω, shape (D,)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw β and ω from U(-1/√D, 1/√D) (``nn.Linear``'s default for a D → 1 layer)."""
        fan_in_uniform_((self.beta, self.omega), self.n_hidden, generator)

    @property
    def joints(self) -> torch.Tensor:
        """The joint positions x_j = lo + j·(hi - lo)/D, j = 0..D-1, shape (D,), in the parameters' dtype."""
        return self._joints_like(self.omega)

    def _joints_like(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device)
        if key not in self._joint_cache:  # computed in float64, then cast: exact j/D in any dtype
            j = torch.arange(self.n_hidden, dtype=torch.float64)
            self._joint_cache[key] = (self.lo + j * (self.hi - self.lo) / self.n_hidden).to(device=x.device,
                                                                                              dtype=x.dtype)
        return self._joint_cache[key]

    def _input(self, x, name: str = "x") -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"The {name!r} parameter of {_OWNER} must be a torch.Tensor or numpy array. "
                            f"Got {type(x).__name__} instead.")
        if x.dim() == 2 and x.shape[1] == 1:
            x = x[:, 0]  # (N, 1) -> (N,)
        if x.dim() != 1:
            raise ValueError(f"The {name!r} parameter of {_OWNER} must have shape (N,) or (N, 1). "
                             f"Got {tuple(x.shape)} instead.")
        return x.to(device=self.omega.device, dtype=self.omega.dtype)

    def features(self, x) -> torch.Tensor:
        """The design matrix A = [1, ReLU(x - x_0), ..., ReLU(x - x_{D-1})], so y = A·(β, ω).

        Shape:
            x: (N,) or (N, 1) -> (N, D + 1).
        """
        x = self._input(x)
        h = torch.relu(x[:, None] - self._joints_like(x)[None, :])  # (N, 1) - (1, D) -> (N, D) activations
        return torch.cat([torch.ones_like(x)[:, None], h], dim=1)  # (N, D + 1)

    def forward(self, x) -> torch.Tensor:
        """``y = β + Σ_j ω_j ReLU(x - x_j)``. Shape: (N,) or (N, 1) -> (N,)."""
        x = self._input(x)
        h = torch.relu(x[:, None] - self._joints_like(x)[None, :])  # (N, D)
        return self.beta + h @ self.omega  # (N, D) @ (D,) -> (N,)

    def fit_least_squares(self, x, y, *, l2: float = 0.0, penalize_beta: bool = True) -> "FixedJointNetwork":
        """Set β and ω to the (ridge) least-squares solution in closed form; return ``self``.

        Minimises ``Σ_i (y_i - f[x_i, φ])² + λ Σ_k φ_k²`` (UDL eq. 9.5 with the
        least-squares loss). By default every parameter is penalised, β included, as
        in eq. 9.5 — the same objective as the sum-of-squares loss plus
        ``udl.nn.regularizers.l2_penalty(model, λ)``, and as SGD with weight decay
        (which also decays every parameter). With ``penalize_beta=False`` only ω is
        shrunk and the offset is free. The solution is

            φ̂ = (AᵀA + λP)⁻¹ Aᵀy,     P = I (or I with P_00 = 0)

        computed in float64. With λ = 0 the minimum-norm solution A⁺y is returned,
        which interpolates the data whenever D + 1 ≥ N and A has full row rank.

        Args:
            x: inputs, shape (N,) or (N, 1).
            y: targets, shape (N,) or (N, 1).
            l2: the regularisation weight λ ≥ 0. Default 0.0 (ordinary least squares).
            penalize_beta: whether β is penalised too. Default True (eq. 9.5).

        Returns:
            ``self``, with the fitted parameters.
        """
        l2 = check_float(l2, "l2", f"{_OWNER}.fit_least_squares", low=0)
        if not isinstance(penalize_beta, bool):
            raise TypeError(f"The 'penalize_beta' parameter of {_OWNER}.fit_least_squares must be a bool. "
                            f"Got {penalize_beta!r} instead.")
        xt = self._input(x, "x")
        yt = self._input(y, "y")
        if yt.shape != xt.shape:
            raise ValueError(f"The 'y' parameter of {_OWNER}.fit_least_squares must have one target per input, "
                             f"shape ({xt.shape[0]},). Got {tuple(yt.shape)} instead.")
        a = self.features(xt).to(torch.float64)  # (N, D + 1)
        b = yt.to(torch.float64)  # (N,)
        if l2 == 0.0:
            phi = torch.linalg.pinv(a) @ b  # (D + 1, N) @ (N,) -> (D + 1,) minimum-norm least squares
        else:
            penalty = torch.eye(self.n_hidden + 1, dtype=torch.float64, device=a.device)
            if not penalize_beta:
                penalty[0, 0] = 0.0
            phi = torch.linalg.solve(a.T @ a + l2 * penalty, a.T @ b)  # normal equations, (D + 1,)
        with torch.no_grad():
            self.beta.copy_(phi[0])
            self.omega.copy_(phi[1:])
        return self

    def fit_sgd(self, x, y, *, lr: float, batch_size: int, steps: int, seed: int = 0,
                callback: Callable[[int, float, nn.Module], None] | None = None, every: int = 1) -> list[float]:
        """Train β and ω by minibatch SGD on the sum-of-squares loss; return every step's batch loss.

        Step s draws batch B_s and takes ``φ ← φ - α ∂L_s/∂φ`` (UDL eq. 6.3) with
        ``L_s = Σ_{i∈B_s} (f[x_i, φ] - y_i)²``. The model is linear in φ = (β, ω), so
        the gradient is computed in closed form, ``∂L_s/∂φ = 2 A_sᵀ(A_s φ - y_s)``
        with A_s the batch's rows of :meth:`features` — no autograd and, on the CPU, NumPy
        arithmetic: about a hundred times faster than a general training loop, which matters
        for the 10⁴-10⁵ steps of fig. 9.6.
        The batches come from :func:`sgd_batches` (a fresh permutation of the N rows
        each epoch, cut into ⌊N/B⌋ batches); given the same batches, ``udl.train.fit``
        with ``torch.optim.SGD(lr)`` and the loss ``((f - y)**2).sum()`` reaches the same
        parameters up to rounding (tested).

        Args:
            x: inputs, shape (N,) or (N, 1).
            y: targets, shape (N,) or (N, 1).
            lr: the step size α > 0.
            batch_size: B, 1 ≤ B ≤ N.
            steps: the number of SGD steps.
            seed: the seed of the batch order (:func:`sgd_batches`). Default 0.
            callback: ``callback(step, loss, model)`` on steps that are multiples of
                ``every`` (the module holds the current φ then), e.g. an
                :class:`udl.train.early_stopping.EarlyStopping`. Default None.
            every: how often ``callback`` runs. Default 1.

        Returns:
            The batch loss L_s before each step's update, ``losses[s - 1]`` for step s.
        """
        owner = f"{_OWNER}.fit_sgd"
        lr = check_float(lr, "lr", owner, low=0, low_open=True)
        steps = check_int(steps, "steps", owner)
        seed = check_int(seed, "seed", owner, minimum=0)
        every = check_int(every, "every", owner)
        check_callable(callback, "callback", owner, optional=True)
        xt, yt = self._input(x, "x"), self._input(y, "y")
        if yt.shape != xt.shape:
            raise ValueError(f"The 'y' parameter of {owner} must have one target per input, "
                             f"shape ({xt.shape[0]},). Got {tuple(yt.shape)} instead.")
        n = xt.shape[0]
        check_int(batch_size, "batch_size", owner)
        if batch_size > n:
            raise ValueError(f"The 'batch_size' parameter of {owner} must be at most the number of examples {n}. "
                             f"Got {batch_size} instead.")
        with torch.no_grad():
            a = self.features(xt)  # (N, D + 1)
            phi = torch.cat([self.beta.detach()[None], self.omega.detach()])  # (D + 1,) = (β, ω), a copy
            # On the CPU the loop runs on NumPy views of the same memory: a step of a 15-parameter
            # model costs a few microseconds there against ~15 for torch's per-operation overhead.
            cpu = a.device.type == "cpu"
            a_, y_, phi_ = (t.numpy() for t in (a, yt, phi)) if cpu else (a, yt, phi)
            losses = np.empty(steps, dtype=a_.dtype) if cpu else torch.empty(steps, dtype=phi.dtype)
            batches = sgd_batches(n, batch_size, steps, seed=seed)  # (steps, B)
            if not cpu:
                batches = torch.from_numpy(batches).to(a.device)
            for step in range(1, steps + 1):
                rows = batches[step - 1]
                a_s = a_[rows]  # (B, D + 1)
                r = a_s @ phi_ - y_[rows]  # (B,) residuals f - y
                losses[step - 1] = r @ r
                phi_ -= lr * 2 * (a_s.T @ r)  # (D + 1, B) @ (B,): the gradient 2 A_sᵀ r (in place: phi too)
                if callback is not None and step % every == 0:
                    self.beta.copy_(phi[0])
                    self.omega.copy_(phi[1:])
                    callback(step, float(losses[step - 1]), self)
            self.beta.copy_(phi[0])
            self.omega.copy_(phi[1:])
        return losses.tolist()

    def extra_repr(self) -> str:
        return f"n_hidden={self.n_hidden}, lo={self.lo:g}, hi={self.hi:g}"


def least_squares_fitter(n_hidden: int, *, l2: float = 0.0) -> Callable[[np.ndarray, np.ndarray], Callable]:
    """``fit(x, y) -> predictor``: a fresh ``FixedJointNetwork(n_hidden)`` fitted in closed form, in float64.

    The fitting procedure of the book's bias-variance experiments (figs. 8.5-8.9), in
    the ``fit_fn`` form that :func:`udl.analysis.bias_variance.decompose` and
    :class:`udl.models.ensemble.BaggingEnsemble` take: every call fits a new network to
    ``(x, y)`` by :meth:`FixedJointNetwork.fit_least_squares` (ridge with ``l2`` > 0,
    eq. 9.5) and returns its predictions as a function.

    Args:
        n_hidden: D, the number of hidden units (regions on [0, 1]).
        l2: the ridge penalty λ ≥ 0. Default 0 (least squares).

    Returns:
        ``fit(x, y)``, whose result maps inputs (array or tensor, shape (M,)) to the
        fitted network's outputs, a float64 tensor of shape (M,).

    Example::

        >>> x = np.linspace(0, 1, 15)
        >>> predict = least_squares_fitter(3)(x, 2 * x + 1)
        >>> round(float(predict(np.array([0.5]))[0]), 6)  # a line is fitted exactly
        2.0
    """
    owner = "least_squares_fitter"
    check_int(n_hidden, "n_hidden", owner)
    l2 = check_float(l2, "l2", owner, low=0)

    def fit(x, y) -> Callable:
        # the initial weights are replaced by the fit: a fixed seed leaves torch's global generator alone
        net = FixedJointNetwork(n_hidden, generator=0).double().fit_least_squares(x, y, l2=l2)
        return lambda x_new: net(torch.as_tensor(x_new, dtype=torch.float64)).detach()

    return fit
