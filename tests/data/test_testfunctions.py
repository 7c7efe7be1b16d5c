"""udl.data.testfunctions: the book's optimizer test functions and their gradients."""

import pytest
import torch

from udl.data import testfunctions as tf


def test_line_search_loss_values_and_gradient():
    # L = 1 - 0.5·exp(-(φ-0.65)²/0.1) - 0.45·exp(-(φ-0.35)²/0.02), at φ = 0.35 and 0.65 by hand
    assert abs(tf.line_search_loss(0.35).item() - (1 - 0.5 * torch.exp(torch.tensor(-0.9, dtype=torch.float64)) - 0.45)) < 1e-15
    assert abs(tf.line_search_loss(0.65).item() - (0.5 - 0.45 * torch.exp(torch.tensor(-4.5, dtype=torch.float64)))) < 1e-15
    phi = torch.linspace(0, 1, 101, dtype=torch.float64, requires_grad=True)
    tf.line_search_loss(phi).sum().backward()
    torch.testing.assert_close(tf.line_search_loss_grad(phi.detach()), phi.grad)


def test_line_search_loss_has_one_minimum_and_a_shoulder():
    phi = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    loss, grad = tf.line_search_loss(phi), tf.line_search_loss_grad(phi)
    interior = (loss[1:-1] < loss[:-2]) & (loss[1:-1] < loss[2:])
    minima = phi[1:-1][interior]
    assert len(minima) == 1 and abs(minima[0] - 0.3803) < 1e-3 and abs(loss.min() - 0.3286) < 1e-3
    assert (grad[phi < 0.38] < 0).all() and (grad[phi > 0.381] > 0).all()  # unimodal on [0, 1]
    shoulder = (phi > 0.5) & (phi < 0.8)
    assert grad[shoulder].min() < 0.01  # the wide dip near 0.65 flattens the slope


def test_adam_loss_minimum_gradient_and_grid_shape():
    assert tf.adam_loss(torch.tensor(tf.ADAM_MINIMUM)).item() == 0.0
    # 1 - exp(-2·0.81)·exp(-1.96/8) at the start (-0.7, -0.9)
    expected = 1 - torch.exp(torch.tensor(-2 * 0.81 - 1.96 / 8, dtype=torch.float64))
    assert abs(tf.adam_loss(tf.ADAM_START).item() - expected.item()) < 1e-15
    phi = torch.randn(7, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = tf.adam_loss(phi)
    assert loss.shape == (7, 5)
    loss.sum().backward()
    torch.testing.assert_close(tf.adam_loss_grad(phi.detach()), phi.grad)
    assert tf.adam_loss_grad(torch.tensor(tf.ADAM_MINIMUM)).abs().max().item() == 0.0


def test_adam_loss_is_steep_in_phi1_and_flat_in_phi0():
    hessian = torch.autograd.functional.hessian(tf.adam_loss, torch.tensor(tf.ADAM_MINIMUM, dtype=torch.float64))
    torch.testing.assert_close(hessian, torch.diag(torch.tensor([0.25, 4.0], dtype=torch.float64)))  # 1/σ² = 1/4, 4


def test_bad_inputs():
    with pytest.raises(ValueError, match="'phi' parameter of adam_loss"):
        tf.adam_loss(torch.zeros(3))
    with pytest.raises(TypeError, match="'phi' parameter of line_search_loss"):
        tf.line_search_loss("a")
