"""udl.analysis.probability against closed forms (bivariate normals and their mixtures)."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from udl.analysis import probability as P

X = np.linspace(-9.0, 11.0, 401)  # spacing 0.05; the box holds all but ~1e-14 of the mass
Y = np.linspace(-11.0, 12.0, 461)
MEAN, SX, SY, RHO = np.array([1.0, 0.5]), 1.2, 1.5, 0.6
COV = np.array([[SX ** 2, RHO * SX * SY], [RHO * SX * SY, SY ** 2]])


@pytest.fixture(scope="module")
def gauss():
    """The bivariate normal on the grid: joint[j, i] = N([X[i], Y[j]]; MEAN, COV)."""
    xx, yy = np.meshgrid(X, Y)  # (Ny, Nx) each
    return multivariate_normal(MEAN, COV).pdf(np.stack([xx, yy], -1))


def test_grid_convention_and_integral(gauss):
    assert gauss.shape == (Y.size, X.size)
    assert P.integrate_2d(gauss, X, Y) == pytest.approx(1.0, abs=1e-7)
    assert P.integrate(norm.pdf(X), X) == pytest.approx(1.0, abs=1e-9)


def test_marginals_are_the_known_normals(gauss):
    np.testing.assert_allclose(P.marginal_x(gauss, X, Y), norm.pdf(X, MEAN[0], SX), atol=1e-8)
    np.testing.assert_allclose(P.marginal_y(gauss, X, Y), norm.pdf(Y, MEAN[1], SY), atol=1e-8)


def test_conditionals_are_the_known_normals(gauss):
    cond = P.conditional_x_given_y(gauss, X, Y)
    for j in (150, 230, 300):  # Pr(x | y) = N(μx + ρ σx/σy (y - μy), σx² (1 - ρ²))
        mean = MEAN[0] + RHO * SX / SY * (Y[j] - MEAN[1])
        np.testing.assert_allclose(cond[j], norm.pdf(X, mean, SX * np.sqrt(1 - RHO ** 2)), atol=1e-8)
        assert P.integrate(cond[j], X) == pytest.approx(1.0, abs=1e-12)
    cond_y = P.conditional_y_given_x(gauss, X, Y)
    i = 210
    mean = MEAN[1] + RHO * SY / SX * (X[i] - MEAN[0])
    np.testing.assert_allclose(cond_y[:, i], norm.pdf(Y, mean, SY * np.sqrt(1 - RHO ** 2)), atol=1e-8)


def test_slice_between_grid_rows_interpolates(gauss):
    y0 = 0.5 * (Y[230] + Y[231])
    cond, area = P.slice_x_given_y(gauss, X, Y, y0)
    mean = MEAN[0] + RHO * SX / SY * (y0 - MEAN[1])
    np.testing.assert_allclose(cond, norm.pdf(X, mean, SX * np.sqrt(1 - RHO ** 2)), atol=2e-3)
    assert area == pytest.approx(norm.pdf(y0, MEAN[1], SY), rel=2e-3)
    on_grid, _ = P.slice_x_given_y(gauss, X, Y, float(Y[230]))
    np.testing.assert_allclose(on_grid, P.conditional_x_given_y(gauss, X, Y)[230], atol=1e-15)


def test_bayes_rule_recovers_the_other_conditional(gauss):
    posterior = P.bayes_rule(P.conditional_y_given_x(gauss, X, Y), P.marginal_x(gauss, X, Y), X)
    np.testing.assert_allclose(posterior, P.conditional_x_given_y(gauss, X, Y), atol=1e-12)
    # a hand-made discrete case: uniform prior, likelihood favouring large x
    x = np.array([0.0, 1.0])
    like = np.array([[0.2, 0.8]])  # Pr(y0 | x)
    np.testing.assert_allclose(P.bayes_rule(like, np.array([0.5, 0.5]), x), [[0.4, 1.6]])


def test_independence_measures(gauss):
    px, py = P.marginal_x(gauss, X, Y), P.marginal_y(gauss, X, Y)
    independent = P.independent_joint(px, py)
    assert independent.shape == gauss.shape
    assert P.independence_gap(independent, X, Y) < 1e-12
    assert abs(P.mutual_information(independent, X, Y)) < 1e-9
    assert P.independence_gap(gauss, X, Y) > 0.01
    # mutual information of a bivariate normal: -½ log(1 - ρ²)
    assert P.mutual_information(gauss, X, Y) == pytest.approx(-0.5 * np.log(1 - RHO ** 2), abs=1e-6)


def test_gaussian_mixture_closed_forms():
    g = P.GaussianMixture2D(weights=(0.3, 0.7), means=((0.0, 0.0), (2.0, -1.0)),
                            covs=(((1.0, 0.3), (0.3, 0.5)), ((0.6, -0.2), (-0.2, 1.2))))
    x, y = np.linspace(-6, 8, 281), np.linspace(-8, 6, 281)
    joint = g.grid(x, y)
    reference = 0.3 * multivariate_normal([0, 0], [[1, 0.3], [0.3, 0.5]]).pdf([1.0, -0.5]) + \
        0.7 * multivariate_normal([2, -1], [[0.6, -0.2], [-0.2, 1.2]]).pdf([1.0, -0.5])
    assert float(g.pdf(1.0, -0.5)) == pytest.approx(reference, rel=1e-12)
    np.testing.assert_allclose(P.marginal_x(joint, x, y), g.marginal_x(x), atol=1e-9)
    np.testing.assert_allclose(P.marginal_y(joint, x, y), g.marginal_y(y), atol=1e-9)
    cond, area = P.slice_x_given_y(joint, x, y, float(y[150]))
    np.testing.assert_allclose(cond, g.conditional_x_given_y(x, float(y[150])), atol=1e-9)
    assert area == pytest.approx(float(g.marginal_y(y[150])), abs=1e-9)


def test_normal_pdf():
    np.testing.assert_allclose(P.normal_pdf(np.array([0.0, 1.0]), 1.0, 4.0), norm.pdf([0.0, 1.0], 1.0, 2.0))


@pytest.mark.parametrize("call", [
    lambda: P.marginal_x(np.ones((3, 3)), np.arange(4.0), np.arange(3.0)),
    lambda: P.marginal_x(-np.ones((3, 3)), np.arange(3.0), np.arange(3.0)),
    lambda: P.marginal_y(np.ones((3, 3)), np.array([0.0, 2.0, 1.0]), np.arange(3.0)),
    lambda: P.integrate(np.ones(3), "abc"),
    lambda: P.conditional_x_given_y(None, np.arange(3.0), np.arange(3.0)),
    lambda: P.slice_x_given_y(np.ones((3, 3)), np.arange(3.0), np.arange(3.0), 5.0),
    lambda: P.bayes_rule(np.ones((2, 3)), np.ones(2), np.arange(3.0)),
    lambda: P.independent_joint(np.ones((2, 2)), np.ones(2)),
    lambda: P.normal_pdf(0.0, 0.0, 0.0),
    lambda: P.GaussianMixture2D(weights=(0.5,), means=((0.0, 0.0),), covs=(((1.0, 0.0), (0.0, 1.0)),)),
    lambda: P.GaussianMixture2D(weights=(1.0,), means=((0.0, 0.0),), covs=(((1.0, 2.0), (2.0, 1.0)),)),
    lambda: P.GaussianMixture2D(weights=(1.0,), means=((0.0,),), covs=(((1.0, 0.0), (0.0, 1.0)),)),
    lambda: P.GaussianMixture2D(weights="a", means=((0.0, 0.0),), covs=(((1.0, 0.0), (0.0, 1.0)),)),
])
def test_bad_arguments(call):
    with pytest.raises((ValueError, TypeError)):
        call()
