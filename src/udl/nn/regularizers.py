"""Explicit regularization terms added to a loss (UDL §9.1).

The L2 penalty (Tikhonov regularization, ridge regression, weight decay) adds
λ Σ_j φ_j² to the loss (UDL eq. 9.5)::

    φ̂ = argmin_φ [ L[φ] + λ Σ_j φ_j² ]

It favours small parameters, hence smoother functions (fig. 9.2). For plain SGD,
adding ``l2_penalty(model, λ/2)`` to the loss gives exactly the update of
``torch.optim.SGD(..., weight_decay=λ)``: the penalty's gradient λφ is what weight
decay adds to the gradient (UDL eq. 9.6 and §9.3.7).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from udl.validate import check_float

__all__ = ["l2_penalty"]


def l2_penalty(params: nn.Module | Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    """The L2 penalty ``λ Σ_j φ_j²`` over all given parameters (UDL eq. 9.5).

    A differentiable scalar to add to any loss: ``loss = data_loss + l2_penalty(model, λ)``.
    Its gradient is 2λφ, so for SGD ``l2_penalty(model, λ/2)`` is equivalent to
    ``weight_decay=λ``.

    Args:
        params: an ``nn.Module`` (all its parameters are penalised, biases included,
            as in eq. 9.5) or an iterable of tensors (to penalise only some).
        lam: the regularisation weight λ ≥ 0.

    Returns:
        A 0-dim tensor on the parameters' device and dtype (0 for an empty set).

    Example::

        >>> layer = nn.Linear(2, 1)
        >>> with torch.no_grad(): _ = layer.weight.fill_(1.0); _ = layer.bias.fill_(2.0)
        >>> l2_penalty(layer, 0.5).item()          # 0.5·(1 + 1 + 4)
        3.0
    """
    lam = check_float(lam, "lam", "l2_penalty", low=0)
    if isinstance(params, nn.Module):
        tensors = list(params.parameters())
    elif isinstance(params, torch.Tensor):
        tensors = [params]
    else:
        try:
            tensors = list(params)
        except TypeError:
            raise TypeError(f"The 'params' parameter of l2_penalty must be an nn.Module or an iterable of tensors. "
                            f"Got {params!r} instead.") from None
        if not all(isinstance(t, torch.Tensor) for t in tensors):
            raise TypeError(f"The 'params' parameter of l2_penalty must be an nn.Module or an iterable of tensors. "
                            f"Got {params!r} instead.")
    if not tensors:
        return torch.zeros(())
    return lam * sum(t.pow(2).sum() for t in tensors)  # λ Σ_j φ_j²
