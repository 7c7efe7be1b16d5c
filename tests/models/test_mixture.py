"""The mixture of Gaussians of UDL §17.1: densities against scipy and quadrature, EM against scikit-learn."""

import doctest
import warnings

import numpy as np
import pytest
import torch
from scipy import special, stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from udl.analysis.probability import integrate, integrate_2d
from udl.models import mixture
from udl.models.mixture import EMFit, MixtureOfGaussians, e_step, fit_em, initial_mixture, m_step

ONE_D = MixtureOfGaussians([0.25, 0.45, 0.30], [-2.0, 0.5, 3.0], [0.3, 0.8, 0.2])
TWO_D = MixtureOfGaussians([0.3, 0.5, 0.2], [[-2.0, 0.0], [1.0, 1.0], [3.0, -2.0]],
                           [np.eye(2) * 0.5, [[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]]])


def _random_mixture(k: int, d: int, seed: int) -> MixtureOfGaussians:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d))
    return MixtureOfGaussians(rng.dirichlet(np.full(k, 3.0)), rng.normal(0, 3, (k, d)),
                              a @ a.transpose(0, 2, 1) / d + 0.3 * np.eye(d))


def _sklearn(x, initial: MixtureOfGaussians, steps: int, reg_covar: float = 1e-6) -> GaussianMixture:
    """scikit-learn's GaussianMixture run for exactly ``steps`` EM steps from ``initial``'s parameters."""
    gm = GaussianMixture(initial.n_components, covariance_type="full", max_iter=steps, tol=0.0, reg_covar=reg_covar,
                         weights_init=initial.weights.numpy(), means_init=initial.means.numpy(),
                         precisions_init=np.linalg.inv(initial.covariances.numpy()), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol = 0: it never declares convergence
        return gm.fit(np.asarray(x))


# ---------------------------------------------------------------------------------------------- densities
def test_conditionals_are_the_normals_and_the_joint_weights_them():
    x = torch.linspace(-6, 7, 301, dtype=torch.float64)
    want = np.stack([stats.norm(m, np.sqrt(v)).pdf(x) for m, v in zip([-2.0, 0.5, 3.0], [0.3, 0.8, 0.2])], 1)
    np.testing.assert_allclose(ONE_D.conditional(x).numpy(), want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ONE_D.joint(x).numpy(), want * [0.25, 0.45, 0.30], rtol=1e-12, atol=1e-300)
    pts = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    want2 = np.stack([stats.multivariate_normal(m, c).logpdf(pts) for m, c in
                      zip(TWO_D.means.numpy(), TWO_D.covariances.numpy())], 1)
    np.testing.assert_allclose(TWO_D.log_conditional(pts).numpy(), want2, rtol=1e-12)


@pytest.mark.parametrize("mixture", [ONE_D, TWO_D, _random_mixture(4, 5, 0)], ids=["1d", "2d", "5d"])
def test_the_marginal_is_the_sum_of_the_joint_over_z(mixture):
    x, _ = mixture.sample(200, generator=1)
    summed = mixture.joint(x).sum(1)  # Σ_z Pr(x, z)
    assert torch.allclose(mixture.prob(x), summed, rtol=1e-13, atol=0)
    by_hand = sum(w * torch.tensor(stats.multivariate_normal(m, c).pdf(x.numpy())) for w, m, c in
                  zip(mixture.weights, mixture.means.numpy(), mixture.covariances.numpy()))
    assert torch.allclose(mixture.prob(x), by_hand.reshape(-1), rtol=1e-11)


def test_the_marginal_and_each_conditional_integrate_to_one():
    x = np.linspace(-12.0, 14.0, 20_001)  # spacing 1.3e-3, far finer than the narrowest sd 0.45
    assert integrate(ONE_D.prob(x).numpy(), x) == pytest.approx(1.0, abs=1e-10)
    for column in ONE_D.conditional(x).T:
        assert integrate(column.numpy(), x) == pytest.approx(1.0, abs=1e-10)
    assert integrate(ONE_D.joint(x).numpy().sum(1), x) == pytest.approx(1.0, abs=1e-10)
    # the area under each Pr(x, z = k) is the prior λ_k
    np.testing.assert_allclose([integrate(c.numpy(), x) for c in ONE_D.joint(x).T], [0.25, 0.45, 0.30], atol=1e-10)
    gx, gy = np.linspace(-9, 10, 381), np.linspace(-9, 9, 361)
    xx, yy = np.meshgrid(gx, gy)  # rows index y
    grid = TWO_D.prob(np.stack([xx.ravel(), yy.ravel()], 1)).numpy().reshape(xx.shape)
    assert integrate_2d(grid, gx, gy) == pytest.approx(1.0, abs=1e-8)


def test_posterior_is_bayes_rule_and_rows_sum_to_one():
    x, _ = TWO_D.sample(100, generator=2)
    post = TWO_D.posterior(x)
    assert torch.allclose(post.sum(1), torch.ones(100, dtype=torch.float64), atol=1e-14)
    assert torch.allclose(post, TWO_D.joint(x) / TWO_D.prob(x)[:, None], rtol=1e-12)
    r, ll = e_step(TWO_D, x)
    assert torch.allclose(r, post, atol=1e-15) and ll == pytest.approx(TWO_D.log_likelihood(x), abs=1e-14)


def test_far_points_neither_underflow_nor_overflow():
    x = np.array([1e3, -1e3, 40.0])
    logs = np.stack([stats.norm(m, np.sqrt(v)).logpdf(x) + np.log(w)
                     for w, m, v in zip([0.25, 0.45, 0.30], [-2.0, 0.5, 3.0], [0.3, 0.8, 0.2])], 1)
    assert np.exp(logs).sum(1).max() == 0.0  # the densities themselves underflow to zero
    lp = ONE_D.log_prob(x)
    assert torch.isfinite(lp).all()
    np.testing.assert_allclose(lp.numpy(), special.logsumexp(logs, axis=1), rtol=1e-12)
    post = ONE_D.posterior(x)
    assert torch.isfinite(post).all() and torch.allclose(post.sum(1), torch.ones(3, dtype=torch.float64))


def test_cdf_is_the_integral_of_the_density():
    x = np.linspace(-10.0, 10.0, 40_001)
    running = np.concatenate([[0.0], np.cumsum((ONE_D.prob(x).numpy()[1:] + ONE_D.prob(x).numpy()[:-1]) / 2)
                              * (x[1] - x[0])])
    np.testing.assert_allclose(ONE_D.cdf(x).numpy(), running, atol=1e-8)
    with pytest.raises(ValueError, match="D = 2"):
        TWO_D.cdf(torch.zeros(3, 2))


# ---------------------------------------------------------------------------------------------- sampling
def test_sampling_draws_z_from_the_prior_then_x_from_its_component():
    x, z = TWO_D.sample(40_000, generator=3)
    assert x.shape == (40_000, 2) and x.dtype == torch.float64 and z.dtype == torch.int64
    share = torch.bincount(z, minlength=3).double() / len(z)
    se = (TWO_D.weights * (1 - TWO_D.weights) / len(z)).sqrt()
    assert ((share - TWO_D.weights).abs() < 5 * se).all()
    for k in range(3):
        xk = x[z == k].numpy()
        np.testing.assert_allclose(xk.mean(0), TWO_D.means[k].numpy(), atol=0.05)
        np.testing.assert_allclose(np.cov(xk.T), TWO_D.covariances[k].numpy(), atol=0.06)
    x1, _ = ONE_D.sample(5000, generator=4)
    assert stats.kstest(x1[:, 0].numpy(), lambda t: ONE_D.cdf(t).numpy()).pvalue > 1e-3


def test_sampling_is_seeded():
    a, b = ONE_D.sample(10, generator=7), ONE_D.sample(10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], ONE_D.sample(10, generator=8)[0])


