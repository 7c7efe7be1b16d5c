"""The progressive-growing recipe: the schedule, growth at each stage, α ramps, determinism."""

import pytest
import torch

from udl.models.progressive_gan import ProgressiveDiscriminator, ProgressiveGANConfig, ProgressiveGenerator, downsample
from udl.train.progressive_gan import phases, train_progressive, unupsample_digits, upsample_digits


def _data(n=16, seed=0):
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def _run(seed=0, **kwargs):
    g, d = ProgressiveGenerator("tiny", generator=0), ProgressiveDiscriminator("tiny", generator=1)
    seen = []
    history = train_progressive(g, d, _data(), stable_steps=3, fade_steps=2, batch_size=8, seed=seed, device="cpu",
                                on_stage_end=lambda s, gn, dn: seen.append((s, gn.resolution, dn.resolution)),
                                **kwargs)
    return g, d, history, seen


def test_schedule():
    assert phases(3, 5, 2) == [(0, "stable", 5), (1, "fade", 2), (1, "stable", 5), (2, "fade", 2), (2, "stable", 5)]


def test_networks_grow_stage_by_stage_and_alpha_ramps():
    g, d, history, seen = _run()
    config = ProgressiveGANConfig.tiny()
    assert seen == [(0, 4, 4), (1, 8, 8), (2, 16, 16)]
    assert g.stage == d.stage == 2 and g.alpha == d.alpha == 1.0 and not g.training
    assert len(history["g_loss"]) == len(history["d_loss"]) == 3 * 3 + 2 * 2
    assert history["stage"] == [0] * 3 + [1] * 5 + [2] * 5
    assert history["alpha"] == [1.0] * 3 + [0.5, 1.0] + [1.0] * 3 + [0.5, 1.0] + [1.0] * 3
    assert [p[1:] for p in history["parameters"]] == [
        (6 + 6 * s, 6 + 6 * s, config.generator_parameter_count(s), config.discriminator_parameter_count(s))
        for s in range(3)]


def test_the_run_is_a_function_of_its_seed():
    _, _, a, _ = _run(seed=3)
    g, _, b, _ = _run(seed=3)
    _, _, c, _ = _run(seed=4)
    assert a["g_loss"] == b["g_loss"] and a["d_loss"] == b["d_loss"]
    assert a["g_loss"] != c["g_loss"]
    assert all(torch.isfinite(torch.tensor(a["d_loss"])))


def test_upsampled_digits_keep_constants_and_their_block_means():
    flat = torch.full((3, 64), 0.25)
    assert torch.allclose(upsample_digits(flat), torch.full((3, 1, 16, 16), 0.25))
    x = torch.rand(5, 64, generator=torch.Generator().manual_seed(0))
    up = upsample_digits(x, 16)
    assert up.shape == (5, 1, 16, 16) and float(up.min()) >= 0 and float(up.max()) <= 1
    # bilinear x2 then 2x2 means: each pixel becomes (9/16) itself + (3/16) each axis neighbour + (1/16) diagonal
    # in the interior, so the image averaged back is a smoothed copy: within the largest neighbour difference
    back = downsample(up, 8)[:, 0, 1:-1, 1:-1]
    assert float((back - x.view(5, 8, 8)[:, 1:-1, 1:-1]).abs().max()) < 0.5


def test_unupsampling_inverts_the_bilinear_upsampling_exactly():
    x = torch.rand(6, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(unupsample_digits(upsample_digits(x, 16)), x.view(6, 1, 8, 8), atol=1e-12)
    assert torch.allclose(unupsample_digits(upsample_digits(x, 32)), x.view(6, 1, 8, 8), atol=1e-12)
    # a nearby 16x16 image comes back near x (the pseudo-inverse of bilinear x2 has norm about 0.6)
    noise = 0.01 * torch.randn(6, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert float((unupsample_digits(upsample_digits(x, 16) + noise) - x.view(6, 1, 8, 8)).abs().max()) < 0.05


def test_bad_arguments():
    g, d = ProgressiveGenerator("tiny", generator=0), ProgressiveDiscriminator("tiny", generator=1)
    with pytest.raises(TypeError, match="'x' parameter of train_progressive"):
        train_progressive(g, d, torch.zeros(4, 1, 8, 8), stable_steps=1, fade_steps=1, batch_size=2)
    other = ProgressiveDiscriminator(ProgressiveGANConfig.tiny(d_latent=5), generator=0)
    with pytest.raises(ValueError, match="'discriminator_net' parameter of train_progressive"):
        train_progressive(g, other, _data(), stable_steps=1, fade_steps=1, batch_size=2)
    g.grow()
    with pytest.raises(ValueError, match="'generator_net' parameter of train_progressive"):
        train_progressive(g, d, _data(), stable_steps=1, fade_steps=1, batch_size=2)
    with pytest.raises(TypeError, match="'x' parameter of upsample_digits"):
        upsample_digits(torch.zeros(3, 10))
    with pytest.raises(TypeError, match="'images' parameter of unupsample_digits"):
        unupsample_digits(torch.zeros(3, 1, 4, 4))
