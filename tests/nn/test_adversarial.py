"""udl.nn.adversarial: the GAN losses against torch's cross-entropy and closed forms, and WGAN-GP's penalty.

The minimax and non-saturating losses equal ``binary_cross_entropy_with_logits`` with
real → 1 and generated → 0 (values and gradients); the minimax generator loss saturates
where the non-saturating one does not (their gradients at a confidently rejected sample,
in closed form); the Wasserstein losses are the means; the gradient penalty of a linear
critic is (‖w‖ − 1)² exactly, of a quadratic one the closed form at the drawn points, and
its gradient reaches the critic's parameters.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from udl.nn.adversarial import GAN_LOSSES, discriminator_loss, generator_loss, gradient_penalty

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


def _logits(n: int, seed: int, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_discriminator_loss_is_the_binary_cross_entropy(kind):
    real, fake = _logits(7, 0).requires_grad_(), _logits(5, 1).requires_grad_()
    ours = discriminator_loss(real, fake, kind=kind)
    reference = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) \
        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert abs(ours.item() - reference.item()) < 1e-12
    g_ours = torch.autograd.grad(ours, (real, fake))
    g_ref = torch.autograd.grad(reference, (real, fake))
    assert all(torch.allclose(a, b, rtol=0, atol=1e-14) for a, b in zip(g_ours, g_ref))


def test_generator_losses_against_the_cross_entropy_and_the_book_formula():
    fake = _logits(9, 2)
    ones, zeros = torch.ones_like(fake), torch.zeros_like(fake)
    assert abs(generator_loss(fake).item() - F.binary_cross_entropy_with_logits(fake, ones).item()) < 1e-12
    minimax = generator_loss(fake, kind="minimax").item()
    assert abs(minimax + F.binary_cross_entropy_with_logits(fake, zeros).item()) < 1e-12
    assert abs(minimax - torch.log(1 - torch.sigmoid(fake)).mean().item()) < 1e-12  # eq. 15.3, the generator's term
    assert generator_loss(fake, kind="wasserstein").item() == pytest.approx(-fake.mean().item(), abs=1e-15)


def test_wasserstein_critic_loss_is_the_gap_of_the_means():
    real, fake = _logits(6, 3), _logits(4, 4)
    assert discriminator_loss(real, fake, kind="wasserstein").item() == pytest.approx(
        fake.mean().item() - real.mean().item(), abs=1e-15)


def test_minimax_generator_saturates_and_non_saturating_does_not():
    # a sample the discriminator rejects confidently: f = −8, sig[f] ≈ 3.4e-4
    f = torch.tensor([-8.0], dtype=torch.float64, requires_grad=True)
    (g_minimax,) = torch.autograd.grad(generator_loss(f, kind="minimax"), f)  # −sig[f]
    (g_non_sat,) = torch.autograd.grad(generator_loss(f, kind="non_saturating"), f)  # −(1 − sig[f])
    sig = 1 / (1 + math.exp(8.0))
    assert g_minimax.item() == pytest.approx(-sig, rel=1e-12)
    assert g_non_sat.item() == pytest.approx(-(1 - sig), rel=1e-12)
    assert abs(g_non_sat.item()) > 1000 * abs(g_minimax.item())


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for kind in GAN_LOSSES:
        assert math.isfinite(discriminator_loss(big, big, kind=kind).item())
        assert math.isfinite(generator_loss(big, kind=kind).item())
    assert discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0])).item() == 0.0  # perfectly right


def test_patch_logits_are_averaged_over_every_element():
    real, fake = _logits(2 * 9, 5).view(2, 1, 3, 3), _logits(2 * 9, 6).view(2, 1, 3, 3)
    assert discriminator_loss(real, fake).item() == pytest.approx(
        discriminator_loss(real.flatten(), fake.flatten()).item(), abs=1e-14)


# --------------------------------------------------------------------------- the gradient penalty
def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    w = torch.tensor([0.6, 2.0, -1.2], dtype=torch.float64, requires_grad=True)
    critic = lambda x: x @ w + 0.3  # noqa: E731  ∇_x f = w everywhere
    real = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fake = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gp = gradient_penalty(critic, real, fake, generator=0)
    norm = w.detach().norm()
    assert gp.item() == pytest.approx((norm.item() - 1) ** 2, rel=1e-10)
    (grad_w,) = torch.autograd.grad(gp, w)  # create_graph: it trains the critic
    assert torch.allclose(grad_w, 2 * (norm - 1) * w.detach() / norm, rtol=1e-8)
    unit = torch.tensor([0.6, 0.8], dtype=torch.float64)
    assert gradient_penalty(lambda x: x @ unit, real[:, :2], fake[:, :2], generator=0).item() < 1e-10


def test_gradient_penalty_of_a_quadratic_critic_at_the_drawn_points():
    real = torch.randn(6, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fake = torch.randn(6, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    gp = gradient_penalty(lambda x: 0.5 * x.pow(2).flatten(1).sum(1), real, fake, generator=7)
    alpha = torch.rand(6, 1, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x_hat = alpha * real + (1 - alpha) * fake  # ∇_x ½‖x‖² = x
    expected = (x_hat.flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-8)


def test_gradient_penalty_passes_extra_inputs_and_leaves_the_examples_alone():
    seen = {}

    def critic(x, c):
        seen["c"] = c
        return (x * c).sum(1)  # ∇_x = c

    real = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    fake = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    c = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.5]], requires_grad=True)
    gp = gradient_penalty(critic, real, fake, generator=0, extra=(c,))
    assert seen["c"] is c
    assert gp.item() == pytest.approx(((c.detach().norm(dim=1) - 1) ** 2).mean().item(), rel=1e-6)
    gp.backward()
    assert c.grad is not None and bool(c.grad.abs().sum() > 0)  # the critic's side gets a gradient
    assert real.grad is None and fake.grad is None  # detached: the penalty trains the critic only


@pytest.mark.parametrize("call, name, owner", [
    (lambda: discriminator_loss(torch.zeros(2), torch.zeros(2), kind="hinge"), "kind", "discriminator_loss"),
    (lambda: discriminator_loss(torch.zeros(2, dtype=torch.long), torch.zeros(2)), "real_logits",
     "discriminator_loss"),
    (lambda: discriminator_loss(torch.zeros(2), [0.0]), "fake_logits", "discriminator_loss"),
    (lambda: generator_loss(torch.zeros(0)), "fake_logits", "generator_loss"),
    (lambda: generator_loss(torch.zeros(2), kind=None), "kind", "generator_loss"),
    (lambda: gradient_penalty(3, torch.zeros(2, 2), torch.zeros(2, 2)), "critic", "gradient_penalty"),
    (lambda: gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 2), torch.zeros(3, 2)), "fake",
     "gradient_penalty"),
    (lambda: gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 2), torch.zeros(2, 2), generator=1.5),
     "generator", "gradient_penalty"),
    (lambda: gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 2), torch.zeros(2, 2), extra=3), "extra",
     "gradient_penalty"),
])
def test_bad_arguments_are_refused(call, name, owner):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert re.fullmatch(TEMPLATE.format(name, owner), str(info.value)), str(info.value)