# ---------------------------------------------------------------------------------------------- EM
@pytest.mark.parametrize("k, d, n, steps", [(3, 1, 400, 40), (2, 1, 50, 5), (4, 3, 600, 25), (3, 2, 300, 1)])
def test_em_equals_scikit_learn_from_the_same_start(k, d, n, steps):
    truth = _random_mixture(k, d, seed=10 * k + d)
    x, _ = truth.sample(n, generator=k + d)
    start = initial_mixture(x, k, generator=5)
    fit = fit_em(x, start, steps=steps)
    gm = _sklearn(x.numpy(), start, steps)
    assert gm.n_iter_ == steps == fit.steps and not fit.converged
    # the log-likelihood of every point under both fits, and the mean: to 1e-6 (measured: ~1e-14)
    assert np.abs(gm.score_samples(x.numpy()) - fit.mixture.log_prob(x).numpy()).max() < 1e-6
    assert abs(gm.score(x.numpy()) - fit.log_likelihoods[-1]) < 1e-6
    # scikit-learn's lower_bound_ is the mean log-likelihood before its last M-step
    assert abs(gm.lower_bound_ - fit.log_likelihoods[-2]) < 1e-6
    np.testing.assert_allclose(fit.mixture.weights.numpy(), gm.weights_, atol=1e-9)
    np.testing.assert_allclose(fit.mixture.means.numpy(), gm.means_, atol=1e-8)
    np.testing.assert_allclose(fit.mixture.covariances.numpy(), gm.covariances_, atol=1e-8)


