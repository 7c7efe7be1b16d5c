"""The training loop: divergence, clipping, autocast, data order and argument checks."""

import itertools
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from udl.train import LossNotFiniteError, autocast_dtype, epoch_order, fit
from udl.train.batches import batch_stream, mixed_seed


def regression(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [3.0]])


def sgd(lr):
    return lambda params: torch.optim.SGD(params, lr=lr)


def test_fit_reduces_the_loss_and_counts_steps_and_epochs():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    losses = fit(model, regression(), nn.MSELoss(), sgd(0.1), epochs=5, batch_size=8, device="cpu", progress=False)
    assert len(losses) == 5 * (32 // 8)
    assert losses[-1] < 0.05 * losses[0]


def test_divergence_names_the_step():
    # Linear regression with lr far beyond 2 / λ_max of the Hessian: |error| grows
    # geometrically until the loss overflows float32 to inf, then nan.
    torch.manual_seed(0)
    seen = []
    with pytest.raises(LossNotFiniteError) as error:
        fit(nn.Linear(3, 1), regression(), nn.MSELoss(), sgd(5.0), steps=500, batch_size=32, device="cpu",
            progress=False, callback=lambda step, loss, model: seen.append(step))
    step = int(re.fullmatch(r"loss became (nan|inf) at step (\d+);.*", str(error.value)).group(2))
    assert step == len(seen) + 1  # the first step whose loss was not finite
    assert 5 < step < 500
    assert isinstance(error.value, FloatingPointError)


def test_an_infinite_loss_at_step_17_is_reported_at_step_17():
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        loss = nn.functional.mse_loss(output, target)
        return loss * float("inf") if len(calls) == 17 else loss

    with pytest.raises(LossNotFiniteError, match=r"^loss became inf at step 17;"):
        fit(nn.Linear(3, 1), regression(), loss_fn, sgd(0.01), steps=30, batch_size=8, device="cpu", progress=False)


def test_clipping_scales_the_gradient_to_norm_c():
    # One full-batch SGD step with lr=1 must move φ by exactly -g·min(1, c/‖g‖).
    x, y = regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    phi = [p.detach().clone() for p in model.parameters()]
    nn.functional.mse_loss(model(x), y).backward()
    g = [p.grad.clone() for p in model.parameters()]
    g_norm = torch.cat([t.flatten() for t in g]).norm()
    c = 0.5
    assert g_norm > 10 * c  # the clip is active

    norms = []
    record = lambda step, loss, m: norms.append(torch.cat([p.grad.flatten() for p in m.parameters()]).norm())
    fit(model, (x, y), nn.MSELoss(), sgd(1.0), steps=1, batch_size=32, shuffle=False, clip_grad_norm=c,
        device="cpu", progress=False, callback=record)
    assert norms[0] == pytest.approx(c, rel=1e-5)
    for p, p0, gi in zip(model.parameters(), phi, g):
        torch.testing.assert_close(p.detach(), p0 - gi * (c / g_norm))


def test_cpu_runs_in_float32_and_cuda_selects_bf16():
    dtypes = []
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    model.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    fit(model, regression(), nn.MSELoss(), sgd(0.01), steps=3, batch_size=8, device="cpu", progress=False)
    assert dtypes == [torch.float32] * 3
    assert autocast_dtype(torch.device("cpu")) == torch.float32
    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16
    assert autocast_dtype(torch.device("cuda", 1)) == torch.bfloat16


def test_data_order_is_a_function_of_seed_and_epoch():
    a = epoch_order(100, 3, seed=5)
    assert torch.equal(a, epoch_order(100, 3, seed=5))
    assert torch.equal(a.sort().values, torch.arange(100))  # a permutation
    assert not torch.equal(a, epoch_order(100, 4, seed=5))
    assert not torch.equal(epoch_order(100, 1, seed=0), epoch_order(100, 0, seed=1))
    assert torch.equal(epoch_order(10, 3, seed=5, shuffle=False), torch.arange(10))


def test_the_batch_stream_resumes_from_any_position():
    # After each batch the stream reports (epoch, batches consumed); a stream started
    # there must continue with the same batches, also at the end of an epoch.
    data = TensorDataset(torch.arange(10.0))  # 3 batches of 3 per epoch
    full = list(itertools.islice(batch_stream(data, 3, seed=2, shuffle=True), 9))
    for k in range(1, 9):
        epoch, consumed, _ = full[k - 1]
        rest = batch_stream(data, 3, seed=2, shuffle=True, epoch=epoch, start=consumed)
        for (e, c, (x,)), (e_full, c_full, (x_full,)) in zip(rest, full[k:]):
            assert (e, c) == (e_full, c_full) and torch.equal(x, x_full)
    assert [(e, c) for e, c, _ in full[:4]] == [(0, 1), (0, 2), (0, 3), (1, 1)]


def test_each_epoch_sees_distinct_rows_in_the_seeded_order():
    x = torch.arange(20.0)[:, None]
    rows = []
    model = nn.Linear(1, 1)
    model.register_forward_pre_hook(lambda module, args: rows.append(args[0][:, 0].long()))
    fit(model, (x, x), nn.MSELoss(), sgd(0.0), epochs=2, batch_size=6, seed=4, device="cpu", progress=False)
    assert len(rows) == 2 * 3  # ⌊20/6⌋ batches per epoch, the 2 left-over rows sit out
    for epoch in range(2):
        expected = epoch_order(20, epoch, seed=4)[:18].view(3, 6)
        assert torch.equal(torch.stack(rows[3 * epoch: 3 * epoch + 3]), expected)


def test_a_model_that_returns_its_own_loss():
    x, y = regression()
    model = nn.Linear(3, 1)

    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x, y):
            return nn.functional.mse_loss(self.net(x), y)

    losses = fit(WithLoss(), (x, y), None, sgd(0.1), steps=40, batch_size=8, device="cpu", progress=False)
    assert losses[-1] < 0.05 * losses[0]


