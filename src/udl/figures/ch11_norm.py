"""Chapter 11, §11.4: normalization schemes and which activations share statistics (figure 11.14)."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.colors import to_rgb
from torch import nn

from udl import style
from udl.nn.normalization import BatchNorm, GhostBatchNorm, GroupNorm, InstanceNorm, LayerNorm, shared_statistics
from udl.registry import Check, Limit, Result, figure

SCHEMES = ("batch", "ghost", "layer", "group", "instance")
_NAMES = {"batch": "BatchNorm", "ghost": "Ghost BatchNorm", "layer": "LayerNorm", "group": "GroupNorm",
          "instance": "InstanceNorm"}
_GROUP_SIZE = {"batch": "N·H·W", "ghost": "ghost·H·W", "layer": "C·H·W", "group": "(C/G)·H·W", "instance": "H·W"}
_CHOSEN = style.TRUTH  # the chosen element, inside its cyan group


def _modules(p) -> dict[str, nn.Module]:
    return {"batch": BatchNorm(p.channels), "ghost": GhostBatchNorm(p.channels, p.ghost),
            "layer": LayerNorm(p.channels), "group": GroupNorm(p.groups, p.channels),
            "instance": InstanceNorm(p.channels)}


def _torch_reference(scheme: str, p) -> nn.Module:
    """torch's layer computing the same function (Ghost BN: torch's BN, applied chunk by chunk below)."""
    return {"batch": lambda: nn.BatchNorm2d(p.channels), "ghost": lambda: nn.BatchNorm2d(p.channels),
            "layer": lambda: nn.GroupNorm(1, p.channels), "group": lambda: nn.GroupNorm(p.groups, p.channels),
            "instance": lambda: nn.InstanceNorm2d(p.channels, affine=True)}[scheme]()


def _call(scheme: str, module: nn.Module, x: torch.Tensor, ghost: int) -> torch.Tensor:
    if scheme == "ghost" and isinstance(module, nn.BatchNorm2d) and module.training:
        return torch.cat([module(chunk) for chunk in torch.split(x, ghost)])
    return module(x)


def _max_difference(scheme, mine, ref, x, upstream, ghost) -> float:
    """max |ours - torch| over the output and the gradients of <y, upstream> w.r.t. x, γ and δ."""
    results = []
    for module in (mine, ref):
        xg = x.clone().requires_grad_()
        y = _call(scheme, module, xg, ghost)
        grads = torch.autograd.grad((y * upstream).sum(), [xg, module.weight, module.bias])
        results.append([y.detach(), *grads])
    return max((a - b).abs().max().item() for a, b in zip(*results))


def _compare_with_torch(p, g: torch.Generator) -> dict:
    shape = (p.batch, p.channels, p.height, p.width)
    metrics = {}
    for scheme in SCHEMES:
        mine, ref = _modules(p)[scheme].double(), _torch_reference(scheme, p).double()
        with torch.no_grad():
            gamma = 1 + 0.5 * torch.randn(p.channels, generator=g, dtype=torch.float64)
            delta = torch.randn(p.channels, generator=g, dtype=torch.float64)
            for module in (mine, ref):
                module.weight.copy_(gamma), module.bias.copy_(delta)
        diffs = []
        for step in range(p.steps):  # batches whose statistics drift, so the running estimates move
            x = torch.randn(shape, generator=g, dtype=torch.float64) * (1 + step) + step
            diffs.append(_max_difference(scheme, mine, ref, x, torch.randn(shape, generator=g, dtype=torch.float64),
                                         p.ghost))
        metrics[f"diff_train_{scheme}"] = max(diffs)
        if scheme in ("batch", "ghost"):
            metrics[f"diff_running_{scheme}"] = max((mine.running_mean - ref.running_mean).abs().max().item(),
                                                    (mine.running_var - ref.running_var).abs().max().item())
            metrics[f"batches_tracked_{scheme}"] = [int(mine.num_batches_tracked), int(ref.num_batches_tracked)]
            mine.eval(), ref.eval()
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            metrics[f"diff_eval_{scheme}"] = _max_difference(scheme, mine, ref, x, torch.randn_like(x), p.ghost)
    return metrics


def _standardization(p, g: torch.Generator) -> dict:
    """Fresh layers (γ = 1, δ = 0) in float32: mean and variance of the outputs over each scheme's axes."""
    N, C, G, K = p.batch, p.channels, p.groups, p.batch // p.ghost
    x = torch.randn(N, C, p.height * p.width, generator=g) * 10 + 3  # (N, C, H·W); s² ≈ 100 >> ε
    groups = {"batch": lambda y: y.transpose(0, 1).reshape(C, -1),  # (C, N·HW)
              "ghost": lambda y: y.view(K, p.ghost, C, -1).transpose(1, 2).reshape(K * C, -1),  # (K·C, ghost·HW)
              "layer": lambda y: y.reshape(N, -1),  # (N, C·HW)
              "group": lambda y: y.reshape(N * G, -1),  # (N·G, C/G·HW)
              "instance": lambda y: y.reshape(N * C, -1)}  # (N·C, HW)
    metrics = {}
    for scheme, module in _modules(p).items():
        with torch.no_grad():
            y = groups[scheme](module(x))  # one row per statistics group
        metrics[f"max_abs_mean_{scheme}"] = y.mean(1).abs().max().item()
        metrics[f"max_abs_var_minus_1_{scheme}"] = (y.var(1, unbiased=False) - 1).abs().max().item()
        metrics[f"n_groups_{scheme}"] = int(y.shape[0])
    return metrics


