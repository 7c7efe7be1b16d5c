"""udl.train.cyclegan: the translators' loss is the recipe's formula; training closes the cycle; the domain judge."""

import copy

import torch

from udl.data.digit_styles import digit_domains
from udl.models.cyclegan import CycleGAN, CycleGANConfig
from udl.nn.adversarial import generator_loss
from udl.train.batches import epoch_order
from udl.train.cyclegan import domain_discriminator, train_cyclegan, train_domain_classifier


def test_the_first_translator_loss_is_adversarial_plus_weighted_cycle_identity_and_content():
    d = digit_domains()
    a, b = d.a[:40], d.b[:40]
    model = CycleGAN(CycleGANConfig.tiny(width=3), generator=0)
    d_a, d_b = domain_discriminator(4, generator=1), domain_discriminator(4, generator=2)
    start = copy.deepcopy((model, d_a, d_b))
    # lr_d tiny: the discriminators' first update moves no weight by more than ~1e-12
    history = train_cyclegan(model, d_a, d_b, a, b, steps=1, batch_size=16, seed=3, lr_d=1e-12, cycle_weight=7.0,
                             identity_weight=2.0, content_weight=0.5, device="cpu")
    m, f_a, f_b = start
    rows = epoch_order(40, 0, seed=3)[:16]  # the loop's first batch: the same rows of both domains
    with torch.no_grad():
        parts = m.losses(a[rows], b[rows])
        expected = (generator_loss(f_b(parts["fake_b"])) + generator_loss(f_a(parts["fake_a"])) + 7.0 * parts["cycle"]
                    + 2.0 * parts["identity"] + 0.5 * parts["content"])
    assert abs(history["g_loss"][0] - float(expected)) < 1e-5
    assert abs(history["cycle"][0] - float(parts["cycle"])) < 1e-6
    assert abs(history["identity"][0] - float(parts["identity"])) < 1e-6
    assert not model.training  # left in eval mode


def test_training_closes_the_cycle_on_digits_and_unequal_sets_are_repeated():
    d = digit_domains()
    model = CycleGAN(CycleGANConfig.tiny(width=8), generator=0)
    with torch.no_grad():
        before = float((model.round_trip(d.held_a) - d.held_a).abs().mean())
    history = train_cyclegan(model, domain_discriminator(8, generator=1), domain_discriminator(8, generator=2),
                             d.a, d.b[:300], steps=100, batch_size=32, lr_g=2e-3, device="cpu")
    assert len(history["d_loss"]) == len(history["g_loss"]) == len(history["cycle"]) == 100
    with torch.no_grad():
        after = float((model.round_trip(d.held_a) - d.held_a).abs().mean())
    # held-out plain digits through g then g': the mean absolute error falls by more than half
    assert after < 0.5 * before, (before, after)


def test_the_domain_classifier_tells_held_out_plain_from_bold_digits():
    d = digit_domains()
    judge = train_domain_classifier(d.a, d.b, width=16, steps=300, device="cpu")
    with torch.no_grad():
        plain_right = float((judge(d.held_a) < 0).double().mean())
        bold_right = float((judge(d.held_b) > 0).double().mean())
    assert plain_right > 0.95 and bold_right > 0.95, (plain_right, bold_right)
    assert not judge.training
