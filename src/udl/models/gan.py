"""Generative adversarial networks (UDL §15.1-15.2): a generator, a discriminator, and the two together.

The generator g[z, θ] maps a latent variable z ~ Norm[0, I] to a sample x* (§15.1); the
discriminator f[x, φ] returns a logit saying how real x looks. They are trained
against each other (:mod:`udl.nn.adversarial` holds the losses, :mod:`udl.train.gan` the
alternating loop).

**DCGAN** (Radford et al. 2016; fig. 15.5): the generator projects z to a 4x4 grid of
feature maps and doubles the resolution with 4x4 transposed convolutions of stride 2, each
followed by batch normalisation and a ReLU, halving the channels, until the image size;
a 3x3 convolution then maps the features to the image's channels, and a sigmoid puts the
pixels in [0, 1], the range of udl's digits (DCGAN used tanh for [−1, 1]). The
discriminator mirrors it: a 3x3 convolution, then 4x4 convolutions of stride 2 (each
doubling the channels and halving the resolution) with leaky ReLUs (slope 0.2), down to
4x4, and a linear layer to one logit. Batch normalisation in the discriminator is an
option: the gradient penalty of WGAN-GP is per example and needs it off.

Weights follow DCGAN's initialisation: convolution and linear weights ~ N(0, 0.02²),
biases 0, batch-norm scales ~ N(1, 0.02²), shifts 0, drawn (in float64, then copied)
from the ``generator=`` given.

**2-D data** (fig. 14.2): :class:`MLPGenerator` and :class:`MLPDiscriminator`, fully
connected networks with ReLU (generator) and leaky ReLU (discriminator) activations and
torch's default initialisation.

Example::

    >>> gan = GAN(DCGANGenerator("digits", generator=0), DCGANDiscriminator("digits", generator=1), 16)
    >>> x = gan.sample(5, generator=0)
    >>> x.shape, gan.discriminator_net(x).shape
    (torch.Size([5, 1, 8, 8]), torch.Size([5]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from udl.nn.init import initialised_from
from udl.validate import _refuse, as_generator, check_bool, check_config, check_float, check_input, check_instance, \
    check_int, check_sizes

__all__ = ["GANConfig", "DCGANGenerator", "DCGANDiscriminator", "MLPGenerator", "MLPDiscriminator", "GAN"]


@torch.no_grad()
def _dcgan_init(module: nn.Module, generator: torch.Generator | None) -> None:
    """DCGAN's initialisation of every layer in ``module``: weights N(0, 0.02²), BN scales N(1, 0.02²), rest 0."""
    device = generator.device if generator is not None else "cpu"
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            w = torch.randn(m.weight.shape, generator=generator, dtype=torch.float64, device=device)
            m.weight.copy_(0.02 * w)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            w = torch.randn(m.weight.shape, generator=generator, dtype=torch.float64, device=device)
            m.weight.copy_(1.0 + 0.02 * w)
            m.bias.zero_()
            m.reset_running_stats()


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class GANConfig:
    """The shape of a DCGAN's generator and discriminator."""

    d_latent: int = 16  # D_z, dimensions of the latent variable z
    image_size: int = 8  # S, the side of the square images: a power of 2, at least 4
    channels: int = 1  # C, image channels (1 grey, 3 colour)
    width: int = 32  # channels of the features at full resolution; doubled at each halving of it
    g_batch_norm: bool = True  # batch normalisation after each transposed convolution of the generator
    d_batch_norm: bool = True  # batch normalisation in the discriminator's strided convolutions (off for WGAN-GP)
    slope: float = 0.2  # the discriminator's leaky ReLU slope for negative inputs

    def __post_init__(self):
        owner = "GANConfig"
        check_int(self.d_latent, "d_latent", owner)
        check_int(self.image_size, "image_size", owner)
        if self.image_size < 4 or self.image_size & (self.image_size - 1):
            _refuse("image_size", owner, "a power of 2, at least 4", repr(self.image_size))
        check_int(self.channels, "channels", owner)
        check_int(self.width, "width", owner)
        check_bool(self.g_batch_norm, "g_batch_norm", owner)
        check_bool(self.d_batch_norm, "d_batch_norm", owner)
        check_float(self.slope, "slope", owner, low=0.0, high=1.0, high_open=True)

    @property
    def n_upsamplings(self) -> int:
        """log₂(S / 4): the resolution doublings from 4x4 to S x S."""
        return self.image_size.bit_length() - 3

    def widths(self) -> tuple[int, ...]:
        """Feature channels at 4x4, 8x8, ..., S x S: width · 2^k, ..., width · 2, width."""
        k = self.n_upsamplings
        return tuple(self.width * 2 ** (k - i) for i in range(k + 1))

    @classmethod
    def digits(cls, **changes) -> GANConfig:
        """udl's 8x8 digits: 16 latent dimensions, 64 channels at 4x4 and 32 at 8x8, with ``changes``."""
        return cls(**{**dict(d_latent=16, image_size=8, channels=1, width=32), **changes})

    @classmethod
    def tiny(cls, **changes) -> GANConfig:
        """For tests: 8x8 images, 4 latent dimensions, 8 and 4 channels, with ``changes``."""
        return cls(**{**dict(d_latent=4, image_size=8, channels=1, width=4), **changes})

    def generator_parameter_count(self) -> int:
        """Linear z → 16 c_0 (+ BN) + each transposed convolution c → c/2, 4x4 (+ BN) + the 3x3 to C channels."""
        w = self.widths()
        bn = 2 if self.g_batch_norm else 0
        count = (self.d_latent + 1) * 16 * w[0] + bn * w[0]
        count += sum(16 * a * b + b + bn * b for a, b in zip(w[:-1], w[1:]))
        return count + 9 * w[-1] * self.channels + self.channels

    def discriminator_parameter_count(self) -> int:
        """The 3x3 from C channels + each 4x4 stride-2 convolution c → 2c (+ BN) + linear 16 c_0 → 1."""
        w = self.widths()[::-1]  # width, 2·width, ..., c_0
        bn = 2 if self.d_batch_norm else 0
        count = 9 * self.channels * w[0] + w[0]
        count += sum(16 * a * b + b + bn * b for a, b in zip(w[:-1], w[1:]))
        return count + 16 * w[-1] + 1


