"""Attention whose cost follows the interaction matrix's non-zeros (UDL §12.9, fig. 12.15).

Masked dense attention (:func:`udl.nn.attention.attention` with a boolean mask) forms all
N_q × N_k scores k_jᵀ q_i and throws most away: its time and memory grow as N² whatever
the mask. Here the queries are cut into chunks of C consecutive positions, and each chunk
gathers only the keys that one of its queries may see::

    U_c = {j : mask[i, j] for some i in chunk c}                  (the chunk's keys)
    out_i = Σ_{j ∈ U_c} softmax_j[k_jᵀ q_i / √D_q] v_j   over the allowed j only

so a band of K keys per query (fig. 12.15c-f) costs about C·(C + K) scores per chunk, a
total linear in N, computed as small dense matrix products (fast on a CPU and a GPU
alike). A query that may see no key gets a zero output, as :func:`attention` gives. The
pattern is read chunk by chunk from a function of the query positions (every mask builder
of :mod:`udl.nn.attention` takes ``queries=``), so the N×N mask is never formed.

Example::

    >>> from udl.nn.attention import attention, convolutional_mask
    >>> pattern = SparsePattern(lambda rows: convolutional_mask(50, 5, queries=rows), n_queries=50, chunk=8)
    >>> q, k, v = torch.randn(3, 2, 50, 4).unbind(0)
    >>> dense = attention(q, k, v, convolutional_mask(50, 5))
    >>> bool((sparse_attention(q, k, v, pattern) - dense).abs().max() < 1e-5)
    True
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from udl.nn.attention import _fit, _refuse_qkv
from udl.validate import check_int, check_tensor

__all__ = ["SparsePattern", "sparse_attention"]


class SparsePattern:
    """Which keys each chunk of consecutive queries may see: the non-zeros of a boolean mask.

    Args:
        mask: a boolean ``(N_q, N_k)`` tensor (True: query i may attend to key j), or a
            function that takes a 1-D int tensor of query positions and returns their
            rows ``(len(positions), N_k)``, such as
            ``lambda rows: convolutional_mask(n, 128, causal=True, queries=rows)``.
        n_queries: N_q; needed with a function, read from the tensor otherwise.
        n_keys: N_k. Default: N_q (self-attention).
        chunk: C, the queries handled together (default 64): larger chunks mean fewer,
            larger products but more scores computed beside a band.
        device: where a function's rows are built. Default: the CPU.

    Attributes:
        starts: the first query of each chunk.
        keys: per chunk, the sorted positions of the keys its queries may see ``(U_c,)``.
        allowed: per chunk, ``(C_c, U_c)``: which of those keys each query may see.
    """

    def __init__(self, mask: torch.Tensor | Callable[[torch.Tensor], torch.Tensor], *, n_queries: int | None = None,
                 n_keys: int | None = None, chunk: int = 64, device=None):
        owner = "SparsePattern"
        self.chunk = check_int(chunk, "chunk", owner)
        if isinstance(mask, torch.Tensor):
            check_tensor(mask, "mask", owner, ndim=2, dtype=torch.bool)
            self.n_queries, self.n_keys = mask.shape
            rows_of, device = (lambda rows: mask[rows]), mask.device
        elif callable(mask):
            if n_queries is None:
                raise TypeError(f"The 'n_queries' parameter of {owner} must be an int when mask is a function. "
                                f"Got None instead.")
            self.n_queries = check_int(n_queries, "n_queries", owner)
            self.n_keys = self.n_queries if n_keys is None else check_int(n_keys, "n_keys", owner)
            rows_of = mask
        else:
            raise TypeError(f"The 'mask' parameter of {owner} must be a boolean torch.Tensor or a function of "
                            f"query positions. Got {type(mask).__name__} instead.")
        self.starts, self.keys, self.allowed, self._blind = [], [], [], []
        for start in range(0, self.n_queries, self.chunk):
            positions = torch.arange(start, min(start + self.chunk, self.n_queries), device=device)
            rows = rows_of(positions)  # (C, N_k)
            if not (isinstance(rows, torch.Tensor) and rows.dtype == torch.bool
                    and rows.shape == (len(positions), self.n_keys)):
                shown = f"shape {tuple(rows.shape)}, {rows.dtype}" if isinstance(rows, torch.Tensor) else \
                    type(rows).__name__
                raise ValueError(f"The 'mask' parameter of {owner} must return a boolean ({len(positions)}, "
                                 f"{self.n_keys}) tensor for {len(positions)} queries. Got {shown} instead.")
            keys = rows.any(0).nonzero().squeeze(1)  # (U_c,): the keys any query of the chunk sees
            allowed = rows[:, keys]  # (C, U_c)
            blind = ~allowed.any(1, keepdim=True)  # (C, 1): queries that see no key
            self.starts.append(start)
            self.keys.append(keys)
            self.allowed.append(allowed)
            self._blind.append(blind if bool(blind.any()) else None)

    @property
    def nnz(self) -> int:
        """The non-zeros of the mask: the (query, key) pairs that interact."""
        return sum(int(a.sum()) for a in self.allowed)

    @property
    def computed(self) -> int:
        """The scores :func:`sparse_attention` computes, Σ_c C_c·U_c (N_q·N_k for masked dense attention)."""
        return sum(a.numel() for a in self.allowed)

    def nnz_per_row(self) -> torch.Tensor:
        """How many keys each query may see, ``(N_q,)``."""
        return torch.cat([a.sum(1) for a in self.allowed]) if self.allowed else torch.zeros(0, dtype=torch.long)

    def __repr__(self) -> str:
        return (f"SparsePattern({self.n_queries}x{self.n_keys}, chunk={self.chunk}: {self.nnz} non-zeros, "
                f"{self.computed} scores computed)")


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
    """Scaled dot-product attention over the non-zeros of ``pattern`` only (eq. 12.7, row form).

    Equal, in values and gradients, to ``attention(q, k, v, mask)`` with the boolean mask
    the pattern was built from, but its time and memory follow the pattern's
    :attr:`SparsePattern.computed` scores instead of N_q·N_k.

    Args:
        q: queries ``(..., N_q, D_q)``; k: keys ``(..., N_k, D_q)``; v: values ``(..., N_k, D_v)``,
            all of one floating-point dtype and on the pattern's device.
        pattern: which keys each query may see, a :class:`SparsePattern` of ``N_q × N_k``.

    Returns:
        The output ``(..., N_q, D_v)`` in the inputs' dtype (formed in float32 for bfloat16 and
        float16 inputs, as :func:`~udl.nn.attention.attention` does); a query that may see no
        key gets zeros.
    """
    owner = "sparse_attention"
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)
            and _fit(q.shape, k.shape, v.shape) and q.dtype == k.dtype == v.dtype and q.is_floating_point()):
        _refuse_qkv(q, k, v, owner)
    if not isinstance(pattern, SparsePattern):
        raise TypeError(f"The 'pattern' parameter of {owner} must be a SparsePattern. "
                        f"Got {type(pattern).__name__} instead.")
    if (pattern.n_queries, pattern.n_keys) != (q.shape[-2], k.shape[-2]):
        raise ValueError(f"The 'pattern' parameter of {owner} must be of N_q x N_k = {q.shape[-2]}x{k.shape[-2]}. "
                         f"Got {pattern.n_queries}x{pattern.n_keys} instead.")
    if pattern.keys and pattern.keys[0].device != q.device:
        raise ValueError(f"The 'pattern' parameter of {owner} must be on the queries' device ({q.device}). "
                         f"Got {pattern.keys[0].device} instead.")
    dtype = q.dtype
    if dtype in (torch.bfloat16, torch.float16):  # scores near 40 keep 8 bits in bfloat16: form them in float32
        q, k, v = q.float(), k.float(), v.float()
    scale = 1 / math.sqrt(q.shape[-1])
    outputs = []
    for start, keys, allowed, blind in zip(pattern.starts, pattern.keys, pattern.allowed, pattern._blind):
        q_c = q[..., start:start + allowed.shape[0], :]  # (..., C, D_q)
        k_c = k.index_select(-2, keys)  # (..., U, D_q): only the keys this chunk may see
        v_c = v.index_select(-2, keys)  # (..., U, D_v)
        scores = (q_c @ k_c.transpose(-2, -1)) * scale  # (..., C, U)
        scores = scores.masked_fill(~allowed, float("-inf"))
        if blind is not None:  # a query that sees no key: 0/0 in the softmax; zero weights, as attention() gives
            scores = scores.masked_fill(blind, 0.0)
        weights = torch.softmax(scores, dim=-1)  # over the chunk's keys: the others have weight 0 anyway
        if blind is not None:
            weights = weights.masked_fill(blind, 0.0)
        outputs.append(weights @ v_c)  # (..., C, D_v)
    if not outputs:
        return q.new_zeros((*q.shape[:-1], v.shape[-1]), dtype=dtype)
    return torch.cat(outputs, dim=-2).to(dtype)  # (..., N_q, D_v)
