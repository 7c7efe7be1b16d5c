"""Dot-product self-attention, masked and cross-attention, multi-head attention (UDL §12.2-12.4).

The book writes N tokens as the columns of X ∈ R^{D×N}. Values, queries and keys are
linear functions of the inputs (eqs. 12.2, 12.6)::

    V = β_v 1ᵀ + Ω_v X,    Q = β_q 1ᵀ + Ω_q X,    K = β_k 1ᵀ + Ω_k X

and the output for token n is a weighted sum of all the values (eqs. 12.3, 12.7)::

    sa_n[X] = Σ_m a[x_m, x_n] v_m,    a[x_m, x_n] = softmax_m[k_mᵀ q_n / √D_q]

In matrix form, with the softmax taken down each column (eq. 12.9-12.10)::

    Sa[X] = V · Softmax[Kᵀ Q / √D_q]

so each column of the attention matrix is positive and sums to one. A mask sets some
entries k_mᵀ q_n to -∞ before the softmax: the causal mask of a decoder stops token n
attending to tokens m > n (§12.7.2); cross-attention takes the queries from one
sequence and the keys and values from another (§12.8). Multi-head attention runs H
such mechanisms on D/H-dimensional projections and recombines their concatenated
outputs with Ω_c (eq. 12.11).

- :func:`book_self_attention` is the book's column form, for drawing figs. 12.1-12.4.
- :func:`attention` is the same computation in PyTorch's row convention
  ``(..., N, D)``; ``fast=True`` runs it through
  :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient
  kernels on a GPU), ``fast=False`` through the written-out softmax that also returns
  the attention weights.
- :class:`MultiHeadAttention` is the layer, for self- and cross-attention, with an
  optional key/value cache for step-by-step decoding.

Masks are boolean, ``True`` where a query may attend to a key (SDPA's convention),
broadcastable to ``(B, H, N_q, N_k)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from udl.validate import check_float, check_int

__all__ = ["book_self_attention", "attention", "causal_mask", "MultiHeadAttention"]


def book_self_attention(X: torch.Tensor, omega_v: torch.Tensor, beta_v: torch.Tensor, omega_q: torch.Tensor,
                        beta_q: torch.Tensor, omega_k: torch.Tensor, beta_k: torch.Tensor,
                        mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention in the book's column form: ``Sa[X] = V · Softmax[KᵀQ / √D_q]`` (eq. 12.10).

    Args:
        X: the inputs, one token per column.
        omega_v, beta_v: value weights ``(D_v, D)`` and biases ``(D_v,)``; likewise
            ``omega_q, beta_q`` and ``omega_k, beta_k`` (``(D_q, D)``, ``(D_q,)``).
        mask: optional boolean ``(N, N)``; entry ``[m, n]`` False forbids query n
            from attending to key m (the column convention of the book's matrices).

    Returns:
        ``(Sa[X], A)``: outputs ``(D_v, N)`` and the attention matrix ``A`` ``(N, N)``
        whose column n holds the weights a[x_•, x_n] (each column sums to one).

    Shape:
        ``X``: ``(D, N)``.
    """
    V = beta_v[:, None] + omega_v @ X  # (D_v, N)
    Q = beta_q[:, None] + omega_q @ X  # (D_q, N)
    K = beta_k[:, None] + omega_k @ X  # (D_q, N)
    scores = K.T @ Q / math.sqrt(Q.shape[0])  # (N keys, N queries)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    A = torch.softmax(scores, dim=0)  # softmax down each column: over the keys
    return V @ A, A  # (D_v, N), (N, N)


