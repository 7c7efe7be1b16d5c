"""U-Net: the original's sizes and parameter count, skip concatenation, centre crops, 2D and 3D."""

import numpy as np
import pytest
import torch

from udl.models.unet import (UNet, center_crop, reflect_pad, split_tiles, trace_unet, unet_geometry,
                             unet_input_size, unet_parameter_count, unet_tile_sizes)


@pytest.fixture(scope="module")
def original():
    """The U-Net of Ronneberger et al. on the meta device: shapes and counts, no memory."""
    with torch.device("meta"):
        model = UNet(1, 2, levels=5, width=64, padding="valid")
        trace = trace_unet(model, torch.zeros(1, 1, 572, 572))
    return model, trace


def test_the_original_maps_572_to_388(original):
    _, trace = original
    assert trace.input == (1, 572, 572) and trace.output == (2, 388, 388)
    g = unet_geometry(572, levels=5)
    assert g.output_size == 388 and unet_input_size(388, levels=5) == 572
    # the sizes printed in Ronneberger et al.'s figure 1
    assert [e[1][1:] for e in trace.encoder] == [(568, 568), (280, 280), (136, 136), (64, 64), (28, 28)]
    assert [u[1:] for u in trace.up] == [(392, 392), (200, 200), (104, 104), (56, 56)]
    assert [d[1][1] for d in trace.decoder] == [388, 196, 100, 52]
    assert list(g.encoder) == [e[1][1] for e in trace.encoder] and list(g.up) == [u[1] for u in trace.up]
    assert list(g.decoder) == [d[1][1] for d in trace.decoder]
    assert g.crops == (88, 40, 16, 4)


def test_the_original_parameter_count_is_the_closed_form(original):
    model, _ = original
    n = sum(p.numel() for p in model.parameters())
    assert n == unet_parameter_count(1, 2, levels=5, width=64) == 31_030_658
    # by hand: the bottleneck alone is 3·3·512·1024 + 1024 + 3·3·1024·1024 + 1024
    assert sum(p.numel() for p in model.encoder[4].parameters()) == 9 * 512 * 1024 + 9 * 1024 * 1024 + 2 * 1024


@pytest.mark.parametrize("dims, levels, width, bn", [(2, 3, 4, False), (2, 4, 3, True), (3, 2, 5, True),
                                                     (3, 3, 2, False)])
def test_parameter_count_formula(dims, levels, width, bn):
    model = UNet(2, 3, dims=dims, levels=levels, width=width, batch_norm=bn, generator=0)
    assert sum(p.numel() for p in model.parameters()) == unet_parameter_count(2, 3, dims=dims, levels=levels,
                                                                              width=width, batch_norm=bn)


def test_skip_connections_concatenate_encoder_and_decoder_channels(original):
    _, trace = original
    assert trace.concat[3][0] == 512 + 512  # the first decoder level of the original
    for k in range(4):
        c_k = 64 * 2 ** k
        assert trace.skip[k][0] == trace.up[k][0] == c_k
        assert trace.concat[k] == (2 * c_k, *trace.up[k][1:])
        assert trace.decoder[k][1][0] == c_k


def test_the_skip_really_carries_the_cropped_encoder_features():
    model = UNet(1, 2, levels=3, width=4, generator=0)
    x = torch.randn(1, 1, 60, 60)
    seen = {}
    model.skip[0].register_forward_hook(lambda m, inp, out: seen.update(skip=inp[0], up=inp[1], out=out))
    model(x)
    skip, up, out = seen["skip"], seen["up"], seen["out"]
    assert skip.shape[-1] == 56 and up.shape[-1] == 24  # 60 -> 56 (two valid convs); 6 -> 12 -> ... -> 24
    assert torch.equal(out[:, :4], skip[..., 16:40, 16:40]) and torch.equal(out[:, 4:], up)


def test_center_crop_is_centred():
    x = torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).view(2, 3, 8, 10)
    y = center_crop(x, (4, 6))
    assert torch.equal(y, x[:, :, 2:6, 2:8])
    assert torch.equal(center_crop(x, (7, 10)), x[:, :, 0:7, :])  # odd difference: the extra row goes at the end
    v = torch.randn(1, 1, 9, 9, 9)
    assert torch.equal(center_crop(v, (3, 5, 9)), v[..., 3:6, 2:7, :])


def test_same_padding_keeps_the_size_and_3d_shapes():
    m2 = UNet(1, 3, levels=3, width=4, padding="same", generator=0)
    assert m2(torch.zeros(2, 1, 24, 32)).shape == (2, 3, 24, 32)
    m3 = UNet(2, 2, dims=3, levels=3, width=2, padding="same", batch_norm=True, generator=0)
    assert m3(torch.zeros(1, 2, 8, 12, 16)).shape == (1, 2, 8, 12, 16)
    m3v = UNet(1, 2, dims=3, levels=2, width=2, generator=0)
    g = unet_geometry(20, levels=2)
    assert (g.encoder, g.up, g.output_size) == ((16, 4), (8,), 4)
    assert m3v(torch.zeros(1, 1, 20, 20, 20)).shape == (1, 2, 4, 4, 4)
    t = trace_unet(m3v, torch.zeros(1, 1, 20, 24, 20))
    assert t.concat == ((4, 8, 12, 8),) and t.output == (2, 4, 8, 4)


