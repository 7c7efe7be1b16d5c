"""Chapter 20 notes: magnitude pruning with fine-tuning (figure 20.15)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils import prune

from udl import drawing, style
from udl.analysis.pruning import (accuracy, apply_masks, digit_mlp, finetune, iterative_pruning, magnitude_masks,
                                  prunable_weights, sparsity)
from udl.data.images import load_digits
from udl.registry import Check, Limit, Result, figure

TARGET_SPARSITY = 0.9  # the target: at 90% sparsity ...
TARGET_POINTS = 0.02  # ... fine-tuned test accuracy within 2 points of the dense network
MIN_TARGET_STEPS = 600  # the least fine-tuning the target is tested with (measured, seeds 0-2: 0.3-0.6 points below
#                        the dense network with 600 Adam steps at lr 1e-3; 300 steps: up to 1.9 points below)
MIN_TARGET_WIDTH = 128  # ... and the narrowest hidden layer it was measured on
MIN_RECOVERY_STEPS = 50  # the least fine-tuning with which "fine-tuning wins accuracy back" is claimed
MIN_KEPT = 50  # ... and with enough weights left to learn with (none are left at 99.9% of a 222-weight net)
MIN_LOSS = 0.05  # ... and only where pruning alone cost at least 5 points (else there is little to win back)


def _digits():
    train = tuple(torch.from_numpy(a) for a in load_digits("train", seed=0))
    test = tuple(torch.from_numpy(a) for a in load_digits("test", seed=0))
    return train, test


def _shown_units(width: int, shown: int) -> np.ndarray:
    """``shown`` evenly spaced unit indices of a layer of ``width`` (all of them when it is narrower)."""
    return np.unique(np.linspace(0, width - 1, min(shown, width)).round().astype(int))


def _largest_pruned(model, masks) -> float:
    """The largest |ω| among the weights the masks remove (0 when pruning held)."""
    return max(float((w.detach().abs() * ~masks[name]).max()) for name, w in prunable_weights(model).items())


# =========================================================================== 20.15
@figure("20.15", title="Pruning a network by weight magnitude, then fine-tuning it",
        caption="a) A fully connected ReLU network trained on 8x8 handwritten digits (a few evenly spaced units "
                "of each layer are drawn, with every link between them; line width grows with |ω|). b) The same "
                "units after global magnitude pruning and fine-tuning, at the largest sparsity whose accuracy "
                "stays within two points of the dense network's: the links drawn are those the real mask keeps, "
                "and the labels give the share of each whole weight matrix that survives (global pruning ranks "
                "all weights together, so the shares differ from layer to layer). c) Held-out accuracy against the share of "
                "weights removed: straight after pruning (orange), after fine-tuning the surviving weights with "
                "the pruned ones held at zero (cyan), and after pruning in several rounds with fine-tuning in "
                "between (purple); dashed: the dense network. Most weights can go with little loss once the "
                "rest are retrained.",
        params={"tiny": dict(hidden=[32], dense_steps=300, sparsities=[0.5, 0.9], finetune_steps=50, rounds=2,
                             round_steps=25, lr=1e-3, shown=6),
                "full": dict(hidden=[128, 128], dense_steps=2000, sparsities=[0.2, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98],
                             finetune_steps=600, rounds=4, round_steps=100, lr=1e-3, shown=8)},
        limits={"hidden": Limit(1, 1024, max_len=4), "dense_steps": (1, 20_000),
                "sparsities": Limit(0.0, 0.999, max_len=12), "finetune_steps": (0, 20_000), "rounds": (1, 20),
                "round_steps": (0, 5_000), "lr": (1e-6, 1.0), "shown": (2, 16)})
def pruning(p, run):
    (x, y), (x_test, y_test) = _digits()
    dense = digit_mlp(tuple(p.hidden), steps=p.dense_steps, seed=run.seed, device=run.device)
    dense_accuracy = accuracy(dense, x_test, y_test)
    sparsities = sorted(set(p.sparsities))
    curves = {"pruned": [], "finetuned": [], "iterative": [], "measured": []}
    zero_outside, max_mask_difference, finetuned = 0.0, 0, {}
    for i, s in enumerate(run.progress(sparsities, desc="sparsities")):
        model = digit_mlp(tuple(p.hidden), steps=p.dense_steps, seed=run.seed, device=run.device)  # a fresh copy
        masks = magnitude_masks(model, s, scope="global")
        # the same masks from torch.nn.utils.prune.global_unstructured on another copy (on the CPU, where
        # magnitude_masks ranks: torch.topk could break an exact tie differently on a GPU)
        reference = digit_mlp(tuple(p.hidden), steps=p.dense_steps, seed=run.seed, device=run.device).cpu()
        pairs = [(reference.get_submodule(name.rsplit(".", 1)[0]), "weight") for name in prunable_weights(reference)]
        prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=s)
        max_mask_difference = max(max_mask_difference, sum(int((m.cpu() != module.weight_mask.bool()).sum())
                                                            for m, (module, _) in zip(masks.values(), pairs)))
        curves["pruned"].append(accuracy(apply_masks(model, masks), x_test, y_test))
        finetune(model, masks, (x, y), steps=p.finetune_steps, lr=p.lr, seed=run.seed + i)
        curves["finetuned"].append(accuracy(model, x_test, y_test))
        curves["measured"].append(sparsity(masks))
        zero_outside = max(zero_outside, _largest_pruned(model, masks))
        finetuned[s] = (model, masks)
        model = digit_mlp(tuple(p.hidden), steps=p.dense_steps, seed=run.seed, device=run.device)
        iterative_masks, _ = iterative_pruning(model, s, (x, y), rounds=p.rounds, scope="global",
                                               steps=p.round_steps, lr=p.lr, seed=run.seed + 100 * (i + 1))
        curves["iterative"].append(accuracy(model, x_test, y_test))
        zero_outside = max(zero_outside, _largest_pruned(model, iterative_masks))

    # the drawing: a few units per layer of the dense network and of the most pruned one that still works
    # (fine-tuned within TARGET_POINTS of the dense network; else the least pruned), from the real weights
    working = [s for s, acc in zip(sparsities, curves["finetuned"]) if acc >= dense_accuracy - TARGET_POINTS]
    drawn = max(working) if working else sparsities[0]
    drawn_model, drawn_masks = finetuned[drawn]
    widths = [64, *p.hidden, 10]
    units = [_shown_units(w, p.shown) for w in widths]
    arrays = {f"units_{k}": u for k, u in enumerate(units)}
    dense_weights = list(prunable_weights(dense).values())
    for k, (name, mask) in enumerate(drawn_masks.items()):
        block = np.ix_(units[k + 1], units[k])
        arrays[f"dense_{k}"] = dense_weights[k].detach().cpu().numpy()[block]
        arrays[f"pruned_{k}"] = prunable_weights(drawn_model)[name].detach().cpu().numpy()[block]
        arrays[f"mask_{k}"] = mask.cpu().numpy()[block]
    kept_per_layer = [float(m.float().mean()) for m in drawn_masks.values()]
    arrays.update({key: np.asarray(v) for key, v in curves.items()})
    arrays["sparsities"] = np.asarray(sparsities)
    n_weights = sum(m.numel() for m in drawn_masks.values())
    metrics = {"dense_test_accuracy": dense_accuracy, "sparsities": sparsities, "widths": widths,
               "n_weights": n_weights, "measured_sparsity": curves["measured"],
               "pruned_accuracy": curves["pruned"], "finetuned_accuracy": curves["finetuned"],
               "iterative_accuracy": curves["iterative"], "kept_per_layer": kept_per_layer,
               "drawn_sparsity": drawn, "drawn_accuracy": curves["finetuned"][sparsities.index(drawn)],
               "max_mask_difference_vs_torch": max_mask_difference, "max_pruned_weight": zero_outside}
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"The network is udl.nn.deep.DeepNetwork {widths} trained with AdamW for {p.dense_steps} "
                        "steps on load_digits('train', seed=0) (1,438 images); accuracies are on its 359 held-out "
                        f"digits. Global magnitude pruning over the {n_weights:,} weights of the matrices (biases "
                        f"kept); one-shot fine-tuning: {p.finetune_steps} Adam steps (lr {p.lr:g}, batches of 64), "
                        f"the pruned weights set back to zero after every step; iterative: {p.rounds} rounds of "
                        f"{p.round_steps} steps, each pruning to 1 − (1 − s)^(r/{p.rounds}). The masks equal "
                        "torch.nn.utils.prune.global_unstructured's. The book draws a small network; here "
                        f"{p.shown} evenly spaced units per layer stand for the whole of it.")


@pruning.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig, axes = style.subplots(1, 3, width=3.4, height=3.0)
    n_layers = len(m["widths"]) - 1
    largest = max(abs(a[f"dense_{k}"]).max() for k in range(n_layers))
    for ax, kind in zip(axes[:2], ("dense", "pruned")):
        _draw_network(ax, a, n_layers, kind, largest, m["widths"])
    axes[0].set_title("a) dense network")
    at = m["sparsities"].index(m["drawn_sparsity"])
    axes[1].set_title(f"b) {100 * m['measured_sparsity'][at]:.0f}% pruned, fine-tuned")
    for k, kept in enumerate(m["kept_per_layer"]):
        axes[1].text(k + 0.5, -0.62, f"{100 * kept:.0f}%\nkept", ha="center", va="top", fontsize=7,
                     color=style.MODEL)

    ax = axes[2]
    s = 100 * np.asarray(a["measured"])
    ax.axhline(100 * m["dense_test_accuracy"], color=style.TRUTH, ls="--", lw=1, label="dense")
    ax.plot(s, 100 * a["pruned"], "o-", color=style.DATA, ms=3, label="pruned")
    ax.plot(s, 100 * a["finetuned"], "o-", color=style.MODEL, ms=3, label="pruned + fine-tuned")
    ax.plot(s, 100 * a["iterative"], "s:", color=style.EXTRA[0], ms=3, label="iterative")
    ax.set(xlabel="weights pruned (%)", ylabel="held-out accuracy (%)", title="c) accuracy against sparsity",
           ylim=(0, 102))
    ax.legend(fontsize=7, loc="lower left")
    return fig


def _draw_network(ax, a, n_layers: int, kind: str, largest: float, widths) -> None:
    """Nodes at x = layer, links between the drawn units where the weights are non-zero (all, for the dense net)."""
    positions = []
    for k in range(n_layers + 1):
        n = len(a[f"units_{k}"])
        positions.append(np.linspace(-0.5, 0.5, n) if n > 1 else np.zeros(1))
    for k in range(n_layers):
        weights = a[f"{kind}_{k}"]
        keep = np.ones_like(weights, bool) if kind == "dense" else a[f"mask_{k}"]
        for i in range(weights.shape[0]):
            for j in range(weights.shape[1]):
                if keep[i, j]:
                    ax.plot([k, k + 1], [positions[k][j], positions[k + 1][i]], color=style.TRUTH,
                            lw=0.15 + 1.6 * abs(weights[i, j]) / largest, zorder=1)
    for k in range(n_layers + 1):
        face = style.DATA if k == 0 else (style.MODEL if k == n_layers else "white")
        for y in positions[k]:
            drawing.node(ax, (k, y), r=0.045, face=face, lw=0.6)
        ax.text(k, 0.6, f"{len(positions[k])} of {widths[k]}", ha="center", fontsize=6.5)
    ax.set_aspect("equal")
    drawing.frame(ax, (-0.2, n_layers + 0.2), (-0.85, 0.68))


@pruning.checks
def _(r):
    m, p = r.metrics, r.params
    sparsities, n = m["sparsities"], m["n_weights"]
    checks = [
        Check.equal("the masks equal torch.nn.utils.prune.global_unstructured's (entries that differ)",
                    m["max_mask_difference_vs_torch"], 0),
        Check.less("each run removes its share of the weights: |measured − asked| ≤ 1/(2n)",
                   max(abs(a - b) for a, b in zip(m["measured_sparsity"], sparsities)), 0.5 / n + 1e-12),
        Check.equal("the pruned weights stay exactly zero through fine-tuning (largest |ω| outside the masks)",
                    m["max_pruned_weight"], 0.0),
    ]
    claim = "fine-tuning wins back accuracy lost to pruning (at the largest sparsity)"
    lost = m["dense_test_accuracy"] - m["pruned_accuracy"][-1]
    if p["finetune_steps"] < MIN_RECOVERY_STEPS:
        checks.append(Check.untested(claim, f"needs at least {MIN_RECOVERY_STEPS} fine-tuning steps; here "
                                            f"{p['finetune_steps']}"))
    elif (1 - m["measured_sparsity"][-1]) * n < MIN_KEPT:
        checks.append(Check.untested(claim, f"needs at least {MIN_KEPT} weights left at the largest sparsity; here "
                                            f"{round((1 - m['measured_sparsity'][-1]) * n)}"))
    elif lost < MIN_LOSS:
        checks.append(Check.untested(claim, f"needs a sparsity where pruning costs at least {100 * MIN_LOSS:g} "
                                            f"points; the largest here costs {100 * lost:.1f}"))
    else:
        checks.append(Check.greater(claim, m["finetuned_accuracy"][-1], m["pruned_accuracy"][-1]))
    claim = (f"at {TARGET_SPARSITY:.0%} sparsity the fine-tuned network is within {100 * TARGET_POINTS:g} points "
             "of the dense one")
    if TARGET_SPARSITY not in sparsities or p["finetune_steps"] < MIN_TARGET_STEPS \
            or min(p["hidden"]) < MIN_TARGET_WIDTH or p["dense_steps"] < 1000:
        checks.append(Check.untested(claim, f"needs {TARGET_SPARSITY} among the sparsities, hidden widths of at "
                                            f"least {MIN_TARGET_WIDTH}, >= 1000 dense and >= {MIN_TARGET_STEPS} "
                                            "fine-tuning steps (where it was measured)"))
    else:
        at = sparsities.index(TARGET_SPARSITY)
        checks.append(Check.greater(claim, m["finetuned_accuracy"][at], m["dense_test_accuracy"] - TARGET_POINTS))
    return checks
