"""udl.nn.attention against the book's per-token sums, SDPA and torch.nn.MultiheadAttention."""

import math

import pytest
import torch

from udl.nn.attention import (MultiHeadAttention, attention, book_multi_head_attention, book_self_attention,
                              causal_mask, per_token_self_attention, record_attention_weights)

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _torch_grads(ref: torch.nn.MultiheadAttention, d: int) -> dict[str, torch.Tensor]:
    """torch's parameter gradients under udl's names (in_proj split back into q, k, v)."""
    names = ("q_proj", "k_proj", "v_proj")
    grads = {f"{n}.weight": g for n, g in zip(names, ref.in_proj_weight.grad.split(d))}
    grads |= {f"{n}.bias": g for n, g in zip(names, ref.in_proj_bias.grad.split(d))}
    return grads | {"out_proj.weight": ref.out_proj.weight.grad, "out_proj.bias": ref.out_proj.bias.grad}


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
    slow, w = attention(q, k, v, need_weights=True)
    fast = attention(q, k, v)
    assert isinstance(fast, torch.Tensor)
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


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_to_torch_gives_equal_values_weights_and_gradients(need_weights, causal):
    m = MultiHeadAttention(16, 4, generator=0).double()
    ref = m.to_torch()
    assert isinstance(ref, torch.nn.MultiheadAttention) and ref.batch_first and ref.in_proj_weight.dtype == F64
    x = torch.randn(3, 6, 16, dtype=F64, generator=_gen(1), requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out = m(x, causal=causal, need_weights=need_weights)
    y, w = out if need_weights else (out, None)
    attn_mask = ~causal_mask(6) if causal else None  # torch: True = blocked
    y_ref, w_ref = ref(x_ref, x_ref, x_ref, attn_mask=attn_mask, average_attn_weights=False)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    if need_weights:
        torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-12)
    r = torch.randn(y.shape, dtype=F64, generator=_gen(2))
    (y * r).sum().backward()
    (y_ref * r).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-12)
    theirs = _torch_grads(ref, 16)
    for name, p in m.named_parameters():
        torch.testing.assert_close(p.grad, theirs[name], rtol=0, atol=1e-12, msg=name)


def test_to_torch_copies_and_does_not_share():
    m = MultiHeadAttention(8, 2, bias=False, dropout=0.25, generator=3)
    ref = m.eval().to_torch()
    assert ref.in_proj_bias is None and ref.out_proj.bias is None and ref.dropout == 0.25 and not ref.training
    torch.testing.assert_close(ref.in_proj_weight[8:16], m.k_proj.weight, rtol=0, atol=0)
    with torch.no_grad():
        ref.out_proj.weight.zero_()
    assert m.out_proj.weight.abs().max() > 0


def test_cross_attention_and_key_padding_equal_torch():
    m = MultiHeadAttention(8, 2, generator=1).double()
    ref = m.to_torch()
    x, ctx = torch.randn(2, 3, 8, dtype=F64), torch.randn(2, 5, 8, dtype=F64)
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])
    y = m(x, ctx, key_padding_mask=keep)
    y_ref, _ = ref(x, ctx, ctx, key_padding_mask=~keep)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)


def test_written_out_weights_are_a_distribution_and_respect_the_mask():
    m = MultiHeadAttention(8, 2)
    _, w = m(torch.randn(1, 4, 8), causal=True, need_weights=True)  # (B, H, N, N)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 4))
    lower = torch.ones(4, 4, dtype=torch.bool).tril()
    assert (w[..., ~lower] == 0).all() and (w[..., lower] > 0).all()


