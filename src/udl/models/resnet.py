"""ResNet: a deep convolutional classifier built from residual blocks (UDL §11.5.1, fig. 11.8).

The network reads top to bottom as the book draws ResNet-200::

    image (3, 224, 224)
    → 7×7 conv, stride 2 → 3×3 max pool, stride 2                 (3, 224²) → (64, 56²)
    → stage 1: n_1 blocks of width B_1                            (4·B_1, 56²)
    → stage 2: n_2 blocks of width B_2, the first with stride 2   (4·B_2, 28²)
    → ...                                                         ... halving the size per stage
    → BN → ReLU → average over all positions → fully connected    (n_classes,)

Blocks are the pre-activation bottleneck (or standard) blocks of
:mod:`udl.nn.residual` (fig. 11.7), as in He et al.'s reference code (2016b) and
timm's ``resnetv2``: each block starts with BN → ReLU, so the stem has none of its
own, and the last stage is followed by one more BN → ReLU before pooling. The first
block of every stage after the first halves the resolution with a stride-2 3×3
convolution, and the first block of every stage changes the number of channels, so
its skip path is a 1×1 projection; the projection reads the block's input after the
block's first BN → ReLU.

``ResNetConfig(preact=False)`` is the original post-activation ResNet (He et al.,
2015, as torchvision's ``resnet50``, the stride on the 3×3 convolution): the stem is
7×7 conv → BN → ReLU → max pool, every convolution is followed by BN (and ReLU, the
block's last one after the skip path is added), projections are 1×1 conv → BN, and the
head is pooling → fully connected. Its weights map one to one onto ``transformers``'
``ResNetModel`` (:mod:`udl.interop.resnet`).

``ResNetConfig.preset("resnet200")`` is the book's ResNet-200: stages of
[3, 24, 36, 3] bottleneck blocks with 64, 128, 256, 512 bottleneck channels (×4
out), 1 + 3·66 + 1 = 200 weight layers, 64,666,152 ≈ 64.7 million parameters
(ResNet-50: 25,549,352, as timm's ``resnetv2_50``; post-activation 25,557,032, as
torchvision's). Its parameters can be counted without allocating them: build it on the
meta device (``with torch.device("meta"): resnet200()``) or use the closed form
:attr:`ResNetConfig.parameter_count`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from udl.nn.conv import conv_layer
from udl.nn.init import he_init, initialised_from
from udl.nn.normalization import batch_norm_layer
from udl.nn.residual import BottleneckBlock, ResidualBlock
from udl.validate import as_generator, check_bool, check_choice, check_config, check_int, is_int

__all__ = ["ResNetConfig", "ResNet", "resnet200", "resnet50"]

BLOCKS = ("bottleneck", "standard")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ResNetConfig:
    """The sizes of a ResNet.

    Presets (``ResNetConfig.preset(name)``): ``"resnet18"``, ``"resnet34"`` (standard
    blocks), ``"resnet50"``, ``"resnet101"``, ``"resnet152"``, ``"resnet200"``
    (bottleneck blocks, He et al. 2016), and ``"tiny"`` (one bottleneck block per
    stage, a few thousand parameters: for tests). Each is pre-activation; add
    ``preact=False`` for the original network: ``ResNetConfig.preset("resnet50", preact=False)``.
    """

    block: str = "bottleneck"  # "bottleneck" (fig. 11.7b) or "standard" (fig. 11.7a)
    stages: tuple[int, ...] = (3, 24, 36, 3)  # blocks per stage
    widths: tuple[int, ...] = (64, 128, 256, 512)  # per stage: B, the bottleneck channels (standard: the channels)
    expansion: int = 4  # bottleneck blocks output expansion · B channels
    stem_channels: int = 64  # channels of the 7×7 stem convolution
    in_channels: int = 3  # image channels
    n_classes: int = 1000  # outputs of the fully connected layer (ImageNet's 1,000 classes)
    preact: bool = True  # pre-activation blocks (He et al. 2016b) or the original post-activation ones (2015)

    def __post_init__(self):
        owner = "ResNetConfig"
        check_choice(self.block, "block", owner, BLOCKS)
        for name in ("stages", "widths"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not value or \
                    any(not is_int(v) or v < 1 for v in value):
                raise ValueError(f"The {name!r} parameter of {owner} must be a non-empty tuple of positive ints. "
                                 f"Got {value!r} instead.")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        if len(self.widths) != len(self.stages):
            raise ValueError(f"The 'widths' parameter of {owner} must have one entry per stage "
                             f"({len(self.stages)}). Got {self.widths!r} instead.")
        check_int(self.expansion, "expansion", owner)
        check_int(self.stem_channels, "stem_channels", owner)
        check_int(self.in_channels, "in_channels", owner)
        check_int(self.n_classes, "n_classes", owner)
        check_bool(self.preact, "preact", owner)

    @classmethod
    def preset(cls, name: str, **changes) -> ResNetConfig:
        """A named configuration (see the class docstring), with ``changes`` (e.g. ``preact=False``)."""
        if name not in PRESETS:
            raise ValueError(f"The 'name' parameter of ResNetConfig.preset must be one of "
                             f"{', '.join(map(repr, PRESETS))}. Got {name!r} instead.")
        return cls(**{**PRESETS[name], **changes})

    @classmethod
    def tiny(cls, **changes) -> ResNetConfig:
        """The ``"tiny"`` preset (one bottleneck block per stage, 10 classes: for tests), with ``changes``."""
        return cls(**{**PRESETS["tiny"], **changes})

    @property
    def layers_per_block(self) -> int:
        """Weight layers in one block's branch: 3 (bottleneck) or 2 (standard)."""
        return 3 if self.block == "bottleneck" else 2

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """The channels each stage outputs: expansion · B (bottleneck) or the width (standard)."""
        factor = self.expansion if self.block == "bottleneck" else 1
        return tuple(factor * w for w in self.widths)

    @property
    def layer_count(self) -> int:
        """Weight layers, counted as the book does: the stem, every block's convolutions, the fully
        connected layer (not the 1×1 projections of the skip paths): 1 + 3·Σn_s + 1."""
        return 1 + self.layers_per_block * sum(self.stages) + 1

    @property
    def parameter_count(self) -> int:
        """The number of parameters, in closed form (weights, BN's γ and δ, the fc's biases)."""
        post = not self.preact  # post-activation: BN after each convolution, none before the head
        total = self.stem_channels * self.in_channels * 49 + (2 * self.stem_channels if post else 0)  # 7×7 conv, BN
        c = self.stem_channels
        for s, (n, w, c_out) in enumerate(zip(self.stages, self.widths, self.stage_channels)):
            for j in range(n):
                projection = (s > 0 and j == 0) or c != c_out
                if self.block == "bottleneck":
                    # 1×1 (c→B), 3×3 (B→B), 1×1 (B→c_out); BN before each (pre) or after each (post)
                    total += c * w + 9 * w * w + w * c_out + 2 * (w + w + (c_out if post else c))
                else:
                    # 3×3 (c→c_out), 3×3 (c_out→c_out); BN before each (pre) or after each (post)
                    total += 9 * c * c_out + 9 * c_out * c_out + 2 * (c_out + (c_out if post else c))
                total += (c * c_out + (2 * c_out if post else 0)) if projection else 0  # 1×1 (c→c_out) [→ BN]
                c = c_out
        return total + (0 if post else 2 * c) + c * self.n_classes + self.n_classes  # [final BN], fully connected


