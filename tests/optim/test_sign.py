"""udl.optim.sign: normalised (sign) gradient descent against its closed form."""

import pytest
import torch

from udl.optim import SignGD


def test_each_parameter_moves_by_the_step_against_its_gradient_sign():
    phi = torch.tensor([3.0, -0.25, 1e-3, 0.0], dtype=torch.float64, requires_grad=True)
    opt = SignGD([phi], lr=0.5, eps=0.0)
    (phi ** 2).sum().backward()
    opt.step()
    torch.testing.assert_close(phi.detach(), torch.tensor([2.5, 0.25, -0.499, 0.0], dtype=torch.float64))


def test_eps_shortens_steps_of_tiny_gradients():
    phi = torch.tensor([1.0, 1e-9], dtype=torch.float64, requires_grad=True)
    opt = SignGD([phi], lr=0.1, eps=1e-8)
    g = 2 * phi.detach()
    (phi ** 2).sum().backward()
    opt.step()
    # φ - α·g/(√(g²)+ε)  (UDL eqs. 6.13-6.14)
    torch.testing.assert_close(phi.detach(), torch.tensor([1.0, 1e-9], dtype=torch.float64) - 0.1 * g / (g.abs() + 1e-8))


def test_sign_descent_on_a_quadratic_ends_oscillating_within_one_step():
    A = torch.diag(torch.tensor([100.0, 0.01], dtype=torch.float64))  # steep and flat
    phi = torch.tensor([0.33, -2.0], dtype=torch.float64, requires_grad=True)
    opt = SignGD([phi], lr=0.1, eps=0.0)
    path = []
    for _ in range(40):
        opt.zero_grad()
        (0.5 * phi @ A @ phi).backward()
        opt.step()
        path.append(phi.detach().clone())
    path = torch.stack(path)
    # closed form: each coordinate walks straight to the minimum at 0.1 per step, then alternates
    assert torch.allclose(path[:3, 0], torch.tensor([0.23, 0.13, 0.03], dtype=torch.float64))
    assert torch.allclose(path[-4:, 0].abs(), torch.tensor([0.03, 0.07, 0.03, 0.07], dtype=torch.float64))
    assert torch.all(path[-6:, 0][1:] * path[-6:, 0][:-1] < 0)  # last steps alternate sign
    assert path[-1].abs().max() <= 0.1 + 1e-12


def test_closure_is_optional_and_returned():
    phi = torch.tensor([1.0], requires_grad=True)
    opt = SignGD([phi], lr=0.2)

    def closure():
        opt.zero_grad()
        loss = (phi ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 1.0
    assert abs(phi.item() - 0.8) < 1e-6


@pytest.mark.parametrize("kwargs, name", [(dict(lr=0.0), "lr"), (dict(lr=-0.1), "lr"),
                                          (dict(lr=0.1, eps=-1e-8), "eps")])
def test_bad_hyper_parameters(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter of SignGD"):
        SignGD([torch.zeros(2, requires_grad=True)], **kwargs)
