"""udl.train.srgan: the low-resolution input, the two recipes and the cached pair (tiny networks, few steps)."""

import pytest
import torch
import torch.nn.functional as F

from udl.analysis.image_quality import psnr
from udl.models.srgan import SRDiscriminator, SRGANConfig, SRResNet, bicubic
from udl.nn.adversarial import discriminator_loss
from udl.train.srgan import (ContentLoss, low_resolution, photo_super_resolvers, super_resolve, train_content,
                             train_srgan)


def smooth_patches(n=64, size=16, seed=0):
    """Random smooth colour images: low-frequency noise enlarged bicubically (a super-resolver can learn them)."""
    g = torch.Generator().manual_seed(seed)
    return bicubic(torch.rand(n, 3, size // 4, size // 4, generator=g), 4).clamp(0, 1)


def test_low_resolution_is_the_block_average():
    x = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(low_resolution(x), F.avg_pool2d(x, 4), rtol=0, atol=1e-6)
    assert low_resolution(x, 2).shape == (2, 3, 4, 6)


def test_content_loss_is_the_squared_error_of_the_enlargement():
    model = SRResNet("tiny", generator=0)
    x = smooth_patches(4)
    expected = ((bicubic(F.avg_pool2d(x, 4)) - x) ** 2).mean()  # the untrained network is bicubic
    torch.testing.assert_close(ContentLoss(model)(x), expected)


def test_content_training_beats_bicubic_on_held_out_patches():
    train, test = smooth_patches(256, seed=0), smooth_patches(32, seed=1)
    model = SRResNet(SRGANConfig.tiny(width=8), generator=0)
    losses = train_content(model, train, steps=150, batch_size=32, lr=3e-3, device="cpu")
    assert len(losses) == 150 and not model.training
    low = low_resolution(test)
    gain = psnr(super_resolve(model, low), test).mean() - psnr(bicubic(low).clamp(0, 1), test).mean()
    assert gain > 0.5, float(gain)  # dB


def test_adversarial_training_runs_the_alternating_loop_and_records_both_terms():
    x = smooth_patches(64)
    model, disc = SRResNet("tiny", generator=0), SRDiscriminator("tiny", generator=1)
    before = [p.detach().clone() for p in disc.parameters()]
    history = train_srgan(model, disc, x, steps=4, batch_size=8, adversarial_weight=0.5, device="cpu")
    assert set(history) == {"d_loss", "g_loss", "content", "adversarial"}
    assert all(len(v) == 4 for v in history.values())
    for g, c, a in zip(history["g_loss"], history["content"], history["adversarial"]):
        assert abs(g - (c + 0.5 * a)) < 1e-5
    assert any(not torch.equal(a, b) for a, b in zip(before, disc.parameters()))
    # the first discriminator loss: its BCE on the first batch with the untrained (bicubic) generator
    from udl.train.batches import epoch_order

    batch = x[epoch_order(64, 0, seed=0)[:8]]
    d0 = SRDiscriminator("tiny", generator=1)
    expected = discriminator_loss(d0(batch), d0(bicubic(low_resolution(batch))))
    assert abs(history["d_loss"][0] - float(expected.detach())) < 1e-5


def test_photo_super_resolvers_are_cached_and_start_the_adversarial_one_from_the_content_one(tmp_path, monkeypatch):
    monkeypatch.setenv("UDL_DATA_DIR", str(tmp_path))
    kwargs = dict(config=SRGANConfig.tiny(), downscale=8, patch=16, n_patches=16, steps=2, adversarial_steps=2,
                  device="cpu")
    content, adversarial, record = photo_super_resolvers(**kwargs)
    assert len(record["content_losses"]) == 2 and len(record["d_loss"]) == 2
    again, _, _ = photo_super_resolvers(**kwargs)  # read back, not retrained
    assert all(torch.equal(a, b) for a, b in zip(content.state_dict().values(), again.state_dict().values()))
    assert any(not torch.equal(a, b) for a, b in zip(content.state_dict().values(),
                                                     adversarial.state_dict().values()))
    same, same_adv, _ = photo_super_resolvers(**{**kwargs, "adversarial_steps": 0})
    assert same is same_adv


@pytest.mark.parametrize("call", [
    lambda: train_content(SRResNet("tiny"), torch.zeros(8, 3, 10, 10), steps=1),
    lambda: train_content(SRResNet("tiny"), torch.zeros(8, 3, 8, 8), steps=0),
    lambda: train_content(SRResNet("tiny"), torch.zeros(8, 3, 8, 8), steps=1, batch_size=9),
    lambda: train_srgan(SRResNet("tiny"), torch.nn.Linear(2, 2), torch.zeros(8, 3, 8, 8), steps=1),
    lambda: train_srgan(SRResNet("tiny"), SRDiscriminator("tiny"), torch.zeros(8, 3, 8, 8), steps=1,
                        adversarial_weight=-1.0),
    lambda: low_resolution(torch.zeros(3, 8, 8)),
    lambda: super_resolve(SRResNet("tiny"), torch.zeros(1, 1, 4, 4)),
    lambda: photo_super_resolvers(patch=30),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises((ValueError, TypeError), match=r"^The '\w+' parameter of \w+ must be .+\. Got .+ instead\.$"):
        call()
