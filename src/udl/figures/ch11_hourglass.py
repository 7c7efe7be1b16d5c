"""Chapter 11, §11.5.3: stacked hourglass networks for pose estimation (figure 11.12)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle

from udl import style
from udl.data.poses import JOINTS, SKELETON, make_poses
from udl.models.hourglass import (StackedHourglass, gaussian_heatmaps, heatmap_peaks, joint_box_size, pck,
                                  stacked_heatmap_loss, trace_blocks)
from udl.nn.residual import count_parameters
from udl.registry import Check, Limit, Result, figure
from udl.train import fit

_TEST_SEED = 10_000  # held-out figures use seed + this, never the training figures' seeds
_SHOWN_JOINTS = (0, 4, 10, 12)  # head, right wrist, right ankle, left knee: the heatmaps drawn in panel a
_ALPHAS = np.round(np.linspace(0.02, 0.3, 15), 3)  # PCK thresholds of panel d


def _predict(model, images, device, batch=256) -> list[torch.Tensor]:
    """Every stack's heatmaps for ``images``, in eval mode, on the CPU."""
    model.eval()
    with torch.no_grad():
        chunks = [model(images[i:i + batch].to(device)) for i in range(0, len(images), batch)]
    return [torch.cat([c[k].float().cpu() for c in chunks]) for k in range(len(chunks[0]))]


def _skip_is_added(hourglass, x) -> tuple[float, int, int]:
    """Measure, with hooks, that the block's output is its processed skip plus the upsampled decoder path.

    Returns the largest |output - (upper(x) + upsample(up(...)))| and the channels in and out.
    """
    seen = {}
    hooks = [hourglass.upper.register_forward_hook(lambda m, i, o: seen.__setitem__("upper", o)),
             hourglass.up.register_forward_hook(lambda m, i, o: seen.__setitem__("up", o))]
    with torch.no_grad():
        out = hourglass(x)
    for h in hooks:
        h.remove()
    rebuilt = seen["upper"] + F.interpolate(seen["up"], scale_factor=2, mode="nearest")
    return float((out - rebuilt).abs().max()), int(x.shape[1]), int(out.shape[1])


@figure("11.12", title="Stacked hourglass networks for pose estimation",
        caption="A stacked hourglass network trained from scratch to find the 14 joints of udl's synthetic "
                "articulated figures (stick bodies with random joint angles, size, position and rotation on a "
                "cluttered background; exact joints). a) A held-out image with the predicted joints and skeleton "
                "(cyan) and the true joints (black), and the predicted heatmaps of four joints: the network "
                "regresses one heatmap per joint towards a small Gaussian bump at the joint, and the joint is read "
                "off at the heatmap's peak. b) The architecture: a stem of a strided convolution, bottleneck "
                "residual blocks and max pooling, then hourglasses, each ending in a 1x1 head whose heatmaps are "
                "supervised and fed back into the next stack; the shapes are measured. c) One hourglass, drawn "
                "from the real module's forward pass: every box is a bottleneck residual block (height: the "
                "measured resolution), max pooling goes down, nearest-neighbour upsampling comes back up, and "
                "each skip link is processed by its own residual block and added, not concatenated. d) The "
                "fraction of held-out joints found within α times the size of the figure's joint box (PCK@α) "
                "for each stack; the title gives PCK@0.1.",
        params={"tiny": dict(image_size=64, n_train=96, n_test=64, channels=16, depth=2, n_stacks=2, stride=4,
                             sigma=1.0, steps=40, batch_size=16, lr=0.01, distractors=4, pck_target=0.15,
                             stack_tolerance=0.1),
                "full": dict(image_size=64, n_train=2000, n_test=400, channels=32, depth=3, n_stacks=2, stride=4,
                             sigma=1.0, steps=500, batch_size=16, lr=0.01, distractors=4, pck_target=0.8,
                             stack_tolerance=0.02)},
        limits={"image_size": (32, 128), "n_train": (2, 10_000), "n_test": (1, 2_000), "channels": (8, 128),
                "depth": (1, 5), "n_stacks": (1, 8), "stride": Limit(choices=(1, 2, 4)), "sigma": (0.5, 8.0), "steps": (2, 100_000),
                "batch_size": (2, 64), "lr": (1e-6, 1.0), "distractors": (0, 50), "pck_target": (0.0, 1.0),
                # sigma >= 0.5 cell: a narrower bump no longer decodes back to its joint exactly (0.13 px off at
                # 0.25); a tolerance of 1 would let "the last stack is no worse" pass whatever PCK the stacks reach
                "stack_tolerance": (0.0, 0.5)})
