"""Chapter 9: regularization — L2 (fig. 9.2) and early stopping (fig. 9.6) on the 1D toy regression.

(Ensembles and dropout live in ``ch09_ensembles.py``, transfer learning in ``ch09_transfer.py``.)
"""

from __future__ import annotations

import numpy as np
import torch

from udl import style
from udl.data.numbers import number_to_words
from udl.data.toy import make_regression_1d
from udl.nn.fixed_joints import FixedJointNetwork
from udl.registry import Check, Limit, Result, figure
from udl.train.early_stopping import EarlyStopping


def _draw_toy(ax, x_grid, truth, x, y, fit, *, title=None):
    ax.plot(x_grid, truth, color=style.TRUTH, lw=1.5)
    ax.plot(x_grid, fit, color=style.MODEL, lw=2)
    ax.plot(x, y, "o", color=style.DATA, ms=4)
    ax.set(xlim=(0, 1), ylim=(-0.5, 3.5))
    if title:
        ax.set_title(title, fontsize=9)


# --------------------------------------------------------------------------- 9.2
@figure("9.2", title="L2 regularization",
        caption="The 14-hidden-unit fixed-joint model fitted to 15 noisy points in closed form with an L2 "
                "penalty λΣφ² on all its parameters (ridge regression), for six values of λ (a-f). With 15 "
                "parameters and 15 points, a tiny λ passes through every data point (orange); moderate λ "
                "gives a smoother function close to the truth (black); large λ over-smooths and the fit "
                "(cyan) gets worse. Training error rises with λ while the error against the true function "
                "is lowest in between.",
        params={"tiny": dict(n_hidden=14, n=15, noise_sd=0.3, lambdas=[1e-10, 1e-5, 1e-3, 1e-2, 0.1, 1.0],
                             penalize_beta=True, n_grid=201),
                "full": dict(n_hidden=14, n=15, noise_sd=0.3, lambdas=[1e-10, 1e-5, 1e-3, 1e-2, 0.1, 1.0],
                             penalize_beta=True, n_grid=401)},
        limits={"n_hidden": (1, 200), "n": (2, 10_000), "noise_sd": (0.01, 10.0),
                "lambdas": Limit(0.0, 1e6, max_len=12), "n_grid": (2, 100_000)})
def l2_regularization(p, run):
    data = make_regression_1d(p.n, p.noise_sd, seed=run.rng)
    x_grid = np.linspace(0, 1, p.n_grid)
    truth = data.truth(x_grid)
    fresh = truth + p.noise_sd * run.rng.standard_normal(p.n_grid)  # a noisy test set on the grid
    lambdas = sorted(set(p.lambdas))  # each λ once, smallest first (the fits are in closed form)
    train_err, test_err, noisy_err, max_resid, norms, fits = [], [], [], [], [], []
    for lam in lambdas:
        net = FixedJointNetwork(p.n_hidden).double().fit_least_squares(data.x, data.y, l2=float(lam),
                                                                       penalize_beta=p.penalize_beta)
        with torch.no_grad():
            on_train = net(data.x).numpy()
            fit = net(x_grid).numpy()
        train_err.append(float(np.mean((on_train - data.y) ** 2)))
        max_resid.append(float(np.abs(on_train - data.y).max()))
        test_err.append(float(np.mean((fit - truth) ** 2)))  # against the noise-free truth
        noisy_err.append(float(np.mean((fit - fresh) ** 2)))
        norms.append(float(net.beta.item() ** 2 + net.omega.pow(2).sum().item()))
        fits.append(fit)
    best = int(np.argmin(test_err))
    return Result(
        metrics={"lambdas": lambdas, "train_error": train_err, "test_error_vs_truth": test_err,
                 "test_error_noisy": noisy_err, "max_train_residual": max_resid, "param_norm2": norms,
                 "best_index": best, "best_lambda": lambdas[best], "noise_var": p.noise_sd ** 2,
                 "n_parameters": p.n_hidden + 1, "n_train": p.n},
        arrays={"x": data.x, "y": data.y, "x_grid": x_grid, "truth": truth, "fits": np.stack(fits)},
        notes="Every parameter is penalised, β included (UDL eq. 9.5), so large λ also pulls the offset "
              "towards 0. Test error is measured against the noise-free truth on a grid (expected squared "
              "error minus σ²); the error on one fresh noisy test set is in test_error_noisy.")


