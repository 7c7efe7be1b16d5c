"""Conditional generation with GANs (UDL §15.4, fig. 15.13): conditional GAN, ACGAN and InfoGAN on 8x8 digits.

A plain GAN (§15.1) maps a latent z ~ Norm[0, I] to an image and gives no say over
*which* image. §15.4 adds a variable c to the generator's input, x* = g[z, c, θ], in
three ways that differ in how the discriminator learns what c means:

* **Conditional GAN** (Mirza & Osindero 2014, fig. 15.13a): the discriminator sees the
  class too, f[x, c, ϕ], and is asked whether x is a real image *of class c*; a
  generated 3 labelled 7 is then easy to reject. :class:`ConditionalDiscriminator`
  gives it the class by *projection* (Miyato & Koyama 2018), an inner product between
  a learned class embedding and the image's features added to the logit::

      f[x, c] = w·h[x] + b + E[c]·h[x]

  or, with ``condition="concat"``, as in the original paper, by K constant one-hot
  feature maps stacked onto the image. Projection measured far better on the digits
  (2,000 steps each at Adam's 2·10⁻⁴, width 32: 96% of samples recognised as the class asked for and
  Fréchet distance 4.6, against 89% and 10.0 for concatenation; the class-conditional
  trivial model: 21.1).
* **ACGAN**, the auxiliary classifier GAN (Odena et al. 2017, fig. 15.13b): the
  discriminator sees the image alone and outputs the real/fake logit *and* class
  logits; both networks minimise the cross-entropy of the class (of real images for
  the discriminator, of generated ones for both): :class:`AuxiliaryClassifierDiscriminator`.
* **InfoGAN** (Chen et al. 2016, fig. 15.13c): no labels at all. The generator gets a
  categorical code c of K values (and optionally continuous codes u ∈ [-1, 1]) besides
  z; a head Q on the discriminator's features predicts the code from the image, and
  both minimise Q's cross-entropy (a variational lower bound on the mutual information
  between c and the image). The code comes to mean *something* that Q can read from
  the image: often, on digits, the class. :class:`InfoGANDiscriminator`.

The same generator serves all three: :class:`ConditionalGenerator` (the codes are
simply more inputs). It is DCGAN-like (Radford et al. 2016) for 8x8 images: a linear
layer to ``2·width`` maps of 4x4, batch norm and ReLU, a transposed convolution (4x4,
stride 2) to ``width`` maps of 8x8, batch norm and ReLU, a 3x3 convolution and a
sigmoid (udl's digits lie in [0, 1]). The discriminators share one body: two strided
4x4 convolutions (8x8 → 4x4 → 2x2) with leaky ReLUs (slope 0.2), no batch norm.
:class:`ConditionalGAN` holds one generator and one discriminator of a kind.

The losses and the training loop are :mod:`udl.nn.adversarial` and
:mod:`udl.train.conditional_gan`.

Example::

    >>> gan = ConditionalGAN(ConditionalGANConfig.digits(), kind="acgan", generator=0)
    >>> gan.sample(torch.tensor([3, 7]), generator=0).shape
    torch.Size([2, 1, 8, 8])
    >>> logit, class_logits = gan.discriminator_net(torch.rand(2, 1, 8, 8))
    >>> logit.shape, class_logits.shape
    (torch.Size([2]), torch.Size([2, 10]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.validate import _refuse, as_generator, check_choice, check_config, check_input, check_int, check_tensor

__all__ = ["ConditionalGANConfig", "ConditionalGenerator", "ConditionalDiscriminator",
           "AuxiliaryClassifierDiscriminator", "InfoGANDiscriminator", "ConditionalGAN", "KINDS", "CONDITIONS"]

KINDS = ("cgan", "acgan", "infogan")
CONDITIONS = ("projection", "concat")
SIZE = 8  # the images: 8x8, one channel (udl's digits)
SLOPE = 0.2  # the leaky ReLU's slope in the discriminators (DCGAN's)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ConditionalGANConfig:
    """The shape of the networks of :class:`ConditionalGAN`; images are 8x8 with one channel."""

    d_latent: int = 16  # D_z, the size of the noise z ~ Norm[0, I]
    n_classes: int = 10  # K: the classes of a cGAN/ACGAN, the values of InfoGAN's categorical code
    n_continuous: int = 0  # InfoGAN's continuous codes u ~ Uniform[-1, 1] (0: none; cGAN and ACGAN have none)
    width: int = 32  # feature maps at 8x8; the 4x4 (generator) and 2x2 (discriminator) layers have 2·width

    def __post_init__(self):
        owner = "ConditionalGANConfig"
        check_int(self.d_latent, "d_latent", owner)
        check_int(self.n_classes, "n_classes", owner, minimum=2)
        check_int(self.n_continuous, "n_continuous", owner, minimum=0)
        check_int(self.width, "width", owner)

    @classmethod
    def digits(cls, **changes) -> ConditionalGANConfig:
        """The digits: D_z = 16, 10 classes, width 32 (the defaults), with ``changes``."""
        return cls(**changes)

    @classmethod
    def tiny(cls, **changes) -> ConditionalGANConfig:
        """For tests: D_z = 3, 3 classes, width 2, with ``changes``."""
        return cls(**{**dict(d_latent=3, n_classes=3, width=2), **changes})

    @property
    def d_input(self) -> int:
        """The generator's input: z, the one-hot class (or code) and the continuous codes."""
        return self.d_latent + self.n_classes + self.n_continuous

    @property
    def d_features(self) -> int:
        """The discriminator body's output: 2·width maps of 2x2."""
        return 2 * self.width * 4

    def generator_parameter_count(self) -> int:
        """Linear (D_in + 1)·2w·16, batch norm 2·2w, transposed conv 2w·w·16 + w, batch norm 2w, conv 9w + 1."""
        w = self.width
        return (self.d_input + 1) * 2 * w * 16 + 4 * w + (2 * w * w * 16 + w) + 2 * w + (9 * w + 1)

    def discriminator_parameter_count(self, kind: str = "cgan", condition: str = "projection") -> int:
        """The body, conv (C_in·16 + 1)·w and conv (16w + 1)·2w, plus the heads on its F = 8w features:
        real/fake F + 1, and projection K·F (cGAN), classes (F + 1)·K (ACGAN, InfoGAN), continuous (F + 1)·U."""
        kind = check_choice(kind, "kind", "ConditionalGANConfig", KINDS)
        condition = check_choice(condition, "condition", "ConditionalGANConfig", CONDITIONS)
        w, f, k = self.width, self.d_features, self.n_classes
        c_in = 1 + (k if kind == "cgan" and condition == "concat" else 0)
        count = (c_in * 16 + 1) * w + (16 * w + 1) * 2 * w + f + 1
        if kind == "cgan":
            return count + (k * f if condition == "projection" else 0)
        return count + (f + 1) * k + ((f + 1) * self.n_continuous if kind == "infogan" else 0)


