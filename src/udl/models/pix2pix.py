"""Pix2Pix's patch discriminator (Isola et al. 2017; UDL §15.4.2, fig. 15.16).

Pix2Pix translates one image into another (here a grey photograph into a colour one)
with a U-Net generator (fig. 11.10, :class:`udl.models.unet.UNet`) trained by a content
loss (L1 between the output and the true image) plus an adversarial loss. Its
discriminator does not give one real/fake verdict per image: it is fully
convolutional, and each unit of its output map judges one patch of the input, the
unit's receptive field. The map's logits are all scored against the same label, which
asks the generator for realistic texture everywhere while the L1 term looks after the
colours at low frequencies.

The discriminator is *conditional*: it sees the pair (input, output), stacked along
the channels, so it judges whether the colours fit the grey image, not only whether
they look like a photograph.

**The layers** (the "70 x 70 PatchGAN" for ``n_layers = 3``): n 4x4 convolutions of
stride 2 (padding 1), each halving the size, then a 4x4 convolution of stride 1 and a
4x4 convolution of stride 1 to one logit channel (both padding 1, each shrinking the
size by 1); LeakyReLU(0.2) between them and batch norm on all but the first and last.
Channels c_k = width · min(2^k, 8).

**Receptive field, in closed form.** With r_l = r_{l-1} + (k_l - 1)·Π_{m<l} s_m
(:mod:`udl.analysis.receptive_field`), k = 4 everywhere, n strides of 2 and then two
of 1::

    r = 1 + 3·(1 + 2 + ... + 2^{n-1}) + 3·2^n + 3·2^n = 9·2^n − 2

which is 16, 34, 70, 142 for n = 1, 2, 3, 4 (70 for the original). An input of side s
gives a map of side ⌊s / 2^n⌋ − 2 (each stride-2 layer takes s to ⌊s / 2⌋).

Example::

    >>> d = PatchDiscriminator(4, 8, 3, generator=0)
    >>> d(torch.zeros(2, 4, 64, 64)).shape, d.receptive_field
    (torch.Size([2, 1, 6, 6]), 70)
"""

from __future__ import annotations

import torch
from torch import nn

from udl.nn.init import initialised_from
from udl.validate import as_generator, check_bool, check_input, check_int

__all__ = ["PatchDiscriminator", "patch_receptive_field", "patch_map_size"]

KERNEL = 4  # every convolution is 4x4, as Pix2Pix's
MAX_MULTIPLIER = 8  # channels stop doubling at 8 · width


def patch_receptive_field(n_layers: int) -> int:
    """The side of the input patch one output logit sees: r = 9·2^n − 2 (see the module docstring).

    Example::

        >>> [patch_receptive_field(n) for n in (1, 2, 3, 4)]
        [16, 34, 70, 142]
    """
    n_layers = check_int(n_layers, "n_layers", "patch_receptive_field")
    return 9 * 2 ** n_layers - 2


def patch_map_size(input_size: int, n_layers: int) -> int:
    """The side of the logit map for an input of side s: ⌊s / 2^n⌋ − 2 (0 or less: too small an input).

    Example::

        >>> patch_map_size(256, 3), patch_map_size(32, 1)
        (30, 14)
    """
    owner = "patch_map_size"
    input_size = check_int(input_size, "input_size", owner)
    n_layers = check_int(n_layers, "n_layers", owner)
    return input_size // 2 ** n_layers - 2


