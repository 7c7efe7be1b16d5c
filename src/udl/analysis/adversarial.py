"""Adversarial examples (UDL §20.4.5, fig. 20.14): small changes to an input that change a classifier's answer.

Both attacks move an image x of class y uphill on the classifier's cross-entropy loss
L(x, y), inside the L∞ ball of radius ε around the original image x₀ (every pixel moves
by at most ε) and inside the valid pixel range [0, 1]:

- :func:`fgsm`, the fast gradient sign method (Goodfellow et al. 2015): one step of size ε
  along the sign of the gradient::

      x' = clip_[0,1](x₀ + ε sign(∂L/∂x (x₀, y)))

- :func:`pgd`, projected gradient descent on the L∞ ball (Madry et al. 2018): from x₀, or
  from a uniform random point of the ball, repeat a signed step of size α and project
  back onto the ball and the pixel range::

      x ← clip_[0,1](x₀ + clip_[−ε,ε](x + α sign(∂L/∂x (x, y)) − x₀))

  FGSM is one step of PGD with α = ε from x₀.
- :func:`accuracy_under_attack`: the classifier's accuracy on attacked inputs, for each ε.

The updates are foolbox's ``LinfFastGradientAttack`` and ``LinfPGD`` (the loss is the summed
cross-entropy, the sign of its gradient is the step); the tests compare the two to 1e-6.

Example::

    >>> from udl.analysis.generative import digit_classifier
    >>> from udl.data.images import load_digits
    >>> model = digit_classifier()
    >>> x, y = (torch.from_numpy(a) for a in load_digits("test", seed=0, flat=False))
    >>> x = x[:, None]                                       # (359, 1, 8, 8)
    >>> accuracy_under_attack(model, x, y, [0.0, 0.1, 0.2], attack="pgd", generator=0)
    [0.994..., 0.31..., 0.0]
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from udl.validate import _refuse, _shown, as_generator, check_bool, check_float, check_int, check_tensor

__all__ = ["fgsm", "pgd", "accuracy_under_attack"]

ATTACKS = ("fgsm", "pgd")


def _inputs(model, x, y, owner: str) -> tuple[torch.Tensor, torch.Tensor, torch.device]:
    """``x`` (B, ...) floating point in [0, 1] and ``y`` (B,) integer labels, on the model's device."""
    if not isinstance(model, nn.Module):
        _refuse("model", owner, "a torch.nn.Module", _shown(model), TypeError)
    check_tensor(x, "x", owner, dtype="float")
    if x.dim() < 1 or len(x) < 1:
        _refuse("x", owner, "a batch of at least one input (B, ...)", f"shape {tuple(x.shape)}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        _refuse("x", owner, "inputs with values in [0, 1]",
                f"values in [{float(x.min()):g}, {float(x.max()):g}]")
    check_tensor(y, "y", owner, dtype="int", shape=(len(x),))
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else x.device
    return x.detach().to(device), y.to(device), device


def _signed_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∂L/∂x) of the summed cross-entropy L = Σ_i −log softmax(f(x_i))_{y_i}: each input's own gradient."""
    x = x.detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, x)
    return gradient.sign()


