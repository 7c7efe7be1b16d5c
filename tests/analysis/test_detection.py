"""udl.analysis.detection: IoU, non-maximum suppression, average precision and mAP."""

import numpy as np
import pytest
import torch

from udl.analysis.detection import (Detections, average_precision, box_iou, matches_per_object,
                                    mean_average_precision, non_max_suppression, paired_iou, precision_recall)
from udl.data.scenes import check_boxes

T = torch.tensor


def _random_boxes(n, generator, size=20.0):
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * size / 2 + 0.5
    return torch.cat([xy, xy + wh], 1)


# --------------------------------------------------------------------------- IoU
@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 2, 2], [1, 0, 3, 2], 1 / 3),  # half-shifted: 2 / (4 + 4 - 2)
    ([0, 0, 2, 2], [0, 0, 2, 2], 1.0),
    ([0, 0, 4, 4], [1, 1, 3, 3], 4 / 16),  # contained
    ([0, 0, 2, 2], [2, 0, 4, 2], 0.0),  # touching edges
    ([0, 0, 1, 1], [5, 5, 6, 7], 0.0),  # far apart
    ([0, 0, 3, 2], [1, 1, 4, 4], 2 / (6 + 9 - 2)),
])
def test_box_iou_hand_cases(a, b, expected):
    assert box_iou(T([a], dtype=torch.float32), T([b], dtype=torch.float32)).item() == pytest.approx(expected)


def test_box_iou_equals_a_pixel_count():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 10, (12, 2), generator=g)
    b = torch.randint(0, 10, (9, 2), generator=g)
    boxes_a = torch.cat([a, a + torch.randint(1, 8, (12, 2), generator=g)], 1).float()
    boxes_b = torch.cat([b, b + torch.randint(1, 8, (9, 2), generator=g)], 1).float()

    def raster(box):
        m = torch.zeros(20, 20, dtype=torch.bool)
        x0, y0, x1, y1 = map(int, box.tolist())
        m[y0:y1, x0:x1] = True
        return m

    ref = torch.tensor([[float((raster(p) & raster(q)).sum() / (raster(p) | raster(q)).sum()) for q in boxes_b]
                        for p in boxes_a])
    torch.testing.assert_close(box_iou(boxes_a, boxes_b), ref)


def test_box_iou_properties():
    g = torch.Generator().manual_seed(1)
    a, b = _random_boxes(30, g), _random_boxes(20, g)
    iou = box_iou(a, b)
    assert iou.shape == (30, 20) and (iou >= 0).all() and (iou <= 1).all()
    torch.testing.assert_close(iou, box_iou(b, a).T)
    torch.testing.assert_close(box_iou(a, a).diagonal(), torch.ones(30))
    shift, scale = T([3.0, -2.0, 3.0, -2.0]), 2.5
    torch.testing.assert_close(box_iou(a * scale + shift, b * scale + shift), iou, rtol=1e-4, atol=1e-5)
    assert box_iou(torch.zeros(0, 4), b).shape == (0, 20)