PRESETS = {
    "resnet18": dict(block="standard", stages=(2, 2, 2, 2), widths=(64, 128, 256, 512)),
    "resnet34": dict(block="standard", stages=(3, 4, 6, 3), widths=(64, 128, 256, 512)),
    "resnet50": dict(stages=(3, 4, 6, 3)),
    "resnet101": dict(stages=(3, 4, 23, 3)),
    "resnet152": dict(stages=(3, 8, 36, 3)),
    "resnet200": dict(stages=(3, 24, 36, 3)),  # the book's fig. 11.8
    "tiny": dict(stages=(1, 1, 1, 1), widths=(4, 8, 16, 32), stem_channels=8, n_classes=10),
}


# --------------------------------------------------------------------------- the network
class ResNet(nn.Module):
    """A pre-activation ResNet classifier (fig. 11.8), or the original post-activation one.

    Args:
        config: a :class:`ResNetConfig` or a preset name. Default: ``"resnet200"``.
        generator: the random numbers of the initial weights (He initialisation for the
            convolutions, N(0, 1/C) for the fully connected layer): a ``torch.Generator``
            or an int seed. Default: None, torch's global generator.

    Attributes:
        stem: 7×7 stride-2 convolution → 3×3 stride-2 max pooling (post-activation: convolution
            → BN → ReLU → max pooling).
        stages: one ``nn.Sequential`` of blocks per stage.
        head: BN → ReLU → global average pooling → flatten → fully connected (post-activation:
            no BN → ReLU, the blocks end with a ReLU).

    Shape:
        ``(N, C_in, H, W)`` -> ``(N, n_classes)``: the logits (pre-softmax). Each stage
        s ≥ 1 halves the size, so stage s's maps are ``H / 2^(s+2)`` (56, 28, 14, 7 for
        H = 224), any H ≥ 32 works.

    Example::

        >>> net = ResNet("tiny", generator=0)
        >>> net(torch.zeros(2, 3, 64, 64)).shape, net.layer_count
        (torch.Size([2, 10]), 14)
        >>> with torch.device("meta"):
        ...     big = resnet200()
        >>> sum(p.numel() for p in big.parameters()), big.layer_count
        (64666152, 200)
    """

    def __init__(self, config: ResNetConfig | str = "resnet200", *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "ResNet"
        config = check_config(config, "config", owner, ResNetConfig, PRESETS, ResNetConfig.preset)
        generator = as_generator(generator, owner)
        self.config = cfg = config
        with initialised_from(self, generator):
            conv = conv_layer(2, cfg.in_channels, cfg.stem_channels, 7, stride=2)
            # pre-activation: the first block's own BN → ReLU follows (He et al. 2016b), so the stem has none
            norm = [] if cfg.preact else [batch_norm_layer(2, cfg.stem_channels), nn.ReLU()]
            self.stem = nn.Sequential(conv, *norm, nn.MaxPool2d(3, stride=2, padding=1))
            stages, c = [], cfg.stem_channels
            for s, (n, w, c_out) in enumerate(zip(cfg.stages, cfg.widths, cfg.stage_channels)):
                blocks = []
                for j in range(n):
                    stride = 2 if s > 0 and j == 0 else 1  # downsample at the start of stages 2, 3, ...
                    order = dict(preact=cfg.preact, preactivated_shortcut=cfg.preact)  # as He et al.'s code
                    if cfg.block == "bottleneck":
                        blocks.append(BottleneckBlock(c, w, c_out, stride=stride, **order))
                    else:
                        blocks.append(ResidualBlock(c, out_channels=c_out, stride=stride, **order))
                    c = c_out
                stages.append(nn.Sequential(*blocks))
            self.stages = nn.ModuleList(stages)
            # pre-activation blocks end with a convolution: one more BN → ReLU before pooling
            norm = [batch_norm_layer(2, c), nn.ReLU()] if cfg.preact else []
            self.head = nn.Sequential(*norm, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, cfg.n_classes))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation of the stem (the blocks do their own); the fully connected layer N(0, 1/C), bias 0."""
        he_init(self.stem, generator)
        fc = self.head[-1]
        nn.init.normal_(fc.weight, std=fc.in_features ** -0.5, generator=generator)  # unit-variance logits
        nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"ResNet expects images (N, {self.config.in_channels}, H, W). "
                             f"Got shape {tuple(x.shape)} instead.")
        h = self.stem(x)  # (N, 64, H/4, W/4)
        for stage in self.stages:
            h = stage(h)  # (N, 4·B_s, H/2^(s+2), W/2^(s+2))
        return self.head(h)  # (N, n_classes)

    @property
    def layer_count(self) -> int:
        """Weight layers counted in the built network: convolutions and linear layers, less the
        1×1 projections on the skip paths (they are not on the main path; the book does not count them)."""
        kinds = (nn.Conv2d, nn.Linear)
        shortcuts = {id(s) for m in self.modules() if getattr(m, "shortcut", None) is not None
                     for s in m.shortcut.modules()}
        return sum(isinstance(m, kinds) and id(m) not in shortcuts for m in self.modules())


def resnet200(*, n_classes: int = 1000, preact: bool = True,
              generator: torch.Generator | int | None = None) -> ResNet:
    """The book's ResNet-200 (fig. 11.8): bottleneck stages [3, 24, 36, 3], 64,666,152 parameters
    (post-activation, ``preact=False``: 64,673,832).

    Build it under ``with torch.device("meta"):`` to count its parameters without
    allocating the 260 MB they need.
    """
    return ResNet(ResNetConfig.preset("resnet200", n_classes=n_classes, preact=preact), generator=generator)


def resnet50(*, n_classes: int = 1000, preact: bool = True,
             generator: torch.Generator | int | None = None) -> ResNet:
    """ResNet-50: bottleneck stages [3, 4, 6, 3], 25,549,352 parameters (timm's ``resnetv2_50``);
    ``preact=False``: 25,557,032 (torchvision's ``resnet50``)."""
    return ResNet(ResNetConfig.preset("resnet50", n_classes=n_classes, preact=preact), generator=generator)
