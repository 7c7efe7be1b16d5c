"""Probing what udl's unsupervised models can do (fig. 14.1), against closed forms."""

import math

import pytest
import torch

from udl.analysis.taxonomy import (IS_MASS_TOL, MASS_TOL, diffusion_log_weights, jacobian_rank, probe,
                                   probe_systems, region)
from udl.models.diffusion import Diffusion
from udl.systems import SYSTEMS, System


class ZeroDenoiser(torch.nn.Module):
    """g[z, t] = 0: the reverse means are z_t / √α_t, so Pr(x) is a normal in closed form."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, z, t):
        return self.scale * z


def _closed_form_variance(process: Diffusion) -> float:
    """Var x under Pr(z_T) = N(0, 1), z_{t-1} | z_t ~ N(z_t / √α_t, β̃_t), x | z_1 ~ N(z_1 / √α_1, β_1)."""
    var = 1.0
    for t in range(process.T, 0, -1):
        step = float(process.beta[1]) if t == 1 else process.posterior(t)[2]
        var = var / float(process.alpha[t]) + step
    return var


@pytest.mark.parametrize("T", [1, 3])
def test_diffusion_importance_estimate_matches_the_closed_form_marginal(T):
    process = Diffusion.linear(T, 0.1, 0.4)
    var = _closed_form_variance(process)
    x = torch.tensor([[-1.5], [0.0], [0.7], [2.0]], dtype=torch.float64)
    log_w = diffusion_log_weights(process, ZeroDenoiser(), x, 20_000, generator=0)  # (K, N)
    exact = -0.5 * (x[:, 0] ** 2 / var + math.log(2 * math.pi * var))
    estimate = (torch.logsumexp(log_w, 0) - math.log(len(log_w)))
    assert torch.allclose(estimate, exact, atol=0.02), (estimate, exact)
    elbo = log_w.mean(0)
    assert (elbo < exact - 1e-3).all() if T > 1 else (elbo <= exact + 0.02).all()


def test_diffusion_weights_are_reproducible_and_shaped():
    process = Diffusion.linear(2, 0.1, 0.3)
    x = torch.zeros(3, 1, dtype=torch.float64)
    a = diffusion_log_weights(process, ZeroDenoiser(), x, 5, generator=1)
    assert a.shape == (5, 3) and torch.equal(a, diffusion_log_weights(process, ZeroDenoiser(), x, 5, generator=1))


def test_jacobian_rank_of_a_linear_map_is_its_matrix_rank():
    a = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]], dtype=torch.float64)  # rank 1
    assert jacobian_rank(lambda z: z @ a.T, torch.ones(2)) == 1
    assert jacobian_rank(lambda z: z @ torch.eye(3, 2, dtype=torch.float64).T, torch.ones(2)) == 2


@pytest.fixture(scope="module")
def rows():
    return {r["name"]: r for r in probe_systems(generator=0)}


def test_every_unsupervised_system_is_probed(rows):
    assert list(rows) == [s.name for s in SYSTEMS if s.paradigm == "unsupervised"]
    assert {name: r["error"] for name, r in rows.items() if r["error"]} == {}


def test_gpt_is_probabilistic_without_a_latent(rows):
    gpt = rows["GPT decoder (language model)"]
    assert region(gpt) == ("probabilistic", False)
    assert gpt["probability"] == "exact" and abs(gpt["mass"] - 1) < MASS_TOL
    assert gpt["sample_shape"] == [64, 4]


def test_mixture_is_exact_with_a_discrete_latent(rows):
    mixture = rows["mixture of Gaussians"]
    assert region(mixture) == ("probabilistic", True)
    assert abs(mixture["mass"] - 1) < MASS_TOL and mixture["latent_shape"] == [2]


@pytest.mark.parametrize("name", ["variational autoencoder", "diffusion model (denoiser)"])
def test_elbo_models_are_normalised_but_evaluated_through_a_bound(rows, name):
    row = rows[name]
    assert row["probability"] == "bound" and region(row) == ("probabilistic", True)
    assert row["bound_mass"] < 0.999 and abs(row["mass"] - 1) < IS_MASS_TOL and row["bound_gap"] > 0


def test_autoencoder_has_a_code_but_no_sampler(rows):
    ae = rows["deep autoencoder"]
    assert region(ae) == ("unsupervised", True) and ae["probability"] == "none"
    assert 0 < ae["jacobian_rank"] <= ae["latent_shape"][0] < ae["data_dims"] == 64


def test_region_follows_the_measurements():
    base = {"samples": False, "probability": "none", "latent": False}
    assert region(base) == ("unsupervised", False)
    assert region({**base, "samples": True, "latent": True}) == ("generative", True)
    assert region({**base, "samples": True, "probability": "bound"}) == ("probabilistic", False)
    assert region({**base, "samples": True, "probability": "unnormalised"}) == ("generative", False)
    assert region({**base, "probability": "exact"}) == ("unsupervised", False)  # no sampler: not generative


def test_a_broken_or_unknown_entry_is_reported_not_raised():
    row = probe(System("missing", "unsupervised", "udl.nn.deep:NoSuchNetwork"))
    assert "AttributeError" in row["error"] and region(row) == ("unsupervised", False)
    row = probe(System("unprobed", "unsupervised", "udl.nn.shallow:ShallowNetwork", dict(d_in=1, d_hidden=2, d_out=1)))
    assert "LookupError" in row["error"]


def test_gan_samples_through_a_latent_but_has_no_density(rows):
    gan = rows["GAN (DCGAN generator)"]
    assert region(gan) == ("generative", True) and gan["probability"] == "none"
    assert gan["sample_shape"] == [64, 1, 8, 8]
    assert gan["jacobian_rank"] == gan["latent_shape"][0] == 4 < gan["data_dims"] == 64  # a 4-D surface in 64-D
