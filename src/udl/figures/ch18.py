"""Chapter 18: diffusion models, 1-D data through z_1 … z_T and back, then digits of chosen classes (fig. 18.1)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

import matplotlib.pyplot as plt

from udl import style
from udl.analysis.generative import digit_classifier, evaluate_digits
from udl.data.images import load_digits
from udl.drawing import mosaic
from udl.models.mixture import MixtureOfGaussians
from udl.registry import Check, Limit, Result, figure
from udl.train.diffusion import (digits_denoiser, linear_process, mixture_denoiser, sample_digits,
                                 standard_mixture)

MIN_1D_STEPS = 6000  # the least training of the 1-D denoiser the distance claims are tested with (as measured)
MIN_1D_SAMPLES = 5000  # ... and the least samples (the distance between two samples of the data: ~0.015 at 5,000)
W1_BOUND = 0.05  # Wasserstein-1 between generated and held-out data, in units of the data's standard deviation
KS_LEVEL = 0.01  # q(z_T) vs N(0, 1): the Kolmogorov-Smirnov p-value must exceed this
MIN_DIGIT_STEPS = 1500  # the least training of the digit denoiser the class and quality claims are tested with
MIN_SHARE = 0.9  # the share of samples the independent classifier must recognise as the class asked for
Z_RANGE = 3.5  # the panels of the 1-D process show z in [-Z_RANGE, Z_RANGE]
N_BINS = 140  # bins of z for the reverse process's marginals
N_COLUMNS = 200  # columns of t for the heat maps
N_PATHS = 6  # trajectories drawn
PATH_STEPS = 8  # snapshots of one digit on its way from noise
HELD_OUT_FACTOR = 5  # held-out points and DDIM samples per DDPM sample


def _diffused(mixture: MixtureOfGaussians, alpha_bar: float) -> MixtureOfGaussians:
    """q(z_t) for data from a mixture: component Norm[μ, σ²] -> Norm[√ᾱ μ, ᾱ σ² + 1 − ᾱ] (§18.2.1)."""
    return MixtureOfGaussians(mixture.weights, np.sqrt(alpha_bar) * mixture.means[:, 0],
                              alpha_bar * mixture.covariances[:, 0, 0] + (1.0 - alpha_bar))


def _columns(T: int) -> np.ndarray:
    """The steps t shown as columns of the heat maps: about N_COLUMNS of 0 … T, both ends included."""
    return np.unique(np.round(np.linspace(0, T, min(T + 1, N_COLUMNS))).astype(int))


def _marginal_histograms(path: np.ndarray, columns: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Density histograms ``(bins, columns)`` of the samples ``path[t]`` at each shown step t."""
    width = edges[1] - edges[0]
    return np.stack([np.histogram(path[t], edges)[0] / (len(path[t]) * width) for t in columns], axis=1)


# =========================================================================== 18.1
@figure("18.1", title="Diffusion models: data blended into noise step by step, and a learned way back",
        caption="a) The forward (diffusion) process. Points x drawn from a mixture of three Gaussians (1-D, mean "
                "0, variance 1) pass through z_1 … z_T, each step mixing in a little fresh noise under the "
                "linear schedule of Ho et al.; the shading is the exact marginal density q(z_t), which starts as "
                "the data's three bumps and ends as N(0, 1). Orange lines: a few points followed step by step. "
                "b) The reverse process. A small network, trained by least squares to predict the noise added "
                "to x, turns each step around: starting from noise z_T ~ N(0, 1), T ancestral (DDPM) steps "
                "carry the samples back (cyan lines: a few of them; the shading: the samples' histogram at each "
                "t). c) What it generates, by T ancestral steps and by 50 deterministic DDIM steps, against the "
                "data's density (black) and held-out data (orange); the legend gives each one's Wasserstein-1 "
                "distance to the held-out data. Inset: z_T of the forward process against N(0, 1). d) The same "
                "idea for images: a class-conditional U-Net trained on the 8x8 digits with the label dropped "
                "for some examples, sampled with classifier-free guidance, one row per requested class. "
                "e) One digit on its way from noise to image. f) The samples judged by an independent "
                "classifier, next to held-out real digits (floor) and per-pixel Gaussians (ceiling).",
        params={"tiny": dict(T=100, n_train=2000, steps=100, batch_size=256, lr=5e-3, ema=0.9, width=32, depth=2,
                             n_samples=2000, ddim_steps=10, digit_steps=20, digit_lr=2e-3, channels=[4, 8],
                             p_uncond=0.1, guidance=1.0, digit_ddim_steps=10, n_per_class=4, n_columns=4),
                "full": dict(T=1000, n_train=20_000, steps=6000, batch_size=1024, lr=3e-3, ema=0.999, width=128,
                             depth=3, n_samples=8000, ddim_steps=50, digit_steps=1500, digit_lr=2e-3,
                             channels=[16, 32], p_uncond=0.1, guidance=1.0, digit_ddim_steps=50, n_per_class=40,
                             n_columns=12)},
        # T from 50 (β_T = 0.4) to 4000; sample counts and networks that sample T steps in minutes on a CPU
        limits={"T": (50, 4000), "n_train": (100, 200_000), "steps": (1, 100_000), "batch_size": (1, 8192),
                "lr": (1e-6, 1.0), "ema": (0.0, 0.9999), "width": (1, 1024), "depth": (1, 8),
                "n_samples": (100, 100_000),
                "ddim_steps": (1, 4000), "digit_steps": (1, 50_000), "digit_lr": (1e-6, 1.0),
                "channels": Limit(1, 256, min_len=2, max_len=2), "p_uncond": (0.01, 0.9),
                "guidance": (0.0, 20.0), "digit_ddim_steps": (1, 4000), "n_per_class": (1, 500),
                "n_columns": (1, 40)})
