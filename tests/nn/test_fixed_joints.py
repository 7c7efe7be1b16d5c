"""udl.nn.fixed_joints: the fixed-joint network against its formula, numpy's lstsq and autograd."""

import math

import numpy as np
import pytest
import torch

from udl.data.toy import make_regression_1d
from udl.nn.fixed_joints import FixedJointNetwork, least_squares_fitter, sgd_batches
from udl.nn.regularizers import l2_penalty


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_joints_and_parameter_count():
    net = FixedJointNetwork(4, lo=-1.0, hi=1.0)
    torch.testing.assert_close(net.joints, torch.tensor([-1.0, -0.5, 0.0, 0.5]))
    assert sum(p.numel() for p in net.parameters()) == 5
    assert [n for n, _ in net.named_parameters()] == ["beta", "omega"]


def test_forward_equals_formula_by_hand_and_accepts_both_shapes():
    net = FixedJointNetwork(3, generator=gen(0)).double()
    beta, omega = net.beta.item(), net.omega.tolist()
    xs = [-0.2, 0.0, 0.1, 0.4, 0.9, 1.3]
    x = torch.tensor(xs, dtype=torch.float64)
    by_hand = [beta + sum(omega[j] * max(0.0, v - j / 3) for j in range(3)) for v in xs]
    torch.testing.assert_close(net(x), torch.tensor(by_hand, dtype=torch.float64), rtol=0, atol=1e-14)
    torch.testing.assert_close(net(x[:, None]), net(x), rtol=0, atol=0)
    a = net.features(x)
    assert a.shape == (6, 4)
    torch.testing.assert_close(a @ torch.cat([net.beta[None], net.omega]), net(x))


def test_initialisation_is_bounded_by_one_over_root_d():
    a = FixedJointNetwork(9, generator=gen(5))
    assert a.omega.abs().max() <= 1 / 3 and a.beta.abs() <= 1 / 3


def test_least_squares_equals_numpy_lstsq():
    data = make_regression_1d(seed=1)
    net = FixedJointNetwork(3).double().fit_least_squares(data.x, data.y)
    a = np.column_stack([np.ones(15)] + [np.maximum(data.x - j / 3, 0) for j in range(3)])
    phi, *_ = np.linalg.lstsq(a, data.y, rcond=None)
    np.testing.assert_allclose(net.beta.item(), phi[0], atol=1e-10)
    np.testing.assert_allclose(net.omega.detach().numpy(), phi[1:], atol=1e-10)


