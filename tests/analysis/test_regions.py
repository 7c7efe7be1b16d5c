"""udl.analysis.regions: region counts against hand-built networks and Zaslavsky's formula."""

import math

import pytest
import torch
from torch import nn

from udl.analysis.regions import (activation_patterns, count_regions_1d, count_regions_sampled_1d,
                                  count_regions_shallow, hyperplane_vertices, linear_pieces_1d,
                                  linear_regions_1d, max_regions, region_labels, region_patterns_shallow)
from udl.nn.deep import DeepNetwork, compose
from udl.nn.shallow import ShallowNetwork


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def shallow(theta_0, theta, phi_0=0.0, phi=None):
    """A float64 ShallowNetwork with given θ_0 (D,), θ (D, Di) and φ (D,) (one output)."""
    theta = torch.tensor(theta, dtype=torch.float64)
    theta = theta[:, None] if theta.dim() == 1 else theta
    d_hidden, d_in = theta.shape
    net = ShallowNetwork(d_in, d_hidden, 1).double()
    with torch.no_grad():
        net.theta_0.copy_(torch.tensor(theta_0, dtype=torch.float64))
        net.theta.copy_(theta)
        net.phi_0.fill_(phi_0)
        net.phi.copy_(torch.tensor([1.0] * d_hidden if phi is None else phi, dtype=torch.float64)[None])
    return net


# --------------------------------------------------------------------------- formula
@pytest.mark.parametrize("d_in,d_hidden,expected", [(1, 5, 6), (2, 3, 7), (2, 4, 11), (3, 4, 15), (3, 3, 8),
                                                    (5, 2, 4), (2, 0, 1), (10, 10, 1024), (2, 10, 56)])
def test_max_regions_closed_forms(d_in, d_hidden, expected):
    assert max_regions(d_in, d_hidden) == expected


def test_max_regions_is_d_plus_one_in_1d_and_two_to_the_d_when_d_small():
    assert [max_regions(1, d) for d in range(8)] == [d + 1 for d in range(8)]
    assert all(max_regions(d_in, d) == 2 ** d for d_in in (3, 6) for d in range(d_in + 1))


# --------------------------------------------------------------------------- 1D exact
def test_shallow_1d_regions_from_known_joints():
    # joints at -0.5, 0.25 (inside [-1, 1]) and 3.0 (outside)
    net = shallow([0.5, -0.25, -3.0], [1.0, 1.0, 1.0], phi=[1.0, -2.0, 1.0])
    assert count_regions_1d(net, -1.0, 1.0) == 3
    assert count_regions_1d(net, -1.0, 4.0) == 4
    assert count_regions_1d(net, 0.0, 1.0) == 2
    torch.testing.assert_close(linear_regions_1d(net, -1.0, 1.0),
                               torch.tensor([-1.0, -0.5, 0.25, 1.0], dtype=torch.float64))


