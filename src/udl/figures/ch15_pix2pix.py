"""Chapter 15: Pix2Pix colourising a photograph it never saw (figure 15.16)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import style
from udl.analysis.colour import colourfulness
from udl.analysis.receptive_field import gradient_support, layer_geometry, receptive_field_interval, support_interval
from udl.data.images import load_photo
from udl.data.photos import photo_patches, to_grey
from udl.models.pix2pix import patch_map_size, patch_receptive_field
from udl.registry import Check, Limit, Result, figure
from udl.train.pix2pix import HELD_OUT_PHOTO, TRAIN_PHOTOS, photo_colouriser

MIN_STEPS = 300  # the least training the claims about the trained colourisers are tested with
N_SHOWN = 6  # held-out patches in panel b


def _held_out_photo(downscale: int, levels: int) -> torch.Tensor:
    """The held-out photograph as (1, 3, H, W), cropped to sides the U-Net takes (multiples of 2^(levels−1))."""
    img = torch.from_numpy(load_photo(HELD_OUT_PHOTO, downscale=downscale)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    m = 2 ** (levels - 1)
    return img[:, :, :img.shape[2] // m * m, :img.shape[3] // m * m].contiguous()


# =========================================================================== 15.16
@figure("15.16", title="Pix2Pix: a U-Net colourises grey photographs, with an L1 loss and a patch discriminator",
        caption="Colourisation as image-to-image translation. A U-Net (udl's, 'same' padding) takes the grey version "
                "of a photograph and predicts its colours; it keeps the grey level it is given and chooses only the "
                "chroma. It is trained on patches of six photographs (a temple, a flower, an astronaut, a cup of "
                "coffee, a rocket launch, a motorcycle), either with the L1 distance to the true colours alone or "
                "with that loss plus a conditional patch discriminator, which sees the grey patch stacked with the "
                "true or the predicted colours and returns a map of verdicts, one for each region of the input its "
                "units see. a) A photograph neither network saw, the cat: its grey version, the two colourisations "
                "and the truth. b) Held-out patches of it. c) Mean absolute error on held-out patches against two "
                "trivial colourisers: the grey image copied to the three channels, and every pixel given the "
                "training patches' mean colour. d) Colourfulness (Hasler and Süsstrunk's measure) of the outputs "
                "and of the truth. e) The discriminator's patch map: the pixels that move one of its logits "
                "(gradient of the logit with respect to the input, over random inputs) fill exactly the square that "
                "the closed-form receptive field 9·2^n − 2 predicts.",
        params={"tiny": dict(size=16, n_train=128, downscale=8, levels=2, width=4, n_layers=1, l1_weight=100.0,
                             steps=6, lr=2e-4, ema=0.95, n_test=16),
                "full": dict(size=32, n_train=4000, downscale=4, levels=3, width=12, n_layers=1, l1_weight=100.0,
                             steps=400, lr=2e-4, ema=0.95, n_test=256)},
        # patches and networks a CPU trains in minutes; the discriminator's map needs at least one logit
        limits={"size": Limit(8, 64), "n_train": (32, 20_000), "downscale": (2, 8), "levels": (1, 4),
                "width": (2, 64), "n_layers": (1, 3), "l1_weight": (0.01, 1000.0),
                "steps": (1, 20_000), "lr": (1e-6, 0.01), "ema": (0.0, 0.999),
                "n_test": (N_SHOWN, 4096)})
def pix2pix(p, run):
    device = run.device
    settings = dict(size=p.size, n_train=p.n_train, downscale=p.downscale, levels=p.levels, width=p.width,
                    n_layers=p.n_layers, l1_weight=p.l1_weight, steps=p.steps, lr=p.lr, ema=p.ema, seed=run.seed,
                    device=device)
    plain, record_plain = photo_colouriser(adversarial=False, **settings)
    both, record_both = photo_colouriser(adversarial=True, **settings)
    g_plain, g_both = plain["colouriser"].cpu().eval(), both["colouriser"].cpu().eval()

    # ---- held-out patches of the photograph no network saw, and the trivial colourisers
    train = photo_patches(list(TRAIN_PHOTOS), p.size, p.n_train, seed=run.seed, downscale=p.downscale)
    test = photo_patches([HELD_OUT_PHOTO], p.size, p.n_test, seed=run.seed + 1, downscale=p.downscale)
    grey = to_grey(test)
    with torch.no_grad():
        out_plain, out_both = g_plain(grey), g_both(grey)
    mean_colour = train.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)  # the training patches' mean colour, everywhere
    l1 = {"grey copy": float((grey.expand(-1, 3, -1, -1) - test).abs().mean()),
          "mean colour": float((mean_colour - test).abs().mean()),
          "L1 only": float((out_plain - test).abs().mean()), "L1 + adversarial": float((out_both - test).abs().mean())}
    colourful = {"truth": float(colourfulness(test).mean()), "L1 only": float(colourfulness(out_plain).mean()),
                 "L1 + adversarial": float(colourfulness(out_both).mean())}

    # ---- the whole held-out photograph
    photo = _held_out_photo(p.downscale, p.levels)
    with torch.no_grad():
        photo_grey = to_grey(photo)
        photo_plain, photo_both = g_plain(photo_grey), g_both(photo_grey)

    # ---- the discriminator: a map of logits, each seeing a 9·2^n − 2 square (measured by gradient support)
    d = both["discriminator"].cpu().eval()
    with torch.no_grad():
        logit_map = d(test[:2], grey[:2])  # (2, 1, h, w)
    side = max(p.size, patch_receptive_field(p.n_layers) + 2 ** (p.n_layers + 2))  # room for an interior logit
    centre = (patch_map_size(side, p.n_layers) - 1) // 2
    mask = gradient_support(d, (4, side, side), (0, centre, centre), n_probes=8, generator=run.generator(3))
    predicted = receptive_field_interval(layer_geometry(d), centre)
    clipped = (max(predicted[0], 0), min(predicted[1], side - 1))
    measured = support_interval(mask)
    accuracy = {}
    with torch.no_grad():
        for name, fake in (("L1 only", out_plain), ("L1 + adversarial", out_both)):
            f_real, f_fake = d(test, grey), d(fake, grey)
            accuracy[name] = float(((f_real > 0).sum() + (f_fake < 0).sum()) / (f_real.numel() + f_fake.numel()))

    metrics = {
        "steps": p.steps, "min_steps": MIN_STEPS, "train_photos": list(TRAIN_PHOTOS), "held_out_photo": HELD_OUT_PHOTO,
        "n_test": p.n_test, **{f"l1_{k.replace(' ', '_').replace('+', 'plus')}": v for k, v in l1.items()},
        **{f"colourfulness_{k.replace(' ', '_').replace('+', 'plus')}": v for k, v in colourful.items()},
        "final_train_l1_plain": float(np.mean(record_plain["l1"][-max(1, p.steps // 10):])),
        "final_train_l1_adversarial": float(np.mean(record_both["l1"][-max(1, p.steps // 10):])),
        "photo_l1_plain": float((photo_plain - photo).abs().mean()),
        "photo_l1_adversarial": float((photo_both - photo).abs().mean()),
        "photo_l1_grey": float((photo_grey.expand(-1, 3, -1, -1) - photo).abs().mean()),
        "logit_map_shape": list(logit_map.shape),
        "expected_map_shape": [2, 1, patch_map_size(p.size, p.n_layers), patch_map_size(p.size, p.n_layers)],
        "receptive_field_closed_form": patch_receptive_field(p.n_layers), "probe_side": side, "probe_unit": centre,
        "support_measured": [list(b) for b in measured], "support_predicted": [list(clipped), list(clipped)],
        "support_side": measured[0][1] - measured[0][0] + 1,
        "support_pixels": int(mask.sum()), "interior": predicted[0] >= 0 and predicted[1] <= side - 1,
        "discriminator_accuracy_vs_plain": accuracy["L1 only"],
        "discriminator_accuracy_vs_adversarial": accuracy["L1 + adversarial"],
    }
    shown = torch.stack([grey[:N_SHOWN].expand(-1, 3, -1, -1), out_plain[:N_SHOWN], out_both[:N_SHOWN],
                         test[:N_SHOWN]])  # (4, N_SHOWN, 3, S, S)
    arrays = {"photo": torch.cat([photo_grey.expand(-1, 3, -1, -1), photo_plain, photo_both, photo]).numpy(),
              "patches": shown.numpy(), "mask": mask.numpy(), "probe": photo_grey[0, 0, :side, :side].numpy(),
              "logit_map": logit_map[0, 0].numpy(),
              "l1_plain": np.asarray(record_plain["l1"], np.float32),
              "l1_adversarial": np.asarray(record_both["l1"], np.float32)}
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Trained on {p.n_train} patches of {p.size} x {p.size} pixels from six photographs shrunk "
                        f"{p.downscale}x ({', '.join(TRAIN_PHOTOS)}), {p.steps} Adam steps of 32 patches "
                        f"(learning rate {p.lr:g}, β = (0.5, 0.999)), λ = {p.l1_weight:g}; the colouriser's weights "
                        f"are averaged over the steps (decay {p.ema:g}). U-Net of {p.levels} levels starting at "
                        f"{p.width} channels; discriminator of {p.n_layers} stride-2 layers (receptive field "
                        f"{patch_receptive_field(p.n_layers)} pixels; the book's 70 x 70 has 3, for 256-pixel "
                        f"images). Held out: {p.n_test} patches and the whole of '{HELD_OUT_PHOTO}'. Isola et al. "
                        "trained their colouriser on ImageNet photographs of 256 x 256 pixels; this one predicts RGB "
                        "offsets that keep the grey level. Both models trained once per machine and cached. "
                        f"Colourfulness of the held-out patches: truth {colourful['truth']:.1f}, L1 alone "
                        f"{colourful['L1 only']:.1f}, with the adversary {colourful['L1 + adversarial']:.1f}"
                        + (": learnt from six photographs, the colourisers paint the cat more boldly than it is, the "
                           "adversarial one the more so, and its L1 error is the higher (the price of committing to "
                           "a colour)." if colourful["L1 + adversarial"] > colourful["L1 only"] > colourful["truth"]
                           and l1["L1 + adversarial"] > l1["L1 only"] else "."))


@pix2pix.requires
def _(p):
    halvings = 2 ** (p.levels - 1)  # the U-Net halves the patch levels − 1 times
    if p.size % halvings:
        raise ValueError(f"The 'size' parameter of figure 15.16 must be a multiple of 2^(levels − 1) = {halvings}. "
                         f"Got {p.size} instead.")
    smallest = 3 * 2 ** p.n_layers  # the discriminator's map needs at least one logit
    if p.size < smallest:
        raise ValueError(f"The 'size' parameter of figure 15.16 must be at least 3·2^n_layers = {smallest}. "
                         f"Got {p.size} instead.")
    shortest = min(min(load_photo(name, downscale=p.downscale).shape[:2]) for name in (*TRAIN_PHOTOS, HELD_OUT_PHOTO))
    if p.size > shortest:
        raise ValueError(f"The 'size' parameter of figure 15.16 must be at most {shortest}, the shortest side of the "
                         f"photographs shrunk {p.downscale}x. Got {p.size} instead.")


@pix2pix.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig = plt.figure(figsize=(13, 6.6), layout="constrained")
    grid = fig.add_gridspec(2, 4, height_ratios=[0.8, 1.0])
    names = ["grey input", "L1 only", "L1 + adversarial", "truth"]
    for k, name in enumerate(names):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(np.clip(a["photo"][k].transpose(1, 2, 0), 0, 1), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(("a) held-out photograph: " if k == 0 else "") + name, loc="left",
                     fontweight="bold" if k == 0 else None, fontsize=10)

    ax = fig.add_subplot(grid[1, 0])
    patches = a["patches"]  # (4, n, 3, S, S)
    rows, n, _, s, _ = patches.shape
    mosaic = np.ones((rows * (s + 2) - 2, n * (s + 2) - 2, 3))
    for i in range(rows):
        for j in range(n):
            mosaic[i * (s + 2):i * (s + 2) + s, j * (s + 2):j * (s + 2) + s] = patches[i, j].transpose(1, 2, 0)
    ax.imshow(np.clip(mosaic, 0, 1), interpolation="nearest")
    ax.set_yticks([s / 2 + i * (s + 2) for i in range(rows)], ["grey", "L1", "L1 + adv.", "truth"])
    ax.set_xticks([])
    ax.set_title("b) held-out patches", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[1, 1])
    labels = ["grey\ncopy", "mean\ncolour", "L1\nonly", "L1 +\nadversarial"]
    values = [m["l1_grey_copy"], m["l1_mean_colour"], m["l1_L1_only"], m["l1_L1_plus_adversarial"]]
    bars = ax.bar(labels, values, color=[style.REGION, style.REGION, style.MODEL, style.MODEL])
    bars[2].set_alpha(0.55)
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("mean |x̂ − x| on held-out patches")
    ax.set_ylim(0, 1.2 * max(values))
    ax.set_title("c) held-out error", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[1, 2])
    labels = ["L1\nonly", "L1 +\nadversarial", "truth"]
    values = [m["colourfulness_L1_only"], m["colourfulness_L1_plus_adversarial"], m["colourfulness_truth"]]
    bars = ax.bar(labels, values, color=[style.MODEL, style.MODEL, style.TRUTH])
    bars[0].set_alpha(0.55)
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("colourfulness (Hasler & Süsstrunk), mean per patch")
    ax.set_ylim(0, 1.2 * max(max(values), 1e-6))
    ax.set_title("d) how colourful", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[1, 3])
    mask = a["mask"]
    side = mask.shape[0]
    probe = np.zeros((side, side))
    probe[:a["probe"].shape[0], :a["probe"].shape[1]] = a["probe"]
    ax.imshow(probe, cmap="gray", vmin=0, vmax=1)
    ax.imshow(np.where(mask, 1.0, np.nan), cmap="cool", alpha=0.45, vmin=0, vmax=1)
    (lo, hi), _ = m["support_predicted"]
    ax.add_patch(plt.Rectangle((lo - 0.5, lo - 0.5), hi - lo + 1, hi - lo + 1, fill=False, ec=style.TRUTH, lw=1.5,
                               ls="--"))
    ax.set_axis_off()
    ax.set_title(f"e) one logit of the patch map sees\n{m['support_side']} x {m['support_side']} pixels "
                 f"(colour: gradient ≠ 0;\ndashed: closed form, {m['receptive_field_closed_form']})", loc="left",
                 fontweight="bold", fontsize=9)
    return fig


@pix2pix.checks
def _(r):
    m = r.metrics
    checks = [
        Check.equal("the discriminator returns a map of logits, ⌊s/2^n⌋ − 2 on a side",
                    m["logit_map_shape"], m["expected_map_shape"]),
        Check.equal("the pixels that move one logit (gradient support) fill the closed-form receptive field",
                    m["support_measured"], m["support_predicted"]),
        Check.equal("... every pixel of that square, none outside",
                    m["support_pixels"], (m["support_predicted"][0][1] - m["support_predicted"][0][0] + 1) ** 2),
    ]
    if m["interior"]:
        checks.append(Check.equal("an interior logit sees a square of side 9·2^n − 2", m["support_side"],
                                  m["receptive_field_closed_form"]))
    else:
        checks.append(Check.untested("an interior logit sees a square of side 9·2^n − 2",
                                     "the probe input is smaller than the receptive field"))
    trained = [
        ("held-out L1 of the L1 colouriser is below the grey copy's", "l1_L1_only", "l1_grey_copy"),
        ("held-out L1 of the L1 colouriser is below the mean colour's", "l1_L1_only", "l1_mean_colour"),
        ("held-out L1 of the adversarial colouriser is below the grey copy's", "l1_L1_plus_adversarial",
         "l1_grey_copy"),
    ]
    colourful_claim = "the adversarial term makes the held-out colourisation more colourful than L1 alone"
    if m["steps"] < MIN_STEPS:
        why = f"needs at least {MIN_STEPS} training steps"
        checks += [Check.untested(claim, why) for claim, _, _ in trained]
        checks.append(Check.untested(colourful_claim, why))
    else:
        checks += [Check.less(claim, m[a], m[b]) for claim, a, b in trained]
        checks.append(Check.greater(colourful_claim, m["colourfulness_L1_plus_adversarial"],
                                    m["colourfulness_L1_only"]))
    return checks
