"""Chapter 5: loss functions."""

from __future__ import annotations

import numpy as np
import torch

from udl import style
from udl.analysis.calibration import calibration_gaps, expected_calibration_error
from udl.data.toy import make_classification_1d
from udl.models.classifier import BernoulliClassifier
from udl.nn.activations import sigmoid
from udl.registry import Check, Limit, Result, figure


@figure("5.7", title="The logistic sigmoid and a Bernoulli classifier",
        caption="a) The logistic sigmoid squashes any real z into (0, 1): sig[0] = 0.5, negative inputs land "
                "below one half and positive inputs above, and sig[-z] = 1 - sig[z]. Computed with udl's "
                "sigmoid and compared with torch.sigmoid. b) Binary classification (§5.4): a two-hidden-layer "
                "ReLU network outputs a logit, the sigmoid turns it into the Bernoulli parameter "
                "λ = Pr(y=1|x) (cyan), fitted by minimising binary cross-entropy on labels (orange) drawn "
                "from a known probability (black dashed). c) The training loss falls; the fitted "
                "probabilities are calibrated on the training data and close to the true ones.",
        params={"tiny": dict(span=10.0, n_grid=201, n_train=400, hidden=[16, 16], steps=600, lr=0.02, n_bins=10),
                "full": dict(span=10.0, n_grid=2001, n_train=1000, hidden=[16, 16], steps=2000, lr=0.01,
                             n_bins=10)},
        # n_grid >= 2 and span > 0: the grid holds negative and positive inputs
        limits={"span": (1e-3, 1e4), "n_grid": (2, 1_000_000), "n_train": (10, 100_000),
                "hidden": Limit(1, 1024, max_len=8), "steps": (1, 100_000), "lr": (1e-6, 10.0), "n_bins": (1, 100)})
def sigmoid_and_classifier(p, run):
    # a) the sigmoid curve, and its properties on a wide grid in float64
    z = torch.linspace(-p.span, p.span, p.n_grid, dtype=torch.float64)
    wide = torch.linspace(-30.0, 30.0, 6001, dtype=torch.float64)  # sig stays strictly inside (0, 1) in float64
    extreme = torch.tensor([-1e4, -800.0, 800.0, 1e4], dtype=torch.float64)
    s_wide = sigmoid(wide)

    # b) the §5.4 example: a Bernoulli model fitted with binary cross-entropy
    data = make_classification_1d(p.n_train, seed=run.rng)
    x = torch.tensor(data.x, dtype=torch.float32)[:, None]  # (N, 1)
    y = torch.tensor(data.y)
    model = BernoulliClassifier(1, hidden=tuple(p.hidden), generator=run.seed).to(run.device)
    losses = model.fit(x.to(run.device), y.to(run.device), steps=p.steps, lr=p.lr)
    x_plot = np.linspace(0.0, 1.0, 201)
    with torch.no_grad():
        lam_train = model.prob(x.to(run.device)).double().cpu().numpy()
        x_grid = torch.tensor(x_plot, dtype=torch.float32, device=run.device)[:, None]  # (201, 1)
        lam_plot = model.prob(x_grid).double().cpu().numpy()
    truth_plot = data.truth(x_plot)

    gaps, _ = calibration_gaps(lam_train, data.y, p.n_bins)  # calibration on the training data

    return Result(
        metrics={"sig_at_zero": sigmoid(torch.zeros((), dtype=torch.float64)).item(),
                 "sig_min_wide": s_wide.min().item(), "sig_max_wide": s_wide.max().item(),
                 "symmetry_max_error": (sigmoid(-wide) - (1 - s_wide)).abs().max().item(),
                 "max_abs_diff_torch": (sigmoid(wide) - torch.sigmoid(wide)).abs().max().item(),
                 "extreme_values": sigmoid(extreme).tolist(),
                 "negative_inputs_below_half": bool((sigmoid(z[z < 0]) < 0.5).all()),
                 "positive_inputs_above_half": bool((sigmoid(z[z > 0]) > 0.5).all()),
                 "loss_initial": losses[0], "loss_final": losses[-1],
                 "mean_predicted": float(lam_train.mean()), "fraction_positive": float(data.y.mean()),
                 "ece_train": expected_calibration_error(lam_train, data.y, p.n_bins), "max_bin_gap": float(max(gaps)),
                 "mae_to_truth": float(np.abs(lam_plot - truth_plot).mean()),
                 "max_abs_error_to_truth": float(np.abs(lam_plot - truth_plot).max())},
        arrays={"z": z.numpy(), "sig": sigmoid(z).numpy(), "x": data.x, "y": data.y.astype(np.float64),
                "x_plot": x_plot, "lam_plot": lam_plot, "truth_plot": truth_plot, "loss": np.asarray(losses)},
        notes="The book draws only the sigmoid (panel a); panels b-c add the binary-classification example "
              "of §5.4 on a toy dataset of udl's own (Pr(y=1|x) = sig[4 sin(2πx) + 2x - 1]), trained with "
              "Adam on the mean binary cross-entropy.")


