"""The super-resolution GAN (UDL §15.4.4, fig. 15.17; Ledig et al. 2017): a residual network that
makes an image four times larger, and the discriminator that judges its results.

The generator (SRResNet) works at the low resolution and upsamples only at its end::

    x (C, h, w) ─ conv k×k ─ PReLU ─┬─ B residual blocks ─ conv 3×3 ─(+)─ [conv 3×3 → 4w ─ pixel shuffle ×2 ─ PReLU] × 2
                                    └──────────────── long skip ───────┘        ─ conv k×k → C ─(+ bicubic(x))─ x̂ (C, 4h, 4w)

- each residual block is ``h + conv(PReLU(conv(h)))`` with 3×3 convolutions of ``width``
  channels (``batch_norm`` puts a batch norm after each convolution, as the original;
  later super-resolvers (Lim et al. 2017) left it out, and udl does by default);
- each ×2 step is a sub-pixel convolution (Shi et al. 2016): a 3×3 convolution makes
  4·width channels at the current size and :func:`udl.nn.sampling.pixel_shuffle` moves
  each group of four into a 2×2 block, so the upsampling filters are learned;
- ``bicubic_skip`` (default on; not in the original) adds the bicubic enlargement of
  the input to the output, so the network learns only what bicubic interpolation
  misses. The last convolution starts at zero: the untrained network *is* bicubic
  interpolation, and training can only add detail from there.

The discriminator (as the original, narrower): pairs of 3×3 convolutions, the second
of each pair with stride 2, the width doubling from pair to pair, leaky ReLUs; then a
global average over positions (the original flattened a 96×96 input; averaging takes
any size) and two linear layers to one logit per image.

Images are ``(N, C, H, W)`` in [0, 1]; the generator's output is not clipped (clip it to
show or score it).

Example::

    >>> config = SRGANConfig.tiny()
    >>> SRResNet(config, generator=0)(torch.rand(2, 3, 6, 5)).shape
    torch.Size([2, 3, 24, 20])
    >>> SRDiscriminator(config, generator=0)(torch.rand(2, 3, 24, 20)).shape
    torch.Size([2])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.nn.sampling import pixel_shuffle
from udl.validate import _refuse, as_generator, check_bool, check_config, check_input, check_int

__all__ = ["SRGANConfig", "SRResNet", "SRDiscriminator", "bicubic"]


def bicubic(x: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Bicubic enlargement by ``factor`` (``F.interpolate``, pixel centres aligned as area averaging leaves them).

    Shape:
        ``(N, C, h, w) -> (N, C, factor·h, factor·w)``; not clipped.
    """
    return F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SRGANConfig:
    """The shapes of :class:`SRResNet` and :class:`SRDiscriminator`."""

    channels: int = 3  # C, colour channels of the images
    width: int = 32  # w, feature maps of the generator
    n_blocks: int = 4  # B, residual blocks of the generator
    scale: int = 4  # the enlargement: log₂(scale) sub-pixel ×2 steps (a power of 2)
    kernel: int = 5  # k, the odd kernel of the generator's first and last convolutions (9 in the original)
    batch_norm: bool = False  # a batch norm after each convolution of the residual blocks and the one after them
    bicubic_skip: bool = True  # add bicubic(x) to the output: the network learns the difference
    d_width: int = 16  # the discriminator's first width (doubles at each stride-2 stage)
    d_stages: int = 3  # the discriminator's pairs of convolutions (each halves the size)

    def __post_init__(self):
        owner = "SRGANConfig"
        for name in ("channels", "width", "n_blocks", "d_width", "d_stages"):
            check_int(getattr(self, name), name, owner, minimum=0 if name == "n_blocks" else 1)
        scale = check_int(self.scale, "scale", owner, minimum=2)
        if scale & (scale - 1):
            _refuse("scale", owner, "a power of 2 (each ×2 is one sub-pixel step)", repr(scale))
        if check_int(self.kernel, "kernel", owner) % 2 == 0:
            _refuse("kernel", owner, "an odd positive int (zero padding keeps the size)", repr(self.kernel))
        check_bool(self.batch_norm, "batch_norm", owner)
        check_bool(self.bicubic_skip, "bicubic_skip", owner)

    @classmethod
    def tiny(cls, **changes) -> SRGANConfig:
        """For tests: width 4, one block, ×4, a 2-stage discriminator of width 4, with ``changes``."""
        return cls(**{**dict(width=4, n_blocks=1, kernel=3, d_width=4, d_stages=2), **changes})

    @classmethod
    def photos(cls, **changes) -> SRGANConfig:
        """Figure 15.17's networks (the defaults): width 32, 4 blocks, ×4, with ``changes``."""
        return cls(**changes)

    @classmethod
    def ledig2017(cls, **changes) -> SRGANConfig:
        """The original: width 64, 16 blocks with batch norm, 9×9 ends, no bicubic skip; 8 discriminator convolutions."""
        return cls(**{**dict(width=64, n_blocks=16, kernel=9, batch_norm=True, bicubic_skip=False, d_width=64,
                             d_stages=4), **changes})

    @property
    def n_upsamplings(self) -> int:
        """log₂(scale): the sub-pixel ×2 steps."""
        return int(math.log2(self.scale))

    def generator_parameter_count(self) -> int:
        """Weights, biases, PReLU slopes (one per channel) and batch-norm γ, δ of :class:`SRResNet`."""
        c, w, k = self.channels, self.width, self.kernel
        conv3 = 9 * w * w + w
        norm = 2 * w if self.batch_norm else 0
        head = k * k * c * w + w + w  # conv and PReLU
        blocks = self.n_blocks * (2 * (conv3 + norm) + w)
        after = conv3 + norm
        upsampling = self.n_upsamplings * (9 * w * 4 * w + 4 * w + w)
        tail = k * k * w * c + c
        return head + blocks + after + upsampling + tail

    def discriminator_parameter_count(self) -> int:
        """Weights and biases of :class:`SRDiscriminator` (no batch norm)."""
        total, c_in = 0, self.channels
        for width in self.d_widths:
            total += (9 * c_in * width + width) + (9 * width * width + width)
            c_in = width
        return total + (c_in * 2 * c_in + 2 * c_in) + (2 * c_in + 1)

    @property
    def d_widths(self) -> tuple[int, ...]:
        """The discriminator's width at each stage: d_width · 2^s."""
        return tuple(self.d_width * 2 ** s for s in range(self.d_stages))


