"""Training the super-resolution GAN (UDL §15.4.4, fig. 15.17; Ledig et al. 2017).

The training pairs are made from high-resolution patches x alone: the low-resolution
input is each 4×4 block's average (:func:`low_resolution`, what a camera sensor with
four times larger pixels would record), and the network g must give x back from it.

1. **Content only** (:func:`train_content`, the SRResNet): minimise the squared error

       L_content[θ] = mean (g[↓x, θ] − x)²

   which maximises the PSNR. Where the low-resolution pixels leave the fine detail
   uncertain, the best such estimate is the average of the possible details: a smooth
   image.
2. **Content + adversarial** (:func:`train_srgan`, the SRGAN), starting from the content
   network: a discriminator f learns to tell real patches from super-resolved ones, and
   the generator's loss adds the non-saturating adversarial term (§15.2.1):

       L[θ] = L_content[θ] + λ · mean −log sig[f(g[↓x, θ])]

   so that it prefers a sharp plausible detail to the blur. The original measured the
   content in the feature space of a pre-trained VGG network; that network is not
   available offline, so the content term here is the squared error on pixels (the
   original's "SRGAN-MSE" variant).

:func:`photo_super_resolvers` trains both on patches of seventeen photographs, once per machine
(:func:`udl.cache.trained`), for figure 15.17, which shows them on another one.

Example::

    >>> from udl.models.srgan import SRResNet, SRGANConfig
    >>> hr = torch.rand(64, 3, 16, 16)
    >>> model = SRResNet(SRGANConfig.tiny(), generator=0)
    >>> losses = train_content(model, hr, steps=5, batch_size=8, device="cpu")
    >>> super_resolve(model, low_resolution(hr[:2])).shape
    torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from udl.cache import trained
from udl.devices import resolve_device
from udl.models import srgan as srgan_module
from udl.models.srgan import SRDiscriminator, SRGANConfig, SRResNet
from udl.nn.adversarial import discriminator_loss, generator_loss
from udl.nn.sampling import mean_pool2d
from udl.train.gan import train_adversarial
from udl.train.recipes import fit_adamw
from udl.validate import _refuse, check_float, check_instance, check_int, check_sequence, check_tensor

__all__ = ["TRAIN_PHOTOS", "HELD_OUT_PHOTO", "low_resolution", "ContentLoss", "train_content", "train_srgan",
           "super_resolve", "photo_super_resolvers"]

# figure 15.17's training photographs: colour ones and grey ones (three equal channels: texture, edges, text)
TRAIN_PHOTOS = ("china", "astronaut", "coffee", "rocket", "motorcycle", "chelsea", "retina", "hubble_deep_field",
                "immunohistochemistry", "camera", "coins", "brick", "grass", "gravel", "clock", "page", "moon")
HELD_OUT_PHOTO = "flower"  # figure 15.17's test photograph, never trained on


def low_resolution(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The low-resolution input: the average of each ``factor`` x ``factor`` block (area averaging).

    Shape:
        ``(N, C, H, W) -> (N, C, H // factor, W // factor)`` (rows and columns past the
        last whole block are dropped).
    """
    check_tensor(images, "images", "low_resolution", shape=("N", "C", "H", "W"), dtype="float")
    factor = check_int(factor, "factor", "low_resolution", maximum=min(images.shape[-2:]))
    return mean_pool2d(images, factor)


def _patches(hr, model: SRResNet, owner: str) -> torch.Tensor:
    check_tensor(hr, "hr", owner, shape=("N", model.config.channels, "H", "W"), dtype="float")
    if hr.shape[-1] % model.config.scale or hr.shape[-2] % model.config.scale or len(hr) == 0:
        _refuse("hr", owner, f"a non-empty batch of patches whose sides are multiples of {model.config.scale}",
                f"shape {tuple(hr.shape)}")
    return hr


class ContentLoss(nn.Module):
    """A super-resolver and its content loss as one module: ``forward(x)`` = mean (g[↓x] − x)².

    Args:
        model: the :class:`udl.models.srgan.SRResNet` to train.
    """

    def __init__(self, model: SRResNet):
        super().__init__()
        self.model = check_instance(model, "model", "ContentLoss", SRResNet)

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.model(low_resolution(hr, self.model.config.scale)), hr)


