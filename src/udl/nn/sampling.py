"""Downsampling and upsampling of 2D representations (UDL §10.4, figs. 10.11-10.12).

Down (each halves the size with the defaults):

- :func:`subsample`: keep every f-th row and column (fig. 10.11a), like a stride-f
  convolution whose skipped outputs are never computed;
- :func:`max_pool2d`: the largest value of each k x k block (fig. 10.11b), optionally
  with the position it came from;
- :func:`mean_pool2d`: the mean of each block (fig. 10.11c).

Up (each doubles the size with the defaults):

- :func:`upsample_nearest`: duplication, each value copied into an f x f block (fig. 10.12a);
- :func:`max_unpool2d`: each value put back where its maximum was found by max pooling,
  zeros elsewhere (fig. 10.12b);
- :func:`upsample_bilinear`: bilinear interpolation between the input values (fig. 10.12c);
- :func:`pixel_shuffle`: sub-pixel upsampling (Shi et al. 2016, used by SRGAN, §15.4.4):
  the r² channels of each group become an r x r block of one output channel, so a
  convolution that makes r² times the channels followed by it learns its own upsampling.

All take batch-first (N, C, H, W) tensors and act on every channel separately; they
are written from their definitions (windows gathered by index arithmetic, as in
:mod:`udl.nn.conv`) and tested against ``F.max_pool2d``, ``F.avg_pool2d``,
``F.max_unpool2d``, ``F.interpolate`` and ``F.pixel_shuffle``.

Example::

    >>> x = torch.tensor([[[[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0],
    ...                     [0.0, 0.0, 2.0, 2.0], [7.0, 1.0, 2.0, 6.0]]]])
    >>> subsample(x)[0, 0].tolist(), max_pool2d(x)[0, 0].tolist(), mean_pool2d(x)[0, 0].tolist()
    ([[1.0, 5.0], [0.0, 2.0]], [[4.0, 5.0], [7.0, 6.0]], [[2.5, 1.75], [2.0, 3.0]])
"""

from __future__ import annotations

from typing import Sequence

import torch

from udl.nn.conv import sliding_windows2d
from udl.validate import check_int, check_ints, check_tensor

__all__ = ["subsample", "max_pool2d", "mean_pool2d", "upsample_nearest", "max_unpool2d", "upsample_bilinear",
           "pixel_shuffle"]

_NCHW = ("N", "C", "H", "W")  # the shape of every input here


def _pool_args(x, kernel_size, stride, owner: str) -> tuple[tuple[int, int], tuple[int, int]]:
    kernel = check_ints(kernel_size, "kernel_size", owner, 2, minimum=1)
    stride = kernel if stride is None else check_ints(stride, "stride", owner, 2, minimum=1)
    if x.shape[2] < kernel[0] or x.shape[3] < kernel[1]:
        raise ValueError(f"The 'kernel_size' parameter of {owner} must fit in the input of size "
                         f"{tuple(x.shape[2:])}. Got {kernel_size!r} instead.")
    return kernel, stride


