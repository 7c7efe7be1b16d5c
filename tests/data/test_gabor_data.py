"""udl.data.gabor: the book's 30-point Gabor dataset and the synthetic generator."""

import numpy as np
import pytest
import torch

from udl.data import gabor as data


def test_the_books_thirty_points_exactly():
    x, y = data.load_gabor_data()
    assert x.shape == y.shape == (30,) and x.dtype == y.dtype == torch.float64
    # spot checks against BOOK.md (published order)
    for i, value in [(0, -1.920), (1, -14.22), (11, 0.8743), (16, 10.62), (29, -4.505)]:
        assert float(x[i]) == value
    for i, value in [(0, -1.051), (1, -0.02482), (6, 0.009577), (19, 0.006888), (29, 0.5952)]:
        assert float(y[i]) == value
    assert float(x.min()) == -14.22 and float(x.max()) == 10.62
    x32, _ = data.load_gabor_data(dtype=torch.float32)
    assert x32.dtype == torch.float32 and torch.equal(x32, x.float())


def test_synthetic_data_follow_the_gabor_model():
    clean = data.make_gabor_data(50, phi0=1.0, phi1=12.0, noise_sd=0.0, seed=0)
    assert clean.x.shape == clean.y.shape == (50,) and np.all(np.diff(clean.x) >= 0)
    z = 1.0 + 0.06 * 12.0 * clean.x
    np.testing.assert_allclose(clean.y, np.sin(z) * np.exp(-z**2 / 32), rtol=0, atol=1e-15)
    assert clean.x.min() >= -15 and clean.x.max() <= 15
    noisy = data.make_gabor_data(20000, noise_sd=0.2, seed=1)
    residual = noisy.y - noisy.truth(noisy.x)
    assert abs(residual.std() - 0.2) < 0.005 and abs(residual.mean()) < 0.005


def test_seeds():
    a, b, c = (data.make_gabor_data(10, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(data.make_gabor_data(5, seed=g1).x, data.make_gabor_data(5, seed=g2).x)


@pytest.mark.parametrize("call, name", [
    (lambda: data.make_gabor_data(0), "n"),
    (lambda: data.make_gabor_data(2.5), "n"),
    (lambda: data.make_gabor_data(noise_sd=-0.1), "noise_sd"),
    (lambda: data.make_gabor_data(phi1="a"), "phi1"),
    (lambda: data.make_gabor_data(x_range=(3.0, 1.0)), "x_range"),
    (lambda: data.make_gabor_data(seed=-1), "seed"),
    (lambda: data.load_gabor_data(dtype=torch.int64), "dtype"),
])
def test_bad_arguments(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
