"""udl.models.stylegan: AdaIN against the closed form and torch's instance norm, the noise inputs, the mapping
network, style mixing and the parameter count.

The common model tests (seeding, gradients, meta build, state_dict, bad arguments) are in
tests/models/test_zoo.py.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from udl.models.stylegan import AdaIN, MappingNetwork, NoiseInjection, StyleGANConfig, StyleGenerator, StyleLayer

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _perturbed(model: torch.nn.Module, seed: int = 5, scale: float = 0.3) -> torch.nn.Module:
    """Move every parameter away from its special start (zero noise scales, unit constant)."""
    g = _g(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


# --------------------------------------------------------------------------- AdaIN
def test_adain_sets_each_channels_mean_and_scale_to_the_style():
    layer = AdaIN(5, 3, generator=0).double()
    h = torch.randn(4, 5, 6, 7, generator=_g(1), dtype=torch.float64) * 3 + 2
    w = torch.randn(4, 3, generator=_g(2), dtype=torch.float64)
    out = layer(h, w)
    gamma, beta = layer.style(w)
    # closed form: γ (h − μ) / sqrt(σ² + ε) + β, per image and channel
    mu = h.mean(dim=(2, 3), keepdim=True)
    var = ((h - mu) ** 2).mean(dim=(2, 3), keepdim=True)
    expected = gamma[..., None, None] * (h - mu) / torch.sqrt(var + 1e-5) + beta[..., None, None]
    assert torch.allclose(out, expected, rtol=0, atol=1e-12)
    # the reference: torch's instance normalisation, then the style's affine map
    reference = F.instance_norm(h, eps=1e-5) * gamma[..., None, None] + beta[..., None, None]
    assert torch.allclose(out, reference, rtol=0, atol=1e-12)
    # the moments of the output are the style's: mean β, standard deviation |γ| (up to ε)
    assert torch.allclose(out.mean(dim=(2, 3)), beta, rtol=0, atol=1e-12)
    std = out.std(dim=(2, 3), unbiased=False)
    assert torch.allclose(std, gamma.abs() * torch.sqrt(var / (var + 1e-5))[..., 0, 0], rtol=0, atol=1e-12)


def test_adain_style_is_one_plus_the_affine_map():
    layer = AdaIN(2, 3, generator=0).double()
    w = torch.randn(4, 3, generator=_g(1), dtype=torch.float64)
    gamma, beta = layer.style(w)
    a = w @ layer.affine.weight.T + layer.affine.bias  # (4, 4)
    assert torch.allclose(gamma, 1 + a[:, :2], atol=1e-14) and torch.allclose(beta, a[:, 2:], atol=1e-14)


def test_adain_forgets_the_inputs_moments():
    """Only the pattern within each channel passes: shifting or scaling a channel of h changes nothing."""
    layer = AdaIN(3, 2, generator=0).double()
    h = torch.randn(2, 3, 4, 4, generator=_g(1), dtype=torch.float64)
    w = torch.randn(2, 2, generator=_g(2), dtype=torch.float64)
    moved = h * torch.tensor([2.0, 5.0, 0.5], dtype=torch.float64)[:, None, None] + 7.0
    assert torch.allclose(layer(h, w), layer(moved, w), atol=1e-5)


def test_adain_refuses_a_wrong_style():
    layer = AdaIN(3, 2, generator=0)
    with pytest.raises(ValueError, match=TEMPLATE.format("w", "AdaIN")):
        layer(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=TEMPLATE.format("h", "AdaIN")):
        layer(torch.zeros(2, 4, 4, 4), torch.zeros(2, 2))


# --------------------------------------------------------------------------- noise and the mapping
def test_noise_is_added_with_a_learned_scale_per_channel_starting_at_zero():
    layer = NoiseInjection(3)
    h = torch.randn(2, 3, 4, 4, generator=_g(0))
    n = torch.randn(2, 1, 4, 4, generator=_g(1))
    assert torch.equal(layer(h, n), h)  # ψ = 0: nothing added
    with torch.no_grad():
        layer.psi.copy_(torch.tensor([0.0, 1.0, -2.0]))
    out = layer(h, n)
    assert torch.equal(out[:, 0], h[:, 0])
    assert torch.allclose(out[:, 1], h[:, 1] + n[:, 0]) and torch.allclose(out[:, 2], h[:, 2] - 2 * n[:, 0])
    # ψ learns from zero: the gradient of a loss reaches it
    layer.psi.data.zero_()
    (layer(h, n) ** 2).sum().backward()
    assert layer.psi.grad.abs().min() > 0


def test_the_mapping_network_is_its_layers_on_the_normalised_latent():
    net = MappingNetwork(3, 4, 2, generator=0).double()
    z = torch.randn(5, 3, generator=_g(1), dtype=torch.float64)
    h = z / z.pow(2).mean(1, keepdim=True).sqrt()
    for layer in net.layers:
        h = F.leaky_relu(h @ layer.weight.T + layer.bias, 0.2)
    assert torch.allclose(net(z), h, atol=1e-6)
    assert torch.allclose(net(3 * z), net(z), atol=1e-6)  # only the direction of z matters
    assert len(net.layers) == 2 and net(z).shape == (5, 4)


# --------------------------------------------------------------------------- the generator
def test_parameter_count_is_the_closed_form():
    for config in (StyleGANConfig.tiny(), StyleGANConfig.digits(), StyleGANConfig(image_size=16, channels=(8, 6, 4))):
        model = StyleGenerator(config, generator=0)
        assert sum(p.numel() for p in model.parameters()) == config.parameter_count()
    assert StyleGANConfig.digits().parameter_count() == 27_409  # 4,224 mapping + 512 constant + 22,656 layers + 17


def test_layers_resolutions_and_output():
    model = StyleGenerator(StyleGANConfig(image_size=16, channels=(8, 6, 4)), generator=0)
    assert model.n_styles == 6 and model.resolutions == (4, 4, 8, 8, 16, 16)
    assert model.layers[0].conv is None and model.layers[1].conv.in_channels == 8
    assert model.layers[2].conv.out_channels == 6
    x = model.sample(3, generator=1)
    assert x.shape == (3, 1, 16, 16) and bool(((x > 0) & (x < 1)).all())
    # the constant has a spatial pattern (N(0, 1)): a flat one would be normalised to zero by the first AdaIN
    assert float(model.constant.detach().std(dim=(2, 3)).min()) > 0.4


def test_at_the_start_the_style_shapes_the_image_and_the_noise_adds_nothing():
    model = StyleGenerator("digits", generator=0)
    z, noise = model.latent(64, generator=1), model.draw_noise(64, generator=2)
    with torch.no_grad():
        x = model(z, noise)
        assert torch.equal(model(z, model.draw_noise(64, generator=3)), x)  # ψ = 0
    assert float(x.std(0).mean()) > 0.05  # different latents, different images
    with torch.no_grad():
        gamma, beta = model.layers[0].adain.style(model.mapping(z))
    assert 0.1 < float(gamma.std()) < 2 and 0.1 < float(beta.std()) < 2  # the style moves each channel by O(1)


def test_forward_is_synthesis_of_the_mapped_latent_and_sampling_is_seeded():
    model = _perturbed(StyleGenerator("tiny", generator=0))
    z, noise = model.latent(3, generator=1), model.draw_noise(3, generator=2)
    assert torch.equal(model(z, noise), model.synthesis(model.mapping(z), noise))
    ws = model.mapping(z)[:, None].expand(-1, model.n_styles, -1)
    assert torch.equal(model.synthesis(ws, noise), model(z, noise))  # one w for every layer
    assert torch.equal(model.sample(4, generator=7), model.sample(4, generator=7))
    assert not torch.equal(model.sample(4, generator=7), model.sample(4, generator=8))
    g = _g(7)
    expected = model(model.latent(4, generator=g), model.draw_noise(4, generator=g))
    assert torch.equal(model.sample(4, generator=7), expected)  # z first, then the noise


def test_style_mixing_takes_coarse_layers_from_one_latent_and_fine_from_the_other():
    model = _perturbed(StyleGenerator("tiny", generator=0))
    a, b = model.latent(3, generator=1), model.latent(3, generator=2)
    noise = model.draw_noise(3, generator=3)
    assert torch.equal(model.mix(a, b, noise, crossover=model.n_styles), model(a, noise))
    assert torch.equal(model.mix(a, b, noise, crossover=0), model(b, noise))
    ws = model.mixed_styles(model.mapping(a), model.mapping(b))  # crossover 2: the 4x4 layers
    assert torch.equal(ws[:, :2], model.mapping(a)[:, None].expand(-1, 2, -1))
    assert torch.equal(ws[:, 2:], model.mapping(b)[:, None].expand(-1, 2, -1))
    mixed = model.mix(a, b, noise)
    assert not torch.equal(mixed, model(a, noise)) and not torch.equal(mixed, model(b, noise))


def test_noise_changes_the_image_only_through_the_learned_scales():
    model = _perturbed(StyleGenerator("tiny", generator=0))
    z = model.latent(3, generator=1)
    n1, n2 = model.draw_noise(3, generator=2), model.draw_noise(3, generator=3)
    assert not torch.equal(model(z, n1), model(z, n2))
    for layer in model.layers:
        layer.noise.psi.data.zero_()
    assert torch.equal(model(z, n1), model(z, n2))
    # a layer's noise is read at that layer only: changing layer 3's noise with ψ_3 = 0 changes nothing
    model = _perturbed(StyleGenerator("tiny", generator=0))
    model.layers[3].noise.psi.data.zero_()
    n3 = [n.clone() for n in n1]
    n3[3] = n2[3]
    assert torch.equal(model(z, n1), model(z, n3))


def test_every_parameter_learns_from_the_image():
    model = StyleGenerator("tiny", generator=0)
    z, noise = model.latent(4, generator=1), model.draw_noise(4, generator=2)
    model(z, noise).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_bad_arguments_get_the_template():
    with pytest.raises(ValueError, match=TEMPLATE.format("image_size", "StyleGANConfig")):
        StyleGANConfig(image_size=12, channels=(4, 4))
    with pytest.raises(ValueError, match=TEMPLATE.format("channels", "StyleGANConfig")):
        StyleGANConfig(image_size=16, channels=(4, 4))
    model = StyleGenerator("tiny", generator=0)
    z = model.latent(2, generator=0)
    with pytest.raises(ValueError, match=TEMPLATE.format("noise", re.escape("StyleGenerator.synthesis"))):
        model(z, model.draw_noise(2, generator=0)[:3])
    with pytest.raises(ValueError, match=TEMPLATE.format("noise", re.escape("StyleGenerator.synthesis"))):
        model(z, model.draw_noise(3, generator=0))
    with pytest.raises(ValueError, match=TEMPLATE.format("z", "MappingNetwork")):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=TEMPLATE.format("ws", re.escape("StyleGenerator.synthesis"))):
        model.synthesis(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=TEMPLATE.format("crossover", re.escape("StyleGenerator.mixed_styles"))):
        model.mix(z, z, crossover=5)
    with pytest.raises(ValueError, match=TEMPLATE.format("in_channels", "StyleLayer")):
        StyleLayer(0, 3, 2)
