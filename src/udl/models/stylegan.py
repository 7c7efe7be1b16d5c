"""A style-based generator (UDL §15.6, fig. 15.19; Karras et al. 2019, StyleGAN).

The generator does not take the latent variable at its input. Its main pipeline starts
from a **learned constant** 4x4 representation, passes it through convolutions and ×2
upsamplings to the output size, and the latent variable acts on it in two other ways:

* the **mapping network** (a fully connected network) turns z ~ Norm[0, I] into an
  intermediate *style* variable w;
* each layer of the pipeline has its own learned affine map A_l of w to a scale γ_l and a
  shift β_l per channel, which set the mean and standard deviation of that channel after
  instance normalisation (**adaptive instance normalisation**, AdaIN, StyleGAN 1)::

      AdaIN(h, w)_c = γ_c(w) · (h_c − μ_c[h]) / σ_c[h] + β_c(w),   (γ, β) = A_l[w],

  μ_c and σ_c being the mean and standard deviation of channel c over the positions of
  one image; so the style replaces each channel's first two moments.

Before each AdaIN a fresh image of Gaussian noise n (one value per position, shared by
the channels) is added with a learned scale ψ_c per channel: ``h_c + ψ_c n`` (the z• and
ψ• of fig. 15.19). Noise adds the random detail that the style does not fix; the
scales start at zero, so the network learns how much to use.

A layer is "conv 3x3 (no bias) → + ψ·noise → + bias → LeakyReLU(0.2) → AdaIN(w_l)", two
per resolution (the first at 4x4 acts on the constant itself, without a convolution);
a 1x1 convolution and a sigmoid give the image in [0, 1] (udl's digits' range). With
one w per layer (``ws`` of shape ``(B, L, D_w)``) the layers at coarse resolutions can
take their style from one latent and those at fine resolutions from another: **style
mixing**, :meth:`StyleGenerator.mix`.

Left out, as in most small re-implementations: the equalised learning rate, the
blur after upsampling (bilinear upsampling is used), the truncation trick and
progressive growing (udl.models.progressive_gan grows a GAN).

Example::

    >>> model = StyleGenerator(StyleGANConfig.tiny(), generator=0)
    >>> z = model.latent(3, generator=1)
    >>> model(z, model.draw_noise(3, generator=2)).shape
    torch.Size([3, 1, 8, 8])
    >>> model.n_styles, model.resolutions
    (4, (4, 4, 8, 8))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import he_init, initialised_from
from udl.validate import _refuse, as_generator, check_config, check_float, check_input, check_int, check_tensor

__all__ = ["AdaIN", "NoiseInjection", "MappingNetwork", "StyleLayer", "StyleGANConfig", "StyleGenerator"]

SLOPE = 0.2  # the LeakyReLU's slope for negative inputs (StyleGAN's)


# --------------------------------------------------------------------------- the blocks
class AdaIN(nn.Module):
    """Adaptive instance normalisation: the style w sets the mean and scale of each channel (StyleGAN 1).

        AdaIN(h, w)_c = γ_c · (h_c − μ_c[h]) / sqrt(σ²_c[h] + ε) + β_c,   (γ − 1, β) = A[w] = Ω w + b

    μ_c and σ²_c are the mean and (biased) variance of channel c over the H·W positions
    of each image. γ = 1 + (the affine map's first half), so that a map near zero leaves
    the normalised channel as it is (StyleGAN initialises the scale's bias to 1).

    Args:
        channels: C, channels of h.
        d_style: D_w, the style's size.
        eps: ε, added to the variance. Default: 1e-5.
        generator: the affine map's initial weights (torch's default rule): a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Shape:
        h: ``(B, C, H, W)``; w: ``(B, D_w)``; output ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, d_style: int, *, eps: float = 1e-5,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.channels = check_int(channels, "channels", "AdaIN")
        self.d_style = check_int(d_style, "d_style", "AdaIN")
        self.eps = check_float(eps, "eps", "AdaIN", low=0.0, low_open=True)
        generator = as_generator(generator, "AdaIN")
        with initialised_from(self, generator):
            self.affine = nn.Linear(d_style, 2 * channels)  # A: w -> (γ − 1, β)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Ω ~ N(0, 1/D_w), b = 0 (StyleGAN's scale): at the start γ = 1 and β = 0 on average, and w matters."""
        nn.init.normal_(self.affine.weight, std=self.d_style ** -0.5, generator=generator)
        nn.init.zeros_(self.affine.bias)

    def style(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ, β), each ``(B, C)``: the scale and mean each channel will have."""
        scale, shift = self.affine(w).chunk(2, dim=-1)  # (B, C) each
        return 1.0 + scale, shift

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if h.dim() != 4 or h.shape[1] != self.channels or h.dtype != self.affine.weight.dtype:
            check_input(h, "h", "AdaIN", shape=("B", self.channels, "H", "W"), dtype=self.affine.weight.dtype)
        if w.dim() != 2 or w.shape != (h.shape[0], self.d_style):
            check_input(w, "w", "AdaIN", shape=(h.shape[0], self.d_style), dtype=self.affine.weight.dtype)
        mu = h.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        var = h.var(dim=(2, 3), keepdim=True, unbiased=False)  # (B, C, 1, 1)
        gamma, beta = self.style(w)  # (B, C) each
        return gamma[:, :, None, None] * (h - mu) / torch.sqrt(var + self.eps) + beta[:, :, None, None]


class NoiseInjection(nn.Module):
    """Adds one image of noise, scaled per channel: ``h_c + ψ_c n`` (the z• and ψ• of fig. 15.19).

    The noise n ``(B, 1, H, W)`` is shared by the C channels; the scales ψ ``(C,)`` are
    learned and start at zero (StyleGAN), so an untrained layer adds nothing.

    Shape:
        h: ``(B, C, H, W)``; noise: ``(B, 1, H, W)``; output ``(B, C, H, W)``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = check_int(channels, "channels", "NoiseInjection")
        self.psi = nn.Parameter(torch.zeros(channels))  # ψ, one scale per channel

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        nn.init.zeros_(self.psi)

    def forward(self, h: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return h + self.psi[None, :, None, None] * noise  # (B, C, H, W) + (1, C, 1, 1) * (B, 1, H, W)


class MappingNetwork(nn.Module):
    """The mapping network f: z → w (fig. 15.19's bottom row): a fully connected network.

    z is first scaled to unit root-mean-square (StyleGAN's pixel normalisation of the
    input), then ``depth`` linear layers, each followed by LeakyReLU(0.2), as StyleGAN's
    mapping network (which has 8 of 512 units).

    Args:
        d_latent: D_z. d_style: D_w, the width of every layer. depth: the number of layers.
        generator: the initial weights (He's: N(0, 2 / fan-in), biases 0). Default: None.

    Shape:
        z: ``(B, D_z)`` -> w: ``(B, D_w)``.
    """

    def __init__(self, d_latent: int, d_style: int, depth: int, *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "MappingNetwork"
        self.d_latent = check_int(d_latent, "d_latent", owner)
        self.d_style = check_int(d_style, "d_style", owner)
        depth = check_int(depth, "depth", owner)
        generator = as_generator(generator, owner)
        widths = (d_latent,) + (d_style,) * depth
        with initialised_from(self, generator):
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (§7.5; StyleGAN's gain √2): w keeps the scale of the normalised z through the layers."""
        he_init(self, generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        weight = self.layers[0].weight
        if z.dim() != 2 or z.shape[1] != self.d_latent or z.dtype != weight.dtype:
            check_input(z, "z", "MappingNetwork", shape=("B", self.d_latent), dtype=weight.dtype)
        h = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # z / rms(z)
        for layer in self.layers:
            h = F.leaky_relu(layer(h), SLOPE)
        return h


class StyleLayer(nn.Module):
    """One layer of the synthesis network: conv 3x3 (no bias) → + ψ·noise → + bias → LeakyReLU → AdaIN(w).

    With ``in_channels=None`` there is no convolution: the layer acts on its input as it
    is (the first layer, on the learned constant). The convolution has no bias of its
    own: the noise comes first, then the bias, as in StyleGAN.

    Shape:
        h: ``(B, C_in, H, W)``; noise: ``(B, 1, H, W)``; w: ``(B, D_w)``; output ``(B, C, H, W)``.
    """

    def __init__(self, in_channels: int | None, channels: int, d_style: int, *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "StyleLayer"
        if in_channels is not None:
            in_channels = check_int(in_channels, "in_channels", owner)
        self.channels = check_int(channels, "channels", owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.conv = None if in_channels is None else nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
            self.noise = NoiseInjection(channels)
            self.bias = nn.Parameter(torch.empty(channels))
            self.adain = AdaIN(channels, d_style)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, h: torch.Tensor, noise: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            h = self.conv(h)  # (B, C, H, W)
        h = self.noise(h, noise) + self.bias[None, :, None, None]
        return self.adain(F.leaky_relu(h, SLOPE), w)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class StyleGANConfig:
    """The shape of a :class:`StyleGenerator`; the defaults suit the 8x8 digits."""

    d_latent: int = 32  # D_z, the latent variable z ~ Norm[0, I]
    d_style: int = 32  # D_w, the style variable w (the mapping network's width)
    mapping_depth: int = 4  # layers of the mapping network (StyleGAN: 8)
    image_size: int = 8  # S, the output's side: a power of 2, at least 4 (4 → 8 → ... → S)
    channels: tuple[int, ...] = (32, 16)  # channels at 4x4, 8x8, ..., S x S: log2(S) − 1 entries
    out_channels: int = 1  # the image's channels (1: grey digits)

    def __post_init__(self):
        owner = "StyleGANConfig"
        for name in ("d_latent", "d_style", "mapping_depth", "out_channels"):
            check_int(getattr(self, name), name, owner)
        size = check_int(self.image_size, "image_size", owner, minimum=4)
        if size & (size - 1):
            _refuse("image_size", owner, "a power of 2, at least 4", repr(size))
        if isinstance(self.channels, (str, bytes)) or not isinstance(self.channels, (list, tuple)):
            _refuse("channels", owner, "a tuple of positive ints", repr(self.channels), TypeError)
        object.__setattr__(self, "channels", tuple(check_int(c, "channels", owner) for c in self.channels))
        levels = int(math.log2(size)) - 1
        if len(self.channels) != levels:
            _refuse("channels", owner, f"one width per resolution 4 ... {size}: {levels} ints",
                    f"{len(self.channels)} ints")

    @classmethod
    def digits(cls, **changes) -> StyleGANConfig:
        """The 8x8 digits: z, w of 32; a mapping of 4 layers; 32 channels at 4x4, 16 at 8x8 (the defaults)."""
        return cls(**changes)

    @classmethod
    def tiny(cls, **changes) -> StyleGANConfig:
        """For tests: z, w of 4; a mapping of 2 layers; 6 channels at 4x4, 4 at 8x8."""
        return cls(**{**dict(d_latent=4, d_style=4, mapping_depth=2, channels=(6, 4)), **changes})

    @property
    def n_styles(self) -> int:
        """L, the number of layers that take a style: two per resolution."""
        return 2 * len(self.channels)

    def parameter_count(self) -> int:
        """Mapping + constant + style layers + the 1x1 output convolution, in closed form.

        Each style layer of C channels (C_in before it; no convolution for the first):
        9 C_in C convolution weights, C noise scales ψ, C biases and the affine map's
        (D_w + 1)·2C.
        """
        mapping = (self.d_latent + 1) * self.d_style + (self.mapping_depth - 1) * (self.d_style + 1) * self.d_style
        c0 = self.channels[0]
        layers, previous = 0, None
        for c in self.channels:
            for c_in in (previous, c):  # the first convolution changes the width, the second keeps it
                layers += (0 if c_in is None else 9 * c_in * c) + 2 * c + (self.d_style + 1) * 2 * c
            previous = c
        return mapping + c0 * 16 + layers + (self.channels[-1] + 1) * self.out_channels


# --------------------------------------------------------------------------- the generator
class StyleGenerator(nn.Module):
    """A style-based generator: mapping network, learned constant, AdaIN, noise with learned scales (fig. 15.19).

    Synthesis (the centre row of fig. 15.19): the learned constant ``(C_0, 4, 4)`` →
    [layer, layer] at 4x4 → ×2 bilinear upsampling → [layer, layer] at 8x8 → ... →
    1x1 convolution → sigmoid. Layer l takes the style w_l and a noise image at its
    resolution; ``resolutions[l]`` says which.

    Args:
        config: a :class:`StyleGANConfig`, or ``"digits"`` / ``"tiny"``. Default: ``"digits"``.
        generator: the initial weights: a ``torch.Generator`` or an int seed. Default:
            None, torch's global generator. (Mapping: He's rule; convolutions: torch's
            default; AdaIN's affine maps: N(0, 1/D_w); the constant: N(0, 1); noise scales
            and biases: zeros.)

    Shape:
        z: ``(B, D_z)``; w: ``(B, D_w)``, or one per layer ``(B, L, D_w)``; noise: a list of
        L tensors ``(B, 1, r_l, r_l)``; images ``(B, out_channels, S, S)`` in (0, 1).

    Example::

        >>> g = StyleGenerator("tiny", generator=0)
        >>> a, b = g.latent(2, generator=1), g.latent(2, generator=2)
        >>> g.mix(a, b, g.draw_noise(2, generator=3)).shape     # coarse styles from a, fine from b
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, config: StyleGANConfig | str = "digits", *, generator: torch.Generator | int | None = None):
        super().__init__()
        config = check_config(config, "config", "StyleGenerator", StyleGANConfig, ("digits", "tiny"),
                              lambda name: getattr(StyleGANConfig, name)())
        self.config = config
        generator = as_generator(generator, "StyleGenerator")
        c = config
        with initialised_from(self, generator):
            self.mapping = MappingNetwork(c.d_latent, c.d_style, c.mapping_depth)
            self.constant = nn.Parameter(torch.empty(1, c.channels[0], 4, 4))  # the gray box of fig. 15.19
            layers, previous = [], None
            for width in c.channels:
                layers.append(StyleLayer(previous, width, c.d_style))
                layers.append(StyleLayer(width, width, c.d_style))
                previous = width
            self.layers = nn.ModuleList(layers)
            self.to_image = nn.Conv2d(c.channels[-1], c.out_channels, 1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        # N(0, 1), as StyleGAN 2 (StyleGAN 1 used ones): a constant with no spatial pattern would be
        # normalised to zero by the first AdaIN, leaving the noise, scaled up, as the only pattern at 4x4
        nn.init.normal_(self.constant, generator=generator)

    @classmethod
    def tiny(cls, config: StyleGANConfig | str = "tiny", *,
             generator: torch.Generator | int | None = None) -> StyleGenerator:
        """A test-sized generator (``StyleGANConfig.tiny()``)."""
        return cls(config, generator=generator)

    @property
    def n_styles(self) -> int:
        """L, the layers that take a style (and a noise image)."""
        return len(self.layers)

    @property
    def resolutions(self) -> tuple[int, ...]:
        """The side of each layer's feature maps: (4, 4, 8, 8, ...)."""
        return tuple(4 * 2 ** (i // 2) for i in range(len(self.layers)))

    def _dtype(self) -> torch.dtype:
        return self.constant.dtype

    # ---- the random inputs
    def latent(self, n: int, *, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """z ~ Norm[0, I], ``(n, D_z)``, on the model's device."""
        n = check_int(n, "n", "StyleGenerator.latent")
        generator = as_generator(generator, "StyleGenerator.latent")
        device = generator.device if generator is not None else "cpu"
        z = torch.randn(n, self.config.d_latent, generator=generator, dtype=self._dtype(), device=device)
        return z.to(self.constant.device)

    def draw_noise(self, n: int, *, generator: torch.Generator | int | None = None) -> list[torch.Tensor]:
        """One noise image per layer, ``(n, 1, r_l, r_l)`` each, drawn from Norm[0, 1]."""
        n = check_int(n, "n", "StyleGenerator.draw_noise")
        generator = as_generator(generator, "StyleGenerator.draw_noise")
        device = generator.device if generator is not None else "cpu"
        return [torch.randn(n, 1, r, r, generator=generator, dtype=self._dtype(), device=device)
                .to(self.constant.device) for r in self.resolutions]

    def _check_noise(self, noise, batch: int, owner: str) -> list[torch.Tensor]:
        if not isinstance(noise, (list, tuple)) or len(noise) != self.n_styles:
            _refuse("noise", owner, f"a list of {self.n_styles} tensors (one per layer) or None",
                    f"{type(noise).__name__}" + (f" of {len(noise)}" if isinstance(noise, (list, tuple)) else ""),
                    TypeError if not isinstance(noise, (list, tuple)) else ValueError)
        for n, r in zip(noise, self.resolutions):
            if not isinstance(n, torch.Tensor) or n.shape != (batch, 1, r, r):
                check_tensor(n, "noise", owner, shape=(batch, 1, r, r))
        return list(noise)

    # ---- the two networks
    def synthesis(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None, *,
                  generator: torch.Generator | int | None = None) -> torch.Tensor:
        """The synthesis network: images from styles (one w for every layer, or one per layer) and noise.

        Args:
            ws: ``(B, D_w)`` (the same style for every layer) or ``(B, L, D_w)``.
            noise: L noise images (:meth:`draw_noise`); None draws them from ``generator``.
            generator: the noise when ``noise`` is None. Default: torch's global generator.

        Returns:
            ``(B, out_channels, S, S)`` in (0, 1).
        """
        owner = "StyleGenerator.synthesis"
        d, n_styles = self.config.d_style, self.n_styles
        if not isinstance(ws, torch.Tensor) or ws.dtype != self._dtype() or not (
                (ws.dim() == 2 and ws.shape[1] == d) or (ws.dim() == 3 and ws.shape[1:] == (n_styles, d))):
            check_input(ws, "ws", owner, shape=(...,), dtype=self._dtype())  # a tensor of the weights' dtype
            _refuse("ws", owner, f"a tensor of shape (B, {d}) or (B, {n_styles}, {d})", f"shape {tuple(ws.shape)}")
        if ws.dim() == 2:
            ws = ws[:, None, :].expand(-1, n_styles, -1)  # (B, L, D_w)
        batch = ws.shape[0]
        noise = self.draw_noise(batch, generator=generator) if noise is None else self._check_noise(noise, batch, owner)
        h = self.constant.expand(batch, -1, -1, -1)  # (B, C_0, 4, 4)
        for i, layer in enumerate(self.layers):
            if i > 0 and i % 2 == 0:  # a new resolution
                h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)  # (B, C, 2H, 2W)
            h = layer(h, noise[i], ws[:, i])
        return torch.sigmoid(self.to_image(h))  # (B, out_channels, S, S)

    def forward(self, z: torch.Tensor, noise: list[torch.Tensor] | None = None, *,
                generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Images from latents: ``synthesis(mapping(z), noise)``. ``(B, D_z) -> (B, out_channels, S, S)``."""
        return self.synthesis(self.mapping(z), noise, generator=generator)

    def mixed_styles(self, w_coarse: torch.Tensor, w_fine: torch.Tensor, crossover: int | None = None) -> torch.Tensor:
        """Per-layer styles ``(B, L, D_w)``: layers below ``crossover`` take ``w_coarse``, the rest ``w_fine``.

        ``crossover`` defaults to 2: the 4x4 layers are coarse, every finer layer fine.
        """
        owner = "StyleGenerator.mixed_styles"
        crossover = 2 if crossover is None else check_int(crossover, "crossover", owner, minimum=0,
                                                            maximum=self.n_styles)
        for name, w in (("w_coarse", w_coarse), ("w_fine", w_fine)):
            check_tensor(w, name, owner, shape=(w_coarse.shape[0] if name == "w_fine" else "B", self.config.d_style))
        coarse = torch.arange(self.n_styles, device=w_coarse.device) < crossover  # (L,)
        return torch.where(coarse[None, :, None], w_coarse[:, None, :], w_fine[:, None, :])  # (B, L, D_w)

    def mix(self, z_coarse: torch.Tensor, z_fine: torch.Tensor, noise: list[torch.Tensor] | None = None,
            crossover: int | None = None, *, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Style mixing: coarse layers styled by ``mapping(z_coarse)``, fine layers by ``mapping(z_fine)``."""
        ws = self.mixed_styles(self.mapping(z_coarse), self.mapping(z_fine), crossover)
        return self.synthesis(ws, noise, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """n new images: z and the noise drawn from ``generator``. ``(n, out_channels, S, S)``."""
        n = check_int(n, "n", "StyleGenerator.sample")
        generator = as_generator(generator, "StyleGenerator.sample")
        z = self.latent(n, generator=generator)
        return self(z, self.draw_noise(n, generator=generator))
