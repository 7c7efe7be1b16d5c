"""Chapter 8: measuring performance — noise, bias and variance on the 1D toy regression.

(The MNIST-1D figures of chapter 8 live in ``ch08_mnist1d.py``.)
"""

from __future__ import annotations

import numpy as np
import torch

from udl import style
from udl.analysis.bias_variance import capacity_sweep, decompose
from udl.data.numbers import number_to_words
from udl.data.toy import regression_sampler, regression_truth
from udl.nn.fixed_joints import FixedJointNetwork, least_squares_fitter
from udl.registry import Check, Limit, Result, figure


# --------------------------------------------------------------------------- 8.5
@figure("8.5", title="Noise, bias and variance",
        caption="The three sources of test error for the three-region fixed-joint model (joints at 0, 1/3, "
                "2/3) fitted by least squares to 15 noisy samples of exp(sin 2πx), measured over many "
                "training sets. a) Noise: even the true function (black) misses fresh test targets (gray "
                "points) by σ² on average; the band is ±2σ. b) Bias: the average fit (cyan) cannot follow "
                "the truth; gray shows the signed gap. c) Variance: one training set (orange) and its fit "
                "(cyan) differ from the average fit; the band is ±2 standard deviations of the fits. d) The "
                "three parts add up to the test error measured directly on fresh noisy targets.",
        params={"tiny": dict(n_regions=3, n=15, noise_sd=0.3, n_datasets=300, n_test=51),
                "full": dict(n_regions=3, n=15, noise_sd=0.3, n_datasets=2000, n_test=201)},
        limits={"n_regions": (1, 50), "n": (2, 10_000), "noise_sd": (0.01, 10.0), "n_datasets": (2, 100_000),
                "n_test": (2, 100_000)})
def noise_bias_variance(p, run):
    x_test = np.linspace(0, 1, p.n_test)
    sample, first = regression_sampler(p.n, p.noise_sd), []

    def sample_and_keep(rng):  # keeps the first training set, drawn in panel c
        x, y = sample(rng)
        if not first:
            first.append((x, y))
        return x, y

    bv = decompose(least_squares_fitter(p.n_regions), sample_and_keep, regression_truth, x_test, p.noise_sd ** 2,
                   p.n_datasets, seed=run.seed)
    # the best possible parameters: least squares against the truth itself on the test grid
    best = FixedJointNetwork(p.n_regions).double().fit_least_squares(x_test, bv.truth)
    best_fit = best(torch.from_numpy(x_test)).detach().numpy()
    bias2_best = float(((best_fit - bv.truth) ** 2).mean())
    fresh = bv.truth + p.noise_sd * run.rng.standard_normal(x_test.size)  # one draw of test targets, panel a
    return Result(
        metrics={"noise": bv.noise, "noise_var": bv.noise_var, "noise_se": bv.noise_se, "bias2": bv.bias2,
                 "bias2_best_possible": bias2_best, "variance": bv.variance, "total": bv.total,
                 "expected_error": bv.expected_error, "expected_error_se": bv.expected_error_se,
                 "gap_se": bv.gap_se, "bias2_mc_floor": bv.variance / bv.n_datasets,
                 "n_datasets": bv.n_datasets},
        arrays={"x_test": x_test, "truth": bv.truth, "mean_fit": bv.mean_prediction, "best_fit": best_fit,
                "fit_sd": np.sqrt(bv.variance_x), "first_fit": bv.predictions[0], "test_y": fresh,
                "train_x": first[0][0], "train_y": first[0][1]})


