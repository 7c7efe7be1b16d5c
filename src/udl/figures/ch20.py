"""Chapter 20 notes: adversarial examples on a classifier of real digits (figure 20.14).

The comparison with foolbox's ``LinfFastGradientAttack`` and ``LinfPGD`` runs when foolbox is
installed (it is only in udl's test extra); without it the claim is recorded as not tested.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import drawing, style
from udl.analysis.adversarial import accuracy_under_attack, fgsm, pgd
from udl.analysis.generative import digit_classifier
from udl.data.images import load_digits
from udl.registry import Check, Limit, Result, figure
from udl.validate import _refuse

FOOLBOX_TOL = 1e-6  # the bound on the difference from foolbox
BALL_TOL = 1e-6  # float32 rounding of x₀ + δ
MIN_STEPS = 10  # the least PGD steps with which the strength claims are tested
MIN_DIGITS = 100  # ... and the fewest digits (fewer: a share too noisy for a bound)
MOST_EPS = 0.1  # "a small perturbation flips most correct predictions": tested from this ε on (measured 0.67 at 0.1)
ALL_EPS = 0.2  # ... and "almost all" (< 5% still correct) from this one (measured 0.0 at 0.2)
TARGET_SHARE = 0.9  # the target share of flipped digits at ε = 0.1 (not met by this classifier: notes)
MAGNIFY = 10  # the perturbation is drawn magnified, as in the book


def _foolbox():
    """foolbox, or None when it is not installed (it is only in udl's test extra)."""
    try:
        with warnings.catch_warnings():  # foolbox 3.3 imports a deprecated scipy.ndimage path
            warnings.simplefilter("ignore", DeprecationWarning)
            import foolbox
    except ImportError:
        return None
    return foolbox


def _foolbox_gaps(model, x, y, eps: float, steps: int, step_size: float) -> tuple[float | None, float | None]:
    """Largest |ours − foolbox's| for FGSM and for PGD without random start; None without foolbox."""
    fb = _foolbox()
    if fb is None:
        return None, None
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    raw, _, _ = fb.attacks.LinfFastGradientAttack(random_start=False)(fmodel, x, y, epsilons=eps)
    fgsm_gap = float((fgsm(model, x, y, eps) - raw).abs().max())
    attack = fb.attacks.LinfPGD(abs_stepsize=step_size, steps=steps, random_start=False)
    raw, _, _ = attack(fmodel, x, y, epsilons=eps)
    pgd_gap = float((pgd(model, x, y, eps, steps=steps, step_size=step_size, random_start=False) - raw).abs().max())
    return fgsm_gap, pgd_gap


@figure("20.14", title="Adversarial examples: imperceptible changes that fool a digit classifier",
        caption="Adversarial examples on a small convolutional network trained on real 8x8 handwritten digits "
                "(99.4% correct on held-out digits). a) Each row: a held-out digit the network classifies "
                "correctly (left, with its prediction and probability), the change found by projected gradient "
                "descent (PGD) inside an L∞ ball of radius ε (every pixel moves by at most ε of the pixel "
                "range), drawn ten times larger so that it can be seen (middle; gray is no change), and the "
                "changed digit, which the network now assigns to another class (right). To a person the two "
                "digits look alike. b) Held-out accuracy against ε for the fast gradient sign method (one step "
                "of size ε along the sign of the loss gradient, orange) and for PGD (many smaller signed steps, "
                "each projected back onto the ball, from a random start, cyan); the dashed line marks the ε of "
                "panel a. The iterated attack is the stronger one, and a change of a tenth of the pixel range "
                "already flips most correct answers.",
        params={"tiny": dict(n_test=120, eps_values=[0.0, 0.05, 0.1, 0.2], eps_shown=0.1, steps=10, n_examples=3),
                "full": dict(n_test=359, eps_values=[0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25],
                             eps_shown=0.1, steps=40, n_examples=4)},
        # the held-out split has 359 digits; ε beyond half the pixel range no longer keeps the digit
        limits={"n_test": (1, 359), "eps_values": Limit(0.0, 0.5, min_len=2, max_len=20),
                "eps_shown": (0.01, 0.5), "steps": (1, 500), "n_examples": (1, 8)})
def adversarial_examples(p, run):
    model = digit_classifier(device="cpu").eval()
    x, y = (torch.from_numpy(a) for a in load_digits("test", seed=0, flat=False))
    x, y = x[:p.n_test, None], y[:p.n_test]  # (N, 1, 8, 8), (N,)
    with torch.no_grad():
        clean_probs = model(x).softmax(1)  # (N, 10)
    correct = clean_probs.argmax(1) == y

    # b) accuracy against ε for both attacks
    eps_values = sorted(set(p.eps_values))
    fgsm_accuracy = accuracy_under_attack(model, x, y, eps_values, "fgsm")
    pgd_accuracy = accuracy_under_attack(model, x, y, eps_values, "pgd", steps=p.steps, generator=run.generator(1))

    # a) the attacks at the ε shown, on every digit: the share of correct answers each flips, the ball and range
    attacked = {"fgsm": fgsm(model, x, y, p.eps_shown),
                "pgd": pgd(model, x, y, p.eps_shown, steps=p.steps, generator=run.generator(2))}
    with torch.no_grad():
        adv_probs = model(attacked["pgd"]).softmax(1)
        flipped = {k: float((model(v).argmax(1) != y)[correct].double().mean()) if correct.any() else 0.0
                   for k, v in attacked.items()}
    outside = max(max(float((v - x).abs().max()) - p.eps_shown, 0.0) for v in attacked.values())
    off_range = max(max(float(-v.min()), float(v.max() - 1), 0.0) for v in attacked.values()) + 0.0  # not -0.0

    fooled = torch.nonzero(correct & (adv_probs.argmax(1) != y)).flatten()
    shown = fooled[:p.n_examples] if len(fooled) else torch.nonzero(correct).flatten()[:p.n_examples]
    if not len(shown):
        shown = torch.arange(min(p.n_examples, len(x)))
    step_size = 2.5 * p.eps_shown / p.steps  # pgd's default
    fgsm_gap, pgd_gap = _foolbox_gaps(model, x, y, p.eps_shown, p.steps, step_size)

    metrics = {"n_test": len(x), "n_correct": int(correct.sum()), "clean_accuracy": float(correct.double().mean()),
               "eps_values": eps_values, "fgsm_accuracy": fgsm_accuracy, "pgd_accuracy": pgd_accuracy,
               "eps_shown": p.eps_shown, "steps": p.steps, "pgd_step_size": step_size,
               "fgsm_flipped": flipped["fgsm"], "pgd_flipped": flipped["pgd"], "outside_ball": outside,
               "outside_range": off_range, "foolbox_fgsm_gap": fgsm_gap, "foolbox_pgd_gap": pgd_gap,
               "shown_labels": y[shown].tolist(), "shown_clean": clean_probs[shown].argmax(1).tolist(),
               "shown_clean_prob": clean_probs[shown].max(1).values.tolist(),
               "shown_adv": adv_probs[shown].argmax(1).tolist(),
               "shown_adv_prob": adv_probs[shown].max(1).values.tolist()}
    original = x[shown, 0].numpy()
    perturbed = attacked["pgd"][shown, 0].numpy()
    return Result(metrics=metrics,
                  arrays={"original": original, "perturbation": perturbed - original, "perturbed": perturbed},
                  notes="The book's figure 20.14 attacks AlexNet on a 224x224 photograph; here the classifier is "
                        "udl's small CNN on 8x8 digits (udl.analysis.generative.digit_classifier, trained with "
                        "one-pixel shifts), whose 64 pixels leave an attack far fewer directions. PGD uses "
                        f"{p.steps} steps of 2.5ε/{p.steps} from a uniform random start. Here PGD at ε = "
                        f"{p.eps_shown:g} flips {flipped['pgd']:.2f} of the correct answers (FGSM "
                        f"{flipped['fgsm']:.2f}); the issue aimed at {TARGET_SHARE:g} at ε = 0.1, which this "
                        "classifier resists (0.67 measured at full with 40 steps, 0.71 with a margin loss and five "
                        "random restarts: the attack is not the limit).")


@adversarial_examples.requires
def _(p):
    if len(set(p.eps_values)) < 2:
        _refuse("eps_values", "figure 20.14", "at least two different radii", repr(p.eps_values))


@adversarial_examples.plot
def _(r):
    m, a = r.metrics, r.arrays
    n = len(a["original"])
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(11, max(1.9 * n, 5.0)), layout="constrained")
        grid = fig.add_gridspec(n, 4, width_ratios=[1, 1, 1, 3.6])
        curve = fig.add_subplot(grid[:, 3])
        cells = [[fig.add_subplot(grid[i, j]) for j in range(3)] for i in range(n)]
    eps = m["eps_shown"]
    for i, row in enumerate(cells):
        drawing.image(row[0], a["original"][i], f"predicted {m['shown_clean'][i]} ({m['shown_clean_prob'][i]:.0%})",
                      cmap="gray_r", vmin=0, vmax=1, fontsize=9)
        drawing.image(row[1], MAGNIFY * a["perturbation"][i], f"change ×{MAGNIFY}", cmap="gray_r", vmin=-1,
                      vmax=1, fontsize=9)
        fooled = m["shown_adv"][i] != m["shown_labels"][i]
        drawing.image(row[2], a["perturbed"][i], f"predicted {m['shown_adv'][i]} ({m['shown_adv_prob'][i]:.0%})",
                      cmap="gray_r", vmin=0, vmax=1, fontsize=9)
        if fooled:
            row[2].title.set_color(style.EXTRA[2])
        for ax in row:
            ax.spines[:].set_visible(True)
            ax.spines[:].set_color(style.REGION)
        row[1].text(-0.12, 0.5, "+", transform=row[1].transAxes, ha="center", va="center", fontsize=14)
        row[2].text(-0.12, 0.5, "=", transform=row[2].transAxes, ha="center", va="center", fontsize=14)
    cells[0][0].text(-0.08, 1.12, "a)", transform=cells[0][0].transAxes, ha="right", va="bottom",
                     fontweight="bold", fontsize=plt.rcParams["axes.titlesize"])
    cells[-1][1].set_xlabel(f"PGD, ε = {eps:g}", fontsize=9)

    e = np.asarray(m["eps_values"])
    curve.plot(e, 100 * np.asarray(m["fgsm_accuracy"]), "o-", color=style.DATA, lw=1.8, ms=4,
               label="fast gradient sign (one step)")
    curve.plot(e, 100 * np.asarray(m["pgd_accuracy"]), "s-", color=style.MODEL, lw=1.8, ms=4,
               label=f"projected gradient descent ({m['steps']} steps)")
    curve.axvline(eps, color=style.REGION, ls="--", lw=1)
    curve.axhline(10, color=style.REGION, ls=":", lw=1)
    curve.text(e.max(), 11, "chance", ha="right", va="bottom", fontsize=8, color="gray")
    curve.set(xlabel="ε (L∞ radius, fraction of the pixel range)", ylabel="held-out accuracy (%)",
              ylim=(-2, 102), title=f"Accuracy under attack ({m['n_test']} held-out digits)")
    curve.set_title("b)", loc="left", fontweight="bold")
    curve.legend(fontsize=8, loc="upper right")
    return fig


