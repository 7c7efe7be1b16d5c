"""udl.nn.recurrent against the equations written out by hand and against torch.nn.RNN, LSTM and GRU."""

import math

import pytest
import torch
from torch import nn

from udl.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

F32, F64 = torch.float32, torch.float64
TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
TOL = {F32: dict(rtol=1e-5, atol=1e-6), F64: dict(rtol=1e-12, atol=1e-13)}


def _randn(*shape, seed, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _states(out):
    """The tensors of a (output, state) pair, state being h or (h, c)."""
    output, state = out
    return [output, *(state if isinstance(state, tuple) else (state,))]


def _loss(tensors, seed):
    """A scalar that depends on every entry of every output: a random projection of each."""
    return sum((t * _randn(*t.shape, seed=seed + i, dtype=t.dtype)).sum() for i, t in enumerate(tensors))


# --------------------------------------------------------------------------- the equations, by hand
def test_elman_cell_is_equation_r1():
    cell = RNNCell(3, 4, generator=0).double()
    x, h = _randn(2, 3, seed=1), _randn(2, 4, seed=2)
    pre = cell.beta_x + x @ cell.omega_x.T + cell.beta_h + h @ cell.omega_h.T
    torch.testing.assert_close(cell(x, h), torch.tanh(pre), rtol=0, atol=1e-15)
    relu = RNNCell(3, 4, nonlinearity="relu", generator=0).double()  # same generator: same weights
    torch.testing.assert_close(relu(x, h), torch.relu(pre), rtol=0, atol=1e-15)


def test_lstm_cell_is_equations_r2_to_r7():
    cell = LSTMCell(3, 4, generator=0).double()
    x, h, c = _randn(2, 3, seed=1), _randn(2, 4, seed=2), _randn(2, 4, seed=3)
    rows = lambda k: slice(4 * k, 4 * (k + 1))  # i, f, g, o
    pre = [cell.beta_x[rows(k)] + x @ cell.omega_x[rows(k)].T + cell.beta_h[rows(k)] + h @ cell.omega_h[rows(k)].T
           for k in range(4)]
    i, f, g, o = torch.sigmoid(pre[0]), torch.sigmoid(pre[1]), torch.tanh(pre[2]), torch.sigmoid(pre[3])
    c_new = f * c + i * g
    h_new, c_got = cell(x, (h, c))
    torch.testing.assert_close(c_got, c_new, rtol=0, atol=1e-15)
    torch.testing.assert_close(h_new, o * torch.tanh(c_new), rtol=0, atol=1e-15)


def test_gru_cell_is_equations_r8_to_r11():
    cell = GRUCell(3, 4, generator=0).double()
    x, h = _randn(2, 3, seed=1), _randn(2, 4, seed=2)
    rows = lambda k: slice(4 * k, 4 * (k + 1))  # r, z, n
    xp = [cell.beta_x[rows(k)] + x @ cell.omega_x[rows(k)].T for k in range(3)]
    hp = [cell.beta_h[rows(k)] + h @ cell.omega_h[rows(k)].T for k in range(3)]
    r, z = torch.sigmoid(xp[0] + hp[0]), torch.sigmoid(xp[1] + hp[1])
    n = torch.tanh(xp[2] + r * hp[2])
    torch.testing.assert_close(cell(x, h), (1 - z) * n + z * h, rtol=0, atol=1e-15)


def test_an_lstm_whose_forget_gate_is_shut_and_input_gate_open_keeps_nothing_but_the_new_candidate():
    cell = LSTMCell(2, 3, forget_bias=-1e4, generator=0).double()
    with torch.no_grad():
        cell.beta_x[:3] = 1e4  # input gate i = 1
    x, h, c = _randn(1, 2, seed=1), _randn(1, 3, seed=2), _randn(1, 3, seed=3)
    _, c_new = cell(x, (h, c))
    g = torch.tanh(cell.beta_x[6:9] + x @ cell.omega_x[6:9].T + cell.beta_h[6:9] + h @ cell.omega_h[6:9].T)
    torch.testing.assert_close(c_new, g, rtol=0, atol=1e-15)  # c_t = 0 · c_{t-1} + 1 · g_t


def test_forget_bias_sets_the_forget_rows_only():
    a, b = LSTM(3, 4, 2, generator=5), LSTM(3, 4, 2, forget_bias=2.0, generator=5)
    for ca, cb in zip(a.layers, b.layers):
        assert torch.equal(cb.beta_x[4:8], torch.full((4,), 2.0)) and torch.equal(cb.beta_h[4:8], torch.zeros(4))
        keep = torch.cat([torch.arange(4), torch.arange(8, 16)])
        assert torch.equal(ca.beta_x[keep], cb.beta_x[keep]) and torch.equal(ca.omega_h, cb.omega_h)


def test_initial_values_follow_torch_rule_and_the_generator():
    layer = GRU(5, 64, n_layers=2, generator=3)
    bound = 1 / math.sqrt(64)
    values = torch.cat([p.flatten() for p in layer.parameters()])
    assert values.abs().max() <= bound and values.abs().max() > 0.99 * bound
    assert abs(values.var().item() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3  # U(-b, b) has variance b²/3
    again = GRU(5, 64, n_layers=2, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(layer.parameters(), again.parameters()))


# --------------------------------------------------------------------------- against torch
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("cls", [RNNCell, LSTMCell, GRUCell], ids=lambda c: c.__name__)
def test_cells_equal_torch_cells_in_values_and_gradients(cls, dtype):
    ours = cls(3, 5, generator=1).to(dtype)
    ref = ours.to_torch()
    assert type(ref) is getattr(nn, cls.__name__)
    x = _randn(4, 3, seed=2, dtype=dtype).requires_grad_()
    h = _randn(4, 5, seed=3, dtype=dtype).requires_grad_()
    state = (h, _randn(4, 5, seed=4, dtype=dtype).requires_grad_()) if cls is LSTMCell else h
    x2 = x.detach().clone().requires_grad_()
    state2 = tuple(s.detach().clone().requires_grad_() for s in state) if cls is LSTMCell \
        else state.detach().clone().requires_grad_()
    got, want = ours(x, state), ref(x2, state2)
    got, want = (list(got) if isinstance(got, tuple) else [got]), (list(want) if isinstance(want, tuple) else [want])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])
    _loss(got, 10).backward()
    _loss(want, 10).backward()
    torch.testing.assert_close(x.grad, x2.grad, **TOL[dtype])
    ins = list(state) if cls is LSTMCell else [state]
    ins2 = list(state2) if cls is LSTMCell else [state2]
    for a, b in zip(ins, ins2):
        torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])
    for ours_name, torch_name in zip(("omega_x", "omega_h", "beta_x", "beta_h"), TORCH_NAMES):
        torch.testing.assert_close(getattr(ours, ours_name).grad, getattr(ref, torch_name).grad, **TOL[dtype])


