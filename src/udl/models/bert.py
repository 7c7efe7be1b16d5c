"""A BERT-style encoder: masked-token pre-training and fine-tuning (UDL §12.6, figs. 12.10-12.11).

An encoder turns a sequence of tokens into one output embedding per token, and every
token may attend to every other (no causal mask), so each output sees the left and the
right context. BERT builds its input from three learned embeddings, summed and
normalised::

    X = LayerNorm[Ω_e[tokens] + P[positions] + S[segments]]      (token, position, segment)

and passes X through L post-LN transformer layers (fig. 12.7, GELU in the MLP).

*Pre-training* (fig. 12.10) needs no labels. A random 15 % of the input tokens are
chosen; of those, 80 % are replaced by ``<mask>``, 10 % by a random token and 10 % are
left unchanged (so the model cannot learn that only ``<mask>`` needs predicting). The
output embedding at each chosen position goes through a small network and a softmax
over the vocabulary, and the loss is the multiclass cross-entropy of the original
token (UDL eq. 5.24) summed over the chosen positions only: a sequence of N tokens adds
about 0.15·N terms to the loss.

*Fine-tuning* (fig. 12.11) appends a small network to the output of the ``<cls>``
token (always the first one) and trains everything on a labelled task.

Sizes: :meth:`BertConfig.bert_large` is the book's configuration (|V| = 30,000,
D = 1,024, 24 layers, 16 heads of 64, MLP 4,096, context 512: about 340 million
parameters), :meth:`BertConfig.bert_base` the 12-layer one; :func:`parameter_count`
counts a model built on PyTorch's "meta" device, which records shapes only.

Pre-training and fine-tuning (:func:`~udl.train.transformers.pretrain_mlm`,
:func:`~udl.train.transformers.finetune_classifier`) live in :mod:`udl.train.transformers`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from udl.nn.init import initialised_from
from udl.nn.transformer import (LearnedPositions, TokenEmbedding, TransformerLayer,
                                 check_transformer_config)
from udl.validate import as_generator, check_float, check_int

__all__ = ["BertConfig", "BERT", "MaskedLanguageModel", "BertClassifier", "MaskedTokens", "MaskedEvaluation",
           "mask_tokens", "parameter_count", "parameter_groups", "meta_model", "mlm_windows",
           "masked_token_cross_entropy", "encode_texts", "predict", "init_bert_", "IGNORE", "measure_masking_rule"]

IGNORE = -100  # the target of a position that is not predicted (F.cross_entropy's ignore_index)
BOOK_VOCAB = 30_000  # the book's BERT vocabulary (§12.6; the released BERT has 30,522 word pieces)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class BertConfig:
    """The shape of a :class:`BERT` encoder; the defaults are BERT-base.

    Presets: :meth:`bert_base` (about 110 million parameters), :meth:`bert_large` (the
    book's, about 340 million), :meth:`small` (a few hundred thousand, trains on a CPU
    in minutes) and :meth:`tiny` (for tests).

    Example::

        >>> BertConfig.bert_large().d_head
        64
    """

    vocab_size: int = BOOK_VOCAB  # |V|, the number of tokens
    context: int = 512  # N_max, the longest input (learned positions exist up to it)
    n_layers: int = 12  # L, transformer layers
    d_model: int = 768  # D, the embedding size
    n_heads: int = 12  # H; each head has D/H dimensions
    d_mlp: int | None = None  # hidden width of each token's MLP; None means 4·D
    dropout: float = 0.1  # dropout on the embeddings and on each block's output (BERT's hidden_dropout_prob)
    attention_dropout: float | None = None  # on the attention weights (attention_probs_dropout_prob); None: dropout
    mlp_dropout: float = 0.0  # dropout on the MLP's hidden layer: BERT has none (torch's layer does)
    activation: str = "gelu"  # the MLP's activation: "relu", "gelu" (BERT) or "gelu_tanh"
    norm_first: bool = False  # False: post-LN as BERT and the book's fig. 12.7; True: pre-LN
    n_segments: int = 2  # segment ("sentence A / B") embeddings; 0 for none
    pad_id: int | None = 0  # positions holding this token are never attended to; None: no padding
    eps: float = 1e-12  # LayerNorm's ε (BERT's value)
    init_std: float = 0.02  # σ of the initial weights: BERT's 0.02 ≈ 0.6/√D at D = 1,024 (see init_bert_)

    def __post_init__(self):
        owner = "BertConfig"
        check_transformer_config(self, owner, ("vocab_size", "context", "n_layers", "d_model", "n_heads"),
                                 ("norm_first",))
        check_int(self.n_segments, "n_segments", owner, minimum=0)
        if self.pad_id is not None:
            check_int(self.pad_id, "pad_id", owner, minimum=0)
            if self.pad_id >= self.vocab_size:
                raise ValueError(f"The 'pad_id' parameter of {owner} must be a token id below vocab_size = "
                                 f"{self.vocab_size} or None. Got {self.pad_id} instead.")
        check_float(self.eps, "eps", owner, low=0.0, low_open=True)
        check_float(self.init_std, "init_std", owner, low=0.0, low_open=True)

    @property
    def d_head(self) -> int:
        """D/H, the size of each head's queries, keys and values."""
        return self.d_model // self.n_heads

    @classmethod
    def bert_base(cls, **changes) -> BertConfig:
        """BERT-base: |V| = 30,000, context 512, 12 layers, D = 768, 12 heads of 64 (about 110M)."""
        return cls(**changes)

    @classmethod
    def bert_large(cls, **changes) -> BertConfig:
        """The book's BERT (§12.6): |V| = 30,000, D = 1,024, 24 layers, 16 heads of 64, MLP 4,096, context 512."""
        return cls(**{**dict(vocab_size=BOOK_VOCAB, context=512, n_layers=24, d_model=1024, n_heads=16,
                             d_mlp=4096), **changes})

    @classmethod
    def small(cls, **changes) -> BertConfig:
        """A CPU-sized encoder: |V| = 2,000, context 64, 4 layers, D = 128, 4 heads of 32 (about 1M).

        Weights start at N(0, 0.05²), about 0.6/√D as BERT's (see :func:`init_bert_`).
        """
        return cls(**{**dict(vocab_size=2000, context=64, n_layers=4, d_model=128, n_heads=4, init_std=0.05),
                      **changes})

    @classmethod
    def tiny(cls, **changes) -> BertConfig:
        """A test-sized encoder: |V| = 13, context 16, 2 layers, D = 16, 2 heads, no dropout, N(0, 0.2²) weights."""
        return cls(**{**dict(vocab_size=13, context=16, n_layers=2, d_model=16, n_heads=2, dropout=0.0,
                             init_std=0.2), **changes})

    def parameter_formula(self) -> dict[str, int]:
        """The parameters of each part of the pre-training model, in closed form.

        With F the MLP width and S the number of segments::

            embeddings   |V|·D + N_max·D + S·D + 2D       token, position, segment, LayerNorm
            attention    L·(4D² + 4D)                     Ω_q, Ω_k, Ω_v, Ω_c and their biases
            MLP          L·(2DF + F + D)
            LayerNorm    L·4D (+ 2D for pre-LN)           two per layer (+ a final one), gain and offset
            pooler       D² + D                           tanh(Ω h_<cls> + β), the classifiers' input
            MLM head     D² + D + 2D + |V|                dense, LayerNorm, output bias (Ω_eᵀ is tied)

        With F = 4D the attention and MLP hold 12·L·D² + 13·L·D parameters.
        """
        D, F_, L, V = self.d_model, self.d_mlp, self.n_layers, self.vocab_size
        return {"embeddings": V * D + self.context * D + self.n_segments * D + 2 * D,
                "attention": L * (4 * D * D + 4 * D),
                "MLP": L * (2 * D * F_ + F_ + D),
                "LayerNorm": L * 4 * D + 2 * D * int(self.norm_first),
                "pooler": D * D + D,
                "MLM head": D * D + D + 2 * D + V}

    def parameter_count(self) -> int:
        """The total of :meth:`parameter_formula`."""
        return sum(self.parameter_formula().values())

    def to_dict(self) -> dict:
        return asdict(self)


