"""Chapter 8 on MNIST-1D: training vs test performance (§8.1), double descent (§8.4), cross-validation (§8.5)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from udl import style
from udl.analysis.cross_validation import cross_validate
from udl.analysis.double_descent import double_descent
from udl.data.mnist1d import load_mnist1d, split_sizes
from udl.data.toy import make_regression_1d, regression_truth
from udl.nn.deep import DeepNetwork
from udl.nn.fixed_joints import FixedJointNetwork
from udl.registry import Check, Limit, Result, figure
from udl.train import fit


def _error_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(x)
        return float((logits.argmax(1) != y).float().mean()), float(nn.functional.cross_entropy(logits, y))


# --------------------------------------------------------------------------- 8.mnist1d
@figure("8.mnist1d", title="MNIST-1D: training and test performance",
        caption="A 40-100-100-10 ReLU network trained on the 4,000 MNIST-1D training sequences by SGD "
                "(batch 100, step 0.1) for 6,000 steps, i.e. 150 epochs. a) Classification error: the "
                "training error (orange) falls to zero, so the network fits every training example, but the "
                "error on the 1,000 test sequences (cyan) levels off near 40%. b) Cross-entropy loss: the "
                "training loss keeps falling while the test loss reaches its minimum early and then rises, "
                "as the network grows more confident on the test examples it gets wrong.",
        params={"tiny": dict(num_samples=5000, hidden=[100, 100], lr=0.1, batch_size=100, steps=6000,
                             eval_every=100),
                "full": dict(num_samples=5000, hidden=[100, 100], lr=0.1, batch_size=100, steps=6000,
                             eval_every=100)},
        limits={"num_samples": (100, 50_000), "hidden": Limit(1, 1024, max_len=8), "lr": (1e-6, 10.0),
                "batch_size": (1, 4096), "steps": (1, 100_000), "eval_every": (1, 25_000)})
def mnist1d_training(p, run):
    data = load_mnist1d(num_samples=p.num_samples)
    x_train, y_train, x_test, y_test = data.tensors(run.device)
    net = DeepNetwork([x_train.shape[1], *p.hidden, 10], generator=run.generator()).to(run.device)
    record = {"step": [], "train_error": [], "test_error": [], "train_loss": [], "test_loss": []}

    def measure(step, model):
        model.eval()
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            error, loss = _error_and_loss(model, x, y)
            record[f"{split}_error"].append(error)
            record[f"{split}_loss"].append(loss)
        record["step"].append(step)

    measure(0, net)
    fit(net, (x_train, y_train), nn.functional.cross_entropy, lambda params: torch.optim.SGD(params, lr=p.lr),
        steps=p.steps, batch_size=p.batch_size, seed=run.seed, device=run.device, progress=False,
        callback=lambda step, loss, model: measure(step, model) if step % p.eval_every == 0 else None)
    a = {k: np.asarray(v, dtype=float) for k, v in record.items()}
    best = int(np.argmin(a["test_loss"]))
    zero = np.flatnonzero(a["train_error"] == 0)
    return Result(
        metrics={"n_train": len(x_train), "n_test": len(x_test), "steps": p.steps,
                 "epochs": p.steps * p.batch_size / len(x_train),
                 "n_parameters": sum(q.numel() for q in net.parameters()),
                 "formula_parameters": DeepNetwork.parameter_count([x_train.shape[1], *p.hidden, 10]),
                 "min_train_error": float(a["train_error"].min()),
                 "final_train_error": float(a["train_error"][-1]),
                 "first_step_zero_train_error": int(a["step"][zero[0]]) if len(zero) else None,
                 "final_test_error": float(a["test_error"][-1]),
                 "min_test_error": float(a["test_error"].min()),
                 "test_loss_min": float(a["test_loss"][best]), "test_loss_min_step": int(a["step"][best]),
                 "test_loss_final": float(a["test_loss"][-1]),
                 "train_loss_at_test_min": float(a["train_loss"][best]),
                 "train_loss_final": float(a["train_loss"][-1])},
        arrays=a,
        notes="As the book: same data (mnist1d defaults, seed 42), network, optimizer, batch and number of "
              "steps; the initialisation and batch order differ, so the exact curves do too. Errors and losses "
              f"are measured on the whole training and test sets every {p.eval_every} steps.")


@mnist1d_training.requires
def _(p):
    n_train = split_sizes(p.num_samples)[0]  # load_mnist1d's training split
    if p.batch_size > n_train:
        raise ValueError(f"The 'batch_size' parameter of figure 8.mnist1d must be at most the {n_train} training "
                         f"sequences of num_samples={p.num_samples}. Got {p.batch_size} instead.")
    if p.steps < 4 * p.eval_every:  # a minimum of the test loss and a rise after it need a few evaluations
        raise ValueError(f"The 'eval_every' parameter of figure 8.mnist1d must be at most steps / 4 "
                         f"({p.steps // 4}). Got {p.eval_every} instead.")


@mnist1d_training.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 2, width=3.4)
    ax = axes[0]
    ax.plot(a["step"], 100 * a["train_error"], color=style.DATA, lw=1.8, label="training")
    ax.plot(a["step"], 100 * a["test_error"], color=style.MODEL, lw=1.8, label="test")
    ax.axhline(40, color=style.REGION, lw=0.8, ls=":")
    ax.set(xlabel="training step", ylabel="error (%)", ylim=(-2, 100), title="Classification error")
    ax.legend()
    ax = axes[1]
    ax.plot(a["step"], a["train_loss"], color=style.DATA, lw=1.8, label="training")
    ax.plot(a["step"], a["test_loss"], color=style.MODEL, lw=1.8, label="test")
    ax.plot([m["test_loss_min_step"]], [m["test_loss_min"]], "o", color=style.MODEL, ms=5)
    ax.set(xlabel="training step", ylabel="cross-entropy loss", ylim=(0, None), title="Loss")
    ax.legend()
    style.panel_labels(axes)
    return fig


@mnist1d_training.checks
def _(r):
    m = r.metrics
    hidden = r.params["hidden"]
    if len(hidden) == 2 and hidden[0] == hidden[1]:  # the book's network, with its formula (§8.4)
        count = (f"the network 40-{hidden[0]}-{hidden[0]}-10 has 40h+h + h²+h + 10h+10 = "
                 f"{m['formula_parameters']:,} parameters (h = {hidden[0]})")
    else:
        count = (f"the network {'-'.join(map(str, [40, *hidden, 10]))} has Σ_k (D_k + 1)·D_k+1 = "
                 f"{m['formula_parameters']:,} parameters")
    return [
        Check.equal(count, m["n_parameters"], m["formula_parameters"]),
        Check.equal("the training error reaches 0% (smallest measured)", m["min_train_error"], 0.0),
        Check.close("the test error stays near 40% (book: about 40%) at the end", m["final_test_error"], 0.40, 0.06),
        Check.greater("the test loss rises after its minimum: final - minimum",
                      m["test_loss_final"] - m["test_loss_min"], 0.1),
        Check.less("while the training loss keeps falling: final / at the test-loss minimum",
                   m["train_loss_final"] / m["train_loss_at_test_min"], 0.5),
        Check.less("the test-loss minimum comes in the first half of training (step / steps)",
                   m["test_loss_min_step"] / m["steps"], 0.5),
    ]


# --------------------------------------------------------------------------- 8.double-descent
@figure("8.double-descent", title="Double descent on MNIST-1D with label noise",
        caption="Networks with two hidden layers of equal width h are trained on MNIST-1D, with 15% of the "
                "training labels replaced by wrong ones, by full-batch Adam (step 0.005) without any "
                "regularization. a) Training error (orange) falls to zero once the network has enough "
                "parameters to memorise every label, the wrong ones included. Test error (cyan) first falls, "
                "then climbs to a peak near the width where the number of parameters equals the number of "
                "training examples (dashed), and then falls again as the network grows further: the second "
                "descent. (The narrowest networks err a lot too, by underfitting; the peak is measured past "
                "the best width with fewer parameters than examples.) b) The test loss shows the same peak "
                "more sharply.",
        params={"tiny": dict(num_samples=6000, train_split=1 / 3, widths=[8, 28, 64], label_noise=0.15,
                             steps=800, lr=0.0125, repeats=1),
                "full": dict(num_samples=8000, train_split=0.5,
                             widths=[4, 8, 12, 16, 24, 32, 40, 48, 56, 64, 80, 96, 128, 192],
                             label_noise=0.15, steps=4000, lr=0.005, repeats=1)},
        limits={"num_samples": (1000, 50_000), "train_split": (0.05, 0.95), "widths": Limit(1, 512, max_len=32),
                "label_noise": (0.0, 0.9), "steps": (1, 20_000), "lr": (1e-5, 1.0), "repeats": (1, 10)})
def double_descent_curve(p, run):
    data = load_mnist1d(num_samples=p.num_samples, train_split=p.train_split)
    widths = sorted(set(p.widths))  # narrowest first: the peak is searched past the classical optimum
    dd = double_descent(widths, data, label_noise=p.label_noise, steps=p.steps, lr=p.lr, repeats=p.repeats,
                        seed=run.seed, device=run.device, progress=run.progress)
    test = dd.test_error
    # the classical optimum: the best width with fewer parameters than training examples; the peak is the
    # highest test error past it (the narrowest networks also err a lot, by underfitting)
    under = np.flatnonzero(dd.parameters <= dd.n_train)
    k0 = int(under[np.argmin(test[under])]) if len(under) else 0
    k = k0 + 1 + int(np.argmax(test[k0 + 1:])) if k0 + 1 < len(test) else k0
    n_test = len(data.y_test)
    return Result(
        metrics={"n_train": dd.n_train, "n_test": n_test, "label_noise": dd.label_noise,
                 "widths": dd.widths, "parameters": dd.parameters, "train_error": dd.train_error,
                 "test_error": test, "test_loss": dd.test_loss,
                 "interpolation_width": dd.interpolation_width,
                 "classical_best_width": int(dd.widths[k0]), "classical_best_test_error": float(test[k0]),
                 "peak_width": int(dd.widths[k]), "peak_test_error": float(test[k]),
                 "peak_parameters_per_example": float(dd.parameters[k] / dd.n_train),
                 "peak_width_over_interpolation_width": float(dd.widths[k] / dd.interpolation_width),
                 "min_test_error_left_of_peak": float(test[:k].min()) if k > 0 else None,
                 "min_test_error_right_of_peak": float(test[k + 1:].min()) if k + 1 < len(test) else None,
                 "largest_width_test_error": float(test[-1]),
                 "largest_width_train_error": float(dd.train_error[-1]),
                 "smallest_width_train_error": float(dd.train_error[0]),
                 "first_width_fitting_labels": next((int(h) for h, e in zip(dd.widths, dd.train_error) if e == 0),
                                                    None)},
        arrays={"widths": dd.widths, "parameters": dd.parameters, "train_error": dd.train_error,
                "test_error": test, "test_loss": dd.test_loss, "train_loss": dd.train_loss},
        notes=f"Book: 10,000 training and 5,000 test examples, 4,000 steps of full-batch Adam (step 0.005), widths "
              f"about 2-400. Here: {dd.n_train:,} training and {n_test:,} test examples, {p.steps:,} steps "
              f"(step {p.lr:g}), widths {min(p.widths)}-{max(p.widths)} ({len(p.widths)} networks, "
              f"{p.repeats} run{'s' if p.repeats > 1 else ''} each), so that the sweep fits in a few minutes on "
              f"two CPU cores; fewer training examples move the threshold P = N to h ≈ "
              f"{dd.interpolation_width:.0f} instead of about 77. Wrong labels: exactly {p.label_noise:.0%} of the "
              f"training labels, each moved to another class at random.")


@double_descent_curve.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 2, width=3.5)
    h_star = m["interpolation_width"]
    ax = axes[0]
    ax.plot(a["widths"], 100 * a["train_error"], "o-", color=style.DATA, lw=1.5, ms=3, label="training (noisy labels)")
    ax.plot(a["widths"], 100 * a["test_error"], "o-", color=style.MODEL, lw=1.8, ms=3, label="test")
    ax.set(ylabel="error (%)", ylim=(-2, 100), title="Error")
    ax = axes[1]
    ax.plot(a["widths"], a["test_loss"], "o-", color=style.MODEL, lw=1.8, ms=3, label="test")
    ax.plot(a["widths"], a["train_loss"], "o-", color=style.DATA, lw=1.5, ms=3, label="training")
    ax.set(ylabel="cross-entropy loss", title="Loss", ylim=(0, None))
    widths = a["widths"]
    ticks = [t for t in (2, 5, 10, 20, 50, 100, 200, 500) if widths.min() <= t <= widths.max()]
    for ax in axes:
        ax.axvline(h_star, color=style.TRUTH, lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xticks([], minor=True)
        ax.set(xlabel="hidden units per layer h")
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].legend(fontsize=7, loc="upper right")
    axes[0].text(h_star * 1.05, 97, f"P = N (h ≈ {h_star:.0f})", fontsize=7, va="top")
    style.panel_labels(axes)
    return fig


@double_descent_curve.checks
def _(r):
    m = r.metrics
    left, right = m["min_test_error_left_of_peak"], m["min_test_error_right_of_peak"]
    ratio = m["peak_width_over_interpolation_width"]
    widths, h_star = m["widths"], m["interpolation_width"]
    # which side of the interpolation threshold P = N each width lies on decides what the sweep can test
    under = [w for w, n in zip(widths, m["parameters"]) if n <= m["n_train"]]
    over = [w for w, n in zip(widths, m["parameters"]) if n > m["n_train"]]

    def needs(ok, why, claim, check):
        return check() if ok else Check.untested(claim, why)

    claims = ["the test-error peak lies within a factor of 2 of the width where parameters = training "
              "examples (peak width / h*)",
              "test error at the largest width is below the peak",
              "lower test error left of the peak (smallest to the left, the classical optimum, < peak)",
              "lower test error right of the peak (smallest to the right < peak)",
              "the widest network fits every training label, the wrong ones included (training error)",
              "the narrowest network cannot (training error)"]
    # a peak can be located near h* only by widths on both sides of it, reaching past the factor-2 band:
    # otherwise every candidate lies in the band and the claim holds by construction
    locate = len(under) >= 2 and len(over) >= 2 and min(widths) < h_star / 2 and max(widths) > 2 * h_star
    return [
        needs(locate, f"needs two widths on each side of P = N (h* = {h_star:.1f}), from below h*/2 to above 2h*",
              claims[0], lambda: Check.holds(claims[0], 0.5 <= ratio <= 2.0, ratio, "in [0.5, 2]")),
        needs(len(over) >= 2, "needs two widths with more parameters than training examples", claims[1],
              lambda: Check.less(claims[1], m["largest_width_test_error"], m["peak_test_error"])),
        needs(under and over, "needs widths on both sides of P = N", claims[2],
              lambda: Check.holds(claims[2], left is not None and left < m["peak_test_error"], left,
                                  f"< {m['peak_test_error']:g}")),
        needs(len(over) >= 2, "needs two widths with more parameters than training examples", claims[3],
              lambda: Check.holds(claims[3], right is not None and right < m["peak_test_error"], right,
                                  f"< {m['peak_test_error']:g}")),
        needs(bool(over), "needs a width with more parameters than training examples", claims[4],
              lambda: Check.less(claims[4], m["largest_width_train_error"], 0.005)),
        needs(bool(under), "needs a width with at most as many parameters as training examples", claims[5],
              lambda: Check.greater(claims[5], m["smallest_width_train_error"], 0.1)),
    ]


# --------------------------------------------------------------------------- 8.cv
@figure("8.cv", title="k-fold cross-validation chooses the model capacity",
        caption="Choosing the number of regions D of the fixed-joint shallow model (fig. 8.4) for the 15-point "
                "toy regression data by 5-fold cross-validation. a) The training points are shuffled and cut "
                "into five disjoint folds; each fold (orange) is held out once while the model is fitted to "
                "the other four (gray). b) Validation error for each D: every fold (dots) and their mean "
                "(cyan); the chosen D (dashed) has the smallest mean. For comparison only, black shows the "
                "error on a large fresh test set of the model fitted to all 15 points, never used for the "
                "choice. c) The five models fitted with the chosen D (thin) and their average (thick), whose "
                "error on the test set is the final estimate of performance.",
        params={"tiny": dict(n=15, noise_sd=0.3, k=5, max_regions=10, n_test=2000),
                "full": dict(n=15, noise_sd=0.3, k=5, max_regions=10, n_test=10000)},
        limits={"n": (2, 10_000), "noise_sd": (0.01, 10.0), "k": (2, 100), "max_regions": (1, 50),
                "n_test": (10, 1_000_000)})
def cross_validation(p, run):
    from sklearn.model_selection import KFold  # here, not at the top: scikit-learn takes a second to import

    data = make_regression_1d(p.n, p.noise_sd, seed=run.rng)
    test = make_regression_1d(p.n_test, p.noise_sd, seed=run.rng)
    grid = list(range(1, p.max_regions + 1))
    models: dict[int, list] = {d: [] for d in grid}

    def fit_and_score(n_regions, x_train, y_train, x_val, y_val):
        net = FixedJointNetwork(n_regions, generator=run.generator()).double().fit_least_squares(x_train, y_train)
        models[n_regions].append(net)
        with torch.no_grad():
            return -float(((net(x_val).numpy() - y_val) ** 2).mean())  # score: minus the validation MSE

    cv = cross_validate(fit_and_score, data.x, data.y, grid, k=p.k, seed=run.seed)
    reference = list(KFold(n_splits=p.k, shuffle=True, random_state=run.seed).split(data.x))
    same_as_sklearn = len(reference) == len(cv.folds) and all(
        np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(cv.folds, reference))
    val_index = np.concatenate([val for _, val in cv.folds])

    def test_mse(predict):
        with torch.no_grad():
            return float(((predict(test.x) - test.y) ** 2).mean())

    # the book's final estimate: average the K models of the chosen setting on a separate test set
    chosen = cv.best_param
    ensemble_test_mse = test_mse(lambda x: np.mean([m(x).numpy() for m in models[chosen]], axis=0))
    refit_test_mse = [test_mse(lambda x, d=d: FixedJointNetwork(d).double().fit_least_squares(data.x, data.y)(x)
                               .numpy()) for d in grid]  # for comparison only: never used to choose
    x_plot = np.linspace(0, 1, 201)
    with torch.no_grad():
        fold_curves = np.stack([m(x_plot).numpy() for m in models[chosen]])
    return Result(
        metrics={"n": p.n, "k": p.k, "regions": grid, "fold_sizes": [len(val) for _, val in cv.folds],
                 "n_validation_total": int(len(val_index)), "n_validation_distinct": int(len(set(val_index.tolist()))),
                 "train_val_overlap": int(sum(len(np.intersect1d(tr, va)) for tr, va in cv.folds)),
                 "folds_equal_sklearn_kfold": bool(same_as_sklearn),
                 "mean_validation_mse": (-cv.mean_scores).tolist(), "std_validation_mse": cv.std_scores.tolist(),
                 "fold_validation_mse": (-cv.fold_scores).tolist(),
                 "mean_scores": cv.mean_scores.tolist(), "chosen_regions": int(chosen),
                 "chosen_validation_mse": float(-cv.mean_scores[cv.best_index]),
                 "final_test_mse": ensemble_test_mse, "refit_test_mse": refit_test_mse,
                 "best_refit_regions": int(grid[int(np.argmin(refit_test_mse))]),
                 "best_refit_test_mse": float(min(refit_test_mse)), "noise_variance": p.noise_sd ** 2,
                 "n_test": p.n_test},
        arrays={"x": data.x, "y": data.y, "x_plot": x_plot, "truth_plot": regression_truth(x_plot),
                "fold_curves": fold_curves, "fold_of_point": np.concatenate(
                    [np.full(len(val), i) for i, (_, val) in enumerate(cv.folds)])[np.argsort(val_index)]},
        notes="The book describes k-fold cross-validation in words (§8.5) without a figure; this one applies it to "
              "the book's toy data and model. The fresh test set (noise included) stands in for new data.")


@cross_validation.requires
def _(p):
    if p.k > p.n:
        raise ValueError(f"The 'k' parameter of figure 8.cv must be at most n ({p.n}): every fold holds a point. "
                         f"Got {p.k} instead.")


@cross_validation.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(1, 3, width=3.2)
    ax = axes[0]
    for fold in range(m["k"]):
        held = a["fold_of_point"] == fold
        ax.scatter(a["x"][~held], np.full((~held).sum(), fold), s=18, color=style.REGION)
        ax.scatter(a["x"][held], np.full(held.sum(), fold), s=26, color=style.DATA, zorder=3)
    ax.set(xlabel="input x", ylabel="fold", yticks=range(m["k"]), yticklabels=[str(i + 1) for i in range(m["k"])],
           xlim=(0, 1), title="Held-out points per fold")
    ax.invert_yaxis()
    ax = axes[1]
    d = np.asarray(m["regions"])
    folds = np.asarray(m["fold_validation_mse"])  # (len(d), K)
    ax.plot(np.repeat(d, folds.shape[1]), folds.ravel(), ".", color=style.MODEL, alpha=0.35, ms=4,
            label="validation, each fold")
    ax.plot(d, m["mean_validation_mse"], "o-", color=style.MODEL, ms=3, lw=1.8, label="validation, mean")
    ax.plot(d, m["refit_test_mse"], "s-", color=style.TRUTH, ms=3, lw=1, label="test (not used)")
    ax.axvline(m["chosen_regions"], color=style.MODEL, ls="--", lw=1)
    ax.axhline(m["noise_variance"], color=style.REGION, lw=0.8, ls=":")
    ax.set(yscale="log", xlabel="number of regions D", ylabel="mean squared error", xticks=d,
           title=f"Chosen D = {m['chosen_regions']}")
    ax.legend(fontsize=7)
    ax = axes[2]
    for curve in a["fold_curves"]:
        ax.plot(a["x_plot"], curve, color=style.MODEL, lw=0.7, alpha=0.6)
    ax.plot(a["x_plot"], a["fold_curves"].mean(0), color=style.MODEL, lw=2.2, label=f"average of the {m['k']} models")
    ax.plot(a["x_plot"], a["truth_plot"], color=style.TRUTH, lw=1.2, label="true function")
    ax.plot(a["x"], a["y"], "o", color=style.DATA, ms=4)
    ax.set(xlabel="input x", ylabel="output y", xlim=(0, 1), ylim=(-0.5, 3.5),
           title=f"Test MSE {m['final_test_mse']:.3f}")
    ax.legend(fontsize=7, loc="upper right")
    style.panel_labels(axes)
    return fig


@cross_validation.checks
def _(r):
    m = r.metrics
    scores = np.asarray(m["mean_scores"])
    return [
        Check.equal("the folds are disjoint and cover the data (held-out points: total, distinct, shared with "
                    "their training part)",
                    [m["n_validation_total"], m["n_validation_distinct"], m["train_val_overlap"]], [m["n"], m["n"], 0]),
        Check.equal(f"the splits are scikit-learn's KFold({m['k']}, shuffle=True, random_state=seed)",
                    m["folds_equal_sklearn_kfold"], True),
        Check.equal("the chosen D has the best mean validation score", m["chosen_regions"],
                    m["regions"][int(np.argmax(scores))]),
        Check.holds("the final test error of the chosen setting is reported and lies above the noise floor σ²",
                    np.isfinite(m["final_test_mse"]) and m["final_test_mse"] > m["noise_variance"],
                    m["final_test_mse"], f"> {m['noise_variance']:g}"),
    ]