def stacked_hourglass(p, run):
    size, stride = p.image_size, p.stride
    data_args = dict(size=size, margin=float(stride), distractors=p.distractors)  # margin: peaks off the border
    train = make_poses(p.n_train, seed=run.seed, **data_args)
    test = make_poses(p.n_test, seed=run.seed + _TEST_SEED, **data_args)
    side = size // stride
    targets = gaussian_heatmaps(train.joints, side, p.sigma, stride=stride)
    test_targets = gaussian_heatmaps(test.joints, side, p.sigma, stride=stride)

    model = StackedHourglass(len(JOINTS), n_stacks=p.n_stacks, channels=p.channels, depth=p.depth, stride=stride,
                             generator=run.seed)
    losses = fit(model, (train.images, targets), stacked_heatmap_loss, lambda params: torch.optim.Adam(params, p.lr),
                 steps=p.steps, batch_size=p.batch_size, seed=run.seed, device=run.device, progress=False,
                 scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=p.steps,
                                                                            pct_start=0.2))

    heatmaps = _predict(model, test.images, run.device)  # n_stacks x (N, J, side, side)
    reference = joint_box_size(test.joints)  # PCK's reference length: max(h, w) of the joint box
    peaks = [heatmap_peaks(h, stride=stride).joints for h in heatmaps]
    pck_stack = [pck(q, test.joints, 0.1, reference) for q in peaks]
    loss_stack = [float(F.mse_loss(h, test_targets)) for h in heatmaps]
    baseline = train.joints.mean(0, keepdim=True).expand_as(test.joints)  # every joint at its mean position
    curves = [[pck(q, test.joints, float(a), reference) for a in _ALPHAS] for q in peaks]

    # the targets decode back to the joints: the arg max cell holds the joint, the refined peak is the joint
    target_peaks = heatmap_peaks(test_targets, stride=stride)
    coarse = heatmap_peaks(test_targets, stride=stride, refine="none").joints
    holds_joint = torch.equal(torch.floor(coarse / stride), torch.floor(test.joints / stride))

    # the architecture, measured on one held-out image
    model.cpu().eval()
    with torch.no_grad():
        stem = model.stem(test.images[:1])
    trace = trace_blocks(model.hourglasses[0], stem)
    skip_error, channels_in, channels_out = _skip_is_added(model.hourglasses[0], stem)

    shown = 0
    n_head = max(1, len(losses) // 20)
    return Result(
        metrics={"pck_at_0_1": pck_stack[-1], "pck_per_stack": pck_stack, "heldout_loss_per_stack": loss_stack,
                 "pck_per_joint": pck(peaks[-1], test.joints, 0.1, reference, per_joint=True),
                 "pck_mean_pose_baseline": pck(baseline, test.joints, 0.1, reference),
                 "reference_length_mean": float(reference.mean()),
                 "target_peak_error_px": float((target_peaks.joints - test.joints).abs().max()),
                 "target_argmax_cell_holds_joint": holds_joint,
                 "target_peak_value_min": float(target_peaks.scores.min()),
                 "resolutions": sorted({t.shape[-1] for t in trace}, reverse=True),
                 "expected_resolutions": [side // 2 ** k for k in range(p.depth + 1)],
                 "block_channels": sorted({t.shape[0] for t in trace}),
                 "n_blocks_traced": len(trace),
                 "skip_sum_error": skip_error, "hourglass_channels_in_out": [channels_in, channels_out],
                 "stem_output_shape": list(stem.shape[1:]), "heatmap_shape": list(heatmaps[0].shape[1:]),
                 "n_parameters": count_parameters(model), "n_test_joints": int(test.joints[..., 0].numel()),
                 "visible_fraction": float(test.visible.float().mean()),
                 "loss_first": float(np.mean(losses[:n_head])), "loss_last": float(np.mean(losses[-n_head:]))},
        arrays={"image": test.images[shown].permute(1, 2, 0).numpy(),  # (H, W, 3)
                "truth": test.joints[shown].numpy(), "pred": peaks[-1][shown].numpy(),
                "heatmaps": heatmaps[-1][shown, list(_SHOWN_JOINTS)].numpy(),  # (4, side, side)
                "alphas": _ALPHAS, "pck_curves": np.array(curves),  # (n_stacks, len(alphas))
                "trace_level": np.array([t.level for t in trace]),
                "trace_role": np.array([["upper", "down", "inner", "up"].index(t.role) for t in trace]),
                "trace_size": np.array([t.shape[-1] for t in trace]),
                "losses": np.asarray(losses)},
        notes=f"{size}x{size} synthetic stick figures with {len(JOINTS)} joints instead of 256x256 photographs "
              f"(MPII, FLIC) with 16; {p.n_stacks} hourglasses of {p.channels} features and depth {p.depth} "
              f"({side}x{side} heatmaps, {count_parameters(model):,} parameters) instead of 8 of 256 features "
              f"and depth 4 (64x64 heatmaps); trained from scratch for {p.steps} Adam steps on {p.n_train} images. "
              f"PCK uses the larger side of the box around the true joints as reference (Yang & Ramanan 2013).")


@stacked_hourglass.requires
def _(p):
    if p.channels % 4:
        raise ValueError(f"The 'channels' parameter of figure 11.12 must be a multiple of 4. Got {p.channels} instead.")
    step = p.stride * 2 ** p.depth  # the stem divides the image by stride, each hourglass level halves it
    if p.image_size % step:
        raise ValueError(f"The 'image_size' parameter of figure 11.12 must be a multiple of stride · 2^depth = "
                         f"{step}. Got {p.image_size} instead.")
    if p.batch_size > p.n_train:
        raise ValueError(f"The 'batch_size' parameter of figure 11.12 must be at most n_train ({p.n_train}). "
                         f"Got {p.batch_size} instead.")


# --------------------------------------------------------------------------- drawing
def _draw_pose(ax, joints, colour, lw, marker_size, zorder):
    for a, b in SKELETON:
        ax.plot(joints[[a, b], 0], joints[[a, b], 1], color=colour, lw=lw, zorder=zorder, solid_capstyle="round")
    ax.scatter(joints[:, 0], joints[:, 1], s=marker_size, color=colour, zorder=zorder + 1, edgecolors="white",
               linewidths=0.4)


def _architecture(ax, m, p):
    """Panel b: the stem and the stacks as boxes and hourglass glyphs, with the measured shapes."""
    n = p["n_stacks"]
    ax.set(xlim=(-0.3, 2.6 + 2.2 * n), ylim=(-2.2, 2.0), xticks=[], yticks=[])
    ax.axis("off")
    c, hm = m["stem_output_shape"], m["heatmap_shape"]

    def arrow(x0, y0, x1, y1, **kw):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=8, lw=0.9,
                                     color=kw.get("color", "0.3")))

    ax.add_patch(Rectangle((0, -0.9), 0.35, 1.8, color=style.DATA, alpha=0.8))
    ax.text(0.17, 1.0, f"image\n3x{p['image_size']}x{p['image_size']}", ha="center", va="bottom", fontsize=7)
    for k, h in enumerate((1.4, 1.0, 0.8)):  # the stem: strided conv, residual blocks, pooling
        ax.add_patch(Rectangle((0.6 + 0.3 * k, -h / 2), 0.2, h, color=style.MODEL, alpha=0.9))
    ax.text(0.95, -1.15, f"stem\n{c[0]}x{c[1]}x{c[2]}", ha="center", va="top", fontsize=7)
    arrow(0.36, 0, 0.58, 0)
    x = 1.5
    for s in range(n):
        ax.add_patch(Polygon([[x, 0.8], [x + 0.7, 0.15], [x + 1.4, 0.8], [x + 1.4, -0.8], [x + 0.7, -0.15],
                              [x, -0.8]], closed=True, color=style.MODEL, alpha=0.9))
        ax.text(x + 0.7, 1.0, f"hourglass {s + 1}", ha="center", fontsize=7)
        arrow(x - 0.32, 0, x - 0.02, 0)
        ax.add_patch(Rectangle((x + 1.55, -0.35), 0.15, 0.7, color=style.MODEL, alpha=0.6))  # residual + 1x1
        arrow(x + 1.42, 0, x + 1.53, 0)
        ax.add_patch(Rectangle((x + 1.45, -1.95), 0.35, 0.9, color=style.EXTRA[0], alpha=0.75))  # heatmaps
        arrow(x + 1.62, -0.37, x + 1.62, -1.03, color=style.EXTRA[0])
        ax.text(x + 1.62, -2.1, f"{hm[0]}x{hm[1]}x{hm[2]}\nPCK {m['pck_per_stack'][s]:.2f}", ha="center", va="top",
                fontsize=7)
        if s < n - 1:
            ax.text(x + 2.0, 0.0, "+", ha="center", va="center", fontsize=11)
            arrow(x + 1.72, 0, x + 1.88, 0)
            arrow(x + 1.82, -1.2, x + 1.98, -0.2, color=style.EXTRA[0])  # heatmaps re-injected
        x += 2.2
    ax.set_title("stem and stacks (measured shapes)", fontsize=9)