@noise_bias_variance.plot
def _(r):
    a, m = r.arrays, r.metrics
    x, mu = a["x_test"], a["truth"]
    sigma = np.sqrt(m["noise_var"])
    fig, axes = style.subplots(1, 4, width=2.7, height=2.6)
    ax = axes[0]
    ax.fill_between(x, mu - 2 * sigma, mu + 2 * sigma, color=style.REGION, alpha=0.6, lw=0)
    ax.plot(x, mu, color=style.TRUTH, lw=1.5)
    ax.plot(x, a["test_y"], "o", color="gray", ms=3)
    ax.set_title(f"noise {m['noise']:.3f}", fontsize=9)
    ax = axes[1]
    ax.fill_between(x, mu, a["mean_fit"], color=style.REGION, alpha=0.8, lw=0)
    ax.plot(x, mu, color=style.TRUTH, lw=1.5)
    ax.plot(x, a["mean_fit"], color=style.MODEL, lw=2)
    ax.set_title(f"bias² {m['bias2']:.3f}", fontsize=9)
    ax = axes[2]
    ax.fill_between(x, a["mean_fit"] - 2 * a["fit_sd"], a["mean_fit"] + 2 * a["fit_sd"], color=style.REGION,
                    alpha=0.6, lw=0)
    ax.plot(x, mu, color=style.TRUTH, lw=1.0)
    ax.plot(x, a["first_fit"], color=style.MODEL, lw=2)
    ax.plot(a["train_x"], a["train_y"], "o", color=style.DATA, ms=4)
    ax.set_title(f"variance {m['variance']:.3f}", fontsize=9)
    for ax in axes[:3]:
        ax.set(xlim=(0, 1), ylim=(-0.5, 3.5), xlabel="input x")
    axes[0].set_ylabel("output y")
    ax = axes[3]
    parts = [m["noise"], m["bias2"], m["variance"]]
    bottom = 0.0
    for value, color, label in zip(parts, ["gray", style.TRUTH, style.MODEL], ["noise", "bias²", "variance"]):
        ax.bar(0, value, bottom=bottom, color=color, width=0.6, label=label)
        bottom += value
    ax.bar(1, m["expected_error"], yerr=2 * m["expected_error_se"], color=style.DATA, width=0.6, capsize=3)
    ax.set_xticks([0, 1], ["noise + bias²\n+ variance", "measured\ntest error"])
    ax.set(ylabel="mean squared error", title=f"{m['n_datasets']} training sets",
           ylim=(0, 1.45 * max(bottom, m["expected_error"])))
    ax.legend(fontsize=7, loc="upper center", ncol=3, handlelength=1, columnspacing=0.8)
    style.panel_labels(axes)
    return fig


@noise_bias_variance.checks
def _(r):
    m = r.metrics
    return [
        Check.close("noise measured on fresh test targets ≈ σ² (within 4 Monte-Carlo standard errors)",
                    m["noise"], m["noise_var"], 4 * m["noise_se"]),
        Check.greater("bias² > 0: well above its Monte-Carlo floor variance/K", m["bias2"],
                      10 * m["bias2_mc_floor"]),
        Check.greater(f"bias² is at least that of the best possible {number_to_words(r.params['n_regions'])}-region "
                      "fit (which is > 0)",
                      m["bias2"] - m["bias2_best_possible"] + 1e-12, 0.0),
        Check.greater("variance > 0", m["variance"], 0.0),
        Check.close("noise + bias² + variance ≈ measured expected test error (within 4 standard errors "
                    "of the cross term)", m["total"], m["expected_error"], 4 * m["gap_se"]),
    ]


# --------------------------------------------------------------------------- bias-variance trade-off
@figure("8.bias-variance", title="The bias-variance trade-off",
        caption="Bias², variance and their sum for fixed-joint models with 1 to 12 regions (joints at j/D), "
                "each fitted by least squares to the same 100 training sets of 15 noisy points. More "
                "regions lower the bias but raise the variance; the reducible error bias² + variance is "
                "smallest in between (four regions in the book). The measured test error (orange, minus "
                "the noise) follows the sum.",
        params={"tiny": dict(capacities=[1, 2, 3, 4, 5, 6, 7, 8], n=15, noise_sd=0.3, n_datasets=30, n_test=51),
                "full": dict(capacities=list(range(1, 13)), n=15, noise_sd=0.3, n_datasets=100, n_test=201)},
        limits={"capacities": Limit(1, 50, max_len=50), "n": (2, 10_000), "noise_sd": (0.01, 10.0),
                "n_datasets": (2, 100_000), "n_test": (2, 100_000)})
