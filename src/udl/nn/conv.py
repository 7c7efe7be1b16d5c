"""Convolution written from the book's weighted sum (UDL §10.2-10.3).

A 1D convolution with kernel size three computes each output as a weighted sum of
the nearest three inputs (UDL eq. 10.3)::

    z_i = ω_1 x_{i-1} + ω_2 x_i + ω_3 x_{i+1}

and a convolutional layer adds a bias β and passes the result through an activation
(eq. 10.4). In general, with kernel size k, stride s, dilation d and C_in input
channels, output channel o at position i is::

    z_{o,i} = β_o + Σ_c Σ_{j=0}^{k-1} ω_{o,c,j} · x_{c, s·i + d·j}        (x zero-padded)

and in 2D the sum runs over a k_h x k_w neighbourhood (eq. 10.6)::

    z_{o,i,j} = β_o + Σ_c Σ_m Σ_n ω_{o,c,m,n} · x_{c, s·i + d·m, s·j + d·n}

Like the book (and PyTorch) this is a cross-correlation: the kernel is not flipped.
The code below does exactly that: pad with zeros, gather every window the kernel
visits with explicit index arithmetic (:func:`sliding_windows1d`,
:func:`sliding_windows2d`), then take the weighted sum with one ``einsum``. It is
tested equal to ``torch.nn.functional.conv1d`` / ``conv2d`` (values and gradients);
models use torch's fast kernels, this file is for reading and checking.

Output size (each spatial axis, input length n, zero padding p on both sides)::

    n_out = ⌊(n + 2p - d·(k - 1) - 1) / s⌋ + 1                (:func:`conv_output_length`)

``padding="valid"`` means p = 0 (outputs only where the kernel fits, n_out = n - d(k-1)
for s = 1); ``padding="same"`` pads d·(k-1) zeros in total (the extra one on the
right when that is odd, as PyTorch does) so that n_out = n; it needs s = 1.

Example::

    >>> x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])            # (N=1, C=1, L=4)
    >>> omega = torch.tensor([[[1.0, 0.0, -1.0]]])            # (C_out=1, C_in=1, k=3)
    >>> conv1d(x, omega, padding=1)                           # z_i = x_{i-1} - x_{i+1}
    tensor([[[-2., -2., -2.,  3.]]])
    >>> conv_output_length(4, 3, padding="valid")
    2
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import fan_in_uniform_
from udl.validate import as_generator, check_bool, check_choice, check_int, check_ints, check_tensor

__all__ = ["conv_output_length", "dilate_kernel", "sliding_windows1d", "sliding_windows2d",
           "conv1d", "conv2d", "Conv1d", "Conv2d", "conv_layer"]

PADDING_MODES = ("same", "valid")


# --------------------------------------------------------------------------- argument checks
def _padding(value, name: str, owner: str, n: int) -> tuple[int, ...] | str:
    """``"same"``, ``"valid"`` or non-negative int(s)."""
    if isinstance(value, str):
        if value not in PADDING_MODES:
            raise ValueError(f"The {name!r} parameter of {owner} must be a non-negative int or one of "
                             f"'same', 'valid'. Got {value!r} instead.")
        return value
    return check_ints(value, name, owner, n, minimum=0)


def _pad_amounts(padding: tuple[int, ...] | str, kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...], owner: str) -> list[tuple[int, int]]:
    """Zeros to add (before, after) on each spatial axis."""
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"The 'padding' parameter of {owner} can be 'same' only with stride 1. "
                             f"Got 'same' with stride {stride} instead.")
        # d(k-1) zeros in total keep n_out = n; an odd total puts the extra zero after (as PyTorch)
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    return [(p, p) for p in padding]


def _check_fits(n: int, pad: int, k: int, d: int, owner: str, name: str = "weight") -> None:
    """The dilated kernel spans d(k - 1) + 1 of the n + pad inputs; the message blames the kernel
    (``name``) when it is too long even undilated, else the dilation."""
    available = n + pad
    if d * (k - 1) + 1 <= available:
        return
    if k > available:
        raise ValueError(f"The {name!r} parameter of {owner} must be a kernel of size at most {available}, "
                         f"the length of the padded input. Got kernel size {k} instead.")
    raise ValueError(f"The 'dilation' parameter of {owner} must be at most {(available - 1) // (k - 1)}, so that "
                     f"the dilated kernel of size {k} spans at most the {available} padded inputs. Got {d} instead.")


# --------------------------------------------------------------------------- sizes
def conv_output_length(n: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1) -> int:
    """The output length of a convolution (or pooling) along one axis.

    n_out = ⌊(n + 2p - d·(k - 1) - 1) / s⌋ + 1

    The kernel spans d·(k - 1) + 1 inputs; it fits at n + 2p - d·(k - 1) positions of
    the padded input, of which every s-th is kept.

    Args:
        n: the input length (positive).
        kernel: the kernel size k (positive).
        stride: the stride s (positive). Default 1.
        padding: p zeros on each side (non-negative), ``"valid"`` (p = 0) or ``"same"``
            (d·(k - 1) zeros in total, so n_out = n; needs s = 1). Default 0.
        dilation: the dilation d (positive): the kernel's taps are d inputs apart. Default 1.

    Returns:
        n_out; a ValueError if the (dilated) kernel does not fit in the padded input.

    Example::

        >>> conv_output_length(6, 3, padding=1), conv_output_length(6, 3), conv_output_length(6, 3, stride=2, padding=1)
        (6, 4, 3)
    """
    owner = "conv_output_length"
    n = check_int(n, "n", owner)
    k = check_int(kernel, "kernel", owner)
    s = check_int(stride, "stride", owner)
    d = check_int(dilation, "dilation", owner)
    padding = _padding(padding, "padding", owner, 1)
    (before, after), = _pad_amounts(padding, (k,), (s,), (d,), owner)
    _check_fits(n, before + after, k, d, owner, name="kernel")
    return (n + before + after - d * (k - 1) - 1) // s + 1


def dilate_kernel(weight: torch.Tensor, dilation: int | Sequence[int]) -> torch.Tensor:
    """Insert d - 1 zeros between neighbouring kernel taps ("à trous", fig. 10.3d).

    A convolution with dilation d equals an ordinary (d = 1) convolution with this
    larger kernel of size d·(k - 1) + 1: the zeros skip the inputs between the taps.

    Args:
        weight: a kernel (C_out, C_in, k) or (C_out, C_in, k_h, k_w).
        dilation: d (an int, or one per spatial axis).

    Shape:
        (C_out, C_in, k) -> (C_out, C_in, d(k-1)+1); likewise for each axis in 2D.

    Example::

        >>> dilate_kernel(torch.tensor([[[1.0, 2.0, 3.0]]]), 2)
        tensor([[[1., 0., 2., 0., 3.]]])
    """
    owner = "dilate_kernel"
    weight = check_tensor(weight, "weight", owner, ndim=(3, 4))  # (C_out, C_in, *kernel)
    dims = weight.dim() - 2
    dilation = check_ints(dilation, "dilation", owner, dims, minimum=1)
    kernel = weight.shape[2:]
    out = weight.new_zeros(*weight.shape[:2], *(d * (k - 1) + 1 for k, d in zip(kernel, dilation)))
    taps = tuple(slice(None, None, d) for d in dilation)  # every d-th position holds a tap
    out[(slice(None), slice(None), *taps)] = weight
    return out


# --------------------------------------------------------------------------- windows
def sliding_windows1d(x: torch.Tensor, kernel_size: int, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """Every window a kernel of size k visits in x (no padding added here).

    Window i holds the inputs x_{s·i + d·j}, j = 0..k-1: the inputs that output i
    weights (eq. 10.3 with stride and dilation).

    Args:
        x: the (already padded) input, (N, C, L).
        kernel_size: k. stride: s (default 1). dilation: d (default 1).

    Shape:
        (N, C, L) -> (N, C, L_out, k) with L_out = ⌊(L - d(k-1) - 1)/s⌋ + 1.

    Example::

        >>> sliding_windows1d(torch.arange(5.0).view(1, 1, 5), 3, stride=2)[0, 0]
        tensor([[0., 1., 2.],
                [2., 3., 4.]])
    """
    owner = "sliding_windows1d"
    x = check_tensor(x, "x", owner, shape=("N", "C", "L"))
    k = check_int(kernel_size, "kernel_size", owner)
    s = check_int(stride, "stride", owner)
    d = check_int(dilation, "dilation", owner)
    _check_fits(x.shape[2], 0, k, d, owner, name="kernel_size")
    n_out = conv_output_length(x.shape[2], k, s, 0, d)
    i = torch.arange(n_out, device=x.device)  # output positions
    j = torch.arange(k, device=x.device)  # kernel taps
    index = s * i[:, None] + d * j[None, :]  # (L_out, k): input feeding tap j of output i
    return x[:, :, index]  # (N, C, L_out, k)


def sliding_windows2d(x: torch.Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
                      dilation: int | Sequence[int] = 1) -> torch.Tensor:
    """Every k_h x k_w window a 2D kernel visits in x (no padding added here).

    Window (i, j) holds x_{s_h·i + d_h·m, s_w·j + d_w·n} for m < k_h, n < k_w.

    Args:
        x: the (already padded) input, (N, C, H, W).
        kernel_size: k, or (k_h, k_w). stride: s or (s_h, s_w), default 1.
        dilation: d or (d_h, d_w), default 1.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out, k_h, k_w), each output size from
        :func:`conv_output_length` with no padding.

    Example::

        >>> w = sliding_windows2d(torch.arange(16.0).view(1, 1, 4, 4), 2, stride=2)
        >>> w.shape, w[0, 0, 1, 0]
        (torch.Size([1, 1, 2, 2, 2, 2]), tensor([[ 8.,  9.],
                [12., 13.]]))
    """
    owner = "sliding_windows2d"
    x = check_tensor(x, "x", owner, shape=("N", "C", "H", "W"))
    kh, kw = check_ints(kernel_size, "kernel_size", owner, 2, minimum=1)
    sh, sw = check_ints(stride, "stride", owner, 2, minimum=1)
    dh, dw = check_ints(dilation, "dilation", owner, 2, minimum=1)
    _check_fits(x.shape[2], 0, kh, dh, owner, name="kernel_size")
    _check_fits(x.shape[3], 0, kw, dw, owner, name="kernel_size")
    h_out = conv_output_length(x.shape[2], kh, sh, 0, dh)
    w_out = conv_output_length(x.shape[3], kw, sw, 0, dw)
    rows = sh * torch.arange(h_out, device=x.device)[:, None] + dh * torch.arange(kh, device=x.device)  # (H_out, kh)
    cols = sw * torch.arange(w_out, device=x.device)[:, None] + dw * torch.arange(kw, device=x.device)  # (W_out, kw)
    # broadcast the two index grids to (H_out, W_out, kh, kw)
    return x[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, H_out, W_out, kh, kw)


# --------------------------------------------------------------------------- functional convolution
def _check_weight_bias(x, weight, bias, dims: int, owner: str):
    shape = ("C_out", "C_in", "k") if dims == 1 else ("C_out", "C_in", "k_h", "k_w")
    weight = check_tensor(weight, "weight", owner, shape=shape)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"The 'weight' parameter of {owner} must have C_in = {x.shape[1]} input channels "
                         f"(the channels of x). Got shape {tuple(weight.shape)} instead.")
    if bias is not None:
        bias = check_tensor(bias, "bias", owner, shape=(weight.shape[0],))  # (C_out,)
    return weight, bias


def conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           stride: int = 1, padding: int | str = 0, dilation: int = 1) -> torch.Tensor:
    """1D convolution as the book's weighted sum (UDL eqs. 10.3-10.4, fig. 10.2-10.5).

    z_{o,i} = β_o + Σ_c Σ_j ω_{o,c,j} · x_{c, s·i + d·j}   (x zero-padded)

    Args:
        x: input, (N, C_in, L).
        weight: the kernels ω, (C_out, C_in, k): one kernel per output channel,
            each weighting every input channel (fig. 10.5c).
        bias: β, (C_out,), or None (default).
        stride: s, default 1. padding: p zeros on each side, ``"same"`` or
            ``"valid"`` (default 0). dilation: d, default 1.

    Shape:
        (N, C_in, L) -> (N, C_out, L_out), L_out = ⌊(L + 2p - d(k-1) - 1)/s⌋ + 1.

    Example::

        >>> x = torch.randn(2, 3, 11)
        >>> conv1d(x, torch.randn(4, 3, 3), padding="same").shape
        torch.Size([2, 4, 11])
    """
    owner = "conv1d"
    x = check_tensor(x, "x", owner, shape=("N", "C_in", "L"))
    weight, bias = _check_weight_bias(x, weight, bias, 1, owner)
    s = check_int(stride, "stride", owner)
    d = check_int(dilation, "dilation", owner)
    padding = _padding(padding, "padding", owner, 1)
    k = weight.shape[2]
    (before, after), = _pad_amounts(padding, (k,), (s,), (d,), owner)
    _check_fits(x.shape[2], before + after, k, d, owner)
    x = F.pad(x, (before, after))  # zeros outside the input (fig. 10.2c)
    windows = sliding_windows1d(x, k, s, d)  # (N, C_in, L_out, k)
    z = torch.einsum("bcij,ocj->boi", windows, weight)  # Σ_c Σ_j ω_{o,c,j} x_{c,s·i+d·j}: (N, C_out, L_out)
    if bias is not None:
        z = z + bias[None, :, None]  # β_o on every position
    return z


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
           dilation: int | Sequence[int] = 1) -> torch.Tensor:
    """2D convolution as the book's weighted sum over a neighbourhood (UDL eq. 10.6, figs. 10.9-10.10).

    z_{o,i,j} = β_o + Σ_c Σ_m Σ_n ω_{o,c,m,n} · x_{c, s_h·i + d_h·m, s_w·j + d_w·n}   (x zero-padded)

    Args:
        x: input, (N, C_in, H, W); an RGB image has C_in = 3 (fig. 10.10).
        weight: the kernels ω, (C_out, C_in, k_h, k_w).
        bias: β, (C_out,), or None (default).
        stride: s or (s_h, s_w), default 1. padding: p or (p_h, p_w) zeros on each
            side, ``"same"`` or ``"valid"`` (default 0). dilation: d or (d_h, d_w), default 1.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out), with
        H_out = ⌊(H + 2p_h - d_h(k_h-1) - 1)/s_h⌋ + 1 and likewise W_out.

    Example::

        >>> x = torch.randn(1, 3, 8, 10)
        >>> conv2d(x, torch.randn(5, 3, 3, 3), padding=1).shape
        torch.Size([1, 5, 8, 10])
    """
    owner = "conv2d"
    x = check_tensor(x, "x", owner, shape=("N", "C_in", "H", "W"))
    weight, bias = _check_weight_bias(x, weight, bias, 2, owner)
    stride = check_ints(stride, "stride", owner, 2, minimum=1)
    dilation = check_ints(dilation, "dilation", owner, 2, minimum=1)
    padding = _padding(padding, "padding", owner, 2)
    kernel = tuple(weight.shape[2:])
    (top, bottom), (left, right) = _pad_amounts(padding, kernel, stride, dilation, owner)
    _check_fits(x.shape[2], top + bottom, kernel[0], dilation[0], owner)
    _check_fits(x.shape[3], left + right, kernel[1], dilation[1], owner)
    x = F.pad(x, (left, right, top, bottom))  # zeros beyond the image's edge (fig. 10.9c-d)
    windows = sliding_windows2d(x, kernel, stride, dilation)  # (N, C_in, H_out, W_out, kh, kw)
    # Σ_c Σ_m Σ_n ω_{o,c,m,n} x_{c, s_h·i + d_h·m, s_w·j + d_w·n}  (eq. 10.6)
    z = torch.einsum("bcijmn,ocmn->boij", windows, weight)  # (N, C_out, H_out, W_out)
    if bias is not None:
        z = z + bias[None, :, None, None]
    return z


# --------------------------------------------------------------------------- modules
class _ConvNd(nn.Module):
    """Stores and validates the hyper-parameters; draws ω and β as PyTorch does."""

    dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0, dilation=1,
                 bias=True, generator=None):
        super().__init__()
        owner = type(self).__name__
        n = self.dims
        self.in_channels = check_int(in_channels, "in_channels", owner)
        self.out_channels = check_int(out_channels, "out_channels", owner)
        kernel = check_ints(kernel_size, "kernel_size", owner, n, minimum=1)
        stride = check_ints(stride, "stride", owner, n, minimum=1)
        dilation = check_ints(dilation, "dilation", owner, n, minimum=1)
        padding = _padding(padding, "padding", owner, n)
        check_bool(bias, "bias", owner)
        generator = as_generator(generator, owner)
        _pad_amounts(padding, kernel, stride, dilation, owner)  # 'same' needs stride 1
        # torch.nn.Conv* stores tuples in 2D and 1-tuples in 1D; receptive-field code reads these
        self.kernel_size, self.stride, self.dilation = kernel, stride, dilation
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, *kernel))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """ω, β ~ U(-1/√fan_in, 1/√fan_in), fan_in = C_in·Π k (PyTorch's default)."""
        fan_in_uniform_((self.weight, self.bias), self.in_channels * math.prod(self.kernel_size), generator)

    def _args(self) -> dict:
        squeeze = (lambda t: t[0]) if self.dims == 1 else (lambda t: t)
        padding = self.padding if isinstance(self.padding, str) else squeeze(self.padding)
        return dict(stride=squeeze(self.stride), padding=padding, dilation=squeeze(self.dilation))

    def extra_repr(self) -> str:
        a = self._args()
        kernel = self.kernel_size[0] if self.dims == 1 else self.kernel_size
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={kernel}, stride={a['stride']}, "
                f"padding={a['padding']!r}, dilation={a['dilation']}, bias={self.bias is not None}")