def test_least_squares_fitter_fits_a_fresh_network_per_call_and_leaves_the_global_generator_alone():
    fit = least_squares_fitter(3)
    data = make_regression_1d(seed=1)
    state = torch.get_rng_state()
    predict = fit(data.x, data.y)
    assert torch.equal(state, torch.get_rng_state())
    net = FixedJointNetwork(3).double().fit_least_squares(data.x, data.y)
    x_new = np.linspace(0, 1, 7)
    out = predict(x_new)
    assert out.dtype == torch.float64 and out.shape == (7,)
    torch.testing.assert_close(out, net(x_new).detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(predict(torch.from_numpy(x_new)), out, rtol=0, atol=0)  # tensors too
    other = fit(data.x, -data.y)  # a second call fits anew and leaves the first predictor as it was
    torch.testing.assert_close(other(x_new), -out, rtol=0, atol=1e-12)
    torch.testing.assert_close(predict(x_new), out, rtol=0, atol=0)
    ridge = least_squares_fitter(3, l2=0.5)(data.x, data.y)
    expected = FixedJointNetwork(3).double().fit_least_squares(data.x, data.y, l2=0.5)(x_new).detach()
    torch.testing.assert_close(ridge(x_new), expected, rtol=0, atol=1e-12)


def test_fourteen_units_interpolate_fifteen_points():
    data = make_regression_1d(seed=0)
    net = FixedJointNetwork(14).double().fit_least_squares(data.x, data.y)
    np.testing.assert_allclose(net(data.x).detach().numpy(), data.y, atol=1e-8)


@pytest.mark.parametrize("penalize_beta", [True, False])
def test_ridge_solution_is_a_stationary_point_of_loss_plus_l2_penalty(penalize_beta):
    data = make_regression_1d(seed=2)
    lam = 0.3
    net = FixedJointNetwork(14).double().fit_least_squares(data.x, data.y, l2=lam, penalize_beta=penalize_beta)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    penalty = l2_penalty(net, lam) if penalize_beta else l2_penalty([net.omega], lam)
    loss = ((y - net(x)) ** 2).sum() + penalty  # eq. 9.5 with the least-squares loss
    loss.backward()
    assert net.beta.grad.abs() < 1e-10 and net.omega.grad.abs().max() < 1e-10
    # a larger λ shrinks the penalised parameters
    norm = lambda m: (m.omega.pow(2).sum() + (m.beta ** 2 if penalize_beta else 0)).item()  # noqa: E731
    big = FixedJointNetwork(14).double().fit_least_squares(data.x, data.y, l2=10 * lam, penalize_beta=penalize_beta)
    assert norm(big) < norm(net)


def test_ridge_with_free_beta_keeps_the_mean_at_huge_lambda():
    data = make_regression_1d(seed=3)
    free = FixedJointNetwork(5).double().fit_least_squares(data.x, data.y, l2=1e9, penalize_beta=False)
    assert free.beta.item() == pytest.approx(data.y.mean(), abs=1e-5)
    tied = FixedJointNetwork(5).double().fit_least_squares(data.x, data.y, l2=1e9)
    assert abs(tied.beta.item()) < 1e-6


def test_gradient_descent_reaches_the_closed_form():
    data = make_regression_1d(seed=4)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    target = FixedJointNetwork(3).double().fit_least_squares(x, y)
    net = FixedJointNetwork(3, generator=gen(1)).double()
    opt = torch.optim.LBFGS(net.parameters(), max_iter=200, tolerance_grad=1e-12, tolerance_change=0)

    def closure():
        opt.zero_grad()
        loss = ((y - net(x)) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(net.omega, target.omega, atol=1e-6, rtol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'n_hidden' parameter of FixedJointNetwork"):
        FixedJointNetwork(0)
    with pytest.raises(ValueError, match="'hi' parameter"):
        FixedJointNetwork(3, lo=1.0, hi=1.0)
    with pytest.raises(TypeError, match="'generator'"):
        FixedJointNetwork(3, generator=1.5)
    net = FixedJointNetwork(3)
    with pytest.raises(ValueError, match="'x' parameter"):
        net(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="'y' parameter"):
        net.fit_least_squares(torch.zeros(4), torch.zeros(5))
    with pytest.raises(ValueError, match="'l2' parameter"):
        net.fit_least_squares(torch.zeros(4), torch.zeros(4), l2=-1.0)
    with pytest.raises(TypeError, match="'x' parameter"):
        net([0.1, 0.2])
    assert math.isfinite(net(torch.zeros(2)).sum().item())


def test_fit_sgd_equals_udl_train_fit_with_torch_sgd():
    from udl.train import fit

    data = make_regression_1d(seed=0)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    fast = FixedJointNetwork(14, generator=gen(0)).double()
    ref = FixedJointNetwork(14, generator=gen(0)).double()
    seen = []
    losses = fast.fit_sgd(x, y, lr=0.05, batch_size=5, steps=400, seed=3, every=100,
                          callback=lambda s, loss, m: seen.append((s, loss, m.omega.detach().clone())))
    ref_seen = {}
    rows = torch.from_numpy(sgd_batches(15, 5, 400, seed=3))  # the same batches, given to fit as a list
    ref_losses = fit(ref, [(x[r], y[r]) for r in rows], lambda f, t: ((f - t) ** 2).sum(),
                     lambda p: torch.optim.SGD(p, lr=0.05), steps=400, progress=False, device="cpu",
                     callback=lambda s, loss, m: ref_seen.setdefault(s, m.omega.detach().clone()))
    torch.testing.assert_close(fast.omega, ref.omega, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.beta, ref.beta, rtol=0, atol=1e-12)
    assert [s for s, _, _ in seen] == [100, 200, 300, 400]
    for s, loss, omega in seen:
        torch.testing.assert_close(omega, ref_seen[s], rtol=0, atol=1e-12)
        assert loss == pytest.approx(ref_losses[s - 1], rel=1e-6)  # fit reports float32 losses
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-6)
    assert np.mean(losses[-30:]) < np.mean(losses[:30])


def test_fit_sgd_bad_arguments():
    net = FixedJointNetwork(3)
    x = torch.linspace(0, 1, 6)
    for kwargs, error in [(dict(lr=0.0), ValueError), (dict(batch_size=7), ValueError), (dict(steps=0), ValueError),
                          (dict(every=0), ValueError), (dict(callback=3), TypeError), (dict(seed=-1), ValueError)]:
        with pytest.raises(error, match=f"'{next(iter(kwargs))}' parameter of FixedJointNetwork.fit_sgd"):
            net.fit_sgd(x, x, **{**dict(lr=0.1, batch_size=2, steps=3), **kwargs})


def test_sgd_batches_are_epochs_of_permutations():
    rows = sgd_batches(17, 5, 10, seed=4)  # 3 batches per epoch, 2 rows sit out each epoch
    assert rows.shape == (10, 5) and rows.dtype == np.int64
    for e in range(3):
        epoch = rows[3 * e: 3 * e + 3].ravel()
        assert len(set(epoch.tolist())) == 15 and epoch.max() < 17
    np.testing.assert_array_equal(rows, sgd_batches(17, 5, 10, seed=4))
    assert not np.array_equal(rows, sgd_batches(17, 5, 10, seed=5))
    counts = np.bincount(sgd_batches(15, 5, 3000, seed=0).ravel(), minlength=15)
    assert counts.tolist() == [1000] * 15  # every example once per epoch
    with pytest.raises(ValueError, match="'batch_size' parameter of sgd_batches"):
        sgd_batches(4, 5, 3)