def _as_config(config, owner: str) -> GANConfig:
    return check_config(config, "config", owner, GANConfig, ("digits", "tiny"), lambda name: getattr(GANConfig, name)())


# --------------------------------------------------------------------------- DCGAN
class DCGANGenerator(nn.Module):
    """DCGAN's generator g[z, θ]: z → 4x4 features → transposed convolutions → a sigmoid image in [0, 1].

    Args:
        config: a :class:`GANConfig`, or ``"digits"`` / ``"tiny"``. Default: "digits".
        generator: the initial weights (DCGAN's N(0, 0.02²)): a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        z: ``(B, D_z)`` -> ``(B, C, S, S)``. Each transposed convolution (kernel 4, stride 2,
        padding 1) gives H_out = 2 (H_in − 1) − 2 + 4 = 2 H_in.

    Example::

        >>> DCGANGenerator("tiny", generator=0)(torch.zeros(3, 4)).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(self, config: GANConfig | str = "digits", *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _as_config(config, "DCGANGenerator")
        generator = as_generator(generator, "DCGANGenerator")
        w = c.widths()
        with initialised_from(self, generator):
            self.project = nn.Linear(c.d_latent, 16 * w[0])
            self.project_norm = nn.BatchNorm2d(w[0]) if c.g_batch_norm else nn.Identity()
            self.blocks = nn.ModuleList(nn.Sequential(
                nn.ConvTranspose2d(a, b, 4, stride=2, padding=1),
                nn.BatchNorm2d(b) if c.g_batch_norm else nn.Identity(),
                nn.ReLU()) for a, b in zip(w[:-1], w[1:]))
            self.to_image = nn.Conv2d(w[-1], c.channels, 3, padding=1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """DCGAN's initialisation (run by the constructor after torch's defaults)."""
        _dcgan_init(self, generator)

    @classmethod
    def tiny(cls, config: GANConfig | str = "tiny", *, generator: torch.Generator | int | None = None):
        """A test-sized generator (``GANConfig.tiny()``)."""
        return cls(config, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = self.config
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != c.d_latent \
                or z.dtype != self.project.weight.dtype:
            check_input(z, "z", "DCGANGenerator", shape=("B", c.d_latent), dtype=self.project.weight.dtype)
        h = self.project(z).view(len(z), -1, 4, 4)  # (B, c_0, 4, 4)
        h = torch.relu(self.project_norm(h))
        for block in self.blocks:
            h = block(h)  # (B, c/2, 2H, 2W)
        return torch.sigmoid(self.to_image(h))  # (B, C, S, S)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator f[x, φ]: strided convolutions with leaky ReLUs, down to 4x4, then one logit.

    Args:
        config: a :class:`GANConfig`, or ``"digits"`` / ``"tiny"``. Default: "digits".
            ``config.d_batch_norm=False`` for the gradient penalty.
        generator: the initial weights: a ``torch.Generator`` or an int seed. Default: None.

    Shape:
        x: ``(B, C, S, S)`` -> logits ``(B,)``. Each strided convolution (kernel 4, stride
        2, padding 1) gives H_out = ⌊(H_in + 2 − 4) / 2⌋ + 1 = H_in / 2.

    Example::

        >>> DCGANDiscriminator("tiny", generator=0)(torch.zeros(3, 1, 8, 8)).shape
        torch.Size([3])
    """

    def __init__(self, config: GANConfig | str = "digits", *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _as_config(config, "DCGANDiscriminator")
        generator = as_generator(generator, "DCGANDiscriminator")
        w = c.widths()[::-1]
        with initialised_from(self, generator):
            self.from_image = nn.Conv2d(c.channels, w[0], 3, padding=1)
            self.blocks = nn.ModuleList(nn.Sequential(
                nn.Conv2d(a, b, 4, stride=2, padding=1),
                nn.BatchNorm2d(b) if c.d_batch_norm else nn.Identity(),
                nn.LeakyReLU(c.slope)) for a, b in zip(w[:-1], w[1:]))
            self.head = nn.Linear(16 * w[-1], 1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """DCGAN's initialisation (run by the constructor after torch's defaults)."""
        _dcgan_init(self, generator)

    @classmethod
    def tiny(cls, config: GANConfig | str = "tiny", *, generator: torch.Generator | int | None = None):
        """A test-sized discriminator (``GANConfig.tiny()``)."""
        return cls(config, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (c.channels, c.image_size,
                                                                                      c.image_size) \
                or x.dtype != self.head.weight.dtype:
            check_input(x, "x", "DCGANDiscriminator", shape=("B", c.channels, c.image_size, c.image_size),
                        dtype=self.head.weight.dtype)
        h = nn.functional.leaky_relu(self.from_image(x), c.slope)  # (B, width, S, S)
        for block in self.blocks:
            h = block(h)  # (B, 2c, H/2, W/2)
        return self.head(h.flatten(1)).squeeze(1)  # (B,)


# --------------------------------------------------------------------------- 2-D data
class MLPGenerator(nn.Module):
    """A fully connected generator for low-dimensional data: z → ReLU hidden layers → x (no output activation).

    Args:
        d_latent: D_z. d_out: D, the data's dimensions. hidden: the hidden widths, a
            non-empty list of positive ints.
        generator: the initial weights (torch's default initialisation). Default: None.

    Shape:
        z: ``(B, D_z)`` -> ``(B, D)``.
    """

    def __init__(self, d_latent: int, d_out: int, hidden=(64, 64), *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "MLPGenerator"
        self.d_latent = check_int(d_latent, "d_latent", owner)
        self.d_out = check_int(d_out, "d_out", owner)
        self.hidden = check_sizes(hidden, "hidden", owner)
        generator = as_generator(generator, owner)
        widths = (self.d_latent, *self.hidden, self.d_out)
        layers: list[nn.Module] = []
        with initialised_from(self, generator):
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
                if i > 0:
                    layers.append(nn.ReLU())
                layers.append(nn.Linear(a, b))
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        weight = self.net[0].weight
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.d_latent or z.dtype != weight.dtype:
            check_input(z, "z", "MLPGenerator", shape=("B", self.d_latent), dtype=weight.dtype)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """A fully connected discriminator for low-dimensional data: x → leaky-ReLU hidden layers → one logit.

    Args:
        d_in: D, the data's dimensions. hidden: the hidden widths, a non-empty list of positive ints.
        slope: the leaky ReLU's slope for negative inputs. Default: 0.2.
        generator: the initial weights (torch's default initialisation). Default: None.

    Shape:
        x: ``(B, D)`` -> logits ``(B,)``.
    """

    def __init__(self, d_in: int, hidden=(64, 64), *, slope: float = 0.2,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "MLPDiscriminator"
        self.d_in = check_int(d_in, "d_in", owner)
        self.hidden = check_sizes(hidden, "hidden", owner)
        self.slope = check_float(slope, "slope", owner, low=0.0, high=1.0, high_open=True)
        generator = as_generator(generator, owner)
        widths = (self.d_in, *self.hidden, 1)
        layers: list[nn.Module] = []
        with initialised_from(self, generator):
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
                if i > 0:
                    layers.append(nn.LeakyReLU(self.slope))
                layers.append(nn.Linear(a, b))
            self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.net[0].weight
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.d_in or x.dtype != weight.dtype:
            check_input(x, "x", "MLPDiscriminator", shape=("B", self.d_in), dtype=weight.dtype)
        return self.net(x).squeeze(1)  # (B,)


# --------------------------------------------------------------------------- the pair
class GAN(nn.Module):
    """A generator and a discriminator held together, with the latent distribution Norm[0, I] of D_z dimensions.

    ``forward(z)`` (and :meth:`sample`) run the generator; the discriminator is used by
    the training losses (:mod:`udl.train.gan`). A conditional pair takes the condition
    as a second input, ``generator_net(z, c)``; :meth:`sample` passes ``c`` through.

    Args:
        generator_net: g[z, θ], any module taking ``(B, D_z)`` latents.
        discriminator_net: f[x, φ], any module returning logits.
        d_latent: D_z.

    Example::

        >>> gan = GAN(MLPGenerator(2, 2, (8,), generator=0), MLPDiscriminator(2, (8,), generator=1), 2)
        >>> gan.sample(4, generator=0).shape, gan.latent(4, generator=0).shape
        (torch.Size([4, 2]), torch.Size([4, 2]))
    """

    def __init__(self, generator_net: nn.Module, discriminator_net: nn.Module, d_latent: int):
        super().__init__()
        owner = "GAN"
        self.generator_net = check_instance(generator_net, "generator_net", owner, nn.Module)
        self.discriminator_net = check_instance(discriminator_net, "discriminator_net", owner, nn.Module)
        self.d_latent = check_int(d_latent, "d_latent", owner)

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.generator_net.parameters(), None)
        return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.get_default_dtype())

    def latent(self, n: int, *, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """z ~ Norm[0, I], ``(n, D_z)``, on the generator network's device.

        Args:
            n: how many.
            generator: the draws: a ``torch.Generator`` (on any device) or an int seed.
                Default: None, torch's global generator.
        """
        n = check_int(n, "n", "GAN.latent")
        generator = as_generator(generator, "GAN.latent")
        device, dtype = self._device_dtype()
        drawn_on = generator.device if generator is not None else "cpu"
        return torch.randn(n, self.d_latent, generator=generator, dtype=dtype, device=drawn_on).to(device)

    def forward(self, z: torch.Tensor, *condition) -> torch.Tensor:
        """g[z, θ]: ``(B, D_z)`` (and a condition) -> samples."""
        return self.generator_net(z, *condition)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | int | None = None, c=None) -> torch.Tensor:
        """n samples x* = g[z], z ~ Norm[0, I], without gradients, the generator in eval mode.

        (Batch normalisation then uses its running statistics, so a sample does not depend
        on the others drawn with it.) The generator network's mode is restored after.

        Args:
            n: how many.
            generator: the latents: a ``torch.Generator`` or an int seed. Default: None.
            c: a condition for a conditional generator, ``generator_net(z, c)``. Default: None.
        """
        z = self.latent(n, generator=generator)
        was_training = self.generator_net.training
        self.generator_net.eval()
        try:
            return self.generator_net(z) if c is None else self.generator_net(z, c)
        finally:
            self.generator_net.train(was_training)
