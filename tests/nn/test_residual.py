"""udl.nn.residual: block shapes, parameter counts in closed form, the skip path, fig. 11.6's variances."""

import math

import pytest
import torch
from torch import nn

from udl.nn.residual import (INV_SQRT2, VARIANCE_KINDS, BottleneckBlock, Residual, ResidualBlock, count_parameters,
                             mean_squares, variance_network)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def standard_count(c: int) -> int:
    return 2 * 9 * c * c + 2 * 2 * c  # two 3×3 convolutions C → C, two BNs (γ, δ)


def bottleneck_count(c_in: int, b: int, c_out: int, projection: bool) -> int:
    weights = c_in * b + 9 * b * b + b * c_out
    return weights + 2 * (c_in + 2 * b) + (c_in * c_out if projection else 0)


# --------------------------------------------------------------------------- shapes and counts
@pytest.mark.parametrize("dims, spatial", [(1, (11,)), (2, (7, 6)), (3, (5, 4, 3))])
def test_standard_block_keeps_the_shape_in_1d_2d_3d(dims, spatial):
    block = ResidualBlock(6, dims=dims, generator=gen())
    x = torch.randn(2, 6, *spatial, generator=gen(1))
    assert block(x).shape == x.shape


@pytest.mark.parametrize("dims, spatial, out", [(1, (12,), (6,)), (2, (8, 7), (4, 4)), (3, (4, 6, 5), (2, 3, 3))])
def test_bottleneck_shapes_with_stride_in_1d_2d_3d(dims, spatial, out):
    block = BottleneckBlock(8, 4, stride=2, dims=dims, generator=gen())
    x = torch.randn(2, 8, *spatial, generator=gen(1))
    assert block(x).shape == (2, 16, *out)  # C_out = 4B, ⌈size / 2⌉


@pytest.mark.parametrize("c", [4, 16, 64])
def test_standard_block_parameters_closed_form(c):
    assert count_parameters(ResidualBlock(c)) == standard_count(c)


@pytest.mark.parametrize("c_in, b, c_out, stride", [(256, 64, 256, 1), (64, 64, 256, 1), (256, 128, 512, 2),
                                                    (32, 8, None, 1), (32, 8, 32, 2)])
def test_bottleneck_parameters_closed_form(c_in, b, c_out, stride):
    block = BottleneckBlock(c_in, b, c_out, stride=stride)
    c_out = 4 * b if c_out is None else c_out
    projection = stride != 1 or c_in != c_out
    assert (block.shortcut is not None) == projection
    assert count_parameters(block) == bottleneck_count(c_in, b, c_out, projection)


@pytest.mark.parametrize("c_in, b, c_out, stride", [(64, 64, 256, 1), (256, 64, 256, 1), (256, 128, 512, 2)])
def test_post_activation_bottleneck_parameters_closed_form(c_in, b, c_out, stride):
    """BN after each convolution (2·(2B + C_out)), a projection 1×1 conv → BN: torchvision's Bottleneck."""
    block = BottleneckBlock(c_in, b, c_out, stride=stride, preact=False)
    projection = stride != 1 or c_in != c_out
    weights = c_in * b + 9 * b * b + b * c_out
    assert count_parameters(block) == weights + 2 * (2 * b + c_out) + (c_in * c_out + 2 * c_out if projection else 0)
    assert count_parameters(BottleneckBlock(64, 64, preact=False)) == 75_008  # torchvision's resnet50.layer1[0]


def test_post_activation_standard_block_parameters_closed_form():
    assert count_parameters(ResidualBlock(64, preact=False)) == 73_984  # torchvision's resnet18.layer1[0]
    # resnet18.layer2[0]: 3×3 (64→128), 3×3 (128→128), two BNs, the projection 1×1 (64→128) → BN
    assert count_parameters(ResidualBlock(64, out_channels=128, stride=2, preact=False)) == 230_144