class PatchDiscriminator(nn.Module):
    """A fully convolutional discriminator: a map of real/fake logits, one per input patch.

    Args:
        in_channels: channels of what it judges; for a conditional discriminator the
            condition's and the image's together (grey 1 + colour 3 = 4). Default 4.
        width: channels of the first layer, c_0. Default 64 (Pix2Pix's).
        n_layers: n, the stride-2 convolutions; the receptive field is 9·2^n − 2.
            Default 3 (70 x 70).
        batch_norm: batch norm after the inner convolutions (then without bias).
            Default True (Pix2Pix's); False for a gradient penalty, which needs each
            logit to depend on its own input only.
        generator: the random numbers of the initial weights, N(0, 0.02²) as Pix2Pix's
            (biases 0): a ``torch.Generator`` or an int seed. Default: None, torch's
            global generator.

    Shape:
        ``forward(x)``: ``(N, in_channels, H, W) -> (N, 1, ⌊H / 2^n⌋ − 2, ⌊W / 2^n⌋ − 2)``;
        ``forward(x, condition)`` stacks ``condition`` before ``x`` along the channels
        (``condition.shape[1] + x.shape[1] == in_channels``). H and W at least 3·2^n.
    """

    def __init__(self, in_channels: int = 4, width: int = 64, n_layers: int = 3, *, batch_norm: bool = True,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "PatchDiscriminator"
        self.in_channels = check_int(in_channels, "in_channels", owner)
        self.width = check_int(width, "width", owner)
        self.n_layers = check_int(n_layers, "n_layers", owner, maximum=8)
        self.batch_norm = check_bool(batch_norm, "batch_norm", owner)
        generator = as_generator(generator, owner)
        c = [width * min(2 ** k, MAX_MULTIPLIER) for k in range(n_layers + 1)]  # c_k
        layers: list[nn.Module] = []
        with initialised_from(self, generator):
            for k in range(n_layers + 1):  # n stride-2 layers, then one of stride 1
                c_in = in_channels if k == 0 else c[k - 1]
                inner = k > 0 and batch_norm
                layers.append(nn.Conv2d(c_in, c[k], KERNEL, stride=2 if k < n_layers else 1, padding=1,
                                        bias=not inner))
                if inner:
                    layers.append(nn.BatchNorm2d(c[k]))
                layers.append(nn.LeakyReLU(0.2))
            layers.append(nn.Conv2d(c[n_layers], 1, KERNEL, stride=1, padding=1))  # one logit per patch
            self.layers = nn.Sequential(*layers)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Convolution weights ~ N(0, 0.02²) and biases 0, Pix2Pix's (and DCGAN's) initialisation."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.02, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def receptive_field(self) -> int:
        """The side of the input patch each logit sees, 9·2^n − 2 (:func:`patch_receptive_field`)."""
        return patch_receptive_field(self.n_layers)

    def map_size(self, input_size: int) -> int:
        """The side of the logit map for an input of side ``input_size`` (:func:`patch_map_size`)."""
        return patch_map_size(input_size, self.n_layers)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Logits, one per patch; ``condition`` (if given) is stacked before ``x`` along the channels."""
        owner = "PatchDiscriminator.forward"
        if condition is not None:
            check_input(condition, "condition", owner, shape=("N", "C", "H", "W"), dtype=self.layers[0].weight.dtype)
            if condition.shape[1] >= self.in_channels:
                raise ValueError(f"The 'condition' parameter of {owner} must have fewer than in_channels = "
                                 f"{self.in_channels} channels. Got shape {tuple(condition.shape)} instead.")
            check_input(x, "x", owner, shape=(condition.shape[0], self.in_channels - condition.shape[1],
                                              condition.shape[2], condition.shape[3]),
                        dtype=self.layers[0].weight.dtype)
            x = torch.cat([condition, x], dim=1)  # (N, C_cond + C_x, H, W)
        weight = self.layers[0].weight
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.dtype != weight.dtype:
            check_input(x, "x", owner, shape=("N", self.in_channels, "H", "W"), dtype=weight.dtype)
        smallest = 3 * 2 ** self.n_layers
        if min(x.shape[2:]) < smallest:
            raise ValueError(f"The 'x' parameter of {owner} must be at least {smallest} x {smallest} "
                             f"(n_layers = {self.n_layers}). Got shape {tuple(x.shape)} instead.")
        return self.layers(x)

    def extra_repr(self) -> str:
        return f"receptive_field={self.receptive_field}"