def _hourglass_diagram(ax, a, m, p):
    """Panel c: the traced residual blocks of one hourglass, placed by level and role."""
    d = p["depth"]
    top = float(a["trace_size"].max())
    width, gap = 0.5, 1.0  # block width and vertical distance between levels
    xs = {}  # (role, level) -> x of the block's centre
    for level in range(1, d + 1):
        xs[("down", level)] = level
        xs[("up", level)] = 2 * d + 2 - level
    xs[("inner", d)] = d + 1
    for level in range(d):
        xs[("upper", level)] = d + 1
    roles = ("upper", "down", "inner", "up")

    def y_of(level):
        return -gap * level * 1.6

    def arrow(p0, p1, colour="0.35", style_="-|>"):
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle=style_, mutation_scale=7, lw=0.8, color=colour))

    for level, role, size in zip(a["trace_level"], a["trace_role"], a["trace_size"]):
        x, y, h = xs[(roles[role], int(level))], y_of(int(level)), 1.2 * size / top
        ax.add_patch(Rectangle((x - width / 2, y - h / 2), width, h, color=style.MODEL, alpha=0.9, lw=0))
    # the input and the output at level 0, and the sums
    h0 = 1.2
    ax.add_patch(Rectangle((-width / 2, -h0 / 2), width, h0, fc="none", ec="0.3", lw=0.8))
    ax.add_patch(Rectangle((2 * d + 2 - width / 2, -h0 / 2), width, h0, fc="none", ec="0.3", lw=0.8))
    ax.text(0, h0 / 2 + 0.15, "in", ha="center", fontsize=7)
    ax.text(2 * d + 2, h0 / 2 + 0.15, "out", ha="center", fontsize=7)
    half = {level: 0.6 * size / top for level, size in zip(a["trace_level"], a["trace_size"])}  # half heights
    for level in range(d):
        y = y_of(level)
        x_left = 0 if level == 0 else xs[("down", level)]  # the feature at this level: input or encoder block
        x_plus = 2 * d + 1.45 if level == 0 else xs[("up", level)] - 0.55  # where the two paths are added
        arrow((x_left + width / 2, y), (d + 1 - width / 2, y))  # into the skip block
        arrow((d + 1 + width / 2, y), (x_plus - 0.12, y))  # processed skip to the sum
        ax.text(x_plus, y, "+", ha="center", va="center", fontsize=10, fontweight="bold")
        arrow((x_plus + 0.12, y), (x_plus + 0.55 - width / 2, y))  # the sum into the decoder block (or out)
        arrow((x_left, y - (h0 / 2 if level == 0 else half[level])), (xs[("down", level + 1)] - 0.1,
              y_of(level + 1) + half[level + 1]), colour=style.DATA)  # max pool, down one level
        arrow((xs[("up", level + 1)] + 0.1, y_of(level + 1) + half[level + 1]), (x_plus, y - 0.15),
              colour=style.EXTRA[1])  # nearest upsampling, up one level
    arrow((xs[("down", d)] + width / 2, y_of(d)), (d + 1 - width / 2, y_of(d)))  # through the bottom
    arrow((d + 1 + width / 2, y_of(d)), (xs[("up", d)] - width / 2, y_of(d)))
    for level in range(d + 1):
        ax.text(-0.7, y_of(level), f"{int(m['block_channels'][0])}x{m['resolutions'][level]}x"
                f"{m['resolutions'][level]}", ha="right", va="center", fontsize=7)
    ax.set(xlim=(-2.2, 2 * d + 2.6), ylim=(y_of(d) - 0.9, 1.1), xticks=[], yticks=[])
    ax.axis("off")
    ax.plot([], [], color=style.DATA, label="max pool")
    ax.plot([], [], color=style.EXTRA[1], label="upsample")
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(f"one hourglass: {len(a['trace_size'])} residual blocks", fontsize=9)


