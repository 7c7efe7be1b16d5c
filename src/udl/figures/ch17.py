"""Chapter 17: the mixture of Gaussians as a latent variable model (figure 17.1)."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import PolyCollection
from scipy import stats

from udl import style
from udl.analysis.probability import integrate
from udl.models.mixture import MixtureOfGaussians, fit_em, initial_mixture
from udl.registry import Check, Result, figure

# The mixture drawn: three components of different weights and widths, as in the book's picture (which
# gives no numbers). All of its mass lies in X_BOX: the nearest edge is 12 sd from any mean.
WEIGHTS = (0.30, 0.45, 0.25)
MEANS = (-2.0, 0.3, 2.6)
SDS = (0.55, 0.9, 0.4)
X_BOX = (-2.0 - 12 * 0.9, 2.6 + 12 * 0.9)
X_VIEW = (-4.5, 4.5)
TOL_ONE = 1e-6  # quadrature: the integrals are exact to far better than this for any grid the limits allow
TOL_SUM = 1e-12  # the marginal against the sum of the joint over z, relative (float64)
TOL_SKLEARN = 1e-6  # EM against scikit-learn, per point, in nats
Z_SIGMAS = 5.0  # the sampled share of each z lies within this many standard errors of λ_z
KS_LEVEL = 1e-4  # the Kolmogorov–Smirnov p-value the samples must exceed
MIN_FIT_SAMPLES = 1000  # the least data the "as likely as the truth" claim is tested with ...
CONVERGED = 1e-8  # ... once EM has converged: its last step raised the mean log-likelihood by less than this
MAX_POINT_STEPS = 20_000_000  # samples x EM steps: about 1 µs each for udl's EM and scikit-learn's together


def _truth() -> MixtureOfGaussians:
    return MixtureOfGaussians(WEIGHTS, MEANS, [s ** 2 for s in SDS])


def _colors() -> list[str]:
    return [style.EXTRA[0], style.EXTRA[1], style.EXTRA[3]]


# =========================================================================== 17.1
@figure("17.1", title="A mixture of Gaussians is the marginal of a joint over x and a discrete z",
        caption="a) A mixture of three Gaussians: its density Pr(x) (cyan) is a weighted sum of the components "
                "λ_z Pr(x | z) (dashed), and has three peaks no single normal could make. b) The same density "
                "seen as a joint Pr(x, z) of the observed x and a hidden z ∈ {1, 2, 3}: at each z a normal "
                "curve scaled by the prior Pr(z) = λ_z; summing the joint over z (marginalising) gives Pr(x), "
                "drawn in front. c) The prior Pr(z) (bars) and, for every x, the posterior Pr(z | x) "
                "(stacked): which component probably produced a point there. d) The conditionals Pr(x | z), "
                "each a normal with area one. e) Points drawn by ancestral sampling (z from the prior, then x "
                "from its component; orange histogram) and the mixture fitted to them by expectation "
                "maximisation (cyan) from a start at three data points (dotted), next to the true density "
                "(dashed black). f) The mean log-likelihood of the points after each EM step never goes down; "
                "scikit-learn's GaussianMixture from the same start (circles) lands on the same values.",
        params={"tiny": dict(n_grid=2001, n_samples=300, em_steps=30),
                "full": dict(n_grid=20001, n_samples=5000, em_steps=200)},
        # the box is 28 units wide and the narrowest sd 0.4: 201 points already integrate to ~1e-15;
        # EM and scikit-learn's run on every sample in float64
        limits={"n_grid": (201, 1_000_000), "n_samples": (20, 200_000), "em_steps": (1, 5000)})
def mixture_of_gaussians(p, run):
    truth = _truth()
    k = truth.n_components
    # ---- a, b, d) densities on a grid, and their integrals by the trapezoid rule
    x = np.linspace(*X_BOX, p.n_grid)
    marginal = truth.prob(x).numpy()  # (G,)
    joint = truth.joint(x).numpy()  # (G, K)
    conditional = truth.conditional(x).numpy()  # (G, K)
    posterior = truth.posterior(x).numpy()  # (G, K)
    closed = sum(w * stats.norm(m, s).pdf(x) for w, m, s in zip(WEIGHTS, MEANS, SDS))  # scipy, independently

    # ---- e) ancestral sampling, then EM from three of the points
    samples, z = truth.sample(p.n_samples, generator=run.generator(0))
    shares = (torch.bincount(z, minlength=k).double() / p.n_samples).numpy()
    start = initial_mixture(samples, k, generator=run.generator(1))
    fit = fit_em(samples, start, steps=p.em_steps)
    # scikit-learn from the same start, stopped at a few steps along the way to draw its curve: with warm_start
    # each fit continues from the last one, so the stops do not change the path
    shown_steps = np.unique(np.linspace(1, p.em_steps, min(p.em_steps, 12)).round().astype(int))
    from sklearn.exceptions import ConvergenceWarning  # scikit-learn imports in ~1 s: only where it is used
    from sklearn.mixture import GaussianMixture

    sk = GaussianMixture(k, covariance_type="full", tol=0.0, warm_start=True, weights_init=start.weights.numpy(),
                         means_init=start.means.numpy(), precisions_init=np.linalg.inv(start.covariances.numpy()),
                         random_state=0)
    sk_curve, done = [], 0
    for steps in shown_steps:
        sk.set_params(max_iter=int(steps) - done)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # tol = 0: every step is taken, none "converges"
            sk.fit(samples.numpy())
        done = int(steps)
        sk_curve.append(sk.score(samples.numpy()))
    held_out, _ = truth.sample(max(p.n_samples, 1000), generator=run.generator(2))
    order = np.argsort(fit.mixture.means[:, 0].numpy())  # components in the truth's order (its means increase)
    ll = np.asarray(fit.log_likelihoods)
    ks = stats.kstest(samples[:, 0].numpy(), lambda t: truth.cdf(t).numpy())

    se = np.sqrt(np.asarray(WEIGHTS) * (1 - np.asarray(WEIGHTS)) / p.n_samples)
    metrics = {
        "grid_spacing": float(x[1] - x[0]),
        "marginal_integral": integrate(marginal, x),
        "joint_integral": integrate(joint.sum(1), x),
        "joint_areas": [integrate(joint[:, j], x) for j in range(k)],
        "conditional_integrals": [integrate(conditional[:, j], x) for j in range(k)],
        "marginal_vs_sum_of_joint": float(np.abs(marginal - joint.sum(1)).max() / marginal.max()),
        "marginal_vs_scipy": float(np.abs(marginal - closed).max() / closed.max()),
        "posterior_row_sum_error": float(np.abs(posterior.sum(1) - 1).max()),
        "posterior_vs_bayes": float(np.abs(posterior - joint / marginal[:, None]).max()),
        "z_shares": shares.tolist(), "z_share_standard_errors": ((shares - WEIGHTS) / se).tolist(),
        "ks_p_value": float(ks.pvalue),
        "em_steps": fit.steps,
        "em_start_log_likelihood": float(ll[0]), "em_final_log_likelihood": float(ll[-1]),
        "em_least_step_change": float(np.diff(ll).min()),
        "em_last_step_change": float(ll[-1] - ll[-2]),
        "truth_log_likelihood": truth.log_likelihood(samples),
        "sklearn_log_likelihood": float(sk.score(samples.numpy())),
        "sklearn_max_point_difference": float(np.abs(sk.score_samples(samples.numpy())
                                                     - fit.mixture.log_prob(samples).numpy()).max()),
        "sklearn_curve_max_difference": float(np.abs(np.asarray(sk_curve) - ll[shown_steps]).max()),
        "held_out_log_likelihood_fit": fit.mixture.log_likelihood(held_out),
        "held_out_log_likelihood_truth": truth.log_likelihood(held_out),
        "fit_weights": fit.mixture.weights[order].tolist(), "fit_means": fit.mixture.means[order, 0].tolist(),
        "fit_sds": fit.mixture.covariances[order, 0, 0].sqrt().tolist(),
        "start_means": start.means[:, 0].tolist(),
    }
    arrays = {"x": x, "marginal": marginal, "joint": joint, "conditional": conditional, "posterior": posterior,
              "samples": samples[:, 0].numpy(), "fit_density": fit.mixture.prob(x).numpy(),
              "start_density": start.prob(x).numpy(), "log_likelihoods": ll,
              "sklearn_steps": shown_steps.astype(np.float64), "sklearn_curve": np.asarray(sk_curve)}
    return Result(metrics=metrics, arrays=arrays,
                  notes="The book gives no numbers: udl's mixture has weights "
                        f"{', '.join(f'{w:g}' for w in WEIGHTS)}, means {', '.join(f'{m:g}' for m in MEANS)} and "
                        f"standard deviations {', '.join(f'{s:g}' for s in SDS)}. Densities come from "
                        "udl.models.mixture (float64, log-sum-exp) and are integrated by the trapezoid rule on "
                        f"{p.n_grid:,} points over [{X_BOX[0]:g}, {X_BOX[1]:g}]. EM (e, f) is udl's, written out "
                        f"(E-step: responsibilities; M-step: weighted fractions, means and variances, plus "
                        f"scikit-learn's 1e-6 ridge), {p.em_steps} steps on {p.n_samples:,} samples; the held-out "
                        f"log-likelihood is on {max(p.n_samples, 1000):,} fresh samples.")


@mixture_of_gaussians.requires
def _(p):
    if p.n_samples * p.em_steps > MAX_POINT_STEPS:
        raise ValueError(f"The 'em_steps' parameter of figure 17.1 must be at most {MAX_POINT_STEPS // p.n_samples} "
                         f"with n_samples = {p.n_samples} (samples x steps <= {MAX_POINT_STEPS:,}). Got "
                         f"{p.em_steps} instead.")


@mixture_of_gaussians.plot
def _(r):
    m, a = r.metrics, r.arrays
    x, colors = a["x"], _colors()
    view = (x >= X_VIEW[0]) & (x <= X_VIEW[1])
    xv = x[view]
    k = a["joint"].shape[1]
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(11, 6.6), layout="constrained")
        grid = fig.add_gridspec(2, 3)
        ax_a = fig.add_subplot(grid[0, 0])
        ax_b = fig.add_subplot(grid[0, 1], projection="3d")
        ax_c, ax_d, ax_e, ax_f = (fig.add_subplot(grid[i, j]) for i, j in ((0, 2), (1, 0), (1, 1), (1, 2)))

    # a) the marginal as a weighted sum
    for j in range(k):
        ax_a.plot(xv, a["joint"][view, j], "--", color=colors[j], lw=1.3, label=f"λ_{j + 1} Pr(x | z = {j + 1})")
    ax_a.plot(xv, a["marginal"][view], color=style.MODEL, lw=2.2, label="Pr(x) = Σ_z λ_z Pr(x | z)")
    ax_a.set(xlabel="observed x", ylabel="density", xlim=X_VIEW, ylim=(0, None))
    ax_a.set_title("mixture = weighted sum", loc="right", fontsize=9)
    ax_a.legend(fontsize=6.5, loc="upper left")

    # b) the joint Pr(x, z): a scaled normal at each discrete z, the marginal (their sum) in front at z = 0
    step = max(1, view.sum() // 400)
    xs = xv[::step]
    polys, faces = [], []
    for j in range(k):
        ys = a["joint"][view, j][::step]
        polys.append(list(zip(np.r_[xs[0], xs, xs[-1]], np.r_[0.0, ys, 0.0])))
        faces.append(colors[j])
    ax_b.add_collection3d(PolyCollection(polys, facecolors=faces, edgecolors=faces, alpha=0.45, linewidths=1.2),
                          zs=np.arange(1, k + 1), zdir="y")
    ax_b.plot(xs, np.zeros_like(xs), a["marginal"][view][::step], color=style.MODEL, lw=2.2)
    for j in range(k):  # the sum runs along z: a line from each ridge's top to the front
        top = int(np.argmax(a["joint"][view, j][::step]))
        ax_b.plot([xs[top]] * 2, [j + 1, 0], [a["joint"][view, j][::step][top]] * 2, ":", color=colors[j], lw=0.8)
    ax_b.set(xlim=X_VIEW, ylim=(0, k + 0.3), zlim=(0, float(a["marginal"].max()) * 1.05), xlabel="observed x",
             ylabel="hidden z", xticks=[-4, -2, 0, 2, 4], yticks=range(k + 1),
             yticklabels=["Σ_z"] + [str(j + 1) for j in range(k)])
    ax_b.xaxis.labelpad = ax_b.yaxis.labelpad = -4
    ax_b.view_init(elev=22, azim=-62)
    ax_b.tick_params(labelsize=6.5, pad=0)
    ax_b.text2D(1.0, 1.0, "joint Pr(x, z) at each z;\ntheir sum over z, Pr(x), in front", transform=ax_b.transAxes,
                ha="right", va="top", fontsize=8.5)

    # c) prior bars and the posterior Pr(z | x) stacked
    ax_c.stackplot(xv, a["posterior"][view].T, colors=colors, alpha=0.55,
                   labels=[f"Pr(z = {j + 1} | x)" for j in range(k)])
    ax_c.set(xlabel="observed x", ylabel="Pr(z | x)", xlim=X_VIEW, ylim=(0, 1))
    inset = ax_c.inset_axes([0.72, 0.56, 0.25, 0.4])
    inset.bar(range(1, k + 1), WEIGHTS, color=colors, edgecolor=style.TRUTH, lw=0.5)
    inset.set(xticks=range(1, k + 1), ylim=(0, 1), title="prior Pr(z)")
    inset.title.set_fontsize(7)
    inset.tick_params(labelsize=6)
    inset.patch.set_alpha(0.9)
    ax_c.set_title("posterior = responsibilities", loc="right", fontsize=9)
    ax_c.legend(fontsize=6.5, loc="lower left")

    # d) conditionals, each with area one
    for j in range(k):
        ax_d.plot(xv, a["conditional"][view, j], color=colors[j], lw=1.8,
                  label=f"Pr(x | z = {j + 1}): area {m['conditional_integrals'][j]:.6f}")
    ax_d.set(xlabel="observed x", ylabel="density", xlim=X_VIEW, ylim=(0, None))
    ax_d.set_title("conditionals Pr(x | z)", loc="right", fontsize=9)
    ax_d.legend(fontsize=6.5, loc="upper left")

    # e) samples and the EM fit
    ax_e.hist(a["samples"], bins=min(60, max(10, len(a["samples"]) // 25)), range=X_VIEW, density=True,
              color=style.DATA, alpha=0.55, label=f"{len(a['samples']):,} samples")
    ax_e.plot(xv, a["start_density"][view], ":", color=style.REGION, lw=1.5, label="EM start")
    ax_e.plot(xv, a["marginal"][view], "--", color=style.TRUTH, lw=1.2, label="true Pr(x)")
    ax_e.plot(xv, a["fit_density"][view], color=style.MODEL, lw=2, label=f"EM, {m['em_steps']} steps")
    ax_e.set(xlabel="observed x", ylabel="density", xlim=X_VIEW)
    ax_e.set_title("fitted by expectation maximisation", loc="right", fontsize=9)
    ax_e.legend(fontsize=6.5, loc="upper left")

    # f) the log-likelihood per step
    ll = a["log_likelihoods"]
    ax_f.plot(np.arange(len(ll)), ll, color=style.MODEL, lw=1.8, label="udl's EM")
    ax_f.plot(a["sklearn_steps"], a["sklearn_curve"], "o", mfc="none", color=style.TRUTH, ms=5,
              label="scikit-learn, same start")
    ax_f.axhline(m["truth_log_likelihood"], color=style.TRUTH, ls=":", lw=1, label="true mixture")
    ax_f.set(xlabel="EM step", ylabel="mean log Pr(x_i)  (nats)")
    if len(ll) > 20:
        ax_f.set_xscale("symlog", linthresh=10)
    ax_f.set_xlim(0, len(ll) - 1 if len(ll) > 1 else 1)
    ax_f.set_title(f"never decreases; held-out {m['held_out_log_likelihood_fit']:.3f} "
                   f"(truth {m['held_out_log_likelihood_truth']:.3f})", loc="right", fontsize=8)
    ax_f.legend(fontsize=6.5, loc="lower right")
    for ax, letter in zip((ax_a, ax_b, ax_c, ax_d, ax_e, ax_f), "abcdef"):
        ax.set_title(f"{letter})", loc="left", fontweight="bold")
    return fig


@mixture_of_gaussians.checks
def _(r):
    m, p = r.metrics, r.params
    checks = [
        Check.close("the marginal Pr(x) integrates to one (trapezoid rule)", m["marginal_integral"], 1.0, TOL_ONE),
        Check.less("... and equals the joint summed over z, Σ_z Pr(x, z) (largest difference over the largest "
                   "density)", m["marginal_vs_sum_of_joint"], TOL_SUM),
        Check.less("... and the weighted sum of scipy's normal densities", m["marginal_vs_scipy"], TOL_SUM),
        Check.less("every conditional Pr(x | z) integrates to one (largest |area − 1|)",
                   max(abs(v - 1) for v in m["conditional_integrals"]), TOL_ONE),
        Check.less("the area under each Pr(x, z) is its prior λ_z (largest difference)",
                   max(abs(v - w) for v, w in zip(m["joint_areas"], WEIGHTS)), TOL_ONE),
        Check.less("the posterior Pr(z | x) is Bayes' rule, Pr(x, z) / Pr(x) (largest difference), and sums to "
                   "one", max(m["posterior_vs_bayes"], m["posterior_row_sum_error"]), 1e-12),
        Check.less(f"ancestral sampling: each z is drawn as often as its prior says (largest deviation, in "
                   f"standard errors)", max(abs(v) for v in m["z_share_standard_errors"]), Z_SIGMAS),
        Check.greater("... and the points follow Pr(x) (Kolmogorov–Smirnov p-value)", m["ks_p_value"], KS_LEVEL),
        Check.greater("each EM step does not lower the mean log-likelihood (smallest change per step, nats)",
                      m["em_least_step_change"], -1e-10),
        Check.less("EM's fit equals scikit-learn's GaussianMixture from the same start and steps (largest "
                   "per-point log-likelihood difference, nats)", m["sklearn_max_point_difference"], TOL_SKLEARN),
        Check.less("... and so does every EM step's mean log-likelihood drawn in f)",
                   m["sklearn_curve_max_difference"], TOL_SKLEARN),
    ]
    claim = "the EM fit is at least as likely as the true mixture on the points it was fitted to"
    if p["n_samples"] < MIN_FIT_SAMPLES or m["em_last_step_change"] >= CONVERGED:
        checks.append(Check.untested(claim, f"needs at least {MIN_FIT_SAMPLES} samples and EM converged (its last "
                                            f"step under {CONVERGED:g} nats); here {p['n_samples']} samples, last "
                                            f"step {m['em_last_step_change']:.2g} nats after {m['em_steps']}"))
    else:
        checks.append(Check.greater(claim + " (fit − truth, nats per point)",
                                    m["em_final_log_likelihood"] - m["truth_log_likelihood"], 0.0))
    return checks
