"""Chapter 14: fitting generative models, a GAN and a probabilistic model on the same 2-D data (figure 14.2)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Ellipse

from udl import style
from udl.analysis.modes import mode_coverage, nearest_neighbour_accuracy, same_distribution_accuracy
from udl.models.gan import GAN, MLPDiscriminator, MLPGenerator
from udl.models.mixture import MixtureOfGaussians, fit_em, initial_mixture
from udl.registry import Check, Limit, Result, figure
from udl.train.gan import discriminator_accuracy, train_gan
from udl.validate import _refuse

MIN_GAN_STEPS = 1000  # the least training the GAN's claims are tested with
MIN_JUDGED = 200  # ... and the least fresh points each judge sees
CHANCE_TOL = 0.15  # "near chance": the discriminator's accuracy within 0.5 ± this at the end
COVERED_SHARE = 0.75  # the GAN covers at least this share of the modes (6 of 8)
MIN_SHARE = 0.02  # a mode is covered when at least this share of the samples lie within 3σ of it
EM_TOL = 1e-9  # EM's training log-likelihood may fall by rounding only (nats per point)
SHOWN_TRAIN = 600  # training points drawn in each panel


def ring_of_gaussians(n_modes: int, radius: float, sd: float) -> MixtureOfGaussians:
    """The data: n equal-weight normals Norm[μ_k, sd² I] with centres evenly spaced on a circle."""
    angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    means = radius * torch.stack([angle.cos(), angle.sin()], 1)  # (K, 2)
    covariance = sd ** 2 * torch.eye(2, dtype=torch.float64)
    return MixtureOfGaussians(torch.full((n_modes,), 1.0 / n_modes, dtype=torch.float64), means,
                              covariance.expand(n_modes, 2, 2).clone())


# =========================================================================== 14.2
@figure("14.2", title="Fitting generative models: a GAN's samples and a mixture's likelihood as training proceeds",
        caption="The same 2-D data (orange: a ring of eight normal distributions) fitted by two kinds of generative "
                "model, early training on the left, late on the right. a) A generative adversarial network: a "
                "generator turns 4-D normal noise into points (cyan), and a discriminator, trained against it, "
                "marks the region it believes real (gray). As training alternates between the two, the "
                "generated points spread over the modes and become harder to tell apart from the data. The GAN "
                "can only draw samples: it has no probability to report. b) A probabilistic model: a mixture "
                "of eight Gaussians fitted by expectation maximisation (cyan ellipses: each component's 2σ "
                "contour; gray: its density). Every EM step raises the likelihood of the training data, and "
                "the likelihood of held-out points rises with it. c) Measured during the GAN's training: the "
                "accuracy of its own discriminator on fresh real and generated points, and of an independent "
                "judge (a nearest-neighbour classifier that tells the two sets apart), against chance. "
                "d) The mixture's mean log-likelihood per point, training and held-out, beside that of the "
                "true distribution on the held-out points.",
        params={"tiny": dict(n_modes=8, radius=1.0, sd=0.1, n_train=512, n_test=256, d_latent=4, hidden=[16, 16],
                             gan_snapshots=[5, 10, 20, 40], batch_size=64, lr_d=1e-3, lr_g=5e-4, n_components=8,
                             em_snapshots=[0, 1, 2, 4], em_restarts=2, n_judge=200, grid=30),
                "full": dict(n_modes=8, radius=1.0, sd=0.1, n_train=4000, n_test=2000, d_latent=4,
                             hidden=[128, 128], gan_snapshots=[20, 100, 500, 2000], batch_size=256, lr_d=1e-3,
                             lr_g=5e-4, n_components=8, em_snapshots=[0, 2, 6, 40], em_restarts=10, n_judge=1000,
                             grid=80)},
        # small fully connected networks and a few thousand 2-D points: seconds to a minute on one CPU thread
        limits={"n_modes": (2, 32), "radius": (0.1, 10.0), "sd": (0.001, 1.0), "n_train": (64, 100_000),
                "n_test": (16, 100_000), "d_latent": (1, 64), "hidden": Limit(1, 1024, max_len=4),
                "gan_snapshots": Limit(1, 50_000, max_len=6), "batch_size": (1, 4096), "lr_d": (1e-6, 1.0),
                "lr_g": (1e-6, 1.0), "n_components": (1, 64), "em_snapshots": Limit(0, 1000, max_len=6),
                "em_restarts": (1, 50),
                "n_judge": (16, 20_000), "grid": (10, 400)})
def fitting_generative_models(p, run):
    truth = ring_of_gaussians(p.n_modes, p.radius, p.sd)
    x_train, _ = truth.sample(p.n_train, generator=run.generator(0))  # float64 (I, 2)
    x_test, _ = truth.sample(p.n_test, generator=run.generator(1))
    fresh, _ = truth.sample(p.n_judge, generator=run.generator(2))  # the judges' real points, seen by no model
    lim = p.radius + 4 * p.sd
    axis = torch.linspace(-lim, lim, p.grid, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)  # (grid², 2): row = y

    # ---- a) the GAN, photographed at each snapshot by the training loop's callback
    gan = GAN(MLPGenerator(p.d_latent, 2, p.hidden, generator=run.generator(10)),
              MLPDiscriminator(2, p.hidden, generator=run.generator(11)), p.d_latent)
    wanted, snaps = set(p.gan_snapshots), []

    def snapshot(step, history, modules):
        if step not in wanted:
            return
        samples = gan.sample(p.n_judge, generator=run.generator(3)).cpu().double()  # the same z at every snapshot
        D = gan.discriminator_net
        with torch.no_grad():
            belief = torch.sigmoid(D(grid.float().to(next(D.parameters()).device))).cpu()  # sig[f(x)]
        coverage = mode_coverage(samples, truth.means, 3 * p.sd, min_share=MIN_SHARE)
        snaps.append({"step": step, "samples": samples.numpy(), "belief": belief.view(p.grid, p.grid).numpy(),
                      "accuracy": discriminator_accuracy(D, fresh.float(), samples.float()),
                      "judge": nearest_neighbour_accuracy(fresh, samples), "covered": coverage["covered"],
                      "off_mode": coverage["off_mode_share"]})

    history = train_gan(gan, x_train.float(), steps=max(p.gan_snapshots), batch_size=p.batch_size, lr_d=p.lr_d,
                        lr_g=p.lr_g, seed=run.seed, device=run.device, callback=snapshot)

    # ---- b) the mixture, one EM step at a time, scored on training and held-out points; of several starts,
    # the run whose training likelihood ends highest (EM finds a local maximum: a start can leave two modes to
    # one component)
    best = None
    for restart in range(p.em_restarts):
        mixture = initial_mixture(x_train, p.n_components, generator=run.generator(100 + restart))
        train_ll, held_ll, mixtures = [mixture.log_likelihood(x_train)], [mixture.log_likelihood(x_test)], [mixture]
        for _ in range(max(p.em_snapshots)):
            mixture = fit_em(x_train, mixture, steps=1).mixture
            train_ll.append(mixture.log_likelihood(x_train))
            held_ll.append(mixture.log_likelihood(x_test))
            mixtures.append(mixture)
        if best is None or train_ll[-1] > best[0][-1]:
            best = (train_ll, held_ll, mixtures)
    train_ll, held_ll, mixtures = best
    em_shown = [mixtures[k] for k in p.em_snapshots]
    densities = np.stack([m.prob(grid).view(p.grid, p.grid).numpy() for m in em_shown])

    metrics = {
        "gan_steps": max(p.gan_snapshots), "gan_snapshots": list(p.gan_snapshots),
        "em_snapshots": list(p.em_snapshots),
        "accuracy": [s["accuracy"] for s in snaps], "judge": [s["judge"] for s in snaps],
        "judge_chance": same_distribution_accuracy(p.n_judge, p.n_judge),
        "covered": [s["covered"] for s in snaps], "off_mode_share": [s["off_mode"] for s in snaps],
        "n_modes": p.n_modes, "n_judge": p.n_judge,
        "train_log_likelihood": train_ll, "held_out_log_likelihood": held_ll,
        "truth_held_out_log_likelihood": truth.log_likelihood(x_test),
        "em_largest_fall": float(max(0.0, max((a - b for a, b in zip(train_ll[:-1], train_ll[1:])), default=0.0))),
        "final_d_loss": float(np.mean(history["d_loss"][-50:])),
        "final_g_loss": float(np.mean(history["g_loss"][-50:])),
    }
    arrays = {"train": x_train[:SHOWN_TRAIN].numpy(), "samples": np.stack([s["samples"] for s in snaps]),
              "belief": np.stack([s["belief"] for s in snaps]), "density": densities,
              "means": np.stack([m.means.numpy() for m in em_shown]),
              "covariances": np.stack([m.covariances.numpy() for m in em_shown]),
              "weights": np.stack([m.weights.numpy() for m in em_shown]), "extent": np.array([-lim, lim]),
              "centres": truth.means.numpy()}
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"The data are a ring of {p.n_modes} normals (radius {p.radius:g}, σ = {p.sd:g}), "
                        f"{p.n_train} training and {p.n_test} held-out points, instead of the book's sketch. The "
                        f"GAN: fully connected generator and discriminator (hidden {list(p.hidden)}), the "
                        f"non-saturating loss, Adam (lr {p.lr_d:g} / {p.lr_g:g}, β = (0.5, 0.999)), batches of "
                        f"{p.batch_size}, {max(p.gan_snapshots)} steps. The probabilistic model is a mixture of "
                        f"{p.n_components} Gaussians fitted by EM, the best (by training likelihood) of "
                        f"{p.em_restarts} "
                        "starts at random data points (the book's panel b names VAEs, flows and "
                        "diffusion models; a mixture keeps the likelihood exact). Judges see "
                        f"{p.n_judge} fresh real points and {p.n_judge} samples; a mode is covered when at least "
                        f"{MIN_SHARE:.0%} of the samples lie within 3σ of its centre.")


@fitting_generative_models.requires
def _(p):
    for name in ("gan_snapshots", "em_snapshots"):
        values = list(getattr(p, name))
        if any(b <= a for a, b in zip(values[:-1], values[1:])):
            _refuse(name, "figure 14.2", "strictly increasing", repr(values))
    if len(p.gan_snapshots) != len(p.em_snapshots):
        _refuse("em_snapshots", "figure 14.2", f"as many snapshots as gan_snapshots ({len(p.gan_snapshots)})",
                repr(list(p.em_snapshots)))
    if p.batch_size > p.n_train:
        _refuse("batch_size", "figure 14.2", f"at most n_train = {p.n_train}", repr(p.batch_size))
    if p.n_components > p.n_train:
        _refuse("n_components", "figure 14.2", f"at most n_train = {p.n_train}", repr(p.n_components))
    gap = 2 * p.radius * math.sin(math.pi / p.n_modes)  # distance between neighbouring centres
    if gap < 6 * p.sd:
        _refuse("sd", "figure 14.2", f"at most {gap / 6:.3g} (neighbouring modes' 3σ discs must not overlap)",
                repr(p.sd))


@fitting_generative_models.plot
def _(r):
    m, a = r.metrics, r.arrays
    n_cols = len(m["gan_snapshots"])
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(2.5 * n_cols + 3.6, 5.4), layout="constrained")
        grid = fig.add_gridspec(2, n_cols + 1, width_ratios=[1.0] * n_cols + [1.5])
        lo, hi = a["extent"]
        for col in range(n_cols):
            ax = fig.add_subplot(grid[0, col])
            ax.contourf(np.linspace(lo, hi, a["belief"].shape[1]), np.linspace(lo, hi, a["belief"].shape[1]),
                        a["belief"][col], levels=[0.5, 1.0], colors=[style.REGION], alpha=0.45)
            ax.scatter(*a["train"].T, s=2, color=style.DATA, alpha=0.5, lw=0)
            ax.scatter(*a["samples"][col][:600].T, s=2, color=style.MODEL, lw=0)
            ax.set_title(f"step {m['gan_snapshots'][col]}", fontsize=9)
            ax.text(0.02, 0.02, f"D acc. {m['accuracy'][col]:.2f}\nmodes {m['covered'][col]}/{m['n_modes']}",
                    transform=ax.transAxes, fontsize=7, va="bottom")
            _square(ax, lo, hi)
            if col == 0:
                ax.set_ylabel("a) GAN", fontweight="bold", fontsize=10)
            ax = fig.add_subplot(grid[1, col])
            ax.contourf(np.linspace(lo, hi, a["density"].shape[1]), np.linspace(lo, hi, a["density"].shape[1]),
                        a["density"][col], levels=8, cmap="Greys", alpha=0.6)
            ax.scatter(*a["train"].T, s=2, color=style.DATA, alpha=0.5, lw=0)
            for mean, cov in zip(a["means"][col], a["covariances"][col]):
                values, vectors = np.linalg.eigh(cov)
                angle = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))
                ax.add_patch(Ellipse(mean, *(4 * np.sqrt(values[::-1])), angle=angle, fill=False,
                                     color=style.MODEL, lw=1))
            k = m["em_snapshots"][col]
            ax.set_title(f"EM step {k}", fontsize=9)
            ax.text(0.02, 0.02, f"held-out {m['held_out_log_likelihood'][k]:.2f}", transform=ax.transAxes,
                    fontsize=7, va="bottom")
            _square(ax, lo, hi)
            if col == 0:
                ax.set_ylabel("b) mixture of Gaussians (EM)", fontweight="bold", fontsize=10)

        ax = fig.add_subplot(grid[0, n_cols])
        steps = m["gan_snapshots"]
        ax.plot(steps, m["accuracy"], "o-", color=style.MODEL, label="GAN's discriminator")
        ax.plot(steps, m["judge"], "s-", color=style.EXTRA[0], label="1-NN judge")
        ax.axhline(0.5, color=style.TRUTH, ls=":", lw=1, label="chance")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("GAN step")
        ax.set_ylabel("accuracy, real vs generated")
        ax.legend(fontsize=7, loc="lower left")
        ax.set_title("c) telling samples from data", loc="left", fontweight="bold")

        ax = fig.add_subplot(grid[1, n_cols])
        em = np.arange(len(m["train_log_likelihood"]))
        ax.plot(em, m["train_log_likelihood"], "-", color=style.DATA, label="training")
        ax.plot(em, m["held_out_log_likelihood"], "-", color=style.MODEL, label="held out")
        ax.axhline(m["truth_held_out_log_likelihood"], color=style.TRUTH, ls="--", lw=1, label="true density")
        ax.set_xlabel("EM step")
        ax.set_ylabel("mean log-likelihood (nats)")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("d) likelihood of the data", loc="left", fontweight="bold")
    return fig


def _square(ax, lo: float, hi: float) -> None:
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


@fitting_generative_models.checks
def _(r):
    m = r.metrics
    held = m["held_out_log_likelihood"]
    checks = [Check.less("EM never lowers the training log-likelihood (largest fall, nats per point)",
                         m["em_largest_fall"], EM_TOL)]
    claim = "the held-out log-likelihood rises as EM proceeds (last > initial)"
    if len(held) < 2:
        checks.append(Check.untested(claim, "needs at least one EM step"))
    else:
        checks.append(Check.holds(claim, held[-1] > held[0], f"{held[0]:.3f} → {held[-1]:.3f}", "last > initial"))
    why = f"needs at least {MIN_GAN_STEPS} GAN steps and {MIN_JUDGED} judged points"
    trained = m["gan_steps"] >= MIN_GAN_STEPS and m["n_judge"] >= MIN_JUDGED
    claims = (f"the GAN's discriminator ends near chance on fresh points (|accuracy − 0.5| ≤ {CHANCE_TOL:g})",
              "the samples become harder to tell from the data (1-NN judge: last snapshot below the first)",
              f"the GAN covers at least {COVERED_SHARE:.0%} of the modes at the end")
    if not trained:
        checks += [Check.untested(c, why) for c in claims]
        return checks
    checks.append(Check.less(claims[0], abs(m["accuracy"][-1] - 0.5), CHANCE_TOL))
    if len(m["judge"]) < 2:
        checks.append(Check.untested(claims[1], "needs two GAN snapshots"))
    else:
        checks.append(Check.holds(claims[1], m["judge"][-1] < m["judge"][0],
                                  f"{m['judge'][0]:.3f} → {m['judge'][-1]:.3f} (chance {m['judge_chance']:.3f})",
                                  "last < first"))
    checks.append(Check.holds(claims[2], m["covered"][-1] >= COVERED_SHARE * m["n_modes"],
                              f"{m['covered'][-1]} of {m['n_modes']} modes; {m['off_mode_share'][-1]:.1%} of "
                              "samples far from every mode", f">= {math.ceil(COVERED_SHARE * m['n_modes'])}"))
    return checks