def test_preactivated_shortcut_changes_only_what_the_projection_reads():
    a = BottleneckBlock(8, 2, 16, generator=gen(5))
    b = BottleneckBlock(8, 2, 16, preactivated_shortcut=True, generator=gen(5))
    assert count_parameters(a) == count_parameters(b)
    x = torch.randn(2, 8, 5, 5, generator=gen(6))
    torch.testing.assert_close(b(x) - a(x), b.shortcut(b.branch[:2](x)) - a.shortcut(x))
    same = ResidualBlock(4, preactivated_shortcut=True, generator=gen(5))  # identity shortcut: adds the raw x
    torch.testing.assert_close(same(x[:, :4]), ResidualBlock(4, generator=gen(5))(x[:, :4]))


def test_bottleneck_is_cheaper_than_the_standard_block_at_the_same_width():
    standard, bottleneck = count_parameters(ResidualBlock(256)), count_parameters(BottleneckBlock(256, 64))
    assert (standard, bottleneck) == (1_180_672, 70_400)


def test_standard_block_that_downsamples_and_widens():
    block = ResidualBlock(8, out_channels=16, stride=2, generator=gen())
    assert block(torch.randn(1, 8, 10, 10, generator=gen(1))).shape == (1, 16, 5, 5)
    # 3×3 (8→16), 3×3 (16→16), BN(8), BN(16), 1×1 projection (8→16)
    assert count_parameters(block) == 9 * 8 * 16 + 9 * 16 * 16 + 2 * 8 + 2 * 16 + 8 * 16


def test_without_norm_the_convolutions_have_biases():
    assert count_parameters(ResidualBlock(4, norm=False)) == 2 * (9 * 16 + 4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ResidualBlock(4, norm=False).modules())


def test_the_branch_is_in_pre_activation_order():
    kinds = [type(m).__name__ for m in BottleneckBlock(8, 2).branch]
    assert kinds == ["BatchNorm2d", "ReLU", "Conv2d"] * 3
    assert [m.kernel_size for m in BottleneckBlock(8, 2).branch if isinstance(m, nn.Conv2d)] == [(1, 1), (3, 3), (1, 1)]


# --------------------------------------------------------------------------- the skip path
@pytest.mark.parametrize("make", [lambda skip: ResidualBlock(5, skip=skip, generator=gen(3)),
                                  lambda skip: BottleneckBlock(8, 2, 8, skip=skip, generator=gen(3)),
                                  lambda skip: ResidualBlock(5, dims=1, scale=INV_SQRT2, skip=skip, generator=gen(3))])
def test_skip_false_removes_exactly_the_identity(make):
    with_skip, without = make(True), make(False)
    x = torch.randn(3, with_skip.in_channels, *([6] * (with_skip.branch[2].weight.dim() - 2)), generator=gen(4))
    for a, b in zip(with_skip.parameters(), without.parameters()):  # the same weights (same generator seed)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(with_skip(x) - without(x), with_skip.scale * x, rtol=1e-5, atol=1e-5)


def test_residual_wrapper_computes_scale_times_x_plus_f():
    f = nn.Linear(4, 4)
    x = torch.randn(6, 4, generator=gen())
    torch.testing.assert_close(Residual(f, scale=0.3)(x), 0.3 * (x + f(x)))
    torch.testing.assert_close(Residual(f, scale=0.3, skip=False)(x), 0.3 * f(x))
    with pytest.raises(ValueError, match="shape"):
        Residual(nn.Linear(4, 3))(x)


def test_jacobian_is_identity_plus_the_branch_jacobian():
    """∂h_k/∂h_{k-1} = I + ∂f/∂h (eq. 11.6): the gradient always reaches the input through I."""
    block = Residual(nn.Sequential(nn.Linear(3, 3), nn.Tanh()))
    x = torch.randn(3, dtype=torch.float64, generator=gen())
    block = block.double()
    jac = torch.autograd.functional.jacobian(block, x)
    jac_f = torch.autograd.functional.jacobian(block.f, x)
    torch.testing.assert_close(jac, torch.eye(3, dtype=torch.float64) + jac_f)


