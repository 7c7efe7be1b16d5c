"""Stacked hourglass networks for pose estimation (UDL §11.5.3, fig. 11.12; Newell et al., 2016).

Pose estimation is posed as regression: for each of J joints the network outputs a
heatmap, and the training target is a small Gaussian bump at the joint's true
position (fig. 11.12a). The joint is read off at the peak of the predicted heatmap.

The network (fig. 11.12b) starts with a stem of a strided convolution, residual
blocks and max pooling that brings the image down to the heatmaps' resolution; a
series of hourglass blocks follows. Each hourglass (fig. 11.12c) is an
encoder-decoder like the U-Net, but

- every convolution keeps the size with zero padding,
- each skip (residual) link is itself processed by a bottleneck residual block, and
- the skip's output is *added* to the upsampled decoder path, not concatenated.

The hourglass is recursive: at depth d it is::

    hourglass_d(x) = upper(x) + upsample(up(inner(down(maxpool(x)))))
    inner = hourglass_{d-1}   (d > 1),   a residual block   (d = 1)

so it visits d + 1 resolutions, halving d times and doubling back. Every box in
the book's drawing, every ``upper``, ``down``, ``up`` and innermost block here, is a
bottleneck residual block (fig. 11.7b, :class:`udl.nn.residual.BottleneckBlock`).

After each hourglass a 1x1 head predicts the J heatmaps, and every stack is
trained on them (intermediate supervision). Between stacks the heatmaps are mapped
back to the feature width by a 1x1 convolution and added, together with the
stack's features, to its input, so that the next hourglass can refine the previous
estimate.

This file holds, small parts first: the heatmap targets and read-out
(:func:`gaussian_heatmaps`, :func:`heatmap_peaks`), the evaluation (:func:`pck`,
:func:`joint_box_size`), the :class:`Hourglass` block, the
:class:`StackedHourglass` network, the loss over every stack
(:func:`stacked_heatmap_loss`) and a trace of an hourglass's resolutions
(:func:`trace_blocks`).

Differences from Newell et al.: the widths are configurable (the paper uses 256
features, 64 x 64 heatmaps from 256 x 256 images, 8 stacks, depth 4); the stem may
downsample by 4 (the paper), 2 or 1.

Example::

    poses = make_poses(512, size=64, seed=0)
    model = StackedHourglass(n_joints=14, n_stacks=2, channels=32, depth=3, generator=0)
    targets = gaussian_heatmaps(poses.joints, 16, sigma=1.0, stride=4)
    fit(model, (poses.images, targets), stacked_heatmap_loss, lambda p: torch.optim.Adam(p, 1e-3),
        steps=500, batch_size=32)
    joints, scores = heatmap_peaks(model(poses.images)[-1], stride=4)
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.conv import conv_layer
from udl.nn.init import initialised_from
from udl.nn.normalization import batch_norm_layer
from udl.nn.residual import BottleneckBlock
from udl.validate import as_generator, check_choice, check_float, check_int, check_tensor


def _check_size(size, owner: str) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"The 'size' parameter of {owner} must be an int or a pair (H, W). Got {size!r} instead.")
        return check_int(size[0], "size", owner), check_int(size[1], "size", owner)
    side = check_int(size, "size", owner)
    return side, side


# --------------------------------------------------------------------------- heatmaps
def gaussian_heatmaps(joints: torch.Tensor, size: int | tuple[int, int], sigma: float = 1.0, *,
                      stride: int = 1) -> torch.Tensor:
    """The regression targets: one Gaussian bump per joint, peaking at the joint (fig. 11.12a).

    A joint at image position ``(x, y)`` (pixels, pixel (i, j) spanning
    ``[j, j+1) x [i, i+1)``) falls on the heatmap cell grid at
    ``(x / s - 1/2, y / s - 1/2)`` for a heatmap ``s = stride`` times coarser than the
    image: cell (u, v) of the heatmap covers image pixels ``[s·u, s·(u+1))`` and its
    centre is image position ``s·(u + 1/2)``. The target at cell (v, u) is::

        h[v, u] = exp(-((u - x/s + 1/2)² + (v - y/s + 1/2)²) / (2σ²))

    with σ in heatmap cells. Its maximum, 1, sits exactly at the joint; for a joint at
    a cell centre the largest cell is that one.

    Args:
        joints: ``(..., J, 2)`` joint positions ``(x, y)`` in image pixels.
        size: the heatmap side (an int) or ``(H, W)``.
        sigma: the bump's standard deviation in heatmap cells, positive. Default: 1.
        stride: image pixels per heatmap cell. Default: 1.

    Returns:
        float32 heatmaps in (0, 1].

    Shape:
        ``(..., J, 2) -> (..., J, H, W)``.

    Example:
        >>> h = gaussian_heatmaps(torch.tensor([[[6.0, 10.0]]]), 4, sigma=1.0, stride=4)
        >>> h.shape, h[0, 0].argmax().item()   # (x, y) = (6, 10) lies in cell (u, v) = (1, 2)
        (torch.Size([1, 1, 4, 4]), 9)
    """
    owner = "gaussian_heatmaps"
    joints = check_tensor(joints, "joints", owner, shape=(..., "J", 2), dtype="float")
    height, width = _check_size(size, owner)
    sigma = check_float(sigma, "sigma", owner, low=0.0, low_open=True)
    stride = check_int(stride, "stride", owner)
    centre = joints.float() / stride - 0.5  # (..., J, 2) in heatmap cells
    u = torch.arange(width, dtype=torch.float32, device=joints.device)
    v = torch.arange(height, dtype=torch.float32, device=joints.device)
    gx = torch.exp(-(u - centre[..., 0:1]) ** 2 / (2 * sigma ** 2))  # (..., J, W)
    gy = torch.exp(-(v - centre[..., 1:2]) ** 2 / (2 * sigma ** 2))  # (..., J, H)
    return gy[..., :, None] * gx[..., None, :]  # separable: (..., J, H, W)


class Peaks(NamedTuple):
    """Joint positions read from heatmaps, and the heatmap value at each peak."""

    joints: torch.Tensor  # (..., J, 2) (x, y) in image pixels
    scores: torch.Tensor  # (..., J) the maximum of each heatmap


_REFINEMENTS = ("none", "quarter", "gaussian")


def heatmap_peaks(heatmaps: torch.Tensor, *, stride: int = 1, refine: str = "gaussian") -> Peaks:
    """The position of each heatmap's maximum, in image pixels (fig. 11.12a's read-out).

    The arg max cell (u, v) gives the position ``(s·(u + 1/2), s·(v + 1/2))`` in image
    pixels (the centre of the cell, ``s = stride``). ``refine`` moves it within the
    cell, separately along x and y, from the two neighbours ``h₋, h₀, h₊`` of the peak:

    - ``"none"``: the cell centre (error up to s/2 pixels).
    - ``"quarter"``: a quarter of a cell towards the larger neighbour (Newell et al.).
    - ``"gaussian"``: the vertex of the parabola through ``log h₋, log h₀, log h₊``,
      ``δ = (log h₊ - log h₋) / (2 (2 log h₀ - log h₊ - log h₋))``, clipped to
      ``[-1/2, 1/2]``. A Gaussian's logarithm is exactly quadratic, so on the targets
      of :func:`gaussian_heatmaps` this recovers the joint exactly (up to rounding);
      values below 10⁻⁶ are raised to it before the logarithm.

    A peak on the border (a neighbour missing) is not refined along that axis.

    Args:
        heatmaps: ``(..., H, W)`` heatmaps (two or more dimensions).
        stride: image pixels per heatmap cell. Default: 1.
        refine: ``"none"``, ``"quarter"`` or ``"gaussian"``. Default: "gaussian".

    Returns:
        :class:`Peaks` ``(joints, scores)``.

    Shape:
        ``(..., J, H, W) -> (..., J, 2), (..., J)``.

    Example:
        >>> h = gaussian_heatmaps(torch.tensor([[13.3, 7.9]]), 8, sigma=1.0, stride=2)
        >>> heatmap_peaks(h, stride=2).joints
        tensor([[13.3000,  7.9000]])
    """
    owner = "heatmap_peaks"
    heatmaps = check_tensor(heatmaps, "heatmaps", owner, shape=(..., "H", "W"), dtype="float")
    stride = check_int(stride, "stride", owner)
    check_choice(refine, "refine", owner, _REFINEMENTS)
    height, width = heatmaps.shape[-2:]
    flat = heatmaps.detach().reshape(*heatmaps.shape[:-2], height * width)  # (..., H·W)
    scores, index = flat.max(-1)
    cells = torch.stack([index % width, torch.div(index, width, rounding_mode="floor")], -1)  # (..., 2) (u, v)
    offset = torch.zeros(cells.shape, dtype=torch.float64, device=heatmaps.device)
    if refine != "none":
        padded = F.pad(flat.reshape(-1, height, width).double(), (1, 1, 1, 1), value=float("nan"))  # (B, H+2, W+2)
        b = torch.arange(padded.shape[0], device=heatmaps.device)
        u, v = cells.reshape(-1, 2).unbind(-1)  # (B,) each; +1 below for the padding
        centre = padded[b, v + 1, u + 1]
        for axis, (minus, plus) in enumerate(((padded[b, v + 1, u], padded[b, v + 1, u + 2]),
                                              (padded[b, v, u + 1], padded[b, v + 2, u + 1]))):
            if refine == "quarter":
                delta = 0.25 * torch.sign(plus - minus)
            else:
                lm, l0, lp = (t.clamp(min=1e-6).log() for t in (minus, centre, plus))
                curvature = 2 * l0 - lp - lm
                delta = ((lp - lm) / (2 * curvature)).clamp(-0.5, 0.5)
                delta = torch.where(curvature > 0, delta, torch.zeros_like(delta))  # not a maximum: no shift
            delta = torch.nan_to_num(delta, nan=0.0)  # a border peak: no shift along this axis
            offset[..., axis] = delta.reshape(cells.shape[:-1])
    joints = stride * (cells.double() + 0.5 + offset)
    return Peaks(joints.float(), scores)


# --------------------------------------------------------------------------- evaluation
def joint_box_size(joints: torch.Tensor) -> torch.Tensor:
    """The larger side, max(h, w), of the tightest box around each pose's joints, in pixels.

    The reference length of PCK in Yang & Ramanan (2013): a joint is correct within
    α · max(h, w) of the truth.

    Shape:
        ``(N, J, 2) -> (N,)``.
    """
    joints = check_tensor(joints, "joints", "joint_box_size", shape=("N", "J", 2), dtype="float")
    extent = joints.amax(1) - joints.amin(1)  # (N, 2) width and height
    return extent.amax(-1)


def pck(pred: torch.Tensor, truth: torch.Tensor, threshold: float = 0.1, reference_length=None, *,
        visible: torch.Tensor | None = None, per_joint: bool = False):
    """Percentage of correct keypoints: the fraction of joints within ``threshold · reference`` of the truth.

    A predicted joint p̂ of pose n is correct when ``‖p̂ - p‖ <= α · ℓ_n`` with α =
    ``threshold`` and ℓ_n the pose's reference length (the torso or head size, or the
    size of the pose's box; see :func:`joint_box_size`). PCK is the fraction of
    correct joints (over the ``visible`` ones only, when given).

    Args:
        pred: ``(N, J, 2)`` predicted positions.
        truth: ``(N, J, 2)`` true positions.
        threshold: α, positive. Default: 0.1.
        reference_length: ℓ, a positive float or an ``(N,)`` tensor, one per pose.
            Default: None, :func:`joint_box_size` of ``truth``.
        visible: ``(N, J)`` bool, the joints that count. Default: None (all).
        per_joint: return one fraction per joint instead of one overall. Default: False.

    Returns:
        a float in [0, 1], or a ``(J,)`` float tensor with ``per_joint`` (nan for a
        joint never visible).

    Example:
        >>> truth = torch.zeros(1, 2, 2)
        >>> pck(torch.tensor([[[0.5, 0.0], [3.0, 4.0]]]), truth, 0.1, 10.0)   # distances 0.5 and 5
        0.5
    """
    owner = "pck"
    pred = check_tensor(pred, "pred", owner, shape=("N", "J", 2), dtype="float")
    truth = check_tensor(truth, "truth", owner, shape=("N", "J", 2), dtype="float")
    if pred.shape != truth.shape:
        raise ValueError(f"The 'pred' parameter of {owner} must have the shape of truth, {tuple(truth.shape)}. "
                         f"Got {tuple(pred.shape)} instead.")
    threshold = check_float(threshold, "threshold", owner, low=0.0, low_open=True)
    if reference_length is None:
        reference_length = joint_box_size(truth)
    if isinstance(reference_length, torch.Tensor):
        if reference_length.shape != truth.shape[:1] or not (reference_length > 0).all():
            raise ValueError(f"The 'reference_length' parameter of {owner} must be positive, of shape "
                             f"({truth.shape[0]},). Got {reference_length!r} instead.")
        reference = reference_length.float()[:, None]  # (N, 1)
    else:
        reference = check_float(reference_length, "reference_length", owner, low=0.0, low_open=True)
    if visible is None:
        visible = torch.ones(truth.shape[:2], dtype=torch.bool, device=truth.device)
    elif not isinstance(visible, torch.Tensor) or visible.dtype != torch.bool or visible.shape != truth.shape[:2]:
        raise ValueError(f"The 'visible' parameter of {owner} must be a bool tensor of shape "
                         f"{tuple(truth.shape[:2])}. Got {visible!r} instead.")
    correct = (torch.linalg.vector_norm(pred.float() - truth.float(), dim=-1) <= threshold * reference) & visible
    if per_joint:
        return correct.sum(0) / visible.sum(0)  # (J,)
    return float(correct.sum() / visible.sum()) if visible.any() else math.nan


# --------------------------------------------------------------------------- the network
def _residuals(channels: int, bottleneck: int, n_blocks: int) -> nn.Sequential:
    """``n_blocks`` bottleneck residual blocks that keep ``channels`` channels (fig. 11.7b)."""
    return nn.Sequential(*(BottleneckBlock(channels, bottleneck, channels) for _ in range(n_blocks)))


class Hourglass(nn.Module):
    """One hourglass block (fig. 11.12c): a recursive encoder-decoder whose skips add.

    ``hourglass_d(x) = upper(x) + upsample(up(inner(down(maxpool(x)))))`` where
    ``upper``, ``down`` and ``up`` are bottleneck residual blocks, ``maxpool`` halves the
    resolution (2x2), ``upsample`` doubles it (nearest neighbour) and ``inner`` is
    ``hourglass_{d-1}``, or one more residual block at depth 1. All convolutions keep
    the size with zero padding, so the block maps C channels to C channels at the
    same resolution; the processed skip ``upper(x)`` is added to the decoder path.

    Args:
        channels: C, the features in and out (and of every residual block).
        depth: d, the number of poolings: the block visits d + 1 resolutions. Default: 4.
        bottleneck_channels: B of each bottleneck block. Default: None (C // 2, as
            Newell et al.'s 256 -> 128 -> 256).
        n_blocks: residual blocks at each position of the drawing. Default: 1.
        generator: the random numbers of the blocks' He initialisation: a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``, H and W divisible by 2^d.

    Example:
        >>> Hourglass(32, depth=3)(torch.zeros(2, 32, 16, 16)).shape
        torch.Size([2, 32, 16, 16])
    """

    def __init__(self, channels: int, depth: int = 4, *, bottleneck_channels: int | None = None, n_blocks: int = 1,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "Hourglass"
        self.channels = check_int(channels, "channels", owner, minimum=2)
        self.depth = check_int(depth, "depth", owner)
        bottleneck = channels // 2 if bottleneck_channels is None else \
            check_int(bottleneck_channels, "bottleneck_channels", owner)
        self.n_blocks = check_int(n_blocks, "n_blocks", owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.upper = _residuals(channels, bottleneck, n_blocks)  # the processed skip at this resolution
            self.pool = nn.MaxPool2d(2)
            self.down = _residuals(channels, bottleneck, n_blocks)
            self.inner = Hourglass(channels, depth - 1, bottleneck_channels=bottleneck, n_blocks=n_blocks) \
                if depth > 1 else _residuals(channels, bottleneck, n_blocks)
            self.up = _residuals(channels, bottleneck, n_blocks)
            self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    @classmethod
    def tiny(cls, **changes) -> Hourglass:
        """A test-sized hourglass: 8 channels, 2 poolings; ``changes`` override (``generator=0``, ...)."""
        return cls(**{**dict(channels=8, depth=2), **changes})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.depth
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channels \
                or x.shape[-1] % factor or x.shape[-2] % factor:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"The input of Hourglass must have shape (N, {self.channels}, H, W) with H and W "
                             f"divisible by 2^depth = {factor}. Got {shape} instead.")
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.upper(x)  # the processed skip link: (N, C, H, W)
        low = self.down(self.pool(x))  # (N, C, H/2, W/2)
        low = self.inner._forward(low) if isinstance(self.inner, Hourglass) else self.inner(low)
        return skip + self.upsample(self.up(low))  # added, not concatenated: (N, C, H, W)


class StackedHourglass(nn.Module):
    """Stacked hourglass network (fig. 11.12b): a stem, then hourglasses that each predict heatmaps.

    Stem (Newell et al.): 7x7 convolution with stride 2 to C/4 channels, BN, ReLU; a
    bottleneck block to C/2; 2x2 max pooling; two bottleneck blocks to C. With
    ``stride`` 2 the pooling is left out, with ``stride`` 1 also the convolution's
    stride, so the heatmaps are ``stride`` times coarser than the image.

    Stack k: ``y = hourglass_k(x_k)``, ``f = lin(residuals(y))`` (lin: 1x1 conv, BN,
    ReLU), heatmaps ``h_k = head_k(f)`` (1x1 conv to J channels); intermediate
    supervision re-injects them: ``x_{k+1} = x_k + remap_k(f) + back_k(h_k)`` (two 1x1
    convolutions).

    Args:
        n_joints: J, the heatmaps per stack. Default: 14 (:mod:`udl.data.poses`).
        n_stacks: the number of hourglasses. Default: 2.
        channels: C, the features of the hourglasses. Default: 64.
        depth: the poolings in each hourglass. Default: 3.
        stride: image pixels per heatmap cell, 1, 2 or 4. Default: 4.
        in_channels: the image channels. Default: 3.
        generator: the random numbers of the initial weights (He initialisation in the
            residual blocks, torch's default elsewhere, zero heads): a ``torch.Generator``
            or an int seed. Default: None, torch's global generator.

    ``forward`` returns the list of the n_stacks heatmap tensors, last the final one.

    Shape:
        ``(N, in_channels, H, W) -> [(N, J, H / stride, W / stride)] * n_stacks``,
        H and W divisible by ``stride · 2^depth``.

    Example:
        >>> model = StackedHourglass(14, n_stacks=2, channels=32, depth=3, generator=0)
        >>> [h.shape for h in model(torch.zeros(1, 3, 64, 64))]
        [torch.Size([1, 14, 16, 16]), torch.Size([1, 14, 16, 16])]
    """

    def __init__(self, n_joints: int = 14, *, n_stacks: int = 2, channels: int = 64, depth: int = 3,
                 stride: int = 4, in_channels: int = 3, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "StackedHourglass"
        self.n_joints = check_int(n_joints, "n_joints", owner)
        self.n_stacks = check_int(n_stacks, "n_stacks", owner)
        self.channels = check_int(channels, "channels", owner, minimum=8)
        if channels % 4:
            raise ValueError(f"The 'channels' parameter of {owner} must be a multiple of 4. Got {channels} instead.")
        self.hourglass_depth = check_int(depth, "depth", owner)
        self.stride = check_choice(stride, "stride", owner, (1, 2, 4))
        self.in_channels = check_int(in_channels, "in_channels", owner)
        generator = as_generator(generator, owner)
        c = channels
        with initialised_from(self, generator):
            self.stem = nn.Sequential(
                conv_layer(2, in_channels, c // 4, 7, stride=2 if stride > 1 else 1), batch_norm_layer(2, c // 4),
                nn.ReLU(),
                BottleneckBlock(c // 4, c // 4, c // 2),
                nn.MaxPool2d(2) if stride == 4 else nn.Identity(),
                BottleneckBlock(c // 2, c // 4, c // 2),
                BottleneckBlock(c // 2, c // 2, c))
            self.hourglasses = nn.ModuleList(Hourglass(c, depth) for _ in range(n_stacks))
            self.features = nn.ModuleList(
                nn.Sequential(BottleneckBlock(c, c // 2, c), conv_layer(2, c, c, 1), batch_norm_layer(2, c),
                              nn.ReLU()) for _ in range(n_stacks))
            self.heads = nn.ModuleList(nn.Conv2d(c, n_joints, 1) for _ in range(n_stacks))
            self.remaps = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(n_stacks - 1))
            self.backs = nn.ModuleList(nn.Conv2d(n_joints, c, 1) for _ in range(n_stacks - 1))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Zero heads: training starts from empty heatmaps, the loss at the targets' energy."""
        for head in self.heads:
            head.weight.zero_()
            head.bias.zero_()

    @classmethod
    def tiny(cls, **changes) -> StackedHourglass:
        """A test-sized network: 4 joints, 2 stacks of 8 channels, 2 poolings; ``changes`` override."""
        return cls(**{**dict(n_joints=4, channels=8, depth=2), **changes})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The heatmaps of every stack; ``(N, C_in, H, W) -> [(N, J, H/s, W/s)] * n_stacks``."""
        factor = self.stride * 2 ** self.hourglass_depth
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels \
                or x.shape[-1] % factor or x.shape[-2] % factor:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"The input of StackedHourglass must have shape (N, {self.in_channels}, H, W) with H "
                             f"and W divisible by stride · 2^depth = {factor}. Got {shape} instead.")
        x = self.stem(x)  # (N, C, H/s, W/s)
        heatmaps = []
        for k in range(self.n_stacks):
            f = self.features[k](self.hourglasses[k](x))
            h = self.heads[k](f)  # (N, J, H/s, W/s)
            heatmaps.append(h)
            if k < self.n_stacks - 1:  # intermediate supervision: re-inject features and heatmaps
                x = x + self.remaps[k](f) + self.backs[k](h)
        return heatmaps


def stacked_heatmap_loss(heatmaps: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """The sum over stacks of the mean squared error to the target heatmaps (intermediate supervision).

    ``L = Σ_k mean((h_k - target)²)``: every stack is pulled towards the same targets.

    Args:
        heatmaps: the list :meth:`StackedHourglass.forward` returns (or one tensor).
        target: ``(N, J, H, W)`` target heatmaps.

    Example:
        >>> t = torch.ones(1, 1, 2, 2)
        >>> stacked_heatmap_loss([torch.zeros(1, 1, 2, 2), t], t)
        tensor(1.)
    """
    if isinstance(heatmaps, torch.Tensor):
        heatmaps = [heatmaps]
    if not isinstance(heatmaps, (list, tuple)) or not heatmaps or any(h.shape != target.shape for h in heatmaps):
        shapes = [tuple(h.shape) for h in heatmaps] if isinstance(heatmaps, (list, tuple)) else heatmaps
        raise ValueError(f"The 'heatmaps' parameter of stacked_heatmap_loss must be a non-empty list of tensors of "
                         f"the target's shape {tuple(target.shape)}. Got {shapes} instead.")
    return sum(F.mse_loss(h, target) for h in heatmaps)


# --------------------------------------------------------------------------- tracing
class BlockTrace(NamedTuple):
    """One residual block met during a forward pass of an hourglass."""

    name: str  # its path in the module, e.g. "inner.down.0"
    level: int  # the recursion level: 0 at the input resolution, d at the bottom
    role: str  # "upper" (skip), "down" (encoder), "inner" (bottom), "up" (decoder)
    shape: tuple[int, ...]  # its output (C, H, W), measured


def trace_blocks(hourglass: Hourglass, x: torch.Tensor) -> list[BlockTrace]:
    """Run ``hourglass`` on ``x`` and record, with forward hooks, every bottleneck block it calls, in order.

    The shapes are measured, not computed: they show the resolutions the recursion
    really visits (d + 1 of them for depth d) and that every block keeps C channels.

    Args:
        hourglass: an :class:`Hourglass`.
        x: an ``(N, C, H, W)`` input.

    Returns:
        the list of :class:`BlockTrace` in call order.

    Example:
        >>> trace = trace_blocks(Hourglass(8, depth=2), torch.zeros(1, 8, 8, 8))
        >>> sorted({t.shape[-1] for t in trace}, reverse=True)
        [8, 4, 2]
    """
    if not isinstance(hourglass, Hourglass):
        raise TypeError(f"The 'hourglass' parameter of trace_blocks must be an Hourglass. "
                        f"Got {type(hourglass).__name__} instead.")
    records: list[BlockTrace] = []
    handles = []
    for name, module in hourglass.named_modules():
        if isinstance(module, BottleneckBlock):
            parts = name.split(".")  # e.g. ["inner", "down", "0"]: the down block one recursion in
            role = parts[-2]
            # poolings before the block: one per recursion, one more for down and up (after the pool)
            level = parts.count("inner") + (role in ("down", "up"))
            handles.append(module.register_forward_hook(
                lambda m, i, out, name=name, level=level, role=role:
                records.append(BlockTrace(name, level, role, tuple(out.shape[1:])))))
    try:
        with torch.no_grad():
            hourglass(x)
    finally:
        for handle in handles:
            handle.remove()
    return records


__all__ = ["Hourglass", "StackedHourglass", "Peaks", "BlockTrace", "gaussian_heatmaps", "heatmap_peaks", "pck",
           "joint_box_size", "stacked_heatmap_loss", "trace_blocks"]
