"""udl.analysis.loss_landscape: filter-normalised directions, loss surfaces and roughness measures."""

import numpy as np
import pytest
import torch
from torch import nn

from udl.analysis.loss_landscape import (local_minima, loss_slice, loss_surface, model_loss, nonconvexity,
                                         random_direction, surface_roughness)


def conv_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.Conv1d(4, 3, 3, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6, 5))


def conv_data(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, generator=g), torch.randint(0, 5, (n,), generator=g)


def trained_bn_net():
    """A net whose batch norm has running statistics different from its initial ones."""
    net = conv_net()
    x, _ = conv_data()
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x * 3 + 1)
    return net


# --------------------------------------------------------------------------- directions
def test_filter_normalisation_gives_each_filter_the_norm_of_the_weights_filter():
    net = conv_net()
    d = random_direction(net, torch.Generator().manual_seed(0))
    assert set(d) == {k for k, _ in net.named_parameters()}
    for name, phi in net.named_parameters():
        assert d[name].shape == phi.shape
        if phi.dim() > 1:  # conv (C_out, C_in, k) and linear (out, in): one norm per output unit
            torch.testing.assert_close(d[name].flatten(1).norm(dim=1), phi.detach().flatten(1).norm(dim=1))
            assert not torch.allclose(d[name], phi.detach())  # a new direction, not a copy
        else:  # biases and batch norm's γ, δ: zero (Li et al.'s "biasbn" convention)
            assert torch.equal(d[name], torch.zeros_like(phi))


def test_direction_options_and_reproducibility():
    net = conv_net()
    d_a = random_direction(net, torch.Generator().manual_seed(3))
    d_b = random_direction(net, torch.Generator().manual_seed(3))
    d_c = random_direction(net, torch.Generator().manual_seed(4))
    assert all(torch.equal(d_a[k], d_b[k]) for k in d_a)
    assert not torch.equal(d_a["0.weight"], d_c["0.weight"])
    kept = random_direction(net, torch.Generator().manual_seed(3), ignore_bias_bn=False)
    assert torch.equal(kept["1.weight"], net[1].weight.detach())  # d = φ for 1D parameters
    assert torch.equal(kept["0.weight"], d_a["0.weight"])
    layer = random_direction(net, torch.Generator().manual_seed(3), normalization="layer")
    torch.testing.assert_close(layer["3.weight"].norm(), net[3].weight.detach().norm())
    raw = random_direction(net, torch.Generator().manual_seed(3), normalization="none")
    g = torch.Generator().manual_seed(3)
    torch.testing.assert_close(raw["0.weight"], torch.randn(net[0].weight.shape, generator=g))


# --------------------------------------------------------------------------- surfaces
def test_surface_centre_is_the_models_loss_and_the_weights_are_untouched():
    net = trained_bn_net()
    net.train()  # the caller's mode is restored afterwards
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = conv_data()
    g = torch.Generator().manual_seed(0)
    dirs = (random_direction(net, g), random_direction(net, g))
    alphas = np.linspace(-1, 1, 5)
    surface = loss_surface(net, nn.CrossEntropyLoss(), data, dirs, alphas, alphas[:3])
    assert surface.shape == (5, 3)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running statistics
    assert net.training and net[1].training
    # the centre is L[φ*] with batch norm in eval mode, to the last bit of a plain forward pass
    net.eval()
    with torch.no_grad():
        reference = float(nn.CrossEntropyLoss()(net(data[0]), data[1]))
    assert surface[2, 2] == pytest.approx(reference, abs=1e-6)
    assert model_loss(net, nn.CrossEntropyLoss(), data) == pytest.approx(reference, abs=1e-6)
    net.train()
    with torch.no_grad():  # batch statistics give another number: eval mode is really used
        assert abs(float(nn.CrossEntropyLoss()(net(data[0]), data[1])) - surface[2, 2]) > 1e-3
    # moving the parameters by hand gives the same loss as the functional evaluation
    moved = trained_bn_net().eval()
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.add_(alphas[0] * dirs[0][name] + alphas[1] * dirs[1][name])
        by_hand = float(nn.CrossEntropyLoss()(moved(data[0]), data[1]))
    assert surface[0, 1] == pytest.approx(by_hand, rel=1e-5)


def test_batches_do_not_change_the_surface():
    net = trained_bn_net()
    data = conv_data(n=11)
    g = torch.Generator().manual_seed(1)
    dirs = (random_direction(net, g), random_direction(net, g))
    grid = [-0.5, 0.0, 0.5]
    whole = loss_surface(net, nn.CrossEntropyLoss(), data, dirs, grid, grid)
    batched = loss_surface(net, nn.CrossEntropyLoss(), data, dirs, grid, grid, batch_size=4)
    np.testing.assert_allclose(batched, whole, rtol=1e-5)
    sliced = loss_slice(net, nn.CrossEntropyLoss(), data, dirs[0], grid)
    np.testing.assert_allclose(sliced, whole[:, 1], rtol=1e-6)


