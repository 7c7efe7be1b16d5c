"""Residual connections and ResNet blocks (UDL §11.2, §11.4, §11.5.1, figs. 11.6-11.7).

A residual (skip) connection adds a block's input back to its output::

    h_k = h_{k-1} + f_k[h_{k-1}, φ_k]                                    (eq. 11.4)

so the network is a sum of paths of every length and the gradient reaches early
layers through the identity. Adding the input back doubles the activations' variance
at every block when f_k is a He-initialised layer (fig. 11.6a); two remedies are
scaling the sum by 1/√2 (fig. 11.6b) or normalising the block's input with batch
norm (fig. 11.6c), which makes the variance grow only linearly.

- :class:`Residual` wraps any module f as ``scale · (x + f(x))`` (or ``scale · f(x)``
  with ``skip=False``, the same network without its skip connection).
- :class:`ResidualBlock` is ResNet's standard block, pre-activation order as in the
  book's fig. 11.7a: BN → ReLU → 3×3 conv → BN → ReLU → 3×3 conv, added to the input.
- :class:`BottleneckBlock` is fig. 11.7b: BN → ReLU → 1×1 conv (reduce the channels)
  → BN → ReLU → 3×3 conv → BN → ReLU → 1×1 conv (expand again). When the block
  changes the resolution or the number of channels, the skip path is a strided 1×1
  convolution (a "projection") so that the two can be added.

Blocks work on 1D, 2D or 3D signals (``dims``) and use torch's convolution and batch
norm layers; the book's normalisations written from their definitions live in
:mod:`udl.nn.normalization` and are tested equal to torch's.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from udl.validate import check_choice, check_float, check_int

__all__ = ["Residual", "ResidualBlock", "BottleneckBlock", "conv_layer", "batch_norm_layer", "count_parameters", "INV_SQRT2"]

INV_SQRT2 = 1.0 / math.sqrt(2.0)  # the rescaling of fig. 11.6b

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def conv_layer(dims: int, c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int | None = None,
               bias: bool = False) -> nn.Module:
    """A ``dims``-dimensional convolution; ``padding=None`` keeps the size ("same", odd kernels)."""
    check_choice(dims, "dims", "conv_layer", (1, 2, 3))
    padding = kernel // 2 if padding is None else padding
    return _CONV[dims](c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)


def batch_norm_layer(dims: int, channels: int) -> nn.Module:
    """Batch norm over ``channels`` for a ``dims``-dimensional signal (offset δ = 0, scale γ = 1 at start)."""
    check_choice(dims, "dims", "batch_norm_layer", (1, 2, 3))
    return _BN[dims](channels)


def _he_init(module: nn.Module) -> None:
    """He initialisation (§7.5) of every convolution and linear layer; zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Residual(nn.Module):
    """``scale · (x + f(x))``: a residual connection around any module (eq. 11.4).

    Args:
        f: the residual branch; its output must have the input's shape.
        scale: multiplies the sum; 1/√2 keeps the variance constant when f preserves
            it and is uncorrelated with x (fig. 11.6b). Default 1.
        skip: False drops the identity path, giving ``scale · f(x)``: the same
            parameters as a plain network (for comparisons such as fig. 11.13).

    Shape:
        any ``(N, ...)`` accepted by f -> the same shape.

    Example::

        >>> block = Residual(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), scale=INV_SQRT2)
        >>> block(torch.zeros(2, 8)).shape
        torch.Size([2, 8])
    """

    def __init__(self, f: nn.Module, *, scale: float = 1.0, skip: bool = True):
        super().__init__()
        if not isinstance(f, nn.Module):
            raise TypeError(f"The 'f' parameter of Residual must be a torch.nn.Module. Got {type(f).__name__} instead.")
        self.f = f
        self.scale = check_float(scale, "scale", "Residual", low=0.0, low_open=True)
        if not isinstance(skip, bool):
            raise TypeError(f"The 'skip' parameter of Residual must be a bool. Got {skip!r} instead.")
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.f(x)
        if self.skip:
            if out.shape != x.shape:
                raise ValueError(f"Residual: the branch changed the shape {tuple(x.shape)} -> {tuple(out.shape)}; "
                                 "a skip connection needs equal shapes.")
            out = x + out
        return out * self.scale if self.scale != 1.0 else out

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, skip={self.skip}"


def _check_norm(norm, owner: str) -> bool:
    if not isinstance(norm, bool):
        raise TypeError(f"The 'norm' parameter of {owner} must be a bool. Got {norm!r} instead.")
    return norm


