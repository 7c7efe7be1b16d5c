"""Chapter 12: transformers — self-attention, multi-head attention, the transformer layer, embeddings."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from udl import style
from udl.nn.attention import MultiHeadAttention, attention, book_self_attention, causal_mask
from udl.nn.transformer import TokenEmbedding, TransformerLayer
from udl.registry import Check, Result, figure

DT = torch.float64  # every equality check runs in double precision


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


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


def _per_token_loop(e: dict, X: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 12.3 and 12.7 written out token by token, with the softmax spelled out in exponentials."""
    X = e["X"] if X is None else X
    d, n = X.shape
    cols = [X[:, i] for i in range(n)]
    v = [e["beta_v"] + e["omega_v"] @ x for x in cols]
    k = [e["beta_k"] + e["omega_k"] @ x for x in cols]
    out, weights = [], torch.zeros(n, n, dtype=X.dtype)
    for i in range(n):
        q_i = e["beta_q"] + e["omega_q"] @ cols[i]
        scores = [torch.dot(k[m], q_i) / math.sqrt(d) for m in range(n)]  # k_mᵀ q_n / √D_q
        top = max(s.item() for s in scores)  # subtract the largest score: same softmax, no overflow
        exps = [torch.exp(s - top) for s in scores]
        total = sum(exps)
        a = [x / total for x in exps]  # a[x_m, x_n], UDL eq. 12.7
        out.append(sum(a[m] * v[m] for m in range(n)))  # sa_n = Σ_m a[x_m, x_n] v_m, UDL eq. 12.3
        weights[:, i] = torch.stack(a)
    return torch.stack(out, dim=1), weights  # (D, N), (N, N)


def _row_form(e: dict, X: torch.Tensor | None = None, fast: bool = True):
    """The same attention through udl's row-form ``attention`` (book X = our x.T)."""
    V, Q, K = _qkv(e, X)
    out, w = attention(Q.T[None], K.T[None], V.T[None], fast=fast)  # (1, N, D), (1, N, N) or None
    return out[0].T, (None if w is None else w[0].T)  # back to columns: (D, N), (N keys, N queries)


# --------------------------------------------------------------------------- drawing helpers (no computation)
def _light(color, amount: float) -> tuple:
    """``color`` mixed with white: amount 0 is white, 1 the full colour."""
    from matplotlib.colors import to_rgb

    rgb = np.array(to_rgb(color))
    return tuple(1 - float(np.clip(amount, 0, 1)) * (1 - rgb))


def _signed(v: float, vmax: float) -> tuple:
    """A cell colour for a signed number: red above zero, blue below, white at zero."""
    import matplotlib

    return matplotlib.colormaps["RdBu_r"](0.5 + 0.5 * float(np.clip(v / vmax, -1, 1)) * 0.8)


def _grid(ax, M, x0, y0, *, face=None, color=None, vmax=None, fmt="{:.1f}", cell=1.0, fontsize=6.5, edge="black",
          lw=0.6):
    """Matrix ``M`` as cells, row 0 at the top, its top-left cell centred at ``(x0, y0)``.

    Faces: ``face`` (one colour), else shades of ``color`` by |value| (weights), else signed.
    """
    from matplotlib.patches import Rectangle

    M = np.atleast_2d(M)
    vmax = vmax or (float(np.abs(M).max()) or 1.0)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            v = float(M[i, j])
            fc = face if face is not None else (_light(color, 0.1 + 0.8 * abs(v) / vmax) if color is not None
                                                else _signed(v, vmax))
            x, y = x0 + j * cell, y0 - i * cell
            ax.add_patch(Rectangle((x - cell / 2, y - cell / 2), cell, cell, facecolor=fc, edgecolor=edge, lw=lw,
                                   zorder=2))
            if fmt:
                text = fmt.format(v)
                text = text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"
                ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)


def _arrow(ax, start, end, *, color="black", lw=1.0, text=None, fontsize=7, style_="-|>", rad=0.0):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style_, mutation_scale=8, color=color, lw=lw, zorder=1,
                                 connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, text, ha="center", va="center", fontsize=fontsize,
                color=color, zorder=4, bbox=dict(fc="white", ec="none", pad=0.3))


