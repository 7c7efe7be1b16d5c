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


def _notebook_line_search(f, a, d, first_inner, n_iter):
    """Notebook 6.1's bracketing written out from its three rules, for ``n_iter`` iterations."""
    b, c = a + first_inner[0] * (d - a), a + first_inner[1] * (d - a)
    brackets = [(a, b, c, d)]
    for _ in range(n_iter):
        losses = [float(f(x)) for x in (a, b, c, d)]
        if int(np.argmin(losses)) == 0:  # rule 1: b, c and d halfway towards a
            b, c, d = a + (b - a) / 2, a + (c - a) / 2, a + (d - a) / 2
        elif losses[1] < losses[2]:  # rule 2: d becomes c, b and c at the thirds of [a, d]
            d = c
            b, c = a + (d - a) / 3, a + 2 * (d - a) / 3
        else:  # rule 3: a becomes b
            a = b
            b, c = a + (d - a) / 3, a + 2 * (d - a) / 3
        brackets.append((a, b, c, d))
    return (b + c) / 2, brackets


def _two_valleys(x):  # a narrow valley near 0.05 (where rule 1 leads) and a deeper one near 0.8
    return -math.exp(-((x - 0.05) / 0.03) ** 2) - 2 * math.exp(-((x - 0.8) / 0.05) ** 2)


@pytest.mark.parametrize("f, d", [(line_search_loss, 1.0), (_two_valleys, 1.0), (line_search_loss, 0.5)])
def test_notebook_start_reproduces_the_notebooks_brackets(f, d):
    phi, history = bracket_minimize(f, 0.0, d, tol=1e-12, max_iter=12, shrink_to_start=True,
                                    first_inner=(0.33, 0.66))
    phi_notebook, brackets = _notebook_line_search(f, 0.0, d, (0.33, 0.66), 12)
    assert history[0] == Bracket(0.0, 0.33 * d, 0.66 * d, d)  # the notebook's a, b, c, d = 0, 0.33, 0.66, 1
    assert [tuple(b) for b in history] == brackets
    assert phi == pytest.approx(phi_notebook, abs=1e-12)  # the last cut put b, c at thirds: the same centre


def test_first_inner_moves_only_the_first_inner_points():
    thirds = bracket_minimize(line_search_loss, 0.0, 1.0, tol=1e-4)[1]
    phi, history = bracket_minimize(line_search_loss, 0.0, 1.0, tol=1e-4, first_inner=(0.25, 0.5))
    assert history[0] == Bracket(0.0, 0.25, 0.5, 1.0)
    assert history[1] == Bracket(0.25, 0.5, 0.75, 1.0)  # L[0.25] > L[0.5]: a ← b, then the thirds of [b, d]
    assert all(math.isclose(b.b - b.a, b.width / 3, rel_tol=1e-9) for b in history[1:])  # thirds after each cut
    assert abs(phi - bracket_minimize(line_search_loss, 0.0, 1.0, tol=1e-6)[0]) < 1e-4
    assert thirds[0] == bracket_minimize(line_search_loss, 0.0, 1.0, first_inner=None)[1][0] == \
        Bracket(0.0, 1 / 3, 2 / 3, 1.0)


def test_line_search_gd_passes_the_notebook_start_on():
    phi = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = LineSearchGD([phi], max_step=2.0, first_inner=(0.33, 0.66))

    def closure():
        opt.zero_grad()
        loss = (phi ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert opt.last_history[0] == Bracket(0.0, 0.66, 1.32, 2.0)
    assert opt.last_alpha == pytest.approx(0.5, abs=1e-4)
