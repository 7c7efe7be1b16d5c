"""Training denoisers for diffusion models (UDL §18.4-18.6), and the two that figure 18.1 shows.

A diffusion model's decoder is one network g[z_t, t] (or g[z_t, t, c]) that predicts the
noise ε in z_t = √ᾱ_t x + √(1 − ᾱ_t) ε. It is trained by least squares (algorithm 18.1):
each step takes a batch of data, gives every example its own step t (uniform in 1 … T) and
its own noise, and minimises :meth:`udl.models.diffusion.Diffusion.loss`. For
classifier-free guidance (§18.6.3) the label of a share ``p_uncond`` of the examples is
replaced by the null class, so the same network also learns the unconditional estimate.

The steps t, the noise and the dropped labels of training step s are drawn from a generator
seeded with ``(seed, s)``, s being a buffer of the objective: a run is a function of its
seed and resumes exactly from a checkpoint of :func:`udl.train.fit`. The optimiser is AdamW
without weight decay, a short warm-up and a cosine decay to lr/100
(:func:`udl.train.recipes.fit_adamw`): the late small steps average out the noise of the
loss, which a diffusion model's samples are sensitive to.

The figure's two models, trained once per machine and cached (:func:`udl.cache.trained`):

* :func:`mixture_denoiser`: an :class:`~udl.models.denoisers.MLPDenoiser` for 1-D data
  drawn from a mixture of Gaussians (:func:`standard_mixture`, mean 0 and variance 1, so
  that distances between samples are in units of the data's spread);
* :func:`digits_denoiser`: a class-conditional :class:`~udl.models.denoisers.DigitDenoiser`
  for the 8x8 digits, trained with label dropout; :func:`sample_digits` draws digits of
  chosen classes from it, with guidance.

Images are scaled from [0, 1] to [−1, 1] for the diffusion (the data then has about
the spread of the noise it is blended with) and back, clipped, after sampling.

Example::

    >>> process = Diffusion.linear(1000)
    >>> model, record = mixture_denoiser(standard_mixture(), steps=200)
    >>> x = process.sample_ddim(model, (1000, 1), n_steps=50, generator=0)    # 1-D samples, (1000, 1)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from udl.cache import trained
from udl.data.images import load_digits
from udl.models import denoisers as denoisers_module
from udl.models import diffusion as diffusion_module
from udl.models import mixture as mixture_module
from udl.models.denoisers import DigitDenoiser, MLPDenoiser
from udl.models.diffusion import Diffusion
from udl.models.mixture import MixtureOfGaussians
from udl.train.batches import mixed_seed
from udl.train.recipes import fit_adamw
from udl.validate import _refuse, as_generator, check_float, check_instance, check_int, check_sizes

__all__ = ["linear_process", "DenoisingLoss", "train_denoiser", "standard_mixture", "mixture_denoiser",
           "digits_to_signed", "signed_to_digits", "digits_denoiser", "sample_digits"]

# the 1-D data of fig. 18.1 before standardising: three bumps of unequal weight and width
MIXTURE_WEIGHTS = (0.3, 0.45, 0.25)
MIXTURE_MEANS = (-1.6, 0.2, 1.7)
MIXTURE_SDS = (0.35, 0.25, 0.45)



def linear_process(T: int = 1000) -> Diffusion:
    """Ho et al. (2020)'s linear schedule with β scaled by 1000 / T: β_t from 0.1 / T to 20 / T.

    At T = 1000 it is ``Diffusion.linear(1000)`` (β from 1e-4 to 0.02, to rounding); the sum
    of the β_t stays about 10 at any T, so ᾱ_T = Π (1 − β_t) ≈ e^−10 for many steps (less
    for a few large ones) and z_T is noise whatever the number of steps (T >= 21, where β_T < 1).
    """
    T = check_int(T, "T", "linear_process", minimum=21)
    return Diffusion.linear(T, 0.1 / T, 20.0 / T)


# --------------------------------------------------------------------------- the objective fit trains
class DenoisingLoss(nn.Module):
    """A denoiser and its diffusion process as one module: ``forward(x[, c])`` is the simple loss of the batch.

    The s-th call draws the steps t, the noise ε and the dropped labels from a generator
    seeded with ``(seed, s)``; s is the buffer ``step``, saved with the module's state.

    Args:
        model: the denoiser, ``model(z, t)`` or ``model(z, t, c)``.
        process: the :class:`~udl.models.diffusion.Diffusion` whose kernels make z_t.
        p_uncond: the share of labels replaced by the model's null class. Default: 0.
        seed: the seed of what is drawn. Default: 0.

    Example::

        >>> objective = DenoisingLoss(MLPDenoiser(1, generator=0), Diffusion.linear(100))
        >>> objective(torch.randn(8, 1)).shape
        torch.Size([])
    """

    def __init__(self, model: nn.Module, process: Diffusion, *, p_uncond: float = 0.0, seed: int = 0):
        super().__init__()
        owner = "DenoisingLoss"
        self.model = check_instance(model, "model", owner, nn.Module)
        self.process = check_instance(process, "process", owner, Diffusion)
        self.p_uncond = check_float(p_uncond, "p_uncond", owner, low=0.0, high=1.0, high_open=True)
        self.seed = check_int(seed, "seed", owner, minimum=0)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, int(self.step)))
        self.step += 1
        return self.process.loss(self.model, x, c, p_uncond=self.p_uncond if c is not None else 0.0,
                                 generator=generator)


def _as_data(x, owner: str, name: str = "x") -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or not (x.dtype.is_floating_point and not x.dtype.is_complex):
        _refuse(name, owner, "a float numpy array or torch.Tensor", type(x).__name__ if not isinstance(
            x, torch.Tensor) else f"dtype {x.dtype}", TypeError)
    if x.dim() < 2 or x.shape[0] == 0:
        _refuse(name, owner, "of shape (N, ...) with N > 0 and at least two dimensions", str(tuple(x.shape)))
    if not bool(torch.isfinite(x).all()):
        _refuse(name, owner, "finite values", "nan or inf")
    return x.float()


def train_denoiser(model: nn.Module, process: Diffusion, x, c=None, *, steps: int, batch_size: int = 128,
                   lr: float = 1e-3, p_uncond: float = 0.0, ema: float = 0.0, seed: int = 0,
                   device: str | torch.device = "auto", progress: bool | None = False) -> list[float]:
    """Fit a denoiser to data by the simple least-squares loss (algorithm 18.1); return the loss of every step.

    AdamW (no weight decay), a warm-up over the first 5% of the steps, then a half cosine
    down to lr/100, through :func:`udl.train.fit`; gradients clipped to norm 1. The model
    trains in place and is left in eval mode on ``device``.

    Args:
        model: the denoiser, ``model(z, t)`` (or ``model(z, t, c)`` with classes).
        process: the diffusion process (its schedule and T).
        x: the training data ``(N, ...)``, float (numpy or torch), in the scale the process blends with noise.
        c: None, or int classes ``(N,)`` for a conditional denoiser.
        steps: optimiser steps.
        batch_size: examples per step (at most N). Default: 128.
        lr: the peak learning rate. Default: 1e-3.
        p_uncond: the share of labels dropped to the null class (classifier-free guidance); needs ``c``.
            Default: 0.
        ema: the decay γ of an exponential moving average of the weights, φ̄ ← γ φ̄ + (1 − γ) φ after
            every step, which the model keeps at the end (Ho et al. 2020 use 0.9999): it averages out
            the noise of the last steps, to which samples are sensitive. 0: the last weights. Default: 0.
        seed: the batch order, the steps t, the noise and the dropped labels. Default: 0.
        device: where to train. Default: "auto".
        progress: a progress bar. Default: False.

    Returns:
        The loss of every step (mean squared error of the noise estimate, per entry).
    """
    owner = "train_denoiser"
    check_instance(model, "model", owner, nn.Module)
    check_instance(process, "process", owner, Diffusion)
    x = _as_data(x, owner)
    data = (x,)
    if c is not None:
        c = torch.as_tensor(c.cpu() if isinstance(c, torch.Tensor) else np.asarray(c))
        if c.dtype.is_floating_point or c.dtype == torch.bool or c.shape != (len(x),):
            _refuse("c", owner, f"None or {len(x)} int classes (one per example)",
                    f"dtype {c.dtype}" if c.shape == (len(x),) else f"shape {tuple(c.shape)}", TypeError)
        data = (x, c.long())
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(x))
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    p_uncond = check_float(p_uncond, "p_uncond", owner, low=0.0, high=1.0, high_open=True)
    if p_uncond > 0 and c is None:
        _refuse("p_uncond", owner, "0 when no classes c are given", f"{p_uncond:g}")
    seed = check_int(seed, "seed", owner, minimum=0)
    ema = check_float(ema, "ema", owner, low=0.0, high=1.0, high_open=True)
    objective = DenoisingLoss(model, process, p_uncond=p_uncond, seed=seed)
    average: list[torch.Tensor] = []

    def callback(step: int, loss: float, module: nn.Module) -> None:
        with torch.no_grad():
            weights = [p.detach() for p in model.parameters()]
            if not average:
                average.extend(w.clone() for w in weights)
            else:
                for mean, w in zip(average, weights):
                    mean.lerp_(w, 1.0 - ema)  # φ̄ ← γ φ̄ + (1 − γ) φ

    losses = fit_adamw(objective, data, None, steps=steps, lr=lr, weight_decay=0.0, floor=0.01,
                       warmup=max(1, steps // 20), batch_size=batch_size, seed=seed, device=device,
                       clip_grad_norm=1.0, progress=progress, callback=callback if ema > 0 else None)
    with torch.no_grad():
        for p, mean in zip(model.parameters(), average):
            p.copy_(mean)
    model.eval()
    return losses


# --------------------------------------------------------------------------- 1-D data
def standard_mixture(weights=MIXTURE_WEIGHTS, means=MIXTURE_MEANS, sds=MIXTURE_SDS) -> MixtureOfGaussians:
    """A 1-D mixture of Gaussians shifted and scaled to mean 0 and variance 1.

    With m = Σ λ_k μ_k and v = Σ λ_k (σ_k² + μ_k²) − m², component k becomes
    Norm[(μ_k − m)/√v, σ_k²/v]: the same shape, in units of its standard deviation.

    Args:
        weights, means, sds: λ, μ and σ of the components, K each (defaults: the three bumps of fig. 18.1).

    Returns:
        A :class:`~udl.models.mixture.MixtureOfGaussians` with D = 1, mean 0 and variance 1.
    """
    owner = "standard_mixture"
    values = {}
    for name, v in (("weights", weights), ("means", means), ("sds", sds)):
        try:
            values[name] = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            _refuse(name, owner, "a 1D sequence of floats", repr(v), TypeError)
        if values[name].ndim != 1 or values[name].size == 0 or not np.isfinite(values[name]).all():
            _refuse(name, owner, "a non-empty 1D sequence of finite floats", repr(v))
    lam, mu, sd = values["weights"], values["means"], values["sds"]
    for name, v in (("means", mu), ("sds", sd)):
        if len(v) != len(lam):
            _refuse(name, owner, f"{len(lam)} values, one per weight", f"{len(v)} values")
    if (sd <= 0).any() or (lam <= 0).any():
        _refuse("sds" if (sd <= 0).any() else "weights", owner, "positive values",
                repr((sd if (sd <= 0).any() else lam).tolist()))
    lam = lam / lam.sum()
    m = float(lam @ mu)
    v = float(lam @ (sd ** 2 + mu ** 2)) - m ** 2
    return MixtureOfGaussians(lam, (mu - m) / math.sqrt(v), sd ** 2 / v)


def _mixture_settings(mixture: MixtureOfGaussians) -> dict:
    return {"weights": mixture.weights.tolist(), "means": mixture.means[:, 0].tolist(),
            "variances": mixture.covariances[:, 0, 0].tolist()}


def mixture_denoiser(mixture: MixtureOfGaussians, *, T: int = 1000, n_train: int = 20_000, steps: int = 6000,
                     batch_size: int = 1024, lr: float = 3e-3, ema: float = 0.999, width: int = 128, depth: int = 3,
                     d_time: int = 32, seed: int = 0, device: str | torch.device = "auto") -> tuple[MLPDenoiser, dict]:
    """An :class:`~udl.models.denoisers.MLPDenoiser` for 1-D data, trained once per machine and settings.

    Draws ``n_train`` points from ``mixture`` (generator seeded with ``seed``) and trains by
    :func:`train_denoiser` under the linear schedule of Ho et al. (:func:`linear_process`).

    Args:
        mixture: a 1-D :class:`~udl.models.mixture.MixtureOfGaussians` (:func:`standard_mixture`).
        T: the diffusion steps. Default: 1000.
        n_train: training points. Default: 20,000.
        steps, batch_size, lr, ema: of :func:`train_denoiser`. Defaults: 6000, 1024, 3e-3, 0.999 (measured
            on three seeds: 50-step DDIM samples at Wasserstein-1 0.013-0.016 from held-out data, against
            0.031-0.058 with the last weights; with 4000 steps the average lags and over-disperses).
        width, depth, d_time: of the MLPDenoiser. Defaults: 128, 3, 32.
        seed: the training points, the initial weights and the training's random numbers. Default: 0.
        device: where to train and where the model lives. Default: "auto".

    Returns:
        ``(model, record)``: the trained denoiser in eval mode and ``{"losses": [...], "x_train": [...]}``
        (the training points, so that a figure can compare with them).
    """
    owner = "mixture_denoiser"
    check_instance(mixture, "mixture", owner, MixtureOfGaussians)
    if mixture.dim != 1:
        _refuse("mixture", owner, "a mixture in one dimension", f"D = {mixture.dim}")
    T = check_int(T, "T", owner)
    n_train = check_int(n_train, "n_train", owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=n_train)
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    ema = check_float(ema, "ema", owner, low=0.0, high=1.0, high_open=True)
    width, depth, d_time = (check_int(v, k, owner) for k, v in (("width", width), ("depth", depth),
                                                                 ("d_time", d_time)))
    seed = check_int(seed, "seed", owner, minimum=0)
    settings = {"mixture": _mixture_settings(mixture), "T": T, "n_train": n_train, "steps": steps,
                "batch_size": batch_size, "lr": lr, "ema": ema, "width": width, "depth": depth, "d_time": d_time,
                "seed": seed}

    def train(model: MLPDenoiser) -> dict:
        x, _ = mixture.sample(n_train, generator=torch.Generator().manual_seed(mixed_seed(seed, 1)))
        losses = train_denoiser(model, linear_process(T), x.float(), steps=steps, batch_size=batch_size, lr=lr,
                                ema=ema, seed=seed, device=device)
        return {"losses": losses, "x_train": x[:, 0].tolist()}

    import udl.train.diffusion as this

    return trained("diffusion-mixture-1d", settings, lambda: MLPDenoiser(1, width, depth, d_time, generator=seed),
                   train, sources=[diffusion_module, denoisers_module, mixture_module, this], device=device)


# --------------------------------------------------------------------------- digits
def digits_to_signed(images) -> torch.Tensor:
    """Images in [0, 1] to the diffusion's scale [−1, 1]: 2x − 1, as float32 ``(B, 1, 8, 8)``."""
    owner = "digits_to_signed"
    x = _as_data(images, owner, "images") if getattr(images, "ndim", 0) >= 2 else None
    if x is None or x[0].numel() != 64:
        _refuse("images", owner, "8x8 images (B, 64), (B, 8, 8) or (B, 1, 8, 8)",
                f"shape {tuple(images.shape)}" if hasattr(images, "shape") else type(images).__name__,
                ValueError if hasattr(images, "shape") else TypeError)
    return (2 * x - 1).reshape(len(x), 1, 8, 8)


