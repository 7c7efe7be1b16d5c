"""udl.models.gabor: the Gabor model (eq. 6.8), its loss (6.9) and gradient, the loss surface."""

import math

import numpy as np
import pytest
import torch

from udl.data.gabor import load_gabor_data
from udl.models import gabor as g
from udl.train import fit

F64 = torch.float64


def t(*values):
    return torch.tensor(values, dtype=F64)


@pytest.fixture(scope="module")
def book():
    return load_gabor_data()


@pytest.fixture(scope="module")
def book_valleys(book):
    phi0, phi1 = torch.linspace(-10, 10, 201, dtype=F64), torch.linspace(2.5, 22.5, 201, dtype=F64)
    return (phi0, phi1, *g.valleys(phi0, phi1, *book))


# --------------------------------------------------------------------------- model, loss, gradient
def test_gabor_by_hand():
    # z = φ0 + 0.06·φ1·x: (π/2, 10) at x = 0 gives z = π/2; (0.5, 16) at x = 1.25 gives z = 1.7
    assert float(g.gabor(t(0.0), t(math.pi / 2, 10.0))[0]) == pytest.approx(math.exp(-(math.pi / 2) ** 2 / 32))
    assert float(g.gabor(t(1.25), t(0.5, 16.0))[0]) == pytest.approx(math.sin(1.7) * math.exp(-1.7**2 / 32),
                                                                     abs=1e-15)
    # the centre x = -φ0/(0.06 φ1) is a zero of f, and f is odd about it
    phi, centre = t(3.0, 12.0), -3.0 / (0.06 * 12.0)
    f = g.gabor(t(centre - 2.0, centre, centre + 2.0), phi)
    assert abs(float(f[1])) < 1e-15 and float(f[0]) == pytest.approx(-float(f[2]), abs=1e-15)


def test_gabor_broadcasts_over_a_batch_of_parameters():
    x = torch.linspace(-12, 12, 7, dtype=F64)
    phi = torch.randn(3, 4, 2, dtype=F64, generator=torch.Generator().manual_seed(0)) * 5
    out = g.gabor(x, phi)
    assert out.shape == (3, 4, 7)
    for i in range(3):
        for j in range(4):
            z = phi[i, j, 0] + 0.06 * phi[i, j, 1] * x
            torch.testing.assert_close(out[i, j], torch.sin(z) * torch.exp(-z**2 / 32), rtol=0, atol=0)


def test_module_equals_the_functional_form(book):
    x, y = book
    model = g.GaborModel(-1.5, 8.5)
    assert [name for name, _ in model.named_parameters()] == ["phi0", "phi1"]
    torch.testing.assert_close(model.phi, t(-1.5, 8.5))
    torch.testing.assert_close(model(x), g.gabor(x, t(-1.5, 8.5)), rtol=0, atol=0)
    torch.testing.assert_close(model.loss(x, y), g.gabor_loss(t(-1.5, 8.5), x, y), rtol=0, atol=0)


def test_the_loss_is_a_sum_of_squares(book):
    x, y = book
    phi = t(0.5, 14.0)
    residual = g.gabor(x, phi) - y
    assert float(g.gabor_loss(phi, x, y)) == pytest.approx(float((residual**2).sum()), rel=1e-15)
    # a sum, not a mean: two copies of the data double the loss
    doubled = g.gabor_loss(phi, torch.cat([x, x]), torch.cat([y, y]))
    assert float(doubled) == pytest.approx(2 * float(g.gabor_loss(phi, x, y)), rel=1e-14)


def test_gradient_by_hand_equals_autograd_and_finite_differences(book):
    x, y = book
    phi = torch.stack([torch.linspace(-8, 8, 9, dtype=F64), torch.linspace(3, 22, 9, dtype=F64)], dim=1)  # (9, 2)
    analytic = g.gabor_loss_grad(phi, x, y)
    leaf = phi.clone().requires_grad_(True)
    g.gabor_loss(leaf, x, y).sum().backward()
    torch.testing.assert_close(analytic, leaf.grad, rtol=1e-12, atol=1e-12)
    h = 1e-6
    for k in range(2):
        step = torch.zeros(2, dtype=F64)
        step[k] = h
        central = (g.gabor_loss(phi + step, x, y) - g.gabor_loss(phi - step, x, y)) / (2 * h)
        torch.testing.assert_close(analytic[:, k], central, rtol=1e-6, atol=1e-7)


