"""udl.analysis.bias_variance against closed forms (ordinary least squares on a fixed design)."""

import numpy as np
import pytest

from udl.analysis.bias_variance import capacity_sweep, decompose

SIGMA = 0.3
X_TRAIN = np.linspace(0, 1, 12)
X_TEST = np.linspace(0, 1, 21)


def mu(x):
    return np.sin(2 * np.pi * x) + x


def sample(rng):
    """A fixed design with fresh noise: the textbook setting of the closed forms."""
    return X_TRAIN, mu(X_TRAIN) + SIGMA * rng.standard_normal(X_TRAIN.size)


def poly_fit(degree):
    def fit(x, y):
        coef = np.polyfit(x, y, degree)
        return lambda x_new: np.polyval(coef, x_new)
    return fit


def design(x, degree):
    return np.vander(x, degree + 1)


def closed_form(degree):
    """OLS on a fixed design: f̄ = the projection of μ, variance(x) = σ² aᵀ(AᵀA)⁻¹a."""
    a, a_test = design(X_TRAIN, degree), design(X_TEST, degree)
    coef = np.linalg.lstsq(a, mu(X_TRAIN), rcond=None)[0]
    mean_fit = a_test @ coef
    variance = SIGMA ** 2 * np.einsum("mi,ij,mj->m", a_test, np.linalg.inv(a.T @ a), a_test)
    return (mean_fit - mu(X_TEST)) ** 2, variance


@pytest.mark.parametrize("degree", [1, 3])
def test_bias_and_variance_match_the_ols_closed_form(degree):
    bv = decompose(poly_fit(degree), sample, mu, X_TEST, SIGMA ** 2, 3000, seed=1)
    bias2_x, variance_x = closed_form(degree)
    # variance: relative Monte-Carlo error of a variance estimate with K = 3000 is about √(2/K) ≈ 2.6%
    np.testing.assert_allclose(bv.variance_x, variance_x, rtol=0.12)
    assert bv.variance == pytest.approx(variance_x.mean(), rel=0.06)
    # bias²: the estimate carries an extra variance/K on top of the true bias²
    np.testing.assert_allclose(bv.bias2_x, bias2_x, atol=6 * np.sqrt(variance_x.max() / 3000) * np.sqrt(bias2_x.max())
                               + 5 * variance_x.max() / 3000)
    assert bv.noise == pytest.approx(SIGMA ** 2, abs=4 * bv.noise_se)
    assert bv.noise_se == pytest.approx(SIGMA ** 2 * np.sqrt(2 / (3000 * X_TEST.size)), rel=0.1)


def test_unbiased_model_has_only_variance_and_noise():
    def line(x):
        return 2 * x - 1

    def sample_line(rng):
        return X_TRAIN, line(X_TRAIN) + SIGMA * rng.standard_normal(X_TRAIN.size)

    bv = decompose(poly_fit(1), sample_line, line, X_TEST, SIGMA ** 2, 2000, seed=2)
    assert bv.bias2 < 5 * bv.variance / 2000  # only the Monte-Carlo remainder variance/K
    assert bv.variance == pytest.approx(closed_form(1)[1].mean(), rel=0.08)


def test_error_equals_noise_plus_bias_plus_variance():
    for seed in range(3):
        bv = decompose(poly_fit(2), sample, mu, X_TEST, SIGMA ** 2, 500, seed=seed)
        assert abs(bv.expected_error - bv.total) <= 4 * bv.gap_se
        assert bv.total == pytest.approx(bv.noise + bv.bias2 + bv.variance)
        # the per-x identity: mean_k (f_k - μ)² = bias² + variance exactly (population variance)
        np.testing.assert_allclose(((bv.predictions - bv.truth) ** 2).mean(axis=0), bv.bias2_x + bv.variance_x,
                                   rtol=1e-10)
    # without test noise the identity is exact
    exact = decompose(poly_fit(2), sample, mu, X_TEST, 0.0, 50, seed=0)
    assert exact.noise == 0.0 and exact.gap_se == 0.0
    assert exact.expected_error == pytest.approx(exact.bias2 + exact.variance, rel=1e-12)


def test_expected_error_is_measured_on_fresh_targets():
    bv = decompose(poly_fit(2), sample, mu, X_TEST, SIGMA ** 2, 400, seed=5)
    # recompute the error with the same test noise stream (the last spawned child)
    test_rng = np.random.default_rng(np.random.SeedSequence(5).spawn(401)[-1])
    y = mu(X_TEST)[None, :] + SIGMA * test_rng.standard_normal((400, X_TEST.size))
    assert bv.expected_error == pytest.approx(((bv.predictions - y) ** 2).mean(), rel=1e-12)
    assert bv.expected_error_se == pytest.approx(((bv.predictions - y) ** 2).mean(axis=1).std(ddof=1) / 20, rel=1e-9)


def test_seeded_and_common_random_numbers_across_capacities():
    a = decompose(poly_fit(2), sample, mu, X_TEST, SIGMA ** 2, 30, seed=7)
    b = decompose(poly_fit(2), sample, mu, X_TEST, SIGMA ** 2, 30, seed=7)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    c = decompose(poly_fit(2), sample, mu, X_TEST, SIGMA ** 2, 30, seed=8)
    assert not np.array_equal(a.predictions, c.predictions)
    sweep = capacity_sweep(poly_fit, [0, 1, 2, 3, 5, 9], sample, mu, X_TEST, SIGMA ** 2, 30, seed=7)
    np.testing.assert_array_equal(sweep.results[2].predictions, a.predictions)
    assert sweep.capacities.tolist() == [0, 1, 2, 3, 5, 9]
    assert sweep.best_capacity == sweep.capacities[np.argmin(sweep.bias2 + sweep.variance)]
    assert sweep.bias2[0] > sweep.bias2[-1] and sweep.variance[0] < sweep.variance[-1]


def test_bad_arguments():
    ok = dict(fit_fn=poly_fit(1), sample_fn=sample, truth=mu, x_test=X_TEST, noise_var=0.09, n_datasets=5)
    for name, value, error in [("fit_fn", 3, TypeError), ("sample_fn", None, TypeError), ("truth", "mu", TypeError),
                               ("x_test", np.zeros((2, 2)), ValueError), ("x_test", "abc", TypeError),
                               ("noise_var", -0.1, ValueError), ("n_datasets", 1, ValueError),
                               ("n_datasets", 2.5, TypeError), ("seed", -1, ValueError)]:
        with pytest.raises(error, match=f"'{name}' parameter of decompose"):
            decompose(**{**ok, name: value})
    with pytest.raises(ValueError, match="one value per test input"):
        decompose(lambda x, y: (lambda x_new: np.zeros(3)), sample, mu, X_TEST, 0.09, 3)
    with pytest.raises(TypeError, match="'capacities' parameter of capacity_sweep"):
        capacity_sweep(poly_fit, [], sample, mu, X_TEST, 0.09, 3)
