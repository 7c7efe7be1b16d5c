"""The MNIST-1D networks of UDL §10.2.7: sizes, equality with torch references, initialisation."""

import numpy as np
import pytest
import torch
from torch import nn

from udl.models.mnist1d_nets import ConvNet1D, ConvNet1DConfig, FullyConnected1D, FullyConnected1DConfig
from udl.nn import conv as udl_conv
from udl.systems import weight_layers


def _layer_params(layers):
    return [sum(p.numel() for p in layer.parameters()) for layer in layers]


def test_conv_net_has_the_books_2050_parameters_layer_by_layer():
    net = ConvNet1D(generator=0)
    expected = [15 * 1 * 3 + 15, 15 * 15 * 3 + 15, 15 * 15 * 3 + 15, 60 * 10 + 10]  # 60, 690, 690, 610
    assert _layer_params([*net.convs, net.linear]) == expected
    assert sum(p.numel() for p in net.parameters()) == 2050 == ConvNet1DConfig().parameter_count()


def test_fully_connected_net_has_the_books_59065_parameters_layer_by_layer():
    net = FullyConnected1D(generator=0)
    assert _layer_params(net.layers) == [11685, 38610, 8160, 610]
    assert sum(p.numel() for p in net.parameters()) == 59065 == FullyConnected1DConfig().parameter_count()


@pytest.mark.parametrize("config", [ConvNet1DConfig(length=23, channels=4, kernel_size=5, stride=1, n_layers=2,
                                                    n_classes=3),
                                    ConvNet1DConfig(length=64, channels=2, kernel_size=2, stride=3, n_layers=3)])
def test_parameter_formula_matches_the_module_for_other_shapes(config):
    assert sum(p.numel() for p in ConvNet1D(config, generator=0).parameters()) == config.parameter_count()


def test_lengths_shrink_40_19_9_4_and_hidden_layers_have_those_shapes():
    net = ConvNet1D(generator=0)
    assert net.config.lengths() == [40, 19, 9, 4]
    assert [tuple(h.shape) for h in net.hidden(torch.zeros(2, 40))] == [(2, 15, 19), (2, 15, 9), (2, 15, 4)]
    fc_widths = [h.shape[1] for h in FullyConnected1D(generator=0).hidden(torch.zeros(2, 40))]
    assert fc_widths == [15 * 19, 15 * 9, 15 * 4]  # as many hidden units as the convolutional network


@pytest.mark.parametrize("config", [ConvNet1DConfig(), ConvNet1DConfig(length=23, kernel_size=5, stride=3,
                                                                    n_layers=2)])
def test_lengths_equal_torch_conv1d_output_lengths(config):
    h, lengths = torch.zeros(1, 1, config.length), [config.length]
    for _ in range(config.n_layers):
        h = nn.Conv1d(1, 1, config.kernel_size, stride=config.stride)(h)
        lengths.append(h.shape[-1])
    assert config.lengths() == lengths


def test_hidden_layers_equal_the_books_weighted_sum_udl_nn_conv():
    net = ConvNet1D(generator=2)
    x = torch.randn(4, 40, generator=torch.Generator().manual_seed(0))
    h = x[:, None]
    for conv, mine in zip(net.convs, net.hidden(x)):
        h = torch.relu(udl_conv.conv1d(h, conv.weight, conv.bias, stride=2))  # eqs. 10.3-10.4 with channels, by hand
        torch.testing.assert_close(mine, h, rtol=1e-5, atol=1e-6)


def test_conv_net_equals_a_torch_sequential_with_the_same_weights():
    net = ConvNet1D(generator=1)
    reference = nn.Sequential(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, 15, 3, 2), nn.ReLU(), nn.Conv1d(15, 15, 3, 2),
                              nn.ReLU(), nn.Conv1d(15, 15, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(60, 10))
    with torch.no_grad():
        for mine, theirs in zip([*net.convs, net.linear], [reference[1], reference[3], reference[5], reference[8]]):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    x = torch.randn(7, 40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=1e-6)


def test_fully_connected_net_equals_a_torch_sequential_with_the_same_weights():
    net = FullyConnected1D(generator=1)
    layers = [nn.Linear(a, b) for a, b in zip((40, 285, 135, 60), (285, 135, 60, 10))]
    reference = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2], nn.ReLU(), layers[3])
    reference.load_state_dict({f"{2 * i}.{k}": v for i, layer in enumerate(net.layers)
                               for k, v in layer.state_dict().items()})
    x = torch.randn(7, 40, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=1e-6)


def test_fully_connected_without_hidden_layers_is_linear():
    net = FullyConnected1D(FullyConnected1DConfig(widths=(4, 3)), generator=0)
    x = torch.randn(5, 4)
    torch.testing.assert_close(net(x), x @ net.layers[0].weight.T + net.layers[0].bias)
    assert net.depth == 0


def test_he_initialisation_variance_two_over_fan_in_and_zero_biases():
    net = FullyConnected1D(generator=0)
    for layer in net.layers[:2]:  # enough weights for a tight estimate (11,400 and 38,475)
        assert layer.weight.var().item() == pytest.approx(2 / layer.in_features, rel=0.05)
        assert layer.weight.mean().abs().item() < 4 * (2 / layer.in_features / layer.weight.numel()) ** 0.5
    conv = ConvNet1D(generator=0)
    weights = torch.cat([c.weight.flatten() for c in conv.convs[1:]])  # fan_in 15·3 = 45
    assert weights.var().item() == pytest.approx(2 / 45, rel=0.1)
    assert all(layer.bias.detach().abs().max().item() == 0.0 for layer in [*net.layers, *conv.convs, conv.linear])


@pytest.mark.parametrize("net", [ConvNet1D(), FullyConnected1D()], ids=["conv", "fc"])
def test_depth_is_weight_layers_minus_one(net):
    assert net.depth == weight_layers(net) - 1 == 3


@pytest.mark.parametrize("kwargs", [dict(length=8), dict(channels=0), dict(kernel_size=0), dict(stride=-1),
                                    dict(n_layers=1.5), dict(n_classes=True)])
def test_bad_conv_configs_are_refused(kwargs):
    with pytest.raises((ValueError, TypeError), match=f"'{next(iter(kwargs))}' parameter of ConvNet1DConfig"):
        ConvNet1DConfig(**kwargs)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"^The 'x' parameter of ConvNet1D must be a tensor of shape \(N, 40\)\. "
                                         r"Got shape \(3, 41\) instead\.$"):
        ConvNet1D(generator=0)(torch.zeros(3, 41))
    with pytest.raises(TypeError, match="'x' parameter"):
        FullyConnected1D(generator=0)(np.zeros((3, 40)))
    with pytest.raises(TypeError, match="'config' parameter of ConvNet1D"):
        ConvNet1D(FullyConnected1DConfig())
    with pytest.raises(ValueError, match="'generator' parameter of FullyConnected1D"):
        FullyConnected1D(generator=-1)
