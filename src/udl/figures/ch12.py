"""Chapter 12: transformers — self-attention, multi-head attention, the transformer layer, embeddings."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

from udl import drawing, style
from udl.analysis.compare import max_difference
from udl.nn.attention import (MultiHeadAttention, attention, book_multi_head_attention, book_self_attention,
                              causal_mask, per_token_self_attention)
from udl.nn.transformer import TokenEmbedding, TransformerLayer
from udl.registry import Check, Result, figure

DT = torch.float64  # every equality check runs in double precision


# --------------------------------------------------------------------------- shared set-up of 12.1, 12.3, 12.4
def _book_example(n: int, d: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Inputs X (D×N) and the value/query/key weights of one self-attention mechanism.

    Weights are N(0, 1/D) so that the scaled dot products have unit order and the
    attention spreads over several tokens (as in the book's drawings) rather than
    picking one.
    """
    X = torch.randn(d, n, generator=g, dtype=DT)  # (D, N): one token per column
    w = {}
    for name in ("v", "q", "k"):
        w[f"omega_{name}"] = torch.randn(d, d, generator=g, dtype=DT) / math.sqrt(d)  # (D, D)
        w[f"beta_{name}"] = 0.5 * torch.randn(d, generator=g, dtype=DT)  # (D,)
    return {"X": X, **w}


def _args(e: dict, X: torch.Tensor | None = None) -> tuple:
    return (e["X"] if X is None else X, e["omega_v"], e["beta_v"], e["omega_q"], e["beta_q"], e["omega_k"],
            e["beta_k"])


def _qkv(e: dict, X: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    X = e["X"] if X is None else X
    V = e["beta_v"][:, None] + e["omega_v"] @ X  # UDL eq. 12.2: v_m = β_v + Ω_v x_m, (D, N)
    Q = e["beta_q"][:, None] + e["omega_q"] @ X  # UDL eq. 12.6: q_n = β_q + Ω_q x_n
    K = e["beta_k"][:, None] + e["omega_k"] @ X  # k_m = β_k + Ω_k x_m
    return V, Q, K


def _row_form(e: dict, X: torch.Tensor | None = None, need_weights: bool = False):
    """The same attention through udl's row-form ``attention`` (book X = our x.T)."""
    V, Q, K = _qkv(e, X)
    if not need_weights:
        return attention(Q.T[None], K.T[None], V.T[None])[0].T, None  # SDPA: (D, N)
    out, w = attention(Q.T[None], K.T[None], V.T[None], need_weights=True)  # (1, N, D), (1, N, N)
    return out[0].T, w[0].T  # back to columns: (D, N), (N keys, N queries)


# --------------------------------------------------------------------------- drawing helpers (no computation)
def _matrix(ax, M, top_left, *, cell: float = 1.0, fmt="{:.1f}", fontsize: float = 6.5, lw: float = 0.6, **kw):
    """``M`` as touching cells of side ``cell``, entry [0, 0] centred at ``top_left``, in this chapter's look.

    :func:`udl.drawing.grid` with one decimal, small type and thin edges; the faces are
    shades of ``color`` by magnitude (red/blue by sign without one) unless ``faces`` is given.
    """
    return drawing.grid(ax, M, top_left, step=cell, fmt=fmt, fontsize=fontsize, lw=lw, **kw)


def _routing_panel(ax, X, V, Sa, A, n, *, title=True):
    """Inputs x_m (orange), values v_m (gray) and output sa_n (cyan), with links as thick as a[x_m, x_n]."""
    d, N = X.shape
    gap = 2.4  # horizontal distance between tokens
    y_in, y_val, y_out = 0.0, d + 2.5, 2 * d + 5.5  # top cell of each column
    vmax = max(np.abs(X).max(), np.abs(V).max(), np.abs(Sa).max())
    for m in range(N):
        xm = m * gap
        _matrix(ax, X[:, m:m + 1], (xm, y_in), color=style.DATA, vmax=vmax)
        ax.text(xm, y_in - d + 0.1, f"$x_{m + 1}$", ha="center", va="center", fontsize=8)
        _matrix(ax, V[:, m:m + 1], (xm, y_val), color=style.REGION, vmax=vmax)
        ax.text(xm - 0.85, y_val - (d - 1) / 2, f"$v_{m + 1}$", ha="right", va="center", fontsize=8)
        drawing.arrow(ax, (xm, y_in + 0.55), (xm, y_val - d + 0.45), color="0.45", text="$\\Omega_v, \\beta_v$"
                      if m == 0 else None, fontsize=6)
    xo = (N - 1) * gap / 2
    _matrix(ax, Sa[:, n:n + 1], (xo, y_out), color=style.MODEL, vmax=vmax)
    ax.text(xo + 0.75, y_out - (d - 1) / 2, f"$sa_{n + 1}[x_\\bullet]$", ha="left", va="center", fontsize=8)
    for m in range(N):
        a = float(A[m, n])
        start, end = (m * gap, y_val + 0.5), (xo, y_out - d + 0.5)
        ax.plot([start[0], end[0]], [start[1], end[1]], color=style.MODEL, lw=0.4 + 7 * a, alpha=0.8, zorder=1,
                solid_capstyle="butt")
        t = 0.3
        y_label = start[1] + t * (end[1] - start[1])
        ax.text(start[0] + t * (end[0] - start[0]), y_label, f"{a:.2f}", fontsize=7, ha="center", va="center",
                zorder=4, bbox=dict(fc="white", ec="none", pad=0.2))
    ax.text(-0.7, y_label, f"$a[x_m, x_{n + 1}]$", fontsize=7, ha="right", va="center", color=style.MODEL)
    drawing.frame(ax, (-3.2, (N - 1) * gap + 1.8), (y_in - d - 0.2, y_out + 1.0))
    if title:
        ax.set_title(f"output {n + 1}", fontsize=9)


# --------------------------------------------------------------------------- 12.1
# The example of 12.1, 12.3 and 12.4: N >= 2 tokens, so that outputs can route differently and a softmax over
# the keys is not the constant 1; panels of N columns of D cells stay readable; at least one random example.
_EXAMPLE_LIMITS = {"n": (2, 12), "d": (1, 16), "n_random": (1, 1000)}


@figure("12.1", title="Self-attention as routing",
        caption="Self-attention on N = 3 tokens of size D = 4 (orange: inputs x1..x3). Each input is mapped, with the "
                "same weights Ω_v and biases β_v, to a value vector v_m (gray). Output n (cyan) is a weighted sum of "
                "all three values, with weights a[x_m, x_n] that are positive and add up to one; line widths show "
                "them. a-c) Each output mixes the same values with its own weights: a different routing of the "
                "values for every token. Computed with udl's book_self_attention and compared with the sum written "
                "out token by token and with torch's scaled_dot_product_attention.",
        params={"tiny": dict(n=3, d=4, n_random=4), "full": dict(n=3, d=4, n_random=40)},
        limits=_EXAMPLE_LIMITS)
def routing(p, run):
    e = _book_example(p.n, p.d, run.generator(0))
    Sa, A = book_self_attention(*_args(e))  # (D, N), (N, N)
    V, _, _ = _qkv(e)
    loop_out, loop_A = per_token_self_attention(*_args(e))
    sdpa_out, _ = _row_form(e)
    written_out, written_A = _row_form(e, need_weights=True)
    g = run.generator(1)
    perm = torch.randperm(p.n, generator=g)
    while p.n > 1 and bool((perm == torch.arange(p.n)).all()):
        perm = torch.randperm(p.n, generator=g)
    Sa_p, A_p = book_self_attention(*_args(e, e["X"][:, perm]))
    # the same identities on further random inputs and weights, of other sizes
    worst = {"loop": 0.0, "sdpa": 0.0, "perm": 0.0}
    for t in range(p.n_random):
        n_t, d_t = 2 + t % 6, 1 + t % 7
        e_t = _book_example(n_t, d_t, g)
        Sa_t, _ = book_self_attention(*_args(e_t))
        worst["loop"] = max(worst["loop"], max_difference(Sa_t, per_token_self_attention(*_args(e_t))[0]))
        worst["sdpa"] = max(worst["sdpa"], max_difference(Sa_t, _row_form(e_t)[0]))
        perm_t = torch.randperm(n_t, generator=g)
        worst["perm"] = max(worst["perm"], max_difference(book_self_attention(*_args(e_t, e_t["X"][:, perm_t]))[0],
                                                          Sa_t[:, perm_t]))
    cols = A.T  # (N queries, N keys)
    distinct = min((cols[i] - cols[j]).abs().max().item() for i in range(p.n) for j in range(i + 1, p.n))
    return Result(
        metrics={"n": p.n, "d": p.d, "weights": A.tolist(), "output_shape": list(Sa.shape),
                 "min_weight": A.min().item(),
                 "max_column_sum_error": (A.sum(dim=0) - 1).abs().max().item(),
                 "matrix_vs_loop_outputs": max_difference(Sa, loop_out),
                 "matrix_vs_loop_weights": max_difference(A, loop_A),
                 "matrix_vs_sdpa": max_difference(Sa, sdpa_out),
                 "matrix_vs_written_softmax": max_difference(Sa, written_out),
                 "weights_vs_written_softmax": max_difference(A, written_A),
                 "permutation": perm.tolist(),
                 "permuted_outputs_diff": max_difference(Sa_p, Sa[:, perm]),
                 "permuted_weights_diff": max_difference(A_p, A[perm][:, perm]),
                 "min_difference_between_routings": distinct,
                 "random_loop_diff": worst["loop"], "random_sdpa_diff": worst["sdpa"],
                 "random_permutation_diff": worst["perm"]},
        arrays={"X": e["X"].numpy(), "V": V.numpy(), "Sa": Sa.numpy(), "A": A.numpy()},
        notes="The book's weights (0.1, 0.3, 0.6 ...) are illustrative; here inputs and weights are random "
              "(seeded) and the attention weights are whatever they give. The dot products are scaled by 1/√D "
              "(§12.3.2), as udl's attention does.")


@routing.plot
def _(r):
    a = r.arrays
    n = a["X"].shape[1]
    fig, axes = style.subplots(1, n, width=2.7, height=4.2)
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes):
        _routing_panel(ax, a["X"], a["V"], a["Sa"], a["A"], i)
    style.panel_labels(axes)
    return fig


