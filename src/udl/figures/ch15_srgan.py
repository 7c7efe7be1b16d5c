"""Chapter 15, §15.4.4: super-resolution by a residual network, with and without an adversarial loss (figure 15.17)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from udl import drawing, style
from udl.analysis.image_quality import high_frequency_energy, psnr, radial_power_spectrum
from udl.data.images import load_photo
from udl.data.photos import to_grey
from udl.models.srgan import SRGANConfig, SRResNet, bicubic
from udl.nn.sampling import pixel_shuffle
from udl.registry import Check, Result, figure
from udl.train.srgan import HELD_OUT_PHOTO, TRAIN_PHOTOS, low_resolution, photo_super_resolvers, super_resolve

TARGET_DB = 1.0  # the content network's PSNR at least this far above bicubic interpolation's
MIN_STEPS = 600  # the least content training the PSNR claim is tested with ...
MIN_WIDTH = 32  # ... and the least network (width, residual blocks)
MIN_BLOCKS = 4
MIN_PATCHES = 8000  # ... on at least this many patches of photographs shrunk TESTED_DOWNSCALE times (as measured)
TESTED_DOWNSCALE = 2
MIN_ADVERSARIAL = 100  # the least adversarial training the sharpness claims are tested with ...
MIN_WEIGHT = 0.01  # ... and the least weight λ of the adversarial term
CUTOFF = 0.25  # cycles per pixel: "high frequency" is detail finer than 4 pixels
BORDER = 4  # pixels left out of the PSNR on each side (the scale factor: zero padding there)


def _crop_window(error: torch.Tensor, side: int, scale: int) -> tuple[int, int]:
    """Top-left corner of the ``side`` x ``side`` window where ``error`` (H, W) sums highest (corners on the
    low-resolution grid: multiples of ``scale``)."""
    stride = scale * max(1, side // (4 * scale))
    sums = F.avg_pool2d(error[None, None], side, stride=stride)[0, 0]  # (rows, cols)
    k = int(sums.argmax())
    return (k // sums.shape[1]) * stride, (k % sums.shape[1]) * stride


# =========================================================================== 15.17
@figure("15.17", title="Super-resolution: a residual network with sub-pixel upsampling, without and with an "
                       "adversarial loss",
        caption="a) The super-resolution network (SRResNet; Ledig et al. 2017): residual blocks at the low "
                "resolution, a long skip connection around them, then two sub-pixel convolutions that each double "
                "the size (a convolution makes four times the channels and the pixel shuffle moves each group of "
                "four into a 2x2 block), so the upsampling is learned; the bicubic enlargement of the input is "
                "added at the end, so the network learns only what interpolation misses. It is trained on random "
                "patches of six photographs, each reduced four times by averaging 4x4 blocks, first with the "
                "squared error to the true patch alone (content only), then with an adversarial term added: a "
                "discriminator learns to tell real patches from enlarged ones and the network is penalised when "
                "it can (SRGAN). The original measured the content in the features of a pre-trained VGG network, "
                "which cannot be loaded offline: here the content loss is on pixels. b-e) A photograph never "
                "trained on: its low-resolution input, bicubic interpolation, the content-only network, the "
                "adversarial network and the truth (PSNR of the luminance in the titles), each with the region "
                "(box) drawn enlarged below it, where bicubic interpolation errs most. f) Power by spatial "
                "frequency: interpolation and the squared error both lose the fine detail; the adversarial term "
                "brings some back. g) The content network gains in PSNR over bicubic interpolation (bars: on the "
                "luminance, as Ledig et al. scored; dashes: on RGB); the adversarial one moves its fine-detail "
                "energy (dots, as a share of the truth's) towards the truth's at some cost in PSNR.",
        params={"tiny": dict(width=4, n_blocks=1, downscale=4, patch=16, n_patches=64, steps=10, adversarial_steps=4,
                             adversarial_weight=0.01),
                "full": dict(width=32, n_blocks=4, downscale=2, patch=32, n_patches=8000, steps=600,
                             adversarial_steps=100, adversarial_weight=0.03)},
        # networks and runs a CPU trains in minutes; patches that fit in memory
        limits={"width": (1, 128), "n_blocks": (0, 16), "downscale": (1, 8), "patch": (8, 96),
                "n_patches": (8, 50_000), "steps": (1, 20_000), "adversarial_steps": (0, 10_000),
                "adversarial_weight": (0.0, 10.0)})
def super_resolution(p, run):
    config = SRGANConfig.photos(width=p.width, n_blocks=p.n_blocks)
    content, adversarial, record = photo_super_resolvers(
        config, downscale=p.downscale, patch=p.patch, n_patches=p.n_patches, steps=p.steps,
        adversarial_steps=p.adversarial_steps, adversarial_weight=p.adversarial_weight, seed=run.seed,
        device=run.device)
    content, adversarial = content.cpu(), adversarial.cpu()

    # ---- the held-out photograph, its low-resolution version and the four enlargements
    photo = torch.from_numpy(load_photo(HELD_OUT_PHOTO, downscale=p.downscale)).permute(2, 0, 1)[None]
    height, width = (s // config.scale * config.scale for s in photo.shape[-2:])
    truth = photo[..., :height, :width].float()  # (1, 3, H, W), sides multiples of 4
    low = low_resolution(truth, config.scale)  # (1, 3, H/4, W/4)
    shown = {"bicubic": bicubic(low, config.scale).clamp(0, 1), "content": super_resolve(content, low),
             "adversarial": super_resolve(adversarial, low), "truth": truth}
    scores = {name: float(psnr(image, truth, border=BORDER)[0]) for name, image in shown.items() if name != "truth"}
    # on the luminance, as Ledig et al. scored (the Y of YCbCr is this luma scaled: the same differences in dB)
    scores_y = {name: float(psnr(to_grey(image), to_grey(truth), border=BORDER)[0]) for name, image in shown.items()
                if name != "truth"}
    energy = {name: float(high_frequency_energy(image, cutoff=CUTOFF)[0]) for name, image in shown.items()}
    spectra = {name: radial_power_spectrum(image, 24)[1].numpy() for name, image in shown.items()}
    centres = radial_power_spectrum(truth, 24)[0].numpy()

    # ---- the pieces, measured: untrained network = bicubic; the sub-pixel layer = torch's PixelShuffle
    with torch.no_grad():
        fresh = SRResNet(config, generator=run.seed)
        untrained_gap = float((fresh(low) - bicubic(low, config.scale)).abs().max())
        before_shuffle = content.upsample[0].conv(content.head(low))  # (1, 4w, H/4, W/4)
        shuffle_gap = float((pixel_shuffle(before_shuffle, 2) - torch.nn.PixelShuffle(2)(before_shuffle)).abs().max())

    side = config.scale * max(2, min(height, width) // (4 * config.scale))  # a quarter of the shorter side
    error = (shown["bicubic"] - truth).pow(2).sum(1)[0]  # (H, W)
    top, left = _crop_window(error, side, config.scale)

    losses = record["content_losses"]
    tail = max(1, len(losses) // 10)
    metrics = {
        "photo": HELD_OUT_PHOTO, "size": [height, width], "train_photos": list(TRAIN_PHOTOS),
        "parameters": config.generator_parameter_count(),
        "discriminator_parameters": config.discriminator_parameter_count(),
        "width": p.width, "n_blocks": p.n_blocks, "steps": p.steps, "adversarial_steps": p.adversarial_steps,
        "n_patches": p.n_patches, "downscale": p.downscale, "adversarial_weight": p.adversarial_weight,
        "psnr_bicubic": scores["bicubic"], "psnr_content": scores["content"],
        "psnr_adversarial": scores["adversarial"],
        "gain_content": scores["content"] - scores["bicubic"],
        "gain_adversarial": scores["adversarial"] - scores["bicubic"],
        "psnr_y_bicubic": scores_y["bicubic"], "psnr_y_content": scores_y["content"],
        "psnr_y_adversarial": scores_y["adversarial"],
        "gain_y_content": scores_y["content"] - scores_y["bicubic"],
        "gain_y_adversarial": scores_y["adversarial"] - scores_y["bicubic"],
        "hf_truth": energy["truth"], "hf_bicubic": energy["bicubic"], "hf_content": energy["content"],
        "hf_adversarial": energy["adversarial"],
        "content_loss_first": float(np.mean(losses[:tail])), "content_loss_last": float(np.mean(losses[-tail:])),
        "untrained_gap": untrained_gap, "shuffle_gap": shuffle_gap, "crop": [top, left, side],
    }
    if p.adversarial_steps:
        metrics["d_loss_last"] = float(np.mean(record["d_loss"][-max(1, p.adversarial_steps // 10):]))
    arrays = {name: image[0].permute(1, 2, 0).numpy() for name, image in shown.items()}
    arrays.update({"low": low[0].permute(1, 2, 0).numpy(), "frequencies": centres,
                   **{f"spectrum_{name}": s for name, s in spectra.items()},
                   "content_losses": np.asarray(losses, dtype=np.float32)})
    return Result(metrics=metrics, arrays=arrays,
                  notes=f"Trained on {p.n_patches} random {p.patch}x{p.patch} patches (four orientations) of "
                        f"{', '.join(TRAIN_PHOTOS)} (each photograph shrunk {p.downscale}x first); tested on "
                        f"'{HELD_OUT_PHOTO}' ({height}x{width}) from {height // 4}x{width // 4}. Network: width "
                        f"{p.width}, {p.n_blocks} residual blocks, {metrics['parameters']:,} parameters; "
                        f"{p.steps} Adam steps of the squared error, then {p.adversarial_steps} steps with "
                        f"λ = {p.adversarial_weight:g} times the non-saturating adversarial loss (discriminator "
                        f"{metrics['discriminator_parameters']:,} parameters). Both trained once per machine "
                        f"and cached. PSNR leaves out {BORDER} pixels at each side; the checked gain is on the luminance "
                        f"(0.299 R + 0.587 G + 0.114 B; RGB gain {metrics['gain_content']:+.2f} dB); high-frequency energy is the "
                        f"mean square above {CUTOFF} cycles per pixel, summed over the colour channels.")


def _schematic(ax):
    drawing.frame(ax, (-0.2, 10.4), (-1.9, 1.35))
    chain = [("low-res\nx (h×w)", style.DATA), ("conv\nPReLU", "white"), ("residual\nblocks ×B", "white"),
             ("conv", "white"), ("conv ×4ch\nshuffle ×2", style.MODEL), ("conv ×4ch\nshuffle ×2", style.MODEL),
             ("conv", "white"), ("x̂\n(4h×4w)", style.MODEL)]
    xs = np.linspace(0.45, 9.6, len(chain))
    for (text, face), x in zip(chain, xs):
        drawing.box(ax, x, 0.5, 0.95, 0.8, text, face=drawing.light(face, 0.45) if face != "white" else face,
                    edge="black", fontsize=6.5)
    for a, b in zip(xs[:-1], xs[1:]):
        drawing.arrow(ax, (a + 0.48, 0.5), (b - 0.48, 0.5), head=6)
    # long skip around the residual blocks and bicubic skip to the output
    ax.annotate("", xy=(xs[3] + 0.35, 0.9), xytext=(xs[1] + 0.35, 0.9),
                arrowprops=dict(arrowstyle="-|>", connectionstyle="arc3,rad=-0.45", lw=0.8, color="0.3"))
    ax.text((xs[1] + xs[3]) / 2 + 0.35, 1.25, "+ skip", fontsize=6, ha="center", color="0.3")
    ax.annotate("", xy=(xs[7] - 0.2, 0.9), xytext=(xs[0] + 0.2, 0.9),
                arrowprops=dict(arrowstyle="-|>", connectionstyle="arc3,rad=-0.12", lw=0.8, color=style.REGION,
                                ls="--"))
    ax.text(xs[6] - 0.9, 1.3, "+ bicubic(x)", fontsize=6, ha="center", color="0.45")
    # the two losses
    drawing.box(ax, xs[7], -0.75, 1.0, 0.6, "truth x", face="white", edge="black", fontsize=6.5)
    drawing.box(ax, xs[5] - 0.2, -1.45, 2.6, 0.55, "content: mean (x̂ − x)²", face=drawing.light(style.REGION, 0.4),
                edge="none", fontsize=6.5)
    drawing.box(ax, xs[2] + 0.2, -1.45, 3.6, 0.55, "discriminator f: real x or x̂?  adversarial: −log sig f(x̂)",
                face=drawing.light(style.EXTRA[2], 0.25), edge="none", fontsize=6.5)
    drawing.arrow(ax, (xs[7], 0.1), (xs[7], -0.45), head=6)
    drawing.arrow(ax, (xs[7] - 0.3, -0.95), (xs[5] + 1.1, -1.3), head=6, color="0.4")
    drawing.arrow(ax, (xs[7] - 0.5, 0.1), (xs[2] + 2.0, -1.2), head=6, color=style.EXTRA[2], lw=0.8)
    ax.set_title("a) SRResNet / SRGAN (×4)", loc="left", fontweight="bold", fontsize=9)


@super_resolution.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig = plt.figure(figsize=(13, 8.4), layout="constrained")
    outer = fig.add_gridspec(2, 1, height_ratios=[1.0, 1.83])
    top_row = outer[0].subgridspec(1, 3, width_ratios=[3.0, 1.0, 1.0])
    images = outer[1].subgridspec(2, 5, height_ratios=[0.78, 1.05])  # its own columns: evenly spaced
    _schematic(fig.add_subplot(top_row[0]))

    top, left, side = m["crop"]
    panels = [("low", f"b) input ({m['size'][0] // 4}×{m['size'][1] // 4})", None),
              ("bicubic", f"c) bicubic: {m['psnr_y_bicubic']:.2f} dB", m["hf_bicubic"]),
              ("content", f"d) content only: {m['psnr_y_content']:.2f} dB", m["hf_content"]),
              ("adversarial", f"e) + adversarial: {m['psnr_y_adversarial']:.2f} dB", m["hf_adversarial"]),
              ("truth", "truth (held out)", m["hf_truth"])]
    for col, (key, title, _) in enumerate(panels):
        ax = fig.add_subplot(images[0, col])
        image = np.clip(a[key], 0, 1)
        scale = 4 if key == "low" else 1
        drawing.image(ax, image, title, fontsize=8.5, interpolation="nearest",
                      extent=(0, image.shape[1] * scale, image.shape[0] * scale, 0))
        ax.add_patch(Rectangle((left, top), side, side, fill=False, ec=style.DATA, lw=1.2))
        ax = fig.add_subplot(images[1, col])
        if key == "low":
            crop = image[top // 4:(top + side) // 4, left // 4:(left + side) // 4]
        else:
            crop = image[top:top + side, left:left + side]
        drawing.image(ax, crop, None, interpolation="nearest")
        for spine in ax.spines.values():
            spine.set_edgecolor(style.DATA)

    ax = fig.add_subplot(top_row[1])
    colours = {"truth": style.TRUTH, "bicubic": style.REGION, "content": style.MODEL, "adversarial": style.EXTRA[2]}
    for key, colour in colours.items():
        ax.semilogy(a["frequencies"], a[f"spectrum_{key}"], color=colour, lw=1.4, label=key)
    ax.axvline(0.25, color="0.6", ls=":", lw=1)
    ax.set_xlabel("spatial frequency (cycles / pixel)")
    ax.set_ylabel("power")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("f) power spectrum", loc="left", fontweight="bold", fontsize=9)

    ax = fig.add_subplot(top_row[2])
    names = ["bicubic", "content", "adversarial"]
    gains = [0.0, m["gain_y_content"], m["gain_y_adversarial"]]
    rgb = [0.0, m["gain_content"], m["gain_adversarial"]]
    bars = ax.bar(range(3), gains, color=[colours[n] for n in names])
    ax.plot(range(3), rgb, "_", color="0.3", ms=16, mew=1.5)
    ax.axhline(1.0, color="0.5", ls="--", lw=1)
    ax.text(-0.45, 1.0, "+1 dB", fontsize=7, va="bottom", ha="left", color="0.4")
    for bar, g in list(zip(bars, gains))[1:]:  # bicubic's gain is 0 by definition
        ax.text(bar.get_x() + bar.get_width() / 2, max(g, 0), f"{g:+.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(3), ["bicubic", "content\nonly", "+ adver-\nsarial"], fontsize=7)
    ax.set_ylabel("PSNR gain over bicubic (dB): luminance (bars), RGB (–)", fontsize=8)
    ax.set_ylim(min(0.0, min(gains)) - 0.1, max(1.4, max(gains) * 1.3))
    hf = ax.twinx()
    hf_values = [m["hf_bicubic"], m["hf_content"], m["hf_adversarial"]]
    hf.plot(range(3), np.asarray(hf_values) / m["hf_truth"], "o-", color=style.TRUTH, ms=4, lw=1)
    hf.axhline(1.0, color=style.TRUTH, ls=":", lw=1)
    hf.set_ylim(0, 1.15 * max(1.0, max(hf_values) / m["hf_truth"]))
    hf.set_ylabel("fine-detail energy / truth's (dots)", fontsize=8)
    ax.set_title("g) fidelity vs detail", loc="left", fontweight="bold", fontsize=9)
    return fig


@super_resolution.checks
def _(r):
    m = r.metrics
    checks = [
        Check.close("the untrained network is bicubic interpolation (its last layer starts at zero)",
                    m["untrained_gap"], 0.0, 0.0),
        Check.close("udl's pixel shuffle equals torch's PixelShuffle on the network's sub-pixel layer",
                    m["shuffle_gap"], 0.0, 0.0),
        Check.less("bicubic interpolation has less fine detail than the truth (energy above 0.25 cycles/pixel)",
                   m["hf_bicubic"], m["hf_truth"]),
        Check.less("the content-only network, trained on the squared error, is smoother than the truth",
                   m["hf_content"], m["hf_truth"]),
    ]
    claim = (f"the content-only network's PSNR (on the luminance, as Ledig et al.) is at least {TARGET_DB:g} dB "
             "above bicubic interpolation's")
    trained_enough = (m["steps"] >= MIN_STEPS and m["width"] >= MIN_WIDTH and m["n_blocks"] >= MIN_BLOCKS
                      and m["n_patches"] >= MIN_PATCHES and m["downscale"] == TESTED_DOWNSCALE)
    if not trained_enough:
        checks.append(Check.untested(claim, f"needs at least {MIN_STEPS} training steps of a network of width "
                                            f"{MIN_WIDTH} with {MIN_BLOCKS} residual blocks, on {MIN_PATCHES} "
                                            f"patches of photographs shrunk {TESTED_DOWNSCALE}x"))
    else:
        checks.append(Check.greater(claim, m["gain_y_content"], TARGET_DB))
    sharper = "the adversarial network's fine-detail energy is closer to the truth's than the content-only one's"
    cost = "the adversarial network pays for it in PSNR (below the content-only network's, RGB and luminance)"
    if not trained_enough or m["adversarial_steps"] < MIN_ADVERSARIAL or m["adversarial_weight"] < MIN_WEIGHT:
        why = (f"needs the content network above and at least {MIN_ADVERSARIAL} adversarial training steps "
               f"with λ ≥ {MIN_WEIGHT:g}")
        checks += [Check.untested(sharper, why), Check.untested(cost, why)]
    else:
        checks.append(Check.less(sharper, abs(m["hf_adversarial"] - m["hf_truth"]),
                                 abs(m["hf_content"] - m["hf_truth"])))
        checks.append(Check.less(cost, max(m["psnr_adversarial"] - m["psnr_content"],
                                           m["psnr_y_adversarial"] - m["psnr_y_content"]), 0.0))
    return checks
