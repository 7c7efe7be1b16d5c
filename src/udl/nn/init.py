"""Weight initialisation (UDL §7.5).

He initialisation draws every weight of a layer that feeds a ReLU from a normal
distribution with variance σ² = 2 / D_h, D_h being the layer's fan-in (the inputs each
output sums over: C_in · kernel size for a convolution), and sets the biases to zero::

    ω ~ N(0, 2 / D_h),    β = 0

so that the mean square of the pre-activations is the same in every layer of a deep
ReLU network (§7.5.1): the ReLU halves it and the factor 2 restores it.
"""

from __future__ import annotations

import torch
from torch import nn

from udl.validate import as_generator

__all__ = ["he_init"]

_HE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def he_init(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """He-initialise, in place, every convolution and linear layer in ``module``.

    Weights ~ N(0, 2 / fan-in) (UDL §7.5), biases 0. Layers on the meta device have
    no values and are skipped; other layers (batch norm, ...) keep their own values.

    Args:
        module: the layer or network; ``module.modules()`` is visited, so ``module``
            itself is initialised when it is a convolution or a linear layer.
        generator: the random numbers of the weights. Default: torch's global one.

    Example::

        >>> layer = nn.Linear(512, 512)
        >>> he_init(layer, torch.Generator().manual_seed(0))
        >>> round(layer.weight.var().item() * 512 / 2, 1), layer.bias.abs().max().item()
        (1.0, 0.0)
    """
    generator = as_generator(generator, "he_init")
    for m in module.modules():
        if isinstance(m, _HE_LAYERS) and not m.weight.is_meta:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)  # σ² = 2 / fan-in
            if m.bias is not None:
                nn.init.zeros_(m.bias)
