"""The shifted-window (Swin) transformer (UDL §12.10.4, fig. 12.18; Liu et al., 2021).

A vision transformer whose self-attention is local, so its cost grows linearly with the
number of patches instead of quadratically:

1. **patches**: the image is cut into P x P patches and each is mapped to C channels
   (a strided convolution, then LayerNorm): an (H/P) x (W/P) map of tokens;
2. **windows**: the map is cut into M x M windows and multi-head self-attention runs
   inside each window independently, with a learned bias per head and per relative
   offset (Δr, Δc) between query and key added to the scores::

       a[x_m, x_n] = softmax_m[k_mᵀ q_n / √D_q + B[Δr, Δc]],   Δr, Δc ∈ {-(M-1), ..., M-1}

3. **shifted windows**: every other layer first rolls the map by ⌊M/2⌋ patches up and
   left (``torch.roll``), so each new window straddles four old ones; patches that the
   roll wrapped around from the opposite border may not attend to the others in their
   window (an additive mask of -∞), and the output is rolled back. Two consecutive
   layers let information cross window borders;
4. **patch merging**: each 2 x 2 block of neighbouring tokens is concatenated (4C
   channels), normalised and mapped to 2C: the resolution halves, the channels double,
   and a window of M x M merged tokens covers 2M x 2M tokens of the stage before;
5. stages of such layers continue until a single window covers the whole map; the
   mean of the last tokens goes through LayerNorm and a linear layer to the class logits.

Each Swin block is a pre-LN transformer layer (§12.4) whose attention is windowed::

    X ← X + W-MSA[LayerNorm[X]]      (or SW-MSA, shifted, in odd layers)
    X ← X + mlp[LayerNorm[X]]        (per token, GELU)

Maps of tokens are channels-last ``(B, H, W, C)`` throughout. The layers compute what
Hugging Face ``transformers``' ``SwinLayer``, ``SwinPatchMerging`` and
``SwinForImageClassification`` compute (tested with copied weights), with two
differences: the shift mask is -∞ where theirs is -100 (so a patch's output does not
depend on patches outside its window at all, not even by e^-100), and there is no
stochastic depth. Sizes: :meth:`SwinConfig.swin_t` is Swin-T (28 million parameters).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.attention import MultiHeadAttention
from udl.nn.init import initialised_from
from udl.validate import (as_generator, check_choice, check_float, check_input, check_instance, check_int,
                          check_sizes)

__all__ = ["SwinConfig", "Swin", "SwinLayer", "WindowAttention", "PatchMerging", "PatchPartition",
           "window_partition", "window_reverse", "relative_offsets", "shift_mask", "window_ids"]

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


# --------------------------------------------------------------------------- windows
def _check_map(x, name: str, owner: str, window: int | None = None) -> None:
    """A ``(B, H, W, C)`` map whose H and W are multiples of ``window``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        check_input(x, name, owner, shape=("B", "H", "W", "C"), dtype=getattr(x, "dtype", torch.float32))
    if window is not None and (x.shape[1] % window or x.shape[2] % window):
        raise ValueError(f"The {name!r} parameter of {owner} must be a (B, H, W, C) map with H and W multiples of "
                         f"the window {window}. Got shape {tuple(x.shape)} instead.")


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """Cut a map of tokens into M x M windows, in row-major order of the windows and of the tokens inside.

    Args:
        x: ``(B, H, W, C)`` with H and W multiples of M.
        window: M.

    Returns:
        ``(B, n_windows, M·M, C)``, n_windows = (H/M)·(W/M); window k is at window row
        k // (W/M) and window column k % (W/M).

    Example::

        >>> window_partition(torch.arange(16.).view(1, 4, 4, 1), 2)[0, 1, :, 0].tolist()  # top-right window
        [2.0, 3.0, 6.0, 7.0]
    """
    window = check_int(window, "window", "window_partition")
    _check_map(x, "x", "window_partition", window)
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)  # (B, H/M, M, W/M, M, C)
    return x.transpose(2, 3).reshape(b, -1, window * window, c)  # (B, H/M·W/M, M·M, C)