BAD_ARGUMENTS = [
    (dict(steps=0), ValueError, "The 'steps' parameter of fit must be a positive int. Got 0 instead."),
    (dict(steps=2.5), TypeError, "The 'steps' parameter of fit must be an int. Got 2.5 instead."),
    (dict(steps=True), TypeError, "The 'steps' parameter of fit must be an int. Got True instead."),
    (dict(epochs=-1, steps=None), ValueError, "The 'epochs' parameter of fit must be a positive int. Got -1 instead."),
    (dict(batch_size=0), ValueError, "The 'batch_size' parameter of fit must be a positive int. Got 0 instead."),
    (dict(batch_size=33), ValueError, "must be at most the number of samples. Got 33 instead."),
    (dict(clip_grad_norm=-1.0), ValueError,
     "The 'clip_grad_norm' parameter of fit must be a float in (0, inf). Got -1.0 instead."),
    (dict(clip_grad_norm=float("nan")), ValueError, "must be a float in (0, inf). Got nan instead."),
    (dict(device="gpu"), ValueError,
     "The 'device' parameter of fit must be 'auto', 'cpu', 'cuda' or a torch.device. Got 'gpu' instead."),
    (dict(checkpoint_every=0, checkpoint_path="x.pt"), ValueError,
     "The 'checkpoint_every' parameter of fit must be a positive int. Got 0 instead."),
    (dict(checkpoint_every=5), ValueError, "The 'checkpoint_path' parameter of fit must be set"),
    (dict(resume=True), ValueError, "The 'checkpoint_path' parameter of fit must be set"),
    (dict(seed=-3), ValueError, "The 'seed' parameter of fit must be a non-negative int. Got -3 instead."),
    (dict(epochs=2), ValueError, "fit needs exactly one of 'steps' and 'epochs'."),
    (dict(steps=None), ValueError, "fit needs exactly one of 'steps' and 'epochs'."),
    (dict(batch_size=None), ValueError, "The 'batch_size' parameter of fit must be set when data is a tuple"),
    (dict(model="mlp"), TypeError, "The 'model' parameter of fit must be a torch.nn.Module. Got 'mlp' instead."),
    (dict(loss_fn=3), TypeError, "The 'loss_fn' parameter of fit must be callable or None. Got 3 instead."),
    (dict(checkpoint_path=3), TypeError, "The 'checkpoint_path' parameter of fit must be a str or a PathLike. Got 3 instead."),
    (dict(optimizer=3), TypeError, "The 'optimizer' parameter of fit must be a torch Optimizer"),
    (dict(data=(torch.zeros(4, 3), torch.zeros(5, 1))), TypeError, "with the same first dimension"),
]


