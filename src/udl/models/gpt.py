"""A GPT-style decoder: masked self-attention trained to predict the next token (UDL §12.7).

A decoder language model factors the probability of a sequence of tokens
x_1 ... x_N by the chain rule (UDL eq. 12.15, §12.7.1)::

    Pr(x_1, ..., x_N) = Π_{t=2..N} Pr(x_t | x_1, ..., x_{t-1})

(the first token here is the ``<bos>`` marker that every sequence starts with, so it
is given rather than predicted). One network computes every factor at once: the
tokens are embedded (Ω_e times one-hot vectors, fig. 12.9), a learned embedding of
each position is added, and a stack of transformer layers with *masked*
self-attention lets position t combine only positions 1 ... t (§12.7.2). A final
linear map (here the transpose of Ω_e: the embeddings are "tied") turns the output at
position t into |V| logits for x_{t+1}; the softmax of them is Pr(x_{t+1} | x_{≤t}).
Training minimises the cross-entropy of every next token, so each token of the text
contributes a term to the loss (fig. 12.12).

The layer is :class:`udl.nn.transformer.TransformerLayer` with ``norm_first=True``
(GPT-2's pre-LN order, followed by one final LayerNorm) and the tanh approximation
of GELU; the initialisation is GPT-2's: weights N(0, 0.02²), biases zero, and the two
projections that write into the residual stream scaled by 1/√(2L) so that the
variance of the residual stream stays put as L grows.

Sizes: ``GPTConfig.gpt2_small()`` (124 million parameters) and ``GPTConfig.gpt3()``
(the book's GPT-3: 96 layers, D = 12,288, 96 heads of 128, context 2,048, about 175
billion parameters). :func:`parameter_count` counts them on PyTorch's "meta" device,
which records shapes without allocating memory, so GPT-3 is counted in a fraction of
a second.

Sequences of different lengths share a batch through a padding mask (``GPT.forward``'s
``padding_mask``, Hugging Face's ``attention_mask``): no token attends to padding and
positions count real tokens only, so a padded row gives the logits of the sequence alone;
:func:`lm_loss` leaves out targets equal to ``ignore_index``. The dropout sites are GPT-2's
(embeddings, attention weights, each block's output; none on the MLP's hidden layer), so
with GPT-2's weights (:mod:`udl.interop.gpt2`) the model equals ``transformers``'
``GPT2LMHeadModel`` in training mode too.

Generation (greedy, top-k, nucleus, beam search) lives in :mod:`udl.models.decoding`, training
(:func:`~udl.train.transformers.train_gpt`) in :mod:`udl.train.transformers`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.attention import record_attention_weights
from udl.nn.init import initialised_from
from udl.nn.transformer import (LearnedPositions, TokenEmbedding, TransformerLayer, check_token_ids,
                                 check_transformer_config)
from udl.validate import as_generator, check_float, check_int, check_tensor

__all__ = ["GPTConfig", "GPT", "meta_model", "parameter_count", "parameter_groups", "lm_loss", "token_log_probs",
           "sequence_log_prob", "causal_gradient", "attention_weights", "language_model_windows",
           "evaluate_cross_entropy"]

GPT2_VOCAB = 50_257  # GPT-2's byte-level BPE vocabulary (also GPT-3's)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class GPTConfig:
    """The shape of a :class:`GPT`; the defaults are GPT-2 small (124M parameters).

    Presets: :meth:`gpt2_small`, :meth:`gpt3` (the book's 175B model, §12.7.4) and
    :meth:`tiny` (a few thousand parameters, for tests).

    Example::

        >>> GPTConfig.gpt3().parameter_formula()["attention"]
        57986777088
    """

    vocab_size: int = GPT2_VOCAB  # |V|, the number of tokens
    context: int = 1024  # N_max, the longest sequence (learned positions exist up to it)
    n_layers: int = 12  # L, transformer layers
    d_model: int = 768  # D, the embedding size
    n_heads: int = 12  # H; each head has D/H dimensions
    d_mlp: int | None = None  # hidden width of each token's MLP; None means 4·D
    dropout: float = 0.0  # dropout on each block's output (GPT-2's resid_pdrop) and by default on the embeddings
    embedding_dropout: float | None = None  # dropout on the embeddings (GPT-2's embd_pdrop); None: dropout
    attention_dropout: float | None = None  # dropout on the attention weights (GPT-2's attn_pdrop); None: dropout
    mlp_dropout: float = 0.0  # dropout on the MLP's hidden layer: GPT-2 has none (torch's layer does)
    norm_first: bool = True  # pre-LN (GPT-2/3) with a final LayerNorm; False is the book's post-LN layer
    activation: str = "gelu_tanh"  # the MLP's activation: "relu", "gelu" or "gelu_tanh" (GPT-2)
    bias: bool = True  # biases in the linear layers and LayerNorms
    tie_embeddings: bool = True  # the output layer reuses Ω_e (transposed)
    eps: float = 1e-5  # LayerNorm's ε (GPT-2's layer_norm_epsilon)

    def __post_init__(self):
        owner = "GPTConfig"
        check_transformer_config(self, owner, ("vocab_size", "context", "n_layers", "d_model", "n_heads"),
                                 ("norm_first", "bias", "tie_embeddings"))
        if self.embedding_dropout is not None:
            check_float(self.embedding_dropout, "embedding_dropout", owner, low=0.0, high=1.0, high_open=True)

    @property
    def p_embedding(self) -> float:
        """The dropout rate on the embeddings: ``embedding_dropout``, or ``dropout`` when that is None."""
        return self.dropout if self.embedding_dropout is None else self.embedding_dropout

    @property
    def d_head(self) -> int:
        """Q = D/H, the size of each head's queries, keys and values."""
        return self.d_model // self.n_heads

    @classmethod
    def gpt2_small(cls, **changes) -> GPTConfig:
        """GPT-2 small: |V| = 50,257, context 1,024, 12 layers, D = 768, 12 heads (124M parameters)."""
        return cls(**changes)

    @classmethod
    def gpt3(cls, **changes) -> GPTConfig:
        """GPT-3 as the book gives it (§12.7.4): context 2,048, 96 layers, D = 12,288, 96 heads of 128.

        The vocabulary is GPT-2's 50,257 tokens; about 175 billion parameters. (GPT-3
        alternates dense and locally banded sparse attention; the pattern has no
        parameters, so it does not change the count.)
        """
        return cls(**{**dict(vocab_size=GPT2_VOCAB, context=2048, n_layers=96, d_model=12_288, n_heads=96), **changes})

    @classmethod
    def tiny(cls, **changes) -> GPTConfig:
        """A few-thousand-parameter decoder for tests: |V| = 11, context 16, 2 layers, D = 16, 2 heads."""
        return cls(**{**dict(vocab_size=11, context=16, n_layers=2, d_model=16, n_heads=2), **changes})

    def parameter_formula(self) -> dict[str, int]:
        """The parameters of each part of the model, in closed form.

        With b = 1 when there are biases (else 0) and F the MLP width::

            token embeddings     |V|·D
            position embeddings  N_max·D
            attention            L·(4D² + 4bD)        Ω_q, Ω_k, Ω_v, Ω_c and their biases
            MLP                  L·(2DF + b(F + D))
            LayerNorm            (2L + final)·(1 + b)·D   final = 1 for pre-LN
            output layer         |V|·D unless tied to the token embeddings

        With F = 4D the attention and MLP hold about 12·L·D² parameters, nearly all of
        a large model.
        """
        D, F_, L, b = self.d_model, self.d_mlp, self.n_layers, int(self.bias)
        return {"token embeddings": self.vocab_size * D,
                "position embeddings": self.context * D,
                "attention": L * (4 * D * D + 4 * b * D),
                "MLP": L * (2 * D * F_ + b * (F_ + D)),
                "LayerNorm": (2 * L + int(self.norm_first)) * (1 + b) * D,
                "output layer": 0 if self.tie_embeddings else self.vocab_size * D}

    def parameter_count(self) -> int:
        """The total of :meth:`parameter_formula`."""
        return sum(self.parameter_formula().values())

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- model
class GPT(nn.Module):
    """A decoder-only transformer language model (GPT-2/3 style, UDL §12.7).

    ``tokens → Ω_e[tokens] + positions → L × TransformerLayer(causal) → LayerNorm → logits``.

    Args:
        config: a :class:`GPTConfig`.
        generator: randomness of the initial weights (GPT-2's: N(0, 0.02²), residual
            projections N(0, (0.02/√(2L))²), biases 0, LayerNorm gains 1), a
            ``torch.Generator`` or an int seed. Default: None (torch's global generator).
            Built under ``torch.device("meta")`` the model holds shapes only and no
            initialisation is drawn.

    Shape:
        ``tokens``: ``(B, N)`` integers with N <= ``config.context`` -> logits ``(B, N, |V|)``;
        ``logits[:, t]`` scores the token that follows position t.

    Example::

        >>> model = GPT(GPTConfig.tiny(), generator=torch.Generator().manual_seed(0))
        >>> model(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 11])
    """

    def __init__(self, config: GPTConfig, *, generator: torch.Generator | int | None = None):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"The 'config' parameter of GPT must be a GPTConfig. Got {config!r} instead.")
        generator = as_generator(generator, "GPT")
        self.config = c = config
        with initialised_from(self, generator, own_rule_only=True):  # reset_parameters draws every weight
            self.embed = TokenEmbedding(c.vocab_size, c.d_model)
            self.positions = LearnedPositions(c.context, c.d_model)
            self.layers = nn.ModuleList(
                TransformerLayer(c.d_model, c.n_heads, c.d_mlp, dropout=c.dropout,
                                 attention_dropout=c.attention_dropout, mlp_dropout=c.mlp_dropout,
                                 norm_first=c.norm_first, activation=c.activation, bias=c.bias, eps=c.eps)
                for _ in range(c.n_layers))
            # pre-LN leaves the residual stream un-normalised: one LayerNorm before the output layer
            self.norm = nn.LayerNorm(c.d_model, eps=c.eps, bias=c.bias) if c.norm_first else nn.Identity()
            self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_embeddings:  # after the block: moving off the meta device unties shared parameters
            self.head.weight = self.embed.weight  # logits = h · Ω_eᵀ: one matrix in, the same matrix out

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """GPT-2's initialisation, drawn on the CPU (same numbers on every device)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layers)  # two residual writes per layer
        for name, p in self.named_parameters():  # tied weights appear once
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 1:  # LayerNorm gains
                p.fill_(1.0)
            else:
                std = residual_std if name.endswith(("out_proj.weight", "linear2.weight")) else 0.02
                p.copy_(torch.randn(p.shape, generator=generator) * std)

    @property
    def context(self) -> int:
        return self.config.context

    def forward(self, tokens: torch.Tensor, *, padding_mask: torch.Tensor | None = None,
                cache: dict | None = None) -> torch.Tensor:
        """Next-token logits at every position.

        Args:
            tokens: ``(B, N)`` token ids (int64 or int32) in [0, |V|), N <= context.
            padding_mask: ``(B, N)``, True (or 1) at real tokens and False (or 0) at padding,
                as Hugging Face's ``attention_mask``. No token attends to padding, and
                positions count real tokens only (position = cumsum(mask) − 1, as
                ``transformers``' ``generate`` computes them), so a row padded on the left
                (or anywhere) gives at its real tokens the logits of the unpadded sequence.
                The logits at padding are meaningless. Default: None (every token is real).
            cache: for step-by-step decoding, a dict (start with ``{}``) that keeps every
                layer's keys and values and the number of positions seen ("length");
                each call appends ``tokens`` after those positions. Once a mask has been
                given it also keeps the mask of every position seen ("padding_mask") and
                each row's count of real tokens ("counts"); appended tokens are real unless
                ``padding_mask`` says otherwise. Default: None.

        Returns:
            Logits ``(B, N, |V|)``.
        """
        offset = 0 if cache is None else cache.get("length", 0)
        if not (isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.dtype in (torch.long, torch.int)):
            check_token_ids(tokens, "GPT", shape=("B", "N"))
        past = None if cache is None else cache.get("padding_mask")  # (B, T) once a mask has been seen
        if padding_mask is None and past is None:  # every token real: positions offset ... offset + N - 1
            if tokens.shape[1] > self.config.context - offset:
                cached = f", {offset} of them in the cache" if offset else ""
                raise ValueError(f"The 'tokens' parameter of GPT must be at most {self.config.context - offset} "
                                 f"tokens per sequence (the context is {self.config.context}{cached}). "
                                 f"Got {tokens.shape[1]} instead.")
            x = self.positions(self.embed(tokens), offset)  # (B, N, D)
            keys_mask = None
        else:
            x, keys_mask, counts = self._embed_padded(tokens, padding_mask, past, offset)
        p = self.config.p_embedding
        if p > 0:
            x = F.dropout(x, p, self.training)
        if cache is None:
            for layer in self.layers:
                x = layer(x, causal=True, padding_mask=keys_mask)  # masked self-attention: position t sees 1..t
        else:
            layer_caches = cache.setdefault("layers", [{} for _ in self.layers])
            for layer, layer_cache in zip(self.layers, layer_caches):
                x = layer(x, causal=True, padding_mask=keys_mask, cache=layer_cache)
            cache["length"] = offset + tokens.shape[1]
            if keys_mask is not None:
                cache["padding_mask"], cache["counts"] = keys_mask, counts
        return self.head(self.norm(x))  # (B, N, |V|)

    def _embed_padded(self, tokens, padding_mask, past, offset):
        """Token plus position embeddings when some tokens are padding: ``(x, mask of all keys, real counts)``."""
        b, n = tokens.shape
        if padding_mask is None:
            new = torch.ones(b, n, dtype=torch.bool, device=tokens.device)
        else:
            if not (isinstance(padding_mask, torch.Tensor) and padding_mask.shape == (b, n)):
                check_tensor(padding_mask, "padding_mask", "GPT", shape=(b, n))
            if padding_mask.dtype != torch.bool:
                if padding_mask.is_floating_point() or padding_mask.is_complex() or \
                        bool(((padding_mask != 0) & (padding_mask != 1)).any()):
                    raise ValueError(f"The 'padding_mask' parameter of GPT must be a boolean tensor or one of 0/1 "
                                     f"integers. Got {padding_mask.dtype} values instead.")
            new = padding_mask.to(device=tokens.device, dtype=torch.bool)
        if past is None:  # the cache so far held real tokens only
            past = torch.ones(b, offset, dtype=torch.bool, device=tokens.device)
        elif past.shape[0] != b:
            raise ValueError(f"The 'tokens' parameter of GPT must have the cache's batch size {past.shape[0]}. "
                             f"Got {b} instead.")
        before = past.sum(1)  # (B,) real tokens already seen
        positions = before[:, None] + torch.cumsum(new, 1) - 1  # (B, N): the real tokens count 0, 1, 2, ...
        positions = positions.clamp(min=0)  # padding before the first real token: any valid row
        counts = before + new.sum(1)  # (B,)
        longest = int(counts.max()) if b else 0
        if longest > self.config.context:
            raise ValueError(f"The 'tokens' parameter of GPT must hold at most {self.config.context} real tokens "
                             f"per sequence, the cache's included (the context). Got {longest} instead.")
        x = self.embed(tokens) + self.positions.weight[positions]  # (B, N, D)
        return x, torch.cat([past, new], 1), counts  # keys: (B, T + N)


def meta_model(config: GPTConfig) -> GPT:
    """``GPT(config)`` built on PyTorch's meta device: every parameter has its shape and no storage.

    Nothing is allocated and nothing is drawn, so even GPT-3 is built in well under a
    second; the module can be inspected and counted but not run on real data.
    """
    return _meta_model(config, "meta_model")


def _meta_model(config: GPTConfig, owner: str) -> GPT:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"The 'config' parameter of {owner} must be a GPTConfig. Got {config!r} instead.")
    with torch.device("meta"):  # shapes only: no memory is allocated and nothing is drawn
        return GPT(config)


def parameter_count(config: GPTConfig) -> int:
    """The number of parameters of ``GPT(config)``, counted in a model built on the meta device.

    Nothing is allocated, so GPT-3's 175 billion parameters are counted in well under a
    second. Tied embeddings count once.

    Example::

        >>> parameter_count(GPTConfig.gpt2_small())
        124439808
    """
    return sum(p.numel() for p in _meta_model(config, "parameter_count").parameters())


def parameter_groups(config: GPTConfig | GPT) -> dict[str, int]:
    """The parameters of ``GPT(config)``, or of a given GPT, per part (as :meth:`GPTConfig.parameter_formula`).

    Counted from the module's named parameters (a config is built on the meta
    device), so it checks the closed form against the real module.
    """
    model = config if isinstance(config, GPT) else _meta_model(config, "parameter_groups")
    groups = dict.fromkeys(GPTConfig.tiny().parameter_formula(), 0)
    for name, p in model.named_parameters():
        if name.startswith("embed."):
            part = "token embeddings"
        elif name.startswith("positions."):
            part = "position embeddings"
        elif name.startswith("head."):
            part = "output layer"
        elif "norm" in name.split(".")[-2]:
            part = "LayerNorm"
        elif "attn" in name:
            part = "attention"
        elif ".linear" in name:
            part = "MLP"
        else:  # pragma: no cover - a new parameter without a group
            raise AssertionError(f"parameter {name} has no group")
        groups[part] += p.numel()
    return groups


# --------------------------------------------------------------------------- probabilities
def lm_loss(logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of the next tokens: −(1/M) Σ log softmax(logits)[target] (UDL eq. 5.24).

    The sum and the count M run over the targets that are not ``ignore_index`` (padding,
    or a prompt that should not be learned), as ``torch.nn.functional.cross_entropy``
    and ``transformers`` skip labels of -100.

    Args:
        logits: ``(B, N, |V|)`` next-token logits.
        targets: ``(B, N)`` token ids, or ``ignore_index`` where a position does not count.
        ignore_index: the target value that is left out. Default: -100.

    Returns:
        A scalar. When every target is ignored there is nothing to average: the loss is
        0, with a (zero) gradient, so a training step on such a batch changes nothing
        (``cross_entropy``'s mean would be NaN).

    Shape:
        ``logits``: ``(B, N, |V|)``; ``targets``: ``(B, N)`` -> scalar.
    """
    ignore_index = check_int(ignore_index, "ignore_index", "lm_loss", minimum=None)
    if logits.dtype in (torch.float16, torch.bfloat16):  # autocast: the softmax in float32
        logits = logits.float()
    targets = targets.flatten()  # (B·N,)
    total = F.cross_entropy(logits.flatten(0, 1), targets, ignore_index=ignore_index, reduction="sum")
    kept = (targets != ignore_index).sum()
    return total / kept.clamp(min=1)  # 0 / 1 = 0 when every target is ignored


