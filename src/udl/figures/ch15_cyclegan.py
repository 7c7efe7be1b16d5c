"""Chapter 15: CycleGAN between plain and bold digits, scored against the true pairing (figure 15.18)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import drawing, style
from udl.analysis.generative import class_share, digit_classifier
from udl.data.digit_styles import digit_domains, embolden
from udl.registry import Check, Result, figure
from udl.train.cyclegan import digits_cyclegan, train_domain_classifier

BOLD_WIDTH = 2  # domain B: strokes one pixel wider to the right (udl.data.digit_styles.embolden)
BATCH_SIZE = 64  # images of each domain per step
MIN_FALL_STEPS = 200  # the least training the falling cycle loss is tested with (at 60 steps it can still rise)
MIN_STEPS = 300  # the least training the claims about the trained translators are tested with
MIN_WIDTH = 16  # ... and the narrowest translator (measured: 16 channels, 2 blocks, 300 steps keep 97% of classes)
MIN_JUDGE_STEPS = 300  # the domain judge's least training (300 steps: 98-99% of held-out digits right)
CLASS_KEPT = 0.9  # the target: the class survives A -> B -> A for at least this share of held-out digits
JUDGE_ACCURACY = 0.95  # the judge must tell real held-out plain from bold digits at least this well
IN_TARGET = 0.9  # share of translations the judge places in the target domain
CYCLE_SHARE = 0.5  # the round trip's error at most this share of the trivial round trip's


def _mean_abs(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).abs().mean())


# =========================================================================== 15.18
@figure("15.18", title="CycleGAN: translating plain digits into bold ones and back, learned without pairs",
        caption="Two translators learned from unpaired examples: g turns a plain 8x8 digit (domain A, half of the "
                "training digits) into a bold one (domain B: the other half, each stroke widened by one pixel to "
                "the right, a known map), and g' turns bold digits into plain ones. Each is pushed by a "
                "discriminator of its target domain to produce images that look like that domain, and both are "
                "tied together by the cycle-consistency loss (a digit taken to the other style and back must "
                "come back unchanged) and the identity loss (a digit already in the target style is left alone). "
                "a) The cycle as the book draws it, with a held-out digit at each stage. b) Ten held-out plain "
                "digits, their translations g[a], the true bold digits (which training never paired with them) "
                "and the round trip g'[g[a]]. c) The same from bold digits. d) Training losses. e) Errors on "
                "held-out digits against baselines: the round trip against a constant image (the mean training "
                "digit), the translation against doing nothing. f) Shares of held-out digits: translations "
                "judged to be in the target style by a separate plain-or-bold classifier, the class kept "
                "through the round trip by udl's independent digit classifier, and translations nearer their "
                "own true partner than any other held-out digit.",
        params={"tiny": dict(width=4, n_blocks=1, steps=30, judge_steps=40),
                "full": dict(width=16, n_blocks=2, steps=400, judge_steps=400)},
        # translators and runs a CPU trains in minutes
        limits={"width": (1, 128), "n_blocks": (0, 6), "steps": (1, 20_000), "judge_steps": (1, 5000)})
def cyclegan(p, run):
    # the judge of classes first: class_share's own first call would train it under torch.no_grad() and fail
    digit_classifier()
    model, record = digits_cyclegan(width=p.width, n_blocks=p.n_blocks, steps=p.steps, batch_size=BATCH_SIZE,
                                    bold_width=BOLD_WIDTH, seed=run.seed, device=run.device)
    model = model.cpu()
    d = digit_domains(width=BOLD_WIDTH, seed=run.seed)
    a, b, labels = d.held_a, d.held_b, d.held_labels  # row i of b is the true bold version of row i of a
    with torch.no_grad():
        fake_b = model.g(a)  # A -> B
        back_a = model.g_prime(fake_b)  # A -> B -> A
        fake_a = model.g_prime(b)  # B -> A
        back_b = model.g(fake_a)  # B -> A -> B
    judge = train_domain_classifier(d.a, d.b, steps=p.judge_steps, width=16, seed=run.seed, device=run.device).cpu()
    with torch.no_grad():
        says_bold = {name: (judge(x) > 0).double() for name, x in
                     (("a", a), ("b", b), ("fake_b", fake_b), ("fake_a", fake_a))}
    # is g[a] nearer its own true partner than every other held-out bold digit? (and g'[b] likewise)
    nearest_ab = torch.cdist(fake_b.flatten(1).double(), b.flatten(1).double()).argmin(1)
    nearest_ba = torch.cdist(fake_a.flatten(1).double(), a.flatten(1).double()).argmin(1)
    rows = torch.arange(len(a))
    # unpaired: how many bold training digits are the bold version of some plain training digit (none, by construction)
    gaps = torch.cdist(embolden(d.a, width=BOLD_WIDTH).flatten(1).double(), d.b.flatten(1).double())  # (N_a, N_b)
    shown = torch.tensor([int(torch.nonzero(labels == c).flatten()[0]) for c in range(10)])  # one digit per class

    metrics = {
        "steps": len(record["g_loss"]), "held_out": len(a), "train_a": len(d.a), "train_b": len(d.b),
        "translator_parameters": sum(q.numel() for q in model.g.parameters()),
        "training_pairs": int((gaps.min(0).values == 0).sum()), "nearest_pair_gap": float(gaps.min()),
        # the round trips against the trivial one: a constant image, the mean training digit of the domain
        "cycle_error_a": _mean_abs(back_a, a), "cycle_error_b": _mean_abs(back_b, b),
        "constant_error_a": _mean_abs(d.a.mean(0, keepdim=True), a),
        "constant_error_b": _mean_abs(d.b.mean(0, keepdim=True), b),
        # the translations against the true pairing, and against doing nothing
        "translation_error_ab": _mean_abs(fake_b, b), "translation_error_ba": _mean_abs(fake_a, a),
        "do_nothing_error": _mean_abs(a, b),
        "paired_ab": float((nearest_ab == rows).double().mean()),
        "paired_ba": float((nearest_ba == rows).double().mean()),
        # the domain judge: real held-out digits, then the translations
        "judge_plain_right": float(1 - says_bold["a"].mean()), "judge_bold_right": float(says_bold["b"].mean()),
        "translated_bold": float(says_bold["fake_b"].mean()), "translated_plain": float(1 - says_bold["fake_a"].mean()),
        # the class, by the independent digit classifier
        "class_kept_a": class_share(back_a, labels), "class_kept_b": class_share(back_b, labels),
        "class_translated_ab": class_share(fake_b, labels), "class_translated_ba": class_share(fake_a, labels),
        "class_true_bold": class_share(b, labels), "class_plain": class_share(a, labels),
        "cycle_first": float(np.mean(record["cycle"][:max(1, len(record["cycle"]) // 10)])),
        "cycle_last": float(np.mean(record["cycle"][-max(1, len(record["cycle"]) // 10):])),
    }
    arrays = {"a": a[shown, 0].numpy(), "fake_b": fake_b[shown, 0].numpy(), "b": b[shown, 0].numpy(),
              "back_a": back_a[shown, 0].numpy(), "fake_a": fake_a[shown, 0].numpy(),
              "back_b": back_b[shown, 0].numpy()}
    arrays.update({k: np.asarray(record[k], dtype=np.float32) for k in ("d_loss", "g_loss", "cycle", "identity")})
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Translators: {p.width} channels, {p.n_blocks} residual blocks "
                        f"({metrics['translator_parameters']:,} parameters each); discriminators: DCGAN's, 16 "
                        f"channels; {p.steps} steps of {BATCH_SIZE} plain and {BATCH_SIZE} bold digits (Adam 2e-4, "
                        f"β = (0.5, 0.999), non-saturating loss, λ_cyc = 10, λ_id = 5), on {len(d.a)} plain and "
                        f"{len(d.b)} bold training digits that are different digits: no pairs. Trained once per "
                        f"machine and cached. The domain judge: the same discriminator network without batch "
                        f"normalisation, {p.judge_steps} AdamW steps on the real training digits of both domains. "
                        f"Every number is measured on the {len(a)} held-out digits, whose true partners are known.")


@cyclegan.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig = plt.figure(figsize=(13.5, 7.4), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[0.8, 1.0], width_ratios=[1.05, 1.0, 1.0])
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")

    # ---- a) the cycle, as fig. 15.18 draws it: c -> g -> c' -> g' -> c, a discriminator on c'
    ax = fig.add_subplot(grid[0, 0])
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.6, 7.4)
    ax.set_aspect("equal")
    ax.set_axis_off()
    digit = 0
    for x, y, img, label in ((1.2, 4.6, a["a"][digit], "c: plain"), (5.0, 4.6, a["fake_b"][digit], "c' = g[c]"),
                             (8.8, 4.6, a["back_a"][digit], "g'[c']"), (5.0, 1.5, a["b"][digit], "a real bold digit")):
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=1, extent=(x - 0.9, x + 0.9, y - 0.9, y + 0.9))
        ax.text(x, y - 1.0, label, ha="center", va="top", fontsize=8)
    drawing.arrow(ax, (2.2, 4.6), (4.0, 4.6), color=style.MODEL, lw=1.5, text="g", fontsize=9)
    drawing.arrow(ax, (6.0, 4.6), (7.8, 4.6), color=style.MODEL, lw=1.5, text="g'", fontsize=9)
    drawing.arrow(ax, (8.8, 5.7), (1.2, 5.7), color=style.TRUTH, ls="--", rad=0.25, arrowstyle="<|-|>",
                  fontsize=7)
    ax.text(5.0, 7.05, "cycle loss |g'[g[c]] − c|", ha="center", va="center", fontsize=7)
    drawing.box(ax, 7.7, 2.35, 3.2, 1.0, "discriminator f_B:\nreal bold or g[c]?", face=drawing.light(style.DATA, 0.7),
                edge=style.DATA, fontsize=7, boxstyle="round,pad=0.05")
    drawing.arrow(ax, (5.9, 3.8), (6.6, 2.9), color=style.DATA, lw=1.0)
    drawing.arrow(ax, (5.95, 1.8), (6.6, 2.1), color=style.DATA, lw=1.0)
    ax.text(0.2, -0.4, "(and the same from B: g' then g, judged by f_A)", ha="left", va="bottom", fontsize=7,
            color="0.35")
    ax.set_title("a) the cycle", loc="left", fontweight="bold")

    # ---- b), c) ten held-out digits through both cycles
    for spot, keys, names, title in (
            (grid[0, 1], ("a", "fake_b", "b", "back_a"), ["plain a", "g[a]", "true bold", "g'[g[a]]"],
             "b) A → B → A (held out)"),
            (grid[0, 2], ("b", "fake_a", "a", "back_b"), ["bold b", "g'[b]", "true plain", "g[g'[b]]"],
             "c) B → A → B (held out)")):
        ax = fig.add_subplot(spot)
        ax.imshow(drawing.mosaic(np.concatenate([a[k] for k in keys]), 4, 10), cmap=cmap, vmin=0, vmax=1)
        ax.set_yticks([3.5 + 9 * i for i in range(4)], names)
        ax.set_xticks([3.5 + 9 * i for i in range(10)], [str(c) for c in range(10)])
        ax.tick_params(length=0)
        for i in (1, 3):  # the model's rows
            ax.get_yticklabels()[i].set_color(style.MODEL)
        ax.set_title(title, loc="left", fontweight="bold")

    # ---- d) losses
    ax = fig.add_subplot(grid[1, 0])
    steps = np.arange(1, len(a["cycle"]) + 1)
    ax.plot(steps, a["d_loss"], color=style.DATA, lw=0.8, label="discriminators (f_A + f_B)")
    ax.plot(steps, a["g_loss"], color=style.REGION, lw=0.8, label="translators, total")
    ax.plot(steps, 10 * a["cycle"], color=style.MODEL, lw=1.2, label="10 × cycle loss")
    ax.plot(steps, 5 * a["identity"], color=style.EXTRA[0], lw=1.0, label="5 × identity loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_ylim(0, None)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("d) training", loc="left", fontweight="bold")

    # ---- e) errors against baselines
    ax = fig.add_subplot(grid[1, 1])
    names = ["round trip\nA→B→A", "constant\nimage", "translation\ng[a] vs truth", "do\nnothing",
             "translation\ng'[b] vs truth"]
    values = [m["cycle_error_a"], m["constant_error_a"], m["translation_error_ab"], m["do_nothing_error"],
              m["translation_error_ba"]]
    colors = [style.MODEL, style.REGION, style.MODEL, style.REGION, style.MODEL]
    bars = ax.bar(names, values, color=colors)
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("mean absolute pixel error (held out)")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylim(0, 1.2 * max(values))
    ax.set_title("e) errors against baselines", loc="left", fontweight="bold")

    # ---- f) shares
    ax = fig.add_subplot(grid[1, 2])
    names = ["g[a]\njudged bold", "g'[b]\njudged plain", "class kept\nA→B→A", "class kept\nB→A→B",
             "g[a] nearest\nits partner"]
    values = [m["translated_bold"], m["translated_plain"], m["class_kept_a"], m["class_kept_b"], m["paired_ab"]]
    bars = ax.barh(names[::-1], values[::-1], color=style.MODEL)
    for bar, v in zip(bars, values[::-1]):
        inside = v > 0.2
        ax.text(0.02 if inside else v + 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.3f}", ha="left",
                va="center", fontsize=8, color="white" if inside else "black", fontweight="bold")
    ax.axvline(CLASS_KEPT, color=style.TRUTH, ls="--", lw=1)
    ax.text(CLASS_KEPT - 0.01, len(names) - 0.5, f"target {CLASS_KEPT:g}", ha="right", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, len(names) - 0.1)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel(f"share of the held-out digits\n(real digits: the judge is right on {m['judge_plain_right']:.3f} "
                  f"plain, {m['judge_bold_right']:.3f} bold;\nthe classifier on {m['class_plain']:.3f} plain, "
                  f"{m['class_true_bold']:.3f} bold)", fontsize=8)
    ax.set_title("f) recognised", loc="left", fontweight="bold")
    return fig


@cyclegan.checks
def _(r):
    m = r.metrics
    checks = [Check.equal("the training data hold no pairs: no bold training digit is the bold version of a plain "
                          "training digit", m["training_pairs"], 0)]
    falls = "the cycle loss falls during training (mean of the last tenth of the steps below the first tenth's)"
    if m["steps"] >= MIN_FALL_STEPS:
        checks.append(Check.less(falls, m["cycle_last"], m["cycle_first"]))
    else:
        checks.append(Check.untested(falls, f"needs at least {MIN_FALL_STEPS} steps"))
    trained = m["steps"] >= MIN_STEPS and r.params["width"] >= MIN_WIDTH and r.params["n_blocks"] >= 1
    why = f"needs at least {MIN_STEPS} steps of translators with at least {MIN_WIDTH} channels and one block"
    claims = {
        "kept": f"the class survives the round trip A → B → A for at least {CLASS_KEPT:.0%} of held-out digits "
                "(independent classifier)",
        "cycle": f"the held-out round trip's error is at most {CYCLE_SHARE:g} times a constant image's, both ways",
        "pairing": "the translations are nearer the true partners than the inputs are (mean absolute error), "
                   "both ways",
        "target": f"at least {IN_TARGET:.0%} of translations are judged to be in the target domain, both ways",
    }
    if not trained:
        checks += [Check.untested(claim, why) for claim in claims.values()]
    else:
        checks += [
            Check.greater(claims["kept"], m["class_kept_a"], CLASS_KEPT),
            Check.less(claims["cycle"], max(m["cycle_error_a"] / m["constant_error_a"],
                                            m["cycle_error_b"] / m["constant_error_b"]), CYCLE_SHARE),
            Check.less(claims["pairing"], max(m["translation_error_ab"], m["translation_error_ba"]),
                       m["do_nothing_error"]),
        ]
        if r.params["judge_steps"] >= MIN_JUDGE_STEPS:
            checks.append(Check.greater(claims["target"], min(m["translated_bold"], m["translated_plain"]), IN_TARGET))
        else:
            checks.append(Check.untested(claims["target"], f"needs a judge trained for {MIN_JUDGE_STEPS} steps"))
    judge = f"the domain judge tells real held-out plain and bold digits apart (at least {JUDGE_ACCURACY:.0%} each)"
    if r.params["judge_steps"] >= MIN_JUDGE_STEPS:
        checks.append(Check.greater(judge, min(m["judge_plain_right"], m["judge_bold_right"]), JUDGE_ACCURACY))
    else:
        checks.append(Check.untested(judge, f"needs a judge trained for {MIN_JUDGE_STEPS} steps"))
    return checks
