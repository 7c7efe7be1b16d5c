"""Fig. 12.15's interaction patterns: the mask builders against their definitions and closed-form counts,
and sparse attention against masked dense attention (values and gradients)."""

import pytest
import torch

from udl.nn.attention import (attention, causal_mask, convolutional_mask, full_mask, global_tokens_mask,
                              selected_tokens_mask)
from udl.nn.sparse_attention import SparsePattern, sparse_attention


def _by_loop(n, allowed):
    """The mask written entry by entry from a rule ``allowed(i, j)``: an independent reference."""
    return torch.tensor([[bool(allowed(i, j)) for j in range(n)] for i in range(n)])


@pytest.mark.parametrize("n", [1, 2, 7, 16])
@pytest.mark.parametrize("kernel_size, dilation", [(1, 1), (3, 1), (3, 2), (5, 3), (4, 1), (2, 3)])
def test_convolutional_mask_is_the_kernels_taps(n, kernel_size, dilation):
    causal = _by_loop(n, lambda i, j: any(j == i - dilation * m for m in range(kernel_size)))
    torch.testing.assert_close(convolutional_mask(n, kernel_size, dilation=dilation, causal=True), causal)
    counts = [min(kernel_size, i // dilation + 1) for i in range(n)]  # the decoder's closed form
    assert convolutional_mask(n, kernel_size, dilation=dilation, causal=True).sum(1).tolist() == counts
    if kernel_size % 2:
        h = kernel_size // 2
        enc = _by_loop(n, lambda i, j: any(j == i + dilation * m for m in range(-h, h + 1)))
        torch.testing.assert_close(convolutional_mask(n, kernel_size, dilation=dilation), enc)
        counts = [min(h, i // dilation) + min(h, (n - 1 - i) // dilation) + 1 for i in range(n)]
        assert convolutional_mask(n, kernel_size, dilation=dilation).sum(1).tolist() == counts


def test_full_selected_and_global_masks_by_their_definitions():
    n = 9
    torch.testing.assert_close(full_mask(n), torch.ones(n, n, dtype=torch.bool))
    sel = [2, 6]
    torch.testing.assert_close(selected_tokens_mask(n, sel), _by_loop(n, lambda i, j: i in sel))
    torch.testing.assert_close(selected_tokens_mask(n, torch.tensor(sel), causal=True),
                               _by_loop(n, lambda i, j: i in sel and j <= i))
    torch.testing.assert_close(global_tokens_mask(n, 2), _by_loop(n, lambda i, j: i < 2 or j < 2))
    assert global_tokens_mask(n, 0).sum() == 0 and global_tokens_mask(n, n).all()
    # fig. 12.15h: a band of 3 with two global tokens; rows: n for the global ones, else 2 + the band beyond them
    h = convolutional_mask(n, 3) | global_tokens_mask(n, 2)
    band = [max(0, min(n - 1, i + 1) - max(2, i - 1) + 1) for i in range(n)]
    assert h.sum(1).tolist() == [n, n] + [2 + band[i] for i in range(2, n)]
    assert h.sum(0)[:2].tolist() == [n, n]


@pytest.mark.parametrize("build", [
    lambda n, **kw: full_mask(n, **kw),
    lambda n, **kw: causal_mask(n, **kw),
    lambda n, **kw: convolutional_mask(n, 5, dilation=2, causal=True, **kw),
    lambda n, **kw: convolutional_mask(n, 3, dilation=3, **kw),
    lambda n, **kw: selected_tokens_mask(n, [0, 4, 10], causal=True, **kw),
    lambda n, **kw: global_tokens_mask(n, 3, **kw),
])
def test_the_rows_of_chosen_queries_are_the_rows_of_the_whole_mask(build):
    n = 11
    queries = torch.tensor([10, 0, 3, 3, 7])
    torch.testing.assert_close(build(n, queries=queries), build(n)[queries])
    assert build(n, queries=torch.zeros(0, dtype=torch.long)).shape == (0, n)


def test_the_rows_of_a_causal_mask_with_more_keys_stay_bottom_right_aligned():
    queries = torch.tensor([3, 0, 2])
    torch.testing.assert_close(causal_mask(4, 7, queries=queries), causal_mask(4, 7)[queries])


def _patterns(n):
    """The eight panels of fig. 12.15 for n tokens, as in udl.figures.ch12_patterns."""
    third = [n // 3, 2 * n // 3]
    return {"a": full_mask(n), "b": causal_mask(n),
            "c": convolutional_mask(n, 3), "d": convolutional_mask(n, 3, causal=True),
            "e": convolutional_mask(n, 3, dilation=2, causal=True),
            "f": convolutional_mask(n, 3, dilation=3, causal=True),
            "g": convolutional_mask(n, 3, causal=True) | selected_tokens_mask(n, third, causal=True),
            "h": convolutional_mask(n, 3) | global_tokens_mask(n, min(2, n)),
            "selected rows alone (others see nothing)": selected_tokens_mask(n, third)}


def _values_and_grads(fn, q, k, v, r):
    q, k, v = (t.clone().requires_grad_(True) for t in (q, k, v))
    out = fn(q, k, v)
    (out * r).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad


@pytest.mark.parametrize("n, chunk", [(1, 64), (7, 3), (33, 8), (100, 64), (130, 1)])
def test_sparse_attention_equals_masked_dense_attention_values_and_gradients(n, chunk):
    g = torch.Generator().manual_seed(n)
    q, k = torch.randn(2, 2, 3, n, 8, generator=g).unbind(0)  # (B, H, N, D)
    v = torch.randn(2, 3, n, 5, generator=g)
    r = torch.randn(2, 3, n, 5, generator=g)
    for name, mask in _patterns(n).items():
        pattern = SparsePattern(mask, chunk=chunk)
        dense = _values_and_grads(lambda a, b, c: attention(a, b, c, mask), q, k, v, r)
        sparse = _values_and_grads(lambda a, b, c: sparse_attention(a, b, c, pattern), q, k, v, r)
        for what, x, y in zip(("output", "dq", "dk", "dv"), dense, sparse):
            assert (x - y).abs().max() <= 1e-5, f"pattern {name}, {what}"
        blind = ~mask.any(1)
        assert not sparse[0][..., blind, :].any()  # a query that sees no key: zeros
        assert pattern.nnz == int(mask.sum()) and pattern.nnz_per_row().tolist() == mask.sum(1).tolist()


def test_a_pattern_read_from_a_function_equals_the_one_read_from_its_mask():
    n = 50
    rows = SparsePattern(lambda q: convolutional_mask(n, 7, dilation=2, causal=True, queries=q), n_queries=n, chunk=9)
    whole = SparsePattern(convolutional_mask(n, 7, dilation=2, causal=True), chunk=9)
    assert rows.starts == whole.starts == list(range(0, n, 9))
    for a, b in zip(rows.keys + rows.allowed, whole.keys + whole.allowed):
        torch.testing.assert_close(a, b)


def test_the_work_of_a_band_grows_linearly_and_dense_work_quadratically():
    k, chunk = 16, 32
    for n in (256, 1024, 4096):
        pattern = SparsePattern(lambda q: convolutional_mask(n, k, causal=True, queries=q), n_queries=n, chunk=chunk)
        assert pattern.nnz == k * n - k * (k - 1) // 2  # min(k, i + 1) summed over the rows
        assert pattern.computed <= n * (chunk + k - 1) < n * n  # each chunk: its C queries x (C + K - 1) keys


def test_cross_attention_pattern_and_bad_inputs():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(4, 6, generator=g), torch.randn(9, 6, generator=g), torch.randn(9, 2, generator=g)
    mask = torch.rand(4, 9, generator=g) < 0.4
    pattern = SparsePattern(mask, chunk=3)
    assert (sparse_attention(q, k, v, pattern) - attention(q, k, v, mask)).abs().max() < 1e-6
    with pytest.raises(ValueError, match=r"^The 'pattern' parameter of sparse_attention must be of N_q x N_k = 9x9\."):
        sparse_attention(k, k, v, pattern)
    with pytest.raises(TypeError, match=r"^The 'k' parameter of sparse_attention must be a torch.float32 tensor"):
        sparse_attention(q, k.double(), v, pattern)
    with pytest.raises(ValueError, match=r"^The 'mask' parameter of SparsePattern must return a boolean \(2, 5\)"):
        SparsePattern(lambda rows: torch.ones(len(rows), 4, dtype=torch.bool), n_queries=2, n_keys=5)
    with pytest.raises(ValueError, match=r"^The 'kernel_size' parameter of convolutional_mask must be an odd int"):
        convolutional_mask(8, 4)
    with pytest.raises(ValueError, match=r"^The 'queries' parameter of full_mask must hold positions in \[0, 3\)"):
        full_mask(3, queries=torch.tensor([3]))
    with pytest.raises(ValueError, match=r"^The 'queries' parameter of causal_mask must hold positions in \[0, 4\)"):
        causal_mask(4, 7, queries=torch.tensor([4]))
    with pytest.raises(ValueError, match=r"^The 'pattern' parameter of sparse_attention must be on the queries' "
                                         r"device \(meta\)\. Got cpu instead\.$"):
        sparse_attention(q.to("meta"), k.to("meta"), v.to("meta"), pattern)


def test_the_quick_benchmark_prints_dense_and_sparse_rows_for_each_size(capsys):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "attention_patterns.py"
    spec = importlib.util.spec_from_file_location("attention_patterns", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["attention_patterns"] = bench  # NamedTuple and the forked processes look the module up there
    spec.loader.exec_module(bench)
    rows = bench.main(["--quick", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert "dense/sparse time" in printed and printed.count("\n") == 2 + 4  # title, header, four rows
    assert [(r.tokens, r.path) for r in rows] == [(64, "dense"), (64, "sparse"), (128, "dense"), (128, "sparse")]
    for r in rows:
        assert r.device == "cpu" and r.seconds > 0 and r.build_s > 0 and r.peak_mb >= 0
    dense_mb = {r.tokens: r.structure_mb for r in rows if r.path == "dense"}
    assert dense_mb == {64: 64 * 64 / 2**20, 128: 128 * 128 / 2**20}  # the boolean T x T mask
    # a band of 8 keys in chunks of 16 queries: the first chunk sees keys 0-15, the 7 others 16 + 7 keys each;
    # int64 key positions and a (16, keys) boolean table per chunk
    keys = 16 + 7 * 23
    sparse = next(r for r in rows if r.path == "sparse" and r.tokens == 128)
    assert sparse.structure_mb == (8 * keys + 16 * keys) / 2**20


@pytest.mark.parametrize("overrides, key, words", [
    ({"kernel_size": 4}, "kernel_size", r"must be odd .+\. Got 4 instead\.$"),
    ({"n": 8, "selected": [4, 9]}, "selected", r"must hold positions below n = 8\. Got 4,9 instead\.$"),
    ({"n": 4, "selected": [1], "n_global": 5}, "n_global", r"must be at most n = 4\. Got 5 instead\.$"),
])
def test_figure_12_15_refuses_parameters_that_do_not_fit_together(overrides, key, words):
    from udl import registry

    with pytest.raises(ValueError, match=rf"^The '{key}' parameter of figure 12\.15 {words}"):
        registry.get("12.15").resolve("tiny", overrides)


def test_figure_12_15_claims_hold_for_other_parameters_or_are_not_tested():
    from udl.runner import run_figure

    r = run_figure("12.15", preset="tiny", overrides={"kernel_size": "5", "dilations": "3,4", "selected": "0,11",
                                                       "n_global": "0", "sizes": "2,50", "chunk": "5"},
                   cache=False)
    tested = [c for c in r.checks if c.tested]
    assert len(tested) == len(r.checks) - 1 and all(c.ok for c in tested), [c for c in tested if not c.ok]
    assert [c.claim for c in r.checks if not c.tested] == ["h) the global tokens see every token and are seen by "
                                                           "every token"]
    assert r.metrics["keys_per_query"]["f"][:6] == [1, 1, 1, 1, 2, 2]  # dilation 4: a second key from i = 4 on
    small = run_figure("12.15", preset="tiny", overrides={"kernel_size": "15", "sizes": "3"}, cache=False)
    assert [c.tested for c in small.checks][-1] is False  # no size above K: the band cannot be told from full


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sparse_attention_is_as_accurate_as_the_dense_path_in_low_precision(dtype):
    # large logits (entries of Q and K about 3): scores formed in bfloat16 would be off by up to 0.125
    mask = convolutional_mask(64, 9, causal=True) | global_tokens_mask(64, 2)
    pattern = SparsePattern(mask, chunk=16)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        q, k = (3 * torch.randn(2, 4, 64, 32, generator=g) for _ in range(2))
        q, k, v = q.to(dtype), k.to(dtype), torch.randn(2, 4, 64, 32, generator=g).to(dtype)
        exact = attention(q.double(), k.double(), v.double(), mask)
        dense = attention(q, k, v, mask)  # SDPA's fused kernel
        sparse = sparse_attention(q, k, v, pattern)
        assert sparse.dtype == dtype
        error, dense_error = float((sparse.double() - exact).abs().max()), float((dense.double() - exact).abs().max())
        assert error <= 1.5 * dense_error, (error, dense_error)
