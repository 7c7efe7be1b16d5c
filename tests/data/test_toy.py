"""udl.data.toy: the book's 1D toy problems."""

import numpy as np
import pytest

from udl.data import toy


def test_regression_has_one_point_per_interval_and_the_books_function():
    data = toy.make_regression_1d(seed=0)
    n = 15
    assert data.x.shape == data.y.shape == (n,)
    np.testing.assert_array_equal(np.floor(data.x * n), np.arange(n))  # x_i in [i/n, (i+1)/n)
    np.testing.assert_allclose(data.truth(np.array([0.0, 0.25, 0.5, 0.75])), [1.0, np.e, 1.0, 1 / np.e], atol=1e-12)
    assert data.noise_sd == 0.3


def test_regression_noise_has_the_stated_scale():
    data = toy.make_regression_1d(n=20000, noise_sd=0.3, seed=1)
    residual = data.y - data.truth(data.x)
    assert abs(residual.mean()) < 0.01 and abs(residual.std() - 0.3) < 0.01
    clean = toy.make_regression_1d(n=10, noise_sd=0.0, seed=1)
    np.testing.assert_array_equal(clean.y, toy.regression_truth(clean.x))


def test_seeds_and_generators():
    a, b, c = (toy.make_regression_1d(seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(toy.make_classification_1d(50, seed=g1).y, toy.make_classification_1d(50, seed=g2).y)


def test_regression_sampler_draws_make_regression_1d_from_the_rng():
    sample = toy.regression_sampler(12, 0.2)
    x, y = sample(np.random.default_rng(4))
    data = toy.make_regression_1d(12, 0.2, seed=np.random.default_rng(4))
    np.testing.assert_array_equal(x, data.x)
    np.testing.assert_array_equal(y, data.y)
    rng = np.random.default_rng(4)
    first, second = sample(rng), sample(rng)  # the generator's stream goes on: a fresh training set each call
    assert not np.array_equal(first[1], second[1]) and first[0].shape == (12,)
    with pytest.raises(ValueError, match=r"^The 'noise_sd' parameter of regression_sampler must be"):
        toy.regression_sampler(5, -1.0)


def test_classification_labels_follow_the_true_probability():
    data = toy.make_classification_1d(40000, seed=2)
    assert data.y.dtype == np.int64 and set(np.unique(data.y)) == {0, 1}
    assert np.all(np.diff(data.x) >= 0) and data.x.min() >= 0 and data.x.max() <= 1
    bins = np.minimum((data.x * 10).astype(int), 9)
    for b in range(10):
        inside = bins == b
        assert abs(data.y[inside].mean() - data.truth(data.x[inside]).mean()) < 0.03
    f = toy.classification_logit(np.array([0.0, 0.25]))
    np.testing.assert_allclose(f, [-1.0, 3.5])
    np.testing.assert_allclose(toy.classification_truth(0.25), 1 / (1 + np.exp(-3.5)), rtol=1e-12)


def test_multiclass_labels_follow_the_softmax():
    data = toy.make_multiclass_1d(30000, k=3, seed=3)
    probs = data.truth(data.x)
    assert probs.shape == (30000, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    counts = np.bincount(data.y, minlength=3) / data.y.size
    np.testing.assert_allclose(counts, probs.mean(0), atol=0.01)


@pytest.mark.parametrize("call", [
    lambda: toy.make_regression_1d(n=0),
    lambda: toy.make_regression_1d(n=2.5),
    lambda: toy.make_regression_1d(noise_sd=-0.1),
    lambda: toy.make_regression_1d(seed=-1),
    lambda: toy.make_regression_1d(seed="x"),
    lambda: toy.make_classification_1d(n=-3),
    lambda: toy.make_multiclass_1d(k=1),
    lambda: toy.regression_truth("x"),
    lambda: toy.ToyData(x=[1.0], y=np.zeros(1), truth=toy.regression_truth),
    lambda: toy.ToyData(x=np.zeros(2), y=np.zeros(3), truth=toy.regression_truth),
    lambda: toy.ToyData(x=np.zeros(2), y=np.zeros(2), truth=None),
])
def test_bad_arguments(call):
    with pytest.raises((ValueError, TypeError)):
        call()