class Conv1d(_ConvNd):
    """A 1D convolutional layer (fig. 10.5): :func:`conv1d` with learnable ω and β.

    Args:
        in_channels: C_in. out_channels: C_out (one kernel per output channel).
        kernel_size: k. stride: s (default 1). padding: p, ``"same"`` or ``"valid"``
            (default 0). dilation: d (default 1). bias: learn β (default True).
        generator: draws the initial ω, β ~ U(-1/√(C_in k), 1/√(C_in k)): a
            ``torch.Generator`` or an int seed; None uses torch's global generator.

    Attributes:
        weight: (C_out, C_in, k). bias: (C_out,) or None. There are
        (C_in·k + 1)·C_out parameters with a bias.

    Shape:
        (N, C_in, L) -> (N, C_out, L_out), L_out = ⌊(L + 2p - d(k-1) - 1)/s⌋ + 1.

    Example::

        >>> layer = Conv1d(1, 2, 3, padding=1, generator=torch.Generator().manual_seed(0))
        >>> layer.weight.shape, layer(torch.randn(4, 1, 6)).shape
        (torch.Size([2, 1, 3]), torch.Size([4, 2, 6]))
    """

    dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int | str = 0, dilation: int = 1, bias: bool = True,
                 generator: torch.Generator | int | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, bias=bias, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv1d(x, self.weight, self.bias, **self._args())


