"""Progressive growing (fig. 15.9): stages add layers, growing changes nothing at α = 0, the fade is linear in α."""

import pytest
import torch
import torch.nn.functional as F

from udl.models.progressive_gan import (ProgressiveDiscriminator, ProgressiveGANConfig, ProgressiveGenerator,
                                        downsample, pixel_norm)


def _grown(cls, stage, config="tiny", seed=0):
    net = cls(config, generator=seed)
    for k in range(stage):
        net.grow(generator=seed + 10 + k)
    net.alpha = 1.0
    return net


@pytest.mark.parametrize("config", [ProgressiveGANConfig.tiny(), ProgressiveGANConfig.digits(),
                                    ProgressiveGANConfig(d_latent=3, channels=3, widths=(5, 4, 3, 2))])
def test_parameter_counts_equal_the_closed_form_at_every_stage(config):
    for stage in range(config.n_stages):
        g, d = _grown(ProgressiveGenerator, stage, config), _grown(ProgressiveDiscriminator, stage, config)
        assert sum(p.numel() for p in g.parameters()) == config.generator_parameter_count(stage)
        assert sum(p.numel() for p in d.parameters()) == config.discriminator_parameter_count(stage)
        assert g.resolution == d.resolution == 4 * 2 ** stage


def test_each_stage_adds_six_parameter_tensors_and_keeps_the_old_ones():
    for cls in (ProgressiveGenerator, ProgressiveDiscriminator):
        net = cls("tiny", generator=0)
        before = {name: p.detach().clone() for name, p in net.named_parameters()}
        net.grow(generator=1)
        after = dict(net.named_parameters())
        assert len(after) == len(before) + 6  # two 3x3 convolutions and a 1x1, weights and biases
        assert all(torch.equal(after[name], value) for name, value in before.items())


def test_growing_changes_nothing_at_alpha_zero():
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    for stage in (0, 1):
        g, d = _grown(ProgressiveGenerator, stage), _grown(ProgressiveDiscriminator, stage)
        with torch.no_grad():
            old_image = g(z)
            old_logit = d(downsample(x, 4 * 2 ** stage))
            g.grow(generator=7)
            d.grow(generator=8)
            assert g.alpha == d.alpha == 0.0
            new_image = g(z)
            new_logit = d(downsample(x, 8 * 2 ** stage))
        assert torch.equal(new_image, F.interpolate(old_image, scale_factor=2, mode="nearest"))
        assert torch.allclose(new_logit, old_logit, atol=1e-6)


def test_the_fade_is_linear_in_alpha():
    g, d = _grown(ProgressiveGenerator, 2), _grown(ProgressiveDiscriminator, 2)
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for alpha in (0.0, 0.3, 0.75, 1.0):
            mixed = (1 - alpha) * g(z, alpha=0.0) + alpha * g(z, alpha=1.0)
            assert torch.allclose(g(z, alpha=alpha), mixed, atol=1e-6)
        # the discriminator blends features, not logits: continuous, with a bounded step
        logits = torch.stack([d(x, alpha=a) for a in torch.linspace(0, 1, 101).tolist()])  # (101, 5)
        steps = (logits[1:] - logits[:-1]).abs().max()  # Δα = 0.01: no jump larger than 5 Δα times the range
        assert float(steps) < 0.05 * float((logits[-1] - logits[0]).abs().max() + 1e-3) + 1e-4


def test_images_are_in_the_unit_interval_and_seeded():
    g = _grown(ProgressiveGenerator, 2, seed=4)
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(0)) * 5
    with torch.no_grad():
        x = g(z)
    assert x.shape == (7, 1, 16, 16) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.equal(x, _grown(ProgressiveGenerator, 2, seed=4)(z))


def test_pixel_norm_gives_unit_mean_square_over_channels():
    h = torch.randn(3, 5, 4, 4, dtype=torch.float64) * 7
    out = pixel_norm(h, eps=0.0)
    assert torch.allclose(out.pow(2).mean(1), torch.ones(3, 4, 4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out / out.norm(dim=1, keepdim=True), h / h.norm(dim=1, keepdim=True), atol=1e-12)


def test_downsample_averages_blocks():
    x = torch.arange(2 * 16 * 16, dtype=torch.float64).view(2, 1, 16, 16)
    expected = x.view(2, 1, 4, 4, 4, 4).mean((3, 5))  # (B, C, r, block, r, block)
    assert torch.equal(downsample(x, 4), expected)
    assert downsample(x, 16) is x


def test_bad_arguments():
    g = ProgressiveGenerator("tiny", generator=0)
    g.grow()
    g.grow()
    with pytest.raises(ValueError, match="'stage' of ProgressiveGenerator must stay below 3"):
        g.grow()
    d = ProgressiveDiscriminator("tiny", generator=0)
    with pytest.raises(ValueError, match="'x' parameter of ProgressiveDiscriminator"):
        d(torch.zeros(2, 1, 8, 8))  # stage 0 judges 4x4 images
    with pytest.raises(ValueError, match="'alpha' parameter"):
        g(torch.zeros(2, 4), alpha=1.5)
    with pytest.raises(ValueError, match="'resolution' parameter of downsample"):
        downsample(torch.zeros(1, 1, 16, 16), 5)
    with pytest.raises(TypeError, match="'widths' parameter of ProgressiveGANConfig"):
        ProgressiveGANConfig(widths=())
