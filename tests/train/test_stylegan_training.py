"""udl.train.stylegan: the style-mixed batches follow their documented draw, training is a function of its seed
and changes every part of the generator (noise scales ψ included), and the cached digits generator loads the
weights it trained."""

from __future__ import annotations

import re

import pytest
import torch

from udl.data.images import load_digits
from udl.models.gan import DCGANDiscriminator, GANConfig
from udl.models.stylegan import StyleGANConfig, StyleGenerator
from udl.train.stylegan import digits_stylegan, mixed_batch, train_stylegan

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mixed_batch_follows_its_documented_draw():
    model = StyleGenerator("tiny", generator=0)
    L = model.n_styles
    ws, noise = mixed_batch(model, 200, p_mix=0.5, generator=3)
    g = _g(3)
    z1, z2 = model.latent(200, generator=g), model.latent(200, generator=g)
    k = torch.randint(1, L, (200,), generator=g)
    mixed = torch.rand(200, generator=g) < 0.5
    expected_noise = model.draw_noise(200, generator=g)
    w1, w2 = model.mapping(z1), model.mapping(z2)
    assert all(torch.equal(a, b) for a, b in zip(noise, expected_noise))
    for i in range(200):
        cut = int(k[i]) if mixed[i] else L
        assert torch.equal(ws[i, :cut], w1[i].expand(cut, -1)) and torch.equal(ws[i, cut:], w2[i].expand(L - cut, -1))
    assert 60 < int(mixed.sum()) < 140 and set(k.tolist()) == set(range(1, L))
    # no mixing: every layer takes w₁; all mixing: no image keeps one style throughout
    ws0, _ = mixed_batch(model, 50, p_mix=0.0, generator=4)
    assert torch.equal(ws0, model.mapping(model.latent(50, generator=4))[:, None].expand(-1, L, -1))
    ws1, _ = mixed_batch(model, 50, p_mix=1.0, generator=4)
    assert bool((ws1[:, 0] != ws1[:, -1]).any(1).all())


def _run(seed=0, steps=6):
    x = torch.from_numpy(load_digits("train", seed=0)[0][:64])
    model = StyleGenerator("tiny", generator=0)
    critic = DCGANDiscriminator(GANConfig.tiny(), generator=1)
    history = train_stylegan(model, critic, x, steps=steps, batch_size=16, seed=seed, device="cpu")
    return model, history


def test_training_is_a_function_of_its_seed_and_moves_every_parameter():
    start = StyleGenerator("tiny", generator=0)
    model, history = _run()
    again, history_again = _run()
    other, history_other = _run(seed=1)
    assert len(history["d_loss"]) == len(history["g_loss"]) == 6
    assert history == history_again and history != history_other
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    for (name, p), p0 in zip(model.named_parameters(), start.parameters()):
        assert not torch.equal(p, p0), name  # the noise scales ψ leave zero, the constant leaves one
    assert not model.training


def test_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path):
    x = torch.from_numpy(load_digits("train", seed=0)[0][:64])

    def run(model_seed, **kwargs):
        model = StyleGenerator("tiny", generator=model_seed)
        critic = DCGANDiscriminator(GANConfig.tiny(), generator=model_seed + 1)
        return model, train_stylegan(model, critic, x, steps=5, batch_size=16, device="cpu", **kwargs)

    def stop(step, history, modules):
        if step == 4:
            raise KeyboardInterrupt  # after the checkpoint of step 3

    whole, history = run(0)
    path = tmp_path / "stylegan.pt"
    with pytest.raises(KeyboardInterrupt):
        run(0, checkpoint_path=path, checkpoint_every=3, callback=stop)
    resumed, history_resumed = run(7, checkpoint_path=path, resume=True)  # all weights come from the checkpoint
    assert history_resumed == history
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))


def test_bad_arguments_get_the_template():
    x = torch.rand(20, 64)
    model, critic = StyleGenerator("tiny", generator=0), DCGANDiscriminator(GANConfig.tiny(), generator=1)
    for name, value in (("x", torch.rand(20, 63)), ("x", torch.full((20, 64), 2.0)), ("batch_size", 21),
                        ("p_mix", 1.5), ("lr", 0.0), ("steps", 0)):
        with pytest.raises((TypeError, ValueError), match=TEMPLATE.format(name, "train_stylegan")):
            train_stylegan(model, critic, **{"x": x, "steps": 1, "batch_size": 8, name: value})
    with pytest.raises(ValueError, match=TEMPLATE.format("config", "digits_stylegan")):
        digits_stylegan(StyleGANConfig.tiny(image_size=16, channels=(2, 2, 2)), steps=1)
    with pytest.raises(ValueError, match=TEMPLATE.format("p_mix", "mixed_batch")):
        mixed_batch(model, 3, p_mix=-0.1)


def test_the_digits_generator_is_trained_once_and_loaded():
    config = StyleGANConfig.tiny()
    model, record = digits_stylegan(config, steps=3, batch_size=16, d_width=4, device="cpu")
    again, record_again = digits_stylegan(config, steps=3, batch_size=16, d_width=4, device="cpu")
    assert len(record["g_loss"]) == 3 and record == record_again
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(model.constant, torch.ones_like(model.constant))  # trained, not the initial weights
    assert model.sample(2, generator=0).shape == (2, 1, 8, 8)
