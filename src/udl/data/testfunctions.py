"""The book's test functions for optimizers (UDL chapter 6, notebooks 6.1 and 6.5).

- :func:`line_search_loss`: a 1D loss on [0, 1], a narrow dip near 0.35 beside a wide
  one near 0.65, on which fig. 6.10 shows bracketing line search.
- :func:`adam_loss`: a 2D loss that is steep in φ1 and flat in φ0, on which fig. 6.9
  compares gradient descent, sign descent and Adam.

Both are torch functions (they work with autograd) and come with their analytic
gradients, which the tests compare with autograd.
"""

from __future__ import annotations

import torch

from udl.validate import is_real

__all__ = ["line_search_loss", "line_search_loss_grad", "LINE_SEARCH_RANGE",
           "adam_loss", "adam_loss_grad", "ADAM_START", "ADAM_MINIMUM"]

LINE_SEARCH_RANGE = (0.0, 1.0)  # the interval searched in notebook 6.1 and fig. 6.10
ADAM_START = (-0.7, -0.9)  # (φ0, φ1) where the paths of fig. 6.9 start
ADAM_MINIMUM = (0.7, 0.0)  # the global minimum of adam_loss, where L = 0


def _as_tensor(phi, name: str, owner: str) -> torch.Tensor:
    if torch.is_tensor(phi):
        return phi
    if not (is_real(phi) or isinstance(phi, (list, tuple))):
        raise TypeError(f"The {name!r} parameter of {owner} must be a tensor or a float. Got {phi!r} instead.")
    return torch.as_tensor(phi, dtype=torch.float64)


def line_search_loss(phi) -> torch.Tensor:
    r"""The 1D test function of the book's line-search notebook (6.1), two Gaussian dips::

        L[φ] = 1 - 0.5·exp(-(φ - 0.65)²/0.1) - 0.45·exp(-(φ - 0.35)²/0.02)

    The two dips overlap: the wide one only leaves a shoulder near 0.6 (the slope
    there falls to about 0.003 but stays positive), so on [0, 1] the function has one
    minimum, at φ ≈ 0.380 with L ≈ 0.329, and bracketing closes on it from [0, 1].

    Args:
        phi: the position(s), a tensor of any shape or a float (then float64).

    Shape:
        output: the shape of ``phi``.

    Example:
        >>> round(line_search_loss(0.65).item(), 3)
        0.495
    """
    phi = _as_tensor(phi, "phi", "line_search_loss")
    return 1 - 0.5 * torch.exp(-(phi - 0.65) ** 2 / 0.1) - 0.45 * torch.exp(-(phi - 0.35) ** 2 / 0.02)


def line_search_loss_grad(phi) -> torch.Tensor:
    """``dL/dφ`` of :func:`line_search_loss`, analytically; same shape as ``phi``."""
    phi = _as_tensor(phi, "phi", "line_search_loss_grad")
    return (0.5 * 2 * (phi - 0.65) / 0.1 * torch.exp(-(phi - 0.65) ** 2 / 0.1)
            + 0.45 * 2 * (phi - 0.35) / 0.02 * torch.exp(-(phi - 0.35) ** 2 / 0.02))


def _split(phi, owner):
    phi = _as_tensor(phi, "phi", owner)
    if phi.ndim == 0 or phi.shape[-1] != 2:
        raise ValueError(f"The 'phi' parameter of {owner} must have a last axis of size 2, (φ0, φ1). "
                         f"Got shape {tuple(phi.shape)} instead.")
    return phi[..., 0], phi[..., 1]


def adam_loss(phi) -> torch.Tensor:
    r"""The 2D test function of the book's Adam notebook (6.5), steep in φ1, flat in φ0::

        L[φ] = 1 - exp(-0.5·4·φ1²) · exp(-0.5·(φ0 - 0.7)²/4)

    a Gaussian dip of standard deviation 0.5 across φ1 and 2 along φ0, with its
    minimum L = 0 at ``ADAM_MINIMUM = (0.7, 0)``.

    Args:
        phi: the parameters (φ0, φ1) on the last axis: shape (..., 2); a list works too.

    Shape:
        output: ``phi.shape[:-1]`` (a grid of shape (H, W, 2) gives (H, W)).

    Example:
        >>> adam_loss(torch.tensor([0.7, 0.0])).item()
        0.0
    """
    phi0, phi1 = _split(phi, "adam_loss")
    return 1 - torch.exp(-0.5 * 4 * phi1 ** 2) * torch.exp(-0.5 * (phi0 - 0.7) ** 2 / 4)


def adam_loss_grad(phi) -> torch.Tensor:
    """The gradient ``(∂L/∂φ0, ∂L/∂φ1)`` of :func:`adam_loss`, analytically; shape (..., 2)."""
    phi0, phi1 = _split(phi, "adam_loss_grad")
    dip = torch.exp(-0.5 * 4 * phi1 ** 2) * torch.exp(-0.5 * (phi0 - 0.7) ** 2 / 4)  # 1 - L
    return torch.stack([dip * (phi0 - 0.7) / 4, dip * 4 * phi1], dim=-1)
