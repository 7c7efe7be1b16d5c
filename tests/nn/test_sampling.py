"""udl.nn.sampling: down- and upsampling from their definitions, against torch."""

import pytest
import torch
import torch.nn.functional as F

from udl.nn.sampling import (max_pool2d, max_unpool2d, mean_pool2d, pixel_shuffle, subsample, upsample_bilinear,
                             upsample_nearest)


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


EXAMPLE = torch.tensor([[1.0, 2.0, 5.0, 0.0],
                        [3.0, 4.0, 1.0, 1.0],
                        [0.0, 0.0, 2.0, 2.0],
                        [7.0, 1.0, 2.0, 6.0]])[None, None]


def test_the_4x4_example_by_hand():
    assert subsample(EXAMPLE)[0, 0].tolist() == [[1, 5], [0, 2]]
    assert max_pool2d(EXAMPLE)[0, 0].tolist() == [[4, 5], [7, 6]]
    assert mean_pool2d(EXAMPLE)[0, 0].tolist() == [[2.5, 1.75], [2.0, 3.0]]
    _, idx = max_pool2d(EXAMPLE, return_indices=True)
    assert idx[0, 0].tolist() == [[5, 2], [12, 15]]  # row·4 + column of 4, 5, 7, 6


@pytest.mark.parametrize("shape, factor", [((2, 3, 8, 8), 2), ((1, 2, 7, 9), 2), ((2, 1, 9, 6), 3)])
def test_subsample_is_every_fth_value(shape, factor):
    x = rand(*shape)
    assert torch.equal(subsample(x, factor), x[:, :, ::factor, ::factor])


@pytest.mark.parametrize("shape, k, s", [((2, 3, 8, 8), 2, None), ((1, 2, 9, 7), 3, 2), ((2, 2, 10, 8), (2, 3), (1, 2)),
                                         ((1, 1, 6, 6), 3, 1)])
def test_pooling_equals_torch_values_indices_and_gradients(shape, k, s):
    x = rand(*shape, seed=1).requires_grad_(True)
    ours, idx = max_pool2d(x, k, s, return_indices=True)
    ref, ref_idx = F.max_pool2d(x, k, s, return_indices=True)
    assert torch.equal(ours, ref) and torch.equal(idx, ref_idx)
    up = rand(*ref.shape, seed=2)
    torch.testing.assert_close(torch.autograd.grad(ours, x, up)[0], torch.autograd.grad(ref, x, up)[0])
    mean, mean_ref = mean_pool2d(x, k, s), F.avg_pool2d(x, k, s)
    torch.testing.assert_close(mean, mean_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(mean, x, up)[0], torch.autograd.grad(mean_ref, x, up)[0])