def train_content(model: SRResNet, hr: torch.Tensor, *, steps: int, batch_size: int = 32, lr: float = 2e-3,
                  seed: int = 0, device: str | torch.device = "auto", progress: bool | None = False) -> list[float]:
    """Fit ``model`` to super-resolve ``hr``'s patches with the squared error alone; return the loss of every step.

    Adam (no weight decay), a warm-up over the first 5% of the steps, then a half
    cosine down to lr/100, through :func:`udl.train.fit` (batches in an order given by
    ``seed``). The model trains in place and is left in eval mode on ``device``.

    Args:
        model: an :class:`udl.models.srgan.SRResNet`.
        hr: the high-resolution patches, ``(N, C, H, W)`` in [0, 1], sides multiples of the scale.
        steps: optimiser steps.
        batch_size: patches per step (at most N). Default: 32.
        lr: the peak learning rate. Default: 2e-3.
        seed: the batch order. Default: 0.
        device: where to train. Default: "auto".
        progress: a progress bar. Default: False.

    Returns:
        The mean squared error of every step's batch.
    """
    owner = "train_content"
    check_instance(model, "model", owner, SRResNet)
    hr = _patches(hr, model, owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(hr))
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    seed = check_int(seed, "seed", owner, minimum=0)
    losses = fit_adamw(ContentLoss(model), (hr,), None, steps=steps, lr=lr, weight_decay=0.0, floor=0.01,
                       warmup=max(1, steps // 20), batch_size=batch_size, seed=seed, device=device,
                       progress=progress)
    model.eval()
    return losses


def train_srgan(model: SRResNet, discriminator: SRDiscriminator, hr: torch.Tensor, *, steps: int,
                batch_size: int = 32, adversarial_weight: float = 1e-2, lr_g: float = 1e-4, lr_d: float = 1e-4,
                seed: int = 0, device: str | torch.device = "auto",
                progress: bool | None = False) -> dict[str, list[float]]:
    """Train ``model`` against ``discriminator`` with content + λ · adversarial loss (on :func:`train_adversarial`).

    Each step: one discriminator update on the batch's real patches and the generator's
    (detached) super-resolutions of their low-resolution versions, binary cross-entropy
    (:func:`udl.nn.adversarial.discriminator_loss`); then one generator update on

        mean (g[↓x] − x)² + λ · mean −log sig[f(g[↓x])]

    (:func:`udl.nn.adversarial.generator_loss`, non-saturating). Adam with β = (0.9, 0.999)
    as the original. Start ``model`` from a content-trained network (the original did).

    Args:
        model: an :class:`udl.models.srgan.SRResNet`; trained in place, left in eval mode.
        discriminator: an :class:`udl.models.srgan.SRDiscriminator`; trained in place.
        hr: the high-resolution patches, ``(N, C, H, W)`` in [0, 1].
        steps: generator updates.
        batch_size: patches per step (at most N). Default: 32.
        adversarial_weight: λ. Default: 1e-2.
        lr_g, lr_d: Adam's learning rates. Default: 1e-4 each (the original's).
        seed: the batch order. Default: 0.
        device: where to train. Default: "auto".
        progress: a progress bar. Default: False.

    Returns:
        ``{"d_loss", "g_loss", "content", "adversarial"}``: one value per step each
        (``g_loss`` = content + λ · adversarial).
    """
    owner = "train_srgan"
    check_instance(model, "model", owner, SRResNet)
    check_instance(discriminator, "discriminator", owner, SRDiscriminator)
    hr = _patches(hr, model, owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(hr))
    weight = check_float(adversarial_weight, "adversarial_weight", owner, low=0.0)
    scale = model.config.scale
    parts = {"content": [], "adversarial": []}

    def d_loss(batch, d_step):
        real = batch[0]
        with torch.no_grad():
            fake = model(low_resolution(real, scale))
        return discriminator_loss(discriminator(real), discriminator(fake))

    def g_loss(batch, step):
        real = batch[0]
        fake = model(low_resolution(real, scale))
        content = F.mse_loss(fake, real)
        adversarial = generator_loss(discriminator(fake))
        parts["content"].append(float(content.detach()))
        parts["adversarial"].append(float(adversarial.detach()))
        return content + weight * adversarial

    history = train_adversarial({"generator": model, "discriminator": discriminator}, (hr,), d_loss=d_loss,
                                g_loss=g_loss, steps=steps, batch_size=batch_size, lr_d=lr_d, lr_g=lr_g,
                                betas=(0.9, 0.999), seed=seed, device=device, progress=progress)
    model.eval()
    discriminator.eval()
    return {**history, **parts}


@torch.no_grad()
def super_resolve(model: SRResNet, low: torch.Tensor) -> torch.Tensor:
    """The model's enlargement of ``low``, clipped to [0, 1] (eval mode, no gradients, on the model's device).

    Shape:
        ``(N, C, h, w) -> (N, C, scale·h, scale·w)``, on ``low``'s device.
    """
    check_instance(model, "model", "super_resolve", SRResNet)
    check_tensor(low, "low", "super_resolve", shape=("N", model.config.channels, "h", "w"), dtype="float")
    was_training = model.training
    model.eval()
    try:
        out = model(low.to(model.tail.weight.device)).clamp(0.0, 1.0)
    finally:
        model.train(was_training)
    return out.to(low.device)


def _dihedral(hr: torch.Tensor) -> torch.Tensor:
    """Patch i mirrored left-right when i is odd and transposed when i mod 4 ≥ 2: four orientations of the photographs."""
    i = torch.arange(len(hr))[:, None, None, None]
    hr = torch.where(i % 2 == 1, hr.flip(-1), hr)
    return torch.where(i % 4 >= 2, hr.transpose(-1, -2), hr).contiguous()


def photo_super_resolvers(config: SRGANConfig | None = None, *, names=TRAIN_PHOTOS, downscale: int = 2,
                          patch: int = 32, n_patches: int = 8000, steps: int = 600, adversarial_steps: int = 100,
                          adversarial_weight: float = 0.03, seed: int = 0,
                          device: str | torch.device = "auto") -> tuple[SRResNet, SRResNet, dict]:
    """The content-only and the adversarial super-resolvers of figure 15.17, trained once per machine (cached).

    Patches: ``n_patches`` random ``patch`` x ``patch`` crops (:func:`udl.data.photos.photo_patches`,
    seed 0) of the photographs ``names`` shrunk by ``downscale``, every second one mirrored and
    every other pair transposed (four orientations: more variety from few photographs; on
    figure 15.17's held-out photograph this raised the content network's gain over bicubic
    from about 0.9 to 1.0 dB). The content network trains
    for ``steps`` (:func:`train_content`); the adversarial one starts from its weights and
    trains ``adversarial_steps`` more against a new discriminator (:func:`train_srgan`).

    Args:
        config: the networks. Default: ``SRGANConfig.photos()``.
        names: the training photographs. Default: :data:`TRAIN_PHOTOS`.
        downscale: each photograph shrunk by this factor first. Default: 2.
        patch: the side of a high-resolution patch (a multiple of the scale). Default: 32.
        n_patches: how many patches. Default: 8000.
        steps: content-only training steps. Default: 600.
        adversarial_steps: content + adversarial steps after them. Default: 100.
        adversarial_weight: λ. Default: 0.03.
        seed: the initial weights and the batch order. Default: 0.
        device: where to train and where the models live. Default: "auto".

    Returns:
        ``(content_model, adversarial_model, record)``, both in eval mode (the same model when
        ``adversarial_steps`` is 0); the record holds
        ``"content_losses"`` and the adversarial run's ``"d_loss"``, ``"g_loss"``,
        ``"content"``, ``"adversarial"``.
    """
    from udl.data.photos import photo_patches

    owner = "photo_super_resolvers"
    config = SRGANConfig.photos() if config is None else check_instance(config, "config", owner, SRGANConfig)
    names = [names] if isinstance(names, str) else list(check_sequence(names, "names", owner, of="photograph names"))
    downscale = check_int(downscale, "downscale", owner)
    patch = check_int(patch, "patch", owner)
    if patch % config.scale:
        _refuse("patch", owner, f"a multiple of the scale {config.scale}", repr(patch))
    n_patches = check_int(n_patches, "n_patches", owner)
    steps = check_int(steps, "steps", owner)
    adversarial_steps = check_int(adversarial_steps, "adversarial_steps", owner, minimum=0)
    weight = check_float(adversarial_weight, "adversarial_weight", owner, low=0.0)
    seed = check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    hr = _dihedral(photo_patches(names, patch, n_patches, seed=0, downscale=downscale))
    batch_size = min(32, n_patches)
    settings = {"config": {k: getattr(config, k) for k in config.__dataclass_fields__}, "names": names,
                "downscale": downscale, "patch": patch, "n_patches": n_patches, "steps": steps, "seed": seed,
                "batch_size": batch_size, "orientations": 4}

    def train_content_model(model):
        return {"content_losses": train_content(model, hr, steps=steps, batch_size=batch_size, seed=seed,
                                                device=device)}

    import udl.train.srgan as this

    sources = [srgan_module, this]
    content, record = trained("srgan-content", settings, lambda: SRResNet(config, generator=seed),
                              train_content_model, sources=sources, device=device)
    if adversarial_steps == 0:
        return content, content, record

    def build_pair():
        return nn.ModuleDict({"generator": SRResNet(config, generator=seed),
                              "discriminator": SRDiscriminator(config, generator=seed + 1)})

    def train_pair(pair):
        pair["generator"].load_state_dict(content.state_dict())
        return train_srgan(pair["generator"], pair["discriminator"], hr, steps=adversarial_steps,
                           batch_size=batch_size, adversarial_weight=weight, seed=seed, device=device)

    pair, adversarial_record = trained("srgan-adversarial", {**settings, "adversarial_steps": adversarial_steps,
                                                             "adversarial_weight": weight},
                                       build_pair, train_pair, sources=sources, device=device)
    return content, pair["generator"].eval(), {**record, **adversarial_record}
