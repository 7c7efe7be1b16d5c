"""U-Net in 2D and 3D (UDL §11.5.3, fig. 11.10; Ronneberger et al. 2015; Çiçek et al. 2016).

A U-Net is an encoder-decoder for dense prediction (one label per pixel or voxel).
The encoder has ``levels`` resolution levels; each applies two 3×3 (3×3×3)
convolutions with ReLU, and a 2×2 (2×2×2) max pooling halves the size between
levels while the number of channels doubles::

    c_k = width · 2^k,   k = 0 .. levels - 1        (64, 128, 256, 512, 1024 in the original)

The decoder climbs back: at level k a 2×2 transposed convolution (stride 2) doubles
the size and halves the channels (c_{k+1} -> c_k); the encoder's last representation
at that scale is *concatenated* to this first representation of the decoder (the skip
connection of fig. 11.10: c_k + c_k channels), and two 3×3 convolutions with ReLU
bring it back to c_k channels. A 1×1 convolution maps c_0 channels to ``n_classes``
scores per pixel.

Padding:

- ``"valid"`` (the original): no zero padding, so each 3×3 convolution removes one
  pixel on each side (size s -> s - 2). The encoder's representation is then larger
  than the decoder's at the same scale and is centre-cropped (the dashed squares of
  fig. 11.10) before the concatenation. The output is smaller than the input:
  572 × 572 -> 388 × 388 for the original five levels. To segment a whole image, feed
  a larger, mirror-padded tile (:meth:`UNet.predict` does this), as the original's
  overlap-tile strategy did.
- ``"same"``: zero padding keeps the size; nothing is cropped and the output has the
  input's size, which must then be divisible by 2^(levels-1).

Sizes are per spatial axis: :func:`unet_geometry` gives every representation's size
for an input size (raising a clear ValueError when a size is odd before a pooling),
:func:`unet_input_size` the input size that yields a given output size, and
:func:`unet_parameter_count` the number of parameters in closed form
(31,030,658 for the original with two output classes).

Example::

    model = UNet(1, 2, levels=3, width=8, padding="valid", generator=0)
    model(torch.zeros(1, 1, 60, 60)).shape          # torch.Size([1, 2, 20, 20])
    unet_geometry(572, levels=5).output_size        # 388
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn

from udl.nn.conv import conv_layer
from udl.nn.init import he_init, initialised_from
from udl.nn.normalization import batch_norm_layer
from udl.validate import as_generator, check_bool, check_choice, check_int, is_int

__all__ = ["UNet", "UNetGeometry", "UNetTrace", "unet_geometry", "unet_input_size", "unet_tile_sizes",
           "unet_parameter_count", "center_crop", "reflect_pad", "split_tiles", "trace_unet"]

_PADDINGS = ("valid", "same")
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_UP = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


# --------------------------------------------------------------------------- sizes
class UNetGeometry(NamedTuple):
    """The size (along one axis) of every representation of a U-Net; lists indexed by level k.

    Fields:
        input_size: the input's size.
        encoder: ``levels`` sizes, the encoder's last representation at level k
            (after its two convolutions; the last entry is the bottleneck).
        up: ``levels - 1`` sizes, the decoder's first representation at level k
            (after the transposed convolution); the encoder's features are cropped to it.
        decoder: ``levels - 1`` sizes, the decoder's last representation at level k.
        output_size: the output's size (``decoder[0]``, or the bottleneck for one level).
    """

    input_size: int
    encoder: tuple[int, ...]
    up: tuple[int, ...]
    decoder: tuple[int, ...]
    output_size: int

    @property
    def crops(self) -> tuple[int, ...]:
        """Pixels removed from each side of the encoder's features at level k (0 for "same")."""
        return tuple((e - u) // 2 for e, u in zip(self.encoder, self.up))


def _check_levels_padding(levels, padding, owner: str) -> None:
    check_int(levels, "levels", owner)
    check_choice(padding, "padding", owner, _PADDINGS)


def _geometry(n: int, levels: int, padding: str) -> UNetGeometry | str:
    """The geometry of an input of size n, or the reason it does not work."""
    shrink = 4 if padding == "valid" else 0  # two 3x3 convolutions remove 2 pixels each side
    encoder, s = [], n
    for k in range(levels):
        if k > 0:
            if s % 2:
                return f"the representation has odd size {s} before pooling {k}"
            s //= 2
        s -= shrink
        if s < 1:
            return f"the representation shrinks to {s} at encoder level {k}"
        encoder.append(s)
    up, decoder = [0] * (levels - 1), [0] * (levels - 1)
    for k in reversed(range(levels - 1)):
        up[k] = 2 * s
        s = up[k] - shrink
        if s < 1:
            return f"the representation shrinks to {s} at decoder level {k}"
        decoder[k] = s
    return UNetGeometry(n, tuple(encoder), tuple(up), tuple(decoder), s)


def _accepted_sizes(n: int, levels: int, padding: str) -> str:
    """What the message asks for instead of the refused size ``n``, with the nearest sizes that work."""
    works = lambda m: m >= 1 and isinstance(_geometry(m, levels, padding), UNetGeometry)  # noqa: E731
    step = 2 ** (levels - 1)
    below = next((m for m in range(n - 1, max(0, n - 8 * step), -1) if works(m)), None)
    above = next((m for m in range(n + 1, n + 8 * step + 200) if works(m)), None)
    sizes = [str(m) for m in (below, above) if m is not None]
    near = f" (the nearest are {' and '.join(sizes)})" if sizes else ""
    return (f"a size that a {levels}-level U-Net with {padding!r} padding accepts, even before every pooling "
            f"and at least one pixel throughout{near}")


def unet_geometry(input_size: int, *, levels: int = 5, padding: str = "valid") -> UNetGeometry:
    """Every representation's size along one axis for an input of ``input_size``.

    With "valid" padding each 3×3 convolution maps s -> s - 2, so a level's two
    convolutions map s -> s - 4; pooling maps s -> s/2 (s must be even) and the
    transposed convolution s -> 2s. With "same" padding only the pooling and the
    transposed convolution change the size.

    Args:
        input_size: the input's size along the axis.
        levels: the number of resolution levels (poolings + 1). Default: 5.
        padding: ``"valid"`` or ``"same"``. Default: "valid".

    Returns:
        A :class:`UNetGeometry`.

    Raises:
        ValueError: when the size is odd before a pooling or shrinks below one pixel;
            the message names the nearest sizes that work.

    Example:
        >>> g = unet_geometry(572, levels=5)
        >>> g.encoder, g.up, g.output_size
        ((568, 280, 136, 64, 28), (392, 200, 104, 56), 388)
    """
    owner = "unet_geometry"
    check_int(input_size, "input_size", owner)
    _check_levels_padding(levels, padding, owner)
    geometry = _geometry(input_size, levels, padding)
    if isinstance(geometry, str):
        raise ValueError(f"The 'input_size' parameter of {owner} must be "
                         f"{_accepted_sizes(input_size, levels, padding)}. Got {input_size} ({geometry}) instead.")
    return geometry


def unet_input_size(output_size: int, *, levels: int = 5, padding: str = "valid") -> int:
    """The input size that gives ``output_size`` (the inverse of :func:`unet_geometry`).

    Walk the network backwards: each pair of "valid" convolutions adds 4 pixels, each
    transposed convolution halves (the size must be even), each pooling doubles.
    For the original U-Net, 388 -> 572.

    Args:
        output_size: the wanted output size along one axis.
        levels: the number of resolution levels. Default: 5.
        padding: ``"valid"`` or ``"same"``. Default: "valid".

    Raises:
        ValueError: when no input size gives exactly ``output_size``.

    Example:
        >>> unet_input_size(388, levels=5)
        572
    """
    owner = "unet_input_size"
    check_int(output_size, "output_size", owner)
    _check_levels_padding(levels, padding, owner)
    n = _input_for_output(output_size, levels, padding)
    if n is not None:
        return n
    outputs = {g.output_size for m in range(1, 4 * (output_size + 200))
               if isinstance(g := _geometry(m, levels, padding), UNetGeometry)
               and abs(g.output_size - output_size) <= 2 ** levels}
    near = sorted(sorted(outputs, key=lambda o: abs(o - output_size))[:2])
    hint = f" (the nearest are {' and '.join(map(str, near))})" if near else ""
    raise ValueError(f"The 'output_size' parameter of {owner} must be a size that a {levels}-level U-Net with "
                     f"{padding!r} padding produces{hint}. Got {output_size} instead.")


def _input_for_output(output_size: int, levels: int, padding: str) -> int | None:
    grow = 4 if padding == "valid" else 0
    s = output_size
    for _ in range(levels - 1):  # decoder, backwards
        s += grow
        if s % 2:
            return None
        s //= 2
    n = s + grow  # the bottleneck's convolutions
    for _ in range(levels - 1):  # encoder, backwards
        n = 2 * n + grow
    geometry = _geometry(n, levels, padding)
    ok = isinstance(geometry, UNetGeometry) and geometry.output_size == output_size
    return n if ok else None


def unet_tile_sizes(size: int, *, levels: int = 5, padding: str = "valid") -> tuple[int, int]:
    """``(input_size, output_size)`` of the smallest tile whose output covers ``size`` pixels.

    The output size is the smallest one ≥ ``size`` that the network produces; the input
    is what gives it (larger than the output for "valid" padding, by the margin the
    convolutions eat).

    Example:
        >>> unet_tile_sizes(380, levels=5)
        (572, 388)
    """
    owner = "unet_tile_sizes"
    check_int(size, "size", owner)
    _check_levels_padding(levels, padding, owner)
    for output_size in range(size, size + 4 * 2 ** levels + 1):
        n = _input_for_output(output_size, levels, padding)
        if n is not None:
            return n, output_size
    raise AssertionError("unreachable: output sizes repeat every 2^(levels-1)")  # pragma: no cover


def unet_parameter_count(in_channels: int = 1, n_classes: int = 2, *, dims: int = 2, levels: int = 5,
                         width: int = 64, batch_norm: bool = False) -> int:
    """The number of parameters of :class:`UNet`, in closed form.

    With c_k = width · 2^k, K = 3^dims weights per 3×3 kernel and P = 2^dims per 2×2
    kernel, a convolution c -> c' has K c c' weights plus c' biases (or, with batch
    norm, no bias and 2c' for the norm's scale γ and offset δ)::

        encoder level k:  conv(c_{k-1} -> c_k) + conv(c_k -> c_k),   c_{-1} = in_channels
        decoder level k:  P c_{k+1} c_k + c_k  (transposed)  + conv(2 c_k -> c_k) + conv(c_k -> c_k)
        head:             c_0 n_classes + n_classes

    The original (1 input channel, 2 classes, 5 levels, width 64, no batch norm) has
    31,030,658 parameters.

    Example:
        >>> unet_parameter_count(1, 2, levels=5, width=64)
        31030658
    """
    owner = "unet_parameter_count"
    check_int(in_channels, "in_channels", owner)
    check_int(n_classes, "n_classes", owner)
    check_choice(dims, "dims", owner, (2, 3))
    check_int(levels, "levels", owner)
    check_int(width, "width", owner)
    check_bool(batch_norm, "batch_norm", owner)
    K, P = 3 ** dims, 2 ** dims

    def conv(c_in: int, c_out: int) -> int:
        return K * c_in * c_out + (2 * c_out if batch_norm else c_out)

    c = [width * 2 ** k for k in range(levels)]
    total, c_prev = 0, in_channels
    for k in range(levels):
        total += conv(c_prev, c[k]) + conv(c[k], c[k])
        c_prev = c[k]
    for k in range(levels - 1):
        total += P * c[k + 1] * c[k] + c[k] + conv(2 * c[k], c[k]) + conv(c[k], c[k])
    return total + c[0] * n_classes + n_classes


# --------------------------------------------------------------------------- tensor helpers
def _spatial(x, dims_name: str, owner: str, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"The {name!r} parameter of {owner} must be a torch.Tensor. Got {type(x).__name__} instead.")
    if x.dim() < 3:
        raise ValueError(f"The {name!r} parameter of {owner} must have shape (N, C, {dims_name}). "
                         f"Got {tuple(x.shape)} instead.")
    return x


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The centre of ``x``'s spatial axes, ``size`` long (the dashed crops of fig. 11.10).

    Along an axis of length s cropped to t, the first ``(s - t) // 2`` and the last
    ``s - t - (s - t) // 2`` entries are removed (an equal number when s - t is even,
    as it always is inside a "valid" U-Net).

    Args:
        x: ``(N, C, *spatial)``.
        size: the target length of each spatial axis, each ≤ the current one.

    Shape:
        ``(N, C, s_1, ..., s_d) -> (N, C, t_1, ..., t_d)``.

    Example:
        >>> center_crop(torch.arange(16.).view(1, 1, 4, 4), (2, 2)).flatten().tolist()
        [5.0, 6.0, 9.0, 10.0]
    """
    owner = "center_crop"
    _spatial(x, "*spatial", owner)
    spatial = tuple(x.shape[2:])
    if not isinstance(size, (list, tuple, torch.Size)) or len(size) != len(spatial) or \
            any(not is_int(t) or not 1 <= t <= s for t, s in zip(size, spatial)):
        raise ValueError(f"The 'size' parameter of {owner} must be {len(spatial)} ints, each between 1 and the "
                         f"input's size {spatial}. Got {size!r} instead.")
    index = tuple(slice((s - t) // 2, (s - t) // 2 + t) for s, t in zip(spatial, size))
    return x[(..., *index)]


def _reflect_index(n: int, before: int, after: int) -> torch.Tensor:
    """Indices of a mirror padding (edge not repeated), for pads of any width."""
    t = torch.arange(-before, n + after)
    if n == 1:
        return torch.zeros_like(t)
    period = 2 * (n - 1)
    t = t.remainder(period)
    return torch.where(t < n, t, period - t)


def reflect_pad(x: torch.Tensor, pad: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mirror-pad the spatial axes of ``x`` by ``pad[i] = (before, after)`` entries.

    The mirror does not repeat the edge (numpy's ``mode="reflect"``: ``[a b c] ->
    c b [a b c] b a``), and pads wider than the axis reflect again and again, so any
    width works (unlike ``torch.nn.functional.pad``). This is the overlap-tile
    padding of Ronneberger et al.: the network sees a plausible continuation of the
    image around its border.

    Args:
        x: ``(N, C, *spatial)``.
        pad: one ``(before, after)`` pair of non-negative ints per spatial axis.

    Shape:
        ``(N, C, s_1, ..., s_d) -> (N, C, s_1 + b_1 + a_1, ..., s_d + b_d + a_d)``.

    Example:
        >>> reflect_pad(torch.tensor([[[1., 2., 3.]]]), [(2, 1)]).tolist()
        [[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]
    """
    owner = "reflect_pad"
    _spatial(x, "*spatial", owner)
    spatial = tuple(x.shape[2:])
    ok = isinstance(pad, (list, tuple)) and len(pad) == len(spatial) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(is_int(v) and v >= 0
                                                             for v in p) for p in pad)
    if not ok:
        raise ValueError(f"The 'pad' parameter of {owner} must be {len(spatial)} (before, after) pairs of "
                         f"non-negative ints. Got {pad!r} instead.")
    for axis, (n, (before, after)) in enumerate(zip(spatial, pad)):
        if before or after:
            x = x.index_select(2 + axis, _reflect_index(n, before, after).to(x.device))
    return x