class Conv2d(_ConvNd):
    """A 2D convolutional layer (figs. 10.9-10.10): :func:`conv2d` with learnable ω and β.

    Args:
        in_channels: C_in. out_channels: C_out. kernel_size: k or (k_h, k_w).
        stride, padding, dilation: as :func:`conv2d`. bias: learn β (default True).
        generator: draws the initial ω, β ~ U(-1/√fan_in, 1/√fan_in), fan_in = C_in k_h k_w:
            a ``torch.Generator`` or an int seed; None uses torch's global generator.

    Attributes:
        weight: (C_out, C_in, k_h, k_w). bias: (C_out,) or None.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out), each size as :func:`conv_output_length`.

    Example::

        >>> layer = Conv2d(3, 8, 3, padding="same", generator=torch.Generator().manual_seed(0))
        >>> layer(torch.randn(1, 3, 16, 20)).shape
        torch.Size([1, 8, 16, 20])
    """

    dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], *,
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
                 dilation: int | Sequence[int] = 1, bias: bool = True, generator: torch.Generator | int | None = None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, bias=bias, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight, self.bias, **self._args())


# --------------------------------------------------------------------------- torch's layers, by dimension
_TORCH_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv_layer(dims: int, c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int | None = None,
               bias: bool = False) -> nn.Module:
    """Torch's ``dims``-dimensional convolution, the fast kernel that the models build on.

    Args:
        dims: 1, 2 or 3 (``nn.Conv1d``, ``nn.Conv2d``, ``nn.Conv3d``).
        c_in: C_in. c_out: C_out. kernel: k, the same along every axis.
        stride: s (default 1).
        padding: p zeros on each side; None (the default) is k // 2, which keeps the
            size for odd k and s = 1 ("same").
        bias: learn β (default False: the models follow it with a batch norm, whose
            offset δ plays β's role).

    Shape:
        ``(N, C_in, *spatial)`` -> ``(N, C_out, *spatial_out)``, each size as
        :func:`conv_output_length`.

    Example::

        >>> conv_layer(2, 3, 8, 3)(torch.zeros(1, 3, 16, 20)).shape
        torch.Size([1, 8, 16, 20])
    """
    check_choice(dims, "dims", "conv_layer", (1, 2, 3))
    padding = kernel // 2 if padding is None else padding
    return _TORCH_CONV[dims](c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)
