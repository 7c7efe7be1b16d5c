"""Chapter 6: update rules on the book's test functions (figs. 6.9 and 6.10)."""

from __future__ import annotations

import math

import numpy as np
import torch

from udl import style
from udl.data.testfunctions import ADAM_MINIMUM, ADAM_START, adam_loss, line_search_loss, line_search_loss_grad
from udl.optim import BookAdam, SignGD, bracket_minimize, descent_path, to_torch_adam
from udl.registry import Check, Result, figure

_RADIUS = 0.05  # "near the minimum" for the steps-to-arrive comparison of fig. 6.9
_TAIL = 10  # the last steps of fig. 6.9's sign run


def _steps_within(path, minimum, radius):
    """The first step whose point lies within ``radius`` of the minimum (len(path) if none)."""
    inside = ((path - minimum).norm(dim=1) < radius).nonzero()
    return int(inside[0]) if len(inside) else len(path)


def _reversals(path):
    """How often a coordinate's step changes direction along the path (a measure of zig-zag)."""
    delta = path[1:] - path[:-1]
    return int((delta[1:] * delta[:-1] < 0).sum())


# --------------------------------------------------------------------------- 6.9
@figure("6.9", title="Adam on a loss that is steep in one direction and flat in the other",
        caption="Paths on the book's test loss L = 1 - exp(-2φ1²)·exp(-(φ0-0.7)²/8), from (-0.7, -0.9), "
                "drawn on its contours (minimum: white cross). a) Gradient descent with step 0.08 settles "
                "φ1 within a few steps but crawls along the flat φ0 direction. b) With step 1.0 it "
                "overshoots across the steep valley at every step and never settles. c) Normalised "
                "gradients (the sign of each component) move 0.08 along both axes at every step, reach "
                "the minimum's neighbourhood quickly, then jump back and forth between the same two "
                "points. d) Adam (α 0.05, β 0.9, γ 0.99) averages both the gradient and its square and "
                "follows a smooth path to the minimum in 60 steps; udl's BookAdam and torch.optim.Adam "
                "give the same path.",
        params={"tiny": dict(grid=61, small_lr=0.08, small_steps=200, large_lr=1.0, large_steps=30,
                             sign_lr=0.08, sign_steps=60, adam_lr=0.05, beta=0.9, gamma=0.99, adam_steps=60),
                "full": dict(grid=241, small_lr=0.08, small_steps=200, large_lr=1.0, large_steps=30,
                             sign_lr=0.08, sign_steps=60, adam_lr=0.05, beta=0.9, gamma=0.99, adam_steps=60)},
        # the sign run's last _TAIL steps are compared with the two before them: sign_steps >= _TAIL + 2
        limits={"grid": (2, 1001), "small_lr": (1e-4, 10.0), "small_steps": (1, 10_000), "large_lr": (1e-4, 100.0),
                "large_steps": (3, 10_000), "sign_lr": (1e-4, 10.0), "sign_steps": (12, 10_000),
                "adam_lr": (1e-4, 10.0), "beta": (0.0, 0.999), "gamma": (0.0, 0.9999), "adam_steps": (1, 10_000)})