def _frame(ax, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


def _routing_panel(ax, X, V, Sa, A, n, *, title=True):
    """Inputs x_m (orange), values v_m (gray) and output sa_n (cyan), with links as thick as a[x_m, x_n]."""
    d, N = X.shape
    gap = d * 0.0 + 2.4  # horizontal distance between tokens
    y_in, y_val, y_out = 0.0, d + 2.5, 2 * d + 5.5  # top cell of each column
    vmax = max(np.abs(X).max(), np.abs(V).max(), np.abs(Sa).max())
    for m in range(N):
        xm = m * gap
        _grid(ax, X[:, m:m + 1], xm, y_in, color=style.DATA, vmax=vmax)
        ax.text(xm, y_in - d + 0.1, f"$x_{m + 1}$", ha="center", va="center", fontsize=8)
        _grid(ax, V[:, m:m + 1], xm, y_val, color=style.REGION, vmax=vmax)
        ax.text(xm - 0.85, y_val - (d - 1) / 2, f"$v_{m + 1}$", ha="right", va="center", fontsize=8)
        _arrow(ax, (xm, y_in + 0.55), (xm, y_val - d + 0.45), color="0.45", text="$\\Omega_v, \\beta_v$"
               if m == 0 else None, fontsize=6)
    xo = (N - 1) * gap / 2
    _grid(ax, Sa[:, n:n + 1], xo, y_out, color=style.MODEL, vmax=vmax)
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
    _frame(ax, (-3.2, (N - 1) * gap + 1.8), (y_in - d - 0.2, y_out + 1.0))
    if title:
        ax.set_title(f"output {n + 1}", fontsize=9)


# --------------------------------------------------------------------------- 12.1
@figure("12.1", title="Self-attention as routing",
        caption="Self-attention on N = 3 tokens of size D = 4 (orange: inputs x1..x3). Each input is mapped, with the "
                "same weights Ω_v and biases β_v, to a value vector v_m (gray). Output n (cyan) is a weighted sum of "
                "all three values, with weights a[x_m, x_n] that are positive and add up to one; line widths show "
                "them. a-c) Each output mixes the same values with its own weights: a different routing of the "
                "values for every token. Computed with udl's book_self_attention and compared with the sum written "
                "out token by token and with torch's scaled_dot_product_attention.",
        params={"tiny": dict(n=3, d=4, n_random=4), "full": dict(n=3, d=4, n_random=40)})
def routing(p, run):
    e = _book_example(p.n, p.d, run.generator(0))
    Sa, A = book_self_attention(*_args(e))  # (D, N), (N, N)
    V, _, _ = _qkv(e)
    loop_out, loop_A = _per_token_loop(e)
    sdpa_out, _ = _row_form(e, fast=True)
    written_out, written_A = _row_form(e, fast=False)
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
        worst["loop"] = max(worst["loop"], _max_diff(Sa_t, _per_token_loop(e_t)[0]))
        worst["sdpa"] = max(worst["sdpa"], _max_diff(Sa_t, _row_form(e_t)[0]))
        perm_t = torch.randperm(n_t, generator=g)
        worst["perm"] = max(worst["perm"], _max_diff(book_self_attention(*_args(e_t, e_t["X"][:, perm_t]))[0],
                                                     Sa_t[:, perm_t]))
    cols = A.T  # (N queries, N keys)
    distinct = min((cols[i] - cols[j]).abs().max().item() for i in range(p.n) for j in range(i + 1, p.n))
    return Result(
        metrics={"n": p.n, "d": p.d, "weights": A.tolist(), "output_shape": list(Sa.shape),
                 "min_weight": A.min().item(),
                 "max_column_sum_error": (A.sum(dim=0) - 1).abs().max().item(),
                 "matrix_vs_loop_outputs": _max_diff(Sa, loop_out),
                 "matrix_vs_loop_weights": _max_diff(A, loop_A),
                 "matrix_vs_sdpa": _max_diff(Sa, sdpa_out),
                 "matrix_vs_written_softmax": _max_diff(Sa, written_out),
                 "weights_vs_written_softmax": _max_diff(A, written_A),
                 "permutation": perm.tolist(),
                 "permuted_outputs_diff": _max_diff(Sa_p, Sa[:, perm]),
                 "permuted_weights_diff": _max_diff(A_p, A[perm][:, perm]),
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
            Check.greater("each output routes the values differently (columns of A differ)",
                          m["min_difference_between_routings"], 1e-3),
            Check.equal("the output has the input's size D×N", m["output_shape"], [m["d"], n]),
            Check.close("matrix form equals the per-token sum sa_n = Σ a[x_m,x_n] v_m (eq. 12.3)",
                        m["matrix_vs_loop_outputs"], 0.0, 1e-12),
            Check.close("its weights equal the per-token softmax (eq. 12.7)", m["matrix_vs_loop_weights"], 0.0,
                        1e-12),
            Check.close("equals torch's scaled_dot_product_attention (attention, fast=True)", m["matrix_vs_sdpa"],
                        0.0, 1e-12),
            Check.close("equals the written-out softmax (attention, fast=False)", m["matrix_vs_written_softmax"],
                        0.0, 1e-12),
            Check.close("and so do the weights", m["weights_vs_written_softmax"], 0.0, 1e-12),
            Check.close("permuting the inputs permutes the outputs", m["permuted_outputs_diff"], 0.0, 1e-12),
            Check.close("and permutes the weights' rows and columns", m["permuted_weights_diff"], 0.0, 1e-12),
            Check.close("on random sizes: matrix form equals the loop", m["random_loop_diff"], 0.0, 1e-12),
            Check.close("on random sizes: equals scaled_dot_product_attention", m["random_sdpa_diff"], 0.0, 1e-12),
            Check.close("on random sizes: permutation equivariant", m["random_permutation_diff"], 0.0, 1e-12)]


def _boxed(ax, M, cx, cy, label, *, below=None, **kw):
    """``_grid`` centred at ``(cx, cy)`` with ``label`` above it (and ``below`` under it); returns its half sizes."""
    M = np.atleast_2d(M)
    h, w = M.shape
    _grid(ax, M, cx - (w - 1) / 2, cy + (h - 1) / 2, **kw)
    ax.text(cx, cy + h / 2 + 0.45, label, ha="center", va="bottom", fontsize=8)
    if below:
        ax.text(cx, cy - h / 2 - 0.3, below, ha="center", va="top", fontsize=6.5, color="0.35")
    return w / 2, h / 2


# --------------------------------------------------------------------------- 12.3
@figure("12.3", title="Computing the attention weights",
        caption="a) Every input x_n (orange) gives a query q_n = β_q + Ω_q x_n (purple) and a key k_n = β_k + Ω_k x_n "
                "(green), with weights shared by all tokens. b) For one output, the query is compared with every "
                "key by a dot product (scaled by 1/√D); a softmax over the N keys turns these N numbers into "
                "attention weights that are positive and add to one, in the same order as the dot products. c) The "
                "weights route the values to that output, as in figure 12.1. Same inputs and weights as 12.1.",
        params={"tiny": dict(n=3, d=4, output=2, n_random=4), "full": dict(n=3, d=4, output=2, n_random=40)})
def attention_weights(p, run):
    if not 1 <= p.output <= p.n:
        raise ValueError(f"The 'output' parameter of figure 12.3 must be in 1..{p.n}. Got {p.output} instead.")
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
        worst = max(worst, _max_diff(ex / ex.sum(dim=0), book_self_attention(*_args(e_t))[1]))
    rank = lambda v: torch.argsort(torch.argsort(v)).tolist()  # noqa: E731  (rank of each entry)
    return Result(
        metrics={"n": p.n, "d": p.d, "output": p.output, "scores": scores.tolist(), "weights": weights.tolist(),
                 "query_shape": list(Q.shape), "key_shape": list(K.shape),
                 "softmax_vs_library_weights": _max_diff(weights, A[:, j]),
                 "weight_sum_error": abs(weights.sum().item() - 1), "min_weight": weights.min().item(),
                 "score_ranks": rank(scores), "weight_ranks": rank(weights),
                 "routed_output_vs_library": _max_diff(V @ weights, Sa[:, j]),
                 "random_softmax_vs_library": worst},
        arrays={"X": e["X"].numpy(), "Q": Q.numpy(), "K": K.numpy(), "V": V.numpy(), "Sa": Sa.numpy(),
                "A": A.numpy(), "scores": scores.numpy(), "weights": weights.numpy()},
        notes="Random (seeded) inputs and weights instead of the book's illustration. The book introduces the "
              "1/√D scaling later (§12.3.2); udl's attention always applies it, so the dot products shown are scaled.")


def _qk_panel(ax, X, Q, K):
    d, N = X.shape
    gap = 3.6
    vmax = max(np.abs(X).max(), np.abs(Q).max(), np.abs(K).max())
    for m in range(N):
        xm = m * gap
        _grid(ax, X[:, m:m + 1], xm, 0.0, color=style.DATA, vmax=vmax)
        ax.text(xm, -d + 0.1, f"$x_{m + 1}$", ha="center", va="center", fontsize=8)
        for dx, M, c, name in ((-0.7, Q, style.EXTRA[0], "q"), (0.7, K, style.EXTRA[1], "k")):
            _grid(ax, M[:, m:m + 1], xm + dx, d + 2.5, color=c, vmax=vmax)
            ax.text(xm + dx, d + 3.1, f"${name}_{m + 1}$", ha="center", va="bottom", fontsize=8, color=c)
            _arrow(ax, (xm, 0.55), (xm + dx, d + 2.5 - d + 0.45), color=c)
    ax.text(-1.5, d / 2 + 0.5, "$\\Omega_q, \\beta_q$", color=style.EXTRA[0], fontsize=7, ha="right")
    ax.text((N - 1) * gap + 1.5, d / 2 + 0.5, "$\\Omega_k, \\beta_k$", color=style.EXTRA[1], fontsize=7)
    _frame(ax, (-2.8, (N - 1) * gap + 3.0), (-d - 0.2, d + 4.2))
    ax.set_title("queries and keys", fontsize=9)


def _softmax_panel(ax, Q, K, scores, weights, j):
    d, N = Q.shape
    gap = 1.8
    vmax = max(np.abs(Q).max(), np.abs(K).max())
    _grid(ax, Q[:, j:j + 1], -2.2, 0.0, color=style.EXTRA[0], vmax=vmax)
    ax.text(-2.2, 0.6, f"$q_{j + 1}$", ha="center", va="bottom", fontsize=8, color=style.EXTRA[0])
    y_s, y_w = 2.8, 5.6
    for m in range(N):
        xm = m * gap
        _grid(ax, K[:, m:m + 1], xm, 0.0, color=style.EXTRA[1], vmax=vmax)
        ax.text(xm, -d + 0.1, f"$k_{m + 1}$", ha="center", va="center", fontsize=8, color=style.EXTRA[1])
        _grid(ax, [[scores[m]]], xm, y_s, face="white", fmt="{:.2f}", fontsize=7, cell=1.2)
        _grid(ax, [[weights[m]]], xm, y_w, color=style.MODEL, vmax=1.0, fmt="{:.2f}", fontsize=7, cell=1.2)
        _arrow(ax, (xm, 0.55), (xm, y_s - 0.65), color="0.4")
    ax.text((N - 1) * gap + 0.9, y_s, f"$k_m^T q_{j + 1}/\\sqrt{{D}}$", fontsize=7, va="center")
    ax.text((N - 1) * gap + 0.9, y_w, f"$a[x_m, x_{j + 1}]$", fontsize=7, va="center", color=style.MODEL)
    _arrow(ax, ((N - 1) * gap / 2, y_s + 0.65), ((N - 1) * gap / 2, y_w - 0.65), color="black", text="softmax")
    ax.text((N - 1) * gap / 2, y_w + 0.9, f"sum = {float(np.sum(weights)):.3f}", ha="center", fontsize=7)
    _frame(ax, (-3.0, (N - 1) * gap + 3.2), (-d - 0.2, y_w + 1.6))
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
