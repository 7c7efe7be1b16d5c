"""Chapter 12, §12.10.2: the vision transformer on real images, and what it costs to lack a CNN's bias (fig. 12.17)."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from udl import drawing, style
from udl.data.images import load_digits
from udl.models.densenet import DenseNet, DenseNetConfig
from udl.models.vit import ViT, ViTConfig, image_patches
from udl.registry import Check, Limit, Result, figure
from udl.train.classifiers import classification_error
from udl.train.recipes import fit_adamw

N_CLASSES = 10
_NAMES = {"vit": "transformer", "cnn": "CNN"}
MIN_EPOCHS = 20  # passes over the whole training set before the data-efficiency claim is tested


def _digits(split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out split of scikit-learn's digits as ``(N, 1, 8, 8)`` images and ``(N,)`` labels."""
    x, y = load_digits(split, seed=seed, flat=False)
    return torch.from_numpy(x)[:, None], torch.from_numpy(y)


def _balanced_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of n training images, as equal a share of each digit as n allows, drawn with ``seed``."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    rank = torch.zeros(len(y), dtype=torch.long)  # each image's place among the shuffled images of its digit
    for k in range(N_CLASSES):
        of_k = order[y[order] == k]
        rank[of_k] = torch.arange(len(of_k))
    chosen = order[torch.argsort(rank[order], stable=True)[:n]]  # the first of every digit, then the second...
    return chosen.sort().values


def _train(model, x, y, p, seed: int, device) -> tuple[list[float], float]:
    """The one recipe for both networks: AdamW, linear warm-up over 10% of the steps, cosine decay to zero."""
    start = time.perf_counter()
    losses = fit_adamw(model, (x, y), F.cross_entropy, steps=p.steps, lr=p.lr, weight_decay=p.weight_decay,
                       floor=0.0, batch_size=p.batch_size, seed=seed, device=device, progress=False)
    return losses, time.perf_counter() - start


def _vit_config(p) -> ViTConfig:
    return ViTConfig.digits(patch_size=p.patch_size, n_layers=p.n_layers, d_model=p.d_model, n_heads=p.n_heads,
                            d_mlp=p.d_mlp, init_std=p.init_std)


def _cnn_config(p) -> DenseNetConfig:
    return DenseNetConfig(in_channels=1, n_classes=N_CLASSES, growth_rate=p.cnn_growth,
                          block_layers=(p.cnn_layers, p.cnn_layers), stem_channels=p.cnn_stem)


@figure("12.17", title="A vision transformer classifies handwritten digits",
        caption="A vision transformer trained on scikit-learn's 8x8 handwritten digits (1,438 training images, 359 "
                "held out). a) A held-out digit cut into a grid of 2x2-pixel patches; each patch is flattened and "
                "mapped by the same learned linear transformation to a patch embedding (the columns of the matrix; "
                "the first column is the learned <cls> embedding). A learned position embedding is added to every "
                "column, and the sequence passes through pre-LN transformer layers in which every patch attends to "
                "every other. b) The output at <cls> goes through a linear layer and a softmax: the class "
                "probabilities for this digit (the true class in black). c) Held-out accuracy of the transformer "
                "and of a small convolutional network (a DenseNet) trained by the same recipe for the same number "
                "of steps, on all training images and on 100 of them. The transformer has no notion that "
                "neighbouring pixels belong together except what its position embeddings learn, and loses more "
                "accuracy than the convolutional network when the data are few.",
        params={"tiny": dict(patch_size=2, n_layers=1, d_model=32, n_heads=4, d_mlp=64, init_std=0.2,
                             cnn_growth=4, cnn_layers=2, cnn_stem=8, steps=200, lr=3e-3, weight_decay=0.05,
                             batch_size=64, small_train=100, repeats=1, accuracy_target=0.7),
                "full": dict(patch_size=2, n_layers=2, d_model=64, n_heads=4, d_mlp=128, init_std=0.2,
                             cnn_growth=8, cnn_layers=3, cnn_stem=16, steps=500, lr=1e-3, weight_decay=0.05,
                             batch_size=64, small_train=100, repeats=3, accuracy_target=0.95)},
        # patches of 1 pixel make 64 tokens, of 8 pixels a single one; the networks stay small enough for a CPU
        limits={"patch_size": Limit(choices=(1, 2, 4, 8)), "n_layers": (1, 8), "d_model": (4, 256),
                "n_heads": (1, 16), "d_mlp": (4, 1024), "init_std": (1e-3, 2.0), "cnn_growth": (1, 64),
                "cnn_layers": (1, 8), "cnn_stem": (1, 128), "steps": (10, 20_000), "lr": (1e-5, 0.1),
                "weight_decay": (0.0, 1.0), "batch_size": (1, 512), "small_train": (10, 1000), "repeats": (1, 10),
                "accuracy_target": (0.0, 1.0)})
