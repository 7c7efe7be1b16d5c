"""Chapter 15: progressive growing of a GAN, 4x4 → 8x8 → 16x16 with fade-in (figure 15.9)."""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import FancyBboxPatch

from udl import style
from udl.analysis.generative import evaluate_digits
from udl.data.images import load_digits
from udl.models.progressive_gan import ProgressiveGANConfig, downsample
from udl.registry import Check, Limit, Result, figure
from udl.train.progressive_gan import digits_progressive_gan, unupsample_digits, upsample_digits

N_SHOWN = 8  # latents shown in panel d
N_EVAL = 500  # latents for the measurements
SAME_RATIO = 0.85  # same latent: squared error at most this share of another latent's (measured 0.61-0.71 at 4x4)
NEARER = 0.65  # share of pairs (i, j) where latent i's earlier image is nearer than j's (chance 1/2; 0.79 at 4x4)
MIN_STEPS = 100  # least stable steps per stage for the content and quality claims (measured from 100 to 300)
N_ALPHA = 21  # α grid of panel b


@figure("15.9", title="Progressive growing: 4x4, then 8x8, then 16x16, new layers faded in",
        caption="Progressive growing, on udl's 8x8 handwritten digits brought to 16x16 by bilinear upsampling (the "
                "book's figure used faces). a) The generator first makes 4x4 images and the discriminator judges "
                "4x4 images (real ones averaged down); after this stage has trained, both grow: the generator gets "
                "a block that doubles the resolution and the discriminator the mirrored block in front (cyan: the "
                "layers each stage adds, with the parameter counts measured from the networks). b) A new block is "
                "faded in: the output is (1 − α) times the previous stage's image, upsampled, plus α times the new "
                "block's; at α = 0 growing changes nothing, and the image changes steadily with α (right: its "
                "distance from α = 0, a straight line). c) Real digits (one per class), then the same latent "
                "variables through the generator as it was at the end of each stage: the 4x4, 8x8 and 16x16 images "
                "show the same digits, and the 16x16 image averaged down looks like the earlier ones. d) The losses "
                "during training; the grey bands are the fade-ins. e) Over 500 latents, the 16x16 image averaged "
                "down differs from the earlier stage's image of the same latent much less than from another "
                "latent's, and is nearer to it than to another latent's image for most pairs. The Fréchet "
                "distance of the final samples, brought back to 8x8 by inverting the bilinear upsampling (exact "
                "for real digits), beside the trivial model's and held-out digits'.",
        params={"tiny": dict(widths=[8, 8, 4], d_latent=4, stable_steps=30, fade_steps=20, batch_size=32, lr=5e-4),
                "full": dict(widths=[64, 32, 16], d_latent=32, stable_steps=200, fade_steps=150, batch_size=64,
                             lr=5e-4)},
        limits={"widths": Limit(1, 256, min_len=3, max_len=3), "d_latent": (1, 512),
                "stable_steps": (1, 20_000), "fade_steps": (1, 20_000), "batch_size": (2, 1024),
                "lr": (1e-6, 0.1)})
