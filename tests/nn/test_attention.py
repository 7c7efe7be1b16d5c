"""udl.nn.attention against the book's per-token sums, SDPA and torch.nn.MultiheadAttention."""

import math

import pytest
import torch

from udl.nn.attention import MultiHeadAttention, attention, book_self_attention, causal_mask


def _copy_to_torch(m: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(m.d_model, m.n_heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([m.q_proj.weight, m.k_proj.weight, m.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([m.q_proj.bias, m.k_proj.bias, m.v_proj.bias]))
        ref.out_proj.weight.copy_(m.out_proj.weight)
        ref.out_proj.bias.copy_(m.out_proj.bias)
    return ref


def _book_params(D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) for s in [(D, D), (D,)] * 3]


def test_book_form_equals_the_per_token_sum():
    X = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))  # D = 4, N = 3
    ov, bv, oq, bq, ok, bk = _book_params()
    out, A = book_self_attention(X, ov, bv, oq, bq, ok, bk)
    for n in range(3):  # eq. 12.3: sa_n = sum_m a[x_m, x_n] v_m
        q = bq + oq @ X[:, n]
        scores = torch.stack([(bk + ok @ X[:, m]) @ q / 2.0 for m in range(3)])  # sqrt(D_q) = 2
        a = torch.exp(scores) / torch.exp(scores).sum()
        expected = sum(a[m] * (bv + ov @ X[:, m]) for m in range(3))
        torch.testing.assert_close(out[:, n], expected, rtol=0, atol=1e-13)
        torch.testing.assert_close(A[:, n], a, rtol=0, atol=1e-14)
    assert (A > 0).all()
    torch.testing.assert_close(A.sum(0), torch.ones(3, dtype=torch.float64))


def test_book_form_equals_row_form_and_sdpa():
    X = torch.randn(4, 3, dtype=torch.float64)
    ov, bv, oq, bq, ok, bk = _book_params(seed=3)
    out, A = book_self_attention(X, ov, bv, oq, bq, ok, bk)
    q, k, v = (X.T @ o.T + b for o, b in ((oq, bq), (ok, bk), (ov, bv)))  # rows are tokens: (N, D)
    slow, w = attention(q, k, v, fast=False)
    fast, none = attention(q, k, v)
    assert none is None
    torch.testing.assert_close(slow, out.T, rtol=0, atol=1e-13)
    torch.testing.assert_close(fast, out.T, rtol=0, atol=1e-13)
    torch.testing.assert_close(w, A.T, rtol=0, atol=1e-14)


def test_permuting_the_inputs_permutes_the_outputs():
    X = torch.randn(4, 5, dtype=torch.float64)
    params = _book_params(seed=4)
    perm = torch.tensor([3, 0, 4, 1, 2])
    out, _ = book_self_attention(X, *params)
    out_p, _ = book_self_attention(X[:, perm], *params)
    torch.testing.assert_close(out_p, out[:, perm], rtol=0, atol=1e-13)


def test_causal_mask_alignment():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(1, 4).tolist() == [[True, True, True, True]]  # the last query sees everything
    assert causal_mask(2, 4)[0].tolist() == [True, True, True, False]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_multihead_equals_torch_values_and_gradients(fast, causal):
    torch.manual_seed(0)
    m = MultiHeadAttention(16, 4, fast=fast).double()
    ref = _copy_to_torch(m)
    x = torch.randn(3, 6, 16, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y = m(x, causal=causal)
    attn_mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), 1) if causal else None  # torch: True = blocked
    y_ref, _ = ref(x_ref, x_ref, x_ref, attn_mask=attn_mask)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    y.square().sum().backward()
    y_ref.square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-11)
    torch.testing.assert_close(m.q_proj.weight.grad, ref.in_proj_weight.grad[:16], rtol=0, atol=1e-11)
    torch.testing.assert_close(m.out_proj.weight.grad, ref.out_proj.weight.grad, rtol=0, atol=1e-11)


def test_cross_attention_and_key_padding_equal_torch():
    torch.manual_seed(1)
    m = MultiHeadAttention(8, 2).double()
    ref = _copy_to_torch(m)
    x, ctx = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])
    y = m(x, ctx, key_padding_mask=keep)
    y_ref, _ = ref(x, ctx, ctx, key_padding_mask=~keep)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)


def test_written_out_weights_are_a_distribution_and_respect_the_mask():
    m = MultiHeadAttention(8, 2, fast=False)
    m(torch.randn(1, 4, 8), causal=True)
    w = m.last_weights  # (B, H, N, N)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 4))
    lower = torch.ones(4, 4, dtype=torch.bool).tril()
    assert (w[..., ~lower] == 0).all() and (w[..., lower] > 0).all()


def test_causal_output_does_not_depend_on_later_inputs():
    m = MultiHeadAttention(8, 2).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64, requires_grad=True)
    y = m(x, causal=True)
    y[0, 2].sum().backward()
    assert x.grad[0, 3:].abs().max() == 0 and x.grad[0, :3].abs().max() > 0


def test_kv_cache_decoding_equals_the_full_pass():
    torch.manual_seed(2)
    m = MultiHeadAttention(8, 2).double().eval()
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    full = m(x, causal=True)
    cache = {}
    first = m(x[:, :3], causal=True, cache=cache)  # a prompt, then one token at a time
    steps = [m(x[:, t:t + 1], causal=True, cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat([first, *steps], 1), full, rtol=0, atol=1e-13)
    assert cache["k"].shape == (2, 2, 7, 4)


def test_scale_is_one_over_root_dq():
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    k = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    _, w = attention(q, k, torch.eye(2, 4), fast=False)
    assert w[0, 0].item() == pytest.approx(math.exp(1) / (math.exp(1) + 1))  # 2 / sqrt(4) = 1


def test_bad_heads():
    with pytest.raises(ValueError, match="'n_heads' parameter of MultiHeadAttention must divide"):
        MultiHeadAttention(10, 3)


def test_a_square_mask_is_never_read_as_key_padding():
    torch.manual_seed(3)
    m = MultiHeadAttention(8, 2).double()
    x = torch.randn(3, 3, 8, dtype=torch.float64)  # B = N = 3: the shapes (B, M) and (N, M) coincide
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    torch.testing.assert_close(m(x, mask=causal), m(x, causal=True), rtol=0, atol=1e-14)
    torch.testing.assert_close(m(x, mask=causal), m(x, mask=causal[None, None]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        m(x, key_padding_mask=torch.ones(3, 4, dtype=torch.bool))