@sigmoid_and_classifier.plot
def _(r):
    a = r.arrays
    fig, axes = style.subplots(1, 3, width=3.3)
    ax = axes[0]
    ax.plot(a["z"], a["sig"], color=style.MODEL, lw=2)
    ax.axhline(0.5, color=style.REGION, lw=0.8, ls=":")
    ax.axvline(0, color=style.REGION, lw=0.8)
    ax.set(xlabel="input z", ylabel="sig[z]", ylim=(-0.05, 1.05), title="Logistic sigmoid")

    ax = axes[1]
    ax.plot(a["x"], a["y"], "o", color=style.DATA, ms=3, alpha=0.6, label="labels y")
    ax.plot(a["x_plot"], a["truth_plot"], "--", color=style.TRUTH, lw=1.5, label="true Pr(y=1|x)")
    ax.plot(a["x_plot"], a["lam_plot"], color=style.MODEL, lw=2, label="model λ = sig[f[x, φ]]")
    ax.set(xlabel="input x", ylabel="Pr(y = 1 | x)", ylim=(-0.08, 1.08), title="Bernoulli classifier")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=2)

    ax = axes[2]
    ax.plot(np.arange(1, len(a["loss"]) + 1), a["loss"], color=style.MODEL, lw=1.5)
    ax.set(xlabel="step", ylabel="binary cross-entropy (mean)", title="Training loss")
    style.panel_labels(axes)
    return fig


@sigmoid_and_classifier.checks
def _(r):
    m = r.metrics
    extreme = m["extreme_values"]
    return [
        Check.close("sig[0] = 0.5", m["sig_at_zero"], 0.5, 0.0),
        Check.holds("sig[z] lies strictly inside (0, 1) for z in [-30, 30]",
                    0.0 < m["sig_min_wide"] and m["sig_max_wide"] < 1.0, [m["sig_min_wide"], m["sig_max_wide"]],
                    "within (0, 1)"),
        Check.holds("negative inputs map below 0.5 and positive inputs above",
                    m["negative_inputs_below_half"] and m["positive_inputs_above_half"],
                    [m["negative_inputs_below_half"], m["positive_inputs_above_half"]], [True, True]),
        Check.less("sig[-z] = 1 - sig[z] (largest error)", m["symmetry_max_error"], 1e-15),
        Check.less("udl's sigmoid equals torch.sigmoid (largest difference)", m["max_abs_diff_torch"], 1e-15),
        Check.holds("saturates to 0 and 1 without overflow for |z| up to 10^4",
                    extreme == [0.0, 0.0, 1.0, 1.0], extreme, [0.0, 0.0, 1.0, 1.0]),
        Check.less("the training loss falls by over a quarter (final / initial)",
                   m["loss_final"] / m["loss_initial"], 0.75),
        Check.close("calibrated overall: mean predicted Pr(y=1) = fraction of positive labels",
                    m["mean_predicted"], m["fraction_positive"], 0.02),
        Check.less("calibrated in bins of predicted probability (expected calibration error)", m["ece_train"], 0.08),
        Check.less("close to the true probability (mean absolute error over x in [0, 1])", m["mae_to_truth"], 0.08),
    ]
