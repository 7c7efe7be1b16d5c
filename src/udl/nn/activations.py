"""Activation functions as the book defines them (UDL §3.1, §5.4).

Written from their formulas so a reader can see each one; tested equal to
``torch.relu`` and ``torch.sigmoid``. Models use torch's own kernels.
"""

from __future__ import annotations

import torch


def relu(z: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit, ``a[z] = max(0, z)`` (UDL eq. 3.2, fig. 3.1).

    Shape: any; the output has the shape of ``z``.
    """
    return torch.where(z > 0, z, torch.zeros_like(z))


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid, ``sig[z] = 1 / (1 + exp(-z))`` (UDL eq. 5.18, fig. 5.7).

    Computed as ``exp(min(z, 0)) / (1 + exp(-|z|))`` so that neither branch overflows
    for large ``|z|``.

    Shape: any; the output has the shape of ``z``.
    """
    e = torch.exp(-torch.where(z >= 0, z, -z))  # exp(-|z|) in (0, 1]; this form keeps d|z|/dz = 1 at z = 0
    return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))
