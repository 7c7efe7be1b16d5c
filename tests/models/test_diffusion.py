"""udl.models.diffusion against diffusers' DDPMScheduler / DDIMScheduler and against closed forms.

diffusers numbers its steps k = 0 … T - 1; udl (the book) t = k + 1. diffusers builds its
schedules in float32: they are compared as built (1e-6); for the steps, its scheduler's
tensors are replaced by udl's float64 ones so that the algebra is compared in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from udl.models.diffusion import Diffusion, ddim_timesteps

diffusers = pytest.importorskip("diffusers")

T = 1000
LINEAR = dict(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, clip_sample=False)
COSINE = dict(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=False)


def _float64(scheduler, process: Diffusion):
    """diffusers' scheduler with udl's float64 schedule in place of its float32 one."""
    scheduler.betas = process.beta[1:].clone()
    scheduler.alphas = process.alpha[1:].clone()
    scheduler.alphas_cumprod = process.alpha_bar[1:].clone()
    scheduler.one = torch.tensor(1.0, dtype=torch.float64)
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


class Toy(nn.Module):
    """A fixed smooth 'denoiser' depending on z and t (float64), to feed both implementations."""

    def forward(self, z, t, c=None):
        shift = 0.0 if c is None else 0.1 * c.to(z.dtype).view(-1, *([1] * (z.dim() - 1)))
        return 0.5 * torch.tanh(z) + 0.2 * torch.cos(t.to(z.dtype) / 97).view(-1, *([1] * (z.dim() - 1))) + shift


class GaussianOracle(nn.Module):
    """The exact noise predictor E[ε | z_t] for data x ~ N(mu, s²) (so the samplers' output law is known)."""

    def __init__(self, process: Diffusion, mu: float, s: float):
        super().__init__()
        self.process, self.mu, self.s = process, mu, s

    def forward(self, z, t):
        a = self.process.alpha_bar[t.cpu()].to(z.dtype).view(-1, *([1] * (z.dim() - 1)))
        # z_t ~ N(√ᾱ mu, ᾱ s² + 1 - ᾱ), cov(z_t, ε) = √(1 - ᾱ)
        return torch.sqrt(1 - a) * (z - torch.sqrt(a) * self.mu) / (a * self.s ** 2 + 1 - a)


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("process, config", [(Diffusion.linear(T), LINEAR), (Diffusion.cosine(T), COSINE)],
                         ids=["linear", "cosine"])
def test_schedules_equal_diffusers(process, config):
    scheduler = diffusers.DDPMScheduler(**config)
    assert process.T == T and process.beta.dtype == torch.float64
    assert torch.allclose(process.beta[1:], scheduler.betas.double(), rtol=0, atol=1e-6)
    assert torch.allclose(process.alpha[1:], scheduler.alphas.double(), rtol=0, atol=1e-6)
    assert torch.allclose(process.alpha_bar[1:], scheduler.alphas_cumprod.double(), rtol=0, atol=1e-6)
    assert process.beta[0] == 0 and process.alpha_bar[0] == 1  # t = 0 is the data
    assert torch.allclose(process.alpha_bar, torch.cumprod(1 - process.beta, 0), rtol=1e-15)


def test_the_schedules_shapes():
    linear, cosine = Diffusion.linear(T), Diffusion.cosine(T)
    assert math.isclose(float(linear.beta[1]), 1e-4) and math.isclose(float(linear.beta[T]), 0.02)
    assert torch.all(torch.diff(linear.alpha_bar) < 0) and torch.all(torch.diff(cosine.alpha_bar) < 0)
    assert float(linear.alpha_bar[T]) < 1e-4 and float(cosine.alpha_bar[T]) < 1e-6  # nearly pure noise at T
    # the cosine schedule destroys information more slowly: at T/2 it keeps more of x
    assert float(cosine.alpha_bar[T // 2]) > 3 * float(linear.alpha_bar[T // 2])
    # the closed-form cosine ᾱ (before the β cap matters) is cos²(π/2 (t/T + s)/(1 + s)) / f(0)
    t = 300
    f = lambda u: math.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert math.isclose(float(cosine.alpha_bar[t]), f(t) / f(0), rel_tol=1e-12)


# --------------------------------------------------------------------------- forward process
def test_running_the_chain_equals_the_closed_form_with_the_same_noise():
    process = Diffusion.cosine(50)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64, generator=g)
    eps = torch.randn(50, 7, 3, dtype=torch.float64, generator=g)
    z = x
    for t in range(1, 51):
        z = process.forward_step(z, t, noise=eps[t - 1])
        # z_t = √ᾱ_t x + Σ_s √β_s Π_{s<r≤t} √α_r ε_s; the noise terms add up to √(1 - ᾱ_t) ε
        weights = torch.stack([torch.sqrt(process.beta[s] * torch.prod(process.alpha[s + 1:t + 1]))
                               for s in range(1, t + 1)])
        assert torch.isclose(torch.sum(weights ** 2), 1 - process.alpha_bar[t], rtol=1e-12)
        combined = torch.einsum("s,sbd->bd", weights, eps[:t]) / torch.sqrt(1 - process.alpha_bar[t])
        assert torch.allclose(z, process.diffuse(x, t, noise=combined), rtol=0, atol=1e-12)


@pytest.mark.parametrize("t", [1, 10, 100, 1000])
def test_the_chain_and_the_kernel_agree_in_distribution(t):
    process, n = Diffusion.linear(T), 20_000
    x = torch.full((n, 1), 1.5, dtype=torch.float64)
    chain = process.forward_chain(x, t_max=t, generator=0)
    assert chain.shape == (t + 1, n, 1) and torch.equal(chain[0], x)
    m, v = process.diffusion_kernel(t)
    for z in (chain[-1], process.diffuse(x, t, generator=1)):
        # mean within 4 standard errors, variance within 4 of its standard errors (normal: √(2/n) v)
        assert abs(z.mean().item() - m * 1.5) < 4 * math.sqrt(v / n)
        assert abs(z.var().item() - v) < 4 * math.sqrt(2 / n) * v


def test_the_kernel_reaches_the_standard_normal():
    process = Diffusion.linear(T)
    z = process.diffuse(torch.full((20_000, 1), 3.0, dtype=torch.float64), T, generator=0)
    from scipy import stats

    assert stats.kstest(z.squeeze().numpy(), "norm").pvalue > 0.01


def test_diffuse_equals_diffusers_add_noise():
    process = Diffusion.cosine(T)
    scheduler = _float64(diffusers.DDPMScheduler(**COSINE), process)
    g = torch.Generator().manual_seed(3)
    x, noise = torch.randn(5, 1, 8, 8, dtype=torch.float64, generator=g), torch.randn(5, 1, 8, 8, generator=g).double()
    k = torch.tensor([0, 10, 500, 998, 999])
    want = scheduler.add_noise(x, noise, k)
    assert torch.allclose(process.diffuse(x, k + 1, noise=noise), want, rtol=0, atol=1e-12)
    assert torch.equal(process.diffuse(x, 0, noise=noise), x)


# --------------------------------------------------------------------------- posterior
@pytest.mark.parametrize("t", [2, 3, 50, 999, 1000])
def test_the_posterior_is_the_gaussian_conditional(t):
    """q(z_{t-1} | z_t, x) from conditioning the joint normal of (z_{t-1}, z_t) given x."""
    process = Diffusion.linear(T)
    ab_prev, alpha = float(process.alpha_bar[t - 1]), float(process.alpha[t])
    var_prev = 1 - ab_prev                       # Var[z_{t-1} | x]
    cov = math.sqrt(alpha) * var_prev            # Cov[z_{t-1}, z_t | x]
    var_t = alpha * var_prev + (1 - alpha)       # Var[z_t | x] = 1 - ᾱ_t
    a, b, v = process.posterior(t)
    # E[z_{t-1} | z_t, x] = √ᾱ_{t-1} x + cov / var_t (z_t - √ᾱ_t x)
    assert math.isclose(a, cov / var_t, rel_tol=1e-12)
    assert math.isclose(b, math.sqrt(ab_prev) - cov / var_t * math.sqrt(float(process.alpha_bar[t])), rel_tol=1e-9)
    assert math.isclose(v, var_prev - cov ** 2 / var_t, rel_tol=1e-9)
    assert process.posterior(1)[::2] == (0.0, 0.0) and math.isclose(process.posterior(1)[1], 1.0)  # z_0 is x


@pytest.mark.parametrize("k", [1, 10, 500, 999])
def test_posterior_mean_and_variance_equal_diffusers(k):
    process = Diffusion.linear(T)
    scheduler = _float64(diffusers.DDPMScheduler(**LINEAR), process)
    g = torch.Generator().manual_seed(k)
    z, x = torch.randn(4, 3, dtype=torch.float64, generator=g), torch.randn(4, 3, dtype=torch.float64, generator=g)
    # diffusers' (DDPM eq. 7) posterior mean coefficients, its variance
    ab, ab_prev = scheduler.alphas_cumprod[k], scheduler.alphas_cumprod[k - 1]
    want = (ab_prev ** 0.5 * scheduler.betas[k] / (1 - ab)) * x \
        + (scheduler.alphas[k] ** 0.5 * (1 - ab_prev) / (1 - ab)) * z
    assert torch.allclose(process.posterior_mean(z, x, k + 1), want, rtol=0, atol=1e-12)
    assert math.isclose(process.posterior(k + 1)[2], float(scheduler._get_variance(k)), rel_tol=1e-10)


# --------------------------------------------------------------------------- one step of each sampler
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("variance, variance_type", [("posterior", "fixed_small"), ("beta", "fixed_large")])
@pytest.mark.parametrize("k", [0, 1, 37, 999])
def test_one_ddpm_step_equals_diffusers(schedule, variance, variance_type, k):
    process = getattr(Diffusion, schedule)(T)
    config = LINEAR if schedule == "linear" else COSINE
    scheduler = _float64(diffusers.DDPMScheduler(**config, variance_type=variance_type), process)
    g = torch.Generator().manual_seed(k)
    z, eps = torch.randn(3, 1, 4, 4, dtype=torch.float64, generator=g), torch.randn(3, 1, 4, 4, generator=g).double()
    want = scheduler.step(eps, k, z, generator=torch.Generator().manual_seed(9)).prev_sample
    got = process.ddpm_step(eps, z, k + 1, variance=variance, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(got, want, rtol=0, atol=1e-10)
    # the same step as the posterior mean at the implied x, plus σ_t times the noise
    noise = torch.randn(z.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    sigma2 = process.posterior(k + 1)[2] if variance == "posterior" else float(process.beta[k + 1])
    mean = process.posterior_mean(z, process.predict_x(z, eps, k + 1), k + 1)
    assert torch.allclose(got, mean + (k > 0) * math.sqrt(sigma2) * noise, rtol=0, atol=1e-9)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("k", [0, 19, 499, 999])
def test_one_ddim_step_equals_diffusers(eta, k):
    process = Diffusion.linear(T)
    scheduler = _float64(diffusers.DDIMScheduler(**LINEAR, set_alpha_to_one=True, timestep_spacing="trailing"),
                         process)
    scheduler.set_timesteps(50)  # a jump of 20 steps
    g = torch.Generator().manual_seed(k)
    z, eps, noise = (torch.randn(2, 1, 4, 4, dtype=torch.float64, generator=g) for _ in range(3))
    want = scheduler.step(eps, k, z, eta=eta, variance_noise=noise if eta > 0 else None).prev_sample
    got = process.ddim_step(eps, z, k + 1, max(k + 1 - 20, 0), eta=eta, noise=noise)
    assert torch.allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [0, 5, 700, 999])
def test_clipped_steps_equal_diffusers_clip_sample(k):
    process = Diffusion.cosine(T)
    ddpm = _float64(diffusers.DDPMScheduler(**{**COSINE, "clip_sample": True, "clip_sample_range": 0.5}), process)
    ddim = _float64(diffusers.DDIMScheduler(**{**COSINE, "clip_sample": True, "clip_sample_range": 0.5},
                                            set_alpha_to_one=True, timestep_spacing="trailing"), process)
    ddim.set_timesteps(50)
    g = torch.Generator().manual_seed(k)
    z, eps, noise = (2 * torch.randn(3, 1, 4, 4, dtype=torch.float64, generator=g) for _ in range(3))
    want = ddpm.step(eps, k, z, generator=torch.Generator().manual_seed(4)).prev_sample
    got = process.ddpm_step(eps, z, k + 1, clip=0.5, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(got, want, rtol=0, atol=1e-10)
    want = ddim.step(eps, k, z, eta=0.3, variance_noise=noise, use_clipped_model_output=True).prev_sample
    got = process.ddim_step(eps, z, k + 1, max(k + 1 - 20, 0), eta=0.3, clip=0.5, noise=noise)
    assert torch.allclose(got, want, rtol=0, atol=1e-10)
    # a bound no estimate reaches changes nothing
    assert torch.allclose(process.ddim_step(eps, z, k + 1, max(k - 19, 0), clip=1e9),
                          process.ddim_step(eps, z, k + 1, max(k - 19, 0)), rtol=0, atol=1e-12)
    assert torch.allclose(process.ddpm_step(eps, z, k + 1, clip=1e9, noise=noise),
                          process.ddpm_step(eps, z, k + 1, noise=noise), rtol=0, atol=1e-9)


def test_a_ddim_step_with_eta_one_and_no_jump_is_a_ddpm_step():
    process = Diffusion.cosine(100)
    g = torch.Generator().manual_seed(0)
    z, eps, noise = (torch.randn(6, 2, dtype=torch.float64, generator=g) for _ in range(3))
    for t in (1, 2, 50, 100):
        assert torch.allclose(process.ddim_step(eps, z, t, t - 1, eta=1.0, noise=noise),
                              process.ddpm_step(eps, z, t, noise=noise), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- whole trajectories
def test_a_whole_ddim_trajectory_equals_diffusers():
    process = Diffusion.linear(T)
    scheduler = _float64(diffusers.DDIMScheduler(**LINEAR, set_alpha_to_one=True, timestep_spacing="trailing"),
                         process)
    scheduler.set_timesteps(50)
    model = Toy()
    got, path, steps = process.sample_ddim(model, (4, 1, 8, 8), n_steps=50, generator=5, trajectory=True,
                                           dtype=torch.float64)
    assert steps == [0] + [int(k) + 1 for k in reversed(scheduler.timesteps)]
    z = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(path[-1], z)
    for k in scheduler.timesteps:
        z = scheduler.step(model(z, torch.full((4,), int(k) + 1)), int(k), z).prev_sample
    assert torch.allclose(got, z, rtol=0, atol=1e-8) and torch.equal(path[0], got)
    assert path.shape == (51, 4, 1, 8, 8)


def test_a_whole_ddpm_trajectory_equals_diffusers():
    process = Diffusion.linear(100, beta_1=1e-3, beta_T=0.1)
    config = dict(num_train_timesteps=100, beta_schedule="linear", beta_start=1e-3, beta_end=0.1, clip_sample=False)
    scheduler = _float64(diffusers.DDPMScheduler(**config), process)
    model = Toy()
    got, path = process.sample_ddpm(model, (6, 2), generator=7, trajectory=True, dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    z = torch.randn((6, 2), generator=g, dtype=torch.float64)
    for k in reversed(range(100)):
        z = scheduler.step(model(z, torch.full((6,), k + 1)), k, z, generator=g).prev_sample
    assert torch.allclose(got, z, rtol=0, atol=1e-8)
    assert path.shape == (101, 6, 2) and torch.equal(path[0], got)


def test_with_the_exact_denoiser_ddpm_draws_the_data_distribution():
    """For x ~ N(mu, s²) E[ε | z_t] is known: ancestral sampling driven by it must return N(mu, s²)."""
    process, mu, s, n = Diffusion.linear(T), 2.0, 0.5, 20_000
    x = process.sample_ddpm(GaussianOracle(process, mu, s), (n, 1), generator=0, dtype=torch.float64)
    # z_T ~ N(0, 1) stands in for q(z_T) = N(√ᾱ_T mu, ...): a bias of at most s √ᾱ_T mu in the mean
    bias = s * math.sqrt(float(process.alpha_bar[T])) * mu
    assert abs(x.mean().item() - mu) < 4 * s / math.sqrt(n) + bias
    assert abs(x.std().item() - s) < 4 * math.sqrt(0.5 / n) * s + 0.005


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_with_the_exact_denoiser_ddim_converges_to_the_ode_map(schedule):
    """For Gaussian data the deterministic sampler's limit maps z_T to mu + s (z_T - √ᾱ_T mu) / √Var[z_T]."""
    process, mu, s, n = getattr(Diffusion, schedule)(T), 2.0, 0.5, 5_000
    oracle, alpha_bar = GaussianOracle(process, mu, s), float(process.alpha_bar[T])
    z_T = torch.randn((n, 1), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = mu + s * (z_T - math.sqrt(alpha_bar) * mu) / math.sqrt(alpha_bar * s ** 2 + 1 - alpha_bar)
    errors = [(process.sample_ddim(oracle, (n, 1), n_steps=k, generator=0, dtype=torch.float64) - exact).abs().max()
              for k in (10, 50, 200, 1000)]
    assert errors[0] > errors[1] > errors[2] > errors[3] and errors[3] < 0.01  # first order in the step size
    assert errors[1] < 0.15
    # deterministic: the same z_T gives the same samples
    assert torch.equal(process.sample_ddim(oracle, (5, 1), n_steps=20, generator=1, dtype=torch.float64),
                       process.sample_ddim(oracle, (5, 1), n_steps=20, generator=1, dtype=torch.float64))


# --------------------------------------------------------------------------- loss and guidance
def test_the_simple_loss_is_the_mean_squared_noise_error():
    process = Diffusion.cosine(T)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, dtype=torch.float64, generator=g)
    t, noise = torch.randint(1, T + 1, (8,), generator=g), torch.randn(8, 3, dtype=torch.float64, generator=g)
    model = Toy()
    z = torch.sqrt(process.alpha_bar[t])[:, None] * x + torch.sqrt(1 - process.alpha_bar[t])[:, None] * noise
    want = ((model(z, t) - noise) ** 2).mean()
    assert torch.allclose(process.loss(model, x, t=t, noise=noise), want, rtol=1e-14)
    # one data point: the exact denoiser (z_t - √ᾱ x) / √(1 - ᾱ) has loss zero
    oracle = GaussianOracle(process, 1.0, 0.0)
    assert process.loss(oracle, torch.ones(64, 1, dtype=torch.float64), generator=1).item() < 1e-20
    # the same generator gives the same loss
    assert process.loss(model, x, generator=3) == process.loss(model, x, generator=3)


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, z, t, c=None):
        self.seen.append(None if c is None else c.clone())
        return torch.zeros_like(z)


def test_label_dropout_replaces_the_asked_share_of_labels_by_the_null_class():
    process, model = Diffusion.linear(10), Recorder()
    c = torch.arange(10).repeat(500)
    process.loss(model, torch.zeros(5000, 2), c, p_uncond=0.2, null_class=10, generator=0)
    dropped = (model.seen[-1] == 10).double().mean().item()
    assert abs(dropped - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 5000)
    kept = model.seen[-1] != 10
    assert torch.equal(model.seen[-1][kept], c[kept])
    process.loss(model, torch.zeros(4, 2), c[:4], generator=0)
    assert torch.equal(model.seen[-1], c[:4])  # p_uncond = 0: untouched
    model.null_class = 10
    process.loss(model, torch.zeros(4, 2), c[:4], p_uncond=1.0, generator=0)
    assert torch.equal(model.seen[-1], torch.full((4,), 10))


def test_classifier_free_guidance_combines_the_two_estimates():
    process, model = Diffusion.linear(T), Toy()
    z, t, c = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), 300, torch.arange(5)
    steps = torch.full((5,), t)
    for w in (0.0, 1.0, 3.5):
        want = (1 + w) * model(z, steps, c) - w * model(z, steps, torch.full((5,), 7))
        got = process.guided_noise(model, z, t, c, guidance=w, null_class=7)
        assert torch.allclose(got, want, rtol=0, atol=1e-14)
    assert torch.equal(process.guided_noise(model, z, t), model(z, steps))


def test_a_guided_conditional_sampler_runs_with_the_models_null_class():
    process, model = Diffusion.linear(20), Toy()
    model.null_class = 3
    x = process.sample_ddim(model, (4, 2), torch.tensor([0, 1, 2, 0]), n_steps=5, guidance=2.0, generator=0,
                            dtype=torch.float64)
    y = process.sample_ddpm(model, (4, 2), torch.tensor([0, 1, 2, 0]), guidance=2.0, generator=0,
                            dtype=torch.float64)
    assert x.shape == y.shape == (4, 2) and torch.isfinite(x).all() and torch.isfinite(y).all()


# --------------------------------------------------------------------------- timesteps and refusals
def test_ddim_timesteps():
    assert ddim_timesteps(1000, 4) == [1000, 750, 500, 250, 0]
    assert ddim_timesteps(5, 5) == [5, 4, 3, 2, 1, 0]
    for n in range(1, 30):
        steps = ddim_timesteps(29, n)
        assert len(steps) == n + 1 and steps[0] == 29 and steps[-1] == 0
        assert all(a > b for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("call, message", [
    (lambda p: Diffusion([0.1, 1.0]), "'beta' parameter of Diffusion"),
    (lambda p: Diffusion("linear"), "'beta' parameter of Diffusion"),
    (lambda p: Diffusion(["a", 0.1]), "'beta' parameter of Diffusion"),
    (lambda p: Diffusion.linear(0), "'T' parameter of Diffusion.linear"),
    (lambda p: Diffusion.cosine(10, max_beta=1.0), "'max_beta' parameter of Diffusion.cosine"),
    (lambda p: p.diffuse(torch.zeros(2, 3), 11), "'t' parameter of Diffusion.diffuse"),
    (lambda p: p.diffuse(torch.zeros(2, 3), torch.tensor([1, 11])), "'t' parameter of Diffusion.diffuse"),
    (lambda p: p.diffuse(torch.zeros(2, 3), torch.tensor([1.0, 2.0])), "'t' parameter of Diffusion.diffuse"),
    (lambda p: p.forward_step(torch.zeros(2, 3), 0), "'t' parameter of Diffusion.forward_step"),
    (lambda p: p.posterior(0), "'t' parameter of Diffusion.posterior"),
    (lambda p: p.ddpm_step(torch.zeros(2, 3), torch.zeros(2, 3), 1, variance="learned"), "'variance'"),
    (lambda p: p.ddim_step(torch.zeros(2, 3), torch.zeros(2, 3), 5, 5), "'t_prev' parameter of Diffusion.ddim_step"),
    (lambda p: p.ddim_step(torch.zeros(2, 3), torch.zeros(2, 3), 5, 0, eta=-1.0), "'eta'"),
    (lambda p: p.ddpm_step(torch.zeros(2, 3), torch.zeros(2, 3), 5, clip=0.0),
     "'clip' parameter of Diffusion.ddpm_step"),
    (lambda p: p.sample_ddim(Toy(), (2, 3), n_steps=5, clip=-1.0), "'clip' parameter of Diffusion.sample_ddim"),
    (lambda p: p.sample_ddim(Toy(), (2, 3), n_steps=11), "'n_steps' parameter of Diffusion.sample_ddim"),
    (lambda p: p.sample_ddpm(Toy(), 5), "'shape' parameter of Diffusion.sample_ddpm"),
    (lambda p: p.loss(Toy(), torch.zeros(2, 3), torch.tensor([0, 1]), p_uncond=0.5), "'null_class'"),
    (lambda p: p.loss(Toy(), torch.zeros(2, 3), p_uncond=1.5), "'p_uncond'"),
    (lambda p: p.guided_noise(Toy(), torch.zeros(2, 3), 1, guidance=1.0), "'c' parameter"),
    (lambda p: ddim_timesteps(10, 11), "'n_steps' parameter of ddim_timesteps"),
])
def test_bad_arguments_are_refused_in_one_line(call, message):
    with pytest.raises((TypeError, ValueError)) as info:
        call(Diffusion.linear(10))
    assert message in str(info.value) and str(info.value).endswith("instead.")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_process_follows_a_model_on_cuda_with_a_cpu_generator():
    from udl.models.denoisers import DigitDenoiser

    process, model = Diffusion.linear(20), DigitDenoiser.tiny(generator=0).cuda()
    x, c = torch.rand(4, 1, 8, 8, device="cuda"), torch.tensor([0, 1, 2, 3], device="cuda")
    loss = process.loss(model, x, c, p_uncond=0.5, generator=0)
    loss.backward()
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    for sample in (process.sample_ddim(model, (4, 1, 8, 8), c, n_steps=5, guidance=1.0, clip=1.0, generator=0),
                   process.sample_ddpm(model, (4, 1, 8, 8), c, guidance=1.0, generator=0)):
        assert sample.device.type == "cuda" and torch.isfinite(sample).all()
    cpu = process.sample_ddim(model.cpu(), (4, 1, 8, 8), c.cpu(), n_steps=5, guidance=1.0, generator=0)
    assert torch.allclose(cpu, process.sample_ddim(model.cuda(), (4, 1, 8, 8), c, n_steps=5, guidance=1.0,
                                                   generator=0).cpu(), atol=1e-4)