def test_hessian_by_hand_equals_autograd(book):
    x, y = book
    for phi in (t(0.3, 12.0), t(-4.0, 5.0), t(6.5, 18.0)):
        reference = torch.autograd.functional.hessian(lambda p: g.gabor_loss(p, x, y), phi)
        torch.testing.assert_close(g._hessian(phi, x, y), reference, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- the surface and its valleys
def test_vectorised_surface_equals_a_loop(book):
    x, y = book
    phi0, phi1 = torch.linspace(-10, 10, 7, dtype=F64), torch.linspace(2.5, 22.5, 5, dtype=F64)
    surface = g.loss_surface(phi0, phi1, x, y)
    assert surface.shape == (7, 5)
    for i in (0, 3, 6):
        for j in (0, 2, 4):
            loop = sum((math.sin(float(phi0[i]) + 0.06 * float(phi1[j]) * xi)
                        * math.exp(-(float(phi0[i]) + 0.06 * float(phi1[j]) * xi) ** 2 / 32) - yi) ** 2
                       for xi, yi in zip(x.tolist(), y.tolist()))
            assert float(surface[i, j]) == pytest.approx(loop, rel=1e-13)


def test_global_minimum_of_the_book_data(book, book_valleys):
    x, y = book
    _, _, _, minima, losses = book_valleys
    assert float(losses[0]) == pytest.approx(0.6457, abs=1e-4)  # the book: about 0.64 near (0, 16)
    assert abs(float(minima[0, 0])) < 0.05 and abs(float(minima[0, 1]) - 16.0) < 0.1
    assert bool((losses[1:] > losses[0] + 2).all()) and len(losses) >= 5  # non-convex: several worse minima
    for phi in minima:
        assert float(g.gabor_loss_grad(phi, x, y).norm()) < 1e-6
        assert float(torch.linalg.eigvalsh(g._hessian(phi, x, y)).min()) > 0
    phi, loss = g.local_minima(*book_valleys[:2], x, y)
    torch.testing.assert_close(phi, minima)
    torch.testing.assert_close(loss, losses)


def test_valleys_say_where_descent_leads(book, book_valleys):
    phi0, phi1, labels, minima, _ = book_valleys
    assert labels.shape == (201, 201) and int(labels.min()) >= -1 and int(labels.max()) == len(minima) - 1
    assert int(g.valley_of(t(-1.5, 8.5), phi0, phi1, labels)) == 0  # the notebook's start: global valley
    shallow = int(g.valley_of(t(-0.5, 5.5), phi0, phi1, labels))
    assert shallow > 0 and float((minima[shallow] - t(-0.166, 4.881)).norm()) < 0.01
    # the label of each minimum's own cell is that minimum
    labels_at_minima = g.valley_of(minima, phi0, phi1, labels)
    torch.testing.assert_close(labels_at_minima, torch.arange(len(minima)))


def test_basins_on_a_known_surface():
    labels, sinks = g.basins(torch.tensor([[0.0, 1.0, 2.0, 1.0, 0.5]]))
    assert labels.tolist() == [[0, 0, 0, 1, 1]] and sinks.tolist() == [[0, 0], [0, 4]]
    i, j = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    bowl = (i - 2) ** 2 + (j - 7) ** 2
    labels, sinks = g.basins(bowl)
    assert sinks.tolist() == [[2, 7]] and bool((labels == 0).all())
    two = torch.minimum((i - 1) ** 2 + (j - 1) ** 2, (i - 7) ** 2 + (j - 9) ** 2 - 1)
    labels, sinks = g.basins(two)
    assert sinks.tolist() == [[7, 9], [1, 1]]  # lowest first
    assert int(labels[0, 0]) == 1 and int(labels[8, 10]) == 0


# --------------------------------------------------------------------------- optimisation paths
def test_full_batch_path_is_gradient_descent(book):
    x, y = book
    alpha = 0.01
    path, losses = g.optimize_path(lambda p: torch.optim.SGD(p, lr=alpha), (-1.5, 8.5), x, y, steps=5)
    phi = t(-1.5, 8.5)
    for k in range(5):
        phi = phi - alpha * g.gabor_loss_grad(phi, x, y)  # φ ← φ - α ∂L/∂φ  (UDL eq. 6.3)
        torch.testing.assert_close(path[k + 1], phi, rtol=0, atol=1e-13)
    torch.testing.assert_close(losses, g.gabor_loss(path, x, y))


def test_batches_follow_the_training_loop(book):
    x, y = book
    path, _ = g.optimize_path(lambda p: torch.optim.SGD(p, lr=0.1), (-1.5, 8.5), x, y, steps=13, batch_size=5, seed=3)
    model = g.GaborModel(-1.5, 8.5)
    fit(model, (x, y), lambda pred, target: ((pred - target) ** 2).sum(), torch.optim.SGD(model.parameters(), lr=0.1),
        steps=13, batch_size=5, seed=3, device="cpu", progress=False)
    torch.testing.assert_close(model.phi, path[-1], rtol=0, atol=1e-13)
    other, _ = g.optimize_path(lambda p: torch.optim.SGD(p, lr=0.1), (-1.5, 8.5), x, y, steps=13, batch_size=5, seed=4)
    assert float((other[-1] - path[-1]).norm()) > 1e-3


def test_path_turning():
    straight = torch.stack([torch.arange(5.0), 2 * torch.arange(5.0)], dim=1)
    assert g.path_turning(straight) == pytest.approx((0.0, 1.0), abs=1e-5)
    back_and_forth = torch.tensor([[0.0], [1.0], [0.0], [1.0], [0.0]])
    assert g.path_turning(back_and_forth) == pytest.approx((540.0, -1.0))
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert g.path_turning(square) == pytest.approx((180.0, 0.0), abs=1e-5)


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, name", [
    (lambda x, y: g.gabor(x[:, None], t(0.0, 1.0)), "x"),
    (lambda x, y: g.gabor(x, t(0.0, 1.0, 2.0)), "phi"),
    (lambda x, y: g.gabor(x.tolist(), t(0.0, 1.0)), "x"),
    (lambda x, y: g.gabor(x, torch.tensor([0, 1])), "phi"),
    (lambda x, y: g.gabor_loss(t(0.0, 1.0), x, y[:5]), "y"),
    (lambda x, y: g.gabor_loss_grad(t(0.0), x, y), "phi"),
    (lambda x, y: g.loss_surface(x[:, None], x, x, y), "phi0"),
    (lambda x, y: g.valleys(t(0.0, 1.0), t(0.0, 1.0, 2.0), x, y), "phi0"),
    (lambda x, y: g.valleys(x, x, x, y, grad_tol=0.0), "grad_tol"),
    (lambda x, y: g.basins(x), "surface"),
    (lambda x, y: g.valley_of(t(0.0, 1.0), x, x, torch.zeros(3, 3)), "labels"),
    (lambda x, y: g.GaborModel("a"), "phi0"),
    (lambda x, y: g.GaborModel(0.0, float("nan")), "phi1"),
    (lambda x, y: g.GaborModel(dtype=torch.int32), "dtype"),
    (lambda x, y: g.GaborModel()(x.float()[:, None]), "x"),
    (lambda x, y: g.optimize_path("sgd", (0.0, 1.0), x, y, steps=2), "make_optimizer"),
    (lambda x, y: g.optimize_path(lambda p: torch.optim.SGD(p, 0.1), (0.0,), x, y, steps=2), "start"),
    (lambda x, y: g.optimize_path(lambda p: torch.optim.SGD(p, 0.1), (0.0, 1.0), x, y, steps=-1), "steps"),
    (lambda x, y: g.optimize_path(lambda p: torch.optim.SGD(p, 0.1), (0.0, 1.0), x, y, steps=2, batch_size=31),
     "batch_size"),
    (lambda x, y: g.optimize_path(lambda p: None, (0.0, 1.0), x, y, steps=2), "make_optimizer"),
    (lambda x, y: g.path_turning(torch.zeros(2, 2)), "path"),
])
def test_bad_arguments(book, call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call(*book)


def test_numpy_and_torch_definitions_agree():
    from udl.data.gabor import gabor_truth

    x = np.linspace(-15, 15, 31)
    np.testing.assert_allclose(gabor_truth(x, 1.0, 9.0), g.gabor(torch.from_numpy(x), t(1.0, 9.0)).numpy(),
                               rtol=0, atol=1e-15)