def _masks(n_q=4, n_k=5):
    """The mask table: (name, boolean mask or None, causal) with B = 2, H = 3, N_q = 4, N_k = 5."""
    padding = torch.ones(2, 1, 1, n_k, dtype=torch.bool)
    padding[1, ..., 3:] = False  # the second sequence's last two keys are padding
    one_row = torch.ones(n_q, n_k, dtype=torch.bool)
    one_row[2] = False  # query 2 may attend to nothing
    blind_batch = torch.ones(2, 1, 1, n_k, dtype=torch.bool)
    blind_batch[1] = False  # every query of the second sequence
    return [("none", None, False), ("causal", None, True), ("padding", padding, False),
            ("padding and causal", padding, True), ("a fully masked row", one_row, False),
            ("a fully masked row and causal", one_row, True), ("a fully masked sequence", blind_batch, False),
            ("all masked", torch.zeros(n_q, n_k, dtype=torch.bool), False)]


def _additive(mask: torch.Tensor, dtype=F64) -> torch.Tensor:
    return torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, float("-inf"))


@pytest.mark.parametrize("additive", [False, True], ids=["boolean", "additive"])
@pytest.mark.parametrize("name, mask, causal", _masks(), ids=[m[0] for m in _masks()])
def test_both_paths_equal_sdpa_on_every_mask(name, mask, causal, additive):
    g = _gen(5)
    q, k, v = (torch.randn(2, 3, n, 8, dtype=F64, generator=g, requires_grad=True) for n in (4, 5, 5))
    allowed = mask if mask is not None else torch.ones(4, 5, dtype=torch.bool)
    if causal:
        allowed = allowed & causal_mask(4, 5)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=_additive(allowed))
    given = None if mask is None else (_additive(mask) if additive else mask)
    fused = attention(q, k, v, given, causal=causal)
    out, w = attention(q, k, v, given, causal=causal, need_weights=True)
    for got in (fused, out):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # each query's weights: a distribution over the keys it may see, or all zero when it may see none
    seen = allowed.expand(2, 3, 4, 5)
    assert (w[~seen] == 0).all() and (w[seen] > 0).all()
    torch.testing.assert_close(w.sum(-1), seen.any(-1).to(F64), rtol=0, atol=1e-14)
    out.square().sum().backward()  # no NaN flows back from a query that sees nothing
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_a_fully_masked_row_gives_zero_not_nan():
    # the case: SDPA gives 0 for query 1, which may attend to no key
    q = torch.randn(1, 1, 2, 4, generator=_gen(0))
    mask = torch.tensor([[True, True], [False, False]])
    out, w = attention(q, q, q, mask, need_weights=True)
    assert out[0, 0, 1].abs().max() == 0 and w[0, 0, 1].abs().max() == 0
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask),
                               rtol=0, atol=1e-6)
    # the layer: a sequence that is all padding comes out as the output bias alone, as torch's layer gives
    # it through SDPA (torch's own written-out path, need_weights=True, and its inference fast path give NaN)
    m = MultiHeadAttention(8, 2, generator=0).double()
    x = torch.randn(2, 3, 8, dtype=F64, generator=_gen(1))
    keep = torch.tensor([[True, True, True], [False, False, False]])
    y, w = m(x, key_padding_mask=keep, need_weights=True)
    torch.testing.assert_close(y[1], m.out_proj.bias.expand(3, 8), rtol=0, atol=0)
    y_ref = m.to_torch()(x, x, x, key_padding_mask=~keep, need_weights=False)[0]
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    assert w[1].abs().max() == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_written_out_path_is_as_accurate_as_sdpa_in_low_precision(dtype):
    # large logits (entries of Q and K about 3, scores Q·K/√D_q about 9 and up to ~40): in bfloat16 a
    # score near 40 keeps 8 bits, off by 0.125, so scores and softmax must not be formed in the input dtype
    errors = {"ours": [], "sdpa": []}
    for seed in range(3):
        g = _gen(seed)
        q, k = (3 * torch.randn(2, 4, 64, 32, generator=g) for _ in range(2))
        q, k, v = q.to(dtype), k.to(dtype), torch.randn(2, 4, 64, 32, generator=g).to(dtype)
        exact = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double())
        exact_w = torch.softmax(q.double() @ k.double().transpose(-2, -1) / math.sqrt(32), -1)
        out, w = attention(q, k, v, need_weights=True)
        assert out.dtype == w.dtype == dtype
        errors["ours"].append(float((out.double() - exact).abs().max()))
        errors["sdpa"].append(float((torch.nn.functional.scaled_dot_product_attention(q, k, v).double()
                                     - exact).abs().max()))
        # each weight is the float64 one rounded once (half an ulp of a number <= 1)
        assert float((w.double() - exact_w).abs().max()) <= torch.finfo(dtype).eps / 2
    for ours, sdpa in zip(errors["ours"], errors["sdpa"]):
        assert ours <= 1.5 * sdpa, errors
    # under autocast the written-out path computes the same numbers
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_autocast, w_autocast = attention(q, k, v, need_weights=True)
    torch.testing.assert_close(out_autocast, out, rtol=0, atol=0)
    torch.testing.assert_close(w_autocast, w, rtol=0, atol=0)


