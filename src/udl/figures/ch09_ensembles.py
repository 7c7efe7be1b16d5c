"""Chapter 9: ensembles, dropout and the map of regularization methods (figs. 9.7, 9.8, 9.9, 9.14)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.patches import Circle, FancyBboxPatch
from torch import nn

from udl import style
from udl.analysis.smoothness import roughness, slope_changes
from udl.data.numbers import number_to_words
from udl.data.toy import make_regression_1d
from udl.models.ensemble import BaggingEnsemble, bootstrap_counts
from udl.nn.deep import DeepNetwork
from udl.nn.dropout import Dropout, drop_one_of
from udl.nn.fixed_joints import FixedJointNetwork
from udl.registry import Check, Limit, Result, figure
from udl.regularization import MECHANISMS, survey

_BAD = "#D0D0D0"  # light gray: dropped units and their weights


def _toy(p, seed):
    data = make_regression_1d(p.n, p.noise_sd, seed=seed)
    return data, torch.from_numpy(data.x), torch.from_numpy(data.y)


# --------------------------------------------------------------------------- 9.7
@figure("9.7", title="Bagging: an ensemble of bootstrap fits",
        caption="The 14-unit fixed-joint model of fig. 8.4 fitted by least squares (a) to all 15 toy points "
                "(gray) and (b-e) to four bootstrap resamples, drawn with replacement (point size: how often "
                "a point was drawn). (f) The mean of the four fits (cyan) is smoother than the fit to all the "
                "data (gray): its total squared change of slope is smaller, and its error against the true "
                "function (black) is no larger than the members' mean error. Over many fresh datasets the "
                "bagged model is smoother and closer to the truth than the single fit in most of them.",
        params={"tiny": dict(n=15, noise_sd=0.3, n_hidden=14, n_models=4, n_repeats=40),
                "full": dict(n=15, noise_sd=0.3, n_hidden=14, n_models=4, n_repeats=400)},
        limits={"n": (2, 1000), "noise_sd": (0.01, 10.0), "n_hidden": (1, 200), "n_models": (2, 100),
                "n_repeats": (10, 10_000)})
def bagging(p, run):
    def fit(xb, yb):
        return FixedJointNetwork(p.n_hidden).double().fit_least_squares(xb, yb)

    grid = torch.linspace(0, 1, 20 * p.n_hidden + 1, dtype=torch.float64)  # every joint j/D is a grid point

    def one_dataset(seed):
        data, x, y = _toy(p, seed)
        truth = torch.from_numpy(data.truth(grid.numpy()))
        with torch.no_grad():
            single = fit(x, y)(grid)
        bag = BaggingEnsemble(fit, p.n_models, generator=seed).fit(x, y)
        members, mean = bag.member_predictions(grid), bag.predict(grid)  # (M, G), (G,)
        err = lambda f: float(((f - truth) ** 2).mean())  # noqa: E731 - mean squared error vs the truth on [0, 1]
        return dict(data=data, bag=bag, single=single, members=members, mean=mean, truth=truth,
                    rough_single=roughness(grid, single), rough_bagged=roughness(grid, mean),
                    rough_members=[roughness(grid, f) for f in members],
                    err_single=err(single), err_bagged=err(mean), err_members=[err(f) for f in members])

    shown = one_dataset(run.seed)
    repeats = [one_dataset(run.seed + 1000 + r) for r in range(p.n_repeats)]
    smoother = np.mean([r["rough_bagged"] < r["rough_single"] for r in repeats])
    closer = np.mean([r["err_bagged"] < r["err_single"] for r in repeats])
    not_worse = np.mean([r["err_bagged"] <= np.mean(r["err_members"]) for r in repeats])
    counts = bootstrap_counts(shown["bag"].indices, p.n)  # (M, N)
    return Result(
        metrics={"roughness_single": shown["rough_single"], "roughness_bagged": shown["rough_bagged"],
                 "roughness_members": shown["rough_members"],
                 "test_error_single": shown["err_single"], "test_error_bagged": shown["err_bagged"],
                 "test_error_members": shown["err_members"],
                 "test_error_members_mean": float(np.mean(shown["err_members"])),
                 "resample_sizes": counts.sum(1).tolist(),
                 "resample_unique_fraction": ((counts > 0).mean(1)).tolist(),
                 "expected_unique_fraction": 1 - (1 - 1 / p.n) ** p.n,
                 "repeats": p.n_repeats, "fraction_bagged_smoother": float(smoother),
                 "fraction_bagged_closer_than_single": float(closer),
                 "fraction_bagged_not_worse_than_members": float(not_worse),
                 "median_test_error_single": float(np.median([r["err_single"] for r in repeats])),
                 "median_test_error_bagged": float(np.median([r["err_bagged"] for r in repeats]))},
        arrays={"x": shown["data"].x, "y": shown["data"].y, "grid": grid.numpy(), "truth": shown["truth"].numpy(),
                "single": shown["single"].numpy(), "members": shown["members"].numpy(),
                "bagged": shown["mean"].numpy(), "counts": counts},
        notes="Error is measured against the true function on [0, 1] (the expected test error less the "
              "noise σ²); the book's caption says the average 'will probably generalize better', which "
              f"the run measures over {p.n_repeats} fresh datasets.")


@bagging.plot
def _(r):
    a = r.arrays
    fig, axes = style.subplots(2, 3, width=2.6, height=2.2, sharex=True, sharey=True)
    axes = axes.flat
    panels = [(None, a["single"], style.REGION, np.ones(len(a["x"])))]
    panels += [(i, f, style.MODEL, c) for i, (f, c) in enumerate(zip(a["members"], a["counts"]))][:4]  # b-e
    for ax, (i, f, color, count) in zip(axes, panels):
        ax.plot(a["grid"], a["truth"], color=style.TRUTH, lw=1)
        ax.plot(a["grid"], f, color=color if i is not None else "#808080", lw=1.8)
        keep = count > 0
        ax.scatter(a["x"][keep], a["y"][keep], s=18 * count[keep], color=style.DATA, zorder=3)
        ax.set_title("all data" if i is None else f"resample {i + 1}", fontsize=9)
    ax = axes[5]
    ax.plot(a["grid"], a["truth"], color=style.TRUTH, lw=1)
    ax.plot(a["grid"], a["single"], color="#808080", lw=1.5, label="single fit")
    ax.plot(a["grid"], a["bagged"], color=style.MODEL, lw=2, label=f"mean of {len(a['members'])}")
    ax.scatter(a["x"], a["y"], s=18, color=style.DATA, zorder=3)
    ax.set_title("average", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    for ax in axes:
        ax.set(xlim=(0, 1), ylim=(-1, 4))
    for ax in (axes[0], axes[3]):
        ax.set_ylabel("output y")
    for ax in axes[3:]:
        ax.set_xlabel("input x")
    style.panel_labels(np.array(list(axes)))
    return fig


@bagging.checks
def _(r):
    m = r.metrics
    return [
        Check.less("the average is smoother than the single fit (total squared change of slope)",
                   m["roughness_bagged"], m["roughness_single"]),
        Check.holds("its error against the truth is no worse than the members' mean error",
                    m["test_error_bagged"] <= m["test_error_members_mean"],
                    [round(m["test_error_bagged"], 4), round(m["test_error_members_mean"], 4)], "first <= second"),
        Check.equal(f"each resample draws N = {r.params['n']} points with replacement", m["resample_sizes"],
                    [r.params["n"]] * len(m["resample_sizes"])),
        Check.greater("over fresh datasets the average is smoother than the single fit in most",
                      m["fraction_bagged_smoother"], 0.9),
        Check.greater("over fresh datasets the average is closer to the truth than the single fit in most",
                      m["fraction_bagged_closer_than_single"], 0.75),
    ]


# --------------------------------------------------------------------------- 9.8
@figure("9.8", title="Dropout masks",
        caption="A network with two hidden layers of six units, trained for three SGD iterations with udl's "
                "Dropout layer (p = 0.5) after each hidden layer. (a) The whole network. (b-d) The mask the "
                "layer drew at each iteration: dropped units (gray) and their incoming and outgoing weights "
                "play no part. Measured: the drop rate over many masks is p; perturbing a dropped unit's "
                "weights leaves the output and loss unchanged and their gradients are zero; the inverted "
                "scaling 1/(1-p) keeps the mean activation.",
        params={"tiny": dict(widths=[3, 6, 6, 2], p=0.5, iterations=3, n_masks=4000),
                "full": dict(widths=[3, 6, 6, 2], p=0.5, iterations=3, n_masks=100000)},
        # at least one hidden layer to drop from; one panel per iteration
        limits={"widths": Limit(1, 16, min_len=3, max_len=8), "p": (0.05, 0.95), "iterations": (1, 8),
                "n_masks": (100, 1_000_000)})
def dropout_masks(p, run):
    widths = list(p.widths)
    deep = DeepNetwork(widths, generator=run.generator(0)).double()
    mask_gen = run.generator(1)  # one stream for every dropout layer
    drops = [Dropout(p.p, generator=mask_gen) for _ in widths[1:-1]]
    modules: list[nn.Module] = []
    for k, layer in enumerate(deep.layers):
        modules.append(layer)
        if k < len(drops):
            modules += [nn.ReLU(), drops[k]]
    net = nn.Sequential(*modules).train()
    data_gen = run.generator(2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    masks, grad_dropped, grad_kept, change_dropped, change_kept = [], [], [], [], []
    for _ in range(p.iterations):
        x = torch.randn(1, widths[0], generator=data_gen, dtype=torch.float64)  # one example per iteration
        y = torch.randn(1, widths[-1], generator=data_gen, dtype=torch.float64)
        before = mask_gen.get_state()  # to replay exactly these masks below
        opt.zero_grad()
        out = net(x)
        ((out - y) ** 2).sum().backward()
        after = mask_gen.get_state()
        kept = [d.last_mask[0] for d in drops]  # (D_k,) per hidden layer
        masks.append([m.tolist() for m in kept])
        for k, m in enumerate(kept):
            into, out_of = deep.layers[k], deep.layers[k + 1]
            # the largest |gradient| of any weight into or out of each hidden unit, (D_k,)
            g = torch.stack([into.weight.grad.abs().amax(1), into.bias.grad.abs(),
                             out_of.weight.grad.abs().amax(0)]).amax(0)
            grad_dropped += g[~m].tolist()
            grad_kept += g[m].tolist()
            # add 1 to every weight into and out of one unit, replay the same masks, compare outputs
            for unit in range(len(m)):
                saved = (into.weight[unit].clone(), into.bias[unit].clone(), out_of.weight[:, unit].clone())
                with torch.no_grad():
                    into.weight[unit] += 1.0
                    into.bias[unit] += 1.0
                    out_of.weight[:, unit] += 1.0
                    mask_gen.set_state(before)
                    delta = float((net(x) - out).abs().max())
                    into.weight[unit], into.bias[unit], out_of.weight[:, unit] = saved
                (change_kept if m[unit] else change_dropped).append(delta)
        mask_gen.set_state(after)
        opt.step()

    # statistics over many masks: one mask per row of a batch
    probe = torch.linspace(0.5, 2.0, widths[1], dtype=torch.float64)
    layer = drops[0]
    dropped_out = layer(probe.expand(p.n_masks, -1))  # (n_masks, D_1)
    rate = float((~layer.last_mask).double().mean())
    n_draws = layer.last_mask.numel()
    mean_act = dropped_out.mean(0)
    sd = probe * np.sqrt(p.p / (1 - p.p)) / np.sqrt(p.n_masks)  # Monte Carlo standard error of the mean
    z = ((mean_act - probe).abs() / sd).max()
    return Result(
        metrics={"p": p.p, "widths": widths, "masks": masks, "drop_rate": rate, "n_draws": n_draws,
                 "drop_rate_tolerance": float(4 * np.sqrt(p.p * (1 - p.p) / n_draws)),
                 "max_abs_grad_dropped": max(grad_dropped, default=0.0),
                 "max_abs_grad_kept": max(grad_kept, default=0.0), "n_dropped_units": len(change_dropped),
                 "max_output_change_dropped": max(change_dropped, default=0.0),
                 "max_output_change_kept": max(change_kept, default=0.0),
                 "mean_activation_max_z": float(z),
                 "mean_activation_max_rel_error": float(((mean_act - probe).abs() / probe).max())},
        arrays={})


def _draw_network(ax, widths, kept=None):
    xs = np.arange(len(widths)) * 1.6
    pos = [[(x, (w - 1) / 2 - i) for i in range(w)] for x, w in zip(xs, widths)]
    alive = [[True] * w for w in widths]
    if kept is not None:
        for k, m in enumerate(kept):
            alive[k + 1] = list(m)
    for k in range(len(widths) - 1):
        for i, (x0, y0) in enumerate(pos[k]):
            for j, (x1, y1) in enumerate(pos[k + 1]):
                on = alive[k][i] and alive[k + 1][j]
                ax.plot([x0, x1], [y0, y1], color="black" if on else _BAD, lw=0.8 if on else 0.6,
                        ls="-" if on else ":", zorder=1)
    for k, layer in enumerate(pos):
        for i, (x, y) in enumerate(layer):
            hidden = 0 < k < len(widths) - 1
            face = "white" if alive[k][i] else _BAD
            edge = (style.DATA if k == 0 else style.MODEL if k == len(widths) - 1 else "black")
            ax.add_patch(Circle((x, y), 0.22, facecolor=face, edgecolor=edge if alive[k][i] else "#909090",
                lw=1.2 if not hidden else 1.0, zorder=3))
    ax.set(xlim=(-0.4, xs[-1] + 0.4), ylim=(-max(widths) / 2 - 0.1, max(widths) / 2 + 0.1), aspect="equal")
    ax.axis("off")


@dropout_masks.plot
def _(r):
    m = r.metrics
    fig, axes = style.subplots(1, 1 + len(m["masks"]), width=2.4, height=2.4)
    _draw_network(axes[0], m["widths"])
    axes[0].set_title("network", fontsize=9)
    for it, (ax, kept) in enumerate(zip(axes[1:], m["masks"])):
        _draw_network(ax, m["widths"], kept)
        n_off = sum(not v for layer in kept for v in layer)
        ax.set_title(f"iteration {it + 1}: {n_off} dropped", fontsize=9)
    style.panel_labels(axes)
    return fig


@dropout_masks.checks
def _(r):
    m = r.metrics
    n_kept = sum(v for masks in m["masks"] for layer in masks for v in layer)
    dropped = ["perturbing a dropped unit's weights changes nothing (same masks replayed)",
               "the weights into and out of dropped units get zero gradient"]
    kept = "the same perturbation of kept units does change the output (the probe can see)"
    n = len(m["masks"])
    iterations = f"{number_to_words(n)} iteration{'s' if n > 1 else ''}"
    return [
        Check.close(f"the drop rate over {m['n_draws']} unit draws is p", m["drop_rate"], m["p"],
                    m["drop_rate_tolerance"]),
        # with no unit dropped (or none kept) these would hold, or fail, for want of a unit to probe
        *([Check.close(dropped[0], m["max_output_change_dropped"], 0.0, 0.0),
           Check.close(dropped[1], m["max_abs_grad_dropped"], 0.0, 0.0)] if m["n_dropped_units"] else
          [Check.untested(claim, "no unit was dropped in these iterations") for claim in dropped]),
        Check.greater(kept, m["max_output_change_kept"], 1e-6) if n_kept else
        Check.untested(kept, "every unit was dropped in these iterations"),
        Check.greater(f"some units were dropped in the {iterations}", m["n_dropped_units"], 0),
        Check.less("inverted scaling keeps the mean activation (largest z-score of mean - input)",
                   m["mean_activation_max_z"], 5.0),
    ]


# --------------------------------------------------------------------------- 9.9
@figure("9.9", title="Dropout removes a kink",
        caption="The 14-unit fixed-joint model on the toy data with the points near x = 0.5 left out, so the "
                "joints of units 7-9 fall between data. (a) A full-batch least-squares fit with a kink: the "
                "slope rises, falls at the circled joint (unit 8) and rises again; the data do not see it, "
                "so gradient descent keeps it. (b) Removing unit 8, as dropout might, bends the right-hand "
                "side away from the data. (c) After 2000 steps of removing one of the three units at random "
                "and taking a gradient step, the kink is gone while the training loss is about the same.",
        params={"tiny": dict(n=15, noise_sd=0.3, n_hidden=14, gap_lo=0.4, gap_hi=0.6, unit=7, kink=10.0,
                             steps=2000, lr=0.015),
                "full": dict(n=15, noise_sd=0.3, n_hidden=14, gap_lo=0.4, gap_hi=0.6, unit=7, kink=10.0,
                             steps=2000, lr=0.015)},
        limits={"n": (4, 1000), "noise_sd": (0.01, 10.0), "n_hidden": (4, 200), "gap_lo": (0.001, 0.998),
                "gap_hi": (0.002, 0.999), "unit": (2, 197), "kink": (0.01, 1e4), "steps": (1, 100_000),
                "lr": (1e-5, 1.0)})
def dropout_kink(p, run):
    data, x_all, y_all = _toy(p, run.seed)
    keep = (x_all < p.gap_lo) | (x_all >= p.gap_hi)
    x, y = x_all[keep], y_all[keep]
    units = [p.unit - 1, p.unit, p.unit + 1]
    net = FixedJointNetwork(p.n_hidden).double()
    a = net.features(x)  # (N, D + 1) design matrix [1, ReLU(x - x_j)]
    # start: a kink planted in the weights, then run full-batch gradient descent to its limit,
    # θ0 + A⁺(y - Aθ0): the least-squares fit nearest θ0, which keeps any part the data cannot see
    theta0 = torch.zeros(p.n_hidden + 1, dtype=torch.float64)
    theta0[[1 + u for u in units]] = torch.tensor([1.0, -2.0, 1.0], dtype=torch.float64) * p.kink
    theta_fit = theta0 + torch.linalg.pinv(a) @ (y - a @ theta0)  # (D + 1,)

    grid = torch.linspace(0, 1, 8 * p.n_hidden + 1, dtype=torch.float64)  # joints j/D on grid points
    features = net.features(grid)  # (G, D + 1)
    at = [8 * u - 1 for u in units]  # interior grid index of joint u/D

    def slopes(theta):
        return slope_changes(grid, features @ theta)[at]  # Δs at the three joints

    def kink(theta):  # slope change that is undone within the three joints: 0 if all have one sign
        s = slopes(theta)
        return float(np.abs(s).sum() - abs(s.sum()))

    def loss(theta):
        return float(((y - a @ theta) ** 2).sum())

    def train(theta, dropout: bool):
        model = FixedJointNetwork(p.n_hidden).double()
        with torch.no_grad():
            model.beta.copy_(theta[0])
            model.omega.copy_(theta[1:])
        h = a[:, 1:]  # (N, D) hidden activations ReLU(x - x_j)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr)
        gen = run.generator(1)
        for _ in range(p.steps):
            m = drop_one_of(p.n_hidden, units, generator=gen).double() if dropout else torch.ones(p.n_hidden,
                                                                                                  dtype=torch.float64)
            f = model.beta + h @ (model.omega * m)  # (N,) the network with one unit removed
            step_loss = ((y - f) ** 2).sum()
            opt.zero_grad()
            step_loss.backward()
            opt.step()
        return torch.cat([model.beta.detach()[None], model.omega.detach()])

    theta_drop = train(theta_fit, dropout=True)
    theta_plain = train(theta_fit, dropout=False)
    removed = theta_fit.clone()
    removed[1 + p.unit] = 0.0  # panel b: unit 8 removed (no rescaling, as the book draws it)
    n, var = len(x), data.noise_sd ** 2
    joints = net.joints[units].tolist()
    return Result(
        metrics={"joints": joints, "gap": [p.gap_lo, p.gap_hi], "n_points": n,
                 "joints_in_gap": bool(min(joints) > x[x < p.gap_lo].max() and max(joints) < x[x >= p.gap_hi].min()),
                 "slope_changes_initial": slopes(theta_fit).tolist(),
                 "slope_changes_final": slopes(theta_drop).tolist(),
                 "kink_initial": kink(theta_fit), "kink_final": kink(theta_drop), "kink_plain_gd": kink(theta_plain),
                 "loss_initial": loss(theta_fit), "loss_final": loss(theta_drop), "loss_plain_gd": loss(theta_plain),
                 "loss_unit_removed": loss(removed), "noise_loss": n * var,
                 "loss_change_per_noise": (loss(theta_drop) - loss(theta_fit)) / (n * var), "steps": p.steps,
                 "unit": p.unit},
        arrays={"x": x.numpy(), "y": y.numpy(), "grid": grid.numpy(), "truth": data.truth(grid.numpy()),
                "initial": (features @ theta_fit).numpy(), "removed": (features @ removed).numpy(),
                "final": (features @ theta_drop).numpy()},
        notes="The kink is planted: the fit starts from weights with a hat-shaped combination of units 7-9 "
              "in a data-free interval (the three points there are left out), and full-batch gradient "
              "descent is run to its limit in closed form. The dropout steps rescale the two kept units "
              "by 3/2 (inverted dropout), so the expected network is the full one.")


@dropout_kink.requires
def _(p):
    # the units unit-1, unit, unit+1 (0-based) have interior joints (unit-1)/D .. (unit+1)/D
    if p.unit > p.n_hidden - 2:
        raise ValueError(f"The 'unit' parameter of figure 9.9 must be at most n_hidden - 2 ({p.n_hidden - 2}). "
                         f"Got {p.unit} instead.")
    # one point is drawn in each [i/n, (i+1)/n): 1/n <= gap_lo < gap_hi <= 1 - 1/n leaves data on both sides
    if p.gap_lo < 1 / p.n:
        raise ValueError(f"The 'gap_lo' parameter of figure 9.9 must be at least 1/n ({1 / p.n:.4g}), so that data "
                         f"lie left of the gap. Got {p.gap_lo:g} instead.")
    if p.gap_hi > 1 - 1 / p.n:
        raise ValueError(f"The 'gap_hi' parameter of figure 9.9 must be at most 1 - 1/n ({1 - 1 / p.n:.4g}), so that "
                         f"data lie right of the gap. Got {p.gap_hi:g} instead.")
    if p.gap_hi <= p.gap_lo:
        raise ValueError(f"The 'gap_hi' parameter of figure 9.9 must be greater than gap_lo ({p.gap_lo:g}). "
                         f"Got {p.gap_hi:g} instead.")


@dropout_kink.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 3, width=2.8, height=2.4, sharey=True)
    curves = [("fit with a kink", a["initial"]), (f"unit {m['unit'] + 1} removed", a["removed"]),
              (f"after {m['steps']} dropout steps", a["final"])]
    joint = m["joints"][1]
    for ax, (title, f) in zip(axes, curves):
        ax.axvspan(*m["gap"], color=style.REGION, alpha=0.3, lw=0)
        ax.plot(a["grid"], a["truth"], color=style.TRUTH, lw=1)
        ax.plot(a["grid"], f, color=style.MODEL, lw=2)
        ax.scatter(a["x"], a["y"], s=16, color=style.DATA, zorder=3)
        ax.set(xlim=(0, 1), ylim=(-1, 4), xlabel="input x")
        ax.set_title(title, fontsize=9)
    y_joint = np.interp(joint, a["grid"], a["initial"])
    axes[0].scatter([joint], [y_joint], s=200, facecolors="none", edgecolors="black", lw=1.2, zorder=4)
    axes[0].set_ylabel("output y")
    style.panel_labels(axes)
    return fig


@dropout_kink.checks
def _(r):
    m = r.metrics
    s = m["slope_changes_initial"]
    return [
        Check.holds("the three joints lie between the data (the gap)", m["joints_in_gap"], m["joints"]),
        Check.holds("the initial kink: the slope rises, falls at the circled joint, rises again",
                    s[0] > 0 and s[1] < 0 and s[2] > 0, [round(v, 3) for v in s], "+, -, +"),
        Check.greater("plain full-batch gradient descent keeps the kink (kink after / before)",
                      m["kink_plain_gd"] / m["kink_initial"], 0.99),
        Check.less("drop-one-unit steps remove the kink (kink after / before)",
                   m["kink_final"] / m["kink_initial"], 0.1),
        Check.less("the loss stays about the same (change / noise loss Nσ²)",
                   abs(m["loss_change_per_noise"]), 0.1),
        Check.greater("removing the circled unit alone raises the loss (panel b, / Nσ²)",
                      (m["loss_unit_removed"] - m["loss_initial"]) / m["noise_loss"], 0.5),
    ]


# --------------------------------------------------------------------------- 9.14
@figure("9.14", title="Regularization methods by mechanism",
        caption="udl's regularization methods grouped by the way they help a model generalize: a smoother "
                "function, more (effective) data, a combination of models, or a wide minimum. Drawn from "
                "the registry udl.regularization; each box lists the code that implements a method, and the "
                "figure checks that it imports (the test suite checks that its test file has a test that uses it).",
        params={"tiny": dict(show_targets=True), "full": dict(show_targets=True)})
def regularization_map(p, run):
    rows = survey()
    groups = {}
    for mech in MECHANISMS:
        members = [r for r in rows if mech in r["mechanisms"]]
        groups[mech] = {"methods": [r["name"] for r in members], "targets": [r["target"] for r in members],
                        "imports": [r["imports"] for r in members]}
    return Result(
        metrics={"mechanisms": list(MECHANISMS), "groups": groups, "n_methods": len(rows),
                 "n_broken": sum(not r["imports"] for r in rows),
                 "broken": [f"{r['name']}: {r['error']}" for r in rows if not r["imports"]],
                 "show_targets": p.show_targets},
        arrays={},
        notes="The book's figure lists methods from the whole literature; this one lists only what udl "
              "implements and tests.")


@regularization_map.plot
def _(r):
    m = r.metrics
    fig, ax = style.subplots(1, 1, width=8.0, height=5.2)
    centres = [(0.25, 0.72), (0.75, 0.72), (0.25, 0.25), (0.75, 0.25)]
    colours = [style.MODEL, style.DATA, style.EXTRA[0], style.EXTRA[1]]
    ax.text(0.5, 0.485, "regularization", ha="center", va="center", fontsize=11, fontweight="bold",
            bbox=dict(boxstyle="round", fc="white", ec="black"))
    for (cx, cy), colour, mech in zip(centres, colours, m["mechanisms"]):
        group = m["groups"][mech]
        ax.add_patch(FancyBboxPatch((cx - 0.23, cy - 0.19), 0.46, 0.38, boxstyle="round,pad=0.01",
                                    fc=colour, alpha=0.15, ec=colour, lw=1.5))
        ax.text(cx, cy + 0.16, mech, ha="center", va="center", fontsize=10, fontweight="bold")
        lines = []
        for name, target, ok in zip(group["methods"], group["targets"], group["imports"]):
            mark = "✓" if ok else "✗"
            lines.append(f"{mark} {name}" + (f"\n     {target}" if m["show_targets"] else ""))
        ax.text(cx - 0.21, cy + 0.11, "\n".join(lines) or "(none in udl yet)", ha="left", va="top", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    return fig


@regularization_map.checks
def _(r):
    m = r.metrics
    checks = [Check.greater(f"'{mech}': at least one implemented method that imports",
                            sum(m["groups"][mech]["imports"]), 0) for mech in m["mechanisms"]]
    checks.append(Check.equal("every listed method imports", m["broken"], []))
    return checks
