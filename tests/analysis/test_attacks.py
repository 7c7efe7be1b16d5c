import pytest
import torch
from torch import nn

from udl.analysis.adversarial import accuracy_under_attack, fgsm, pgd
from udl.analysis.generative import digit_classifier
from udl.data.images import load_digits

TOL = 1e-6  # the bound on the difference from foolbox


@pytest.fixture(scope="module")
def model():
    return digit_classifier().eval()


@pytest.fixture(scope="module")
def digits():
    x, y = (torch.from_numpy(a) for a in load_digits("test", seed=0, flat=False))
    return x[:, None], y  # (359, 1, 8, 8), (359,)


def _first(digits, n=120):
    return digits[0][:n], digits[1][:n]


def _foolbox_model(model):
    fb = pytest.importorskip("foolbox")
    return fb, fb.PyTorchModel(model, bounds=(0, 1))


# --------------------------------------------------------------------------- against foolbox
@pytest.mark.parametrize("eps", [0.03, 0.1, 0.3])
def test_fgsm_equals_foolbox(model, digits, eps):
    fb, fmodel = _foolbox_model(model)
    x, y = _first(digits)
    raw, clipped, _ = fb.attacks.LinfFastGradientAttack(random_start=False)(fmodel, x, y, epsilons=eps)
    ours = fgsm(model, x, y, eps)
    assert (ours - raw).abs().max().item() <= TOL
    assert (ours - clipped).abs().max().item() <= TOL


@pytest.mark.parametrize("eps, steps, step_size", [(0.1, 10, 0.025), (0.05, 40, 0.05 / 30), (0.2, 5, 0.1)])
def test_pgd_without_random_start_equals_foolbox(model, digits, eps, steps, step_size):
    fb, fmodel = _foolbox_model(model)
    x, y = _first(digits)
    attack = fb.attacks.LinfPGD(abs_stepsize=step_size, steps=steps, random_start=False)
    raw, _, _ = attack(fmodel, x, y, epsilons=eps)
    ours = pgd(model, x, y, eps, steps=steps, step_size=step_size, random_start=False)
    assert (ours - raw).abs().max().item() <= TOL


def test_pgd_with_the_same_random_start_equals_foolbox(model, digits):
    # foolbox draws its start from torch's global generator (eagerpy's uniform is torch.rand); so does pgd
    # with generator=None: the same seed gives the same start (to rounding), and the same attack
    fb, fmodel = _foolbox_model(model)
    x, y = _first(digits)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        raw, _, _ = fb.attacks.LinfPGD(abs_stepsize=0.01, steps=20, random_start=True)(fmodel, x, y, epsilons=0.1)
        torch.manual_seed(5)
        ours = pgd(model, x, y, 0.1, steps=20, step_size=0.01, random_start=True)
    assert (ours - raw).abs().max().item() <= TOL


# --------------------------------------------------------------------------- the definitions
def test_fgsm_is_one_signed_gradient_step_clipped(model, digits):
    x, y = digits
    eps = 0.1
    xr = x.clone().requires_grad_()
    loss = nn.functional.cross_entropy(model(xr), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, xr)
    expected = (x + eps * g.sign()).clamp(0, 1)
    assert torch.equal(fgsm(model, x, y, eps), expected)
    assert torch.equal(fgsm(model, x, y, eps), pgd(model, x, y, eps, steps=1, step_size=eps, random_start=False))


def test_attacks_stay_in_the_ball_and_the_pixel_range(model, digits):
    x, y = digits
    for eps in (0.0, 0.05, 0.2):
        for adv in (fgsm(model, x, y, eps), pgd(model, x, y, eps, steps=5, generator=0)):
            assert (adv - x).abs().max().item() <= eps + 1e-7
            assert adv.min() >= 0 and adv.max() <= 1
            assert adv.shape == x.shape and adv.dtype == x.dtype
    assert torch.equal(pgd(model, x, y, 0.0, steps=3, generator=0), x)  # ε = 0 changes nothing


