"""udl.analysis.detection's COCO metrics against pycocotools' COCOeval, and VOC against COCO matching."""

import contextlib
import io

import numpy as np
import pytest
import torch

from udl.analysis.detection import (COCO_IOU_THRESHOLDS, COCO_RECALL_THRESHOLDS, coco_average_precision,
                                    mean_average_precision, precision_recall)

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

T = torch.tensor


def random_scenes(n_images, n_classes, seed, *, size=100.0, overlap=0.0, empty=0.0):
    """Objects (some overlapping) and detections: jittered copies (some duplicates, some of the wrong class),
    false positives, and with ``empty`` > 0 zero-area boxes on both sides."""
    g = torch.Generator().manual_seed(seed)

    def chance(p):
        return bool(torch.rand((), generator=g) < p)

    preds, truths = [], []
    for _ in range(n_images):
        m = int(torch.randint(0, 7, (), generator=g))
        xy = torch.rand(m, 2, generator=g) * size * 0.8
        wh = torch.rand(m, 2, generator=g) * size * 0.3 + 2.0
        for i in range(1, m):
            if chance(overlap):  # an object beside the previous one, overlapping it
                xy[i] = xy[i - 1] + (torch.rand(2, generator=g) - 0.5) * wh[i - 1] * 0.6
                wh[i] = wh[i - 1] * (0.8 + 0.4 * torch.rand(2, generator=g))
        boxes = torch.cat([xy, xy + wh], 1)
        labels = torch.randint(0, n_classes, (m,), generator=g)
        found, found_labels = [], []
        for k in range(m):
            for _ in range(int(torch.randint(0, 3, (), generator=g))):  # missed, found, or found twice
                b = boxes[k] + (torch.rand(4, generator=g) - 0.5) * 0.25 * wh[k].repeat(2)
                found.append(torch.cat([torch.minimum(b[:2], b[2:]), torch.maximum(b[:2], b[2:])]))
                found_labels.append(int(torch.randint(0, n_classes, (), generator=g)) if chance(0.1) else int(labels[k]))
        for _ in range(int(torch.randint(0, 4, (), generator=g))):  # false positives anywhere
            corner = torch.rand(2, generator=g) * size * 0.8
            found.append(torch.cat([corner, corner + torch.rand(2, generator=g) * size * 0.3 + 2.0]))
            found_labels.append(int(torch.randint(0, n_classes, (), generator=g)))
        found = torch.stack(found) if found else torch.zeros(0, 4)
        for b in (boxes, found):
            flat = torch.rand(len(b), generator=g) < empty
            b[flat, 2] = b[flat, 0]  # zero width
        preds.append((found, torch.rand(len(found), generator=g), torch.tensor(found_labels, dtype=torch.int64)))
        truths.append((boxes, labels))
    return preds, truths


