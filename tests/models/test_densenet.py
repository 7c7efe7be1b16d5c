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


# ------------------------------------------------------------ DenseNet-B, -C, -BC and the ImageNet networks
# torchvision's num_params of its models of the same names (timm's densenet121 has the same 7,978,856)
PUBLISHED = {"densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
             "densenet161": 28_681_000}


@pytest.mark.parametrize("name", PUBLISHED)
def test_imagenet_densenets_have_the_published_parameter_counts(name):
    cfg = DenseNetConfig.preset(name)
    with torch.device("meta"):
        net = DenseNet(name)
    assert all(p.is_meta for p in net.parameters())
    assert count_parameters(net) == cfg.parameter_count == PUBLISHED[name]
    assert net.layer_count == cfg.layer_count == int(name.removeprefix("densenet"))  # 121 weight layers, ...
    assert cfg.variant == "DenseNet-BC"


def test_cifar_densenets_match_huang_et_al_table_2():
    """L = 40, k = 12: 1.0M parameters; DenseNet-BC L = 100, k = 12: 0.8M (the paper's rounding)."""
    plain, bc = DenseNetConfig.preset("densenet40"), DenseNetConfig.preset("densenet_bc100")
    assert (plain.layer_count, round(plain.parameter_count / 1e6, 1), plain.variant) == (40, 1.0, "DenseNet")
    assert (bc.layer_count, round(bc.parameter_count / 1e6, 1), bc.variant) == (100, 0.8, "DenseNet-BC")
    for cfg in (plain, bc):
        with torch.device("meta"):
            net = DenseNet(cfg)
        assert count_parameters(net) == cfg.parameter_count and net.layer_count == cfg.layer_count


def _shapes(net, x):
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
             for m in [net.stem, *net.features]]
    y = net(x)
    for h in hooks:
        h.remove()
    return seen, y


def test_densenet121_shapes_at_224_on_the_meta_device():
    with torch.device("meta"):
        net = DenseNet("densenet121").eval()  # eval: the same shapes, half the time of meta batch norms
    seen, y = _shapes(net, torch.empty(1, 3, 224, 224, device="meta"))
    assert y.shape == (1, 1000)
    # stem: 64 channels at 56²; each block adds 6·32, 12·32, 24·32, 16·32; transitions halve channels and size
    assert seen == [(64, 56, 56), (256, 56, 56), (128, 28, 28), (512, 28, 28), (256, 14, 14), (1024, 14, 14),
                    (512, 7, 7), (1024, 7, 7)]
    assert [c for c, *_ in seen] == DenseNetConfig.preset("densenet121").channels


def test_every_layer_adds_k_and_every_transition_keeps_floor_theta_c():
    cfg = DenseNetConfig(growth_rate=5, block_layers=(3, 2, 2), stem_channels=7, compression=0.3, bottleneck=4,
                         stem="imagenet", n_classes=6)
    net = DenseNet(cfg, generator=0)
    pairs = []
    for m in net.modules():
        if isinstance(m, (DenseLayer, Transition)):
            m.register_forward_hook(lambda m, i, o: pairs.append((type(m), i[0].shape, o.shape)))
    y = net(torch.randn(2, 3, 64, 64, generator=gen()))
    assert y.shape == (2, 6) and torch.isfinite(y).all()
    layers = [(i, o) for kind, i, o in pairs if kind is DenseLayer]
    transitions = [(i, o) for kind, i, o in pairs if kind is Transition]
    assert len(layers) == 7 and len(transitions) == 2
    assert all(o[1] == i[1] + 5 and o[2:] == i[2:] for i, o in layers)
    assert [(i[1], o[1]) for i, o in transitions] == [(22, 6), (16, 4)]  # ⌊0.3·22⌋ = 6, ⌊0.3·(6 + 10)⌋ = 4
    assert [tuple(o[2:]) for _, o in transitions] == [(8, 8), (4, 4)]  # 64 → stem 16 → 8 → 4
    assert cfg.channels == [7, 22, 6, 16, 4, 14]
    assert count_parameters(net) == cfg.parameter_count


def test_compression_is_a_floor_without_float_trouble():
    assert DenseNetConfig(compression=0.29).kept(100) == 29  # 0.29 · 100 = 28.999... in floating point
    assert DenseNetConfig(compression=0.5).kept(131) == 65
    assert DenseNetConfig(compression=1.0).kept(131) == 131
    assert DenseNetConfig(compression=0.01).kept(5) == 1  # at least one channel


