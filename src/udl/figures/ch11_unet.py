"""Chapter 11, §11.5.3: U-Nets segmenting synthetic cells in 2D and tubes in 3D (figures 11.10-11.11)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import to_rgb
from matplotlib.patches import FancyArrowPatch, Rectangle
from scipy import ndimage

from udl import style
from udl.data.cells import make_cells, make_tubes
from udl.models.unet import (UNet, reflect_pad, split_tiles, trace_unet, unet_geometry, unet_input_size,
                             unet_parameter_count, unet_tile_sizes)
from udl.registry import Check, Result, figure
from udl.train import fit

_TEST_SEED = 10_000  # held-out images use seed + this, never the training images' seeds
_IGNORE = -100  # target value of output pixels that lie outside the image (ignored by the loss)


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    pred, truth = pred.bool(), truth.bool()
    return float((pred & truth).sum() / (pred | truth).sum().clamp(min=1))


def _precision_recall(pred: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    pred, truth = pred.bool(), truth.bool()
    tp = float((pred & truth).sum())
    return tp / max(float(pred.sum()), 1.0), tp / max(float(truth.sum()), 1.0)


def _best_threshold(images: torch.Tensor, masks: torch.Tensor) -> float:
    """The global intensity threshold with the best IoU on ``images`` (a baseline without learning)."""
    candidates = torch.quantile(images.flatten()[::7], torch.linspace(0.05, 0.95, 91))
    return float(max(candidates, key=lambda t: _iou(images[:, 0] > t, masks)))


def _predict(model, x: torch.Tensor, device, batch: int = 16) -> torch.Tensor:
    """Foreground (class 1) decisions with ``x``'s size, in eval mode, on the CPU."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.predict(x[i:i + batch].to(device)).float().argmax(1).cpu() == 1
                          for i in range(0, len(x), batch)])


def _batch_fits(batch_size: int, available: int, what: str, fig_id: str) -> None:
    """Refuse a batch larger than the training set (fit draws batches without replacement)."""
    if batch_size > available:
        raise ValueError(f"The 'batch_size' parameter of figure {fig_id} must be at most {what} ({available}). "
                         f"Got {batch_size} instead.")


# --------------------------------------------------------------------------- figure 11.10
@figure("11.10", title="U-Net segmenting cells",
        caption="A U-Net trained to segment udl's synthetic cell images (irregular, partly touching cells with "
                "textured interiors and bright borders, uneven lighting and noise; exact masks). a) The trained "
                "network, drawn from shapes measured by hooks on its forward pass: the encoder (orange) applies "
                "two 3x3 convolutions per level and max pooling halves the size while the channels double; the "
                "decoder (cyan) doubles the size with 2x2 transposed convolutions and halves the channels. At each "
                "scale the encoder's last representation is appended (concatenated) to the decoder's first "
                "(orange arrows). The convolutions are 'valid', so every one trims a pixel from each side, and the "
                "encoder's features are centre-cropped (dashed squares) before they are appended; the input tile "
                "is therefore larger than the output and is made by mirror-padding the image. b) A held-out "
                "image (the one with the most cells). c) The predicted mask (cyan) against the true outlines "
                "(black); the title gives the intersection over union of all held-out masks.",
        params={"tiny": dict(size=32, min_radius=4.0, max_radius=7.0, levels=2, width=8, batch_norm=True, n_train=24,
                             n_test=8, steps=40, batch_size=4, lr=0.02, iou_target=0.7),
                "full": dict(size=68, min_radius=6.0, max_radius=12.0, levels=4, width=8, batch_norm=True,
                             n_train=200, n_test=24, steps=80, batch_size=8, lr=0.01, iou_target=0.85)},
        # levels >= 2: one level has no decoder, so nothing to concatenate or crop
        limits={"size": (16, 128), "min_radius": (2.0, 64.0), "max_radius": (2.0, 64.0), "levels": (2, 5),
                "width": (2, 32), "n_train": (1, 5_000), "n_test": (1, 1_000), "steps": (2, 100_000),
                "batch_size": (1, 32), "lr": (1e-6, 1.0), "iou_target": (0.0, 1.0)})
