"""udl.train.conditional_gan: the three recipes' losses against their formulas, what short runs learn, code purity.

The first step's losses are recomputed by hand (the batch of udl.train.batches, the draws of
step_generator); short runs on the real digits (width 8, 100 steps at a learning rate of 10⁻³) must learn what
each recipe is for: the cGAN discriminator prefers the true class of held-out digits, the
ACGAN class head recognises held-out digits, InfoGAN's Q reads its codes back.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from udl.data.images import load_digits
from udl.models.conditional_gan import ConditionalGAN, ConditionalGANConfig
from udl.train.batches import epoch_order
from udl.train.conditional_gan import (code_accuracy, code_purity, digits_conditional_gan, infogan_information_loss,
                                       train_acgan, train_cgan, train_infogan)
from udl.train.gan import step_generator


@pytest.fixture(scope="module")
def digits():
    x, y = (torch.from_numpy(a) for a in load_digits("train", seed=0, flat=False))
    xt, yt = (torch.from_numpy(a) for a in load_digits("test", seed=0, flat=False))
    return x[:, None].float(), y.long(), xt[:, None].float(), yt.long()


def _bce(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def test_acgan_first_step_losses_are_the_formulas(digits):
    """Step 1: L[ϕ] = BCE + CE(real classes) + CE(fake classes) with the initial networks on the first batch;
    L[θ] = BCE(fake → 1) + CE(fake classes) with the updated discriminator and the initial generator."""
    x, y, _, _ = digits
    gan = ConditionalGAN(ConditionalGANConfig.tiny(n_classes=10), kind="acgan", generator=0)
    start = copy.deepcopy(gan)
    history = train_acgan(gan, x, y, class_weight=0.5, steps=1, batch_size=16, seed=3, device="cpu")
    rows = epoch_order(len(x), 0, seed=3)[:16]
    real, classes = x[rows], y[rows]
    G, D = start.generator_net.train(), start.discriminator_net
    with torch.no_grad():
        fake = G(torch.randn(16, 3, generator=step_generator(3, 1, stream=0)), classes)
        (rl, rc), (fl, fc) = D(real), D(fake)
        expected_d = _bce(rl, fl) + 0.5 * (F.cross_entropy(rc, classes) + F.cross_entropy(fc, classes))
        fake = G(torch.randn(16, 3, generator=step_generator(3, 1, stream=1)), classes)
        fl, fc = gan.discriminator_net.train()(fake)  # the discriminator after its update
        expected_g = F.binary_cross_entropy_with_logits(fl, torch.ones(16)) + 0.5 * F.cross_entropy(fc, classes)
    assert history["d_loss"][0] == pytest.approx(float(expected_d), abs=1e-6)
    assert history["g_loss"][0] == pytest.approx(float(expected_g), abs=1e-6)


def test_infogan_first_step_losses_are_the_formulas(digits):
    x, _, _, _ = digits
    gan = ConditionalGAN(ConditionalGANConfig.tiny(n_continuous=2), kind="infogan", generator=1)
    start = copy.deepcopy(gan)
    history = train_infogan(gan, x, info_weight=2.0, steps=1, batch_size=8, seed=0, device="cpu")
    real = x[epoch_order(len(x), 0, seed=0)[:8]]
    G, D = start.generator_net.train(), start.discriminator_net

    def draws(stream):
        rng = step_generator(0, 1, stream=stream)
        z = torch.randn(8, 3, generator=rng)
        return z, torch.randint(3, (8,), generator=rng), 2 * torch.rand(8, 2, generator=rng) - 1

    with torch.no_grad():
        z, c, u = draws(0)
        rl, _, _ = D(real)
        fl, cl, mu = D(G(z, c, u))
        information = F.cross_entropy(cl, c) + 0.5 * ((mu - u) ** 2).sum(1).mean()
        expected_d = _bce(rl, fl) + 2.0 * information
        z, c, u = draws(1)
        fl, cl, mu = gan.discriminator_net.train()(G(z, c, u))
        expected_g = F.binary_cross_entropy_with_logits(fl, torch.ones(8)) + 2.0 * infogan_information_loss(cl, mu, c, u)
    assert history["d_loss"][0] == pytest.approx(float(expected_d), abs=1e-6)
    assert history["g_loss"][0] == pytest.approx(float(expected_g), abs=1e-6)


def test_information_loss_is_cross_entropy_plus_half_squared_error():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([0, 0])
    means, u = torch.tensor([[0.5], [-1.0]]), torch.tensor([[0.0], [1.0]])
    ce = (np.log(1 + np.exp(-2.0)) + np.log(1 + np.exp(1.0))) / 2  # −log softmax of the right code
    assert float(infogan_information_loss(logits, means, c, u)) == pytest.approx(ce + 0.5 * (0.25 + 4.0) / 2, abs=1e-6)


def test_cgan_discriminator_learns_to_prefer_the_true_class(digits):
    """After 100 steps the discriminator scores held-out digits higher with their own class than with the next one."""
    x, y, xt, yt = digits
    gan = ConditionalGAN(ConditionalGANConfig.digits(width=8), kind="cgan", generator=0)
    history = train_cgan(gan, x, y, steps=100, lr_d=1e-3, lr_g=1e-3, device="cpu")
    assert len(history["d_loss"]) == 100 and not gan.training
    with torch.no_grad():
        right, wrong = gan.discriminator_net(xt, yt), gan.discriminator_net(xt, (yt + 1) % 10)
    assert float((right > wrong).double().mean()) > 0.85  # measured 0.94


def test_acgan_class_head_recognises_held_out_digits(digits):
    x, y, xt, yt = digits
    gan = ConditionalGAN(ConditionalGANConfig.digits(width=8), kind="acgan", generator=0)
    train_acgan(gan, x, y, steps=100, lr_d=1e-3, lr_g=1e-3, device="cpu")
    with torch.no_grad():
        accuracy = float((gan.discriminator_net(xt)[1].argmax(1) == yt).double().mean())
    assert accuracy > 0.6  # chance: 0.1; measured 0.78


def test_infogan_q_reads_its_codes_back(digits):
    x, _, _, _ = digits
    gan = ConditionalGAN(ConditionalGANConfig.digits(width=8), kind="infogan", generator=0)
    assert code_accuracy(gan, 500, generator=1) < 0.3  # untrained: about chance, 0.1
    train_infogan(gan, x, steps=100, lr_d=1e-3, lr_g=1e-3, device="cpu")
    assert code_accuracy(gan, 500, generator=1) > 0.6  # measured 0.80


def test_code_purity_of_known_tables():
    assert code_purity([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 3, 3]) == {
        "purity": 1.0, "per_code": [1.0, 1.0, 1.0], "majority": [5, 3, 3], "covered": 2}
    result = code_purity(np.array([0, 0, 0, 2, 2]), torch.tensor([1, 1, 4, 0, 4]))
    assert result["purity"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert result["majority"] == [1, -1, 0] and np.isnan(result["per_code"][1])
    rng = np.random.default_rng(0)
    unrelated = code_purity(rng.integers(0, 10, 20_000), rng.integers(0, 10, 20_000))
    assert 0.1 < unrelated["purity"] < 0.12  # independent codes: the largest of ten shares near 0.1


def test_digits_conditional_gan_is_trained_once_and_cached():
    first, record = digits_conditional_gan("acgan", steps=3, width=4, device="cpu")
    second, again = digits_conditional_gan("acgan", steps=3, width=4, device="cpu")
    assert len(record["d_loss"]) == 3 and record == again
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    fresh = ConditionalGAN(ConditionalGANConfig.digits(width=8), kind="acgan", generator=0)
    assert not torch.equal(fresh.generator_net.project.weight, first.generator_net.project.weight)


@pytest.mark.parametrize("call, message", [
    (lambda x, y: train_acgan(ConditionalGAN.tiny(kind="cgan"), x, y, steps=1),
     "The 'gan' parameter of train_acgan must be a ConditionalGAN of kind 'acgan'. Got kind 'cgan' instead."),
    (lambda x, y: train_cgan(ConditionalGAN.tiny(kind="cgan"), x, y, steps=1),
     "The 'y' parameter of train_cgan must be classes 0 … 2. Got values 0 … 9 instead."),
    (lambda x, y: train_cgan(ConditionalGAN("digits"), x[:, 0], y, steps=1),
     "The 'x' parameter of train_cgan must be a float tensor of images (N, 1, 8, 8) with N > 0."),
    (lambda x, y: train_cgan(ConditionalGAN("digits"), x, y[:5], steps=1),
     "The 'y' parameter of train_cgan must be a tensor of 1438 classes, one per image. Got shape (5,) instead."),
    (lambda x, y: train_infogan(ConditionalGAN.tiny(kind="infogan"), x, info_weight=-1.0, steps=1),
     "The 'info_weight' parameter of train_infogan must be"),
    (lambda x, y: digits_conditional_gan("cgan", n_continuous=2),
     "The 'n_continuous' parameter of digits_conditional_gan must be 0 for kind 'cgan'. Got 2 instead."),
    (lambda x, y: code_purity([0, 1], [0.5, 1.0]), "The 'classes' parameter of code_purity must be a sequence"),
    (lambda x, y: code_purity([0, 1], [0]), "The 'classes' parameter of code_purity must be 2 classes, one per code."),
])
def test_bad_arguments_get_one_line(digits, call, message):
    x, y, _, _ = digits
    with pytest.raises((ValueError, TypeError)) as error:
        call(x, y)
    assert str(error.value).startswith(message), str(error.value)