@pytest.mark.parametrize("bad, error, message", BAD_ARGUMENTS)
def test_bad_arguments_are_named(bad, error, message):
    arguments = dict(model=nn.Linear(3, 1), data=regression(), loss_fn=nn.MSELoss(), optimizer=sgd(0.1),
                     steps=3, batch_size=8, device="cpu", progress=False)
    with pytest.raises(error, match=re.escape(message)):
        fit(**{**arguments, **bad})


def test_targets_of_other_shapes_that_do_not_broadcast_wrongly_still_train():
    # Class indices against (N, C) logits with N == C broadcast, yet are the right shape for cross-entropy;
    # (N, 2) outputs against (N, 1) targets broadcast to the output's own shape: a loss may read them its way.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=g)
    labels = torch.arange(8) % 8
    losses = fit(nn.Linear(3, 8), (x, labels), nn.functional.cross_entropy, sgd(0.5), steps=20, batch_size=8,
                 device="cpu", progress=False)
    assert losses[-1] < 0.5 * losses[0]

    def gaussian_nll(output, target):  # output: (N, 2) mean and log-variance; target (N, 1)
        mean, log_var = output[:, :1], output[:, 1:]
        return (0.5 * (log_var + (target - mean) ** 2 / log_var.exp())).mean()

    x, y = regression(n=32)
    losses = fit(nn.Linear(3, 2), (x, y), gaussian_nll, sgd(0.01), steps=30, batch_size=8, device="cpu",
                 progress=False)
    assert len(losses) == 30 and losses[-1] < losses[0]


def test_divergence_keeps_the_losses_before_the_failing_step():
    with pytest.raises(LossNotFiniteError) as error:
        fit(nn.Linear(3, 1), regression(), nn.MSELoss(), sgd(5.0), steps=500, batch_size=32, device="cpu",
            progress=False)
    step = int(re.search(r"at step (\d+);", str(error.value)).group(1))
    assert len(error.value.losses) == step - 1
    assert error.value.losses[-1] > 1e6 * error.value.losses[0]  # it grew geometrically before overflowing


def test_mixed_seed_is_seedsequence_order_aware_and_fits_a_torch_seed():
    """The one seed mixer of the step-seeded losses (VAE, diffusion, graphs, GANs): NumPy's SeedSequence, 63 bits."""
    expected = int(np.random.SeedSequence([7, 3]).generate_state(1, np.uint64)[0]) >> 1
    assert mixed_seed(7, 3) == expected
    assert mixed_seed(7, 3) != mixed_seed(3, 7) and mixed_seed(0, 1) != mixed_seed(1, 0)
    seeds = [mixed_seed(0, step) for step in range(1000)]
    assert len(set(seeds)) == 1000 and all(0 <= s < 2**63 for s in seeds)
    torch.Generator().manual_seed(max(seeds))  # accepted by torch


def test_every_step_trains_in_train_mode_even_after_a_callback_switched_a_submodule_to_eval():
    """fit calls model.train() only when some module is in eval mode; a callback's eval() is still undone."""
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Dropout(0.5), Probe()), nn.Linear(4, 1))

    def callback(step, loss, net):
        if step == 2:
            net[1].eval()  # a submodule only: the root stays in train mode
        if step == 4:
            net.eval()

    fit(model, regression(), nn.MSELoss(), sgd(0.01), steps=6, batch_size=16, device="cpu", progress=False,
        callback=callback)
    assert seen == [True] * 6 and model.training


def test_fit_inside_a_cpu_autocast_region_keeps_float32():
    """float32 training: an enclosing autocast region is switched off inside fit, as before."""
    dtypes = []
    model = nn.Linear(3, 1)
    model.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fit(model, regression(), nn.MSELoss(), sgd(0.01), steps=3, batch_size=16, device="cpu", progress=False)
    assert dtypes == [torch.float32] * 3