@routing.checks
def _(r):
    m = r.metrics
    n = m["n"]
    return [Check.greater("every attention weight is positive", m["min_weight"], 0.0),
            Check.close("the weights for each output sum to one", m["max_column_sum_error"], 0.0, 1e-12),
            # random tokens can lie close together, so any difference well above rounding (1e-16) counts
            Check.greater("each output routes the values differently (columns of A differ)",
                          m["min_difference_between_routings"], 1e-9),
            Check.equal("the output has the input's size D×N", m["output_shape"], [m["d"], n]),
            Check.close("matrix form equals the per-token sum sa_n = Σ a[x_m,x_n] v_m (eq. 12.3)",
                        m["matrix_vs_loop_outputs"], 0.0, 1e-12),
            Check.close("its weights equal the per-token softmax (eq. 12.7)", m["matrix_vs_loop_weights"], 0.0,
                        1e-12),
            Check.close("equals torch's scaled_dot_product_attention (attention)", m["matrix_vs_sdpa"],
                        0.0, 1e-12),
            Check.close("equals the written-out softmax (attention, need_weights=True)", m["matrix_vs_written_softmax"],
                        0.0, 1e-12),
            Check.close("and so do the weights", m["weights_vs_written_softmax"], 0.0, 1e-12),
            Check.close("permuting the inputs permutes the outputs", m["permuted_outputs_diff"], 0.0, 1e-12),
            Check.close("and permutes the weights' rows and columns", m["permuted_weights_diff"], 0.0, 1e-12),
            Check.close("on random sizes: matrix form equals the loop", m["random_loop_diff"], 0.0, 1e-12),
            Check.close("on random sizes: equals scaled_dot_product_attention", m["random_sdpa_diff"], 0.0, 1e-12),
            Check.close("on random sizes: permutation equivariant", m["random_permutation_diff"], 0.0, 1e-12)]


def _boxed(ax, M, cx, cy, label, *, below=None, **kw):
    """``_matrix`` centred at ``(cx, cy)`` with ``label`` above it (and ``below`` under it); returns its half sizes."""
    M = np.atleast_2d(M)
    cell = kw.pop("cell", 1.0)
    h, w = M.shape[0] * cell, M.shape[1] * cell
    _matrix(ax, M, (cx - (w - cell) / 2, cy + (h - cell) / 2), cell=cell, **kw)
    ax.text(cx, cy + h / 2 + 0.45 * cell, label, ha="center", va="bottom", fontsize=8)
    if below:
        ax.text(cx, cy - h / 2 - 0.3 * cell, below, ha="center", va="top", fontsize=6.5, color="0.35")
    return w / 2, h / 2


# --------------------------------------------------------------------------- 12.3
def _ranks(v: torch.Tensor) -> list[int]:
    """The rank of each entry (0 = smallest)."""
    return torch.argsort(torch.argsort(v)).tolist()


@figure("12.3", title="Computing the attention weights",
        caption="a) Every input x_n (orange) gives a query q_n = β_q + Ω_q x_n (purple) and a key k_n = β_k + Ω_k x_n "
                "(green), with weights shared by all tokens. b) For one output, the query is compared with every "
                "key by a dot product (scaled by 1/√D); a softmax over the N keys turns these N numbers into "
                "attention weights that are positive and add to one, in the same order as the dot products. c) The "
                "weights route the values to that output, as in figure 12.1. Same inputs and weights as 12.1.",
        params={"tiny": dict(n=3, d=4, output=2, n_random=4), "full": dict(n=3, d=4, output=2, n_random=40)},
        limits={**_EXAMPLE_LIMITS, "output": (1, _EXAMPLE_LIMITS["n"][1])})
def attention_weights(p, run):
    e = _book_example(p.n, p.d, run.generator(0))  # the example of fig. 12.1
    j = p.output - 1
    V, Q, K = _qkv(e)
    q = Q[:, j]
    scores = torch.stack([torch.dot(K[:, m], q) for m in range(p.n)]) / math.sqrt(p.d)  # k_mᵀ q_n / √D_q
    exps = torch.exp(scores - scores.max())
    weights = exps / exps.sum()  # softmax over the keys, written out
    Sa, A = book_self_attention(*_args(e))
    g = run.generator(1)
    worst = 0.0  # the same on random examples: column softmax of KᵀQ/√D equals the library's weights
    for t in range(p.n_random):
        e_t = _book_example(2 + t % 6, 1 + t % 7, g)
        _, Q_t, K_t = _qkv(e_t)
        s_t = K_t.T @ Q_t / math.sqrt(Q_t.shape[0])  # (N keys, N queries)
        ex = torch.exp(s_t - s_t.max(dim=0).values)
        worst = max(worst, max_difference(ex / ex.sum(dim=0), book_self_attention(*_args(e_t))[1]))
    return Result(
        metrics={"n": p.n, "d": p.d, "output": p.output, "scores": scores.tolist(), "weights": weights.tolist(),
                 "query_shape": list(Q.shape), "key_shape": list(K.shape),
                 "softmax_vs_library_weights": max_difference(weights, A[:, j]),
                 "weight_sum_error": abs(weights.sum().item() - 1), "min_weight": weights.min().item(),
                 "score_ranks": _ranks(scores), "weight_ranks": _ranks(weights),
                 "routed_output_vs_library": max_difference(V @ weights, Sa[:, j]),
                 "random_softmax_vs_library": worst},
        arrays={"X": e["X"].numpy(), "Q": Q.numpy(), "K": K.numpy(), "V": V.numpy(), "Sa": Sa.numpy(),
                "A": A.numpy(), "scores": scores.numpy(), "weights": weights.numpy()},
        notes="Random (seeded) inputs and weights instead of the book's illustration. The book introduces the "
              "1/√D scaling later (§12.3.2); udl's attention always applies it, so the dot products shown are scaled.")


@attention_weights.requires
def _(p):
    if p.output > p.n:
        raise ValueError(f"The 'output' parameter of figure 12.3 must be in [1, n] = [1, {p.n}]. Got {p.output} "
                         "instead.")


def _qk_panel(ax, X, Q, K):
    d, N = X.shape
    gap = 3.6
    vmax = max(np.abs(X).max(), np.abs(Q).max(), np.abs(K).max())
    for m in range(N):
        xm = m * gap
        _matrix(ax, X[:, m:m + 1], (xm, 0.0), color=style.DATA, vmax=vmax)
        ax.text(xm, -d + 0.1, f"$x_{m + 1}$", ha="center", va="center", fontsize=8)
        for dx, M, c, name in ((-0.7, Q, style.EXTRA[0], "q"), (0.7, K, style.EXTRA[1], "k")):
            _matrix(ax, M[:, m:m + 1], (xm + dx, d + 2.5), color=c, vmax=vmax)
            ax.text(xm + dx, d + 3.1, f"${name}_{m + 1}$", ha="center", va="bottom", fontsize=8, color=c)
            drawing.arrow(ax, (xm, 0.55), (xm + dx, d + 2.5 - d + 0.45), color=c)
    ax.text(-1.5, d / 2 + 0.5, "$\\Omega_q, \\beta_q$", color=style.EXTRA[0], fontsize=7, ha="right")
    ax.text((N - 1) * gap + 1.5, d / 2 + 0.5, "$\\Omega_k, \\beta_k$", color=style.EXTRA[1], fontsize=7)
    drawing.frame(ax, (-2.8, (N - 1) * gap + 3.0), (-d - 0.2, d + 4.2))
    ax.set_title("queries and keys", fontsize=9)


