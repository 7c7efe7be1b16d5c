"""Object detection: box overlap, non-maximum suppression and mean average precision.

Boxes are ``(x0, y0, x1, y1)`` in pixels, with the conventions of
:mod:`udl.data.scenes`. A detector (:class:`udl.models.yolo.YOLO`, UDL §10.5.2)
returns, for each image, :class:`Detections`: boxes, scores and class labels.

- :func:`box_iou` and :func:`paired_iou`: intersection over union, the overlap of
  two boxes that matching and suppression are built on.
- :func:`non_max_suppression`: of boxes that overlap by more than a threshold, keep
  the highest-scoring one (the last step of a detector, fig. 10.18).
- :func:`precision_recall`, :func:`average_precision`, :func:`mean_average_precision`:
  detection quality as in PASCAL VOC (mAP at IoU 0.5, all-point interpolation);
  :func:`matches_per_object` counts the predictions that cover each object.
- :func:`coco_average_precision` (and ``mean_average_precision(..., method="coco")``):
  detection quality as in MS COCO, whose matching, interpolation and averaging over
  IoU thresholds differ from VOC's (see :func:`coco_average_precision`); its numbers
  equal pycocotools' ``COCOeval`` for boxes.

Example::

    >>> truth = [(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([1]))]
    >>> found = [Detections(torch.tensor([[1., 0., 10., 10.]]), torch.tensor([0.9]), torch.tensor([1]))]
    >>> mean_average_precision(found, truth)                       # IoU 0.9 >= 0.5: a hit
    1.0
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from udl.data.scenes import check_boxes
from udl.validate import check_array, check_choice, check_float, check_int, check_sequence, check_tensor

__all__ = ["COCO_IOU_THRESHOLDS", "COCO_RECALL_THRESHOLDS", "CocoAP", "Detections", "PrecisionRecall",
           "average_precision", "box_iou", "coco_average_precision", "matches_per_object", "mean_average_precision",
           "non_max_suppression", "paired_iou", "precision_recall"]

# IoU thresholds .50:.05:.95 and recall thresholds 0:.01:1, built exactly as pycocotools builds them (so that
# 0.6000000000000001 and not 0.6 decides a match at the same IoU as there)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1)


# --------------------------------------------------------------------------- box geometry
def paired_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """IoU of each box of ``a`` with the box of ``b`` at the same index (broadcast).

    The same IoU as :func:`box_iou`, for boxes already paired up, e.g. a detector's
    predicted boxes against the object of their cell in a loss. Only the shapes are
    checked (it sits inside training loops). Two empty boxes (zero area) have a
    union of 0 and an IoU of 0, not 0 / 0 = NaN.

    Args:
        a: ``(..., 4)`` boxes ``(x0, y0, x1, y1)``.
        b: ``(..., 4)`` boxes, broadcastable with ``a``.
        eps: added to the union (e.g. 1e-9 against 0 / 0). Default: 0.

    Shape:
        ``(..., 4), (..., 4) -> (...)``, the broadcast shape without the last axis.

    Example:
        >>> paired_iou(torch.tensor([[0., 0., 2., 2.], [0., 0., 1., 1.]]), torch.tensor([1., 0., 3., 2.]))
        tensor([0.3333, 0.0000])
    """
    check_tensor(a, "a", "paired_iou", shape=(..., 4))
    check_tensor(b, "b", "paired_iou", shape=(..., 4))
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    intersection = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - intersection + eps
    return intersection / torch.where(union == 0, torch.ones_like(union), union)  # 0 / 0 -> 0, gradient-safe


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every box in ``boxes_a`` with every box in ``boxes_b``.

    IoU(A, B) = |A ∩ B| / |A ∪ B| = |A ∩ B| / (|A| + |B| - |A ∩ B|), where the
    intersection of two axis-aligned boxes is the box
    ``(max x0, max y0, min x1, min y1)`` when it is not empty. IoU is 1 for equal
    boxes, 0 for disjoint ones, symmetric, and unchanged when both boxes are scaled
    or shifted together. An empty box (``x0 == x1`` or ``y0 == y1``, zero area) is
    accepted, as torchvision's box operations accept it, and has IoU 0 with every box,
    itself included (where torchvision's 0/0 for two empty boxes gives NaN, this gives 0, as
    pycocotools does).

    Args:
        boxes_a: ``(N, 4)`` boxes ``(x0, y0, x1, y1)``, ``x0 <= x1`` and ``y0 <= y1``.
        boxes_b: ``(M, 4)`` boxes.

    Shape:
        ``(N, 4), (M, 4) -> (N, M)``.

    Example:
        >>> box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 0., 3., 2.]]))
        tensor([[0.3333]])
    """
    boxes_a = check_boxes(boxes_a, "boxes_a", "box_iou", allow_empty=True)
    boxes_b = check_boxes(boxes_b, "boxes_b", "box_iou", allow_empty=True)
    return paired_iou(boxes_a[:, None, :], boxes_b[None, :, :])  # (N, 1, 4) with (1, M, 4) -> (N, M)


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
    boxes = check_boxes(boxes, "boxes", owner, allow_empty=True)
    scores = _scores(scores, "scores", owner, len(boxes))
    check_float(iou_threshold, "iou_threshold", owner, low=0.0, high=1.0)
    if labels is not None:
        labels = _labels(labels, "labels", owner, len(boxes))
    order = torch.argsort(-scores, stable=True)
    iou = paired_iou(boxes[:, None, :], boxes[None, :, :])  # (K, K)
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