def _ghost_spread(p, g: torch.Generator) -> tuple[dict, dict]:
    """Per-channel means used by BN (whole batch) and Ghost BN (per ghost batch) on many iid batches."""
    bn, gbn = BatchNorm(p.channels), GhostBatchNorm(p.channels, p.ghost)
    full, ghost = [], []
    for _ in range(p.spread_batches):
        x = torch.randn(p.batch, p.channels, p.height, p.width, generator=g, dtype=torch.float64)
        full.append(bn.statistics(x)[0].flatten())  # (C,)
        ghost.append(gbn.statistics(x)[0][::p.ghost].flatten())  # one row per ghost batch: (K·C,)
    full, ghost = torch.cat(full), torch.cat(ghost)
    metrics = {"sd_batch_means": full.std().item(), "sd_ghost_means": ghost.std().item(),
               "sd_ratio": (ghost.std() / full.std()).item(), "sd_ratio_expected": math.sqrt(p.batch / p.ghost),
               "n_batch_means": int(full.numel()), "n_ghost_means": int(ghost.numel())}
    return metrics, {"batch_means": full.float().numpy(), "ghost_means": ghost.float().numpy()}


@figure("11.14", title="Normalization schemes",
        caption="Which activations share a mean and variance, for activations with a batch axis N, a channel "
                "axis C and positions H·W (drawn as one axis). Each cube is the activations of one layer; the "
                "cyan cells are the ones whose statistics normalize the black cell, measured by differentiating "
                "that cell's output with respect to every input of udl's layers. a) BatchNorm: the same channel "
                "over the whole batch and every position. b) Ghost BatchNorm: the same, but only within a slice "
                "of the batch, so the statistics are noisier. c) LayerNorm: every channel and position of one "
                "batch member, with one learned scale and offset per channel. d) GroupNorm: a group of channels "
                "of one batch member, again with per-channel scale and offset. e) InstanceNorm: one channel of "
                "one batch member, over positions only. f) The per-channel means that BN and Ghost BN normalize "
                "with, over many random batches: the ghost-batch means spread about √(N / ghost) times wider. "
                "Scheme and cube layout follow Wu & He (2018).",
        params={"tiny": dict(batch=4, ghost=2, channels=4, groups=2, height=2, width=3, element=[2, 0, 3],
                             steps=3, spread_batches=150, spread_tol=0.15, tol=1e-10, norm_tol=1e-5),
                "full": dict(batch=8, ghost=2, channels=6, groups=2, height=4, width=4, element=[2, 0, 9],
                             steps=5, spread_batches=2000, spread_tol=0.05, tol=1e-10, norm_tol=1e-5)},
        # every activation is a drawn cell: small layers; tolerances small enough that the comparisons mean something
        limits={"batch": (2, 8), "ghost": (1, 4), "channels": (1, 8), "groups": (1, 8), "height": (1, 6),
                "width": (1, 6), "element": Limit(0, 35, min_len=3, max_len=3), "steps": (1, 100),
                "spread_batches": (10, 100_000), "spread_tol": (0.0, 0.5), "tol": (0.0, 1e-6),
                "norm_tol": (0.0, 1e-3)})
