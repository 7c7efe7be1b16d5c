r"""The book's momentum, Nesterov momentum and Adam (UDL §6.3-6.4), written out once.

The book writes these rules in a form that differs from ``torch.optim`` by constant
factors. Each rule below is coded the book's way, beside its equation, and the
functions :func:`to_torch_sgd` and :func:`to_torch_adam` give the ``torch.optim``
hyper-parameters that produce the identical trajectory (derivations in their
docstrings; the tests compare the trajectories step by step).

Symbols: φ the parameters, g = ∂L/∂φ the (mini-batch) gradient, α the step (``lr``),
β the momentum coefficient, γ the coefficient of the squared-gradient average, t the
step counter starting at 0, m and v the running averages starting at 0.
"""

from __future__ import annotations

import torch

from udl.optim.elementwise import ElementwiseOptimizer
from udl.validate import check_bool, check_float

__all__ = ["BookMomentum", "BookAdam", "to_torch_sgd", "to_torch_adam"]


def _check_lr(lr, owner):
    return check_float(lr, "lr", owner, low=0, low_open=True)


def _check_coefficient(value, name, owner):
    return check_float(value, name, owner, low=0, high=1, high_open=True)


class BookMomentum(ElementwiseOptimizer):
    r"""Stochastic gradient descent with momentum, in the book's form (UDL eqs. 6.11-6.12).

    Momentum is a weighted average of past gradients, starting from ``m = 0``::

        m ← β·m + (1-β)·g[φ]            (UDL eq. 6.11)
        φ ← φ - α·m

    Nesterov momentum (``nesterov=True``) takes the gradient at the point that the
    momentum alone would reach, the look-ahead ``ψ = φ - α·β·m``::

        m ← β·m + (1-β)·g[φ - α·β·m]    (UDL eq. 6.12)
        φ ← φ - α·m

    The parameters always hold the book's φ. For Nesterov, :meth:`step` needs a closure
    (as :class:`torch.optim.LBFGS` does): it moves the parameters to ψ, calls the
    closure there (which must zero the gradients, compute the loss, call ``backward()``
    and return the loss), restores φ and updates. The gradient the user computed
    before the step is ignored in that case. Without Nesterov the closure is optional
    and the gradient already in ``p.grad`` is used, as in ``torch.optim.SGD``.

    ``torch.optim.SGD`` gives the same trajectory with :func:`to_torch_sgd`'s
    hyper-parameters (``lr = α(1-β)``; for Nesterov, torch's parameters are the book's ψ).

    Args:
        params: the parameters (iterable of tensors or parameter groups).
        lr: the step α > 0.
        beta: the momentum coefficient β in [0, 1); β = 0 is plain SGD.
        nesterov: use Nesterov's look-ahead gradient. Default: False.

    Example:
        >>> phi = torch.tensor([1.0], requires_grad=True)
        >>> opt = BookMomentum([phi], lr=0.5, beta=0.9)
        >>> (phi ** 2).sum().backward(); opt.step()   # m = 0.1·2, φ = 1 - 0.5·0.2
        >>> round(phi.item(), 6)
        0.9
    """

    def __init__(self, params, lr: float, beta: float, *, nesterov: bool = False):
        owner = "BookMomentum"
        lr = _check_lr(lr, owner)
        beta = _check_coefficient(beta, "beta", owner)
        nesterov = check_bool(nesterov, "nesterov", owner)
        super().__init__(params, dict(lr=lr, beta=beta, nesterov=nesterov))

    def _momentum(self, p):
        state = self.state[p]
        if "m" not in state:
            state["m"] = torch.zeros_like(p)  # m starts at 0
        return state["m"]

    @torch.no_grad()
    def step(self, closure=None):
        """One step; returns the closure's loss (at the look-ahead point for Nesterov), if any."""
        nesterov_groups = [g for g in self.param_groups if g["nesterov"]]
        if not nesterov_groups:
            return super().step(closure)
        if closure is None:
            raise ValueError("The 'closure' parameter of BookMomentum.step must be a callable that computes "
                             "the loss and its gradient (Nesterov evaluates the gradient at the look-ahead "
                             "point). Got None instead.")
        phi = {}
        for group in nesterov_groups:
            alpha, beta = group["lr"], group["beta"]
            for p in group["params"]:
                phi[p] = p.detach().clone()
                p.sub_(alpha * beta * self._momentum(p))  # ψ = φ - α·β·m  (look-ahead, UDL eq. 6.12)
        with torch.enable_grad():
            loss = closure()  # gradients at ψ for Nesterov groups, at φ for the others
        for p, phi_p in phi.items():
            p.copy_(phi_p)
        self._update_all()
        return loss

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict) -> None:
        """m ← β·m + (1-β)·g, then φ ← φ - α·m."""
        alpha, beta = group["lr"], group["beta"]
        m = self._momentum(p)
        m.mul_(beta).add_(g, alpha=1 - beta)  # m ← β·m + (1-β)·g  (UDL eq. 6.11)
        p.sub_(alpha * m)  # φ ← φ - α·m


