"""Chapter 17 notes: a variational autoencoder trained on real digits, its bound and its samples (figure 17.vae)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import style
from udl.analysis.generative import evaluate_digits
from udl.data.images import load_digits
from udl.drawing import mosaic
from udl.models.vae import monte_carlo_kl
from udl.registry import Check, Limit, Result, figure
from udl.train.vae import digits_vae

MIN_STEPS = 2000  # the least training the sample-quality claim is tested with (4000 steps gave 0.3x the ceiling)
MIN_EVALUATED = 300  # ... and the least samples (evaluate_digits compares at most 359 of each)
FRECHET_SHARE = 0.5  # the target: the samples' Fréchet distance at most this share of the trivial model's
KL_Z = 4.0  # the closed-form KL and its Monte Carlo estimate differ by less than this many standard errors
N_PAIRS = 3  # interpolations in panel c
N_STEPS = 8  # decoded points along each


# =========================================================================== 17.vae
@figure("17.vae", title="A variational autoencoder trained on real digits: its bound, its samples, its latent space",
        caption="A VAE (fully connected encoder to a diagonal normal q(z|x), decoder giving the probability of each "
                "pixel's 16 underlying bitmap dots: a binomial likelihood) trained on scikit-learn's 8x8 handwritten "
                "digits by maximising the evidence lower bound. a) Held-out digits, two of each class, and below "
                "each its reconstruction: the decoder's mean at the encoder's mean. b) New digits: z drawn from the prior N(0, I) "
                "and decoded (the mean image of each). c) Decoding points on the straight line between the latent "
                "means of two held-out digits turns one into the other through plausible shapes (three pairs). d) A second VAE "
                "with a 2-D latent space: the encoder's mean for every held-out digit, coloured by its class "
                "(never shown to the model): the classes form regions. e) How good the samples are, in the "
                "feature space of an independent digit classifier: the Fréchet distance to the training digits of "
                "held-out real digits (the floor), of the VAE's samples (drawn from Pr(x|z), and the mean images "
                "of b), and of a trivial model with independent "
                "pixels (the ceiling). The box in e: the held-out ELBO lies below the log-likelihood log Pr(x) estimated "
                "by importance sampling; the difference is how far q(z|x) is from the true posterior.",
        params={"tiny": dict(d_latent=4, hidden=[32, 16], steps=60, steps_2d=40, importance_samples=20,
                             elbo_samples=2, kl_samples=500, n_generated=40),
                "full": dict(d_latent=8, hidden=[256, 128], steps=4000, steps_2d=3000, importance_samples=1000,
                             elbo_samples=10, kl_samples=10_000, n_generated=1000)},
        # networks and training runs that a CPU finishes in minutes; sample counts bounded by memory
        limits={"d_latent": (1, 64), "hidden": Limit(1, 1024, max_len=4), "steps": (1, 50_000),
                "steps_2d": (1, 50_000), "importance_samples": (1, 20_000), "elbo_samples": (1, 1000),
                "kl_samples": (2, 100_000), "n_generated": (4, 20_000)})
def variational_autoencoder(p, run):
    device = run.device
    x_test, y_test = (torch.from_numpy(a) for a in load_digits("test", seed=0))
    model, record = digits_vae(p.d_latent, steps=p.steps, hidden=tuple(p.hidden), seed=run.seed, device=device)
    model_2d, record_2d = digits_vae(2, steps=p.steps_2d, hidden=tuple(p.hidden), seed=run.seed, device=device)
    model, model_2d = model.cpu(), model_2d.cpu()

    # ---- the bound: ELBO vs importance-sampled log Pr(x) on the held-out digits, in nats per image
    with torch.no_grad():
        elbo = model.elbo(x_test, generator=run.generator(1), n_samples=p.elbo_samples)  # (N,)
        mu, log_var = model.encode(x_test)
        reconstructions = model(x_test)
        kl = model.kl(mu, log_var).double()
    log_px = model.importance_log_likelihood(x_test, p.importance_samples, generator=run.generator(2))
    kl_mc, kl_se = monte_carlo_kl(mu.double(), log_var.double(), p.kl_samples, generator=run.generator(3))
    kl_z = float((kl_mc - kl).sum() / kl_se.pow(2).sum().sqrt())  # the totals over the held-out digits
    pixel_levels = 64 * math.log(17)  # every pixel uniform over its 17 grey levels

    # ---- samples from the prior: drawn from Pr(x) (binomial counts) and the mean images E[x | z]
    drawn = model.sample(p.n_generated, generator=run.generator(4), noise=True)
    means = model.sample(p.n_generated, generator=run.generator(4))
    report = evaluate_digits(drawn, seed=run.seed)
    report_means = evaluate_digits(means, seed=run.seed)

    # ---- interpolations between pairs of held-out digits of different classes
    pairs = []
    for _ in range(N_PAIRS):
        first = int(run.rng.integers(len(x_test)))
        others = torch.nonzero(y_test != y_test[first]).flatten()
        pairs.append((first, int(others[int(run.rng.integers(len(others)))])))
    paths = torch.stack([model.interpolate(x_test[i], x_test[j], n_steps=N_STEPS) for i, j in pairs])
    ends = torch.stack([x_test[[i, j]] for i, j in pairs])  # (pairs, 2, 64)
    shown = torch.tensor([int(torch.nonzero(y_test == c).flatten()[k]) for k in range(2) for c in range(10)
                          if int((y_test == c).sum()) > k])  # two held-out digits of each class

    # ---- the 2-D latent space
    with torch.no_grad():
        mu_2d, _ = model_2d.encode(x_test)
        elbo_2d = model_2d.elbo(x_test, generator=run.generator(5), n_samples=p.elbo_samples)

    metrics = {
        "parameters": sum(q.numel() for q in model.parameters()), "steps": len(record["losses"]),
        "final_train_loss": float(np.mean(record["losses"][-max(1, len(record["losses"]) // 20):])),
        "held_out": len(x_test),
        "elbo": float(elbo.mean()), "importance_log_likelihood": float(log_px.mean()),
        "gap": float((log_px - elbo).mean()), "share_elbo_below": float((elbo < log_px).float().mean()),
        "uniform_log_likelihood": -pixel_levels,
        "kl": float(kl.mean()), "kl_monte_carlo": float(kl_mc.mean()), "kl_z": kl_z,
        "kl_max_difference": float((kl_mc - kl).abs().max()),
        "reconstruction_error": float(((reconstructions - x_test) ** 2).mean()),
        "elbo_2d": float(elbo_2d.mean()),
        "frechet_samples": report["model"]["frechet"], "frechet_means": report_means["model"]["frechet"],
        "frechet_floor": report["floor"]["frechet"], "frechet_ceiling": report["ceiling"]["frechet"],
        "precision": report["model"]["precision"], "recall": report["model"]["recall"],
        "precision_means": report_means["model"]["precision"], "recall_means": report_means["model"]["recall"],
        "memorisation_share": report["model"]["memorisation_share"],
        "memorisation_passes": report["model"]["memorisation_passes"],
        "memorisation_p": report["model"]["memorisation_p"],
        "generated": report["model"]["count"], "evaluated": report["floor"]["count"], "classifier_accuracy": report["classifier_accuracy"],
        "interpolation_classes": [[int(y_test[i]), int(y_test[j])] for i, j in pairs],
        "min_steps": MIN_STEPS,
    }
    arrays = {"originals": x_test[shown].numpy(), "reconstructions": reconstructions[shown].numpy(),
              "samples": means[:48].numpy(), "drawn": drawn[:10].numpy(), "paths": paths.numpy(),
              "ends": ends.numpy(), "latent": mu_2d.numpy(), "labels": y_test.numpy(),
              "losses": np.asarray(record["losses"], dtype=np.float32)}
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Latent size {p.d_latent} (panels a-c, e), hidden widths {list(p.hidden)}, "
                        f"{p.steps} AdamW steps of 128 digits ({p.steps_2d} for the 2-D model); both trained "
                        "once per machine on the 1,438 training digits and cached. The likelihood is binomial "
                        "with 16 trials per pixel: the digits' grey levels count the inked dots of a 4x4 block "
                        "of the original 32x32 bitmaps, so Pr(x) is a probability over the 17 levels and "
                        f"log Pr(x) is comparable to the uniform distribution's ({-pixel_levels:.0f} nats). "
                        f"ELBO from {p.elbo_samples} samples of q per image, log Pr(x) from "
                        f"{p.importance_samples} importance samples. Panel e's samples are draws from Pr(x) "
                        f"(binomial counts); the mean images of panel b score "
                        f"{report_means['model']['frechet']:.1f}. Each Fréchet distance compares "
                        f"{report['floor']['count']} images with the 1,438 training digits.")


@variational_autoencoder.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig = plt.figure(figsize=(13, 7.2), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=[1.15, 1.0, 1.0])
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")  # the gaps between digits

    ax = fig.add_subplot(grid[0, 0])
    originals, reconstructions = a["originals"], a["reconstructions"]
    half = (len(originals) + 1) // 2
    rows = [originals[:half], reconstructions[:half], originals[half:], reconstructions[half:]]
    ax.imshow(mosaic(np.concatenate(rows), 4, half), cmap=cmap, vmin=0, vmax=1)
    ax.set_yticks([3.5 + 9 * i for i in range(4)], ["held out", "reconstructed"] * 2)
    ax.set_xticks([])
    ax.set_title("a) reconstructions", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[0, 1])
    ax.imshow(mosaic(a["samples"], 6, 8), cmap=cmap, vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("b) samples: z ~ N(0, I), decoded", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[1, 0])
    paths, ends = a["paths"], a["ends"]
    strips = np.concatenate([np.concatenate([e[:1], p, e[1:]]) for p, e in zip(paths, ends)])
    width = paths.shape[1] + 2
    ax.imshow(mosaic(strips, len(paths), width), cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks([3.5, 9 * (width - 1) + 3.5], ["x_a", "x_b"])
    ax.set_yticks([3.5 + 9 * i for i in range(len(paths))],
                  [f"{c0} → {c1}" for c0, c1 in m["interpolation_classes"]])
    ax.set_title("c) interpolation in the latent space", loc="left", fontweight="bold")
    ax.set_xlabel("ends: held-out digits; between: decoded (1−t)μ(x_a) + tμ(x_b)")

    ax = fig.add_subplot(grid[1, 1])
    colors = plt.get_cmap("tab10")
    latent, labels = a["latent"], a["labels"]
    for c in range(10):
        pick = labels == c
        ax.scatter(latent[pick, 0], latent[pick, 1], s=9, color=colors(c), label=str(c), alpha=0.8)
        if pick.any():
            cx, cy = np.median(latent[pick], axis=0)
            ax.text(cx, cy, str(c), fontsize=12, fontweight="bold", ha="center", va="center", color="black",
                    bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec=colors(c), alpha=0.85))
    ax.set_xlabel("z₁ (encoder mean)")
    ax.set_ylabel("z₂")
    ax.set_title("d) 2-D latent space, held-out digits", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[:, 2])
    names = ["held-out\ndigits", "VAE\ndraws", "VAE means\n(panel b)", "trivial\nmodel"]
    values = [m["frechet_floor"], m["frechet_samples"], m["frechet_means"], m["frechet_ceiling"]]
    bar_colors = [style.TRUTH, style.MODEL, style.MODEL, style.REGION]
    bars = ax.bar(names, values, color=bar_colors)
    bars[2].set_alpha(0.55)
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom")
    ax.axhline(FRECHET_SHARE * m["frechet_ceiling"], color=style.REGION, ls="--", lw=1)
    ax.text(3.4, FRECHET_SHARE * m["frechet_ceiling"], "half the\ntrivial", ha="right", va="bottom", fontsize=8,
            color="0.4")
    ax.set_ylabel("Fréchet distance to the training digits")
    ax.set_title("e) sample quality and the bound", loc="left", fontweight="bold")
    text = (f"held-out digits, nats per image:\n"
            f"ELBO            {m['elbo']:8.1f}\n"
            f"log Pr(x) (IS)  {m['importance_log_likelihood']:8.1f}\n"
            f"gap             {m['gap']:8.1f}\n"
            f"KL closed form  {m['kl']:8.2f}\n"
            f"KL Monte Carlo  {m['kl_monte_carlo']:8.2f}\n"
            f"uniform pixels  {m['uniform_log_likelihood']:8.1f}\n"
            f"precision / recall {m['precision']:.2f} / {m['recall']:.2f}")
    ax.text(0.97, 0.97, text, transform=ax.transAxes, ha="right", va="top", family="monospace", fontsize=8,
            bbox=dict(fc="white", ec="0.7"))
    ax.set_ylim(0, 1.55 * max(values))
    return fig


@variational_autoencoder.checks
def _(r):
    m = r.metrics
    checks = [
        Check.holds("the held-out ELBO lies below the importance-sampled log-likelihood (nats per image)",
                    m["elbo"] < m["importance_log_likelihood"],
                    f"ELBO {m['elbo']:.2f} vs log Pr(x) {m['importance_log_likelihood']:.2f} "
                    f"(gap {m['gap']:.2f})", "ELBO < log Pr(x)"),
        Check.less("the importance-sampled log-likelihood is a log-probability of grey levels (≤ 0)",
                   m["importance_log_likelihood"], 0.0),
        Check.less("the closed-form KL equals its Monte Carlo estimate (z-score of the difference of the totals)",
                   abs(m["kl_z"]), KL_Z),
    ]
    claim = f"the samples' Fréchet distance is at most {FRECHET_SHARE:g} times the trivial model's"
    if m["steps"] < MIN_STEPS or m["evaluated"] < MIN_EVALUATED:
        checks.append(Check.untested(claim, f"needs at least {MIN_STEPS} training steps and {MIN_EVALUATED} "
                                            "samples"))
        checks.append(Check.untested("the samples are no closer to the training digits than held-out digits are",
                                     f"needs at least {MIN_STEPS} training steps and {MIN_EVALUATED} samples"))
    else:
        checks.append(Check.less(claim, m["frechet_samples"] / m["frechet_ceiling"], FRECHET_SHARE))
        checks.append(Check.holds("the samples are no closer to the training digits than held-out digits are "
                                  "(the memorisation check)", m["memorisation_passes"],
                                  f"{m['memorisation_share']:.3f} of samples among the 5% closest "
                                  f"(p = {m['memorisation_p']:.3f})"))
    return checks