def progressive_growing(p, run):
    config = ProgressiveGANConfig(d_latent=p.d_latent, widths=tuple(p.widths))
    generators, discriminator, record = digits_progressive_gan(
        config, stable_steps=p.stable_steps, fade_steps=p.fade_steps, batch_size=p.batch_size, lr=p.lr,
        seed=run.seed, device=run.device)
    generators = [g.cpu().float() for g in generators]
    discriminator = discriminator.cpu().float()
    z = torch.randn(N_EVAL, config.d_latent, generator=run.generator(1))
    with torch.no_grad():
        images = [g(z) for g in generators]  # (N, 1, 4·2^s, 4·2^s) each
    final = images[-1]
    shuffle = torch.randperm(N_EVAL, generator=run.generator(2))
    metrics: dict = {"parameters": record["parameters"], "steps": len(record["g_loss"])}
    for k in range(len(images) - 1):  # the final image averaged down, against each earlier stage's
        low = images[k]
        down = downsample(final, low.shape[-1])
        same = float(((down - low) ** 2).mean())
        other = float(((down - low[shuffle]) ** 2).mean())
        # is the earlier image of the same latent nearer to the averaged-down one than another latent's?
        dist = torch.cdist(down.flatten(1).double(), low.flatten(1).double())  # (N, N): final i vs earlier j
        own = dist.diagonal()[:, None]  # (N, 1)
        off = ~torch.eye(N_EVAL, dtype=torch.bool)
        metrics[f"same_mse_{k}"], metrics[f"shuffled_mse_{k}"] = same, other
        metrics[f"nearer_{k}"] = float((own < dist)[off].double().mean())  # over all pairs i != j; chance 1/2
        metrics[f"identified_{k}"] = float((dist.argmin(1) == torch.arange(N_EVAL)).double().mean())

    # growing at α = 0 changes nothing: each stage's generator and the discriminator grown once more
    jumps_g, jumps_d = [], []
    x_test, y_test = load_digits("test", seed=0)
    x_real = upsample_digits(torch.from_numpy(x_test[:64]), config.max_resolution)
    one_each = upsample_digits(torch.from_numpy(x_test[[int(np.flatnonzero(y_test == c)[0]) for c in range(N_SHOWN)]]),
                               config.max_resolution)
    for k in range(len(generators) - 1):
        g = copy.deepcopy(generators[k])
        g.grow(generator=run.seed + 100 + k)
        with torch.no_grad():
            jumps_g.append(float((g(z[:64], alpha=0.0)
                                  - F.interpolate(images[k][:64], scale_factor=2, mode="nearest")).abs().max()))
    d_low = type(discriminator)(config, generator=run.seed + 200)  # a discriminator at stage 1, then grown
    d_low.grow(generator=run.seed + 201)
    d_low.alpha = 1.0
    with torch.no_grad():
        before = d_low(downsample(x_real, 8))
        d_low.grow(generator=run.seed + 202)
        jumps_d.append(float((d_low(downsample(x_real, 16), alpha=0.0) - before).abs().max()))
    metrics["grow_jump_generator"], metrics["grow_jump_discriminator"] = max(jumps_g), max(jumps_d)

    # α: the final generator between its 8x8 image upsampled (α = 0) and its 16x16 block (α = 1)
    alphas = np.linspace(0, 1, N_ALPHA)
    with torch.no_grad():
        faded = torch.stack([generators[-1](z[:N_SHOWN], alpha=float(a)) for a in alphas])  # (A, n, 1, R, R)
    step = (faded[1:] - faded[:-1]).abs().amax(dim=(2, 3, 4))  # (A − 1, n): largest pixel change per step
    span = (faded[-1] - faded[0]).abs().amax(dim=(1, 2, 3))  # (n,)
    metrics["alpha_step_max_over_bound"] = float((step / (span * (alphas[1] - alphas[0]) + 1e-12)).max())
    metrics["alpha_distance"] = (faded - faded[0]).flatten(2).norm(dim=2).mean(1).tolist()  # (A,)
    report = evaluate_digits(unupsample_digits(final), seed=run.seed)  # exact for upsampled real digits
    metrics.update(frechet=report["model"]["frechet"], frechet_trivial=report["ceiling"]["frechet"],
                   frechet_held_out=report["floor"]["frechet"], stable_steps=p.stable_steps,
                   memorisation_passes=report["model"]["memorisation_passes"])
    arrays = {f"images_{k}": images[k][:N_SHOWN, 0].numpy() for k in range(len(images))}
    arrays.update(down_8=downsample(final[:N_SHOWN], 8)[:, 0].numpy(),
                  down_4=downsample(final[:N_SHOWN], 4)[:, 0].numpy(),
                  faded=faded[:, 0, 0].numpy(), alphas=alphas,
                  d_loss=np.asarray(record["d_loss"]), g_loss=np.asarray(record["g_loss"]),
                  alpha_steps=np.asarray(record["alpha"]), stage_steps=np.asarray(record["stage"]),
                  real=one_each[:, 0].numpy())
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Digits upsampled bilinearly from 8x8 to 16x16 (faces are not available offline). "
                        f"{p.stable_steps} steps per stable phase, {p.fade_steps} per fade-in, batches of "
                        f"{p.batch_size}, Adam (0, 0.99), lr {p.lr:g}, non-saturating loss; generator widths "
                        f"{p.widths} at 4/8/16, pixel normalisation, no equalised learning rate or minibatch "
                        "standard deviation. Trained once per machine (udl.cache.trained).")