def test_pieces_slopes_and_values_are_the_function():
    net = shallow([0.5, 0.25], [2.0, -1.0], phi_0=0.3, phi=[1.5, -2.0])  # joints -0.25, 0.25
    pieces = linear_pieces_1d(net, -2.0, 2.0)
    torch.testing.assert_close(pieces.breaks, torch.tensor([-2.0, -0.25, 0.25, 2.0], dtype=torch.float64))
    # slopes: x<-0.25 -> unit 2 on (-1·-2 = 2); between -> both on (3 + 2); x>0.25 -> unit 1 only (3)
    torch.testing.assert_close(pieces.slopes[:, 0], torch.tensor([2.0, 5.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(pieces.values, net(pieces.breaks[:, None]).detach())


def test_dead_unit_and_zero_output_weight_add_no_region():
    net = shallow([0.5, -0.25, 0.1], [1.0, 1.0, 1.0], phi=[1.0, 0.0, -1.0])  # unit 2 has φ = 0
    assert count_regions_1d(net, -1.0, 1.0) == 3  # joints -0.5 and -0.1 only
    assert len(linear_pieces_1d(net, -1.0, 1.0).breaks) == 5  # the φ = 0 joint is still a candidate
    flat = shallow([0.5], [1.0], phi=[0.0])
    assert count_regions_1d(flat, -1.0, 1.0) == 1


def test_coincident_joints_are_one_boundary():
    net = shallow([0.5, 0.5], [1.0, 1.0], phi=[1.0, 1.0])
    assert count_regions_1d(net, -1.0, 1.0) == 2
    cancelling = shallow([0.5, 0.5], [1.0, 1.0], phi=[1.0, -1.0])  # the kinks cancel: a constant
    assert count_regions_1d(cancelling, -1.0, 1.0) == 1


def test_joint_on_the_boundary_adds_no_region():
    net = shallow([1.0, 0.0], [1.0, 1.0], phi=[1.0, 1.0])  # joints at -1 (= lo) and 0
    assert count_regions_1d(net, -1.0, 1.0) == 2


def fold_networks():
    net1 = shallow([1.0, 1 / 3, -1 / 3], [1.0, 1.0, 1.0], phi_0=-1.0, phi=[3.0, -6.0, 6.0])
    net2 = shallow([1.0, 0.2, -0.5], [1.0, 1.0, 1.0], phi_0=-0.5, phi=[1.5, -3.5, 3.0])
    return net1, net2


def test_composition_of_folds_has_product_of_regions():
    net1, net2 = fold_networks()
    both = compose(net1, net2)
    assert count_regions_1d(net1, -1.0, 1.0) == count_regions_1d(net2, -1.0, 1.0) == 3
    assert count_regions_1d(both, -1.0, 1.0) == 9
    assert count_regions_sampled_1d(both, -1.0, 1.0, n=4001) == 9
    # the 8 inner boundaries: net1's folds ±1/3, and where net1's three pieces 3x + 2, -3x, 3x - 2
    # reach net2's joints y = -0.2 and y = 0.5
    expected = sorted([-1 / 3, 1 / 3] + [x for y in (-0.2, 0.5) for x in ((y - 2) / 3, -y / 3, (y + 2) / 3)])
    torch.testing.assert_close(linear_regions_1d(both, -1.0, 1.0)[1:-1],
                               torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


def test_a_unit_that_only_touches_zero_adds_no_region():
    net1, net2 = fold_networks()
    with torch.no_grad():  # net1's folds reach -1 - 1e-15: net2's first unit (joint at -1) grazes zero
        net1.phi_0.sub_(1e-15)
    assert count_regions_1d(compose(net1, net2), -1.0, 1.0) == 9


def test_deep_network_exact_count_agrees_with_sampling_and_function_values():
    net = DeepNetwork([1, 6, 6, 1], generator=gen(3)).double()
    pieces = linear_pieces_1d(net, -3.0, 3.0)
    torch.testing.assert_close(pieces.values, net(pieces.breaks[:, None]).detach(), rtol=1e-12, atol=1e-12)
    # inside every piece the function is linear with the traced slope
    for a, b, s in zip(pieces.breaks[:-1], pieces.breaks[1:], pieces.slopes[:, 0]):
        t = torch.tensor([[a + 0.25 * (b - a)], [a + 0.75 * (b - a)]], dtype=torch.float64)
        y = net(t).detach()[:, 0]
        assert float((y[1] - y[0]) / (t[1, 0] - t[0, 0])) == pytest.approx(float(s), rel=1e-7, abs=1e-9)
    exact = count_regions_1d(net, -3.0, 3.0)
    assert exact == count_regions_sampled_1d(net, -3.0, 3.0, n=200001)
    assert exact > 1


def test_sequential_of_torch_modules_is_accepted():
    seq = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        seq[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        seq[0].bias.copy_(torch.tensor([0.0, 0.5]))
        seq[2].weight.copy_(torch.tensor([[1.0, 1.0]]))
    assert count_regions_1d(seq, -1.0, 1.0) == 3  # |x|-like with joints 0 and 0.5


# --------------------------------------------------------------------------- 1D sampled
def test_sampled_count_on_plain_functions():
    assert count_regions_sampled_1d(lambda x: torch.relu(x) - 2 * torch.relu(x - 0.5), -1.0, 1.0) == 3
    assert count_regions_sampled_1d(lambda x: 3 * x + 1, -1.0, 1.0) == 1
    assert count_regions_sampled_1d(lambda x: x.abs(), -1.0, 1.0, n=5) == 2
    # a region narrower than three grid steps is missed, as documented
    narrow = lambda x: torch.relu(x) - torch.relu(x - 1e-4)  # noqa: E731
    assert count_regions_sampled_1d(narrow, -1.0, 1.0, n=1001) == 2
    assert count_regions_sampled_1d(narrow, -1.0, 1.0, n=200001) == 3


# --------------------------------------------------------------------------- Di dimensions
@pytest.mark.parametrize("d_in", [1, 2, 3, 4])
def test_enumerated_regions_match_zaslavsky_on_random_networks(d_in):
    for d in range(1, 8):
        net = ShallowNetwork(d_in, d, 1, generator=gen(10 * d_in + d))
        assert count_regions_shallow(net) == max_regions(d_in, d), (d_in, d)


def test_hand_built_2d_arrangement_on_a_grid():
    net = shallow([0.0, 0.0, -1.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # x=0, y=0, x+y=1: 7 regions
    axis = torch.linspace(-3, 3, 121, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis + 0.013, axis + 0.007, indexing="xy")  # off the lines
    points = torch.stack([gx.flatten(), gy.flatten()], dim=1)
    labels, count = region_labels(activation_patterns(net, points))
    assert count == 7 == count_regions_shallow(net) == max_regions(2, 3)
    patterns = region_patterns_shallow(net)
    assert {tuple(p) for p in activation_patterns(net, points).tolist()} == {tuple(p) for p in patterns.tolist()}
    assert [False, False, True] not in patterns.tolist()  # x<0, y<0 and x+y>1 is impossible
    torch.testing.assert_close(hyperplane_vertices(net),
                               torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))


def test_grid_patterns_are_enumerated_patterns_on_random_networks():
    net = ShallowNetwork(2, 6, 1, generator=gen(4))
    points = torch.randn(20000, 2, generator=gen(5), dtype=torch.float64) * 20
    seen = {tuple(p) for p in activation_patterns(net, points).tolist()}
    assert seen <= {tuple(p) for p in region_patterns_shallow(net).tolist()}


def test_vertices_in_1d_are_the_joints_and_dead_units_are_ignored():
    net = shallow([0.5, -0.25, 1.0], [1.0, 1.0, 0.0])
    torch.testing.assert_close(hyperplane_vertices(net)[:, 0], torch.tensor([-0.5, 0.25], dtype=torch.float64))
    assert count_regions_shallow(net) == 3
    assert region_patterns_shallow(net)[:, 2].all()  # the dead unit (θ_0 = 1 > 0) is always on
    assert hyperplane_vertices(ShallowNetwork(3, 2, 1)).shape == (0, 3)


def test_degenerate_arrangements_are_refused():
    concurrent = shallow([0.0, 0.0, 0.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # three lines through 0
    with pytest.raises(ValueError, match="general position"):
        count_regions_shallow(concurrent)
    parallel = shallow([0.0, 1.0], [[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="general position"):
        count_regions_shallow(parallel)


def test_activation_patterns_are_the_sign_of_the_pre_activations():
    net = ShallowNetwork(3, 5, 2, generator=gen(6))
    x = torch.randn(50, 3, generator=gen(7))
    torch.testing.assert_close(activation_patterns(net, x), net.forward_with_activations(x.double().float()).pre > 0)
    deep = DeepNetwork([3, 4, 2, 1], generator=gen(8))
    _, pres, _ = deep.forward_with_activations(x)
    torch.testing.assert_close(activation_patterns(deep, x), torch.cat([p > 0 for p in pres], dim=1))
    labels, count = region_labels(torch.tensor([[True, False], [True, False], [False, False]]))
    assert count == 2 and labels[0] == labels[1] != labels[2]


# --------------------------------------------------------------------------- arguments
def test_bad_arguments():
    net = ShallowNetwork()
    with pytest.raises(ValueError, match="'d_hidden' parameter of max_regions"):
        max_regions(2, -1)
    with pytest.raises(TypeError, match="'d_in' parameter of max_regions"):
        max_regions(2.0, 3)
    with pytest.raises(ValueError, match="'hi'"):
        count_regions_1d(net, 1.0, 1.0)
    with pytest.raises(ValueError, match="1-dimensional inputs"):
        count_regions_1d(ShallowNetwork(2, 3, 1), 0.0, 1.0)
    with pytest.raises(TypeError, match="'net'"):
        linear_pieces_1d(lambda x: x, 0.0, 1.0)
    with pytest.raises(TypeError, match="'net'"):
        count_regions_shallow(DeepNetwork([2, 3, 1]))
    with pytest.raises(ValueError, match="'n'"):
        count_regions_sampled_1d(lambda x: x, 0.0, 1.0, n=2)
    with pytest.raises(TypeError, match="'f'"):
        count_regions_sampled_1d(3.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"shape \(N, 1\)"):
        activation_patterns(net, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="rtol"):
        count_regions_1d(net, 0.0, 1.0, rtol=-1.0)
    with pytest.raises(ValueError, match="max_vertices"):
        count_regions_shallow(ShallowNetwork(3, 40, 1), max_vertices=100)
    assert math.isfinite(float(linear_regions_1d(net, -1.0, 1.0)[0]))