# --------------------------------------------------------------------------- downsampling
def subsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Keep every ``factor``-th row and column, starting with the first (fig. 10.11a).

    y_{ij} = x_{f·i, f·j}

    Args:
        x: (N, C, H, W). factor: f, a positive int (default 2).

    Shape:
        (N, C, H, W) -> (N, C, ⌈H/f⌉, ⌈W/f⌉).

    Example::

        >>> subsample(torch.arange(16.0).view(1, 1, 4, 4))[0, 0]
        tensor([[ 0.,  2.],
                [ 8., 10.]])
    """
    owner = "subsample"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    f = check_int(factor, "factor", owner)
    rows = torch.arange(0, x.shape[2], f, device=x.device)  # 0, f, 2f, ...
    cols = torch.arange(0, x.shape[3], f, device=x.device)
    return x[:, :, rows[:, None], cols[None, :]]  # (N, C, ⌈H/f⌉, ⌈W/f⌉)


def max_pool2d(x: torch.Tensor, kernel_size: int | Sequence[int] = 2, stride: int | Sequence[int] | None = None,
               *, return_indices: bool = False):
    """The maximum of each k_h x k_w block (fig. 10.11b).

    y_{ij} = max_{m<k_h, n<k_w} x_{s_h·i + m, s_w·j + n}

    Args:
        x: (N, C, H, W).
        kernel_size: k or (k_h, k_w) (default 2).
        stride: s or (s_h, s_w); default the kernel size (blocks that do not overlap).
        return_indices: also return where each maximum was, as a flat index
            row·W + column into its channel's H x W map (PyTorch's convention; the
            first maximum in reading order wins a tie), for :func:`max_unpool2d`.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out), H_out = ⌊(H - k_h)/s_h⌋ + 1 (likewise
        W_out); the indices have the same shape (int64).

    Example::

        >>> y, idx = max_pool2d(torch.tensor([[[[1.0, 9.0], [3.0, 4.0]]]]), return_indices=True)
        >>> y.item(), idx.item()
        (9.0, 1)
    """
    owner = "max_pool2d"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    (kh, kw), (sh, sw) = _pool_args(x, kernel_size, stride, owner)
    if not isinstance(return_indices, bool):
        raise TypeError(f"The 'return_indices' parameter of {owner} must be a bool. Got {return_indices!r} instead.")
    windows = sliding_windows2d(x, (kh, kw), (sh, sw))  # (N, C, H_out, W_out, kh, kw)
    flat = windows.flatten(-2)  # (N, C, H_out, W_out, kh·kw), reading order within a block
    where = flat.argmax(dim=-1, keepdim=True)  # first maximum in reading order
    y = flat.gather(-1, where).squeeze(-1)  # (N, C, H_out, W_out); gather keeps the gradient path
    if not return_indices:
        return y
    where = where.squeeze(-1)
    i = torch.arange(y.shape[2], device=x.device)[:, None]
    j = torch.arange(y.shape[3], device=x.device)[None, :]
    row = sh * i + where // kw  # block origin + offset within the block
    col = sw * j + where % kw
    return y, row * x.shape[3] + col  # flat index into H x W: (N, C, H_out, W_out)


def mean_pool2d(x: torch.Tensor, kernel_size: int | Sequence[int] = 2,
                stride: int | Sequence[int] | None = None) -> torch.Tensor:
    """The mean of each k_h x k_w block (fig. 10.11c).

    y_{ij} = (1 / k_h k_w) Σ_{m<k_h} Σ_{n<k_w} x_{s_h·i + m, s_w·j + n}

    Args:
        x: (N, C, H, W). kernel_size: k or (k_h, k_w) (default 2).
        stride: s or (s_h, s_w); default the kernel size.

    Shape:
        (N, C, H, W) -> (N, C, ⌊(H - k_h)/s_h⌋ + 1, ⌊(W - k_w)/s_w⌋ + 1).

    Example::

        >>> mean_pool2d(torch.arange(16.0).view(1, 1, 4, 4))[0, 0]
        tensor([[ 2.5000,  4.5000],
                [10.5000, 12.5000]])
    """
    owner = "mean_pool2d"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    kernel, stride = _pool_args(x, kernel_size, stride, owner)
    return sliding_windows2d(x, kernel, stride).mean(dim=(-2, -1))  # (N, C, H_out, W_out)


# --------------------------------------------------------------------------- upsampling
def upsample_nearest(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Duplicate each value into a ``factor`` x ``factor`` block (fig. 10.12a).

    y_{ij} = x_{⌊i/f⌋, ⌊j/f⌋}

    Args:
        x: (N, C, H, W). factor: f, a positive int (default 2).

    Shape:
        (N, C, H, W) -> (N, C, f·H, f·W).

    Example::

        >>> upsample_nearest(torch.tensor([[[[1.0, 2.0]]]]))[0, 0]
        tensor([[1., 1., 2., 2.],
                [1., 1., 2., 2.]])
    """
    owner = "upsample_nearest"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    f = check_int(factor, "factor", owner)
    rows = torch.arange(f * x.shape[2], device=x.device) // f  # source row of each output row
    cols = torch.arange(f * x.shape[3], device=x.device) // f
    return x[:, :, rows[:, None], cols[None, :]]  # (N, C, f·H, f·W)


def max_unpool2d(x: torch.Tensor, indices: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
    """Put each value back where max pooling found its maximum; zeros elsewhere (fig. 10.12b).

    Args:
        x: the values to place, (N, C, h, w) (e.g. a max pool's output, or a later
            layer of the same size).
        indices: the pooling's indices (:func:`max_pool2d` with ``return_indices``),
            flat positions row·W + column in the H x W output, same shape as x.
        output_size: (H, W), the size of the map that was pooled.

    Shape:
        (N, C, h, w) -> (N, C, H, W).

    Example::

        >>> y, idx = max_pool2d(torch.tensor([[[[1.0, 9.0], [3.0, 4.0]]]]), return_indices=True)
        >>> max_unpool2d(y, idx, (2, 2))[0, 0]
        tensor([[0., 9.],
                [0., 0.]])
    """
    owner = "max_unpool2d"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    check_tensor(indices, "indices", owner, shape=tuple(x.shape), dtype=torch.int64)  # x's shape
    if not isinstance(output_size, (tuple, list, torch.Size)) or len(output_size) != 2:
        raise ValueError(f"The 'output_size' parameter of {owner} must be (H, W). Got {output_size!r} instead.")
    height, width = (check_int(v, "output_size", owner) for v in output_size)
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= height * width):
        raise ValueError(f"The 'indices' parameter of {owner} must lie in [0, {height * width}) for an output of "
                         f"size ({height}, {width}). Got values up to {int(indices.max())} instead.")
    n, c = x.shape[:2]
    y = x.new_zeros(n, c, height * width)  # zeros where no maximum came from
    y = y.scatter(2, indices.flatten(2), x.flatten(2))  # each value back to its position: (N, C, H·W)
    return y.view(n, c, height, width)


