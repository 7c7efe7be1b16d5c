"""Magnitude pruning with fine-tuning, one-shot and iterative (UDL §20.4.3, fig. 20.15).

A network is pruned by setting its smallest weights to zero and keeping them there. A
*mask* ``m`` (True = kept) per weight matrix Ω_k gives the pruned weights ``Ω_k ⊙ m_k``;
the *sparsity* is the share of weights masked out. Which weights go:

- ``scope="layer"``: in every matrix, the ``round(s · n_k)`` weights of smallest |ω|
  (``torch.nn.utils.prune.l1_unstructured`` with ``amount=s`` on each matrix);
- ``scope="global"``: the ``round(s · Σ_k n_k)`` smallest |ω| over all matrices together
  (``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``), so layers
  whose weights are small lose more.

The masks are equal to torch's, ties included: like torch we take ``torch.topk(|ω|, k,
largest=False)`` of the same flattened vector (the matrices concatenated in the order of
``model.named_parameters()``), so where several weights tie at the threshold, the ones
topk returns go. ``round`` is Python's (halves to even), as in torch.

Pruning costs accuracy; a few steps of *fine-tuning* with the masks kept win it back
(:func:`finetune`: after every optimiser step the masked weights are set to zero again,
so they are zero at every step, whatever the optimiser's momentum says).
:func:`iterative_pruning` reaches a sparsity s in R rounds of prune-then-fine-tune, the
kept share shrinking geometrically: after round r, ``1 - s_r = (1 - s)^{r/R}``.

Only weight matrices are pruned (parameters named ``*.weight`` with two or more axes):
biases are few and cheap, as in the usual practice.

Example::

    >>> model = digit_mlp()                                   # a trained 64-128-128-10 ReLU network
    >>> x, y = (torch.from_numpy(a) for a in load_digits("train", seed=0))
    >>> masks = magnitude_masks(model, 0.9, scope="global")
    >>> round(sparsity(masks), 3)
    0.9
    >>> losses = finetune(model, masks, (x, y), steps=600)    # weights outside the masks stay 0
"""

from __future__ import annotations

import torch
from torch import nn

from udl.data.images import load_digits
from udl.nn.deep import DeepNetwork
from udl.validate import _fail, _refuse, check_choice, check_float, check_instance, check_int, check_sizes

__all__ = ["prunable_weights", "magnitude_masks", "apply_masks", "sparsity", "accuracy", "finetune",
           "prune_and_finetune", "iterative_pruning", "digit_mlp"]

