"""Receptive fields (UDL §10.2.4, fig. 10.6): measured by gradients and computed from the layers.

The receptive field of a hidden unit is the region of the input that feeds into it.
Two ways to find it, which must agree:

- **Measured** (:func:`gradient_support`), for any differentiable model: the input
  positions where ∂y/∂x is non-zero for the chosen output unit y. One backward pass
  over a batch of random probe inputs; the union over probes removes the accidental
  zeros that a ReLU (or a max pool) causes for any single input.
- **Analytic** (:func:`receptive_field_sizes`, :func:`receptive_field_interval`),
  for a chain of convolutions and poolings, from kernel sizes k_l, strides s_l,
  dilations d_l and paddings p_l alone::

      r_0 = 1,   r_l = r_{l-1} + (k_l - 1) · d_l · Π_{m<l} s_m

  A step of one position in layer l-1 is Π_{m<l} s_m input positions (the "jump"),
  and a kernel reaches (k_l - 1)·d_l such steps further. For the book's network
  (kernel 3; the third layer with stride 2) this gives 3, 5, 7 and 11.

Near the borders part of the field falls on the zero padding; the measured support
is then the analytic interval clipped to the input. With dilation the support can
have holes (one dilated layer of kernel 3 and dilation 2 touches 3 of the 5 inputs
it spans); :func:`support_interval` gives the bounding interval, which is what the
formula describes.

Example::

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv1d(3, 4, 3, padding=1))
    >>> receptive_field_sizes(layer_geometry(net))
    [3, 5]
    >>> mask = gradient_support(net, (1, 11), unit=(0, 5))      # channel 0, position 5
    >>> mask.nonzero().flatten().tolist()
    [3, 4, 5, 6, 7]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from udl.validate import as_generator, check_int, is_int

__all__ = ["LayerGeometry", "layer_geometry", "receptive_field_sizes", "receptive_field_interval",
           "input_sensitivity", "gradient_support", "support_interval"]


@dataclass(frozen=True)
class LayerGeometry:
    """How one convolution or pooling layer maps positions along one spatial axis.

    Output position i reads inputs s·i - p + d·j, j = 0..k-1 (UDL eq. 10.3 with
    stride and dilation; padded positions fall outside the input).
    """

    kernel_size: int  # k
    stride: int = 1  # s
    padding: int = 0  # p: zeros added before the first input
    dilation: int = 1  # d

    def __post_init__(self):
        owner = "LayerGeometry"
        check_int(self.kernel_size, "kernel_size", owner)
        check_int(self.stride, "stride", owner)
        check_int(self.padding, "padding", owner, minimum=0)
        check_int(self.dilation, "dilation", owner)


# --------------------------------------------------------------------------- reading a model
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
# position-wise modules: they change values, never which positions a unit sees
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus,
              nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _spatial_axes(module: nn.Module) -> int:
    if isinstance(module, (nn.MaxPool1d, nn.AvgPool1d)):
        return 1
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return 2
    if isinstance(module, (nn.MaxPool3d, nn.AvgPool3d)):
        return 3
    return len(module.kernel_size)  # convolutions store a tuple per spatial axis


def _on_axis(value, axis: int) -> int:
    return int(value[axis]) if isinstance(value, (tuple, list)) else int(value)


def _geometry_of(module: nn.Module, axis: int) -> LayerGeometry:
    k = _on_axis(module.kernel_size, axis)
    s = _on_axis(module.stride if module.stride is not None else module.kernel_size, axis)
    d = _on_axis(getattr(module, "dilation", 1), axis)
    padding = module.padding
    if padding == "valid":
        p = 0
    elif padding == "same":
        p = d * (k - 1) // 2  # the smaller half goes before the input (as PyTorch)
    else:
        p = _on_axis(padding, axis)
    return LayerGeometry(k, s, p, d)


def layer_geometry(model: nn.Module, axis: int = 0) -> list[LayerGeometry]:
    """The convolution and pooling layers of a chain-shaped model, in order, along one axis.

    Reads ``torch.nn`` convolutions and poolings and udl's :class:`udl.nn.conv.Conv1d`
    / ``Conv2d``; position-wise modules (activations, batch norm, dropout) are skipped.
    The model must apply its layers in registration order (an ``nn.Sequential`` or
    the like); a module whose geometry is unknown (a linear layer, an upsampling,
    a residual block) raises a ValueError, because the formula does not cover it.

    Args:
        model: the network.
        axis: the spatial axis (0 for 1D inputs and image rows, 1 for image columns).

    Returns:
        One :class:`LayerGeometry` per convolution or pooling.

    Example::

        >>> conv, pool = layer_geometry(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        ...                                           nn.MaxPool2d(2)))
        >>> conv
        LayerGeometry(kernel_size=3, stride=2, padding=1, dilation=1)
        >>> pool
        LayerGeometry(kernel_size=2, stride=2, padding=0, dilation=1)
    """
    from udl.nn.conv import Conv1d, Conv2d
    from udl.nn.dropout import Dropout

    owner = "layer_geometry"
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' parameter of {owner} must be a torch.nn.Module. Got {model!r} instead.")
    axis = check_int(axis, "axis", owner, minimum=0)
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, _CONV + _POOL + (Conv1d, Conv2d)):
            spatial = _spatial_axes(module)
            if axis >= spatial:
                raise ValueError(f"The 'axis' parameter of {owner} must be below the {spatial} spatial axes of "
                                 f"layer {name!r}. Got {axis} instead.")
            layers.append(_geometry_of(module, axis))
        elif isinstance(module, _POINTWISE + (Dropout,)) or list(module.children()):
            continue  # position-wise, or a container whose leaves are visited in turn
        else:
            raise ValueError(f"The 'model' parameter of {owner} must chain convolutions, poolings and "
                             f"position-wise layers only. Got {type(module).__name__} (layer {name!r}) instead.")
    return layers


def _check_layers(layers, owner: str) -> list[LayerGeometry]:
    if not isinstance(layers, (list, tuple)) or not all(isinstance(g, LayerGeometry) for g in layers):
        raise TypeError(f"The 'layers' parameter of {owner} must be a list of LayerGeometry. Got {layers!r} instead.")
    return list(layers)


# --------------------------------------------------------------------------- analytic
def receptive_field_sizes(layers: Sequence[LayerGeometry]) -> list[int]:
    """Receptive-field size of a unit in each layer: r_l = r_{l-1} + (k_l - 1)·d_l·Π_{m<l} s_m.

    Args:
        layers: the chain's layers along one axis (:func:`layer_geometry`).

    Returns:
        [r_1, ..., r_L]: the number of input positions each layer's units span
        (ignoring the borders, where part of the span is padding).

    Example::

        >>> receptive_field_sizes([LayerGeometry(3, padding=1), LayerGeometry(3, padding=1),
        ...                        LayerGeometry(3, stride=2), LayerGeometry(3, padding=1)])  # fig. 10.6
        [3, 5, 7, 11]
    """
    layers = _check_layers(layers, "receptive_field_sizes")
    r, jump, sizes = 1, 1, []
    for g in layers:
        r = r + (g.kernel_size - 1) * g.dilation * jump  # the kernel reaches (k-1)·d steps of `jump` inputs
        jump = jump * g.stride  # one step in this layer's output = Π s_m input positions
        sizes.append(r)
    return sizes


def receptive_field_interval(layers: Sequence[LayerGeometry], index: int | Sequence[int]) -> tuple[int, int]:
    """The input positions [lo, hi] that unit ``index`` of the last layer spans (not clipped).

    Walks back through the layers: unit i of a layer reads positions
    s·i - p .. s·i - p + d·(k - 1) of the layer below.

    Args:
        layers: the chain's layers along one axis.
        index: the unit's position in the last layer (an int, 0-based).

    Returns:
        (lo, hi), inclusive; hi - lo + 1 equals the last entry of
        :func:`receptive_field_sizes`. Positions below 0 or past the input's end
        are padding.

    Example::

        >>> receptive_field_interval([LayerGeometry(3, padding=1), LayerGeometry(3, stride=2)], 2)
        (3, 7)
    """
    owner = "receptive_field_interval"
    layers = _check_layers(layers, owner)
    lo = hi = check_int(index, "index", owner, minimum=0)
    for g in reversed(layers):
        lo = g.stride * lo - g.padding
        hi = g.stride * hi - g.padding + g.dilation * (g.kernel_size - 1)
    return lo, hi


# --------------------------------------------------------------------------- measured
def input_sensitivity(model: nn.Module, input_shape: Sequence[int], unit: Sequence[int], *,
                      n_probes: int = 16, generator: torch.Generator | int = 0) -> torch.Tensor:
    """Mean |∂y/∂x| of one output unit y over random probe inputs, per input position.

    The model is run in evaluation mode (restored afterwards) on ``n_probes`` inputs
    x ~ N(0, 1) drawn from ``generator``; the gradient of ``y = model(x)[b][unit]`` for
    each probe b is taken in one backward pass (the probes do not interact in
    evaluation mode), and |gradient| is averaged over probes and input channels.

    Args:
        model: any differentiable network taking (N, *input_shape).
        input_shape: one input without the batch axis: (C, L) or (C, H, W).
        unit: the output unit's index within one example's output, e.g.
            (channel, position) or (channel, row, column); negative indices count
            from the end as usual.
        n_probes: the number of random inputs (default 16).
        generator: what draws the probes, a ``torch.Generator`` (its stream continues)
            or an int seed (default 0); torch's global generator is never used.

    Shape:
        -> input_shape[1:] (the spatial shape), float, non-negative.

    Example::

        >>> net = nn.Conv1d(2, 1, 3, padding=1)
        >>> (input_sensitivity(net, (2, 6), (0, 0)) > 0).tolist()  # the first output sees x_0, x_1 only
        [True, True, False, False, False, False]
    """
    owner = "input_sensitivity"
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' parameter of {owner} must be a torch.nn.Module. Got {model!r} instead.")
    if not isinstance(input_shape, (tuple, list, torch.Size)) or len(input_shape) < 2 or \
            any(not is_int(v) or v < 1 for v in input_shape):
        raise ValueError(f"The 'input_shape' parameter of {owner} must be (C, L) or (C, H, W) with positive ints. "
                         f"Got {input_shape!r} instead.")
    if not isinstance(unit, (tuple, list)) or any(not is_int(v) for v in unit):
        raise TypeError(f"The 'unit' parameter of {owner} must be a tuple of ints. Got {unit!r} instead.")
    n_probes = check_int(n_probes, "n_probes", owner)
    generator = as_generator(generator, owner, optional=False)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn(n_probes, *input_shape, generator=generator, dtype=dtype, device=generator.device)
    x = x.to(device).requires_grad_(True)
    was_training = model.training
    model.eval()  # batch statistics would let the probes see each other
    try:
        y = model(x)  # (n_probes, *output_shape)
        out_shape = tuple(y.shape[1:])
        if len(unit) != len(out_shape) or any(not -n <= u < n for u, n in zip(unit, out_shape)):
            raise ValueError(f"The 'unit' parameter of {owner} must index one unit of the output of shape "
                             f"{out_shape}. Got {tuple(unit)!r} instead.")
        (grad,) = torch.autograd.grad(y[(slice(None), *unit)].sum(), x)  # row b: ∂y_b/∂x_b
    finally:
        model.train(was_training)
    return grad.abs().mean(dim=(0, 1)).detach()  # mean over probes and input channels: (*spatial)


def gradient_support(model: nn.Module, input_shape: Sequence[int], unit: Sequence[int], *,
                     n_probes: int = 16, generator: torch.Generator | int = 0) -> torch.Tensor:
    """The measured receptive field: input positions where ∂y/∂x ≠ 0 for some probe.

    Args and shape as :func:`input_sensitivity`; returns a bool tensor of the
    input's spatial shape.

    Example::

        >>> net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Conv1d(2, 1, 3, dilation=2))
        >>> gradient_support(net, (1, 9), (0, 0)).nonzero().flatten().tolist()
        [0, 1, 2, 3, 4, 5, 6]
    """
    return input_sensitivity(model, input_shape, unit, n_probes=n_probes, generator=generator) > 0


def support_interval(mask: torch.Tensor) -> list[tuple[int, int]]:
    """The bounding interval [lo, hi] of the True positions along each axis of ``mask``.

    Args:
        mask: a bool tensor (a measured receptive field), at least one True.

    Returns:
        [(lo, hi)] per axis, inclusive; the extent is hi - lo + 1.

    Example::

        >>> support_interval(torch.tensor([False, True, False, True]))
        [(1, 3)]
    """
    owner = "support_interval"
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() == 0:
        raise TypeError(f"The 'mask' parameter of {owner} must be a bool tensor with at least one axis. "
                        f"Got {type(mask).__name__} instead.")
    if not bool(mask.any()):
        raise ValueError(f"The 'mask' parameter of {owner} must have at least one True entry. "
                         f"Got an empty support instead.")
    where = mask.nonzero()  # (count, ndim)
    return [(int(where[:, a].min()), int(where[:, a].max())) for a in range(mask.dim())]
