"""udl.nn.shallow: the book's shallow network against its formula and torch.nn."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.shallow import ShallowNetwork, fit_shallow


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_scalar_network_equals_eq_3_1_by_hand():
    net = ShallowNetwork(1, 3, 1, generator=gen(0)).double()
    t0, t1 = net.theta_0.tolist(), net.theta[:, 0].tolist()
    p0, p = net.phi_0.item(), net.phi[0].tolist()
    for x in (-2.0, -0.3, 0.0, 0.7, 3.1):
        by_hand = p0 + sum(p[d] * max(0.0, t0[d] + t1[d] * x) for d in range(3))  # UDL eq. 3.1
        assert net(torch.tensor([[x]], dtype=torch.float64)).item() == pytest.approx(by_hand, abs=1e-14)


@pytest.mark.parametrize("d_in,d_hidden,d_out", [(1, 3, 1), (3, 4, 2), (2, 7, 5)])
def test_equals_torch_linear_relu_stack_values_and_gradients(d_in, d_hidden, d_out):
    net = ShallowNetwork(d_in, d_hidden, d_out, generator=gen(1))
    ref = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))
    with torch.no_grad():
        ref[0].weight.copy_(net.theta)
        ref[0].bias.copy_(net.theta_0)
        ref[2].weight.copy_(net.phi)
        ref[2].bias.copy_(net.phi_0)
    x = torch.randn(11, d_in, generator=gen(2))
    torch.testing.assert_close(net(x), ref(x), rtol=1e-6, atol=1e-6)
    net(x).pow(2).sum().backward()
    ref(x).pow(2).sum().backward()
    torch.testing.assert_close(net.theta.grad, ref[0].weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.phi_0.grad, ref[2].bias.grad, rtol=1e-5, atol=1e-6)


def test_forward_with_activations_terms():
    net = ShallowNetwork(3, 4, 2, generator=gen(3))
    x = torch.randn(6, 3, generator=gen(4))
    y, pre, act = net.forward_with_activations(x)
    assert pre.shape == act.shape == (6, 4) and y.shape == (6, 2)
    torch.testing.assert_close(pre, x @ net.theta.T + net.theta_0)
    torch.testing.assert_close(act, pre.clamp(min=0), rtol=0, atol=0)
    torch.testing.assert_close(y, act @ net.phi.T + net.phi_0)
    assert net(x[0]).shape == (2,) and net(x.reshape(2, 3, 3)).shape == (2, 3, 2)  # any leading shape


@pytest.mark.parametrize("d_in,d_hidden,d_out", [(1, 3, 1), (3, 4, 2), (5, 1, 7)])
def test_parameter_count(d_in, d_hidden, d_out):
    net = ShallowNetwork(d_in, d_hidden, d_out)
    expected = (d_in + 1) * d_hidden + (d_hidden + 1) * d_out
    assert sum(p.numel() for p in net.parameters()) == expected
    assert ShallowNetwork.parameter_count(d_in, d_hidden, d_out) == expected
    assert net.theta.shape == (d_hidden, d_in) and net.theta_0.shape == (d_hidden,)
    assert net.phi.shape == (d_out, d_hidden) and net.phi_0.shape == (d_out,)
    assert ShallowNetwork().d_hidden == 3  # the defaults systems.py relies on: (1, 3, 1)


def test_book_names_are_the_module_parameters():
    net = ShallowNetwork(2, 3, 1)
    assert net.theta is net.hidden.weight and net.theta_0 is net.hidden.bias
    assert net.phi is net.output.weight and net.phi_0 is net.output.bias
    with torch.no_grad():
        net.phi.zero_()
        net.phi_0.fill_(2.5)
    assert torch.equal(net(torch.randn(4, 2)), torch.full((4, 1), 2.5))


def test_initialisation_is_bounded_by_the_fan_in():
    a = ShallowNetwork(4, 5, 2, generator=gen(7))
    assert a.theta.abs().max() <= 1 / math.sqrt(4) and a.phi.abs().max() <= 1 / math.sqrt(5)


def test_joints():
    net = ShallowNetwork(1, 3, 1).double()
    with torch.no_grad():
        net.theta_0.copy_(torch.tensor([1.0, -0.5, 2.0]))
        net.theta.copy_(torch.tensor([[2.0], [-1.0], [0.0]]))
    joints = net.joints()
    assert joints[:2].tolist() == [-0.5, -0.5] and math.isnan(joints[2])
    with pytest.raises(ValueError, match="d_in"):
        ShallowNetwork(2, 3, 1).joints()


def test_edges_one_per_parameter():
    net = ShallowNetwork(2, 3, 2, generator=gen(5))
    edges = net.edges()
    assert len(edges) == sum(p.numel() for p in net.parameters()) == 3 * 3 + 4 * 2
    assert sum(e.kind == "intercept" for e in edges) == 3 + 2
    values = sorted(e.value for e in edges)
    assert values == sorted(torch.cat([p.detach().flatten() for p in net.parameters()]).tolist())
    first = edges[1]  # θ_11: from x1 to h1
    assert (first.source, first.target, first.symbol) == ("x1", "h1", r"\theta_{11}")
    assert first.value == net.theta[0, 0].item()
    assert [e.symbol for e in ShallowNetwork(1, 3, 1).edges()][-4:] == [r"\phi_{0}", r"\phi_{1}", r"\phi_{2}",
                                                                         r"\phi_{3}"]


def test_fit_shallow_least_squares_step_is_the_closed_form():
    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    y = torch.sin(5 * x)
    net = fit_shallow(x, y, 4, steps=0)
    joints = net.joints()
    torch.testing.assert_close(joints, (torch.arange(4, dtype=torch.float64) + 0.5) / 4)
    design = torch.cat([torch.ones(50, 1, dtype=torch.float64), F.relu(x[:, None] * net.theta[:, 0] + net.theta_0)],
                       dim=1)
    normal_eq = torch.linalg.solve(design.T @ design, design.T @ y)  # (X^T X) φ = X^T y
    torch.testing.assert_close(torch.cat([net.phi_0, net.phi[0]]).detach(), normal_eq, rtol=1e-8, atol=1e-8)


def test_fit_shallow_recovers_a_piecewise_linear_target():
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)
    # a 2-unit function: a right-facing joint at -0.4, a left-facing one at 0.3 (the directions
    # fit_shallow starts from: units alternate right, left; L-BFGS moves joints, rarely flips them)
    y = 0.5 + 2 * torch.relu(x + 0.4) - torch.relu(0.3 - x)
    net = fit_shallow(x, y, 2, steps=300)
    rmse = (net(x[:, None])[:, 0] - y).pow(2).mean().sqrt().item()
    assert rmse < 1e-6
    assert sorted(net.joints().tolist()) == pytest.approx([-0.4, 0.3], abs=1e-4)


def test_fit_shallow_error_falls_with_width():
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    y = torch.exp(torch.sin(2 * torch.pi * x))
    errors = [(fit_shallow(x, y, d, steps=100)(x[:, None])[:, 0] - y).pow(2).mean().item() for d in (3, 6, 12)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("kwargs,error", [
    (dict(d_hidden=0), ValueError), (dict(d_in=-1), ValueError), (dict(d_out=1.5), TypeError),
    (dict(d_hidden=True), TypeError), (dict(generator=1.5), TypeError)])
def test_bad_constructor_arguments(kwargs, error):
    with pytest.raises(error, match="ShallowNetwork"):
        ShallowNetwork(**kwargs)


def test_bad_forward_and_fit_arguments():
    net = ShallowNetwork(3, 2, 1)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        net(torch.zeros(4, 2))
    with pytest.raises(TypeError):
        net([1.0, 2.0, 3.0])
    x = torch.linspace(0, 1, 10)
    with pytest.raises(ValueError, match="same length"):
        fit_shallow(x, x[:5], 3)
    with pytest.raises(ValueError, match="'hi'"):
        fit_shallow(x, x, 3, lo=1.0, hi=0.0)
    with pytest.raises(ValueError, match="'d_hidden'"):
        fit_shallow(x, x, 0)
    with pytest.raises(ValueError, match="'steps'"):
        fit_shallow(x, x, 2, steps=-1)
    with pytest.raises(TypeError, match="'x'"):
        fit_shallow([0.0, 1.0], x, 2)
    with pytest.raises(ValueError, match="finite"):
        fit_shallow(x, x * float("nan"), 2)