def _check_model_tokens(model, tokens, owner: str, extra: int = 0) -> torch.Tensor:
    """``tokens`` as ``(B, N)`` with 2 <= N <= context + extra (``extra`` = 1 when the last token is only a target)."""
    if not isinstance(model, GPT):
        raise TypeError(f"The 'model' parameter of {owner} must be a GPT. Got {type(model).__name__} instead.")
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.dim() not in (1, 2):
        raise TypeError(f"The 'tokens' parameter of {owner} must be a LongTensor of shape (N,) or (B, N). "
                        f"Got {tokens!r} instead.")
    squeeze = tokens.dim() == 1
    tokens = tokens[None] if squeeze else tokens
    if tokens.shape[1] < 2 or tokens.shape[1] > model.context + extra:
        raise ValueError(f"The 'tokens' parameter of {owner} must hold between 2 and {model.context + extra} tokens "
                         f"per sequence. Got {tokens.shape[1]} instead.")
    return tokens


@torch.no_grad()
def token_log_probs(model: GPT, tokens: torch.Tensor, *, use_cache: bool = False) -> torch.Tensor:
    """log Pr(x_t | x_1 ... x_{t-1}) for t = 2 ... N: each token given the ones before it.

    Args:
        model: a :class:`GPT` (put in eval mode for deterministic numbers).
        tokens: ``(N,)`` or ``(B, N)`` with N <= context + 1; the first token (e.g.
            ``<bos>``) is given.
        use_cache: False (default) scores all positions in one forward pass with the
            causal mask; True feeds one token at a time through the key/value cache,
            computing each factor of the chain rule separately.

    Shape:
        ``(N,)`` -> ``(N-1,)``; ``(B, N)`` -> ``(B, N-1)``.
    """
    squeeze = torch.is_tensor(tokens) and tokens.dim() == 1
    tokens = _check_model_tokens(model, tokens, "token_log_probs", extra=1)
    tokens = tokens.to(next(model.parameters()).device)
    if use_cache:
        cache: dict = {}
        logits = torch.cat([model(tokens[:, t:t + 1], cache=cache) for t in range(tokens.shape[1] - 1)], 1)
    else:
        logits = model(tokens[:, :-1])  # (B, N-1, |V|)
    logp = torch.log_softmax(logits.double(), -1).gather(-1, tokens[:, 1:, None])[..., 0]  # (B, N-1)
    return logp[0] if squeeze else logp