def test_ties_pick_the_first_maximum_like_torch():
    x = torch.tensor([[[[3.0, 3.0, 1.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]])
    _, idx = max_pool2d(x, return_indices=True)
    assert torch.equal(idx, F.max_pool2d(x, 2, return_indices=True)[1])
    assert idx[0, 0].tolist() == [[0, 3]]


@pytest.mark.parametrize("shape, factor", [((2, 3, 4, 5), 2), ((1, 1, 3, 3), 3), ((1, 2, 1, 6), 4)])
def test_nearest_duplicates_like_interpolate(shape, factor):
    x = rand(*shape, seed=3)
    y = upsample_nearest(x, factor)
    assert torch.equal(y, F.interpolate(x, scale_factor=factor, mode="nearest"))
    # every f x f block holds one input value
    blocks = y.view(*shape[:2], shape[2], factor, shape[3], factor)
    assert torch.equal(blocks, x[:, :, :, None, :, None].expand_as(blocks))


@pytest.mark.parametrize("shape, k", [((2, 3, 8, 8), 2), ((1, 2, 9, 6), 3)])
def test_unpooling_equals_torch_and_restores_the_maxima(shape, k):
    x = rand(*shape, seed=4).abs() + 0.1  # positive: a zero marks "no maximum here"
    y, idx = max_pool2d(x, k, return_indices=True)
    size = (y.shape[2] * k, y.shape[3] * k)
    up = max_unpool2d(y, idx, size)
    assert torch.equal(up, F.max_unpool2d(y, idx, k, output_size=size))
    kept = up != 0
    assert int(kept.sum()) == y.numel()
    assert torch.equal(up.flatten(2).gather(2, idx.flatten(2)), y.flatten(2))
    assert torch.equal(up[kept], x[..., :size[0], :size[1]][kept])  # each value back where it came from


@pytest.mark.parametrize("shape, factor", [((2, 3, 4, 5), 2), ((1, 1, 3, 3), 3), ((1, 2, 5, 1), 2),
                                           ((1, 1, 1, 4), 4)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_equals_interpolate(shape, factor, align_corners):
    x = rand(*shape, seed=5).requires_grad_(True)
    ours = upsample_bilinear(x, factor, align_corners=align_corners)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=align_corners)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    up = rand(*ref.shape, seed=6)
    torch.testing.assert_close(torch.autograd.grad(ours, x, up)[0], torch.autograd.grad(ref, x, up)[0])


def test_bilinear_reproduces_a_linear_ramp_between_samples():
    # with align_corners=True the corners stay put and a plane is interpolated exactly
    i, j = torch.meshgrid(torch.arange(3.0), torch.arange(4.0), indexing="ij")
    x = (2 * i - j)[None, None]
    y = upsample_bilinear(x, 3, align_corners=True)[0, 0]
    u = torch.linspace(0, 2, 9)[:, None]
    v = torch.linspace(0, 3, 12)[None, :]
    torch.testing.assert_close(y, 2 * u - v, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape, factor", [((2, 12, 3, 5), 2), ((1, 9, 4, 2), 3), ((3, 32, 2, 2), 4),
                                           ((1, 5, 3, 3), 1)])
def test_pixel_shuffle_equals_torch_values_and_gradients(shape, factor):
    x = rand(*shape, seed=7).requires_grad_(True)
    ours, ref = pixel_shuffle(x, factor), torch.nn.PixelShuffle(factor)(x)
    assert torch.equal(ours, ref)
    up = rand(*ref.shape, seed=8)
    assert torch.equal(torch.autograd.grad(ours, x, up)[0], torch.autograd.grad(ref, x, up)[0])


def test_pixel_shuffle_fills_each_block_from_one_position_by_hand():
    x = torch.arange(2 * 4 * 2 * 3.0).view(1, 8, 2, 3)  # C = 2 output channels, r = 2
    y = pixel_shuffle(x)
    for c in range(2):
        for h in range(2):
            for w in range(3):
                block = y[0, c, 2 * h:2 * h + 2, 2 * w:2 * w + 2].flatten()  # reading order: (i, j)
                assert torch.equal(block, x[0, 4 * c:4 * c + 4, h, w])  # channels c·r² + r·i + j


@pytest.mark.parametrize("call", [
    lambda: pixel_shuffle(torch.zeros(1, 6, 2, 2)),
    lambda: pixel_shuffle(torch.zeros(4, 2, 2)),
    lambda: pixel_shuffle(torch.zeros(1, 4, 2, 2), 0),
    lambda: subsample(torch.zeros(4, 4)),
    lambda: subsample(torch.zeros(1, 1, 4, 4), 0),
    lambda: max_pool2d(torch.zeros(1, 1, 2, 2), 3),
    lambda: max_pool2d(torch.zeros(1, 1, 4, 4), return_indices=1),
    lambda: mean_pool2d(torch.zeros(1, 1, 4, 4), stride=0),
    lambda: upsample_nearest(torch.zeros(1, 1, 2, 2), 1.5),
    lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), (4, 4)),
    lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 16), (4, 4)),
    lambda: max_unpool2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.int64), 4),
    lambda: upsample_bilinear(torch.zeros(1, 1, 2, 2, dtype=torch.int64)),
    lambda: upsample_bilinear(torch.zeros(1, 1, 2, 2), align_corners="yes"),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises((ValueError, TypeError), match=r"^The '\w+' parameter of \w+"):
        call()


def test_mean_pooling_the_photograph_equals_its_block_average():
    from udl.data.images import load_photo

    full = load_photo("flower")
    assert full.shape == (427, 640, 3) and 0.0 <= full.min() and full.max() <= 1.0
    x = torch.from_numpy(full).permute(2, 0, 1)[None].double()  # (1, 3, 427, 640)
    pooled = mean_pool2d(x, 4)[0].permute(1, 2, 0).numpy()
    assert pooled.shape == (106, 160, 3)
    assert abs(pooled - load_photo("flower", downscale=4)).max() < 1e-6


def test_the_photograph_is_scikit_learns_sample_image():
    from sklearn.datasets import load_sample_image

    from udl.data.images import load_photo

    raw = load_sample_image("china.jpg").astype("float32") / 255
    assert abs(load_photo("china") - raw).max() == 0