def vision_transformer(p, run):
    x_train, y_train = _digits("train", run.seed)
    x_test, y_test = _digits("test", run.seed)
    # all images once; the few images `repeats` times, each repeat with its own images, weights and batch order
    subsets = [_balanced_subset(y_train, p.small_train, run.seed + r) for r in range(p.repeats)]
    runs = [("all", 0, torch.arange(len(y_train)))] + [("small", r, idx) for r, idx in enumerate(subsets)]
    builders = {"vit": lambda seed: ViT(_vit_config(p), generator=seed),
                "cnn": lambda seed: DenseNet(_cnn_config(p), generator=seed)}

    accuracy, seconds, losses, models = {}, {}, {}, {}
    for name, build in builders.items():
        for size, r, idx in runs:
            model = build(run.seed + r)
            losses[name, size, r], seconds[name, size, r] = _train(model, x_train[idx], y_train[idx], p, run.seed + r,
                                                                   run.device)
            accuracy[name, size, r] = 1 - classification_error(model, x_test, y_test)
            models[name, size, r] = model.cpu().eval()
    small = {name: np.array([accuracy[name, "small", r] for r in range(p.repeats)]) for name in builders}
    gap = small["cnn"] - small["vit"]  # per repeat: how much better the CNN does with the few images

    # the trained transformer (all images) on one held-out digit: patches, embeddings, prediction
    vit = models["vit", "all", 0]
    shown = int(run.rng.integers(len(x_test)))
    image = x_test[shown:shown + 1]  # (1, 1, 8, 8)
    with torch.no_grad():
        patches = image_patches(image, p.patch_size)  # (1, N, P²)
        embeddings = vit.patch_embed(image)  # (1, N, D)
        tokens = vit.embed(image)  # (1, N + 1, D): <cls> first, positions added
        probs = torch.softmax(vit(image).double(), -1)[0]  # (K,)
        conv = vit.patch_embed.to_conv()(image).flatten(2).transpose(1, 2)  # the same map as a strided convolution
    config = vit.config
    n_cnn = sum(q.numel() for q in models["cnn", "all", 0].parameters())
    metrics = {
        "n_train": len(x_train), "n_test": len(x_test), "small_train": p.small_train, "repeats": p.repeats,
        "small_class_counts": torch.bincount(y_train[subsets[0]], minlength=N_CLASSES).tolist(),
        "vit_accuracy": accuracy["vit", "all", 0], "cnn_accuracy": accuracy["cnn", "all", 0],
        "vit_accuracy_small": float(small["vit"].mean()), "cnn_accuracy_small": float(small["cnn"].mean()),
        "vit_accuracy_small_runs": small["vit"].tolist(), "cnn_accuracy_small_runs": small["cnn"].tolist(),
        "vit_drop": accuracy["vit", "all", 0] - float(small["vit"].mean()),
        "cnn_drop": accuracy["cnn", "all", 0] - float(small["cnn"].mean()),
        # the standard error of the mean gap over the repeats (None with one repeat)
        "small_gap_se": float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else None,
        "epochs_all": p.steps * p.batch_size / len(x_train),
        "vit_parameters": config.parameter_count(), "cnn_parameters": n_cnn,
        "vit_parameters_counted": sum(q.numel() for q in vit.parameters()),
        "final_loss": {f"{name}_{size}_{r}": float(np.mean(v[-max(1, len(v) // 20):]))
                       for (name, size, r), v in losses.items()},
        "n_patches": config.n_patches, "d_patch": config.d_patch, "d_model": config.d_model, "grid": config.grid,
        "patch_size": config.patch_size, "n_layers": config.n_layers, "n_heads": config.n_heads,
        "patches_shape": list(patches.shape), "embeddings_shape": list(embeddings.shape),
        "tokens_shape": list(tokens.shape),
        "conv_difference": float((conv - embeddings).abs().max()),
        "shown": shown, "shown_label": int(y_test[shown]), "probabilities": probs.tolist(),
        "predicted": int(probs.argmax()),
    }
    arrays = {"image": image[0, 0].numpy(), "patches": patches[0].numpy(),
              "tokens": torch.cat([vit.cls_token[None], embeddings[0]]).detach().numpy()}  # (N + 1, D)
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"The original ViT cuts 224x224 photographs into 16x16 patches and is pre-trained on 14-300 "
                        f"million images; here 8x8 digits are cut into {p.patch_size}x{p.patch_size} patches "
                        f"({config.n_patches} tokens and <cls>, {p.patch_size}x{p.patch_size} is the largest patch "
                        "that still leaves a sequence: 4x4 patches would give four tokens), with "
                        f"{config.n_layers} layer(s), D = {config.d_model}, {config.n_heads} heads, "
                        f"{metrics['vit_parameters']:,} parameters, trained from scratch. The layout is Hugging Face's "
                        "ViT (pre-LN, exact GELU, final LayerNorm, linear head on <cls>; tested equal), but <cls> "
                        f"and the positions start at N(0, {p.init_std:g}²) rather than N(0, 0.02²), which trains "
                        "faster here. The convolutional baseline is a DenseNet with two blocks of "
                        f"{p.cnn_layers} layers ({n_cnn:,} parameters). Both: AdamW (lr {p.lr:g}, weight decay "
                        f"{p.weight_decay:g} on matrices), warm-up over 10% of {p.steps} steps then cosine decay, "
                        f"batches of {p.batch_size}, no augmentation. All the images are used once (seed {run.seed}); "
                        f"{p.small_train} of them (every digit about equally often) {p.repeats} time(s), each "
                        "with other images, weights and batch order (seeds "
                        f"{run.seed}..{run.seed + p.repeats - 1}): the bars are means, the dots single runs. "
                        "Training took "
                        + ", ".join(f"{_NAMES[name]}, {len(x_train) if size == 'all' else p.small_train:,} "
                                   f"images: {s:.1f} s" for (name, size, r), s in seconds.items())
                        + " (seconds are not metrics: they differ from run to run).")


@vision_transformer.requires
def _(p):
    _vit_config(p)  # ViTConfig's checks: heads that divide D
    if p.batch_size > p.small_train:
        raise ValueError(f"The 'batch_size' parameter of figure 12.17 must be at most small_train "
                         f"({p.small_train}). Got {p.batch_size} instead.")


@vision_transformer.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(10, 6.4), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[1.25, 1], width_ratios=[1.5, 1, 1])
        ax = fig.add_subplot(grid[0, :])
        ax_prob = fig.add_subplot(grid[1, 0])
        ax_acc = fig.add_subplot(grid[1, 1:])
    _draw_vit(ax, m, a)

    k = np.arange(N_CLASSES)
    colours = [style.TRUTH if i == m["shown_label"] else style.MODEL for i in k]
    ax_prob.bar(k, m["probabilities"], color=colours, width=0.7)
    ax_prob.set(xticks=k, ylim=(0, 1.05), xlabel="class (digit)", ylabel="probability",
                title=f"Prediction at <cls>: {m['predicted']} (true: {m['shown_label']})")

    groups = [f"all {m['n_train']:,} images",
              f"{m['small_train']} images" + (f" (mean of {m['repeats']})" if m["repeats"] > 1 else "")]
    x = np.arange(2)
    vit = [m["vit_accuracy"], m["vit_accuracy_small"]]
    cnn = [m["cnn_accuracy"], m["cnn_accuracy_small"]]
    for offset, values, runs, colour, label in (
            (-0.18, vit, m["vit_accuracy_small_runs"], style.MODEL,
             f"vision transformer ({m['vit_parameters']:,} parameters)"),
            (0.18, cnn, m["cnn_accuracy_small_runs"], style.EXTRA[0],
             f"convolutional network ({m['cnn_parameters']:,})")):
        ax_acc.bar(x + offset, values, width=0.34, color=colour, label=label)
        for xi, v, top in zip(x + offset, values, (values[0], max([values[1], *runs]))):
            ax_acc.text(xi, top + 0.03, f"{v:.3f}", ha="center", fontsize=7)
        if len(runs) > 1:
            ax_acc.plot(np.full(len(runs), x[1] + offset), runs, "o", color=style.TRUTH, ms=2.5)
    ax_acc.axhline(0.1, color=style.REGION, ls=":", lw=1.2, label="chance (0.1)")
    ax_acc.set(xticks=x, ylim=(0, 1.4), yticks=np.linspace(0, 1, 6), ylabel=f"held-out accuracy ({m['n_test']} images)",
               title="Same recipe, same steps")
    ax_acc.set_xticklabels(groups)
    ax_acc.legend(fontsize=7, loc="upper center", ncol=2)
    style.panel_labels(np.array([ax, ax_prob, ax_acc]))
    return fig


def _draw_vit(ax, m, a):
    """Fig. 12.17 redrawn from the run: image and patch grid, the patches, their embeddings, the encoder, <cls>."""
    n, g, p = m["n_patches"], m["grid"], m["patch_size"]
    ax.set(xlim=(-0.5, 21.5), ylim=(-0.6, 6.4), aspect="equal")
    ax.axis("off")
    # the image with its patch grid
    side = 3.2
    ax.imshow(a["image"], cmap="gray_r", extent=(0, side, 1.2, 1.2 + side), vmin=0, vmax=1)
    for i in range(g + 1):
        t = i * side / g
        ax.plot([t, t], [1.2, 1.2 + side], color=style.DATA, lw=1.2)
        ax.plot([0, side], [1.2 + t, 1.2 + t], color=style.DATA, lw=1.2)
    ax.text(side / 2, 0.9, f"held-out digit, {g}x{g} patches of {p}x{p}", ha="center", va="top", fontsize=7)
    # the patches in reading order, one column each, with the <cls> column in front
    x0, width = 4.6, 16.2
    step = width / (n + 1)
    cell = min(0.8 * step, 1.0)
    drawing.box(ax, x0 + step / 2, 0.1 + cell / 2, cell, cell, "<cls>", face="#E0E0E0", fontsize=6)
    for j in range(n):
        cx = x0 + (j + 1.5) * step
        patch = a["patches"][j].reshape(-1, p, p)[0]  # the first channel
        ax.imshow(patch, cmap="gray_r", extent=(cx - cell / 2, cx + cell / 2, 0.1, 0.1 + cell), vmin=0, vmax=1)
        ax.add_patch(plt.Rectangle((cx - cell / 2, 0.1), cell, cell, fill=False, ec=style.DATA, lw=0.8))
        ax.annotate("", (cx, 1.35), (cx, 0.2 + cell), arrowprops=dict(arrowstyle="->", lw=0.5, color="gray"))
    ax.annotate("", (x0 - 0.05, 0.1 + cell / 2), (side + 0.1, 2.0), arrowprops=dict(arrowstyle="->", lw=0.8))
    # the embeddings: one column per token
    tokens = a["tokens"].T  # (D, N + 1)
    top = 1.4 + 1.9
    vmax = float(np.abs(tokens).max()) or 1.0
    ax.imshow(tokens, cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=(x0, x0 + width, 1.4, top), aspect="auto",
              interpolation="nearest")
    ax.add_patch(plt.Rectangle((x0, 1.4), step, top - 1.4, fill=False, ec="black", lw=1.0))
    ax.text(x0 - 0.1, (1.4 + top) / 2, f"embeddings\n(D = {m['d_model']})", ha="right", va="center", fontsize=7)
    ax.text(x0 + width + 0.1, (1.4 + top) / 2, "+ learned\npositions", ha="left", va="center", fontsize=7)
    drawing.box(ax, x0 + width / 2, top + 0.75, width, 0.9,
                f"transformer encoder: {m['n_layers']} pre-LN layer{'s' if m['n_layers'] > 1 else ''}, "
                f"{m['n_heads']} heads; every token attends to every token", face="#CDEFF4", fontsize=7.5)
    for j in range(n + 1):
        cx = x0 + (j + 0.5) * step
        ax.annotate("", (cx, top + 0.3), (cx, top), arrowprops=dict(arrowstyle="->", lw=0.5, color="gray"))
        ax.add_patch(plt.Rectangle((cx - 0.25 * step, top + 1.35), 0.5 * step, 0.35,
                                   fc=style.MODEL if j == 0 else "#E8F7FA", ec="none"))
    cx = x0 + 0.5 * step
    ax.annotate("", (cx, top + 2.55), (cx, top + 1.75), arrowprops=dict(arrowstyle="->", lw=1.0))
    ax.text(cx + 0.25, top + 2.2, "<cls> output → linear layer → softmax: class probabilities (b)", ha="left",
            va="center", fontsize=7)
    ax.set_title(f"Image → {n} patches → linear patch embeddings (the same Ω for every patch) → encoder → <cls>",
                 fontsize=9)


@vision_transformer.checks
def _(r):
    m, p = r.metrics, r.params
    n, d, dp = m["n_patches"], m["d_model"], m["d_patch"]
    checks = [
        Check.greater(f"the vision transformer's held-out accuracy (all training images) is above "
                      f"{p['accuracy_target']:g}", m["vit_accuracy"], p["accuracy_target"]),
        Check.equal(f"the image becomes {n} patches of {dp} numbers", m["patches_shape"], [1, n, dp]),
        Check.equal(f"each patch becomes an embedding of size D = {d}", m["embeddings_shape"], [1, n, d]),
        Check.equal("with <cls> in front, the encoder reads N + 1 tokens", m["tokens_shape"], [1, n + 1, d]),
        Check.less("the linear patch embedding equals a convolution with kernel and stride P (largest difference)",
                   m["conv_difference"], 1e-5),
        Check.close("the <cls> output's softmax is a probability distribution (sums to one)",
                    sum(m["probabilities"]), 1.0, 1e-9),
        Check.equal("the closed-form parameter count equals the model's", m["vit_parameters_counted"],
                    m["vit_parameters"]),
    ]
    runs = f" (mean of {m['repeats']} runs)" if m["repeats"] > 1 else ""
    claims = [f"with {m['small_train']} training images{runs} the transformer loses more held-out accuracy than "
              "the convolutional network",
              f"with {m['small_train']} training images{runs} the convolutional network is more accurate than the "
              "transformer"]
    if m["epochs_all"] < MIN_EPOCHS:
        why = (f"the training makes {m['epochs_all']:.1f} passes over all {m['n_train']:,} images; comparing what "
               f"the data size costs needs networks trained to convergence ({MIN_EPOCHS} passes or more)")
        checks += [Check.untested(c, why) for c in claims]
    else:
        checks += [Check.greater(claims[0] + ": the transformer's drop in accuracy minus the CNN's",
                                 m["vit_drop"] - m["cnn_drop"], 0.0),
                   Check.greater(claims[1] + ": CNN minus transformer",
                                 m["cnn_accuracy_small"] - m["vit_accuracy_small"], 0.0)]
    return checks