def sequence_log_prob(model: GPT, tokens: torch.Tensor, *, use_cache: bool = False) -> torch.Tensor:
    """log Pr(x_2, ..., x_N | x_1) = Σ_t log Pr(x_t | x_{<t}): the chain rule (UDL §12.7.1, eq. 12.15).

    The first token (``<bos>``) is the given start; the sum runs over the rest.

    Shape:
        ``(N,)`` -> scalar; ``(B, N)`` -> ``(B,)``.

    Example::

        >>> model = GPT(GPTConfig.tiny(), generator=torch.Generator().manual_seed(0)).eval()
        >>> float(sequence_log_prob(model, torch.tensor([0, 1, 2]))) < 0
        True
    """
    return token_log_probs(model, tokens, use_cache=use_cache).sum(-1)


def causal_gradient(model: GPT, tokens: torch.Tensor) -> torch.Tensor:
    """How much each output position depends on each input position: G[t, t'] = max |∂ logits_t / ∂ e_t'|.

    The gradient is taken with respect to the input embeddings e_t' (token plus
    position) of one sequence, for the sum of the logits at position t. Masked
    self-attention makes G[t, t'] exactly zero for t' > t (§12.7.2).

    Shape:
        ``tokens``: ``(N,)`` -> ``(N, N)``, rows t (outputs), columns t' (inputs).
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        raise TypeError(f"The 'tokens' parameter of causal_gradient must be a LongTensor of shape (N,). "
                        f"Got {tokens!r} instead.")
    _check_model_tokens(model, tokens, "causal_gradient")
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    n = tokens.shape[0]
    e = model.positions(model.embed(tokens[None])).detach().requires_grad_()  # (1, N, D)

    def logits_from(e):
        p = model.config.p_embedding
        x = F.dropout(e, p, model.training) if p > 0 else e
        for layer in model.layers:
            x = layer(x, causal=True)
        return model.head(model.norm(x))  # (1, N, |V|)

    out = logits_from(e)
    rows = []
    for t in range(n):
        (g,) = torch.autograd.grad(out[0, t].sum(), e, retain_graph=t < n - 1)
        rows.append(g[0].abs().amax(-1))  # (N,)
    return torch.stack(rows).cpu()  # (N, N)


@torch.no_grad()
def attention_weights(model: GPT, tokens: torch.Tensor) -> torch.Tensor:
    """The masked self-attention weights of every layer and head for one sequence.

    Shape:
        ``tokens``: ``(N,)`` -> ``(L, H, N, N)``; row t (a query) sums to one over
        columns t' <= t and is zero beyond.
    """
    _check_model_tokens(model, tokens, "attention_weights")
    device = next(model.parameters()).device
    with record_attention_weights([layer.self_attn for layer in model.layers]) as weights:
        model(tokens.reshape(1, -1).to(device))
    return torch.stack([w[0] for w in weights]).cpu()  # (L, H, N, N)


# --------------------------------------------------------------------------- windows of a token stream
def language_model_windows(tokens: torch.Tensor, context: int, *, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets cut from one long token stream.

    Window i starts at ``i·stride``: inputs x = stream[s : s+N], targets y = stream[s+1 : s+N+1].
    Views of the stream (no copy).

    Shape:
        ``tokens``: ``(T,)`` -> ``x, y``: ``(W, N)`` with W = ⌊(T - N - 1)/stride⌋ + 1.
    """
    owner = "language_model_windows"
    context = check_int(context, "context", owner)
    stride = check_int(stride, "stride", owner)
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        raise TypeError(f"The 'tokens' parameter of {owner} must be a 1D LongTensor. Got {tokens!r} instead.")
    if len(tokens) < context + 1:
        raise ValueError(f"The 'tokens' parameter of {owner} must hold at least context + 1 = {context + 1} "
                         f"tokens. Got {len(tokens)} instead.")
    windows = tokens.unfold(0, context + 1, stride)  # (W, N + 1)
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def evaluate_cross_entropy(model: GPT, tokens: torch.Tensor, *, batch_size: int = 64) -> float:
    """Mean −log Pr(x_t | x_<t) in nats per token over a held-out token stream.

    The stream is cut into non-overlapping windows of ``context + 1`` tokens; in each,
    all ``context`` next tokens are scored (so early positions see little context).
    Perplexity is exp of this.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"The 'model' parameter of evaluate_cross_entropy must be a GPT. "
                        f"Got {type(model).__name__} instead.")
    batch_size = check_int(batch_size, "batch_size", "evaluate_cross_entropy")
    x, y = language_model_windows(tokens, model.context, stride=model.context + 1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        total += float(lm_loss(model(xb), yb)) * yb.numel()
        count += yb.numel()
    model.train(was_training)
    return total / count
