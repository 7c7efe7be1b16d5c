"""Synthetic detection scenes: exact boxes, overlap limits, seeding, clutter and box validation."""

import math

import numpy as np
import pytest
import torch

from udl.data.scenes import CLASSES, Box, check_boxes, make_scenes, shape_mask, tight_box


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(40, size=56, max_objects=4, masks=True, seed=3)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_shapes_dtypes_and_ranges(scenes):
    assert scenes.images.shape == (40, 3, 56, 56) and scenes.images.dtype == torch.float32
    assert 0.0 <= scenes.images.min() and scenes.images.max() <= 1.0
    assert len(scenes) == 40 and len(scenes.boxes) == len(scenes.labels) == len(scenes.masks) == 40
    for boxes, labels, masks in zip(scenes.boxes, scenes.labels, scenes.masks):
        assert boxes.shape == (len(labels), 4) and boxes.dtype == torch.float32 and labels.dtype == torch.int64
        assert masks.shape == (len(labels), 56, 56)
        assert ((labels >= 0) & (labels < len(CLASSES))).all()
        assert 1 <= len(labels) <= 4
    assert scenes.n_objects == sum(len(b) for b in scenes.boxes)
    counts = np.bincount(torch.cat(scenes.labels).numpy(), minlength=5)
    assert (counts > 0).all()  # every class appears in 40 scenes


def test_boxes_are_the_exact_bounds_of_each_shape(scenes):
    for boxes, masks in zip(scenes.boxes, scenes.masks):
        for box, mask in zip(boxes.tolist(), masks.numpy()):
            assert tuple(box) == tight_box(mask)
            x0, y0, x1, y1 = map(int, box)
            # each edge of the box touches the shape; nothing lies outside it
            assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
            assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
            assert mask.sum() == mask[y0:y1, x0:x1].sum()
            Box(*box, image_size=56)  # valid


def test_box_sizes_follow_the_arguments():
    s = make_scenes(60, size=64, min_size=12, max_size=20, seed=0)
    sides = torch.cat([torch.cat([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]) for b in s.boxes])
    # a triangle may lose its tip row or column, hence 12 - 1
    assert sides.min() >= 11 and sides.max() <= 20


def test_overlaps_are_partial(scenes):
    for boxes in scenes.boxes:
        b = boxes.tolist()
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                assert _iou(b[i], b[j]) <= 0.2 + 1e-6
                for p, q in ((b[i], b[j]), (b[j], b[i])):
                    cx, cy = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
                    assert not (q[0] <= cx <= q[2] and q[1] <= cy <= q[3])


def test_overlaps_happen():
    s = make_scenes(200, max_objects=4, seed=0)
    overlapping = sum(_iou(a, b) > 0 for boxes in s.boxes for i, a in enumerate(boxes.tolist())
                      for b in boxes.tolist()[i + 1:])
    assert overlapping >= 10


def test_the_last_shape_shows_its_colour_without_noise():
    s = make_scenes(10, noise=0.0, masks=True, seed=5)
    for image, masks in zip(s.images, s.masks):
        pixels = image[:, masks[-1]]  # the last shape is drawn on top of everything
        assert (pixels - pixels[:, :1]).abs().max() == 0
        assert pixels.max() >= 0.75 * 0.999  # bright: value in [0.75, 1]


def test_noise_has_the_requested_standard_deviation():
    clean = make_scenes(20, noise=0.0, seed=2).images
    noisy = make_scenes(20, noise=0.05, seed=2).images  # the noise is the last draw of each scene
    away_from_clipping = (clean > 0.2) & (clean < 0.8)
    assert (noisy - clean)[away_from_clipping].std().item() == pytest.approx(0.05, rel=0.05)


def test_clutter_adds_distractors():
    plain = make_scenes(10, noise=0.0, distractors=0, max_objects=1, masks=True, seed=4)
    busy = make_scenes(10, noise=0.0, distractors=10, max_objects=1, masks=True, seed=4)

    def roughness(s):  # second differences of the background: zero for a linear gradient
        out = []
        for image, masks in zip(s.images, s.masks):
            free = ~masks.any(0)
            d2 = (image[:, :, 2:] - 2 * image[:, :, 1:-1] + image[:, :, :-2]).abs().amax(0)
            out.append(d2[free[:, 1:-1] & free[:, 2:] & free[:, :-2]].max())
        return torch.stack(out)

    assert roughness(plain).max() < 0.02  # a gradient (kinks only where it is clipped)
    assert (roughness(busy) > 0.2).all()


