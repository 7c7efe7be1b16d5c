"""Chapter 15, StyleGAN: a style-based generator trained on digits, its style mixing and its noise (figure 15.19)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from udl import drawing, style
from udl.analysis.generative import evaluate_digits
from udl.analysis.stylegan import mixing_classes, noise_change_bands
from udl.models.stylegan import StyleGANConfig
from udl.registry import Check, Limit, Result, figure
from udl.train.stylegan import digits_stylegan

MIN_STEPS = 1000  # the least training the claims about a trained generator are tested with
MIN_PAIRS = 100  # ... and the least pairs of latents they are measured on
CUTOFF = 0.25  # cycles per pixel between coarse and fine detail (finer than 4 pixels)
MOMENT_TOL = 1e-4  # AdaIN's output moments equal the style's to this (float32)
COARSE_LAYERS = 2  # the layers styled by the coarse latent in panels c and e: the two at 4x4
N_ROWS, N_COLS = 5, 6  # the style-mixing grid: coarse sources x fine sources
N_NOISE = 6  # noise resamples of one image shown
N_NOISE_SD = 200  # ... and drawn for the map of the pixels' standard deviation


@torch.no_grad()
def _adain_moments(model, z: torch.Tensor, noise: list[torch.Tensor]) -> float:
    """The largest difference of each AdaIN output channel's mean and sd from β and |γ|·√(σ²/(σ² + ε))."""
    seen = []
    hooks = [layer.adain.register_forward_hook(lambda m, args, out: seen.append((m, args, out)))
             for layer in model.layers]
    try:
        model(z, noise)
    finally:
        for hook in hooks:
            hook.remove()
    worst = 0.0
    for module, (h, w), out in seen:
        gamma, beta = module.style(w)  # (B, C)
        var = h.double().var(dim=(2, 3), unbiased=False)
        expected_sd = gamma.double().abs() * torch.sqrt(var / (var + module.eps))
        worst = max(worst, float((out.double().mean(dim=(2, 3)) - beta.double()).abs().max()),
                    float((out.double().std(dim=(2, 3), unbiased=False) - expected_sd).abs().max()))
    return worst


# =========================================================================== 15.19
@figure("15.19", title="StyleGAN: a mapping network, a learned constant, styles per layer and noise",
        caption="A style-based generator trained on scikit-learn's 8x8 digits. a) Its pipeline: a learned constant "
                "4x4 representation goes through layers of convolution, each followed by added noise (a fresh "
                "Gaussian image scaled by a learned amount ψ per channel, top row) and adaptive instance "
                "normalisation (AdaIN), which sets each channel's mean and standard deviation from the style w; "
                "w comes from the latent z through a fully connected mapping network (bottom row); the 4x4 maps are "
                "upsampled to 8x8 and turned into the image. The numbers are the trained |ψ| of each layer. "
                "b) Samples. c) Style mixing: each image takes the styles of its 4x4 layers from the digit at the "
                "left of its row and those of its 8x8 layers from the digit at the top of its column (the same "
                "noise everywhere). The class goes with the coarse style far more often than with the fine one "
                "(e); the fine style changes the stroke. "
                "d) One latent with its noise drawn again: the digit stays; the maps give each pixel's mean "
                "and standard deviation over 200 noise draws, where the noise acts and how little (the scale). "
                "e) For pairs of latents whose digits the independent classifier reads differently, the share "
                "of mixed digits read as the coarse source's class and as the fine source's, as more layers take "
                "the coarse style. f) The change made by new noise and by a new latent: the share of each "
                "above a spatial frequency of 1/4 cycle per pixel, and its size. g) The Fréchet distance of "
                "samples beside held-out real digits and a trivial model.",
        params={"tiny": dict(steps=20, batch_size=32, channels=[8, 4], d_style=8, mapping_depth=2, d_width=8,
                             p_mix=0.9, lr=1e-3, n_generated=40, n_pairs=40),
                "full": dict(steps=1500, batch_size=64, channels=[32, 16], d_style=32, mapping_depth=4, d_width=32,
                             p_mix=0.9, lr=1e-3, n_generated=1000, n_pairs=1000)},
        # a generator a CPU trains in about a minute; image counts bounded by memory
        limits={"steps": (1, 50_000), "batch_size": (2, 1024), "channels": Limit(1, 256, min_len=2, max_len=2),
                "d_style": (1, 512), "mapping_depth": (1, 8), "d_width": (1, 256), "p_mix": (0.0, 1.0),
                "lr": (1e-6, 1e-1), "n_generated": (4, 20_000), "n_pairs": (1, 20_000)})