def test_layers_take_any_float_input_under_autocast_and_additive_masks():
    from udl.nn.transformer import TransformerLayer

    m, layer = MultiHeadAttention(8, 2, generator=0), TransformerLayer(8, 2, generator=0)
    x = torch.randn(2, 3, 8, generator=_gen(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a bfloat16 input beside float32 weights is autocast's job
        assert m(x.bfloat16()).dtype == torch.bfloat16 and layer(x.bfloat16()).shape == (2, 3, 8)
    allowed = torch.ones(3, 3, dtype=torch.bool).tril()
    additive = torch.zeros(3, 3).masked_fill(~allowed, float("-inf"))
    keep = torch.tensor([[True, True, True], [True, True, False]])
    for need_weights in (False, True):
        torch.testing.assert_close(m(x, mask=additive, key_padding_mask=keep, need_weights=need_weights),
                                   m(x, mask=allowed, key_padding_mask=keep, need_weights=need_weights),
                                   rtol=0, atol=1e-6)


def test_causal_output_does_not_depend_on_later_inputs():
    m = MultiHeadAttention(8, 2, generator=0).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64, requires_grad=True)
    y = m(x, causal=True)
    y[0, 2].sum().backward()
    assert x.grad[0, 3:].abs().max() == 0 and x.grad[0, :3].abs().max() > 0


def test_kv_cache_decoding_equals_the_full_pass():
    m = MultiHeadAttention(8, 2, generator=2).double().eval()
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
    _, w = attention(q, k, torch.eye(2, 4), need_weights=True)
    assert w[0, 0].item() == pytest.approx(math.exp(1) / (math.exp(1) + 1))  # 2 / sqrt(4) = 1


def test_bad_heads():
    with pytest.raises(ValueError, match="'n_heads' parameter of MultiHeadAttention must divide"):
        MultiHeadAttention(10, 3)


def test_a_square_mask_is_never_read_as_key_padding():
    m = MultiHeadAttention(8, 2, generator=3).double()
    x = torch.randn(3, 3, 8, dtype=torch.float64)  # B = N = 3: the shapes (B, M) and (N, M) coincide
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    torch.testing.assert_close(m(x, mask=causal), m(x, causal=True), rtol=0, atol=1e-14)
    torch.testing.assert_close(m(x, mask=causal), m(x, mask=causal[None, None]), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^The 'key_padding_mask' parameter of MultiHeadAttention must be a tensor "
                                         r"of shape \(3, 3\)\. Got shape \(3, 4\) instead\.$"):
        m(x, key_padding_mask=torch.ones(3, 4, dtype=torch.bool))


def test_per_token_loop_equals_the_matrix_form():
    for n, d_q in ((1, 3), (4, 2), (6, 5)):
        g = _gen(n)
        X = torch.randn(3, n, dtype=F64, generator=g)  # D = 3 inputs, D_q = d_q, D_v = 2
        ov, oq, ok = (torch.randn(rows, 3, dtype=F64, generator=g) for rows in (2, d_q, d_q))
        bv, bq, bk = (torch.randn(rows, dtype=F64, generator=g) for rows in (2, d_q, d_q))
        out, A = per_token_self_attention(X, ov, bv, oq, bq, ok, bk)
        ref_out, ref_A = book_self_attention(X, ov, bv, oq, bq, ok, bk)
        assert out.shape == (2, n) and A.shape == (n, n)
        torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-13)
        torch.testing.assert_close(A, ref_A, rtol=0, atol=1e-14)