def bias_variance_tradeoff(p, run):
    from scipy.stats import spearmanr  # here, not at the top: scipy.stats takes a second to import

    caps = sorted(set(p.capacities))  # each capacity once, in order (every one sees the same training sets)
    sweep = capacity_sweep(least_squares_fitter, caps, regression_sampler(p.n, p.noise_sd), regression_truth,
                           np.linspace(0, 1, p.n_test), p.noise_sd ** 2, p.n_datasets, seed=run.seed)
    reducible = sweep.bias2 + sweep.variance
    best = int(np.argmin(reducible))
    return Result(
        metrics={"capacities": caps, "bias2": sweep.bias2.tolist(), "variance": sweep.variance.tolist(),
                 "sum": reducible.tolist(), "expected_error": sweep.expected_error.tolist(),
                 "best_capacity": caps[best], "best_index": best,
                 "best_capacity_measured_error": caps[int(np.argmin(sweep.expected_error))],
                 "spearman_bias": float(spearmanr(caps, sweep.bias2).statistic) if len(caps) > 2 else None,
                 "spearman_variance": float(spearmanr(caps, sweep.variance).statistic) if len(caps) > 2 else None,
                 "n_datasets": p.n_datasets, "book_best_capacity": 4},
        arrays={"capacities": np.array(caps), "bias2": sweep.bias2, "variance": sweep.variance,
                "noise": sweep.noise, "expected_error": sweep.expected_error,
                "expected_error_se": sweep.expected_error_se})


@bias_variance_tradeoff.plot
def _(r):
    a, m = r.arrays, r.metrics
    d = a["capacities"]
    fig, ax = style.subplots(width=4.2, height=3.0)
    ax.plot(d, a["bias2"], "o-", color=style.TRUTH, label="bias²")
    ax.plot(d, a["variance"], "o-", color=style.MODEL, label="variance")
    ax.plot(d, a["bias2"] + a["variance"], "o-", color=style.EXTRA[0], lw=2, label="bias² + variance")
    ax.plot(d, a["expected_error"] - a["noise"], "--", color=style.DATA, label="measured error − noise")
    ax.axvline(m["best_capacity"], color=style.REGION, lw=4, alpha=0.6, zorder=0)
    top = 1.3 * max(a["bias2"].max(), (a["bias2"] + a["variance"])[len(d) // 2:].max())
    ax.set(xlabel="number of regions D (model capacity)", ylabel="error", ylim=(0, top), xticks=d,
           title=f"minimum at D = {m['best_capacity']} ({m['n_datasets']} training sets)")
    ax.legend(fontsize=7)
    return fig


@bias_variance_tradeoff.checks
def _(r):
    m = r.metrics
    caps, bias, var = m["capacities"], m["bias2"], m["variance"]
    lo, hi = int(np.argmin(caps)), int(np.argmax(caps))  # the computation sorts them; order-free all the same

    def needs(n, claim, check):
        return check() if len(set(caps)) >= n else Check.untested(claim, f"needs at least {n} capacities")

    claims = ["bias falls with capacity: largest capacity below smallest",
              "bias falls overall: Spearman correlation with capacity",
              "variance rises with capacity: largest capacity above smallest",
              "variance rises overall: Spearman correlation with capacity",
              "bias² + variance is smallest at an intermediate capacity",
              "the minimum sits at four regions, as in the book"]
    best, book = m["best_capacity"], m["book_best_capacity"]
    return [
        needs(2, claims[0], lambda: Check.less(claims[0], bias[hi], bias[lo])),
        needs(3, claims[1], lambda: Check.less(claims[1], m["spearman_bias"], -0.7)),
        needs(2, claims[2], lambda: Check.greater(claims[2], var[hi], var[lo])),
        needs(3, claims[3], lambda: Check.greater(claims[3], m["spearman_variance"], 0.9)),
        needs(3, claims[4], lambda: Check.holds(claims[4], min(caps) < best < max(caps), best,
                                                "not the smallest or largest")),
        Check.equal(claims[5], best, book) if min(caps) < book < max(caps) and book in caps else
        Check.untested(claims[5], f"needs capacity {book} and capacities on both sides of it"),
    ]
