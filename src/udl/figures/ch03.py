"""Chapter 3: shallow neural networks."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from udl import drawing, style
from udl.analysis.regions import (activation_patterns, count_regions_1d, count_regions_sampled_1d,
                                  count_regions_shallow, hyperplane_vertices, max_regions, region_labels,
                                  region_patterns_shallow)
from udl.nn.activations import relu
from udl.nn.shallow import ShallowNetwork, fit_shallow
from udl.registry import Check, Limit, Result, figure


@figure("3.1", title="The rectified linear unit",
        caption="ReLU clips negative inputs to zero and passes positive inputs through "
                "unchanged. Evaluated with udl's ReLU on a grid and compared with torch.relu.",
        params={"tiny": dict(n=201, span=5.0), "full": dict(n=2001, span=5.0)},
        limits={"n": (2, 1_000_000), "span": (1e-6, 1e6)})  # n >= 2 and span > 0: inputs of both signs
def relu_curve(p, run):
    z = torch.linspace(-p.span, p.span, p.n, dtype=torch.float64)
    a = relu(z)
    negative, positive = z < 0, z >= 0
    return Result(
        metrics={"max_abs_diff_torch": (a - torch.relu(z)).abs().max().item(),
                 "max_abs_negative": a[negative].abs().max().item(),
                 "max_abs_identity_error": (a[positive] - z[positive]).abs().max().item()},
        arrays={"z": z.numpy(), "a": a.numpy()})


@relu_curve.plot
def _(r):
    fig, ax = style.subplots()
    ax.plot(r.arrays["z"], r.arrays["a"], color=style.MODEL, lw=2)
    ax.axhline(0, color=style.REGION, lw=0.8)
    ax.axvline(0, color=style.REGION, lw=0.8)
    ax.set(xlabel="input z", ylabel="ReLU[z]", title="ReLU", aspect="equal")
    return fig


@relu_curve.checks
def _(r):
    m = r.metrics
    return [Check.close("udl's ReLU equals torch.relu", m["max_abs_diff_torch"], 0.0, 0.0),
            Check.close("zero for every negative input", m["max_abs_negative"], 0.0, 0.0),
            Check.close("identity for every non-negative input", m["max_abs_identity_error"], 0.0, 0.0)]


# --------------------------------------------------------------------------- diagrams (drawing only)
NODE_R = 0.2  # the radius of a unit's circle; arrows stop at its edge
_LABEL_BOX = dict(fc="white", ec="none", pad=0.3)


def _column(names, x, top=None):
    """Centre a column of node names at abscissa x; returns {name: (x, y)}."""
    n = len(names)
    ys = np.arange(n)[::-1] - (n - 1) / 2 if top is None else top - np.arange(n)
    return {name: (x, float(y)) for name, y in zip(names, ys)}


# --------------------------------------------------------------------------- 3.4
@figure("3.4", title="Depicting a shallow network",
        caption="The 1-input, 3-hidden-unit, 1-output network drawn from a ShallowNetwork instance: "
                "one arrow per parameter of the module. Intercepts (orange) leave the constant nodes "
                "'1'; slopes are black. Each parameter multiplies its source and is added to its "
                "target, and the hidden units apply a ReLU. Panel b drops the intercepts, the ReLUs "
                "and the names, as diagrams usually do.",
        params={"tiny": dict(d_in=1, d_hidden=3, d_out=1), "full": dict(d_in=1, d_hidden=3, d_out=1)},
        limits={"d_in": (1, 16), "d_hidden": (1, 16), "d_out": (1, 16)})  # a diagram stays readable
def network_diagram(p, run):
    net = ShallowNetwork(p.d_in, p.d_hidden, p.d_out, generator=run.generator())
    edges = net.edges()  # one per parameter, read from the module
    params = torch.cat([q.detach().flatten() for q in net.parameters()])
    edge_values = torch.tensor([e.value for e in edges], dtype=params.dtype)
    return Result(
        metrics={"n_parameters": sum(q.numel() for q in net.parameters()),
                 "n_arrows": len(edges),
                 "n_intercepts": sum(e.kind == "intercept" for e in edges),
                 "n_slopes": sum(e.kind == "slope" for e in edges),
                 "formula_parameters": ShallowNetwork.parameter_count(p.d_in, p.d_hidden, p.d_out),
                 "expected_intercepts": p.d_hidden + p.d_out,
                 "expected_slopes": p.d_in * p.d_hidden + p.d_hidden * p.d_out,
                 "arrow_values_vs_parameters": (edge_values.sort().values - params.sort().values).abs().max().item(),
                 "d_in": p.d_in, "d_hidden": p.d_hidden, "d_out": p.d_out},
        arrays={"source": np.array([e.source for e in edges]), "target": np.array([e.target for e in edges]),
                "symbol": np.array([e.symbol for e in edges]), "kind": np.array([e.kind for e in edges]),
                "value": edge_values.numpy()})


@network_diagram.plot
def _(r):
    a = r.arrays
    src, dst, sym, kind = (list(map(str, a[k])) for k in ("source", "target", "symbol", "kind"))
    inputs = list(dict.fromkeys(s for s, k in zip(src, kind) if s.startswith("x")))
    hidden = list(dict.fromkeys(t for t in dst if t.startswith("h")))
    outputs = list(dict.fromkeys(t for t in dst if t.startswith("y")))
    fig, axes = style.subplots(1, 2, width=3.6, height=3.0)
    # panel a: every parameter, intercepts included
    pos = {**_column(inputs, 0.0), **_column(hidden, 1.6), **_column(outputs, 3.2)}
    top = max(y for _, y in pos.values())
    pos["1_h"], pos["1_y"] = (0.0, top + 0.8), (1.6, top + 0.8)
    ax = axes[0]
    for s, t, name, k in zip(src, dst, sym, kind):
        color = style.DATA if k == "intercept" else style.TRUTH
        drawing.arrow(ax, pos[s], pos[t], color=color, trim=NODE_R, head=9, zorder=2)
        (x0, y0), (x1, y1) = pos[s], pos[t]
        # labels where the arrows fan out: intercepts near their targets, slopes near their sources
        f = 0.72 if (k == "intercept" and t.startswith("h")) else 0.38 if t.startswith("h") else 0.45
        ax.text(x0 + f * (x1 - x0), y0 + f * (y1 - y0) + 0.06, f"${name}$", color=color, fontsize=8,
                ha="center", va="bottom", zorder=5, bbox=_LABEL_BOX)
    for name, xy in pos.items():
        bias = name.startswith("1_")
        label = "1" if bias else f"${name[0]}_{{{name[1:]}}}$" if len(name) > 1 else f"${name}$"
        drawing.node(ax, xy, label, r=NODE_R, face=style.DATA if bias else "white",
                     edge=style.DATA if bias else "black")
    # panel b: the usual simplified drawing, slopes only
    ax = axes[1]
    for s, t, k in zip(src, dst, kind):
        if k == "slope":
            drawing.arrow(ax, pos[s], pos[t], trim=NODE_R, head=9, zorder=2)
    for name in inputs + hidden + outputs:
        drawing.node(ax, pos[name], r=NODE_R, text=f"${name[0]}_{{{name[1:]}}}$" if len(name) > 1 else f"${name}$")
    ys = [y for _, y in pos.values()]
    for ax in axes:
        drawing.frame(ax, (-0.5, 3.7), (min(ys) - 0.5, max(ys) + 0.5))
    style.panel_labels(axes)
    axes[0].set_title(f"{r.metrics['n_arrows']} arrows = {r.metrics['n_parameters']} parameters", fontsize=9)
    axes[1].set_title("simplified", fontsize=9)
    return fig


@network_diagram.checks
def _(r):
    m = r.metrics
    return [Check.equal("one arrow per parameter of the module", m["n_arrows"], m["n_parameters"]),
            Check.equal("parameters = (Di+1)·D + (D+1)·Do", m["n_parameters"], m["formula_parameters"]),
            Check.equal("intercepts drawn (orange): D + Do", m["n_intercepts"], m["expected_intercepts"]),
            Check.equal("slopes drawn (black): Di·D + D·Do", m["n_slopes"], m["expected_slopes"]),
            Check.close("the arrows carry exactly the module's parameter values",
                        m["arrow_values_vs_parameters"], 0.0, 0.0)]


# --------------------------------------------------------------------------- 3.5
def _smooth_truth(x: torch.Tensor) -> torch.Tensor:
    """The function to approximate: exp(sin(2πx)) on [0, 1] (the book's chapter-8 toy function)."""
    return torch.exp(torch.sin(2 * torch.pi * x))


@figure("3.5", title="Approximating a 1D function with shallow networks",
        caption="Shallow ReLU networks of growing width fitted by least squares to the smooth function "
                "exp(sin 2πx) (dashed). A network with one input makes a piecewise-linear function with "
                "one joint per hidden unit, so D hidden units whose joints all fall inside [0, 1] cut it "
                "into D + 1 linear regions; with more units the approximation error shrinks, as the "
                "universal approximation theorem promises.",
        params={"tiny": dict(widths=[3, 6, 12], n_train=101, steps=100, n_eval=501),
                "full": dict(widths=[3, 6, 12], n_train=401, steps=300, n_eval=2001)},
        limits={"widths": Limit(1, 256, max_len=8), "n_train": (2, 10_000), "steps": (0, 2000),
                "n_eval": (2, 1_000_000)})
def universal_approximation(p, run):
    x = torch.linspace(0, 1, p.n_train, dtype=torch.float64)
    x_eval = torch.linspace(0, 1, p.n_eval, dtype=torch.float64)
    truth = _smooth_truth(x_eval)
    widths = sorted(set(p.widths))  # the fit is deterministic: each width once, narrowest first
    fits, rmse, regions, sampled, inside, joints = [], [], [], [], [], []
    for width in run.progress(widths, desc="widths"):
        net = fit_shallow(x, _smooth_truth(x), width, steps=p.steps, lo=0.0, hi=1.0)
        with torch.no_grad():
            fit = net(x_eval[:, None])[:, 0]
        j = net.joints()
        j_in = torch.unique(j[(j > 0) & (j < 1)])  # distinct joints strictly inside the domain
        fits.append(fit.numpy())
        rmse.append(((fit - truth) ** 2).mean().sqrt().item())
        regions.append(count_regions_1d(net, 0.0, 1.0))
        sampled.append(count_regions_sampled_1d(net, 0.0, 1.0, n=20001))
        inside.append(len(j_in))
        joints.append(sorted(j.tolist()))
    return Result(
        metrics={"widths": widths, "rmse": rmse, "regions": regions, "regions_sampled": sampled,
                 "joints_inside": inside, "joints": joints},
        arrays={"x": x_eval.numpy(), "truth": truth.numpy(), "fits": np.stack(fits)},
        notes="The book draws hand-made approximations; here each network is fitted (joints spread "
              "evenly, output layer by least squares, then all parameters refined by L-BFGS) to "
              f"{p.n_train} noise-free samples of exp(sin 2πx).")


@universal_approximation.plot
def _(r):
    a, m = r.arrays, r.metrics
    n = len(m["widths"])
    fig, axes = style.subplots(1, n, width=2.8, height=2.6, sharey=True)
    axes = np.atleast_1d(axes)
    for k, ax in enumerate(axes):
        for j in m["joints"][k]:
            if 0 < j < 1:
                ax.axvline(j, color=style.REGION, lw=0.8, zorder=0)
        ax.plot(a["x"], a["truth"], color=style.TRUTH, ls="--", lw=1.2, zorder=3)
        ax.plot(a["x"], a["fits"][k], color=style.MODEL, lw=1.8)
        ax.set(xlim=(0, 1), xlabel="input x",
               title=f"D = {m['widths'][k]}: {m['regions'][k]} regions\nRMSE {m['rmse'][k]:.3f}")
    axes[0].set_ylabel("output y")
    style.panel_labels(axes)
    return fig


@universal_approximation.checks
def _(r):
    m = r.metrics
    widths, regions, inside = m["widths"], m["regions"], m["joints_inside"]
    all_in = [k for k, (w, i) in enumerate(zip(widths, inside)) if i == w]
    return [Check.equal("regions counted on each fitted function = joints inside (0, 1) + 1",
                        regions, [i + 1 for i in inside]),
            Check.equal("D + 1 regions for every width whose D joints all lie inside (0, 1)",
                        [regions[k] for k in all_in], [widths[k] + 1 for k in all_in]),
            Check.greater("number of widths with every joint inside", len(all_in), 0),
            Check.equal("a sampled-slope count on a 20,001-point grid agrees", m["regions_sampled"], regions),
            _rmse_falls(widths, m["rmse"])]


def _rmse_falls(widths, rmse):
    """The RMSE falls from each width to the next wider one, whatever order the widths come in."""
    claim = "the RMSE to the true function falls as the width grows"
    if len(set(widths)) < 2:
        return Check.untested(claim, "needs at least two different widths")
    ordered = [rmse[k] for k in np.argsort(widths)]
    return Check.holds(claim, all(b < a for a, b in zip(ordered, ordered[1:])), ordered, "decreasing")


# --------------------------------------------------------------------------- 3.12
@figure("3.12", title="Terminology: layers, weights, pre-activations, activations",
        caption="One forward pass through a shallow network with the actual numbers. The input layer "
                "feeds the hidden layer, which feeds the output layer, through fully connected forward "
                "connections; each arrow is a weight (a slope parameter, line width ∝ |value|). The "
                "values arriving at a hidden unit are its pre-activation (left of the unit); after the "
                "ReLU they are its activation (right of the unit).",
        params={"tiny": dict(d_in=3, d_hidden=4, d_out=2), "full": dict(d_in=3, d_hidden=4, d_out=2)},
        limits={"d_in": (1, 16), "d_hidden": (1, 16), "d_out": (1, 16)})
def terminology(p, run):
    net = ShallowNetwork(p.d_in, p.d_hidden, p.d_out, generator=run.generator())
    x = torch.rand(1, p.d_in, generator=run.generator(1)) * 2 - 1  # one input in [-1, 1]^Di
    with torch.no_grad():
        y, pre, act = net.forward_with_activations(x)
        reference = F.linear(F.relu(F.linear(x, net.hidden.weight, net.hidden.bias)),
                             net.output.weight, net.output.bias)
    return Result(
        metrics={"x": x[0].tolist(), "pre_activations": pre[0].tolist(), "activations": act[0].tolist(),
                 "y": y[0].tolist(),
                 "activation_vs_relu_of_pre": (act - relu(pre)).abs().max().item(),
                 "output_vs_torch_reference": (y - reference).abs().max().item(),
                 "n_weights": net.theta.numel() + net.phi.numel(),
                 "expected_weights": p.d_in * p.d_hidden + p.d_hidden * p.d_out,
                 "n_clipped": int((pre <= 0).sum()), "d_hidden": p.d_hidden},
        arrays={"theta": net.theta.detach().numpy(), "phi": net.phi.detach().numpy()})


@terminology.plot
def _(r):
    m, a = r.metrics, r.arrays
    d_in, d_hidden, d_out = len(m["x"]), len(m["pre_activations"]), len(m["y"])
    xs = _column([f"x{i + 1}" for i in range(d_in)], 0.0)
    hs = _column([f"h{d + 1}" for d in range(d_hidden)], 2.4)
    ys = _column([f"y{j + 1}" for j in range(d_out)], 4.8)
    fig, ax = style.subplots(width=6.4, height=3.6)
    scale = max(np.abs(a["theta"]).max(), np.abs(a["phi"]).max())
    for d, h in enumerate(hs.values()):
        for i, x in enumerate(xs.values()):
            drawing.arrow(ax, x, h, lw=0.3 + 2.0 * abs(a["theta"][d, i]) / scale, trim=NODE_R, head=9, zorder=2)
        for j, y in enumerate(ys.values()):
            drawing.arrow(ax, h, y, lw=0.3 + 2.0 * abs(a["phi"][j, d]) / scale, trim=NODE_R, head=9, zorder=2)
    for i, (name, xy) in enumerate(xs.items()):
        drawing.node(ax, xy, f"$x_{i + 1}$", r=NODE_R)
        ax.text(xy[0] - 0.3, xy[1], f"{m['x'][i]:+.2f}", ha="right", va="center", fontsize=8)
    for d, xy in enumerate(hs.values()):
        clipped = m["pre_activations"][d] <= 0
        drawing.node(ax, xy, f"$h_{d + 1}$", r=NODE_R, face=style.REGION if clipped else "white")
        ax.text(xy[0] - 0.28, xy[1] + 0.22, f"{m['pre_activations'][d]:+.2f}", ha="right", va="bottom",
                fontsize=8, color=style.EXTRA[0], zorder=5, bbox=_LABEL_BOX)
        ax.text(xy[0] + 0.28, xy[1] + 0.22, f"{m['activations'][d]:.2f}", ha="left", va="bottom",
                fontsize=8, color=style.MODEL, zorder=5, bbox=_LABEL_BOX)
    for j, (name, xy) in enumerate(ys.items()):
        drawing.node(ax, xy, f"$y_{j + 1}$", r=NODE_R)
        ax.text(xy[0] + 0.3, xy[1], f"{m['y'][j]:+.2f}", ha="left", va="center", fontsize=8)
    top = (d_hidden - 1) / 2 + 0.8
    for x0, words in ((0.0, "input layer"), (2.4, "hidden layer"), (4.8, "output layer")):
        ax.text(x0, top + 0.35, words, ha="center", fontsize=9, fontweight="bold")
    ax.text(2.1, top, "pre-activations", ha="right", fontsize=8, color=style.EXTRA[0])
    ax.text(2.7, top, "activations", ha="left", fontsize=8, color=style.MODEL)
    ax.text(1.2, -top, f"{d_in}·{d_hidden} = {d_in * d_hidden} weights θ", ha="center", fontsize=8)
    ax.text(3.6, -top, f"{d_hidden}·{d_out} = {d_hidden * d_out} weights φ", ha="center", fontsize=8)
    drawing.frame(ax, (-1.0, 5.8), (-top - 0.3, top + 0.7))
    return fig


@terminology.checks
def _(r):
    m = r.metrics
    return [Check.close("activations = ReLU(pre-activations), with the book's max(0, z)",
                        m["activation_vs_relu_of_pre"], 0.0, 0.0),
            Check.equal("weights (slope parameters) = Di·D + D·Do", m["n_weights"], m["expected_weights"]),
            Check.close("the forward pass equals torch's F.linear/F.relu on the same weights",
                        m["output_vs_torch_reference"], 0.0, 1e-6)]


# --------------------------------------------------------------------------- 3.regions
@figure("3.regions", title="How many regions D ReLU hyperplanes cut in Di dimensions",
        caption="Each hidden unit of a shallow network splits input space along the hyperplane where "
                "its pre-activation is zero. D hyperplanes in general position in Di dimensions make "
                "Σ_{j≤Di} C(D, j) regions (Zaslavsky's formula; D + 1 for one input). Counted on random "
                "networks, by enumerating activation patterns, the count matches the formula. a) the "
                "regions of one random network with two inputs, shaded by activation pattern; b) regions "
                "against hidden units, formula (lines) and counts (dots).",
        params={"tiny": dict(d_ins=[1, 2, 3], d_max=6, draw_units=5, n_grid=201),
                "full": dict(d_ins=[1, 2, 3], d_max=8, draw_units=5, n_grid=601)},
        # C(d_max, Di) vertices are enumerated; panel a needs two lines to meet (draw_units >= 2)
        limits={"d_ins": Limit(1, 5, max_len=5), "d_max": (1, 16), "draw_units": (2, 12), "n_grid": (2, 1001)})
def region_count(p, run):
    units = list(range(1, p.d_max + 1))
    counted, formula = {}, {}
    for d_in in p.d_ins:
        nets = [ShallowNetwork(d_in, d, 1, generator=run.generator(1000 * d_in + d)) for d in units]
        counted[str(d_in)] = [count_regions_shallow(net) for net in nets]
        formula[str(d_in)] = [max_regions(d_in, d) for d in units]
        if d_in == 1:  # one input: also count on the network's function, joint by joint
            function_counts = []
            for net in nets:
                joints = net.joints()
                lo, hi = float(joints.min()) - 1.0, float(joints.max()) + 1.0
                function_counts.append(count_regions_1d(net, lo, hi))

    # one random 2D network drawn on a grid: of a few candidates, the one whose vertices lie
    # closest together (so every region shows), in a window holding every vertex
    def spread(candidate):
        v = hyperplane_vertices(candidate)
        return float((v.max(0).values - v.min(0).values).max())

    candidates = [ShallowNetwork(2, p.draw_units, 1, generator=run.generator(7 + k)) for k in range(10)]
    net = min(candidates, key=spread)
    vertices = hyperplane_vertices(net)
    centre = 0.5 * (vertices.min(0).values + vertices.max(0).values)
    half = 0.65 * float((vertices.max(0).values - vertices.min(0).values).max()) + 0.5
    axis = torch.linspace(-half, half, p.n_grid, dtype=torch.float64)
    gx, gy = torch.meshgrid(centre[0] + axis, centre[1] + axis, indexing="xy")  # (n, n) each
    points = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (n², 2)
    grid_patterns = activation_patterns(net, points)
    labels, grid_count = region_labels(grid_patterns)
    enumerated = region_patterns_shallow(net)
    known = {tuple(row) for row in enumerated.tolist()}
    unknown = sum(tuple(row) not in known for row in torch.unique(grid_patterns, dim=0).tolist())
    # gray level per region: number of active units, so neighbours differ by one step
    active = grid_patterns.sum(dim=1).reshape(p.n_grid, p.n_grid)
    return Result(
        metrics={"units": units, "counted": counted, "formula": formula,
                 "d1_function_counts": function_counts if 1 in p.d_ins else [],
                 "drawn_units": p.draw_units, "drawn_regions": len(enumerated),
                 "drawn_formula": max_regions(2, p.draw_units), "drawn_grid_regions": grid_count,
                 "grid_patterns_not_enumerated": unknown},
        arrays={"active": active.numpy().astype(np.int16), "labels": labels.reshape(p.n_grid, p.n_grid).numpy(),
                "extent": np.array([float(centre[0]) - half, float(centre[0]) + half,
                                    float(centre[1]) - half, float(centre[1]) + half]),
                "theta": net.theta.detach().numpy(), "theta_0": net.theta_0.detach().numpy()},
        notes="Counts are exact enumerations of activation patterns around the arrangement's vertices "
              "(over all of input space). Panel a draws, of 10 random networks, the one whose vertices "
              "lie closest together; its grid can still miss regions thinner than a grid cell.")


@region_count.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig, axes = style.subplots(1, 2, width=3.4, height=3.0)
    ax = axes[0]
    x0, x1, y0, y1 = a["extent"]
    shade = a["active"] + 0.35 * (a["labels"] % 3)  # same active count: still tell regions apart
    ax.imshow(shade, origin="lower", extent=(x0, x1, y0, y1), cmap="Greys", alpha=0.75, interpolation="nearest")
    xs = np.linspace(x0, x1, 2)
    for (t1, t2), t0 in zip(a["theta"], a["theta_0"]):  # the line θ_0 + θ_1 x_1 + θ_2 x_2 = 0
        if abs(t2) > 1e-12:
            ax.plot(xs, -(t0 + t1 * xs) / t2, color=style.TRUTH, lw=0.8)
        else:
            ax.axvline(-t0 / t1, color=style.TRUTH, lw=0.8)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="$x_1$", ylabel="$x_2$", aspect="equal",
           title=f"D = {m['drawn_units']}: {m['drawn_regions']} regions")
    ax = axes[1]
    units = m["units"]
    for k, (d_in, counts) in enumerate(m["counted"].items()):
        color = [style.MODEL, style.DATA, *style.EXTRA][k % 6]
        ax.plot(units, m["formula"][d_in], color=color, lw=1.2, label=f"$D_i$ = {d_in}")
        ax.plot(units, counts, "o", color=color, ms=4)
    ax.set(xlabel="hidden units D", ylabel="linear regions")
    ax.set_title("lines: formula, dots: counted", loc="right", fontsize=9)
    ax.legend()
    style.panel_labels(axes)
    return fig


@region_count.checks
def _(r):
    m = r.metrics
    checks = [Check.equal(f"Di = {d_in}: regions counted on random networks = Σ_j C(D, j), D = 1..{m['units'][-1]}",
                          m["counted"][d_in], m["formula"][d_in]) for d_in in m["counted"]]
    if "1" in m["counted"]:
        checks.append(Check.equal("Di = 1: the formula gives D + 1", m["formula"]["1"], [d + 1 for d in m["units"]]))
        checks.append(Check.equal("Di = 1: regions counted on the network's function = D + 1",
                                  m["d1_function_counts"], [d + 1 for d in m["units"]]))
    checks += [Check.equal("drawn network: enumerated regions = formula", m["drawn_regions"], m["drawn_formula"]),
               Check.equal("drawn network: every pattern seen on the grid is an enumerated region",
                           m["grid_patterns_not_enumerated"], 0),
               Check.holds("drawn network: the grid sees at most the enumerated regions",
                           m["drawn_grid_regions"] <= m["drawn_regions"], m["drawn_grid_regions"],
                           f"<= {m['drawn_regions']}")]
    return checks
