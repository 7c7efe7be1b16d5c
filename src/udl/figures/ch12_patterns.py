"""Chapter 12: interaction matrices for long sequences — full, causal, convolutional, dilated, selected and
global tokens (§12.9, fig. 12.15)."""

from __future__ import annotations

import numpy as np
import torch

from udl import drawing, style
from udl.analysis.compare import max_difference
from udl.nn.attention import (attention, causal_mask, convolutional_mask, full_mask, global_tokens_mask,
                              selected_tokens_mask)
from udl.nn.sparse_attention import SparsePattern, sparse_attention
from udl.registry import Check, Limit, Result, figure

PANELS = "abcdefgh"
DECODERS = "bdefg"  # the panels of a decoder: no token sees a later one
TOL = 1e-5  # dense and sparse attention agree to this in float32


def _setting(p, n: int) -> dict:
    """The panels' settings for n tokens: the selected positions scaled from the drawn n, at most n global tokens."""
    return {"k": p.kernel_size, "d2": p.dilations[0], "d3": p.dilations[1], "g": min(p.n_global, n),
            "selected": sorted({s * n // p.n for s in p.selected})}


def _rows(panel: str, n: int, s: dict):
    """Panel ``panel``'s interaction matrix for n tokens, as a function of the query positions (its rows)."""
    k, sel = s["k"], s["selected"]
    return {"a": lambda q: full_mask(n, queries=q),
            "b": lambda q: causal_mask(n, queries=q),
            "c": lambda q: convolutional_mask(n, k, queries=q),
            "d": lambda q: convolutional_mask(n, k, causal=True, queries=q),
            "e": lambda q: convolutional_mask(n, k, dilation=s["d2"], causal=True, queries=q),
            "f": lambda q: convolutional_mask(n, k, dilation=s["d3"], causal=True, queries=q),
            "g": lambda q: (convolutional_mask(n, k, causal=True, queries=q)
                            | selected_tokens_mask(n, sel, causal=True, queries=q)),
            "h": lambda q: convolutional_mask(n, k, queries=q) | global_tokens_mask(n, s["g"], queries=q)}[panel]


def closed_form_counts(panel: str, n: int, s: dict) -> list[int]:
    """Keys per query of each panel, from arithmetic alone (what the checks compare the masks with)."""
    k, h, g = s["k"], s["k"] // 2, s["g"]
    band = [min(h, i) + min(h, n - 1 - i) + 1 for i in range(n)]  # centred kernel, cut at both ends
    causal_band = [min(k, i + 1) for i in range(n)]
    return {"a": [n] * n,
            "b": [i + 1 for i in range(n)],
            "c": band,
            "d": causal_band,
            "e": [min(k, i // s["d2"] + 1) for i in range(n)],
            "f": [min(k, i // s["d3"] + 1) for i in range(n)],
            "g": [i + 1 if i in s["selected"] else causal_band[i] for i in range(n)],
            "h": [n if i < g else g + max(0, min(n - 1, i + h) - max(g, i - h) + 1) for i in range(n)]}[panel]


def _compare(rows_of, n: int, d: int, chunk: int, g: torch.Generator) -> float:
    """Largest difference between masked dense and sparse attention, outputs and input gradients (float32).

    Each tensor's difference is divided by its largest entry when that exceeds one: the gradient of a key
    that every query sees (a global token) sums N terms, and its rounding grows with them.
    """
    mask = rows_of(torch.arange(n))
    pattern = SparsePattern(rows_of, n_queries=n, chunk=chunk)  # read chunk by chunk, as for a long sequence
    q, k, v, r = torch.randn(4, 2, n, d, generator=g).unbind(0)  # (heads, N, D) each
    results = []
    for run in (lambda a, b, c: attention(a, b, c, mask), lambda a, b, c: sparse_attention(a, b, c, pattern)):
        inputs = [t.clone().requires_grad_(True) for t in (q, k, v)]
        out = run(*inputs)
        (out * r).sum().backward()
        results.append([out.detach()] + [t.grad for t in inputs])
    return max(max_difference(x, y) / max(1.0, y.abs().max().item()) for x, y in zip(*results))


@figure("12.15", title="Interaction matrices for long sequences",
        caption="Which token may attend to which, one square per (query i, key j) pair, filled where they interact "
                "(rows: queries, columns: keys). a) An encoder lets every token see every token: N² interactions. "
                "b) A decoder lets each token see itself and the earlier ones, still about N²/2. c) A convolutional "
                "band around each token (encoder) and d) its one-sided decoder form keep at most K interactions per "
                "token, so the cost grows linearly with N. e, f) The decoder's band dilated by two and three reaches "
                "further back with the same K keys. g) Selected tokens (orange rows) see every earlier token, beside "
                "a decoder band. h) Global tokens (orange: the first two rows and columns) see and are seen by every "
                "token and each other, beside an encoder band. Each matrix is built by udl's mask builders; its "
                "count of keys per query is checked against a closed form, and attention computed over its "
                "non-zeros alone equals masked dense attention in outputs and gradients.",
        params={"tiny": dict(n=12, kernel_size=3, dilations=[2, 3], selected=[4, 9], n_global=2,
                             sizes=[1, 7, 40], d=8, chunk=8),
                "full": dict(n=16, kernel_size=3, dilations=[2, 3], selected=[6, 12], n_global=2,
                             sizes=[1, 7, 40, 130, 600, 2048], d=32, chunk=32)},
        limits={"n": (2, 48), "kernel_size": (1, 15), "dilations": Limit(1, 8, min_len=2, max_len=2),
                "selected": Limit(0, 47, min_len=1, max_len=8), "n_global": (0, 48),
                "sizes": Limit(1, 2048, min_len=1, max_len=8), "d": (1, 64), "chunk": (1, 512)})
def interaction_patterns(p, run):
    drawn = _setting(p, p.n)
    masks = {c: _rows(c, p.n, drawn)(torch.arange(p.n)) for c in PANELS}  # (N, N) each
    extra = {"g": selected_tokens_mask(p.n, drawn["selected"], causal=True),  # drawn in orange
             "h": global_tokens_mask(p.n, drawn["g"])}
    g = run.generator(0)
    sizes = sorted(set(p.sizes) | {p.n})
    count_errors = {c: 0 for c in PANELS}
    dense_vs_sparse = {c: 0.0 for c in PANELS}
    widest = {c: 0 for c in PANELS}  # the most keys any query sees, over all sizes
    computed = {}
    for n in sizes:
        s = _setting(p, n)
        for c in PANELS:
            rows_of = _rows(c, n, s)
            counts = rows_of(torch.arange(n)).sum(1).tolist()
            count_errors[c] += sum(a != b for a, b in zip(counts, closed_form_counts(c, n, s)))
            widest[c] = max(widest[c], max(counts))
            dense_vs_sparse[c] = max(dense_vs_sparse[c], _compare(rows_of, n, p.d, p.chunk, g))
            if n == sizes[-1]:
                computed[c] = SparsePattern(rows_of, n_queries=n, chunk=p.chunk).computed / n ** 2
    return Result(
        metrics={"n": p.n, "kernel_size": p.kernel_size, "dilations": list(p.dilations),
                 "selected": drawn["selected"], "n_global": drawn["g"], "sizes": sizes,
                 "keys_per_query": {c: masks[c].sum(1).tolist() for c in PANELS},
                 "closed_form": {c: closed_form_counts(c, p.n, drawn) for c in PANELS},
                 "interactions": {c: int(masks[c].sum()) for c in PANELS},
                 "count_errors": count_errors, "widest_row": widest,
                 "dense_vs_sparse": dense_vs_sparse,
                 "look_ahead": {c: int(masks[c].triu(1).sum()) for c in DECODERS},
                 "global_columns": masks["h"][:, :drawn["g"]].sum(0).tolist(),
                 "global_rows": masks["h"][:drawn["g"]].sum(1).tolist(),
                 "computed_fraction_at_largest": computed},
        arrays={**{f"mask_{c}": masks[c].numpy() for c in PANELS}, **{f"extra_{c}": extra[c].numpy() for c in "gh"}},
        notes="Rows are queries and columns keys (the transpose of the book's K^T Q, whose columns are queries). "
              "In g the decoder band sits beside the selected rows and in h an encoder band beside the global tokens, "
              "as the book draws them; the selected positions and sizes are udl's. The equality of dense and sparse "
              "attention is measured on random float32 inputs for every size in 'sizes' and the drawn N.")


@interaction_patterns.requires
def _(p):
    if p.kernel_size % 2 == 0:
        raise ValueError(f"The 'kernel_size' parameter of figure 12.15 must be odd (panels c and h centre it on "
                         f"the query). Got {p.kernel_size} instead.")
    if max(p.selected) >= p.n:
        raise ValueError(f"The 'selected' parameter of figure 12.15 must hold positions below n = {p.n}. "
                         f"Got {','.join(map(str, p.selected))} instead.")
    if p.n_global > p.n:
        raise ValueError(f"The 'n_global' parameter of figure 12.15 must be at most n = {p.n}. "
                         f"Got {p.n_global} instead.")


TITLES = {"a": "encoder: full", "b": "decoder: causal", "c": "convolutional (encoder)",
          "d": "convolutional (decoder)", "e": "dilation 2 (decoder)", "f": "dilation 3 (decoder)",
          "g": "selected tokens (decoder)", "h": "global tokens"}


@interaction_patterns.plot
def _(r):
    m = r.metrics
    n = m["n"]
    fig, axes = style.subplots(2, 4, width=2.6, height=2.9)
    for ax, c in zip(axes.flat, PANELS):
        mask = r.arrays[f"mask_{c}"]
        extra = r.arrays.get(f"extra_{c}", np.zeros_like(mask))
        faces = [[style.DATA if extra[i, j] else style.MODEL if mask[i, j] else "white" for j in range(n)]
                 for i in range(n)]
        drawing.grid(ax, None, (0, 0), faces=faces, edges="0.7", fmt=None, lw=0.3)
        drawing.frame(ax, (-0.6, n - 0.4), (-n + 0.4, 0.6))
        title = TITLES[c]
        if c in "ef":
            title = f"dilation {m['dilations'][PANELS.index(c) - 4]} (decoder)"
        ax.set_title(f"{c}) {title}", loc="left", fontsize=8.5)
        ax.text((n - 1) / 2, -n - 0.1, f"key j  ·  {m['interactions'][c]} of {n * n} pairs interact", ha="center",
                va="top", fontsize=7)
        if c in "ae":
            ax.text(-1.2, -(n - 1) / 2, "query i", rotation=90, ha="right", va="center", fontsize=7)
    return fig


FORMULAS = {"a": "N", "b": "i + 1", "c": "min(h, i) + min(h, N-1-i) + 1", "d": "min(K, i + 1)",
            "e": "min(K, ⌊i/2⌋ + 1)", "f": "min(K, ⌊i/3⌋ + 1)", "g": "i + 1 on selected rows, else min(K, i + 1)",
            "h": "N on the global rows, else G + the band's keys beyond them"}


@interaction_patterns.checks
def _(r):
    m = r.metrics
    checks = []
    for c in PANELS:
        formula = FORMULAS[c]
        if c in "ef":
            formula = formula.replace(str(2 if c == "e" else 3), str(m["dilations"][PANELS.index(c) - 4]))
        checks.append(Check.equal(f"{c}) keys per query = {formula}, at every size (rows that differ)",
                                  m["count_errors"][c], 0))
    for c in PANELS:
        checks.append(Check.close(f"{c}) attention over the non-zeros alone equals masked dense attention "
                                  f"(outputs and gradients, float32, relative to entries above 1)", m["dense_vs_sparse"][c], 0.0, TOL))
    checks.append(Check.equal("in a decoder (b, d-g) no token sees a later one", sum(m["look_ahead"].values()), 0))
    n, g = m["n"], m["n_global"]
    claim = "h) the global tokens see every token and are seen by every token"
    checks.append(Check.equal(claim, m["global_columns"] + m["global_rows"], [n] * (2 * g)) if g else
                  Check.untested(claim, "needs n_global >= 1"))
    claim = "c-f) a band keeps at most K keys per query while the full pattern's grow with N"
    largest, k = m["sizes"][-1], m["kernel_size"]
    if largest > k:
        checks.append(Check.holds(claim, max(m["widest_row"][c] for c in "cdef") <= k < m["widest_row"]["a"],
                                  {"band": max(m["widest_row"][c] for c in "cdef"), "full": m["widest_row"]["a"]},
                                  f"band <= K = {k} < full"))
    else:
        checks.append(Check.untested(claim, f"needs a size above K = {k}"))
    return checks