def causal_mask(n_queries: int, n_keys: int | None = None, *, device=None) -> torch.Tensor:
    """Boolean ``(N_q, N_k)`` mask letting query i see keys j <= i + (N_k - N_q).

    With ``N_k > N_q`` (queries are the last N_q of N_k tokens, as when decoding with
    a key/value cache) the mask is aligned at the bottom right.
    """
    n_keys = n_queries if n_keys is None else n_keys
    offset = n_keys - n_queries
    i = torch.arange(n_queries, device=device)[:, None]
    j = torch.arange(n_keys, device=device)[None, :]
    return j <= i + offset


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *,
              causal: bool = False, dropout: float = 0.0, fast: bool = True,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention in row form: ``softmax(Q Kᵀ / √D_q) V`` over the keys.

    Args:
        q: queries ``(..., N_q, D_q)``; k: keys ``(..., N_k, D_q)``; v: values ``(..., N_k, D_v)``.
        mask: optional boolean, broadcastable to ``(..., N_q, N_k)``, True = may attend.
        causal: also forbid query i from seeing keys after it (bottom-right aligned).
        dropout: dropout on the attention weights (training only; 0 by default).
        fast: use :func:`torch.nn.functional.scaled_dot_product_attention` (the weights
            are then not returned); ``False`` writes the softmax out.
        generator: randomness for attention dropout on the written-out path.

    Returns:
        ``(output (..., N_q, D_v), weights (..., N_q, N_k) or None)``.
    """
    n_q, n_k = q.shape[-2], k.shape[-2]
    if fast and causal and mask is None and n_q == n_k:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True), None
    if causal:
        c = causal_mask(n_q, n_k, device=q.device)
        mask = c if mask is None else (mask & c)
    if fast:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout), None
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N_q, N_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # each row (query) sums to one over the keys
    if dropout > 0:
        keep = torch.rand(weights.shape, generator=generator, device=weights.device) >= dropout
        weights = weights * keep / (1 - dropout)
    return weights @ v, weights  # (..., N_q, D_v)


class MultiHeadAttention(nn.Module):
    """Multi-head dot-product attention with the output projection Ω_c (eq. 12.11).

    For each head h the queries, keys and values are D/H-dimensional linear
    projections; the heads attend independently and their outputs are concatenated
    and mixed by ``out_proj``. With ``context`` given, queries come from ``x`` and keys
    and values from ``context`` (cross-attention, §12.8).

    Args:
        d_model: D, the embedding size.
        n_heads: H; must divide D.
        bias: biases β in the projections (default True).
        dropout: dropout on the attention weights in training (default 0).
        fast: run the attention through ``scaled_dot_product_attention`` (default);
            ``False`` writes it out and keeps the last weights in ``last_weights``.

    Shape:
        ``x``: ``(B, N, D)``; ``context``: ``(B, M, D)`` -> ``(B, N, D)``.

    Example::

        >>> mha = MultiHeadAttention(16, 4)
        >>> mha(torch.zeros(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, *, bias: bool = True, dropout: float = 0.0, fast: bool = True):
        super().__init__()
        owner = "MultiHeadAttention"
        d_model = check_int(d_model, "d_model", owner)
        n_heads = check_int(n_heads, "n_heads", owner)
        if d_model % n_heads:
            raise ValueError(f"The 'n_heads' parameter of {owner} must divide d_model = {d_model}. "
                             f"Got {n_heads} instead.")
        self.dropout = check_float(dropout, "dropout", owner, low=0.0, high=1.0, high_open=True)
        if not isinstance(fast, bool):
            raise TypeError(f"The 'fast' parameter of {owner} must be a bool. Got {fast!r} instead.")
        self.d_model, self.n_heads, self.d_head, self.fast = d_model, n_heads, d_model // n_heads, fast
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.last_weights: torch.Tensor | None = None

    def _project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(q_proj(x), k_proj(x), v_proj(x))`` as one product with the stacked [Ω_q; Ω_k; Ω_v].

        One (D -> 3D) matrix multiplication instead of three (D -> D) ones: the kernel a
        fused-QKV implementation such as GPT-2's runs; same numbers up to rounding.
        """
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3D, D)
        bias = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.k_proj.bias,
                                                                self.v_proj.bias])  # (3D,)
        return F.linear(x, weight, bias).split(self.d_model, dim=-1)  # 3 x (B, N, D)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, N, D/H)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *, mask: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                cache: dict | None = None) -> torch.Tensor:
        """Attend from ``x`` to itself (or to ``context``).

        Args:
            x: the queries' sequence ``(B, N, D)``.
            context: the keys' and values' sequence ``(B, M, D)``; None for self-attention.
            mask: boolean attention mask, broadcastable to ``(B, H, N, M)`` (a 2-D mask
                is ``(N, M)``), True = may attend.
            key_padding_mask: boolean ``(B, M)``, True for real keys and False for
                padding that no query may attend to.
            causal: forbid attending to later positions (decoder self-attention).
            cache: a dict that keeps the keys and values seen so far (entries "k", "v",
                ``(B, H, T, D/H)``); new keys and values are appended, so a decoder can
                feed one token at a time. For cross-attention the context's keys and
                values are computed once and reused.
        """
        if context is None:  # self-attention: Q, K and V from one matrix product
            q, k, v = map(self._split, self._project_qkv(x))
            if cache is not None:
                if "k" in cache:
                    k = torch.cat([cache["k"], k], dim=2)  # (B, H, T + N, D/H)
                    v = torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        else:
            q = self._split(self.q_proj(x))
            if cache is not None and "k" in cache:
                k, v = cache["k"], cache["v"]  # the encoder's keys and values do not change
            else:
                k, v = self._split(self.k_proj(context)), self._split(self.v_proj(context))
                if cache is not None:
                    cache["k"], cache["v"] = k, v
        if key_padding_mask is not None:
            if key_padding_mask.shape != (x.shape[0], k.shape[2]):
                raise ValueError(f"MultiHeadAttention: key_padding_mask must have shape (B, M) = "
                                 f"{(x.shape[0], k.shape[2])}. Got {tuple(key_padding_mask.shape)} instead.")
            padding = key_padding_mask.bool()[:, None, None, :]  # (B, M) -> (B, 1, 1, M)
            mask = padding if mask is None else (mask & padding)
        dropout = self.dropout if self.training else 0.0
        out, weights = attention(q, k, v, mask, causal=causal, dropout=dropout, fast=self.fast)
        self.last_weights = weights
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.d_model))  # concat heads: (B, N, D)