def _scores(values, name: str, owner: str, length: int) -> torch.Tensor:
    """``length`` finite real scores (a tensor or a NumPy array), as float32."""
    values = torch.from_numpy(values) if isinstance(values, np.ndarray) else values
    values = check_tensor(values, name, owner, shape=(length,), dtype="real").float()
    if not torch.isfinite(values).all():
        raise ValueError(f"The {name!r} parameter of {owner} must hold finite numbers. Got {values.tolist()} instead.")
    return values


def _labels(labels, name: str, owner: str, length: int) -> torch.Tensor:
    """``length`` non-negative class indices (a tensor or a NumPy array), as int64."""
    labels = torch.from_numpy(labels) if isinstance(labels, np.ndarray) else labels
    labels = check_tensor(labels, name, owner, shape=(length,), dtype="int")
    if (labels < 0).any():
        raise ValueError(f"The {name!r} parameter of {owner} must hold non-negative class indices. "
                         f"Got {labels.tolist()} instead.")
    return labels.long()


def _check_detections(predictions, ground_truth, owner: str):
    """Validate per-image predictions (boxes, scores, labels) and truths (boxes, labels)."""
    check_sequence(predictions, "predictions", owner, of="(boxes, scores, labels), one per image")
    check_sequence(ground_truth, "ground_truth", owner, of="(boxes, labels), one per image")
    if len(predictions) != len(ground_truth):
        raise ValueError(f"The 'predictions' parameter of {owner} must have one entry per image of "
                         f"ground_truth ({len(ground_truth)}). Got {len(predictions)} instead.")
    preds, truths = [], []
    for item in predictions:
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError(f"The 'predictions' parameter of {owner} must hold (boxes, scores, labels) tuples. "
                            f"Got {type(item).__name__} instead.")
        boxes = check_boxes(item[0], "predictions", owner, allow_empty=True)
        preds.append(Detections(boxes, _scores(item[1], "predictions", owner, len(boxes)),
                                _labels(item[2], "predictions", owner, len(boxes))))
    for item in ground_truth:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"The 'ground_truth' parameter of {owner} must hold (boxes, labels) pairs. "
                            f"Got {type(item).__name__} instead.")
        boxes = check_boxes(item[0], "ground_truth", owner, allow_empty=True)
        truths.append((boxes, _labels(item[1], "ground_truth", owner, len(boxes))))
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
    for name, values in (("precision", precision), ("recall", recall)):
        if values.ndim != 1:
            raise ValueError(f"The {name!r} parameter of {owner} must be a 1D sequence. "
                             f"Got shape {values.shape} instead.")
        if not (np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
            raise ValueError(f"The {name!r} parameter of {owner} must hold numbers in [0, 1]. "
                             f"Got {values.tolist()} instead.")
    if (np.diff(recall) < 0).any():
        raise ValueError(f"The 'recall' parameter of {owner} must be non-decreasing. Got {recall.tolist()} instead.")
    if precision.shape != recall.shape:  # each is fine alone: one precision per recall is what is missing
        raise ValueError(f"The 'precision' parameter of {owner} must have one entry per recall ({recall.size}). "
                         f"Got {precision.size} instead.")
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
        iou = paired_iou(box[None, :], objects)  # (M,)
        best = int(torch.argmax(iou))
        if iou[best] >= iou_threshold and not matched[image][best]:
            hits[rank] = 1.0
            matched[image][best] = True
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(entries) + 1)
    recall = tp / max(n_truth, 1)
    ap = average_precision(precision, recall) if n_truth else float("nan")
    return PrecisionRecall(precision, recall, ap, n_truth)