SCOPES = ("layer", "global")
SPLIT_SEED = 0  # the dense network trains on load_digits("train", seed=0); held out: load_digits("test", seed=0)


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weight matrices that pruning may zero: ``*.weight`` parameters with two or more axes, in order.

    Args:
        model: any ``nn.Module``.

    Returns:
        ``{name: parameter}`` in the order of ``model.named_parameters()``.
    """
    check_instance(model, "model", "prunable_weights", nn.Module)
    return {name: p for name, p in model.named_parameters() if name.split(".")[-1] == "weight" and p.dim() >= 2}


def _weights(model, owner: str) -> dict[str, nn.Parameter]:
    check_instance(model, "model", owner, nn.Module)
    weights = prunable_weights(model)
    if not weights:
        _refuse("model", owner, "a module with weight matrices to prune", type(model).__name__)
    return weights


def _smallest(values: torch.Tensor, amount: float) -> torch.Tensor:
    """Mask of a flat vector: False at the round(amount · n) smallest |values| (torch.topk breaks ties)."""
    k = round(amount * values.numel())  # torch.nn.utils.prune._compute_nparams_toprune
    mask = torch.ones(values.numel(), dtype=torch.bool)
    if k:
        mask[torch.topk(values.abs(), k=k, largest=False).indices] = False
    return mask


@torch.no_grad()
def magnitude_masks(model: nn.Module, sparsity: float, *, scope: str = "layer") -> dict[str, torch.Tensor]:
    """Masks that keep the largest weights by magnitude (|ω|, the L1 criterion).

    Args:
        model: the network; its current weights decide (already pruned weights are 0,
            hence among the first to go again).
        sparsity: the share s of weights to remove, in [0, 1].
        scope: ``"layer"`` (s of every matrix) or ``"global"`` (s of all of them,
            ranked together). Default: "layer".

    Returns:
        ``{name: bool tensor}``, one per :func:`prunable_weights` entry, shaped like the
        weight, True where it is kept. Equal to ``weight_mask`` of
        ``torch.nn.utils.prune.l1_unstructured`` / ``global_unstructured``.
    """
    owner = "magnitude_masks"
    weights = _weights(model, owner)
    sparsity = check_float(sparsity, "sparsity", owner, low=0.0, high=1.0)
    check_choice(scope, "scope", owner, SCOPES)
    flat = {name: w.detach().cpu().reshape(-1) for name, w in weights.items()}
    if scope == "layer":
        kept = {name: _smallest(v, sparsity) for name, v in flat.items()}
    else:  # one ranking over the concatenated weights (global_unstructured's parameters_to_vector)
        together = _smallest(torch.cat(list(flat.values())), sparsity)
        kept = dict(zip(flat, together.split([v.numel() for v in flat.values()])))
    return {name: kept[name].reshape(w.shape).to(w.device) for name, w in weights.items()}


def _check_masks(model, masks, owner: str) -> dict[str, nn.Parameter]:
    weights = dict(model.named_parameters())
    if not isinstance(masks, dict) or not masks:
        _fail("masks", owner, "a non-empty dict {parameter name: bool tensor}", masks, TypeError)
    for name, mask in masks.items():
        if name not in weights:
            _refuse("masks", owner, "keyed by names of the model's parameters", f"{name!r}")
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != weights[name].shape:
            _refuse("masks", owner, f"bool tensors shaped like their parameters ({name!r}: "
                    f"{tuple(weights[name].shape)})", f"{type(mask).__name__} "
                    f"{tuple(getattr(mask, 'shape', ()))} {getattr(mask, 'dtype', '')}".strip())
    return weights


@torch.no_grad()
def _zero(weights, masks) -> None:
    for name, mask in masks.items():
        weights[name].mul_(mask.to(weights[name].device))


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Zero, in place, every weight outside its mask: Ω_k ← Ω_k ⊙ m_k.

    Args:
        model: the network.
        masks: ``{parameter name: bool tensor}``, as :func:`magnitude_masks` returns.

    Returns:
        ``model`` itself (as ``nn.Module.apply`` does).
    """
    check_instance(model, "model", "apply_masks", nn.Module)
    _zero(_check_masks(model, masks, "apply_masks"), masks)
    return model


def sparsity(masks: dict[str, torch.Tensor]) -> float:
    """The share of masked-out weights over all masks together: Σ_k #(m_k = 0) / Σ_k n_k."""
    if not isinstance(masks, dict) or not masks or not all(
            isinstance(m, torch.Tensor) and m.dtype == torch.bool for m in masks.values()):
        _fail("masks", "sparsity", "a non-empty dict of bool tensors", masks, TypeError)
    total = sum(m.numel() for m in masks.values())
    return float(sum(int((~m).sum()) for m in masks.values()) / max(total, 1))


