"""udl.train.vae: a VAE trained on the 8x8 digits raises its held-out ELBO, and the bound stays a bound.

A short run (600 steps, a small network) on the real training digits; judged on the held-out
ones: the ELBO rises by far from its value at initialisation and lies below the
importance-sampled log-likelihood, which lies below 0 (a binomial likelihood is a probability).
The run is a function of its seed, and resumes exactly from a checkpoint of udl.train.fit.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.distributions import Binomial

from udl.data.images import load_digits
from udl.models.vae import VAE, VAEConfig
from udl.train.vae import NegativeELBO, train_vae

CONFIG = VAEConfig.digits(hidden=(64, 32), d_latent=4)


@pytest.fixture(scope="module")
def digits():
    x_train, _ = load_digits("train", seed=0)
    x_test, _ = load_digits("test", seed=0)
    return torch.as_tensor(x_train), torch.as_tensor(x_test)


@pytest.fixture(scope="module")
def run(digits):
    x_train, x_test = digits
    model = VAE(CONFIG, generator=0)
    with torch.no_grad():
        before = model.elbo(x_test, generator=1, n_samples=10).mean().item()
    losses = train_vae(model, x_train, steps=600, batch_size=128, lr=3e-3, seed=0, device="cpu")
    return model, losses, before


def test_training_raises_the_held_out_elbo_and_the_bound_holds(digits, run):
    x_train, x_test = digits
    model, losses, before = run
    with torch.no_grad():
        elbo = model.elbo(x_test, generator=1, n_samples=10).mean().item()
    log_px = model.importance_log_likelihood(x_test, 500, generator=2).mean().item()
    assert not model.training
    assert len(losses) == 600 and sum(losses[-50:]) / 50 < 0.5 * sum(losses[:10]) / 10
    uniform = -64 * math.log(17)  # every pixel uniform over the 17 grey levels: −181 nats
    p = x_train.double().mean(0).clamp(1e-3, 1 - 1e-3)  # independent pixels, each a fitted binomial: −251 nats
    independent = Binomial(16, probs=p).log_prob(torch.round(x_test.double() * 16)).sum(-1).mean().item()
    assert before < independent < uniform
    assert elbo > uniform + 25, (before, elbo, uniform)
    assert elbo < log_px < 0, (elbo, log_px)
    assert log_px - elbo < 20  # the bound is not vacuous


def test_the_samples_are_digit_like_images(run):
    model, _, _ = run
    samples = model.sample(200, generator=0)
    assert samples.shape == (200, 64) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    # the digits' ink: mean grey level ~0.3; a collapsed decoder would give the mean image for every z
    assert abs(float(samples.mean()) - 0.3) < 0.1
    assert float(samples.std(0).mean()) > 0.1


def test_a_run_is_a_function_of_its_seed_and_resumes_exactly(digits, tmp_path):
    from udl.train.loop import fit

    x_train, _ = digits
    x_train = x_train[:256]
    weights = []
    for seed in (0, 0, 1):
        model = VAE(VAEConfig.tiny(d_in=64), generator=0)
        train_vae(model, x_train, steps=20, batch_size=32, seed=seed, device="cpu")
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    # an interrupted run continued from its checkpoint ends with the uninterrupted run's weights
    path = tmp_path / "vae.pt"

    def run_fit(model, steps, **kwargs):
        return fit(NegativeELBO(model, seed=3), (x_train,), None,
                   lambda params: torch.optim.Adam(params, lr=1e-2), steps=steps, batch_size=32, seed=3,
                   device="cpu", progress=False, **kwargs)

    whole = VAE(VAEConfig.tiny(d_in=64), generator=0)
    run_fit(whole, 20)
    part = VAE(VAEConfig.tiny(d_in=64), generator=0)

    def stop(step, loss, model):
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # killed after step 13; the checkpoint holds step 10
        run_fit(part, 20, checkpoint_path=path, checkpoint_every=10, callback=stop)
    resumed = VAE(VAEConfig.tiny(d_in=64), generator=5)  # other weights: all come from the checkpoint
    run_fit(resumed, 20, checkpoint_path=path, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(whole.parameters(), resumed.parameters()))


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=torch.zeros(5, 63)), "x"),
    (dict(x=torch.full((5, 64), 2.0)), "x"),
    (dict(x=[[0.0] * 64]), "x"),
    (dict(steps=0), "steps"),
    (dict(batch_size=10_000), "batch_size"),
    (dict(lr=0.0), "lr"),
    (dict(seed=-1), "seed"),
    (dict(model=torch.nn.Linear(64, 64)), "model"),
])
def test_train_vae_refuses_bad_arguments(kwargs, name):
    args = dict(model=VAE(VAEConfig.tiny(d_in=64), generator=0), x=torch.rand(100, 64), steps=2, batch_size=10)
    args.update(kwargs)
    with pytest.raises((TypeError, ValueError)) as info:
        train_vae(args.pop("model"), args.pop("x"), device="cpu", **args)
    assert re.fullmatch(rf"The '{name}' parameter of train_vae must be .+\. Got .+ instead\.", str(info.value))