def test_bad_sizes_are_refused_with_the_nearest_sizes_that_work():
    with pytest.raises(ValueError, match=r"^The 'input_size' parameter of unet_geometry must be a size that a 5-level "
                                         r"U-Net with 'valid' padding accepts, even before every pooling and at least "
                                         r"one pixel throughout \(the nearest are 556 and 572\)\. Got 570 \(the "
                                         r"representation has odd size 279 before pooling 2\) instead\.$"):
        unet_geometry(570, levels=5)
    with pytest.raises(ValueError, match=r"^The 'output_size' parameter of unet_input_size must be a size that a "
                                         r"5-level U-Net with 'valid' padding produces \(the nearest are 388 and "
                                         r"404\)\. Got 390 instead\.$"):
        unet_input_size(390, levels=5)
    model = UNet(1, 2, levels=3, width=2, padding="same")
    with pytest.raises(ValueError, match=r"^The 'x' parameter of UNet\.forward must have spatial sizes each a size "
                                         r".*\(the nearest are 16 and 20\)\. Got shape \(1, 1, 16, 18\) \(size 18: "
                                         r"the representation has odd size 9 before pooling 2\) instead\.$"):
        model(torch.zeros(1, 1, 16, 18))
    with pytest.raises(ValueError, match=r"shape \(N, 1, s1, s2\)"):
        model(torch.zeros(1, 2, 20, 20))
    with pytest.raises(ValueError, match="shrinks"):
        unet_geometry(8, levels=2)


def test_geometry_closed_form_for_every_valid_size():
    # valid input sizes are exactly 2^(L-1) b + 4 (2^L - 1) ... checked against the step-by-step walk
    for levels in (1, 2, 3, 4):
        works = []
        for n in range(1, 200):
            try:
                g = unet_geometry(n, levels=levels)
            except ValueError:
                continue
            works.append(n)
            assert unet_input_size(g.output_size, levels=levels) == n
            assert n - g.output_size == 4 * (2 ** levels - 1) + 4 * (2 ** (levels - 1) - 1)
        step = 2 ** (levels - 1)
        assert np.all(np.diff(works) == step) and works[0] - 4 * (2 ** levels - 1) > 0


def test_tile_sizes_and_predict_cover_the_image():
    assert unet_tile_sizes(380, levels=5) == (572, 388) and unet_tile_sizes(388, levels=5) == (572, 388)
    assert unet_tile_sizes(13, levels=3, padding="same") == (16, 16)
    model = UNet(1, 2, levels=3, width=4, generator=1).eval()
    x = torch.randn(2, 1, 37, 41, requires_grad=True)
    out = model.predict(x)
    assert out.shape == (2, 2, 37, 41)
    # sizes 40 and 44 are outputs of the network (inputs 80, 84): predict pads 20 pixels on every side
    y = x.detach()[:, :, :36, :40]
    y = torch.cat([y, y.flip(2)[:, :, :4]], 2)[..., :40]  # (2, 1, 40, 40)
    assert torch.equal(model.predict(y), model(reflect_pad(y, [(20, 20), (20, 20)])))
    # output pixel (i, j) lies over input pixel (i, j): its receptive field (44 pixels, aligned with the
    # pooling grid: four neighbouring outputs share it) is centred there to within 1.5 pixels
    for i, j in [(25, 30), (24, 31), (26, 29)]:
        x = torch.randn(2, 1, 50, 60, requires_grad=True)
        model.predict(x)[1, 1, i, j].backward()
        rows, cols = torch.nonzero(x.grad[1, 0], as_tuple=True)
        assert x.grad[0].abs().sum() == 0 and rows.max() - rows.min() + 1 == 44
        assert abs((rows.min() + rows.max()) / 2 - i) <= 1.5 and abs((cols.min() + cols.max()) / 2 - j) <= 1.5


def test_reflect_pad_equals_numpy_for_any_width():
    x = torch.randn(1, 2, 5, 3)
    for pad in [[(2, 1), (1, 2)], [(7, 11), (4, 0)], [(0, 0), (9, 9)]]:
        expected = np.pad(x.numpy(), [(0, 0), (0, 0), *pad], mode="reflect")
        assert np.array_equal(reflect_pad(x, pad).numpy(), expected)
    assert reflect_pad(torch.ones(1, 1, 1), [(3, 2)]).shape == (1, 1, 6)


def test_he_initialisation_keeps_the_activations_scale():
    model = UNet(1, 1, levels=2, width=64, padding="same", generator=0)
    w = model.encoder[1][1][0].weight  # 3x3 conv, 128 -> 128
    assert w.std().item() == pytest.approx((2 / (9 * 128)) ** 0.5, rel=0.02)
    assert model.up[0].weight.std().item() == pytest.approx((1 / 128) ** 0.5, rel=0.05)



def test_split_tiles_cuts_every_image_into_its_pieces():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    t = split_tiles(x, 2)
    assert t.shape == (12, 3, 2, 2)
    assert torch.equal(t[0], x[0, :, 0:2, 0:2]) and torch.equal(t[4], x[0, :, 2:4, 2:4])
    assert torch.equal(t[11], x[1, :, 2:4, 4:6])
    v = torch.randn(2, 1, 8, 8, 8)
    tv = split_tiles(v, 4)
    assert tv.shape == (16, 1, 4, 4, 4) and torch.equal(tv[8 + 5], v[1, :, 4:8, 0:4, 4:8])
    with pytest.raises(ValueError, match="must divide"):
        split_tiles(v, 3)