def _source_coordinates(n_in: int, n_out: int, f: int, align_corners: bool, like: torch.Tensor):
    """For each output position: the two neighbouring inputs and the weight of the second."""
    t = torch.arange(n_out, dtype=like.dtype, device=like.device)
    if align_corners:  # first and last outputs sit exactly on the first and last inputs
        u = t * ((n_in - 1) / (n_out - 1)) if n_out > 1 else torch.zeros_like(t)
    else:  # pixel centres: output centre (t + ½) maps to input centre (t + ½)/f
        u = ((t + 0.5) / f - 0.5).clamp(min=0.0)
    lo = u.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    lam = u - lo.to(like.dtype)  # λ: how far from lo towards hi
    return lo, hi, lam


def upsample_bilinear(x: torch.Tensor, factor: int = 2, *, align_corners: bool = False) -> torch.Tensor:
    """Bilinear interpolation between the input values (fig. 10.12c).

    Each output position maps to a real-valued input position (u, v); with
    i = ⌊u⌋, j = ⌊v⌋, λ = u - i, μ = v - j::

        y = (1-λ)(1-μ) x_{i,j} + (1-λ) μ x_{i,j+1} + λ (1-μ) x_{i+1,j} + λ μ x_{i+1,j+1}

    (indices past the last row or column are clamped to it).

    Args:
        x: (N, C, H, W). factor: f, a positive int (default 2).
        align_corners: how output positions map to input positions, as in
            ``F.interpolate``. False (default): pixels are areas, output centre
            t + ½ maps to input (t + ½)/f - ½ (clamped at 0), so the edges of the
            images line up. True: the first and last pixel centres line up,
            u = t·(H - 1)/(f·H - 1).

    Shape:
        (N, C, H, W) -> (N, C, f·H, f·W).

    Example::

        >>> upsample_bilinear(torch.tensor([[[[0.0, 4.0]]]]), align_corners=True)[0, 0, 0]
        tensor([0.0000, 1.3333, 2.6667, 4.0000])
    """
    owner = "upsample_bilinear"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    f = check_int(factor, "factor", owner)
    if not isinstance(align_corners, bool):
        raise TypeError(f"The 'align_corners' parameter of {owner} must be a bool. Got {align_corners!r} instead.")
    if not x.is_floating_point():
        raise TypeError(f"The 'x' parameter of {owner} must be a floating-point tensor. Got {x.dtype} instead.")
    i0, i1, lam = _source_coordinates(x.shape[2], f * x.shape[2], f, align_corners, x)  # (f·H,) each
    j0, j1, mu = _source_coordinates(x.shape[3], f * x.shape[3], f, align_corners, x)  # (f·W,) each
    lam, mu = lam[:, None], mu[None, :]  # (f·H, 1), (1, f·W)
    r0, r1, c0, c1 = i0[:, None], i1[:, None], j0[None, :], j1[None, :]
    return ((1 - lam) * (1 - mu) * x[:, :, r0, c0] + (1 - lam) * mu * x[:, :, r0, c1]
            + lam * (1 - mu) * x[:, :, r1, c0] + lam * mu * x[:, :, r1, c1])  # (N, C, f·H, f·W)


def pixel_shuffle(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Sub-pixel upsampling: each group of r² channels becomes an r x r block of one channel.

    y_{c, r·h + i, r·w + j} = x_{c·r² + r·i + j, h, w}     (0 ≤ i, j < r)

    A convolution that outputs r²·C channels at the low resolution, followed by this
    rearrangement, is a learned ×r upsampling (Shi et al. 2016): the r² outputs at each
    input position fill the r x r pixels of the output block it covers. It moves values
    without computing anything, so its gradient only moves them back.

    Args:
        x: (N, C·r², H, W). factor: r, a positive int (default 2).

    Shape:
        (N, C·r², H, W) -> (N, C, r·H, r·W).

    Example::

        >>> pixel_shuffle(torch.arange(4.0).view(1, 4, 1, 1))[0, 0]
        tensor([[0., 1.],
                [2., 3.]])
    """
    owner = "pixel_shuffle"
    x = check_tensor(x, "x", owner, shape=_NCHW)
    r = check_int(factor, "factor", owner)
    n, channels, h, w = x.shape
    if channels % (r * r):
        raise ValueError(f"The 'x' parameter of {owner} must have a multiple of factor² = {r * r} channels. "
                         f"Got {channels} instead.")
    c = channels // (r * r)
    y = x.reshape(n, c, r, r, h, w)  # (N, C, i, j, H, W): channel c·r² + r·i + j
    y = y.permute(0, 1, 4, 2, 5, 3)  # (N, C, H, i, W, j)
    return y.reshape(n, c, r * h, r * w)  # row r·h + i, column r·w + j
