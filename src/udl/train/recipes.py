"""The pieces of the transformer training recipe, written once: AdamW's two groups and warm-up schedules.

Transformers are trained with Adam (UDL §6.4) with *decoupled* weight decay
(AdamW, Loshchilov & Hutter 2019): each step moves φ by Adam's update and shrinks it by
lr·λ·φ, which is L2 regularisation (eq. 9.5) not divided by Adam's second-moment
estimate. Only the weight matrices are shrunk; biases and LayerNorm gains and offsets
(one number per channel) are not, as in GPT-2 and BERT. Embedding matrices, like the
other matrices, are.

The learning rate starts small: Adam's early steps rest on poor moment estimates, and a
post-LN transformer diverges under a large step before the residual stream has settled
(§12.4, §12.6). It rises linearly for ``warmup`` steps, then decays: along a half cosine
to a floor (GPT, the encoder-decoder) or linearly to zero (BERT). The schedules are
factors on the peak learning rate for ``torch.optim.lr_scheduler.LambdaLR``.

Example::

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    >>> [len(g["params"]) for g in decay_groups(model, 0.1)]   # Linear.weight | Linear.bias, LN gain, LN offset
    [1, 3]
    >>> factor = warmup_cosine(100, 10, floor=0.1)
    >>> factor(0), factor(10), factor(100)
    (0.1, 1.0, 0.1)
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn

from udl.validate import check_float, check_int

__all__ = ["decay_groups", "adamw", "warmup_cosine", "warmup_linear", "fit_adamw"]


def _parameters(model_or_params, owner: str) -> list[nn.Parameter]:
    params = model_or_params.parameters() if isinstance(model_or_params, nn.Module) else model_or_params
    try:
        params = list(params)
    except TypeError:
        params = None
    if params is None or not all(isinstance(p, torch.Tensor) for p in params):
        raise TypeError(f"The 'model_or_params' parameter of {owner} must be an nn.Module or an iterable of "
                        f"parameters. Got {model_or_params!r} instead.")
    return params


def decay_groups(model_or_params: nn.Module | Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """AdamW's two parameter groups: matrices decay, vectors (biases, LayerNorm gains and offsets) do not.

    Only parameters that require a gradient are included (a frozen encoder is left
    out); the order within each group is the order of ``model.parameters()`` (tied
    weights once).

    Args:
        model_or_params: a module or its parameters.
        weight_decay: λ of the matrices (decoupled: φ ← φ − lr·λ·φ each step).

    Returns:
        ``[{"params": matrices, "weight_decay": weight_decay}, {"params": vectors, "weight_decay": 0.0}]``,
        matrices being the parameters with two or more dimensions (embeddings included).
    """
    params = [p for p in _parameters(model_or_params, "decay_groups") if p.requires_grad]
    weight_decay = check_float(weight_decay, "weight_decay", "decay_groups", low=0.0)
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def adamw(model_or_params: nn.Module | Iterable[nn.Parameter], *, lr: float, weight_decay: float,
          betas: tuple[float, float] = (0.9, 0.999), fused: bool | None = None) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` over :func:`decay_groups`: the transformers' optimiser.

    Args:
        model_or_params: a module or its parameters (those requiring a gradient are trained).
        lr: the (peak) learning rate.
        weight_decay: λ of the weight matrices; vectors get none.
        betas: (β_1, β_2), the decay rates of Adam's moment estimates (eq. 6.15).
            Default: (0.9, 0.999) (BERT); GPT uses (0.9, 0.95), the original transformer (0.9, 0.98).
        fused: one kernel for all parameters (CPU and CUDA); None lets torch choose. Default: None.

    Returns:
        The optimizer.
    """
    return torch.optim.AdamW(decay_groups(model_or_params, weight_decay), lr=lr, betas=betas, fused=fused)


def _warmup_then(steps, warmup, floor, owner: str, decay: Callable[[float], float]) -> Callable[[int], float]:
    """``factor(step)``: (step + 1)/warmup during the warm-up, then floor + (1 − floor)·decay(p), p from 0 to 1."""
    steps = check_int(steps, "steps", owner)
    warmup = check_int(warmup, "warmup", owner, minimum=0, maximum=steps)  # a warm-up longer than the run never peaks
    floor = check_float(floor, "floor", owner, low=0.0, high=1.0)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = min(1.0, (step - warmup) / max(1, steps - warmup))  # p: the share of the decay behind us
        return floor + (1 - floor) * decay(done)

    return factor


def warmup_cosine(steps: int, warmup: int, *, floor: float) -> Callable[[int], float]:
    """The learning-rate factor after ``step`` optimizer steps: linear warm-up, then a half cosine to ``floor``.

    With p = min(1, (step − warmup) / max(1, steps − warmup))::

        factor(step) = (step + 1) / warmup                        if step < warmup
                     = floor + (1 − floor) · (1 + cos πp) / 2     otherwise

    Args:
        steps: the optimizer steps of the whole run.
        warmup: steps of linear warm-up (0 for none).
        floor: the factor the decay ends at (GPT 0.1, the encoder-decoder 0.05).

    Returns:
        ``factor(step) -> float`` for ``LambdaLR``.
    """
    return _warmup_then(steps, warmup, floor, "warmup_cosine", lambda p: 0.5 * (1 + math.cos(math.pi * p)))


def warmup_linear(steps: int, warmup: int, *, floor: float = 0.0) -> Callable[[int], float]:
    """The learning-rate factor after ``step`` optimizer steps: linear warm-up, then linear decay to ``floor``.

    With p as for :func:`warmup_cosine`::

        factor(step) = (step + 1) / warmup               if step < warmup
                     = floor + (1 − floor) · (1 − p)     otherwise

    Args:
        steps: the optimizer steps of the whole run.
        warmup: steps of linear warm-up (0 for none).
        floor: the factor the decay ends at. Default: 0.0 (BERT: to zero).

    Returns:
        ``factor(step) -> float`` for ``LambdaLR``.
    """
    return _warmup_then(steps, warmup, floor, "warmup_linear", lambda p: 1.0 - p)


def fit_adamw(model: nn.Module, data, loss_fn, *, steps: int, lr: float, weight_decay: float, floor: float,
              warmup: int | None = None, betas: tuple[float, float] = (0.9, 0.999), **fit_kwargs) -> list[float]:
    """:func:`udl.train.fit` with the recipe in one call: :func:`adamw`, and a linear warm-up
    then a half cosine down to ``floor`` times ``lr`` (:func:`warmup_cosine`).

    Args:
        model, data, loss_fn: as for :func:`udl.train.fit`.
        steps: optimisation steps.
        lr: the peak learning rate.
        weight_decay: λ of the weight matrices (vectors get none).
        floor: the last learning rate, as a fraction of ``lr``.
        warmup: steps of linear warm-up. Default: a tenth of ``steps``.
        betas: Adam's (β_1, β_2). Default: (0.9, 0.999).
        **fit_kwargs: passed on to :func:`udl.train.fit` (``batch_size``, ``seed``, ``device``,
            ``clip_grad_norm``, ``progress``, ``checkpoint_path``...).

    Returns:
        The loss of every step.
    """
    from torch.optim.lr_scheduler import LambdaLR

    from udl.train.loop import fit

    warmup = steps // 10 if warmup is None else warmup
    schedule = warmup_cosine(steps, warmup, floor=floor)  # checks steps, warmup and floor before any work
    return fit(model, data, loss_fn, lambda params: adamw(params, lr=lr, weight_decay=weight_decay, betas=betas),
               steps=steps, scheduler=lambda optimizer: LambdaLR(optimizer, schedule), **fit_kwargs)