def _sequence_case(cls, batch_first, dtype, n_layers=3, initial=True, **options):
    ours = cls(4, 6, n_layers, batch_first=batch_first, generator=7, **options).to(dtype)
    ref = ours.to_torch()
    assert ref.batch_first == batch_first and ref.num_layers == n_layers
    shape = (3, 9, 4) if batch_first else (9, 3, 4)  # B = 3, T = 9
    x = _randn(*shape, seed=1, dtype=dtype).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    args, args2 = (x,), (x2,)
    if initial:
        h0 = _randn(n_layers, 3, 6, seed=2, dtype=dtype).requires_grad_()
        if cls is LSTM:
            c0 = _randn(n_layers, 3, 6, seed=3, dtype=dtype).requires_grad_()
            args, args2 = (x, (h0, c0)), (x2, (h0.detach().clone().requires_grad_(),
                                               c0.detach().clone().requires_grad_()))
        else:
            args, args2 = (x, h0), (x2, h0.detach().clone().requires_grad_())
    return ours, ref, args, args2


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
@pytest.mark.parametrize("cls, options", [(RNN, {}), (RNN, {"nonlinearity": "relu"}), (LSTM, {}),
                                          (LSTM, {"forget_bias": 1.0}), (GRU, {})],
                         ids=["RNN", "RNN-relu", "LSTM", "LSTM-forget_bias", "GRU"])
