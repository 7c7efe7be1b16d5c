"""Training GANs (UDL §15.1-15.2): the one alternating loop, and the plain and conditional recipe on it.

Each step of :func:`train_adversarial` first takes ``n_critic`` discriminator updates and
then one generator update, each an Adam step on its own parameters (DCGAN's settings by
default: learning rate 2·10⁻⁴, β = (0.5, 0.999)):

    for k = 1..n_critic:  φ ← φ − Adam(∂L[φ]/∂φ)     L[φ] = d_loss(batch, d_step)
                          θ ← θ − Adam(∂L[θ]/∂θ)     L[θ] = g_loss(batch, step)

The losses are closures that the recipes write (:func:`train_gan` is the example), so
every GAN of chapter 15 (conditional, Pix2Pix, CycleGAN, ...) trains in this loop:

- ``d_loss(batch, d_step)`` returns the discriminator's loss; it must not train the
  generator, so it calls the generator under ``torch.no_grad()`` or ``.detach()``-es its
  samples (the loop zeroes the discriminator's gradients before and steps only the
  discriminator's parameters, but a graph through the generator would be wasted work).
  ``d_step`` counts discriminator updates from 1: with ``n_critic = 1`` it is the step.
- ``g_loss(batch, step)`` returns the generator's loss; the discriminator's parameters are
  frozen (``requires_grad=False``) while it runs, so its backward pass reaches only the
  generator's.

Each discriminator update draws the next batch of the data; the generator update reuses
the last one (so Pix2Pix-like losses see the inputs of the batch the discriminator just
saw). The data order is a function of ``(seed, epoch)`` (:mod:`udl.train.batches`), and
latents drawn inside the closures come from :func:`step_generator`, seeded from
``(seed, step)``, so a run resumed from a checkpoint ends with exactly the weights of an
uninterrupted one (on the CPU, bit for bit).

Example::

    >>> gan = GAN(MLPGenerator(2, 2, (16,), generator=0), MLPDiscriminator(2, (16,), generator=1), 2)
    >>> history = train_gan(gan, torch.randn(256, 2), steps=20, batch_size=32, device="cpu")
    >>> len(history["d_loss"]), len(history["g_loss"])
    (20, 20)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from udl.devices import resolve_device, using_cpu_threads
from udl.models.gan import GAN
from udl.nn.adversarial import GAN_LOSSES, discriminator_loss, generator_loss, gradient_penalty
from udl.train.batches import batch_stream, mixed_seed
from udl.train.checkpoint import (check_resumable, check_same_shapes, check_writable, load_checkpoint, rng_state,
                                  save_checkpoint, set_rng_state)
from udl.train.loop import LossNotFiniteError
from udl.validate import _refuse, check_callable, check_choice, check_float, check_instance, check_int

__all__ = ["step_generator", "train_adversarial", "train_gan", "discriminator_accuracy"]




def step_generator(seed: int, step: int, device: str | torch.device = "cpu", *,
                   stream: int = 0) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``(seed, step, stream)``: the latents of one step.

    Closures of :func:`train_adversarial` draw their latents (and the α of a gradient
    penalty) from it, so what step s draws does not depend on the steps before: a resumed
    run draws what an uninterrupted one would. Use another ``stream`` for each closure
    (0 for the discriminator, 1 for the generator) so their draws differ.

    Args:
        seed: the run's seed, a non-negative int.
        step: the step (or discriminator update) counted from 1, a non-negative int.
        device: where the generator draws ("cpu", "cuda" or a torch.device). Default: "cpu".
        stream: which closure draws, a non-negative int. Default: 0.

    Example::

        >>> a = torch.randn(3, generator=step_generator(0, 5))
        >>> bool((a == torch.randn(3, generator=step_generator(0, 5))).all())
        True
    """
    owner = "step_generator"
    seed = check_int(seed, "seed", owner, minimum=0)
    step = check_int(step, "step", owner, minimum=0)
    stream = check_int(stream, "stream", owner, minimum=0)
    device = resolve_device(device, owner)
    return torch.Generator(device=device).manual_seed(mixed_seed(seed, step, stream))