def test_gradient_reaches_the_input_when_the_branch_is_dead():
    block = BottleneckBlock(4, 2, 4, generator=gen())
    nn.init.zeros_(block.branch[-1].weight)  # the branch outputs 0 and passes no gradient
    x = torch.randn(2, 4, 5, 5, generator=gen(1), requires_grad=True)
    block(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    dead = BottleneckBlock(4, 2, 4, skip=False, generator=gen())
    nn.init.zeros_(dead.branch[-1].weight)
    y = torch.randn(2, 4, 5, 5, generator=gen(1), requires_grad=True)
    dead(y).sum().backward()
    assert y.grad.abs().max() == 0  # without the skip connection nothing gets through


# --------------------------------------------------------------------------- initialisation
def test_blocks_are_he_initialised():
    block = BottleneckBlock(256, 64, generator=gen(0))
    w = block.branch[2].weight  # 1×1 conv 256 → 64: fan-in 256
    assert abs(w.var().item() * 256 / 2 - 1) < 0.02


def test_bottleneck_sees_a_3x3_region_and_the_standard_block_5x5():
    from udl.analysis.receptive_field import gradient_support, support_interval

    std = gradient_support(ResidualBlock(4, generator=gen()), (4, 9, 9), (0, 4, 4))
    bot = gradient_support(BottleneckBlock(4, 2, 4, generator=gen()), (4, 9, 9), (0, 4, 4))
    assert support_interval(std) == [(2, 6), (2, 6)]
    assert support_interval(bot) == [(3, 5), (3, 5)]


# --------------------------------------------------------------------------- fig. 11.6
def test_mean_squares_closed_form():
    net = nn.Sequential(Residual(nn.Identity()), Residual(nn.Identity(), scale=0.5))
    x = torch.full((4, 3), 3.0)
    torch.testing.assert_close(mean_squares(net, x), torch.tensor([9.0, 36.0, 36.0]))  # 3 → 3 + 3 → (6 + 6) / 2


@pytest.mark.parametrize("kind, per_block", [("plain", 1.0), ("residual", 2.0), ("scaled", 1.0)])
def test_variance_network_growth_per_block(kind, per_block):
    g = gen(7)
    q = torch.stack([mean_squares(variance_network(kind, 256, 5, generator=g), torch.randn(512, 256, generator=g))
                     for _ in range(3)]).mean(0)
    assert (q[-1] / q[0]) ** (1 / 5) == pytest.approx(per_block, rel=0.06)  # geometric mean of the 5 ratios


def test_batch_norm_first_makes_the_growth_linear():
    g = gen(7)
    q = torch.stack([mean_squares(variance_network("batchnorm", 256, 6, generator=g),
                                  torch.randn(512, 256, generator=g)) for _ in range(3)]).mean(0)
    torch.testing.assert_close(q.diff(), torch.ones(6), rtol=0, atol=0.12)  # each block adds E[f²] = 1
    assert (q[-1] - q[0]).item() == pytest.approx(6.0, rel=0.05)


def test_variance_network_structure():
    net = variance_network("batchnorm", 8, 3, generator=gen())
    assert len(net) == 3 and all(isinstance(b, Residual) for b in net)
    assert isinstance(net[0].f[0], nn.BatchNorm1d) and net[0].f[0].weight.eq(1).all() and net[0].f[0].bias.eq(0).all()
    assert isinstance(variance_network("plain", 8, 2)[0], nn.Sequential)
    assert variance_network("scaled", 8, 1)[0].scale == pytest.approx(1 / math.sqrt(2))
    assert set(VARIANCE_KINDS) == {"plain", "residual", "scaled", "batchnorm"}
    a = variance_network("residual", 8, 2, generator=gen(1))
    b = variance_network("residual", 8, 2, generator=gen(1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