def test_the_comparison_with_scikit_learn_catches_a_wrong_m_step():
    """The 1e-6 agreement can fail: the same EM with the ridge doubled, or with one step less, misses by far more."""
    x, _ = ONE_D.sample(400, generator=16)
    start = initial_mixture(x, 3, generator=0)
    theirs = _sklearn(x.numpy(), start, 30).score_samples(x.numpy())
    for fit in (fit_em(x, start, steps=30, reg_covar=2e-6), fit_em(x, start, steps=29)):
        assert np.abs(theirs - fit.mixture.log_prob(x).numpy()).max() > 1e-5


def test_em_equals_scikit_learn_without_the_ridge():
    x, _ = ONE_D.sample(300, generator=11)
    start = initial_mixture(x, 3, generator=0)
    fit = fit_em(x, start, steps=20, reg_covar=0.0)
    assert abs(_sklearn(x.numpy(), start, 20, reg_covar=0.0).score(x.numpy()) - fit.log_likelihoods[-1]) < 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_em_never_lowers_the_log_likelihood(seed):
    truth = _random_mixture(3, 2, seed=seed)
    x, _ = truth.sample(250, generator=seed)
    fit = fit_em(x, initial_mixture(x, 4, generator=seed), steps=60)  # one component more than the truth
    assert len(fit.log_likelihoods) == 61
    assert np.diff(fit.log_likelihoods).min() >= -1e-10
    assert fit.log_likelihoods[-1] > fit.log_likelihoods[0]


def test_em_recovers_the_components():
    x, _ = ONE_D.sample(20_000, generator=12)
    fit = fit_em(x, MixtureOfGaussians([1 / 3] * 3, [-3.0, 0.0, 4.0], [1.0, 1.0, 1.0]), steps=300, tol=1e-10)
    assert fit.converged and fit.steps < 300
    np.testing.assert_allclose(fit.mixture.weights.numpy(), [0.25, 0.45, 0.30], atol=0.015)
    np.testing.assert_allclose(fit.mixture.means[:, 0].numpy(), [-2.0, 0.5, 3.0], atol=0.04)
    # the components overlap, so the variances are less certain than with known z (measured: 0.29, 0.87, 0.19)
    np.testing.assert_allclose(fit.mixture.covariances[:, 0, 0].numpy(), [0.3, 0.8, 0.2], atol=0.1)
    # maximum likelihood: at least as likely as the truth on its own training data
    assert fit.log_likelihoods[-1] >= ONE_D.log_likelihood(x)


