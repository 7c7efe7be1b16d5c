"""DenseNet: every layer sees the concatenation of all earlier ones (UDL §11.5.2, fig. 11.9).

Where a residual block adds its output to its input, a dense block concatenates
it: layer ℓ maps the stack of everything before it to k new channels (k is the
*growth rate*), and the stack grows by k::

    h_ℓ = concat[h_{ℓ-1}, f_ℓ[h_{ℓ-1}]]        channels: C_0, C_0 + k, C_0 + 2k, ...

so a three-channel image with k = 32 becomes 3 → 35 → 67 → 99 → ... channels, and
every earlier feature map (the image included) is passed on unchanged. Each f_ℓ is
BN → ReLU → 3×3 convolution (pre-activation, as in ResNet). Between dense blocks a
*transition layer* (BN → ReLU → 1×1 convolution → 2×2 average pooling) shrinks the
stack and halves the resolution, so that the stacks stay small.

Huang et al. (2017) name the variants by two options, both fields of
:class:`DenseNetConfig`:

- **B** (``bottleneck=4``): f_ℓ first maps the wide stack to 4k channels by
  BN → ReLU → 1×1 convolution, then BN → ReLU → 3×3 convolution to k, so that the
  3×3 convolution's cost no longer grows with the stack;
- **C** (``compression=θ < 1``): a transition keeps ⌊θ·C⌋ of the C channels
  (θ = 0.5 in the paper).

DenseNet-BC has both. The ImageNet networks (``stem="imagenet"``: 7×7 stride-2
convolution to 2k channels → BN → ReLU → 3×3 stride-2 max pooling, a quarter of the
resolution) are DenseNet-BC with k = 32 (48 for DenseNet-161): ``DenseNet("densenet121")`` has
blocks of 6, 12, 24 and 16 layers, 121 weight layers (the stem, two per dense layer, the three
transitions, the fully connected layer) and 7,978,856 parameters, as torchvision's
and timm's ``densenet121``. Count them without allocating anything:
:attr:`DenseNetConfig.parameter_count` (closed form) or a build under
``with torch.device("meta"):``.

:class:`DenseNet` puts these together: a stem, dense blocks joined by transitions,
then BN → ReLU → global average pooling → fully connected. The default is a small
CIFAR-style DenseNet-C (3×3 stem convolution, no bottlenecks, θ = 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from udl.nn.conv import conv_layer
from udl.nn.init import he_init, initialised_from, reset_norms
from udl.nn.normalization import batch_norm_layer
from udl.validate import as_generator, check_choice, check_config, check_float, check_int, is_int

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNetConfig", "DenseNet"]

STEMS = ("cifar", "imagenet")
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def _norm_relu_conv(dims: int, c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    """BN → ReLU → k×k convolution (no bias: a batch norm follows): the pre-activation unit."""
    return [batch_norm_layer(dims, c_in), nn.ReLU(), conv_layer(dims, c_in, c_out, kernel)]


class _NormReluConv(nn.Module):
    """``f = BN → ReLU → k×k convolution`` (then 2×2 average pooling with ``pool``), He-initialised.

    What a dense layer's branch and a transition layer share (pre-activation order, as
    in ResNet); ``forward`` is ``f`` itself, which a dense layer extends. With
    ``bottleneck`` = b > 0 channels, ``f = BN → ReLU → 1×1 conv (to b) → BN → ReLU →
    k×k conv`` (DenseNet-B).
    """

    def __init__(self, owner: str, in_channels: int, out_channels: int, kernel: int, dims: int,
                 generator: torch.Generator | int | None, *, pool: bool = False, bottleneck: int = 0):
        super().__init__()
        self.in_channels = c = check_int(in_channels, "in_channels", owner)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        generator = as_generator(generator, owner)
        pooling = [_AVG_POOL[dims](2)] if pool else []  # halves the resolution
        with initialised_from(self, generator, own_rule_only=True):  # He only: no draws of torch's defaults
            if bottleneck:  # the k×k convolution reads b channels, however wide the stack
                units = _norm_relu_conv(dims, c, bottleneck, 1) + _norm_relu_conv(dims, bottleneck, out_channels,
                                                                                  kernel)
            else:
                units = _norm_relu_conv(dims, c, out_channels, kernel)
            self.f = nn.Sequential(*units, *pooling)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (§7.5) of the convolutions; batch norm γ = 1, δ = 0: every parameter."""
        reset_norms(self)
        he_init(self, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.f(h)


class DenseLayer(_NormReluConv):
    """One layer of a dense block: ``concat[h, f(h)]`` with ``f = conv(ReLU(BN(h)))`` (fig. 11.9).

    With a bottleneck (DenseNet-B), ``f`` first narrows the stack to b·k channels:
    ``f = conv3×3(ReLU(BN(conv1×1(ReLU(BN(h))))))``.

    Args:
        in_channels: C, the channels of the stack it reads.
        growth_rate: k, the new channels it adds. Default 32 (fig. 11.9).
        bottleneck: b, the width of the 1×1 bottleneck convolution in multiples of k
            (DenseNet-B: 4, so 4k channels); 0 (the default): no bottleneck.
        dims: 1, 2 or 3. Default 2.
        generator: the random numbers of the He initialisation: a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C, *spatial)`` -> ``(N, C + k, *spatial)``; the first C channels of the
        output are the input, unchanged.

    Parameters:
        2C + 9Ck without a bottleneck; 2C + C·bk + 2bk + 9·bk·k with one (BN's γ and δ,
        convolutions without biases; in 2-D).

    Example::

        >>> DenseLayer(3, 32)(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 35, 8, 8])
        >>> DenseLayer(64, 32, bottleneck=4).f[2].out_channels  # the 1×1 convolution: 4k channels
        128
    """

    def __init__(self, in_channels: int, growth_rate: int = 32, *, bottleneck: int = 0, dims: int = 2,
                 generator: torch.Generator | int | None = None):
        k = check_int(growth_rate, "growth_rate", "DenseLayer")
        b = check_int(bottleneck, "bottleneck", "DenseLayer", minimum=0)
        super().__init__("DenseLayer", in_channels, k, 3, dims, generator, bottleneck=b * k)
        self.growth_rate, self.bottleneck = k, b

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, self.f(h)], dim=1)  # (N, C + k, *spatial)


