"""Normalised (sign) gradient descent (UDL §6.4, eqs. 6.13-6.14, fig. 6.9c).

Dividing each gradient component by its own magnitude moves every parameter by the
same distance α per step, downhill along each axis: a fixed step in the steep and the
flat direction alike. It is the first half of the idea behind Adam; without Adam's
averaging it does not settle at the minimum but ends oscillating around it.
"""

from __future__ import annotations

import torch

from udl.optim.elementwise import ElementwiseOptimizer
from udl.validate import check_float

__all__ = ["SignGD"]


class SignGD(ElementwiseOptimizer):
    r"""Normalised gradient descent, which is sign descent up to ``ε`` (UDL eqs. 6.13-6.14).

    With ``g = ∂L/∂φ`` at the current parameters, element-wise::

        m ← g                          (UDL eq. 6.13)
        v ← g²
        φ ← φ - α · m / (√v + ε)       (UDL eq. 6.14)

    ``m / (√v + ε) = g / (|g| + ε)`` is ``sign(g)`` up to ``ε``, so each parameter
    moves by (just under) α. With ``eps=0`` the step is exactly ``α·sign(g)`` and a
    zero gradient component does not move.

    Args:
        params: the parameters (iterable of tensors or parameter groups).
        lr: the step α > 0.
        eps: ε ≥ 0, which keeps tiny gradients from taking full steps. Default: 1e-8.

    Example:
        >>> phi = torch.tensor([3.0, -0.25], requires_grad=True)
        >>> opt = SignGD([phi], lr=0.5, eps=0.0)
        >>> (phi ** 2).sum().backward(); opt.step()
        >>> phi.detach().tolist()
        [2.5, 0.25]
    """

    def __init__(self, params, lr: float, eps: float = 1e-8):
        lr = check_float(lr, "lr", "SignGD", low=0, low_open=True)
        eps = check_float(eps, "eps", "SignGD", low=0)
        super().__init__(params, dict(lr=lr, eps=eps))

    def update(self, p: torch.Tensor, g: torch.Tensor, group: dict) -> None:
        """φ ← φ - α·g/(|g| + ε)."""
        alpha, eps = group["lr"], group["eps"]
        # g / (√(g²) + ε)  (UDL eqs. 6.13-6.14); sign(g) exactly when ε = 0 (0 for g = 0)
        direction = torch.sign(g) if eps == 0 else g / (g.abs() + eps)
        p.sub_(alpha * direction)