def test_batch_statistics_make_the_loss_blind_to_the_scale_of_a_filter_before_batch_norm():
    # moving along d = φ of the first convolution (and nothing else) rescales it by 1 + α;
    # batch norm with batch statistics undoes the scale (up to its ε), running statistics do not
    net = trained_bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = conv_data()
    scale = {k: (p.detach().clone() if k == "0.weight" else torch.zeros_like(p)) for k, p in net.named_parameters()}
    scale["0.bias"] = net[0].bias.detach().clone()  # the bias scales with the weights
    alphas = [-0.5, 0.0, 1.0, 3.0]
    batch = loss_slice(net, nn.CrossEntropyLoss(), data, scale, alphas, batch_norm="batch")
    np.testing.assert_allclose(batch, batch[1], rtol=1e-4)
    net.train()
    with torch.no_grad():  # the centre is the loss of an ordinary forward pass with batch statistics
        reference = float(nn.CrossEntropyLoss()(net(data[0]), data[1]))
    net.load_state_dict(before)
    assert batch[1] == pytest.approx(reference, abs=1e-6)
    assert model_loss(net, nn.CrossEntropyLoss(), data, batch_norm="batch") == pytest.approx(reference, abs=1e-6)
    running = loss_slice(net, nn.CrossEntropyLoss(), data, scale, alphas)
    assert np.ptp(running) > 0.05
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running statistics untouched
    with pytest.raises(ValueError, match="'batch_norm' parameter of loss_surface"):
        loss_slice(net, nn.CrossEntropyLoss(), data, scale, alphas, batch_norm="train")


def test_a_loss_quadratic_in_the_parameters_gives_the_closed_form_surface():
    # L[φ] = mean (x·φ - y)² for a linear model without bias: exactly quadratic in φ,
    # L(α, β) = mean (r + α u + β v)², r = xφ* - y, u = x d₁, v = x d₂.
    torch.manual_seed(0)
    net = nn.Linear(3, 1, bias=False)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(40, 3, generator=g), torch.randn(40, 1, generator=g)
    d1, d2 = random_direction(net, g), random_direction(net, g)
    alphas, betas = np.linspace(-2, 2, 9), np.linspace(-1, 3, 7)
    surface = loss_surface(net, nn.MSELoss(), (x, y), (d1, d2), alphas, betas)
    X, Y = x.double().numpy(), y.double().numpy()[:, 0]
    phi, u1, u2 = (t.detach().double().numpy()[0] for t in (net.weight, d1["weight"], d2["weight"]))
    r, u, v = X @ phi - Y, X @ u1, X @ u2  # (40,) each
    a, b = np.meshgrid(alphas, betas, indexing="ij")
    expected = (np.mean(r ** 2) + 2 * a * np.mean(r * u) + 2 * b * np.mean(r * v) + a ** 2 * np.mean(u ** 2)
                + 2 * a * b * np.mean(u * v) + b ** 2 * np.mean(v ** 2))
    np.testing.assert_allclose(surface, expected, rtol=1e-5)
    assert nonconvexity(surface) == 0.0 and local_minima(surface) >= 1


# --------------------------------------------------------------------------- roughness
GRID = np.linspace(-1, 1, 21)
A, B = np.meshgrid(GRID, GRID, indexing="ij")
BOWL = A ** 2 + B ** 2


def test_roughness_of_a_bowl_has_its_closed_form():
    # Δ²f = 2h² along each axis, no mixed term: ‖H‖_F = 2√2 h²; range 2  ->  R = √2 h²
    h = GRID[1] - GRID[0]
    assert surface_roughness(BOWL) == pytest.approx(np.sqrt(2) * h ** 2, rel=1e-9)
    assert surface_roughness(3 * A - B + 7) == pytest.approx(0.0, abs=1e-12)  # a plane does not bend
    assert surface_roughness(np.full((4, 4), 2.0)) == 0.0
    assert surface_roughness(5 * BOWL + 3) == pytest.approx(surface_roughness(BOWL))  # unitless


def test_high_frequencies_make_a_bowl_rougher():
    ripples = BOWL + 0.1 * np.sin(5 * np.pi * A + 0.3) * np.sin(5 * np.pi * B + 0.7)  # period: 4 grid steps
    assert surface_roughness(ripples) > 5 * surface_roughness(BOWL)
    assert nonconvexity(BOWL) == 0.0 and nonconvexity(ripples) > 0.5
    assert local_minima(BOWL) == 1 and local_minima(ripples) > 1


def test_nonconvexity_and_local_minima_of_known_surfaces():
    assert nonconvexity(A ** 2 - B ** 2) == 1.0  # a saddle curves down everywhere
    assert nonconvexity(-BOWL) == 1.0
    # cos(πa)·cos(πb) on [-2, 2]²: minima where one cosine is +1 and the other -1
    # and the other -1: (±1, 0), (0, ±1) inside and (±2, ±1), (±1, ±2) on the edges
    g = np.linspace(-2, 2, 41)
    egg = np.cos(np.pi * g)[:, None] * np.cos(np.pi * g)[None, :]
    assert local_minima(egg) == 12


@pytest.mark.parametrize("bad", [np.zeros((2, 5)), np.zeros(9), np.array([[0, 1, 2]] * 3) * np.nan])
def test_surfaces_must_be_2d_finite_and_at_least_3x3(bad):
    with pytest.raises(ValueError, match="'surface' parameter of surface_roughness"):
        surface_roughness(bad)
