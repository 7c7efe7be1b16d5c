"""Synthetic articulated figures: shapes, seeding, joints inside the image, the body drawn at its joints."""

import math

import numpy as np
import pytest
import torch

from udl.data.poses import JOINTS, SKELETON, Poses, make_poses


@pytest.fixture(scope="module")
def poses():
    return make_poses(60, size=64, masks=True, seed=3)


def test_shapes_dtypes_and_ranges(poses):
    assert isinstance(poses, Poses) and len(poses) == 60
    assert poses.images.shape == (60, 3, 64, 64) and poses.images.dtype == torch.float32
    assert 0.0 <= poses.images.min() and poses.images.max() <= 1.0
    assert poses.joints.shape == (60, len(JOINTS), 2) and poses.joints.dtype == torch.float32
    assert poses.visible.shape == (60, 14) and poses.visible.dtype == torch.bool
    assert poses.masks.shape == (60, 64, 64) and poses.masks.dtype == torch.bool
    assert len(JOINTS) == 14 and len(SKELETON) == 14
    assert all(0 <= a < 14 and 0 <= b < 14 and a != b for a, b in SKELETON)
    # the skeleton is a tree over all 14 joints: 13 bones would do, the torso adds one cycle (a quadrilateral)
    assert len({j for bone in SKELETON for j in bone}) == 14


def test_same_seed_same_images_and_prefix_property():
    a = make_poses(6, size=48, seed=11)
    b = make_poses(6, size=48, seed=11)
    c = make_poses(3, size=48, seed=11)
    d = make_poses(6, size=48, seed=12)
    assert torch.equal(a.images, b.images) and torch.equal(a.joints, b.joints) and torch.equal(a.visible, b.visible)
    assert torch.equal(a.images[:3], c.images) and torch.equal(a.joints[:3], c.joints)
    assert not torch.equal(a.joints, d.joints)


@pytest.mark.parametrize("margin", [0.0, 4.0, 9.0])
def test_every_joint_lies_inside_the_margins(margin):
    p = make_poses(40, size=64, margin=margin, seed=0)
    assert p.joints.min() >= margin - 1e-4 and p.joints.max() <= 64 - margin + 1e-4


def test_the_figure_is_drawn_at_its_joints(poses):
    cells = poses.joints.floor().long()  # (N, J, 2) the pixel holding each joint
    n = torch.arange(len(poses))[:, None]
    on_figure = poses.masks[n, cells[..., 1], cells[..., 0]]  # (N, J)
    assert on_figure.all()  # without occluders every joint pixel belongs to the figure
    assert poses.visible.float().mean() > 0.95  # and almost every joint is seen (limbs rarely cross)
    # the figure's pixels differ from the background's: the image changes where the mask is
    assert poses.masks.float().mean() > 0.05


def test_a_joint_pixel_has_its_limb_colour():
    p = make_poses(20, size=64, noise=0.0, distractors=0, seed=5)
    # without noise, the two wrist pixels of each figure have exactly the shirt colour, like its neck-side
    # shoulder pixels: arms and torso share one colour
    cells = p.joints.floor().long()
    for n in range(20):
        if not (p.visible[n, 4] and p.visible[n, 7]):
            continue
        right = p.images[n, :, cells[n, 4, 1], cells[n, 4, 0]]
        left = p.images[n, :, cells[n, 7, 1], cells[n, 7, 0]]
        torch.testing.assert_close(right, left)


def test_occluders_hide_joints():
    seen = make_poses(80, size=64, occluders=0, seed=1).visible.float().mean()
    hidden = make_poses(80, size=64, occluders=3, seed=1).visible.float().mean()
    assert seen > 0.95 and hidden < seen - 0.05


def test_scale_sets_the_figure_size():
    small = make_poses(40, size=64, min_scale=0.12, max_scale=0.13, max_rotation=0.0, seed=2)
    large = make_poses(40, size=64, min_scale=0.24, max_scale=0.25, max_rotation=0.0, seed=2)
    # the neck-to-hip-centre distance is the torso length L = scale * size
    torso = lambda j: torch.linalg.vector_norm(j[:, 1] - (j[:, 8] + j[:, 11]) / 2, dim=-1)  # noqa: E731
    assert torch.all((torso(small.joints) >= 0.12 * 64 - 1e-3) & (torso(small.joints) <= 0.13 * 64 + 1e-3))
    assert torso(large.joints).mean() > 1.8 * torso(small.joints).mean()


def test_the_figure_faces_the_viewer():
    # unrotated, the figure's right shoulder and hip lie on the image's left
    p = make_poses(30, size=64, max_rotation=0.0, seed=4)
    assert (p.joints[:, 2, 0] < p.joints[:, 5, 0]).all() and (p.joints[:, 8, 0] < p.joints[:, 11, 0]).all()
    assert (p.joints[:, 0, 1] < p.joints[:, 1, 1]).all()  # the head above the neck
    # rotated by up to 30 degrees, the shoulders' line turns by at most 30 degrees
    q = make_poses(200, size=64, max_rotation=30.0, seed=4)
    d = q.joints[:, 5] - q.joints[:, 2]
    angle = torch.rad2deg(torch.atan2(d[:, 1], d[:, 0]))
    assert angle.abs().max() <= 30.0 + 1e-3 and angle.abs().max() > 20.0