def normalization_schemes(p, run):
    shape = (p.batch, p.channels, p.height, p.width)
    n, c, hw = p.element
    index = (n, c, hw // p.width, hw % p.width)

    metrics, arrays = {"shape": list(shape), "index": list(index)}, {}
    modules = _modules(p)
    for scheme, module in modules.items():
        mask = shared_statistics(module, shape, index, generator=run.seed)
        box = mask.reshape(p.batch, p.channels, -1)  # (N, C, H·W): the cube drawn
        spans = [int(box.any(dim=(1, 2)).sum()), int(box.any(dim=(0, 2)).sum()), int(box.any(dim=(0, 1)).sum())]
        metrics[f"count_{scheme}"] = int(mask.sum())
        metrics[f"spans_{scheme}"] = spans  # how many batch members, channels and positions the group covers
        metrics[f"is_box_{scheme}"] = int(mask.sum()) == math.prod(spans)
        metrics[f"contains_element_{scheme}"] = bool(mask[index])
        metrics[f"equals_definition_{scheme}"] = bool(torch.equal(mask, module.group_of(shape, index)))
        metrics[f"parameters_{scheme}"] = [list(module.weight.shape), list(module.bias.shape)]
        if scheme != "ghost":  # torch has no Ghost BN: measure torch's own layer the same way
            ref_mask = shared_statistics(_torch_reference(scheme, p), shape, index, generator=run.seed)
            metrics[f"equals_torch_mask_{scheme}"] = bool(torch.equal(mask, ref_mask))
        arrays[f"mask_{scheme}"] = box.numpy()

    metrics.update(_compare_with_torch(p, run.generator(1)))
    metrics.update(_standardization(p, run.generator(2)))
    spread, spread_arrays = _ghost_spread(p, run.generator(3))
    metrics.update(spread)
    arrays.update(spread_arrays)
    return Result(
        metrics=metrics, arrays=arrays,
        notes=f"A small layer (N={p.batch}, C={p.channels}, {p.height}x{p.width} positions) so that every "
              f"activation is a visible cell; ghost batches of {p.ghost}, GroupNorm with {p.groups} groups. The "
              f"groups are measured on random inputs, not read from a table. Comparisons with torch are in "
              f"float64 over {p.steps} training steps; the spread of f) uses {p.spread_batches} batches of iid "
              f"standard normal values. ε is added to the variance, as torch does, not to the standard deviation "
              f"as in the book's eq. 11.9.")


@normalization_schemes.requires
def _(p):
    def refuse(key, words):
        raise ValueError(f"The {key!r} parameter of figure 11.14 must be {words}. Got {getattr(p, key)} instead.")

    if p.ghost >= p.batch or p.batch % p.ghost:  # a ghost batch of the whole batch is BatchNorm itself
        refuse("ghost", f"a divisor of batch ({p.batch}) smaller than batch")
    if p.channels % p.groups:
        refuse("groups", f"a divisor of channels ({p.channels})")
    if p.height * p.width < 2:  # InstanceNorm's statistics need two positions
        refuse("width", f"at least 2 when height is {p.height} (InstanceNorm needs two positions)")
    sizes = (p.batch, p.channels, p.height * p.width)
    if any(value >= size for value, size in zip(p.element, sizes)):
        raise ValueError(f"The 'element' parameter of figure 11.14 must be a (batch, channel, position) index below "
                         f"{sizes}. Got {','.join(map(str, p.element))} instead.")


def _cube(ax, mask: np.ndarray, element: tuple[int, int, int], title: str) -> None:
    """The (N, C, H·W) activations as a cube: cyan = shared statistics, dark = the chosen element."""
    N, C, S = mask.shape
    grid = np.ones_like(mask)
    ax.voxels(grid & ~mask, facecolors=(1, 1, 1, 0.0), edgecolors=(*to_rgb(style.REGION), 0.7), linewidth=0.3)
    colours = np.empty(mask.shape, dtype=object)
    colours[mask] = style.MODEL
    colours[element] = _CHOSEN
    ax.voxels(mask, facecolors=colours, edgecolors="white", linewidth=0.3, alpha=0.95)
    for (x0, x1), (y0, y1), (z0, z1) in [((0, N), (0, 0), (0, 0)), ((0, N), (C, C), (0, 0)), ((0, N), (0, 0), (S, S)),
                                         ((0, N), (C, C), (S, S)), ((0, 0), (0, C), (0, 0)), ((N, N), (0, C), (0, 0)),
                                         ((0, 0), (0, C), (S, S)), ((N, N), (0, C), (S, S)), ((0, 0), (0, 0), (0, S)),
                                         ((N, N), (0, 0), (0, S)), ((0, 0), (C, C), (0, S)), ((N, N), (C, C), (0, S))]:
        ax.plot([x0, x1], [y0, y1], [z0, z1], color=style.TRUTH, lw=0.8)
    ax.text(N / 2, -0.15 * C, -0.08 * S, "N", ha="center", va="top", fontsize=8)
    ax.text(1.12 * N, C / 2, 0, "C", ha="center", va="top", fontsize=8)
    ax.text(-0.05 * N, 0, S / 2, "H·W", ha="right", fontsize=8)
    ax.set_box_aspect((N, C, 1.2 * max(N, C)))  # cells stretched along H·W so the cubes have similar sizes
    ax.view_init(elev=20, azim=-60)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)