# --------------------------------------------------------------------------- the loop
def train_adversarial(modules: dict[str, nn.Module], data: tuple[torch.Tensor, ...], *,
                      d_loss: Callable[[tuple[torch.Tensor, ...], int], torch.Tensor],
                      g_loss: Callable[[tuple[torch.Tensor, ...], int], torch.Tensor],
                      d_params: Iterable[nn.Parameter] | None = None,
                      g_params: Iterable[nn.Parameter] | None = None,
                      steps: int, batch_size: int, lr_d: float = 2e-4, lr_g: float = 2e-4,
                      betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1, seed: int = 0,
                      device: str | torch.device = "auto",
                      callback: Callable[[int, dict, dict], None] | None = None,
                      checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                      resume: bool | str | os.PathLike = False, progress: bool | None = None) -> dict[str, list[float]]:
    """Train a discriminator and a generator against each other; return both losses of every step.

    Args:
        modules: the networks that train, by name, e.g. ``{"generator": G, "discriminator": D}``;
            each is moved to ``device`` in place and put in train mode at every step, and all
            are saved in checkpoints.
        data: a tuple of tensors with the same first dimension (images; images and classes;
            inputs and targets), kept where they are; each batch is moved to ``device``.
        d_loss: ``d_loss(batch, d_step)`` -> the discriminator's scalar loss (generator
            outputs detached by the closure); ``d_step`` counts discriminator updates from 1.
        g_loss: ``g_loss(batch, step)`` -> the generator's scalar loss.
        d_params: the parameters the discriminator updates change. Default:
            ``modules["discriminator"].parameters()``.
        g_params: those the generator updates change (two generators, a Q head...). Default:
            ``modules["generator"].parameters()``.
        steps: generator updates, in total (those before a resume included).
        batch_size: examples per batch, at most the number of examples.
        lr_d, lr_g: Adam's learning rates. Default: 2e-4 each (DCGAN).
        betas: Adam's (β₁, β₂) for both. Default: (0.5, 0.999) (DCGAN).
        n_critic: discriminator updates per generator update (5 for WGAN-GP). Default: 1.
        seed: the data order (and, through :func:`step_generator`, the closures' draws). Default: 0.
        device: "auto", "cpu", "cuda" or a torch.device. Default: "auto".
        callback: ``callback(step, history, modules)`` after each step (figures take
            snapshots). Default: None.
        checkpoint_path: where to save every module, both optimizers, the step, the data
            position, the random states and the history (atomically); written at the end
            and every ``checkpoint_every`` steps. Default: None.
        checkpoint_every: steps between checkpoints. Default: None (only at the end).
        resume: True continues from ``checkpoint_path`` if it exists; a path continues from
            that file. The run must have the same steps, batch size, seed, n_critic, data
            size and modules. Default: False.
        progress: a tqdm bar; None shows it only on a terminal. Default: None.

    Returns:
        ``{"d_loss": [...], "g_loss": [...]}``, one value per step: the mean discriminator
        loss of its ``n_critic`` updates, and the generator loss.

    Raises:
        TypeError, ValueError: a bad argument, before the first step.
        LossNotFiniteError: a loss became nan or inf (its ``losses`` hold the generator
            losses of the steps before).
    """
    owner = "train_adversarial"
    if not isinstance(modules, dict) or not modules or not all(
            isinstance(k, str) and isinstance(m, nn.Module) for k, m in modules.items()):
        _refuse("modules", owner, "a non-empty dict of name -> nn.Module", repr(modules)[:80], TypeError)
    if not (isinstance(data, tuple) and data and all(isinstance(t, torch.Tensor) for t in data)
            and len({len(t) for t in data}) == 1):
        _refuse("data", owner, "a tuple of tensors with the same first dimension", type(data).__name__, TypeError)
    check_callable(d_loss, "d_loss", owner)
    check_callable(g_loss, "g_loss", owner)
    d_params = _parameters(d_params, modules, "discriminator", "d_params", owner)
    g_params = _parameters(g_params, modules, "generator", "g_params", owner)
    steps = check_int(steps, "steps", owner)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(data[0]))
    lr_d = check_float(lr_d, "lr_d", owner, low=0.0, low_open=True)
    lr_g = check_float(lr_g, "lr_g", owner, low=0.0, low_open=True)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        _refuse("betas", owner, "a pair (β₁, β₂) in [0, 1)", repr(betas))
    betas = tuple(check_float(b, "betas", owner, low=0.0, high=1.0, high_open=True) for b in betas)
    n_critic = check_int(n_critic, "n_critic", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    check_callable(callback, "callback", owner, optional=True)
    if checkpoint_every is not None:
        check_int(checkpoint_every, "checkpoint_every", owner)
    if checkpoint_path is not None:
        check_writable(checkpoint_path, "checkpoint_path", owner)
    elif resume is True:
        _refuse("resume", owner, "a path, or False when checkpoint_path is None", "True")
    if not isinstance(resume, (bool, str, os.PathLike)):
        _refuse("resume", owner, "a bool or a path", repr(resume), TypeError)
    for k, t in enumerate(data):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            _refuse("data", owner, "finite numbers", f"nan or inf in data[{k}]")
    with using_cpu_threads():
        return _train(modules, data, d_loss, g_loss, d_params, g_params, steps, batch_size, lr_d, lr_g, betas,
                      n_critic, seed, device, callback, checkpoint_path, checkpoint_every, resume, progress)


def _parameters(params, modules: dict, key: str, name: str, owner: str) -> list[nn.Parameter]:
    """The given parameters as a list, or those of ``modules[key]``."""
    if params is None:
        if key not in modules:
            _refuse(name, owner, f"given when modules has no {key!r}", "None")
        params = modules[key].parameters()
    if isinstance(params, (torch.Tensor, str)) or not isinstance(params, Iterable):
        _refuse(name, owner, "an iterable of parameters", type(params).__name__, TypeError)
    params = list(params)
    if not params or not all(isinstance(p, nn.Parameter) for p in params):
        _refuse(name, owner, "a non-empty iterable of parameters", f"{len(params)} items", TypeError)
    return params


def _train(modules, data, d_loss, g_loss, d_params, g_params, steps, batch_size, lr_d, lr_g, betas, n_critic,
           seed, device, callback, checkpoint_path, checkpoint_every, resume, progress) -> dict[str, list[float]]:
    """The body of :func:`train_adversarial`, its arguments already checked."""
    for m in modules.values():
        m.to(device)  # in place: the parameter objects (and so d_params, g_params) stay the same
    d_opt = torch.optim.Adam(d_params, lr=lr_d, betas=betas)
    g_opt = torch.optim.Adam(g_params, lr=lr_g, betas=betas)
    settings = {"steps": steps, "batch_size": batch_size, "seed": seed, "n_critic": n_critic,
                "len(data)": len(data[0]), "modules": sorted(modules)}
    step, epoch, consumed = 0, 0, 0
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    if resume is True:
        resume = checkpoint_path if Path(checkpoint_path).exists() else False
    if resume:
        state = _resumable(resume, settings, modules)
        for name, m in modules.items():
            m.load_state_dict(state["modules"][name])
        d_opt.load_state_dict(state["d_optimizer"])
        g_opt.load_state_dict(state["g_optimizer"])
        step, epoch, consumed = state["step"], state["epoch"], state["consumed"]
        history = {k: list(v) for k, v in state["history"].items()}
        set_rng_state(state["rng"])
    frozen = [p for p in d_params if all(p is not q for q in g_params)]  # D's weights, not the generator's
    batches = batch_stream(TensorDataset(*data), batch_size, seed=seed, shuffle=True, epoch=epoch, start=consumed)
    quiet = None if progress is None else not progress
    with tqdm(total=steps, initial=step, desc="gan", leave=False, disable=quiet) as bar:
        for step in range(step + 1, steps + 1):
            for m in modules.values():
                m.train()  # again every step: a callback may have switched to eval mode
            d_values = []
            for k in range(n_critic):
                epoch, consumed, batch = next(batches)
                batch = tuple(t.to(device, non_blocking=True) for t in batch)
                d_opt.zero_grad(set_to_none=True)
                loss = d_loss(batch, (step - 1) * n_critic + k + 1)
                d_values.append(_value(loss, "d_loss", step, history))
                loss.backward()
                d_opt.step()
            for p in frozen:
                p.requires_grad_(False)
            try:
                g_opt.zero_grad(set_to_none=True)
                loss = g_loss(batch, step)
                g_value = _value(loss, "g_loss", step, history)
                loss.backward()
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            g_opt.step()
            history["d_loss"].append(sum(d_values) / n_critic)
            history["g_loss"].append(g_value)
            if callback is not None:
                callback(step, history, modules)
            due = step == steps or (checkpoint_every is not None and step % checkpoint_every == 0)
            if checkpoint_path is not None and due:
                save_checkpoint({"modules": {name: m.state_dict() for name, m in modules.items()},
                                 "d_optimizer": d_opt.state_dict(), "g_optimizer": g_opt.state_dict(),
                                 "step": step, "epoch": epoch, "consumed": consumed, "history": history,
                                 "rng": rng_state(), "settings": settings}, checkpoint_path)
            bar.update()
            bar.set_postfix(d=f"{history['d_loss'][-1]:.3g}", g=f"{g_value:.3g}", refresh=False)
    return history


def _value(loss, name: str, step: int, history: dict) -> float:
    """The float of a closure's scalar loss; refuse a non-scalar, stop on nan or inf."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        got = type(loss).__name__ if not isinstance(loss, torch.Tensor) else tuple(loss.shape)
        raise TypeError(f"The {name!r} parameter of train_adversarial must be a function returning a scalar "
                        f"tensor. Got one returning {got} instead.")
    value = loss.detach().float().item()
    if not math.isfinite(value):
        raise LossNotFiniteError(f"{name} became {value} at step {step}; try smaller learning rates "
                                 f"(lr_d, lr_g).", history["g_loss"])
    return value


_CHECKPOINT_KEYS = ("modules", "d_optimizer", "g_optimizer", "step", "epoch", "consumed", "history", "rng")


def _resumable(path, settings: dict, modules: dict) -> dict:
    """The checkpoint at ``path``, refused unless train_adversarial wrote it for this run."""
    state = load_checkpoint(path)
    check_resumable(state, path, writer="train_adversarial", keys=_CHECKPOINT_KEYS, settings=settings)
    for name, m in modules.items():
        check_same_shapes(m.state_dict(), state["modules"][name], path, what=repr(name))
    return state


# --------------------------------------------------------------------------- the plain and conditional recipe
def train_gan(gan: GAN, x: torch.Tensor, c: torch.Tensor | None = None, *, loss: str = "non_saturating",
              gp_weight: float = 10.0, steps: int, batch_size: int = 64, lr_d: float = 2e-4, lr_g: float = 2e-4,
              betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1, seed: int = 0,
              device: str | torch.device = "auto", callback: Callable[[int, dict, dict], None] | None = None,
              checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int | None = None,
              resume: bool | str | os.PathLike = False, progress: bool | None = False) -> dict[str, list[float]]:
    """Fit ``gan`` to the examples ``x`` (§15.1-15.2): the GAN recipe on :func:`train_adversarial`.

    Discriminator update on a batch x_1..x_B of real examples and B samples x*_j = g[z_j]:
    :func:`udl.nn.adversarial.discriminator_loss` (plus ``gp_weight`` times the gradient
    penalty for "wasserstein": WGAN-GP); generator update: B new samples and
    :func:`udl.nn.adversarial.generator_loss`. Conditional (``c`` given): both networks
    take the batch's conditions, g[z, c] and f[x, c], so the generator learns to make
    examples of the class it is asked for and the discriminator to judge pairs.

    For WGAN-GP, Gulrajani et al. used ``n_critic=5``, ``lr_d=lr_g=1e-4``,
    ``betas=(0.0, 0.9)`` and a critic without batch normalisation.

    Args:
        gan: a :class:`udl.models.gan.GAN`; trained in place, left in eval mode.
        x: the training examples, ``(N, ...)`` of the generator's output shape.
        c: the conditions, ``(N, ...)`` (class indices, one-hot codes...). Default: None.
        loss: one of :data:`udl.nn.adversarial.GAN_LOSSES`. Default: "non_saturating".
        gp_weight: λ of the gradient penalty (Wasserstein only; 0 turns it off). Default: 10.
        steps, batch_size, lr_d, lr_g, betas, n_critic, seed, device, callback,
        checkpoint_path, checkpoint_every, resume, progress: as :func:`train_adversarial`
        (``batch_size`` default 64, at most N; ``progress`` default False).

    Returns:
        ``{"d_loss": [...], "g_loss": [...]}``.
    """
    owner = "train_gan"
    check_instance(gan, "gan", owner, GAN)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or len(x) == 0:
        _refuse("x", owner, "a float tensor (N, ...) with N > 0", _shown(x), TypeError if not isinstance(
            x, torch.Tensor) else ValueError)
    if c is not None and (not isinstance(c, torch.Tensor) or len(c) != len(x)):
        _refuse("c", owner, f"None or a tensor of {len(x)} conditions", _shown(c),
                TypeError if not isinstance(c, torch.Tensor) else ValueError)
    check_choice(loss, "loss", owner, GAN_LOSSES)
    gp_weight = check_float(gp_weight, "gp_weight", owner, low=0.0)
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(x))
    seed = check_int(seed, "seed", owner, minimum=0)
    device = resolve_device(device, owner)
    G, D = gan.generator_net, gan.discriminator_net
    conditional = c is not None

    def split(batch):
        return batch[0], batch[1:] if conditional else ()  # the examples, the conditions (as a tuple)

    def d_loss(batch, d_step):
        real, cond = split(batch)
        rng = step_generator(seed, d_step, device, stream=0)
        with torch.no_grad():
            fake = G(_latent(gan, len(real), rng), *cond)
        value = discriminator_loss(D(real, *cond), D(fake, *cond), kind=loss)
        if loss == "wasserstein" and gp_weight > 0:
            value = value + gp_weight * gradient_penalty(D, real, fake, generator=rng, extra=cond)
        return value

    def g_loss(batch, step):
        real, cond = split(batch)
        rng = step_generator(seed, step, device, stream=1)
        return generator_loss(D(G(_latent(gan, len(real), rng), *cond), *cond), kind=loss)

    data = (x, c) if conditional else (x,)
    history = train_adversarial({"generator": G, "discriminator": D}, data, d_loss=d_loss, g_loss=g_loss,
                                steps=steps, batch_size=batch_size, lr_d=lr_d, lr_g=lr_g, betas=betas,
                                n_critic=n_critic, seed=seed, device=device, callback=callback,
                                checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
                                progress=progress)
    gan.eval()
    return history


def _latent(gan: GAN, n: int, rng: torch.Generator) -> torch.Tensor:
    """z ~ Norm[0, I] of ``gan``'s dimensions, drawn from ``rng`` on the generator's device."""
    p = next(gan.generator_net.parameters())
    return torch.randn(n, gan.d_latent, generator=rng, device=rng.device, dtype=p.dtype).to(p.device)


def _shown(value) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


# --------------------------------------------------------------------------- measuring
@torch.no_grad()
def discriminator_accuracy(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The share of examples the discriminator tells apart at logit 0: real with f > 0, generated with f < 0.

    0.5 is chance (the generator's samples cannot be told from the data, the equilibrium
    of §15.1.1); 1 a discriminator that separates them perfectly. Computed in eval mode
    (batch normalisation uses its running statistics), the module's mode restored after.

    Args:
        discriminator: f, returning one logit per example (or a map of logits: each counts).
        real: real examples ``(N, ...)``. fake: generated examples ``(M, ...)``.

    Returns:
        (#{f(real) > 0} + #{f(fake) < 0}) / (number of logits of both).
    """
    owner = "discriminator_accuracy"
    check_instance(discriminator, "discriminator", owner, nn.Module)
    for name, t in (("real", real), ("fake", fake)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() < 1 or len(t) == 0:
            _refuse(name, owner, "a non-empty float tensor (N, ...)", _shown(t),
                    TypeError if not isinstance(t, torch.Tensor) else ValueError)
    was_training = discriminator.training
    discriminator.eval()
    try:
        p = next(discriminator.parameters(), None)
        device = p.device if p is not None else real.device
        f_real = discriminator(real.to(device))
        f_fake = discriminator(fake.to(device))
    finally:
        discriminator.train(was_training)
    right = (f_real > 0).sum() + (f_fake < 0).sum()
    return float(right) / (f_real.numel() + f_fake.numel())