def diffusion_models(p, run):
    device = run.device
    process = linear_process(p.T)
    alpha_bar = process.alpha_bar.numpy()  # (T + 1,)
    mixture = standard_mixture()

    # ---- a) the forward process, step by step, and its exact marginals
    x_data, _ = mixture.sample(p.n_samples, generator=run.generator(1))  # (N, 1) float64
    chain = process.forward_chain(x_data, generator=run.generator(2))[..., 0].numpy()  # (T + 1, N)
    z_T = chain[-1]
    ks = stats.kstest(z_T, "norm")
    grid = np.linspace(-Z_RANGE, Z_RANGE, N_BINS + 1)
    centres = (grid[1:] + grid[:-1]) / 2
    columns = _columns(p.T)
    exact = np.stack([_diffused(mixture, float(alpha_bar[t])).prob(centres).numpy() for t in columns], axis=1)
    forward_histogram = _marginal_histograms(chain, columns, grid)
    forward_gap = float(np.abs(forward_histogram - exact).max())

    # ---- b, c) the learned reverse process: T ancestral steps and DDIM with fewer
    model, record = mixture_denoiser(mixture, T=p.T, n_train=p.n_train, steps=p.steps, batch_size=p.batch_size,
                                     lr=p.lr, ema=p.ema, width=p.width, depth=p.depth, seed=run.seed, device=device)
    ddpm, reverse = process.sample_ddpm(model, (p.n_samples, 1), generator=run.generator(3), trajectory=True)
    ddpm, reverse = ddpm[:, 0].cpu().double().numpy(), reverse[..., 0].cpu().numpy()  # (N,), (T + 1, N)
    # DDIM's few steps are cheap: HELD_OUT_FACTOR times as many samples, and as many held-out points, so the
    # distance measures the sampler rather than the draw (two draws of 8,000 points differ by W1 ~0.015)
    ddim = process.sample_ddim(model, (HELD_OUT_FACTOR * p.n_samples, 1), n_steps=p.ddim_steps,
                               generator=run.generator(4))[:, 0].cpu().double().numpy()
    held_out = mixture.sample(HELD_OUT_FACTOR * p.n_samples, generator=run.generator(5))[0][:, 0].numpy()
    x_train = np.asarray(record["x_train"])[:p.n_samples]  # as many as the DDPM samples
    reverse_histogram = _marginal_histograms(reverse, columns, grid)

    # ---- d, e, f) class-conditional digits with classifier-free guidance
    digit_model, digit_record = digits_denoiser(T=p.T, steps=p.digit_steps, lr=p.digit_lr,
                                                channels=tuple(p.channels), p_uncond=p.p_uncond, seed=run.seed,
                                                device=device)
    classes = torch.arange(10).repeat_interleave(p.n_per_class)  # (10 n,)
    digits = sample_digits(digit_model, process, classes, guidance=p.guidance, n_steps=p.digit_ddim_steps,
                           generator=run.generator(6))  # (10 n, 1, 8, 8)
    unguided = sample_digits(digit_model, process, classes, guidance=0.0, n_steps=p.digit_ddim_steps,
                             generator=run.generator(6))  # the same z_T, no guidance
    one = torch.tensor([int(run.rng.integers(10))])
    _, path, path_steps = process.sample_ddim(digit_model, (1, 1, 8, 8), one.to(device), n_steps=p.digit_ddim_steps,
                                              guidance=p.guidance, generator=run.generator(7), trajectory=True)
    shown_steps = np.unique(np.round(np.linspace(0, len(path_steps) - 1, PATH_STEPS)).astype(int))[::-1].copy()
    table = evaluate_digits(digits, classes=classes, seed=run.seed)
    table_unguided = evaluate_digits(unguided, classes=classes, seed=run.seed)

    rows = {name: {k: v for k, v in row.items()} for name, row in table.items() if isinstance(row, dict)}
    metrics = {
        "T": p.T, "alpha_bar_T": float(alpha_bar[-1]), "ks_statistic": float(ks.statistic),
        "ks_p_value": float(ks.pvalue), "z_T_mean": float(z_T.mean()), "z_T_sd": float(z_T.std()),
        "forward_vs_exact_density": forward_gap,
        "w1_ddpm": float(stats.wasserstein_distance(ddpm, held_out)),
        "w1_ddim": float(stats.wasserstein_distance(ddim, held_out)),
        "w1_train_vs_held_out": float(stats.wasserstein_distance(x_train, held_out)),
        "ddim_steps": p.ddim_steps, "denoiser_parameters": sum(q.numel() for q in model.parameters()),
        "final_loss_1d": float(np.mean(record["losses"][-max(1, len(record["losses"]) // 20):])),
        "digit_parameters": sum(q.numel() for q in digit_model.parameters()),
        "final_loss_digits": float(np.mean(digit_record["losses"][-max(1, len(digit_record["losses"]) // 20):])),
        "class_share": rows["model"]["class_share"], "class_share_unguided": table_unguided["model"]["class_share"],
        "frechet_unguided": table_unguided["model"]["frechet"],
        "classifier_accuracy": float(digit_classifier().record["test_accuracy"]),
        "evaluation": rows, "path_class": int(one[0]),
        "path_steps": [int(path_steps[i]) for i in shown_steps],
    }
    arrays = {"columns": columns, "grid": grid, "exact": exact, "reverse_histogram": reverse_histogram,
              "forward_paths": chain[:, :N_PATHS].T, "reverse_paths": reverse[:, :N_PATHS].T, "z_T": z_T,
              "ddpm": ddpm, "ddim": ddim, "held_out": held_out, "digits": digits[:, 0].numpy(),
              "path": path[shown_steps, 0, 0].cpu().numpy(), "classes": classes.numpy()}
    return Result(metrics=metrics, arrays=arrays,
                  notes="The book draws the idea; here both processes are computed. 1-D: "
                        f"{p.n_train:,} training points, an MLP denoiser ({metrics['denoiser_parameters']:,} "
                        f"parameters, width {p.width}, depth {p.depth}) trained {p.steps} AdamW steps of "
                        f"{p.batch_size}, sampled with a moving average of its weights (decay {p.ema:g}); "
                        f"{p.n_samples:,} DDPM and {HELD_OUT_FACTOR * p.n_samples:,} DDIM samples, compared with "
                        f"{HELD_OUT_FACTOR * p.n_samples:,} held-out points (the {len(x_train):,} training points "
                        f"differ from them by {metrics['w1_train_vs_held_out']:.3f}). Digits: a U-Net of "
                        "udl.models.denoisers "
                        f"({metrics['digit_parameters']:,} parameters, channels {p.channels}) trained "
                        f"{p.digit_steps} steps of 128 on the 1,438 training digits, the label replaced by the "
                        f"null class with probability {p.p_uncond:g}; DDIM with {p.digit_ddim_steps} steps, "
                        f"guidance w = {p.guidance:g}. Without guidance, from the same noise, "
                        f"{metrics['class_share_unguided']:.0%} are recognised as the class asked for.")


@diffusion_models.requires
def _(p):
    for name in ("ddim_steps", "digit_ddim_steps"):
        if getattr(p, name) > p.T:
            raise ValueError(f"The {name!r} parameter of figure 18.1 must be at most T ({p.T}). "
                             f"Got {getattr(p, name)} instead.")
    if p.batch_size > p.n_train:
        raise ValueError(f"The 'batch_size' parameter of figure 18.1 must be at most n_train ({p.n_train}). "
                         f"Got {p.batch_size} instead.")
    if 10 * p.n_per_class < 4:
        raise ValueError("The 'n_per_class' parameter of figure 18.1 must give at least 4 digits.")
    if p.n_columns > p.n_per_class:
        raise ValueError(f"The 'n_columns' parameter of figure 18.1 must be at most n_per_class "
                         f"({p.n_per_class}). Got {p.n_columns} instead.")
    c1, c2 = p.channels
    if c1 % min(8, c1) or c2 % min(8, c2):
        raise ValueError(f"The 'channels' parameter of figure 18.1 must hold channel counts divisible by 8 (or "
                         f"below 8). Got {p.channels} instead.")


def _heat(ax, image, columns, grid, T, cmap):
    ax.imshow(image, origin="lower", aspect="auto", cmap=cmap, extent=(0, T, grid[0], grid[-1]),
              vmin=0, vmax=np.percentile(image, 99.5))
    ax.set(xlim=(0, T), ylim=(grid[0], grid[-1]), xlabel="step t", ylabel="z_t")


@diffusion_models.plot
def _(r):
    m, a = r.metrics, r.arrays
    T, columns, grid = m["T"], a["columns"], a["grid"]
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(12, 9.6), layout="constrained")
        outer = fig.add_gridspec(2, 1, height_ratios=[1, 1.15])
        top = outer[0].subgridspec(1, 3, width_ratios=[1.25, 1.25, 1])
        bottom = outer[1].subgridspec(1, 2, width_ratios=[1.1, 1])
        ax_f, ax_r, ax_d = (fig.add_subplot(top[0, j]) for j in range(3))
        ax_g = fig.add_subplot(bottom[0, 0])
        right = bottom[0, 1].subgridspec(2, 1, height_ratios=[1, 1.4])
        ax_p, ax_t = fig.add_subplot(right[0]), fig.add_subplot(right[1])

    t_all = np.arange(T + 1)
    _heat(ax_f, a["exact"], columns, grid, T, "Greys")
    for path in a["forward_paths"]:
        ax_f.plot(t_all, path, color=style.DATA, lw=0.6, alpha=0.9)
    ax_f.set_title(f"forward: q(z_t) exact, ᾱ_T = {m['alpha_bar_T']:.1e}", loc="right", fontsize=9)

    _heat(ax_r, a["reverse_histogram"], columns, grid, T, "Greys")
    for path in a["reverse_paths"]:
        ax_r.plot(t_all, path, color=style.MODEL, lw=0.6, alpha=0.9)
    ax_r.annotate("", (0.03 * T, Z_RANGE * 0.9), (0.35 * T, Z_RANGE * 0.9),
                  arrowprops=dict(arrowstyle="-|>", color=style.MODEL, lw=1.5))
    ax_r.text(0.37 * T, Z_RANGE * 0.9, "sampling runs from t = T to 0", va="center", fontsize=7,
              color=style.MODEL)
    ax_r.set_title(f"reverse: {T} learned ancestral steps", loc="right", fontsize=9)

    x = (grid[1:] + grid[:-1]) / 2
    ax_d.hist(a["held_out"], grid, density=True, color=style.DATA, alpha=0.35, label="held-out data")
    ax_d.plot(x, a["exact"][:, 0], color=style.TRUTH, lw=1.2, label="q(x)")
    ax_d.hist(a["ddpm"], grid, density=True, histtype="step", color=style.MODEL, lw=1.3,
              label=f"DDPM, {T} steps: W₁ {m['w1_ddpm']:.3f}")
    ax_d.hist(a["ddim"], grid, density=True, histtype="step", color=style.EXTRA[0], lw=1.0, ls="--",
              label=f"DDIM, {m['ddim_steps']} steps: W₁ {m['w1_ddim']:.3f}")
    ax_d.set(xlabel="x", ylabel="density", xlim=(grid[0], grid[-1]))
    ax_d.legend(fontsize=6.5, loc="upper left")
    ax_d.set_title(f"samples (training vs held-out data: W₁ {m['w1_train_vs_held_out']:.3f})", loc="right",
                   fontsize=8)
    inset = ax_d.inset_axes([0.66, 0.55, 0.32, 0.35])
    inset.hist(a["z_T"], grid, density=True, color=style.REGION)
    inset.plot(x, np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi), color=style.TRUTH, lw=0.8)
    inset.set_title(f"z_T vs N(0, 1)\nKS p = {m['ks_p_value']:.2f}", fontsize=6)
    inset.set(xticks=[], yticks=[])

    digits, classes = a["digits"], a["classes"]
    n_per = int((classes == 0).sum())
    n_cols = min(r.params.get("n_columns", n_per), n_per)
    shown = np.stack([digits[c * n_per + j] for c in range(10) for j in range(n_cols)])  # a row per class
    cmap = plt.get_cmap("gray_r").with_extremes(bad=style.REGION)  # the gaps between images
    ax_g.imshow(mosaic(shown, 10, n_cols), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax_g.set(xticks=[], yticks=[c * 9 + 3.5 for c in range(10)], yticklabels=[str(c) for c in range(10)])
    ax_g.set_ylabel("class asked for")
    ax_g.set_title(f"w = {r.params['guidance']:g}: {m['class_share']:.0%} as asked\n(w = 0: "
                   f"{m['class_share_unguided']:.0%})", loc="right", fontsize=8)

    path = a["path"]
    strip = np.full((8, len(path) * 9 - 1), np.nan)
    for j, image in enumerate(path):
        strip[:, j * 9:j * 9 + 8] = np.clip((image + 1) / 2, 0, 1)  # the diffusion's scale [-1, 1] to [0, 1]
    ax_p.imshow(strip, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax_p.set(xticks=[j * 9 + 3.5 for j in range(len(path))], yticks=[])
    ax_p.set_xticklabels([f"t={t}" for t in m["path_steps"]], fontsize=6.5)
    ax_p.set_title(f"a '{m['path_class']}' from z_T to x (DDIM)", loc="right", fontsize=9)

    ax_t.axis("off")
    ev = m["evaluation"]
    names = (("model", "diffusion"), ("floor", "held-out real"), ("ceiling", "pixel Gaussians"))
    cells = [[label, f"{ev[k]['frechet']:.2f}", f"{ev[k]['precision']:.2f}", f"{ev[k]['recall']:.2f}",
              "–" if ev[k]["class_share"] is None else f"{ev[k]['class_share']:.0%}",
              f"{ev[k]['memorisation_share']:.1%}"] for k, label in names]
    table = ax_t.table(cellText=cells, colLabels=["", "Fréchet", "precision", "recall", "class", "in closest 5%"],
                       loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.6)
    ax_t.set_title(f"judged by an independent classifier (held-out accuracy {m['classifier_accuracy']:.1%})",
                   loc="right", fontsize=9)
    style.panel_labels(np.array([ax_f, ax_r, ax_d, ax_g, ax_p, ax_t]))
    return fig


@diffusion_models.checks
def _(r):
    m, p = r.metrics, r.params
    ev = m["evaluation"]
    checks = [
        Check.greater(f"after T = {p['T']} steps the forward process has forgotten the data: z_T from the chain run "
                      f"step by step is indistinguishable from N(0, 1) ({p['n_samples']:,} points, "
                      "Kolmogorov-Smirnov p-value)", m["ks_p_value"], KS_LEVEL),
        Check.holds("the digits are not copies of training images: among the 5% smallest distances to the nearest "
                    "training image (samples' and held-out digits' pooled), samples are no more frequent than "
                    "chance allows (hypergeometric p-value of udl.analysis.generative.memorisation)",
                    bool(ev["model"]["memorisation_passes"]),
                    {"share_of_samples_among_closest": ev["model"]["memorisation_share"],
                     "p_value": ev["model"].get("memorisation_p")}, "p >= 0.001"),
    ]
    for sampler, name in (("ddpm", f"{p['T']}-step ancestral (DDPM)"),
                          ("ddim", f"{p['ddim_steps']}-step deterministic DDIM")):
        claim = (f"{name} samples lie within Wasserstein-1 {W1_BOUND} of held-out data (data scaled to unit "
                 "variance)")
        if p["steps"] < MIN_1D_STEPS or p["n_samples"] < MIN_1D_SAMPLES:
            checks.append(Check.untested(claim, f"needs at least {MIN_1D_STEPS} training steps and "
                                                f"{MIN_1D_SAMPLES:,} samples; here {p['steps']} and "
                                                f"{p['n_samples']:,}"))
        else:
            checks.append(Check.less(claim, m[f"w1_{sampler}"], W1_BOUND))
    claims = [(f"with guidance at least {MIN_SHARE:.0%} of the digits are recognised as the class asked for by the "
               "independent classifier", lambda: Check.greater("", m["class_share"], MIN_SHARE)),
              ("the samples' Fréchet distance lies below the trivial per-pixel model's",
               lambda: Check.less("", ev["model"]["frechet"], ev["ceiling"]["frechet"]))]
    for claim, check in claims:
        if p["digit_steps"] < MIN_DIGIT_STEPS:
            checks.append(Check.untested(claim, f"needs at least {MIN_DIGIT_STEPS} training steps of the digit "
                                                f"denoiser; here {p['digit_steps']}"))
        else:
            done = check()
            checks.append(Check(claim, done.measured, done.expected, done.ok))
    return checks
