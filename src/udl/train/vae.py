"""Training a variational autoencoder (UDL §17.6-17.7): maximise the ELBO by stochastic gradient ascent.

Each step takes a batch of images, encodes each to q(z | x) = Norm[μ, diag σ²], draws one
z = μ + σ ⊙ ε per image (the reparameterisation trick, §17.7), and minimises the
negative ELBO averaged over the batch, in nats per image:

    L[θ, φ] = −(1/B) Σ_i ( log Pr(x_i | z_i, φ) − D_KL[q(z | x_i, θ) ‖ Norm[0, I]] ).

The noise of step s is drawn from a generator seeded with ``(seed, s)``, the step being a
buffer of the objective, so the run is a function of its seed (and resumes exactly from
a checkpoint of :func:`udl.train.fit`). The optimiser is AdamW without weight decay, a
short warm-up and a cosine decay (:func:`udl.train.recipes.fit_adamw`).

:func:`digits_vae` is the VAE that figure 17.vae shows: trained once per machine on the
training digits and cached (:func:`udl.cache.trained`).

Example::

    >>> from udl.data.images import load_digits
    >>> x_train, _ = load_digits("train")
    >>> model = VAE(VAEConfig.digits(d_latent=2), generator=0)
    >>> losses = train_vae(model, x_train, steps=200, device="cpu")
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from udl.cache import trained
from udl.models import vae as vae_module
from udl.models.vae import VAE, VAEConfig
from udl.train.batches import mixed_seed
from udl.train.recipes import fit_adamw
from udl.validate import _refuse, check_float, check_instance, check_int

__all__ = ["NegativeELBO", "train_vae", "digits_vae"]



class NegativeELBO(nn.Module):
    """A VAE and its training loss as one module: ``forward(x)`` is −mean ELBO of the batch, in nats per image.

    The noise ε of the s-th call is drawn from a generator seeded with ``(seed, s)``; s is
    the buffer ``step``, saved with the module's state (checkpoints resume exactly).

    Args:
        model: the :class:`udl.models.vae.VAE` to train.
        seed: the seed of the noise. Default: 0.
    """

    def __init__(self, model: VAE, seed: int = 0):
        super().__init__()
        self.model = check_instance(model, "model", "NegativeELBO", VAE)
        self.seed = check_int(seed, "seed", "NegativeELBO", minimum=0)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, int(self.step)))
        self.step += 1
        return -self.model.elbo(x, generator=generator).mean()


def _as_images(x, d_in: int, owner: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        _refuse("x", owner, "a numpy array or torch.Tensor", type(x).__name__, TypeError)
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] != d_in:
        _refuse("x", owner, f"of shape (N, {d_in}) with N > 0", str(tuple(x.shape)))
    x = x.float()
    if not bool(((x >= 0) & (x <= 1)).all()):
        _refuse("x", owner, "images with values in [0, 1]", f"values in [{float(x.min()):g}, {float(x.max()):g}]")
    return x


def train_vae(model: VAE, x, *, steps: int = 4000, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
              device: str | torch.device = "auto", progress: bool | None = False) -> list[float]:
    """Fit ``model`` to the rows of ``x`` by maximising the ELBO; return −ELBO (nats per image) of every step.

    AdamW (no weight decay), a warm-up over the first 5% of the steps, then a half cosine
    down to lr/10, through :func:`udl.train.fit`. The model trains in place and is left in
    eval mode on ``device``.

    Args:
        model: a :class:`udl.models.vae.VAE`.
        x: the training images, ``(N, D)`` in [0, 1] (numpy or torch).
        steps: optimiser steps. Default: 4000.
        batch_size: images per step (at most N). Default: 128.
        lr: the peak learning rate. Default: 2e-3.
        seed: the batch order and the noise ε. Default: 0.
        device: where to train. Default: "auto".
        progress: a progress bar. Default: False.

    Returns:
        The loss of every step.
    """
    owner = "train_vae"
    check_instance(model, "model", owner, VAE)
    x = _as_images(x, model.config.d_in, owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(x))
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    seed = check_int(seed, "seed", owner, minimum=0)
    objective = NegativeELBO(model, seed)
    losses = fit_adamw(objective, (x,), None, steps=steps, lr=lr, weight_decay=0.0, floor=0.1,
                       warmup=max(1, steps // 20), batch_size=batch_size, seed=seed, device=device,
                       progress=progress)
    model.eval()
    return losses


def digits_vae(d_latent: int = 8, *, steps: int = 6000, hidden: tuple[int, ...] = (256, 128), seed: int = 0,
               device: str | torch.device = "auto") -> tuple[VAE, dict]:
    """A VAE trained on ``load_digits("train", seed=0)``, once per machine and settings (cached on disk).

    Args:
        d_latent: D_z. Default: 8.
        steps: training steps of :func:`train_vae` (batches of 128). Default: 6000.
        hidden: the encoder's hidden widths. Default: (256, 128).
        seed: the initial weights, the batch order and the noise. Default: 0.
        device: where to train and where the model lives. Default: "auto".

    Returns:
        ``(model, record)``: the trained VAE in eval mode and ``{"losses": [...]}``.
    """
    from udl.data.images import load_digits

    owner = "digits_vae"
    config = VAEConfig.digits(d_latent=check_int(d_latent, "d_latent", owner), hidden=tuple(hidden))
    steps = check_int(steps, "steps", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    x_train, _ = load_digits("train", seed=0)
    settings = {"config": [config.d_in, list(config.hidden), config.d_latent, config.likelihood, config.n_trials],
                "steps": steps, "seed": seed, "data": "digits-train-0"}

    def train(model):
        return {"losses": train_vae(model, x_train, steps=steps, seed=seed, device=device)}

    import udl.train.vae as this

    return trained(f"vae-digits-z{config.d_latent}", settings, lambda: VAE(config, generator=seed), train,
                   sources=[vae_module, this], device=device)