def window_reverse(windows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`: ``(B, n_windows, M·M, C)`` -> ``(B, H, W, C)``."""
    owner = "window_reverse"
    height, width = check_int(height, "height", owner), check_int(width, "width", owner)
    if not isinstance(windows, torch.Tensor) or windows.dim() != 4:
        check_input(windows, "windows", owner, shape=("B", "n_windows", "M·M", "C"),
                    dtype=getattr(windows, "dtype", torch.float32))
    b, n, m2, c = windows.shape
    m = int(round(m2 ** 0.5))
    if m * m != m2 or height % m or width % m or n != (height // m) * (width // m):
        raise ValueError(f"The 'windows' parameter of {owner} must hold the (H/M)·(W/M) windows of M·M tokens of a "
                         f"{height} x {width} map. Got shape {tuple(windows.shape)} instead.")
    x = windows.view(b, height // m, width // m, m, m, c)  # (B, H/M, W/M, M, M, C)
    return x.transpose(2, 3).reshape(b, height, width, c)  # (B, H, W, C)


def relative_offsets(window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δr, Δc) between query i and key j of an M x M window (row-major tokens), each in [-(M-1), M-1].

    Returns:
        ``(dr, dc)``, each ``(M·M, M·M)`` int64: ``dr[i, j] = row_i - row_j``.

    Example::

        >>> dr, dc = relative_offsets(2)
        >>> dr[3].tolist(), dc[3].tolist()   # query 3 (row 1, column 1) to keys 0-3
        ([1, 1, 0, 0], [1, 0, 1, 0])
    """
    window = check_int(window, "window", "relative_offsets")
    rows = torch.arange(window, device="cpu").repeat_interleave(window)  # (M·M,) row of each token
    cols = torch.arange(window, device="cpu").repeat(window)  # (M·M,) column of each token
    return rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]  # (M·M, M·M) each


def window_ids(height: int, width: int, window: int, shift: int = 0) -> torch.Tensor:
    """Which window each patch of an H x W map belongs to, the windows offset by ``shift``.

    Unshifted, the windows are the M x M squares of the grid. Shifted by s, the window
    borders move s patches down and right: rows [0, s), [s, s + M), ..., [H - M + s, H)
    and likewise for the columns, so the windows at the borders are cut (these are the
    windows that rolling by s and masking produce, written without the roll).

    Returns:
        ``(H, W)`` int64 ids; two patches may attend to each other in the layer iff
        their ids are equal.

    Example::

        >>> window_ids(4, 4, 2, shift=1)[:, 0].tolist()   # rows 0 | 1, 2 | 3
        [0, 3, 3, 6]
    """
    owner = "window_ids"
    height, width = check_int(height, "height", owner), check_int(width, "width", owner)
    window = check_int(window, "window", owner)
    shift = check_int(shift, "shift", owner, minimum=0, maximum=window - 1)
    rows = (torch.arange(height) + (window - shift) % window) // window  # (H,) window row of each patch row
    cols = (torch.arange(width) + (window - shift) % window) // window  # (W,)
    n_cols = int(cols.max()) + 1
    return rows[:, None] * n_cols + cols[None, :]  # (H, W)


@functools.lru_cache(maxsize=16)
def _table_index(window: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δr + M - 1, Δc + M - 1): the rows and columns of the bias table for each query and key."""
    return tuple(d.add(window - 1).to(device) for d in relative_offsets(window))


@functools.lru_cache(maxsize=64)
def _shift_mask(height: int, width: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    # after rolling by -s, each axis has three regions: [0, H - M) holds patches that were in place, [H - M, H - s)
    # the last window's own patches, [H - s, H) those wrapped round from the top; only equal regions may attend
    def regions(n):
        i = torch.arange(n, device=device)
        return (i >= n - window).long() + (i >= n - shift).long()  # (n,) in {0, 1, 2}

    label = regions(height)[:, None] * 3 + regions(width)[None, :]  # (H, W)
    label = window_partition(label[None, :, :, None], window)[0, :, :, 0]  # (n_windows, M·M)
    same = label[:, :, None] == label[:, None, :]  # (n_windows, M·M queries, M·M keys)
    return torch.zeros(same.shape, device=device).masked_fill(~same, float("-inf"))


def shift_mask(height: int, width: int, window: int, shift: int, *, device=None) -> torch.Tensor | None:
    """The additive attention mask of a shifted-window layer on an H x W map (None when ``shift`` is 0).

    After the map is rolled by -s along both axes, a window at the bottom or right border
    holds patches that were far apart in the image (wrapped round from the top or the
    left); entry ``[k, i, j]`` is -∞ when query i and key j of window k come from different
    sides of such a seam, else 0.

    Returns:
        ``(n_windows, M·M, M·M)`` float32, or None.
    """
    owner = "shift_mask"
    height, width = check_int(height, "height", owner), check_int(width, "width", owner)
    window = check_int(window, "window", owner)
    shift = check_int(shift, "shift", owner, minimum=0, maximum=window - 1)
    if height % window or width % window:
        raise ValueError(f"The 'window' parameter of {owner} must divide height = {height} and width = {width}. "
                         f"Got {window} instead.")
    if shift == 0:
        return None
    return _shift_mask(height, width, window, shift, torch.device(device or "cpu"))


# --------------------------------------------------------------------------- layers
class WindowAttention(nn.Module):
    """Multi-head self-attention inside each M x M window, with a learned relative position bias.

    The windows are a batch for :class:`~udl.nn.attention.MultiHeadAttention`; the bias
    ``B[h, Δr + M - 1, Δc + M - 1]`` of head h for the offset (Δr, Δc) of the query from the
    key is added to the scores k_mᵀ q_n / √D_q, together with the shift mask when given.

    Args:
        d_model: C, the channels of each token.
        n_heads: H (must divide C).
        window: M.
        dropout: dropout on the attention weights (training only). Default 0.
        generator: the initial weights' randomness (torch's defaults for the projections,
            the bias table N(0, 0.02²) as the original). Default: torch's global generator.

    Shape:
        ``windows``: ``(B, n_windows, M·M, C)``; ``mask``: ``(n_windows, M·M, M·M)`` or None
        -> ``(B, n_windows, M·M, C)``.
    """

    def __init__(self, d_model: int, n_heads: int, window: int, *, dropout: float = 0.0,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "WindowAttention"
        self.window = check_int(window, "window", owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)  # checks d_model and n_heads
            self.bias_table = nn.Parameter(torch.empty(n_heads, 2 * window - 1, 2 * window - 1))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The bias table from N(0, 0.02²) truncated at ±2σ, as the original (projections: torch's default)."""
        nn.init.trunc_normal_(self.bias_table, std=0.02, a=-0.04, b=0.04, generator=generator)

    def position_bias(self) -> torch.Tensor:
        """``(H, M·M, M·M)``: entry [h, i, j] is B_h[Δr_ij, Δc_ij], added to query i's score for key j."""
        dr, dc = _table_index(self.window, self.bias_table.device)  # (M·M, M·M) each
        return self.bias_table[:, dr, dc]  # (H, M·M, M·M)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        owner, m2, c = "WindowAttention", self.window ** 2, self.attn.d_model
        if not (isinstance(windows, torch.Tensor) and windows.dim() == 4 and windows.shape[2:] == (m2, c)
                and windows.dtype == self.bias_table.dtype):
            check_input(windows, "windows", owner, shape=("B", "n_windows", m2, c), dtype=self.bias_table.dtype)
        b, n = windows.shape[:2]
        if mask is not None and not (isinstance(mask, torch.Tensor) and mask.shape == (n, m2, m2)):
            raise ValueError(f"The 'mask' parameter of {owner} must be an additive (n_windows, M·M, M·M) = "
                             f"({n}, {m2}, {m2}) tensor or None. Got {getattr(mask, 'shape', mask)!r} instead.")
        scores_mask = self.position_bias()[None]  # (1, H, M·M, M·M)
        if mask is not None:
            scores_mask = scores_mask + mask[:, None]  # (n_windows, H, M·M, M·M)
        scores_mask = scores_mask.expand(n, -1, -1, -1)  # (n_windows, H, M·M, M·M)
        scores_mask = scores_mask[None].expand(b, -1, -1, -1, -1).reshape(b * n, -1, m2, m2)  # (B·n_windows, H, ., .)
        out = self.attn(windows.reshape(b * n, m2, c), mask=scores_mask.to(windows.dtype))  # (B·n_windows, M·M, C)
        return out.view(b, n, m2, c)


class SwinLayer(nn.Module):
    """One Swin block: windowed (or shifted-window) attention and an MLP, each pre-LN with a residual.

    ::

        X ← X + roll_s(window_reverse(W-MSA(window_partition(roll_-s(LayerNorm[X])))))
        X ← X + mlp[LayerNorm[X]]

    Args:
        d_model: C.
        n_heads: H (must divide C).
        window: M.
        shift: s, the cyclic shift in patches (0: plain windows; the original uses ⌊M/2⌋
            in every other layer). Default 0.
        mlp_ratio: the MLP's hidden width is ``mlp_ratio · C``. Default 4.
        dropout: dropout on the attention weights and on each branch's output. Default 0.
        activation: the MLP's activation, "gelu" (default) or "relu".
        eps: LayerNorm's ε. Default 1e-5.
        generator: the initial weights' randomness. Default: torch's global generator.

    Shape:
        ``x``: ``(B, H, W, C)`` with H and W multiples of M -> ``(B, H, W, C)``.

    Example::

        >>> SwinLayer(8, 2, window=2, shift=1, generator=0)(torch.zeros(1, 4, 4, 8)).shape
        torch.Size([1, 4, 4, 8])
    """

    def __init__(self, d_model: int, n_heads: int, window: int, shift: int = 0, *, mlp_ratio: int = 4,
                 dropout: float = 0.0, activation: str = "gelu", eps: float = 1e-5,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "SwinLayer"
        d_model = check_int(d_model, "d_model", owner)
        self.window = check_int(window, "window", owner)
        self.shift = check_int(shift, "shift", owner, minimum=0, maximum=self.window - 1)
        mlp_ratio = check_int(mlp_ratio, "mlp_ratio", owner)
        self.p_drop = check_float(dropout, "dropout", owner, low=0.0, high=1.0, high_open=True)
        self.activation = check_choice(activation, "activation", owner, tuple(_ACTIVATIONS))
        eps = check_float(eps, "eps", owner, low=0.0, low_open=True)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.norm1 = nn.LayerNorm(d_model, eps=eps)
            self.attn = WindowAttention(d_model, n_heads, self.window, dropout=dropout)
            self.norm2 = nn.LayerNorm(d_model, eps=eps)
            self.linear1 = nn.Linear(d_model, mlp_ratio * d_model)
            self.linear2 = nn.Linear(mlp_ratio * d_model, d_model)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p_drop, self.training) if self.p_drop > 0 else x

    def windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """W-MSA (or SW-MSA when shifted) of a normalised map: ``(B, H, W, C)`` -> ``(B, H, W, C)``."""
        _, h, w, _ = x.shape
        s = self.shift
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))  # windows now start s patches down and right
        mask = _shift_mask(h, w, self.window, s, x.device) if s else None  # (n_windows, M·M, M·M)
        out = self.attn(window_partition(x, self.window), mask)  # (B, n_windows, M·M, C)
        out = window_reverse(out, h, w)  # (B, H, W, C)
        return torch.roll(out, shifts=(s, s), dims=(1, 2)) if s else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.norm1.normalized_shape[0]
        if not (isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[3] == c and not x.shape[1] % self.window
                and not x.shape[2] % self.window and x.dtype == self.linear1.weight.dtype):
            check_input(x, "x", "SwinLayer", shape=("B", "H", "W", c), dtype=self.linear1.weight.dtype)
            _check_map(x, "x", "SwinLayer", self.window)
        x = x + self._drop(self.windowed_attention(self.norm1(x)))
        act = _ACTIVATIONS[self.activation]
        return x + self._drop(self.linear2(act(self.linear1(self.norm2(x)))))


class PatchMerging(nn.Module):
    """Concatenate each 2 x 2 block of tokens (4C channels), normalise, map to 2C: resolution halves, channels double.

    The four tokens are concatenated in the order top-left, bottom-left, top-right,
    bottom-right (the original's and ``transformers``' order); the linear map has no bias.

    Args:
        d_model: C, the input channels.
        eps: LayerNorm's ε. Default 1e-5.
        generator: the initial weights' randomness. Default: torch's global generator.

    Shape:
        ``x``: ``(B, H, W, C)`` with H, W even -> ``(B, H/2, W/2, 2C)``.

    Example::

        >>> PatchMerging(8, generator=0)(torch.zeros(1, 4, 4, 8)).shape
        torch.Size([1, 2, 2, 16])
    """

    def __init__(self, d_model: int, *, eps: float = 1e-5, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "PatchMerging"
        d_model = check_int(d_model, "d_model", owner)
        eps = check_float(eps, "eps", owner, low=0.0, low_open=True)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.norm = nn.LayerNorm(4 * d_model, eps=eps)
            self.reduction = nn.Linear(4 * d_model, 2 * d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.reduction.in_features // 4
        if not (isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[3] == c and not x.shape[1] % 2
                and not x.shape[2] % 2 and x.dtype == self.reduction.weight.dtype):
            check_input(x, "x", "PatchMerging", shape=("B", "H", "W", c), dtype=self.reduction.weight.dtype)
            _check_map(x, "x", "PatchMerging", 2)
        # top-left, bottom-left, top-right, bottom-right token of each 2 x 2 block
        blocks = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]  # 4 x (B, H/2, W/2, C)
        x = torch.cat(blocks, dim=-1)  # (B, H/2, W/2, 4C)
        return self.reduction(self.norm(x))  # (B, H/2, W/2, 2C)


class PatchPartition(nn.Module):
    """Swin's stem: each P x P patch of pixels to C channels (a linear map: a stride-P convolution), then LayerNorm.

    Args:
        patch_size: P.
        in_channels: the image's channels.
        d_model: C.
        eps: LayerNorm's ε. Default 1e-5.
        generator: the initial weights' randomness. Default: torch's global generator.

    Shape:
        ``images``: ``(B, C_in, H, W)`` with H, W multiples of P -> ``(B, H/P, W/P, C)``.
    """

    def __init__(self, patch_size: int, in_channels: int, d_model: int, *, eps: float = 1e-5,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "PatchPartition"
        self.patch_size = check_int(patch_size, "patch_size", owner)
        in_channels = check_int(in_channels, "in_channels", owner)
        d_model = check_int(d_model, "d_model", owner)
        eps = check_float(eps, "eps", owner, low=0.0, low_open=True)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.proj = nn.Conv2d(in_channels, d_model, self.patch_size, stride=self.patch_size)
            self.norm = nn.LayerNorm(d_model, eps=eps)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p, c_in = self.patch_size, self.proj.in_channels
        if not (isinstance(images, torch.Tensor) and images.dim() == 4 and images.shape[1] == c_in
                and not images.shape[2] % p and not images.shape[3] % p and images.dtype == self.proj.weight.dtype):
            check_input(images, "images", "PatchPartition", shape=("B", c_in, "H", "W"), dtype=self.proj.weight.dtype)
        if images.shape[2] % p or images.shape[3] % p:
            raise ValueError(f"The 'images' parameter of PatchPartition must have a height and width that are "
                             f"multiples of the patch size {p}. Got shape {tuple(images.shape)} instead.")
        return self.norm(self.proj(images).permute(0, 2, 3, 1))  # (B, C, H/P, W/P) -> (B, H/P, W/P, C)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SwinConfig:
    """The shape of a :class:`Swin`; the defaults are Swin-T (28 million parameters).

    Stage s works on a (G/2^s) x (G/2^s) map of tokens with 2^s·C channels and
    ``n_heads[s]`` heads, G = image_size / patch_size; every stage's map must be a whole
    number of M x M windows. Odd layers of a stage shift their windows by ⌊M/2⌋, except in
    a stage that is a single window (shifting would change nothing but the mask).

    Presets: :meth:`swin_t`, :meth:`digits` (scikit-learn's 8 x 8 digits, a token per
    pixel: stages of 8², 4² and 2² tokens in 2 x 2 windows, the last a single window) and
    :meth:`tiny`.

    Example::

        >>> SwinConfig.digits().resolutions()
        [8, 4, 2]
    """

    image_size: int = 224  # H = W of the input images
    in_channels: int = 3  # channels of the input images
    patch_size: int = 4  # P: each P x P patch of pixels becomes one token
    d_model: int = 96  # C, the channels of the first stage; stage s has 2^s·C
    depths: tuple[int, ...] = (2, 2, 6, 2)  # Swin blocks per stage, unshifted and shifted in turn
    n_heads: tuple[int, ...] = (3, 6, 12, 24)  # attention heads per stage
    window: int = 7  # M: windows of M x M tokens
    mlp_ratio: int = 4  # each MLP's hidden width is mlp_ratio times the channels
    n_classes: int = 1000  # K, the outputs of the head
    dropout: float = 0.0  # dropout on attention weights and branch outputs (training only)
    activation: str = "gelu"  # the MLPs' activation: "gelu" (Swin) or "relu"
    eps: float = 1e-5  # LayerNorm's ε

    def __post_init__(self):
        owner = "SwinConfig"
        for name in ("image_size", "in_channels", "patch_size", "d_model", "window", "mlp_ratio", "n_classes"):
            check_int(getattr(self, name), name, owner)
        object.__setattr__(self, "depths", check_sizes(self.depths, "depths", owner))
        object.__setattr__(self, "n_heads", check_sizes(self.n_heads, "n_heads", owner))
        check_float(self.dropout, "dropout", owner, low=0.0, high=1.0, high_open=True)
        check_choice(self.activation, "activation", owner, tuple(_ACTIVATIONS))
        check_float(self.eps, "eps", owner, low=0.0, low_open=True)
        if self.image_size % self.patch_size:
            raise ValueError(f"The 'patch_size' parameter of {owner} must divide image_size = {self.image_size}. "
                             f"Got {self.patch_size} instead.")
        if len(self.n_heads) != len(self.depths):
            raise ValueError(f"The 'n_heads' parameter of {owner} must give one count per stage "
                             f"({len(self.depths)}). Got {self.n_heads} instead.")
        grid, stages = self.image_size // self.patch_size, len(self.depths)
        if grid % (self.window * 2 ** (stages - 1)):
            raise ValueError(f"The 'window' parameter of {owner} must tile every stage's map: window·2^(stages - 1) "
                             f"must divide the {grid} x {grid} patches. Got {self.window} with {stages} stages "
                             f"instead.")
        for s, h in enumerate(self.n_heads):
            if (self.d_model * 2 ** s) % h:
                raise ValueError(f"The 'n_heads' parameter of {owner} must divide each stage's channels "
                                 f"{self.widths()}. Got {self.n_heads} instead.")

    @classmethod
    def swin_t(cls, **changes) -> SwinConfig:
        """Swin-T: 224² images, 4 x 4 patches, C = 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), 7 x 7 windows."""
        return cls(**changes)

    @classmethod
    def digits(cls, **changes) -> SwinConfig:
        """For 8 x 8 digits: 1-pixel patches, C = 16, depths (2, 2, 2), heads (1, 2, 4), 2 x 2 windows, MLP 2C."""
        return cls(**{**dict(image_size=8, in_channels=1, patch_size=1, d_model=16, depths=(2, 2, 2),
                             n_heads=(1, 2, 4), window=2, mlp_ratio=2, n_classes=10), **changes})

    @classmethod
    def tiny(cls, **changes) -> SwinConfig:
        """A test-sized model: 8² images, 1-pixel patches, C = 8, depths (2, 2, 2), 2 x 2 windows, 10 classes."""
        return cls(**{**dict(image_size=8, in_channels=1, patch_size=1, d_model=8, depths=(2, 2, 2),
                             n_heads=(1, 2, 2), window=2, mlp_ratio=2, n_classes=10), **changes})

    def resolutions(self) -> list[int]:
        """The side of each stage's map of tokens: G, G/2, G/4, ..."""
        return [self.image_size // self.patch_size // 2 ** s for s in range(len(self.depths))]

    def widths(self) -> list[int]:
        """The channels of each stage: C, 2C, 4C, ..."""
        return [self.d_model * 2 ** s for s in range(len(self.depths))]

    def shifts(self, stage: int) -> list[int]:
        """The shift of each layer of ``stage``: 0, ⌊M/2⌋, 0, ... (all 0 when the stage is a single window)."""
        single = self.resolutions()[stage] == self.window
        return [0 if single or i % 2 == 0 else self.window // 2 for i in range(self.depths[stage])]

    def parameter_formula(self) -> dict[str, int]:
        """The parameters of each part, in closed form.

        With D_s = 2^s C the channels of stage s, L_s its layers, H_s its heads, r the MLP
        ratio, M the window, P the patch size and K the classes::

            patch embedding      P²·C_in·C + C + 2C              convolution, LayerNorm
            attention            Σ_s L_s (4 D_s² + 4 D_s)        Ω_q, Ω_k, Ω_v, Ω_c and biases
            position bias        Σ_s L_s H_s (2M - 1)²           one table per layer
            MLP                  Σ_s L_s (2 r D_s² + r D_s + D_s)
            LayerNorm            Σ_s L_s 4 D_s + 2 D_last        two per layer, one at the end
            patch merging        Σ_{s<last} (8 D_s + 8 D_s²)     LayerNorm(4D), 4D -> 2D without bias
            head                 D_last K + K
        """
        c, r, m, p = self.d_model, self.mlp_ratio, self.window, self.patch_size
        widths, depths, heads = self.widths(), self.depths, self.n_heads
        return {"patch embedding": p * p * self.in_channels * c + c + 2 * c,
                "attention": sum(n * (4 * d * d + 4 * d) for n, d in zip(depths, widths)),
                "position bias": sum(n * h * (2 * m - 1) ** 2 for n, h in zip(depths, heads)),
                "MLP": sum(n * (2 * r * d * d + r * d + d) for n, d in zip(depths, widths)),
                "LayerNorm": sum(n * 4 * d for n, d in zip(depths, widths)) + 2 * widths[-1],
                "patch merging": sum(8 * d + 8 * d * d for d in widths[:-1]),
                "head": widths[-1] * self.n_classes + self.n_classes}

    def parameter_count(self) -> int:
        """The total of :meth:`parameter_formula`."""
        return sum(self.parameter_formula().values())

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- the model
class SwinStage(nn.Module):
    """The layers of one stage, then (except in the last stage) a patch merging."""

    def __init__(self, layers: list[SwinLayer], merge: PatchMerging | None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.merge = merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x if self.merge is None else self.merge(x)


class Swin(nn.Module):
    """A Swin transformer classifier: patch embedding, stages of Swin blocks and merges, mean pool, head.

    Args:
        config: a :class:`SwinConfig`.
        generator: the initial weights' randomness, a ``torch.Generator`` or an int seed
            (torch's default for each layer, position bias tables N(0, 0.02²)). Default:
            torch's global generator.

    Shape:
        ``images``: ``(B, C_in, S, S)`` with S = ``config.image_size`` -> logits ``(B, K)``.

    Example::

        >>> Swin(SwinConfig.tiny(), generator=0)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, config: SwinConfig, *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = check_instance(config, "config", "Swin", SwinConfig)
        generator = as_generator(generator, "Swin")
        widths, last = c.widths(), len(c.depths) - 1
        with initialised_from(self, generator):
            self.embed = PatchPartition(c.patch_size, c.in_channels, c.d_model, eps=c.eps)
            self.stages = nn.ModuleList(
                SwinStage([SwinLayer(widths[s], c.n_heads[s], c.window, shift, mlp_ratio=c.mlp_ratio,
                                     dropout=c.dropout, activation=c.activation, eps=c.eps)
                           for shift in c.shifts(s)],
                          PatchMerging(widths[s], eps=c.eps) if s < last else None)
                for s in range(len(c.depths)))
            self.norm = nn.LayerNorm(widths[-1], eps=c.eps)
            self.head = nn.Linear(widths[-1], c.n_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's map of tokens, normalised: ``(B, C_in, S, S)`` -> ``(B, G_last, G_last, D_last)``."""
        c = self.config
        if not (isinstance(images, torch.Tensor) and images.shape[1:] == (c.in_channels, c.image_size, c.image_size)
                and images.dim() == 4 and images.dtype == self.head.weight.dtype):
            check_input(images, "images", "Swin", shape=("B", c.in_channels, c.image_size, c.image_size),
                        dtype=self.head.weight.dtype)
        x = self.embed(images)  # (B, G, G, C)
        for stage in self.stages:
            x = stage(x)  # resolution halves, channels double at each merge
        return self.norm(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).mean(dim=(1, 2)))  # mean over the tokens: (B, D_last) -> (B, K)
