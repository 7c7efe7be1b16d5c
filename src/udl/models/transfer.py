"""Transfer learning with fully connected networks (UDL §9.3.6, fig. 9.12).

Train a network on a secondary task with plenty of labels, remove its final layer
and replace it by a fresh one sized for the primary task, then train on the few
primary labels (only the new layer, or the whole network: fine-tuning). The hidden
layers carry over an internal representation learnt from the secondary task.

Example::

    >>> from udl.nn.deep import DeepNetwork
    >>> source = DeepNetwork([64, 32, 16, 5])               # trained on the secondary task
    >>> target = replace_head(source, 3)                     # same hidden layers, new 16 -> 3 output
    >>> target.widths
    (64, 32, 16, 3)
"""

from __future__ import annotations

import torch

from udl.validate import as_generator, check_int

__all__ = ["replace_head"]


def replace_head(net, d_out: int, *, generator: torch.Generator | int | None = None):
    """A copy of ``net`` whose final layer is replaced by a freshly initialised one with ``d_out`` outputs.

    Every hidden layer (Ω_0, β_0, ..., Ω_{K-1}, β_{K-1}) is copied; the output layer
    (Ω_K, β_K) is drawn anew from U(-1/√D_K, 1/√D_K), PyTorch's default. ``net`` is not
    changed.

    Args:
        net: a :class:`udl.nn.deep.DeepNetwork` with at least one hidden layer.
        d_out: outputs of the new final layer (the primary task's D_o).
        generator: draws the new layer: a ``torch.Generator`` or an int seed; None uses
            torch's global generator.

    Returns:
        A new ``DeepNetwork`` with widths ``[D_i, D_1, ..., D_K, d_out]`` on the device
        and dtype of ``net``.

    Shape:
        x: (..., D_i) -> (..., d_out).
    """
    from udl.nn.deep import DeepNetwork

    owner = "replace_head"
    if not isinstance(net, DeepNetwork):
        raise TypeError(f"The 'net' parameter of {owner} must be a DeepNetwork. Got {type(net).__name__} instead.")
    if net.depth < 1:
        raise ValueError(f"The 'net' parameter of {owner} must have at least one hidden layer. "
                         f"Got widths {list(net.widths)} instead.")
    check_int(d_out, "d_out", owner)
    generator = as_generator(generator, owner)
    weight = net.omegas[0]
    new = DeepNetwork([*net.widths[:-1], d_out], generator=generator).to(weight.device, weight.dtype)
    with torch.no_grad():
        for old_layer, new_layer in zip(net.layers[:-1], new.layers[:-1]):  # the hidden layers carry over
            new_layer.weight.copy_(old_layer.weight)
            new_layer.bias.copy_(old_layer.bias)
    return new