def test_box_iou_refuses_bad_boxes():
    with pytest.raises(ValueError, match="boxes_a"):
        box_iou(T([[2.0, 0.0, 1.0, 1.0]]), T([[0.0, 0.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="boxes_b"):
        box_iou(T([[0.0, 0.0, 1.0, 1.0]]), T([[0.0, float("nan"), 1.0, 1.0]]))


# --------------------------------------------------------------------------- empty (zero-area) boxes
EMPTY = [[2.0, 1.0, 2.0, 5.0], [0.0, 3.0, 4.0, 3.0], [1.0, 1.0, 1.0, 1.0]]  # zero width, zero height, a point


def test_empty_boxes_have_iou_zero_with_everything():
    empty, square = T(EMPTY), T([[0.0, 0.0, 4.0, 4.0], [2.0, 1.0, 2.0, 5.0]])  # the second equals EMPTY[0]
    iou = box_iou(empty, square)
    assert not iou.isnan().any() and torch.equal(iou, torch.zeros(3, 2))  # 0 / 0 -> 0, itself included
    assert torch.equal(box_iou(empty, empty), torch.zeros(3, 3))
    assert paired_iou(empty, empty).tolist() == [0.0, 0.0, 0.0]
    a = empty.clone().requires_grad_()
    paired_iou(a, empty).sum().backward()
    assert torch.isfinite(a.grad).all()  # 0 / 0 guarded without NaN gradients
    # the ordinary boxes beside them keep their IoU
    assert box_iou(T([[0.0, 0.0, 2.0, 2.0]] + EMPTY), T([[1.0, 0.0, 3.0, 2.0]]))[0, 0].item() == pytest.approx(1 / 3)


def test_empty_boxes_in_nms_and_map():
    boxes = T([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 5.0, 9.0], [5.0, 5.0, 5.0, 9.0]])
    assert non_max_suppression(boxes, T([0.9, 0.8, 0.7]), 0.0).tolist() == [0, 1, 2]  # empty boxes overlap nothing
    truth = [_truth([A, [3, 3, 3, 8]], [0, 0])]  # an empty object can never be hit: recall at most 1/2
    preds = [_det([A, [3, 3, 3, 8]], [0.9, 0.8], [0, 0])]
    assert mean_average_precision(preds, truth) == 0.5


def test_check_boxes_allow_empty():
    empty = T(EMPTY)
    assert torch.equal(check_boxes(empty, "b", "f", allow_empty=True), empty)
    with pytest.raises(ValueError, match=r"^The 'b' parameter of f must hold boxes \(x0, y0, x1, y1\) with x0 < x1, "
                                         r"y0 < y1\. Got \[2\.0, 1\.0, 2\.0, 5\.0\] in row 0 instead\.$"):
        check_boxes(empty, "b", "f")  # the default still wants a positive width and height
    with pytest.raises(ValueError, match=r"x0 <= x1, y0 <= y1\. Got \[3\.0, 0\.0, 2\.0, 1\.0\] in row 1"):
        check_boxes(T([[0.0, 0.0, 0.0, 1.0], [3.0, 0.0, 2.0, 1.0]]), "b", "f", allow_empty=True)  # x1 < x0
    with pytest.raises(ValueError, match="boxes_a"):
        box_iou(T([[0.0, 2.0, 1.0, 1.0]]), T(EMPTY))  # y1 < y0
    with pytest.raises(ValueError, match="predictions"):
        mean_average_precision([_det([[0, 0, -1, 1]], [0.9], [0])], [_truth([A], [0])])


def test_paired_iou_is_the_diagonal_of_box_iou_and_broadcasts():
    g = torch.Generator().manual_seed(2)
    a, b = _random_boxes(15, g), _random_boxes(15, g)
    torch.testing.assert_close(paired_iou(a, b), box_iou(a, b).diagonal())
    grid = paired_iou(a[:, None, :], b[None, :, :])  # (15, 1, 4) with (1, 15, 4) -> (15, 15)
    torch.testing.assert_close(grid, box_iou(a, b))
    assert paired_iou(T([0.0, 0.0, 2.0, 2.0]), T([1.0, 0.0, 3.0, 2.0])).item() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"^The 'b' parameter of paired_iou must be a tensor of shape \(\.\.\., 4\)\. "
                                         r"Got shape \(2, 3\) instead\.$"):
        paired_iou(a, torch.zeros(2, 3))


# --------------------------------------------------------------------------- NMS
def test_nms_removes_duplicates_and_keeps_distinct_objects():
    boxes = T([[10., 10., 30., 30.], [11., 10., 31., 31.], [9., 11., 29., 30.], [40., 40., 50., 52.],
               [12., 12., 30., 31.]])
    scores = T([0.7, 0.9, 0.6, 0.5, 0.8])
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [1, 3]  # one class: box 4 is a duplicate too
    labels = T([0, 0, 0, 0, 1])
    assert non_max_suppression(boxes, scores, 0.5, labels).tolist() == [1, 4, 3]  # per class: 4 survives
    assert non_max_suppression(boxes, scores, 1.0).tolist() == [1, 4, 0, 2, 3]  # nothing overlaps above 1
    assert non_max_suppression(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def _nms_reference(boxes, scores, threshold, labels):
    """The definition, literally: repeatedly take the best remaining box and drop what it covers."""
    iou = box_iou(boxes, boxes).tolist()  # box_iou is tested against pixel counts above
    scores, labels = scores.tolist(), labels.tolist()
    remaining, keep = list(range(len(scores))), []
    while remaining:
        best = max(remaining, key=lambda k: (scores[k], -k))
        keep.append(best)
        remaining = [k for k in remaining if k != best and
                     not (labels[k] == labels[best] and iou[k][best] > threshold)]
    return keep


@pytest.mark.parametrize("seed", range(8))
def test_nms_equals_the_brute_force_reference(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = _random_boxes(40, g)
    scores = torch.rand(40, generator=g).round(decimals=1)  # ties happen
    labels = torch.randint(0, 3, (40,), generator=g)
    for threshold in (0.0, 0.3, 0.5, 0.7):
        assert non_max_suppression(boxes, scores, threshold, labels).tolist() == \
            _nms_reference(boxes, scores, threshold, labels)
        assert non_max_suppression(boxes, scores, threshold).tolist() == \
            _nms_reference(boxes, scores, threshold, torch.zeros(40))


def test_nms_keeps_no_overlapping_pair():
    g = torch.Generator().manual_seed(3)
    boxes, scores = _random_boxes(60, g), torch.rand(60, generator=g)
    kept = non_max_suppression(boxes, scores, 0.4)
    iou = box_iou(boxes[kept], boxes[kept]).fill_diagonal_(0)
    assert iou.max() <= 0.4
    assert (scores[kept].diff() <= 0).all()


# --------------------------------------------------------------------------- average precision
def _det(boxes, scores, labels):
    return Detections(T(boxes, dtype=torch.float32).reshape(-1, 4), T(scores, dtype=torch.float32),
                      T(labels, dtype=torch.int64))


def _truth(boxes, labels):
    return T(boxes, dtype=torch.float32).reshape(-1, 4), T(labels, dtype=torch.int64)


A, B, C = [0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10]
MISS = [60, 60, 70, 70]


def test_average_precision_hand_cases():
    assert average_precision([1.0, 1.0], [0.5, 1.0]) == 1.0
    assert average_precision([0.0, 0.5], [0.0, 1.0]) == 0.5  # a false positive first
    assert average_precision([1.0, 0.5, 2 / 3], [0.5, 0.5, 1.0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([1.0, 0.5], [0.5, 0.5]) == 0.5  # half the objects never found
    assert average_precision([], []) == 0.0


def test_map_perfect_predictions_is_one():
    truth = [_truth([A, B], [0, 1]), _truth([C], [0])]
    preds = [_det([A, B], [0.9, 0.8], [0, 1]), _det([C], [0.7], [0])]
    assert mean_average_precision(preds, truth) == 1.0


def test_map_false_positive_ranked_first():
    truth = [_truth([A, B], [0, 0])]
    preds = [_det([MISS, A, B], [0.9, 0.8, 0.7], [0, 0, 0])]
    # ranks: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1; interpolated: 2/3 over [0, 1]
    assert mean_average_precision(preds, truth) == pytest.approx(2 / 3)
    # the same false positive ranked last costs nothing
    preds = [_det([MISS, A, B], [0.1, 0.8, 0.7], [0, 0, 0])]
    assert mean_average_precision(preds, truth) == 1.0


def test_map_duplicates_wrong_classes_and_loose_boxes():
    truth = [_truth([A], [0])]
    dup = [_det([A, A], [0.9, 0.8], [0, 0])]  # the duplicate is a false positive after the hit
    pr = precision_recall(dup, truth, 0)
    np.testing.assert_allclose(pr.precision, [1.0, 0.5])
    np.testing.assert_allclose(pr.recall, [1.0, 1.0])
    assert pr.ap == 1.0 and pr.n_truth == 1
    wrong_class = [_det([A], [0.9], [1])]
    assert mean_average_precision(wrong_class, truth) == 0.0
    loose = [_det([[0, 0, 10, 21]], [0.9], [0])]  # IoU 100/210 < 0.5
    assert mean_average_precision(loose, truth) == 0.0
    assert mean_average_precision(loose, truth, iou_threshold=0.4) == 1.0


def test_map_averages_classes_present_in_the_truth():
    truth = [_truth([A, B], [0, 1])]
    preds = [_det([A, MISS, B, C], [0.9, 0.8, 0.7, 0.6], [0, 1, 1, 2])]  # class 2 has no object: left out
    # class 0: AP 1; class 1: FP then TP -> AP 0.5
    assert mean_average_precision(preds, truth) == pytest.approx(0.75)
    assert mean_average_precision([_det([], [], [])], truth) == 0.0


def test_map_matches_objects_within_their_own_image():
    truth = [_truth([A], [0]), _truth([B], [0])]
    preds = [_det([B], [0.9], [0]), _det([B], [0.8], [0])]  # the first is in the wrong image
    # FP then TP with two objects: precision 0, 1/2 at recall 0, 1/2
    assert mean_average_precision(preds, truth) == pytest.approx(0.25)


def test_map_refuses_bad_input():
    truth = [_truth([A], [0])]
    with pytest.raises(ValueError, match="predictions"):
        mean_average_precision([], truth)
    with pytest.raises(ValueError, match="ground_truth"):
        mean_average_precision([_det([], [], [])], [_truth([], [])])
    with pytest.raises(ValueError, match="predictions"):
        mean_average_precision([_det([[5, 5, 1, 1]], [0.9], [0])], truth)


def test_matches_per_object():
    truth = [_truth([A, B], [0, 1]), _truth([C], [0])]
    preds = [_det([A, [0, 0, 10, 11], B], [0.9, 0.8, 0.7], [0, 0, 0]), _det([], [], [])]
    assert matches_per_object(preds, truth).tolist() == [2, 0, 0]  # B's box has the wrong class