def split_tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """Cut every image (volume) of ``x`` into non-overlapping ``tile``-sized pieces.

    A fully convolutional network trained on tiles applies unchanged to whole images;
    small tiles make cheap, varied batches (the tiles of image 0 come first, in
    row-major order of their positions).

    Args:
        x: ``(N, C, *spatial)`` with every spatial size divisible by ``tile``.
        tile: the side of the tiles.

    Shape:
        ``(N, C, s_1, ..., s_d) -> (N · Π s_i / tile, C, tile, ..., tile)``.

    Example:
        >>> split_tiles(torch.zeros(2, 1, 32, 32, 32), 16).shape
        torch.Size([16, 1, 16, 16, 16])
    """
    owner = "split_tiles"
    _spatial(x, "*spatial", owner)
    check_int(tile, "tile", owner)
    spatial = tuple(x.shape[2:])
    if any(s % tile for s in spatial):
        raise ValueError(f"The 'tile' parameter of {owner} must divide every spatial size {spatial}. "
                         f"Got {tile} instead.")
    N, C, d = x.shape[0], x.shape[1], len(spatial)
    grid = [s // tile for s in spatial]
    x = x.reshape(N, C, *[v for g in grid for v in (g, tile)])  # (N, C, g_1, t, g_2, t, ...)
    order = [0, *range(2, 2 + 2 * d, 2), 1, *range(3, 3 + 2 * d, 2)]
    return x.permute(order).reshape(-1, C, *[tile] * d)  # (N, g_1, ..., g_d, C, t, ..., t) -> (N·Πg, C, t, ...)


# --------------------------------------------------------------------------- modules
def _conv_unit(dims: int, c_in: int, c_out: int, padding: str, batch_norm: bool) -> nn.Sequential:
    """3×3 convolution → [batch norm] → ReLU."""
    layers = [conv_layer(dims, c_in, c_out, 3, padding=1 if padding == "same" else 0, bias=not batch_norm)]
    if batch_norm:
        layers.append(batch_norm_layer(dims, c_out))
    return nn.Sequential(*layers, nn.ReLU())


class ConvBlock(nn.Sequential):
    """Two 3×3 convolutions with ReLU: the work done at each level of a U-Net."""

    def __init__(self, dims: int, c_in: int, c_out: int, padding: str, batch_norm: bool):
        super().__init__(_conv_unit(dims, c_in, c_out, padding, batch_norm),
                         _conv_unit(dims, c_out, c_out, padding, batch_norm))


class SkipConcat(nn.Module):
    """The skip connection of fig. 11.10: concatenate the (cropped) encoder features to the decoder's.

    ``forward(skip, h)`` returns ``cat([center_crop(skip, h's size), h], dim=1)``:
    c_skip + c_h channels at h's spatial size.
    """

    def forward(self, skip: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        skip = center_crop(skip, tuple(h.shape[2:]))
        return torch.cat([skip, h], dim=1)  # (N, c_skip + c_h, *h.spatial)


class UNet(nn.Module):
    """The U-Net of Ronneberger et al. (2015), in 2D or 3D (fig. 11.10).

    ``levels`` resolution levels with c_k = width · 2^k channels; two 3×3 convolutions
    + ReLU per level (optionally with batch norm), 2×2 max pooling down, 2×2
    transposed convolutions up, skip connections that concatenate the encoder's last
    representation at each scale (centre-cropped for "valid" padding) to the decoder's
    first, and a 1×1 convolution to ``n_classes`` scores. Convolutions get He
    initialisation (§7.5), as in the original.

    Args:
        in_channels: input channels. Default: 1.
        n_classes: output channels (class scores per pixel). Default: 2.
        dims: 2 for images, 3 for volumes. Default: 2.
        levels: resolution levels, one more than the poolings. Default: 5 (the original).
        width: channels at the first level, c_0. Default: 64 (the original).
        padding: ``"valid"`` (the original: sizes shrink, encoder features are
            cropped) or ``"same"``. Default: "valid".
        batch_norm: batch norm after every 3×3 convolution (then without bias).
            Default: False (the original had none).
        generator: the random numbers of the initial weights (He initialisation for the
            convolutions, N(0, 1/c_in) for the transposed ones): a ``torch.Generator`` or
            an int seed. Default: None, torch's global generator.

    Shape:
        ``(N, in_channels, s_1, ..., s_dims) -> (N, n_classes, o_1, ..., o_dims)`` with
        ``o_i = unet_geometry(s_i, levels=levels, padding=padding).output_size``
        (``o_i = s_i`` for "same").

    Example:
        >>> model = UNet(1, 2, levels=3, width=8, generator=0)
        >>> model(torch.zeros(1, 1, 60, 60)).shape
        torch.Size([1, 2, 20, 20])
        >>> UNet(1, 1, dims=3, levels=2, width=4, padding="same")(torch.zeros(1, 1, 8, 8, 8)).shape
        torch.Size([1, 1, 8, 8, 8])
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, *, dims: int = 2, levels: int = 5,
                 width: int = 64, padding: str = "valid", batch_norm: bool = False,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "UNet"
        self.in_channels = check_int(in_channels, "in_channels", owner)
        self.n_classes = check_int(n_classes, "n_classes", owner)
        self.dims = check_choice(dims, "dims", owner, (2, 3))
        self.levels = check_int(levels, "levels", owner)
        self.width = check_int(width, "width", owner)
        self.padding = check_choice(padding, "padding", owner, _PADDINGS)
        self.batch_norm = check_bool(batch_norm, "batch_norm", owner)
        generator = as_generator(generator, owner)
        self.channels = tuple(width * 2 ** k for k in range(levels))  # c_k
        c = self.channels
        with initialised_from(self, generator):
            self.encoder = nn.ModuleList(
                ConvBlock(dims, in_channels if k == 0 else c[k - 1], c[k], padding, batch_norm) for k in range(levels))
            self.pool = _POOL[dims](2)
            self.up = nn.ModuleList(_UP[dims](c[k + 1], c[k], 2, stride=2) for k in range(levels - 1))
            self.skip = nn.ModuleList(SkipConcat() for _ in range(levels - 1))
            self.decoder = nn.ModuleList(ConvBlock(dims, 2 * c[k], c[k], padding, batch_norm)
                                         for k in range(levels - 1))
            self.head = conv_layer(dims, c[0], n_classes, 1, padding=0, bias=True)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (std √(2 / (K c_in))) of the convolutions, N(0, 1/c_in) for the transposed ones.

        Biases start at zero.
        """
        for m in self.modules():  # in order: encoder, up, decoder, head
            if isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
                # each output of a 2×2 stride-2 transposed convolution sums c_in inputs
                nn.init.normal_(m.weight, std=math.sqrt(1.0 / m.in_channels), generator=generator)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
                he_init(m, generator)

    @classmethod
    def tiny(cls, **changes) -> UNet:
        """A test-sized U-Net: 3 levels of 4, 8, 16 channels; ``changes`` override (``dims=3``, ``generator=0``...)."""
        return cls(**{**dict(levels=3, width=4), **changes})

    def geometry(self, input_size: int) -> UNetGeometry:
        """:func:`unet_geometry` of this network for one axis of size ``input_size``."""
        return unet_geometry(input_size, levels=self.levels, padding=self.padding)

    def _check_input(self, x, owner: str) -> None:
        spatial = ", ".join(f"s{i + 1}" for i in range(self.dims))
        _spatial(x, spatial, owner)
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"The 'x' parameter of {owner} must have shape (N, {self.in_channels}, {spatial}). "
                             f"Got {tuple(x.shape)} instead.")
        for n in x.shape[2:]:
            geometry = _geometry(int(n), self.levels, self.padding)
            if isinstance(geometry, str):
                raise ValueError(f"The 'x' parameter of {owner} must have spatial sizes each "
                                 f"{_accepted_sizes(int(n), self.levels, self.padding)}. Got shape "
                                 f"{tuple(x.shape)} (size {n}: {geometry}) instead.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) per output pixel; see the class docstring for the sizes."""
        self._check_input(x, "UNet.forward")
        skips = []
        h = x
        for k, block in enumerate(self.encoder):
            if k > 0:
                h = self.pool(h)  # size s -> s / 2
            h = block(h)  # c_{k-1} -> c_k channels
            skips.append(h)
        for k in reversed(range(self.levels - 1)):
            h = self.up[k](h)  # (N, c_{k+1}, s) -> (N, c_k, 2s)
            h = self.skip[k](skips[k], h)  # (N, c_k + c_k, 2s): encoder features, cropped, then decoder's
            h = self.decoder[k](h)  # (N, c_k, 2s - 4) for "valid"
        return self.head(h)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits with ``x``'s own spatial size, for any size: mirror-pad, run, crop.

        Each axis of size s is padded to the input of :func:`unet_tile_sizes` (s), by
        the margin the "valid" convolutions remove (``(input - output) / 2`` before)
        plus whatever makes the sizes work (after), so that output pixel j lies over
        input pixel j; the output is then cut to s. The grad mode is left as it is.

        Shape:
            ``(N, in_channels, s_1, ..., s_dims) -> (N, n_classes, s_1, ..., s_dims)``.
        """
        owner = "UNet.predict"
        _spatial(x, "*spatial", owner)
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"The 'x' parameter of {owner} must have shape (N, {self.in_channels}, "
                             f"{self.dims} sizes). Got {tuple(x.shape)} instead.")
        pad, spatial = [], tuple(int(n) for n in x.shape[2:])
        for n in spatial:
            n_in, n_out = unet_tile_sizes(n, levels=self.levels, padding=self.padding)
            before = (n_in - n_out) // 2
            pad.append((before, n_in - n - before))
        out = self(reflect_pad(x, pad))
        return out[(..., *(slice(0, n) for n in spatial))]

    def extra_repr(self) -> str:
        return f"dims={self.dims}, levels={self.levels}, channels={self.channels}, padding={self.padding!r}"


# --------------------------------------------------------------------------- tracing
class UNetTrace(NamedTuple):
    """Shapes ``(C, *spatial)`` (no batch axis) of a U-Net's representations, recorded by hooks.

    Lists are indexed by level k (0 = finest):

    Fields:
        input: the input.
        encoder: per level, the two convolutions' outputs ``(after conv 1, after conv 2)``.
        up: per decoder level, the transposed convolution's output (decoder's first representation).
        skip: per decoder level, the encoder's features before cropping.
        concat: per decoder level, the concatenation (cropped encoder + decoder channels).
        decoder: per decoder level, the two convolutions' outputs.
        output: the head's output.
    """

    input: tuple[int, ...]
    encoder: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    up: tuple[tuple[int, ...], ...]
    skip: tuple[tuple[int, ...], ...]
    concat: tuple[tuple[int, ...], ...]
    decoder: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    output: tuple[int, ...]


def trace_unet(model: UNet, x: torch.Tensor) -> UNetTrace:
    """Run ``model`` on ``x`` with forward hooks and record every representation's shape.

    Works on the meta device (``with torch.device("meta"): UNet(...)`` and a meta
    input), which gives the shapes of the 31-million-parameter original without
    allocating it. Runs without gradients; hooks are removed afterwards.

    Args:
        model: a :class:`UNet`.
        x: an input ``(N, in_channels, *spatial)`` the model accepts.

    Returns:
        A :class:`UNetTrace`.

    Example:
        >>> with torch.device("meta"):
        ...     t = trace_unet(UNet(), torch.zeros(1, 1, 572, 572))
        >>> t.concat[3], t.output
        ((1024, 56, 56), (2, 388, 388))
    """
    if not isinstance(model, UNet):
        raise TypeError(f"The 'model' parameter of trace_unet must be a UNet. Got {type(model).__name__} instead.")
    model._check_input(x, "trace_unet")
    shape = lambda t: tuple(int(v) for v in t.shape[1:])  # noqa: E731
    seen: dict[str, tuple[int, ...]] = {}

    def record(name: str, of_input: int | None = None):
        def hook(_module, inputs, output):
            seen[name] = shape(output if of_input is None else inputs[of_input])
        return hook

    handles = []
    for k in range(model.levels):
        for j in range(2):
            handles.append(model.encoder[k][j].register_forward_hook(record(f"enc{k}.{j}")))
    for k in range(model.levels - 1):
        handles.append(model.up[k].register_forward_hook(record(f"up{k}")))
        handles.append(model.skip[k].register_forward_hook(record(f"skip{k}", of_input=0)))
        handles.append(model.skip[k].register_forward_hook(record(f"cat{k}")))
        for j in range(2):
            handles.append(model.decoder[k][j].register_forward_hook(record(f"dec{k}.{j}")))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    L = model.levels
    return UNetTrace(input=shape(x),
                     encoder=tuple((seen[f"enc{k}.0"], seen[f"enc{k}.1"]) for k in range(L)),
                     up=tuple(seen[f"up{k}"] for k in range(L - 1)),
                     skip=tuple(seen[f"skip{k}"] for k in range(L - 1)),
                     concat=tuple(seen[f"cat{k}"] for k in range(L - 1)),
                     decoder=tuple((seen[f"dec{k}.0"], seen[f"dec{k}.1"]) for k in range(L - 1)),
                     output=shape(out))