def _check_config(config, owner: str) -> BertConfig:
    if not isinstance(config, BertConfig):
        raise TypeError(f"The 'config' parameter of {owner} must be a BertConfig. Got {config!r} instead.")
    return config


# --------------------------------------------------------------------------- encoder
class BERT(nn.Module):
    """A BERT encoder: summed token, position and segment embeddings, then L transformer layers.

    ``X = LayerNorm[Ω_e[tokens] + P + S[segments]] → L × TransformerLayer (no causal mask)``;
    :meth:`pool` maps the output at the ``<cls>`` position (the first) to
    ``tanh(Ω_p h_0 + β_p)``, the input of sequence classifiers.

    Args:
        config: a :class:`BertConfig`.
        generator: randomness of the initial weights (BERT's: N(0, σ²) with
            σ = ``config.init_std``, biases 0, LayerNorm gains 1), a ``torch.Generator`` or an
            int seed. Default: None (torch's global generator). Built under
            ``torch.device("meta")`` the model holds shapes only and draws nothing (see
            :func:`meta_model`).

    Shape:
        ``tokens``: ``(B, N)`` with N <= ``config.context`` -> ``(B, N, D)``; the
        optional ``segments`` and ``padding_mask`` are ``(B, N)``.

    Example::

        >>> bert = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0))
        >>> bert(torch.ones(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, config: BertConfig, *, generator: torch.Generator | int | None = None):
        super().__init__()
        self.config = c = _check_config(config, "BERT")
        generator = as_generator(generator, "BERT")
        with initialised_from(self, generator, own_rule_only=True):  # reset_parameters draws every weight
            self.embed = TokenEmbedding(c.vocab_size, c.d_model)
            self.positions = LearnedPositions(c.context, c.d_model)
            self.segments = TokenEmbedding(c.n_segments, c.d_model) if c.n_segments else None  # S: a row per segment
            self.embed_norm = nn.LayerNorm(c.d_model, eps=c.eps)
            self.layers = nn.ModuleList(
                TransformerLayer(c.d_model, c.n_heads, c.d_mlp, dropout=c.dropout,
                                 attention_dropout=c.attention_dropout, mlp_dropout=c.mlp_dropout,
                                 norm_first=c.norm_first, activation=c.activation, eps=c.eps)
                for _ in range(c.n_layers))
            # pre-LN leaves the residual stream un-normalised: one more LayerNorm at the end
            self.final_norm = nn.LayerNorm(c.d_model, eps=c.eps) if c.norm_first else None
            self.pooler = nn.Linear(c.d_model, c.d_model)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """BERT's initialisation (:func:`init_bert_` with σ = ``config.init_std``)."""
        init_bert_(self, self.config.init_std, generator)

    def padding_mask(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """``tokens != pad_id`` ``(B, N)`` (True = a real token), or None when nothing is padded."""
        if self.config.pad_id is None:
            return None
        mask = tokens != self.config.pad_id
        return None if bool(mask.all()) else mask

    def forward(self, tokens: torch.Tensor, *, segments: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The output embeddings of every token.

        Args:
            tokens: ``(B, N)`` token ids, ``<cls>`` first.
            segments: ``(B, N)`` segment ids (0 for sentence A, 1 for B). Default: all 0.
            padding_mask: ``(B, N)`` booleans, True where a real token stands; no query
                attends to a False position. Default: ``tokens != config.pad_id``.

        Returns:
            ``(B, N, D)``.
        """
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long:
            raise TypeError(f"The 'tokens' parameter of BERT must be a LongTensor of shape (B, N). "
                            f"Got {tokens!r} instead.")
        x = self.positions(self.embed(tokens))  # (B, N, D): Ω_e[tokens] + P
        if self.segments is not None:
            x = x + self.segments(torch.zeros_like(tokens) if segments is None else segments)
        x = self.embed_norm(x)
        if self.config.dropout > 0:
            x = F.dropout(x, self.config.dropout, self.training)
        if padding_mask is None:
            padding_mask = self.padding_mask(tokens)
        mask = None if padding_mask is None else padding_mask[:, None, None, :]  # (B, 1, 1, N) keys
        for layer in self.layers:
            x = layer(x, mask=mask)  # every token attends to every (real) token
        return x if self.final_norm is None else self.final_norm(x)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """``tanh(Ω_p h_<cls> + β_p)``: ``(B, N, D)`` -> ``(B, D)``."""
        return torch.tanh(self.pooler(hidden[:, 0]))


@torch.no_grad()
def init_bert_(module: nn.Module, std: float = 0.02, generator: torch.Generator | None = None) -> None:
    """BERT's initialisation in place: matrices N(0, std²), biases 0, LayerNorm gains 1 (drawn on the CPU).

    BERT uses std = 0.02 with D = 768 or 1,024, about 0.6/√D. A small model initialised
    with 0.02 starts with near-zero attention logits and MLP outputs in every layer,
    and masked-token training then sits on the unigram plateau (predicting each token
    from its frequency alone) for a long time; a similar multiple of 1/√D escapes it
    sooner (udl's small configurations use 0.05 for D = 96-128 and 0.2 for D = 16).
    """
    for name, p in module.named_parameters():  # tied weights appear once
        if name.endswith("bias"):
            p.zero_()
        elif p.dim() == 1:  # LayerNorm gains
            p.fill_(1.0)
        else:
            p.copy_(torch.randn(p.shape, generator=generator) * std)


class MaskedLanguageModel(nn.Module):
    """An encoder with BERT's masked-token head (fig. 12.10).

    The output embedding h_n goes through a dense layer, GELU and LayerNorm, then the
    transpose of the token-embedding matrix (tied: the same Ω_e embeds the inputs and
    scores the outputs) plus a bias gives |V| logits; their softmax is the predicted
    distribution of the token at position n.

    Args:
        encoder: a :class:`BERT`.
        generator: randomness of the head's initial weights. Default: None.

    Shape:
        ``tokens``: ``(B, N)`` -> logits ``(B, N, |V|)``.

    Example::

        >>> mlm = MaskedLanguageModel(BERT(BertConfig.tiny()))
        >>> mlm(torch.ones(1, 4, dtype=torch.long)).shape
        torch.Size([1, 4, 13])
    """

    def __init__(self, encoder: BERT, *, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(encoder, BERT):
            raise TypeError(f"The 'encoder' parameter of MaskedLanguageModel must be a BERT. "
                            f"Got {type(encoder).__name__} instead.")
        generator = as_generator(generator, "MaskedLanguageModel")
        c = encoder.config
        self.encoder = encoder
        with initialised_from(self, generator, own_rule_only=True):  # the head only: the encoder keeps its weights
            self.dense = nn.Linear(c.d_model, c.d_model)
            self.norm = nn.LayerNorm(c.d_model, eps=c.eps)
            self.bias = nn.Parameter(torch.empty(c.vocab_size))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The head's initialisation: dense weights N(0, σ²) with σ = ``config.init_std``, biases 0, LayerNorm (1, 0)."""
        self.dense.weight.copy_(torch.randn(self.dense.weight.shape, generator=generator) * self.config.init_std)
        self.dense.bias.zero_()
        self.norm.reset_parameters()
        self.bias.zero_()

    @property
    def config(self) -> BertConfig:
        return self.encoder.config

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits from output embeddings: ``(..., D)`` -> ``(..., |V|)``."""
        h = self.norm(F.gelu(self.dense(hidden)))
        return h @ self.encoder.embed.weight.T + self.bias  # (..., |V|): tied to Ω_e

    def forward(self, tokens: torch.Tensor, *, segments: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(tokens, segments=segments, padding_mask=padding_mask))

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, *, segments: torch.Tensor | None = None,
             padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of the original tokens at the chosen positions (eq. 5.24).

        Only positions whose target is not ``IGNORE`` go through the head, so a batch
        costs the encoder plus 15 % of the output layer.

        Shape:
            ``inputs``, ``targets``: ``(B, N)`` -> scalar.
        """
        hidden = self.encoder(inputs, segments=segments, padding_mask=padding_mask)  # (B, N, D)
        chosen = targets != IGNORE  # (B, N)
        if not bool(chosen.any()):
            return hidden.sum() * 0.0  # nothing to predict: a zero that still has a gradient
        logits = self.head(hidden[chosen])  # (M, |V|) for the M chosen positions
        return F.cross_entropy(logits.float(), targets[chosen])


class BertClassifier(nn.Module):
    """A sequence classifier on the ``<cls>`` output of an encoder (fig. 12.11a).

    ``logits = Ω_o · dropout(tanh(Ω_p h_<cls> + β_p)) + β_o``: the encoder's pooler and
    one new linear layer.

    Args:
        encoder: a :class:`BERT` (pre-trained or fresh); used, not copied.
        n_classes: the number of classes K.
        freeze: train only the new layer and the pooler, keeping the encoder's
            embeddings and transformer layers fixed. Default: False (fine-tune all).
        generator: randomness of the new layer's initial weights. Default: None.

    Shape:
        ``tokens``: ``(B, N)`` -> logits ``(B, K)``.

    Example::

        >>> clf = BertClassifier(BERT(BertConfig.tiny()), 3)
        >>> clf(torch.ones(2, 4, dtype=torch.long)).shape
        torch.Size([2, 3])
    """

    def __init__(self, encoder: BERT, n_classes: int, *, freeze: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        owner = "BertClassifier"
        if not isinstance(encoder, BERT):
            raise TypeError(f"The 'encoder' parameter of {owner} must be a BERT. Got {type(encoder).__name__} instead.")
        self.n_classes = check_int(n_classes, "n_classes", owner, minimum=2)
        if not isinstance(freeze, bool):
            raise TypeError(f"The 'freeze' parameter of {owner} must be a bool. Got {freeze!r} instead.")
        generator = as_generator(generator, owner)
        self.encoder, self.freeze = encoder, freeze
        with initialised_from(self, generator, own_rule_only=True):  # the head only: the encoder keeps its weights
            self.out = nn.Linear(encoder.config.d_model, n_classes)
        for name, p in encoder.named_parameters():
            if not name.startswith("pooler."):
                p.requires_grad_(not freeze)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The head's initialisation, BERT's N(0, 0.02²) weights and zero biases: the classes start equally likely."""
        self.out.weight.copy_(torch.randn(self.out.weight.shape, generator=generator) * 0.02)
        self.out.bias.zero_()

    def forward(self, tokens: torch.Tensor, *, segments: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The class logits of each sequence.

        Args:
            tokens: ``(B, N)`` token ids, ``<cls>`` first.
            segments: ``(B, N)`` segment ids. Default: all 0.
            padding_mask: ``(B, N)`` booleans, True where a real token stands, in any layout
                (padding at the end, the start or in between). Default: ``tokens != pad_id``.

        Returns:
            ``(B, K)`` logits; in evaluation mode ``out(encoder.pool(encoder(tokens, ...)))``.
        """
        if padding_mask is None:
            padding_mask = self.encoder.padding_mask(tokens)
        if padding_mask is not None:
            # Drop the trailing columns that are padding in every row: no query attends to them
            # and positions are absolute, so every kept output (<cls> included) is unchanged.
            # Only trailing ones: dropping any other column would shift the tokens after it.
            N = tokens.shape[1]
            n = int((padding_mask.any(0) * torch.arange(1, N + 1, device=tokens.device)).max())  # last real column + 1
            if 0 < n < N:  # n = 0: no real token anywhere, nothing worth saving
                tokens, padding_mask = tokens[:, :n], padding_mask[:, :n]
                segments = None if segments is None else segments[:, :n]
        hidden = self.encoder(tokens, segments=segments, padding_mask=padding_mask)  # (B, N, D)
        pooled = self.encoder.pool(hidden)  # (B, D)
        p = self.encoder.config.dropout
        return self.out(F.dropout(pooled, p, self.training) if p > 0 else pooled)  # (B, K)


# --------------------------------------------------------------------------- sizes
class _SkipInitOnMeta(TorchFunctionMode):
    """Make the in-place initialisers no-ops on meta tensors.

    A meta tensor has a shape and no values, so drawing N(0, σ²) into it means
    nothing; yet PyTorch's meta kernel for ``normal_`` imports ``torch._dynamo`` (about
    4 s, once per process). Skipping the initialisers keeps a count under 0.1 s.
    """

    _INIT = frozenset({"normal_", "uniform_", "zero_", "zeros_", "ones_", "fill_", "constant_", "trunc_normal_",
                       "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if getattr(func, "__name__", "") in self._INIT and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


def _meta_mlm(config: BertConfig, owner: str) -> MaskedLanguageModel:
    _check_config(config, owner)
    with _SkipInitOnMeta(), torch.device("meta"):  # shapes only: nothing is allocated or drawn
        return MaskedLanguageModel(BERT(config))


def meta_model(config: BertConfig) -> MaskedLanguageModel:
    """``MaskedLanguageModel(BERT(config))`` on PyTorch's meta device: every shape, no values.

    Nothing is allocated and nothing is drawn, so even BERT-large (1.3 GB of float32
    weights) is built in a fraction of a second; ``load_state_dict(..., assign=True)``
    can later give it real weights.
    """
    return _meta_mlm(config, "meta_model")


def parameter_count(config: BertConfig) -> int:
    """The parameters of the pre-training model ``MaskedLanguageModel(BERT(config))``.

    Counted on the meta device, so nothing is allocated; the output matrix is tied to
    the token embeddings and counts once. Encoder, pooler and masked-token head are
    included (BERT's next-sentence head, 2·D + 2 more, is not).

    Example::

        >>> parameter_count(BertConfig.bert_large())
        335689008
    """
    return sum(p.numel() for p in _meta_mlm(config, "parameter_count").parameters())


def parameter_groups(config: BertConfig) -> dict[str, int]:
    """The module's parameters per part (the keys of :meth:`BertConfig.parameter_formula`).

    Counted from the named parameters of a meta-device model, so comparing with the
    closed form checks both.
    """
    groups = dict.fromkeys(BertConfig.tiny().parameter_formula(), 0)
    for name, p in _meta_mlm(config, "parameter_groups").named_parameters():
        parts = name.split(".")
        if parts[0] != "encoder":
            part = "MLM head"
        elif parts[1] in ("embed", "positions", "segments", "embed_norm"):
            part = "embeddings"
        elif parts[1] == "pooler":
            part = "pooler"
        elif parts[1] == "final_norm" or "norm" in parts[-2]:
            part = "LayerNorm"
        elif "attn" in parts[3]:
            part = "attention"
        elif parts[3].startswith("linear"):
            part = "MLP"
        else:  # pragma: no cover - a new parameter without a group
            raise AssertionError(f"parameter {name} has no group")
        groups[part] += p.numel()
    return groups


# --------------------------------------------------------------------------- masking
class MaskedTokens(NamedTuple):
    """What :func:`mask_tokens` returns."""

    inputs: torch.Tensor  # the corrupted tokens the encoder sees
    targets: torch.Tensor  # the original token where one is predicted, IGNORE elsewhere
    action: torch.Tensor  # int8: 0 not chosen, 1 replaced by <mask>, 2 by a random token, 3 kept


def _check_tokens(tokens, owner: str) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long:
        raise TypeError(f"The 'tokens' parameter of {owner} must be a LongTensor. Got {tokens!r} instead.")
    return tokens


def mask_tokens(tokens: torch.Tensor, *, mask_id: int, vocab_size: int, special_ids: Iterable[int] = (),
                prob: float = 0.15, p_mask: float = 0.8, p_random: float = 0.1,
                generator: torch.Generator | None = None) -> MaskedTokens:
    """Corrupt tokens for masked-token pre-training with BERT's 80/10/10 rule (fig. 12.10).

    Each position that does not hold a special token is chosen independently with
    probability ``prob``. A chosen position is replaced by ``<mask>`` with probability
    ``p_mask``, by a token drawn uniformly from the non-special vocabulary with
    probability ``p_random``, and otherwise kept; its target is the original token.
    Unchosen positions (special tokens always) keep their token and get target
    ``IGNORE``. Evaluation typically uses ``p_mask=1`` so that no predicted token is
    visible.

    Args:
        tokens: a LongTensor of any shape.
        mask_id: the id of ``<mask>``.
        vocab_size: |V|; random replacements are drawn from ``range(vocab_size)``
            without the special ids.
        special_ids: ids never chosen (``<cls>``, ``<sep>``, ``<pad>``, ...). Default: none.
        prob: the fraction of positions predicted. Default: 0.15.
        p_mask: of those, the fraction shown as ``<mask>``. Default: 0.8.
        p_random: the fraction shown as a random token. Default: 0.1.
        generator: the randomness (drawn on the CPU). Default: None.

    Returns:
        :class:`MaskedTokens` ``(inputs, targets, action)``, each shaped like ``tokens``.

    Example::

        >>> out = mask_tokens(torch.arange(8, 20), mask_id=4, vocab_size=20, special_ids=range(7),
        ...                   prob=0.5, generator=torch.Generator().manual_seed(0))
        >>> bool(((out.targets == IGNORE) | (out.targets == torch.arange(8, 20))).all())
        True
    """
    owner = "mask_tokens"
    tokens = _check_tokens(tokens, owner)
    vocab_size = check_int(vocab_size, "vocab_size", owner)
    mask_id = check_int(mask_id, "mask_id", owner, minimum=0)
    if mask_id >= vocab_size:
        raise ValueError(f"The 'mask_id' parameter of {owner} must be below vocab_size = {vocab_size}. "
                         f"Got {mask_id} instead.")
    prob = check_float(prob, "prob", owner, low=0.0, high=1.0)
    p_mask = check_float(p_mask, "p_mask", owner, low=0.0, high=1.0)
    p_random = check_float(p_random, "p_random", owner, low=0.0, high=1.0)
    if p_mask + p_random > 1.0 + 1e-12:
        raise ValueError(f"The 'p_random' parameter of {owner} must be at most 1 - p_mask = {1 - p_mask:g}. "
                         f"Got {p_random} instead.")
    generator = as_generator(generator, owner)
    try:
        special = sorted({int(i) for i in special_ids} | {mask_id})
    except (TypeError, ValueError):
        raise TypeError(f"The 'special_ids' parameter of {owner} must be an iterable of ints. "
                        f"Got {special_ids!r} instead.") from None
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[[i for i in special if 0 <= i < vocab_size]] = False
    candidates = ordinary.nonzero()[:, 0]  # the ids a random replacement may take
    if len(candidates) == 0:
        raise ValueError(f"The 'special_ids' parameter of {owner} must leave some ordinary token. "
                         f"Got all {vocab_size} ids instead.")

    device, cpu = tokens.device, tokens.cpu()
    choose = torch.rand(cpu.shape, generator=generator) < prob  # Bernoulli(prob) per position
    choose &= ~torch.isin(cpu, torch.tensor(special))  # specials are never predicted
    u = torch.rand(cpu.shape, generator=generator)  # which of the three corruptions
    random_ids = candidates[torch.randint(len(candidates), cpu.shape, generator=generator)]
    action = torch.zeros(cpu.shape, dtype=torch.int8)
    action[choose & (u < p_mask)] = 1
    action[choose & (u >= p_mask) & (u < p_mask + p_random)] = 2
    action[choose & (u >= p_mask + p_random)] = 3
    inputs = torch.where(action == 1, mask_id, torch.where(action == 2, random_ids, cpu))
    targets = torch.where(choose, cpu, IGNORE)
    return MaskedTokens(inputs.to(device), targets.to(device), action.to(device))


# --------------------------------------------------------------------------- pre-training
def _special(special_ids, owner: str) -> dict[str, int]:
    if not isinstance(special_ids, Mapping) or not {"<mask>", "<cls>"} <= set(special_ids):
        raise TypeError(f"The 'special_ids' parameter of {owner} must be a mapping holding '<mask>' and '<cls>' "
                        f"(a tokenizer's special_ids). Got {special_ids!r} instead.")
    return dict(special_ids)


def mlm_windows(tokens: torch.Tensor, context: int, *, special_ids: Mapping[str, int], batch_size: int,
                vocab_size: int, prob: float = 0.15, generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An endless stream of masked batches cut from a token stream (dynamic masking).

    Each example is ``<cls>`` followed by a random window of ``context - 1`` consecutive
    tokens; every batch is masked afresh with :func:`mask_tokens` (so a window seen
    twice is masked differently, as in RoBERTa).

    Args:
        tokens: ``(T,)`` the token stream.
        context: N, the length of each example (``<cls>`` included).
        special_ids: the tokenizer's special ids (``<mask>`` and ``<cls>`` required).
        batch_size: examples per batch.
        vocab_size: |V|.
        prob: the fraction of tokens predicted. Default: 0.15.
        generator: the randomness of windows and masks. Default: None.

    Returns:
        An endless iterator of ``(inputs, targets)``, each ``(batch_size, context)``
        (the arguments are checked at the call, before the first batch).
    """
    owner = "mlm_windows"
    tokens = _check_tokens(tokens, owner)
    context = check_int(context, "context", owner, minimum=2)
    batch_size = check_int(batch_size, "batch_size", owner)
    special = _special(special_ids, owner)
    vocab_size = check_int(vocab_size, "vocab_size", owner)
    prob = check_float(prob, "prob", owner, low=0.0, high=1.0)
    generator = as_generator(generator, owner)
    if tokens.dim() != 1 or len(tokens) < context - 1:
        raise ValueError(f"The 'tokens' parameter of {owner} must be 1D with at least context - 1 = {context - 1} "
                         f"tokens. Got shape {tuple(tokens.shape)} instead.")
    return _window_stream(tokens, context, special, batch_size, vocab_size, prob, generator)


def _window_stream(tokens, context, special, batch_size, vocab_size, prob, generator):
    windows = tokens.unfold(0, context - 1, 1)  # (T - N + 2, N - 1) views
    cls = torch.full((batch_size, 1), special["<cls>"], dtype=torch.long)
    while True:
        rows = torch.randint(len(windows), (batch_size,), generator=generator)
        batch = torch.cat([cls, windows[rows]], 1)  # (B, N)
        out = mask_tokens(batch, mask_id=special["<mask>"], vocab_size=vocab_size, special_ids=special.values(),
                          prob=prob, generator=generator)
        yield out.inputs, out.targets


class MaskedEvaluation(NamedTuple):
    """What :func:`masked_token_cross_entropy` returns."""

    cross_entropy: float  # mean −log Pr(original token), nats
    targets: torch.Tensor  # (M,) the hidden original tokens
    nll: torch.Tensor  # (M,) −log Pr of each
    correct: torch.Tensor  # (M,) bool: the original token was the most probable


@torch.no_grad()
def masked_token_cross_entropy(model: MaskedLanguageModel, tokens: torch.Tensor, *, special_ids: Mapping[str, int],
                               context: int | None = None, prob: float = 0.15, seed: int = 0,
                               batch_size: int = 64) -> MaskedEvaluation:
    """Held-out masked-token cross-entropy, with every predicted token hidden behind ``<mask>``.

    The stream is cut into non-overlapping windows of ``context - 1`` tokens, each
    preceded by ``<cls>``; a seeded 15 % of the tokens are chosen and all of them
    replaced by ``<mask>`` (``p_mask = 1``: none of the predicted tokens is visible).

    Args:
        model: a :class:`MaskedLanguageModel` (evaluated in eval mode, mode restored).
        tokens: ``(T,)`` the held-out stream.
        special_ids: the tokenizer's special ids.
        context: the example length. Default: the model's context.
        prob: the fraction of tokens predicted. Default: 0.15.
        seed: which tokens are chosen. Default: 0.
        batch_size: windows per forward pass. Default: 64.

    Returns:
        :class:`MaskedEvaluation` ``(cross_entropy, targets, nll, correct)``: the mean
        −log Pr(original token) in nats over the M chosen positions, the original tokens
        ``(M,)``, each one's negative log-probability ``(M,)`` (so a baseline can be
        scored on the same tokens) and whether it was the most probable token ``(M,)``.
    """
    owner = "masked_token_cross_entropy"
    if not isinstance(model, MaskedLanguageModel):
        raise TypeError(f"The 'model' parameter of {owner} must be a MaskedLanguageModel. "
                        f"Got {type(model).__name__} instead.")
    tokens = _check_tokens(tokens, owner)
    special = _special(special_ids, owner)
    context = model.config.context if context is None else check_int(context, "context", owner, minimum=2)
    batch_size = check_int(batch_size, "batch_size", owner)
    n = context - 1
    if tokens.dim() != 1 or len(tokens) < n:
        raise ValueError(f"The 'tokens' parameter of {owner} must be 1D with at least {n} tokens. "
                         f"Got shape {tuple(tokens.shape)} instead.")
    windows = tokens[: len(tokens) // n * n].view(-1, n)  # (W, N - 1)
    windows = torch.cat([torch.full((len(windows), 1), special["<cls>"]), windows], 1)  # (W, N)
    out = mask_tokens(windows, mask_id=special["<mask>"], vocab_size=model.config.vocab_size,
                      special_ids=special.values(), prob=prob, p_mask=1.0, p_random=0.0,
                      generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    targets, nll, correct = [], [], []
    for i in range(0, len(windows), batch_size):
        x, y = out.inputs[i:i + batch_size].to(device), out.targets[i:i + batch_size].to(device)
        chosen = y != IGNORE
        logits = model.head(model.encoder(x)[chosen]).float()  # (M, |V|)
        nll.append(F.cross_entropy(logits, y[chosen], reduction="none").cpu())
        correct.append((logits.argmax(-1) == y[chosen]).cpu())
        targets.append(y[chosen].cpu())
    model.train(was_training)
    targets, nll = torch.cat(targets), torch.cat(nll)
    return MaskedEvaluation(float(nll.mean()), targets, nll, torch.cat(correct))


# --------------------------------------------------------------------------- fine-tuning
def encode_texts(texts, tokenizer, *, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids for a classifier: ``<cls>`` then the text's tokens, cut or padded to ``context``.

    Args:
        texts: a list of strings.
        tokenizer: a tokenizer with ``encode`` and ``special_ids`` (``<cls>``, ``<pad>``),
            e.g. :class:`udl.text.BPETokenizer`.
        context: N, the length of every row.

    Returns:
        ``(tokens, lengths)``: ``(n, N)`` ids padded with ``<pad>``, and ``(n,)`` the
        number of tokens each text had before any cut (a row is cut when
        ``1 + length > N``).
    """
    owner = "encode_texts"
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"The 'texts' parameter of {owner} must be a list of strings. Got {type(texts).__name__} "
                        f"instead.")
    context = check_int(context, "context", owner, minimum=2)
    special = getattr(tokenizer, "special_ids", None)
    if not callable(getattr(tokenizer, "encode", None)) or not isinstance(special, Mapping) \
            or not {"<cls>", "<pad>"} <= set(special):
        raise TypeError(f"The 'tokenizer' parameter of {owner} must have encode() and special_ids with '<cls>' "
                        f"and '<pad>'. Got {tokenizer!r} instead.")
    tokens = torch.full((len(texts), context), special["<pad>"], dtype=torch.long)
    lengths = torch.zeros(len(texts), dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [special["<cls>"], *tokenizer.encode(text)][:context]
        tokens[i, :len(ids)] = torch.tensor(ids)
        lengths[i] = len(tokenizer.encode(text))
    return tokens, lengths


@torch.no_grad()
def predict(classifier: BertClassifier, tokens: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities ``(n, K)`` of a classifier in eval mode (its mode is restored)."""
    if not isinstance(classifier, BertClassifier):
        raise TypeError(f"The 'classifier' parameter of predict must be a BertClassifier. "
                        f"Got {type(classifier).__name__} instead.")
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    out = torch.cat([torch.softmax(classifier(tokens[i:i + batch_size].to(device)).float(), -1).cpu()
                     for i in range(0, len(tokens), batch_size)])
    classifier.train(was_training)
    return out


# --------------------------------------------------------------------------- the 80/10/10 rule, measured
def measure_masking_rule(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                         special_ids: Mapping[str, int]) -> dict[str, float]:
    """Count what masked-token batches did to the tokens: BERT's rule, measured (fig. 12.10c).

    For each batch ``(inputs, targets)`` (as :func:`mlm_windows` yields them) the
    original token is the target where one is given (``targets != IGNORE``: a chosen
    position) and the input elsewhere. A chosen position shown as ``<mask>`` counts as
    masked, one shown as its original token as kept (a random draw of the token itself
    included), any other as replaced by a random token.

    Args:
        batches: an iterable of ``(inputs, targets)`` LongTensor pairs of equal shape.
        special_ids: the tokenizer's special tokens (holding ``<mask>`` and ``<cls>``).

    Returns:
        A dict of counts, ``ordinary`` (positions whose original token is not special),
        ``chosen``, ``mask``, ``random``, ``kept``, ``special_chosen`` (special tokens
        chosen: 0 under the rule) and ``random_special`` (special tokens drawn as a random
        replacement: 0), and of shares: ``chosen_share`` = chosen / ordinary (the
        prediction rate, 0.15) and ``mask_share``, ``random_share``, ``kept_share`` of the
        chosen positions (0.8, 0.1, 0.1).

    Example::

        >>> special = {"<pad>": 0, "<cls>": 1, "<mask>": 2}
        >>> inputs, targets = torch.tensor([[1, 2, 5, 6]]), torch.tensor([[IGNORE, 7, 5, IGNORE]])
        >>> rule = measure_masking_rule([(inputs, targets)], special_ids=special)
        >>> rule["ordinary"], rule["chosen"], rule["mask"], rule["kept"]
        (3, 2, 1, 1)
    """
    owner = "measure_masking_rule"
    special = _special(special_ids, owner)
    special_tensor = torch.tensor(sorted(special.values()))
    counts = dict.fromkeys(("ordinary", "chosen", "special_chosen", "mask", "random", "kept", "random_special"), 0)
    for inputs, targets in batches:
        if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
            raise TypeError(f"The 'batches' parameter of {owner} must yield (inputs, targets) tensors. "
                            f"Got {type(inputs).__name__} and {type(targets).__name__} instead.")
        if inputs.shape != targets.shape:
            raise ValueError(f"The 'batches' parameter of {owner} must yield inputs and targets of one shape. "
                             f"Got {tuple(inputs.shape)} and {tuple(targets.shape)} instead.")
        chosen = targets != IGNORE
        original = torch.where(chosen, targets, inputs)
        is_special = torch.isin(original, special_tensor)
        masked = chosen & (inputs == special["<mask>"])
        kept = chosen & (inputs == original)
        replaced = chosen & ~masked & ~kept
        counts["ordinary"] += int((~is_special).sum())
        counts["chosen"] += int(chosen.sum())
        counts["special_chosen"] += int((chosen & is_special).sum())
        counts["mask"] += int(masked.sum())
        counts["kept"] += int(kept.sum())
        counts["random"] += int(replaced.sum())
        counts["random_special"] += int((replaced & torch.isin(inputs, special_tensor)).sum())
    shares = {f"{k}_share": counts[k] / max(1, counts["chosen"]) for k in ("mask", "random", "kept")}
    return {**counts, "chosen_share": counts["chosen"] / max(1, counts["ordinary"]), **shares}