def test_sequence_layers_equal_torch_outputs_final_states_and_gradients(cls, options, batch_first, dtype):
    ours, ref, args, args2 = _sequence_case(cls, batch_first, dtype, **options)
    got, want = _states(ours(*args)), _states(ref(*args2))
    assert [t.shape for t in got] == [t.shape for t in want]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])
    _loss(got, 20).backward()
    _loss(want, 20).backward()
    torch.testing.assert_close(args[0].grad, args2[0].grad, **TOL[dtype])  # ∂L/∂x
    initial = args[1] if isinstance(args[1], tuple) else (args[1],)
    initial2 = args2[1] if isinstance(args2[1], tuple) else (args2[1],)
    for a, b in zip(initial, initial2):  # ∂L/∂h0 (and ∂L/∂c0)
        torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])
    for l, cell in enumerate(ours.layers):
        for ours_name, torch_name in zip(("omega_x", "omega_h", "beta_x", "beta_h"), TORCH_NAMES):
            torch.testing.assert_close(getattr(cell, ours_name).grad, getattr(ref, f"{torch_name}_l{l}").grad,
                                       **TOL[dtype])


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU], ids=lambda c: c.__name__)
def test_zero_initial_state_is_the_default_and_no_bias_works(cls):
    ours, ref, args, args2 = _sequence_case(cls, True, F64, n_layers=2, initial=False)
    for a, b in zip(_states(ours(*args)), _states(ref(*args2))):
        torch.testing.assert_close(a, b, **TOL[F64])
    plain = cls(4, 6, 2, bias=False, generator=0).double()
    assert plain.layers[1].beta_x is None and not plain.to_torch().bias
    for a, b in zip(_states(plain(args[0])), _states(plain.to_torch()(args[0]))):
        torch.testing.assert_close(a, b, **TOL[F64])


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU], ids=lambda c: c.__name__)
def test_from_torch_copies_every_weight(cls):
    torch.manual_seed(0)
    ref = getattr(nn, cls.__name__)(4, 6, num_layers=2, batch_first=False, dtype=F64)
    state = torch.get_rng_state()
    ours = cls.from_torch(ref)
    assert torch.equal(state, torch.get_rng_state())  # nothing drawn from torch's global generator
    assert not ours.batch_first and ours.layers[0].omega_x.dtype == F64
    x = _randn(5, 2, 4, seed=0)
    for a, b in zip(_states(ours(x)), _states(ref(x))):
        torch.testing.assert_close(a, b, **TOL[F64])
    cell_ref = getattr(nn, f"{cls.__name__}Cell")(4, 6)
    cell = {RNN: RNNCell, LSTM: LSTMCell, GRU: GRUCell}[cls].from_torch(cell_ref)
    assert torch.equal(cell.omega_h, cell_ref.weight_hh) and torch.equal(cell.beta_x, cell_ref.bias_ih)


def test_from_torch_refuses_what_udl_does_not_implement():
    with pytest.raises(ValueError, match=r"^The 'module' parameter of LSTM.from_torch must have bidirectional=False\. "
                                         r"Got bidirectional=True instead\.$"):
        LSTM.from_torch(nn.LSTM(2, 3, bidirectional=True))
    with pytest.raises(TypeError, match=r"^The 'module' parameter of GRU.from_torch must be a torch.nn.GRU\."):
        GRU.from_torch(nn.LSTM(2, 3))


def test_each_output_depends_on_the_past_only():
    layer = LSTM(3, 4, 2, generator=0).double()
    x = _randn(1, 6, 3, seed=1).requires_grad_()
    out, _ = layer(x)
    for t in range(6):
        (grad,) = torch.autograd.grad(out[0, t].sum(), x, retain_graph=True)
        norms = grad[0].norm(dim=-1)
        assert (norms[t + 1:] == 0).all() and (norms[:t + 1] > 0).all()


def test_the_layer_is_its_cell_unrolled():
    layer = RNN(3, 4, generator=0).double()
    x = _randn(2, 5, 3, seed=1)
    h = torch.zeros(2, 4, dtype=F64)
    steps = []
    for t in range(5):  # the same cell at every step, h_{t-1} fed back
        h = layer.layers[0](x[:, t], h)
        steps.append(h)
    out, h_n = layer(x)
    # equal up to rounding: the layer projects all steps' inputs in one product, whose summation order MKL may
    # choose differently from the per-step product (bit-equal on AVX2 machines, 1 ulp apart on AVX-512 ones)
    torch.testing.assert_close(out, torch.stack(steps, 1), rtol=0, atol=1e-14)
    torch.testing.assert_close(h_n[0], h, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("call, message", [
    (lambda: RNN(3, 4)(torch.zeros(2, 5, 4)), r"The 'x' parameter of RNN must be a tensor of shape \(B, T, 3\)"),
    (lambda: RNN(3, 4, batch_first=False)(torch.zeros(5, 2)), r"The 'x' parameter of RNN must be a tensor of shape "
                                                              r"\(T, B, 3\)"),
    (lambda: GRU(3, 4)(torch.zeros(2, 5, 3, dtype=F64)), r"The 'x' parameter of GRU must be a torch.float32 tensor"),
    (lambda: RNN(3, 4, 2)(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4)),
     r"The 'h0' parameter of RNN must be a tensor of shape \(2, 2, 4\)"),
    (lambda: LSTM(3, 4)(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4)),
     r"The 'state' parameter of LSTM must be a pair of tensors \(h, c\)"),
    (lambda: LSTMCell(3, 4)(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(3, 4))),
     r"The 'state' parameter of LSTMCell must be a tensor of shape \(2, 4\)"),
    (lambda: GRUCell(3, 4)(torch.zeros(2, 3), torch.zeros(2, 5)), r"The 'h' parameter of GRUCell must be a tensor"),
])
def test_bad_inputs_get_one_line(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()