def unet_cells(p, run):
    n_in, n_out = unet_tile_sizes(p.size, levels=p.levels, padding="valid")
    margin = (n_in - n_out) // 2  # pixels the valid convolutions eat on each side
    pad = [(margin, n_in - p.size - margin)] * 2
    cell_args = dict(size=p.size, min_radius=p.min_radius, max_radius=p.max_radius, border=min(2.0, p.min_radius / 2))
    train = make_cells(p.n_train, seed=run.seed, **cell_args)
    test = make_cells(p.n_test, seed=run.seed + _TEST_SEED, **cell_args)
    x = reflect_pad(train.images, pad)  # (N, 1, n_in, n_in): mirror-padded input tiles
    y = F.pad(train.masks, (0, n_out - p.size) * 2, value=_IGNORE)  # (N, n_out, n_out)

    model = UNet(1, 2, levels=p.levels, width=p.width, padding="valid", batch_norm=p.batch_norm,
                 generator=run.seed)
    losses = fit(model, (x, y), lambda out, t: F.cross_entropy(out.float(), t, ignore_index=_IGNORE),
                 lambda params: torch.optim.Adam(params, p.lr), steps=p.steps, batch_size=p.batch_size,
                 seed=run.seed, device=run.device, progress=False,
                 scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=p.steps,
                                                                            pct_start=0.2))
    pred = _predict(model, test.images, run.device)
    threshold = _best_threshold(train.images, train.masks)
    per_image = [_iou(pr, t) for pr, t in zip(pred, test.masks)]

    # the architecture, measured with hooks on the trained network, and the closed form
    trace = trace_unet(model.cpu(), torch.zeros(1, 1, n_in, n_in))
    geometry = unet_geometry(n_in, levels=p.levels, padding="valid")
    with torch.device("meta"):  # the original: 5 levels, 64..1024 channels, 31 M parameters, no memory
        original = UNet(1, 2, levels=5, width=64, padding="valid")
        original_trace = trace_unet(original, torch.zeros(1, 1, 572, 572))
    shown = int(test.instances.flatten(1).max(1).values.argmax())  # the held-out image with the most cells
    n_head = max(1, len(losses) // 10)
    return Result(
        metrics={"iou": _iou(pred, test.masks), "iou_per_image": per_image,
                 "iou_threshold_baseline": _iou(test.images[:, 0] > threshold, test.masks),
                 "threshold": threshold, "shown": shown, "tile_input": n_in, "tile_output": n_out,
                 "foreground_fraction": float(test.masks.float().mean()),
                 "channels": list(model.channels),
                 "encoder_shapes": [list(map(list, e)) for e in trace.encoder],
                 "skip_channels": [s[0] for s in trace.skip], "up_channels": [u[0] for u in trace.up],
                 "concat_channels": [c[0] for c in trace.concat],
                 "encoder_sizes_measured": [e[1][1] for e in trace.encoder],
                 "up_sizes_measured": [u[1] for u in trace.up],
                 "decoder_sizes_measured": [d[1][1] for d in trace.decoder],
                 "output_size_measured": trace.output[1],
                 "decoder_shapes": [list(map(list, d)) for d in trace.decoder],
                 "encoder_sizes_closed_form": list(geometry.encoder), "up_sizes_closed_form": list(geometry.up),
                 "decoder_sizes_closed_form": list(geometry.decoder), "output_size_closed_form": geometry.output_size,
                 "crops": list(geometry.crops),
                 "skip_sizes_measured": [s[1] for s in trace.skip],
                 "original_output_size": original_trace.output[1],
                 "original_input_for_388": unet_input_size(388, levels=5),
                 "original_first_decoder_concat": original_trace.concat[-1][0],
                 "original_parameters": sum(q.numel() for q in original.parameters()),
                 "original_parameters_closed_form": unet_parameter_count(1, 2, levels=5, width=64),
                 "n_parameters": sum(q.numel() for q in model.parameters()),
                 "loss_first": float(np.mean(losses[:n_head])), "loss_last": float(np.mean(losses[-n_head:]))},
        arrays={"image": test.images[shown, 0].numpy(), "truth": test.masks[shown].numpy().astype(np.uint8),
                "pred": pred[shown].numpy().astype(np.uint8), "losses": np.asarray(losses)},
        notes=f"Synthetic {p.size}x{p.size} cell images in place of the HeLa micrographs; a {p.levels}-level U-Net "
              f"with {p.width}..{model.channels[-1]} channels"
              f"{' and batch norm' if p.batch_norm else ''} instead of the original's 5 levels with 64..1024 "
              f"channels (31 M parameters, measured on the meta device and checked), trained for {p.steps} Adam "
              f"steps on {p.n_train} mirror-padded {n_in}x{n_in} tiles with plain cross-entropy (no elastic "
              f"deformations, no border weight map).")


@unet_cells.requires
def _(p):
    if not p.min_radius <= p.max_radius <= p.size / 2:
        raise ValueError(f"The 'max_radius' parameter of figure 11.10 must be in [min_radius, size / 2] = "
                         f"[{p.min_radius:g}, {p.size / 2:g}]. Got {p.max_radius:g} instead.")
    _batch_fits(p.batch_size, p.n_train, "n_train", "11.10")


def _draw_unet(ax, m) -> None:
    """The architecture of fig. 11.10 from the measured shapes (encoder orange, decoder cyan).

    Each representation is a bar: its height grows with the spatial size, its width with the
    channels; pooling goes straight down, transposed convolutions straight up.
    """
    L = len(m["channels"])
    n_in = m["tile_input"]
    row, step = 1.0, 0.5  # vertical distance between levels; horizontal distance between bars

    def height(size):  # compressed so that the deep, small levels stay visible
        return 0.8 * row * (0.25 + 0.75 * size / n_in)

    def width(c):
        return 0.05 + 0.035 * np.log2(c / m["channels"][0] + 1)

    def label(x, y, size, c_text, w):
        h = height(size)
        ax.text(x, y + h / 2 + 0.03, c_text, ha="center", va="bottom", fontsize=6)
        ax.text(x - w / 2 - 0.045, y - h / 2, f"{size}²", ha="right", va="bottom", fontsize=5, rotation=90)

    def bar(x, y, size, c, colour, crop=None):
        h, w = height(size), width(c)
        ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, fc=colour, ec="black", lw=0.5))
        if crop is not None:  # the centre crop appended to the decoder
            hc = height(crop)
            ax.add_patch(Rectangle((x - w / 2 - 0.035, y - hc / 2), w + 0.07, hc, fill=False, ec="black", lw=0.7,
                                   ls="--"))
        label(x, y, size, str(c), w)
        return w

    def arrow(p, q, colour="black", lw=0.8):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=6, color=colour, lw=lw,
                                     shrinkA=0, shrinkB=0))

    def conv_arrow(x0, w0, x1, w1, y):
        arrow((x0 + w0 / 2, y), (x1 - w1 / 2, y))

    # encoder: level k's first bar sits straight below level k-1's last
    w_prev = bar(0.0, 0.0, n_in, 1, style.REGION)
    x_prev, last = 0.0, {}
    for k in range(L):
        y = -k * row
        (c1, s1), (c2, s2) = [(s[0], s[1]) for s in m["encoder_shapes"][k]]
        x1 = x_prev + step if k == 0 else x_prev
        if k == 0:
            conv_arrow(x_prev, w_prev, x1, width(c1), y)
        else:  # max pooling
            arrow((x_prev, y + row - height(m["encoder_sizes_measured"][k - 1]) / 2),
                  (x1, y + height(s1) / 2 + 0.12), colour="#C62828")
        w1 = bar(x1, y, s1, c1, style.DATA)
        crop = m["up_sizes_measured"][k] if k < L - 1 else None
        w2 = bar(x1 + step, y, s2, c2, style.DATA, crop=crop)
        conv_arrow(x1, w1, x1 + step, w2, y)
        last[k] = (x1 + step, w2)
        x_prev = x1 + step
    # decoder: the concatenation sits straight above the level below's last bar
    top = {L - 1: m["encoder_sizes_measured"][L - 1]}
    for k in reversed(range(L - 1)):
        y = -k * row
        up_c, up_s = m["up_channels"][k], m["up_sizes_measured"][k]
        (d1c, d1s), (d2c, d2s) = [(s[0], s[1]) for s in m["decoder_shapes"][k]]
        xs = x_prev
        arrow((xs, y - row + height(top[k + 1]) / 2 + 0.16), (xs, y - height(up_s) / 2 - 0.05), colour="#2E7D32")
        wc, h = width(m["concat_channels"][k]), height(up_s)
        ax.add_patch(Rectangle((xs - wc / 2, y - h / 2), wc / 2, h, fc=style.DATA, ec="black", lw=0.5))
        ax.add_patch(Rectangle((xs, y - h / 2), wc / 2, h, fc=style.MODEL, ec="black", lw=0.5))
        label(xs, y, up_s, f"{m['skip_channels'][k]}+{up_c}", wc)
        ex, ew = last[k]
        arrow((ex + ew / 2 + 0.05, y), (xs - wc / 2 - 0.12, y), colour=style.DATA, lw=1.4)  # copy and crop
        w1 = bar(xs + step, y, d1s, d1c, style.MODEL)
        conv_arrow(xs, wc, xs + step, w1, y)
        w2 = bar(xs + 2 * step, y, d2s, d2c, style.MODEL)
        conv_arrow(xs + step, w1, xs + 2 * step, w2, y)
        x_prev, top[k] = xs + 2 * step, d2s
    w_out = width(2)
    arrow((x_prev + width(m["decoder_shapes"][0][1][0]) / 2, 0.0), (x_prev + step - w_out / 2, 0.0),
          colour="#1565C0")
    bar(x_prev + step, 0.0, m["output_size_measured"], 2, style.REGION)
    ax.set_xlim(-0.3, x_prev + step + 0.25)
    ax.set_ylim(-(L - 1) * row - 0.5, 0.62)
    ax.set_aspect("equal")
    ax.axis("off")
    for text, colour in [("conv 3x3, ReLU", "black"), ("max pool 2x2", "#C62828"), ("up-conv 2x2", "#2E7D32"),
                         ("copy and crop", style.DATA), ("conv 1x1", "#1565C0")]:
        ax.plot([], [], color=colour, lw=1.4, label=text)
    ax.legend(loc="lower left", fontsize=6, handlelength=1.5)