def _softmax_panel(ax, Q, K, scores, weights, j):
    d, N = Q.shape
    gap = 1.8
    vmax = max(np.abs(Q).max(), np.abs(K).max())
    _matrix(ax, Q[:, j:j + 1], (-2.2, 0.0), color=style.EXTRA[0], vmax=vmax)
    ax.text(-2.9, -(d - 1) / 2, f"$q_{j + 1}$", ha="right", va="center", fontsize=8, color=style.EXTRA[0])
    y_s, y_w = 2.8, 5.6
    for m in range(N):
        xm = m * gap
        _matrix(ax, K[:, m:m + 1], (xm, 0.0), color=style.EXTRA[1], vmax=vmax)
        ax.text(xm, -d + 0.1, f"$k_{m + 1}$", ha="center", va="center", fontsize=8, color=style.EXTRA[1])
        _matrix(ax, [[scores[m]]], (xm, y_s), faces="white", fmt="{:.2f}", fontsize=7, cell=1.2)
        _matrix(ax, [[weights[m]]], (xm, y_w), color=style.MODEL, vmax=1.0, fmt="{:.2f}", fontsize=7, cell=1.2)
        drawing.arrow(ax, (xm, 0.55), (xm, y_s - 0.65), color=style.EXTRA[1], lw=0.8)
        # the query meets every key
        drawing.arrow(ax, (-2.2, 0.55), (xm - 0.35, y_s - 0.65), color=style.EXTRA[0], lw=0.6)
    ax.text((N - 1) * gap + 0.9, y_s, f"$k_m^T q_{j + 1}/\\sqrt{{D}}$", fontsize=7, va="center")
    ax.text((N - 1) * gap + 0.9, y_w, f"$a[x_m, x_{j + 1}]$", fontsize=7, va="center", color=style.MODEL)
    drawing.arrow(ax, ((N - 1) * gap / 2, y_s + 0.65), ((N - 1) * gap / 2, y_w - 0.65), color="black", text="softmax")
    ax.text((N - 1) * gap / 2, y_w + 0.9, f"sum = {float(np.sum(weights)):.3f}", ha="center", fontsize=7)
    drawing.frame(ax, (-3.6, (N - 1) * gap + 3.2), (-d - 0.2, y_w + 1.6))
    ax.set_title(f"weights for output {j + 1}", fontsize=9)


@attention_weights.plot
def _(r):
    a, j = r.arrays, r.metrics["output"] - 1
    fig, axes = style.subplots(1, 3, width=2.9, height=4.0)
    _qk_panel(axes[0], a["X"], a["Q"], a["K"])
    _softmax_panel(axes[1], a["Q"], a["K"], a["scores"], a["weights"], j)
    _routing_panel(axes[2], a["X"], a["V"], a["Sa"], a["A"], j)
    style.panel_labels(axes)
    return fig


@attention_weights.checks
def _(r):
    m = r.metrics
    return [Check.equal("one query and one key of size D per token", [m["query_shape"], m["key_shape"]],
                        [[m["d"], m["n"]], [m["d"], m["n"]]]),
            Check.close("the softmax of the scaled dot products equals the library's weights column",
                        m["softmax_vs_library_weights"], 0.0, 1e-12),
            Check.greater("every weight is positive", m["min_weight"], 0.0),
            Check.close("the weights sum to one", m["weight_sum_error"], 0.0, 1e-12),
            Check.equal("the softmax keeps the order of the dot products", m["weight_ranks"], m["score_ranks"]),
            Check.close("routing the values with these weights gives the library's output",
                        m["routed_output_vs_library"], 0.0, 1e-12),
            Check.close("on random sizes: column softmax of KᵀQ/√D equals the library's weights",
                        m["random_softmax_vs_library"], 0.0, 1e-12)]


# --------------------------------------------------------------------------- 12.4
@figure("12.4", title="Self-attention in matrix form",
        caption="With the N inputs stored as the columns of the D×N matrix X, the values, queries and keys are "
                "three matrix products, V = β_v1ᵀ + Ω_vX, Q = β_q1ᵀ + Ω_qX and K = β_k1ᵀ + Ω_kX, each D×N. One more "
                "product gives every dot product at once, KᵀQ (N×N, scaled by 1/√D); a softmax down each column "
                "turns it into the attention matrix, whose columns add to one; and the output Sa[X] = V·Softmax[KᵀQ] "
                "is D×N, the size of the input. Same inputs and weights as 12.1; the matrix form equals the "
                "per-token computation.",
        params={"tiny": dict(n=3, d=4, n_random=4), "full": dict(n=3, d=4, n_random=40)},
        limits=_EXAMPLE_LIMITS)
def matrix_form(p, run):
    e = _book_example(p.n, p.d, run.generator(0))  # the example of fig. 12.1
    V, Q, K = _qkv(e)  # (D, N) each, UDL eq. 12.9
    scores = K.T @ Q / math.sqrt(Q.shape[0])  # (N keys, N queries)
    A = torch.softmax(scores, dim=0)  # down each column
    Sa = V @ A  # (D, N), UDL eq. 12.10
    per_column = torch.stack([torch.softmax(scores[:, i], dim=0) for i in range(p.n)], dim=1)
    loop_out, loop_A = per_token_self_attention(*_args(e))
    lib_out, lib_A = book_self_attention(*_args(e))
    g = run.generator(1)
    worst = 0.0
    for t in range(p.n_random):
        e_t = _book_example(2 + t % 6, 1 + t % 7, g)
        V_t, Q_t, K_t = _qkv(e_t)
        Sa_t = V_t @ torch.softmax(K_t.T @ Q_t / math.sqrt(Q_t.shape[0]), dim=0)
        worst = max(worst, max_difference(Sa_t, per_token_self_attention(*_args(e_t))[0]))
    return Result(
        metrics={"n": p.n, "d": p.d,
                 "shapes": {"X": list(e["X"].shape), "V": list(V.shape), "Q": list(Q.shape), "K": list(K.shape),
                            "KtQ": list(scores.shape), "A": list(A.shape), "Sa": list(Sa.shape)},
                 "max_column_sum_error": (A.sum(dim=0) - 1).abs().max().item(),
                 "max_row_sum_error": (A.sum(dim=1) - 1).abs().max().item(),
                 "matrix_vs_loop_outputs": max_difference(Sa, loop_out),
                 "matrix_vs_loop_weights": max_difference(A, loop_A),
                 "columnwise_vs_matrix_softmax": max_difference(per_column, A),
                 "matrix_vs_library": max(max_difference(Sa, lib_out), max_difference(A, lib_A)),
                 "random_matrix_vs_loop": worst},
        arrays={"X": e["X"].numpy(), "V": V.numpy(), "Q": Q.numpy(), "K": K.numpy(), "scores": scores.numpy(),
                "A": A.numpy(), "Sa": Sa.numpy()},
        notes="Random (seeded) inputs and weights; the dot products are scaled by 1/√D (§12.3.2), as udl's attention "
              "does.")