class BookAdam(ElementwiseOptimizer):
    r"""Adaptive moment estimation in the book's form (UDL eqs. 6.15-6.17).

    Running averages of the gradient and of its square, corrected for starting at 0,
    then a step that is normalised per parameter::

        m ← β·m + (1-β)·g                          (UDL eq. 6.15)
        v ← γ·v + (1-γ)·g²
        m̃ = m / (1 - β^(t+1))                      (UDL eq. 6.16)
        ṽ = v / (1 - γ^(t+1))
        φ ← φ - α · m̃ / (√ṽ + ε)                   (UDL eq. 6.17)

    with t = 0 at the first step. This is exactly :class:`torch.optim.Adam` with
    ``lr = α, betas = (β, γ), eps = ε`` (see :func:`to_torch_adam`).

    Args:
        params: the parameters (iterable of tensors or parameter groups).
        lr: the step α > 0.
        beta: β in [0, 1), the gradient average's coefficient. Default: 0.9.
        gamma: γ in [0, 1), the squared-gradient average's coefficient. Default: 0.999.
        eps: ε ≥ 0, which keeps the division finite. Default: 1e-8.

    Example:
        >>> phi = torch.tensor([1.0, -3.0], requires_grad=True)
        >>> opt = BookAdam([phi], lr=0.1)
        >>> (phi ** 2).sum().backward(); opt.step()   # the first step is α·sign(g)
        >>> [round(x, 4) for x in phi.tolist()]
        [0.9, -2.9]
    """

    def __init__(self, params, lr: float, beta: float = 0.9, gamma: float = 0.999, eps: float = 1e-8):
        owner = "BookAdam"
        lr = _check_lr(lr, owner)
        beta = _check_coefficient(beta, "beta", owner)
        gamma = _check_coefficient(gamma, "gamma", owner)
        eps = check_float(eps, "eps", owner, low=0)
        super().__init__(params, dict(lr=lr, beta=beta, gamma=gamma, eps=eps))

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict) -> None:
        """One Adam step of ``p`` (eqs. 6.15-6.17), counting its steps t in ``self.state[p]``."""
        alpha, beta, gamma, eps = group["lr"], group["beta"], group["gamma"], group["eps"]
        state = self.state[p]
        if not state:
            state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
        t, m, v = state["t"], state["m"], state["v"]
        m.mul_(beta).add_(g, alpha=1 - beta)  # m ← β·m + (1-β)·g  (UDL eq. 6.15)
        v.mul_(gamma).addcmul_(g, g, value=1 - gamma)  # v ← γ·v + (1-γ)·g²
        m_tilde = m / (1 - beta ** (t + 1))  # m̃ = m / (1-β^(t+1))  (UDL eq. 6.16)
        v_tilde = v / (1 - gamma ** (t + 1))  # ṽ = v / (1-γ^(t+1))
        p.sub_(alpha * m_tilde / (v_tilde.sqrt() + eps))  # φ ← φ - α·m̃/(√ṽ + ε)  (UDL eq. 6.17)
        state["t"] = t + 1