def stylegan(p, run):
    config = StyleGANConfig.digits(d_latent=p.d_style, d_style=p.d_style, mapping_depth=p.mapping_depth,
                                   channels=tuple(p.channels))
    model, record = digits_stylegan(config, steps=p.steps, batch_size=p.batch_size, p_mix=p.p_mix, lr=p.lr,
                                    d_width=p.d_width, seed=run.seed, device=run.device)
    model = model.cpu()

    # ---- samples and their quality
    samples = model.sample(p.n_generated, generator=run.generator(1))
    report = evaluate_digits(samples, seed=run.seed)

    # ---- style mixing: the grid, and the classes of many mixed pairs
    sweep = [mixing_classes(model, p.n_pairs, crossover=k, generator=run.generator(2))  # the same pairs each time
             for k in range(1, model.n_styles)]
    mixing = sweep[COARSE_LAYERS - 1]
    g = run.generator(3)
    z_rows, z_cols = model.latent(N_ROWS, generator=g), model.latent(N_COLS, generator=g)
    one_noise = model.draw_noise(1, generator=g)
    with torch.no_grad():
        rows = model(z_rows, [n.expand(N_ROWS, -1, -1, -1) for n in one_noise])
        cols = model(z_cols, [n.expand(N_COLS, -1, -1, -1) for n in one_noise])
        pairs = [(i, j) for i in range(N_ROWS) for j in range(N_COLS)]
        za, zb = z_rows[[i for i, _ in pairs]], z_cols[[j for _, j in pairs]]
        grid = model.mix(za, zb, [n.expand(len(pairs), -1, -1, -1) for n in one_noise])

    # ---- noise: one latent, new noise each time; and the change by frequency band
    bands = noise_change_bands(model, p.n_pairs, cutoff=CUTOFF, generator=run.generator(4))
    g = run.generator(5)
    z_one = model.latent(1, generator=g)
    with torch.no_grad():
        resampled = model(z_one.expand(N_NOISE_SD, -1), model.draw_noise(N_NOISE_SD, generator=g))
    pixel_sd, pixel_mean = resampled.std(0)[0], resampled.mean(0)[0]  # (8, 8) each

    # ---- AdaIN, measured on the trained network: each channel's moments are the style's
    g = run.generator(6)
    z_check = model.latent(16, generator=g)
    moment_error = _adain_moments(model, z_check, model.draw_noise(16, generator=g))
    psi = [float(layer.noise.psi.detach().abs().mean()) for layer in model.layers]

    metrics = {
        "steps": len(record["g_loss"]), "parameters": sum(q.numel() for q in model.parameters()),
        "final_d_loss": float(np.mean(record["d_loss"][-max(1, len(record["d_loss"]) // 20):])),
        "final_g_loss": float(np.mean(record["g_loss"][-max(1, len(record["g_loss"]) // 20):])),
        "coarse_share": mixing["coarse_share"], "fine_share": mixing["fine_share"],
        "other_share": mixing["other_share"], "mixing_pairs": mixing["pairs"], "pairs_drawn": p.n_pairs,
        "coarse_layers": COARSE_LAYERS, "crossovers": list(range(1, model.n_styles)),
        "coarse_share_by_crossover": [m["coarse_share"] for m in sweep],
        "fine_share_by_crossover": [m["fine_share"] for m in sweep],
        "noise_energy": bands["noise_energy"], "style_energy": bands["style_energy"],
        "noise_high_share": bands["noise_high_share"], "style_high_share": bands["style_high_share"],
        "cutoff": CUTOFF, "adain_moment_error": moment_error, "psi": psi, "resolutions": list(model.resolutions),
        "frechet": report["model"]["frechet"], "frechet_floor": report["floor"]["frechet"],
        "frechet_ceiling": report["ceiling"]["frechet"], "precision": report["model"]["precision"],
        "recall": report["model"]["recall"], "memorisation_passes": report["model"]["memorisation_passes"],
        "memorisation_p": report["model"]["memorisation_p"], "evaluated": report["floor"]["count"],
        "min_steps": MIN_STEPS,
    }
    arrays = {"samples": samples[:40, 0].numpy(), "rows": rows[:, 0].numpy(), "cols": cols[:, 0].numpy(),
              "grid": grid[:, 0].numpy(), "resampled": resampled[:N_NOISE, 0].numpy(),
              "pixel_sd": pixel_sd.numpy(), "pixel_mean": pixel_mean.numpy(),
              "d_loss": np.asarray(record["d_loss"], dtype=np.float32),
              "g_loss": np.asarray(record["g_loss"], dtype=np.float32)}
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Trained here on the 1,438 training digits (8x8, the book's faces are 1024x1024): "
                        f"{p.steps} steps of {p.batch_size} images, non-saturating losses, Adam (lr {p.lr:g}, "
                        f"β = (0, 0.99)), DCGAN's discriminator (width {p.d_width}), style-mixing "
                        f"regularisation for {p.p_mix:.0%} of the generated images. Generator: z and w of "
                        f"{p.d_style}, a mapping network of {p.mapping_depth} layers, {p.channels[0]} channels "
                        f"at 4x4 and {p.channels[1]} at 8x8, AdaIN as in StyleGAN 1, bilinear upsampling; no "
                        "equalised learning rate, truncation or progressive growing. Cached once per machine.")


def _diagram(ax, psi: list[float]) -> None:
    """The pipeline of fig. 15.19: noise on top, the synthesis network in the middle, the mapping at the bottom."""
    drawing.frame(ax, (-0.6, 13.6), (-1.2, 3.75))
    y_top, y_mid, y_bottom = 3.3, 1.6, -0.2
    drawing.box(ax, 0.3, y_mid, 0.9, 0.9, "const\n4x4", face=style.REGION, fontsize=7)
    stages = ["", "conv", "up ×2\nconv", "conv"]
    x = 0.3
    for i, (label, value) in enumerate(zip(stages, psi)):
        if label:
            x_conv = x + 1.3
            drawing.arrow(ax, (x + 0.5, y_mid), (x_conv - 0.55, y_mid))
            drawing.box(ax, x_conv, y_mid, 1.0, 0.8, label, face="white", edge="black", fontsize=6.5)
            x = x_conv
        x_add = x + 1.1
        drawing.arrow(ax, (x + 0.5, y_mid), (x_add - 0.2, y_mid))
        drawing.node(ax, (x_add, y_mid), "+", r=0.18, fontsize=9)
        drawing.box(ax, x_add, y_top, 0.9, 0.55, f"z•  ψ {value:.2f}", face=drawing.light(style.DATA, 0.35),
                    fontsize=6.5)
        drawing.arrow(ax, (x_add, y_top - 0.28), (x_add, y_mid + 0.2))
        x_norm = x_add + 1.0
        drawing.arrow(ax, (x_add + 0.18, y_mid), (x_norm - 0.45, y_mid))
        drawing.box(ax, x_norm, y_mid, 0.9, 0.8, "AdaIN", face=drawing.light(style.MODEL, 0.35), edge=style.MODEL,
                    fontsize=6.5)
        drawing.arrow(ax, (x_norm, y_bottom + 0.3), (x_norm, y_mid - 0.42), color=style.MODEL, text=f"A{i + 1}",
                      fontsize=6)
        x = x_norm - 0.05
    drawing.arrow(ax, (x + 0.5, y_mid), (x + 1.2, y_mid))
    drawing.box(ax, x + 1.8, y_mid, 1.1, 0.9, "1x1 conv\nsigmoid\n→ image", face="white", edge="black", fontsize=6)
    drawing.box(ax, 0.3, y_bottom, 0.8, 0.6, "z", face="white", edge="black", fontsize=8)
    drawing.arrow(ax, (0.7, y_bottom), (1.3, y_bottom))
    drawing.box(ax, 2.3, y_bottom, 2.0, 0.6, "mapping\n(fully connected)", face="white", edge="black", fontsize=6.5)
    drawing.arrow(ax, (3.3, y_bottom), (3.9, y_bottom))
    drawing.box(ax, 4.2, y_bottom, 0.6, 0.6, "w", face=drawing.light(style.MODEL, 0.35), edge=style.MODEL, fontsize=8)
    ax.plot([4.5, x], [y_bottom, y_bottom], color=style.MODEL, lw=1.0)
    ax.text(6.8, -0.95, "w sets the mean and scale of every channel (A: a learned affine map per layer)",
            fontsize=6.5, ha="center", color="0.3")


@stylegan.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig = plt.figure(figsize=(13, 10), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[1.25, 1.3, 1.0], width_ratios=[1.0, 1.1, 1.0])
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")

    ax = fig.add_subplot(grid[0, :])
    _diagram(ax, m["psi"])
    ax.set_title("a) the generator", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[1, 0])
    ax.imshow(drawing.mosaic(a["samples"], 5, 8), cmap=cmap, vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("b) samples", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[1, 1])
    rows, cols, mixed = a["rows"], a["cols"], a["grid"]
    n_rows, n_cols = len(rows), len(cols)
    table = np.full((n_rows + 1, n_cols + 1, 8, 8), np.nan)
    table[0, 1:], table[1:, 0] = cols, rows
    table[1:, 1:] = mixed.reshape(n_rows, n_cols, 8, 8)
    ax.imshow(drawing.mosaic(table.reshape(-1, 8, 8), n_rows + 1, n_cols + 1), cmap=cmap, vmin=0, vmax=1)
    ax.axhline(8.5, color=style.MODEL, lw=1.2)
    ax.axvline(8.5, color=style.MODEL, lw=1.2)
    ax.set_xticks([9 * (j + 1) + 3.5 for j in range(n_cols)], [""] * n_cols)
    ax.set_yticks([9 * (i + 1) + 3.5 for i in range(n_rows)], [""] * n_rows)
    ax.tick_params(length=0)
    ax.set_xlabel("fine styles (8x8 layers): from the top row")
    ax.set_ylabel("coarse styles (4x4 layers): from the left column")
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title("c) style mixing", loc="left", fontweight="bold")

    inner = grid[1, 2].subgridspec(2, 2, height_ratios=[1.0, 1.6])
    ax = fig.add_subplot(inner[0, :])
    strip = a["resampled"]
    ax.imshow(drawing.mosaic(strip, 1, len(strip)), cmap=cmap, vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("d) one latent, the noise drawn again", loc="left", fontweight="bold")
    ax = fig.add_subplot(inner[1, 0])
    drawing.image(ax, a["pixel_mean"], "mean over noise draws", cmap="gray_r", vmin=0, vmax=1)
    ax = fig.add_subplot(inner[1, 1])
    sd = a["pixel_sd"]
    shown = drawing.image(ax, sd, "standard deviation", cmap="magma", vmin=0, vmax=max(float(sd.max()), 1e-6))
    fig.colorbar(shown, ax=ax, shrink=0.8)

    ax = fig.add_subplot(grid[2, 0])
    ks = np.asarray(m["crossovers"])
    coarse, fine = np.asarray(m["coarse_share_by_crossover"]), np.asarray(m["fine_share_by_crossover"])
    ax.bar(ks - 0.2, coarse, 0.4, color=style.MODEL, label="the coarse source's class")
    ax.bar(ks + 0.2, fine, 0.4, color=style.DATA, label="the fine source's class")
    for k, c, f in zip(ks, coarse, fine):
        ax.text(k - 0.2, c, f"{c:.2f}", ha="center", va="bottom", fontsize=7)
        ax.text(k + 0.2, f, f"{f:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(ks, [f"{k}" + (" (c)" if k == m["coarse_layers"] else "") for k in ks])
    ax.set_xlabel("layers styled by the coarse latent (of 4)")
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("share of mixed digits read as")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"e) the class of a mixed digit ({m['mixing_pairs']} pairs)", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[2, 1])
    labels = ["new noise", "new latent"]
    energies = [m["noise_energy"], m["style_energy"]]
    high = np.nan_to_num(np.array([m["noise_high_share"], m["style_high_share"]]))
    ax.bar(labels, 1 - high, color=style.REGION, label=f"below {m['cutoff']:g} cycles/pixel (coarse)")
    ax.bar(labels, high, bottom=1 - high, color=style.DATA, label="above (fine detail)")
    for i, (e, h) in enumerate(zip(energies, high)):
        ax.text(i, 1.02, f"{h:.0%} fine\nmean square {e:.2g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("share of the change's energy")
    ax.set_ylim(0, 1.45)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    ax.set_title("f) what changes: new noise vs new latent", loc="left", fontweight="bold")

    ax = fig.add_subplot(grid[2, 2])
    names = ["held-out\ndigits", "StyleGAN\nsamples", "trivial\nmodel"]
    values = [m["frechet_floor"], m["frechet"], m["frechet_ceiling"]]
    bars = ax.bar(names, values, color=[style.TRUTH, style.MODEL, style.REGION])
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom")
    ax.set_ylabel("Fréchet distance to the training digits")
    ax.set_ylim(0, 1.2 * max(values))
    ax.set_title("g) sample quality", loc="left", fontweight="bold")
    return fig


@stylegan.checks
def _(r):
    m = r.metrics
    checks = [Check.less("AdaIN sets each channel's mean to the style's β and its standard deviation to |γ| "
                         "(largest difference, trained network)", m["adain_moment_error"], MOMENT_TOL)]
    trained = m["steps"] >= MIN_STEPS and m["pairs_drawn"] >= MIN_PAIRS
    why = f"needs at least {MIN_STEPS} training steps and {MIN_PAIRS} pairs of latents"
    claims = ["style mixing (the 4x4 layers from one latent, the 8x8 layers from another): the mixed digit is read "
              "as the coarse source's class more often than as the fine source's",
              "the more layers take the coarse latent, the more mixed digits are read as its class",
              "new noise changes the image less than a new latent does",
              f"new noise changes finer detail: a larger share of its change lies above {CUTOFF:g} cycles per pixel "
              "than of a new latent's",
              "the samples' Fréchet distance is below the trivial model's"]
    if not trained:
        return checks + [Check.untested(claim, why) for claim in claims]
    coarse, fine = m["coarse_share"], m["fine_share"]
    by_k = m["coarse_share_by_crossover"]
    return checks + [
        Check.holds(claims[0], m["mixing_pairs"] > 0 and coarse > fine,
                    f"coarse {coarse:.3f}, fine {fine:.3f} over {m['mixing_pairs']} pairs", "coarse > fine"),
        Check.holds(claims[1], all(a < b for a, b in zip(by_k[:-1], by_k[1:])),
                    ", ".join(f"{k}: {v:.3f}" for k, v in zip(m["crossovers"], by_k)), "increasing"),
        Check.less(claims[2], m["noise_energy"], m["style_energy"]),
        Check.holds(claims[3], m["noise_high_share"] > m["style_high_share"],
                    f"noise {m['noise_high_share']:.3f}, latent {m['style_high_share']:.3f}", "noise > latent"),
        Check.less(claims[4], m["frechet"], m["frechet_ceiling"]),
    ]