@adversarial_examples.checks
def _(r):
    m = r.metrics
    eps = m["eps_shown"]
    strong = m["steps"] >= MIN_STEPS and m["n_correct"] >= MIN_DIGITS
    checks = [
        Check.greater("the classifier is accurate on held-out digits before any attack", m["clean_accuracy"], 0.95),
        Check.less(f"every attacked digit stays within the L∞ ball of radius ε = {eps:g} (excess, float32)",
                   m["outside_ball"], BALL_TOL),
        Check.less("... and within the pixel range [0, 1] (excess)", m["outside_range"], BALL_TOL),
    ]
    claim = f"a small change (ε = {eps:g} of the pixel range, PGD) flips most (> 50%) of the correct answers"
    if strong and eps >= MOST_EPS:
        checks.append(Check.greater(claim, m["pgd_flipped"], 0.5))
    else:
        checks.append(Check.untested(claim, f"needs ε ≥ {MOST_EPS}, ≥ {MIN_STEPS} PGD steps and ≥ {MIN_DIGITS} "
                                            "correctly classified digits"))
    claim = f"PGD flips at least as many correct answers as FGSM at ε = {eps:g}"
    checks.append(Check.greater(claim, m["pgd_flipped"] - m["fgsm_flipped"], -1e-9) if strong
                  else Check.untested(claim, f"needs ≥ {MIN_STEPS} PGD steps and ≥ {MIN_DIGITS} correct digits"))
    large = [acc for e, acc in zip(m["eps_values"], m["pgd_accuracy"]) if e >= ALL_EPS]
    claim = f"with ε ≥ {ALL_EPS:g}, PGD leaves almost no digit (< 5%) correctly classified"
    checks.append(Check.less(claim, max(large), 0.05) if strong and large
                  else Check.untested(claim, f"needs an ε ≥ {ALL_EPS:g} in eps_values, ≥ {MIN_STEPS} steps and "
                                             f"≥ {MIN_DIGITS} correct digits"))
    for name, gap in (("FGSM", m["foolbox_fgsm_gap"]), ("PGD without random start", m["foolbox_pgd_gap"])):
        claim = f"{name} equals foolbox's attack on the same model and digits (largest difference)"
        checks.append(Check.less(claim, gap, FOOLBOX_TOL) if gap is not None
                      else Check.untested(claim, "foolbox is not installed"))
    return checks
