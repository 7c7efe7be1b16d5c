"""udl.models.resnet: ResNet-200's size (counted on the meta device), layer counts, shapes.

Seeding, gradients, the meta device and bad arguments: tests/models/test_zoo.py.
"""

import pytest
import torch
from torch import nn

from udl.models.resnet import PRESETS, ResNet, ResNetConfig, resnet50, resnet200
from udl.nn.residual import BottleneckBlock, ResidualBlock, count_parameters


def meta(build):
    with torch.device("meta"):
        return build()


def test_resnet200_has_64_7_million_parameters_and_200_layers():
    net = meta(resnet200)
    n = count_parameters(net)
    assert n == 64_666_280  # timm's post-activation resnet200 has 64,673,832 (its BNs sit elsewhere)
    assert abs(n - 64.7e6) / 64.7e6 < 0.01
    assert n == net.config.parameter_count
    assert net.layer_count == net.config.layer_count == 1 + 3 * 66 + 1 == 200
    assert [len(s) for s in net.stages] == [3, 24, 36, 3]
    assert all(p.device.type == "meta" for p in net.parameters())  # nothing was allocated


@pytest.mark.parametrize("name, layers", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50), ("resnet101", 101),
                                          ("resnet152", 152), ("tiny", 14)])
def test_presets_count_in_closed_form(name, layers):
    net = meta(lambda: ResNet(name))
    assert count_parameters(net) == net.config.parameter_count
    assert net.layer_count == layers


def test_resnet50_size():
    assert count_parameters(meta(resnet50)) == 25_549_480  # torchvision's (post-activation) resnet50: 25,557,032


def test_stage_sizes_and_output_shape_at_224():
    net = ResNet(ResNetConfig(stages=(1, 1, 1, 1), widths=(2, 2, 4, 4), stem_channels=4), generator=0)
    sizes = []
    hooks = [s.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for s in net.stages]
    with torch.no_grad():
        y = net(torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    for h in hooks:
        h.remove()
    assert y.shape == (1, 1000) and torch.isfinite(y).all()
    assert sizes == [(8, 56, 56), (8, 28, 28), (16, 14, 14), (16, 7, 7)]
    assert net.config.stage_channels == (8, 8, 16, 16)


def test_architecture_of_a_stage():
    net = ResNet("tiny", generator=0)
    first = net.stages[1][0]
    assert isinstance(first, BottleneckBlock) and first.stride == 2 and first.shortcut is not None
    assert [m.kernel_size for m in net.stem if isinstance(m, nn.Conv2d)] == [(7, 7)]
    assert net.stem[0].stride == (2, 2) and isinstance(net.stem[-1], nn.MaxPool2d)
    assert isinstance(net.head[0], nn.BatchNorm2d) and net.head[-1].out_features == 10


def test_standard_block_resnet():
    cfg = ResNetConfig(block="standard", stages=(2, 1), widths=(4, 8), stem_channels=4, n_classes=3)
    net = ResNet(cfg, generator=1)
    assert all(isinstance(b, ResidualBlock) for s in net.stages for b in s)
    assert count_parameters(net) == cfg.parameter_count
    assert net.layer_count == 1 + 2 * 3 + 1
    assert net(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))).shape == (2, 3)


def test_bad_input_shape_is_refused():
    with pytest.raises(ValueError, match="expects images"):
        ResNet("tiny")(torch.zeros(1, 1, 64, 64))
    assert set(PRESETS) >= {"resnet200", "tiny"}
