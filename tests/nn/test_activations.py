"""udl.nn.activations (the book's formulas) against torch.relu and torch.sigmoid."""

import pytest
import torch

from udl.nn.activations import relu, sigmoid


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu_matches_torch_values_and_gradients(dtype):
    z = torch.cat([torch.linspace(-1e6, 1e6, 101, dtype=dtype), torch.randn(100, dtype=dtype)])
    z = z[z != 0]  # the derivative at 0 is a convention; both pick 0, but keep the test about the formula
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    torch.testing.assert_close(relu(za), torch.relu(zb), atol=0, rtol=0)
    relu(za).sum().backward()
    torch.relu(zb).sum().backward()
    torch.testing.assert_close(za.grad, zb.grad, atol=0, rtol=0)
    torch.testing.assert_close(za.grad, (z > 0).to(dtype))


def test_relu_at_zero_and_shape():
    z = torch.zeros(2, 3, requires_grad=True)
    out = relu(z)
    assert out.shape == (2, 3) and torch.equal(out, torch.zeros(2, 3))
    out.sum().backward()
    assert torch.equal(z.grad, torch.zeros(2, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_matches_torch_including_large_inputs(dtype):
    z = torch.cat([torch.linspace(-1000, 1000, 2001, dtype=dtype), torch.tensor([-1e30, 1e30], dtype=dtype)])
    ours, theirs = sigmoid(z), torch.sigmoid(z)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, theirs, atol=1e-7 if dtype == torch.float32 else 1e-15, rtol=1e-6)
    assert ours[0].item() == 0.0 and ours[-1].item() == 1.0  # saturates, no nan
    assert sigmoid(torch.zeros((), dtype=dtype)).item() == 0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_gradient_matches_torch(dtype):
    z = torch.linspace(-100, 100, 400, dtype=dtype)  # an even count: 0 itself is tested below
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    sigmoid(za).sum().backward()
    torch.sigmoid(zb).sum().backward()
    assert torch.isfinite(za.grad).all()
    torch.testing.assert_close(za.grad, zb.grad, atol=1e-7 if dtype == torch.float32 else 1e-15, rtol=1e-5)
    s = torch.sigmoid(z)
    torch.testing.assert_close(za.grad, s * (1 - s), atol=1e-7 if dtype == torch.float32 else 1e-15, rtol=1e-5)


def test_sigmoid_symmetry():
    z = torch.linspace(-30, 30, 601, dtype=torch.float64)
    assert (sigmoid(-z) - (1 - sigmoid(z))).abs().max().item() < 1e-15


def test_sigmoid_gradient_at_zero_is_a_quarter():
    z = torch.zeros((), dtype=torch.float64, requires_grad=True)
    sigmoid(z).backward()
    assert z.grad.item() == pytest.approx(0.25)