def test_per_token_loop_survives_large_scores():
    X = torch.tensor([[1000.0, -1000.0]], dtype=F64)  # exp(k·q) alone would overflow
    one = torch.ones(1, 1, dtype=F64)
    zero = torch.zeros(1, dtype=F64)
    out, A = per_token_self_attention(X, one, zero, one, zero, one, zero)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(A, torch.eye(2, dtype=F64))  # each token attends only to itself


@pytest.mark.parametrize("n_heads", [1, 2, 4])
def test_book_multi_head_equals_the_module_and_torch(n_heads):
    m = MultiHeadAttention(8, n_heads, generator=n_heads).double()
    x = torch.randn(1, 5, 8, dtype=F64, generator=_gen(7))
    out, Sa, A = book_multi_head_attention(x[0].T, **m.book_parameters(), n_heads=n_heads)  # book X = our x.T
    y, w = m(x, need_weights=True)
    assert out.shape == (8, 5) and Sa.shape == (n_heads, 8 // n_heads, 5) and A.shape == (n_heads, 5, 5)
    torch.testing.assert_close(out, y[0].T, rtol=0, atol=1e-13)
    torch.testing.assert_close(A, w[0].transpose(-2, -1), rtol=0, atol=1e-14)  # book: columns are queries
    torch.testing.assert_close(out, m.to_torch()(x, x, x)[0][0].T, rtol=0, atol=1e-13)
    torch.testing.assert_close(A.sum(1), torch.ones(n_heads, 5, dtype=F64), rtol=0, atol=1e-14)


def test_book_multi_head_refuses_heads_that_do_not_divide_d():
    p = MultiHeadAttention(6, 2, generator=0).book_parameters()
    with pytest.raises(ValueError, match=r"^The 'n_heads' parameter of book_multi_head_attention must divide D = 6\. "
                                         r"Got 4 instead\.$"):
        book_multi_head_attention(torch.zeros(6, 2), **p, n_heads=4)


def test_the_generator_decides_the_weights_and_leaves_the_global_one_alone():
    state = torch.get_rng_state()
    a, b = MultiHeadAttention(8, 2, generator=5), MultiHeadAttention(8, 2, generator=_gen(5))
    c = MultiHeadAttention(8, 2, generator=6)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q) and not torch.equal(p, r), name
    bound = 1 / math.sqrt(8)  # torch's default for a linear layer: U(-1/√fan_in, 1/√fan_in)
    assert 0.9 * bound < a.q_proj.weight.abs().max() <= bound
    with torch.device("meta"):
        assert MultiHeadAttention(8, 2, generator=5).q_proj.weight.is_meta  # counting: nothing drawn


def test_record_attention_weights_sees_every_call_and_changes_nothing():
    layers = [MultiHeadAttention(8, 2, generator=s).double() for s in range(2)]
    x = torch.randn(2, 4, 8, dtype=F64, generator=_gen(0))
    plain = layers[1](layers[0](x, causal=True), x)
    with record_attention_weights(layers) as weights:
        out = layers[1](layers[0](x, causal=True), x)  # causal self-attention, then cross-attention to x
    torch.testing.assert_close(out, plain, rtol=0, atol=1e-13)
    assert [w.shape for w in weights] == [(2, 2, 4, 4)] * 2
    assert weights[0][..., ~causal_mask(4)].abs().max() == 0 and weights[1].min() > 0
    assert isinstance(layers[0](x), torch.Tensor)  # hooks removed on leaving
    with pytest.raises(TypeError, match="'modules' parameter of record_attention_weights"):
        with record_attention_weights([torch.nn.Linear(2, 2)]):
            pass
