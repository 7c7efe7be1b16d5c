"""Training a CycleGAN (UDL §15.4.4, fig. 15.18; Zhu et al. 2017) on :func:`udl.train.gan.train_adversarial`.

Two translators, g (A → B) and g' (B → A) (:class:`udl.models.cyclegan.CycleGAN`), and two
discriminators, f_A (real A images vs g'[b]) and f_B (real B images vs g[a]), trained
against each other from *unpaired* batches: a batch of A images and a batch of B images
that have nothing to do with each other. Each step of the alternating loop:

- the discriminators' update: the GAN loss of each, on real images of its domain and
  translations into it (the translators run without gradients)::

      L[φ_A, φ_B] = D-loss(f_A[a], f_A[g'[b]]) + D-loss(f_B[b], f_B[g[a]])

- the translators' update: fool both discriminators, and keep what the adversarial terms
  cannot see, the content (:meth:`udl.models.cyclegan.CycleGAN.losses`)::

      L[θ, θ'] = G-loss(f_B[g[a]]) + G-loss(f_A[g'[b]])
                 + λ_cyc L_cyc + λ_id L_id + λ_content L_content

  with Zhu et al.'s weights λ_cyc = 10, λ_id = 5 (half of λ_cyc) by default, and the
  book's content term off (λ_content = 0).

:func:`digits_cyclegan` is the CycleGAN of figure 15.18, between plain and bold digits
(:func:`udl.data.digit_styles.digit_domains`), trained once per machine and cached.
:func:`train_domain_classifier` fits the judge of "is this image plain or bold?" that the
figure applies to translated images: a DCGAN discriminator trained as an ordinary
classifier on real images of both domains.

Example::

    >>> from udl.data.digit_styles import digit_domains
    >>> d = digit_domains()
    >>> model = CycleGAN("tiny", generator=0)
    >>> history = train_cyclegan(model, domain_discriminator(4, generator=1), domain_discriminator(4, generator=2),
    ...                          d.a, d.b, steps=5, batch_size=16, device="cpu")
    >>> sorted(history)
    ['cycle', 'd_loss', 'g_loss', 'identity']
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from udl.cache import trained
from udl.data.digit_styles import MAX_WIDTH
from udl.models import cyclegan as cyclegan_module
from udl.models.cyclegan import CycleGAN, CycleGANConfig
from udl.models.gan import DCGANDiscriminator, GANConfig
from udl.nn.adversarial import GAN_LOSSES, discriminator_loss, generator_loss, gradient_penalty
from udl.train.gan import step_generator, train_adversarial
from udl.validate import _refuse, check_choice, check_float, check_instance, check_int

__all__ = ["domain_discriminator", "train_cyclegan", "digits_cyclegan", "train_domain_classifier"]


def domain_discriminator(width: int = 16, *, image_size: int = 8, channels: int = 1, batch_norm: bool = True,
                         generator: torch.Generator | int | None = None) -> DCGANDiscriminator:
    """A discriminator for one domain: DCGAN's (:class:`udl.models.gan.DCGANDiscriminator`), one logit per image.

    Args:
        width: its first layer's channels (doubled at each halving). Default: 16.
        image_size: S, a power of 2 at least 4. Default: 8 (udl's digits).
        channels: C. Default: 1.
        batch_norm: batch normalisation in the strided convolutions (off for a gradient
            penalty). Default: True.
        generator: the initial weights: a ``torch.Generator`` or an int seed. Default: None.

    Shape:
        ``(B, C, S, S) -> (B,)``.
    """
    config = GANConfig(d_latent=1, image_size=image_size, channels=channels, width=width, d_batch_norm=batch_norm)
    return DCGANDiscriminator(config, generator=generator)


def _as_images(x, name: str, owner: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        _refuse(name, owner, "a float tensor of images (N, C, H, W)", type(x).__name__ if not isinstance(
            x, torch.Tensor) else f"dtype {x.dtype}", TypeError)
    if x.dim() != 4 or len(x) == 0:
        _refuse(name, owner, "a float tensor of images (N, C, H, W) with N > 0", f"shape {tuple(x.shape)}")
    return x


def _same_count(x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets at the larger count, the smaller one repeated cyclically (rows are paired by position only)."""
    n = max(len(x_a), len(x_b))
    tile = lambda x: x[torch.arange(n) % len(x)]  # noqa: E731
    return tile(x_a), tile(x_b)


def train_cyclegan(model: CycleGAN, discriminator_a: nn.Module, discriminator_b: nn.Module, x_a: torch.Tensor,
                   x_b: torch.Tensor, *, loss: str = "non_saturating", cycle_weight: float = 10.0,
                   identity_weight: float = 5.0, content_weight: float = 0.0, gp_weight: float = 10.0, steps: int,
                   batch_size: int = 64, lr_d: float = 2e-4, lr_g: float = 2e-4,
                   betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1, seed: int = 0,
                   device: str | torch.device = "auto", callback: Callable[[int, dict, dict], None] | None = None,
                   checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                   resume: bool | str | os.PathLike = False, progress: bool | None = False) -> dict[str, list[float]]:
    """Fit a CycleGAN's two translators to unpaired images of two domains, against two discriminators.

    Each batch holds ``batch_size`` images of A and ``batch_size`` images of B, drawn
    independently: ``x_a`` and ``x_b`` are paired only by position in the loop's data tuple,
    so that pairing means nothing (when their counts differ the smaller set is repeated).

    Args:
        model: the :class:`udl.models.cyclegan.CycleGAN`; trained in place, left in eval mode.
        discriminator_a: f_A, real A images vs g'[b] (images -> one logit each, or a map of logits).
        discriminator_b: f_B, real B images vs g[a].
        x_a: images of domain A, ``(N_a, C, H, W)`` in [0, 1].
        x_b: images of domain B, ``(N_b, C, H, W)``; no image of it need correspond to one of x_a.
        loss: the GAN loss, one of :data:`udl.nn.adversarial.GAN_LOSSES`. Default: "non_saturating".
        cycle_weight: λ_cyc. Default: 10 (Zhu et al.).
        identity_weight: λ_id. Default: 5 (Zhu et al.: half of λ_cyc).
        content_weight: λ_content, the book's content loss. Default: 0.
        gp_weight: the gradient penalty's λ for ``loss="wasserstein"``. Default: 10.
        steps, batch_size, lr_d, lr_g, betas, n_critic, seed, device, callback,
        checkpoint_path, checkpoint_every, resume, progress: as
        :func:`udl.train.gan.train_adversarial` (the translators are its generator,
        the two discriminators its discriminator; batch_size default 64).

    Returns:
        ``{"d_loss", "g_loss"}`` of every step, and ``"cycle"`` and ``"identity"`` (L_cyc and
        L_id of the translators' update) of the steps this call ran.
    """
    owner = "train_cyclegan"
    check_instance(model, "model", owner, CycleGAN)
    check_instance(discriminator_a, "discriminator_a", owner, nn.Module)
    check_instance(discriminator_b, "discriminator_b", owner, nn.Module)
    x_a, x_b = _as_images(x_a, "x_a", owner), _as_images(x_b, "x_b", owner)
    if x_b.shape[1:] != x_a.shape[1:]:
        _refuse("x_b", owner, f"images of the shape of x_a's, {tuple(x_a.shape[1:])}", f"{tuple(x_b.shape[1:])}")
    check_choice(loss, "loss", owner, GAN_LOSSES)
    weights = {name: check_float(value, name, owner, low=0.0) for name, value in (
        ("cycle_weight", cycle_weight), ("identity_weight", identity_weight), ("content_weight", content_weight),
        ("gp_weight", gp_weight))}
    seed = check_int(seed, "seed", owner, minimum=0)
    penalty = loss == "wasserstein" and weights["gp_weight"] > 0
    terms: dict[str, list[float]] = {"cycle": [], "identity": []}

    def d_loss(batch, d_step):
        a, b = batch
        with torch.no_grad():
            fake_b, fake_a = model(a, b)
        value = (discriminator_loss(discriminator_a(a), discriminator_a(fake_a), kind=loss)
                 + discriminator_loss(discriminator_b(b), discriminator_b(fake_b), kind=loss))
        if penalty:
            rng = step_generator(seed, d_step, a.device, stream=0)
            value = value + weights["gp_weight"] * (gradient_penalty(discriminator_a, a, fake_a, generator=rng)
                                                    + gradient_penalty(discriminator_b, b, fake_b, generator=rng))
        return value

    def g_loss(batch, step):
        a, b = batch
        parts = model.losses(a, b)
        terms["cycle"].append(float(parts["cycle"].detach()))
        terms["identity"].append(float(parts["identity"].detach()))
        adversarial = (generator_loss(discriminator_b(parts["fake_b"]), kind=loss)
                       + generator_loss(discriminator_a(parts["fake_a"]), kind=loss))
        return (adversarial + weights["cycle_weight"] * parts["cycle"] + weights["identity_weight"] * parts["identity"]
                + weights["content_weight"] * parts["content"])

    d_params = [*discriminator_a.parameters(), *discriminator_b.parameters()]
    history = train_adversarial({"generator": model, "discriminator_a": discriminator_a,
                                 "discriminator_b": discriminator_b}, _same_count(x_a, x_b), d_loss=d_loss,
                                g_loss=g_loss, d_params=d_params, steps=steps, batch_size=batch_size, lr_d=lr_d,
                                lr_g=lr_g, betas=betas, n_critic=n_critic, seed=seed, device=device,
                                callback=callback, checkpoint_path=checkpoint_path,
                                checkpoint_every=checkpoint_every, resume=resume, progress=progress)
    model.eval()
    return {**history, **terms}


def digits_cyclegan(*, width: int = 16, n_blocks: int = 2, discriminator_width: int = 16, steps: int = 600,
                    batch_size: int = 64, bold_width: int = 2, seed: int = 0,
                    device: str | torch.device = "auto") -> tuple[CycleGAN, dict]:
    """A CycleGAN between plain and bold digits, trained once per machine and settings (cached on disk).

    Domains from :func:`udl.data.digit_styles.digit_domains` (``width=bold_width``,
    ``seed=seed``): A is half of the training digits, B the other half in bold. Trained by
    :func:`train_cyclegan` with its defaults (non-saturating loss, λ_cyc = 10, λ_id = 5).

    Args:
        width: the translators' channels. Default: 16.
        n_blocks: their residual blocks. Default: 2.
        discriminator_width: the discriminators' first channels. Default: 16.
        steps: training steps. Default: 600.
        batch_size: images of each domain per step. Default: 64.
        bold_width: the bold line's length (:func:`udl.data.digit_styles.embolden`). Default: 2.
        seed: the initial weights, the halving of the digits and the batch order. Default: 0.
        device: where to train and where the model lives. Default: "auto".

    Returns:
        ``(model, record)``: the trained CycleGAN in eval mode, and ``{"d_loss", "g_loss",
        "cycle", "identity"}``, the losses of every step.
    """
    from udl.data import digit_styles
    from udl.data.digit_styles import digit_domains

    owner = "digits_cyclegan"
    config = CycleGANConfig.digits(width=check_int(width, "width", owner),
                                   n_blocks=check_int(n_blocks, "n_blocks", owner, minimum=0))
    discriminator_width = check_int(discriminator_width, "discriminator_width", owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner)
    bold_width = check_int(bold_width, "bold_width", owner, maximum=MAX_WIDTH)
    seed = check_int(seed, "seed", owner, minimum=0)
    domains = digit_domains(width=bold_width, seed=seed)
    settings = {"config": [config.channels, config.width, config.n_blocks], "discriminator_width": discriminator_width,
                "steps": steps, "batch_size": batch_size, "bold_width": bold_width, "seed": seed}

    def train(model):
        return train_cyclegan(model, domain_discriminator(discriminator_width, generator=seed + 1),
                              domain_discriminator(discriminator_width, generator=seed + 2), domains.a, domains.b,
                              steps=steps, batch_size=batch_size, seed=seed, device=device)

    import udl.models.gan as gan_module
    import udl.train.cyclegan as this
    import udl.train.gan as loop_module

    return trained("cyclegan-digits", settings, lambda: CycleGAN(config, generator=seed), train,
                   sources=[cyclegan_module, gan_module, loop_module, digit_styles, this], device=device)


def train_domain_classifier(x_a: torch.Tensor, x_b: torch.Tensor, *, width: int = 8, steps: int = 300,
                            batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                            device: str | torch.device = "auto") -> nn.Module:
    """A classifier of domains: one logit per image, > 0 for "domain B", fitted to real images of both.

    A :func:`domain_discriminator` without batch normalisation, trained as an ordinary
    classifier (binary cross-entropy, label 0 for A and 1 for B) with AdamW through
    :func:`udl.train.recipes.fit_adamw`. It is the judge of "translated into the target
    domain": it never sees a translation while it learns.

    Args:
        x_a: images of domain A, ``(N_a, C, S, S)``. x_b: images of domain B, ``(N_b, C, S, S)``.
        width: the network's first channels. Default: 8.
        steps: optimiser steps. Default: 300.
        batch_size: images per step (at most N_a + N_b). Default: 64.
        lr: the peak learning rate. Default: 2e-3.
        seed: the initial weights and the batch order. Default: 0.
        device: where to train. Default: "auto".

    Returns:
        the trained network in eval mode, on ``device``; ``(B, C, S, S) -> (B,)`` logits.
    """
    from udl.train.recipes import fit_adamw

    owner = "train_domain_classifier"
    x_a, x_b = _as_images(x_a, "x_a", owner), _as_images(x_b, "x_b", owner)
    if x_b.shape[1:] != x_a.shape[1:]:
        _refuse("x_b", owner, f"images of the shape of x_a's, {tuple(x_a.shape[1:])}", f"{tuple(x_b.shape[1:])}")
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(x_a) + len(x_b))
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    seed = check_int(seed, "seed", owner, minimum=0)
    net = domain_discriminator(check_int(width, "width", owner), image_size=x_a.shape[-1], channels=x_a.shape[1],
                               batch_norm=False, generator=seed)
    x = torch.cat([x_a, x_b])
    y = torch.cat([torch.zeros(len(x_a)), torch.ones(len(x_b))])  # 1: domain B
    fit_adamw(net, (x, y), nn.functional.binary_cross_entropy_with_logits, steps=steps, lr=lr, weight_decay=0.0,
              floor=0.1, batch_size=batch_size, seed=seed, device=device, progress=False)
    return net.eval()
