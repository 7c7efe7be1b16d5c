"""A YOLO-style object detector (UDL §10.5.2, fig. 10.18; Redmon et al., 2016).

YOLO ("you only look once") detects every object in one forward pass. A
convolutional network maps the image to an S x S grid of cells; each cell predicts

- B boxes, each ``(x, y, √w, √h, confidence)``: the box centre as an offset in
  [0, 1] within the cell, the square roots of its width and height as fractions of
  the image, and the confidence that the box holds an object (ideally its IoU with
  the object);
- C class probabilities Pr(class | object), one set per cell, shared by its B boxes.

So the output is an ``S x S x (5B + C)`` tensor (7 x 7 x 30 in the book's figure:
S = 7, B = 2, C = 20). The cell that holds an object's centre is responsible for it,
and of its B boxes the one that overlaps the object most (highest IoU) is trained
to fit it. At test time each box scores ``confidence x max_c Pr(c | object)``;
boxes above a threshold are kept, and non-maximum suppression removes the
lower-scoring duplicates of each object. Detection quality is the mean average
precision (mAP) at IoU 0.5, as in PASCAL VOC.

Everything here works in pixels: boxes are ``(x0, y0, x1, y1)`` with the
conventions of :mod:`udl.data.scenes`. This file holds, small parts first: box
geometry (:func:`box_iou`), :func:`non_max_suppression`, the evaluation
(:func:`average_precision`, :func:`mean_average_precision`,
:func:`matches_per_object`), the configuration, the network, the target encoding,
the YOLO loss and :func:`decode`.

Differences from YOLO v1: the network is a small convolutional backbone whose
output cell (i, j) comes from a 1x1 convolution over the backbone's S x S feature
map (v1 ends in fully connected layers); batch normalisation is optional (v2 added
it); class scores go through a softmax before the squared-error class loss.

Example::

    scenes = make_scenes(512, size=56, seed=0)
    model = YOLO("default", seed=0)                # 56-pixel images, 7 x 7 grid
    targets = encode_targets(scenes.boxes, scenes.labels, model.config)
    loss = YOLOLoss(model.config)
    fit(model, (scenes.images, targets), loss, lambda p: torch.optim.Adam(p, 1e-3),
        steps=500, batch_size=32)
    detections = model.detect(scenes.images[:4])   # list of Detections per image
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from udl.data.scenes import check_boxes
from udl.validate import check_float, check_int


# --------------------------------------------------------------------------- box geometry
def _pairwise_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """IoU of every box of ``a`` (..., 4) with the matching box of ``b`` (broadcast); no checks."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    intersection = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return intersection / (area_a + area_b - intersection + eps)


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every box in ``boxes_a`` with every box in ``boxes_b``.

    IoU(A, B) = |A ∩ B| / |A ∪ B| = |A ∩ B| / (|A| + |B| - |A ∩ B|), where the
    intersection of two axis-aligned boxes is the box
    ``(max x0, max y0, min x1, min y1)`` when it is not empty. IoU is 1 for equal
    boxes, 0 for disjoint ones, symmetric, and unchanged when both boxes are scaled
    or shifted together.

    Args:
        boxes_a: ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` with positive width and height.
        boxes_b: ``(M, 4)`` boxes.

    Shape:
        ``(N, 4), (M, 4) -> (N, M)``.

    Example:
        >>> box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 0., 3., 2.]]))
        tensor([[0.3333]])
    """
    boxes_a = check_boxes(boxes_a, "boxes_a", "box_iou")
    boxes_b = check_boxes(boxes_b, "boxes_b", "box_iou")
    return _pairwise_iou(boxes_a[:, None, :], boxes_b[None, :, :])  # (N, 1, 4) with (1, M, 4) -> (N, M)


def non_max_suppression(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.5,
                        labels: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy non-maximum suppression: keep the best box, drop those overlapping it, repeat.

    Boxes are visited in decreasing score; a box is kept unless it overlaps an
    already kept box (of the same label, when ``labels`` is given) with
    IoU > ``iou_threshold``. Boxes of different labels never suppress each other.

    Args:
        boxes: ``(K, 4)`` boxes ``(x0, y0, x1, y1)``.
        scores: ``(K,)`` finite scores.
        iou_threshold: the overlap above which the lower-scoring box is dropped, in
            [0, 1]. Default: 0.5.
        labels: ``(K,)`` integer classes for per-class suppression, or None (all
            boxes compete). Default: None.

    Returns:
        The indices of the kept boxes, int64, in decreasing score (ties: lower index first).

    Shape:
        ``(K, 4), (K,) -> (K_kept,)``.

    Example:
        >>> b = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
        >>> non_max_suppression(b, torch.tensor([0.9, 0.8, 0.7]))
        tensor([0, 2])
    """
    owner = "non_max_suppression"
    boxes = check_boxes(boxes, "boxes", owner)
    scores = _check_vector(scores, "scores", owner, len(boxes))
    check_float(iou_threshold, "iou_threshold", owner, low=0.0, high=1.0)
    if labels is not None:
        labels = _check_labels(labels, "labels", owner, len(boxes))
    order = torch.argsort(-scores, stable=True)
    iou = _pairwise_iou(boxes[:, None, :], boxes[None, :, :])  # (K, K)
    if labels is not None:
        iou = iou * (labels[:, None] == labels[None, :])  # other classes never overlap
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


# --------------------------------------------------------------------------- evaluation
class Detections(NamedTuple):
    """The detections in one image: boxes in pixels, scores and class labels."""

    boxes: torch.Tensor  # (K, 4) float32 (x0, y0, x1, y1)
    scores: torch.Tensor  # (K,) float32
    labels: torch.Tensor  # (K,) int64


def _check_vector(values, name: str, owner: str, length: int) -> torch.Tensor:
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    if not isinstance(values, torch.Tensor) or values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"The {name!r} parameter of {owner} must be a real tensor of shape ({length},). "
                        f"Got {type(values).__name__} instead.")
    if values.shape != (length,):
        raise ValueError(f"The {name!r} parameter of {owner} must have shape ({length},). "
                         f"Got {tuple(values.shape)} instead.")
    values = values.float()
    if not torch.isfinite(values).all():
        raise ValueError(f"The {name!r} parameter of {owner} must hold finite numbers. Got {values.tolist()} instead.")
    return values


def _check_labels(labels, name: str, owner: str, length: int) -> torch.Tensor:
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool \
            or labels.is_complex():
        raise TypeError(f"The {name!r} parameter of {owner} must be an integer tensor of shape ({length},). "
                        f"Got {labels!r} instead.")
    if labels.shape != (length,) or (labels < 0).any():
        raise ValueError(f"The {name!r} parameter of {owner} must hold {length} non-negative class indices. "
                         f"Got {labels.tolist()} instead.")
    return labels.long()


def _check_detections(predictions, ground_truth, owner: str):
    """Validate per-image predictions (boxes, scores, labels) and truths (boxes, labels)."""
    if not isinstance(predictions, Sequence) or isinstance(predictions, (str, bytes)):
        raise TypeError(f"The 'predictions' parameter of {owner} must be a list of (boxes, scores, labels), "
                        f"one per image. Got {type(predictions).__name__} instead.")
    if not isinstance(ground_truth, Sequence) or isinstance(ground_truth, (str, bytes)):
        raise TypeError(f"The 'ground_truth' parameter of {owner} must be a list of (boxes, labels), "
                        f"one per image. Got {type(ground_truth).__name__} instead.")
    if len(predictions) != len(ground_truth):
        raise ValueError(f"The 'predictions' parameter of {owner} must have one entry per image of "
                         f"ground_truth ({len(ground_truth)}). Got {len(predictions)} instead.")
    preds, truths = [], []
    for item in predictions:
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError(f"The 'predictions' parameter of {owner} must hold (boxes, scores, labels) tuples. "
                            f"Got {type(item).__name__} instead.")
        boxes = check_boxes(item[0], "predictions", owner)
        preds.append(Detections(boxes, _check_vector(item[1], "predictions", owner, len(boxes)),
                                _check_labels(item[2], "predictions", owner, len(boxes))))
    for item in ground_truth:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"The 'ground_truth' parameter of {owner} must hold (boxes, labels) pairs. "
                            f"Got {type(item).__name__} instead.")
        boxes = check_boxes(item[0], "ground_truth", owner)
        truths.append((boxes, _check_labels(item[1], "ground_truth", owner, len(boxes))))
    return preds, truths


class PrecisionRecall(NamedTuple):
    """One class's ranked detections: precision and recall after each, and its AP."""

    precision: np.ndarray  # (K,) precision of the top-k detections, k = 1..K
    recall: np.ndarray  # (K,) recall of the top-k detections
    ap: float  # average precision (all-point interpolation)
    n_truth: int  # ground-truth objects of this class


def average_precision(precision, recall) -> float:
    """The area under the interpolated precision-recall curve (PASCAL VOC, all points).

    With detections ranked by score, precision p_k and recall r_k of the top k
    (r non-decreasing), the interpolated precision at recall r is the best precision
    at any recall at least r, p_interp(r) = max_{k: r_k >= r} p_k, and

        AP = Σ_k (r_k - r_{k-1}) p_interp(r_k),   r_0 = 0.

    Args:
        precision: ``(K,)`` precisions in [0, 1].
        recall: ``(K,)`` non-decreasing recalls in [0, 1].

    Example:
        >>> average_precision([1.0, 0.5, 2 / 3], [0.5, 0.5, 1.0])   # hit, miss, hit; 2 objects
        0.8333333333333333
    """
    owner = "average_precision"
    precision = np.asarray(precision, dtype=float)
    recall = np.asarray(recall, dtype=float)
    if precision.ndim != 1 or precision.shape != recall.shape:
        raise ValueError(f"The 'recall' parameter of {owner} must have the shape of precision {precision.shape}. "
                         f"Got {recall.shape} instead.")
    for name, values in (("precision", precision), ("recall", recall)):
        if not (np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
            raise ValueError(f"The {name!r} parameter of {owner} must hold numbers in [0, 1]. "
                             f"Got {values.tolist()} instead.")
    if (np.diff(recall) < 0).any():
        raise ValueError(f"The 'recall' parameter of {owner} must be non-decreasing. Got {recall.tolist()} instead.")
    if precision.size == 0:
        return 0.0
    p_interp = np.maximum.accumulate(precision[::-1])[::-1]  # max over k' >= k
    steps = np.diff(np.concatenate([[0.0], recall]))  # r_k - r_{k-1}
    return float(np.sum(steps * p_interp))


def precision_recall(predictions, ground_truth, label: int, iou_threshold: float = 0.5) -> PrecisionRecall:
    """Rank one class's detections over all images and mark each a hit or a false positive.

    Detections of class ``label`` are sorted by decreasing score (ties: image order,
    then index). Each is matched to the object of its image and class with which it
    has the highest IoU; it is a true positive if that IoU >= ``iou_threshold`` and
    the object has not been matched by a higher-scoring detection, else a false
    positive (so a duplicate counts against precision). Precision after k detections
    is TP_k / k, recall TP_k / (objects of the class).

    Args:
        predictions: per image, ``(boxes (K, 4), scores (K,), labels (K,))``, e.g. :class:`Detections`.
        ground_truth: per image, ``(boxes (M, 4), labels (M,))``.
        label: the class.
        iou_threshold: the least IoU of a hit, in (0, 1]. Default: 0.5.
    """
    owner = "precision_recall"
    check_int(label, "label", owner, minimum=0)
    check_float(iou_threshold, "iou_threshold", owner, low=0.0, high=1.0, low_open=True)
    preds, truths = _check_detections(predictions, ground_truth, owner)
    return _precision_recall(preds, truths, label, iou_threshold)


def _precision_recall(preds, truths, label, iou_threshold) -> PrecisionRecall:
    entries = []  # (score, image, box) for every detection of this class
    for image, det in enumerate(preds):
        for k in torch.nonzero(det.labels == label).flatten().tolist():
            entries.append((float(det.scores[k]), image, det.boxes[k]))
    class_truth = [boxes[labels == label] for boxes, labels in truths]
    n_truth = sum(len(b) for b in class_truth)
    order = np.argsort([-e[0] for e in entries], kind="stable")
    matched = [torch.zeros(len(b), dtype=torch.bool) for b in class_truth]
    hits = np.zeros(len(entries))
    for rank, idx in enumerate(order):
        _, image, box = entries[idx]
        objects = class_truth[image]
        if len(objects) == 0:
            continue
        iou = _pairwise_iou(box[None, :], objects)  # (M,)
        best = int(torch.argmax(iou))
        if iou[best] >= iou_threshold and not matched[image][best]:
            hits[rank] = 1.0
            matched[image][best] = True
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(entries) + 1)
    recall = tp / max(n_truth, 1)
    ap = average_precision(precision, recall) if n_truth else float("nan")
    return PrecisionRecall(precision, recall, ap, n_truth)


def mean_average_precision(predictions, ground_truth, iou_threshold: float = 0.5) -> float:
    """mAP: the average precision of each class present in the ground truth, averaged.

    See :func:`precision_recall` for the matching and :func:`average_precision` for
    AP. A class with no ground-truth object is left out (its AP is undefined).

    Args:
        predictions: per image, ``(boxes (K, 4), scores (K,), labels (K,))``.
        ground_truth: per image, ``(boxes (M, 4), labels (M,))``; at least one object overall.
        iou_threshold: the least IoU of a hit, in (0, 1]. Default: 0.5 (mAP@0.5).

    Example:
        >>> truth = [(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([1]))]
        >>> perfect = [(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([0.9]), torch.tensor([1]))]
        >>> mean_average_precision(perfect, truth)
        1.0
    """
    owner = "mean_average_precision"
    check_float(iou_threshold, "iou_threshold", owner, low=0.0, high=1.0, low_open=True)
    preds, truths = _check_detections(predictions, ground_truth, owner)
    classes = sorted({int(c) for _, labels in truths for c in labels.tolist()})
    if not classes:
        raise ValueError(f"The 'ground_truth' parameter of {owner} must hold at least one object. Got none instead.")
    return float(np.mean([_precision_recall(preds, truths, c, iou_threshold).ap for c in classes]))


def matches_per_object(predictions, ground_truth, iou_threshold: float = 0.5) -> np.ndarray:
    """For every ground-truth object, the number of predictions of its class with IoU >= threshold.

    After non-maximum suppression each object should have exactly one; 0 is a miss
    and 2 or more are duplicates. Objects are listed image by image.

    Returns:
        ``(M_total,)`` int64 counts.
    """
    owner = "matches_per_object"
    check_float(iou_threshold, "iou_threshold", owner, low=0.0, high=1.0, low_open=True)
    preds, truths = _check_detections(predictions, ground_truth, owner)
    counts = []
    for det, (boxes, labels) in zip(preds, truths):
        if len(boxes) == 0:
            continue
        if len(det.boxes) == 0:
            counts.append(torch.zeros(len(boxes), dtype=torch.int64))
            continue
        iou = _pairwise_iou(boxes[:, None, :], det.boxes[None, :, :])  # (M, K)
        same = labels[:, None] == det.labels[None, :]
        counts.append(((iou >= iou_threshold) & same).sum(1))
    return torch.cat(counts).numpy() if counts else np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class YOLOConfig:
    """The detector's sizes and loss weights.

    The backbone is a stack of 3x3 convolutions (padding 1), each followed by batch
    normalisation (optional) and a leaky ReLU (slope 0.1, as in YOLO); the first
    log2(image_size / grid) of them are each followed by 2x2 max pooling, so the
    feature map ends S x S. A 1x1 convolution then gives every cell its 5B + C outputs.

    Presets: ``YOLOConfig.preset("tiny")`` (32-pixel images, 4 x 4 grid, three
    classes: for tests) and ``"default"`` (56-pixel images, 7 x 7 grid, five classes:
    figure 10.18).
    """

    image_size: int = 56  # side of the square input image in pixels (the book's 448 / 8)
    grid: int = 7  # S: the output grid is S x S cells (7 x 7 as in the book)
    n_boxes: int = 2  # B: boxes predicted per cell
    n_classes: int = 5  # C: object classes
    widths: tuple[int, ...] = (16, 32, 64, 64)  # channels of the 3x3 convolutions
    batch_norm: bool = True  # batch normalisation after each convolution
    lambda_coord: float = 5.0  # λ_coord: weight of the box coordinates in the loss
    lambda_noobj: float = 0.5  # λ_noobj: weight of the confidence of boxes without objects

    def __post_init__(self):
        owner = "YOLOConfig"
        check_int(self.image_size, "image_size", owner)
        check_int(self.grid, "grid", owner)
        check_int(self.n_boxes, "n_boxes", owner)
        check_int(self.n_classes, "n_classes", owner)
        if not isinstance(self.widths, (tuple, list)) or not self.widths or \
                any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"The 'widths' parameter of {owner} must be a non-empty tuple of positive ints. "
                             f"Got {self.widths!r} instead.")
        object.__setattr__(self, "widths", tuple(self.widths))
        ratio = self.image_size / self.grid
        if self.image_size % self.grid or ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f"The 'grid' parameter of {owner} must divide image_size = {self.image_size} by a "
                             f"power of two. Got {self.grid!r} instead.")
        if self.n_pools > len(self.widths):
            raise ValueError(f"The 'widths' parameter of {owner} must have at least {self.n_pools} entries "
                             f"(one per 2x2 pooling from {self.image_size} to {self.grid}). "
                             f"Got {self.widths!r} instead.")
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"The 'batch_norm' parameter of {owner} must be a bool. Got {self.batch_norm!r} instead.")
        check_float(self.lambda_coord, "lambda_coord", owner, low=0.0)
        check_float(self.lambda_noobj, "lambda_noobj", owner, low=0.0)

    @property
    def n_pools(self) -> int:
        """The number of 2x2 poolings from the image to the S x S grid."""
        return round(math.log2(self.image_size // self.grid))

    @property
    def cell_size(self) -> float:
        """The side of one grid cell in pixels."""
        return self.image_size / self.grid

    @property
    def n_outputs(self) -> int:
        """5B + C outputs per cell."""
        return 5 * self.n_boxes + self.n_classes

    @classmethod
    def preset(cls, name: str) -> YOLOConfig:
        """A named configuration: ``"tiny"`` (tests) or ``"default"`` (figure 10.18)."""
        if name not in _PRESETS:
            raise ValueError(f"The 'name' parameter of YOLOConfig.preset must be one of "
                             f"{', '.join(map(repr, _PRESETS))}. Got {name!r} instead.")
        return cls(**_PRESETS[name])


_PRESETS = {"tiny": dict(image_size=32, grid=4, n_classes=3, widths=(8, 16, 16)),  # tests: milliseconds a step
            "default": dict()}  # figure 10.18


# --------------------------------------------------------------------------- the network
class YOLO(nn.Module):
    """A YOLO detector: a convolutional backbone to an S x S grid of (5B + C) outputs per cell.

    ``forward`` returns the raw outputs (logits); for box b of cell (i, j) the
    entries ``5b .. 5b+4`` are ``(x, y, √w, √h, confidence)`` before a sigmoid, and
    the last C entries are the class scores before a softmax. :func:`decode` turns
    them into boxes; :meth:`detect` also applies non-maximum suppression.

    Args:
        config: a :class:`YOLOConfig` or a preset name (``"tiny"``, ``"default"``).
            Default: "default".
        seed: if given, the weights are initialised (torch's default initialisation)
            from this seed, leaving torch's global generator untouched. Default: None.

    Shape:
        ``(N, 3, image_size, image_size) -> (N, S, S, 5B + C)``.

    Example:
        >>> model = YOLO("tiny", seed=0)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4, 4, 13])
    """

    def __init__(self, config: YOLOConfig | str = "default", *, seed: int | None = None):
        super().__init__()
        if isinstance(config, str):
            if config not in _PRESETS:
                raise ValueError(f"The 'config' parameter of YOLO must be a YOLOConfig or one of "
                                 f"{', '.join(map(repr, _PRESETS))}. Got {config!r} instead.")
            config = YOLOConfig.preset(config)
        if not isinstance(config, YOLOConfig):
            raise TypeError(f"The 'config' parameter of YOLO must be a YOLOConfig or a preset name. "
                            f"Got {config!r} instead.")
        if seed is not None:
            check_int(seed, "seed", "YOLO", minimum=0)
        self.config = config
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            layers: list[nn.Module] = []
            channels = 3
            for k, width in enumerate(config.widths):
                layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not config.batch_norm))
                if config.batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.LeakyReLU(0.1))
                if k < config.n_pools:
                    layers.append(nn.MaxPool2d(2))
                channels = width
            self.backbone = nn.Sequential(*layers)
            self.head = nn.Conv2d(channels, config.n_outputs, 1)  # every cell's 5B + C outputs

    @property
    def depth(self) -> int:
        """Hidden layers: the weight layers (convolutions) less the output layer."""
        return len(self.config.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs per cell; ``(N, 3, H, H) -> (N, S, S, 5B + C)``."""
        size = self.config.image_size
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"The 'x' parameter of YOLO.forward must be a torch.Tensor. Got {type(x).__name__} instead.")
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
            raise ValueError(f"The 'x' parameter of YOLO.forward must have shape (N, 3, {size}, {size}). "
                             f"Got {tuple(x.shape)} instead.")
        return self.head(self.backbone(x)).permute(0, 2, 3, 1)  # (N, 5B+C, S, S) -> (N, S, S, 5B+C)

    @torch.no_grad()
    def detect(self, images: torch.Tensor, conf_threshold: float = 0.05, iou_threshold: float = 0.5,
               batch_size: int = 256) -> list[Detections]:
        """Detections per image: forward pass (eval mode), :func:`decode`, per-class NMS."""
        check_float(conf_threshold, "conf_threshold", "YOLO.detect", low=0.0, high=1.0)
        check_float(iou_threshold, "iou_threshold", "YOLO.detect", low=0.0, high=1.0)
        check_int(batch_size, "batch_size", "YOLO.detect")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        outputs = torch.cat([self(images[i:i + batch_size].to(device)).float().cpu()
                             for i in range(0, len(images), batch_size)])
        self.train(was_training)
        results = []
        for det in decode(outputs, self.config, conf_threshold):
            keep = non_max_suppression(det.boxes, det.scores, iou_threshold, det.labels)
            results.append(Detections(det.boxes[keep], det.scores[keep], det.labels[keep]))
        return results


# --------------------------------------------------------------------------- targets, loss, decoding
class Prediction(NamedTuple):
    """The outputs of every cell, activated: centres, sizes, confidences and class probabilities."""

    xy: torch.Tensor  # (N, S, S, B, 2) centre offsets in the cell, in (0, 1)
    sqrt_wh: torch.Tensor  # (N, S, S, B, 2) √w, √h as fractions of the image, in (0, 1)
    confidence: torch.Tensor  # (N, S, S, B) in (0, 1)
    class_prob: torch.Tensor  # (N, S, S, C) Pr(class | object), summing to 1 per cell


def split_output(output: torch.Tensor, config: YOLOConfig) -> Prediction:
    """Apply the sigmoids and the softmax to the raw ``(N, S, S, 5B + C)`` outputs."""
    _check_output(output, config, "split_output")
    n, s, b = output.shape[0], config.grid, config.n_boxes
    boxes = torch.sigmoid(output[..., :5 * b].float()).reshape(n, s, s, b, 5)  # (N, S, S, 5B) -> (N, S, S, B, 5)
    class_prob = torch.softmax(output[..., 5 * b:].float(), dim=-1)  # (N, S, S, C)
    return Prediction(boxes[..., 0:2], boxes[..., 2:4], boxes[..., 4], class_prob)


def _check_output(output, config, owner):
    if not isinstance(config, YOLOConfig):
        raise TypeError(f"The 'config' parameter of {owner} must be a YOLOConfig. Got {config!r} instead.")
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"The 'output' parameter of {owner} must be a torch.Tensor. "
                        f"Got {type(output).__name__} instead.")
    s, d = config.grid, config.n_outputs
    if output.dim() != 4 or tuple(output.shape[1:]) != (s, s, d):
        raise ValueError(f"The 'output' parameter of {owner} must have shape (N, {s}, {s}, {d}). "
                         f"Got {tuple(output.shape)} instead.")


def _corners(xy: torch.Tensor, wh: torch.Tensor, grid: int) -> torch.Tensor:
    """Cell-relative centres and image-relative sizes -> image-relative corners (..., 4)."""
    s = xy.shape[1]
    rows = torch.arange(s, device=xy.device, dtype=xy.dtype).view(1, s, 1, 1)
    cols = torch.arange(s, device=xy.device, dtype=xy.dtype).view(1, 1, s, 1)
    cx = (cols + xy[..., 0]) / grid  # (N, S, S, B): cell column j plus the offset, over S
    cy = (rows + xy[..., 1]) / grid
    return torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)


def encode_targets(boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], config: YOLOConfig) -> torch.Tensor:
    """The training target of every cell from the ground truth of every image.

    The object whose box centre falls in cell (i, j) makes that cell responsible for
    it: the target holds a 1 (an object is present, 1^obj_i), the centre's offset
    within the cell (x, y) in [0, 1), the box's width and height as fractions of the
    image, and the one-hot class. A cell can hold one object only (as in YOLO v1): of
    two centres in one cell the larger box wins.

    Args:
        boxes: per image, ``(K, 4)`` boxes in pixels inside the image.
        labels: per image, ``(K,)`` class indices below ``config.n_classes``.
        config: the detector's configuration.

    Shape:
        ``-> (N, S, S, 5 + C)``: ``[obj, x, y, w, h, one-hot C]`` per cell.
    """
    owner = "encode_targets"
    if not isinstance(config, YOLOConfig):
        raise TypeError(f"The 'config' parameter of {owner} must be a YOLOConfig. Got {config!r} instead.")
    for name, value in (("boxes", boxes), ("labels", labels)):
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise TypeError(f"The {name!r} parameter of {owner} must be a list of tensors, one per image. "
                            f"Got {type(value).__name__} instead.")
    if len(boxes) != len(labels):
        raise ValueError(f"The 'labels' parameter of {owner} must have one entry per image of boxes ({len(boxes)}). "
                         f"Got {len(labels)} instead.")
    s, size = config.grid, config.image_size
    target = torch.zeros(len(boxes), s, s, 5 + config.n_classes)
    for n, (b, c) in enumerate(zip(boxes, labels)):
        b = check_boxes(b, "boxes", owner, image_size=size)
        c = _check_labels(c, "labels", owner, len(b))
        if (c >= config.n_classes).any():
            raise ValueError(f"The 'labels' parameter of {owner} must hold class indices below n_classes = "
                             f"{config.n_classes}. Got {c.tolist()} instead.")
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        for k in torch.argsort(area).tolist():  # smallest first: a larger box in the same cell overwrites it
            x0, y0, x1, y1 = (b[k] / size).tolist()  # image-relative
            cx, cy = (x0 + x1) / 2 * s, (y0 + y1) / 2 * s  # in cell units
            j, i = min(int(cx), s - 1), min(int(cy), s - 1)
            target[n, i, j] = 0
            target[n, i, j, :5] = torch.tensor([1.0, cx - j, cy - i, x1 - x0, y1 - y0])
            target[n, i, j, 5 + int(c[k])] = 1.0
    return target


class YOLOLoss(nn.Module):
    """The YOLO v1 loss (Redmon et al., 2016, eq. 3), summed over cells, averaged over images.

    With 1^obj_i = 1 when an object's centre lies in cell i, and 1^obj_ij = 1 for the
    one box j of that cell whose prediction has the highest IoU with the object (the
    "responsible" box), 1^noobj_ij = 1 - 1^obj_ij::

        L = λ_coord Σ_ij 1^obj_ij [(x_i - x̂_i)² + (y_i - ŷ_i)²]
          + λ_coord Σ_ij 1^obj_ij [(√w_i - √ŵ_i)² + (√h_i - √ĥ_i)²]
          +         Σ_ij 1^obj_ij (C_ij - IoU_ij)²
          + λ_noobj Σ_ij 1^noobj_ij C_ij²
          +         Σ_i 1^obj_i Σ_c (p_i(c) - p̂_i(c))²

    Square roots of the sizes make an error of a few pixels cost more on a small box
    than on a large one; λ_coord = 5 and λ_noobj = 0.5 balance the many empty cells.
    The confidence target is the IoU of the responsible box with its object (held
    fixed, not differentiated), so the confidence estimates the overlap.

    Args:
        config: the detector's configuration (S, B, C, λ_coord, λ_noobj).

    Shape:
        output ``(N, S, S, 5B + C)`` raw; target ``(N, S, S, 5 + C)`` from
        :func:`encode_targets` -> scalar.
    """

    def __init__(self, config: YOLOConfig):
        super().__init__()
        if not isinstance(config, YOLOConfig):
            raise TypeError(f"The 'config' parameter of YOLOLoss must be a YOLOConfig. Got {config!r} instead.")
        self.config = config

    def parts(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The five terms of the loss, each summed over cells and averaged over images."""
        cfg = self.config
        _check_output(output, cfg, "YOLOLoss")
        if not isinstance(target, torch.Tensor) or tuple(target.shape) != (*output.shape[:3], 5 + cfg.n_classes):
            raise ValueError(f"The 'target' parameter of YOLOLoss must have shape "
                             f"{(*output.shape[:3], 5 + cfg.n_classes)}. Got "
                             f"{tuple(target.shape) if isinstance(target, torch.Tensor) else target!r} instead.")
        pred = split_output(output, cfg)
        target = target.float()
        obj = target[..., 0]  # (N, S, S): 1^obj_i
        true_xy, true_wh = target[..., 1:3], target[..., 3:5]  # (N, S, S, 2) each

        # the responsible box of each cell: the highest IoU with the cell's object
        with torch.no_grad():
            pred_box = _corners(pred.xy, pred.sqrt_wh ** 2, cfg.grid)  # (N, S, S, B, 4)
            true_box = _corners(true_xy[..., None, :], true_wh[..., None, :], cfg.grid)  # (N, S, S, 1, 4)
            iou = _pairwise_iou(pred_box, true_box, eps=1e-9)  # (N, S, S, B)
            best = F.one_hot(iou.argmax(-1), cfg.n_boxes).float()  # (N, S, S, B)
        resp = best * obj[..., None]  # 1^obj_ij
        noresp = 1.0 - resp  # 1^noobj_ij

        n = output.shape[0]
        xy_err = ((pred.xy - true_xy[..., None, :]) ** 2).sum(-1)  # (N, S, S, B)
        wh_err = ((pred.sqrt_wh - true_wh[..., None, :].sqrt()) ** 2).sum(-1)
        return {
            "xy": cfg.lambda_coord * (resp * xy_err).sum() / n,
            "wh": cfg.lambda_coord * (resp * wh_err).sum() / n,
            "obj": (resp * (pred.confidence - iou) ** 2).sum() / n,
            "noobj": cfg.lambda_noobj * (noresp * pred.confidence ** 2).sum() / n,
            "class": (obj[..., None] * (pred.class_prob - target[..., 5:]) ** 2).sum() / n,
        }

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(self.parts(output, target).values())


def decode(output: torch.Tensor, config: YOLOConfig, conf_threshold: float = 0.05) -> list[Detections]:
    """Turn raw outputs into scored boxes in pixels, per image (before non-maximum suppression).

    Box b of cell (i, j) has centre ``((j + x) / S, (i + y) / S)`` and size
    ``(√w², √h²)`` (image fractions, times ``image_size`` for pixels), clipped to the
    image; its class is the cell's most probable one and its score the class-specific
    confidence ``C x max_c Pr(c | object)``. Boxes scoring below ``conf_threshold``
    are dropped.

    Args:
        output: raw network outputs ``(N, S, S, 5B + C)``.
        config: the detector's configuration.
        conf_threshold: the least score kept, in [0, 1]. Default: 0.05.

    Returns:
        N :class:`Detections` (boxes ``(K, 4)`` pixels, scores ``(K,)``, labels ``(K,)``),
        boxes in the order cell row, cell column, box.
    """
    _check_output(output, config, "decode")
    check_float(conf_threshold, "conf_threshold", "decode", low=0.0, high=1.0)
    pred = split_output(output.detach(), config)
    size, b = config.image_size, config.n_boxes
    wh = (pred.sqrt_wh ** 2).clamp(min=1e-3 / size)  # at least a thousandth of a pixel
    boxes = (_corners(pred.xy, wh, config.grid) * size).clamp(0, size)  # (N, S, S, B, 4) pixels
    best_prob, best_class = pred.class_prob.max(-1)  # (N, S, S)
    scores = pred.confidence * best_prob[..., None]  # (N, S, S, B)
    labels = best_class[..., None].expand_as(scores)
    results = []
    for n in range(output.shape[0]):
        keep = scores[n] >= conf_threshold  # (S, S, B)
        results.append(Detections(boxes[n][keep], scores[n][keep], labels[n][keep]))
    return results


__all__ = ["Detections", "Prediction", "PrecisionRecall", "YOLO", "YOLOConfig", "YOLOLoss", "average_precision",
           "box_iou", "decode", "encode_targets", "matches_per_object", "mean_average_precision",
           "non_max_suppression", "precision_recall", "split_output"]
