"""Chapter 4: deep neural networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from udl import drawing, style
from udl.analysis.regions import count_regions_1d, count_regions_sampled_1d, linear_regions_1d
from udl.nn.deep import DeepNetwork, compose, compose_as_deep
from udl.nn.shallow import ShallowNetwork
from udl.registry import Check, Limit, Result, figure


# --------------------------------------------------------------------------- 4.3
def _set_shallow(theta_0, theta_1, phi_0, phi):
    """A 1-input, 1-output ShallowNetwork (float64) with the given book parameters."""
    net = ShallowNetwork(1, len(theta_0), 1).to(torch.float64)
    as64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        net.theta_0.copy_(as64(theta_0))
        net.theta.copy_(as64(theta_1)[:, None])
        net.phi_0.copy_(as64([phi_0]))
        net.phi.copy_(as64(phi)[None, :])
    return net


@figure("4.3", title="Composing networks folds the input space",
        caption="Two shallow networks with three hidden units each, one input and one output. a) The "
                "first maps [-1, 1] onto [-1, 1] three times, up, down and up again: it folds the input "
                "space onto itself. b) The second network has three linear regions on [-1, 1]. c) Their "
                "composition applies the second function within every fold, so its 3 x 3 = 9 linear "
                "regions (shaded alternately) are counted on the composed function itself.",
        params={"tiny": dict(n=2001), "full": dict(n=20001)},
        # the sampled count is exact when every region spans three grid steps (2/(n-1) each):
        # the narrowest of the composition's nine regions is 1/6 wide, hence n >= 37
        limits={"n": (37, 2_000_000)})
def folding(p, run):
    # the book's fig. 4.1 construction: joints at -1, -1/3, 1/3; slopes +3, -3, +3 on [-1, 1]
    net1 = _set_shallow([1.0, 1 / 3, -1 / 3], [1.0, 1.0, 1.0], -1.0, [3.0, -6.0, 6.0])
    # a second network with joints at -1, -0.2, 0.5: slopes +1.5, -2, +1 on [-1, 1]
    net2 = _set_shallow([1.0, 0.2, -0.5], [1.0, 1.0, 1.0], -0.5, [1.5, -3.5, 3.0])
    both = compose(net1, net2)
    deep = compose_as_deep(net1, net2)
    x = torch.linspace(-1, 1, p.n, dtype=torch.float64)[:, None]  # (n, 1)
    with torch.no_grad():
        y1 = net1(x)
        y2 = net2(x)  # net2 on its own input range [-1, 1]
        y = both(x)
        chained = net2(net1(x))
        y_deep = deep(x)
    r1, r2 = count_regions_1d(net1, -1.0, 1.0), count_regions_1d(net2, -1.0, 1.0)
    return Result(
        metrics={"regions_net1": r1, "regions_net2": r2, "regions_composition": count_regions_1d(both, -1.0, 1.0),
                 "regions_composition_sampled": count_regions_sampled_1d(both, -1.0, 1.0, n=p.n),
                 "net1_range": [float(y1.min()), float(y1.max())],
                 "composition_vs_chained": (y - chained).abs().max().item(),
                 "composition_vs_deep_network": (y - y_deep).abs().max().item(),
                 "deep_widths": list(deep.widths),
                 "composition_boundaries": linear_regions_1d(both, -1.0, 1.0).tolist()},
        arrays={"x": x[:, 0].numpy(), "y1": y1[:, 0].numpy(), "y2": y2[:, 0].numpy(), "y": y[:, 0].numpy()})


@folding.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 3, width=2.6, height=2.6)
    axes[0].plot(a["x"], a["y1"], color=style.MODEL, lw=2)
    axes[0].set(xlabel="input x", ylabel="y = net1(x)")
    axes[1].plot(a["x"], a["y2"], color=style.MODEL, lw=2)
    axes[1].set(xlabel="y", ylabel="y' = net2(y)")
    bounds = m["composition_boundaries"]
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if k % 2 == 0:
            axes[2].axvspan(lo, hi, color=style.REGION, alpha=0.5, lw=0)
    axes[2].plot(a["x"], a["y"], color=style.MODEL, lw=2)
    axes[2].set(xlabel="input x", ylabel="y' = net2(net1(x))")
    for ax, count in zip(axes, (m["regions_net1"], m["regions_net2"], m["regions_composition"])):
        ax.set_title(f"{count} regions", loc="right", fontsize=9)
    for ax in axes:
        ax.set(xlim=(-1, 1), ylim=(-1.1, 1.1))
        ax.axhline(0, color=style.REGION, lw=0.6, zorder=0)
    style.panel_labels(axes)
    return fig


@folding.checks
def _(r):
    m = r.metrics
    return [Check.equal("net1 and net2 each have 3 linear regions on [-1, 1]",
                        [m["regions_net1"], m["regions_net2"]], [3, 3]),
            Check.close("net1 folds [-1, 1] onto the whole of [-1, 1]", max(abs(m["net1_range"][0] + 1),
                                                                            abs(m["net1_range"][1] - 1)), 0.0, 1e-12),
            Check.equal("the composition has (regions of net1) x (regions of net2) regions, counted on it",
                        m["regions_composition"], m["regions_net1"] * m["regions_net2"]),
            Check.equal("a sampled-slope count on the grid agrees", m["regions_composition_sampled"],
                        m["regions_composition"]),
            Check.close("compose(net1, net2)(x) = net2(net1(x))", m["composition_vs_chained"], 0.0, 0.0),
            Check.close("the composition equals a deep network with two hidden layers (§4.2)",
                        m["composition_vs_deep_network"], 0.0, 1e-12)]


# --------------------------------------------------------------------------- 4.6
@figure("4.6", title="Matrix notation for a deep network",
        caption="A deep network with a 3-dimensional input, hidden layers of 4, 2 and 3 units and a "
                "2-dimensional output, with the shapes read from a DeepNetwork instance. The weight "
                "matrix Ω_k takes layer k to layer k+1, so it has D_{k+1} rows and D_k columns (Ω_1 is "
                "2 x 4); the bias β_k has the size of the layer it feeds (β_2 has length 3).",
        params={"tiny": dict(widths=[3, 4, 2, 3, 2]), "full": dict(widths=[3, 4, 2, 3, 2])},
        limits={"widths": Limit(1, 16, min_len=2, max_len=10)})  # input and output at least; a readable diagram
def matrix_notation(p, run):
    net = DeepNetwork(list(p.widths), generator=run.generator())
    x = torch.randn(5, p.widths[0], generator=run.generator(1))
    with torch.no_grad():
        h = x
        for k, layer in enumerate(net.layers):  # torch's own kernels as the reference
            h = F.linear(h, layer.weight, layer.bias)
            h = F.relu(h) if k < len(net.layers) - 1 else h
        diff = (net(x) - h).abs().max().item()
    widths = list(p.widths)
    return Result(
        metrics={"widths": widths,
                 "omega_shapes": [list(w.shape) for w in net.omegas],
                 "beta_lengths": [len(b) for b in net.betas],
                 "expected_omega_shapes": [[b, a] for a, b in zip(widths[:-1], widths[1:])],
                 "expected_beta_lengths": widths[1:],
                 "n_parameters": sum(q.numel() for q in net.parameters()),
                 "formula_parameters": sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])),
                 "forward_vs_torch_reference": diff},
        arrays={f"omega_{k}": w.detach().numpy() for k, w in enumerate(net.omegas)})


@matrix_notation.plot
def _(r):
    m = r.metrics
    widths = m["widths"]
    n_layers = len(widths)
    fig, ax = style.subplots(width=7.0, height=3.6)
    gap = 1.8
    pos = [[(gap * k, (w - 1) / 2 - i) for i in range(w)] for k, w in enumerate(widths)]
    for k in range(n_layers - 1):  # one line per entry of Ω_k
        omega = r.arrays[f"omega_{k}"]
        for i, (x1, y1) in enumerate(pos[k + 1]):
            for j, (x0, y0) in enumerate(pos[k]):
                ax.plot([x0, x1], [y0, y1], color="black", lw=0.3 + 1.2 * abs(omega[i, j]), zorder=1)
    names = ["x"] + [f"h_{k}" for k in range(1, n_layers - 1)] + ["y"]
    for k, column in enumerate(pos):
        for (x, y) in column:
            drawing.node(ax, (x, y), r=0.22)
        ax.text(gap * k, (max(widths) - 1) / 2 + 0.7, f"${names[k]}$", ha="center", fontsize=11)
        ax.text(gap * k, -(max(widths) - 1) / 2 - 0.75, f"$D_{{{k}}}$={widths[k]}" if 0 < k < n_layers - 1
                else ("$D_i$=" if k == 0 else "$D_o$=") + str(widths[k]), ha="center", fontsize=8)
    for k, (shape, length) in enumerate(zip(m["omega_shapes"], m["beta_lengths"])):
        xm = gap * (k + 0.5)
        ax.text(xm, (max(widths) - 1) / 2 + 0.2, rf"$\Omega_{k}$: {shape[0]}×{shape[1]}", ha="center",
                fontsize=9, bbox=dict(fc="white", ec="none", pad=0.2), zorder=4)
        ax.text(xm, -(max(widths) - 1) / 2 - 0.3, rf"$\beta_{k}$: {length}", ha="center", fontsize=9,
                color=style.DATA, bbox=dict(fc="white", ec="none", pad=0.2), zorder=4)
    drawing.frame(ax, (-0.6, gap * (n_layers - 1) + 0.6), (-(max(widths) - 1) / 2 - 1.1, (max(widths) - 1) / 2 + 1.1))
    ax.set_title(f"{m['n_parameters']} parameters", fontsize=9)
    return fig


@matrix_notation.checks
def _(r):
    m = r.metrics
    checks = [Check.equal("every Ω_k has shape D_{k+1} x D_k", m["omega_shapes"], m["expected_omega_shapes"]),
              Check.equal("every β_k has length D_{k+1}", m["beta_lengths"], m["expected_beta_lengths"])]
    if m["widths"] == [3, 4, 2, 3, 2]:
        checks += [Check.equal("Ω_1 is 2 x 4", m["omega_shapes"][1], [2, 4]),
                   Check.equal("β_2 has length 3", m["beta_lengths"][2], 3),
                   Check.equal("3·4+4 + 4·2+2 + 2·3+3 + 3·2+2 = 43 parameters", m["n_parameters"], 43)]
    checks += [Check.equal("parameters counted on the module = Σ_k (D_k + 1)·D_{k+1}",
                           m["n_parameters"], m["formula_parameters"]),
               Check.close("the forward pass equals F.linear/F.relu with the listed Ω_k, β_k",
                           m["forward_vs_torch_reference"], 0.0, 1e-6)]
    return checks
