"""Progressive growing of GANs (UDL §15.3.2, fig. 15.9; Karras et al. 2018).

Training starts with a generator that makes 4x4 images and a discriminator that judges
4x4 images. When that stage has trained, both networks **grow**: the generator gets a
block that doubles the resolution (nearest-neighbour upsampling, two 3x3 convolutions)
and a new 1x1 convolution to the image, and the discriminator gets the mirror image in
front (a 1x1 convolution from the image, two 3x3 convolutions, 2x2 average pooling).
The old layers stay and keep training; the new ones are **faded in**. With the blend
weight α rising from 0 to 1 (UDL fig. 15.9; Karras et al.'s fig. 2)::

    generator:      x* = (1 − α) · up₂[ to_image_old(h) ] + α · to_image_new(block(h))
    discriminator:  h  = (1 − α) · from_image_old(pool₂[x]) + α · block(from_image_new(x))

so at α = 0 the grown generator's image is the old one upsampled (pixel for pixel) and
the grown discriminator's logit is the old one's on the downsampled image: growing
changes nothing until α moves, and the output is linear in α (continuous).

Details kept from Karras et al.: leaky ReLUs (slope 0.2), pixel-wise feature
normalisation in the generator (each position's feature vector divided by its root
mean square), nearest-neighbour upsampling and average-pooling downsampling. Left out:
the equalised learning rate (torch's default initialisation instead), the minibatch
standard-deviation layer and the Wasserstein loss (the recipe in
:mod:`udl.train.progressive_gan` takes any of udl's GAN losses). Images are in [0, 1]:
each image head ends in a sigmoid, the range of udl's digits.

Example::

    >>> g = ProgressiveGenerator("tiny", generator=0)
    >>> g(torch.zeros(2, 4)).shape
    torch.Size([2, 1, 4, 4])
    >>> g.grow(generator=1); g.alpha = 0.5
    >>> g(torch.zeros(2, 4)).shape
    torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.validate import _refuse, as_generator, check_config, check_float, check_input, check_int

__all__ = ["ProgressiveGANConfig", "ProgressiveGenerator", "ProgressiveDiscriminator", "pixel_norm", "downsample"]


def pixel_norm(h: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each position's feature vector divided by its root mean square over channels (Karras et al. 2018, §4.2).

    b_{x,y} = a_{x,y} / √( (1/C) Σ_c (a^c_{x,y})² + ε ),  ``(B, C, H, W) -> (B, C, H, W)``.
    """
    if not isinstance(h, torch.Tensor) or h.dim() < 2 or not h.is_floating_point():
        check_input(h, "h", "pixel_norm", shape=("B", "C", ...), dtype="float")
    if not eps >= 0:
        _refuse("eps", "pixel_norm", "a float >= 0", repr(eps))
    return h * torch.rsqrt(h.pow(2).mean(1, keepdim=True) + eps)


def downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images ``(B, C, S, S)`` averaged over blocks of (S/r) x (S/r) pixels: ``(B, C, r, r)``, r = ``resolution``.

    How the real images of a low-resolution stage are made, and how a high-resolution
    sample is compared with a low-resolution one. ``resolution`` must divide S.
    """
    owner = "downsample"
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        _refuse("images", owner, "a float tensor (B, C, S, S)",
                f"shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__,
                TypeError)
    size = images.shape[-1]
    resolution = check_int(resolution, "resolution", owner, maximum=size)
    if size % resolution or images.shape[-2] != size:
        _refuse("resolution", owner, f"a divisor of the images' side {size} (square images)", repr(resolution))
    return F.avg_pool2d(images, size // resolution) if resolution < size else images


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ProgressiveGANConfig:
    """The stages of a progressively grown GAN: one width per resolution, 4x4 first."""

    d_latent: int = 32  # D_z, dimensions of the latent variable z
    channels: int = 1  # C, image channels
    widths: tuple[int, ...] = (64, 32, 16)  # feature channels at 4x4, 8x8, 16x16, ...: one per stage
    slope: float = 0.2  # leaky ReLU slope for negative inputs

    def __post_init__(self):
        owner = "ProgressiveGANConfig"
        check_int(self.d_latent, "d_latent", owner)
        check_int(self.channels, "channels", owner)
        if isinstance(self.widths, (str, bytes)) or not isinstance(self.widths, (list, tuple)) or not self.widths \
                or len(self.widths) > 8:
            _refuse("widths", owner, "a tuple of 1 to 8 positive ints", repr(self.widths), TypeError)
        object.__setattr__(self, "widths", tuple(check_int(w, "widths", owner) for w in self.widths))
        check_float(self.slope, "slope", owner, low=0.0, high=1.0, high_open=True)

    @property
    def n_stages(self) -> int:
        """The resolutions trained in turn: 4x4, 8x8, ... up to :attr:`max_resolution`."""
        return len(self.widths)

    @property
    def max_resolution(self) -> int:
        """4 · 2^(stages − 1): the side of the final images."""
        return 4 * 2 ** (self.n_stages - 1)

    def resolution(self, stage: int) -> int:
        """4 · 2^stage."""
        return 4 * 2 ** stage

    @classmethod
    def digits(cls, **changes) -> ProgressiveGANConfig:
        """Digits brought to 16x16: 32 latent dimensions, 64 / 32 / 16 channels at 4 / 8 / 16, with ``changes``."""
        return cls(**changes)

    @classmethod
    def tiny(cls, **changes) -> ProgressiveGANConfig:
        """For tests: 4 latent dimensions, 8 / 8 / 4 channels, with ``changes``."""
        return cls(**{**dict(d_latent=4, widths=(8, 8, 4)), **changes})

    def generator_parameter_count(self, stage: int) -> int:
        """Parameters of the generator grown to ``stage`` (0 = 4x4): every stage's layers, the old heads too.

        Linear z → 16 w_0; 3x3 conv w_0 → w_0; per stage k ≥ 1 two 3x3 convs w_{k−1} → w_k → w_k;
        per stage k ≥ 0 a 1x1 conv w_k → C (the image head).
        """
        w, c = self.widths, self.channels
        count = (self.d_latent + 1) * 16 * w[0] + 9 * w[0] * w[0] + w[0]
        count += sum(9 * w[k - 1] * w[k] + w[k] + 9 * w[k] * w[k] + w[k] for k in range(1, stage + 1))
        return count + sum(w[k] * c + c for k in range(stage + 1))

    def discriminator_parameter_count(self, stage: int) -> int:
        """Parameters of the discriminator grown to ``stage``.

        Per stage k ≥ 0 a 1x1 conv C → w_k (from the image); per stage k ≥ 1 two 3x3 convs
        w_k → w_k → w_{k−1}; at 4x4 a 3x3 conv w_0 → w_0 and a linear 16 w_0 → 1.
        """
        w, c = self.widths, self.channels
        count = sum(c * w[k] + w[k] for k in range(stage + 1))
        count += sum(9 * w[k] * w[k] + w[k] + 9 * w[k] * w[k - 1] + w[k - 1] for k in range(1, stage + 1))
        return count + 9 * w[0] * w[0] + w[0] + 16 * w[0] + 1


def _as_config(config, owner: str) -> ProgressiveGANConfig:
    return check_config(config, "config", owner, ProgressiveGANConfig, ("digits", "tiny"),
                        lambda name: getattr(ProgressiveGANConfig, name)())


def _check_alpha(alpha, owner: str) -> float:
    return check_float(alpha, "alpha", owner, low=0.0, high=1.0)


# --------------------------------------------------------------------------- the blocks a stage adds
class _UpBlock(nn.Module):
    """Double the resolution: nearest upsampling, then two 3x3 convolutions with leaky ReLU and pixel norm."""

    def __init__(self, c_in: int, c_out: int, channels: int, slope: float, generator):
        super().__init__()
        self.slope = slope
        with initialised_from(self, generator):
            self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
            self.to_image = nn.Conv2d(c_out, channels, 1)  # this stage's image head

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, c_in, 2H, 2W)
        h = pixel_norm(F.leaky_relu(self.conv1(h), self.slope))  # (B, c_out, 2H, 2W)
        return pixel_norm(F.leaky_relu(self.conv2(h), self.slope))


class _DownBlock(nn.Module):
    """Halve the resolution: two 3x3 convolutions with leaky ReLU, then 2x2 average pooling."""

    def __init__(self, c_in: int, c_out: int, channels: int, slope: float, generator):
        super().__init__()
        self.slope = slope
        with initialised_from(self, generator):
            self.from_image = nn.Conv2d(channels, c_in, 1)  # this stage's image input
            self.conv1 = nn.Conv2d(c_in, c_in, 3, padding=1)
            self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(h), self.slope)  # (B, c_in, H, W)
        h = F.leaky_relu(self.conv2(h), self.slope)  # (B, c_out, H, W)
        return F.avg_pool2d(h, 2)  # (B, c_out, H/2, W/2)


def _device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(module.parameters())
    return p.device, p.dtype


class _Growing(nn.Module):
    """What the two networks of progressive growing share: the stage they are at, and growing by one."""

    config: ProgressiveGANConfig
    blocks: nn.ModuleList
    alpha: float

    @classmethod
    def tiny(cls, config: ProgressiveGANConfig | str = "tiny", *, generator: torch.Generator | int | None = None):
        """A test-sized network (``ProgressiveGANConfig.tiny()``)."""
        return cls(config, generator=generator)

    @property
    def stage(self) -> int:
        return len(self.blocks)

    @property
    def resolution(self) -> int:
        return self.config.resolution(self.stage)

    def _new_block(self, s: int, generator: torch.Generator) -> nn.Module:
        raise NotImplementedError

    def grow(self, *, generator: torch.Generator | int | None = None) -> None:
        """Add the next stage's layers (the generator's block and image head after the others; the
        discriminator's image input and block in front) and set ``alpha = 0``: the fade-in starts.

        Args:
            generator: the new layers' initial weights: a ``torch.Generator`` or an int seed.
        """
        name = type(self).__name__
        if self.stage + 1 >= self.config.n_stages:
            raise ValueError(f"The 'stage' of {name} must stay below {self.config.n_stages} (config.widths). "
                             f"Got {self.stage + 1} instead.")
        generator = as_generator(generator, f"{name}.grow")
        device, dtype = _device_dtype(self)
        self.blocks.append(self._new_block(self.stage + 1, generator).to(device, dtype))
        self.alpha = 0.0


# --------------------------------------------------------------------------- generator
class ProgressiveGenerator(_Growing):
    """The generator of progressive growing: 4x4 at first, doubling its resolution at each :meth:`grow`.

    At stage s it makes images of side 4 · 2^s. ``alpha`` (an attribute, 1 after training
    a stage, set by the training recipe during a fade-in) blends the newest stage with the
    one before (see the module's docstring); ``forward(z, alpha=...)`` overrides it for one call.

    Args:
        config: a :class:`ProgressiveGANConfig`, or ``"digits"`` / ``"tiny"``. Default: "digits".
        generator: the initial weights (torch's default initialisation): a ``torch.Generator``
            or an int seed. Default: None, torch's global generator.

    Attributes:
        stage: stages grown so far (0: 4x4). resolution: 4 · 2^stage. alpha: the blend weight.

    Shape:
        z: ``(B, D_z)`` -> images ``(B, C, R, R)`` in [0, 1], R = :attr:`resolution`.
    """

    def __init__(self, config: ProgressiveGANConfig | str = "digits", *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _as_config(config, "ProgressiveGenerator")
        generator = as_generator(generator, "ProgressiveGenerator")
        self.alpha = 1.0
        with initialised_from(self, generator):
            self.project = nn.Linear(c.d_latent, 16 * c.widths[0])
            self.conv = nn.Conv2d(c.widths[0], c.widths[0], 3, padding=1)
            self.to_image = nn.Conv2d(c.widths[0], c.channels, 1)  # the 4x4 image head
            self.blocks = nn.ModuleList()  # one per stage grown

    def _new_block(self, s: int, generator: torch.Generator) -> nn.Module:
        c = self.config  # stage s − 1's features to stage s's, and stage s's image head
        return _UpBlock(c.widths[s - 1], c.widths[s], c.channels, c.slope, generator)

    def _head(self, k: int) -> nn.Module:
        return self.to_image if k == 0 else self.blocks[k - 1].to_image

    def forward(self, z: torch.Tensor, *, alpha: float | None = None) -> torch.Tensor:
        c = self.config
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != c.d_latent \
                or z.dtype != self.project.weight.dtype:
            check_input(z, "z", "ProgressiveGenerator", shape=("B", c.d_latent), dtype=self.project.weight.dtype)
        alpha = self.alpha if alpha is None else _check_alpha(alpha, "ProgressiveGenerator")
        h = self.project(pixel_norm(z[:, :, None, None])[:, :, 0, 0])  # (B, 16 w_0): z normalised first
        h = pixel_norm(F.leaky_relu(h.view(len(z), -1, 4, 4), c.slope))  # (B, w_0, 4, 4)
        h = pixel_norm(F.leaky_relu(self.conv(h), c.slope))
        for block in self.blocks[:-1]:
            h = block(h)  # (B, w_k, 2H, 2W)
        if self.stage == 0:
            return torch.sigmoid(self.to_image(h))  # (B, C, 4, 4)
        new = torch.sigmoid(self.blocks[-1].to_image(self.blocks[-1](h)))  # (B, C, R, R)
        if alpha >= 1.0:
            return new
        old = F.interpolate(torch.sigmoid(self._head(self.stage - 1)(h)), scale_factor=2, mode="nearest")
        return (1.0 - alpha) * old + alpha * new  # the fade-in (fig. 15.9; Karras et al. fig. 2)


# --------------------------------------------------------------------------- discriminator
class ProgressiveDiscriminator(_Growing):
    """The discriminator of progressive growing: judges 4x4 images at first, one stage more at each :meth:`grow`.

    Args:
        config: a :class:`ProgressiveGANConfig`, or ``"digits"`` / ``"tiny"``. Default: "digits".
        generator: the initial weights: a ``torch.Generator`` or an int seed. Default: None.

    Attributes:
        stage, resolution, alpha: as :class:`ProgressiveGenerator`'s.

    Shape:
        x: ``(B, C, R, R)`` -> logits ``(B,)``.
    """

    def __init__(self, config: ProgressiveGANConfig | str = "digits", *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _as_config(config, "ProgressiveDiscriminator")
        generator = as_generator(generator, "ProgressiveDiscriminator")
        self.alpha = 1.0
        with initialised_from(self, generator):
            self.from_image = nn.Conv2d(c.channels, c.widths[0], 1)  # the 4x4 image input
            self.blocks = nn.ModuleList()  # blocks[k − 1] takes stage k's resolution to stage k − 1's
            self.conv = nn.Conv2d(c.widths[0], c.widths[0], 3, padding=1)
            self.head = nn.Linear(16 * c.widths[0], 1)

    def _new_block(self, s: int, generator: torch.Generator) -> nn.Module:
        c = self.config  # stage s's image input, and its features down to stage s − 1's
        return _DownBlock(c.widths[s], c.widths[s - 1], c.channels, c.slope, generator)

    def _input(self, k: int) -> nn.Module:
        return self.from_image if k == 0 else self.blocks[k - 1].from_image

    def forward(self, x: torch.Tensor, *, alpha: float | None = None) -> torch.Tensor:
        c, r = self.config, self.resolution
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (c.channels, r, r) \
                or x.dtype != self.head.weight.dtype:
            check_input(x, "x", "ProgressiveDiscriminator", shape=("B", c.channels, r, r), dtype=self.head.weight.dtype)
        alpha = self.alpha if alpha is None else _check_alpha(alpha, "ProgressiveDiscriminator")
        s = self.stage
        h = F.leaky_relu(self._input(s)(x), c.slope)  # (B, w_s, R, R)
        if s > 0:
            h = self.blocks[s - 1](h)  # (B, w_{s−1}, R/2, R/2)
            if alpha < 1.0:
                old = F.leaky_relu(self._input(s - 1)(F.avg_pool2d(x, 2)), c.slope)
                h = (1.0 - alpha) * old + alpha * h  # the fade-in, mirrored
            for block in reversed(self.blocks[:s - 1]):
                h = block(h)  # (B, w_{k−1}, H/2, W/2)
        h = F.leaky_relu(self.conv(h), c.slope)  # (B, w_0, 4, 4)
        return self.head(h.flatten(1)).squeeze(1)  # (B,)