def _pre_activation(dims: int, c_in: int, c_out: int, kernel: int, stride: int, norm: bool) -> list[nn.Module]:
    """[BN] → ReLU → convolution: one unit of the book's pre-activation ordering."""
    layers = [batch_norm_layer(dims, c_in)] if norm else []
    return layers + [nn.ReLU(), conv_layer(dims, c_in, c_out, kernel, stride=stride, bias=not norm)]


class ResidualBlock(nn.Module):
    """ResNet's standard block (fig. 11.7a): ``x + conv(ReLU(BN(conv(ReLU(BN(x))))))``.

    Both convolutions are 3×3 (kernel ``kernel``) with zero padding that keeps the
    size, so the block maps C channels to C channels at the same resolution.

    Args:
        channels: C, the channels in and out.
        kernel: the odd kernel size. Default 3.
        dims: 1, 2 or 3 (signals, images, volumes). Default 2.
        norm: batch norm before each ReLU (True, the book's block) or none.
        scale: multiplies the output (1/√2 for fig. 11.6b). Default 1.
        skip: False removes the identity path (a plain two-layer block).

    Shape:
        ``(N, C, *spatial)`` -> ``(N, C, *spatial)``.

    Example::

        >>> ResidualBlock(16)(torch.zeros(2, 16, 8, 8)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(self, channels: int, *, kernel: int = 3, dims: int = 2, norm: bool = True, scale: float = 1.0,
                 skip: bool = True):
        super().__init__()
        owner = "ResidualBlock"
        channels = check_int(channels, "channels", owner)
        kernel = check_int(kernel, "kernel", owner)
        if kernel % 2 == 0:
            raise ValueError(f"The 'kernel' parameter of {owner} must be an odd int. Got {kernel} instead.")
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        norm = _check_norm(norm, owner)
        self.residual = Residual(nn.Sequential(*_pre_activation(dims, channels, channels, kernel, 1, norm),
                                               *_pre_activation(dims, channels, channels, kernel, 1, norm)),
                                 scale=scale, skip=skip)
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x)


class BottleneckBlock(nn.Module):
    """ResNet's bottleneck block (fig. 11.7b), pre-activation order.

    The branch is BN → ReLU → 1×1 conv (C_in → B) → BN → ReLU → 3×3 conv (B → B,
    stride s) → BN → ReLU → 1×1 conv (B → C_out). It integrates over a 3×3 region
    like the standard block but with 2·C·B + 9·B² weights instead of 18·C² (for
    C_in = C_out = C). When ``stride > 1`` or ``C_in != C_out`` the skip path is a
    strided 1×1 convolution (projection shortcut, He et al. 2016).

    Args:
        in_channels: C_in.
        bottleneck_channels: B, the channels after the first 1×1 convolution.
        out_channels: C_out. Default ``4 · B`` (ResNet's expansion).
        stride: the 3×3 convolution's stride (2 halves the resolution). Default 1.
        dims: 1, 2 or 3. Default 2.
        norm: batch norm before each ReLU (default) or none.
        skip: False removes the skip path (a plain three-layer block).

    Shape:
        ``(N, C_in, *spatial)`` -> ``(N, C_out, *⌈spatial / stride⌉)``.

    Example::

        >>> BottleneckBlock(256, 64)(torch.zeros(1, 256, 14, 14)).shape
        torch.Size([1, 256, 14, 14])
    """

    def __init__(self, in_channels: int, bottleneck_channels: int, out_channels: int | None = None, *,
                 stride: int = 1, dims: int = 2, norm: bool = True, skip: bool = True):
        super().__init__()
        owner = "BottleneckBlock"
        c_in = check_int(in_channels, "in_channels", owner)
        b = check_int(bottleneck_channels, "bottleneck_channels", owner)
        c_out = 4 * b if out_channels is None else check_int(out_channels, "out_channels", owner)
        stride = check_int(stride, "stride", owner)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        norm = _check_norm(norm, owner)
        if not isinstance(skip, bool):
            raise TypeError(f"The 'skip' parameter of {owner} must be a bool. Got {skip!r} instead.")
        self.in_channels, self.bottleneck_channels, self.out_channels, self.stride = c_in, b, c_out, stride
        self.skip = skip
        self.branch = nn.Sequential(*_pre_activation(dims, c_in, b, 1, 1, norm),
                                    *_pre_activation(dims, b, b, 3, stride, norm),
                                    *_pre_activation(dims, b, c_out, 1, 1, norm))
        needs_projection = skip and (stride != 1 or c_in != c_out)
        self.shortcut = conv_layer(dims, c_in, c_out, 1, stride=stride, padding=0) if needs_projection else None
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if not self.skip:
            return out
        return out + (x if self.shortcut is None else self.shortcut(x))


def count_parameters(module: nn.Module) -> int:
    """The number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
