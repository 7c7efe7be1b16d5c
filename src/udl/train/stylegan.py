"""Training a style-based generator against a discriminator (UDL §15.6, fig. 15.19).

The generator is :class:`udl.models.stylegan.StyleGenerator`; the discriminator is DCGAN's
(:class:`udl.models.gan.DCGANDiscriminator`: StyleGAN kept its predecessor's
discriminator, changing only the generator). The losses are the non-saturating ones
of §15.2.1 (:mod:`udl.nn.adversarial`), alternated by :func:`udl.train.gan.train_adversarial`.

**Style mixing regularisation** (Karras et al. 2019, §3.1): for a share ``p_mix`` of
the generated images, two latents z₁, z₂ are mapped to w₁, w₂ and a crossover layer k is
drawn uniformly from 1 … L−1: layers below k take w₁, the others w₂. The network then
cannot rely on neighbouring layers having the same style, and each layer's style
controls what that layer does: coarse layers the layout (for digits, the class), fine
layers the detail.

Every draw of step s (the latents, the crossovers, the noise images) comes from
:func:`udl.train.gan.step_generator` seeded with ``(seed, s)`` (stream 0 for the
discriminator's update, 1 for the generator's), so the run is a function of its seed.

:func:`digits_stylegan` is the generator that figure 15.19 shows: trained once per
machine on ``load_digits("train", seed=0)`` and cached (:func:`udl.cache.trained`).

Example::

    >>> from udl.data.images import load_digits
    >>> x = torch.from_numpy(load_digits("train")[0]).view(-1, 1, 8, 8)
    >>> model = StyleGenerator("tiny", generator=0)
    >>> critic = DCGANDiscriminator(GANConfig.tiny(), generator=1)
    >>> history = train_stylegan(model, critic, x, steps=20, device="cpu")
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from udl.cache import trained
from udl.models import stylegan as stylegan_module
from udl.models.gan import DCGANDiscriminator, GANConfig
from udl.models.stylegan import StyleGANConfig, StyleGenerator
from udl.nn.adversarial import discriminator_loss, generator_loss
from udl.train.gan import step_generator, train_adversarial
from udl.validate import _refuse, check_float, check_instance, check_int

__all__ = ["mixed_batch", "train_stylegan", "digits_stylegan"]


def mixed_batch(model: StyleGenerator, n: int, *, p_mix: float = 0.9,
                generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-layer styles and noise for n generated images, a share ``p_mix`` of them style-mixed.

    Draws, in this order, z₁ ``(n, D_z)``, z₂, the crossover k_i ∈ {1, …, L−1} and a
    uniform u_i per image, then the noise images. Image i takes w₁ in layers l < k_i and
    w₂ in the rest when u_i < ``p_mix``; w₁ in every layer otherwise.

    Args:
        model: the generator (its mapping network makes the styles: they carry gradients).
        n: the number of images.
        p_mix: the share of images whose styles are mixed, in [0, 1]. Default: 0.9 (StyleGAN's).
        generator: the draws: a ``torch.Generator`` or an int seed. Default: torch's global one.

    Returns:
        ``(ws, noise)``: styles ``(n, L, D_w)`` and the L noise images, for ``model.synthesis``.
    """
    owner = "mixed_batch"
    check_instance(model, "model", owner, StyleGenerator)
    n = check_int(n, "n", owner)
    p_mix = check_float(p_mix, "p_mix", owner, low=0.0, high=1.0)
    from udl.validate import as_generator

    generator = as_generator(generator, owner)
    device = generator.device if generator is not None else "cpu"
    z1, z2 = model.latent(n, generator=generator), model.latent(n, generator=generator)
    L = model.n_styles
    crossover = torch.randint(1, max(L, 2), (n,), generator=generator, device=device)  # (n,) in 1 … L−1
    mixed = torch.rand(n, generator=generator, device=device) < p_mix  # (n,)
    crossover = torch.where(mixed, crossover, torch.full_like(crossover, L)).to(z1.device)  # L: no mixing
    noise = model.draw_noise(n, generator=generator)
    w1, w2 = model.mapping(z1), model.mapping(z2)  # (n, D_w) each
    first = torch.arange(L, device=z1.device)[None, :] < crossover[:, None]  # (n, L): the layers that take w₁
    return torch.where(first[..., None], w1[:, None, :], w2[:, None, :]), noise  # (n, L, D_w)


def _as_images(x, model: StyleGenerator, owner: str) -> torch.Tensor:
    c = model.config
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        _refuse("x", owner, "a numpy array or torch.Tensor", type(x).__name__, TypeError)
    shape = (c.out_channels, c.image_size, c.image_size)
    if x.dim() == 2 and x.shape[1] == c.out_channels * c.image_size ** 2:
        x = x.reshape(-1, *shape)  # rows of pixels, as load_digits gives them
    if x.dim() != 4 or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
        _refuse("x", owner, f"images of shape (N, {', '.join(map(str, shape))}) with N > 0", str(tuple(x.shape)))
    x = x.float()
    if not bool(((x >= 0) & (x <= 1)).all()):
        _refuse("x", owner, "images with values in [0, 1]", f"values in [{float(x.min()):g}, {float(x.max()):g}]")
    return x