def mean_average_precision(predictions, ground_truth, iou_threshold: float = 0.5, *, method: str = "voc") -> float:
    """mAP: the average precision of each class present in the ground truth, averaged.

    ``method="voc"`` (PASCAL VOC): the matching of :func:`precision_recall` and the
    all-point AP of :func:`average_precision`. ``method="coco"`` (MS COCO): the
    matching, 101-point AP and per-image limit of :func:`coco_average_precision` at
    this one threshold (COCO's AP50 at 0.5, AP75 at 0.75). The two differ where
    objects overlap (a detection that VOC counts as a duplicate of a taken object
    COCO may give to a free neighbour) and by the interpolation. A class with no
    ground-truth object is left out (its AP is undefined).

    Args:
        predictions: per image, ``(boxes (K, 4), scores (K,), labels (K,))``.
        ground_truth: per image, ``(boxes (M, 4), labels (M,))``; at least one object overall.
        iou_threshold: the least IoU of a hit, in (0, 1]. Default: 0.5 (mAP@0.5).
        method: ``"voc"`` or ``"coco"``. Default: ``"voc"``.

    Example:
        >>> truth = [(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([1]))]
        >>> perfect = [(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([0.9]), torch.tensor([1]))]
        >>> mean_average_precision(perfect, truth), mean_average_precision(perfect, truth, method="coco")
        (1.0, 1.0)
    """
    owner = "mean_average_precision"
    check_float(iou_threshold, "iou_threshold", owner, low=0.0, high=1.0, low_open=True)
    check_choice(method, "method", owner, ("voc", "coco"))
    preds, truths = _check_detections(predictions, ground_truth, owner)
    classes = _classes_present(truths, owner)
    if method == "coco":
        return _coco_evaluate(preds, truths, classes, np.array([float(iou_threshold)]), 100).map
    return float(np.mean([_precision_recall(preds, truths, c, iou_threshold).ap for c in classes]))


def _classes_present(truths, owner: str) -> list[int]:
    classes = sorted({int(c) for _, labels in truths for c in labels.tolist()})
    if not classes:
        raise ValueError(f"The 'ground_truth' parameter of {owner} must hold at least one object. Got none instead.")
    return classes


# --------------------------------------------------------------------------- COCO
class CocoAP(NamedTuple):
    """COCO evaluation of one set of detections: AP per IoU threshold and class, and their mean."""

    map: float  # AP averaged over IoU thresholds and classes: COCO's "AP", mAP@[.5:.95] by default
    ap: np.ndarray  # (T, K) AP at each IoU threshold, for each class
    precision: np.ndarray  # (T, 101, K) interpolated precision at recall 0, 0.01, ..., 1
    recall: np.ndarray  # (T, K) recall after all (kept) detections
    iou_thresholds: np.ndarray  # (T,)
    classes: tuple  # (K,) the classes present in the ground truth, increasing


def coco_average_precision(predictions, ground_truth, *, iou_thresholds=COCO_IOU_THRESHOLDS,
                           max_detections: int = 100) -> CocoAP:
    """Average precision as MS COCO computes it for boxes (pycocotools' ``COCOeval``).

    Three rules differ from PASCAL VOC's (:func:`mean_average_precision`):

    1. Matching, per image and class, at each IoU threshold t: the detections, best
       score first, each take the not yet matched object with the highest IoU, if
       that IoU is at least t (VOC takes the object of highest IoU, matched or not,
       and calls the detection a duplicate when it is taken). Only the best
       ``max_detections`` detections of each image and class count.
    2. Interpolation at 101 points: with detections ranked by score over all images,
       precision made non-increasing (p_interp(r) = max_{r' >= r} p(r')) is read at
       the first detection whose recall reaches each r in 0, 0.01, ..., 1 (0 beyond
       the last recall reached), and AP is the mean of the 101 values.
    3. Averaging: over the IoU thresholds (.50:.05:.95 by default) and the classes
       present in the ground truth: ``map`` is COCO's headline "AP", ``ap[0].mean()``
       its AP50 and ``ap[5].mean()`` its AP75.

    pycocotools' other options are not modelled: crowd regions ("iscrowd") and the
    small / medium / large area ranges (this is its area range "all"); and its ties
    are kept (objects of equal IoU: the last one listed; detections of equal score:
    image order, then the order given).

    Args:
        predictions: per image, ``(boxes (K, 4), scores (K,), labels (K,))``, e.g. :class:`Detections`.
        ground_truth: per image, ``(boxes (M, 4), labels (M,))``; at least one object overall.
        iou_thresholds: the IoU thresholds t, each in (0, 1]. Default:
            :data:`COCO_IOU_THRESHOLDS` (0.5, 0.55, ..., 0.95).
        max_detections: the detections kept per image and class, best first. Default: 100 (COCO's).

    Returns:
        A :class:`CocoAP`.

    Example:
        >>> truth = [(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([1]))]
        >>> found = [(torch.tensor([[1., 0., 10., 10.]]), torch.tensor([0.9]), torch.tensor([1]))]
        >>> coco_average_precision(found, truth).map    # IoU 0.9: a hit at t = 0.5, ..., 0.9, a miss at 0.95
        0.9
    """
    owner = "coco_average_precision"
    thresholds = check_array(iou_thresholds, "iou_thresholds", owner)
    if not ((thresholds > 0) & (thresholds <= 1)).all():
        raise ValueError(f"The 'iou_thresholds' parameter of {owner} must hold IoUs in (0, 1]. "
                         f"Got {thresholds.tolist()} instead.")
    check_int(max_detections, "max_detections", owner, minimum=1)
    preds, truths = _check_detections(predictions, ground_truth, owner)
    return _coco_evaluate(preds, truths, _classes_present(truths, owner), thresholds, max_detections)