# --------------------------------------------------------------------------- drawing
def _networks(ax, params):
    """Three stages of the two networks as boxes; the layers each stage adds in cyan, with measured counts."""
    ax.set(xlim=(0, 12), ylim=(0, 6.6))
    ax.axis("off")
    sizes = [4, 8, 16]
    for stage in range(3):
        y = 5.6 - 2.1 * stage
        ax.text(0.0, y + 0.55, f"stage {stage + 1}: {sizes[stage]}x{sizes[stage]}", fontsize=8, fontweight="bold")
        x = 0.2
        ax.text(x, y, "z", fontsize=9, va="center")
        for k in range(stage + 1):  # generator blocks
            new = k == stage and stage > 0
            w = 0.45 + 0.2 * k
            ax.add_patch(FancyBboxPatch((x + 0.4 + 0.95 * k, y - w / 2), 0.7, w, boxstyle="round,pad=0.02",
                                        fc=style.MODEL if new else "#DDDDDD", ec=style.TRUTH, lw=0.8))
            ax.text(x + 0.75 + 0.95 * k, y, f"{sizes[k]}", fontsize=6.5, ha="center", va="center")
        xi = x + 0.55 + 0.95 * (stage + 1)
        ax.text(xi, y, "image", fontsize=7, va="center")
        xd = 6.3
        for j, k in enumerate(range(stage, -1, -1)):  # discriminator blocks, largest first
            new = k == stage and stage > 0
            w = 0.45 + 0.2 * k
            ax.add_patch(FancyBboxPatch((xd + 0.95 * j, y - w / 2), 0.7, w, boxstyle="round,pad=0.02",
                                        fc=style.MODEL if new else "#DDDDDD", ec=style.TRUTH, lw=0.8))
            ax.text(xd + 0.35 + 0.95 * j, y, f"{sizes[k]}", fontsize=6.5, ha="center", va="center")
        ax.text(xd + 0.95 * (stage + 1), y, "real?", fontsize=7, va="center")
        if stage < len(params):
            _, gt, dt, gn, dn = params[stage]
            extra = "" if stage == 0 else f"  (+{gn - params[stage - 1][3]:,} / +{dn - params[stage - 1][4]:,})"
            ax.text(0.2, y - 0.75, f"G {gn:,} params in {gt} tensors, D {dn:,} in {dt}{extra}", fontsize=6.5,
                    color="#444444")
    ax.text(1.6, 6.45, "generator", fontsize=8, ha="center", color="#444444")
    ax.text(7.6, 6.45, "discriminator", fontsize=8, ha="center", color="#444444")


