"""Chapter 15, conditional generation: a conditional GAN, an ACGAN and an InfoGAN trained on digits (figure 15.13)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import drawing, style
from udl.analysis.generative import digit_classifier, evaluate_digits
from udl.registry import Check, Limit, Result, figure
from udl.train.conditional_gan import code_accuracy, code_purity, digits_conditional_gan

MIN_STEPS = {"cgan": 2000, "acgan": 3000, "infogan": 2000}  # the least training each GAN's claims are tested with
MIN_WIDTH = 32  # ... the narrowest networks
LR_MEASURED = (3e-4, 5e-4)  # ... and the learning rates around the one measured (4e-4; the ACGAN at 2e-4 fell short)
MIN_EVALUATED = 300  # ... and the least samples (evaluate_digits compares at most 359 of each)
CLASS_SHARE = 0.9  # the target: this share of cGAN and ACGAN samples recognised as the class asked for
FRECHET_SHARE = 0.5  # the target: Fréchet distance at most this share of the class-conditional trivial model's
CODE_ACCURACY = 0.9  # InfoGAN's Q reads back at least this share of its own codes
PURITY_MARGIN = 0.2  # InfoGAN's purity exceeds that of codes shuffled against the classes by this much
JUDGE_ACCURACY = 0.97  # the independent classifier's held-out accuracy, for its verdicts to mean anything
NAMES = {"cgan": "conditional GAN", "acgan": "ACGAN", "infogan": "InfoGAN"}


def _rows(samples: torch.Tensor, codes: torch.Tensor, order: list[int], n_shown: int) -> np.ndarray:
    """The first ``n_shown`` samples of each code in ``order``, one row per code: (len(order) · n_shown, 8, 8)."""
    return np.concatenate([samples[codes == k][:n_shown, 0].numpy() for k in order])


# =========================================================================== 15.13
@figure("15.13", title="Conditional generation: a conditional GAN, an auxiliary classifier GAN and an InfoGAN",
        caption="Three ways to tell a GAN what to draw, each trained on scikit-learn's 8x8 handwritten digits. "
                "a) Conditional GAN: the generator receives noise z and the class c; the discriminator receives an "
                "image with a class (here through a learned class embedding multiplied into its features) and "
                "must tell real pairs from generated ones. b) Auxiliary classifier GAN: the discriminator sees "
                "the image alone and both judges real or generated and predicts the class; the generator is "
                "rewarded when its images are classified as the class it was given. c) InfoGAN: no labels; the "
                "generator receives z and a code c of ten values drawn at random, and a head Q on the "
                "discriminator must recover c from the image, so the code comes to control something visible. "
                "Below each diagram, generated digits: one row per class asked for (a, b), or per code value (c), "
                "the rows of c sorted and labelled by the class an independent classifier reads most often in "
                "them, with that share. The table gives the share of samples the independent classifier "
                "recognises as the class asked for, the Fréchet distance of the samples to the training digits "
                "beside held-out real digits and a trivial model (independent pixels per class), the "
                "memorisation test, and for the InfoGAN how often Q reads back its own code and how well codes "
                "and classes line up (purity).",
        params={"tiny": dict(cgan_steps=20, acgan_steps=20, infogan_steps=20, width=8, lr=4e-4, n_generated=60,
                             n_shown=6),
                "full": dict(cgan_steps=2000, acgan_steps=3000, infogan_steps=2000, width=32, lr=4e-4,
                             n_generated=1000, n_shown=10)},
        # three small networks a CPU trains in under a minute each; sample counts bounded by memory
        limits={"cgan_steps": (1, 50_000), "acgan_steps": (1, 50_000), "infogan_steps": (1, 50_000),
                "width": (1, 256), "lr": (1e-6, 1e-1), "n_generated": (20, 20_000), "n_shown": Limit(1, 40)})
def conditional_generation(p, run):
    judge = digit_classifier()
    steps = {"cgan": p.cgan_steps, "acgan": p.acgan_steps, "infogan": p.infogan_steps}
    codes = torch.arange(p.n_generated) % 10  # the classes (codes) asked for, balanced
    metrics = {"classifier_accuracy": judge.record["test_accuracy"], "n_generated": p.n_generated, "width": p.width,
               "lr": p.lr}
    arrays = {}
    for i, kind in enumerate(("cgan", "acgan", "infogan")):
        gan, record = digits_conditional_gan(kind, steps=steps[kind], width=p.width, lr=p.lr, seed=run.seed,
                                             device=run.device)
        gan = gan.cpu()
        samples = gan.sample(codes, generator=run.generator(10 + i))  # (n, 1, 8, 8)
        report = evaluate_digits(samples, classes=None if kind == "infogan" else codes, seed=run.seed)
        with torch.no_grad():
            read = judge(samples).argmax(1)  # the independent classifier's verdict on each sample
            changed = (gan.sample(torch.zeros(64, dtype=torch.long), generator=run.generator(20))
                       - gan.sample(torch.ones(64, dtype=torch.long), generator=run.generator(20))).abs().mean()
        row = report["model"]
        m = {"steps": len(record["d_loss"]), "class_share": float((read == codes).double().mean()),
             "frechet": row["frechet"], "frechet_floor": report["floor"]["frechet"],
             "frechet_ceiling": report["ceiling"]["frechet"], "precision": row["precision"], "recall": row["recall"],
             "memorisation_passes": row["memorisation_passes"], "memorisation_p": row["memorisation_p"],
             "memorisation_share": row["memorisation_share"], "evaluated": report["floor"]["count"],
             "code_effect": float(changed),
             "final_d_loss": float(np.mean(record["d_loss"][-max(1, len(record["d_loss"]) // 20):])),
             "final_g_loss": float(np.mean(record["g_loss"][-max(1, len(record["g_loss"]) // 20):]))}
        order = list(range(10))
        if kind == "infogan":
            purity = code_purity(codes, read)
            shuffled = code_purity(codes[torch.randperm(len(codes), generator=run.generator(30))], read)
            m.update(code_accuracy=code_accuracy(gan, p.n_generated, generator=run.generator(40)),
                     purity=purity["purity"], purity_shuffled=shuffled["purity"], majority=purity["majority"],
                     per_code=purity["per_code"], classes_covered=purity["covered"])
            order = sorted(range(10), key=lambda k: (purity["majority"][k], -purity["per_code"][k]))
            m["order"] = order
        arrays[f"{kind}_rows"] = _rows(samples, codes, order, p.n_shown)
        metrics.update({f"{kind}_{key}": value for key, value in m.items()})
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Generator: z (16 values) and the one-hot class or code through a linear layer to 4x4 "
                        f"maps, a transposed convolution to 8x8, batch norm, a sigmoid; discriminators: two "
                        f"strided convolutions ({p.width} and {2 * p.width} maps) and linear heads. Adam "
                        f"(lr {p.lr:g}, β = (0.5, 0.999)), batches of 64, the non-saturating loss; "
                        f"{p.cgan_steps} / {p.acgan_steps} / {p.infogan_steps} steps for the cGAN / ACGAN / "
                        f"InfoGAN, each trained once per machine on the 1,438 training digits and cached. "
                        f"{p.n_generated} samples each, evenly spread over the classes (codes); Fréchet "
                        f"distances compare {min(p.n_generated, 359)} images with the training digits; the "
                        f"trivial model of a and b draws per-class independent pixels, that of c ignores classes.")


@conditional_generation.requires
def _(p):
    if p.n_shown * 10 > p.n_generated:
        raise ValueError(f"The 'n_shown' parameter of figure 15.13 must be at most n_generated / 10 = "
                         f"{p.n_generated // 10} (one row per class). Got {p.n_shown} instead.")


def _diagram(ax, kind: str) -> None:
    """The book's schematic of one conditional GAN: inputs, generator, discriminator and what it outputs."""
    drawing.frame(ax, (-0.1, 12.3), (0.0, 3.5))
    g_face, d_face = drawing.light(style.MODEL, 0.35), drawing.light(style.EXTRA[0], 0.3)
    c_face = drawing.light(style.DATA, 0.4)
    drawing.box(ax, 0.75, 2.7, 1.4, 0.6, "z", face="white", edge="black")
    drawing.box(ax, 0.75, 1.3, 1.4, 0.7, "class c" if kind != "infogan" else "code c", face=c_face,
                edge=style.DATA)
    drawing.box(ax, 3.2, 2.0, 1.7, 1.3, "g[z, c]", face=g_face, edge=style.MODEL)
    drawing.arrow(ax, (1.45, 2.7), (2.35, 2.3))
    drawing.arrow(ax, (1.45, 1.3), (2.35, 1.7))
    drawing.box(ax, 5.8, 2.7, 1.7, 0.55, "x*", face="white", edge=style.MODEL)
    drawing.box(ax, 5.8, 1.3, 1.7, 0.55, "x", face="white", edge="black")
    drawing.arrow(ax, (4.05, 2.3), (4.95, 2.7))
    drawing.box(ax, 8.3, 2.0, 1.8, 1.3, "f[x, c]" if kind == "cgan" else "f[x]", face=d_face,
                edge=style.EXTRA[0])
    drawing.arrow(ax, (6.65, 2.7), (7.4, 2.3))
    drawing.arrow(ax, (6.65, 1.3), (7.4, 1.7))
    drawing.box(ax, 11.05, 2.6, 2.3, 0.55, "real?", face="white", edge="black")
    drawing.arrow(ax, (9.2, 2.35), (9.9, 2.6))
    for x, text in ((3.2, "generator"), (8.3, "discriminator")):
        ax.text(x, 3.0, text, fontsize=7, ha="center", va="center")
    ax.text(5.8, 3.2, "generated", fontsize=7, ha="center", va="center")
    ax.text(5.8, 0.8, "real", fontsize=7, ha="center", va="center")
    if kind == "cgan":
        drawing.arrow(ax, (0.75, 0.95), (8.3, 1.35), rad=0.18, color=style.DATA)
        ax.text(4.6, 0.2, "c goes to both networks", fontsize=7, color=style.DATA, ha="center")
    else:
        drawing.box(ax, 11.05, 1.4, 2.3, 0.55, "class?" if kind == "acgan" else "Q: code?",
                    face=c_face, edge=style.DATA)
        drawing.arrow(ax, (9.2, 1.65), (9.9, 1.4))
        ax.text(6.0, 0.35, "both networks minimise the " + ("class cross-entropy" if kind == "acgan" else
                                                             "cross-entropy of Q's guess of c"),
                fontsize=7, color=style.DATA, ha="center")


