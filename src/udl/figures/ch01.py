"""Chapter 1: introduction."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Ellipse, FancyBboxPatch

from udl import style
from udl.data.images import load_digits
from udl.data.toy import make_classification_1d
from udl.models.autoencoder import fit_autoencoder, pca_reconstruction, reconstruction_error
from udl.registry import Check, Result, figure
from udl.rl.penguin import penguin_mdp, policy_evaluation, uniform_policy, value_iteration
from udl.rl.reinforce import policy_value, reinforce
from udl.systems import PARADIGMS, SYSTEMS, survey

_TRAINED = {  # the registry entry trained for each paradigm, by its target
    "supervised": "udl.models.classifier:BernoulliClassifier",
    "unsupervised": "udl.models.autoencoder:Autoencoder",
    "reinforcement": "udl.rl.reinforce:PolicyNetwork",
}
_DEEP = 2  # "deep": at least two hidden layers


def _train_supervised(system, p, run):
    model = system.build(generator=run.seed)
    train = make_classification_1d(p.clf_n_train, seed=run.rng)
    test = make_classification_1d(p.clf_n_test, seed=run.rng)
    x = torch.tensor(train.x, dtype=torch.float32)[:, None]  # (N, 1)
    model.fit(x, torch.tensor(train.y), steps=p.clf_steps, lr=p.clf_lr)
    with torch.no_grad():
        lam = model.prob(torch.tensor(test.x, dtype=torch.float32)[:, None]).double().numpy()
        x_plot = np.linspace(0, 1, 201)
        lam_plot = model.prob(torch.tensor(x_plot, dtype=torch.float32)[:, None]).double().numpy()
    eps = 1e-12

    def bce(q):  # mean binary cross-entropy of probabilities q on the held-out labels
        q = np.clip(q, eps, 1 - eps)
        return float(-np.mean(test.y * np.log(q) + (1 - test.y) * np.log(1 - q)))

    metrics = {"clf_test_bce": bce(lam), "clf_constant_bce": bce(np.full(len(test.y), train.y.mean())),
               "clf_bayes_bce": bce(test.truth(test.x)),
               "clf_test_accuracy": float(np.mean((lam > 0.5) == test.y)),
               "clf_majority_accuracy": float(np.mean(test.y == int(train.y.mean() > 0.5)))}
    arrays = {"clf_x": train.x, "clf_y": train.y.astype(np.float64), "clf_x_plot": x_plot,
              "clf_prob": lam_plot, "clf_truth": train.truth(x_plot)}
    return metrics, arrays


def _train_unsupervised(system, p, run):
    model = system.build(generator=run.seed)
    x_train, _ = load_digits("train", seed=run.seed)
    x_test, y_test = load_digits("test", seed=run.seed)
    fit_autoencoder(model, x_train, epochs=p.ae_epochs, batch_size=p.ae_batch_size, lr=p.ae_lr, generator=run.seed)
    d_code = model.d_code

    def mse(x_hat):
        return float(np.mean((x_hat - x_test) ** 2))

    shown = np.array([np.flatnonzero(y_test == k)[0] for k in range(8)])  # the first test 0, 1, ..., 7
    with torch.no_grad():
        decoded = model(torch.from_numpy(x_test[shown])).numpy()
    metrics = {"ae_test_mse": reconstruction_error(model, x_test),
               "ae_mean_image_mse": mse(pca_reconstruction(x_train, x_test, 0)),
               "ae_pca_mse": mse(pca_reconstruction(x_train, x_test, d_code)), "ae_code_size": d_code}
    arrays = {"ae_original": x_test[shown].reshape(8, 8, 8), "ae_reconstruction": decoded.reshape(8, 8, 8)}
    return metrics, arrays


def _train_reinforcement(system, p, run):
    mdp = penguin_mdp()
    policy = system.build(generator=run.seed)
    history = reinforce(policy, mdp, iterations=p.rl_iterations, episodes=p.rl_episodes, generator=run.seed)
    v_star, _ = value_iteration(mdp)
    metrics = {"rl_value": float(policy_value(policy, mdp)[mdp.start]),
               "rl_random_value": float(policy_evaluation(mdp, uniform_policy(mdp))[mdp.start]),
               "rl_optimal_value": float(v_star[mdp.start])}
    arrays = {"rl_value_curve": np.asarray(history["value"] + [metrics["rl_value"]])}
    return metrics, arrays


_TRAINERS = {"supervised": _train_supervised, "unsupervised": _train_unsupervised,
             "reinforcement": _train_reinforcement}


@figure("1.1", title="Supervised, unsupervised and reinforcement learning, each with deep networks",
        caption="Machine learning, a part of artificial intelligence, fits models to data; it splits roughly "
                "into supervised, unsupervised and reinforcement learning, and deep networks serve all three. "
                "a) The map is drawn from udl's registry of implemented systems: every entry is built, its "
                "parameters counted and its hidden layers counted from its actual linear and convolution "
                "layers; systems with two or more hidden layers sit in the deep-learning band (cyan). "
                "b-d) One deep system per area, trained briefly: a Bernoulli classifier on 1D labels "
                "(held-out cross-entropy against a constant-rate guess), an autoencoder with an 8-number "
                "code on 8x8 digits (held-out reconstructions against the mean image), and a REINFORCE policy "
                "network on the penguin gridworld (exact expected return against a random policy and the "
                "optimum from value iteration).",
        params={"tiny": dict(clf_n_train=300, clf_n_test=1000, clf_steps=300, clf_lr=0.02,
                             ae_epochs=60, ae_batch_size=128, ae_lr=0.005, rl_iterations=150, rl_episodes=32),
                "full": dict(clf_n_train=1000, clf_n_test=5000, clf_steps=1500, clf_lr=0.01,
                             ae_epochs=200, ae_batch_size=128, ae_lr=0.005, rl_iterations=300, rl_episodes=32)},
        limits={"clf_n_train": (10, 100_000), "clf_n_test": (10, 1_000_000), "clf_steps": (1, 100_000),
                "clf_lr": (1e-6, 10.0), "ae_epochs": (1, 5000), "ae_batch_size": (1, 4096), "ae_lr": (1e-6, 10.0),
                "rl_iterations": (1, 5000), "rl_episodes": (1, 1000)})
def taxonomy(p, run):
    rows = survey(SYSTEMS)
    metrics = {"systems": rows, "paradigms": list(PARADIGMS),
               "n_systems": len(rows), "n_failed": sum(not r["builds"] for r in rows),
               "failed": [r["name"] for r in rows if not r["builds"]]}
    for paradigm in PARADIGMS:
        mine = [r for r in rows if r["paradigm"] == paradigm and r["builds"]]
        metrics[f"{paradigm}_deep"] = [r["name"] for r in mine if r["hidden_layers"] >= _DEEP]
        metrics[f"{paradigm}_max_hidden_layers"] = max((r["hidden_layers"] for r in mine), default=-1)
    metrics["depth_mismatches"] = [r["name"] for r in rows
                                   if r["builds"] and r["declared_depth"] >= 0
                                   and r["declared_depth"] != r["hidden_layers"]]
    arrays = {}
    by_target = {s.target: s for s in SYSTEMS}
    for paradigm, trainer in _TRAINERS.items():
        system = by_target.get(_TRAINED[paradigm])
        row = next((r for r in rows if system is not None and r["target"] == system.target), None)
        metrics[f"{paradigm}_trained"] = system.name if system is not None else ""
        metrics[f"{paradigm}_trained_hidden_layers"] = row["hidden_layers"] if row else -1
        if system is None or not row["builds"]:
            continue
        m, a = trainer(system, p, run)
        metrics.update(m)
        arrays.update(a)
    return Result(metrics=metrics, arrays=arrays,
                  notes="The book's figure is a diagram of the field. Here every system in udl's registry "
                        "(udl.systems) is built and measured, so the map grows as the library does; the "
                        "supervised example uses udl's own 1D toy labels (§5.4), the unsupervised one "
                        "scikit-learn's 8x8 digits, the reinforcement one the penguin MDP of chapter 19 "
                        "(REINFORCE with a fading entropy bonus). Small models, trained on the CPU.")


# --------------------------------------------------------------------------- drawing
def _draw_map(ax, m):
    ax.set(xlim=(0, 12), ylim=(0, 7.2), aspect="equal")
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0.1, 0.1), 11.8, 7.0, boxstyle="round,pad=0,rounding_size=0.5",
                                fc="#F4F4F4", ec=style.REGION, lw=1))
    ax.text(0.45, 6.75, "artificial intelligence", fontsize=10, va="center", color="#555555")
    ax.add_patch(FancyBboxPatch((0.4, 0.35), 11.2, 6.1, boxstyle="round,pad=0,rounding_size=0.5",
                                fc=style.REGION, alpha=0.45, ec="none"))
    ax.text(0.75, 6.1, "machine learning", fontsize=10, va="center", fontweight="bold")
    ax.add_patch(Ellipse((6.0, 1.8), 11.0, 2.5, fc=style.MODEL, alpha=0.35, ec="none", zorder=2))
    ax.text(6.0, 0.78, "deep learning (≥ 2 hidden layers, counted in each module)", ha="center", va="center",
            fontsize=9, color="#0B6F7C", fontweight="bold", zorder=4)
    titles = {"supervised": "supervised\nlearning", "unsupervised": "unsupervised\nlearning",
              "reinforcement": "reinforcement\nlearning"}
    for k, paradigm in enumerate(m["paradigms"]):
        cx = 2.25 + 3.75 * k
        ax.add_patch(Ellipse((cx, 3.35), 3.6, 4.6, fc="white", alpha=0.55, ec=style.TRUTH, lw=1, zorder=3))
        ax.text(cx, 5.05, titles.get(paradigm, paradigm), ha="center", va="center", fontsize=10,
                fontweight="bold", zorder=4)
        rows = [r for r in m["systems"] if r["paradigm"] == paradigm]
        shallow = [r for r in rows if r["hidden_layers"] < _DEEP]
        deep = [r for r in rows if r["hidden_layers"] >= _DEEP]
        for group, top, bottom in ((shallow, 4.4, 3.1), (deep, 2.85, 1.1)):
            step = min(0.6, (top - bottom) / max(len(group), 1))
            compact = step < 0.3  # many systems: one line each, the numbers in short
            size = 8 if step >= 0.55 else 6
            gap = min(0.24, 0.42 * step)  # name above, numbers below, never into the next entry
            for i, r in enumerate(group):
                y = top - i * step
                if not r["builds"]:
                    detail = "does not build"
                elif compact:
                    detail = f"{r['hidden_layers']} hidden"
                else:
                    detail = f"{r['hidden_layers']} hidden, {r['params']:,} params"
                colour = "#444444" if r["builds"] else style.EXTRA[2]
                if compact:
                    ax.text(cx, y, f"{r['name']}: {detail}", ha="center", va="center", fontsize=5.5, zorder=4,
                            color=style.TRUTH if r["builds"] else colour)
                    continue
                ax.text(cx, y, r["name"], ha="center", va="center", fontsize=size, zorder=4)
                ax.text(cx, y - gap, detail, ha="center", va="center", fontsize=size - 1, zorder=4, color=colour)


@taxonomy.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(10, 8.6), layout="constrained")
        grid = fig.add_gridspec(2, 3, height_ratios=[2.1, 1])
        ax_map = fig.add_subplot(grid[0, :])
        axes = [fig.add_subplot(grid[1, k]) for k in range(3)]
    _draw_map(ax_map, m)

    ax = axes[0]
    if "clf_prob" in a:
        ax.scatter(a["clf_x"], a["clf_y"], s=6, color=style.DATA, alpha=0.5, lw=0, label="training labels")
        ax.plot(a["clf_x_plot"], a["clf_truth"], color=style.TRUTH, ls="--", lw=1.2, label="true Pr(y=1|x)")
        ax.plot(a["clf_x_plot"], a["clf_prob"], color=style.MODEL, lw=2, label="model")
        ax.set_title(f"held-out BCE {m['clf_test_bce']:.3f}\n(constant guess {m['clf_constant_bce']:.3f})",
                     loc="right", fontsize=8)
        ax.legend(fontsize=7, loc="center right")
    ax.set(xlabel="input x", ylabel="Pr(y = 1 | x)", ylim=(-0.05, 1.05))

    ax = axes[1]
    if "ae_original" in a:
        # rows: digits 0-3, their reconstructions, digits 4-7, theirs; one blank pixel between images
        pad = np.zeros((2, 2, 4, 9, 9))  # (group, original/decoded, digit, y, x)
        pad[:, 0, :, :8, :8] = a["ae_original"].reshape(2, 4, 8, 8)
        pad[:, 1, :, :8, :8] = a["ae_reconstruction"].reshape(2, 4, 8, 8)
        mosaic = pad.transpose(0, 1, 3, 2, 4).reshape(36, 36)  # (g, k, y, d, x) -> (g*k*y, d*x)
        ax.imshow(np.clip(mosaic, 0, 1), cmap="gray_r", vmin=0, vmax=1)
        ax.set_yticks([4, 13, 22, 31], ["test", "decoded", "test", "decoded"])
        ax.set_xticks([])
        ax.set_title(f"held-out MSE {m['ae_test_mse']:.4f}\n(mean image {m['ae_mean_image_mse']:.4f}, "
                     f"PCA-{m['ae_code_size']} {m['ae_pca_mse']:.4f})", loc="right", fontsize=8)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)

    ax = axes[2]
    if "rl_value_curve" in a:
        curve = a["rl_value_curve"]
        ax.plot(np.arange(len(curve)), curve, color=style.MODEL, lw=2, label="policy network")
        ax.axhline(m["rl_optimal_value"], color=style.TRUTH, ls="--", lw=1.2, label="optimal (value iteration)")
        ax.axhline(m["rl_random_value"], color=style.REGION, lw=1.5, label="random policy")
        ax.set_title(f"return {m['rl_value']:.3f}\n(random {m['rl_random_value']:.3f}, optimum "
                     f"{m['rl_optimal_value']:.3f})", loc="right", fontsize=8)
        ax.legend(fontsize=7, loc="lower right")
    ax.set(xlabel="REINFORCE iteration", ylabel="expected return from state 0")
    style.panel_labels(np.array([ax_map, *axes], dtype=object))
    return fig


@taxonomy.checks
def _(r):
    m = r.metrics
    checks = [Check.equal("every system in the registry imports and builds", m["failed"], []),
              Check.equal("hidden layers counted from the modules agree with each module's declared depth",
                          m["depth_mismatches"], [])]
    for paradigm in m["paradigms"]:
        checks.append(Check.holds(f"the {paradigm} area lists an implemented deep system (>= 2 hidden layers)",
                                  len(m[f"{paradigm}_deep"]) >= 1, m[f"{paradigm}_deep"], "at least one"))
        checks.append(Check.greater(f"the trained {paradigm} example ({m[f'{paradigm}_trained'] or 'missing'}) "
                                    "has at least two hidden layers",
                                    m[f"{paradigm}_trained_hidden_layers"], _DEEP - 0.5))
    checks += [
        Check.less("supervised: held-out cross-entropy below 80% of a constant-rate guess's",
                   m.get("clf_test_bce", float("nan")) / m.get("clf_constant_bce", float("nan")), 0.8),
        Check.less("unsupervised: held-out reconstruction error below half the mean image's",
                   m.get("ae_test_mse", float("nan")) / m.get("ae_mean_image_mse", float("nan")), 0.5),
        Check.greater("reinforcement: the learned policy closes over 80% of the gap from random to optimal",
                      (m.get("rl_value", float("nan")) - m.get("rl_random_value", float("nan")))
                      / (m.get("rl_optimal_value", float("nan")) - m.get("rl_random_value", float("nan"))), 0.8),
    ]
    return checks