def to_torch_sgd(lr: float, beta: float, nesterov: bool = False) -> dict:
    r"""``torch.optim.SGD`` hyper-parameters equivalent to :class:`BookMomentum` (α = ``lr``, β).

    **Momentum.** torch keeps a buffer ``b`` (with ``dampening=0``): ``b₁ = g₀``, then
    ``b_{t+1} = β·b_t + g_t``, and moves ``p ← p - lr·b``. The book's ``m`` (eq. 6.11,
    ``m₀ = 0``) satisfies ``m_t = (1-β)·b_t``: true at t = 1 (``m₁ = (1-β)·g₀``), and both
    recursions multiply by β and add a multiple of g. So ``α·m_t = α(1-β)·b_t``, and

        lr = α·(1-β),   momentum = β,   dampening = 0

    gives the same φ at every step. (torch's ``dampening=β`` is not the same rule: its
    first buffer is ``g₀``, not ``(1-β)·g₀``.)

    **Nesterov.** torch evaluates ``g_t`` at its own parameters ``p_t`` and moves
    ``p_{t+1} = p_t - lr·(g_t + β·b_{t+1}) = p_t - lr(1+β)·g_t - lr·β²·b_t``. The book's
    look-ahead point ``ψ_t = φ_t - α·β·m_t`` (where eq. 6.12 takes the gradient) obeys,
    substituting ``φ_t = ψ_t + αβ·m_t`` and eq. 6.12,

        ψ_{t+1} = φ_{t+1} - αβ·m_{t+1} = φ_t - α(1+β)·m_{t+1}
                = ψ_t - α(1-β²)·g[ψ_t] - α·β²·m_t,

    which is torch's recursion with ``lr = α(1-β)`` and ``m_t = (1-β)·b_t``; and
    ``ψ₀ = φ₀`` since ``m₀ = 0``. So with the same hyper-parameters and
    ``nesterov=True``, **torch's parameters are the book's look-ahead points ψ_t**, and
    the book's parameters are recovered as ``φ_t = p_t + lr·β·b_t`` (b: torch's
    ``momentum_buffer``).

    With β = 0 both rules are plain gradient descent; ``nesterov`` is then returned as
    False because torch refuses Nesterov without momentum.

    Args:
        lr: the book's step α > 0.
        beta: the book's β in [0, 1).
        nesterov: whether the book's rule is Nesterov's. Default: False.

    Returns:
        ``dict(lr=..., momentum=..., dampening=0.0, nesterov=...)`` for ``torch.optim.SGD(params, **...)``.

    Example:
        >>> to_torch_sgd(0.6, 0.6)
        {'lr': 0.24, 'momentum': 0.6, 'dampening': 0.0, 'nesterov': False}
    """
    owner = "to_torch_sgd"
    lr = _check_lr(lr, owner)
    beta = _check_coefficient(beta, "beta", owner)
    nesterov = check_bool(nesterov, "nesterov", owner)
    return dict(lr=lr * (1 - beta), momentum=beta, dampening=0.0, nesterov=nesterov and beta > 0)


def to_torch_adam(lr: float, beta: float = 0.9, gamma: float = 0.999, eps: float = 1e-8) -> dict:
    r"""``torch.optim.Adam`` hyper-parameters equivalent to :class:`BookAdam`.

    torch's Adam at step ``t' = t + 1`` keeps ``exp_avg`` and ``exp_avg_sq`` with the
    recursions of eq. 6.15 (coefficients ``betas = (β1, β2)``) and moves

        p ← p - (lr / (1 - β1^t')) · exp_avg / (√exp_avg_sq / √(1 - β2^t') + eps),

    which is ``p - lr · m̃ / (√ṽ + eps)`` with the book's bias corrections (eq. 6.16,
    ``1 - β^(t+1)``). The two rules coincide term by term:

        lr = α,   betas = (β, γ),   eps = ε

    (no weight decay, ``amsgrad=False``, the defaults).

    Args:
        lr: the book's α > 0.
        beta, gamma: the book's β and γ in [0, 1). Defaults: 0.9, 0.999.
        eps: the book's ε ≥ 0. Default: 1e-8.

    Returns:
        ``dict(lr=..., betas=(β, γ), eps=...)`` for ``torch.optim.Adam(params, **...)``.

    Example:
        >>> to_torch_adam(0.05, 0.9, 0.99)
        {'lr': 0.05, 'betas': (0.9, 0.99), 'eps': 1e-08}
    """
    owner = "to_torch_adam"
    lr = _check_lr(lr, owner)
    beta = _check_coefficient(beta, "beta", owner)
    gamma = _check_coefficient(gamma, "gamma", owner)
    eps = check_float(eps, "eps", owner, low=0)
    return dict(lr=lr, betas=(beta, gamma), eps=eps)
