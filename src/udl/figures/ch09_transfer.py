"""Chapter 9: transfer learning from a task with plenty of labels to one with few (§9.3.6, fig. 9.12)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from udl import style
from udl.data.mnist1d import load_mnist1d
from udl.models.transfer import replace_head
from udl.nn.deep import DeepNetwork
from udl.registry import Check, Limit, Result, figure
from udl.train import fit

METHODS = ("scratch", "new_head", "fine_tune")
LABELS = {"scratch": "from scratch", "new_head": "pre-trained, new layer only",
          "fine_tune": "pre-trained, whole network fine-tuned"}


def _colors():
    return {"scratch": style.EXTRA[0], "new_head": style.MODEL, "fine_tune": style.EXTRA[1]}


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@figure("9.12", title="Transfer learning: plenty of labels for one task, few for another",
        caption="Transfer learning on MNIST-1D. Secondary task: classify the digits 0-4, with about 2,000 "
                "labelled training sequences. Primary task: classify the digits 5-9 from only a few labelled "
                "sequences per class. a) One sequence of each class: the secondary task's (black) and the "
                "primary task's (orange). b) Test accuracy on the digits 5-9 against the number of labels per "
                "class (mean ± one standard deviation over random draws of the few labels). A 40-100-100 "
                "network trained on the secondary task keeps its hidden layers; its final layer is replaced by "
                "a new one for the five new classes, and either only the new layer is trained (cyan) or the "
                "whole network is fine-tuned (green). Both beat the same network trained from scratch on the "
                "same few labels (purple), the new layer alone by far. c) At the smallest number of labels, "
                "each draw of the labels (one line) gains from pre-training.",
        params={"tiny": dict(hidden=[100, 100], pretrain_steps=1000, pretrain_lr=0.1, batch_size=100,
                             labels_per_class=[5], n_draws=4, steps=100, lr=0.004),
                "full": dict(hidden=[100, 100], pretrain_steps=2000, pretrain_lr=0.1, batch_size=100,
                             labels_per_class=[2, 5, 10, 20, 50], n_draws=6, steps=100, lr=0.004)},
        # a class of digits 5-9 holds about 400 training sequences; a paired t needs two draws
        limits={"hidden": Limit(1, 1024, max_len=8), "pretrain_steps": (1, 100_000), "pretrain_lr": (1e-6, 10.0),
                "batch_size": (1, 1000), "labels_per_class": Limit(1, 300, max_len=10), "n_draws": (2, 100),
                "steps": (1, 10_000), "lr": (1e-6, 10.0)})
def transfer_learning(p, run):
    data = load_mnist1d()
    x_train, y_train, x_test, y_test = data.tensors("cpu")
    source, target = y_train < 5, y_train >= 5
    widths = [x_train.shape[1], *p.hidden]

    # the secondary task, with plenty of labels: digits 0-4
    pretrained = DeepNetwork([*widths, 5], generator=run.generator())
    fit(pretrained, (x_train[source], y_train[source]), nn.functional.cross_entropy,
        lambda params: torch.optim.SGD(params, lr=p.pretrain_lr), steps=p.pretrain_steps, batch_size=p.batch_size,
        seed=run.seed, device=run.device, progress=False)
    pretrained.cpu().eval()
    source_accuracy = _accuracy(pretrained, x_test[y_test < 5], y_test[y_test < 5])

    # the primary task, with few labels: digits 5-9 (relabelled 0-4)
    x_pool, y_pool = x_train[target], y_train[target] - 5
    x_eval, y_eval = x_test[y_test >= 5], y_test[y_test >= 5] - 5
    counts = sorted(set(p.labels_per_class))  # fewest labels first: the paired gains are measured there
    accuracy = {m: np.zeros((len(counts), p.n_draws)) for m in METHODS}
    jobs = [(i, j) for i in range(len(counts)) for j in range(p.n_draws)]
    for i, j in run.progress(jobs, desc="label draws"):
        k = counts[i]
        rng = np.random.default_rng([run.seed, k, j])
        rows = np.concatenate([rng.choice(np.flatnonzero(y_pool.numpy() == c), k, replace=False) for c in range(5)])
        xs, ys = x_pool[rows], y_pool[rows]
        for method in METHODS:
            head = torch.Generator().manual_seed(1000 * run.seed + 100 * i + j)  # same draw for every method
            if method == "scratch":
                net = DeepNetwork([*widths, 5], generator=head)
            else:
                net = replace_head(pretrained, 5, generator=head)
            trained = net.layers[-1].parameters() if method == "new_head" else net.parameters()
            fit(net, (xs, ys), nn.functional.cross_entropy, torch.optim.Adam(trained, lr=p.lr), steps=p.steps,
                batch_size=len(xs), shuffle=False, device=run.device, progress=False)
            accuracy[method][i, j] = _accuracy(net.cpu().eval(), x_eval, y_eval)

    gain = {m: accuracy[m][0] - accuracy["scratch"][0] for m in ("new_head", "fine_tune")}  # paired by draw
    metrics = {"n_source_train": int(source.sum()), "n_target_pool": len(x_pool), "n_target_test": len(x_eval),
               "source_test_accuracy": source_accuracy, "labels_per_class": counts,
               "n_draws": p.n_draws, "chance": 0.2}
    for m in METHODS:
        metrics[f"{m}_mean"] = accuracy[m].mean(1).tolist()
        metrics[f"{m}_sd"] = accuracy[m].std(1, ddof=1).tolist() if p.n_draws > 1 else [0.0] * len(accuracy[m])
    for m, g in gain.items():
        metrics[f"{m}_gain_fewest_mean"] = float(g.mean())
        metrics[f"{m}_gain_fewest_sd"] = float(g.std(ddof=1))
        metrics[f"{m}_gain_fewest_t"] = float(g.mean() / (g.std(ddof=1) / np.sqrt(len(g)))) if g.std() > 0 \
            else float("inf") * np.sign(g.mean())
    examples = {c: data.x_train[data.y_train == c][0] for c in range(10)}
    return Result(metrics=metrics,
                  arrays={**{m: accuracy[m] for m in METHODS}, "t": data.t,
                          "examples": np.stack([examples[c] for c in range(10)])},
                  notes="The book's figure 9.12 illustrates transfer with segmentation and depth on street scenes; "
                        "this one measures it on data that ships with udl: the secondary and primary tasks are "
                        "disjoint halves of the MNIST-1D classes. Few-label training: full-batch Adam "
                        f"(step {p.lr:g}, {p.steps} steps) on {p.n_draws} random draws of the labels; "
                        "the pre-trained body and the scratch network have the same architecture.")


@transfer_learning.plot
def _(r):
    a, m = r.arrays, r.metrics
    colors = _colors()
    fig, axes = style.subplots(1, 3, width=3.3)
    ax = axes[0]
    for c in range(10):
        ax.plot(a["t"], a["examples"][c] + 3.0 * (9 - c), color=style.TRUTH if c < 5 else style.DATA, lw=1)
    ax.set(yticks=[3.0 * (9 - c) for c in range(10)], yticklabels=[str(c) for c in range(10)], xlabel="position",
           ylabel="digit", title="MNIST-1D sequences")
    ax = axes[1]
    k = np.asarray(m["labels_per_class"])
    for method in METHODS:
        mean, sd = np.asarray(m[f"{method}_mean"]), np.asarray(m[f"{method}_sd"])
        ax.errorbar(k, 100 * mean, yerr=100 * sd, color=colors[method], marker="o", ms=3, lw=1.8, capsize=2,
                    label=LABELS[method])
    ax.axhline(100 * m["chance"], color=style.REGION, ls=":", lw=1)
    ax.set(xscale="log", xlabel="labels per class (digits 5-9)", ylabel="test accuracy (%)",
           title="Primary task", ylim=(0, 100))
    ax.set_xticks(k, [str(v) for v in k])
    ax.set_xticks([], minor=True)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[2]
    columns = np.stack([a[method][0] for method in METHODS])  # (3, draws) at the fewest labels
    for draw in columns.T:
        ax.plot(range(len(METHODS)), 100 * draw, color=style.REGION, lw=0.8)
    for i, method in enumerate(METHODS):
        ax.plot(np.full(columns.shape[1], i), 100 * columns[i], "o", color=colors[method], ms=5)
    ax.set(xticks=range(len(METHODS)), xticklabels=["scratch", "new layer", "fine-tuned"], xlim=(-0.5, 2.5),
           ylabel="test accuracy (%)", title=f"{k[0]} labels per class, each draw")
    style.panel_labels(axes)
    return fig


@transfer_learning.checks
def _(r):
    m = r.metrics
    k = m["labels_per_class"][0]
    return [
        Check.greater("pre-training learnt the secondary task (test accuracy on digits 0-4; chance 0.2)",
                      m["source_test_accuracy"], 0.5),
        Check.greater(f"with {k} labels per class, the pre-trained network with a new final layer beats training "
                      f"from scratch: paired gain / its standard error over {m['n_draws']} draws",
                      m["new_head_gain_fewest_t"], 3.0),
        Check.greater(f"the gain in accuracy is large: {m['new_head_mean'][0]:.3f} ± {m['new_head_sd'][0]:.3f} vs "
                      f"{m['scratch_mean'][0]:.3f} ± {m['scratch_sd'][0]:.3f} from scratch (mean gain)",
                      m["new_head_gain_fewest_mean"], 0.05),
        Check.greater(f"fine-tuning the whole pre-trained network also beats scratch on average with {k} labels "
                      f"per class (mean paired gain; its t = {m['fine_tune_gain_fewest_t']:.1f})",
                      m["fine_tune_gain_fewest_mean"], 0.0),
    ]