def test_seeding_is_per_scene():
    a = make_scenes(12, seed=7)
    b = make_scenes(5, seed=7)
    c = make_scenes(5, seed=8)
    assert torch.equal(a.images[:5], b.images)
    assert all(torch.equal(x, y) for x, y in zip(a.boxes[:5], b.boxes))
    assert not torch.equal(b.images, c.images)


def test_n_classes_limits_the_labels():
    s = make_scenes(30, n_classes=3, seed=0)
    assert set(torch.cat(s.labels).tolist()) == {0, 1, 2}


def test_shape_masks():
    assert shape_mask(0, 7, 5).all()
    ellipse = shape_mask(1, 41, 41)
    assert ellipse.mean() == pytest.approx(math.pi / 4, rel=0.02)
    ring = shape_mask(4, 41, 41)
    assert not ring[20, 20] and ring[20, 0] and ring.mean() == pytest.approx(math.pi / 4 * (1 - 0.55 ** 2), rel=0.05)
    plus = shape_mask(3, 30, 30)
    assert plus[15, 0] and plus[0, 15] and not plus[0, 0] and np.array_equal(plus, plus.T)
    up = shape_mask(2, 41, 41)
    assert up.mean() == pytest.approx(0.5, rel=0.05) and up[-1].all() and up[0].sum() == 1
    for k in range(1, 4):  # the other orientations are quarter turns of the first
        assert np.array_equal(shape_mask(2, 41, 41, orientation=k), np.rot90(up, -k))


def test_tight_box():
    mask = np.zeros((10, 12), dtype=bool)
    mask[3:6, 2:9] = True
    assert tight_box(mask) == (2, 3, 9, 6)
    with pytest.raises(ValueError, match="mask"):
        tight_box(np.zeros((4, 4), dtype=bool))


def test_box_properties():
    box = Box(3, 10, 8, 15)
    assert (box.width, box.height, box.area, box.center) == (5.0, 5.0, 25.0, (5.5, 12.5))
    assert box.as_tuple() == (3.0, 10.0, 8.0, 15.0)
    assert Box(0, 0, 56, 56, image_size=56).area == 56 * 56


@pytest.mark.parametrize("args, kwargs, name", [
    ((3, 10, 2, 15), {}, "x1"),  # negative width
    ((3, 10, 8, 10), {}, "y1"),  # zero height
    ((float("nan"), 0, 1, 1), {}, "x0"),
    ((0, 0, float("inf"), 1), {}, "x1"),
    ((-1, 0, 5, 5), dict(image_size=56), "x0"),  # outside the image
    ((0, 0, 5, 57), dict(image_size=56), "y1"),
    ((0, 0, 5, 5), dict(image_size=0), "image_size"),
])
def test_bad_boxes_are_refused(args, kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        Box(*args, **kwargs)


def test_box_needs_numbers():
    with pytest.raises(TypeError, match="'y0'"):
        Box(0, "1", 2, 3)


def test_check_boxes():
    good = torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 5.0, 5.0]])
    assert torch.equal(check_boxes(good, "b", "f"), good)
    assert check_boxes(torch.zeros(0, 4), "b", "f").shape == (0, 4)
    assert check_boxes(np.array([[0, 0, 1, 1]]), "b", "f").dtype == torch.float32
    with pytest.raises(ValueError, match="row 1"):
        check_boxes(torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 5.0, 5.0, 4.0]]), "b", "f")
    with pytest.raises(ValueError, match="row 0"):
        check_boxes(torch.tensor([[float("nan"), 0.0, 2.0, 3.0]]), "b", "f")
    with pytest.raises(ValueError, match=r"inside \[0, 4\]"):
        check_boxes(good, "b", "f", image_size=4)
    with pytest.raises(ValueError, match=r"shape \(K, 4\)"):
        check_boxes(torch.zeros(3), "b", "f")
    with pytest.raises(TypeError, match="'b'"):
        check_boxes([[0, 0, 1, 1]], "b", "f")
