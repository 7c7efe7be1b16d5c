"""The path an optimizer takes on a loss function of a few parameters (for figs. 6.x)."""

from __future__ import annotations

from typing import Callable

import torch

from udl.validate import check_int

__all__ = ["descent_path"]


def descent_path(loss_fn: Callable[[torch.Tensor], torch.Tensor], start, optimizer: Callable, steps: int) -> torch.Tensor:
    """Run ``steps`` optimizer steps on ``loss_fn`` from ``start`` and return every point visited.

    ``φ`` is one float64 tensor; every step calls ``optimizer.step(closure)`` with a
    closure that zeroes the gradient, evaluates ``loss_fn(φ)``, backpropagates and
    returns the loss, so optimizers that need a closure (:class:`LineSearchGD`,
    Nesterov :class:`BookMomentum`, ``torch.optim.LBFGS``) work as well as the others.

    Args:
        loss_fn: the loss of the parameters, ``φ (D,) -> scalar tensor``.
        start: the initial parameters φ₀ (a sequence of D floats or a tensor).
        optimizer: a factory ``params -> torch.optim.Optimizer``, e.g.
            ``lambda p: torch.optim.SGD(p, lr=0.1)``.
        steps: the number of steps (≥ 0).

    Shape:
        output: (steps + 1, D), float64; row 0 is ``start``.

    Example:
        >>> path = descent_path(lambda phi: (phi ** 2).sum(), [1.0, -2.0], lambda p: torch.optim.SGD(p, lr=0.25), 2)
        >>> path.tolist()
        [[1.0, -2.0], [0.5, -1.0], [0.25, -0.5]]
    """
    owner = "descent_path"
    if not callable(loss_fn):
        raise TypeError(f"The 'loss_fn' parameter of {owner} must be a callable. Got {loss_fn!r} instead.")
    if not callable(optimizer):
        raise TypeError(f"The 'optimizer' parameter of {owner} must be a callable params -> Optimizer. "
                        f"Got {optimizer!r} instead.")
    steps = check_int(steps, "steps", owner, minimum=0)
    phi = torch.as_tensor(start, dtype=torch.float64).detach().clone().requires_grad_(True)
    if phi.ndim != 1:
        raise ValueError(f"The 'start' parameter of {owner} must be a vector of D parameters. "
                         f"Got shape {tuple(phi.shape)} instead.")
    opt = optimizer([phi])

    def closure():
        opt.zero_grad()
        loss = loss_fn(phi)
        loss.backward()
        return loss

    path = [phi.detach().clone()]
    for _ in range(steps):
        opt.step(closure)
        path.append(phi.detach().clone())
    return torch.stack(path)  # (steps + 1, D)
