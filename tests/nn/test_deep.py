"""udl.nn.deep: the book's deep network against nn.Sequential, and composition (§4.1-4.2)."""

import pytest
import torch
from torch import nn

from udl.nn.deep import DeepNetwork, compose, compose_as_deep
from udl.nn.shallow import ShallowNetwork


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def reference(net: DeepNetwork) -> nn.Sequential:
    """nn.Linear / nn.ReLU stack with the same weights."""
    layers = []
    for k, (omega, beta) in enumerate(zip(net.omegas, net.betas)):
        linear = nn.Linear(omega.shape[1], omega.shape[0])
        with torch.no_grad():
            linear.weight.copy_(omega)
            linear.bias.copy_(beta)
        layers += [linear, nn.ReLU()] if k < len(net.omegas) - 1 else [linear]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("widths", [[3, 4, 2, 3, 2], [1, 5, 1], [2, 3], [4, 8, 8, 8, 1]])
def test_equals_sequential_values_and_gradients(widths):
    net = DeepNetwork(widths, generator=gen(0))
    ref = reference(net)
    x = torch.randn(9, widths[0], generator=gen(1))
    torch.testing.assert_close(net(x), ref(x), rtol=1e-6, atol=1e-6)
    net(x).sin().sum().backward()
    ref(x).sin().sum().backward()
    for omega, layer in zip(net.omegas, [m for m in ref if isinstance(m, nn.Linear)]):
        torch.testing.assert_close(omega.grad, layer.weight.grad, rtol=1e-5, atol=1e-6)


def test_book_shapes_of_fig_4_6():
    net = DeepNetwork([3, 4, 2, 3, 2])
    assert [tuple(w.shape) for w in net.omegas] == [(4, 3), (2, 4), (3, 2), (2, 3)]
    assert [len(b) for b in net.betas] == [4, 2, 3, 2]
    assert tuple(net.omegas[1].shape) == (2, 4) and len(net.betas[2]) == 3  # the caption's examples
    assert sum(p.numel() for p in net.parameters()) == 43 == DeepNetwork.parameter_count([3, 4, 2, 3, 2])
    assert net.depth == 3
    assert net.omegas[0] is net.layers[0].weight  # the book's names are the parameters themselves


def test_forward_with_activations_by_hand():
    net = DeepNetwork([2, 3, 4, 1], generator=gen(2))
    x = torch.randn(5, 2, generator=gen(3))
    y, pres, acts = net.forward_with_activations(x)
    h = x
    for k in range(2):  # h_{k+1} = a[β_k + Ω_k h_k]  (eqs. 4.15-4.16), book columns = our rows
        pre = (net.betas[k][:, None] + net.omegas[k] @ h.T).T
        torch.testing.assert_close(pres[k], pre)
        h = torch.clamp(pre, min=0)
        torch.testing.assert_close(acts[k], h, rtol=0, atol=0)
    torch.testing.assert_close(y, (net.betas[2][:, None] + net.omegas[2] @ h.T).T)  # eq. 4.17


def test_compose_is_net2_after_net1():
    net1, net2 = ShallowNetwork(1, 3, 1, generator=gen(5)), ShallowNetwork(1, 3, 1, generator=gen(6))
    both = compose(net1, net2)
    x = torch.linspace(-2, 2, 41)[:, None]
    torch.testing.assert_close(both(x), net2(net1(x)), rtol=0, atol=0)


@pytest.mark.parametrize("pair", ["shallow", "mixed", "deep"])
def test_compose_as_deep_computes_the_same_function(pair):
    if pair == "shallow":
        net1, net2 = ShallowNetwork(1, 3, 1, generator=gen(7)), ShallowNetwork(1, 4, 1, generator=gen(8))
    elif pair == "mixed":
        net1, net2 = ShallowNetwork(2, 3, 2, generator=gen(7)), DeepNetwork([2, 5, 3, 1], generator=gen(8))
    else:
        net1, net2 = DeepNetwork([3, 4, 2], generator=gen(7)), DeepNetwork([2, 6, 2], generator=gen(8))
    net1, net2 = net1.double(), net2.double()
    deep = compose_as_deep(net1, net2)
    x = torch.randn(20, deep.widths[0], generator=gen(9), dtype=torch.float64)
    torch.testing.assert_close(deep(x), net2(net1(x)), rtol=1e-12, atol=1e-12)


def test_compose_as_deep_middle_matrix_is_theta_prime_phi():
    net1, net2 = ShallowNetwork(1, 3, 1, generator=gen(10)), ShallowNetwork(1, 4, 1, generator=gen(11))
    deep = compose_as_deep(net1, net2)
    assert deep.widths == (1, 3, 4, 1)
    torch.testing.assert_close(deep.omegas[1], net2.theta @ net1.phi)  # (4, 1) @ (1, 3)
    torch.testing.assert_close(deep.betas[1], net2.theta_0 + net2.theta[:, 0] * net1.phi_0)
    assert torch.linalg.matrix_rank(deep.omegas[1].detach()) == 1  # a 1D bottleneck


@pytest.mark.parametrize("widths,error", [([3], ValueError), ([3, 0, 2], ValueError), ([2, 1.5, 1], ValueError),
                                          ("34", TypeError), (None, TypeError), ([2, True, 1], ValueError)])
def test_bad_widths(widths, error):
    with pytest.raises(error, match="'widths' parameter of DeepNetwork"):
        DeepNetwork(widths)


def test_bad_arguments():
    with pytest.raises(TypeError, match="generator"):
        DeepNetwork([2, 2], generator=1.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        DeepNetwork([3, 2])(torch.zeros(2, 4))


def test_inputs_in_the_networks_dtype_or_under_autocast():
    net = DeepNetwork([3, 4, 2], generator=0)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net.double()(x.double()), net.float()(x).double(), rtol=1e-6, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts each product: a bfloat16 input is fine
        y = net(x.bfloat16())
    assert (y.float() - net(x)).abs().max() < 0.05
    with pytest.raises(ValueError, match="net2"):
        compose(ShallowNetwork(1, 2, 2), ShallowNetwork(1, 2, 1))
    with pytest.raises(TypeError, match="net1"):
        compose(lambda x: x, ShallowNetwork())
    with pytest.raises(TypeError, match="net1"):
        compose_as_deep(nn.Linear(1, 1), ShallowNetwork())
    with pytest.raises(ValueError, match="net2"):
        compose_as_deep(DeepNetwork([1, 2, 3]), DeepNetwork([2, 2, 1]))
