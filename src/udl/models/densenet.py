"""DenseNet: every layer sees the concatenation of all earlier ones (UDL §11.5.2, fig. 11.9).

Where a residual block adds its output to its input, a dense block concatenates
it: layer ℓ maps the stack of everything before it to k new channels (k is the
*growth rate*), and the stack grows by k::

    h_ℓ = concat[h_{ℓ-1}, f_ℓ[h_{ℓ-1}]]        channels: C_0, C_0 + k, C_0 + 2k, ...

so a three-channel image with k = 32 becomes 3 → 35 → 67 → 99 → ... channels, and
every earlier feature map (the image included) is passed on unchanged. Each f_ℓ is
BN → ReLU → 3×3 convolution (pre-activation, as in ResNet). Between dense blocks a
*transition layer* (BN → ReLU → 1×1 convolution → 2×2 average pooling) shrinks the
stack (by ``compression``) and halves the resolution, so that the stacks stay small.

:class:`DenseNet` puts these together: a 3×3 stem convolution, dense blocks joined by
transitions, then BN → ReLU → global average pooling → fully connected (the
CIFAR-style DenseNet of Huang et al., 2017, without the 1×1 bottlenecks of DenseNet-BC).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from udl.nn.conv import conv_layer
from udl.nn.init import he_init, initialised_from, reset_norms
from udl.nn.normalization import batch_norm_layer
from udl.validate import as_generator, check_choice, check_config, check_float, check_int, is_int

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNetConfig", "DenseNet"]

_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


class _NormReluConv(nn.Module):
    """``f = BN → ReLU → k×k convolution`` (then 2×2 average pooling with ``pool``), He-initialised.

    What a dense layer's branch and a transition layer share (pre-activation order, as
    in ResNet); ``forward`` is ``f`` itself, which a dense layer extends.
    """

    def __init__(self, owner: str, in_channels: int, out_channels: int, kernel: int, dims: int,
                 generator: torch.Generator | int | None, *, pool: bool = False):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", owner)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        generator = as_generator(generator, owner)
        pooling = [_AVG_POOL[dims](2)] if pool else []  # halves the resolution
        with initialised_from(self, generator, own_rule_only=True):  # He only: no draws of torch's defaults
            self.f = nn.Sequential(batch_norm_layer(dims, self.in_channels), nn.ReLU(),
                                   conv_layer(dims, self.in_channels, out_channels, kernel), *pooling)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation (§7.5) of the convolution; batch norm γ = 1, δ = 0: every parameter."""
        reset_norms(self)
        he_init(self, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.f(h)


class DenseLayer(_NormReluConv):
    """One layer of a dense block: ``concat[h, conv(ReLU(BN(h)))]`` (fig. 11.9).

    Args:
        in_channels: C, the channels of the stack it reads.
        growth_rate: k, the new channels it adds. Default 32 (fig. 11.9).
        dims: 1, 2 or 3. Default 2.
        generator: the random numbers of the He initialisation: a ``torch.Generator`` or an
            int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C, *spatial)`` -> ``(N, C + k, *spatial)``; the first C channels of the
        output are the input, unchanged.

    Example::

        >>> DenseLayer(3, 32)(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 35, 8, 8])
    """

    def __init__(self, in_channels: int, growth_rate: int = 32, *, dims: int = 2,
                 generator: torch.Generator | int | None = None):
        k = check_int(growth_rate, "growth_rate", "DenseLayer")
        super().__init__("DenseLayer", in_channels, k, 3, dims, generator)
        self.growth_rate = k

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, self.f(h)], dim=1)  # (N, C + k, *spatial)