@matrix_form.plot
def _(r):
    a = r.arrays
    d, n = a["X"].shape
    fig, ax = style.subplots(width=9.0, height=4.4)
    vmax = max(np.abs(a[k]).max() for k in ("X", "V", "Q", "K", "Sa"))
    dim = f"{d}×{n}"
    col = [0.0, n + 3.0, 2 * n + 7.5, 3 * n + 11.0, 4 * n + 14.0]  # centres of the five columns of matrices
    y_q, y_k, y_v = d + 2.5, 0.0, -(d + 2.5)
    _boxed(ax, a["X"], col[0], 0, "X", below=dim, color=style.DATA, vmax=vmax)
    for y, key, colour, words in ((y_q, "Q", style.EXTRA[0], "$\\Omega_q, \\beta_q$"),
                                  (y_k, "K", style.EXTRA[1], "$\\Omega_k, \\beta_k$"),
                                  (y_v, "V", "0.55", "$\\Omega_v, \\beta_v$")):
        _boxed(ax, a[key], col[1], y, key, below=dim, color=colour, vmax=vmax)
        drawing.arrow(ax, (col[0] + n / 2 + 0.2, 0), (col[1] - n / 2 - 0.2, y), color=colour, text=words, fontsize=6.5)
    _boxed(ax, a["scores"], col[2], (y_q + y_k) / 2, "$K^TQ/\\sqrt{D}$", below=f"{n}×{n}", faces="white",
           fmt="{:.2f}")
    for y in (y_q, y_k):
        drawing.arrow(ax, (col[1] + n / 2 + 0.2, y), (col[2] - n / 2 - 0.2, (y_q + y_k) / 2), color="0.4")
    _boxed(ax, a["A"], col[3], (y_q + y_k) / 2, "Softmax (columns)", below=f"{n}×{n}, columns sum to 1",
           color=style.MODEL, vmax=1.0, fmt="{:.2f}")
    drawing.arrow(ax, (col[2] + n / 2 + 0.2, (y_q + y_k) / 2), (col[3] - n / 2 - 0.2, (y_q + y_k) / 2), color="0.4")
    _boxed(ax, a["Sa"], col[4], y_v / 2, "Sa[X] = V·Softmax", below=dim, color=style.MODEL, vmax=vmax)
    drawing.arrow(ax, (col[3], (y_q + y_k) / 2 - n / 2 - 0.6), (col[4] - n / 2 - 0.2, y_v / 2 + 0.5), color="0.4")
    drawing.arrow(ax, (col[1] + n / 2 + 0.2, y_v), (col[4] - n / 2 - 0.2, y_v / 2 - 0.5), color="0.4")
    drawing.frame(ax, (col[0] - n / 2 - 0.5, col[4] + n / 2 + 0.8), (y_v - d / 2 - 1.4, y_q + d / 2 + 1.3))
    return fig


@matrix_form.checks
def _(r):
    m = r.metrics
    s, dn, nn_ = m["shapes"], [m["d"], m["n"]], [m["n"], m["n"]]
    return [Check.equal("X, Q, K and V are D×N", [s["X"], s["Q"], s["K"], s["V"]], [dn] * 4),
            Check.equal("KᵀQ and the attention matrix are N×N", [s["KtQ"], s["A"]], [nn_, nn_]),
            Check.equal("the output Sa[X] has the input's size D×N", s["Sa"], dn),
            Check.close("each column of the attention matrix sums to one", m["max_column_sum_error"], 0.0, 1e-12),
            Check.greater("the softmax runs down columns, not rows: row sums differ from one",
                          m["max_row_sum_error"], 1e-3),
            Check.close("a softmax on each column alone gives the same matrix", m["columnwise_vs_matrix_softmax"],
                        0.0, 1e-12),
            Check.close("the matrix form equals the per-token outputs (eq. 12.3)", m["matrix_vs_loop_outputs"], 0.0,
                        1e-12),
            Check.close("and the per-token weights", m["matrix_vs_loop_weights"], 0.0, 1e-12),
            Check.close("it equals udl's book_self_attention", m["matrix_vs_library"], 0.0, 1e-12),
            Check.close("on random sizes: matrix form equals the loop", m["random_matrix_vs_loop"], 0.0, 1e-12)]


# --------------------------------------------------------------------------- 12.6
def _randomize(module: nn.Module, g: torch.Generator) -> nn.Module:
    """Seeded parameters of unit-order effect: weights N(0, 1/fan_in), biases and LayerNorm shifts N(0, 0.2²),
    LayerNorm gains 1 + N(0, 0.2²) (so that no parameter is a trivial 0 or 1 in the comparisons)."""
    with torch.no_grad():
        for name, prm in module.named_parameters():
            z = torch.randn(prm.shape, generator=g, dtype=prm.dtype)
            if prm.dim() == 2:
                prm.copy_(z / math.sqrt(prm.shape[1]))
            elif "norm" in name and name.endswith("weight"):
                prm.copy_(1 + 0.2 * z)
            else:
                prm.copy_(0.2 * z)
    return module


def _mask_cases(b: int, n: int, g: torch.Generator) -> dict[str, tuple[dict, dict, torch.Tensor]]:
    """For each kind of mask: udl's keywords, torch's keywords and the (B, 1, N, N) 'may attend' pattern.

    udl's boolean masks say where a query may attend; torch's say where it may not.
    """
    allowed = torch.rand(n, n, generator=g) < 0.6
    allowed |= torch.eye(n, dtype=torch.bool)  # every query sees at least itself
    keep = torch.rand(b, n, generator=g) < 0.6
    keep[:, 0] = True  # every sequence keeps at least one key
    causal = causal_mask(n)
    full = torch.ones(n, n, dtype=torch.bool)
    return {"none": ({}, {}, full.expand(b, 1, n, n)),
            "causal": ({"causal": True}, {"attn_mask": ~causal}, causal.expand(b, 1, n, n)),
            "random": ({"mask": allowed[None, None]}, {"attn_mask": ~allowed}, allowed.expand(b, 1, n, n)),
            "padding": ({"key_padding_mask": keep}, {"key_padding_mask": ~keep},
                        keep[:, None, None, :].expand(b, 1, n, n))}


def _compare_mha(mha: MultiHeadAttention, x: torch.Tensor, g: torch.Generator, need_weights: bool) -> dict[str, float]:
    """Largest differences from torch's MultiheadAttention (values, weights, gradients) over the mask kinds.

    ``need_weights``: run udl's written-out path (and compare every head's weights too) or SDPA.
    """
    ref = mha.to_torch()
    worst = {"values": 0.0, "weights": 0.0, "grad_input": 0.0, "grad_params": 0.0, "row_sum": 0.0,
             "masked_weight": 0.0}
    for ours_kw, torch_kw, allowed in _mask_cases(x.shape[0], x.shape[1], g).values():
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        mha.zero_grad(set_to_none=True)
        ref.zero_grad(set_to_none=True)
        out, w = mha(xa, **ours_kw, need_weights=True) if need_weights else (mha(xa, **ours_kw), None)
        out_ref, w_ref = ref(xb, xb, xb, need_weights=True, average_attn_weights=False, **torch_kw)
        r = torch.randn(out.shape, generator=g, dtype=out.dtype)
        (out * r).sum().backward()
        (out_ref * r).sum().backward()
        grads = [(mha.q_proj.weight.grad, mha.k_proj.weight.grad, mha.v_proj.weight.grad),
                 (mha.q_proj.bias.grad, mha.k_proj.bias.grad, mha.v_proj.bias.grad)]
        gp = max(max_difference(torch.cat(grads[0]), ref.in_proj_weight.grad),
                 max_difference(torch.cat(grads[1]), ref.in_proj_bias.grad),
                 max_difference(mha.out_proj.weight.grad, ref.out_proj.weight.grad),
                 max_difference(mha.out_proj.bias.grad, ref.out_proj.bias.grad))
        worst["values"] = max(worst["values"], max_difference(out, out_ref))
        worst["grad_input"] = max(worst["grad_input"], max_difference(xa.grad, xb.grad))
        worst["grad_params"] = max(worst["grad_params"], gp)
        if need_weights:  # every head's weights (B, H, N, N)
            w = w.detach()
            worst["weights"] = max(worst["weights"], max_difference(w, w_ref))
            worst["row_sum"] = max(worst["row_sum"], (w.sum(-1) - 1).abs().max().item())
            worst["masked_weight"] = max(worst["masked_weight"], w.masked_select(~allowed).abs().max().item()
                                         if (~allowed).any() else 0.0)
    return worst


@figure("12.6", title="Multi-head self-attention",
        caption="Two heads (cyan, orange) attend in parallel to the same inputs X, each with its own queries, keys and "
                "values of size D/H and its own N×N attention matrix. Their D/H×N outputs are stacked into a D×N "
                "matrix and mixed by one more linear map, β_c + Ω_c·. udl's MultiHeadAttention equals this "
                "head-by-head computation and torch.nn.MultiheadAttention loaded with the same weights, in values, "
                "attention weights and gradients, with and without masks.",
        params={"tiny": dict(d_model=6, n_heads=2, n_tokens=4, batch=2, n_random=2),
                "full": dict(d_model=6, n_heads=2, n_tokens=4, batch=2, n_random=12)},
        limits={"d_model": (1, 64), "n_heads": (1, 16), "n_tokens": (2, 32), "batch": (1, 8), "n_random": (1, 200)})