@conditional_generation.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig = plt.figure(figsize=(14, 6.8), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[0.8, 2.2, 0.65])
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    for j, kind in enumerate(("cgan", "acgan", "infogan")):
        ax = fig.add_subplot(grid[0, j])
        _diagram(ax, kind)
        ax.set_title(f"{'abc'[j]}) {NAMES[kind]}", loc="left", fontweight="bold")
        ax = fig.add_subplot(grid[1, j])
        rows = a[f"{kind}_rows"]
        n_shown = len(rows) // 10
        ax.imshow(drawing.mosaic(rows, 10, n_shown), cmap=cmap, vmin=0, vmax=1)
        ax.set_xticks([])
        if kind == "infogan":
            labels = [f"c={k} → {m['infogan_majority'][k]} ({100 * m['infogan_per_code'][k]:.0f}%)"
                      for k in m["infogan_order"]]
            ax.set_xlabel("code value → the class read most often in its samples (share)", fontsize=8)
        else:
            labels = [str(k) for k in range(10)]
            ax.set_xlabel(f"class asked for (rows); {100 * m[f'{kind}_class_share']:.1f}% of "
                          f"{m['n_generated']} samples recognised as it", fontsize=8)
        ax.set_yticks([3.5 + 9 * i for i in range(10)], labels, fontsize=8)
        ax.tick_params(length=0)
    ax = fig.add_subplot(grid[2, :])
    ax.set_axis_off()
    header = f"{'':<18}{'steps':>7}{'class share':>13}{'Fréchet':>9}{'held-out':>10}{'trivial':>9}" \
             f"{'precision':>11}{'recall':>8}  memorisation"
    lines = [header]
    for kind in ("cgan", "acgan", "infogan"):
        share = "-" if kind == "infogan" else f"{m[f'{kind}_class_share']:.3f}"
        verdict = "passes" if m[f"{kind}_memorisation_passes"] else "FAILS"
        lines.append(f"{NAMES[kind]:<18}{m[f'{kind}_steps']:>7}{share:>13}{m[f'{kind}_frechet']:>9.2f}"
                     f"{m[f'{kind}_frechet_floor']:>10.2f}{m[f'{kind}_frechet_ceiling']:>9.2f}"
                     f"{m[f'{kind}_precision']:>11.3f}{m[f'{kind}_recall']:>8.3f}  {verdict} "
                     f"(p = {m[f'{kind}_memorisation_p']:.2g})")
    lines.append(f"InfoGAN: Q reads back {100 * m['infogan_code_accuracy']:.1f}% of its codes; purity of codes vs "
                 f"classes {m['infogan_purity']:.2f} (codes shuffled: {m['infogan_purity_shuffled']:.2f}); "
                 f"{m['infogan_classes_covered']} of 10 classes are some code's majority.   Independent "
                 f"classifier: {100 * m['classifier_accuracy']:.1f}% on held-out digits.")
    ax.text(0.0, 1.0, "\n".join(lines), transform=ax.transAxes, ha="left", va="top", family="monospace",
            fontsize=8.5)
    ax.set_title("d) how good, by an independent classifier (trivial: independent pixels, per class for a-b)",
                 loc="left", fontweight="bold")
    return fig


