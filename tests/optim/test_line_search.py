"""udl.optim.line_search: bracketing and gradient descent with line search, against closed forms."""

import math

import numpy as np
import pytest
import torch

from udl.data.testfunctions import line_search_loss, line_search_loss_grad
from udl.optim import Bracket, LineSearchGD, bracket_minimize


def test_bracket_finds_the_minimum_of_a_parabola_within_tol():
    for x_star in (0.0, 0.123, 0.5, 0.97, 1.0):
        phi, history = bracket_minimize(lambda x: (x - x_star) ** 2, 0.0, 1.0, tol=1e-6)
        assert abs(phi - x_star) <= 0.5e-6 + 1e-12
        assert history[-1].width < 1e-6 <= history[-2].width


def test_brackets_are_nested_and_shrink_by_two_thirds():
    phi, history = bracket_minimize(line_search_loss, 0.0, 1.0, tol=1e-4)
    assert history[0] == Bracket(0.0, 1 / 3, 2 / 3, 1.0)
    for prev, cur in zip(history, history[1:]):
        assert prev.a <= cur.a < cur.d <= prev.d  # nested
        assert math.isclose(cur.width / prev.width, 2 / 3, rel_tol=1e-9)
        assert math.isclose(cur.b - cur.a, cur.width / 3, rel_tol=1e-9)
        assert math.isclose(cur.c - cur.a, 2 * cur.width / 3, rel_tol=1e-9)
    # the number of iterations is the first k with (2/3)^k < tol
    assert len(history) - 1 == math.ceil(math.log(1e-4) / math.log(2 / 3))


def test_bracket_closes_on_the_books_function_minimum():
    phi, history = bracket_minimize(line_search_loss, 0.0, 1.0, tol=1e-5)
    grid = torch.linspace(0.2, 0.5, 300_001, dtype=torch.float64)  # the narrow valley near 0.35
    phi_grid = grid[line_search_loss(grid).argmin()].item()
    assert abs(phi - phi_grid) < 1e-5
    assert abs(line_search_loss_grad(phi).item()) < 1e-3  # a stationary point
    assert line_search_loss_grad(phi - 1e-3).item() < 0 < line_search_loss_grad(phi + 1e-3).item()  # a minimum
    # the first decision of fig. 6.10: L[b] < L[c] on [0, 1], so [c, d] goes
    assert history[1] == Bracket(0.0, 2 / 9, 4 / 9, 2 / 3)


def test_shrink_to_start_keeps_the_near_valley():
    f = lambda x: -math.exp(-((x - 0.05) / 0.03) ** 2) - 2 * math.exp(-((x - 0.8) / 0.05) ** 2)
    far, _ = bracket_minimize(f, 0.0, 1.0, tol=1e-6)
    near, history = bracket_minimize(f, 0.0, 1.0, tol=1e-6, shrink_to_start=True)
    assert abs(far - 0.8) < 1e-3 and abs(near - 0.05) < 1e-3
    assert any(math.isclose(cur.width / prev.width, 0.5) for prev, cur in zip(history, history[1:]))


def test_max_iter_limits_the_search():
    phi, history = bracket_minimize(lambda x: x * x, -1.0, 1.0, tol=1e-12, max_iter=3)
    assert len(history) == 4 and math.isclose(history[-1].width, 2 * (2 / 3) ** 3)


def _quadratic(A):
    return lambda phi: 0.5 * phi @ A @ phi


def test_one_step_reaches_the_exact_minimiser_along_the_gradient():
    A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    phi = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = LineSearchGD([phi], max_step=2.0, tol=1e-6)

    def closure():
        opt.zero_grad()
        loss = _quadratic(A)(phi)
        loss.backward()
        return loss

    g = A @ phi.detach()
    start = phi.detach().clone()
    loss0 = opt.step(closure)
    alpha_star = (g @ g / (g @ A @ g)).item()  # α* = gᵀg / gᵀAg for L = ½ φᵀAφ
    assert abs(opt.last_alpha - alpha_star) < 0.5e-6 + 1e-8  # within tol/2 (plus the loss's rounding)
    torch.testing.assert_close(phi.detach(), start - opt.last_alpha * g, atol=1e-15, rtol=0)
    assert math.isclose(loss0.item(), 0.5 * (start @ A @ start).item())
    torch.testing.assert_close(phi.grad, g)  # the gradient at the starting point, not a search point


def test_line_search_gd_converges_on_several_tensors():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    x = torch.randn(50, 3, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
    opt = LineSearchGD(model.parameters(), max_step=2.0, tol=1e-8)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    losses = [opt.step(closure).item() for _ in range(60)]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))  # exact line search never goes uphill
    np.testing.assert_allclose(model.weight.detach().numpy(), [[1.0, -2.0, 0.5]], atol=1e-5)
    assert abs(model.bias.item() - 0.3) < 1e-5


def test_line_search_gd_needs_a_closure_and_one_group():
    phi = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="closure"):
        LineSearchGD([phi]).step(None)
    with pytest.raises(ValueError, match="'params'"):
        LineSearchGD([{"params": [phi]}, {"params": [torch.zeros(1, requires_grad=True)]}])


@pytest.mark.parametrize("kwargs, name", [(dict(max_step=0.0), "max_step"), (dict(max_step=-1.0), "max_step"),
                                          (dict(tol=0.0), "tol"), (dict(tol=-1e-3), "tol"),
                                          (dict(max_iter=0), "max_iter")])
def test_bad_hyper_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter of LineSearchGD"):
        LineSearchGD([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("kwargs, name", [(dict(tol=0.0), "tol"), (dict(d=-1.0), "d"), (dict(max_iter=0), "max_iter")])
def test_bracket_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter of bracket_minimize"):
        bracket_minimize(**{**dict(f=abs, a=0.0, d=1.0), **kwargs})
