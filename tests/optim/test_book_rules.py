"""udl.optim.book: the book's momentum, Nesterov and Adam against torch.optim after conversion."""

import pytest
import torch

from udl.data.testfunctions import adam_loss
from udl.optim import BookAdam, BookMomentum, to_torch_adam, to_torch_sgd

STEPS = 60


def rosenbrock(phi):  # non-quadratic, curved valley
    return (1 - phi[0]) ** 2 + 5 * (phi[1] - phi[0] ** 2) ** 2


def _trajectory(opt_factory, loss_fn, start, steps=STEPS, *, closure_always=False):
    phi = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_factory([phi])

    def closure():
        opt.zero_grad()
        loss = loss_fn(phi)
        loss.backward()
        return loss

    path = [phi.detach().clone()]
    for _ in range(steps):
        if closure_always:
            opt.step(closure)
        else:
            closure()
            opt.step()
        path.append(phi.detach().clone())
    return torch.stack(path), opt, phi


@pytest.mark.parametrize("loss_fn, start", [(rosenbrock, [-1.0, 1.5]), (adam_loss, [-0.7, -0.9])])
@pytest.mark.parametrize("alpha, beta", [(0.05, 0.9), (0.02, 0.5), (0.02, 0.0)])
def test_momentum_equals_torch_sgd(loss_fn, start, alpha, beta):
    book, _, _ = _trajectory(lambda p: BookMomentum(p, alpha, beta), loss_fn, start)
    torch_path, _, _ = _trajectory(lambda p: torch.optim.SGD(p, **to_torch_sgd(alpha, beta)), loss_fn, start)
    assert (book[-1] - book[0]).abs().max() > 0.1  # it moved
    torch.testing.assert_close(book, torch_path, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss_fn, start", [(rosenbrock, [-1.0, 1.5]), (adam_loss, [-0.7, -0.9])])
@pytest.mark.parametrize("alpha, beta", [(0.05, 0.9), (0.02, 0.5)])
def test_nesterov_torch_parameters_are_the_books_look_ahead_points(loss_fn, start, alpha, beta):
    book, book_opt, _ = _trajectory(lambda p: BookMomentum(p, alpha, beta, nesterov=True), loss_fn, start,
                                    closure_always=True)
    hp = to_torch_sgd(alpha, beta, nesterov=True)
    torch_path, torch_opt, torch_phi = _trajectory(lambda p: torch.optim.SGD(p, **hp), loss_fn, start)
    # replay the book's run to collect its look-ahead points ψ_t = φ_t - αβ·m_t
    phi = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = BookMomentum([phi], alpha, beta, nesterov=True)
    psi = [phi.detach().clone()]

    def closure():
        opt.zero_grad()
        loss = loss_fn(phi)
        loss.backward()
        return loss

    for _ in range(STEPS):
        opt.step(closure)
        psi.append(phi.detach() - alpha * beta * opt.state[phi]["m"])
    torch.testing.assert_close(torch.stack(psi), torch_path, rtol=1e-10, atol=1e-12)
    # and the book's φ recovered from torch's state: φ = p + lr·β·b
    recovered = torch_phi.detach() + hp["lr"] * beta * torch_opt.state[torch_phi]["momentum_buffer"]
    torch.testing.assert_close(recovered, book[-1], rtol=1e-10, atol=1e-12)
    assert (book[-1] - book[0]).abs().max() > 0.1


def test_nesterov_differs_from_classical_momentum_and_needs_a_closure():
    a, _, _ = _trajectory(lambda p: BookMomentum(p, 0.05, 0.9), rosenbrock, [-1.0, 1.5], 20)
    b, _, _ = _trajectory(lambda p: BookMomentum(p, 0.05, 0.9, nesterov=True), rosenbrock, [-1.0, 1.5], 20,
                          closure_always=True)
    assert (a[-1] - b[-1]).abs().max() > 1e-3
    phi = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="closure"):
        BookMomentum([phi], 0.1, 0.9, nesterov=True).step()


def test_first_momentum_step_by_hand():
    phi = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = BookMomentum([phi], lr=0.5, beta=0.8)
    g = torch.tensor([2.0, -4.0], dtype=torch.float64)  # ∇(φ²) at φ
    (phi ** 2).sum().backward()
    opt.step()
    m1 = 0.2 * g
    torch.testing.assert_close(phi.detach(), torch.tensor([1.0, -2.0], dtype=torch.float64) - 0.5 * m1)
    torch.testing.assert_close(opt.state[phi]["m"], m1)


