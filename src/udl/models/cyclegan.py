"""CycleGAN's two translators and the losses that tie them together (UDL §15.4.4, fig. 15.18; Zhu et al. 2017).

Two image domains, A and B (horses and zebras in the book; udl's plain and bold digits,
:mod:`udl.data.digit_styles`), are given as two *unpaired* sets of examples. Two
networks translate between them:

    c' = g[c, θ]      from A to B,          c = g'[c', θ']      from B back to A.

Nothing says which B image belongs to which A image, so the translators are trained by
what can be measured without pairs:

- **adversarial losses**: a discriminator per domain tells real B images from g[a] and
  real A images from g'[b] (:mod:`udl.nn.adversarial`; composed in :mod:`udl.train.cyclegan`);
- the **cycle-consistency loss**: a translated image translated back must be the image
  it came from, in both directions (mean absolute error, as Zhu et al.)::

      L_cyc = mean |g'[g[a]] − a| + mean |g[g'[b]] − b|

- the **content loss** of the book's caption: the translation keeps the input's layout,
  ``mean |g[a] − a| + mean |g'[b] − b|`` (useful when the two styles differ by little);
- the **identity loss** of Zhu et al.: a translator given an image already in its target
  domain leaves it alone, ``mean |g[b] − b| + mean |g'[a] − a|``.

:meth:`CycleGAN.losses` computes every translation once and returns all three terms.

The translator is a small residual network that keeps the image's size: a 3x3
convolution to ``width`` channels, ``n_blocks`` residual blocks (udl.nn.residual, no
batch norm: the book's fig. 11.7a without it), a ReLU and a 3x3 convolution back to the
image's channels, and a sigmoid (images in [0, 1], as udl's digits). Zhu et al.'s
translator for 256x256 photographs adds two strided convolutions before the blocks and
two transposed ones after; an 8x8 digit needs no downsampling: with two blocks the six
3x3 convolutions already see 13x13 pixels around each output pixel.

Images are ``(B, C, H, W)`` float tensors in [0, 1].

Example::

    >>> model = CycleGAN(CycleGANConfig.tiny(), generator=0)
    >>> a, b = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    >>> fake_b, fake_a = model(a, b)
    >>> fake_b.shape, sorted(model.losses(a, b))
    (torch.Size([3, 1, 8, 8]), ['content', 'cycle', 'fake_a', 'fake_b', 'identity'])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from udl.nn.init import he_init, initialised_from
from udl.nn.residual import ResidualBlock
from udl.validate import as_generator, check_choice, check_config, check_input, check_int

__all__ = ["CycleGANConfig", "Translator", "CycleGAN", "DIRECTIONS"]

DIRECTIONS = ("a_to_b", "b_to_a")


@dataclass(frozen=True)
class CycleGANConfig:
    """The shape of the two translators of a :class:`CycleGAN` (both the same)."""

    channels: int = 1  # C, image channels (1 grey, 3 colour)
    width: int = 32  # feature channels inside the translator
    n_blocks: int = 2  # residual blocks (two 3x3 convolutions each)

    def __post_init__(self):
        owner = "CycleGANConfig"
        check_int(self.channels, "channels", owner)
        check_int(self.width, "width", owner)
        check_int(self.n_blocks, "n_blocks", owner, minimum=0)

    @classmethod
    def digits(cls, **changes) -> CycleGANConfig:
        """udl's 8x8 digits: one channel, 32 features, two residual blocks, with ``changes``."""
        return cls(**{**dict(channels=1, width=32, n_blocks=2), **changes})

    @classmethod
    def tiny(cls, **changes) -> CycleGANConfig:
        """For tests: one channel, 4 features, one residual block, with ``changes``."""
        return cls(**{**dict(channels=1, width=4, n_blocks=1), **changes})

    def translator_parameter_count(self) -> int:
        """3x3 conv C → w (+ bias), per block two 3x3 convs w → w (+ biases), 3x3 conv w → C (+ bias)."""
        c, w = self.channels, self.width
        return (9 * c * w + w) + self.n_blocks * 2 * (9 * w * w + w) + (9 * w * c + c)

    def parameter_count(self) -> int:
        """Both translators, g and g'."""
        return 2 * self.translator_parameter_count()


def _as_config(config, owner: str) -> CycleGANConfig:
    return check_config(config, "config", owner, CycleGANConfig, ("digits", "tiny"),
                        lambda name: getattr(CycleGANConfig, name)())