def _config(config, owner: str) -> ConditionalGANConfig:
    return check_config(config, "config", owner, ConditionalGANConfig, ("digits", "tiny"),
                        lambda name: getattr(ConditionalGANConfig, name)())


def _classes(c, batch: int, n_classes: int, owner: str, name: str = "c") -> torch.Tensor:
    """``c`` checked: an int tensor (B,) of values 0 … K − 1."""
    if not isinstance(c, torch.Tensor) or c.shape != (batch,) or c.dtype.is_floating_point or c.dtype == torch.bool:
        check_tensor(c, name, owner, shape=(batch,), dtype="int")
    if batch and (int(c.min()) < 0 or int(c.max()) >= n_classes):
        _refuse(name, owner, f"classes 0 … {n_classes - 1}", f"values {int(c.min())} … {int(c.max())}")
    return c


def _images(x, owner: str, dtype: torch.dtype) -> None:
    if not isinstance(x, torch.Tensor) or x.dtype != dtype or x.dim() != 4 or x.shape[1:] != (1, SIZE, SIZE):
        check_input(x, "x", owner, shape=("B", 1, SIZE, SIZE), dtype=dtype)


# --------------------------------------------------------------------------- the generator
class ConditionalGenerator(nn.Module):
    """The generator x* = g[z, c, u, θ] of a conditional GAN, an ACGAN or an InfoGAN (§15.4).

    The input is the concatenation [z, one-hot(c), u]: the noise, the class (or InfoGAN's
    categorical code) and InfoGAN's continuous codes (when ``n_continuous`` > 0)::

        linear → (2w, 4, 4) → BN → ReLU → ConvTranspose 4x4/2 → (w, 8, 8) → BN → ReLU
               → conv 3x3 → sigmoid

    Args:
        config: a :class:`ConditionalGANConfig`, or ``"digits"`` / ``"tiny"``. Default ``"digits"``.
        generator: the random initial weights (torch's default rules): a ``torch.Generator``
            or an int seed. Default: torch's global generator.

    Shape:
        z: ``(B, D_z)``, c: ``(B,)`` int in 0 … K − 1, u: ``(B, U)`` (only when U = n_continuous > 0)
        -> ``(B, 1, 8, 8)`` in (0, 1).

    Example::

        >>> g = ConditionalGenerator("tiny", generator=0)
        >>> g(torch.zeros(2, 3), torch.tensor([0, 2])).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, config: ConditionalGANConfig | str = "digits", *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = _config(config, "ConditionalGenerator")
        generator = as_generator(generator, "ConditionalGenerator")
        w = self.config.width
        with initialised_from(self, generator):
            self.project = nn.Linear(self.config.d_input, 2 * w * 4 * 4)
            self.norm0 = nn.BatchNorm2d(2 * w)
            self.up = nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1)  # 4x4 -> (4 - 1)·2 − 2 + 4 = 8x8
            self.norm1 = nn.BatchNorm2d(w)
            self.out = nn.Conv2d(w, 1, 3, padding=1)

    @classmethod
    def tiny(cls, config: ConditionalGANConfig | str = "tiny", *,
             generator: torch.Generator | int | None = None) -> ConditionalGenerator:
        """A test-sized generator (``ConditionalGANConfig.tiny()``)."""
        return cls(config, generator=generator)

    def forward(self, z: torch.Tensor, c: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        owner, cfg = "ConditionalGenerator", self.config
        dtype = self.project.weight.dtype
        if not isinstance(z, torch.Tensor) or z.dtype != dtype or z.dim() != 2 or z.shape[1] != cfg.d_latent:
            check_input(z, "z", owner, shape=("B", cfg.d_latent), dtype=dtype)
        c = _classes(c, len(z), cfg.n_classes, owner)
        parts = [z, F.one_hot(c.long(), cfg.n_classes).to(dtype)]  # (B, D_z), (B, K)
        if cfg.n_continuous:
            wanted = (len(z), cfg.n_continuous)
            if u is None or not isinstance(u, torch.Tensor) or u.dtype != dtype or u.shape != wanted:
                check_input(u, "u", owner, shape=(len(z), cfg.n_continuous), dtype=dtype)
            parts.append(u)
        elif u is not None:
            _refuse("u", owner, "None (the config has no continuous codes)", "a tensor")
        h = self.project(torch.cat(parts, 1)).view(len(z), 2 * cfg.width, 4, 4)  # (B, 2w, 4, 4)
        h = F.relu(self.norm0(h))
        h = F.relu(self.norm1(self.up(h)))  # (B, w, 8, 8)
        return torch.sigmoid(self.out(h))  # (B, 1, 8, 8)


# --------------------------------------------------------------------------- the discriminators
class _Body(nn.Module):
    """conv 4x4/2 → LeakyReLU → conv 4x4/2 → LeakyReLU → flatten: (B, C_in, 8, 8) -> (B, 8w)."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 4, stride=2, padding=1)  # 8x8 -> 4x4
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)  # 4x4 -> 2x2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), SLOPE)  # (B, w, 4, 4)
        return F.leaky_relu(self.conv2(h), SLOPE).flatten(1)  # (B, 2w, 2, 2) -> (B, 8w)


