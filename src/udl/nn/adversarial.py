"""The losses of generative adversarial networks (UDL §15.1-15.2), logits in, scalars out.

A discriminator f[x, φ] returns a logit; sig[f] is its belief that x is real. The
generator g[z, θ] turns latent draws z ~ Norm[0, I] into samples x* = g[z, θ]. The book's
GAN loss (eq. 15.3) is the binary cross-entropy with real examples labelled 1 and
generated ones labelled 0; the discriminator minimises it and the generator maximises it:

    L[φ] = −(1/I) Σ_i log sig[f(x_i)] − (1/J) Σ_j log(1 − sig[f(x*_j)])      (discriminator)
    L[θ] =  (1/J) Σ_j log(1 − sig[f(x*_j)])                                 (generator, "minimax")

(with means over the batch instead of the book's sums). When the discriminator wins,
sig[f(x*)] → 0 and the minimax generator loss flattens: its gradient vanishes (§15.2.1).
The *non-saturating* generator loss (Goodfellow et al. 2014) labels its samples 1 instead,

    L[θ] = −(1/J) Σ_j log sig[f(x*_j)],

whose gradient is largest exactly when the discriminator rejects the samples. The
*Wasserstein* GAN (§15.2.4) drops the sigmoid: the critic f maximises the gap between its
mean on real and on generated data, and the generator raises its mean on generated data,

    L[φ] = (1/J) Σ_j f(x*_j) − (1/I) Σ_i f(x_i),      L[θ] = −(1/J) Σ_j f(x*_j),

which estimates the earth mover's distance only for a 1-Lipschitz critic: the gradient
penalty (Gulrajani et al. 2017, WGAN-GP) pushes ‖∇_x f‖ to 1 on points between real and
generated examples. The cross-entropies are computed from logits with
log sig[f] = −softplus(−f) and log(1 − sig[f]) = −softplus(f), stable for any logit.

Logits may have any shape ((B,) for a whole-image discriminator, (B, 1, h, w) for a patch
discriminator); means are over all their elements.

Example::

    >>> real, fake = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5])
    >>> round(discriminator_loss(real, fake).item(), 4), round(generator_loss(fake).item(), 4)
    (0.7314, 0.8937)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from udl.validate import _refuse, as_generator, check_callable, check_choice, check_tensor

__all__ = ["GAN_LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty"]

GAN_LOSSES = ("minimax", "non_saturating", "wasserstein")


def _check_logits(logits, name: str, owner: str) -> torch.Tensor:
    check_tensor(logits, name, owner, dtype="float")
    if logits.numel() == 0:
        _refuse(name, owner, "a non-empty tensor of logits", f"shape {tuple(logits.shape)}")
    return logits


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *,
                       kind: str = "non_saturating") -> torch.Tensor:
    """The discriminator's (or critic's) loss from its logits on real and generated examples.

    "minimax" and "non_saturating" (the same for the discriminator: they differ in the
    generator's loss) give the binary cross-entropy, real → 1 and generated → 0 (eq. 15.3):

        L[φ] = mean_i softplus(−f(x_i)) + mean_j softplus(f(x*_j)),

    "wasserstein" the critic's loss, mean_j f(x*_j) − mean_i f(x_i) (§15.2.4).

    Args:
        real_logits: f on real examples, any shape.
        fake_logits: f on generated examples (detached from the generator by the caller).
        kind: one of :data:`GAN_LOSSES`. Default: "non_saturating".

    Returns:
        A scalar tensor.
    """
    owner = "discriminator_loss"
    _check_logits(real_logits, "real_logits", owner)
    _check_logits(fake_logits, "fake_logits", owner)
    check_choice(kind, "kind", owner, GAN_LOSSES)
    if kind == "wasserstein":
        return fake_logits.mean() - real_logits.mean()
    # −log sig[f] = softplus(−f);  −log(1 − sig[f]) = softplus(f)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, *, kind: str = "non_saturating") -> torch.Tensor:
    """The generator's loss from the discriminator's logits on its samples.

    - "minimax": the book's eq. 15.3 as the generator sees it, mean_j log(1 − sig[f(x*_j)])
      = −mean softplus(f): the negated cross-entropy of labelling the samples 0. It saturates
      (its gradient vanishes) when the discriminator confidently rejects them.
    - "non_saturating": the cross-entropy of labelling the samples 1, mean softplus(−f).
    - "wasserstein": −mean_j f(x*_j).

    Args:
        fake_logits: f on generated examples (not detached: the gradient flows to the generator).
        kind: one of :data:`GAN_LOSSES`. Default: "non_saturating".

    Returns:
        A scalar tensor.
    """
    owner = "generator_loss"
    _check_logits(fake_logits, "fake_logits", owner)
    check_choice(kind, "kind", owner, GAN_LOSSES)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()  # mean log(1 − sig[f])
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()  # mean −log sig[f]
    return -fake_logits.mean()


def gradient_penalty(critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor, *,
                     generator: torch.Generator | int | None = None, extra: tuple = ()) -> torch.Tensor:
    """WGAN-GP's penalty: mean (‖∇_x f(x̂)‖ − 1)² on points x̂ between real and generated examples.

    x̂_i = α_i x_i + (1 − α_i) x*_i with α_i ~ U[0, 1], one per example (Gulrajani et al.
    2017). The gradient is taken with ``create_graph=True``, so the penalty can be
    back-propagated to the critic's parameters. Both inputs are detached: the penalty
    trains the critic only. Add it to :func:`discriminator_loss` with a weight (10 in the paper).

    Args:
        critic: the critic f, called as ``critic(x̂, *extra)``; its output (any shape) is
            summed per example before differentiating.
        real: real examples, ``(B, ...)``.
        fake: generated examples of the same shape.
        generator: the draws of α: a ``torch.Generator`` (on any device) or an int seed.
            Default: None, torch's global generator.
        extra: further inputs of the critic (a condition c), passed after x̂. Default: ().

    Returns:
        A scalar tensor.
    """
    owner = "gradient_penalty"
    check_callable(critic, "critic", owner)
    check_tensor(real, "real", owner, dtype="float")
    if real.dim() == 0 or len(real) == 0:
        _refuse("real", owner, "a non-empty batch (B, ...)", f"shape {tuple(real.shape)}")
    check_tensor(fake, "fake", owner, shape=tuple(real.shape), dtype="float")
    if not isinstance(extra, (tuple, list)):
        _refuse("extra", owner, "a tuple of further inputs", type(extra).__name__, TypeError)
    generator = as_generator(generator, owner)
    shape = (len(real),) + (1,) * (real.dim() - 1)  # one α per example
    alpha = torch.rand(shape, generator=generator, dtype=real.dtype,
                       device=generator.device if generator is not None else "cpu").to(real.device)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat, *extra)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)  # ∂f/∂x̂, (B, ...)
    norm = (grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt()  # ‖∇_x f‖ per example; ε: finite gradient at 0
    return (norm - 1).pow(2).mean()