class DenseBlock(nn.Module):
    """``n_layers`` dense layers: the stack grows C_0 → C_0 + k → C_0 + 2k → ... (fig. 11.9).

    Args:
        in_channels: C_0, the input's channels (3 for an RGB image).
        n_layers: L, the number of dense layers.
        growth_rate: k, the channels each layer adds. Default 32.
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

    def __init__(self, in_channels: int, n_layers: int, growth_rate: int = 32, *, dims: int = 2,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "DenseBlock"
        c0 = check_int(in_channels, "in_channels", owner)
        n_layers = check_int(n_layers, "n_layers", owner)
        k = check_int(growth_rate, "growth_rate", owner)
        dims = check_choice(dims, "dims", owner, (1, 2, 3))
        generator = as_generator(generator, owner)
        self.in_channels, self.growth_rate = c0, k
        self.out_channels = c0 + n_layers * k
        self.layers = nn.ModuleList(DenseLayer(c0 + i * k, k, dims=dims, generator=generator)
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
    """The sizes of a (small, CIFAR-style) DenseNet.

    Presets (``DenseNetConfig.preset(name)``): ``"small"`` (three blocks of six
    layers, k = 12, 161,002 parameters) and ``"tiny"`` (for tests).
    """

    in_channels: int = 3  # image channels
    n_classes: int = 10  # outputs of the fully connected layer
    growth_rate: int = 12  # k: channels added by every dense layer
    block_layers: tuple[int, ...] = (6, 6, 6)  # dense layers per block
    stem_channels: int = 24  # channels of the first 3×3 convolution (2k in Huang et al.)
    compression: float = 0.5  # a transition keeps ⌊compression · C⌋ channels

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

    @classmethod
    def preset(cls, name: str) -> DenseNetConfig:
        """A named configuration: ``"small"`` or ``"tiny"``."""
        if name not in PRESETS:
            raise ValueError(f"The 'name' parameter of DenseNetConfig.preset must be one of "
                             f"{', '.join(map(repr, PRESETS))}. Got {name!r} instead.")
        return cls(**PRESETS[name])

    @classmethod
    def tiny(cls, **changes) -> DenseNetConfig:
        """The ``"tiny"`` preset (two blocks of two layers, k = 4: for tests), with ``changes``."""
        return cls(**{**PRESETS["tiny"], **changes})

    @property
    def channels(self) -> list[int]:
        """The channels after the stem, each dense block and each transition, in order."""
        c, out = self.stem_channels, [self.stem_channels]
        for i, n in enumerate(self.block_layers):
            c += n * self.growth_rate
            out.append(c)
            if i < len(self.block_layers) - 1:
                c = max(1, int(self.compression * c))
                out.append(c)
        return out


PRESETS = {"small": dict(),
           "tiny": dict(growth_rate=4, block_layers=(2, 2), stem_channels=8)}


class DenseNet(nn.Module):
    """A DenseNet classifier: stem → (dense block → transition)… → dense block → BN → ReLU → pool → fc.

    Args:
        config: a :class:`DenseNetConfig` or a preset name. Default: ``"small"``.
        generator: the random numbers of the initial weights (He initialisation for the
            convolutions, torch's default for the fully connected layer): a
            ``torch.Generator`` or an int seed. Default: None, torch's global generator.

    Shape:
        ``(N, C_in, H, W)`` -> ``(N, n_classes)``; each transition halves H and W.

    Example::

        >>> DenseNet("tiny", generator=0)(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 10])
    """

    def __init__(self, config: DenseNetConfig | str = "small", *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "DenseNet"
        config = check_config(config, "config", owner, DenseNetConfig, PRESETS, DenseNetConfig.preset)
        generator = as_generator(generator, owner)
        self.config = cfg = config
        with initialised_from(self, generator):
            self.stem = conv_layer(2, cfg.in_channels, cfg.stem_channels, 3)
            layers, c = [], cfg.stem_channels
            for i, n in enumerate(cfg.block_layers):
                block = DenseBlock(c, n, cfg.growth_rate)
                layers.append(block)
                c = block.out_channels
                if i < len(cfg.block_layers) - 1:
                    layers.append(Transition(c, max(1, int(cfg.compression * c))))
                    c = layers[-1].out_channels
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