_pruned_share = sparsity  # for functions whose argument is called sparsity


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The share of rows of ``x`` whose largest output is the label ``y`` (the model is put in eval mode).

    Shape:
        x: (N, ...) inputs, y: (N,) integer labels.
    """
    owner = "accuracy"
    check_instance(model, "model", owner, nn.Module)
    check_instance(x, "x", owner, torch.Tensor)
    check_instance(y, "y", owner, torch.Tensor)
    if y.dim() != 1 or len(y) != len(x) or len(y) == 0:
        _refuse("y", owner, f"a non-empty (N,) tensor of labels with N = len(x) = {len(x)}", f"shape {tuple(y.shape)}")
    model.eval()
    device = next(model.parameters()).device
    return float((model(x.to(device)).argmax(-1) == y.to(device)).double().mean())


def _check_training(data, steps, lr, batch_size, seed, owner: str):
    if not (isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)):
        _fail("data", owner, "a tuple (x, y) of tensors", data, TypeError)
    if len(data[0]) != len(data[1]) or len(data[0]) == 0:
        _refuse("data", owner, "a tuple (x, y) with the same non-zero number of rows",
                f"{len(data[0])} and {len(data[1])}")
    check_int(steps, "steps", owner, minimum=0)
    check_float(lr, "lr", owner, low=0.0, low_open=True)
    check_int(batch_size, "batch_size", owner)
    check_int(seed, "seed", owner, minimum=0)


def _finetune(model, weights, masks, data, steps, lr, batch_size, seed) -> list[float]:
    from udl.train.loop import fit

    _zero(weights, masks)
    if steps == 0:
        return []
    return fit(model, data, nn.functional.cross_entropy, torch.optim.Adam(model.parameters(), lr=lr), steps=steps,
               batch_size=min(batch_size, len(data[0])), seed=seed, device=next(model.parameters()).device,
               callback=lambda step, loss, m: _zero(weights, masks), progress=False)


def finetune(model: nn.Module, masks: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor], *,
             steps: int = 600, lr: float = 1e-3, batch_size: int = 64, seed: int = 0) -> list[float]:
    """Train a pruned classifier further with its masks kept (Adam, cross-entropy, :func:`udl.train.fit`).

    The weights are masked first, then after every optimiser step: a masked weight is
    zero at every step, and the model's outputs are those of the pruned network.

    Args:
        model: the classifier, trained in place (left in train mode).
        masks: ``{parameter name: bool tensor}``, True where a weight is kept.
        data: ``(x, y)``, inputs and integer labels.
        steps: optimiser steps (0 only applies the masks). Default: 600.
        lr: Adam's learning rate. Default: 1e-3.
        batch_size: images per step (at most the data's size). Default: 64.
        seed: the data order. Default: 0.

    Returns:
        The loss of every step.
    """
    owner = "finetune"
    check_instance(model, "model", owner, nn.Module)
    weights = _check_masks(model, masks, owner)
    _check_training(data, steps, lr, batch_size, seed, owner)
    return _finetune(model, weights, masks, data, steps, lr, batch_size, seed)


def prune_and_finetune(model: nn.Module, sparsity: float, data: tuple[torch.Tensor, torch.Tensor], *,
                       scope: str = "layer", steps: int = 600, lr: float = 1e-3, batch_size: int = 64,
                       seed: int = 0) -> tuple[dict[str, torch.Tensor], list[float]]:
    """One-shot pruning: :func:`magnitude_masks` at ``sparsity``, then :func:`finetune` (in place).

    Returns:
        ``(masks, losses)``.
    """
    masks = magnitude_masks(model, sparsity, scope=scope)
    _check_training(data, steps, lr, batch_size, seed, "prune_and_finetune")
    return masks, _finetune(model, prunable_weights(model), masks, data, steps, lr, batch_size, seed)


def iterative_pruning(model: nn.Module, sparsity: float, data: tuple[torch.Tensor, torch.Tensor], *,
                      rounds: int = 5, scope: str = "layer", steps: int = 100, lr: float = 1e-3,
                      batch_size: int = 64, seed: int = 0) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Prune to ``sparsity`` in ``rounds`` steps, fine-tuning after each (in place).

    Round r = 1..R prunes to s_r = 1 − (1 − s)^{r/R} by magnitude (the weights pruned
    before are zero, so they stay pruned) and fine-tunes for ``steps`` steps.

    Args:
        model, sparsity, data, scope, lr, batch_size: as for :func:`prune_and_finetune`.
        rounds: R, the number of prune-and-fine-tune rounds. Default: 5.
        steps: fine-tuning steps per round. Default: 100.
        seed: round r orders the data with ``seed + r``. Default: 0.

    Returns:
        ``(masks, history)``: the last masks, and per round ``{"sparsity", "losses"}``.
    """
    owner = "iterative_pruning"
    _weights(model, owner)
    sparsity_ = check_float(sparsity, "sparsity", owner, low=0.0, high=1.0)
    rounds = check_int(rounds, "rounds", owner)
    check_choice(scope, "scope", owner, SCOPES)
    _check_training(data, steps, lr, batch_size, seed, owner)
    weights, history, masks = prunable_weights(model), [], None
    for r in range(1, rounds + 1):
        target = 1.0 - (1.0 - sparsity_) ** (r / rounds)
        new = magnitude_masks(model, target, scope=scope)
        if masks is not None:  # a weight pruned before is 0; keep it out even where a tie could bring it back
            new = {name: m & masks[name] for name, m in new.items()}
        masks = new
        losses = _finetune(model, weights, masks, data, steps, lr, batch_size, seed + r)
        history.append({"sparsity": _pruned_share(masks), "losses": losses})
    return masks, history


# --------------------------------------------------------------------------- the dense network of fig. 20.15
def _train_mlp(model: DeepNetwork, steps: int, lr: float, seed: int) -> dict:
    from udl.train.recipes import fit_adamw

    x, y = (torch.from_numpy(a) for a in load_digits("train", seed=SPLIT_SEED))
    x_test, y_test = (torch.from_numpy(a) for a in load_digits("test", seed=SPLIT_SEED))
    losses = fit_adamw(model, (x, y), nn.functional.cross_entropy, steps=steps, lr=lr, weight_decay=0.0, floor=0.05,
                       batch_size=64, seed=seed, device=next(model.parameters()).device, progress=False)
    return {"train_accuracy": accuracy(model, x, y), "test_accuracy": accuracy(model, x_test, y_test),
            "final_loss": float(sum(losses[-50:]) / len(losses[-50:]))}


def digit_mlp(hidden: tuple[int, ...] = (128, 128), *, steps: int = 2000, lr: float = 3e-3, seed: int = 0,
              device: str | torch.device = "cpu") -> DeepNetwork:
    """A fully connected ReLU network on 8x8 digits, trained once per machine (:func:`udl.cache.trained`).

    :class:`udl.nn.deep.DeepNetwork` ``[64, *hidden, 10]``, trained with AdamW (no weight
    decay, a warm-up and a cosine decay) on batches of 64 of ``load_digits("train", seed=0)``.

    Args:
        hidden: the hidden widths D_1..D_K. Default: (128, 128).
        steps: training steps. Default: 2000.
        lr: the peak learning rate. Default: 3e-3.
        seed: the initial weights and the data order. Default: 0.
        device: where it is trained and returned. Default: "cpu".

    Returns:
        A fresh copy in eval mode; its ``record`` attribute holds ``"test_accuracy"`` (the
        359 held-out digits of ``load_digits("test", seed=0)``) and ``"train_accuracy"``.
    """
    from udl.cache import trained

    owner = "digit_mlp"
    hidden = check_sizes(hidden, "hidden", owner)
    steps = check_int(steps, "steps", owner)
    lr = check_float(lr, "lr", owner, low=0.0, low_open=True)
    seed = check_int(seed, "seed", owner, minimum=0)
    widths = [64, *hidden, 10]
    settings = {"widths": widths, "steps": steps, "lr": lr, "seed": seed, "split_seed": SPLIT_SEED}
    model, record = trained("digit-mlp", settings, lambda: DeepNetwork(widths, generator=seed),
                            lambda m: _train_mlp(m, steps, lr, seed), sources=[__file__], device=device)
    model.record = record
    return model
