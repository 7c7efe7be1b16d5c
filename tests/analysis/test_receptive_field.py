"""udl.analysis.receptive_field: gradient support (measured) against the layer formula (analytic)."""

import pytest
import torch
from torch import nn

from udl.analysis.receptive_field import (LayerGeometry, gradient_support, input_sensitivity, layer_geometry,
                                          receptive_field_interval, receptive_field_sizes, support_interval)
from udl.nn.conv import Conv1d


def book_fig_10_6(generator=None):
    """Input of 11; three channels; four; stride 2; kernel 3 throughout (fig. 10.6)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv1d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv1d(4, 4, 3, stride=2), nn.ReLU(), nn.Conv1d(4, 4, 3, padding=1))


def measured_interval(net, shape, unit):
    mask = gradient_support(net, shape, unit)
    return support_interval(mask), mask


def test_book_network_fields_grow_3_5_7_11():
    net = book_fig_10_6()
    layers = layer_geometry(net)
    assert receptive_field_sizes(layers) == [3, 5, 7, 11]
    # measured at the middle unit of each prefix of the network
    measured = []
    for depth, position in zip((1, 3, 5, 7), (5, 5, 2, 2)):
        (interval,), mask = measured_interval(net[:depth], (1, 11), (0, position))
        measured.append(interval[1] - interval[0] + 1)
        assert int(mask.sum()) == measured[-1]  # no holes without dilation
    assert measured == [3, 5, 7, 11]


def chains():
    torch.manual_seed(1)
    yield nn.Sequential(nn.Conv1d(1, 3, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv1d(3, 3, 3, padding=1),
                        nn.ReLU(), nn.Conv1d(3, 2, 5, stride=2, padding=2), nn.ReLU(),
                        nn.Conv1d(2, 2, 3, dilation=3, padding=3)), (1, 48)
    yield nn.Sequential(nn.Conv1d(2, 4, 4, stride=2), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(4, 3, 3, dilation=2),
                        nn.Tanh(), nn.AvgPool1d(3, stride=1)), (2, 60)
    yield nn.Sequential(Conv1d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.BatchNorm1d(3),
                        Conv1d(3, 3, 3, stride=2, padding="valid"), nn.ReLU(), nn.Conv1d(3, 1, 3)), (1, 40)
    # the MNIST-1D network of §10.2.7: three "valid" convolutions of kernel 3, stride 2
    yield nn.Sequential(nn.Conv1d(1, 15, 3, stride=2), nn.ReLU(), nn.Conv1d(15, 15, 3, stride=2), nn.ReLU(),
                        nn.Conv1d(15, 15, 3, stride=2), nn.ReLU()), (1, 40)


@pytest.mark.parametrize("net, shape", list(chains()))
def test_measured_field_equals_the_analytic_interval_at_every_unit(net, shape):
    layers = layer_geometry(net)
    n_out = net(torch.zeros(1, *shape)).shape[-1]
    for position in range(n_out):
        lo, hi = receptive_field_interval(layers, position)
        assert hi - lo + 1 == receptive_field_sizes(layers)[-1]
        ((m_lo, m_hi),), mask = measured_interval(net, shape, (0, position))
        assert (m_lo, m_hi) == (max(lo, 0), min(hi, shape[-1] - 1))  # clipped to the input


def test_mnist1d_network_fields_are_3_7_15():
    net, _ = list(chains())[-1]
    assert receptive_field_sizes(layer_geometry(net)) == [3, 7, 15]


def test_dilation_leaves_holes_the_interval_spans():
    net = nn.Conv1d(1, 1, 3, dilation=2)
    mask = gradient_support(net, (1, 9), (0, 1))
    assert mask.nonzero().flatten().tolist() == [1, 3, 5]
    assert support_interval(mask) == [(1, 5)]
    assert receptive_field_interval(layer_geometry(net), 1) == (1, 5)


def test_2d_field_is_the_product_of_the_axis_intervals():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, (3, 5), padding=(0, 2), dilation=(2, 1)), nn.ReLU(),
                        nn.Conv2d(4, 2, 3, stride=(1, 2)))
    shape = (3, 24, 20)
    rows, cols = layer_geometry(net, axis=0), layer_geometry(net, axis=1)
    assert receptive_field_sizes(rows) == [3, 4, 12, 16]
    assert receptive_field_sizes(cols) == [3, 4, 12, 16]
    unit = (1, 3, 2)
    mask = gradient_support(net, shape, unit, n_probes=32)
    (r_lo, r_hi), (c_lo, c_hi) = receptive_field_interval(rows, 3), receptive_field_interval(cols, 2)
    expected = torch.zeros(24, 20, dtype=torch.bool)
    expected[max(r_lo, 0):r_hi + 1, max(c_lo, 0):c_hi + 1] = True
    assert torch.equal(mask, expected)


def test_fully_connected_units_see_the_whole_input():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2))
    assert bool(gradient_support(net, (1, 12), (1,)).all())
    with pytest.raises(ValueError, match="'model' parameter of layer_geometry"):
        layer_geometry(net)


def test_sensitivity_is_the_mean_absolute_gradient_and_mode_is_restored():
    net = nn.Sequential(nn.Conv1d(1, 1, 3, padding=1, bias=False), nn.Dropout(0.5)).train()
    w = net[0].weight.detach()[0, 0]
    s = input_sensitivity(net, (1, 7), (0, 3), n_probes=4)
    # linear layer in eval mode: the gradient is the kernel itself, for every probe
    torch.testing.assert_close(s[2:5], w.abs())
    assert s[:2].abs().max() == 0 and s[5:].abs().max() == 0
    assert net.training


def test_probes_come_from_the_generator_and_leave_the_global_one_alone():
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Conv1d(2, 1, 3))
    state = torch.get_rng_state()
    by_seed = input_sensitivity(net, (1, 9), (0, 2), n_probes=3, generator=5)
    assert torch.equal(torch.get_rng_state(), state)
    # an int is a seed: the probes are torch.randn(3, 1, 9) from torch.Generator().manual_seed(5)
    g = torch.Generator().manual_seed(5)
    assert torch.equal(input_sensitivity(net, (1, 9), (0, 2), n_probes=3, generator=g), by_seed)
    x = torch.randn(3, 1, 9, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x)[:, 0, 2].sum(), x)
    torch.testing.assert_close(by_seed, grad.abs().mean(dim=(0, 1)))
    # a Generator's stream continues: the next call draws new probes
    assert not torch.equal(input_sensitivity(net, (1, 9), (0, 2), n_probes=3, generator=g), by_seed)
    assert torch.equal(gradient_support(net, (1, 9), (0, 2), generator=0), input_sensitivity(net, (1, 9), (0, 2)) > 0)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("call", [
    lambda: gradient_support(nn.Conv1d(1, 1, 3), (1, 9), (0, 1), generator=None),
    lambda: gradient_support(nn.Conv1d(1, 1, 3), (1, 9), (0, 1), generator=1.5),
    lambda: receptive_field_sizes([3, 3]),
    lambda: receptive_field_interval([LayerGeometry(3)], -1),
    lambda: LayerGeometry(0),
    lambda: LayerGeometry(3, padding=-1),
    lambda: gradient_support(nn.Conv1d(1, 1, 3), (1, 9), (0, 7)),
    lambda: gradient_support(nn.Conv1d(1, 1, 3), (9,), (0, 1)),
    lambda: gradient_support("net", (1, 9), (0, 1)),
    lambda: support_interval(torch.zeros(4, dtype=torch.bool)),
    lambda: layer_geometry(nn.Conv1d(1, 1, 3), axis=1),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises((ValueError, TypeError), match=r"^The '\w+' parameter of \w+"):
        call()
