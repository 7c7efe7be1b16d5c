import math

import pytest
import torch

from udl.data.photos import photo_patches, to_grey
from udl.models.pix2pix import PatchDiscriminator
from udl.train.batches import epoch_order
from udl.train.pix2pix import Colouriser, train_pix2pix


def _pairs(n=64, size=16):
    colour = photo_patches(["china", "flower"], size, n, seed=0, downscale=4)
    return to_grey(colour), colour


def test_the_colouriser_starts_as_the_grey_copy_and_keeps_the_luminance():
    grey, colour = _pairs(8)
    g = Colouriser(levels=2, width=4, generator=0)
    torch.testing.assert_close(g(grey), grey.expand(-1, 3, -1, -1), rtol=0, atol=0)  # the head starts at zero
    with torch.no_grad():
        g.unet.head.bias.copy_(torch.tensor([0.05, -0.02, 0.03]))
        g.unet.head.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    out = g(grey)
    inside = ((out > 0) & (out < 1)).all(1, keepdim=True)  # pixels no channel was clipped at
    assert not torch.equal(out, grey.expand(-1, 3, -1, -1)) and bool(inside.float().mean() > 0.9)
    torch.testing.assert_close(to_grey(out)[inside], grey[inside], rtol=0, atol=1e-6)  # Y[x̂] = y


def test_l1_alone_lowers_the_l1_and_the_adversarial_run_trains_the_discriminator():
    grey, colour = _pairs()
    g = Colouriser(levels=2, width=4, generator=0)
    history = train_pix2pix(g, grey, colour, steps=30, batch_size=16, lr=2e-3, ema=0.0, device="cpu")
    assert history["d_loss"] == [0.0] * 30  # no discriminator
    rows = epoch_order(64, 0, seed=0)[:16]  # the first batch: the colouriser starts as the grey copy
    assert history["l1"][0] == pytest.approx(float((grey[rows].expand(-1, 3, -1, -1) - colour[rows]).abs().mean()))
    assert sum(history["l1"][-5:]) / 5 < 0.8 * history["l1"][0]
    torch.testing.assert_close(torch.tensor(history["g_loss"]), 100 * torch.tensor(history["l1"]))  # λ·L1, λ = 100

    g2, d = Colouriser(levels=2, width=4, generator=0), PatchDiscriminator(4, 4, 1, generator=1)
    before = [p.detach().clone() for p in d.parameters()]
    h2 = train_pix2pix(g2, grey, colour, discriminator=d, l1_weight=10.0, steps=5, batch_size=16, device="cpu")
    assert all(v > 0 for v in h2["d_loss"])
    assert h2["d_loss"][0] == pytest.approx(2 * math.log(2), abs=0.05)  # 2 log 2 while f ≈ 0
    assert all(gl > 10 * l1 for gl, l1 in zip(h2["g_loss"], h2["l1"]))  # softplus(−f) > 0 is added
    assert any(not torch.equal(a, b) for a, b in zip(before, d.parameters()))


def test_the_moving_average_is_what_the_colouriser_keeps():
    grey, colour = _pairs(32)
    seen = []
    last = Colouriser(levels=2, width=4, generator=0)
    kept = Colouriser(levels=2, width=4, generator=0)

    def record(step, averaged):
        seen.append([p.detach().clone() for p in averaged.parameters()])

    train_pix2pix(last, grey, colour, steps=4, batch_size=8, lr=1e-2, ema=0.0, device="cpu")
    train_pix2pix(kept, grey, colour, steps=4, batch_size=8, lr=1e-2, ema=0.5, device="cpu", callback=record)
    assert len(seen) == 4
    for p, q in zip(kept.parameters(), seen[-1]):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=0)
    assert any(not torch.equal(p, q) for p, q in zip(kept.parameters(), last.parameters()))


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(grey=torch.zeros(4, 3, 8, 8)), ValueError, "grey"),
    (dict(colour=torch.zeros(4, 3, 8, 4)), ValueError, "colour"),
    (dict(discriminator=PatchDiscriminator(3, 2, 1)), ValueError, "discriminator"),
    (dict(l1_weight=0.0), ValueError, "l1_weight"), (dict(ema=1.0), ValueError, "ema"),
    (dict(lr=-1.0), ValueError, "lr")])
def test_bad_arguments(kwargs, error, name):
    args = dict(colouriser=Colouriser(levels=2, width=2), grey=torch.zeros(4, 1, 8, 8), colour=torch.zeros(4, 3, 8, 8),
                steps=1, batch_size=2, device="cpu") | kwargs
    with pytest.raises(error, match=rf"^The '{name}' parameter of train_pix2pix must be .+ instead\.$"):
        train_pix2pix(**args)
