"""udl.optim.path.descent_path: the visited points, against the closed form on a quadratic."""

import pytest
import torch

from udl.optim import LineSearchGD, descent_path


def test_gradient_descent_path_on_a_quadratic_is_the_closed_form():
    A = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    alpha, phi0 = 0.2, torch.tensor([1.0, -1.0], dtype=torch.float64)
    path = descent_path(lambda phi: 0.5 * phi @ A @ phi, phi0, lambda p: torch.optim.SGD(p, lr=alpha), 25)
    assert path.shape == (26, 2) and path.dtype == torch.float64
    step = torch.eye(2, dtype=torch.float64) - alpha * A  # φ_t = (I - αA)^t φ_0
    expected = torch.stack([torch.linalg.matrix_power(step, t) @ phi0 for t in range(26)])
    torch.testing.assert_close(path, expected, rtol=1e-12, atol=1e-14)


def test_optimizers_that_need_a_closure_work():
    path = descent_path(lambda phi: ((phi - 3) ** 2).sum(), [0.0], lambda p: LineSearchGD(p, max_step=1.0), 1)
    assert abs(path[-1].item() - 3.0) < 1e-3  # one exact line search on a 1D parabola


def test_bad_arguments():
    with pytest.raises(ValueError, match="'steps'"):
        descent_path(lambda phi: phi.sum(), [0.0], lambda p: torch.optim.SGD(p, lr=0.1), -1)
    with pytest.raises(ValueError, match="'start'"):
        descent_path(lambda phi: phi.sum(), 0.0, lambda p: torch.optim.SGD(p, lr=0.1), 1)
