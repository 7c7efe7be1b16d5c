"""udl.train.gan: the alternating loop, its exact resume, the GAN recipe (plain, conditional, WGAN-GP), the accuracy.

- a GAN fitted to a 2-D normal learns its mean and spread (the closed form of the data);
- ``n_critic`` discriminator updates per step, each on a fresh batch, the generator on the
  last one; the discriminator is frozen during the generator's update;
- a run stopped after a checkpoint and resumed ends with the weights of an uninterrupted
  run, bit for bit, and the same history;
- a nan loss stops the run with ``LossNotFiniteError``; a non-scalar loss is refused;
- the conditional recipe gives both networks the conditions of the batch's own examples;
- ``discriminator_accuracy`` against a hand count.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from udl.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, GANConfig, MLPDiscriminator, MLPGenerator
from udl.nn.adversarial import discriminator_loss, generator_loss
from udl.train.gan import discriminator_accuracy, step_generator, train_adversarial, train_gan
from udl.train.loop import LossNotFiniteError

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


def _pair(seed: int = 0, d_latent: int = 2, hidden=(16,)) -> GAN:
    return GAN(MLPGenerator(d_latent, 2, hidden, generator=seed), MLPDiscriminator(2, hidden, generator=seed + 1),
               d_latent)


def _normal_data(n: int = 1024) -> torch.Tensor:
    return torch.tensor([2.0, -1.0]) + 0.5 * torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


def test_gan_learns_the_mean_and_spread_of_a_normal():
    gan = _pair(hidden=(32,))
    before = gan.sample(4000, generator=1)
    train_gan(gan, _normal_data(), steps=300, batch_size=128, lr_d=2e-3, lr_g=2e-3, device="cpu")
    after = gan.sample(4000, generator=1)
    target = torch.tensor([2.0, -1.0])
    assert (before.mean(0) - target).norm() > 1.5
    assert (after.mean(0) - target).norm() < 0.3  # measured 0.06 (GANs oscillate about the equilibrium)
    assert bool(((after.std(0) > 0.3) & (after.std(0) < 0.75)).all())  # spread 0.5 per axis; measured 0.44, 0.53


def test_wgan_gp_starts_at_the_penalty_of_a_flat_critic_and_learns():
    config = GANConfig.tiny(d_batch_norm=False)
    gan = GAN(DCGANGenerator(config, generator=0), DCGANDiscriminator(config, generator=1), config.d_latent)
    x = torch.full((64, 1, 8, 8), 0.9)
    history = train_gan(gan, x, loss="wasserstein", steps=30, batch_size=16, n_critic=2, lr_d=1e-3, lr_g=1e-3,
                        betas=(0.0, 0.9), device="cpu")
    assert len(history["d_loss"]) == len(history["g_loss"]) == 30
    # DCGAN's N(0, 0.02²) weights give a critic with ‖∇f‖ ≈ 0: loss ≈ λ (0 − 1)² = 10 at first
    assert history["d_loss"][0] == pytest.approx(10.0, abs=0.2)
    assert min(history["d_loss"]) < 8.5  # the critic's gradient grows towards norm 1 (measured 7.9)
    assert all(torch.isfinite(torch.tensor(history["g_loss"])))


def test_n_critic_updates_on_fresh_batches_and_frozen_discriminator():
    x = torch.arange(12, dtype=torch.float32)[:, None].repeat(1, 2)
    G, D = MLPGenerator(2, 2, (4,), generator=0), MLPDiscriminator(2, (4,), generator=1)
    d_steps, d_batches, g_batches, frozen = [], [], [], []

    def d_loss(batch, d_step):
        d_steps.append(d_step)
        d_batches.append(batch[0][:, 0].tolist())
        with torch.no_grad():
            fake = G(torch.randn(len(batch[0]), 2, generator=step_generator(0, d_step)))
        return discriminator_loss(D(batch[0]), D(fake))

    def g_loss(batch, step):
        g_batches.append(batch[0][:, 0].tolist())
        frozen.append(all(not p.requires_grad for p in D.parameters()))
        return generator_loss(D(G(torch.randn(len(batch[0]), 2, generator=step_generator(0, step, stream=1)))))

    history = train_adversarial({"generator": G, "discriminator": D}, (x,), d_loss=d_loss, g_loss=g_loss,
                                steps=4, batch_size=3, n_critic=3, device="cpu")
    assert d_steps == list(range(1, 13))  # 3 discriminator updates per step, counted from 1
    assert g_batches == d_batches[2::3]  # the generator reuses the last batch the discriminator saw
    assert sorted(sum(d_batches[:4], [])) == list(range(12))  # 4 batches of 3: one epoch, each example once
    assert all(frozen) and all(p.requires_grad for p in D.parameters())
    assert len(history["d_loss"]) == 4


def test_discriminator_update_changes_only_the_discriminator():
    gan = _pair()
    G0 = [p.detach().clone() for p in gan.generator_net.parameters()]
    D0 = [p.detach().clone() for p in gan.discriminator_net.parameters()]
    G, D = gan.generator_net, gan.discriminator_net
    train_adversarial({"generator": G, "discriminator": D}, (_normal_data(64),),
                      d_loss=lambda b, s: discriminator_loss(D(b[0]), D(G(torch.randn(8, 2)))),  # not detached
                      g_loss=lambda b, s: 0.0 * G(torch.zeros(1, 2)).sum(),  # the generator's loss is flat
                      steps=1, batch_size=8, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(G0, G.parameters()))  # Adam's first step on a zero gradient
    assert not all(torch.equal(a, b) for a, b in zip(D0, D.parameters()))


def test_explicit_parameter_groups_train_what_they_name():
    # two generators and one discriminator (as CycleGAN's pairs): each optimizer moves its own group only
    G1, G2, D, idle = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 1), nn.Linear(2, 2)
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in
              {"G1": G1, "G2": G2, "D": D, "idle": idle}.items()}
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    train_adversarial({"g1": G1, "g2": G2, "critic": D, "idle": idle}, (x,),
                      d_loss=lambda b, s: D(b[0]).mean() - D(G1(b[0]).detach()).mean(),
                      g_loss=lambda b, s: -D(G1(b[0])).mean() - D(G2(b[0])).mean() + 0 * idle(b[0]).sum(),
                      d_params=D.parameters(), g_params=[*G1.parameters(), *G2.parameters()],
                      steps=2, batch_size=8, device="cpu")
    moved = {name: not all(torch.equal(a, b) for a, b in zip(old, m.parameters()))
             for (name, old), m in zip(before.items(), (G1, G2, D, idle))}
    assert moved == {"G1": True, "G2": True, "D": True, "idle": False}


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    x = _normal_data(256)

    def run(gan, **kwargs):
        return train_gan(gan, x, steps=8, batch_size=32, lr_d=1e-3, lr_g=1e-3, device="cpu", **kwargs)

    whole = _pair(0)
    history = run(whole)

    def stop(step, history, modules):
        if step == 5:
            raise KeyboardInterrupt  # after the checkpoint of step 4

    path = tmp_path / "gan.pt"
    with pytest.raises(KeyboardInterrupt):
        run(_pair(0), checkpoint_path=path, checkpoint_every=4, callback=stop)
    resumed = _pair(7)  # other initial weights: all come from the checkpoint
    history_resumed = run(resumed, checkpoint_path=path, resume=True)
    assert history_resumed == history
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_refuses_another_run(tmp_path):
    path = tmp_path / "gan.pt"
    train_gan(_pair(), _normal_data(128), steps=2, batch_size=32, device="cpu", checkpoint_path=path)
    with pytest.raises(ValueError, match="batch_size=32"):
        train_gan(_pair(), _normal_data(128), steps=2, batch_size=16, device="cpu", checkpoint_path=path,
                  resume=True)


def test_conditional_recipe_gives_both_networks_the_batch_conditions():
    calls = []

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, z, c):
            return self.lin(z) + 0 * c[:, None]

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x, c):
            calls.append((x.detach().clone(), c.clone()))
            return self.lin(x).squeeze(1)

    c = torch.arange(40) % 5
    x = torch.stack([c.float(), -c.float()], 1)  # the condition can be read off each real example
    train_gan(GAN(G(), D(), 2), x, c, steps=3, batch_size=8, device="cpu")
    real_calls = calls[0::3]  # per step: D(real), D(fake) in d_loss, D(G(z, c)) in g_loss
    assert len(calls) == 9
    for xs, cs in real_calls:
        assert torch.equal(xs[:, 0], cs.float())
    for (_, c_real), (_, c_fake), (_, c_gen) in zip(calls[0::3], calls[1::3], calls[2::3]):
        assert torch.equal(c_real, c_fake) and torch.equal(c_real, c_gen)


def test_nan_loss_stops_the_run():
    G, D = MLPGenerator(2, 2, (4,), generator=0), MLPDiscriminator(2, (4,), generator=1)
    bad = lambda batch, step: D(batch[0]).mean() * (float("nan") if step == 3 else 1.0)  # noqa: E731
    with pytest.raises(LossNotFiniteError, match="at step 3") as info:
        train_adversarial({"generator": G, "discriminator": D}, (torch.randn(32, 2),), d_loss=bad,
                          g_loss=lambda b, s: D(G(torch.randn(4, 2))).mean(), steps=5, batch_size=4, device="cpu")
    assert len(info.value.losses) == 2
    with pytest.raises(TypeError, match=TEMPLATE.format("d_loss", "train_adversarial")):
        train_adversarial({"generator": G, "discriminator": D}, (torch.randn(32, 2),),
                          d_loss=lambda b, s: D(b[0]), g_loss=bad, steps=1, batch_size=4, device="cpu")


def test_step_generator_is_a_function_of_seed_step_and_stream():
    draw = lambda *a, **k: torch.randn(4, generator=step_generator(*a, **k))  # noqa: E731
    assert torch.equal(draw(0, 3), draw(0, 3))
    assert not torch.equal(draw(0, 3), draw(0, 4))
    assert not torch.equal(draw(0, 3), draw(3, 0))
    assert not torch.equal(draw(0, 3), draw(0, 3, stream=1))


def test_discriminator_accuracy_by_hand():
    class FirstCoordinate(nn.Module):
        def forward(self, x):
            return x[:, 0]

    real = torch.tensor([[1.0, 0], [2.0, 0], [-1.0, 0]])  # 2 of 3 above 0
    fake = torch.tensor([[-1.0, 0], [1.0, 0]])  # 1 of 2 below 0
    assert discriminator_accuracy(FirstCoordinate(), real, fake) == pytest.approx(3 / 5)
    D = MLPDiscriminator(2, (4,), generator=0).train()
    discriminator_accuracy(D, real, fake)
    assert D.training  # mode restored


@pytest.mark.parametrize("kwargs, name, owner", [
    (dict(modules={}), "modules", "train_adversarial"),
    (dict(data=[torch.zeros(4, 2)]), "data", "train_adversarial"),
    (dict(data=(torch.full((4, 2), float("nan")),)), "data", "train_adversarial"),
    (dict(d_loss=None), "d_loss", "train_adversarial"),
    (dict(d_params=[torch.zeros(2)]), "d_params", "train_adversarial"),
    (dict(modules={"g": nn.Linear(2, 2)}), "d_params", "train_adversarial"),
    (dict(steps=0), "steps", "train_adversarial"),
    (dict(batch_size=5), "batch_size", "train_adversarial"),
    (dict(lr_g=0.0), "lr_g", "train_adversarial"),
    (dict(betas=(0.5, 1.0)), "betas", "train_adversarial"),
    (dict(n_critic=0), "n_critic", "train_adversarial"),
    (dict(seed=-1), "seed", "train_adversarial"),
    (dict(device="tpu"), "device", "train_adversarial"),
    (dict(resume=True), "resume", "train_adversarial"),
])
def test_bad_arguments_of_the_loop_are_refused(kwargs, name, owner):
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    good = dict(modules={"generator": G, "discriminator": D}, data=(torch.zeros(4, 2),),
                d_loss=lambda b, s: D(b[0]).mean(), g_loss=lambda b, s: D(G(b[0])).mean(), steps=1, batch_size=2,
                device="cpu")
    with pytest.raises((TypeError, ValueError)) as info:
        train_adversarial(**{**good, **kwargs})
    assert re.fullmatch(TEMPLATE.format(name, owner), str(info.value)), str(info.value)


@pytest.mark.parametrize("kwargs, name", [
    (dict(gan=nn.Linear(2, 2)), "gan"), (dict(x=torch.zeros(8)), "x"), (dict(c=torch.zeros(3)), "c"),
    (dict(loss="hinge"), "loss"), (dict(gp_weight=-1.0), "gp_weight"), (dict(batch_size=9), "batch_size"),
])
def test_bad_arguments_of_the_recipe_are_refused(kwargs, name):
    good = dict(gan=_pair(), x=torch.zeros(8, 2), steps=1, batch_size=4, device="cpu")
    with pytest.raises((TypeError, ValueError)) as info:
        train_gan(**{**good, **kwargs})
    assert re.fullmatch(TEMPLATE.format(name, "train_gan"), str(info.value)), str(info.value)
