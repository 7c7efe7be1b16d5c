"""Training Pix2Pix (Isola et al. 2017; UDL §15.4.2, fig. 15.16): colourising grey photographs.

The generator is udl's U-Net (fig. 11.10, :class:`udl.models.unet.UNet` with "same"
padding) mapping a grey image y to a colour image x̂ = g[y, θ]; it is trained with a
content loss, the mean absolute error to the true colours x, plus (optionally) the
loss of a conditional patch discriminator f[y, x, φ] (:class:`udl.models.pix2pix.PatchDiscriminator`)
that sees the grey image stacked with the real or the generated colours:

    L[φ] = mean softplus(−f[y, x]) + mean softplus(f[y, x̂])                 (real → 1, generated → 0)
    L[θ] = mean softplus(−f[y, x̂]) + λ · mean |x̂ − x|                        (non-saturating, + λ L1)

the means running over the batch and over every logit of the map (each judges one
patch). L1 alone is minimised by the median of the plausible colours, which for an
uncertain pixel is a washed-out compromise; the discriminator penalises such colours
wherever they do not look like a photograph's.

**The colouriser keeps the luminance it is given.** The U-Net predicts three offsets
d per pixel and the output is x̂ = clip(y + d − Y[d], 0, 1), Y the BT.601 luminance
(:func:`udl.data.photos.to_grey`, weights summing to 1): away from the clipping, Y[x̂] = y
exactly, so the network only has to find the chroma. The U-Net's last layer starts at
zero, so training starts from the trivial answer, the grey image copied to the three
channels.

Both versions train in :func:`udl.train.gan.train_adversarial` (L1 alone with the
adversarial weight 0 and no discriminator update: the same loop, batches and Adam
settings, so the comparison isolates the adversarial term). The colouriser's weights
are averaged over the steps (an exponential moving average, as GAN generators are
usually evaluated: Karras et al. 2018), which removes most of the step-to-step drift of
the overall tint.

Example::

    >>> from udl.data.photos import photo_patches, to_grey
    >>> colour = photo_patches(["china", "flower"], 16, 64, downscale=4)
    >>> g = Colouriser(levels=2, width=4, generator=0)
    >>> history = train_pix2pix(g, to_grey(colour), colour, steps=3, batch_size=8, device="cpu")
    >>> sorted(history), len(history["l1"])
    (['d_loss', 'g_loss', 'l1'], 3)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from udl.data.photos import to_grey
from udl.models.pix2pix import PatchDiscriminator
from udl.models.unet import UNet
from udl.nn.adversarial import discriminator_loss, generator_loss
from udl.train.gan import train_adversarial
from udl.validate import _refuse, as_generator, check_callable, check_float, check_instance, check_int

__all__ = ["Colouriser", "train_pix2pix", "photo_colouriser", "TRAIN_PHOTOS", "HELD_OUT_PHOTO"]

# the colour photographs of everyday scenes udl ships; the cat is held out (its colours are the training
# photographs' kind: browns, greys, some green), the rest train
TRAIN_PHOTOS = ("china", "flower", "astronaut", "coffee", "rocket", "motorcycle")
HELD_OUT_PHOTO = "chelsea"


class Colouriser(nn.Module):
    """A U-Net that colours a grey image and keeps its luminance: x̂ = clip(y + d − Y[d], 0, 1), d = U-Net(y).

    Args:
        levels: the U-Net's resolution levels (the image side must be divisible by
            2^(levels − 1)). Default 3.
        width: the U-Net's channels at the first level. Default 16.
        generator: the random numbers of the U-Net's initial weights (its last 1x1
            layer starts at zero, so the first output is the grey image in three
            channels): a ``torch.Generator`` or an int seed. Default: None.

    Shape:
        ``(N, 1, H, W) -> (N, 3, H, W)``, values in [0, 1].
    """

    def __init__(self, levels: int = 3, width: int = 16, *, generator: torch.Generator | int | None = None):
        super().__init__()
        generator = as_generator(generator, "Colouriser")
        self.unet = UNet(1, 3, levels=levels, width=width, padding="same", generator=generator)
        with torch.no_grad():
            self.unet.head.weight.zero_()  # the first colouring is no colouring: x̂ = y
            self.unet.head.bias.zero_()

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        offsets = self.unet(grey)  # (N, 3, H, W): d
        return (grey + offsets - to_grey(offsets)).clamp(0.0, 1.0)  # Y[x̂] = y where nothing is clipped


def train_pix2pix(colouriser: nn.Module, grey: torch.Tensor, colour: torch.Tensor, *,
                  discriminator: PatchDiscriminator | None = None, l1_weight: float = 100.0, steps: int,
                  batch_size: int = 32, lr: float = 2e-4, ema: float = 0.95, seed: int = 0,
                  device: str | torch.device = "auto", callback=None,
                  progress: bool | None = None) -> dict[str, list[float]]:
    """Train ``colouriser`` on (grey, colour) pairs: λ·L1, plus the conditional patch loss if there is a discriminator.

    Args:
        colouriser: g, grey ``(B, 1, H, W)`` -> colour ``(B, 3, H, W)``, e.g. :class:`Colouriser`.
        grey: the inputs y, ``(N, 1, H, W)``.
        colour: the targets x, ``(N, 3, H, W)`` in [0, 1].
        discriminator: f, a :class:`~udl.models.pix2pix.PatchDiscriminator` with 4 input
            channels (grey + colour), or None to train with L1 alone. Default: None.
        l1_weight: λ, the weight of the L1 term (Pix2Pix's 100). Default: 100.
        steps: generator updates.
        batch_size: pairs per batch. Default: 32.
        lr: Adam's learning rate for both networks, β = (0.5, 0.999). Default: 2e-4 (Pix2Pix's).
        ema: the decay of the moving average of the colouriser's weights, which it
            holds at the end; 0 keeps the last weights. Default: 0.95.
        seed: the batch order. Default: 0.
        device: "auto", "cpu", "cuda" or a torch.device. Default: "auto".
        callback: ``callback(step, colouriser)`` after each step, ``colouriser`` holding the
            averaged weights so far (figures take snapshots). Default: None.
        progress: a tqdm bar; None shows it only on a terminal. Default: None.

    Returns:
        ``{"l1": [...], "g_loss": [...], "d_loss": [...]}``, one value per step: the
        batch's mean |x̂ − x|, the generator's whole loss and the discriminator's loss
        (0 without a discriminator).
    """
    owner = "train_pix2pix"
    check_instance(colouriser, "colouriser", owner, nn.Module)
    if not isinstance(grey, torch.Tensor) or grey.dim() != 4 or grey.shape[1] != 1 or not grey.is_floating_point():
        _refuse("grey", owner, "a float tensor of shape (N, 1, H, W)", _shape(grey), TypeError
                if not isinstance(grey, torch.Tensor) else ValueError)
    if not isinstance(colour, torch.Tensor) or tuple(colour.shape) != (len(grey), 3, *grey.shape[2:]) or \
            not colour.is_floating_point():
        _refuse("colour", owner, f"a float tensor of shape ({len(grey)}, 3, {grey.shape[2]}, {grey.shape[3]})",
                _shape(colour), TypeError if not isinstance(colour, torch.Tensor) else ValueError)
    if discriminator is not None:
        check_instance(discriminator, "discriminator", owner, PatchDiscriminator)
        if discriminator.in_channels != 4:
            _refuse("discriminator", owner, "a PatchDiscriminator of 4 input channels (grey + colour)",
                    f"{discriminator.in_channels} channels")
    l1_weight = check_float(l1_weight, "l1_weight", owner, low=0.0, low_open=True)
    ema = check_float(ema, "ema", owner, low=0.0, high=1.0, high_open=True)
    check_float(lr, "lr", owner, low=0.0, low_open=True)
    check_callable(callback, "callback", owner, optional=True)
    l1_history: list[float] = []
    kept: list[nn.Module] = []  # the averaged colouriser, made on the first step (on the training device)
    adversarial = discriminator is not None

    outputs: list[torch.Tensor] = []  # x̂ of the discriminator's batch, which the generator's update reuses

    def d_loss(batch, d_step):
        y, x = batch
        if not adversarial:
            return torch.zeros((), device=y.device, requires_grad=True)  # no discriminator: nothing to update
        fake = colouriser(y)  # with its graph: g is not updated before the generator's step uses it
        outputs[:] = [fake]
        return discriminator_loss(discriminator(x, y), discriminator(fake.detach(), y))  # real → 1, generated → 0

    def g_loss(batch, step):
        y, x = batch
        fake = outputs.pop() if outputs else colouriser(y)
        l1 = (fake - x).abs().mean()
        l1_history.append(float(l1.detach()))
        adversarial_term = generator_loss(discriminator(fake, y)) if adversarial else 0.0
        return adversarial_term + l1_weight * l1

    def follow(step, history, modules):
        if not kept:
            kept.append(copy.deepcopy(colouriser).requires_grad_(False))
        with torch.no_grad():  # θ̄ ← ema·θ̄ + (1 − ema)·θ
            for average, now in zip(kept[0].parameters(), colouriser.parameters()):
                average.lerp_(now, 1.0 - ema)
        if callback is not None:
            callback(step, kept[0])

    idle = nn.Module()  # L1 alone: a stand-in discriminator whose one parameter never gets a gradient
    idle.register_parameter("unused", nn.Parameter(torch.zeros(())))
    modules = {"generator": colouriser, "discriminator": discriminator if adversarial else idle}
    history = train_adversarial(modules, (grey, colour), d_loss=d_loss, g_loss=g_loss, steps=steps,
                                batch_size=batch_size, lr_d=lr, lr_g=lr, seed=seed, device=device,
                                callback=follow, progress=progress)
    with torch.no_grad():
        for now, average in zip(colouriser.parameters(), kept[0].parameters()):
            now.copy_(average)
    return {"l1": l1_history, "g_loss": history["g_loss"], "d_loss": history["d_loss"]}


def _shape(value) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


def photo_colouriser(*, adversarial: bool, size: int = 32, n_train: int = 4000, downscale: int = 4, levels: int = 3,
                     width: int = 12, n_layers: int = 1, l1_weight: float = 100.0, steps: int = 400,
                     lr: float = 2e-4, ema: float = 0.95, seed: int = 0,
                     device: str | torch.device = "auto") -> tuple[nn.ModuleDict, dict]:
    """A colouriser trained on patches of :data:`TRAIN_PHOTOS`, once per machine and settings (cached on disk).

    The training pairs are ``n_train`` patches of ``size x size`` pixels
    (:func:`udl.data.photos.photo_patches` with ``seed``, photographs shrunk by
    ``downscale``) and their grey versions; :data:`HELD_OUT_PHOTO` is never seen. The
    defaults are those of figure 15.16's full preset.

    Args:
        adversarial: add the conditional patch discriminator (``PatchDiscriminator(4,
            width, n_layers)``) to the L1 loss; False trains with L1 alone.
        size, n_train, downscale: the training patches.
        levels, width: the :class:`Colouriser`'s U-Net.
        n_layers: the discriminator's stride-2 layers (receptive field 9·2^n − 2).
        l1_weight, steps, lr, ema: as :func:`train_pix2pix` (batches of 32).
        seed: the patches, the initial weights (colouriser ``seed``, discriminator
            ``seed + 1``) and the batch order.
        device: where to train. Default: "auto".

    Returns:
        ``(nets, record)``: ``nets["colouriser"]`` (and ``nets["discriminator"]`` when
        adversarial) in eval mode, and the record ``{"l1", "g_loss", "d_loss"}``.
    """
    from udl.cache import trained
    from udl.data import photos
    from udl.data.photos import photo_patches
    from udl.models import pix2pix, unet
    from udl.train import gan
    import udl.train.pix2pix as this

    owner = "photo_colouriser"
    if not isinstance(adversarial, bool):
        _refuse("adversarial", owner, "a bool", repr(adversarial), TypeError)
    settings = dict(adversarial=adversarial, size=check_int(size, "size", owner),
                    n_train=check_int(n_train, "n_train", owner), downscale=check_int(downscale, "downscale", owner),
                    levels=check_int(levels, "levels", owner), width=check_int(width, "width", owner),
                    n_layers=check_int(n_layers, "n_layers", owner), l1_weight=float(l1_weight),
                    steps=check_int(steps, "steps", owner), lr=float(lr), ema=float(ema),
                    seed=check_int(seed, "seed", owner, minimum=0), photos=list(TRAIN_PHOTOS))

    def build():
        nets = {"colouriser": Colouriser(levels, width, generator=seed)}
        if adversarial:
            nets["discriminator"] = PatchDiscriminator(4, width, n_layers, generator=seed + 1)
        return nn.ModuleDict(nets)

    def train(nets):
        colour = photo_patches(list(TRAIN_PHOTOS), size, n_train, seed=seed, downscale=downscale)
        return train_pix2pix(nets["colouriser"], to_grey(colour), colour, discriminator=nets["discriminator"]
                             if adversarial else None, l1_weight=l1_weight, steps=steps, lr=lr, ema=ema, seed=seed,
                             device=next(nets.parameters()).device)

    name = "pix2pix-colouriser" + ("-adversarial" if adversarial else "-l1")
    return trained(name, settings, build, train, sources=[this, pix2pix, unet, photos, gan], device=device)