def _row(ax, images, title):
    n = len(images)
    side = images.shape[-1]
    pad = np.full((side, n * (side + max(1, side // 8)) - max(1, side // 8)), np.nan)
    for i, img in enumerate(images):
        x0 = i * (side + max(1, side // 8))
        pad[:, x0:x0 + side] = img
    ax.imshow(np.clip(pad, 0, 1), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(title, fontsize=7.5, rotation=0, ha="right", va="center")
    for side_name in ax.spines:
        ax.spines[side_name].set_visible(False)


@progressive_growing.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(12, 8.4), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.05])
        left, right = top.subfigures(1, 2, width_ratios=[1.1, 1])
        ax_net = left.subplots()
        axes_b = right.subplots(2, 1, height_ratios=[1, 1.1])
        bl, br = bottom.subfigures(1, 2, width_ratios=[1.25, 1])
        rows = bl.subplots(6, 1)
        ax_loss, ax_e = br.subplots(2, 1)
    _networks(ax_net, m["parameters"])

    faded = a["faded"]  # (A, R, R): one latent
    shown = [0, 5, 10, 15, 20]
    strip = np.concatenate([np.pad(faded[i], ((0, 0), (0, 2)), constant_values=np.nan) for i in shown], 1)
    axes_b[0].imshow(np.clip(strip, 0, 1), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes_b[0].set_xticks([8 + 18 * i for i in range(len(shown))], [f"α = {a['alphas'][i]:.2f}" for i in shown],
                         fontsize=7)
    axes_b[0].set_yticks([])
    axes_b[0].set_title("fade-in of the 16x16 block (one latent)", fontsize=8, loc="left")
    axes_b[1].plot(a["alphas"], m["alpha_distance"], "o-", color=style.MODEL, ms=3)
    axes_b[1].set(xlabel="α", ylabel="‖x(α) − x(0)‖, mean of 8")

    steps = np.arange(1, len(a["g_loss"]) + 1)
    fading = a["alpha_steps"] < 1
    ax_loss.fill_between(steps, 0, 1, where=fading, color=style.REGION, alpha=0.5, lw=0,
                         transform=ax_loss.get_xaxis_transform(), label="fade-in")
    ax_loss.plot(steps, a["d_loss"], color=style.DATA, lw=0.6, label="discriminator")
    ax_loss.plot(steps, a["g_loss"], color=style.MODEL, lw=0.6, label="generator")
    for s in (1, 2):
        start = int(np.argmax(a["stage_steps"] == s)) + 1
        ax_loss.text(start, 0.97, f" {4 * 2 ** s}x{4 * 2 ** s}", transform=ax_loss.get_xaxis_transform(),
                     fontsize=7, va="top")
    ax_loss.text(1, 0.97, " 4x4", transform=ax_loss.get_xaxis_transform(), fontsize=7, va="top")
    ax_loss.set(xlabel="step", ylabel="loss")
    ax_loss.legend(fontsize=7, loc="lower left", ncol=3)

    _row(rows[0], a["real"], "real digits\n(16x16)")
    _row(rows[1], a["images_0"], "stage 1\n4x4")
    _row(rows[2], a["images_1"], "stage 2\n8x8")
    _row(rows[3], a["images_2"], "stage 3\n16x16")
    _row(rows[4], a["down_8"], "16x16 averaged\nto 8x8")
    _row(rows[5], a["down_4"], "16x16 averaged\nto 4x4")
    rows[0].set_title("same latent per column", fontsize=8, loc="left")

    labels = ["4x4", "8x8"]
    x = np.arange(2)
    same = [m["same_mse_0"], m["same_mse_1"]]
    other = [m["shuffled_mse_0"], m["shuffled_mse_1"]]
    ax_e.bar(x - 0.2, same, 0.4, color=style.MODEL, label="same latent")
    ax_e.bar(x + 0.2, other, 0.4, color=style.REGION, label="another latent")
    ax_e.set_xticks(x, [f"16x16 averaged to {s}\nvs stage {k + 1}" for k, s in enumerate(labels)], fontsize=7)
    ax_e.set(ylabel="mean squared difference")
    ax_e.legend(fontsize=7)
    ax_e.set_title(f"same latent nearer than another: {m['nearer_0']:.0%} (4x4), {m['nearer_1']:.0%} (8x8) of pairs\n"
                   f"Fréchet (16x16 → 8x8) {m['frechet']:.1f}; trivial model {m['frechet_trivial']:.1f}, held-out "
                   f"digits {m['frechet_held_out']:.1f}", fontsize=7.5, loc="right")
    style.panel_labels(np.array([ax_net, axes_b[0], rows[0], ax_loss, ax_e], dtype=object))
    return fig


@progressive_growing.checks
def _(r):
    m = r.metrics
    params = m["parameters"]
    checks = [Check.holds("each stage adds layers to both networks (parameter tensors: generator, discriminator)",
                          all(b[1] > a[1] and b[2] > a[2] for a, b in zip(params[:-1], params[1:]))
                          and len(params) == 3, [(p[1], p[2]) for p in params], "strictly rising, 3 stages"),
              Check.less("growing changes nothing at α = 0: generator image equals the previous one upsampled",
                         m["grow_jump_generator"], 1e-6),
              Check.less("growing changes nothing at α = 0: discriminator logit equals the previous one's",
                         m["grow_jump_discriminator"], 1e-5),
              Check.less("α-blending is continuous: no step in α moves a pixel more than Δα times its full range",
                         m["alpha_step_max_over_bound"], 1.0 + 1e-4)]
    for k, side in enumerate((4, 8)):
        claims = [(f"the same latent gives the same content: the 16x16 image averaged to {side}x{side} differs from "
                   f"stage {k + 1}'s by less than {SAME_RATIO} of another latent's (squared error ratio)",
                   m[f"same_mse_{k}"] / m[f"shuffled_mse_{k}"], SAME_RATIO, Check.less),
                  (f"the 16x16 image averaged to {side}x{side} is nearer to the same latent's stage-{k + 1} image "
                   f"than to another latent's for over {NEARER:.0%} of pairs (chance 50%)", m[f"nearer_{k}"], NEARER,
                   Check.greater)]
        for claim, value, bound, kind in claims:
            if m["stable_steps"] < MIN_STEPS:
                checks.append(Check.untested(claim, f"needs >= {MIN_STEPS} steps per stable phase"))
            else:
                checks.append(kind(claim, value, bound))
    claim = "the final samples (brought to 8x8) are closer to the digits than the trivial model's (Fréchet)"
    if m["stable_steps"] < MIN_STEPS:
        checks.append(Check.untested(claim, f"needs >= {MIN_STEPS} steps per stable phase"))
    else:
        checks.append(Check.less(claim, m["frechet"] / m["frechet_trivial"], 1.0))
    checks.append(Check.holds("the final samples are not copies of training digits (udl's memorisation test)",
                              m["memorisation_passes"], m["memorisation_passes"]))
    return checks