def _trained_enough(m: dict, kind: str) -> bool:
    """Whether the settings are those the claims about a trained GAN were measured with (or more training)."""
    return (m[f"{kind}_steps"] >= MIN_STEPS[kind] and m["n_generated"] >= MIN_EVALUATED and m["width"] >= MIN_WIDTH
            and LR_MEASURED[0] <= m["lr"] <= LR_MEASURED[1])


def _why(kind: str) -> str:
    return (f"needs at least {MIN_STEPS[kind]} training steps, {MIN_EVALUATED} samples, width >= {MIN_WIDTH} and a "
            f"learning rate in [{LR_MEASURED[0]:g}, {LR_MEASURED[1]:g}] (the settings measured)")


@conditional_generation.checks
def _(r):
    m = r.metrics
    checks = [
        Check.greater("the independent classifier recognises held-out real digits (its verdicts can be trusted)",
                      m["classifier_accuracy"], JUDGE_ACCURACY),
        Check.greater("the class is an input of the conditional generator: with the same z, asking for a 0 or "
                      "a 1 gives different images (mean absolute pixel difference)", m["cgan_code_effect"], 0.0),
    ]
    for kind in ("cgan", "acgan"):
        name = NAMES[kind]
        enough = _trained_enough(m, kind)
        why = _why(kind)
        claims = [f"at least {CLASS_SHARE:.0%} of the {name}'s samples are recognised as the class asked for",
                  f"the {name}'s samples are at most {FRECHET_SHARE:g} times as far (Fréchet) from the training "
                  f"digits as the per-class trivial model's",
                  f"the {name}'s samples are no closer to the training digits than held-out digits are "
                  f"(memorisation check)"]
        if not enough:
            checks += [Check.untested(claim, why) for claim in claims]
            continue
        checks += [
            Check.greater(claims[0], m[f"{kind}_class_share"], CLASS_SHARE - 1e-12),
            Check.less(claims[1], m[f"{kind}_frechet"] / m[f"{kind}_frechet_ceiling"], FRECHET_SHARE),
            Check.holds(claims[2], m[f"{kind}_memorisation_passes"],
                        f"{m[f'{kind}_memorisation_share']:.3f} of samples among the 5% closest "
                        f"(p = {m[f'{kind}_memorisation_p']:.3f})"),
        ]
    enough = _trained_enough(m, "infogan")
    why = _why("infogan")
    claims = [f"InfoGAN's head Q recovers the code from the generated image for at least {CODE_ACCURACY:.0%} "
              f"of samples", f"InfoGAN's codes line up with the digit classes: purity at least {PURITY_MARGIN:g} "
              f"above that of the same codes shuffled"]
    if not enough:
        checks += [Check.untested(claim, why) for claim in claims]
    else:
        checks += [Check.greater(claims[0], m["infogan_code_accuracy"], CODE_ACCURACY - 1e-12),
                   Check.greater(claims[1], m["infogan_purity"] - m["infogan_purity_shuffled"], PURITY_MARGIN)]
    return checks