def signed_to_digits(z: torch.Tensor) -> torch.Tensor:
    """Samples on the diffusion's scale back to images: (z + 1)/2 clipped to [0, 1], ``(B, 1, 8, 8)``."""
    check_instance(z, "z", "signed_to_digits", torch.Tensor)
    if z.dim() == 0 or len(z) == 0 or z[0].numel() != 64 or not z.dtype.is_floating_point:
        _refuse("z", "signed_to_digits", "a float tensor of 8x8 images (B, 1, 8, 8), (B, 8, 8) or (B, 64)",
                f"shape {tuple(z.shape)} of {z.dtype}")
    return ((z.float() + 1) / 2).clamp(0.0, 1.0).reshape(len(z), 1, 8, 8)


def digits_denoiser(*, T: int = 1000, steps: int = 1500, batch_size: int = 128, lr: float = 2e-3,
                    p_uncond: float = 0.1, channels: tuple[int, int] = (16, 32), d_embed: int = 32, groups: int = 8,
                    seed: int = 0, device: str | torch.device = "auto") -> tuple[DigitDenoiser, dict]:
    """A class-conditional :class:`~udl.models.denoisers.DigitDenoiser` trained on the digits, cached on disk.

    Trains on ``load_digits("train", seed=0)`` (the split every generative model of udl and
    the independent classifier of :mod:`udl.analysis.generative` use), scaled to [−1, 1],
    with the labels, a share ``p_uncond`` of them replaced by the null class at each step,
    under :func:`linear_process` (T).

    Args:
        T: the diffusion steps. Default: 1000.
        steps, batch_size, lr, p_uncond: of :func:`train_denoiser`. Defaults: 1500, 128, 2e-3, 0.1.
        channels, d_embed, groups: of the DigitDenoiser. Defaults: (16, 32), 32, 8.
        seed: the initial weights and the training's random numbers. Default: 0.
        device: where to train and where the model lives. Default: "auto".

    Returns:
        ``(model, record)``: the trained denoiser in eval mode and ``{"losses": [...]}``.
    """
    owner = "digits_denoiser"
    T = check_int(T, "T", owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner)
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    p_uncond = check_float(p_uncond, "p_uncond", owner, low=0.0, high=1.0, low_open=True, high_open=True)
    channels = check_sizes(channels, "channels", owner, min_len=2)
    d_embed, groups = check_int(d_embed, "d_embed", owner), check_int(groups, "groups", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    settings = {"T": T, "steps": steps, "batch_size": batch_size, "lr": lr, "p_uncond": p_uncond,
                "channels": list(channels), "d_embed": d_embed, "groups": groups, "seed": seed,
                "data": "digits-train-0"}

    def build() -> DigitDenoiser:
        return DigitDenoiser(10, tuple(channels), d_embed, groups, generator=seed)

    def train(model: DigitDenoiser) -> dict:
        x, y = load_digits("train", seed=0)
        losses = train_denoiser(model, linear_process(T), digits_to_signed(x), torch.from_numpy(y), steps=steps,
                                batch_size=batch_size, lr=lr, p_uncond=p_uncond, seed=seed, device=device)
        return {"losses": losses}

    import udl.train.diffusion as this

    return trained("diffusion-digits", settings, build, train, sources=[diffusion_module, denoisers_module, this],
                   device=device)


def sample_digits(model: nn.Module, process: Diffusion, classes, *, guidance: float = 1.0, n_steps: int | None = 50,
                  generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Digits of the classes asked for, from a class-conditional denoiser with classifier-free guidance.

    Args:
        model: a conditional denoiser with a ``null_class`` (:func:`digits_denoiser`).
        process: the diffusion process it was trained under.
        classes: one int class per image, a sequence or tensor ``(B,)``.
        guidance: w of ``(1 + w) g[z, t, c] − w g[z, t, ∅]``; 0: no guidance. Default: 1.
        n_steps: DDIM with this many steps (deterministic given z_T); None: ancestral
            sampling with all T steps. Default: 50.
        generator: a ``torch.Generator`` or an int seed for z_T (and the ancestral noise).

    Returns:
        Images ``(B, 1, 8, 8)`` in [0, 1] on the CPU.
    """
    owner = "sample_digits"
    check_instance(model, "model", owner, nn.Module)
    check_instance(process, "process", owner, Diffusion)
    c = torch.as_tensor(classes.cpu() if isinstance(classes, torch.Tensor) else np.asarray(classes))
    if c.dtype.is_floating_point or c.dtype == torch.bool or c.dim() != 1 or len(c) == 0:
        _refuse("classes", owner, "a non-empty 1D sequence of int classes", f"{c.dtype} of shape {tuple(c.shape)}",
                TypeError if c.dtype.is_floating_point or c.dtype == torch.bool else ValueError)
    guidance = check_float(guidance, "guidance", owner, low=0.0)
    generator = as_generator(generator, owner)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    c = c.long().to(device)
    shape = (len(c), 1, 8, 8)
    if n_steps is None:
        z = process.sample_ddpm(model, shape, c, guidance=guidance, generator=generator)
    else:
        n_steps = check_int(n_steps, "n_steps", owner, maximum=process.T)
        z = process.sample_ddim(model, shape, c, n_steps=n_steps, guidance=guidance, generator=generator)
    return signed_to_digits(z).cpu()
