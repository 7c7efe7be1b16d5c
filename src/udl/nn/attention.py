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

- :func:`book_self_attention` is the book's column form, for drawing figs. 12.1-12.4;
  :func:`per_token_self_attention` spells out eqs. 12.3 and 12.7 token by token, and
  :func:`book_multi_head_attention` is eq. 12.11 head by head, both in column form.
- :func:`attention` is the same computation in PyTorch's row convention
  ``(..., N, D)``: through :func:`torch.nn.functional.scaled_dot_product_attention`
  (flash / memory-efficient kernels on a GPU), or, with ``need_weights=True``, through
  the written-out softmax that also returns the attention weights.
- :class:`MultiHeadAttention` is the layer, for self- and cross-attention, with an
  optional key/value cache for step-by-step decoding; ``to_torch()`` gives the
  equal :class:`torch.nn.MultiheadAttention`, and :func:`record_attention_weights`
  collects the weights of layers deep inside a model.

Masks are boolean, ``True`` where a query may attend to a key (SDPA's convention),
broadcastable to ``(B, H, N_q, N_k)``; :func:`attention` also takes an additive float
mask (0 where a query may attend, -∞ where not), as SDPA does. A query that may attend to
no key at all gets zero weights and a zero output on both paths, as SDPA gives.

For long sequences (§12.9, fig. 12.15) the interaction matrix is made sparse:
:func:`full_mask` (an encoder), :func:`causal_mask` (a decoder), :func:`convolutional_mask`
(a band of keys around each query, optionally dilated, encoder or decoder),
:func:`selected_tokens_mask` (chosen queries see every key, or every earlier key) and
:func:`global_tokens_mask` (the first k tokens see and are seen by all). They combine with
``|``: ``convolutional_mask(n, 3) | global_tokens_mask(n, 2)`` is fig. 12.15h. Each can
build the rows of chosen queries alone (``queries=``), so that
:class:`udl.nn.sparse_attention.SparsePattern` reads a long pattern chunk by chunk without
ever forming the N×N matrix.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.validate import (as_generator, check_bool, check_float, check_input, check_int, check_tensor,
                          is_autocasting, is_int)

__all__ = ["book_self_attention", "per_token_self_attention", "book_multi_head_attention", "attention",
           "causal_mask", "full_mask", "convolutional_mask", "selected_tokens_mask", "global_tokens_mask",
           "MultiHeadAttention", "record_attention_weights"]


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


def per_token_self_attention(X: torch.Tensor, omega_v: torch.Tensor, beta_v: torch.Tensor, omega_q: torch.Tensor,
                             beta_q: torch.Tensor, omega_k: torch.Tensor,
                             beta_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention token by token, as eqs. 12.3 and 12.7 write it, with the softmax in exponentials.

    For each output n: the query q_n = β_q + Ω_q x_n is compared with every key
    k_m = β_k + Ω_k x_m, the scaled dot products go through a softmax written out as
    exponentials over their sum, and the values v_m = β_v + Ω_v x_m are summed with
    those weights. Slow (Python loops) and meant for checking :func:`book_self_attention`
    against the equations; the arguments are the same.

    Returns:
        ``(Sa[X] (D_v, N), A (N, N))``, equal to :func:`book_self_attention` up to rounding.

    Shape:
        ``X``: ``(D, N)``.
    """
    n = X.shape[1]
    scale = math.sqrt(omega_q.shape[0])  # √D_q
    cols = [X[:, m] for m in range(n)]
    v = [beta_v + omega_v @ x for x in cols]  # v_m = β_v + Ω_v x_m  (UDL eq. 12.2)
    k = [beta_k + omega_k @ x for x in cols]  # k_m = β_k + Ω_k x_m  (UDL eq. 12.6)
    outputs, A = [], torch.zeros(n, n, dtype=X.dtype, device=X.device)
    for i in range(n):
        q = beta_q + omega_q @ cols[i]  # q_n = β_q + Ω_q x_n
        scores = [torch.dot(k[m], q) / scale for m in range(n)]  # k_mᵀ q_n / √D_q
        top = max(s.item() for s in scores)  # subtracting the largest score leaves the softmax as it is
        exps = [torch.exp(s - top) for s in scores]
        total = sum(exps)
        a = [e / total for e in exps]  # a[x_m, x_n]  (UDL eq. 12.7)
        outputs.append(sum(a[m] * v[m] for m in range(n)))  # sa_n = Σ_m a[x_m, x_n] v_m  (UDL eq. 12.3)
        A[:, i] = torch.stack(a)
    return torch.stack(outputs, dim=1), A  # (D_v, N), (N, N)


def book_multi_head_attention(X: torch.Tensor, omega_v: torch.Tensor, beta_v: torch.Tensor, omega_q: torch.Tensor,
                              beta_q: torch.Tensor, omega_k: torch.Tensor, beta_k: torch.Tensor,
                              omega_c: torch.Tensor, beta_c: torch.Tensor, *,
                              n_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Multi-head self-attention in the book's column form, head by head (eq. 12.11).

    Head h applies :func:`book_self_attention` with its own D/H rows of the stacked
    projections (Ω_vh = rows h·D/H ... (h+1)·D/H - 1 of ``omega_v``, and likewise for the
    queries, keys and biases); the heads' outputs are stacked and mixed::

        MhSa[X] = β_c 1ᵀ + Ω_c [Sa_1[X]; Sa_2[X]; ...; Sa_H[X]]

    :class:`MultiHeadAttention` stores its projections this way: ``q_proj.weight`` is
    Ω_q, ``out_proj.weight`` is Ω_c (see :meth:`MultiHeadAttention.book_parameters`).

    Args:
        X: the inputs, one token per column.
        omega_v, beta_v, omega_q, beta_q, omega_k, beta_k: every head's projections
            stacked, ``(D, D)`` and ``(D,)``.
        omega_c, beta_c: the output projection ``(D, D)`` and its bias ``(D,)``.
        n_heads: H; must divide D.

    Returns:
        ``(MhSa[X] (D, N), Sa (H, D/H, N), A (H, N, N))``: the output, each head's output
        and each head's attention matrix (columns sum to one).

    Shape:
        ``X``: ``(D, N)``.
    """
    d = omega_q.shape[0]
    n_heads = check_int(n_heads, "n_heads", "book_multi_head_attention")
    if d % n_heads:
        raise ValueError(f"The 'n_heads' parameter of book_multi_head_attention must divide D = {d}. "
                         f"Got {n_heads} instead.")
    dh = d // n_heads
    heads = []
    for h in range(n_heads):
        rows = slice(h * dh, (h + 1) * dh)  # head h's rows of each projection: Ω_vh is (D/H, D)
        heads.append(book_self_attention(X, omega_v[rows], beta_v[rows], omega_q[rows], beta_q[rows],
                                         omega_k[rows], beta_k[rows]))
    Sa = torch.stack([sa for sa, _ in heads])  # (H, D/H, N)
    A = torch.stack([a for _, a in heads])  # (H, N, N)
    concat = Sa.reshape(d, -1)  # (D, N): the heads stacked vertically
    return beta_c[:, None] + omega_c @ concat, Sa, A  # (D, N)


def causal_mask(n_queries: int, n_keys: int | None = None, *, queries: torch.Tensor | None = None,
                device=None) -> torch.Tensor:
    """Boolean ``(N_q, N_k)`` mask letting query i see keys j <= i + (N_k - N_q) (a decoder, fig. 12.15b).

    With ``N_k > N_q`` (queries are the last N_q of N_k tokens, as when decoding with
    a key/value cache) the mask is aligned at the bottom right.

    Args:
        n_queries: N_q, a positive int.
        n_keys: N_k, a positive int. Default: N_q.
        queries: optional 1-D int tensor of query positions in [0, N_q): only their rows,
            ``(len(queries), N_k)``.
        device: where to build the mask. Default: the CPU (or ``queries``' device).
    """
    n_queries = check_int(n_queries, "n_queries", "causal_mask")
    n_keys = n_queries if n_keys is None else check_int(n_keys, "n_keys", "causal_mask")
    if queries is None:
        return _causal_mask(n_queries, n_keys, device)
    i, j = _query_key_grid(n_queries, queries, device, "causal_mask", n_keys=n_keys)
    return j <= i + (n_keys - n_queries)


def _causal_mask(n_queries: int, n_keys: int, device) -> torch.Tensor:
    offset = n_keys - n_queries
    i = torch.arange(n_queries, device=device)[:, None]
    j = torch.arange(n_keys, device=device)[None, :]
    return j <= i + offset


def _query_key_grid(n: int, queries, device, owner: str, *, n_keys: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``i`` ``(N_q, 1)`` of the queries asked for (all n by default) and ``j`` ``(1, N_k)`` of the
    keys (N_k = n unless given)."""
    if queries is None:
        i = torch.arange(n, device=device)
    else:
        if not (isinstance(queries, torch.Tensor) and queries.dim() == 1 and not queries.is_floating_point()
                and queries.dtype != torch.bool):
            check_tensor(queries, "queries", owner, ndim=1, dtype="int")
        if queries.numel() and (int(queries.min()) < 0 or int(queries.max()) >= n):
            raise ValueError(f"The 'queries' parameter of {owner} must hold positions in [0, {n}). "
                             f"Got values from {int(queries.min())} to {int(queries.max())} instead.")
        i = queries.to(device=device if device is not None else queries.device, dtype=torch.long)
    return i[:, None], torch.arange(n if n_keys is None else n_keys, device=i.device)[None, :]


def full_mask(n: int, *, queries: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """Boolean ``(N, N)`` mask of an encoder: every token interacts with every token (fig. 12.15a).

    Args:
        n: N, the number of tokens, a positive int.
        queries: optional 1-D int tensor of query positions: only their rows, ``(len(queries), N)``.
        device: where to build the mask. Default: the CPU (or ``queries``' device).
    """
    n = check_int(n, "n", "full_mask")
    i, j = _query_key_grid(n, queries, device, "full_mask")
    return (i >= 0) & (j >= 0)  # (N_q, N): all True


def convolutional_mask(n: int, kernel_size: int, *, dilation: int = 1, causal: bool = False,
                       queries: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """Boolean ``(N, N)`` band: query i sees the keys a convolution's kernel centred on it covers (fig. 12.15c-f).

    A decoder (``causal=True``) sees itself and the ``kernel_size - 1`` keys before it,
    every ``dilation``-th one: ``j = i - dilation·m`` for ``m = 0 ... kernel_size - 1``.
    An encoder sees as many on each side: ``j = i + dilation·m`` for
    ``|m| <= (kernel_size - 1) / 2`` (an odd kernel, centred on the query). Keys past
    either end are dropped, as zero padding does, so query i has
    ``min(K, ⌊i/d⌋ + 1)`` keys in a decoder and ``min(h, ⌊i/d⌋) + min(h, ⌊(N-1-i)/d⌋) + 1``
    in an encoder (K = kernel_size, d = dilation, h = (K - 1) / 2): at most K, so the
    cost grows linearly with N instead of quadratically.

    Args:
        n: N, the number of tokens, a positive int.
        kernel_size: K, the keys each query sees at most; odd unless ``causal``.
        dilation: d, the step between the keys a query sees (1: a solid band). Default 1.
        causal: the decoder's one-sided band (default False: the encoder's centred one).
        queries: optional 1-D int tensor of query positions: only their rows, ``(len(queries), N)``.
        device: where to build the mask. Default: the CPU (or ``queries``' device).

    Example::

        >>> convolutional_mask(5, 2, dilation=2, causal=True).int()
        tensor([[1, 0, 0, 0, 0],
                [0, 1, 0, 0, 0],
                [1, 0, 1, 0, 0],
                [0, 1, 0, 1, 0],
                [0, 0, 1, 0, 1]], dtype=torch.int32)
    """
    owner = "convolutional_mask"
    n = check_int(n, "n", owner)
    kernel_size = check_int(kernel_size, "kernel_size", owner)
    dilation = check_int(dilation, "dilation", owner)
    causal = check_bool(causal, "causal", owner)
    if not causal and kernel_size % 2 == 0:
        raise ValueError(f"The 'kernel_size' parameter of {owner} must be an odd int when causal is False "
                         f"(a kernel centred on the query). Got {kernel_size} instead.")
    i, _ = _query_key_grid(n, queries, device, owner)
    half = kernel_size // 2
    m = torch.arange(kernel_size, device=i.device) if causal else torch.arange(-half, half + 1, device=i.device)
    keys = i - dilation * m if causal else i + dilation * m  # (N_q, K): the kernel's taps around each query
    inside = (keys >= 0) & (keys < n)  # taps past either end are dropped (zero padding)
    rows = torch.arange(len(i), device=i.device)[:, None].expand_as(keys)  # (N_q, K)
    mask = torch.zeros(len(i), n, dtype=torch.bool, device=i.device)  # written tap by tap: O(N_q·K), no N² arithmetic
    mask[rows[inside], keys[inside]] = True
    return mask


def selected_tokens_mask(n: int, selected, *, causal: bool = False, queries: torch.Tensor | None = None,
                         device=None) -> torch.Tensor:
    """Boolean ``(N, N)`` mask whose selected rows are full: those queries see every key (fig. 12.15g).

    The other rows are empty; combine with a band (``convolutional_mask(...) | ...``) for
    the book's picture. With ``causal`` a selected query sees every key up to itself.

    Args:
        n: N, the number of tokens, a positive int.
        selected: the selected query positions, ints in [0, N) (a list or a 1-D int tensor).
        causal: selected queries see only earlier keys and themselves (the decoder case). Default False.
        queries: optional 1-D int tensor of query positions: only their rows, ``(len(queries), N)``.
        device: where to build the mask. Default: the CPU (or ``queries``' device).
    """
    owner = "selected_tokens_mask"
    n = check_int(n, "n", owner)
    causal = check_bool(causal, "causal", owner)
    if isinstance(selected, torch.Tensor):
        chosen = selected.tolist() if selected.dim() == 1 and not selected.is_floating_point() else None
    else:
        chosen = list(selected) if isinstance(selected, (list, tuple, range)) else None
    if chosen is None or not all(is_int(s) and 0 <= s < n for s in chosen):
        shown = selected if isinstance(selected, (list, tuple, range, int, str)) else type(selected).__name__
        raise ValueError(f"The 'selected' parameter of {owner} must be a list of positions in [0, {n}). "
                         f"Got {shown!r} instead.")
    i, j = _query_key_grid(n, queries, device, owner)
    rows = torch.isin(i, torch.tensor(chosen, dtype=torch.long, device=i.device))  # (N_q, 1)
    return rows & (j <= i) if causal else rows & (j >= 0)


def global_tokens_mask(n: int, n_global: int, *, queries: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """Boolean ``(N, N)`` mask of ``n_global`` global tokens: the first rows and columns are full (fig. 12.15h).

    The global tokens (positions 0 ... n_global - 1) see every token, every token sees
    them, and they see each other; the other entries are False. Combine with a band
    for the book's picture: ``convolutional_mask(n, 3) | global_tokens_mask(n, 2)``.

    Args:
        n: N, the number of tokens, a positive int.
        n_global: how many leading tokens are global, an int in [0, N].
        queries: optional 1-D int tensor of query positions: only their rows, ``(len(queries), N)``.
        device: where to build the mask. Default: the CPU (or ``queries``' device).
    """
    n = check_int(n, "n", "global_tokens_mask")
    n_global = check_int(n_global, "n_global", "global_tokens_mask", minimum=0, maximum=n)
    i, j = _query_key_grid(n, queries, device, "global_tokens_mask")
    return (i < n_global) | (j < n_global)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *,
              causal: bool = False, dropout: float = 0.0, need_weights: bool = False,
              generator: torch.Generator | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention in row form: ``softmax(Q Kᵀ / √D_q) V`` over the keys.

    Args:
        q: queries ``(..., N_q, D_q)``; k: keys ``(..., N_k, D_q)``; v: values ``(..., N_k, D_v)``,
            all of one floating-point dtype.
        mask: optional, broadcastable to ``(..., N_q, N_k)``: boolean, True = may attend, or
            additive (float32 or the queries' dtype), added to the scores (0 = may attend,
            -inf = may not). A query that may attend to no key gets a zero output.
        causal: also forbid query i from seeing keys after it (bottom-right aligned).
        dropout: dropout on the attention weights (training only; 0 by default).
        need_weights: also return the attention weights, computed by the written-out
            softmax (in float32 at least, whatever the inputs' dtype). Default False:
            :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels),
            which does not form them.
        generator: randomness for attention dropout on the written-out path.

    Returns:
        The output ``(..., N_q, D_v)``; with ``need_weights``, ``(output, weights (..., N_q, N_k))``.
    """
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)
            and _fit(q.shape, k.shape, v.shape) and q.dtype == k.dtype == v.dtype and q.is_floating_point()):
        _refuse_qkv(q, k, v)
    if mask is not None:
        _check_mask(mask, (*q.shape[:-1], k.shape[-2]), q.dtype, "mask", "attention")
    return _attend(q, k, v, mask, causal=causal, dropout=dropout, need_weights=need_weights, generator=generator)


def _fit(qs: torch.Size, ks: torch.Size, vs: torch.Size) -> bool:
    """Whether queries, keys and values of these shapes fit: ``(..., N_q, D_q)``, ``(..., N_k, D_q)``, ``(..., N_k, D_v)``."""
    return len(qs) == len(ks) >= 2 and qs[-1] == ks[-1] and qs[:-2] == ks[:-2] and ks[:-1] == vs[:-1]


def _refuse_qkv(q, k, v, owner: str = "attention") -> None:
    """Raise the message that names what is wrong with ``q``, ``k`` or ``v`` (called when a quick check failed)."""
    check_tensor(q, "q", owner, shape=(..., "N_q", "D_q"), dtype="float")
    batch = tuple(q.shape[:-2])
    check_tensor(k, "k", owner, shape=(*batch, "N_k", q.shape[-1]), dtype=q.dtype)  # keys: the queries' D_q
    check_tensor(v, "v", owner, shape=(*k.shape[:-1], "D_v"), dtype=q.dtype)  # one value per key
    raise AssertionError(f"{owner}: inputs refused by the quick check but not by the full one")


def _check_mask(mask, shape: tuple[int, ...], dtype: torch.dtype, name: str, owner: str) -> None:
    """A boolean or additive mask broadcastable to ``shape`` = ``(..., N_q, N_k)``, the scores' shape."""
    if not isinstance(mask, torch.Tensor) or mask.dtype not in (torch.bool, torch.float32, dtype):
        shown = f"dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"The {name!r} parameter of {owner} must be a boolean tensor or an additive "
                        f"{'torch.float32' if dtype == torch.float32 else f'torch.float32 or {dtype}'} tensor. "
                        f"Got {shown} instead.")
    if mask.dim() > len(shape) or any(m not in (1, n) for m, n in zip(reversed(mask.shape), reversed(shape))):
        raise ValueError(f"The {name!r} parameter of {owner} must be broadcastable to (..., N_q, N_k) = "
                         f"{tuple(shape)}. Got shape {tuple(mask.shape)} instead.")


def _restrict(mask: torch.Tensor | None, allowed: torch.Tensor) -> torch.Tensor:
    """``mask`` (boolean or additive) further limited to the keys where the boolean ``allowed`` is True."""
    if mask is None:
        return allowed
    if mask.dtype == torch.bool:
        return mask & allowed
    return torch.where(allowed, mask, float("-inf"))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, *, causal: bool,
            dropout: float, need_weights: bool, generator: torch.Generator | None = None):
    """:func:`attention` on arguments known to fit together."""
    n_q, n_k = q.shape[-2], k.shape[-2]
    if not need_weights and causal and mask is None and n_q == n_k:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
    if causal:
        mask = _restrict(mask, _causal_mask(n_q, n_k, q.device))
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    # bfloat16 keeps 8 bits of a score: one near 50 is rounded by up to 0.125, which moves its
    # weight by up to 13 %; so scores, softmax and weighted sum run in float32 (float64 stays
    # float64), as SDPA's kernels accumulate, and only the results are cast back
    dtype = q.dtype
    low = dtype in (torch.bfloat16, torch.float16)
    if low:
        q, k, v = q.float(), k.float(), v.float()
    with _without_autocast(q.device.type):  # autocast would run the products in bfloat16 again
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N_q, N_k)
        blind = None
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
            # a query that may see no key: its softmax would be 0/0; its weights and output are 0, as SDPA's
            blind = scores.amax(-1, keepdim=True) == float("-inf")  # (..., N_q, 1)
            scores = scores.masked_fill(blind, 0.0)
        weights = torch.softmax(scores, dim=-1)  # each row (query) sums to one over the keys
        if blind is not None:
            weights = weights.masked_fill(blind, 0.0)
        if dropout > 0:
            keep = torch.rand(weights.shape, generator=generator, device=weights.device) >= dropout
            weights = weights * keep / (1 - dropout)
        out = weights @ v  # (..., N_q, D_v)
    return (out.to(dtype), weights.to(dtype)) if low else (out, weights)


def _without_autocast(device_type: str):
    """A block in which autocast is off on ``device_type`` (a no-op where it is off already)."""
    return torch.autocast(device_type, enabled=False) if is_autocasting(device_type) else contextlib.nullcontext()


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
        generator: the initial weights' randomness, a ``torch.Generator`` or an int
            seed (keyword-only); torch's default for linear layers, U(-1/√D, 1/√D).
            Default: torch's global generator.

    Shape:
        ``x``: ``(B, N, D)``; ``context``: ``(B, M, D)`` -> ``(B, N, D)``.

    Example::

        >>> mha = MultiHeadAttention(16, 4, generator=0)
        >>> mha(torch.zeros(2, 5, 16)).shape
        torch.Size([2, 5, 16])
        >>> out, weights = mha(torch.zeros(2, 5, 16), need_weights=True)
        >>> weights.shape  # (B, H, N, M): one attention matrix per head, rows sum to one
        torch.Size([2, 4, 5, 5])
    """

    def __init__(self, d_model: int, n_heads: int, *, bias: bool = True, dropout: float = 0.0,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "MultiHeadAttention"
        d_model = check_int(d_model, "d_model", owner)
        n_heads = check_int(n_heads, "n_heads", owner)
        if d_model % n_heads:
            raise ValueError(f"The 'n_heads' parameter of {owner} must divide d_model = {d_model}. "
                             f"Got {n_heads} instead.")
        self.dropout = check_float(dropout, "dropout", owner, low=0.0, high=1.0, high_open=True)
        generator = as_generator(generator, owner)
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        with initialised_from(self, generator):  # nn.Linear's default, drawn from the generator
            self.q_proj = nn.Linear(d_model, d_model, bias=bias)
            self.k_proj = nn.Linear(d_model, d_model, bias=bias)
            self.v_proj = nn.Linear(d_model, d_model, bias=bias)
            self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(q_proj(x), k_proj(x), v_proj(x))`` as one product with the stacked [Ω_q; Ω_k; Ω_v].

        One (D -> 3D) matrix multiplication instead of three (D -> D) ones: the kernel a
        fused-QKV implementation such as GPT-2's runs; same numbers up to rounding.
        """
        weight, bias = self._stacked_in_proj()
        return F.linear(x, weight, bias).split(self.d_model, dim=-1)  # 3 x (B, N, D)

    def _stacked_in_proj(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[Ω_q; Ω_k; Ω_v] ``(3D, D)`` and [β_q; β_k; β_v] ``(3D,)`` (None without biases): torch's in_proj."""
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3D, D)
        bias = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.k_proj.bias,
                                                                self.v_proj.bias])  # (3D,)
        return weight, bias

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, N, D/H)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *, mask: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, causal: bool = False, cache: dict | None = None,
                need_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``x`` to itself (or to ``context``).

        Args:
            x: the queries' sequence ``(B, N, D)``.
            context: the keys' and values' sequence ``(B, M, D)``; None for self-attention.
            mask: attention mask, broadcastable to ``(B, H, N, M)`` (a 2-D mask is
                ``(N, M)``): boolean, True = may attend, or additive as in :func:`attention`.
            key_padding_mask: boolean ``(B, M)``, True for real keys and False for
                padding that no query may attend to.
            causal: forbid attending to later positions (decoder self-attention).
            cache: a dict that keeps the keys and values seen so far (entries "k", "v",
                ``(B, H, T, D/H)``); new keys and values are appended, so a decoder can
                feed one token at a time. For cross-attention the context's keys and
                values are computed once and reused.
            need_weights: also return every head's attention weights, from the
                written-out softmax (as torch's ``need_weights=True,
                average_attn_weights=False``). Default False: the fused
                ``scaled_dot_product_attention``, which does not form them.

        Returns:
            The output ``(B, N, D)``; with ``need_weights``, ``(output, weights (B, H, N, M))``,
            each row of the weights (a query) summing to one over the keys (or zero, for a
            query that may attend to no key).
        """
        owner, dtype = "MultiHeadAttention", self.out_proj.weight.dtype
        if not (isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[2] == self.d_model and x.dtype == dtype):
            check_input(x, "x", owner, shape=("B", "N", self.d_model), dtype=dtype)
        if context is not None and not (isinstance(context, torch.Tensor) and context.dim() == 3
                                        and context.shape[0] == x.shape[0] and context.shape[2] == self.d_model
                                        and context.dtype == dtype):
            check_input(context, "context", owner, shape=(x.shape[0], "M", self.d_model), dtype=dtype)
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
        b, n, m = x.shape[0], x.shape[1], k.shape[2]
        if mask is not None:
            _check_mask(mask, (b, self.n_heads, n, m), q.dtype, "mask", owner)
        if key_padding_mask is not None:
            if not (isinstance(key_padding_mask, torch.Tensor) and key_padding_mask.shape == (b, m)):
                check_tensor(key_padding_mask, "key_padding_mask", owner, shape=(b, m))  # (B, M)
            padding = key_padding_mask.bool()[:, None, None, :]  # (B, M) -> (B, 1, 1, M)
            mask = _restrict(mask, padding)
        dropout = self.dropout if self.training else 0.0
        result = _attend(q, k, v, mask, causal=causal, dropout=dropout, need_weights=need_weights)
        out, weights = result if need_weights else (result, None)
        out = self.out_proj(out.transpose(1, 2).reshape(b, n, self.d_model))  # concat heads: (B, N, D)
        return (out, weights) if need_weights else out

    def book_parameters(self) -> dict[str, torch.Tensor]:
        """The weights as the book names them, for :func:`book_multi_head_attention`.

        Returns:
            ``{"omega_v", "beta_v", "omega_q", "beta_q", "omega_k", "beta_k", "omega_c",
            "beta_c"}``, every head's rows stacked (the book's Ω act on columns, as
            ``nn.Linear``'s weights do). Requires ``bias=True``.
        """
        if self.q_proj.bias is None:
            raise ValueError("The 'bias' parameter of MultiHeadAttention must be True for book_parameters. "
                             "Got False instead.")
        return {"omega_v": self.v_proj.weight, "beta_v": self.v_proj.bias,
                "omega_q": self.q_proj.weight, "beta_q": self.q_proj.bias,
                "omega_k": self.k_proj.weight, "beta_k": self.k_proj.bias,
                "omega_c": self.out_proj.weight, "beta_c": self.out_proj.bias}

    def to_torch(self) -> nn.MultiheadAttention:
        """A :class:`torch.nn.MultiheadAttention` (``batch_first=True``) holding copies of these weights.

        Ω_q, Ω_k and Ω_v are stacked into torch's ``in_proj_weight`` (and the biases into
        ``in_proj_bias``); ``out_proj`` is copied; dtype, device and dropout are this
        layer's. The two compute the same function, but torch's boolean masks say where
        a query may *not* attend (pass ``~mask``) and it returns ``(output, weights)``.

        Example::

            >>> mha = MultiHeadAttention(8, 2, generator=0)
            >>> x = torch.randn(1, 3, 8)
            >>> torch.allclose(mha(x), mha.to_torch()(x, x, x)[0], atol=1e-6)
            True
        """
        weight, bias = self._stacked_in_proj()
        ref = nn.MultiheadAttention(self.d_model, self.n_heads, dropout=self.dropout, bias=bias is not None,
                                    batch_first=True, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            ref.in_proj_weight.copy_(weight)
            ref.out_proj.weight.copy_(self.out_proj.weight)
            if bias is not None:
                ref.in_proj_bias.copy_(bias)
                ref.out_proj.bias.copy_(self.out_proj.bias)
        return ref.train(self.training)


@contextlib.contextmanager
def record_attention_weights(modules):
    """Collect the attention weights of ``modules`` while a model runs.

    Inside the block every call of one of the given :class:`MultiHeadAttention` layers
    runs with ``need_weights=True`` and its weights ``(B, H, N, M)`` (detached) are
    appended to the list the block yields, in the order of the calls; the callers still
    receive the output alone, so the model runs unchanged. Leaving the block removes
    the hooks.

    Args:
        modules: the :class:`MultiHeadAttention` layers to watch, e.g.
            ``[layer.self_attn for layer in model.layers]``.

    Example::

        >>> layers = [MultiHeadAttention(8, 2, generator=s) for s in range(2)]
        >>> with record_attention_weights(layers) as weights:
        ...     _ = layers[1](layers[0](torch.zeros(1, 3, 8)))
        >>> [tuple(w.shape) for w in weights]
        [(1, 2, 3, 3), (1, 2, 3, 3)]
    """
    modules = list(modules)
    for m in modules:
        if not isinstance(m, MultiHeadAttention):
            raise TypeError(f"The 'modules' parameter of record_attention_weights must hold MultiHeadAttention "
                            f"layers. Got {type(m).__name__} instead.")
    weights: list[torch.Tensor] = []

    def ask(module, args, kwargs):
        return args, {**kwargs, "need_weights": True}

    def keep(module, args, kwargs, output):
        out, w = output
        weights.append(w.detach())
        return out

    handles = [h for m in modules for h in (m.register_forward_pre_hook(ask, with_kwargs=True),
                                            m.register_forward_hook(keep, with_kwargs=True))]
    try:
        yield weights
    finally:
        for h in handles:
            h.remove()