def train_stylegan(model: StyleGenerator, discriminator: nn.Module, x, *, steps: int = 1500, batch_size: int = 64,
                   p_mix: float = 0.9, lr: float = 1e-3, betas: tuple[float, float] = (0.0, 0.99), seed: int = 0,
                   device: str | torch.device = "auto", callback=None, checkpoint_path=None,
                   checkpoint_every: int | None = None, resume=False,
                   progress: bool | None = False) -> dict[str, list[float]]:
    """Train ``model`` against ``discriminator`` on the images ``x``; return both losses of every step.

    Each step: one discriminator update on a batch of real images and as many generated
    ones (non-saturating loss: BCE, real → 1, generated → 0), then one generator update
    (BCE, generated → 1); the generated images use :func:`mixed_batch`. Adam for both
    networks, with StyleGAN's β = (0, 0.99) by default (on the digits, DCGAN's (0.5, 0.999)
    at lr 5e-4 collapsed to a few digits: Fréchet 108, recall 0 after 1,500 steps; these
    settings: 33, recall 0.14). Both train in place; the generator is left in eval mode on
    ``device``.

    Args:
        model: the :class:`udl.models.stylegan.StyleGenerator`.
        discriminator: a network from images ``(B, C, S, S)`` to logits ``(B,)``.
        x: the training images, ``(N, C, S, S)`` or ``(N, C·S·S)``, values in [0, 1].
        steps: generator updates. Default: 1500.
        batch_size: images per batch (at most N). Default: 64.
        p_mix: the share of style-mixed images (mixing regularisation). Default: 0.9.
        lr: Adam's learning rate, both networks. Default: 1e-3.
        betas: Adam's (β₁, β₂). Default: (0.0, 0.99) (StyleGAN's).
        seed: the data order and every draw. Default: 0.
        device: where to train. Default: "auto".
        callback: ``callback(step, history, modules)`` after each step. Default: None.
        checkpoint_path, checkpoint_every, resume: checkpoints of both networks and both
            optimisers, as :func:`udl.train.gan.train_adversarial`: every draw of a step comes
            from that step's generator, so a resumed run ends as an uninterrupted one. Default: none.
        progress: a progress bar. Default: False.

    Returns:
        ``{"d_loss": [...], "g_loss": [...]}``.
    """
    owner = "train_stylegan"
    check_instance(model, "model", owner, StyleGenerator)
    check_instance(discriminator, "discriminator", owner, nn.Module)
    x = _as_images(x, model, owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(x))
    p_mix = check_float(p_mix, "p_mix", owner, low=0.0, high=1.0)
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    seed = check_int(seed, "seed", owner, minimum=0)

    def fakes(n: int, step: int, stream: int) -> torch.Tensor:
        draws = step_generator(seed, step, model.constant.device, stream=stream)
        ws, noise = mixed_batch(model, n, p_mix=p_mix, generator=draws)
        return model.synthesis(ws, noise)

    def d_loss(batch, step):
        real = batch[0]
        with torch.no_grad():
            fake = fakes(len(real), step, 0)
        return discriminator_loss(discriminator(real), discriminator(fake), kind="non_saturating")

    def g_loss(batch, step):
        return generator_loss(discriminator(fakes(len(batch[0]), step, 1)), kind="non_saturating")

    history = train_adversarial({"generator": model, "discriminator": discriminator}, (x,), d_loss=d_loss,
                                g_loss=g_loss, steps=steps, batch_size=batch_size, lr_d=lr, lr_g=lr, betas=betas,
                                seed=seed, device=device, callback=callback, checkpoint_path=checkpoint_path,
                                checkpoint_every=checkpoint_every, resume=resume, progress=progress)
    model.eval()
    return history


def digits_stylegan(config: StyleGANConfig | None = None, *, steps: int = 1500, batch_size: int = 64,
                    p_mix: float = 0.9, lr: float = 1e-3, d_width: int = 32, seed: int = 0,
                    device: str | torch.device = "auto") -> tuple[StyleGenerator, dict]:
    """A StyleGenerator trained on ``load_digits("train", seed=0)``, once per machine and settings (cached).

    Args:
        config: the generator's shape. Default: ``StyleGANConfig.digits()``.
        steps, batch_size, p_mix, lr: as :func:`train_stylegan` (β = (0, 0.99)). Defaults: 1500, 64, 0.9, 1e-3.
        d_width: the discriminator's width (``GANConfig.digits(width=...)``, batch norm on). Default: 32.
        seed: the initial weights (generator: seed, discriminator: seed + 1), the data order, every draw.
        device: where to train and where the model lives. Default: "auto".

    Returns:
        ``(model, record)``: the trained generator in eval mode and ``{"d_loss": [...], "g_loss": [...]}``.
    """
    from udl.data.images import load_digits

    owner = "digits_stylegan"
    config = StyleGANConfig.digits() if config is None else check_instance(config, "config", owner, StyleGANConfig)
    if (config.image_size, config.out_channels) != (8, 1):
        _refuse("config", owner, "a config of 8x8 one-channel images (the digits)",
                f"{config.image_size}x{config.image_size}, {config.out_channels} channels")
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner)
    p_mix = check_float(p_mix, "p_mix", owner, low=0.0, high=1.0)
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    d_width = check_int(d_width, "d_width", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    x_train, _ = load_digits("train", seed=0)
    settings = {"config": [config.d_latent, config.d_style, config.mapping_depth, list(config.channels)],
                "steps": steps, "batch_size": batch_size, "p_mix": p_mix, "lr": lr, "d_width": d_width,
                "seed": seed, "data": "digits-train-0"}

    def train(model):
        critic = DCGANDiscriminator(GANConfig.digits(width=d_width), generator=seed + 1)
        return train_stylegan(model, critic, x_train, steps=steps, batch_size=batch_size, p_mix=p_mix, lr=lr,
                              seed=seed, device=device)

    import udl.models.gan as gan_module
    import udl.train.gan as gan_train
    import udl.train.stylegan as this

    return trained("stylegan-digits", settings, lambda: StyleGenerator(config, generator=seed), train,
                   sources=[stylegan_module, gan_module, gan_train, this], device=device)
