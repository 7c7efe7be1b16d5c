"""udl.models.cyclegan: the three reconstruction losses by their definitions, the translators' receptive field."""

import pytest
import torch

from udl.models.cyclegan import CycleGAN, CycleGANConfig, Translator


def _images(n, seed, size=8):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_losses_are_the_mean_absolute_errors_of_their_definitions():
    model = CycleGAN(CycleGANConfig.tiny(width=3), generator=0)
    a, b = _images(5, 1), _images(7, 2)  # unpaired: not even the same count
    parts = model.losses(a, b)
    l1 = torch.nn.functional.l1_loss
    g, g_prime = model.g, model.g_prime
    assert torch.equal(parts["fake_b"], g(a)) and torch.equal(parts["fake_a"], g_prime(b))
    assert torch.allclose(parts["cycle"], l1(g_prime(g(a)), a) + l1(g(g_prime(b)), b), atol=1e-7)
    assert torch.allclose(parts["content"], l1(g(a), a) + l1(g_prime(b), b), atol=1e-7)
    assert torch.allclose(parts["identity"], l1(g(b), b) + l1(g_prime(a), a), atol=1e-7)
    assert torch.equal(model.round_trip(a), g_prime(g(a))) and torch.equal(model.round_trip(b, "b"), g(g_prime(b)))
    assert torch.equal(model.translate(b, "b_to_a"), g_prime(b)) and torch.equal(model(a, b)[0], g(a))
    # the two directions are different networks: a model whose g' is a copy of g has no cycle to close
    assert not torch.equal(g.from_image.weight, g_prime.from_image.weight)


def test_the_losses_vanish_only_for_the_right_maps():
    """Translators replaced by exact maps: identity (content = identity = 0) and a swap of two images."""
    model = CycleGAN("tiny", generator=0)
    a, b = _images(4, 3), _images(4, 4)
    model.g, model.g_prime = torch.nn.Identity(), torch.nn.Identity()
    parts = model.losses(a, b)
    assert parts["cycle"] == 0 and parts["content"] == 0 and parts["identity"] == 0
    model.g, model.g_prime = _Invert(), _Invert()  # an involution: the cycle closes, but it changes every image
    parts = model.losses(a, b)
    assert float(parts["cycle"]) < 1e-7
    assert torch.allclose(parts["content"], (1 - 2 * a).abs().mean() + (1 - 2 * b).abs().mean())


class _Invert(torch.nn.Module):
    def forward(self, x):
        return 1 - x


@pytest.mark.parametrize("n_blocks", [0, 1, 2])
def test_receptive_field_is_4_n_blocks_plus_5_by_gradient_support(n_blocks):
    """2 + 2 n_blocks 3x3 convolutions: each output pixel sees (4 n_blocks + 5)^2 inputs (13x13 for two blocks)."""
    net = Translator(CycleGANConfig(width=4, n_blocks=n_blocks), generator=1).double()
    # a ReLU that is off blocks some paths for one input: the union of the supports over 8 inputs
    x = torch.rand(8, 1, 21, 21, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    net(x)[:, 0, 10, 10].sum().backward()
    rows, cols = torch.nonzero(x.grad[:, 0].abs().sum(0), as_tuple=True)
    side = 4 * n_blocks + 5
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (side, side)
    assert (rows.min(), cols.min()) == (10 - side // 2, 10 - side // 2)


def test_config_counts_and_presets():
    for config in (CycleGANConfig.tiny(), CycleGANConfig.digits(), CycleGANConfig(channels=3, width=5, n_blocks=0)):
        assert sum(p.numel() for p in Translator(config, generator=0).parameters()) == \
            config.translator_parameter_count()
        assert sum(p.numel() for p in CycleGAN(config, generator=0).parameters()) == config.parameter_count()
    assert CycleGANConfig.digits().parameter_count() == 2 * (9 * 32 + 32 + 2 * 2 * (9 * 32 * 32 + 32) + 9 * 32 + 1)
    out = Translator("tiny", generator=0)(torch.zeros(2, 1, 6, 10))
    assert out.shape == (2, 1, 6, 10) and bool(((out > 0) & (out < 1)).all())
    with pytest.raises(ValueError, match="The 'direction' parameter of CycleGAN.translate"):
        CycleGAN("tiny", generator=0).translate(torch.zeros(1, 1, 8, 8), "a_to_a")
    with pytest.raises(ValueError, match="The 'n_blocks' parameter of CycleGANConfig"):
        CycleGANConfig(n_blocks=-1)