def _attack(model, x0, y, eps, steps, step_size, start) -> torch.Tensor:
    """Projected signed-gradient ascent from ``start`` (the shared loop of FGSM and PGD)."""
    x = start
    for _ in range(steps):
        x = x + step_size * _signed_gradient(model, x, y)
        x = x0 + (x - x0).clamp(-eps, eps)  # back onto the L∞ ball around x₀
        x = x.clamp(0.0, 1.0)  # ... and into the pixel range
    return x.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """The fast gradient sign method: one step of size ε along sign(∂L/∂x), clipped to [0, 1].

    ``x' = clip_[0,1](x + ε sign(∂L/∂x))`` with L the cross-entropy of ``model(x)`` and ``y``.
    The model is used as it is (put it in eval mode first); its parameters' ``.grad`` are untouched.

    Args:
        model: a classifier returning logits ``(B, K)``.
        x: inputs ``(B, ...)`` with values in [0, 1].
        y: their true classes ``(B,)``, ints.
        eps: the L∞ radius ε ≥ 0 (in units of the pixel range).

    Returns:
        the perturbed inputs, same shape and dtype as ``x`` (on the model's device), ``|x' − x| ≤ ε``.
    """
    x, y, _ = _inputs(model, x, y, "fgsm")
    eps = check_float(eps, "eps", "fgsm", low=0.0, high=1.0)
    return _attack(model, x, y, eps, 1, eps, x)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 40,
        step_size: float | None = None, random_start: bool = True,
        generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Projected gradient descent (ascent on the loss) inside the L∞ ball of radius ε, clipped to [0, 1].

    From x₀ (or, with ``random_start``, from x₀ + u with u uniform in [−ε, ε] per pixel, clipped
    to [0, 1]), ``steps`` times: ``x ← clip_[0,1](x₀ + clip_[−ε,ε](x + α sign(∂L/∂x) − x₀))``.

    Args:
        model: a classifier returning logits ``(B, K)`` (used as it is: put it in eval mode first).
        x: inputs ``(B, ...)`` with values in [0, 1].
        y: their true classes ``(B,)``, ints.
        eps: the L∞ radius ε ≥ 0.
        steps: the number of signed-gradient steps. Default: 40.
        step_size: α > 0. Default: ``2.5 ε / steps`` (Madry et al.: enough to cross the ball and back).
        random_start: start from a uniform random point of the ball. Default: True.
        generator: the random start's draws: a ``torch.Generator`` or an int seed. Default: torch's global one.

    Returns:
        the perturbed inputs, same shape and dtype as ``x`` (on the model's device), ``|x' − x₀| ≤ ε``.
    """
    x, y, device = _inputs(model, x, y, "pgd")
    eps = check_float(eps, "eps", "pgd", low=0.0, high=1.0)
    steps = check_int(steps, "steps", "pgd")
    step_size = 2.5 * eps / steps if step_size is None else \
        check_float(step_size, "step_size", "pgd", low=0.0, low_open=True)
    random_start = check_bool(random_start, "random_start", "pgd")
    generator = as_generator(generator, "pgd")
    start = x
    if random_start:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(device)  # drawn on the CPU: same on any device
        start = (x + eps * (2 * u - 1)).clamp(0.0, 1.0)
    return _attack(model, x, y, eps, steps, step_size, start)


def accuracy_under_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_values,
                          attack: str | Callable = "pgd", *, steps: int = 40, random_start: bool = True,
                          generator: torch.Generator | int | None = None) -> list[float]:
    """The share of inputs still classified correctly after the attack, for each ε.

    Args:
        model: a classifier returning logits ``(B, K)``.
        x: inputs ``(B, ...)`` with values in [0, 1].
        y: their true classes ``(B,)``, ints.
        eps_values: the radii ε, each in [0, 1] (ε = 0 gives the clean accuracy).
        attack: ``"fgsm"``, ``"pgd"`` (with ``steps``, ``random_start`` and ``generator``), or a
            function ``attack(model, x, y, eps) -> x'``. Default: "pgd".
        steps, random_start, generator: passed to :func:`pgd`.

    Returns:
        one accuracy in [0, 1] per ε, in the order given.
    """
    owner = "accuracy_under_attack"
    x, y, _ = _inputs(model, x, y, owner)
    if isinstance(eps_values, torch.Tensor):
        eps_values = eps_values.tolist()
    if not isinstance(eps_values, (list, tuple)) or not eps_values:
        _refuse("eps_values", owner, "a non-empty list of floats in [0, 1]", _shown(eps_values), TypeError)
    eps_values = [check_float(e, "eps_values", owner, low=0.0, high=1.0) for e in eps_values]
    if isinstance(attack, str):
        if attack not in ATTACKS:
            _refuse("attack", owner, "'fgsm', 'pgd' or a function (model, x, y, eps) -> x'", repr(attack))
    elif not callable(attack):
        _refuse("attack", owner, "'fgsm', 'pgd' or a function (model, x, y, eps) -> x'", _shown(attack), TypeError)
    steps = check_int(steps, "steps", owner)
    random_start = check_bool(random_start, "random_start", owner)
    generator = as_generator(generator, owner)

    accuracies = []
    for eps in eps_values:
        if attack == "fgsm":
            attacked = fgsm(model, x, y, eps)
        elif attack == "pgd":
            attacked = pgd(model, x, y, eps, steps=steps, random_start=random_start, generator=generator)
        else:
            attacked = attack(model, x, y, eps)
        with torch.no_grad():
            accuracies.append(float((model(attacked).argmax(1) == y).double().mean()))
    return accuracies
