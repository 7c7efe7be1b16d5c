"""Stacked hourglass: heatmap targets and read-out, PCK, the recursive block, stacking and a short fit."""

import math

import pytest
import torch

from udl.models.hourglass import (Hourglass, StackedHourglass, gaussian_heatmaps, heatmap_peaks, joint_box_size, pck,
                                  stacked_heatmap_loss, trace_blocks)
from udl.nn.residual import BottleneckBlock

T = torch.tensor


# --------------------------------------------------------------------------- heatmaps
def test_gaussian_heatmap_values_against_the_formula():
    joints = T([[[5.0, 9.0], [0.3, 14.9]]])  # (1, 2, 2)
    h = gaussian_heatmaps(joints, (4, 5), sigma=0.8, stride=4)
    assert h.shape == (1, 2, 4, 5)
    for j, (x, y) in enumerate(joints[0].tolist()):
        for v in range(4):
            for u in range(5):
                expected = math.exp(-((u - x / 4 + 0.5) ** 2 + (v - y / 4 + 0.5) ** 2) / (2 * 0.8 ** 2))
                assert h[0, j, v, u].item() == pytest.approx(expected, rel=1e-5)


def test_target_peaks_at_the_joint_cell():
    # a joint at the centre of a heatmap cell: that cell holds the maximum, 1
    g = torch.Generator().manual_seed(0)
    cells = torch.randint(0, 16, (10, 14, 2), generator=g)
    joints = 4 * (cells.float() + 0.5)  # image pixels at cell centres, stride 4
    h = gaussian_heatmaps(joints, 16, sigma=1.0, stride=4)
    flat = h.flatten(-2).argmax(-1)
    assert torch.equal(flat % 16, cells[..., 0]) and torch.equal(flat // 16, cells[..., 1])
    assert torch.allclose(h.amax((-2, -1)), torch.ones(10, 14))
    peaks = heatmap_peaks(h, stride=4, refine="none")
    assert torch.equal(peaks.joints, joints)  # exactly, no refinement needed


@pytest.mark.parametrize("stride, sigma", [(1, 1.0), (2, 1.5), (4, 0.7)])
def test_gaussian_refinement_recovers_sub_pixel_joints(stride, sigma):
    g = torch.Generator().manual_seed(stride)
    size = 16
    # joints whose peak cell has both neighbours (one cell from the border)
    joints = (torch.rand(8, 14, 2, generator=g) * (size - 3) + 1.5) * stride
    h = gaussian_heatmaps(joints, size, sigma=sigma, stride=stride)
    exact = heatmap_peaks(h, stride=stride, refine="gaussian").joints
    assert (exact - joints).abs().max() < 1e-3 * stride
    coarse = heatmap_peaks(h, stride=stride, refine="none").joints
    assert (coarse - joints).abs().max() <= stride / 2 + 1e-4  # the cell centre: within half a cell
    assert (coarse - joints).abs().max() > stride / 4  # and not exact
    quarter = heatmap_peaks(h, stride=stride, refine="quarter").joints
    shift = (quarter - coarse).abs()
    assert torch.allclose(shift[shift > 0], torch.tensor(stride / 4))
    # the quarter shift goes towards the joint, so it helps when the joint is over 1/8 cell off the centre
    moved = shift > 0
    assert torch.equal(torch.sign(quarter - coarse)[moved], torch.sign(joints - coarse)[moved])
    far = (joints - coarse).abs() > stride / 8
    assert ((quarter - joints).abs() < (coarse - joints).abs())[far].all()


def test_peak_scores_and_batch_shapes():
    h = torch.zeros(2, 3, 5, 6)
    h[1, 2, 4, 0] = 2.5
    peaks = heatmap_peaks(h, stride=2, refine="none")
    assert peaks.joints.shape == (2, 3, 2) and peaks.scores.shape == (2, 3)
    assert peaks.scores[1, 2].item() == 2.5 and peaks.joints[1, 2].tolist() == [1.0, 9.0]  # (2·(0+½), 2·(4+½))
    # a flat map never moves off the first cell, whatever the refinement
    assert heatmap_peaks(h, refine="gaussian").joints[0, 0].tolist() == [0.5, 0.5]


# --------------------------------------------------------------------------- PCK
def test_pck_closed_cases():
    truth = torch.zeros(2, 3, 2)
    pred = T([[[0.0, 0.9], [1.0, 0.0], [3.0, 4.0]],  # distances 0.9, 1, 5
              [[0.0, 0.0], [0.0, 2.0], [0.6, 0.8]]])  # 0, 2, 1
    assert pck(pred, truth, 0.1, 10.0) == pytest.approx(4 / 6)  # within 1 pixel (inclusive)
    assert pck(pred, truth, 0.5, 10.0) == 1.0
    assert pck(pred, truth, 0.01, 10.0) == pytest.approx(1 / 6)
    per_pose = pck(pred, truth, 0.1, T([10.0, 20.0]))  # pose 2 allows 2 pixels
    assert per_pose == pytest.approx(5 / 6)
    per_joint = pck(pred, truth, 0.1, 10.0, per_joint=True)
    torch.testing.assert_close(per_joint, T([1.0, 0.5, 0.5]))
    visible = T([[True, True, False], [True, False, False]])
    assert pck(pred, truth, 0.1, 10.0, visible=visible) == 1.0


def test_pck_default_reference_is_the_joint_box():
    truth = T([[[0.0, 0.0], [10.0, 20.0], [5.0, 5.0]]])
    assert joint_box_size(truth).tolist() == [20.0]
    pred = truth + T([[[2.0, 0.0], [0.0, 2.1], [0.0, 0.0]]])
    assert pck(pred, truth, 0.1) == pytest.approx(2 / 3)  # 0.1 · 20 = 2 pixels


# --------------------------------------------------------------------------- the hourglass block
def test_hourglass_keeps_shape_and_visits_depth_plus_one_resolutions():
    for depth in (1, 2, 4):
        block = Hourglass(8, depth=depth)
        x = torch.randn(2, 8, 32, 32)
        assert block(x).shape == x.shape
        trace = trace_blocks(block, x)
        sizes = sorted({t.shape[-1] for t in trace}, reverse=True)
        assert sizes == [32 // 2 ** k for k in range(depth + 1)]
        assert all(t.shape[0] == 8 for t in trace)  # every block keeps C channels
        assert len(trace) == 3 * depth + 1  # upper, down, up per level and one at the bottom
        assert all(t.shape[-1] == 32 // 2 ** t.level for t in trace)  # the recorded level is the resolution
        assert sum(t.role == "upper" for t in trace) == depth and sum(t.role == "inner" for t in trace) == 1
        # every convolution sits in one of the traced bottleneck blocks (three each, no projections)
        n_blocks = sum(isinstance(m, BottleneckBlock) for m in block.modules())
        assert n_blocks == len(trace) and sum(isinstance(m, torch.nn.Conv2d) for m in block.modules()) == 3 * n_blocks


def test_hourglass_skip_adds_the_processed_link():
    torch.manual_seed(0)
    block = Hourglass(8, depth=2).eval()  # eval: batch norm uses fixed statistics, so branches are reproducible
    x = torch.randn(3, 8, 8, 8)
    with torch.no_grad():
        out = block(x)
        skip = block.upper(x)
        low = block.up(block.inner(block.down(block.pool(x))))
        expected = skip + torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")
    torch.testing.assert_close(out, expected)
    assert out.shape[1] == x.shape[1]  # a concatenation would have 2C channels

    # zeroing the decoder path leaves exactly the processed skip (and the skip is not the identity)
    handle = block.up.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    with torch.no_grad():
        torch.testing.assert_close(block(x), skip)
    handle.remove()
    assert (skip - x).abs().max() > 1e-3


def test_hourglass_uses_zero_padding_and_nearest_upsampling():
    block = Hourglass(8, depth=1)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.padding_mode == "zeros" and c.padding == (c.kernel_size[0] // 2,) * 2 for c in convs)
    assert block.upsample.mode == "nearest" and isinstance(block.pool, torch.nn.MaxPool2d)


def test_hourglass_refuses_sizes_not_divisible():
    with pytest.raises(ValueError, match="divisible"):
        Hourglass(8, depth=3)(torch.zeros(1, 8, 12, 12))


# --------------------------------------------------------------------------- the stacked network
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_stacked_hourglass_shapes(stride):
    model = StackedHourglass(5, n_stacks=3, channels=16, depth=2, stride=stride, generator=0)
    out = model(torch.zeros(2, 3, 32, 32))
    assert isinstance(out, list) and len(out) == 3
    assert all(h.shape == (2, 5, 32 // stride, 32 // stride) for h in out)


def test_stacked_hourglass_reinjects_the_heatmaps():
    a = StackedHourglass(4, channels=16, depth=2, generator=3)
    assert len(a.hourglasses) == 2 and len(a.backs) == 1 and a.backs[0].in_channels == 4
    # the second stack sees the first one's heatmaps: changing the re-injection changes only stack 2
    x = torch.randn(2, 3, 32, 32)
    a.eval()
    for head in a.heads:  # the heads start at zero (empty heatmaps): give them weights
        torch.nn.init.normal_(head.weight, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = a(x)
        a.backs[0].weight.add_(1.0)
        after = a(x)
    torch.testing.assert_close(before[0], after[0])
    assert (before[1] - after[1]).abs().max() > 1e-3


def test_stacked_loss_sums_over_stacks():
    target = torch.rand(2, 3, 4, 4)
    a, b = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    loss = stacked_heatmap_loss([a, b], target)
    torch.testing.assert_close(loss, ((a - target) ** 2).mean() + ((b - target) ** 2).mean())


def test_a_short_fit_finds_a_single_bright_dot():
    # a toy pose problem: one joint, a bright dot on a dark image; 60 Adam steps localise it
    g = torch.Generator().manual_seed(0)
    n, size = 256, 32
    joints = torch.rand(n, 1, 2, generator=g) * 20 + 6
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    images = torch.exp(-((xx - joints[:, :, 0, None, None]) ** 2 + (yy - joints[:, :, 1, None, None]) ** 2) / 4)
    images = images.expand(n, 3, size, size).contiguous()
    targets = gaussian_heatmaps(joints, 8, sigma=1.0, stride=4)
    model = StackedHourglass(1, n_stacks=2, channels=16, depth=2, generator=0)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for step in range(60):
        batch = torch.randint(0, n, (32,), generator=g)
        loss = stacked_heatmap_loss(model(images[batch]), targets[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = heatmap_peaks(model(images[:64])[-1], stride=4).joints
    assert pck(pred, joints[:64], 0.1, 32.0) > 0.8  # within 3.2 pixels of the dot
