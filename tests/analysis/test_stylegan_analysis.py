"""udl.analysis.stylegan: the style-mixing shares at the crossovers where the answer is known (all layers from
one source), and the noise/latent changes against their definition (zero noise scales: no change)."""

from __future__ import annotations

import math

import pytest
import torch

from udl.analysis.generative import digit_classifier
from udl.analysis.image_quality import high_frequency_energy
from udl.analysis.stylegan import mixing_classes, noise_change_bands
from udl.models.stylegan import StyleGANConfig, StyleGenerator


def _model() -> StyleGenerator:
    """An untrained digits-sized generator with its noise scales moved off zero: varied images, noise that acts."""
    model = StyleGenerator(StyleGANConfig.digits(channels=(8, 4), d_latent=8, d_style=8), generator=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in model.layers:
            layer.noise.psi.copy_(0.5 * torch.randn(layer.noise.psi.shape, generator=g))
    return model


def test_mixing_shares_at_the_crossovers_with_a_known_answer():
    model = _model()
    everything_coarse = mixing_classes(model, 100, crossover=model.n_styles, generator=3)
    assert everything_coarse["pairs"] >= 5
    assert everything_coarse["coarse_share"] == 1.0 and everything_coarse["fine_share"] == 0.0
    everything_fine = mixing_classes(model, 100, crossover=0, generator=3)
    assert everything_fine["fine_share"] == 1.0 and everything_fine["coarse_share"] == 0.0
    # the classes are the independent classifier's, for the documented draw
    g = torch.Generator().manual_seed(3)
    z_a, z_b = model.latent(100, generator=g), model.latent(100, generator=g)
    noise = model.draw_noise(100, generator=g)
    with torch.no_grad():
        judge = digit_classifier()
        assert torch.equal(everything_fine["classes_a"], judge(model(z_a, noise)).argmax(1))
        assert torch.equal(everything_fine["classes_b"], judge(model(z_b, noise)).argmax(1))
    middle = mixing_classes(model, 100, generator=3)
    differ = middle["classes_a"] != middle["classes_b"]
    expected = float(((middle["classes_mixed"] == middle["classes_a"]) & differ).sum()) / int(differ.sum())
    assert middle["coarse_share"] == expected
    assert math.isclose(middle["coarse_share"] + middle["fine_share"] + middle["other_share"], 1.0)


def test_noise_and_latent_changes_follow_their_definition():
    model = _model()
    out = noise_change_bands(model, 20, cutoff=0.25, generator=4)
    g = torch.Generator().manual_seed(4)
    z, z2 = model.latent(20, generator=g), model.latent(20, generator=g)
    nu, nu2 = model.draw_noise(20, generator=g), model.draw_noise(20, generator=g)
    with torch.no_grad():
        x = model(z, nu)
        for name, change in (("noise", model(z, nu2) - x), ("style", model(z2, nu) - x)):
            change = change.double()
            assert torch.allclose(out[f"{name}_change"].double(), change, atol=1e-7)
            energy = change.pow(2).mean((1, 2, 3))
            assert out[f"{name}_energy"] == pytest.approx(float(energy.mean()), rel=1e-9)
            share = float(high_frequency_energy(change, cutoff=0.25).sum() / energy.sum())
            assert out[f"{name}_high_share"] == pytest.approx(share, rel=1e-9)
            assert 0 < share < 1
    # cutoff 0 leaves only the mean of each change below it
    zero = noise_change_bands(model, 20, cutoff=0.0, generator=4)
    noise_change = zero["noise_change"].double()
    mean_part = noise_change.mean((2, 3)).pow(2).sum() / noise_change.pow(2).mean((2, 3)).sum()
    assert zero["noise_high_share"] == pytest.approx(1 - float(mean_part), rel=1e-9)
    # with every noise scale at zero, new noise changes nothing
    for layer in model.layers:
        layer.noise.psi.data.zero_()
    silent = noise_change_bands(model, 20, generator=4)
    assert silent["noise_energy"] == 0.0 and math.isnan(silent["noise_high_share"])
    assert silent["style_energy"] > 0


def test_bad_arguments_get_the_template():
    model = _model()
    with pytest.raises(ValueError, match=r"The 'crossover' parameter of mixing_classes must be .+\. Got .+ instead\."):
        mixing_classes(model, 4, crossover=5)
    with pytest.raises(ValueError, match=r"The 'cutoff' parameter of noise_change_bands must be .+\. Got .+ instead\."):
        noise_change_bands(model, 4, cutoff=0.7)
    with pytest.raises(TypeError, match=r"The 'model' parameter of mixing_classes must be .+\. Got .+ instead\."):
        mixing_classes(torch.nn.Linear(2, 2), 4)
