"""udl.models.conditional_gan: the generator's input, the three discriminators against their formulas, sampling.

(Seeding, gradients, meta builds, state_dict round trips and parameter counts of every
network are in tests/models/test_zoo.py.)
"""

import math

import pytest
import torch
import torch.nn.functional as F

from udl.models.conditional_gan import (AuxiliaryClassifierDiscriminator, ConditionalDiscriminator, ConditionalGAN,
                                        ConditionalGANConfig, ConditionalGenerator, InfoGANDiscriminator, KINDS)


def _images(n, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_generator_input_is_noise_then_one_hot_class_then_continuous_codes():
    """The first layer of g[z, c, u] is W [z, one-hot(c), u] + b: the class selects one column of W."""
    cfg = ConditionalGANConfig.tiny(n_continuous=2)
    g = ConditionalGenerator(cfg, generator=0).double()
    z = torch.randn(4, cfg.d_latent, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    c = torch.tensor([0, 2, 1, 2])
    u = torch.tensor([[0.5, -1.0], [0.0, 0.25], [1.0, 1.0], [-0.3, 0.7]], dtype=torch.float64)
    seen = {}
    g.project.register_forward_hook(lambda m, inputs, out: seen.update(out=out))
    g(z, c, u)
    w, b = g.project.weight, g.project.bias
    d = cfg.d_latent
    expected = z @ w[:, :d].T + w[:, d + c].T + u @ w[:, d + cfg.n_classes:].T + b  # (4, 2w·16)
    torch.testing.assert_close(seen["out"], expected, rtol=0, atol=1e-12)


def test_generator_output_is_an_8x8_image_in_the_unit_interval():
    g = ConditionalGenerator("tiny", generator=0)
    x = g(torch.randn(5, 3) * 10, torch.tensor([0, 1, 2, 0, 1]))
    assert x.shape == (5, 1, 8, 8)
    assert bool(((x > 0) & (x < 1)).all())


def test_projection_discriminator_is_linear_logit_plus_class_embedding_inner_product():
    """f[x, c] = w·h[x] + b + E[c]·h[x] (Miyato & Koyama 2018), h the body's features."""
    d = ConditionalDiscriminator("tiny", generator=0).double()
    x, c = _images(6).double(), torch.tensor([0, 1, 2, 2, 1, 0])
    h = d.body(x)  # (6, F)
    expected = h @ d.real.weight[0] + d.real.bias[0] + (d.embed.weight[c] * h).sum(1)
    torch.testing.assert_close(d(x, c), expected, rtol=0, atol=1e-12)
    # two classes' logits differ by (E[c'] − E[c])·h, whatever the image
    torch.testing.assert_close(d(x, torch.ones(6, dtype=torch.long)) - d(x, torch.zeros(6, dtype=torch.long)),
                               h @ (d.embed.weight[1] - d.embed.weight[0]), rtol=0, atol=1e-12)


def test_concat_discriminator_sees_the_class_as_constant_one_hot_maps():
    """With condition="concat" the first convolution's input is [x, K maps of one-hot(c)]: the class adds
    the sum of its own kernel channel over each window (a class-dependent bias map) to the first layer."""
    d = ConditionalDiscriminator("tiny", condition="concat", generator=0).double()
    x, c = _images(3).double(), torch.tensor([2, 0, 1])
    seen = {}
    d.body.conv1.register_forward_hook(lambda m, inputs, out: seen.update(out=out))
    d(x, c)
    weight = d.body.conv1.weight  # (w, 1 + K, 4, 4)
    ones = torch.ones(3, 1, 8, 8, dtype=torch.float64)
    class_maps = F.conv2d(ones, weight[:, 1 + c].transpose(0, 1).reshape(-1, 1, 4, 4), stride=2, padding=1,
                          groups=1)  # (3, 3·w, 4, 4): each image's own class kernel at slots [i·w:(i+1)·w]
    w = weight.shape[0]
    per_image = torch.stack([class_maps[i, i * w:(i + 1) * w] for i in range(3)])  # (3, w, 4, 4)
    expected = F.conv2d(x, weight[:, :1], d.body.conv1.bias, stride=2, padding=1) + per_image
    torch.testing.assert_close(seen["out"], expected, rtol=0, atol=1e-12)


def test_acgan_and_infogan_discriminators_share_one_body_under_linear_heads():
    x = _images(4).double()
    acgan = AuxiliaryClassifierDiscriminator("tiny", generator=0).double()
    logit, classes = acgan(x)
    h = acgan.body(x)
    torch.testing.assert_close(logit, h @ acgan.real.weight[0] + acgan.real.bias[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(classes, h @ acgan.classes.weight.T + acgan.classes.bias, rtol=0, atol=1e-12)
    info = InfoGANDiscriminator(ConditionalGANConfig.tiny(n_continuous=2), generator=0).double()
    logit, code_logits, means = info(x)
    h = info.body(x)
    assert (logit.shape, code_logits.shape, means.shape) == ((4,), (4, 3), (4, 2))
    torch.testing.assert_close(means, h @ info.continuous.weight.T + info.continuous.bias, rtol=0, atol=1e-12)
    assert InfoGANDiscriminator("tiny", generator=0)(_images(4))[2].shape == (4, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_counts_match_the_closed_forms(kind):
    cfg = ConditionalGANConfig.digits(n_continuous=2 if kind == "infogan" else 0)
    gan = ConditionalGAN(cfg, kind=kind, generator=0)
    assert sum(p.numel() for p in gan.generator_net.parameters()) == cfg.generator_parameter_count() == (
        (16 + 10 + cfg.n_continuous + 1) * 64 * 16 + 4 * 32 + 64 * 32 * 16 + 32 + 2 * 32 + 9 * 32 + 1)
    assert sum(p.numel() for p in gan.discriminator_net.parameters()) == cfg.discriminator_parameter_count(kind)
    concat = ConditionalDiscriminator(cfg.digits(), condition="concat")
    assert sum(p.numel() for p in concat.parameters()) == cfg.digits().discriminator_parameter_count("cgan", "concat")


def test_sample_uses_running_statistics_and_keeps_the_training_mode():
    gan = ConditionalGAN.tiny(kind="acgan", generator=0)
    gan.generator_net(torch.randn(16, 3), torch.arange(16) % 3)  # moves batch norm's running statistics
    c = torch.tensor([0, 1, 2])
    first = gan.sample(c, generator=5)
    assert gan.generator_net.training
    gan.generator_net.eval()
    with torch.no_grad():
        expected = gan.generator_net(gan.latent(3, generator=5), c)
    torch.testing.assert_close(first, expected, rtol=0, atol=0)
    assert not gan.generator_net.training
    torch.testing.assert_close(gan.sample(c, generator=5), first, rtol=0, atol=0)
    assert not torch.equal(gan.sample(c, generator=6), first)


def test_codes_are_uniform_over_the_classes_and_the_interval():
    gan = ConditionalGAN(ConditionalGANConfig.digits(n_continuous=2), kind="infogan", generator=0)
    n = 20_000
    c, u = gan.codes(n, generator=0)
    counts = torch.bincount(c, minlength=10).double()
    sd = math.sqrt(n * 0.1 * 0.9)
    assert float((counts - n / 10).abs().max()) < 4.5 * sd
    assert float(u.min()) >= -1 and float(u.max()) <= 1
    assert abs(float(u.mean())) < 4.5 * math.sqrt(1 / 3 / (2 * n))  # Uniform[-1, 1]: variance 1/3
    assert abs(float(u.var()) - 1 / 3) < 0.02
    torch.testing.assert_close(gan.codes(7, generator=3)[0], gan.codes(7, generator=3)[0])
    # no continuous codes: u is given as zeros when sampling, and refused where the config has none
    assert gan.sample(torch.tensor([1, 2]), generator=0).shape == (2, 1, 8, 8)


def test_infogan_mutual_information_term_reaches_the_generator_through_q():
    gan = ConditionalGAN(ConditionalGANConfig.tiny(n_continuous=1), kind="infogan", generator=0)
    c, u = gan.codes(8, generator=0)
    _, code_logits, means = gan.discriminator_net(gan(gan.latent(8, generator=1), c, u))
    (F.cross_entropy(code_logits, c) + 0.5 * ((means - u) ** 2).mean()).backward()
    assert float(gan.generator_net.project.weight.grad.abs().sum()) > 0
    assert float(gan.discriminator_net.classes.weight.grad.abs().sum()) > 0
    assert gan.discriminator_net.real.weight.grad is None  # the real/fake head plays no part in the term


@pytest.mark.parametrize("call, message", [
    (lambda: ConditionalGenerator("tiny")(torch.zeros(2, 3), torch.tensor([0, 3])),
     "The 'c' parameter of ConditionalGenerator must be classes 0 … 2. Got values 0 … 3 instead."),
    (lambda: ConditionalGenerator("tiny")(torch.zeros(2, 3), torch.tensor([0.0, 1.0])),
     "The 'c' parameter of ConditionalGenerator must be"),
    (lambda: ConditionalGenerator("tiny")(torch.zeros(2, 4), torch.tensor([0, 1])),
     "The 'z' parameter of ConditionalGenerator must be a tensor of shape (B, 3). Got shape (2, 4) instead."),
    (lambda: ConditionalGenerator("tiny")(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2, 1)),
     "The 'u' parameter of ConditionalGenerator must be None"),
    (lambda: ConditionalGenerator(ConditionalGANConfig.tiny(n_continuous=1))(torch.zeros(2, 3), torch.tensor([0, 1])),
     "The 'u' parameter of ConditionalGenerator must be a torch.Tensor. Got None instead."),
    (lambda: ConditionalDiscriminator("tiny")(torch.zeros(2, 1, 7, 7), torch.tensor([0, 1])),
     "The 'x' parameter of ConditionalDiscriminator must be a tensor of shape (B, 1, 8, 8). Got shape (2, 1, 7, 7)"),
    (lambda: ConditionalDiscriminator("tiny")(torch.zeros(2, 1, 8, 8), torch.tensor([0])),
     "The 'c' parameter of ConditionalDiscriminator must be a tensor of shape (2,). Got shape (1,) instead."),
    (lambda: ConditionalGAN(ConditionalGANConfig.tiny(n_continuous=1), kind="acgan"),
     "The 'config' parameter of ConditionalGAN must be a config without continuous codes for kind 'acgan'"),
    (lambda: ConditionalGAN("tiny", kind="wgan"), "The 'kind' parameter of ConditionalGAN must be one of"),
    (lambda: ConditionalGANConfig(n_classes=1), "The 'n_classes' parameter of ConditionalGANConfig must be an int >= 2"),
    (lambda: ConditionalGAN.tiny().sample(torch.tensor([[0]])), "The 'c' parameter of ConditionalGAN.sample must be"),
])
def test_bad_inputs_get_one_line(call, message):
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)