# --------------------------------------------------------------------------- one direction
class Translator(nn.Module):
    """An image-to-image network that keeps the size: g[c, θ] of one direction of a CycleGAN.

    3x3 conv (C → w) → ``n_blocks`` × residual block (ReLU → 3x3 conv → ReLU → 3x3 conv, + input)
    → ReLU → 3x3 conv (w → C) → sigmoid. He initialisation (§7.5), biases zero.

    Args:
        config: a :class:`CycleGANConfig`, or ``"digits"`` / ``"tiny"``. Default: "digits".
        generator: the initial weights: a ``torch.Generator`` or an int seed. Default: None,
            torch's global generator.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``, values in (0, 1).

    Example::

        >>> Translator("tiny", generator=0)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, config: CycleGANConfig | str = "digits", *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _as_config(config, "Translator")
        generator = as_generator(generator, "Translator")
        with initialised_from(self, generator):
            self.from_image = nn.Conv2d(c.channels, c.width, 3, padding=1)
            self.blocks = nn.Sequential(*(ResidualBlock(c.width, norm=False) for _ in range(c.n_blocks)))
            self.to_image = nn.Conv2d(c.width, c.channels, 3, padding=1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation of every convolution: weights N(0, 2/fan_in), biases 0."""
        he_init(self, generator)

    @classmethod
    def tiny(cls, config: CycleGANConfig | str = "tiny", *, generator: torch.Generator | int | None = None):
        """A test-sized translator (``CycleGANConfig.tiny()``)."""
        return cls(config, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        weight = self.from_image.weight
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != c.channels or x.dtype != weight.dtype:
            check_input(x, "x", "Translator", shape=("B", c.channels, "H", "W"), dtype=weight.dtype)
        h = self.blocks(self.from_image(x))  # (B, w, H, W)
        return torch.sigmoid(self.to_image(torch.relu(h)))  # (B, C, H, W)


# --------------------------------------------------------------------------- both directions
class CycleGAN(nn.Module):
    """The two translators of a CycleGAN, g (A → B) and g' (B → A), and the losses between them.

    The discriminators are not held here: any image discriminator will do
    (:func:`udl.train.cyclegan.train_cyclegan` uses DCGAN's), and the adversarial terms
    live with the training.

    Args:
        config: a :class:`CycleGANConfig`, or ``"digits"`` / ``"tiny"``. Default: "digits".
        generator: the initial weights of both translators (g first): a ``torch.Generator``
            or an int seed. Default: None.

    Shape:
        forward: a ``(B, C, H, W)``, b ``(B', C, H, W)`` -> ``(g[a], g'[b])`` of the same shapes.

    Example::

        >>> model = CycleGAN("tiny", generator=0)
        >>> model.translate(torch.zeros(2, 1, 8, 8), "b_to_a").shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, config: CycleGANConfig | str = "digits", *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _as_config(config, "CycleGAN")
        generator = as_generator(generator, "CycleGAN")
        with initialised_from(self, generator):
            self.g = Translator(c)  # A -> B: c' = g[c, θ]
            self.g_prime = Translator(c)  # B -> A: c = g'[c', θ']

    @classmethod
    def tiny(cls, config: CycleGANConfig | str = "tiny", *, generator: torch.Generator | int | None = None):
        """A test-sized CycleGAN (``CycleGANConfig.tiny()``)."""
        return cls(config, generator=generator)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both translations: ``(g[a], g'[b])``."""
        return self.g(a), self.g_prime(b)

    def translate(self, x: torch.Tensor, direction: str = "a_to_b") -> torch.Tensor:
        """g[x] for ``"a_to_b"``, g'[x] for ``"b_to_a"``."""
        check_choice(direction, "direction", "CycleGAN.translate", DIRECTIONS)
        return self.g(x) if direction == "a_to_b" else self.g_prime(x)

    def round_trip(self, x: torch.Tensor, start: str = "a") -> torch.Tensor:
        """g'[g[x]] for images of domain A (``start="a"``), g[g'[x]] for images of domain B."""
        check_choice(start, "start", "CycleGAN.round_trip", ("a", "b"))
        return self.g_prime(self.g(x)) if start == "a" else self.g(self.g_prime(x))

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every translation of a batch once, and the three reconstruction losses (mean absolute errors).

        Args:
            a: images of domain A, ``(B, C, H, W)``.
            b: images of domain B, ``(B', C, H, W)`` (unrelated to a: no pairs).

        Returns:
            ``{"fake_b": g[a], "fake_a": g'[b],`` the translations for the adversarial terms;
            ``"cycle": mean|g'[g[a]] − a| + mean|g[g'[b]] − b|``,
            ``"content": mean|g[a] − a| + mean|g'[b] − b|``,
            ``"identity": mean|g[b] − b| + mean|g'[a] − a|}`` (scalars).
        """
        weight = next(self.parameters(), None)
        c, dtype = self.config, torch.get_default_dtype() if weight is None else weight.dtype
        for name, x in (("a", a), ("b", b)):
            if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != c.channels or x.dtype != dtype:
                check_input(x, name, "CycleGAN.losses", shape=("B", c.channels, "H", "W"), dtype=dtype)
        fake_b, fake_a = self.g(a), self.g_prime(b)  # c' = g[c], and the other way
        cycle = (self.g_prime(fake_b) - a).abs().mean() + (self.g(fake_a) - b).abs().mean()
        content = (fake_b - a).abs().mean() + (fake_a - b).abs().mean()
        identity = (self.g(b) - b).abs().mean() + (self.g_prime(a) - a).abs().mean()
        return {"fake_b": fake_b, "fake_a": fake_a, "cycle": cycle, "content": content, "identity": identity}