class ConditionalDiscriminator(nn.Module):
    """The discriminator f[x, c, ϕ] of a conditional GAN: is x a real image of class c? (fig. 15.13a)

    With ``condition="projection"`` (Miyato & Koyama 2018) the class enters at the end,
    through a learned embedding E (K x F) of the class: ``f = w·h[x] + b + E[c]·h[x]``;
    with ``condition="concat"`` (Mirza & Osindero 2014) the one-hot class is stacked onto
    the image as K constant 8x8 maps and ``f = w·h[[x, c]] + b``.

    Args:
        config: a :class:`ConditionalGANConfig`, or ``"digits"`` / ``"tiny"``. Default ``"digits"``.
        condition: ``"projection"`` or ``"concat"``. Default ``"projection"``.
        generator: the random initial weights (torch's default rules). Default: torch's global generator.

    Shape:
        x: ``(B, 1, 8, 8)``, c: ``(B,)`` int -> logits ``(B,)``.
    """

    def __init__(self, config: ConditionalGANConfig | str = "digits", *, condition: str = "projection",
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "ConditionalDiscriminator"
        self.config = _config(config, owner)
        self.condition = check_choice(condition, "condition", owner, CONDITIONS)
        generator = as_generator(generator, owner)
        cfg = self.config
        with initialised_from(self, generator):
            self.body = _Body(1 + (cfg.n_classes if self.condition == "concat" else 0), cfg.width)
            self.real = nn.Linear(cfg.d_features, 1)
            if self.condition == "projection":
                self.embed = nn.Embedding(cfg.n_classes, cfg.d_features)  # E: one feature direction per class

    @classmethod
    def tiny(cls, config: ConditionalGANConfig | str = "tiny", *, condition: str = "projection",
             generator: torch.Generator | int | None = None) -> ConditionalDiscriminator:
        """A test-sized discriminator (``ConditionalGANConfig.tiny()``)."""
        return cls(config, condition=condition, generator=generator)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        owner, cfg = "ConditionalDiscriminator", self.config
        _images(x, owner, self.real.weight.dtype)
        c = _classes(c, len(x), cfg.n_classes, owner).long()
        if self.condition == "concat":
            maps = F.one_hot(c, cfg.n_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, SIZE, SIZE)  # (B, K, 8, 8)
            return self.real(self.body(torch.cat([x, maps], 1))).squeeze(1)  # (B,)
        h = self.body(x)  # (B, F)
        return self.real(h).squeeze(1) + (self.embed(c) * h).sum(1)  # w·h + b + E[c]·h: (B,)


class AuxiliaryClassifierDiscriminator(nn.Module):
    """ACGAN's discriminator: from the image alone, the real/fake logit and the class logits (fig. 15.13b).

    Args:
        config: a :class:`ConditionalGANConfig`, or ``"digits"`` / ``"tiny"``. Default ``"digits"``.
        generator: the random initial weights (torch's default rules). Default: torch's global generator.

    Shape:
        x: ``(B, 1, 8, 8)`` -> ``(logits (B,), class_logits (B, K))``.
    """

    def __init__(self, config: ConditionalGANConfig | str = "digits", *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = type(self).__name__
        self.config = _config(config, owner)
        generator = as_generator(generator, owner)
        cfg = self.config
        with initialised_from(self, generator):
            self.body = _Body(1, cfg.width)
            self.real = nn.Linear(cfg.d_features, 1)
            self.classes = nn.Linear(cfg.d_features, cfg.n_classes)
            self._extra_heads(cfg)

    def _extra_heads(self, cfg: ConditionalGANConfig) -> None:
        pass

    @classmethod
    def tiny(cls, config: ConditionalGANConfig | str = "tiny", *,
             generator: torch.Generator | int | None = None) -> AuxiliaryClassifierDiscriminator:
        """A test-sized discriminator (``ConditionalGANConfig.tiny()``)."""
        return cls(config, generator=generator)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _images(x, type(self).__name__, self.real.weight.dtype)
        h = self.body(x)  # (B, F)
        return self.real(h).squeeze(1), self.classes(h)  # (B,), (B, K)


class InfoGANDiscriminator(AuxiliaryClassifierDiscriminator):
    """InfoGAN's discriminator with its head Q: the real/fake logit, Q's logits of the categorical code
    and Q's mean of each continuous code, all from the image alone (fig. 15.13c).

    Q shares the discriminator's body (Chen et al. 2016): one network, three linear heads.
    Q's distribution of a continuous code is a normal of unit variance around the mean
    it outputs, so its cross-entropy is half the squared error (plus a constant).

    Args:
        config: a :class:`ConditionalGANConfig` (its ``n_continuous`` sets the continuous head),
            or ``"digits"`` / ``"tiny"``. Default ``"digits"``.
        generator: the random initial weights (torch's default rules). Default: torch's global generator.

    Shape:
        x: ``(B, 1, 8, 8)`` -> ``(logits (B,), code_logits (B, K), code_means (B, U))`` (U may be 0).
    """

    def _extra_heads(self, cfg: ConditionalGANConfig) -> None:
        self.continuous = nn.Linear(cfg.d_features, cfg.n_continuous) if cfg.n_continuous else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _images(x, type(self).__name__, self.real.weight.dtype)
        h = self.body(x)  # (B, F)
        means = self.continuous(h) if self.continuous is not None else h.new_zeros(len(x), 0)  # (B, U)
        return self.real(h).squeeze(1), self.classes(h), means


# --------------------------------------------------------------------------- the pair
class ConditionalGAN(nn.Module):
    """A generator and the discriminator of one kind of conditional GAN, built together.

    ``kind="cgan"``: :class:`ConditionalDiscriminator` (``condition`` picks how it sees the
    class); ``"acgan"``: :class:`AuxiliaryClassifierDiscriminator`; ``"infogan"``:
    :class:`InfoGANDiscriminator`. The generator is a :class:`ConditionalGenerator` in
    every case. ``forward(z, c[, u])`` is the generator's.

    Args:
        config: a :class:`ConditionalGANConfig`, or ``"digits"`` / ``"tiny"``. Default ``"digits"``.
        kind: ``"cgan"``, ``"acgan"`` or ``"infogan"``. Default ``"cgan"``.
        condition: the cGAN discriminator's ``condition``. Default ``"projection"``.
        generator: the random initial weights of both networks. Default: torch's global generator.

    Attributes:
        generator_net, discriminator_net: the two networks.

    Shape:
        as :class:`ConditionalGenerator`: ``(B, D_z), (B,)[, (B, U)] -> (B, 1, 8, 8)``.
    """

    def __init__(self, config: ConditionalGANConfig | str = "digits", *, kind: str = "cgan",
                 condition: str = "projection", generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "ConditionalGAN"
        self.config = _config(config, owner)
        self.kind = check_choice(kind, "kind", owner, KINDS)
        self.condition = check_choice(condition, "condition", owner, CONDITIONS)
        if self.kind != "infogan" and self.config.n_continuous:
            _refuse("config", owner, f"a config without continuous codes for kind {self.kind!r}",
                    f"n_continuous={self.config.n_continuous}")
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.generator_net = ConditionalGenerator(self.config)
            if self.kind == "cgan":
                self.discriminator_net = ConditionalDiscriminator(self.config, condition=self.condition)
            elif self.kind == "acgan":
                self.discriminator_net = AuxiliaryClassifierDiscriminator(self.config)
            else:
                self.discriminator_net = InfoGANDiscriminator(self.config)

    @classmethod
    def tiny(cls, config: ConditionalGANConfig | str = "tiny", *, kind: str = "cgan", condition: str = "projection",
             generator: torch.Generator | int | None = None) -> ConditionalGAN:
        """A test-sized pair (``ConditionalGANConfig.tiny()``)."""
        return cls(config, kind=kind, condition=condition, generator=generator)

    def forward(self, z: torch.Tensor, c: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator_net(z, c, u)

    def latent(self, n: int, *, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """z ~ Norm[0, I], ``(n, D_z)``, on the networks' device."""
        n = check_int(n, "n", "ConditionalGAN.latent", minimum=0)
        generator = as_generator(generator, "ConditionalGAN.latent")
        weight = self.generator_net.project.weight
        z = torch.randn(n, self.config.d_latent, generator=generator, dtype=weight.dtype)
        return z.to(weight.device)

    def codes(self, n: int, *, generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """InfoGAN's codes for ``n`` images: c uniform over 0 … K − 1 ``(n,)`` and u ~ Uniform[-1, 1] ``(n, U)``."""
        n = check_int(n, "n", "ConditionalGAN.codes", minimum=0)
        generator = as_generator(generator, "ConditionalGAN.codes")
        weight = self.generator_net.project.weight
        c = torch.randint(self.config.n_classes, (n,), generator=generator)
        u = 2 * torch.rand(n, self.config.n_continuous, generator=generator, dtype=weight.dtype) - 1
        return c.to(weight.device), u.to(weight.device)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, u: torch.Tensor | None = None, *,
               generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Images of the classes (codes) ``c``: the generator in eval mode (batch norm's running statistics)
        at fresh z ~ Norm[0, I]; ``u`` defaults to zeros for an InfoGAN with continuous codes.

        Shape:
            c: ``(n,)`` int -> ``(n, 1, 8, 8)`` on the networks' device.
        """
        owner = "ConditionalGAN.sample"
        weight = self.generator_net.project.weight
        if not isinstance(c, torch.Tensor) or c.dim() != 1:
            check_tensor(c, "c", owner, ndim=1, dtype="int")
        c = _classes(c, len(c), self.config.n_classes, owner).to(weight.device)
        if self.config.n_continuous and u is None:
            u = weight.new_zeros(len(c), self.config.n_continuous)
        z = self.latent(len(c), generator=generator)
        was_training = self.generator_net.training
        self.generator_net.eval()
        try:
            return self.generator_net(z, c, u)
        finally:
            self.generator_net.train(was_training)
