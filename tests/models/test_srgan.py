"""udl.models.srgan: what is specific to the super-resolver and its discriminator (the common tests: test_zoo)."""

import pytest
import torch
import torch.nn.functional as F

from udl.models.srgan import SRDiscriminator, SRGANConfig, SRResNet, bicubic


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("config", [SRGANConfig.tiny(), SRGANConfig.photos(), SRGANConfig.ledig2017(),
                                    SRGANConfig.tiny(scale=8, batch_norm=True, n_blocks=0, channels=1)])
def test_parameter_counts_equal_the_closed_forms(config):
    with torch.device("meta"):
        g, d = SRResNet(config), SRDiscriminator(config)
    assert sum(p.numel() for p in g.parameters()) == config.generator_parameter_count()
    assert sum(p.numel() for p in d.parameters()) == config.discriminator_parameter_count()


def test_the_original_sizes():
    # Ledig et al.'s SRResNet: 64 maps, 16 blocks with batch norm, 9x9 ends, two x2 sub-pixel steps: 1.55 M
    assert SRGANConfig.ledig2017().generator_parameter_count() == 1_550_659
    assert SRGANConfig.ledig2017().d_widths == (64, 128, 256, 512)


def test_untrained_generator_is_bicubic_and_bicubic_is_torch_interpolate():
    x = rand(2, 3, 5, 7)
    model = SRResNet("tiny", generator=1)
    assert torch.equal(model(x), F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))
    assert torch.equal(bicubic(x, 2), F.interpolate(x, size=(10, 14), mode="bicubic", align_corners=False))
    plain = SRResNet(SRGANConfig.tiny(bicubic_skip=False), generator=1)
    assert plain.tail.weight.abs().sum() > 0  # without the skip the last layer is drawn like the others


def test_one_input_pixel_reaches_the_outputs_its_receptive_field_says():
    # No skip, no blocks, 1x1 ends: the 3x3 conv after the blocks and the one before each x2 step.
    # Input pixel 4 of 8: rows 4 ± 2 at the low resolution (two 3x3 convs) -> rows 4..13 after the first
    # pixel shuffle -> 3..14 after the next 3x3 conv -> 6..29 after the second shuffle.
    config = SRGANConfig.tiny(bicubic_skip=False, n_blocks=0, kernel=1)
    model = SRResNet(config, generator=0)
    x = rand(1, 3, 8, 8)
    y = x.clone()
    y[0, :, 4, 4] += 1.0
    changed = (model(y) - model(x)).abs().sum(1)[0] > 0  # (32, 32)
    assert changed.any(1).nonzero().flatten().tolist() == list(range(6, 30))
    assert changed.any(0).nonzero().flatten().tolist() == list(range(6, 30))


def test_discriminator_takes_any_size_and_its_widths_double():
    d = SRDiscriminator(SRGANConfig.tiny(d_stages=3), generator=0)
    assert d(rand(3, 3, 16, 16)).shape == (3,) and d(rand(1, 3, 23, 9)).shape == (1,)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [4, 4, 8, 8, 16, 16]
    assert [m.stride[0] for m in convs] == [1, 2] * 3


@pytest.mark.parametrize("changes", [dict(scale=3), dict(scale=1), dict(kernel=4), dict(width=0),
                                     dict(batch_norm=1), dict(d_stages=0)])
def test_bad_configs_are_refused(changes):
    with pytest.raises((ValueError, TypeError), match=r"^The '\w+' parameter of SRGANConfig must be"):
        SRGANConfig.tiny(**changes)


def test_wrong_inputs_get_one_line():
    with pytest.raises(ValueError, match=r"^The 'x' parameter of SRResNet"):
        SRResNet("tiny", generator=0)(torch.zeros(1, 1, 4, 4))
    with pytest.raises((ValueError, TypeError), match=r"^The 'x' parameter of SRDiscriminator"):
        SRDiscriminator("tiny", generator=0)(torch.zeros(1, 3, 4, 4, dtype=torch.float64))
