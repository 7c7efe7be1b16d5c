"""udl.nn.init: He initialisation's variance 2 / fan-in, zero biases, the generator."""

import math

import torch
from torch import nn

from udl.nn.init import he_init


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_he_variance_is_two_over_fan_in_for_linear_and_conv_layers():
    net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Conv2d(16, 200, 5), nn.BatchNorm2d(200))
    he_init(net, gen(0))
    linear, conv, bn = net[0], net[2], net[3]
    assert abs(linear.weight.var().item() / (2 / 400) - 1) < 0.02  # fan-in D_h = 400
    assert abs(conv.weight.var().item() / (2 / (16 * 5 * 5)) - 1) < 0.02  # fan-in C_in·k² = 400
    assert abs(linear.weight.mean().item()) < 3 * math.sqrt(2 / 400 / linear.weight.numel())
    assert linear.bias.abs().max() == 0 and conv.bias.abs().max() == 0
    assert bn.weight.tolist() == [1.0] * 200  # other layers keep their values


def test_he_init_keeps_the_mean_square_through_relu_layers():
    widths = [256] * 11
    net = nn.Sequential(*[m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
    he_init(net, gen(1))
    x = torch.randn(2000, 256, generator=gen(2))
    # each ReLU halves E[h²] and each He layer (σ² = 2 / D) doubles it back: E[h_10²] = E[x²]
    ratio = (net(x).square().mean() / x.square().mean()).item()
    assert abs(ratio - 1) < 0.15


def test_the_generator_decides_the_weights_and_leaves_the_global_one_alone():
    a, again, other = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)
    state = torch.get_rng_state()
    he_init(a, gen(5))
    assert torch.equal(state, torch.get_rng_state())
    he_init(again, gen(5))
    he_init(other, gen(6))
    assert torch.equal(a.weight, again.weight) and not torch.equal(a.weight, other.weight)


def test_meta_layers_are_skipped():
    layer = nn.Linear(3, 3, device="meta")
    he_init(layer)
    assert layer.weight.is_meta