def cocoeval(preds, truths, *, iou_thresholds=None, max_detections=100):
    """pycocotools' COCOeval (bbox) on the same scenes, built in memory: its precision (T, R, K) and stats."""
    xywh = lambda b: [b[0], b[1], b[2] - b[0], b[3] - b[1]]  # noqa: E731  pycocotools' boxes: (x, y, w, h)
    images = [{"id": i + 1} for i in range(len(truths))]
    objects, results = [], []
    for i, ((boxes, labels), (found, scores, found_labels)) in enumerate(zip(truths, preds)):
        for b, c in zip(boxes.double().tolist(), labels.tolist()):
            objects.append({"id": len(objects) + 1, "image_id": i + 1, "category_id": c + 1, "bbox": xywh(b),
                            "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0})
        for b, s, c in zip(found.double().tolist(), scores.double().tolist(), found_labels.tolist()):
            results.append({"image_id": i + 1, "category_id": c + 1, "bbox": xywh(b), "score": s})
    classes = sorted({c for boxes, labels in truths for c in labels.tolist()} |
                     {c for _, _, labels in preds for c in labels.tolist()})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = {"images": images, "annotations": objects, "categories": [{"id": c + 1} for c in classes]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        if iou_thresholds is not None:
            evaluation.params.iouThrs = np.asarray(iou_thresholds, dtype=float)
        if max_detections != 100:
            evaluation.params.maxDets = [max_detections]  # (it sorts the list: read the largest below)
        evaluation.evaluate()
        evaluation.accumulate()
        if iou_thresholds is None:
            evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # area range "all", the largest maxDets
    present = (precision > -1).all(axis=(0, 1))  # classes without objects hold -1
    return precision[:, :, present], getattr(evaluation, "stats", None)


SCENES = [dict(n_images=30, n_classes=3, seed=0), dict(n_images=30, n_classes=4, seed=1, overlap=0.8),
          dict(n_images=20, n_classes=2, seed=2, overlap=0.5, empty=0.1), dict(n_images=40, n_classes=1, seed=3)]


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: f"seed{s['seed']}")
def test_coco_ap_equals_pycocotools(scene):
    preds, truths = random_scenes(**scene)
    ours = coco_average_precision(preds, truths)
    precision, stats = cocoeval(preds, truths)
    assert ours.precision.shape == precision.shape  # (10, 101, classes present)
    np.testing.assert_allclose(ours.precision, precision, rtol=0, atol=1e-12)
    assert abs(ours.map - stats[0]) < 1e-12  # mAP@[.5:.95]
    assert abs(ours.ap[0].mean() - stats[1]) < 1e-12  # AP50
    assert abs(ours.ap[5].mean() - stats[2]) < 1e-12  # AP75
    assert abs(mean_average_precision(preds, truths, 0.5, method="coco") - stats[1]) < 1e-12
    assert 0.05 < ours.map < 0.95  # neither trivial nor perfect: the comparison can fail


def test_coco_ap_equals_pycocotools_with_other_thresholds_and_few_detections():
    preds, truths = random_scenes(25, 3, seed=4, overlap=0.6)
    preds = [(b.repeat(3, 1), torch.rand(3 * len(s), generator=torch.Generator().manual_seed(i)), c.repeat(3))
             for i, (b, s, c) in enumerate(preds)]  # triplicates: up to 24 detections per image and class
    thresholds = [0.3, 0.5, 0.7, 1.0]
    ours = coco_average_precision(preds, truths, iou_thresholds=thresholds, max_detections=4)
    precision, _ = cocoeval(preds, truths, iou_thresholds=thresholds, max_detections=4)
    np.testing.assert_allclose(ours.precision, precision, rtol=0, atol=1e-12)
    assert ours.ap[-1].max() == 0.0  # t = 1 matches only boxes that equal an object
    assert coco_average_precision(preds, truths, iou_thresholds=thresholds).map != ours.map  # the limit bites


def test_coco_on_udl_scenes_with_perfect_and_shifted_boxes():
    from udl.data.scenes import make_scenes
    scenes = make_scenes(6, size=40, max_objects=4, min_size=6, max_size=14, seed=0)
    truths = list(zip(scenes.boxes, scenes.labels))
    perfect = [(b, torch.linspace(1, 0.5, len(b)), c) for b, c in truths]
    assert coco_average_precision(perfect, truths).map == 1.0
    shifted = [(b + T([1.0, 0.0, 1.0, 0.0]), torch.linspace(1, 0.5, len(b)), c) for b, c in truths]
    ours = coco_average_precision(shifted, truths)
    precision, stats = cocoeval(shifted, truths)
    np.testing.assert_allclose(ours.precision, precision, rtol=0, atol=1e-12)
    assert abs(ours.map - stats[0]) < 1e-12 and 0 < ours.map < 1


# --------------------------------------------------------------------------- by hand
A, B = [0.0, 0.0, 10.0, 10.0], [6.0, 0.0, 16.0, 10.0]  # IoU(A, B) = 40 / 160 = 0.25


def _one_image(found, scores, labels, objects, object_labels):
    return ([(T(found).reshape(-1, 4), T(scores), T(labels))], [(T(objects).reshape(-1, 4), T(object_labels))])


def test_101_point_interpolation_by_hand():
    preds, truths = _one_image([[50.0, 50, 60, 60], A, B], [0.9, 0.8, 0.7], [0, 0, 0], [A, B], [0, 0])
    # FP, TP, TP: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; made non-increasing: 2/3 at every recall point
    assert coco_average_precision(preds, truths).map == pytest.approx(2 / 3, abs=1e-15)
    preds, truths = _one_image([A], [0.9], [0], [A, B], [0, 0])
    # one of two objects found: precision 1 at recall 0, .01, ..., .5 (51 points), 0 above: 51 / 101 (VOC: 1/2)
    assert coco_average_precision(preds, truths).map == pytest.approx(51 / 101, abs=1e-15)
    assert mean_average_precision(preds, truths) == 0.5
    assert COCO_RECALL_THRESHOLDS.size == 101 and COCO_IOU_THRESHOLDS.tolist()[::3] == [0.5, 0.65, 0.8, 0.95]


def test_map_per_threshold_by_hand():
    # a box of IoU 0.9 with its object is a hit at t = 0.5, ..., 0.9 and a miss at 0.95: mAP 9 / 10
    preds, truths = _one_image([[1.0, 0, 10, 10]], [0.9], [1], [A], [1])
    result = coco_average_precision(preds, truths)
    assert result.ap[:, 0].tolist() == [1.0] * 9 + [0.0] and result.map == pytest.approx(0.9, abs=1e-15)
    assert result.classes == (1,) and result.recall[:, 0].tolist() == [1.0] * 9 + [0.0]


def test_voc_and_coco_matching_differ_on_overlapping_objects():
    # two overlapping objects; the second detection overlaps a best (already taken) and b enough (free)
    a, b = [0.0, 0.0, 10.0, 10.0], [4.0, 0.0, 14.0, 10.0]
    second = [2.0, 0.0, 11.0, 10.0]  # IoU with a: 80 / 110 = 0.73, with b: 70 / 120 = 0.58
    preds, truths = _one_image([a, second], [0.9, 0.8], [0, 0], [a, b], [0, 0])
    assert mean_average_precision(preds, truths) == 0.5  # VOC: a duplicate of a, b never found
    assert mean_average_precision(preds, truths, method="coco") == 1.0  # COCO: b takes the second detection
    assert cocoeval(preds, truths)[1][1] == pytest.approx(1.0, abs=1e-12)  # pycocotools' AP50 agrees


def test_coco_ties_go_to_the_last_object_as_in_pycocotools():
    a, b = [0.0, 0.0, 10.0, 10.0], [4.0, 0.0, 14.0, 10.0]
    between = [2.0, 0.0, 12.0, 10.0]  # IoU 80 / 120 with both: pycocotools gives it to b, the later one
    preds, truths = _one_image([between, a], [0.9, 0.8], [0, 0], [a, b], [0, 0])
    # then the exact copy of a finds a free: two hits at t <= 2/3 (had `between` taken a, a's copy would miss)
    result = coco_average_precision(preds, truths)
    # t = .5, .55, .6, .65 <= 2/3: AP 1; above, a miss then a hit: precision 1/2 up to recall 1/2
    np.testing.assert_allclose(result.ap[:, 0], [1.0] * 4 + [51 / 101 / 2] * 6, rtol=0, atol=1e-15)
    precision, stats = cocoeval(preds, truths)
    np.testing.assert_allclose(result.precision, precision, rtol=0, atol=1e-12)


def _voc_matching_coco_interpolation(preds, truths):
    """mAP@0.5 with VOC's matching (precision_recall) read at COCO's 101 recall points: only the matching differs."""
    aps = []
    for c in sorted({int(k) for _, labels in truths for k in labels}):
        curve = precision_recall(preds, truths, c)
        precision = np.maximum.accumulate(curve.precision[::-1])[::-1]
        at = np.searchsorted(curve.recall, COCO_RECALL_THRESHOLDS, side="left")
        aps.append(np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0).mean())
    return float(np.mean(aps))


@pytest.mark.parametrize("scene, differ", [(SCENES[0], False), (SCENES[3], False), (SCENES[1], True), (SCENES[2], True)],
                         ids=["apart0", "apart3", "overlap1", "overlap2"])
def test_voc_and_coco_matching_differ_only_where_objects_overlap(scene, differ):
    preds, truths = random_scenes(**scene)
    gap = abs(_voc_matching_coco_interpolation(preds, truths) - mean_average_precision(preds, truths, method="coco"))
    assert (gap > 1e-3) if differ else (gap < 1e-15)  # measured: 0, 0, 7.9e-3, 2.8e-2


def test_voc_stays_as_before_and_coco_differs():
    preds, truths = random_scenes(30, 4, seed=1, overlap=0.8)
    voc = mean_average_precision(preds, truths)
    assert voc == pytest.approx(0.3752021051864802, abs=1e-15)  # udl's VOC mAP@0.5 before COCO's rules came
    precision, stats = cocoeval(preds, truths)
    coco = mean_average_precision(preds, truths, method="coco")
    assert abs(coco - stats[1]) < 1e-12 and abs(coco - voc) > 1e-3


# --------------------------------------------------------------------------- validation
def test_coco_refuses_bad_input():
    preds, truths = _one_image([A], [0.9], [0], [A], [0])
    with pytest.raises(ValueError, match=r"^The 'iou_thresholds' parameter of coco_average_precision must hold IoUs "
                                         r"in \(0, 1\]\. Got \[0\.5, 1\.5\] instead\.$"):
        coco_average_precision(preds, truths, iou_thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="iou_thresholds"):
        coco_average_precision(preds, truths, iou_thresholds=[])
    with pytest.raises(ValueError, match="max_detections"):
        coco_average_precision(preds, truths, max_detections=0)
    with pytest.raises(ValueError, match="method"):
        mean_average_precision(preds, truths, method="pascal")
    with pytest.raises(ValueError, match="ground_truth"):
        coco_average_precision(preds, [(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))])