@pytest.mark.parametrize("bottleneck, compression, variant",
                         [(0, 1.0, "DenseNet"), (4, 1.0, "DenseNet-B"), (0, 0.5, "DenseNet-C"),
                          (4, 0.5, "DenseNet-BC")])
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_closed_form_count_for_every_variant_and_stem(bottleneck, compression, variant, stem):
    cfg = DenseNetConfig(growth_rate=6, block_layers=(2, 3, 1), stem_channels=11, compression=compression,
                         bottleneck=bottleneck, stem=stem, in_channels=2, n_classes=4)
    assert cfg.variant == variant
    with torch.device("meta"):
        net = DenseNet(cfg)
    assert count_parameters(net) == cfg.parameter_count
    assert net.layer_count == cfg.layer_count == 1 + (2 if bottleneck else 1) * 6 + 2 + 1


def test_bottleneck_layer_is_bn_relu_1x1_to_4k_then_bn_relu_3x3_to_k():
    layer = DenseLayer(10, 3, bottleneck=4, generator=gen()).eval()  # BN with running statistics (0, 1)
    conv1, conv3 = layer.f[2], layer.f[5]
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size) == (10, 12, (1, 1))
    assert (conv3.in_channels, conv3.out_channels, conv3.kernel_size, conv3.padding) == (12, 3, (3, 3), (1, 1))
    assert count_parameters(layer) == 2 * 10 + 10 * 12 + 2 * 12 + 9 * 12 * 3
    x = torch.randn(2, 10, 5, 6, generator=gen(1))
    bn = lambda h: h / (1 + 1e-5) ** 0.5  # noqa: E731
    expected = nn.functional.conv2d(torch.relu(bn(nn.functional.conv2d(torch.relu(bn(x)), conv1.weight))),
                                    conv3.weight, padding=1)
    y = layer(x)
    assert torch.equal(y[:, :10], x)
    torch.testing.assert_close(y[:, 10:], expected)


def test_imagenet_stem_is_7x7_stride_2_bn_relu_max_pool():
    net = DenseNet(DenseNetConfig.tiny(stem="imagenet", bottleneck=4), generator=0).eval()
    conv = net.stem[0]
    assert (conv.kernel_size, conv.stride, conv.padding, conv.out_channels) == ((7, 7), (2, 2), (3, 3), 8)
    x = torch.randn(1, 3, 32, 32, generator=gen(1))
    expected = nn.functional.max_pool2d(torch.relu(nn.functional.conv2d(x, conv.weight, stride=2, padding=3)
                                                   / (1 + 1e-5) ** 0.5), 3, stride=2, padding=1)
    torch.testing.assert_close(net.stem(x), expected)
    assert expected.shape == (1, 8, 8, 8)


def test_the_default_and_the_figures_configs_are_unchanged():
    """DenseNet-C without bottleneck (figs. 11.9, 12.17): one 3×3 convolution per layer, a plain stem."""
    cfg = DenseNetConfig()
    assert (cfg.bottleneck, cfg.stem, cfg.compression, cfg.variant) == (0, "cifar", 0.5, "DenseNet-C")
    assert isinstance(DenseNet(cfg, generator=0).stem, nn.Conv2d)
    assert len(DenseLayer(5, 4).f) == 3


@pytest.mark.parametrize("changes, message", [
    (dict(bottleneck=-1), "'bottleneck' parameter of DenseNetConfig must be"),
    (dict(bottleneck=2.5), "'bottleneck' parameter of DenseNetConfig must be"),
    (dict(bottleneck=True), "'bottleneck' parameter of DenseNetConfig must be"),
    (dict(stem="resnet"), "'stem' parameter of DenseNetConfig must be one of 'cifar', 'imagenet'"),
    (dict(stem=None), "'stem' parameter of DenseNetConfig must be one of"),
])
def test_new_config_fields_are_validated(changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DenseNetConfig(**changes)


def test_bottleneck_of_layers_and_blocks_is_validated():
    with pytest.raises(ValueError, match="'bottleneck' parameter of DenseLayer"):
        DenseLayer(3, 4, bottleneck=-2)
    with pytest.raises(TypeError, match="'bottleneck' parameter of DenseBlock"):
        DenseBlock(3, 2, 4, bottleneck="4")
    assert DenseBlock(3, 2, 4, bottleneck=2).out_channels == 11
