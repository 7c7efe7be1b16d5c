"""udl.models.gan: DCGAN's shapes and resolutions, its initialisation, the closed-form counts, and the GAN pair.

The common model tests (seeding, gradients, meta build, state_dict, bad arguments) are in
tests/models/test_zoo.py. Here: every power-of-two size from 4 to 32 gives images of that
size in [0, 1] and one logit per image; the parameter counts match the closed forms; the
weights follow DCGAN's N(0, 0.02²); the discriminator without batch normalisation holds
none (and then each logit depends on its own image only); the GAN draws its latents from
N(0, I) and samples without gradients, in eval mode, restoring the mode.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from udl.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, GANConfig, MLPDiscriminator, MLPGenerator

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


@pytest.mark.parametrize("size", [4, 8, 16, 32])
def test_every_resolution_has_its_shape_range_and_count(size):
    config = GANConfig(d_latent=5, image_size=size, channels=3, width=4)
    G, D = DCGANGenerator(config, generator=0), DCGANDiscriminator(config, generator=1)
    x = G(torch.randn(2, 5, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (2, 3, size, size)
    assert bool(((x > 0) & (x < 1)).all())  # a sigmoid: the range of udl's digits
    assert D(x).shape == (2,)
    assert sum(p.numel() for p in G.parameters()) == config.generator_parameter_count()
    assert sum(p.numel() for p in D.parameters()) == config.discriminator_parameter_count()
    assert len(G.blocks) == len(D.blocks) == {4: 0, 8: 1, 16: 2, 32: 3}[size]  # one doubling per block


def test_digits_widths_and_count_by_hand():
    c = GANConfig.digits()
    assert c.widths() == (64, 32)  # 64 channels at 4x4, 32 at 8x8
    # z → 16·64 (+ BN 2·64); ConvT 64 → 32, 4x4 (+ BN 2·32); 3x3 conv 32 → 1
    assert c.generator_parameter_count() == 17 * 1024 + 128 + (16 * 64 * 32 + 32 + 64) + (9 * 32 + 1)
    # 3x3 conv 1 → 32; conv 32 → 64, 4x4 (+ BN 2·64); linear 16·64 → 1
    assert c.discriminator_parameter_count() == (9 * 32 + 32) + (16 * 32 * 64 + 64 + 128) + (1024 + 1)


def test_dcgan_initialisation():
    G = DCGANGenerator(GANConfig.digits(width=64), generator=0)
    w = G.blocks[0][0].weight  # 128 x 64 x 4 x 4 = 131,072 weights
    assert abs(w.std().item() - 0.02) < 0.0005 and abs(w.mean().item()) < 0.0005
    assert G.blocks[0][0].bias.abs().max().item() == 0.0
    bn = G.blocks[0][1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.bias.abs().max().item() == 0.0


def test_discriminator_without_batch_norm_judges_each_image_alone():
    config = GANConfig.tiny(d_batch_norm=False)
    D = DCGANDiscriminator(config, generator=0)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    D.train()
    (grad,) = torch.autograd.grad(D(x)[0], x)
    assert grad[1:].abs().max().item() == 0.0  # logit 0 does not see images 1-3 (the gradient penalty needs this)
    assert grad[0].abs().max().item() > 0.0


def test_generator_in_eval_mode_makes_each_sample_alone():
    G = DCGANGenerator("tiny", generator=0).eval()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(G(z)[:2], G(z[:2]), atol=1e-6)


def test_config_refuses_sizes_that_are_not_powers_of_two():
    for size in (2, 6, 12):
        with pytest.raises(ValueError, match=TEMPLATE.format("image_size", "GANConfig")):
            GANConfig(image_size=size)
    with pytest.raises(ValueError, match=TEMPLATE.format("slope", "GANConfig")):
        GANConfig(slope=1.0)
    assert GANConfig.tiny().n_upsamplings == 1 and GANConfig(image_size=32).n_upsamplings == 3


def test_mlp_pair_shapes_and_activations():
    G = MLPGenerator(3, 2, (8, 8), generator=0)
    D = MLPDiscriminator(2, (8,), slope=0.1, generator=0)
    assert [type(m) for m in G.net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [type(m) for m in D.net] == [nn.Linear, nn.LeakyReLU, nn.Linear] and D.net[1].negative_slope == 0.1
    assert G(torch.zeros(4, 3)).shape == (4, 2) and D(torch.zeros(4, 2)).shape == (4,)


# --------------------------------------------------------------------------- the pair
def test_latent_is_standard_normal_and_seeded():
    gan = GAN(MLPGenerator(3, 2, (8,), generator=0), MLPDiscriminator(2, (8,), generator=1), 3)
    z = gan.latent(20_000, generator=0)
    assert z.shape == (20_000, 3)
    assert z.mean(0).abs().max().item() < 0.03 and (z.std(0) - 1).abs().max().item() < 0.03
    assert torch.equal(z, gan.latent(20_000, generator=torch.Generator().manual_seed(0)))


def test_sample_runs_the_generator_without_gradients_and_restores_its_mode():
    G = DCGANGenerator("tiny", generator=0)
    gan = GAN(G, DCGANDiscriminator("tiny", generator=1), 4)
    gan.train()
    x = gan.sample(6, generator=3)
    assert G.training and not x.requires_grad
    G.eval()
    assert torch.equal(x, G(gan.latent(6, generator=3)))  # sampling is g[z] in eval mode
    assert torch.equal(gan(gan.latent(6, generator=3)), x)


def test_sample_passes_a_condition():
    class Conditional(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, z, c):
            return self.scale * z + c[:, None]

    gan = GAN(Conditional(), MLPDiscriminator(2, (4,), generator=0), 2)
    c = torch.tensor([10.0, -10.0])
    x = gan.sample(2, generator=0, c=c)
    assert torch.equal(x, gan.latent(2, generator=0) + c[:, None])


@pytest.mark.parametrize("call, name, owner", [
    (lambda: GAN(nn.Linear(2, 2), "D", 2), "discriminator_net", "GAN"),
    (lambda: GAN(nn.Linear(2, 2), nn.Linear(2, 1), 0), "d_latent", "GAN"),
    (lambda: GAN(nn.Linear(2, 2), nn.Linear(2, 1), 2).sample(0), "n", "GAN.latent"),
    (lambda: GAN(nn.Linear(2, 2), nn.Linear(2, 1), 2).latent(2, generator=1.5), "generator", "GAN.latent"),
    (lambda: DCGANGenerator("tiny")(torch.zeros(2, 5)), "z", "DCGANGenerator"),
    (lambda: DCGANDiscriminator("tiny")(torch.zeros(2, 1, 4, 4)), "x", "DCGANDiscriminator"),
    (lambda: MLPGenerator(2, 2, ())(torch.zeros(1, 2)), "hidden", "MLPGenerator"),
    (lambda: MLPDiscriminator(2, (4,))(torch.zeros(3, 3)), "x", "MLPDiscriminator"),
])
def test_bad_arguments_are_refused(call, name, owner):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert re.fullmatch(TEMPLATE.format(name, owner), str(info.value)), str(info.value)
