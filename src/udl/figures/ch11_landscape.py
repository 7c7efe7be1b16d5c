"""Chapter 11: loss surfaces with and without skip connections (fig. 11.13, after Li et al. 2018)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from udl import style
from udl.analysis.loss_landscape import (local_minima, loss_surface, model_loss, nonconvexity, random_direction,
                                         surface_roughness)
from udl.data.mnist1d import load_mnist1d
from udl.nn.conv import conv_layer
from udl.nn.init import initialised_from
from udl.nn.normalization import batch_norm_layer
from udl.nn.residual import ResidualBlock, count_parameters
from udl.registry import Check, Result, figure
from udl.train import fit

BOOK_LAYERS = 56  # the book's networks (Li et al.'s ResNet-56 on CIFAR-10)
# How much rougher the no-skip surface must be. Measured ratios (seeds 0-11 at tiny, 0-2 at full):
# 1.72-2.74 on the tiny preset's 11x11 grid, 3.8-5.8 on the full preset's 21x21 grid.
ROUGHNESS_RATIO = {"coarse": 1.5, "fine": 2.5}  # grids below / from 21 points a side
NAMES = {"skip": "with skip connections", "plain": "without skip connections"}


def _network(blocks: int, channels: int, skip: bool, seed: int):
    """MNIST-1D classifier: stem convolution (stride 4), residual blocks, pooled linear head.

    ``skip=False`` drops every block's identity path and nothing else: the same
    parameters, initialised with the same numbers.
    """
    net = nn.Sequential()
    with initialised_from(net, torch.Generator().manual_seed(seed)):  # every weight from the seed, in this order
        net.extend([nn.Unflatten(1, (1, 40)),  # (N, 40) -> (N, 1, 40)
                    conv_layer(1, 1, channels, 3, stride=4),  # -> (N, C, 10)
                    *[ResidualBlock(channels, dims=1, skip=skip) for _ in range(blocks)],
                    batch_norm_layer(1, channels), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                    nn.Linear(channels, 10)])
    return net


@figure("11.13", title="Skip connections smooth the loss surface",
        caption="The training loss of a trained network plotted over a plane through its parameters: "
                "φ* + α·d₁ + β·d₂ for two random Gaussian directions d₁, d₂ that are filter-normalised "
                "(every filter of a direction is scaled to the norm of the matching trained filter, biases and "
                "batch norm parameters are not moved), as Li et al. (2018) do. a, c) A residual network of 1D "
                "convolutions trained on MNIST-1D. b, d) The identical network, trained identically, with its "
                "skip connections removed. The residual network sits in a single smooth bowl; without the skip "
                "connections the same depth gives a ragged surface with many small basins, and the same "
                "training reaches a much higher loss. Roughness is measured as the mean size of the surface's "
                "discrete Hessian relative to its rise, and the grid's local minima are counted.",
        params={"tiny": dict(blocks=14, channels=8, steps=100, lr=0.05, grid=11, span=1.0, n_eval=64),
                "full": dict(blocks=27, channels=16, steps=1000, lr=0.05, grid=21, span=1.0, n_eval=500)},
        # grids from 7 a side: on a 5 x 5 grid every point but the corners is within 2 steps of the centre
        limits={"blocks": (1, 64), "channels": (1, 64), "steps": (2, 20_000), "lr": (1e-5, 1.0), "grid": (7, 51),
                "span": (0.01, 10.0), "n_eval": (1, 4000)})
def loss_landscapes(p, run):
    data = load_mnist1d()  # 4,000 training sequences of length 40, 10 classes
    x_train, y_train, x_test, y_test = data.tensors()
    eval_data = (x_train[:p.n_eval], y_train[:p.n_eval])  # one fixed batch: the surface is a fixed function
    loss_fn = nn.CrossEntropyLoss()
    alphas = np.linspace(-p.span, p.span, p.grid)
    alphas[p.grid // 2] = 0.0  # the centre is φ* itself
    centre = p.grid // 2
    metrics = {"layers": 2 * p.blocks + 2, "book_layers": BOOK_LAYERS, "grid": p.grid, "span": p.span,
               "n_eval": p.n_eval, "steps": p.steps,
               "roughness_threshold": ROUGHNESS_RATIO["fine" if p.grid >= 21 else "coarse"]}
    arrays = {"alphas": alphas}
    with run.progress(total=2, desc="11.13 nets") as bar:
        for name, skip in (("skip", True), ("plain", False)):
            net = _network(p.blocks, p.channels, skip, run.seed)
            losses = fit(net, (x_train, y_train), loss_fn,
                         lambda params: torch.optim.SGD(params, lr=p.lr, momentum=0.9, weight_decay=5e-4),
                         steps=p.steps, batch_size=100, seed=run.seed, device=run.device, progress=False,
                         scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.steps))
            generator = run.generator(100)  # the same Gaussian draws for both networks
            d1, d2 = random_direction(net, generator), random_direction(net, generator)
            surface = loss_surface(net, loss_fn, eval_data, (d1, d2), alphas, alphas, batch_norm="batch")
            net.eval()
            with torch.no_grad():
                device = next(net.parameters()).device
                accuracy = float((net(x_test.to(device)).argmax(1).cpu() == y_test).float().mean())
            # |‖d_j‖ / ‖φ*_j‖ - 1| over every filter j of every weight tensor of both directions
            filter_error = max(float((d[k].flatten(1).norm(dim=1) / w.detach().flatten(1).norm(dim=1) - 1).abs().max())
                               for d in (d1, d2) for k, w in net.named_parameters() if w.dim() > 1)
            i, j = np.unravel_index(np.argmin(surface), surface.shape)
            metrics.update({
                f"params_{name}": count_parameters(net),
                f"train_loss_{name}": float(np.mean(losses[-max(1, p.steps // 20):])),
                f"test_accuracy_{name}": accuracy,
                f"centre_{name}": float(surface[centre, centre]),
                f"model_loss_{name}": model_loss(net, loss_fn, eval_data, batch_norm="batch"),
                f"roughness_{name}": surface_roughness(surface),
                f"nonconvexity_{name}": nonconvexity(surface),
                f"local_minima_{name}": local_minima(surface),
                f"argmin_steps_{name}": float(np.hypot(i - centre, j - centre)),  # in grid steps
                f"max_loss_{name}": float(surface.max()),
                f"filter_norm_error_{name}": filter_error,
            })
            arrays[f"surface_{name}"] = surface
            bar.update()
    metrics["roughness_ratio"] = metrics["roughness_plain"] / max(metrics["roughness_skip"], 1e-12)
    notes = (f"MNIST-1D (4,000 training sequences) instead of CIFAR-10, and narrow 1D networks: a stride-4 "
             f"convolution to {p.channels} channels, {p.blocks} pre-activation residual blocks (two convolutions "
             f"each), a pooled linear layer: {metrics['layers']} layers against the book's {BOOK_LAYERS}. Both "
             f"nets are trained by SGD with momentum 0.9, weight decay 5e-4 and a cosine schedule from "
             f"{p.lr:g} for {p.steps:,} steps of 100 (Li et al.: 300 epochs of CIFAR-10). The surface is the "
             f"loss on {p.n_eval} training sequences taken as one batch, on a {p.grid}x{p.grid} grid over "
             f"[-{p.span:g}, {p.span:g}]² (Li et al.: the whole training set, 51x51). Batch norm uses the "
             f"statistics of that batch, as in training, where Li et al. evaluate with the stored running "
             f"statistics: with those, the stale statistics make our narrow networks' loss grow by orders of "
             f"magnitude towards the grid's edge (to 1e5-1e9 for the full preset's networks in our trials) and "
             f"the picture shows only that growth. In this budget the network without skips trains worse (final training loss {metrics['train_loss_plain']:.2f} against "
             f"{metrics['train_loss_skip']:.2f}; the degradation of §11.1), so its surface is drawn around a "
             f"point far from a minimum (Li et al. trained theirs for 300 epochs).")
    return Result(metrics=metrics, arrays=arrays, notes=notes)


@loss_landscapes.requires
def _(p):
    if p.grid % 2 == 0:  # an even grid has no middle point: α = 0 would break the even spacing of the others
        raise ValueError(f"The 'grid' parameter of figure 11.13 must be odd (a centre point at φ*). "
                         f"Got {p.grid} instead.")


@loss_landscapes.plot
def _(r):
    m, a = r.metrics, r.arrays
    alphas = a["alphas"]
    A, B = np.meshgrid(alphas, alphas, indexing="ij")
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(7.6, 6.8), layout="constrained")
        axes = [fig.add_subplot(2, 2, k + 1, projection="3d") for k in range(2)]
        axes += [fig.add_subplot(2, 2, k + 3) for k in range(2)]
    for k, name in enumerate(("skip", "plain")):
        surface = a[f"surface_{name}"]
        low, high = float(surface.min()), float(surface.max())  # each surface on its own scale, as Li et al.
        ax = axes[k]
        ax.plot_surface(A, B, surface, cmap=style.CMAP, vmin=low, vmax=high, rstride=1, cstride=1, linewidth=0.2,
                        edgecolor="white", antialiased=True)
        ax.set(xlabel="α", ylabel="β", zlim=(low, high))
        ax.tick_params(axis="z", pad=1)
        ax.view_init(elev=35, azim=-60)
        ax.set_title(f"{'ab'[k]}) {NAMES[name]}", loc="left", fontweight="bold", fontsize=9)
        ax = axes[k + 2]
        levels = np.linspace(low, high, 25)
        filled = ax.contourf(alphas, alphas, surface.T, levels=levels, cmap=style.CMAP)
        ax.contour(alphas, alphas, surface.T, levels=levels[::2], colors="white", linewidths=0.4)
        ax.plot(0, 0, marker="+", color=style.TRUTH, ms=8, mew=1.2)
        ax.set(xlabel="α (direction d₁)", ylabel="β (direction d₂)", aspect="equal")
        minima = m[f"local_minima_{name}"]
        ax.set_title(f"{'cd'[k]}) contours of {'ab'[k]})", loc="left", fontweight="bold", fontsize=9)
        words = f"roughness {m[f'roughness_{name}']:.3f}\n{minima} local minim{'um' if minima == 1 else 'a'}"
        ax.text(0.03, 0.04, words,
                transform=ax.transAxes, fontsize=7.5, va="bottom",
                bbox=dict(boxstyle="round,pad=0.25", facecolor="white", edgecolor="none", alpha=0.85))
        fig.colorbar(filled, ax=ax, shrink=0.75, label="training loss", format="%.1f",
                     ticks=np.linspace(low, high, 5))
    fig.suptitle(f"{m['layers']} layers on MNIST-1D; + marks the trained parameters (training loss "
                 f"{m['train_loss_skip']:.3f} with skips, {m['train_loss_plain']:.3f} without)", fontsize=9)
    return fig


@loss_landscapes.checks
def _(r):
    m = r.metrics
    checks = [
        Check.greater(f"the surface without skip connections is rougher: roughness ratio (plain / residual), "
                      f"{m['roughness_plain']:.4f} / {m['roughness_skip']:.4f}", m["roughness_ratio"],
                      m["roughness_threshold"]),
    ]
    more = "the surface without skips has more local minima on the grid than the residual one (difference)"
    if m["grid"] >= 21:  # a grid this fine resolves the small basins: strictly more of them
        checks.append(Check.greater(more, m["local_minima_plain"] - m["local_minima_skip"], 0))
    else:  # a coarse grid can miss some basins: ask only for no fewer
        checks.append(Check.greater("the surface without skips has at least as many local minima on the grid as "
                                    "the residual one (difference)", m["local_minima_plain"] - m["local_minima_skip"],
                                    -1))
        checks.append(Check.untested(more, f"needs a grid of at least 21 points a side to resolve the small basins; "
                                           f"grid = {m['grid']}"))
    checks += [
        Check.equal("removing the skip connections removes no parameters", m["params_plain"], m["params_skip"]),
        Check.less("the residual network trains to a lower loss (final training loss, residual - plain)",
                   m["train_loss_skip"] - m["train_loss_plain"], 0.0),
        Check.close("the centre of the residual surface is the trained model's loss", m["centre_skip"],
                    m["model_loss_skip"], 1e-5),
        Check.close("the centre of the no-skip surface is the trained model's loss", m["centre_plain"],
                    m["model_loss_plain"], 1e-5),
        Check.less("the residual surface's lowest grid point is within 2 grid steps of the centre",
                   m["argmin_steps_skip"], 2.0 + 1e-9),
        Check.less("filter normalisation: every filter of the directions has the norm of its trained filter "
                   "(largest relative error)", max(m["filter_norm_error_skip"], m["filter_norm_error_plain"]), 1e-4),
    ]
    return checks