@normalization_schemes.plot
def _(r):
    a, m, p = r.arrays, r.metrics, r.params
    fig, axes = style.subplots(2, 3, width=2.9, height=3.0, subplot_kw=dict(projection="3d"))
    n, c, hw = p["element"]
    for ax, scheme in zip(axes.flat, SCHEMES):
        _cube(ax, a[f"mask_{scheme}"], (n, c, hw), f"{_NAMES[scheme]}\n{_GROUP_SIZE[scheme]} = {m[f'count_{scheme}']}")
    axes.flat[-1].remove()
    ax = fig.add_subplot(2, 3, 6)
    ax.spines[["top", "right"]].set_visible(False)
    bins = np.linspace(*np.quantile(a["ghost_means"], [0.001, 0.999]), 41)
    ax.hist(a["ghost_means"], bins=bins, density=True, color=style.MODEL, alpha=0.8,
            label=f"ghost batch of {p['ghost']}: sd {m['sd_ghost_means']:.3f}")
    ax.hist(a["batch_means"], bins=bins, density=True, color=style.REGION, alpha=0.9,
            label=f"batch of {p['batch']}: sd {m['sd_batch_means']:.3f}")
    ax.set(xlabel="per-channel mean m used", ylabel="density",
           title=f"sd ratio {m['sd_ratio']:.2f} (√{p['batch'] // p['ghost']} = {m['sd_ratio_expected']:.2f})")
    ax.legend(fontsize=7, loc="upper left")
    style.panel_labels(np.array([*axes.flat[:5], ax]))
    return fig


@normalization_schemes.checks
def _(r):
    m, p = r.metrics, r.params
    N, C, S, G, B = p["batch"], p["channels"], p["height"] * p["width"], p["groups"], p["ghost"]
    expected = {"batch": [N, 1, S], "ghost": [B, 1, S], "layer": [1, C, S], "group": [1, C // G, S],
                "instance": [1, 1, S]}
    checks = []
    for scheme, spans in expected.items():
        words = _GROUP_SIZE[scheme]
        measured = [m[f"count_{scheme}"], m[f"spans_{scheme}"], m[f"is_box_{scheme}"],
                    m[f"contains_element_{scheme}"], m[f"equals_definition_{scheme}"]]
        checks.append(Check.equal(f"{_NAMES[scheme]}: the element shares statistics with a block of {words} = "
                                  f"{math.prod(spans)} activations spanning (N, C, H·W) = {tuple(spans)}, placed "
                                  "where the scheme's definition puts it",
                                  measured, [math.prod(spans), spans, True, True, True]))
    checks.append(Check.equal("torch's BatchNorm2d, GroupNorm(1, C), GroupNorm(G, C) and InstanceNorm2d, measured "
                              "the same way, share statistics over the same elements",
                              [m[f"equals_torch_mask_{s}"] for s in SCHEMES if s != "ghost"], [True] * 4))
    for scheme in SCHEMES:
        reference = "torch's BatchNorm2d applied ghost batch by ghost batch" if scheme == "ghost" else "torch's layer"
        worst = max(m[f"diff_train_{scheme}"], m.get(f"diff_running_{scheme}", 0.0), m.get(f"diff_eval_{scheme}", 0.0))
        modes = ", running statistics and evaluation mode" if scheme in ("batch", "ghost") else ""
        checks.append(Check.less(f"{_NAMES[scheme]} equals {reference}: outputs and gradients (training mode{modes}), "
                                 "max abs difference", worst, p["tol"]))
    chunks = p["steps"] * (N // B)
    checks.append(Check.equal("Ghost BN updates its running statistics once per ghost batch, as torch's BN called "
                              "per chunk does", m["batches_tracked_ghost"], [chunks, chunks]))
    checks.append(Check.less("the normalized outputs have mean 0 and variance 1 over each scheme's statistics group "
                             "(largest deviation over all groups of all five schemes)",
                             max(max(m[f"max_abs_mean_{s}"], m[f"max_abs_var_minus_1_{s}"]) for s in SCHEMES),
                             p["norm_tol"]))
    checks.append(Check.equal("LayerNorm and GroupNorm keep one scale γ and one offset δ per channel",
                              [m["parameters_layer"], m["parameters_group"]], [[[C], [C]], [[C], [C]]]))
    checks.append(Check.close(f"Ghost BN's per-channel means vary more than BN's by about √(N/ghost) = "
                              f"{m['sd_ratio_expected']:.3g} (relative tolerance {p['spread_tol']})",
                              m["sd_ratio"], m["sd_ratio_expected"], p["spread_tol"], rel=True))
    return checks
