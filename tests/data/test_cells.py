"""Synthetic cells and tubes: exact masks from the geometry, seeding, shapes and picture statistics."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from udl.data.cells import (ball_union_mask, bezier, cell_outline_radius, ellipsoid_mask, make_cells, make_tubes)


@pytest.fixture(scope="module")
def cells():
    return make_cells(12, size=64, seed=3)


@pytest.fixture(scope="module")
def tubes():
    return make_tubes(3, size=20, max_radius=2.2, n_blobs=6, seed=2)


def test_cell_shapes_dtypes_and_ranges(cells):
    assert cells.images.shape == (12, 1, 64, 64) and cells.images.dtype == torch.float32
    assert cells.masks.shape == cells.instances.shape == (12, 64, 64)
    assert cells.masks.dtype == cells.instances.dtype == torch.int64
    assert 0 <= cells.images.min() and cells.images.max() <= 1
    assert len(cells) == 12 and len(cells.geometry) == 12
    assert torch.equal(cells.masks, (cells.instances > 0).long())
    fraction = cells.masks.float().mean().item()
    assert 0.15 < fraction < 0.6


def test_cell_masks_are_rasterised_from_the_geometry(cells):
    rows, cols = np.mgrid[0:64, 0:64].astype(float)
    for inst, geo in zip(cells.instances.numpy(), cells.geometry):
        rho = []
        for c, R, a, f in zip(geo["centre"], geo["radius"], geo["amplitude"], geo["phase"]):
            theta = np.arctan2(rows - c[0], cols - c[1])
            outline = R * (1 + a[0] * np.cos(2 * theta + f[0]) + a[1] * np.cos(3 * theta + f[1])
                           + a[2] * np.cos(4 * theta + f[2]))
            rho.append(np.hypot(rows - c[0], cols - c[1]) / outline)
        rho = np.stack(rho)
        expected = np.where(rho.min(0) <= 1, rho.argmin(0) + 1, 0)
        assert np.array_equal(inst, expected)
        assert set(np.unique(inst)) <= set(range(len(geo["radius"]) + 1))


def test_cell_outline_formula_and_radii(cells):
    assert cell_outline_radius(0.0, 10.0, [0.1, 0.0, 0.0], [0.0, 0.0, 0.0]) == pytest.approx(11.0)
    assert cell_outline_radius(math.pi / 2, 10.0, [0.1, 0.0, 0.0], [0.0, 0.0, 0.0]) == pytest.approx(9.0)
    radii = np.concatenate([g["radius"] for g in cells.geometry])
    assert radii.min() >= 6.0 and radii.max() <= 12.0
    theta = np.linspace(0, 2 * np.pi, 720)
    for g in cells.geometry:
        for R, a, f in zip(g["radius"], g["amplitude"], g["phase"]):
            assert cell_outline_radius(theta, R, a, f).min() > 0.6 * R  # star-shaped, never pinched to zero


def test_some_cells_touch_and_borders_are_bright(cells):
    inst = cells.instances.numpy()
    touching = ((inst[:, 1:] != inst[:, :-1]) & (inst[:, 1:] > 0) & (inst[:, :-1] > 0)).sum()
    assert touching > 50  # pixels where two different cells meet
    images = cells.images[:, 0].numpy()
    for img, ins in zip(images, inst):
        fg = ins > 0
        border = fg & (ndimage.binary_erosion(fg, iterations=2, border_value=1) == 0)
        interior = ndimage.binary_erosion(fg, iterations=4)
        assert img[border].mean() > img[interior].mean() + 0.15
        assert img[interior].mean() > img[~ndimage.binary_dilation(fg, iterations=3)].mean() - 0.05


def test_cells_are_seeded_per_image():
    a, b = make_cells(4, size=32, min_radius=4.0, max_radius=7.0, border=2.0, seed=7), \
        make_cells(2, size=32, min_radius=4.0, max_radius=7.0, border=2.0, seed=7)
    assert torch.equal(a.images[:2], b.images) and torch.equal(a.instances[:2], b.instances)
    c = make_cells(2, size=32, min_radius=4.0, max_radius=7.0, border=2.0, seed=8)
    assert not torch.equal(b.images, c.images)


def test_tube_shapes_and_fractions(tubes):
    assert tubes.volumes.shape == (3, 1, 20, 20, 20) and tubes.volumes.dtype == torch.float32
    assert tubes.masks.shape == tubes.blobs.shape == (3, 20, 20, 20) and tubes.masks.dtype == torch.int64
    assert 0 <= tubes.volumes.min() and tubes.volumes.max() <= 1
    fraction = tubes.masks.float().mean().item()
    assert 0.01 < fraction < 0.3
    assert tubes.blobs.any()


def test_tube_masks_are_the_union_of_the_centre_line_balls(tubes):
    grid = torch.stack(torch.meshgrid(*[torch.arange(20.0)] * 3, indexing="ij"), -1).reshape(-1, 3).double()
    for mask, geo in zip(tubes.masks, tubes.geometry):
        centres = torch.as_tensor(np.concatenate(geo["centres"]))
        radii = torch.as_tensor(np.concatenate(geo["radii"]))
        inside = (torch.cdist(grid, centres) - radii).min(1).values <= 1e-9  # brute force over all samples
        assert torch.equal(mask.flatten().bool(), inside)
        for c, r in zip(geo["centres"], geo["radii"]):
            assert np.linalg.norm(np.diff(c, axis=0), axis=1).max() <= 0.25 + 1e-9  # dense centre line
            assert 1.2 - 1e-9 <= r.min() and r.max() <= 2.2 + 1e-9


def test_blobs_are_ellipsoids_away_from_the_tubes(tubes):
    for mask, blobs, geo in zip(tubes.masks.numpy(), tubes.blobs.numpy(), tubes.geometry):
        union = np.zeros_like(blobs)
        for c, axes, q in zip(geo["blob_centre"], geo["blob_axes"], geo["blob_rotation"]):
            assert np.allclose(q.T @ q, np.eye(3))
            union |= ellipsoid_mask(20, c, axes, q)
        assert np.array_equal(union, blobs)
        assert not (ndimage.binary_dilation(mask.astype(bool), iterations=2) & blobs).any()
    # tubes and blobs are both brighter than the background: only their shape tells them apart
    v, m, b = tubes.volumes[:, 0], tubes.masks.bool(), tubes.blobs
    background = ~ndimage.binary_dilation((m | b).numpy(), iterations=2, structure=np.ones((1, 3, 3, 3)))
    assert v[m].mean() > v[torch.as_tensor(background)].mean() + 0.2
    assert v[b].mean() > v[torch.as_tensor(background)].mean() + 0.2


def test_ellipsoid_mask_against_the_definition():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    c, axes = np.array([6.3, 7.1, 5.2]), np.array([1.5, 3.0, 2.2])
    grid = np.stack(np.meshgrid(*[np.arange(14)] * 3, indexing="ij"), -1).astype(float)
    expected = np.einsum("...i,ij->...j", grid - c, q) / axes
    assert np.array_equal(ellipsoid_mask(14, c, axes, q), (expected ** 2).sum(-1) <= 1)


def test_bezier_and_ball_union_helpers():
    control = np.array([[0.0, 0, 0], [1, 2, 0], [3, 2, 0], [4, 0, 0]])
    pts = bezier(control, np.array([0.0, 0.5, 1.0]))
    assert np.allclose(pts, [[0, 0, 0], [2, 1.5, 0], [4, 0, 0]])
    m = ball_union_mask(7, np.array([[3.0, 3.0, 3.0]]), np.array([1.0]))
    assert m.sum() == 7 and m[3, 3, 3] and m[2, 3, 3]  # the centre and its six face neighbours


def test_tubes_are_seeded_per_volume():
    a, b = make_tubes(2, size=12, max_radius=2.0, blob_radius=(1.0, 2.0), seed=5), \
        make_tubes(1, size=12, max_radius=2.0, blob_radius=(1.0, 2.0), seed=5)
    assert torch.equal(a.volumes[:1], b.volumes) and torch.equal(a.masks[:1], b.masks)
    other = make_tubes(1, size=12, max_radius=2.0, blob_radius=(1.0, 2.0), seed=6)
    assert not torch.equal(a.volumes[0], other.volumes[0])