@unet_cells.plot
def _(r):
    a, m = r.arrays, r.metrics
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(12.0, 4.4), layout="constrained")
        grid = fig.add_gridspec(1, 3, width_ratios=[3.4, 1, 1])
        ax_arch, ax_image, ax_pred = (fig.add_subplot(grid[0, i]) for i in range(3))
    _draw_unet(ax_arch, m)
    ax_arch.set_title(f"U-Net, {m['tile_input']}² tile -> {m['tile_output']}² output "
                      f"({m['n_parameters']:,} parameters)", fontsize=9)
    ax_image.imshow(a["image"], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax_image.set(xticks=[], yticks=[], title="held-out image")
    ax_pred.imshow(a["image"], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    overlay = np.zeros((*a["pred"].shape, 4))
    overlay[a["pred"] == 1] = (*to_rgb(style.MODEL), 0.6)
    ax_pred.imshow(overlay, interpolation="nearest")
    ax_pred.contour(a["truth"], levels=[0.5], colors=style.TRUTH, linewidths=1.0)
    ax_pred.set(xticks=[], yticks=[])
    ax_pred.set_title(f"predicted mask, IoU {m['iou']:.3f}", fontsize=9)
    style.panel_labels(np.array([ax_arch, ax_image, ax_pred]))
    return fig


@unet_cells.checks
def _(r):
    m, p = r.metrics, r.params
    L = len(m["channels"])
    return [
        Check.greater(f"held-out IoU of the predicted cell masks (all {p['n_test']} images) is at least "
                      f"{p['iou_target']}", m["iou"], p["iou_target"]),
        Check.greater("the U-Net beats the best global intensity threshold (IoU margin)",
                      m["iou"] - m["iou_threshold_baseline"], 0.0),
        Check.equal("each decoder level concatenates the encoder's and the decoder's channels (hooks: the "
                    "concatenation's channels, and encoder + decoder channels, both equal 2 c_k)",
                    [m["concat_channels"], [s + u for s, u in zip(m["skip_channels"], m["up_channels"])]],
                    [[2 * c for c in m["channels"][:L - 1]]] * 2),
        Check.equal("valid convolutions: every size measured by hooks equals the closed form "
                    "(encoder, decoder's first and last representations, output)",
                    [m["encoder_sizes_measured"], m["up_sizes_measured"], m["decoder_sizes_measured"],
                     m["output_size_measured"]],
                    [m["encoder_sizes_closed_form"], m["up_sizes_closed_form"], m["decoder_sizes_closed_form"],
                     m["output_size_closed_form"]]),
        Check.holds("the encoder's features are cropped by the same number of pixels on each side (even "
                    "size difference at every level)",
                    all((s - u) % 2 == 0 and s > u for s, u in zip(m["skip_sizes_measured"], m["up_sizes_measured"])),
                    [s - u for s, u in zip(m["skip_sizes_measured"], m["up_sizes_measured"])], "even and > 0"),
        Check.equal("the original configuration (meta device) maps 572x572 to 388x388, concatenates 512 + 512 "
                    "channels at its first decoder level and has the closed-form number of parameters",
                    [m["original_output_size"], m["original_input_for_388"], m["original_first_decoder_concat"],
                     m["original_parameters"]],
                    [388, 572, 1024, m["original_parameters_closed_form"]]),
        Check.less("the training loss fell to under half its start", m["loss_last"] / m["loss_first"], 0.5),
    ]


# --------------------------------------------------------------------------- figure 11.11
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-connected components: diagonal neighbours join


def _components(mask: np.ndarray) -> np.ndarray:
    return ndimage.label(mask, structure=_CONNECTIVITY)[0].astype(np.int32)


def _spurious_components(pred: np.ndarray, truth: np.ndarray) -> int:
    """Connected pieces of a prediction that touch no true tube voxel."""
    labels, n = ndimage.label(pred, structure=_CONNECTIVITY)
    touching = np.unique(labels[truth & (labels > 0)])
    return int(n - len(touching))


@figure("11.11", title="3D U-Nets and an all-agree ensemble",
        caption="Segmenting thin tubes in 3D. Five small 3D U-Nets, each from its own seed (initial weights and "
                "batch order), are trained to label the voxels of udl's synthetic volumes: smooth neurite-like "
                "tubes of varying radius among bright ellipsoidal blobs that are not tubes, blurred and noisy "
                "(exact voxel labels). a) Three slices through a held-out volume, the true tubes outlined in orange. "
                "b) The segmentation of a single network; each connected region has its own colour. c) The "
                "ensemble: a voxel is foreground only if all five networks agree. The agreement removes voxels "
                "that single networks mark by mistake, so precision rises, at the cost of some recall (titles: "
                "precision and recall on all held-out volumes). d) The true tubes.",
        params={"tiny": dict(size=16, tile=8, n_train=6, n_test=2, levels=2, width=6, n_blobs=3, noise=0.15,
                             steps=25, batch_size=4, lr=0.01, fg_weight=2.0, n_nets=5, recall_floor=0.3),
                "full": dict(size=32, tile=16, n_train=20, n_test=8, levels=3, width=8, n_blobs=8, noise=0.15,
                             steps=100, batch_size=8, lr=0.01, fg_weight=2.0, n_nets=5, recall_floor=0.5)},
        # size >= 14: room for make_tubes' blobs (radius 3.5 <= size / 4); a recall floor of 0 would hold whatever
        # the ensemble finds; an ensemble needs two networks
        limits={"size": (14, 64), "tile": (2, 32), "n_train": (1, 200), "n_test": (1, 50), "levels": (2, 4),
                "width": (2, 32), "n_blobs": (0, 50), "noise": (0.0, 1.0), "steps": (2, 100_000),
                "batch_size": (2, 32), "lr": (1e-6, 1.0), "fg_weight": (0.01, 100.0), "n_nets": (2, 10),
                "recall_floor": (0.01, 1.0)})
def unet_3d_ensemble(p, run):
    tube_args = dict(size=p.size, n_blobs=p.n_blobs, noise=p.noise)
    train = make_tubes(p.n_train, seed=run.seed, **tube_args)
    test = make_tubes(p.n_test, seed=run.seed + _TEST_SEED, **tube_args)
    x = split_tiles(train.volumes, p.tile)  # (N·(S/t)³, 1, t, t, t)
    y = split_tiles(train.masks[:, None], p.tile)[:, 0]  # (N·(S/t)³, t, t, t)
    weight = torch.tensor([1.0, p.fg_weight], device=run.device)  # tubes are ~5% of the voxels

    preds, final_losses = [], []
    for k in range(p.n_nets):
        seed = run.seed * 1000 + k  # the k-th member's own seed: initial weights and batch order
        model = UNet(1, 2, dims=3, levels=p.levels, width=p.width, padding="same", batch_norm=True, generator=seed)
        losses = fit(model, (x, y), lambda out, t: F.cross_entropy(out.float(), t, weight=weight),
                     lambda params: torch.optim.Adam(params, p.lr), steps=p.steps, batch_size=p.batch_size,
                     seed=seed, device=run.device, progress=False,
                     scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=p.steps,
                                                                                pct_start=0.2))
        preds.append(_predict(model, test.volumes, run.device, batch=4))
        final_losses.append(float(np.mean(losses[-max(1, p.steps // 10):])))
    preds = torch.stack(preds)  # (n_nets, N, D, H, W) bool
    ensemble = preds.all(0)  # the all-agree rule
    truth = test.masks.bool()
    single = [_precision_recall(pr, truth) for pr in preds]
    ens_precision, ens_recall = _precision_recall(ensemble, truth)
    blobs = test.blobs

    t_np, e_np, p_np = truth.numpy(), ensemble.numpy(), preds.numpy()
    spurious_single = [sum(_spurious_components(p_np[k, i], t_np[i]) for i in range(p.n_test))
                       for k in range(p.n_nets)]
    spurious_ensemble = sum(_spurious_components(e_np[i], t_np[i]) for i in range(p.n_test))
    shown = 0
    return Result(
        metrics={"precision_single": [s[0] for s in single], "recall_single": [s[1] for s in single],
                 "precision_ensemble": ens_precision, "recall_ensemble": ens_recall,
                 "iou_single": [_iou(pr, truth) for pr in preds], "iou_ensemble": _iou(ensemble, truth),
                 "outside_member_voxels": [int((ensemble & ~pr).sum()) for pr in preds],
                 "false_positive_voxels_single": [int((pr & ~truth).sum()) for pr in preds],
                 "false_positive_voxels_ensemble": int((ensemble & ~truth).sum()),
                 "blob_voxels_marked_single": [float((pr & blobs).sum() / blobs.sum().clamp(min=1)) for pr in preds],
                 "blob_voxels_marked_ensemble": float((ensemble & blobs).sum() / blobs.sum().clamp(min=1)),
                 "spurious_components_single": spurious_single, "spurious_components_ensemble": spurious_ensemble,
                 "tube_fraction": float(truth.float().mean()), "blob_fraction": float(blobs.float().mean()),
                 "final_loss_per_net": final_losses,
                 "n_parameters_per_net": sum(q.numel() for q in model.parameters())},
        arrays={"volume": test.volumes[shown, 0].numpy(), "truth": _components(t_np[shown]),
                "single": _components(p_np[0, shown]), "ensemble": _components(e_np[shown])},
        notes=f"Synthetic {p.size}³ volumes of tubes and distractor blobs in place of electron-microscope volumes "
              f"of mouse cortex; {p.n_nets} {p.levels}-level 3D U-Nets with {p.width}..{p.width * 2 ** (p.levels - 1)} "
              f"channels, 'same' padding and batch norm, each trained for {p.steps} Adam steps on {p.tile}³ tiles "
              f"cut from {p.n_train} volumes, with the tube class weighted {p.fg_weight:g}x in the cross-entropy.")


@unet_3d_ensemble.requires
def _(p):
    if p.size % p.tile:
        raise ValueError(f"The 'tile' parameter of figure 11.11 must be a divisor of size ({p.size}). "
                         f"Got {p.tile} instead.")
    halvings = 2 ** (p.levels - 1)  # each level below the first halves the tile
    if p.tile % halvings:
        raise ValueError(f"The 'tile' parameter of figure 11.11 must be a multiple of 2^(levels - 1) = {halvings}. "
                         f"Got {p.tile} instead.")
    _batch_fits(p.batch_size, p.n_train * (p.size // p.tile) ** 3, "the number of training tiles", "11.11")


def _draw_components(ax, labels: np.ndarray, title: str) -> None:
    """Voxels of each connected component, coloured by component, as a 3D scatter of cubes."""
    colours = plt.get_cmap("tab20")(np.arange(20))
    z, y, x = np.nonzero(labels)
    size = labels.shape[0]
    if len(z):
        ax.scatter(x, y, z, c=colours[(labels[z, y, x] - 1) % 20], marker="s", s=9 * (32 / size) ** 2,
                   edgecolors="none", depthshade=True)
    ax.set(xlim=(0, size), ylim=(0, size), zlim=(0, size), xticks=[], yticks=[], zticks=[])
    ax.set_box_aspect((1, 1, 1))
    ax.set_title(title, fontsize=9)


@unet_3d_ensemble.plot
def _(r):
    a, m = r.arrays, r.metrics
    size = a["volume"].shape[0]
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(12.5, 3.9), layout="constrained")
        grid = fig.add_gridspec(1, 4, width_ratios=[0.9, 1.2, 1.2, 1.2])
        slices = grid[0, 0].subgridspec(3, 1)
        ax_slices = [fig.add_subplot(slices[i, 0]) for i in range(3)]
        ax_single, ax_ens, ax_truth = (fig.add_subplot(grid[0, i], projection="3d") for i in (1, 2, 3))
    for i, (ax, z) in enumerate(zip(ax_slices, (size // 4, size // 2, 3 * size // 4))):
        ax.imshow(a["volume"][z], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.contour(a["truth"][z] > 0, levels=[0.5], colors=style.DATA, linewidths=0.8)
        ax.set(xticks=[], yticks=[])
        ax.set_ylabel(f"z = {z}", fontsize=7)
    ax_slices[0].set_title("three slices", fontsize=9)
    _draw_components(ax_single, a["single"], f"one network: precision {m['precision_single'][0]:.2f}, "
                                             f"recall {m['recall_single'][0]:.2f}")
    _draw_components(ax_ens, a["ensemble"], f"all {len(m['precision_single'])} agree: precision "
                                            f"{m['precision_ensemble']:.2f}, recall {m['recall_ensemble']:.2f}")
    _draw_components(ax_truth, a["truth"], "true tubes")
    style.panel_labels(np.array([ax_slices[0], ax_single, ax_ens, ax_truth]))
    return fig


@unet_3d_ensemble.checks
def _(r):
    m, p = r.metrics, r.params
    best = max(m["precision_single"])
    # The all-agree mask lies inside every member's by its definition, so its recall can only be at most each
    # member's: claims that follow from the rule alone would pass by construction and are not checked.
    return [
        Check.greater("the all-agree ensemble's held-out precision beats the best single network's (margin)",
                      m["precision_ensemble"] - best, 0.0),
        Check.holds(f"recall stays useful (the all-agree rule can only lower it): the ensemble's recall is at least "
                    f"{p['recall_floor']}",
                    m["recall_ensemble"] >= p["recall_floor"], m["recall_ensemble"], f">= {p['recall_floor']}"),
        Check.less("the task is hard for one network: single networks mark non-tube voxels (best precision)",
                   best, 0.98),
    ]
