"""udl.nn.losses against torch.nn.functional: values and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from udl.nn import losses

REDUCTIONS = ("sum", "mean", "none")


def _grads(fn, *tensors):
    """Values and gradients of ``fn(*tensors).sum()`` with respect to every input."""
    leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in tensors]
    out = fn(*leaves)
    out.sum().backward()
    return out.detach(), [leaf.grad for leaf in leaves if leaf.requires_grad]


def _assert_same(ours, theirs, *tensors, atol=1e-10):
    value_a, grads_a = _grads(ours, *tensors)
    value_b, grads_b = _grads(theirs, *tensors)
    torch.testing.assert_close(value_a, value_b, atol=atol, rtol=1e-9)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb, atol=atol, rtol=1e-9)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_least_squares_matches_mse_loss(gen, reduction):
    f, y = torch.randn(7, 3, generator=gen, dtype=torch.float64), torch.randn(7, 3, generator=gen, dtype=torch.float64)
    _assert_same(lambda a, b: losses.least_squares(a, b, reduction=reduction),
                 lambda a, b: F.mse_loss(a, b, reduction=reduction), f, y)


def test_least_squares_default_is_the_sum_of_squares():
    f, y = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 0.0, 0.0])
    assert losses.least_squares(f, y).item() == pytest.approx(1 + 4 + 0.25)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [True, False])
def test_gaussian_nll_matches_torch(gen, reduction, full):
    mu, y = torch.randn(20, generator=gen, dtype=torch.float64), torch.randn(20, generator=gen, dtype=torch.float64)
    sigma_sq = 0.1 + torch.rand(20, generator=gen, dtype=torch.float64) * 3
    _assert_same(lambda m, t, v: losses.gaussian_nll(m, t, v, reduction=reduction, full=full),
                 lambda m, t, v: F.gaussian_nll_loss(m, t, v, full=full, eps=1e-12, reduction=reduction),
                 mu, y, sigma_sq)


def test_gaussian_nll_equals_scipy_logpdf_and_broadcasts_a_shared_variance():
    from scipy.stats import norm

    mu, y = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64), torch.tensor([0.3, 0.0, -1.0], dtype=torch.float64)
    expected = -norm.logpdf(y.numpy(), mu.numpy(), math.sqrt(2.0)).sum()
    assert losses.gaussian_nll(mu, y, torch.tensor(2.0, dtype=torch.float64)).item() == pytest.approx(expected)
    # with a fixed variance σ² = ½ the loss is least squares plus a constant
    ls = losses.least_squares(mu, y).item()
    assert losses.gaussian_nll(mu, y, torch.tensor(0.5, dtype=torch.float64)).item() == \
        pytest.approx(ls + 3 * 0.5 * math.log(2 * math.pi * 0.5))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch(gen, reduction):
    z = torch.randn(50, generator=gen, dtype=torch.float64) * 8
    y = (torch.rand(50, generator=gen, dtype=torch.float64) < 0.5).double()
    _assert_same(lambda a, b: losses.binary_cross_entropy_with_logits(a, b, reduction=reduction),
                 lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), z, y)


def test_bce_with_logits_is_stable_for_huge_logits():
    z = torch.tensor([-1000.0, -50.0, 50.0, 1000.0], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    loss = losses.binary_cross_entropy_with_logits(z, y, reduction="none")
    torch.testing.assert_close(loss.detach(), torch.tensor([0.0, 50.0, 50.0, 0.0]))
    loss.sum().backward()
    torch.testing.assert_close(z.grad, torch.sigmoid(z.detach()) - y)  # dL/dz = sig[z] - y


def test_bce_soft_labels_match_torch(gen):
    z, y = torch.randn(30, generator=gen, dtype=torch.float64), torch.rand(30, generator=gen, dtype=torch.float64)
    _assert_same(losses.binary_cross_entropy_with_logits,
                 lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="sum"), z, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_from_probabilities_matches_torch(gen, reduction):
    lam = torch.rand(40, generator=gen, dtype=torch.float64) * 0.98 + 0.01
    y = (torch.rand(40, generator=gen, dtype=torch.float64) < 0.5).double()
    _assert_same(lambda a, b: losses.binary_cross_entropy(a, b, reduction=reduction),
                 lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), lam, y)


def test_bce_from_probabilities_clamps_like_torch_at_zero_and_one():
    lam, y = torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0, 0.0])
    ours = losses.binary_cross_entropy(lam, y, reduction="none")
    torch.testing.assert_close(ours, F.binary_cross_entropy(lam, y, reduction="none"))
    torch.testing.assert_close(ours, torch.tensor([0.0, 0.0, 100.0, 100.0]))


def test_bce_forms_agree(gen):
    z = torch.randn(25, generator=gen, dtype=torch.float64) * 3
    y = (torch.rand(25, generator=gen, dtype=torch.float64) < 0.5).double()
    assert losses.binary_cross_entropy(torch.sigmoid(z), y).item() == \
        pytest.approx(losses.binary_cross_entropy_with_logits(z, y).item(), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_torch(gen, reduction):
    z = torch.randn(16, 10, generator=gen, dtype=torch.float64) * 5
    y = torch.randint(0, 10, (16,), generator=gen)
    _assert_same(lambda a: losses.cross_entropy(a, y, reduction=reduction),
                 lambda a: F.cross_entropy(a, y, reduction=reduction), z)


def test_cross_entropy_is_stable_for_huge_logits():
    z = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    y = torch.tensor([0, 0])
    torch.testing.assert_close(losses.cross_entropy(z, y, reduction="none"), torch.tensor([0.0, 1000.0]))
    torch.testing.assert_close(losses.log_softmax(z), torch.log_softmax(z, dim=-1))


def test_softplus_matches_torch():
    z = torch.linspace(-800, 800, 1601, dtype=torch.float64)
    torch.testing.assert_close(losses.softplus(z), F.softplus(z))  # torch returns z itself above 20


@pytest.mark.parametrize("call", [
    lambda: losses.least_squares([1.0], torch.zeros(1)),
    lambda: losses.least_squares(torch.zeros(2), torch.zeros(3)),
    lambda: losses.least_squares(torch.zeros(2), torch.zeros(2), reduction="avg"),
    lambda: losses.least_squares(torch.zeros(2, dtype=torch.long), torch.zeros(2)),
    lambda: losses.gaussian_nll(torch.zeros(2), torch.zeros(2), torch.tensor([1.0, 0.0])),
    lambda: losses.gaussian_nll(torch.zeros(2), torch.zeros(2), torch.ones(3, 1)),
    lambda: losses.gaussian_nll(torch.zeros(2), torch.zeros(2), torch.ones(2), full=1),
    lambda: losses.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.0])),
    lambda: losses.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([2.0])),
    lambda: losses.binary_cross_entropy_with_logits(torch.tensor([0.5]), torch.tensor([-1.0])),
    lambda: losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3])),
    lambda: losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0.0, 1.0])),
    lambda: losses.cross_entropy(torch.zeros(3), torch.tensor([0, 1, 2])),
    lambda: losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1, 2])),
])
def test_bad_arguments_raise(call):
    with pytest.raises((ValueError, TypeError)):
        call()
