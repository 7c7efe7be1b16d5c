"""udl.models.denoisers: the time embedding against diffusers and a closed form; what each denoiser learns.

The common model tests (seeding, gradients, meta build, state_dict, bad arguments) are the
rows "MLPDenoiser" and "DigitDenoiser" of tests/models/test_zoo.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from udl.models.denoisers import DigitDenoiser, MLPDenoiser, time_embedding
from udl.models.diffusion import Diffusion


def test_the_time_embedding_is_the_sinusoid():
    t = torch.tensor([0.0, 1.0, 17.0, 999.0], dtype=torch.float64)
    emb = time_embedding(t, 6)
    assert emb.shape == (4, 6) and emb.dtype == torch.float64
    for b, step in enumerate(t.tolist()):
        for i in range(3):
            omega = 10_000 ** (-i / 3)
            assert math.isclose(emb[b, i].item(), math.sin(step * omega), abs_tol=1e-12)
            assert math.isclose(emb[b, 3 + i].item(), math.cos(step * omega), abs_tol=1e-12)
    assert torch.equal(time_embedding(torch.tensor([0]), 4), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    assert time_embedding(torch.arange(3), 8).dtype == torch.float32


def test_the_time_embedding_equals_diffusers():
    embeddings = pytest.importorskip("diffusers.models.embeddings")
    t = torch.arange(0, 1001, 7)
    want = embeddings.get_timestep_embedding(t, 32, downscale_freq_shift=0)  # float32 throughout
    assert torch.allclose(time_embedding(t, 32), want, rtol=0, atol=1e-4)


def test_the_mlp_denoiser_counts_its_parameters_and_reads_the_step():
    model = MLPDenoiser(1, width=16, depth=3, d_time=8, generator=0)
    assert sum(p.numel() for p in model.parameters()) == MLPDenoiser.parameter_count(1, 16, 3, 8)
    z = torch.zeros(2, 1)
    with torch.no_grad():
        assert not torch.equal(model(z, torch.tensor([1, 1])), model(z, torch.tensor([1, 900])))
        assert torch.equal(model(z, torch.tensor([5, 5]))[0], model(z, torch.tensor([5, 5]))[1])


def test_the_mlp_denoiser_learns_the_exact_noise_of_a_point_mass():
    """Data at x = 1 only: the noise is determined, ε = (z_t - √ᾱ_t) / √(1 - ᾱ_t), so the loss can reach ~0."""
    process = Diffusion.linear(100, beta_1=1e-3, beta_T=0.1)
    model = MLPDenoiser(1, width=32, depth=2, d_time=16, generator=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g, x = torch.Generator().manual_seed(0), torch.ones(256, 1)
    losses = []
    for _ in range(400):
        loss = process.loss(model, x, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.3 and sum(losses[-50:]) / 50 < 0.05 * losses[0]


def test_the_digit_denoiser_uses_the_null_class_and_the_class():
    model = DigitDenoiser.tiny(generator=0)
    assert model.null_class == 3
    z, t = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([1, 10, 100, 1000])
    with torch.no_grad():
        assert torch.equal(model(z, t), model(z, t, torch.full((4,), 3)))  # c = None is ∅
        out = model(z, t, torch.tensor([0, 1, 2, 3]))
        assert all(not torch.equal(out[i], model(z, t, torch.tensor([2, 2, 0, 0]))[i]) for i in range(4))
        # each image is denoised on its own (GroupNorm normalises per image, no batch statistics)
        assert torch.allclose(model(z[1:2], t[1:2], torch.tensor([1])), out[1:2], atol=1e-6)


def test_the_digit_denoiser_refuses_other_images():
    model = DigitDenoiser.tiny(generator=0)
    with pytest.raises(ValueError, match=r"^The 'z' parameter of DigitDenoiser must be a tensor of shape"):
        model(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"^The 'c' parameter of DigitDenoiser must be an integer tensor"):
        model(torch.zeros(2, 1, 8, 8), torch.tensor([1, 2]), torch.zeros(2))
    with pytest.raises(TypeError, match=r"^The 't' parameter of MLPDenoiser must be an integer tensor"):
        MLPDenoiser.tiny()(torch.zeros(2, 2), torch.zeros(2))


def test_the_digit_denoiser_learns_the_noise_of_digits_and_samples_images():
    """A short class-conditional fit with label dropout beats predicting zero noise (loss 1) by far."""
    from udl.data.images import load_digits

    x, y = load_digits("train", flat=False)
    x, y = torch.as_tensor(x)[:, None] * 2 - 1, torch.as_tensor(y)  # (N, 1, 8, 8) in [-1, 1]
    process = Diffusion.cosine(200)
    model = DigitDenoiser(channels=(8, 16), d_embed=16, groups=4, generator=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g, losses = torch.Generator().manual_seed(0), []
    for _ in range(150):
        batch = torch.randint(0, len(x), (64,), generator=g)
        loss = process.loss(model, x[batch], y[batch], p_uncond=0.1, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-30:]) / 30 < 0.4
    model.eval()
    samples = process.sample_ddim(model, (10, 1, 8, 8), torch.arange(10), n_steps=20, guidance=2.0, generator=0)
    assert samples.shape == (10, 1, 8, 8) and torch.isfinite(samples).all()
