"""The YOLO detector: targets, the YOLO v1 loss, decoding and training (IoU, NMS and mAP: tests/analysis)."""

import math

import numpy as np
import pytest
import torch

from udl.analysis.detection import box_iou, mean_average_precision
from udl.data.scenes import make_scenes
from udl.models.yolo import YOLO, YOLOConfig, YOLOLoss, decode, encode_targets, split_output
from udl.systems import weight_layers
from udl.train import fit

T = torch.tensor


def _iou_scalar(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# --------------------------------------------------------------------------- targets, loss, decoding
CFG = YOLOConfig.preset("tiny")  # 32 pixels, 4 x 4 cells of 8 pixels, B = 2, C = 3


def test_config_presets_and_validation():
    assert (CFG.image_size, CFG.grid, CFG.n_boxes, CFG.n_classes, CFG.n_outputs, CFG.n_pools) == (32, 4, 2, 3, 13, 3)
    default = YOLOConfig.preset("default")
    assert (default.image_size, default.grid, default.cell_size, default.n_outputs) == (56, 7, 8.0, 15)
    with pytest.raises(ValueError, match="'grid'"):
        YOLOConfig(image_size=56, grid=5)
    with pytest.raises(ValueError, match="'widths'"):
        YOLOConfig(image_size=64, grid=4, widths=(8, 8))  # four poolings need four convolutions
    with pytest.raises(ValueError, match="'name'"):
        YOLOConfig.preset("huge")


def test_encode_targets():
    boxes = [T([[9.0, 1.0, 15.0, 5.0], [0.0, 16.0, 32.0, 32.0]]), torch.zeros(0, 4)]
    labels = [T([2, 0]), T([], dtype=torch.int64)]
    target = encode_targets(boxes, labels, CFG)
    assert target.shape == (2, 4, 4, 8)
    assert target[..., 0].sum() == 2 and target[1].abs().sum() == 0
    # centre (12, 3) px -> cell column 1, row 0, offsets (0.5, 0.375); size (6/32, 4/32)
    torch.testing.assert_close(target[0, 0, 1], T([1.0, 0.5, 0.375, 6 / 32, 4 / 32, 0.0, 0.0, 1.0]))
    # centre (16, 24) -> column 2, row 3, offsets (0, 0); the whole width
    torch.testing.assert_close(target[0, 3, 2], T([1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0]))


def test_encode_targets_keeps_the_larger_of_two_objects_in_a_cell():
    target = encode_targets([T([[0.0, 0.0, 6.0, 6.0], [1.0, 1.0, 5.0, 5.0]])], [T([1, 2])], CFG)
    assert target[0, 0, 0, 3].item() == pytest.approx(6 / 32) and target[0, 0, 0, 6] == 1 and target[0, 0, 0, 7] == 0


def test_encode_targets_refuses_bad_ground_truth():
    with pytest.raises(ValueError, match="inside"):
        encode_targets([T([[0.0, 0.0, 40.0, 5.0]])], [T([0])], CFG)
    with pytest.raises(ValueError, match="n_classes"):
        encode_targets([T([[0.0, 0.0, 4.0, 5.0]])], [T([3])], CFG)
    with pytest.raises(ValueError, match="labels"):
        encode_targets([T([[0.0, 0.0, 4.0, 5.0]])], [], CFG)


def _loss_reference(output, target, cfg):
    """The YOLO v1 loss with explicit loops over images, cells and boxes."""
    n, s, b, c = output.shape[0], cfg.grid, cfg.n_boxes, cfg.n_classes
    sig = torch.sigmoid
    total = 0.0
    for k in range(n):
        for i in range(s):
            for j in range(s):
                cell, t = output[k, i, j], target[k, i, j]
                probs = torch.softmax(cell[5 * b:], 0)
                preds = [sig(cell[5 * q:5 * q + 5]) for q in range(b)]
                if t[0] == 0:
                    total += cfg.lambda_noobj * sum(p[4] ** 2 for p in preds)
                    continue
                tx, ty, tw, th = t[1:5].tolist()
                truth = [(j + tx) / s - tw / 2, (i + ty) / s - th / 2, (j + tx) / s + tw / 2, (i + ty) / s + th / 2]
                ious = []
                for p in preds:
                    w, h = p[2].item() ** 2, p[3].item() ** 2
                    cx, cy = (j + p[0].item()) / s, (i + p[1].item()) / s
                    ious.append(_iou_scalar([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], truth))
                r = int(np.argmax(ious))
                for q, p in enumerate(preds):
                    if q != r:
                        total += cfg.lambda_noobj * p[4] ** 2
                p = preds[r]
                total += cfg.lambda_coord * ((p[0] - tx) ** 2 + (p[1] - ty) ** 2)
                total += cfg.lambda_coord * ((p[2] - math.sqrt(tw)) ** 2 + (p[3] - math.sqrt(th)) ** 2)
                total += (p[4] - ious[r]) ** 2
                total += ((probs - t[5:]) ** 2).sum()
    return total / n


def test_loss_equals_the_written_out_equation():
    scenes = make_scenes(3, size=32, min_size=5, max_size=14, n_classes=3, seed=0)
    target = encode_targets(scenes.boxes, scenes.labels, CFG)
    output = torch.randn(3, 4, 4, 13, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss = YOLOLoss(CFG)
    torch.testing.assert_close(loss(output, target).double(), _loss_reference(output, target, CFG).double(),
                               rtol=1e-5, atol=1e-6)
    parts = loss.parts(output, target)
    assert set(parts) == {"xy", "wh", "obj", "noobj", "class"} and all(v >= 0 for v in parts.values())


def test_loss_gradient_reaches_only_the_responsible_box_coordinates():
    target = encode_targets([T([[2.0, 2.0, 10.0, 8.0]])], [T([1])], CFG)  # one object, cell (0, 0)
    output = torch.zeros(1, 4, 4, 13, requires_grad=True)
    with torch.no_grad():
        output[0, 0, 0, 7:9] = 2.0  # box 1 is much larger than box 0
    YOLOLoss(CFG)(output, target).backward()
    grad = output.grad[0]
    pred = split_output(output.detach(), CFG)
    assert pred.sqrt_wh[0, 0, 0, 1, 0] > pred.sqrt_wh[0, 0, 0, 0, 0]
    # the object 8 x 6 px in a 32-px image: sqrt(w) ~ 0.5 fits box 0 (sigmoid(0) = 0.5) better
    assert grad[0, 0, 0:4].abs().sum() > 0 and grad[0, 0, 5:9].abs().sum() == 0
    assert grad[1:, :, :4].abs().sum() == 0 and grad[0, 1:, :4].abs().sum() == 0  # no coordinates without objects
    confidence_grad = grad[..., [4, 9]]  # (S, S, B)
    # every other box: d/dt λ_noobj σ(t)² at t = 0 is 0.5 · 2 · 0.5 · 0.25 = 0.125, pushed towards 0
    others = torch.ones(4, 4, 2, dtype=torch.bool)
    others[0, 0, 0] = False
    torch.testing.assert_close(confidence_grad[others], torch.full((31,), 0.125))
    # the responsible one: 2 (σ(0) - IoU) σ'(0), pushed towards its IoU (held fixed)
    pred_box = T([[0.0, 0.0, 8.0, 8.0]])  # centre (0.5 · 8, 0.5 · 8) px, 0.5² · 32 = 8 px wide
    iou = box_iou(pred_box, T([[2.0, 2.0, 10.0, 8.0]])).item()
    assert confidence_grad[0, 0, 0].item() == pytest.approx(2 * (0.5 - iou) * 0.25, rel=1e-5)


def test_decode_places_boxes_on_the_grid():
    output = torch.full((1, 4, 4, 13), -20.0)  # every confidence ~ 0
    output[0, 2, 1, :5] = T([0.0, 0.0, 0.0, 0.0, 20.0])  # cell row 2, column 1: centre offset 0.5, sqrt size 0.5
    output[0, 2, 1, 10:] = T([0.0, 3.0, 0.0])  # class 1
    (det,) = decode(output, CFG, conf_threshold=0.05)
    # centre ((1 + 0.5) / 4, (2 + 0.5) / 4) * 32 = (12, 20) px, size 0.25 * 32 = 8 px
    torch.testing.assert_close(det.boxes, T([[8.0, 16.0, 16.0, 24.0]]))
    p1 = math.exp(3) / (math.exp(3) + 2)
    torch.testing.assert_close(det.scores, T([p1]), rtol=1e-5, atol=1e-6)
    assert det.labels.tolist() == [1]
    (every,) = decode(output, CFG, conf_threshold=0.0)
    assert len(every.boxes) == 4 * 4 * 2
    assert (every.boxes >= 0).all() and (every.boxes <= 32).all() and (every.boxes[:, 2:] > every.boxes[:, :2]).all()


def test_decode_inverts_encode():
    scenes = make_scenes(4, size=32, min_size=5, max_size=14, n_classes=3, seed=2)
    target = encode_targets(scenes.boxes, scenes.labels, CFG)
    logit = lambda v: torch.log(v.clamp(1e-6, 1 - 1e-6) / (1 - v.clamp(1e-6, 1 - 1e-6)))  # noqa: E731
    output = torch.full((4, 4, 4, 13), -30.0)
    obj = target[..., 0] > 0
    output[..., 0:2] = logit(target[..., 1:3])
    output[..., 2:4] = logit(target[..., 3:5].sqrt())
    output[..., 4] = torch.where(obj, 30.0, -30.0)
    output[..., 10:] = target[..., 5:] * 30
    for det, boxes, labels in zip(decode(output, CFG, 0.5), scenes.boxes, scenes.labels):
        assert sorted(map(tuple, det.boxes.round().tolist())) == sorted(map(tuple, boxes.tolist()))
        assert sorted(det.labels.tolist()) == sorted(labels.tolist())


# --------------------------------------------------------------------------- the network
def test_model_shapes_and_depth():
    model = YOLO("tiny", generator=3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4, 4, 13)
    assert model.depth == weight_layers(model) - 1 == 3
    default = YOLO()
    assert default(torch.zeros(1, 3, 56, 56)).shape == (1, 7, 7, 15)
    with pytest.raises(ValueError, match="'x'"):
        model(torch.zeros(1, 3, 56, 56))


def test_training_reduces_the_loss_and_detects():
    scenes = make_scenes(128, size=32, min_size=6, max_size=14, max_objects=3, n_classes=3, seed=0)
    model = YOLO("tiny", generator=0)
    targets = encode_targets(scenes.boxes, scenes.labels, CFG)
    losses = fit(model, (scenes.images, targets), YOLOLoss(CFG), lambda p: torch.optim.Adam(p, 0.01),
                 steps=40, batch_size=16, device="cpu", progress=False)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    detections = model.detect(scenes.images[:8], conf_threshold=0.0, iou_threshold=0.5)
    assert len(detections) == 8 and model.training
    for det in detections:  # NMS ran: no two kept boxes of one class overlap more than 0.5
        for c in det.labels.unique():
            same = det.boxes[det.labels == c]
            assert box_iou(same, same).fill_diagonal_(0).max() <= 0.5
    score = mean_average_precision(detections, list(zip(scenes.boxes[:8], scenes.labels[:8])))
    assert 0.0 <= score <= 1.0