class DenseBlock(nn.Module):
    """``n_layers`` dense layers: the stack grows C_0 → C_0 + k → C_0 + 2k → ... (fig. 11.9).

    Args:
        in_channels: C_0, the input's channels (3 for an RGB image).
        n_layers: L, the number of dense layers.
        growth_rate: k, the channels each layer adds. Default 32.
        bottleneck: b: every layer narrows its input to b·k channels by a 1×1 convolution
            first (DenseNet-B: 4); 0 (the default): no bottleneck.
        dims: 1, 2 or 3. Default 2.
        generator: the random numbers of the He initialisation: a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Attributes:
        out_channels: C_0 + L·k.

    Shape:
        ``(N, C_0, *spatial)`` -> ``(N, C_0 + L·k, *spatial)``.

    Example::

        >>> block = DenseBlock(3, 4, 32)
        >>> [h.shape[1] for h in block.stacks(torch.zeros(1, 3, 8, 8))]
        [3, 35, 67, 99, 131]
    """

    def __init__(self, in_channels: int, n_layers: int, growth_rate: int = 32, *, bottleneck: int = 0,
                 dims: int = 2, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "DenseBlock"
        c0 = check_int(in_channels, "in_channels", owner)
        n_layers = check_int(n_layers, "n_layers", owner)
        k = check_int(growth_rate, "growth_rate", owner)
        b = check_int(bottleneck, "bottleneck", owner, minimum=0)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        generator = as_generator(generator, owner)
        self.in_channels, self.growth_rate, self.bottleneck = c0, k, b
        self.out_channels = c0 + n_layers * k
        self.layers = nn.ModuleList(DenseLayer(c0 + i * k, k, bottleneck=b, dims=dims, generator=generator)
                                    for i in range(n_layers))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = layer(h)  # (N, C_0 + (ℓ+1)·k, *spatial)
        return h

    def stacks(self, h: torch.Tensor) -> list[torch.Tensor]:
        """The input and the stack after every layer: ``[h_0, h_1, ..., h_L]``."""
        out = [h]
        for layer in self.layers:
            out.append(layer(out[-1]))
        return out


class Transition(_NormReluConv):
    """A transition layer between dense blocks: BN → ReLU → 1×1 conv → 2×2 average pooling.

    Args:
        in_channels: the stack's channels.
        out_channels: the channels kept (DenseNet uses ⌊compression · in_channels⌋).
        dims: 1, 2 or 3. Default 2.
        generator: the random numbers of the He initialisation: a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C_in, *spatial)`` -> ``(N, C_out, *⌊spatial / 2⌋)``.

    Example::

        >>> Transition(131, 65)(torch.zeros(1, 131, 8, 8)).shape
        torch.Size([1, 65, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, *, dims: int = 2,
                 generator: torch.Generator | int | None = None):
        c_out = check_int(out_channels, "out_channels", "Transition")
        super().__init__("Transition", in_channels, c_out, 1, dims, generator, pool=True)
        self.out_channels = c_out


@dataclass(frozen=True)
class DenseNetConfig:
    """The sizes of a DenseNet, and which of Huang et al.'s variants it is (B, C, BC).

    Presets (``DenseNetConfig.preset(name)``):

    - ``"small"`` (the default: three blocks of six layers, k = 12, 3×3 stem,
      θ = 0.5, no bottlenecks: a DenseNet-C of 161,002 parameters) and ``"tiny"``
      (for tests);
    - CIFAR-10 networks of Huang et al.'s table 2: ``"densenet40"`` (L = 40, k = 12,
      no bottleneck or compression: 1.0 million parameters) and ``"densenet_bc100"``
      (L = 100, k = 12, DenseNet-BC: 0.8 million);
    - the ImageNet DenseNet-BC networks (7×7 stem, b = 4, θ = 0.5, 1,000 classes):
      ``"densenet121"`` (k = 32, blocks 6, 12, 24, 16: 7,978,856 parameters),
      ``"densenet169"`` (6, 12, 32, 32: 14,149,480), ``"densenet201"`` (6, 12, 48, 32:
      20,013,928) and ``"densenet161"`` (k = 48, stem 96, 6, 12, 36, 24: 28,681,000),
      the counts of torchvision's models of the same names.
    """

    in_channels: int = 3  # image channels
    n_classes: int = 10  # outputs of the fully connected layer
    growth_rate: int = 12  # k: channels added by every dense layer
    block_layers: tuple[int, ...] = (6, 6, 6)  # dense layers per block
    stem_channels: int = 24  # channels of the stem convolution (2k in Huang et al.'s BC networks)
    compression: float = 0.5  # θ: a transition keeps ⌊θ · C⌋ channels (1: no compression; < 1: "-C")
    bottleneck: int = 0  # b: each layer's 1×1 convolution to b·k channels before its 3×3 ("-B": 4); 0: none
    stem: str = "cifar"  # "cifar": a 3×3 convolution; "imagenet": 7×7/2 conv → BN → ReLU → 3×3/2 max pool

    def __post_init__(self):
        owner = "DenseNetConfig"
        check_int(self.in_channels, "in_channels", owner)
        check_int(self.n_classes, "n_classes", owner)
        check_int(self.growth_rate, "growth_rate", owner)
        check_int(self.stem_channels, "stem_channels", owner)
        value = self.block_layers
        if not isinstance(value, (tuple, list)) or not value or \
                any(not is_int(v) or v < 1 for v in value):
            raise ValueError(f"The 'block_layers' parameter of {owner} must be a non-empty tuple of positive ints. "
                             f"Got {value!r} instead.")
        object.__setattr__(self, "block_layers", tuple(int(v) for v in value))
        check_float(self.compression, "compression", owner, low=0.0, high=1.0, low_open=True)
        check_int(self.bottleneck, "bottleneck", owner, minimum=0)
        check_choice(self.stem, "stem", owner, STEMS)

    @classmethod
    def preset(cls, name: str) -> DenseNetConfig:
        """A named configuration (see the class docstring)."""
        if name not in PRESETS:
            raise ValueError(f"The 'name' parameter of DenseNetConfig.preset must be one of "
                             f"{', '.join(map(repr, PRESETS))}. Got {name!r} instead.")
        return cls(**PRESETS[name])

    @classmethod
    def tiny(cls, **changes) -> DenseNetConfig:
        """The ``"tiny"`` preset (two blocks of two layers, k = 4: for tests), with ``changes``."""
        return cls(**{**PRESETS["tiny"], **changes})

    @property
    def variant(self) -> str:
        """Huang et al.'s name for it: ``"DenseNet"``, ``"DenseNet-B"``, ``"DenseNet-C"`` or ``"DenseNet-BC"``."""
        suffix = ("B" if self.bottleneck else "") + ("C" if self.compression < 1 else "")
        return "DenseNet" + (f"-{suffix}" if suffix else "")

    def kept(self, channels: int) -> int:
        """The channels a transition keeps of ``channels``: ⌊θ·C⌋, at least 1."""
        return max(1, math.floor(self.compression * channels + 1e-9))  # 1e-9: 0.29·100 is 28.999... in floats

    @property
    def channels(self) -> list[int]:
        """The channels after the stem, each dense block and each transition, in order."""
        c, out = self.stem_channels, [self.stem_channels]
        for i, n in enumerate(self.block_layers):
            c += n * self.growth_rate
            out.append(c)
            if i < len(self.block_layers) - 1:
                c = self.kept(c)
                out.append(c)
        return out

    @property
    def layer_count(self) -> int:
        """Weight layers, counted as Huang et al. name the networks: the stem convolution, one (two
        with a bottleneck) per dense layer, one per transition, the fully connected layer (121 for
        DenseNet-121)."""
        per_layer = 2 if self.bottleneck else 1
        return 1 + per_layer * sum(self.block_layers) + len(self.block_layers) - 1 + 1

    @property
    def parameter_count(self) -> int:
        """The number of parameters, in closed form (convolutions without biases, BN's γ and δ,
        the fully connected layer's weights and biases)."""
        k, s, b = self.growth_rate, self.stem_channels, self.bottleneck * self.growth_rate
        if self.stem == "imagenet":
            total = 49 * self.in_channels * s + 2 * s  # 7×7 convolution, BN
        else:
            total = 9 * self.in_channels * s  # 3×3 convolution
        c = s
        for i, n in enumerate(self.block_layers):
            for _ in range(n):  # a dense layer reading c channels
                if b:
                    total += 2 * c + c * b + 2 * b + 9 * b * k  # BN(c) 1×1(c→b) BN(b) 3×3(b→k)
                else:
                    total += 2 * c + 9 * c * k  # BN(c) 3×3(c→k)
                c += k
            if i < len(self.block_layers) - 1:
                total += 2 * c + c * self.kept(c)  # transition: BN(c) 1×1(c→⌊θc⌋)
                c = self.kept(c)
        return total + 2 * c + c * self.n_classes + self.n_classes  # final BN, fully connected


