"""udl.nn.regularizers: the L2 penalty against its formula and torch's weight decay."""

import pytest
import torch
from torch import nn

from udl.nn.regularizers import l2_penalty


def test_value_and_gradient_by_hand():
    layer = nn.Linear(3, 2).double()
    by_hand = 0.7 * (layer.weight.pow(2).sum() + layer.bias.pow(2).sum())
    torch.testing.assert_close(l2_penalty(layer, 0.7), by_hand)
    l2_penalty(layer, 0.7).backward()
    torch.testing.assert_close(layer.weight.grad, 2 * 0.7 * layer.weight.detach())  # ∂/∂φ λφ² = 2λφ
    assert l2_penalty([], 1.0).item() == 0.0
    assert l2_penalty(layer.weight, 0.0).item() == 0.0
    torch.testing.assert_close(l2_penalty([layer.bias], 2.0), 2.0 * layer.bias.pow(2).sum())


@pytest.mark.parametrize("lam,momentum", [(0.1, 0.0), (0.5, 0.0), (0.1, 0.9)])
def test_sgd_on_loss_plus_half_lambda_penalty_equals_weight_decay(lam, momentum):
    torch.manual_seed(0)
    x, y = torch.randn(32, 4, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    ref = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    ref.load_state_dict(net.state_dict())
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=momentum)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=momentum, weight_decay=lam)
    for step in range(20):
        batch = slice(8 * (step % 4), 8 * (step % 4) + 8)
        opt.zero_grad()
        (nn.functional.mse_loss(net(x[batch]), y[batch]) + l2_penalty(net, lam / 2)).backward()
        opt.step()
        opt_ref.zero_grad()
        nn.functional.mse_loss(ref(x[batch]), y[batch]).backward()
        opt_ref.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_penalty_shrinks_the_weights_that_training_finds():
    torch.manual_seed(1)
    x, y = torch.randn(40, 3), torch.randn(40, 1)
    norms = []
    for lam in (0.0, 0.1):
        net = nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(300):
            opt.zero_grad()
            (nn.functional.mse_loss(net(x), y) + l2_penalty(net, lam)).backward()
            opt.step()
        norms.append(l2_penalty(net, 1.0).item())
    assert norms[1] < 0.8 * norms[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="'lam' parameter of l2_penalty"):
        l2_penalty(nn.Linear(1, 1), -0.1)
    with pytest.raises(TypeError, match="'lam' parameter"):
        l2_penalty(nn.Linear(1, 1), "a")
    with pytest.raises(TypeError, match="'params' parameter"):
        l2_penalty(3, 0.1)
    with pytest.raises(TypeError, match="'params' parameter"):
        l2_penalty([1.0, 2.0], 0.1)
