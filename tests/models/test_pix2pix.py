import pytest
import torch
from torch import nn

from udl.analysis.receptive_field import (gradient_support, layer_geometry, receptive_field_interval,
                                          receptive_field_sizes, support_interval)
from udl.models.pix2pix import PatchDiscriminator, patch_map_size, patch_receptive_field


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_the_closed_form_receptive_field_equals_the_layer_by_layer_recursion(n_layers):
    d = PatchDiscriminator(4, 2, n_layers, generator=0)
    for axis in (0, 1):
        assert receptive_field_sizes(layer_geometry(d, axis))[-1] == d.receptive_field == 9 * 2 ** n_layers - 2
    assert [patch_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]  # 70 x 70: Pix2Pix's PatchGAN


@pytest.mark.parametrize("n_layers, size, unit", [(1, 32, (7, 6)), (2, 64, (7, 7)), (2, 48, (0, 9))])
def test_the_gradient_support_of_a_logit_is_its_receptive_field(n_layers, size, unit):
    d = PatchDiscriminator(4, 4, n_layers, generator=1)
    mask = gradient_support(d, (4, size, size), (0, *unit), n_probes=8)
    layers = layer_geometry(d)
    boxes = [receptive_field_interval(layers, i) for i in unit]
    clipped = [(max(lo, 0), min(hi, size - 1)) for lo, hi in boxes]  # the part on the zero padding has no gradient
    assert support_interval(mask) == clipped
    rows, cols = clipped
    assert bool(mask[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1].all()) and int(mask.sum()) == \
        (rows[1] - rows[0] + 1) * (cols[1] - cols[0] + 1)  # every pixel of the box, none outside
    if unit == (7, 7):  # an interior unit sees exactly r x r pixels
        assert rows[1] - rows[0] + 1 == d.receptive_field == 34


@pytest.mark.parametrize("n_layers, size", [(1, 6), (1, 7), (1, 32), (1, 33), (2, 12), (2, 45), (3, 64), (3, 70)])
def test_the_map_size_formula(n_layers, size):
    d = PatchDiscriminator(2, 2, n_layers, generator=0).eval()
    out = d(torch.zeros(1, 2, size, size + 5))
    assert out.shape == (1, 1, patch_map_size(size, n_layers), patch_map_size(size + 5, n_layers))
    assert d.map_size(size) == size // 2 ** n_layers - 2 >= 1


def test_the_condition_is_stacked_before_the_image():
    d = PatchDiscriminator(4, 4, 1, generator=0).eval()
    g = torch.Generator().manual_seed(0)
    grey, colour = torch.rand(2, 1, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    torch.testing.assert_close(d(colour, grey), d(torch.cat([grey, colour], 1)), rtol=0, atol=0)


def test_layers_channels_and_initialisation():
    d = PatchDiscriminator(4, 8, 4, generator=0)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 64, 1]  # width · min(2^k, 8), then one logit
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 1, 1]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 4  # all but the first and last
    weights = torch.cat([c.weight.detach().flatten() for c in convs])
    assert abs(float(weights.std()) - 0.02) < 0.001 and abs(float(weights.mean())) < 0.001
    assert all(c.bias is None or bool((c.bias == 0).all()) for c in convs)
    plain = PatchDiscriminator(4, 8, 2, batch_norm=False, generator=0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))


def test_bad_inputs():
    d = PatchDiscriminator(4, 2, 2, generator=0)
    with pytest.raises(ValueError, match=r"^The 'x' parameter of PatchDiscriminator.forward must be at least 12 x 12"):
        d(torch.zeros(1, 4, 11, 16))
    with pytest.raises(ValueError, match=r"^The 'x' parameter of PatchDiscriminator.forward must be a tensor"):
        d(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"^The 'condition' parameter of PatchDiscriminator.forward must have fewer"):
        d(torch.zeros(1, 3, 16, 16), torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match=r"^The 'n_layers' parameter of PatchDiscriminator must be an int in \[1, 8\]"):
        PatchDiscriminator(4, 2, 9)