def _config(config, owner: str) -> SRGANConfig:
    return check_config(config, "config", owner, SRGANConfig, ("tiny", "photos", "ledig2017"),
                        lambda name: getattr(SRGANConfig, name)())


# --------------------------------------------------------------------------- generator
class _PReLU(nn.PReLU):
    """max(0, z) + a·min(0, z) with a learned slope a per channel, starting at 0.25 (He et al. 2015)."""

    def __init__(self, channels: int):
        super().__init__(channels, init=0.25)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """a = 0.25 (nothing random)."""
        nn.init.constant_(self.weight, 0.25)


class _ResidualBlock(nn.Module):
    """h + conv(PReLU(conv(h))), each conv 3×3 and optionally followed by a batch norm."""

    def __init__(self, width: int, batch_norm: bool):
        super().__init__()
        layers = [nn.Conv2d(width, width, 3, padding=1)]
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        layers += [_PReLU(width), nn.Conv2d(width, width, 3, padding=1)]
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        self.branch = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h)  # h + f[h]  (eq. 11.4)


class _SubPixelUpsample(nn.Module):
    """×2: a 3×3 convolution to 4·w channels, each group of four moved into a 2×2 block, PReLU."""

    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Conv2d(width, 4 * width, 3, padding=1)
        self.act = _PReLU(width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.act(pixel_shuffle(self.conv(h), 2))  # (N, 4w, h, w) -> (N, w, 2h, 2w)


class SRResNet(nn.Module):
    """The super-resolution generator: residual blocks at the low resolution, sub-pixel upsampling at the end.

    Args:
        config: an :class:`SRGANConfig`, or ``"tiny"`` / ``"photos"`` / ``"ledig2017"``.
            Default: ``SRGANConfig.photos()``.
        generator: the initial weights (torch's default initialisation; the last
            convolution zero when ``config.bicubic_skip``): a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C, h, w) -> (N, C, scale·h, scale·w)``.

    Example::

        >>> model = SRResNet("tiny", generator=0)
        >>> x = torch.rand(1, 3, 4, 4)
        >>> torch.equal(model(x), bicubic(x))  # untrained: bicubic interpolation
        True
    """

    def __init__(self, config: SRGANConfig | str = "photos", *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _config(config, "SRResNet")
        generator = as_generator(generator, "SRResNet")
        with initialised_from(self, generator):
            self.head = nn.Sequential(nn.Conv2d(c.channels, c.width, c.kernel, padding=c.kernel // 2),
                                      _PReLU(c.width))
            self.blocks = nn.Sequential(*[_ResidualBlock(c.width, c.batch_norm) for _ in range(c.n_blocks)])
            after = [nn.Conv2d(c.width, c.width, 3, padding=1)] + ([nn.BatchNorm2d(c.width)] if c.batch_norm else [])
            self.after_blocks = nn.Sequential(*after)
            self.upsample = nn.Sequential(*[_SubPixelUpsample(c.width) for _ in range(c.n_upsamplings)])
            self.tail = nn.Conv2d(c.width, c.channels, c.kernel, padding=c.kernel // 2)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """With the bicubic skip, the last convolution starts at zero (the output is bicubic(x))."""
        if self.config.bicubic_skip and not self.tail.weight.is_meta:
            with torch.no_grad():
                self.tail.weight.zero_()
                self.tail.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != c.channels \
                or x.dtype != self.tail.weight.dtype:
            check_input(x, "x", "SRResNet", shape=("N", c.channels, "h", "w"), dtype=self.tail.weight.dtype)
        h = self.head(x)  # (N, w, h, w)
        h = h + self.after_blocks(self.blocks(h))  # the long skip around the residual blocks
        out = self.tail(self.upsample(h))  # (N, C, scale·h, scale·w)
        return out + bicubic(x, c.scale) if c.bicubic_skip else out


# --------------------------------------------------------------------------- discriminator
class SRDiscriminator(nn.Module):
    """Real high-resolution image or super-resolved one? One logit per image (> 0: real).

    Stage s: a 3×3 convolution to d_width·2^s channels, then a 3×3 convolution with
    stride 2 (the size halves), each followed by a leaky ReLU (slope 0.2); then the mean
    over positions, a linear layer to twice the width, leaky ReLU, a linear layer to 1.

    Args:
        config: an :class:`SRGANConfig`, or ``"tiny"`` / ``"photos"`` / ``"ledig2017"``.
        generator: the initial weights: a ``torch.Generator`` or an int seed. Default: None.

    Shape:
        ``(N, C, H, W) -> (N,)``.
    """

    def __init__(self, config: SRGANConfig | str = "photos", *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _config(config, "SRDiscriminator")
        generator = as_generator(generator, "SRDiscriminator")
        layers, c_in = [], c.channels
        with initialised_from(self, generator):
            for width in c.d_widths:
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.LeakyReLU(0.2),
                           nn.Conv2d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
                c_in = width
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Linear(c_in, 2 * c_in), nn.LeakyReLU(0.2), nn.Linear(2 * c_in, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        dtype = self.head[0].weight.dtype
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != c.channels or x.dtype != dtype:
            check_input(x, "x", "SRDiscriminator", shape=("N", c.channels, "H", "W"), dtype=dtype)
        h = self.features(x).mean((-2, -1))  # (N, d_width·2^(S-1)): the average over positions
        return self.head(h).squeeze(-1)  # (N,)