@l2_regularization.plot
def _(r):
    a, m = r.arrays, r.metrics
    n = len(m["lambdas"])
    rows, cols = -(-n // 3), min(n, 3)  # three panels a row, as the book's 2 x 3
    fig, axes = style.subplots(rows, cols, width=2.6, height=2.3, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        title = (f"λ = {m['lambdas'][i]:g}\ntrain {m['train_error'][i]:.3f}, "
                 f"vs truth {m['test_error_vs_truth'][i]:.3f}")
        _draw_toy(ax, a["x_grid"], a["truth"], a["x"], a["y"], a["fits"][i], title=title)
    for ax in axes[-1]:
        ax.set_xlabel("input x")
    for ax in axes[:, 0]:
        ax.set_ylabel("output y")
    style.panel_labels(axes.flat[:n])
    return fig


@l2_regularization.checks
def _(r):
    m = r.metrics
    order = np.argsort(m["lambdas"])  # the computation sorts them; order-free all the same
    lambdas, train, test, resid = ([values[k] for k in order] for values in
                                   (m["lambdas"], m["train_error"], m["test_error_vs_truth"], m["max_train_residual"]))
    n, best = len(lambdas), int(np.argmin(test))
    rises = [b - a for a, b in zip(train, train[1:])]
    claims = [f"training error rises with λ (smallest step up over the {number_to_words(n)} values)",
              "test error is lowest at an intermediate λ (not the first, not the last)",
              "the best λ beats the smallest λ on test error", "the best λ beats the largest λ on test error",
              f"the smallest λ interpolates: {m['n_parameters']} parameters, {m['n_train']} points, "
              "largest training residual"]
    checks = [Check.greater(claims[0], min(rises), 0.0) if n >= 2 else Check.untested(claims[0], "needs two λ"),
              Check.holds(claims[1], 0 < best < n - 1, lambdas[best], "an intermediate λ") if n >= 3 else
              Check.untested(claims[1], "needs three λ")]
    checks += [Check.less(claims[2], test[best], test[0]), Check.less(claims[3], test[best], test[-1])] if n >= 2 else \
        [Check.untested(claim, "needs two λ") for claim in claims[2:4]]
    checks.append(Check.less(claims[4], resid[0], 1e-3) if m["n_parameters"] >= m["n_train"] else
                  Check.untested(claims[4], "needs at least as many parameters as training points"))
    return checks


# --------------------------------------------------------------------------- 9.6
@figure("9.6", title="Early stopping",
        caption="The 14-hidden-unit fixed-joint model, initialised at random, trained by SGD (batch 5, step "
                "0.05) on 15 noisy points. a-f) The fit (cyan) at several steps: it first picks up the coarse "
                "shape of the truth (black), then bends towards the noisy training points (orange). g) The "
                "training loss keeps falling while the error against the truth bottoms out and rises again; "
                "early stopping on a separate validation set of 15 points restores the weights of its best "
                "evaluation (dashed line).",
        params={"tiny": dict(n_hidden=14, n=15, noise_sd=0.3, lr=0.05, batch_size=5, steps=40000, every=200,
                             n_grid=101),
                "full": dict(n_hidden=14, n=15, noise_sd=0.3, lr=0.05, batch_size=5, steps=100000, every=100,
                             n_grid=201)},
        limits={"n_hidden": (1, 200), "n": (2, 1000), "noise_sd": (0.01, 10.0), "lr": (1e-5, 1.0),
                "batch_size": (1, 1000), "steps": (1, 500_000), "every": (1, 100_000), "n_grid": (2, 100_000)})
def early_stopping(p, run):
    from scipy.stats import spearmanr  # here, not at the top: scipy.stats takes a second to import

    train = make_regression_1d(p.n, p.noise_sd, seed=run.rng)
    val = make_regression_1d(p.n, p.noise_sd, seed=run.rng)
    x_grid = np.linspace(0, 1, p.n_grid)
    truth = train.truth(x_grid)
    x_t, y_t = torch.from_numpy(train.x), torch.from_numpy(train.y)
    x_v, y_v = torch.from_numpy(val.x), torch.from_numpy(val.y)
    grid, mu = torch.from_numpy(x_grid), torch.from_numpy(truth)

    net = FixedJointNetwork(p.n_hidden, generator=run.generator()).double()
    stopper = EarlyStopping(lambda m: ((m(x_v) - y_v) ** 2).mean().item(), every=p.every)
    steps, train_loss, test_err, fits, states = [], [], [], [], []

    def record(step, loss, model):
        stopper(step, loss, model)
        with torch.no_grad():
            fit = model(grid)
            steps.append(step)
            train_loss.append(((model(x_t) - y_t) ** 2).mean().item())  # on the whole training set
            test_err.append(((fit - mu) ** 2).mean().item())  # against the noise-free truth
            fits.append(fit.numpy().copy())
            states.append(torch.cat([model.beta[None], model.omega]).clone())

    record(0, float("nan"), net)  # the random initialisation
    net.fit_sgd(x_t, y_t, lr=p.lr, batch_size=p.batch_size, steps=p.steps, seed=run.seed, callback=record,
                every=p.every)
    test_err, train_loss = np.array(test_err), np.array(train_loss)
    best = int(np.argmin(test_err))
    final_test = float(test_err[-1])
    # SGD with step 0.05 makes the training loss jitter from step to step, so its trend after the
    # best-test step is read from the means of five consecutive windows of evaluations
    after = train_loss[best:]  # five windows need five evaluations from the best-test step on
    windows = [float(w.mean()) for w in np.array_split(after, 5)] if len(after) >= 5 else []
    es_index = steps.index(stopper.best_step)
    restored = FixedJointNetwork(p.n_hidden).double()
    stopper.restore(restored)
    restored_phi = torch.cat([restored.beta[None], restored.omega])
    with torch.no_grad():
        restored_test = ((restored(grid) - mu) ** 2).mean().item()
    # panels: the start, three steps on the way to the best test error, and two past it
    picks = [0, max(1, best // 8), max(1, best // 3), best, (best + len(steps) - 1) // 2, len(steps) - 1]
    return Result(
        metrics={"best_test_step": steps[best], "last_step": steps[-1], "best_test_error": float(test_err[best]),
                 "final_test_error": final_test, "train_loss_at_best_test": float(train_loss[best]),
                 "final_train_loss": float(train_loss[-1]), "initial_train_loss": float(train_loss[0]),
                 "train_loss_windows_after_best": windows,
                 "spearman_train_loss_windows": float(spearmanr(np.arange(5), windows).statistic) if windows else None,
                 "early_stop_step": stopper.best_step, "early_stop_test_error": float(test_err[es_index]),
                 "restored_test_error": restored_test,
                 "restored_vs_snapshot_max_diff": (restored_phi - states[es_index]).abs().max().item(),
                 "panel_steps": [steps[i] for i in picks]},
        arrays={"x": train.x, "y": train.y, "x_grid": x_grid, "truth": truth, "steps": np.array(steps),
                "train_loss": train_loss, "test_error": test_err, "val_steps": np.array(stopper.steps),
                "val_loss": np.array(stopper.losses), "panel_fits": np.stack([fits[i] for i in picks])},
        notes="SGD runs through FixedJointNetwork.fit_sgd: the updates of torch.optim.SGD on the sum-of-squares "
              "batch loss (tested against udl.train.fit on the same batches), with the gradient in closed form "
              "for speed, since overfitting takes 10^4-10^5 steps. The book does not give the number of steps. "
              "Test error is measured against the noise-free truth; the training loss is the mean squared "
              "error on all 15 points; early stopping watches a second draw of 15 noisy points. That small "
              "validation set is noisy: the step it picks is usually, not always, better than the last "
              "(restored_test_error vs final_test_error; no check).")


@early_stopping.requires
def _(p):
    if p.batch_size > p.n:
        raise ValueError(f"The 'batch_size' parameter of figure 9.6 must be at most n ({p.n}). "
                         f"Got {p.batch_size} instead.")
    if p.every > p.steps:
        raise ValueError(f"The 'every' parameter of figure 9.6 must be at most steps ({p.steps}). "
                         f"Got {p.every} instead.")


@early_stopping.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig = style.subplots(1, 1)[0]
    fig.clf()
    fig.set_size_inches(11.5, 4.6)
    grid = fig.add_gridspec(2, 5)
    axes = [fig.add_subplot(grid[i // 3, i % 3]) for i in range(6)]
    for ax, fit, step in zip(axes, a["panel_fits"], m["panel_steps"]):
        _draw_toy(ax, a["x_grid"], a["truth"], a["x"], a["y"], fit, title=f"step {step}")
    ax = fig.add_subplot(grid[:, 3:])
    steps = np.maximum(a["steps"], 1)
    ax.plot(steps, a["train_loss"], color=style.DATA, label="training loss (MSE)")
    ax.plot(steps, a["test_error"], color=style.TRUTH, label="error vs truth")
    ax.plot(np.maximum(a["val_steps"], 1), a["val_loss"], color=style.EXTRA[0], lw=0.8, alpha=0.7,
            label="validation loss")
    ax.axvline(max(m["early_stop_step"], 1), color=style.EXTRA[0], ls="--", lw=1)
    ax.plot(max(m["best_test_step"], 1), m["best_test_error"], "o", color=style.MODEL)
    ax.set(xscale="log", yscale="log", xlabel="SGD step", ylabel="mean squared error")
    ax.legend(fontsize=7)
    style.panel_labels(np.array(axes + [ax], dtype=object))
    return fig


@early_stopping.checks
def _(r):
    m = r.metrics
    windows = m["train_loss_windows_after_best"]
    falls = ["the training loss keeps falling after the best-test step: mean over the last fifth of the "
             "remaining steps vs the first fifth",
             "the training loss falls steadily after the best-test step (Spearman correlation of the five "
             "window means with time)"]
    return [
        Check.less("test error is lowest before the end of training (step of the minimum)",
                   m["best_test_step"], m["last_step"]),
        Check.greater("the final test error is measurably higher than the best (ratio final / best)",
                      m["final_test_error"] / m["best_test_error"], 1.2),
        *([Check.less(falls[0], windows[-1], windows[0]),
           Check.less(falls[1], m["spearman_train_loss_windows"], -0.6)] if windows else
          [Check.untested(claim, "needs five evaluations from the best-test step on") for claim in falls]),
        Check.less("the final training loss is below its value at the best-test step",
                   m["final_train_loss"], m["train_loss_at_best_test"]),
        Check.close("EarlyStopping restores exactly the weights of its best snapshot",
                    m["restored_vs_snapshot_max_diff"], 0.0, 0.0),
    ]
