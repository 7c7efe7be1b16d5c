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
  → BN → ReLU → 3×3 conv → BN → ReLU → 1×1 conv (expand again).
- When a block changes the resolution or the number of channels, its skip path is a
  strided 1×1 convolution (a "projection") so that the two can be added. In He et
  al.'s pre-activation ResNet (2016b, timm's ``resnetv2``) the projection reads the
  block's input after its first BN → ReLU (``preactivated_shortcut=True``); the
  default reads the raw input (Newell et al.'s hourglass module does).
- ``preact=False`` gives the original post-activation blocks (He et al., 2015;
  torchvision's ``resnet50``): conv → BN → ReLU → ... → conv → BN, the skip path
  added (a projection is a 1×1 conv → BN), then one ReLU after the sum.
- :func:`variance_network` and :func:`mean_squares` build and measure the fully
  connected stacks of fig. 11.6 (plain, residual, residual scaled by 1/√2, residual
  with batch norm first).

Blocks work on 1D, 2D or 3D signals (``dims``) and use torch's convolution and batch
norm layers; the book's normalisations written from their definitions live in
:mod:`udl.nn.normalization` and are tested equal to torch's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from udl.nn.conv import conv_layer
from udl.nn.init import he_init, initialised_from, reset_norms
from udl.nn.normalization import batch_norm_layer
from udl.validate import as_generator, check_bool, check_choice, check_float, check_instance, check_int, check_tensor

__all__ = ["Residual", "ResidualBlock", "BottleneckBlock", "count_parameters", "INV_SQRT2", "VARIANCE_KINDS",
           "variance_network", "mean_squares"]

INV_SQRT2 = 1.0 / math.sqrt(2.0)  # the rescaling of fig. 11.6b


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
        self.f = check_instance(f, "f", "Residual", nn.Module)
        self.scale = check_float(scale, "scale", "Residual", low=0.0, low_open=True)
        self.skip = check_bool(skip, "skip", "Residual")

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


def _pre_activation(dims: int, c_in: int, c_out: int, kernel: int, stride: int, norm: bool) -> list[nn.Module]:
    """[BN] → ReLU → convolution: one unit of the book's pre-activation ordering."""
    layers = [batch_norm_layer(dims, c_in)] if norm else []
    return layers + [nn.ReLU(), conv_layer(dims, c_in, c_out, kernel, stride=stride, bias=not norm)]


def _post_activation(dims: int, c_in: int, c_out: int, kernel: int, stride: int, norm: bool,
                     relu: bool = True) -> list[nn.Module]:
    """Convolution → [BN] → [ReLU]: one unit of the original (post-activation) ResNet."""
    layers = [conv_layer(dims, c_in, c_out, kernel, stride=stride, bias=not norm)]
    layers += [batch_norm_layer(dims, c_out)] if norm else []
    return layers + ([nn.ReLU()] if relu else [])


def _branch(units: list[tuple[int, int, int, int]], dims: int, norm: bool, preact: bool) -> nn.Sequential:
    """The block's branch from its convolutions ``(c_in, c_out, kernel, stride)``, in either order."""
    if preact:
        return nn.Sequential(*(m for unit in units for m in _pre_activation(dims, *unit, norm)))
    last = len(units) - 1  # the last convolution's output is added to the skip path before the ReLU
    return nn.Sequential(*(m for i, unit in enumerate(units) for m in _post_activation(dims, *unit, norm, i < last)))


class _Block(nn.Module):
    """``scale · (branch(x) + shortcut(x))``, the shortcut being x itself or a 1×1 projection;
    post-activation: ``scale · ReLU(branch(x) + shortcut(x))``."""

    def _finish(self, branch: nn.Sequential, dims: int, c_in: int, c_out: int, stride: int, scale: float,
                skip: bool, norm: bool, preact: bool, preactivated_shortcut: bool) -> None:
        if preactivated_shortcut and not preact:
            raise ValueError(f"The 'preactivated_shortcut' parameter of {type(self).__name__} must be False for a "
                             "post-activation block (preact=False). Got True instead.")
        self.branch = branch
        self.skip = skip
        self.scale = scale
        self.preact = preact
        self.preactivated_shortcut = preactivated_shortcut
        self._n_pre = 2 if norm else 1  # the branch's leading BN → ReLU (or ReLU), read by the projection
        needs_projection = skip and (stride != 1 or c_in != c_out)
        # a 1×1 convolution with the block's stride: the projection shortcut (He et al., 2016), followed by
        # batch norm in the post-activation block (He et al., 2015)
        projection = conv_layer(dims, c_in, c_out, 1, stride=stride, padding=0) if needs_projection else None
        if projection is not None and not preact and norm:
            projection = nn.Sequential(projection, batch_norm_layer(dims, c_out))
        self.shortcut = projection
        self.relu = None if preact else nn.ReLU()  # post-activation: after the sum

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (§7.5) of every convolution; batch norm γ = 1, δ = 0: every parameter."""
        reset_norms(self)
        he_init(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivated_shortcut and self.shortcut is not None:
            a = self.branch[:self._n_pre](x)  # ReLU(BN(x)), shared by the branch and the projection
            out = self.branch[self._n_pre:](a) + self.shortcut(a)
        else:
            out = self.branch(x)
            if self.skip:
                out = out + (x if self.shortcut is None else self.shortcut(x))  # h + f[h]  (eq. 11.4)
        if self.relu is not None:
            out = self.relu(out)
        return out * self.scale if self.scale != 1.0 else out


class ResidualBlock(_Block):
    """ResNet's standard block (fig. 11.7a): ``x + conv(ReLU(BN(conv(ReLU(BN(x))))))``.

    Both convolutions are 3×3 (kernel ``kernel``) with zero padding that keeps the
    size, so with the defaults the block maps C channels to C channels at the same
    resolution and holds 2·9·C² weights plus 2·2·C batch-norm parameters. With
    ``stride = 2`` or ``out_channels != channels`` the first convolution downsamples
    or widens, and the skip path becomes a strided 1×1 convolution.

    Args:
        channels: C, the channels in.
        out_channels: the channels out. Default: ``channels``.
        kernel: the odd kernel size. Default 3.
        stride: the first convolution's stride. Default 1.
        dims: 1, 2 or 3 (signals, images, volumes). Default 2.
        norm: batch norm before each ReLU (True, the book's block) or none (then the
            convolutions have biases).
        scale: multiplies the output (1/√2 for fig. 11.6b). Default 1.
        skip: False removes the identity path (a plain two-layer block).
        preact: the book's pre-activation order (True, He et al. 2016b) or the original
            post-activation block (False, He et al. 2015): 3×3 conv → BN → ReLU → 3×3 conv
            → BN, added to the skip path (a projection is 1×1 conv → BN), then ReLU.
        preactivated_shortcut: a projection shortcut reads ReLU(BN(x)), the branch's first
            activation (True: He et al. 2016b's reference code, timm's ``resnetv2``), or the
            raw input x (False, the default). Only for ``preact=True``.
        generator: the random numbers of the He initialisation: a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C, *spatial)`` -> ``(N, C_out, *⌈spatial / stride⌉)``.

    Example::

        >>> ResidualBlock(16)(torch.zeros(2, 16, 8, 8)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(self, channels: int, *, out_channels: int | None = None, kernel: int = 3, stride: int = 1,
                 dims: int = 2, norm: bool = True, scale: float = 1.0, skip: bool = True, preact: bool = True,
                 preactivated_shortcut: bool = False, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "ResidualBlock"
        c_in = check_int(channels, "channels", owner)
        c_out = c_in if out_channels is None else check_int(out_channels, "out_channels", owner)
        kernel = check_int(kernel, "kernel", owner)
        if kernel % 2 == 0:
            raise ValueError(f"The 'kernel' parameter of {owner} must be an odd int. Got {kernel} instead.")
        stride = check_int(stride, "stride", owner)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        norm = check_bool(norm, "norm", owner)
        scale = check_float(scale, "scale", owner, low=0.0, low_open=True)
        skip = check_bool(skip, "skip", owner)
        preact = check_bool(preact, "preact", owner)
        preactivated_shortcut = check_bool(preactivated_shortcut, "preactivated_shortcut", owner)
        generator = as_generator(generator, owner)
        self.in_channels, self.out_channels, self.stride = c_in, c_out, stride
        with initialised_from(self, generator, own_rule_only=True):  # He only: no draws of torch's defaults
            branch = _branch([(c_in, c_out, kernel, stride), (c_out, c_out, kernel, 1)], dims, norm, preact)
            self._finish(branch, dims, c_in, c_out, stride, scale, skip, norm, preact, preactivated_shortcut)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, skip={self.skip}, preact={self.preact}"


class BottleneckBlock(_Block):
    """ResNet's bottleneck block (fig. 11.7b), pre-activation order (or the original post-activation one).

    The branch is BN → ReLU → 1×1 conv (C_in → B) → BN → ReLU → 3×3 conv (B → B,
    stride s) → BN → ReLU → 1×1 conv (B → C_out). It integrates over a 3×3 region
    like the standard block but with C_in·B + 9·B² + B·C_out weights instead of 18·C²
    (plus 2·(C_in + 2B) batch-norm parameters). When ``stride > 1`` or
    ``C_in != C_out`` the skip path is a strided 1×1 convolution (C_in·C_out weights).

    Args:
        in_channels: C_in.
        bottleneck_channels: B, the channels after the first 1×1 convolution.
        out_channels: C_out. Default ``4 · B`` (ResNet's expansion).
        stride: the 3×3 convolution's stride (2 halves the resolution). Default 1.
        dims: 1, 2 or 3. Default 2.
        norm: batch norm before each ReLU (default) or none (then the convolutions have biases).
        skip: False removes the skip path (a plain three-layer block).
        preact: the book's pre-activation order (True, He et al. 2016b) or the original
            post-activation block (False, He et al. 2015; torchvision's v1.5, the stride on
            the 3×3): 1×1 conv → BN → ReLU → 3×3 conv → BN → ReLU → 1×1 conv → BN, added to
            the skip path (a projection is 1×1 conv → BN), then ReLU. It has 2·C_out more
            batch-norm parameters than the pre-activation block (2·C_in fewer), and 2·C_out
            more in a projection.
        preactivated_shortcut: a projection shortcut reads ReLU(BN(x)), the branch's first
            activation (True: He et al. 2016b's reference code, timm's ``resnetv2``), or the
            raw input x (False, the default: Newell et al.'s hourglass module). Only for
            ``preact=True``.
        generator: the random numbers of the He initialisation: a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C_in, *spatial)`` -> ``(N, C_out, *⌈spatial / stride⌉)``.

    Example::

        >>> BottleneckBlock(256, 64)(torch.zeros(1, 256, 14, 14)).shape
        torch.Size([1, 256, 14, 14])
        >>> count_parameters(BottleneckBlock(64, 64, preact=False))  # torchvision's resnet50.layer1[0]
        75008
    """

    def __init__(self, in_channels: int, bottleneck_channels: int, out_channels: int | None = None, *,
                 stride: int = 1, dims: int = 2, norm: bool = True, skip: bool = True, preact: bool = True,
                 preactivated_shortcut: bool = False, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "BottleneckBlock"
        c_in = check_int(in_channels, "in_channels", owner)
        b = check_int(bottleneck_channels, "bottleneck_channels", owner)
        c_out = 4 * b if out_channels is None else check_int(out_channels, "out_channels", owner)
        stride = check_int(stride, "stride", owner)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        norm = check_bool(norm, "norm", owner)
        skip = check_bool(skip, "skip", owner)
        preact = check_bool(preact, "preact", owner)
        preactivated_shortcut = check_bool(preactivated_shortcut, "preactivated_shortcut", owner)
        generator = as_generator(generator, owner)
        self.in_channels, self.bottleneck_channels, self.out_channels, self.stride = c_in, b, c_out, stride
        with initialised_from(self, generator, own_rule_only=True):  # He only: no draws of torch's defaults
            branch = _branch([(c_in, b, 1, 1), (b, b, 3, stride), (b, c_out, 1, 1)], dims, norm, preact)
            self._finish(branch, dims, c_in, c_out, stride, 1.0, skip, norm, preact, preactivated_shortcut)


def count_parameters(module: nn.Module) -> int:
    """The number of trainable parameters of ``module`` (works on the meta device: nothing is allocated)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- fig. 11.6
VARIANCE_KINDS = ("plain", "residual", "scaled", "batchnorm")


def variance_network(kind: str, width: int, depth: int, *,
                     generator: torch.Generator | int | None = None) -> nn.Sequential:
    """A fully connected stack of ``depth`` blocks of fig. 11.6, He-initialised.

    Every block's layer is f[h] = Ω·ReLU[h] in the pre-activation order of the
    book's ResNet blocks, with Ω ~ N(0, 2/D) (He, §7.5), so that E[f²] = E[h²] for
    any input whose distribution over units is symmetric about zero:

    - ``"plain"``: h_k = f_k[h_{k-1}]. The mean square is kept.
    - ``"residual"``: h_k = h_{k-1} + f_k[h_{k-1}] (eq. 11.4). f_k is uncorrelated
      with its input (Ω has mean zero), so E[h_k²] = 2·E[h_{k-1}²]: it doubles.
    - ``"scaled"``: h_k = (h_{k-1} + f_k[h_{k-1}]) / √2. The mean square is kept.
    - ``"batchnorm"``: h_k = h_{k-1} + f_k[BN[h_{k-1}]], batch norm with offset
      δ = 0 and scale γ = 1 first in the branch. The branch sees unit variance and
      adds E[f²] = 1 per block: E[h_k²] = E[h_0²] + k grows linearly.

    Args:
        kind: one of ``"plain"``, ``"residual"``, ``"scaled"``, ``"batchnorm"``.
        width: D, the units per layer.
        depth: K, the number of blocks.
        generator: the random numbers of the weights: a ``torch.Generator`` or an int seed.
            Default: None, torch's global generator.

    Shape:
        ``(N, D)`` -> ``(N, D)``; the batch norm uses the batch's statistics in
        training mode (the default), so N must be > 1 for ``"batchnorm"``.

    Example::

        >>> net = variance_network("scaled", 64, 3, generator=torch.Generator().manual_seed(0))
        >>> len(net), net(torch.zeros(5, 64)).shape
        (3, torch.Size([5, 64]))
    """
    owner = "variance_network"
    kind = check_choice(kind, "kind", owner, VARIANCE_KINDS)
    width = check_int(width, "width", owner)
    depth = check_int(depth, "depth", owner)
    generator = as_generator(generator, owner)
    blocks = []
    for _ in range(depth):
        linear = nn.utils.skip_init(nn.Linear, width, width, bias=False)  # built without torch's default draws
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu", generator=generator)  # σ² = 2/D
        if kind == "plain":
            blocks.append(nn.Sequential(nn.ReLU(), linear))
        elif kind == "batchnorm":
            blocks.append(Residual(nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(), linear)))
        else:
            blocks.append(Residual(nn.Sequential(nn.ReLU(), linear), scale=INV_SQRT2 if kind == "scaled" else 1.0))
    return nn.Sequential(*blocks)


@torch.no_grad()
def mean_squares(blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """E[h_k²] over samples and units, for the input (k = 0) and after each block.

    This is the "variance" of fig. 11.6: for activations whose mean is zero it is
    their variance, and it is the quantity He initialisation keeps (§7.5).

    Args:
        blocks: an ``nn.Sequential`` (each entry is one block).
        x: the input h_0.

    Shape:
        x ``(N, ...)`` -> ``(len(blocks) + 1,)``.

    Example::

        >>> mean_squares(nn.Sequential(nn.Identity()), torch.full((2, 3), 2.0)).tolist()
        [4.0, 4.0]
    """
    check_instance(blocks, "blocks", "mean_squares", nn.Sequential)
    check_tensor(x, "x", "mean_squares", shape=("N", "D", ...), dtype="float")
    h = x
    out = [h.square().mean()]
    for block in blocks:
        h = block(h)
        out.append(h.square().mean())
    return torch.stack(out)