def test_pgd_random_start_is_seeded(model, digits):
    x, y = digits
    a = pgd(model, x[:20], y[:20], 0.1, steps=3, generator=1)
    assert torch.equal(a, pgd(model, x[:20], y[:20], 0.1, steps=3, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(a, pgd(model, x[:20], y[:20], 0.1, steps=3, generator=2))


def test_attacks_leave_the_model_untouched(digits):
    x, y = digits
    model = digit_classifier().eval()  # a fresh copy: foolbox's backward passes fill the shared one's .grad
    before = [p.detach().clone() for p in model.parameters()]
    pgd(model, x[:10], y[:10], 0.1, steps=2, generator=0)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# --------------------------------------------------------------------------- accuracy under attack
def test_accuracy_under_attack(model, digits):
    x, y = digits
    clean = float((model(x).argmax(1) == y).double().mean())
    fgsm_acc = accuracy_under_attack(model, x, y, [0.0, 0.05, 0.1, 0.2], "fgsm")
    assert fgsm_acc[0] == clean == pytest.approx(0.994, abs=0.005)
    assert fgsm_acc == sorted(fgsm_acc, reverse=True)  # a larger signed step hurts more here
    pgd_acc = accuracy_under_attack(model, x, y, [0.1, 0.2], "pgd", steps=20, generator=0)
    assert pgd_acc[0] <= fgsm_acc[2] and pgd_acc[1] <= fgsm_acc[3]  # the iterated attack is the stronger
    assert pgd_acc[1] < 0.05  # ε = 0.2: almost every digit misclassified
    # a function as the attack
    same = accuracy_under_attack(model, x, y, [0.1], lambda m, a, b, e: fgsm(m, a, b, e))
    assert same == [fgsm_acc[2]]


def test_pgd_at_eps_0_1_flips_most_correct_digits(model, digits):
    # measured: 0.669 of the 357 correctly classified held-out digits (the target was 0.9: this
    # shift-augmented CNN on 8x8 digits resists more; see fig. 20.14's notes)
    x, y = digits
    correct = model(x).argmax(1) == y
    adv = pgd(model, x[correct], y[correct], 0.1, steps=40, generator=0)
    flipped = float((model(adv).argmax(1) != y[correct]).double().mean())
    assert flipped > 0.6


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: fgsm(m, x, y, -0.1), "'eps' parameter of fgsm"),
    (lambda m, x, y: fgsm(m, x, y, 1.5), "'eps' parameter of fgsm"),
    (lambda m, x, y: fgsm(m, x * 2, y, 0.1), "'x' parameter of fgsm"),
    (lambda m, x, y: fgsm(m, x, y.float(), 0.1), "'y' parameter of fgsm"),
    (lambda m, x, y: fgsm(m, x, y[:-1], 0.1), "'y' parameter of fgsm"),
    (lambda m, x, y: fgsm("model", x, y, 0.1), "'model' parameter of fgsm"),
    (lambda m, x, y: pgd(m, x, y, 0.1, steps=0), "'steps' parameter of pgd"),
    (lambda m, x, y: pgd(m, x, y, 0.1, step_size=0.0), "'step_size' parameter of pgd"),
    (lambda m, x, y: pgd(m, x, y, 0.1, random_start=1), "'random_start' parameter of pgd"),
    (lambda m, x, y: pgd(m, x, y, 0.1, generator=1.5), "'generator' parameter of pgd"),
    (lambda m, x, y: accuracy_under_attack(m, x, y, []), "'eps_values' parameter"),
    (lambda m, x, y: accuracy_under_attack(m, x, y, [0.1], "cw"), "'attack' parameter"),
])
def test_bad_arguments(model, digits, call, match):
    x, y = digits
    with pytest.raises((ValueError, TypeError), match=match):
        call(model, x[:4], y[:4])
