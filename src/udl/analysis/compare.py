"""Comparing two computations of the same quantity.

udl checks its modules against the book's formulas and against PyTorch's own layers
by computing the same thing two ways and measuring the largest entry-wise gap; a
figure's check then asks that it be 0, or below 1e-12 in float64.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["max_difference"]


def max_difference(a, b) -> float:
    """The largest absolute entry-wise difference, ``max_i |a_i - b_i|``, as a Python float.

    Args:
        a, b: tensors or arrays (or numbers) of the same shape; tensors may need
            gradients (they are detached) and live on any device.

    Returns:
        The largest ``|a - b|``; 0.0 when the arrays are empty, NaN when either holds a NaN.

    Raises:
        ValueError: when the shapes differ (no broadcasting: a silent broadcast would
            compare the wrong entries).

    Example::

        >>> max_difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
        0.5
    """
    a = a.detach().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    b = b.detach().cpu() if isinstance(b, torch.Tensor) else torch.as_tensor(np.asarray(b))
    if a.shape != b.shape:
        raise ValueError(f"The 'b' parameter of max_difference must have the shape of a, {tuple(a.shape)}. "
                         f"Got {tuple(b.shape)} instead.")
    if a.numel() == 0:
        return 0.0
    return (a - b).abs().max().item()
