"""Transformer layers and embeddings (UDL §12.4-12.5, figs. 12.7 and 12.9).

A transformer layer is multi-head self-attention followed by a fully connected
network applied to every token separately, each wrapped in a residual connection and
followed by layer normalisation (fig. 12.7, the "post-LN" order of the original)::

    X ← LayerNorm[X + MhSa[X]]
    X ← LayerNorm[X + mlp[X]]          (the same two-layer ReLU network for each token)

The "pre-LN" order used by GPT-2 and most later models normalises the input of each
branch instead, ``X ← X + MhSa[LayerNorm[X]]``, and trains more stably when deep
(``norm_first=True``). A decoder layer of an encoder-decoder model adds a
cross-attention block between the two, with queries from the decoder and keys and
values from the encoder's output (fig. 12.13).

Text enters as tokens; each token index selects a column of the embedding matrix Ω_e
(equivalently Ω_e times a one-hot vector, fig. 12.9), and the position is added as a
learned or sinusoidal embedding.

Every layer here takes a keyword-only ``generator=`` (a ``torch.Generator`` or an int
seed) for its initial weights and leaves torch's global generator alone; a model that
builds them inside :func:`udl.nn.init.initialised_from` draws them all from its own.
:meth:`TransformerLayer.to_torch` gives the equal torch layer, for checks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.attention import MultiHeadAttention
from udl.nn.init import initialised_from
from udl.validate import as_generator, check_bool, check_choice, check_float, check_input, check_int, check_tensor

__all__ = ["TransformerLayer", "TokenEmbedding", "LearnedPositions", "sinusoidal_positions",
           "check_transformer_config", "check_token_ids"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}


class TransformerLayer(nn.Module):
    """One transformer layer: attention and MLP blocks with residual connections and LayerNorm.

    Args:
        d_model: D, the embedding size.
        n_heads: H, attention heads (must divide D).
        d_mlp: the MLP's hidden width. Default ``4 · D``.
        dropout: dropout on each block's output before it joins the residual stream (default 0);
            also the default of the next two.
        attention_dropout: dropout on the attention weights. Default: ``dropout``.
        mlp_dropout: dropout on the MLP's hidden layer, as torch's layer has. Default:
            ``dropout``. GPT-2 and BERT have none there (0).
        norm_first: False (default) is the book's post-LN layer of fig. 12.7; True is pre-LN.
        activation: the MLP's activation: "relu" (default), "gelu" or "gelu_tanh".
        cross_attention: add a cross-attention block (decoder of an encoder-decoder).
        bias: biases in the linear layers (default True).
        eps: LayerNorm's ε (default 1e-5).
        generator: the initial weights' randomness, a ``torch.Generator`` or an int seed
            (keyword-only): torch's defaults (linear layers U(-1/√fan_in, 1/√fan_in),
            LayerNorm γ = 1, β = 0). Default: torch's global generator.

    Shape:
        ``x``: ``(B, N, D)``; ``context``: ``(B, M, D)`` -> ``(B, N, D)``.

    Example::

        >>> TransformerLayer(16, 4, generator=0)(torch.zeros(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, d_mlp: int | None = None, *, dropout: float = 0.0,
                 attention_dropout: float | None = None, mlp_dropout: float | None = None,
                 norm_first: bool = False, activation: str = "relu", cross_attention: bool = False,
                 bias: bool = True, eps: float = 1e-5, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "TransformerLayer"
        d_model = check_int(d_model, "d_model", owner)
        d_mlp = 4 * d_model if d_mlp is None else check_int(d_mlp, "d_mlp", owner)
        self.p_drop = check_float(dropout, "dropout", owner, low=0.0, high=1.0, high_open=True)
        self.p_attn = p_attn = self.p_drop if attention_dropout is None else \
            check_float(attention_dropout, "attention_dropout", owner, low=0.0, high=1.0, high_open=True)
        self.p_mlp = self.p_drop if mlp_dropout is None else \
            check_float(mlp_dropout, "mlp_dropout", owner, low=0.0, high=1.0, high_open=True)
        check_choice(activation, "activation", owner, tuple(_ACTIVATIONS))
        for name, flag in (("norm_first", norm_first), ("cross_attention", cross_attention)):
            if not isinstance(flag, bool):
                raise TypeError(f"The {name!r} parameter of {owner} must be a bool. Got {flag!r} instead.")
        generator = as_generator(generator, owner)
        self.norm_first, self.activation = norm_first, activation
        with initialised_from(self, generator):  # every sub-layer drawn from the generator on leaving
            self.self_attn = MultiHeadAttention(d_model, n_heads, bias=bias, dropout=p_attn)
            self.norm1 = nn.LayerNorm(d_model, eps=eps, bias=bias)
            self.cross_attn = MultiHeadAttention(d_model, n_heads, bias=bias, dropout=p_attn) \
                if cross_attention else None
            self.norm_cross = nn.LayerNorm(d_model, eps=eps, bias=bias) if cross_attention else None
            self.linear1 = nn.Linear(d_model, d_mlp, bias=bias)
            self.linear2 = nn.Linear(d_mlp, d_model, bias=bias)
            self.norm2 = nn.LayerNorm(d_model, eps=eps, bias=bias)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p_drop, self.training) if self.p_drop > 0 else x

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The per-token fully connected network: ``linear2(act(linear1(x)))`` (dropout ``mlp_dropout`` on the hidden layer)."""
        h = _ACTIVATIONS[self.activation](self.linear1(x))
        return self.linear2(F.dropout(h, self.p_mlp, self.training) if self.p_mlp > 0 else h)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *, mask: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None, causal: bool = False,
                context_mask: torch.Tensor | None = None, context_padding_mask: torch.Tensor | None = None,
                cache: dict | None = None) -> torch.Tensor:
        """Apply the layer.

        Args:
            x: the tokens' embeddings ``(B, N, D)``.
            context: the encoder's output ``(B, M, D)`` (layers built with cross-attention only).
            mask: self-attention mask, broadcastable to ``(B, H, N, N)``, True = may attend.
            padding_mask: ``(B, N)``, False at padding tokens (no token attends to them).
            causal: masked self-attention (each token sees itself and earlier tokens).
            context_mask: cross-attention mask, broadcastable to ``(B, H, N, M)``.
            context_padding_mask: ``(B, M)``, False at the context's padding tokens.
            cache: a dict for step-by-step decoding; keys "self" and "cross" are filled in.
        """
        linear1 = self.linear1
        if not (isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[2] == linear1.in_features
                and x.dtype == linear1.weight.dtype):
            check_input(x, "x", "TransformerLayer", shape=("B", "N", linear1.in_features), dtype=linear1.weight.dtype)
        if (context is None) != (self.cross_attn is None):
            wanted = "None (the layer has no cross-attention)" if self.cross_attn is None \
                else "a tensor (B, M, D) (the layer has cross-attention)"
            raise ValueError(f"The 'context' parameter of TransformerLayer must be {wanted}. "
                             f"Got {'None' if context is None else type(context).__name__} instead.")
        self_cache = cache.setdefault("self", {}) if cache is not None else None
        cross_cache = cache.setdefault("cross", {}) if cache is not None else None

        def attend(h):
            return self._drop(self.self_attn(h, mask=mask, key_padding_mask=padding_mask, causal=causal,
                                             cache=self_cache))

        def cross(h):
            return self._drop(self.cross_attn(h, context, mask=context_mask, key_padding_mask=context_padding_mask,
                                              cache=cross_cache))

        def mlp(h):
            return self._drop(self.mlp(h))

        blocks = [(attend, self.norm1)]
        if self.cross_attn is not None:
            blocks.append((cross, self.norm_cross))
        blocks.append((mlp, self.norm2))
        for f, norm in blocks:
            x = x + f(norm(x)) if self.norm_first else norm(x + f(x))
        return x

    def to_torch(self) -> nn.TransformerEncoderLayer | nn.TransformerDecoderLayer:
        """The equal torch layer (``batch_first=True``), holding copies of these weights.

        A layer without cross-attention becomes :class:`torch.nn.TransformerEncoderLayer`;
        one with it :class:`torch.nn.TransformerDecoderLayer`, whose ``multihead_attn``
        is our ``cross_attn`` and whose ``norm2`` / ``norm3`` are our ``norm_cross`` /
        ``norm2``. Sizes, order (``norm_first``), activation, biases, ε, dropout, dtype
        and device are this layer's. Call it as torch does: ``ref(x, src_mask=...)`` or
        ``ref(x, context, tgt_mask=...)``, with boolean masks True where a query may *not*
        attend.

        Example::

            >>> layer = TransformerLayer(8, 2, generator=0).eval()
            >>> x = torch.randn(1, 3, 8)
            >>> torch.allclose(layer(x), layer.to_torch()(x), atol=1e-6)
            True
        """
        if not self.p_attn == self.p_mlp == self.p_drop:
            raise ValueError(f"TransformerLayer.to_torch needs one dropout rate at every site (torch's layer has one); "
                             f"this layer has dropout={self.p_drop:g}, attention_dropout={self.p_attn:g}, "
                             f"mlp_dropout={self.p_mlp:g}.")
        # torch knows "relu" and "gelu" by name; the tanh approximation goes in as a function
        activation = self.activation if self.activation in ("relu", "gelu") else _ACTIVATIONS[self.activation]
        kw = dict(d_model=self.self_attn.d_model, nhead=self.self_attn.n_heads,
                  dim_feedforward=self.linear1.out_features, dropout=self.p_drop, activation=activation,
                  layer_norm_eps=self.norm1.eps, batch_first=True, norm_first=self.norm_first,
                  bias=self.linear1.bias is not None, device=self.linear1.weight.device,
                  dtype=self.linear1.weight.dtype)
        if self.cross_attn is None:
            ref = nn.TransformerEncoderLayer(**kw)
            pairs = {"norm1": self.norm1, "norm2": self.norm2}
        else:
            ref = nn.TransformerDecoderLayer(**kw)
            ref.multihead_attn.load_state_dict(self.cross_attn.to_torch().state_dict())
            pairs = {"norm1": self.norm1, "norm2": self.norm_cross, "norm3": self.norm2}  # torch's norm2: after cross
        ref.self_attn.load_state_dict(self.self_attn.to_torch().state_dict())
        for name, ours in {**pairs, "linear1": self.linear1, "linear2": self.linear2}.items():
            getattr(ref, name).load_state_dict(ours.state_dict())
        return ref.train(self.training)


class _NormalTable(nn.Module):
    """A learned ``(rows, D)`` table, ``weight``, drawn from N(0, std²): token and position embeddings."""

    def __init__(self, rows: int, d_model: int, std: float, generator: torch.Generator | int | None, owner: str):
        super().__init__()
        self.std = check_float(std, "std", owner, low=0.0, low_open=True)
        with initialised_from(self, as_generator(generator, owner)):  # reset_parameters draws it on leaving
            self.weight = nn.Parameter(torch.empty(rows, d_model))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw every entry from N(0, std²)."""
        nn.init.normal_(self.weight, std=self.std, generator=generator)


class TokenEmbedding(_NormalTable):
    """Token embeddings: column t of Ω_e for token t, i.e. Ω_e times a one-hot vector (fig. 12.9).

    The matrix is stored as ``weight`` of shape ``(|V|, D)`` (rows are the book's
    columns), as :class:`torch.nn.Embedding` stores it, so the two are interchangeable.

    Args:
        vocab_size: |V|.
        d_model: D.
        std: the standard deviation of the initial N(0, std²) entries (default 0.02).
        generator: their randomness, a ``torch.Generator`` or an int seed (keyword-only).
            Default: torch's global generator.

    Shape:
        ``tokens``: ``(B, N)`` integers -> ``(B, N, D)``.
    """

    def __init__(self, vocab_size: int, d_model: int, *, std: float = 0.02,
                 generator: torch.Generator | int | None = None):
        owner = "TokenEmbedding"
        vocab_size = check_int(vocab_size, "vocab_size", owner)
        d_model = check_int(d_model, "d_model", owner)
        super().__init__(vocab_size, d_model, std, generator, owner)
        self.vocab_size, self.d_model = vocab_size, d_model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The rows of Ω_e (stored as ``weight``) that ``tokens`` name: ``(...)`` ids -> ``(..., D)``."""
        owner = "TokenEmbedding"
        if not (isinstance(tokens, torch.Tensor) and tokens.dtype in _ID_DTYPES):
            check_token_ids(tokens, owner)
        try:
            return F.embedding(tokens, self.weight)
        except IndexError:  # on the CPU the lookup checks every id; nothing is scanned beforehand
            lo, hi = (int(t) for t in torch.aminmax(tokens))
            raise ValueError(f"The 'tokens' parameter of {owner} must be ids in [0, {self.vocab_size}). "
                             f"Got values in [{lo}, {hi}] instead.") from None

    def one_hot_forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The book's form: one-hot vectors ``(B, N, |V|)`` times the embedding matrix."""
        return F.one_hot(tokens, self.vocab_size).to(self.weight.dtype) @ self.weight  # (B, N, D)


class LearnedPositions(_NormalTable):
    """A learned embedding per position, added to the token embeddings (BERT, GPT).

    Args:
        context: the largest number of positions N_max.
        d_model: D.
        std: the standard deviation of the initial N(0, std²) entries (default 0.02).
        generator: their randomness, a ``torch.Generator`` or an int seed (keyword-only).
            Default: torch's global generator.

    Shape:
        ``x``: ``(B, N, D)`` with N <= N_max -> ``x`` plus the first N position
        embeddings (an ``offset`` shifts them, for decoding with a cache).
    """

    def __init__(self, context: int, d_model: int, *, std: float = 0.02,
                 generator: torch.Generator | int | None = None):
        owner = "LearnedPositions"
        context = check_int(context, "context", owner)
        d_model = check_int(d_model, "d_model", owner)
        super().__init__(context, d_model, std, generator, owner)
        self.context = context

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        n = x.shape[-2]
        if offset + n > self.context:
            raise ValueError(f"The 'x' parameter of LearnedPositions must be at most {self.context - offset} "
                             f"positions long (the context of {self.context}, from offset {offset}). Got {n} instead.")
        return x + self.weight[offset:offset + n]


def sinusoidal_positions(n: int, d_model: int, *, base: float = 10_000.0) -> torch.Tensor:
    """The fixed sinusoidal position embeddings of the original transformer.

    Entry ``[t, 2i] = sin(t / base^{2i/D})`` and ``[t, 2i+1] = cos(t / base^{2i/D})``.

    Shape:
        -> ``(n, D)``.
    """
    check_int(n, "n", "sinusoidal_positions")
    d_model = check_int(d_model, "d_model", "sinusoidal_positions")
    t = torch.arange(n, dtype=torch.float64)[:, None]
    freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (ceil(D/2),)
    pe = torch.zeros(n, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq[: d_model // 2])
    return pe.float()


_ID_DTYPES = (torch.long, torch.int)  # the index dtypes torch.nn.functional.embedding takes


def check_token_ids(tokens, owner: str, *, shape: tuple | None = None) -> torch.Tensor:
    """Token ids for an embedding lookup: an int64 (or int32) tensor, of ``shape`` (as in ``check_tensor``) when given.

    Forward passes call it when their own quick check fails, for the one-line message.
    Whether each id is below |V| is checked by the lookup itself (:class:`TokenEmbedding`).

    Example::

        >>> check_token_ids(torch.zeros(5, dtype=torch.long), "GPT", shape=("B", "N"))
        Traceback (most recent call last):
        ValueError: The 'tokens' parameter of GPT must be a tensor of shape (B, N). Got shape (5,) instead.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dtype not in _ID_DTYPES:
        check_tensor(tokens, "tokens", owner, dtype=torch.long)
    return check_tensor(tokens, "tokens", owner, shape=shape)


def check_transformer_config(config, owner: str, ints: tuple[str, ...], bools: tuple[str, ...] = ()) -> None:
    """Validate a frozen transformer config in its ``__post_init__`` (GPT, BERT, encoder-decoder).

    Checks the positive ints named in ``ints`` (``d_model`` and ``n_heads`` among them),
    sets ``d_mlp`` to 4·D when it is None, checks that H divides D, that ``dropout`` (and
    ``attention_dropout`` and ``mlp_dropout`` where the config has them and they are not None) is
    in [0, 1), that ``eps`` (where present) is positive, that ``activation`` is one :class:`TransformerLayer` knows, and that the
    fields named in ``bools`` are bools.
    """
    for name in ints:
        check_int(getattr(config, name), name, owner)
    if config.d_mlp is None:
        object.__setattr__(config, "d_mlp", 4 * config.d_model)  # frozen dataclass
    check_int(config.d_mlp, "d_mlp", owner)
    if config.d_model % config.n_heads:
        raise ValueError(f"The 'n_heads' parameter of {owner} must divide d_model = {config.d_model}. "
                         f"Got {config.n_heads} instead.")
    check_float(config.dropout, "dropout", owner, low=0.0, high=1.0, high_open=True)
    for name in ("attention_dropout", "mlp_dropout"):  # the optional per-site rates (GPT, BERT)
        if getattr(config, name, None) is not None:
            check_float(getattr(config, name), name, owner, low=0.0, high=1.0, high_open=True)
    if hasattr(config, "eps"):
        check_float(config.eps, "eps", owner, low=0.0, low_open=True)
    check_choice(config.activation, "activation", owner, tuple(_ACTIVATIONS))
    for name in bools:
        check_bool(getattr(config, name), name, owner)