@stacked_hourglass.plot
def _(r):
    a, m, p = r.arrays, r.metrics, r.params
    size = p["image_size"]
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(14, 5.6), layout="constrained")
        grid = fig.add_gridspec(2, 4, width_ratios=[1.3, 1.0, 1.8, 1.15])
        ax_image = fig.add_subplot(grid[:, 0])
        heat = grid[:, 1].subgridspec(2, 2)
        ax_heat = [fig.add_subplot(heat[i // 2, i % 2]) for i in range(4)]
        ax_arch = fig.add_subplot(grid[0, 2])
        ax_hg = fig.add_subplot(grid[1, 2])
        ax_pck = fig.add_subplot(grid[:, 3])

    ax_image.imshow(a["image"], extent=(0, size, size, 0), interpolation="nearest")
    _draw_pose(ax_image, a["truth"], style.TRUTH, 1.0, 10, 3)
    _draw_pose(ax_image, a["pred"], style.MODEL, 1.6, 14, 5)
    ax_image.set(xlim=(0, size), ylim=(size, 0), xticks=[], yticks=[], title="input and predicted joints")
    ax_image.plot([], [], color=style.MODEL, label="prediction")
    ax_image.plot([], [], color=style.TRUTH, label="truth")
    ax_image.legend(loc="lower center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=7)
    for ax, j, h in zip(ax_heat, _SHOWN_JOINTS, a["heatmaps"]):
        ax.imshow(a["image"].mean(-1), cmap="gray", extent=(0, size, size, 0), interpolation="nearest", alpha=0.6)
        ax.imshow(np.clip(h, 0, None), cmap=style.CMAP, extent=(0, size, size, 0), alpha=0.75,
                  interpolation="nearest")
        ax.plot(*a["truth"][j], "+", color="white", ms=7)
        ax.set(xticks=[], yticks=[])
        ax.set_title(JOINTS[j].replace("_", " "), fontsize=8)
    _architecture(ax_arch, m, p)
    _hourglass_diagram(ax_hg, a, m, p)
    n = len(a["pck_curves"])
    for k, curve in enumerate(a["pck_curves"]):  # earlier stacks in grays, the last (the output) in cyan
        colour = style.MODEL if k == n - 1 else str(0.75 - 0.4 * k / max(n - 1, 1))
        ax_pck.plot(a["alphas"], curve, marker="o", ms=3, color=colour, label=f"stack {k + 1}")
    ax_pck.axvline(0.1, color=style.TRUTH, lw=0.6, ls=":")
    ax_pck.axhline(m["pck_mean_pose_baseline"], color=style.DATA, lw=0.8, ls="--", label="mean pose")
    ax_pck.set(xlim=(0, float(a["alphas"].max()) + 0.01), ylim=(0, 1.02), xlabel="threshold α (x joint-box size)",
               ylabel="held-out PCK", title=f"PCK@0.1 = {m['pck_at_0_1']:.2f}")
    ax_pck.legend(fontsize=7, loc="lower right")
    style.panel_labels(np.array([ax_image, ax_arch, ax_hg, ax_pck]))
    return fig


@stacked_hourglass.checks
def _(r):
    m, p = r.metrics, r.params
    first, last = m["pck_per_stack"][0], m["pck_per_stack"][-1]
    tol = p["stack_tolerance"]
    stack_claims = (f"the last stack is no worse than the first (PCK@0.1 within {tol})",
                    f"the last stack's held-out heatmap loss is no worse than the first's (within {tol:.0%})")
    if p["n_stacks"] > 1:
        stacks = [Check.holds(stack_claims[0], last >= first - tol, [first, last], f"last >= first - {tol}"),
                  Check.holds(stack_claims[1],
                              m["heldout_loss_per_stack"][-1] <= m["heldout_loss_per_stack"][0] * (1 + tol),
                              m["heldout_loss_per_stack"], f"last <= first x {1 + tol:g}")]
    else:  # one hourglass is both the first and the last stack
        stacks = [Check.untested(claim, "needs at least two stacks; n_stacks = 1") for claim in stack_claims]
    return [
        Check.greater(f"held-out PCK@0.1 (within 0.1 x the joint box's larger side, mean "
                      f"{m['reference_length_mean']:.0f} px) over {m['n_test_joints']} joints is at least "
                      f"{p['pck_target']}", m["pck_at_0_1"], p["pck_target"]),
        Check.greater("the network beats putting every joint at its mean training position (PCK@0.1 margin)",
                      m["pck_at_0_1"] - m["pck_mean_pose_baseline"], 0.0),
        *stacks,
        Check.less("the target heatmaps peak exactly at the joints (largest decoded error, pixels)",
                   m["target_peak_error_px"], 0.01),
        Check.holds("each target's largest cell is the cell that holds the joint",
                    m["target_argmax_cell_holds_joint"], m["target_argmax_cell_holds_joint"]),
        Check.equal("the hourglass visits depth + 1 resolutions, halving each time (measured with hooks)",
                    m["resolutions"], m["expected_resolutions"]),
        Check.holds("the skip links are added, not concatenated: output = skip + upsampled path, channels kept",
                    m["skip_sum_error"] < 1e-5 and m["hourglass_channels_in_out"][0] == m["hourglass_channels_in_out"][1],
                    [m["skip_sum_error"], m["hourglass_channels_in_out"]]),
        Check.less("the training loss fell", m["loss_last"] / m["loss_first"], 1.0),
    ]
