"""udl.models.resnet: ResNet-200's size (counted on the meta device), layer counts, shapes, the published
pre-activation network (He et al. 2016b, timm's resnetv2) and the original post-activation one (torchvision's).

Seeding, gradients, the meta device and bad arguments: tests/models/test_zoo.py. The post-activation network
against transformers' ResNet: tests/interop/test_hf_resnet.py.
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
    assert n == 64_666_152  # He et al.'s pre-activation ResNet-200 (the issue's reference count)
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
    assert count_parameters(meta(resnet50)) == 25_549_352  # timm's resnetv2_50


# torchvision's resnet18 ... resnet152 and timm's resnet200 (post-activation); timm's resnetv2_50 / 101 (pre)
PUBLISHED = {("resnet18", False): 11_689_512, ("resnet34", False): 21_797_672, ("resnet50", False): 25_557_032,
             ("resnet101", False): 44_549_160, ("resnet152", False): 60_192_808, ("resnet200", False): 64_673_832,
             ("resnet50", True): 25_549_352, ("resnet101", True): 44_541_480, ("resnet200", True): 64_666_152}


@pytest.mark.parametrize("name, preact", sorted(PUBLISHED))
def test_published_parameter_counts(name, preact):
    cfg = ResNetConfig.preset(name, preact=preact)
    net = meta(lambda: ResNet(cfg))
    assert count_parameters(net) == cfg.parameter_count == PUBLISHED[name, preact]
    assert net.layer_count == int(name[6:])


def test_the_two_orders_differ_by_the_batch_norms_alone():
    """Post-activation moves each BN after its convolution (2·C_out instead of 2·C_in per block), adds one to every
    projection and to the stem, and drops the final one: ResNet-50's 7,680 more parameters are exactly these."""
    pre, post = ResNetConfig.preset("resnet50"), ResNetConfig.preset("resnet50", preact=False)
    c_in = [64, 256, 256, 256, 512, 512, 512, 512, 1024, 1024, 1024, 1024, 1024, 1024, 2048, 2048]
    c_out = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    moved = sum(2 * (o - i) for i, o in zip(c_in, c_out))
    projections = 2 * (256 + 512 + 1024 + 2048)
    assert post.parameter_count - pre.parameter_count == moved + projections + 2 * 64 - 2 * 2048 == 7_680


def test_pre_activation_network_as_published():
    """He et al. 2016b / timm resnetv2: no BN-ReLU in the stem, projections read the pre-activated input."""
    net = ResNet("tiny", generator=0)
    assert [type(m) for m in net.stem] == [nn.Conv2d, nn.MaxPool2d]
    assert all(b.preact and b.preactivated_shortcut for s in net.stages for b in s)
    assert [type(m) for m in net.head] == [nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]


def _bn(x, bn):
    return torch.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _randomise_norms(net, generator):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.normal_(0, 0.5, generator=generator)
            m.running_var.data.uniform_(0.5, 2.0, generator=generator)


def test_pre_activation_block_written_out():
    """timm's PreActBottleneck: a = ReLU(BN1(x)); out = conv3(ReLU(BN3(conv2(ReLU(BN2(conv1(a))))))) + proj(a)."""
    g = torch.Generator().manual_seed(0)
    block = BottleneckBlock(8, 4, 16, stride=2, preactivated_shortcut=True, generator=0).double().eval()
    _randomise_norms(block, g)
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64, generator=g)
    bn1, _, c1, bn2, _, c2, bn3, _, c3 = block.branch
    a = _bn(x, bn1).relu()
    h = c3(_bn(c2(_bn(c1(a), bn2).relu()), bn3).relu())
    torch.testing.assert_close(block(x), h + block.shortcut(a), rtol=0, atol=1e-12)
    raw = BottleneckBlock(8, 4, 16, stride=2, generator=0).double().eval()
    raw.load_state_dict(block.state_dict())
    torch.testing.assert_close(raw(x), h + raw.shortcut(x), rtol=0, atol=1e-12)  # the default: the raw input
    assert (block(x) - raw(x)).abs().max() > 0.1


def test_post_activation_block_written_out():
    """torchvision's Bottleneck (v1.5): ReLU(BN3(conv3(ReLU(BN2(conv2(ReLU(BN1(conv1 x)))))) + BN(proj(x)))."""
    g = torch.Generator().manual_seed(1)
    block = BottleneckBlock(8, 4, 16, stride=2, preact=False, generator=0).double().eval()
    _randomise_norms(block, g)
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64, generator=g)
    c1, bn1, _, c2, bn2, _, c3, bn3 = block.branch
    assert c2.stride == (2, 2) and c1.stride == (1, 1)  # the stride on the 3×3 (v1.5)
    h = _bn(c3(_bn(c2(_bn(c1(x), bn1).relu()), bn2).relu()), bn3)
    proj, bn = block.shortcut
    torch.testing.assert_close(block(x), (h + _bn(proj(x), bn)).relu(), rtol=0, atol=1e-12)
    std = ResidualBlock(4, out_channels=6, stride=2, preact=False, generator=0).double().eval()
    _randomise_norms(std, g)
    y = torch.randn(2, 4, 7, 7, dtype=torch.float64, generator=g)
    c1, bn1, _, c2, bn2 = std.branch
    expected = (_bn(c2(_bn(c1(y), bn1).relu()), bn2) + _bn(std.shortcut[0](y), std.shortcut[1])).relu()
    torch.testing.assert_close(std(y), expected, rtol=0, atol=1e-12)


def test_post_activation_network():
    net = ResNet(ResNetConfig.tiny(preact=False), generator=0)
    assert [type(m) for m in net.stem] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert [type(m) for m in net.head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]
    assert all(not b.preact for s in net.stages for b in s)
    assert count_parameters(net) == net.config.parameter_count
    y = net(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="preactivated_shortcut"):
        BottleneckBlock(8, 2, preact=False, preactivated_shortcut=True)
    with pytest.raises(TypeError, match="'preact' parameter of ResNetConfig must be a bool"):
        ResNetConfig(preact=1)


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
    assert first.shortcut.stride == (2, 2) and first.branch[5].stride == (2, 2)  # the 3×3 and the projection
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