def multi_head(p, run):
    g = run.generator(0)
    mha = _randomize(MultiHeadAttention(p.d_model, p.n_heads).to(DT), g)
    x = torch.randn(p.batch, p.n_tokens, p.d_model, generator=g, dtype=DT)  # (B, N, D)
    with torch.no_grad():
        out, w = mha(x, need_weights=True)  # (B, N, D), (B, H, N, N) with rows the queries
        # eq. 12.11 head by head, book X = our x[0].T
        by_hand, head_outs, head_weights = book_multi_head_attention(x[0].T, **mha.book_parameters(),
                                                                     n_heads=p.n_heads)
        concat = head_outs.reshape(p.d_model, -1)  # (D, N): the heads' outputs stacked
        out_fast = mha(x)
    written = _compare_mha(mha, x, run.generator(1), need_weights=True)
    sdpa = _compare_mha(mha, x, run.generator(1), need_weights=False)
    rand = {k: 0.0 for k in ("values", "weights", "grad_input", "grad_params", "row_sum")}
    gr = run.generator(2)
    for t in range(p.n_random):
        h, dh = 1 + t % 4, 1 + (t // 2) % 4
        b, n = 1 + t % 3, 1 + t % 7
        for need_weights in (True, False):
            module = _randomize(MultiHeadAttention(h * dh, h).to(DT), gr)
            diffs = _compare_mha(module, torch.randn(b, n, h * dh, generator=gr, dtype=DT), gr, need_weights)
            rand = {k: max(v, diffs[k]) for k, v in rand.items()}
    return Result(
        metrics={"d_model": p.d_model, "n_heads": p.n_heads, "n_tokens": p.n_tokens,
                 "head_size": mha.d_head, "concat_shape": list(concat.shape),
                 "head_output_shapes": [list(s.shape) for s in head_outs],
                 "by_hand_vs_module": max_difference(by_hand, out[0].T),
                 "by_hand_weights_vs_module": max(max_difference(a, w[0, h].T) for h, a in enumerate(head_weights)),
                 "sdpa_vs_written": max_difference(out_fast, out),
                 "written_vs_torch": written, "sdpa_vs_torch": sdpa, "random_sizes_vs_torch": rand,
                 "heads_differ": min((w[0, i] - w[0, j]).abs().max().item() for i in range(p.n_heads)
                                     for j in range(i + 1, p.n_heads)) if p.n_heads > 1 else 1.0},
        arrays={"X": x[0].T.numpy(), "concat": concat.numpy(), "out": by_hand.numpy(),
                "omega_c": mha.out_proj.weight.detach().numpy(),
                **{f"A{h}": a.numpy() for h, a in enumerate(head_weights)},
                **{f"Sa{h}": s.numpy() for h, s in enumerate(head_outs)}},
        notes="Random (seeded) weights and inputs rather than trained ones; the picture shows the first sequence of "
              "the batch. Masks compared: none, causal, a random pattern and key padding.")


def _heads_divide(fig_id: str, p) -> None:
    """The check of MultiHeadAttention's constructor, before computing: each head gets D/H dimensions."""
    if p.d_model % p.n_heads:
        raise ValueError(f"The 'n_heads' parameter of figure {fig_id} must be a divisor of d_model ({p.d_model}). "
                         f"Got {p.n_heads} instead.")


@multi_head.requires
def _(p):
    _heads_divide("12.6", p)


@multi_head.plot
def _(r):
    a, m = r.arrays, r.metrics
    d, n = a["X"].shape
    heads, dh = m["n_heads"], m["head_size"]
    colours = [style.MODEL, style.DATA, *style.EXTRA]
    vmax = max(np.abs(a["X"]).max(), np.abs(a["concat"]).max(), np.abs(a["out"]).max())
    fig, ax = style.subplots(width=9.4, height=max(3.6, 1.9 * heads))
    head_h = n + 2.5  # vertical space of one head's box
    total = heads * head_h
    centres = [total / 2 - head_h * (h + 0.5) for h in range(heads)]
    x_x, x_a, x_s, x_c, x_w, x_o = 0.0, n + 4.0, 2 * n + 6.5, 3 * n + 10.0, 4 * n + 13.0, 4 * n + d + 16.0
    _boxed(ax, a["X"], x_x, 0, "X", below=f"D×N = {d}×{n}", fmt=None, vmax=vmax, edges=style.DATA, lw=1.0)
    for h, yc in enumerate(centres):
        c = colours[h % len(colours)]
        x0, y0, x1, y1 = x_a - n / 2 - 1.8, yc - head_h / 2 + 0.6, x_s + n / 2 + 0.4, yc + head_h / 2 - 0.2
        drawing.box(ax, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, face=drawing.light(c, 0.12), edge=c, lw=1.4,
                    boxstyle="round,pad=0.2", zorder=0)
        ax.text(x0 + 0.35, (y0 + y1) / 2, f"head {h + 1}", color=c, fontsize=8, ha="center", va="center",
                rotation=90, fontweight="bold")
        _boxed(ax, a[f"A{h}"], x_a, yc - 0.3, f"Softmax[$K_{h + 1}^TQ_{h + 1}$]", color=c, vmax=1.0, fmt="{:.2f}",
               fontsize=5.5)
        _boxed(ax, a[f"Sa{h}"], x_s, yc - 0.3, f"$Sa_{h + 1}[X]$", below=f"{dh}×{n}", fmt=None, vmax=vmax)
        drawing.arrow(ax, (x_x + n / 2 + 0.2, 0), (x_a - n / 2 - 1.9, yc), color=c)
        drawing.arrow(ax, (x_a + n / 2 + 0.2, yc - 0.3), (x_s - n / 2 - 0.2, yc - 0.3), color="0.4")
        drawing.arrow(ax, (x_s + n / 2 + 0.5, yc), (x_c - n / 2 - 0.2, (d / 2 - dh * (h + 0.5)) * 0.9), color=c)
    _boxed(ax, a["concat"], x_c, 0, "concatenate", below=f"{d}×{n}", fmt=None, vmax=vmax)
    for h in range(heads):  # each head's rows of the stacked matrix
        ax.add_patch(Rectangle((x_c - n / 2, d / 2 - dh * (h + 1)), n, dh, fill=False,
                               ec=colours[h % len(colours)], lw=2.0, zorder=4))
    _boxed(ax, a["omega_c"], x_w, 0, "$\\Omega_c$", below=f"{d}×{d}", fmt=None)
    ax.text((x_c + n / 2 + x_w - d / 2) / 2, 0, "·", fontsize=16, ha="center", va="center")
    ax.text((x_w + d / 2 + x_o - n / 2) / 2, 0, "$+\\beta_c$\n→", fontsize=9, ha="center", va="center")
    _boxed(ax, a["out"], x_o, 0, "MhSa[X]", below=f"{d}×{n}", vmax=vmax, fmt=None, edges=style.MODEL, lw=1.0)
    drawing.frame(ax, (x_x - n / 2 - 0.5, x_o + n / 2 + 0.5), (-total / 2 - 0.3, total / 2 + 0.6))
    return fig


@multi_head.checks
def _(r):
    m = r.metrics
    d, h, n = m["d_model"], m["n_heads"], m["n_tokens"]
    checks = [Check.equal("each head outputs D/H × N", m["head_output_shapes"], [[d // h, n]] * h),
              Check.equal("stacking the heads gives D × N", m["concat_shape"], [d, n]),
              Check.close("Ω_c[Sa_1; ...; Sa_H] + β_c, head by head (eq. 12.11), equals the module",
                          m["by_hand_vs_module"], 0.0, 1e-12),
              Check.close("each head's weights equal book_self_attention on its slice of the weights",
                          m["by_hand_weights_vs_module"], 0.0, 1e-12),
              Check.greater("the heads attend differently", m["heads_differ"], 1e-3) if h > 1 else
              Check.untested("the heads attend differently", "needs n_heads >= 2"),
              Check.close("the SDPA path equals the written-out one", m["sdpa_vs_written"], 0.0, 1e-12)]
    for key, words in (("written_vs_torch", "written-out"), ("sdpa_vs_torch", "SDPA"),
                       ("random_sizes_vs_torch", "random sizes, both paths")):
        c = m[key]
        checks += [Check.close(f"{words}: values equal torch.nn.MultiheadAttention (all masks)", c["values"], 0.0,
                               1e-12),
                   Check.close(f"{words}: input gradients equal torch's", c["grad_input"], 0.0, 1e-12),
                   Check.close(f"{words}: parameter gradients equal torch's", c["grad_params"], 0.0, 1e-12)]
        if key != "sdpa_vs_torch":
            checks += [Check.close(f"{words}: every head's weights equal torch's", c["weights"], 0.0, 1e-12),
                       Check.close(f"{words}: each head's weight rows sum to one", c["row_sum"], 0.0, 1e-12)]
    checks.append(Check.close("masked positions get zero weight", m["written_vs_torch"]["masked_weight"], 0.0, 0.0))
    return checks


# --------------------------------------------------------------------------- 12.7
def _param_pairs(layer: TransformerLayer, ref: nn.TransformerEncoderLayer):
    """(udl gradient, torch gradient) for every parameter, q/k/v stacked as torch stores them."""
    a = layer.self_attn
    pairs = [(torch.cat([a.q_proj.weight.grad, a.k_proj.weight.grad, a.v_proj.weight.grad]),
              ref.self_attn.in_proj_weight.grad),
             (torch.cat([a.q_proj.bias.grad, a.k_proj.bias.grad, a.v_proj.bias.grad]), ref.self_attn.in_proj_bias.grad),
             (a.out_proj.weight.grad, ref.self_attn.out_proj.weight.grad),
             (a.out_proj.bias.grad, ref.self_attn.out_proj.bias.grad)]
    for name in ("linear1", "linear2", "norm1", "norm2"):
        ours, theirs = getattr(layer, name), getattr(ref, name)
        pairs += [(ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)]
    return pairs


def _compare_layer(layer: TransformerLayer, x: torch.Tensor, g: torch.Generator) -> dict[str, float]:
    """Largest differences from torch's TransformerEncoderLayer: values (train and eval), gradients; with and
    without a causal mask."""
    ref = layer.to_torch()
    n = x.shape[1]
    worst = {"values": 0.0, "values_eval": 0.0, "grad_input": 0.0, "grad_params": 0.0}
    for ours_kw, torch_kw in (({}, {}), ({"causal": True}, {"src_mask": ~causal_mask(n), "is_causal": True})):
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        layer.zero_grad(set_to_none=True)
        ref.zero_grad(set_to_none=True)
        out, out_ref = layer(xa, **ours_kw), ref(xb, **torch_kw)
        r = torch.randn(out.shape, generator=g, dtype=out.dtype)
        (out * r).sum().backward()
        (out_ref * r).sum().backward()
        worst["values"] = max(worst["values"], max_difference(out, out_ref))
        worst["grad_input"] = max(worst["grad_input"], max_difference(xa.grad, xb.grad))
        worst["grad_params"] = max([worst["grad_params"]] + [max_difference(p, q) for p, q in _param_pairs(layer, ref)])
        layer.eval(), ref.eval()
        with torch.no_grad():  # inference: torch may take its fused fast path here
            worst["values_eval"] = max(worst["values_eval"], max_difference(layer(x, **ours_kw), ref(x, **torch_kw)))
        layer.train(), ref.train()
    return worst


def _layer_norm(z: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """LayerNorm from its definition: standardise each token over its D entries, then scale γ and shift β."""
    mu = z.mean(dim=-1, keepdim=True)
    var = ((z - mu) ** 2).mean(dim=-1, keepdim=True)  # biased variance, as LayerNorm uses
    return (z - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _layer_by_hand(layer: TransformerLayer, x: torch.Tensor) -> torch.Tensor:
    """The layer's composition written out (post-LN: fig. 12.7; pre-LN when ``layer.norm_first``)."""
    def mlp(h):  # the same two-layer ReLU network on every token: (B, N, D) -> (B, N, D)
        return F.relu(h @ layer.linear1.weight.T + layer.linear1.bias) @ layer.linear2.weight.T + layer.linear2.bias

    if layer.norm_first:
        h = x + layer.self_attn(_layer_norm(x, layer.norm1))
        return h + mlp(_layer_norm(h, layer.norm2))
    h = _layer_norm(x + layer.self_attn(x), layer.norm1)
    return _layer_norm(h + mlp(h), layer.norm2)


def _trace(layer: TransformerLayer, x: torch.Tensor) -> tuple[list[str], list[list[str]]]:
    """The order of the layer's stages and the source of each residual connection, read off a forward pass.

    Forward hooks record the sub-modules in the order they run; a "+" follows the end of each branch
    (attention, second linear). The tensor that "+" adds to the branch output is found by matching it
    against the layer input and everything computed before.
    """
    calls = []
    names = ("self_attn", "norm1", "linear1", "linear2", "norm2")
    hooks = [getattr(layer, nm).register_forward_hook(lambda mod, inp, out, nm=nm: calls.append((nm, inp[0], out)))
             for nm in names]
    try:
        with torch.no_grad():
            final = layer(x)
    finally:
        for h in hooks:
            h.remove()
    stages, skips, seen = ["input"], [], [("input", x)]
    for i, (name, _, out) in enumerate(calls):
        if name == "linear2":
            stages[-1] = "mlp"  # linear1 -> ReLU -> linear2: one per-token network
        else:
            stages.append("mlp" if name == "linear1" else name)
        seen.append((stages[-1], out))
        if name in ("self_attn", "linear2"):  # a branch ends: the residual sum feeds the next stage
            after = calls[i + 1][1] if i + 1 < len(calls) else final
            skip = after - out
            source = next((nm for nm, t in seen[:-1] if t.shape == skip.shape and max_difference(t, skip) < 1e-12), "?")
            stages.append(f"add{len(skips) + 1}")
            skips.append([source, stages[-1]])
            seen.append((stages[-1], after))
    return stages, skips


@figure("12.7", title="The transformer layer",
        caption="a) A transformer layer maps the D×N matrix of token embeddings to a matrix of the same size. "
                "Multi-head self-attention lets the tokens exchange information; its output is added back to the "
                "input (a residual connection) and LayerNorm follows. Then the same small fully connected network "
                "processes each token on its own, again inside a residual connection, and a second LayerNorm ends "
                "the layer. The stages and the skips are traced from a forward pass of udl's TransformerLayer; its "
                "output equals this composition written out and torch.nn.TransformerEncoderLayer with the same "
                "weights. b) The pre-LN variant (norm_first=True) normalises the input of each branch instead.",
        params={"tiny": dict(d_model=8, n_heads=2, d_mlp=16, n_tokens=5, batch=2, n_random=2),
                "full": dict(d_model=8, n_heads=2, d_mlp=16, n_tokens=5, batch=2, n_random=8)},
        limits={"d_model": (1, 64), "n_heads": (1, 16), "d_mlp": (1, 256), "n_tokens": (1, 32), "batch": (1, 8),
                "n_random": (1, 100)})
def transformer_layer(p, run):
    g = run.generator(0)
    post = _randomize(TransformerLayer(p.d_model, p.n_heads, p.d_mlp).to(DT), g)
    pre = TransformerLayer(p.d_model, p.n_heads, p.d_mlp, norm_first=True).to(DT)
    pre.load_state_dict(post.state_dict())
    x = torch.randn(p.batch, p.n_tokens, p.d_model, generator=g, dtype=DT)  # (B, N, D)
    with torch.no_grad():
        out, out_pre = post(x), pre(x)
        h = torch.randn(p.batch, p.n_tokens, p.d_model, generator=g, dtype=DT)
        per_token = torch.stack([post.mlp(h[:, i]) for i in range(p.n_tokens)], dim=1)  # one token at a time
        per_token_diff = max_difference(post.mlp(h), per_token)
        by_hand, by_hand_pre = _layer_by_hand(post, x), _layer_by_hand(pre, x)
    stages, skips = _trace(post, x)
    stages_pre, skips_pre = _trace(pre, x)
    gc = run.generator(1)
    vs_post, vs_pre = _compare_layer(post, x, gc), _compare_layer(pre, x, gc)
    rand = {"values": 0.0, "values_eval": 0.0, "grad_input": 0.0, "grad_params": 0.0}
    gr = run.generator(2)
    for t in range(p.n_random):
        heads, dh, d_mlp = 1 + t % 3, 1 + (t // 2) % 4, 2 + 3 * t
        b, n = 1 + t % 2, 1 + t % 6
        for norm_first in (False, True):
            layer = _randomize(TransformerLayer(heads * dh, heads, d_mlp, norm_first=norm_first).to(DT), gr)
            diffs = _compare_layer(layer, torch.randn(b, n, heads * dh, generator=gr, dtype=DT), gr)
            rand = {k: max(v, diffs[k]) for k, v in rand.items()}
    counts = {name: sum(q.numel() for q in getattr(post, name).parameters())
              for name in ("self_attn", "norm1", "linear1", "linear2", "norm2")}
    counts["mlp"] = counts.pop("linear1") + counts.pop("linear2")
    d, dm = p.d_model, p.d_mlp
    return Result(
        metrics={"d_model": d, "n_heads": p.n_heads, "d_mlp": dm, "n_tokens": p.n_tokens, "batch": p.batch,
                 "input_shape": list(x.shape), "output_shape": list(out.shape), "pre_ln_output_shape": list(
                     out_pre.shape),
                 "stages": stages, "skips": skips, "pre_ln_stages": stages_pre, "pre_ln_skips": skips_pre,
                 "parameter_counts": counts, "parameters": sum(counts.values()),
                 "parameters_formula": 4 * d * (d + 1) + 2 * d + (d * dm + dm + dm * d + d) + 2 * d,
                 "torch_parameters": sum(q.numel() for q in post.to_torch().parameters()),
                 "by_hand_vs_module": max_difference(by_hand, out),
                 "pre_ln_by_hand_vs_module": max_difference(by_hand_pre, out_pre),
                 "mlp_per_token_diff": per_token_diff, "post_vs_pre_ln": max_difference(out, out_pre),
                 "post_ln_vs_torch": vs_post, "pre_ln_vs_torch": vs_pre, "random_sizes_vs_torch": rand},
        arrays={"X": x[0].T.numpy(), "out": out[0].T.numpy(), "out_pre": out_pre[0].T.numpy()},
        notes="Random (seeded) weights instead of trained ones, and random LayerNorm gains and shifts so that the "
              "comparison covers them. Attention and MLP dropout are 0; the torch layers have dropout 0 too.")


@transformer_layer.requires
def _(p):
    _heads_divide("12.7", p)


_STAGE_WORDS = {"self_attn": ("multi-head\nself-attention", style.MODEL), "norm1": ("LayerNorm", style.REGION),
                "norm2": ("LayerNorm", style.REGION), "mlp": ("MLP on each\ntoken", style.EXTRA[0])}


def _layer_diagram(ax, X, out, stages, skips, counts, *, d_mlp):
    """Boxes in the traced order, "+" for each residual sum, arcs for the skips; input and output as heatmaps."""
    d, n = X.shape
    vmax = max(np.abs(X).max(), np.abs(out).max())
    x = 0.0
    where = {}
    _boxed(ax, X, x, 0, "X", below=f"{d}×{n}", fmt=None, vmax=vmax, edges=style.DATA, lw=0.8, cell=0.5)
    where["input"] = x + n * 0.25 + 0.1
    x += n * 0.25 + 1.4
    for stage in stages[1:]:
        if stage.startswith("add"):
            drawing.node(ax, (x, 0), "+", r=0.35, fontsize=10)
            drawing.arrow(ax, (x - 1.05, 0), (x - 0.37, 0), color="0.3")
            where[stage] = x + 0.35
            x += 1.4
            continue
        words, colour = _STAGE_WORDS[stage]
        width = 2.6 if stage != "norm1" and stage != "norm2" else 2.0
        if stage == "mlp":
            words += f"\n{d}→{d_mlp}→{d}, ReLU"
        drawing.box(ax, x + width / 2, 0.0, width, 2.0, face=drawing.light(colour, 0.25), edge=colour, lw=1.2,
                    boxstyle="round,pad=0.1", zorder=2)
        ax.text(x + width / 2, 0.15, words, ha="center", va="center", fontsize=6.5, zorder=3)
        ax.text(x + width / 2, -0.75, f"{counts[stage]} params", ha="center", va="center", fontsize=5.5, color="0.3",
                zorder=3)
        drawing.arrow(ax, (x - 1.05 if x > 0 else x, 0), (x - 0.12, 0), color="0.3")
        where[stage] = x + width + 0.1
        x += width + 1.2
    for source, target in skips:  # residual arcs above the boxes
        x0, x1 = where[source] - 0.05, where[target] - 0.35
        ax.plot([x0 + 0.35, x0 + 0.35, x1, x1], [0.0, 1.7, 1.7, 0.37], color=style.TRUTH, lw=1.0, zorder=1)
    drawing.arrow(ax, (x - 1.05, 0), (x - 0.1, 0), color="0.3")
    _boxed(ax, out, x + n * 0.25, 0, "output", below=f"{d}×{n}", fmt=None, vmax=vmax, edges=style.MODEL, lw=0.8,
           cell=0.5)
    drawing.frame(ax, (-n * 0.25 - 0.3, x + n * 0.5 + 0.3), (-d * 0.25 - 0.8, max(2.3, d * 0.25 + 0.9)))


@transformer_layer.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(2, 1, width=8.0, height=1.9)
    _layer_diagram(axes[0], a["X"], a["out"], m["stages"], m["skips"], m["parameter_counts"], d_mlp=m["d_mlp"])
    _layer_diagram(axes[1], a["X"], a["out_pre"], m["pre_ln_stages"], m["pre_ln_skips"], m["parameter_counts"],
                   d_mlp=m["d_mlp"])
    axes[0].set_title("post-LN (the book's layer)", fontsize=9)
    axes[1].set_title("pre-LN (norm_first=True)", fontsize=9)
    style.panel_labels(axes)
    return fig


@transformer_layer.checks
def _(r):
    m = r.metrics
    checks = [Check.equal("the output has the input's shape (B, N, D)", m["output_shape"], m["input_shape"]),
              Check.equal("pre-LN too", m["pre_ln_output_shape"], m["input_shape"]),
              Check.equal("traced order: attention, +, LayerNorm, MLP, +, LayerNorm", m["stages"],
                          ["input", "self_attn", "add1", "norm1", "mlp", "add2", "norm2"]),
              Check.equal("the skips add the layer input, then the first LayerNorm's output", m["skips"],
                          [["input", "add1"], ["norm1", "add2"]]),
              Check.equal("pre-LN order: LayerNorm, attention, +, LayerNorm, MLP, +", m["pre_ln_stages"],
                          ["input", "norm1", "self_attn", "add1", "norm2", "mlp", "add2"]),
              Check.equal("pre-LN skips go around the norms", m["pre_ln_skips"], [["input", "add1"], ["add1", "add2"]]),
              Check.close("the layer equals norm2(h + linear2(relu(linear1(h)))), h = norm1(x + MhSa(x))",
                          m["by_hand_vs_module"], 0.0, 1e-12),
              Check.close("pre-LN equals h + mlp(norm2(h)), h = x + MhSa(norm1(x))", m["pre_ln_by_hand_vs_module"],
                          0.0, 1e-12),
              Check.close("the MLP acts on each token separately", m["mlp_per_token_diff"], 0.0, 1e-12),
              Check.greater("post- and pre-LN are different functions", m["post_vs_pre_ln"], 1e-3),
              Check.equal("parameters: 4D(D+1) + 2D + (2·D·D_mlp + D_mlp + D) + 2D", m["parameters"],
                          m["parameters_formula"]),
              Check.equal("as many parameters as torch's TransformerEncoderLayer", m["parameters"],
                          m["torch_parameters"])]
    for key, words in (("post_ln_vs_torch", "post-LN"), ("pre_ln_vs_torch", "pre-LN (norm_first=True)"),
                       ("random_sizes_vs_torch", "random sizes, both orders")):
        c = m[key]
        checks += [Check.close(f"{words}: equals torch.nn.TransformerEncoderLayer (no mask and causal)",
                               c["values"], 0.0, 1e-12),
                   Check.close(f"{words}: also in eval mode under no_grad", c["values_eval"], 0.0, 1e-12),
                   Check.close(f"{words}: input gradients equal torch's", c["grad_input"], 0.0, 1e-12),
                   Check.close(f"{words}: parameter gradients equal torch's", c["grad_params"], 0.0, 1e-12)]
    return checks


# --------------------------------------------------------------------------- 12.9
@figure("12.9", title="Token embeddings",
        caption="Each word of a short sentence is an index into a small vocabulary; as one-hot vectors its N words "
                "form a |V|×N matrix T with a single 1 per column (orange). The vocabulary's embeddings are the "
                "columns of Ω_e (D×|V|), a learned parameter, and the D×N input X = Ω_e T simply copies the column "
                "of each word, so a word that occurs twice ('an' here) gets two identical columns. The product "
                "equals udl's TokenEmbedding lookup and torch.nn.Embedding with the same weights, exactly; a "
                "gradient reaches only the columns of words that occur.",
        params={"tiny": dict(sentence="an owl and an oak stood on a hill", extra_words="cat sat the", d=4),
                "full": dict(sentence="an owl and an oak stood on a hill", extra_words="cat sat the", d=4)},
        limits={"d": (1, 64)})
def embeddings(p, run):
    words = p.sentence.split()
    vocab = sorted(set(words) | set(p.extra_words.split()))
    index = {w: i for i, w in enumerate(vocab)}
    tokens = torch.tensor([index[w] for w in words])  # (N,)
    n, v = len(words), len(vocab)
    g = run.generator(0)
    emb = TokenEmbedding(v, p.d).to(DT)
    with torch.no_grad():
        emb.weight.copy_(torch.randn(v, p.d, generator=g, dtype=DT))  # (|V|, D): row t is the book's column t
    omega_e = emb.weight.detach().T  # (D, |V|)
    T = torch.zeros(v, n, dtype=DT)  # (|V|, N): one-hot columns
    T[tokens, torch.arange(n)] = 1.0
    X = omega_e @ T  # (D, N), fig. 12.9
    ref = nn.Embedding(v, p.d, dtype=DT)
    ref.load_state_dict(emb.state_dict())
    with torch.no_grad():
        lookup = emb(tokens[None])[0].T  # (D, N)
        one_hot = emb.one_hot_forward(tokens[None])[0].T
        torch_lookup = ref(tokens).T
    # the gradient of a loss on X reaches Ω_e only through the words that occur: dL/dΩ_e = (dL/dX) Tᵀ
    r = torch.randn(n, p.d, generator=g, dtype=DT)
    (emb(tokens) * r).sum().backward()
    (ref(tokens) * r).sum().backward()
    grad_rows = emb.weight.grad.abs().sum(dim=1) > 0
    repeated = [w for w in vocab if words.count(w) > 1]
    same = max((max_difference(X[:, i], X[:, j]) for i in range(n) for j in range(n) if i < j and words[i] == words[j]),
               default=0.0)
    different = min((max_difference(X[:, i], X[:, j]) for i in range(n) for j in range(n) if words[i] != words[j]),
                    default=float("inf"))
    return Result(
        metrics={"words": words, "vocabulary": vocab, "tokens": tokens.tolist(), "n": n, "vocab_size": v, "d": p.d,
                 "shapes": {"omega_e": list(omega_e.shape), "one_hot": list(T.shape), "X": list(X.shape)},
                 "ones_per_column": T.sum(dim=0).tolist(), "nonzeros_per_column": (T != 0).sum(dim=0).tolist(),
                 "product_vs_lookup": max_difference(X, lookup),
                 "product_vs_one_hot_forward": max_difference(X, one_hot),
                 "product_vs_torch_embedding": max_difference(X, torch_lookup),
                 "repeated_words": repeated, "repeated_columns_diff": same, "distinct_words_min_diff": different,
                 "gradient_vs_formula": max_difference(emb.weight.grad, (r.T @ T.T).T),
                 "gradient_vs_torch": max_difference(emb.weight.grad, ref.weight.grad),
                 "words_with_gradient": sorted(vocab[i] for i in torch.nonzero(grad_rows).flatten().tolist()),
                 "distinct_words": sorted(set(words)),
                 "parameters": emb.weight.numel()},
        arrays={"omega_e": omega_e.numpy(), "T": T.numpy(), "X": X.numpy()},
        notes="Ω_e is random (seeded), not learned; the vocabulary is the sentence's words plus a few others, "
              "not a sub-word vocabulary of ~30,000 tokens.")


_MAX_WORDS = 40  # words of the sentence, and extra words: one drawn column (and row of T) each


@embeddings.requires
def _(p):
    for key, least in (("sentence", 1), ("extra_words", 0)):
        n = len(getattr(p, key).split())
        if not least <= n <= _MAX_WORDS:
            raise ValueError(f"The {key!r} parameter of figure 12.9 must be {least} to {_MAX_WORDS} words. "
                             f"Got {getattr(p, key)!r} ({n}) instead.")


@embeddings.plot
def _(r):
    a, m = r.arrays, r.metrics
    words, vocab = m["words"], m["vocabulary"]
    d, v, n = m["d"], m["vocab_size"], m["n"]
    palette = list(matplotlib.colormaps["Pastel1"].colors) + list(matplotlib.colormaps["Pastel2"].colors)
    word_colour = {w: palette[i % len(palette)] for i, w in enumerate(vocab)}  # one colour per vocabulary entry
    fig, ax = style.subplots(width=11.0, height=4.3)
    x_w, x_t, x_x = 0.0, v + 2.5, v + n + 5.0  # left edges of Ω_e, T and X
    top = (v - 1) / 2
    y_e = (d - 1) / 2  # Ω_e and X are vertically centred on T
    for j, w in enumerate(vocab):  # Ω_e: one column per vocabulary entry
        _matrix(ax, a["omega_e"][:, j:j + 1], (x_w + j, y_e), faces=word_colour[w])
        ax.text(x_w + j, y_e + 0.7, w, rotation=90, ha="center", va="bottom", fontsize=7)
    for j, w in enumerate(words):
        col = a["T"][:, j:j + 1]
        for i in range(v):
            one = col[i, 0] == 1
            _matrix(ax, [[col[i, 0]]], (x_t + j, top - i), faces=drawing.light(style.DATA, 0.9) if one else "white",
                    fmt="{:.0f}" if one else None, edges="0.6", lw=0.4)
        ax.text(x_t + j, top + 0.7, w, rotation=90, ha="center", va="bottom", fontsize=7)
        _matrix(ax, a["X"][:, j:j + 1], (x_x + j, y_e), faces=word_colour[w])
        ax.text(x_x + j, y_e + 0.7, w, rotation=90, ha="center", va="bottom", fontsize=7)
    for i, w in enumerate(vocab):
        ax.text(x_t - 0.7, top - i, w, ha="right", va="center", fontsize=6.5, color="0.35")
    ax.text(x_w + (v - 1) / 2, y_e - d + 0.1, f"$\\Omega_e$  (D×|V| = {d}×{v})", ha="center", va="top", fontsize=8)
    ax.text(x_t + (n - 1) / 2, top - v + 0.1, f"one-hot T  (|V|×N = {v}×{n})", ha="center", va="top", fontsize=8)
    ax.text(x_x + (n - 1) / 2, y_e - d + 0.1, f"X = $\\Omega_e$T  (D×N = {d}×{n})", ha="center", va="top", fontsize=8)
    ax.text(x_t - 1.9, 0, "·", fontsize=28, ha="center", va="center")
    ax.text(x_x - 1.3, 0, "=", fontsize=14, ha="center", va="center")
    drawing.frame(ax, (x_w - 0.7, x_x + n - 0.3), (top - v - 0.8, top + 3.2))
    return fig


@embeddings.checks
def _(r):
    m = r.metrics
    s = m["shapes"]
    return [Check.equal("Ω_e is D×|V|, T is |V|×N and X is D×N", [s["omega_e"], s["one_hot"], s["X"]],
                        [[m["d"], m["vocab_size"]], [m["vocab_size"], m["n"]], [m["d"], m["n"]]]),
            Check.equal("each column of T holds a single 1", [m["ones_per_column"], m["nonzeros_per_column"]],
                        [[1.0] * m["n"], [1] * m["n"]]),
            Check.close("Ω_e T equals TokenEmbedding's lookup exactly", m["product_vs_lookup"], 0.0, 0.0),
            Check.close("and its one-hot form exactly", m["product_vs_one_hot_forward"], 0.0, 0.0),
            Check.close("and torch.nn.Embedding with the same state_dict exactly", m["product_vs_torch_embedding"],
                        0.0, 0.0),
            *_word_columns(m),
            Check.close("the gradient for Ω_e is (∂L/∂X) Tᵀ", m["gradient_vs_formula"], 0.0, 1e-12),
            Check.close("and equals nn.Embedding's gradient", m["gradient_vs_torch"], 0.0, 0.0),
            Check.equal("only words in the sentence receive a gradient", m["words_with_gradient"],
                        m["distinct_words"]) if len(m["vocabulary"]) > len(m["distinct_words"]) else
            Check.untested("only words in the sentence receive a gradient",
                           "needs an extra word that the sentence does not use"),
            Check.equal("Ω_e has |V|·D parameters", m["parameters"], m["vocab_size"] * m["d"])]


def _word_columns(m) -> list[Check]:
    """Repeated words share a column and different words do not, where the sentence has such words."""
    same, different = "a repeated word gets identical columns", "different words get different columns"
    checks = [Check.close(same, m["repeated_columns_diff"], 0.0, 0.0) if m["repeated_words"] else
              Check.untested(same, "needs a sentence that repeats a word")]
    if len(m["distinct_words"]) < 2:
        return checks + [Check.untested(different, "needs a sentence of two different words")]
    return checks + [Check.greater(different, m["distinct_words_min_diff"], 0.0)]
