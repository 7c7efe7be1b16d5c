"""udl.analysis.smoothness: slope changes of sampled piecewise-linear functions."""

import numpy as np
import pytest
import torch

from udl.analysis.smoothness import roughness, slope_changes
from udl.nn.fixed_joints import FixedJointNetwork


def test_slope_changes_of_the_fixed_joint_model_are_its_omegas():
    d = 14
    net = FixedJointNetwork(d, generator=torch.Generator().manual_seed(0)).double()
    x = torch.linspace(-0.5, 1.5, 8 * 2 * d + 1, dtype=torch.float64)  # joints j/14 fall on grid points
    ds = slope_changes(x, net(x).detach())
    at_joints = np.isin(np.round(x[1:-1].numpy() * d, 9), np.arange(d))
    np.testing.assert_allclose(ds[at_joints], net.omega.detach().numpy(), atol=1e-9)
    np.testing.assert_allclose(ds[~at_joints], 0, atol=1e-9)
    assert roughness(x, net(x).detach()) == pytest.approx(float((net.omega.detach() ** 2).sum()), rel=1e-9)


def test_lines_have_no_roughness_and_uneven_grids_work():
    x = np.sort(np.random.default_rng(0).uniform(0, 1, 50))
    assert roughness(x, 2 - 5 * x) < 1e-16
    np.testing.assert_allclose(slope_changes(x, x ** 2)[:5],  # f'' = 2: Δs = (x_{i+1} - x_{i-1})
                               (x[2:] - x[:-2])[:5], rtol=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: slope_changes([0, 1, 2], [0, 1]), "'f'"), (lambda: slope_changes([0, 2, 1], [0, 1, 2]), "'x'"),
    (lambda: roughness("abc", [1, 2, 3]), "'x'"), (lambda: roughness([0, 1], [0, 1]), "'x'"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