def adam_paths(p, run):
    minimum = torch.tensor(ADAM_MINIMUM, dtype=torch.float64)
    small = descent_path(adam_loss, ADAM_START, lambda q: torch.optim.SGD(q, lr=p.small_lr), p.small_steps)
    large = descent_path(adam_loss, ADAM_START, lambda q: torch.optim.SGD(q, lr=p.large_lr), p.large_steps)
    sign = descent_path(adam_loss, ADAM_START, lambda q: SignGD(q, lr=p.sign_lr), p.sign_steps)
    adam = descent_path(adam_loss, ADAM_START, lambda q: BookAdam(q, p.adam_lr, p.beta, p.gamma), p.adam_steps)
    adam_torch = descent_path(adam_loss, ADAM_START,
                              lambda q: torch.optim.Adam(q, **to_torch_adam(p.adam_lr, p.beta, p.gamma)), p.adam_steps)

    phi0 = torch.linspace(-1.0, 1.5, p.grid, dtype=torch.float64)
    phi1 = torch.linspace(-1.0, 1.0, p.grid, dtype=torch.float64)
    mesh = torch.stack(torch.meshgrid(phi0, phi1, indexing="xy"), dim=-1)  # (H, W, 2): rows φ1, columns φ0
    surface = adam_loss(mesh)  # (H, W)

    budget = min(p.adam_steps, p.small_steps, p.sign_steps)  # compare the methods over Adam's budget
    late = max(p.large_steps // 3, 2)  # the last third of the large-step run
    tail = _TAIL
    sign_dist = (sign[-tail:] - minimum).norm(dim=1)
    return Result(
        metrics={
            "start_distance": (torch.tensor(ADAM_START, dtype=torch.float64) - minimum).norm().item(),
            "budget": budget, "radius": _RADIUS,
            "small_distance_at_budget": (small[budget] - minimum).norm().item(),
            "small_phi1_at_budget": small[budget, 1].abs().item(),
            "small_steps_to_radius": _steps_within(small, minimum, _RADIUS),
            "adam_steps_to_radius": _steps_within(adam, minimum, _RADIUS),
            "small_final_distance": (small[-1] - minimum).norm().item(),
            "large_steps": p.large_steps,
            "large_phi1_sign_changes": int((large[1:, 1] * large[:-1, 1] < 0).sum()),
            "large_late_phi1_amplitude": large[-late:, 1].abs().max().item(),
            "sign_lr": p.sign_lr,
            "sign_period2_error": (sign[-tail:] - sign[-tail - 2:-2]).abs().max().item(),
            "sign_last_step": (sign[-1] - sign[-2]).norm().item(),
            "sign_late_min_distance": sign_dist.min().item(),
            "sign_late_max_distance": sign_dist.max().item(),
            "adam_final_distance": (adam[-1] - minimum).norm().item(),
            "adam_reversals": _reversals(adam[:budget + 1]),
            "sign_reversals": _reversals(sign[:budget + 1]),
            "adam_vs_torch_max_abs_diff": (adam - adam_torch).abs().max().item(),
        },
        arrays={"phi0": phi0.numpy(), "phi1": phi1.numpy(), "surface": surface.numpy(),
                "small": small.numpy(), "large": large.numpy(), "sign": sign.numpy(), "adam": adam.numpy()})


@adam_paths.plot
def _(r):
    a, p = r.arrays, r.params
    fig, axes = style.subplots(2, 2, width=3.3, height=2.9, sharex=True, sharey=True)
    panels = [("small", f"gradient descent, step {p['small_lr']:g}"),
              ("large", f"gradient descent, step {p['large_lr']:g}"),
              ("sign", f"normalised gradients, step {p['sign_lr']:g}"),
              ("adam", f"Adam, α {p['adam_lr']:g}, β {p['beta']:g}, γ {p['gamma']:g}")]
    for ax, (key, title) in zip(axes.flat, panels):
        ax.contourf(a["phi0"], a["phi1"], a["surface"], levels=20, cmap="Greys_r")
        ax.contour(a["phi0"], a["phi1"], a["surface"], levels=10, colors="white", linewidths=0.4, alpha=0.6)
        path = a[key]
        ax.plot(path[:, 0], path[:, 1], "-o", color=style.MODEL, lw=1.0, ms=2.5, mec="white", mew=0.3)
        ax.plot(*path[0], "o", color=style.MODEL, ms=6, mec="white")
        ax.plot(*ADAM_MINIMUM, "x", color="white", ms=7, mew=2)
        ax.set_title(f"{title} ({len(path) - 1} steps)", fontsize=8, loc="right")
        ax.set_aspect("equal")
    for ax in axes[1]:
        ax.set_xlabel("φ0")
    for ax in axes[:, 0]:
        ax.set_ylabel("φ1")
    style.panel_labels(axes)
    return fig


@adam_paths.checks
def _(r):
    m = r.metrics
    b = m["budget"]
    return [
        Check.less(f"small step: the steep direction φ1 has settled after {b} steps (|φ1|)",
                   m["small_phi1_at_budget"], 0.01),
        Check.greater(f"small step: ... but the flat direction lags, still far from the minimum after {b} steps",
                      m["small_distance_at_budget"], 0.2),
        _arrival_ratio(m, r.params),
        Check.greater("large step: φ1 changes sign on most steps (fraction of steps)",
                      m["large_phi1_sign_changes"] / m["large_steps"], 0.8),
        Check.greater("large step: the oscillation across the valley does not die out (max |φ1| in the last third)",
                      m["large_late_phi1_amplitude"], 0.1),
        Check.less("sign steps end jumping between the same two points (max |φ_t - φ_t-2| over the last steps)",
                   m["sign_period2_error"], 1e-6),
        Check.greater("sign steps do not reach the minimum (min distance over the last steps)",
                      m["sign_late_min_distance"], 0.01),
        Check.less("sign steps stay within one step of the minimum (max distance over the last steps, vs step·√2)",
                   m["sign_late_max_distance"], m["sign_lr"] * math.sqrt(2) + 1e-9),
        Check.less("Adam ends near the minimum (final distance, vs 5% of the start's)",
                   m["adam_final_distance"], 0.05 * m["start_distance"]),
        Check.less("Adam's path is smooth: under a fifth of the sign steps' direction reversals "
                   "(Adam's reversals / sign's)", m["adam_reversals"] / max(m["sign_reversals"], 1), 0.2),
        Check.less("udl's BookAdam equals torch.optim.Adam on this path (max abs difference)",
                   m["adam_vs_torch_max_abs_diff"], 1e-12),
    ]


def _arrival_ratio(m, params):
    """Small steps need over twice Adam's steps to come near the minimum. A run that never arrives
    gives only a bound on its count (its length + 1), which may or may not decide the claim."""
    claim = f"small step needs over twice Adam's steps to come within {m['radius']:g} of the minimum (ratio of steps)"
    small, adam = m["small_steps_to_radius"], m["adam_steps_to_radius"]
    small_arrived, adam_arrived = small <= params["small_steps"], adam <= params["adam_steps"]
    ratio = small / max(adam, 1)  # exact when both arrived; a lower bound when only Adam did, an upper when only small
    if (small_arrived and adam_arrived) or (adam_arrived and ratio > 2.0) or (small_arrived and ratio <= 2.0):
        return Check.greater(claim, ratio, 2.0)
    if adam_arrived:
        return Check.untested(claim, f"the small steps did not arrive in {params['small_steps']} steps: too few "
                                     "to tell")
    return Check.untested(claim, f"Adam did not arrive in {params['adam_steps']} steps")


# --------------------------------------------------------------------------- 6.10
@figure("6.10", title="Line search by bracketing",
        caption="Bracketing search for the minimum of the book's 1D loss (black) on [0, 1]. The bracket "
                "[a, d] (gray) holds two inner points b and c at its thirds; when L[b] > L[c] the part "
                "[a, b] cannot hold the minimum of a unimodal function and is dropped, otherwise [c, d] "
                "is. a-c) The first three iterations (here the first drops [c, d], the second [a, b]). "
                "d) The bracket's width shrinks by 2/3 per iteration until it is below the tolerance "
                "(dashed); its centre is the minimum found (cyan).",
        params={"tiny": dict(tol=1e-3, grid=20001), "full": dict(tol=1e-4, grid=200001)},
        # tol <= 0.25: the three iterations panels a-c draw, and more; above 1e-6 the width ratios stay exact to 1e-9
        limits={"tol": (1e-6, 0.25), "grid": (3, 5_000_001)})
def bracketing(p, run):
    phi_found, history = bracket_minimize(line_search_loss, 0.0, 1.0, tol=p.tol)
    brackets = np.array(history)  # (iterations + 1, 4): a, b, c, d
    widths = brackets[:, 3] - brackets[:, 0]
    nested = (brackets[1:, 0] >= brackets[:-1, 0]) & (brackets[1:, 3] <= brackets[:-1, 3])
    dropped_ab = brackets[1:, 0] > brackets[:-1, 0]  # a moved to b
    grid = torch.linspace(0.0, 1.0, p.grid, dtype=torch.float64)  # spacing well under tol
    phi_grid = grid[line_search_loss(grid).argmin()].item()
    a_last, d_last = brackets[-1, 0], brackets[-1, 3]
    losses = line_search_loss(torch.from_numpy(brackets[:, 1:3])).numpy()  # (iterations + 1, 2): L[b], L[c]
    plot_x = torch.linspace(0.0, 1.0, 501, dtype=torch.float64)
    return Result(
        metrics={"tol": p.tol, "iterations": len(history) - 1,
                 "expected_iterations": math.ceil(math.log(p.tol) / math.log(2 / 3)),
                 "not_nested": int((~nested).sum()),
                 "max_ratio_error": float(np.abs(widths[1:] / widths[:-1] - 2 / 3).max()),
                 "final_width": float(widths[-1]),
                 "phi_found": phi_found, "phi_grid": phi_grid, "grid_spacing": 1.0 / (p.grid - 1),
                 "loss_found": line_search_loss(phi_found).item(),
                 "slope_at_a": line_search_loss_grad(float(a_last)).item(),
                 "slope_at_d": line_search_loss_grad(float(d_last)).item(),
                 "drops_ab": int(dropped_ab.sum()), "drops_cd": int((~dropped_ab).sum()),
                 "first_decisions": ["drop [a, b]" if x else "drop [c, d]" for x in dropped_ab[:3]]},
        arrays={"brackets": brackets, "widths": widths, "losses_bc": losses,
                "x": plot_x.numpy(), "loss": line_search_loss(plot_x).numpy()})


@bracketing.requires
def _(p):
    if 1 / (p.grid - 1) > p.tol / 2:  # else the grid minimum could not tell a good answer from a wrong one
        raise ValueError(f"The 'grid' parameter of figure 6.10 must be at least {math.ceil(2 / p.tol) + 1} for "
                         f"tol={p.tol:g} (spacing at most tol / 2). Got {p.grid} instead.")


@bracketing.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 4, width=2.6, height=2.5)
    colors = {"a": style.DATA, "b": style.EXTRA[0], "c": style.EXTRA[1], "d": style.EXTRA[3]}
    for k, ax in enumerate(axes[:3]):
        ax.plot(a["x"], a["loss"], color=style.TRUTH, lw=1.5)
        left, right = a["brackets"][k, 0], a["brackets"][k, 3]
        ax.axvspan(left, right, color=style.REGION, alpha=0.6, lw=0)
        for name, x in zip("abcd", a["brackets"][k]):
            y = float(np.interp(x, a["x"], a["loss"]))
            ax.plot(x, y, "o", color=colors[name], ms=6, mec="black", mew=0.5, zorder=3)
            ax.annotate(name, (x, y), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8)
        lb, lc = a["losses_bc"][k]
        ax.set_title(f"L[b] {'>' if lb > lc else '<'} L[c]: {m['first_decisions'][k]}", fontsize=8, loc="right")
        ax.set(xlim=(0, 1), ylim=(0.25, 1.05), xlabel="φ")
    axes[0].set_ylabel("loss L[φ]")
    ax = axes[3]
    k = np.arange(len(a["widths"]))
    ax.semilogy(k, a["widths"], "o", color=style.REGION, mec="black", mew=0.5, ms=4, label="d - a")
    ax.semilogy(k, (2 / 3) ** k, color=style.TRUTH, lw=0.8, label="$(2/3)^k$")
    ax.axhline(m["tol"], color=style.TRUTH, ls="--", lw=0.8)
    ax.set(xlabel="iteration k", ylabel="bracket width")
    ax.set_title(f"found φ = {m['phi_found']:.4f}", fontsize=8, loc="right", color=style.MODEL)
    ax.legend(fontsize=7)
    for axis in axes[:3]:
        axis.axvline(m["phi_found"], color=style.MODEL, lw=0.8, zorder=1)
    style.panel_labels(axes)
    return fig


@bracketing.checks
def _(r):
    m = r.metrics
    return [
        Check.equal("each bracket lies inside the previous one (brackets that do not)", m["not_nested"], 0),
        Check.close("each bracket is 2/3 as wide as the previous one (max |ratio - 2/3|)", m["max_ratio_error"], 0.0,
                    1e-9),
        Check.less("the last bracket is narrower than the tolerance", m["final_width"], m["tol"]),
        Check.equal("iterations: the first k with (2/3)^k < tol", m["iterations"], m["expected_iterations"]),
        Check.less("the point found is the grid minimum within half the tolerance (|φ - φ_grid|)",
                   abs(m["phi_found"] - m["phi_grid"]), m["tol"] / 2 + m["grid_spacing"]),
        Check.holds("the slope changes sign across the last bracket: a minimum is inside",
                    m["slope_at_a"] < 0 < m["slope_at_d"], [m["slope_at_a"], m["slope_at_d"]], "L'[a] < 0 < L'[d]"),
        Check.holds("both rules are used (drops of [a, b], drops of [c, d])",
                    m["drops_ab"] > 0 and m["drops_cd"] > 0, [m["drops_ab"], m["drops_cd"]], "both > 0"),
    ]