def _linear_runs(make_book, make_torch, *, book_closure=False, steps=STEPS):
    """Train two identical nn.Linear models on the same fixed mini-batches."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 3, generator=g, dtype=torch.float64)
    y = torch.sin(x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64))
    batches = torch.randint(0, 80, (steps, 8), generator=g)
    runs = []
    for make, closure_always in ((make_book, book_closure), (make_torch, False)):
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1).double()
        opt = make(model.parameters())
        path = []
        for idx in batches:
            def closure():
                opt.zero_grad()
                loss = ((model(x[idx]) - y[idx]) ** 2).mean()
                loss.backward()
                return loss
            if closure_always:
                opt.step(closure)
            else:
                closure()
                opt.step()
            path.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        runs.append((torch.stack(path), model, opt))
    return runs


def test_momentum_on_a_linear_model_with_minibatches():
    (book, _, _), (ref, _, _) = _linear_runs(lambda p: BookMomentum(p, 0.1, 0.9),
                                             lambda p: torch.optim.SGD(p, **to_torch_sgd(0.1, 0.9)))
    assert (book[-1] - book[0]).abs().max() > 0.05
    torch.testing.assert_close(book, ref, rtol=1e-10, atol=1e-12)


def test_nesterov_on_a_linear_model_with_minibatches():
    alpha, beta = 0.1, 0.9
    hp = to_torch_sgd(alpha, beta, nesterov=True)
    (book, _, _), (ref, model, opt) = _linear_runs(lambda p: BookMomentum(p, alpha, beta, nesterov=True),
                                                   lambda p: torch.optim.SGD(p, **hp), book_closure=True)
    recovered = torch.cat([(p.detach() + hp["lr"] * beta * opt.state[p]["momentum_buffer"]).flatten()
                           for p in model.parameters()])
    torch.testing.assert_close(recovered, book[-1], rtol=1e-10, atol=1e-12)
    assert (book[-1] - ref[-1]).abs().max() > 1e-6  # torch's p is ψ, not φ


@pytest.mark.parametrize("alpha, beta, gamma, eps", [(0.05, 0.9, 0.99, 1e-8), (0.01, 0.8, 0.999, 1e-3),
                                                     (0.1, 0.0, 0.5, 0.0)])
def test_adam_equals_torch_adam(alpha, beta, gamma, eps):
    book, _, _ = _trajectory(lambda p: BookAdam(p, alpha, beta, gamma, eps), rosenbrock, [-1.0, 1.5])
    ref, _, _ = _trajectory(lambda p: torch.optim.Adam(p, **to_torch_adam(alpha, beta, gamma, eps)),
                            rosenbrock, [-1.0, 1.5])
    assert (book[-1] - book[0]).abs().max() > 0.1
    torch.testing.assert_close(book, ref, rtol=1e-10, atol=1e-12)


def test_adam_on_a_linear_model_with_minibatches():
    (book, _, _), (ref, _, _) = _linear_runs(lambda p: BookAdam(p, 0.01, 0.9, 0.99),
                                             lambda p: torch.optim.Adam(p, **to_torch_adam(0.01, 0.9, 0.99)))
    torch.testing.assert_close(book, ref, rtol=1e-10, atol=1e-12)


def test_adam_first_step_is_a_sign_step_and_bias_correction_by_hand():
    phi = torch.tensor([1.0, -3.0], dtype=torch.float64, requires_grad=True)
    opt = BookAdam([phi], lr=0.1, beta=0.9, gamma=0.99, eps=0.0)
    (phi ** 2).sum().backward()
    opt.step()
    torch.testing.assert_close(phi.detach(), torch.tensor([0.9, -2.9], dtype=torch.float64))
    # second step: g = (1.8, -5.8); m = 0.9·0.1·g0 + 0.1·g1, v likewise, corrected by 1-β², 1-γ²
    g0, g1 = torch.tensor([2.0, -6.0], dtype=torch.float64), torch.tensor([1.8, -5.8], dtype=torch.float64)
    phi.grad = None
    (phi ** 2).sum().backward()
    opt.step()
    m = 0.9 * 0.1 * g0 + 0.1 * g1
    v = 0.99 * 0.01 * g0 ** 2 + 0.01 * g1 ** 2
    expected = torch.tensor([0.9, -2.9], dtype=torch.float64) - 0.1 * (m / (1 - 0.9 ** 2)) / (v / (1 - 0.99 ** 2)).sqrt()
    torch.testing.assert_close(phi.detach(), expected, rtol=1e-12, atol=1e-14)


def test_conversions():
    assert to_torch_sgd(0.5, 0.75) == dict(lr=0.125, momentum=0.75, dampening=0.0, nesterov=False)
    assert to_torch_sgd(0.5, 0.0, nesterov=True)["nesterov"] is False  # β = 0: plain GD either way
    assert to_torch_adam(0.05, 0.9, 0.99, 1e-8) == dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8)


@pytest.mark.parametrize("make, message", [
    (lambda p: BookMomentum(p, -0.1, 0.9), "'lr'"),
    (lambda p: BookMomentum(p, 0.0, 0.9), "'lr'"),
    (lambda p: BookMomentum(p, 0.1, 1.0), "'beta'"),
    (lambda p: BookMomentum(p, 0.1, -0.1), "'beta'"),
    (lambda p: BookAdam(p, 0.1, gamma=1.0), "'gamma'"),
    (lambda p: BookAdam(p, 0.1, beta=1.2), "'beta'"),
    (lambda p: BookAdam(p, 0.1, eps=-1e-8), "'eps'"),
    (lambda p: to_torch_sgd(-1.0, 0.5), "'lr'"),
    (lambda p: to_torch_adam(0.1, 0.9, 1.5), "'gamma'"),
])
def test_bad_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([torch.zeros(2, requires_grad=True)])


def test_torch_dampening_is_not_the_books_rule():
    # torch's first buffer is g₀ even with dampening=β, so lr=α, dampening=β takes a first step (1-β)⁻¹ too long
    book, _, _ = _trajectory(lambda p: BookMomentum(p, 0.05, 0.9), adam_loss, [-0.7, -0.9])
    damped, _, _ = _trajectory(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.9), adam_loss,
                               [-0.7, -0.9])
    assert (book - damped).abs().max() > 0.1
