"""udl.models.densenet: the stack grows by k channels per layer and keeps every earlier channel.

Seeding, gradients, the meta device and bad arguments: tests/models/test_zoo.py.
"""

import pytest
import torch
from torch import nn

from udl.models.densenet import DenseBlock, DenseLayer, DenseNet, DenseNetConfig, Transition
from udl.nn.residual import count_parameters


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_channels_grow_3_35_67_99_for_k_32():
    block = DenseBlock(3, 4, 32, generator=gen())
    x = torch.randn(1, 3, 12, 10, generator=gen(1))
    stacks = block.stacks(x)
    assert [h.shape[1] for h in stacks] == [3, 35, 67, 99, 131]
    assert block.out_channels == 131
    torch.testing.assert_close(block(x), stacks[-1], rtol=0, atol=0)


def test_concatenation_keeps_every_earlier_channel_exactly():
    block = DenseBlock(3, 3, 8, generator=gen())
    x = torch.randn(2, 3, 9, 9, generator=gen(1))
    stacks = block.stacks(x)
    assert torch.equal(stacks[-1][:, :3], x)  # the image itself is passed on
    for j, earlier in enumerate(stacks):
        for later in stacks[j + 1:]:
            assert torch.equal(later[:, :earlier.shape[1]], earlier)


def test_dense_layer_parameters_closed_form():
    assert count_parameters(DenseLayer(35, 32)) == 2 * 35 + 9 * 35 * 32  # BN (γ, δ) and a 3×3 conv, no bias
    block = DenseBlock(3, 4, 32)
    assert count_parameters(block) == sum(2 * c + 9 * c * 32 for c in (3, 35, 67, 99))


@pytest.mark.parametrize("dims, spatial", [(1, (10,)), (2, (6, 8)), (3, (4, 4, 6))])
def test_block_and_transition_in_1d_2d_3d(dims, spatial):
    x = torch.randn(2, 5, *spatial, generator=gen())
    h = DenseBlock(5, 2, 4, dims=dims, generator=gen(1))(x)
    assert h.shape == (2, 13, *spatial)
    t = Transition(13, 6, dims=dims, generator=gen(2))(h)
    assert t.shape == (2, 6, *(s // 2 for s in spatial))


def test_transition_averages_2x2_after_a_1x1_convolution():
    t = Transition(2, 1, generator=gen())
    x = torch.randn(1, 2, 4, 4, generator=gen(1))
    t.eval()  # BN with running statistics (0, 1) at start: the identity
    expected = nn.functional.avg_pool2d(nn.functional.conv2d(torch.relu(x / (1 + 1e-5) ** 0.5), t.f[2].weight), 2)
    torch.testing.assert_close(t(x), expected)


def test_densenet_channels_follow_the_config():
    cfg = DenseNetConfig.preset("small")
    net = DenseNet(cfg, generator=0)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.shape[1])) for m in [net.stem, *net.features]]
    y = net(torch.randn(2, 3, 32, 32, generator=gen()))
    for h in hooks:
        h.remove()
    assert y.shape == (2, 10)
    assert seen == cfg.channels == [24, 96, 48, 120, 60, 132]
    assert count_parameters(net) == 161_002


def test_images_with_other_channels_are_refused():
    with pytest.raises(ValueError, match="expects images"):
        DenseNet("tiny", generator=2)(torch.zeros(1, 4, 8, 8))