def test_m_step_with_hard_assignments_is_the_per_group_mean_and_covariance():
    x, z = TWO_D.sample(500, generator=13)
    r = torch.nn.functional.one_hot(z, 3).double()
    g = m_step(x, r, reg_covar=0.0)
    for k in range(3):
        xk = x[z == k].numpy()
        assert g.weights[k].item() == pytest.approx(len(xk) / 500, abs=1e-12)
        np.testing.assert_allclose(g.means[k].numpy(), xk.mean(0), atol=1e-12)
        np.testing.assert_allclose(g.covariances[k].numpy(), np.cov(xk.T, bias=True), atol=1e-12)
    g1 = m_step(x, r, reg_covar=0.5)
    assert torch.allclose(g1.covariances - g.covariances, 0.5 * torch.eye(2, dtype=torch.float64).expand(3, 2, 2))


def test_one_component_fits_in_one_step():
    x, _ = TWO_D.sample(300, generator=14)
    fit = fit_em(x, initial_mixture(x, 1, generator=0), steps=3, reg_covar=0.0)
    np.testing.assert_allclose(fit.mixture.means[0].numpy(), x.mean(0).numpy(), atol=1e-12)
    np.testing.assert_allclose(fit.mixture.covariances[0].numpy(), np.cov(x.numpy().T, bias=True), atol=1e-12)
    assert fit.log_likelihoods[1] == pytest.approx(fit.log_likelihoods[3], abs=1e-12)


def test_tol_stops_early():
    x, _ = ONE_D.sample(500, generator=15)
    fit = fit_em(x, initial_mixture(x, 3, generator=0), steps=500, tol=1e-3)
    assert isinstance(fit, EMFit) and fit.converged and fit.steps < 500
    assert fit.log_likelihoods[-1] - fit.log_likelihoods[-2] < 1e-3 <= fit.log_likelihoods[-2] - fit.log_likelihoods[-3]


def test_initial_mixture_uses_distinct_data_points():
    x = torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    start = initial_mixture(x, 3, generator=0)
    assert sorted(start.means[:, 0].tolist()) == [0.0, 1.0, 2.0]
    assert torch.allclose(start.weights, torch.full((3,), 1 / 3, dtype=torch.float64))
    assert start.covariances[0, 0, 0].item() == pytest.approx(np.var(x.numpy(), ddof=1) + 1e-6)
    with pytest.raises(ValueError, match="'n_components' parameter of initial_mixture must be at most the number "
                                         "of distinct points \\(3\\)"):
        initial_mixture(x, 4, generator=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(weights=[0.5, 0.6], means=[0.0, 1.0], covariances=[1.0, 1.0]), "'weights'.*summing to one"),
    (dict(weights=[1.2, -0.2], means=[0.0, 1.0], covariances=[1.0, 1.0]), "'weights'.*positive"),
    (dict(weights=[0.5, 0.5], means=[0.0, 1.0, 2.0], covariances=[1.0, 1.0]), "'means'.*shape \\(2, D\\)"),
    (dict(weights=[0.5, 0.5], means=[0.0, 1.0], covariances=[1.0, 0.0]), "'covariances'.*positive definite"),
    (dict(weights=[1.0], means=[[0.0, 0.0]], covariances=[[[1.0, 0.5], [0.4, 1.0]]]), "'covariances'.*symmetric"),
    (dict(weights=[1.0], means=[[0.0, 0.0]], covariances=[1.0]), "'covariances'.*shape \\(1, 2, 2\\)"),
    (dict(weights=[1.0], means=[float("nan")], covariances=[1.0]), "'means'.*finite"),
])
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixtureOfGaussians(**kwargs)


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match="'x' parameter of MixtureOfGaussians.log_joint must be an \\(I, 2\\) array"):
        TWO_D.log_joint(torch.zeros(3))
    with pytest.raises(ValueError, match="'responsibilities' parameter of m_step must have one row per point"):
        m_step(torch.zeros(3), torch.ones(4, 1))
    with pytest.raises(TypeError, match="'initial' parameter of fit_em must be a MixtureOfGaussians"):
        fit_em(torch.zeros(3), "start")


def test_docstring_examples():
    assert doctest.testmod(mixture).failed == 0