def _coco_match(iou: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """COCO's greedy matching in one image and class: (T, D) hits of the D ranked detections.

    ``iou`` is (D, M), detections best first. pycocotools caps t at 1 - 1e-10 so that
    t = 1 still matches equal boxes whose IoU rounds just below 1.
    """
    n_det, n_obj = iou.shape
    hits = np.zeros((len(thresholds), n_det), dtype=bool)
    if n_obj == 0:
        return hits
    for ti, t in enumerate(thresholds):
        t = min(t, 1 - 1e-10)
        taken = np.zeros(n_obj, dtype=bool)
        for d in range(n_det):
            free = np.where(taken, -1.0, iou[d])  # (M,) a taken object is out of reach
            best = free.max()
            if best >= t:
                m = n_obj - 1 - int(np.argmax(free[::-1] == best))  # ties: the last object, as pycocotools
                taken[m] = hits[ti, d] = True
    return hits


def _coco_evaluate(preds, truths, classes, thresholds, max_detections) -> CocoAP:
    n_t, n_r = len(thresholds), len(COCO_RECALL_THRESHOLDS)
    precision = np.zeros((n_t, n_r, len(classes)))
    recall = np.zeros((n_t, len(classes)))
    for k, label in enumerate(classes):
        scores, hits, n_truth = [], [], 0
        for det, (boxes, labels) in zip(preds, truths):
            objects = boxes[labels == label].double()
            n_truth += len(objects)
            mine = torch.nonzero(det.labels == label).flatten().numpy()
            mine_scores = det.scores.numpy()[mine].astype(np.float64)
            order = mine[np.argsort(-mine_scores, kind="stable")][:max_detections]  # best first, per image
            iou = paired_iou(det.boxes[order].double()[:, None, :], objects[None, :, :]).numpy()  # (D, M) float64
            scores.append(det.scores.numpy()[order].astype(np.float64))
            hits.append(_coco_match(iou, thresholds))
        scores, hits = np.concatenate(scores), np.concatenate(hits, axis=1)  # (D,), (T, D)
        hits = hits[:, np.argsort(-scores, kind="stable")]  # ranked over all images
        tp = np.cumsum(hits, axis=1, dtype=np.float64)
        fp = np.cumsum(~hits, axis=1, dtype=np.float64)
        for ti in range(n_t):
            rc = tp[ti] / n_truth
            pr = tp[ti] / (tp[ti] + fp[ti])  # pycocotools adds 2.2e-16 here against a 0 / 0 that cannot happen
            pr = np.maximum.accumulate(pr[::-1])[::-1]  # p_interp(r) = max over later detections
            at = np.searchsorted(rc, COCO_RECALL_THRESHOLDS, side="left")  # first detection reaching each r
            reached = at < len(pr)
            precision[ti, reached, k] = pr[at[reached]]
            recall[ti, k] = rc[-1] if len(rc) else 0.0
    ap = precision.mean(axis=1)  # (T, K)
    return CocoAP(float(ap.mean()), ap, precision, recall, thresholds.copy(), tuple(classes))


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
        iou = paired_iou(boxes[:, None, :], det.boxes[None, :, :])  # (M, K)
        same = labels[:, None] == det.labels[None, :]
        counts.append(((iou >= iou_threshold) & same).sum(1))
    return torch.cat(counts).numpy() if counts else np.zeros(0, dtype=np.int64)
