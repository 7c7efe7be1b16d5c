"""udl.models.vae: the KL term, the likelihoods, the bound and its importance-sampled estimate.

The common model tests (seeding, gradients, meta build, state_dict, bad arguments) are in
tests/models/test_zoo.py. Here: the closed-form KL equals torch's and a Monte Carlo
estimate; the binomial and normal log-likelihoods equal torch.distributions'; and on a
linear-Gaussian VAE (probabilistic PCA), whose log Pr(x) and posterior are known in closed
form, the ELBO is exact when q is the true posterior, equals log Pr(x) − KL[q ‖ posterior]
otherwise, and the importance-sampled estimate rises with K towards log Pr(x).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch.distributions import Binomial, MultivariateNormal, Normal, kl_divergence

from udl.models.vae import VAE, VAEConfig, gaussian_kl, monte_carlo_kl

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- the KL term
def test_gaussian_kl_equals_torch_distributions():
    mu = torch.randn(6, 3, generator=_g(0), dtype=torch.float64)
    log_var = torch.randn(6, 3, generator=_g(1), dtype=torch.float64)
    q = Normal(mu, (0.5 * log_var).exp())
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl(mu, log_var), expected, rtol=0, atol=1e-12)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))  # q = prior


def test_the_closed_form_kl_equals_a_monte_carlo_estimate():
    mu = torch.tensor([[0.0, 0.0], [1.5, -0.5], [0.3, 2.0]], dtype=torch.float64)
    log_var = torch.tensor([[0.0, 0.0], [-1.0, 0.5], [-3.0, 1.0]], dtype=torch.float64)
    estimate, se = monte_carlo_kl(mu, log_var, 200_000, generator=0)
    exact = gaussian_kl(mu, log_var)
    assert float((estimate[0] - exact[0]).abs()) < 1e-12  # q = prior: every term is zero
    assert torch.all((estimate - exact).abs()[1:] < 4 * se[1:]), (estimate, exact, se)
    assert torch.all(se[1:] < 0.01)  # and 4 SE is a tight test


def test_the_model_kl_is_the_closed_form_of_its_encoder():
    model = VAE("tiny", generator=0)
    x = torch.rand(5, 8, generator=_g(1))
    mu, log_var = model.encode(x)
    estimate, se = monte_carlo_kl(mu.detach().double(), log_var.detach().double(), 100_000, generator=2)
    kl = model.kl(mu, log_var).detach().double()
    assert torch.all((estimate - kl).abs() < 4 * se + 1e-6)


# --------------------------------------------------------------------------- likelihoods
def test_the_binomial_likelihood_equals_torch_binomial_on_grey_levels():
    model = VAE(VAEConfig.tiny(n_trials=16), generator=0).double()
    k = torch.randint(0, 17, (5, 8), generator=_g(1)).double()
    logits = torch.randn(5, 8, generator=_g(2), dtype=torch.float64) * 3
    expected = Binomial(16, logits=logits).log_prob(k).sum(-1)
    assert torch.allclose(model.log_likelihood(k / 16, logits), expected, rtol=0, atol=1e-10)
    # n = 1 is the Bernoulli likelihood (the binary cross-entropy with logits)
    bernoulli = VAE(VAEConfig.tiny(n_trials=1), generator=0).double()
    b = (k > 8).double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, b, reduction="none").sum(-1)
    assert torch.allclose(bernoulli.log_likelihood(b, logits), -bce, rtol=0, atol=1e-10)


def test_the_binomial_likelihood_sums_to_one_over_the_grey_levels():
    model = VAE(VAEConfig.tiny(d_in=1, n_trials=16), generator=0).double()
    levels = torch.arange(17, dtype=torch.float64)[:, None] / 16  # (17, 1): every grey level of one pixel
    for logit in (-4.0, 0.0, 1.3):
        total = model.log_likelihood(levels, torch.full((17, 1), logit, dtype=torch.float64)).exp().sum()
        assert abs(float(total) - 1) < 1e-12


def test_the_normal_likelihood_equals_torch_normal():
    model = VAE(VAEConfig.tiny(likelihood="normal", sigma=0.3), generator=0).double()
    x = torch.rand(4, 8, generator=_g(1), dtype=torch.float64)
    mean = torch.randn(4, 8, generator=_g(2), dtype=torch.float64)
    expected = Normal(mean, 0.3).log_prob(x).sum(-1)
    assert torch.allclose(model.log_likelihood(x, mean), expected, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- the bound, exactly
def _linear_gaussian(sigma=0.5, d_in=4, d_latent=2):
    """A VAE with linear encoder and decoder and normal likelihood (probabilistic PCA), float64; and Ω, β.

    The decoder's columns are orthogonal, so the true posterior's covariance
    (I + ΩᵀΩ/σ²)⁻¹ is diagonal and the encoder can represent it exactly.
    """
    model = VAE(VAEConfig(d_in=d_in, hidden=(), d_latent=d_latent, likelihood="normal", sigma=sigma),
                generator=0).double()
    q, _ = torch.linalg.qr(torch.randn(d_in, d_latent, generator=_g(3), dtype=torch.float64))
    omega = q * torch.tensor([1.5, 0.7], dtype=torch.float64)  # (D, D_z), orthogonal columns
    beta = torch.randn(d_in, generator=_g(4), dtype=torch.float64)
    with torch.no_grad():
        model.decoder[0].weight.copy_(omega)
        model.decoder[0].bias.copy_(beta)
    return model, omega, beta


def _exact(omega, beta, sigma, x):
    """log Pr(x) = log Norm_x[β, ΩΩᵀ + σ²I], and the posterior Norm_z[m, S] of each row."""
    d = len(beta)
    log_px = MultivariateNormal(beta, omega @ omega.T + sigma ** 2 * torch.eye(d, dtype=x.dtype)).log_prob(x)
    S = torch.linalg.inv(torch.eye(omega.shape[1], dtype=x.dtype) + omega.T @ omega / sigma ** 2)  # (D_z, D_z)
    m = (x - beta) @ omega @ S / sigma ** 2  # (N, D_z)  (S symmetric)
    return log_px, m, S


def _set_encoder(model, weight, bias):
    with torch.no_grad():
        model.encoder[0].weight.copy_(weight)
        model.encoder[0].bias.copy_(bias)


def _expected_elbo(model, omega, beta, sigma, x):
    """E_q[log Pr(x | z)] − KL in closed form for the linear-Gaussian VAE:
    E‖x − Ωz − β‖² = ‖x − Ωμ − β‖² + Σ_d σ_d² ‖Ω_{:, d}‖²."""
    mu, log_var = model.encode(x)
    squared = ((x - mu @ omega.T - beta) ** 2).sum(-1) + (log_var.exp() * (omega ** 2).sum(0)).sum(-1)
    reconstruction = -0.5 * (squared / sigma ** 2 + len(beta) * math.log(2 * math.pi * sigma ** 2))
    return reconstruction - gaussian_kl(mu, log_var)


def test_with_the_true_posterior_as_q_the_elbo_and_the_estimate_equal_log_pr_x():
    sigma = 0.5
    model, omega, beta = _linear_gaussian(sigma)
    x = torch.randn(6, 4, generator=_g(5), dtype=torch.float64)
    log_px, _, S = _exact(omega, beta, sigma, x)
    assert torch.allclose(S, torch.diag(torch.diagonal(S)), atol=1e-12)
    A = S @ omega.T / sigma ** 2  # m = A (x − β)
    weight = torch.cat([A, torch.zeros(2, 4, dtype=torch.float64)])
    bias = torch.cat([-A @ beta, torch.diagonal(S).log()])
    _set_encoder(model, weight, bias)
    with torch.no_grad():
        exact_elbo = _expected_elbo(model, omega, beta, sigma, x)
        samples = torch.stack([model.elbo(x, generator=s, n_samples=2000) for s in range(10)])  # (10, N)
        # with q the posterior, log Pr(x, z) − log q(z | x) = log Pr(x) for every z: one sample is exact
        estimate = model.importance_log_likelihood(x, 1, generator=1)
    assert torch.allclose(exact_elbo, log_px, rtol=0, atol=1e-10)  # the bound is tight
    se = samples.std(0) / math.sqrt(10)
    assert torch.all((samples.mean(0) - log_px).abs() < 4 * se + 1e-6), (samples.mean(0), log_px, se)
    assert torch.allclose(estimate, log_px, rtol=0, atol=1e-10)


def test_the_elbo_is_log_pr_x_minus_the_kl_to_the_posterior_and_the_estimate_closes_the_gap():
    sigma = 0.5
    model, omega, beta = _linear_gaussian(sigma)
    x = torch.randn(3, 4, generator=_g(7), dtype=torch.float64)
    log_px, m, S = _exact(omega, beta, sigma, x)
    # some q, not the posterior: its mean shifted and its variances too wide (a proposal wider than the
    # target keeps the importance weights bounded)
    A = S @ omega.T / sigma ** 2  # the posterior mean is A (x − β)
    weight = torch.cat([A, torch.zeros(2, 4, dtype=torch.float64)])
    _set_encoder(model, weight, torch.cat([-A @ beta + torch.tensor([0.4, -0.3], dtype=torch.float64),
                                           torch.tensor([-1.0, 0.4], dtype=torch.float64)]))
    with torch.no_grad():
        mu, log_var = model.encode(x)
        q = MultivariateNormal(mu, torch.diag_embed(log_var.exp()))
        gap = kl_divergence(q, MultivariateNormal(m, S))  # (N,): ELBO = log Pr(x) − KL[q ‖ Pr(z | x)]
        exact_elbo = _expected_elbo(model, omega, beta, sigma, x)
        samples = torch.stack([model.elbo(x, generator=s, n_samples=4000) for s in range(10)])  # (10, N)
        elbo, se = samples.mean(0), samples.std(0) / math.sqrt(10)
        estimates = {k: torch.stack([model.importance_log_likelihood(x, k, generator=s) for s in range(20)]).mean(0)
                     for k in (1, 10, 1000)}
        many = model.importance_log_likelihood(x, 200_000, generator=99, chunk=20_000)
    assert torch.all(gap > 0.3)  # a real gap to close
    assert torch.allclose(exact_elbo, log_px - gap, rtol=0, atol=1e-10)
    assert torch.all((elbo - exact_elbo).abs() < 4 * se), (elbo, exact_elbo, se)  # the sampled bound
    assert torch.all(elbo < log_px)
    # the estimate rises with K (in expectation) and reaches log Pr(x)
    assert torch.all(estimates[1] < estimates[10]) and torch.all(estimates[10] < estimates[1000])
    assert torch.all(estimates[1000] <= log_px + 0.02)
    assert torch.all((many - log_px).abs() < 0.005), (many, log_px)


# --------------------------------------------------------------------------- reparameterisation, sampling
def test_reparameterised_samples_have_the_moments_of_q_and_carry_gradients():
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    log_var = torch.tensor([[0.0, -2.0]], requires_grad=True)
    z = VAE.reparameterise(mu, log_var, generator=0, n_samples=100_000)  # (K, 1, 2)
    assert z.shape == (100_000, 1, 2)
    assert torch.allclose(z.mean(0), mu.detach(), atol=0.02)
    assert torch.allclose(z.var(0), log_var.detach().exp(), rtol=0.02)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.full((1, 2), 100_000.0))  # ∂z/∂μ = 1 for every sample
    eps = (z.detach() - mu.detach()) / (0.5 * log_var.detach()).exp()
    assert torch.allclose(log_var.grad, (0.5 * (0.5 * log_var.detach()).exp() * eps).sum(0), rtol=1e-4)


def test_samples_are_seeded_images():
    model = VAE("tiny", generator=0)
    a, b = model.sample(20, generator=1), model.sample(20, generator=1)
    assert a.shape == (20, 8) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(20, generator=2))
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    noisy = model.sample(20, generator=1, noise=True)
    assert torch.equal(noisy * 16, torch.round(noisy * 16))  # counts of 16 trials
    # the binomial noise has the decoder's mean: E[x | z] = p
    many = model.sample(20_000, generator=3, noise=True).mean(0)
    assert torch.allclose(many, model.sample(20_000, generator=3).mean(0), atol=0.01)


def test_interpolation_runs_between_the_two_reconstructions():
    model = VAE("tiny", generator=0)
    x = torch.rand(2, 8, generator=_g(1))
    path = model.interpolate(x[0], x[1], n_steps=5)
    assert path.shape == (5, 8)
    with torch.no_grad():
        ends = model(x)
    assert torch.allclose(path[0], ends[0], atol=1e-6) and torch.allclose(path[-1], ends[1], atol=1e-6)


def test_the_parameter_count_is_the_closed_form():
    for config in (VAEConfig.digits(), VAEConfig.tiny(), VAEConfig(hidden=(), d_latent=3)):
        model = VAE(config, generator=0)
        assert sum(p.numel() for p in model.parameters()) == config.parameter_count()
    assert VAEConfig.digits().parameter_count() == (65 * 256 + 257 * 128 + 129 * 16) + (9 * 128 + 129 * 256 + 257 * 64)


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("call, name, owner", [
    (lambda: VAEConfig(likelihood="poisson"), "likelihood", "VAEConfig"),
    (lambda: VAEConfig(n_trials=0), "n_trials", "VAEConfig"),
    (lambda: VAEConfig(sigma=0.0), "sigma", "VAEConfig"),
    (lambda: VAEConfig(hidden=(4, 0)), "hidden", "VAEConfig"),
    (lambda: VAEConfig(hidden=8), "hidden", "VAEConfig"),
    (lambda: VAEConfig(d_latent=1.5), "d_latent", "VAEConfig"),
    (lambda: VAE("huge"), "config", "VAE"),
    (lambda: VAE(3), "config", "VAE"),
    (lambda: VAE("tiny").elbo(torch.zeros(2, 7)), "x", "VAE.elbo"),
    (lambda: VAE("tiny").elbo(torch.zeros(2, 8), n_samples=0), "n_samples", "VAE.elbo"),
    (lambda: VAE("tiny").elbo(torch.zeros(2, 8, dtype=torch.float64)), "x", "VAE.elbo"),
    (lambda: VAE("tiny").decode(torch.zeros(2, 3)), "z", "VAE.decode"),
    (lambda: VAE("tiny").importance_log_likelihood(torch.zeros(2, 8), 0), "n_samples",
     "VAE.importance_log_likelihood"),
    (lambda: VAE("tiny").sample(0), "n", "VAE.sample"),
    (lambda: VAE("tiny").sample(2, generator="a"), "generator", "VAE.sample"),
    (lambda: VAE("tiny").interpolate(torch.zeros(8), torch.zeros(8), n_steps=1), "n_steps", "VAE.interpolate"),
    (lambda: VAE("tiny").interpolate(torch.zeros(8), torch.zeros(7)), "x_b", "VAE.interpolate"),
    (lambda: gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 2)), "log_var", "gaussian_kl"),
    (lambda: monte_carlo_kl(torch.zeros(2, 3), torch.zeros(2, 3), 1), "n_samples", "monte_carlo_kl"),
])
def test_bad_arguments_get_one_line(call, name, owner):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert re.fullmatch(TEMPLATE.format(name, re.escape(owner)), str(info.value)), str(info.value)