_IMAGENET = dict(n_classes=1000, growth_rate=32, stem_channels=64, compression=0.5, bottleneck=4, stem="imagenet")
PRESETS = {"small": dict(),
           "tiny": dict(growth_rate=4, block_layers=(2, 2), stem_channels=8),
           "densenet40": dict(growth_rate=12, block_layers=(12, 12, 12), stem_channels=16, compression=1.0),
           "densenet_bc100": dict(growth_rate=12, block_layers=(16, 16, 16), stem_channels=24, bottleneck=4),
           "densenet121": dict(_IMAGENET, block_layers=(6, 12, 24, 16)),
           "densenet169": dict(_IMAGENET, block_layers=(6, 12, 32, 32)),
           "densenet201": dict(_IMAGENET, block_layers=(6, 12, 48, 32)),
           "densenet161": dict(_IMAGENET, growth_rate=48, stem_channels=96, block_layers=(6, 12, 36, 24))}


class DenseNet(nn.Module):
    """A DenseNet classifier: stem → (dense block → transition)… → dense block → BN → ReLU → pool → fc.

    Args:
        config: a :class:`DenseNetConfig` or a preset name (``"densenet121"``, ...).
            Default: ``"small"``.
        generator: the random numbers of the initial weights (He initialisation for the
            convolutions, torch's default for the fully connected layer): a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Attributes:
        stem: the 3×3 convolution (``stem="cifar"``), or 7×7 stride-2 convolution → BN →
            ReLU → 3×3 stride-2 max pooling (``"imagenet"``).
        features: the dense blocks and transitions, in order.
        head: BN → ReLU → global average pooling → flatten → fully connected.

    Shape:
        ``(N, C_in, H, W)`` -> ``(N, n_classes)``; the ImageNet stem divides H and W by 4,
        each transition halves them (DenseNet-121 at 224×224: 56, 28, 14, 7).

    Example::

        >>> DenseNet("tiny", generator=0)(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 10])
        >>> with torch.device("meta"):
        ...     net = DenseNet("densenet121")
        >>> sum(p.numel() for p in net.parameters()), net.layer_count
        (7978856, 121)
    """

    def __init__(self, config: DenseNetConfig | str = "small", *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "DenseNet"
        config = check_config(config, "config", owner, DenseNetConfig, PRESETS, DenseNetConfig.preset)
        generator = as_generator(generator, owner)
        self.config = cfg = config
        with initialised_from(self, generator):
            if cfg.stem == "imagenet":
                self.stem = nn.Sequential(conv_layer(2, cfg.in_channels, cfg.stem_channels, 7, stride=2),
                                          batch_norm_layer(2, cfg.stem_channels), nn.ReLU(),
                                          nn.MaxPool2d(3, stride=2, padding=1))  # (N, 2k, H/4, W/4)
            else:
                self.stem = conv_layer(2, cfg.in_channels, cfg.stem_channels, 3)
            layers, c = [], cfg.stem_channels
            for i, n in enumerate(cfg.block_layers):
                block = DenseBlock(c, n, cfg.growth_rate, bottleneck=cfg.bottleneck)
                layers.append(block)
                c = block.out_channels  # c + n·k
                if i < len(cfg.block_layers) - 1:
                    layers.append(Transition(c, cfg.kept(c)))
                    c = layers[-1].out_channels  # ⌊θc⌋
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(batch_norm_layer(2, c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(c, cfg.n_classes))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation of the stem (the dense layers and transitions do their own)."""
        he_init(self.stem, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"DenseNet expects images (N, {self.config.in_channels}, H, W). "
                             f"Got shape {tuple(x.shape)} instead.")
        return self.head(self.features(self.stem(x)))  # (N, n_classes)

    @property
    def layer_count(self) -> int:
        """Weight layers counted in the built network: its convolutions and linear layers."""
        return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in self.modules())
