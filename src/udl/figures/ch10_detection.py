"""Chapter 10, §10.5.2: object detection with a YOLO-style network (figure 10.18)."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch, Rectangle

from udl import style
from udl.analysis.detection import matches_per_object, mean_average_precision, non_max_suppression, precision_recall
from udl.data.scenes import CLASSES, make_scenes
from udl.models.yolo import YOLO, YOLOConfig, YOLOLoss, decode, encode_targets, split_output
from udl.registry import Check, Limit, Result, figure
from udl.train import fit

_TEST_SEED = 10_000  # held-out scenes use seed + this, never the training scenes' seeds
_CLASS_COLOURS = (*style.EXTRA, "#F9A825")  # one per shape class (purple, green, red, blue, yellow)


def _nms_duplicates_case() -> dict:
    """A constructed case: three near-copies of one box, a distinct box, an overlapping box of another class."""
    boxes = torch.tensor([[10., 10., 30., 30.], [11., 10., 31., 31.], [9., 11., 29., 30.],  # one object, 3 boxes
                          [40., 40., 50., 52.],  # a second object
                          [12., 12., 30., 31.]])  # overlaps the first but is another class
    scores = torch.tensor([0.7, 0.9, 0.6, 0.5, 0.8])
    labels = torch.tensor([0, 0, 0, 0, 1])
    kept = non_max_suppression(boxes, scores, 0.5, labels)
    return {"nms_case_kept": kept.tolist(), "nms_case_expected": [1, 4, 3]}


@figure("10.18", title="YOLO object detection",
        caption="A YOLO-style detector trained on udl's synthetic scenes (five shape classes on cluttered "
                "backgrounds, exact boxes). a) A held-out 56x56 scene (the book's 448x448, scaled by 1/8) "
                "and the 7x7 grid. b) The most probable class in each cell. c) Every cell's two boxes; "
                "line width is the confidence. d) The detections left after per-class non-maximum "
                "suppression (cyan) and the true boxes (black). e) Precision against recall per class on "
                "the held-out scenes; their mean average precision at IoU 0.5 is the title.",
        params={"tiny": dict(image_size=32, grid=4, n_classes=3, widths=[8, 16, 16], min_size=6, max_size=14,
                             max_objects=3, n_train=256, n_test=80, steps=120, batch_size=16, lr=0.01,
                             conf_threshold=0.05, nms_iou=0.3, map_target=0.1),
                "full": dict(image_size=56, grid=7, n_classes=5, widths=[16, 32, 64, 64], min_size=10,
                             max_size=24, max_objects=4, n_train=2000, n_test=200, steps=800, batch_size=32,
                             lr=0.002, conf_threshold=0.05, nms_iou=0.3, map_target=0.8)},
        limits={"image_size": (16, 256), "grid": (1, 64), "n_classes": (2, len(CLASSES)),
                "widths": Limit(1, 256, max_len=12), "min_size": (3, 256), "max_size": (3, 256),
                "max_objects": (1, 12), "n_train": (2, 20_000), "n_test": (1, 5_000), "steps": (2, 100_000),
                "batch_size": (2, 256), "lr": (1e-6, 1.0), "conf_threshold": (0.0, 1.0), "nms_iou": (0.0, 1.0),
                "map_target": (0.0, 1.0)})
def yolo_detection(p, run):
    cfg = YOLOConfig(image_size=p.image_size, grid=p.grid, n_boxes=2, n_classes=p.n_classes, widths=tuple(p.widths))
    scene_args = dict(size=p.image_size, n_classes=p.n_classes, min_size=p.min_size, max_size=p.max_size,
                      max_objects=p.max_objects)
    train = make_scenes(p.n_train, seed=run.seed, **scene_args)
    test = make_scenes(p.n_test, seed=run.seed + _TEST_SEED, **scene_args)
    truth = list(zip(test.boxes, test.labels))

    model = YOLO(cfg, generator=run.seed)
    targets = encode_targets(train.boxes, train.labels, cfg)
    losses = fit(model, (train.images, targets), YOLOLoss(cfg), lambda params: torch.optim.Adam(params, p.lr),
                 steps=p.steps, batch_size=p.batch_size, seed=run.seed, device=run.device, progress=False,
                 scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=p.steps,
                                                                            pct_start=0.2))

    model.eval()
    with torch.no_grad():
        outputs = torch.cat([model(test.images[i:i + 256].to(run.device)).float().cpu()
                             for i in range(0, p.n_test, 256)])
    before = decode(outputs, cfg, p.conf_threshold)  # every box above the threshold
    after = model.detect(test.images, p.conf_threshold, p.nms_iou)  # ... then per-class NMS
    counts_before = matches_per_object(before, truth)
    counts_after = matches_per_object(after, truth)
    curves = [precision_recall(after, truth, c) for c in range(p.n_classes)]
    every_box = decode(outputs, cfg, 0.0)
    all_boxes = torch.cat([d.boxes for d in every_box])
    all_scores = torch.cat([d.scores for d in every_box])

    # the scene drawn: the first held-out scene with at least three objects
    shown = next((i for i, b in enumerate(test.boxes) if len(b) >= 3), 0)
    pred = split_output(outputs[shown:shown + 1], cfg)
    sizes = (test.boxes[shown][:, 2:] - test.boxes[shown][:, :2])
    n_head = max(1, len(losses) // 20)
    matched = counts_after[counts_after >= 1]
    return Result(
        metrics={"map50": mean_average_precision(after, truth),
                 "ap50_per_class": [c.ap for c in curves],
                 "n_test_objects": int(len(counts_after)),
                 "recall_after_nms": float(np.mean(counts_after >= 1)),
                 "at_most_one_before_nms": float(np.mean(counts_before <= 1)),
                 "at_most_one_after_nms": float(np.mean(counts_after <= 1)),
                 "at_most_one_of_matched": float(np.mean(matched <= 1)) if len(matched) else 0.0,
                 "boxes_per_object_before_nms": float(np.mean(counts_before)),
                 "boxes_per_object_after_nms": float(np.mean(counts_after)),
                 "boxes_per_image_before_nms": float(np.mean([len(d.boxes) for d in before])),
                 "boxes_per_image_after_nms": float(np.mean([len(d.boxes) for d in after])),
                 "loss_first": float(np.mean(losses[:n_head])), "loss_last": float(np.mean(losses[-n_head:])),
                 "decoded_boxes_inside": bool(((all_boxes >= 0) & (all_boxes <= p.image_size)).all()
                                              and (all_boxes[:, 2:] > all_boxes[:, :2]).all()),
                 "decoded_scores_in_unit": bool(((all_scores >= 0) & (all_scores <= 1)).all()),
                 "n_parameters": sum(q.numel() for q in model.parameters()),
                 **_nms_duplicates_case()},
        arrays={"image": test.images[shown].permute(1, 2, 0).numpy(),  # (H, W, 3)
                "truth_boxes": test.boxes[shown].numpy(), "truth_labels": test.labels[shown].numpy(),
                "truth_sizes": sizes.numpy(),
                "cell_class": pred.class_prob[0].argmax(-1).numpy(),  # (S, S)
                "raw_boxes": every_box[shown].boxes.numpy(), "raw_conf": pred.confidence[0].flatten().numpy(),
                "final_boxes": after[shown].boxes.numpy(), "final_scores": after[shown].scores.numpy(),
                "final_labels": after[shown].labels.numpy(),
                "pr_precision": np.concatenate([c.precision for c in curves]),
                "pr_recall": np.concatenate([c.recall for c in curves]),
                "pr_class": np.concatenate([np.full(len(c.precision), k) for k, c in enumerate(curves)]),
                "losses": np.asarray(losses)},
        notes=f"{p.image_size}x{p.image_size} synthetic scenes and a {len(p.widths)}-convolution backbone with a "
              f"1x1-convolution head in place of 448x448 photographs and YOLO v1's 24 convolutional layers with "
              f"a fully connected head; {p.n_classes} classes instead of 20; trained from scratch for {p.steps} "
              f"Adam steps on {p.n_train} scenes. NMS drops boxes overlapping a better one by IoU > {p.nms_iou}: "
              f"true boxes in these scenes overlap by at most 0.2, so no real neighbour is suppressed.")


@yolo_detection.requires
def _(p):
    ratio = p.image_size / p.grid
    if p.image_size % p.grid or ratio != 2 ** round(math.log2(ratio)):
        raise ValueError(f"The 'grid' parameter of figure 10.18 must be image_size ({p.image_size}) divided by a "
                         f"power of two. Got {p.grid} instead.")
    pools = round(math.log2(ratio))
    if len(p.widths) < pools:
        raise ValueError(f"The 'widths' parameter of figure 10.18 must be a list of at least {pools} widths (one "
                         f"convolution per 2x2 pooling from {p.image_size} to {p.grid}). "
                         f"Got {','.join(map(str, p.widths))} instead.")
    for key, low, high in (("min_size", 3, p.max_size), ("max_size", p.min_size, p.image_size)):
        if not low <= getattr(p, key) <= high:
            raise ValueError(f"The {key!r} parameter of figure 10.18 must be in [{low}, {high}] (min_size <= "
                             f"max_size <= image_size). Got {getattr(p, key)} instead.")
    if p.batch_size > p.n_train:
        raise ValueError(f"The 'batch_size' parameter of figure 10.18 must be at most n_train ({p.n_train}). "
                         f"Got {p.batch_size} instead.")


@yolo_detection.plot
def _(r):
    a, m, p = r.arrays, r.metrics, r.params
    size, grid = p["image_size"], p["grid"]
    names = CLASSES[:p["n_classes"]]
    fig, axes = style.subplots(1, 5, width=2.7, height=2.9)

    def scene(ax, title):
        ax.imshow(a["image"], extent=(0, size, size, 0), interpolation="nearest")
        ax.set(xlim=(0, size), ylim=(size, 0), xticks=[], yticks=[], title=title)

    def box(ax, b, colour, lw, ls="-"):
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec=colour, lw=lw, ls=ls))

    scene(axes[0], f"input, {grid}x{grid} grid")
    for k in range(1, grid):
        axes[0].axhline(k * size / grid, color="white", lw=0.6, alpha=0.8)
        axes[0].axvline(k * size / grid, color="white", lw=0.6, alpha=0.8)

    ax = axes[1]
    colours = np.array([to_rgb(c) for c in _CLASS_COLOURS])[a["cell_class"]]  # (S, S, 3)
    ax.imshow(a["image"].mean(-1), cmap="gray", extent=(0, size, size, 0), interpolation="nearest")
    ax.imshow(colours, extent=(0, size, size, 0), alpha=0.55, interpolation="nearest")
    ax.set(xlim=(0, size), ylim=(size, 0), xticks=[], yticks=[], title="class per cell")
    ax.legend(handles=[Patch(color=_CLASS_COLOURS[k], label=n) for k, n in enumerate(names)], loc="upper center",
              bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7, handlelength=1)

    scene(axes[2], "boxes (width: conf.)")
    for b, c in zip(a["raw_boxes"], a["raw_conf"]):
        if c > 0.02:
            box(axes[2], b, style.MODEL, 3.0 * c)

    scene(axes[3], "after NMS")
    for b in a["truth_boxes"]:
        box(axes[3], b, style.TRUTH, 1.6)
    for b, s, k in zip(a["final_boxes"], a["final_scores"], a["final_labels"]):
        if s >= 0.25:  # the confident detections; lower ones count in the mAP but would clutter the drawing
            box(axes[3], b, style.MODEL, 1.4)
            axes[3].text(b[0] + 0.5, b[1] - 0.8, f"{names[k]} {s:.2f}", color=style.MODEL, fontsize=6,
                         bbox=dict(fc="black", ec="none", pad=0.5, alpha=0.6))

    ax = axes[4]
    for k, name in enumerate(names):
        sel = a["pr_class"] == k
        ax.plot(np.concatenate([[0], a["pr_recall"][sel]]), np.concatenate([[1], a["pr_precision"][sel]]),
                color=_CLASS_COLOURS[k], lw=1.2, label=f"{name} {m['ap50_per_class'][k]:.2f}")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel="recall", ylabel="precision", title=f"mAP@0.5 = {m['map50']:.2f}")
    ax.legend(fontsize=7, loc="lower left")
    style.panel_labels(axes)
    return fig


@yolo_detection.checks
def _(r):
    m, p = r.metrics, r.params
    claim = ("after NMS at most one box matches each detected object (IoU >= 0.5, right class) in at least 95% "
             "of cases")
    if m["recall_after_nms"] > 0:  # objects no box matches have no duplicates: counting them would pass by itself
        duplicates = Check.holds(claim, m["at_most_one_of_matched"] >= 0.95, m["at_most_one_of_matched"], ">= 0.95")
    else:
        duplicates = Check.untested(claim, "no held-out object was detected, so no duplicates can be counted")
    return [
        Check.greater(f"mean average precision at IoU 0.5 on {m['n_test_objects']} held-out objects "
                      f"is at least {p['map_target']}", m["map50"], p["map_target"]),
        duplicates,
        Check.greater("NMS removes duplicates: boxes per object before NMS exceed those after",
                      m["boxes_per_object_before_nms"] - m["boxes_per_object_after_nms"], 0.0),
        Check.equal("NMS keeps the best of three duplicates, the distinct box and the other class's box",
                    m["nms_case_kept"], m["nms_case_expected"]),
        Check.less("the training loss fell to under half its start", m["loss_last"] / m["loss_first"], 0.5),
        Check.holds("every decoded box lies inside the image with positive size, scores in [0, 1]",
                    m["decoded_boxes_inside"] and m["decoded_scores_in_unit"],
                    [m["decoded_boxes_inside"], m["decoded_scores_in_unit"]]),
    ]
