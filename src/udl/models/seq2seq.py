"""An encoder-decoder transformer with cross-attention, for translation (UDL §12.8, figs. 12.13-12.14).

Translation maps a source sentence x_1 ... x_S to a target sentence y_1 ... y_T. The
encoder-decoder factors the target's probability by the chain rule, each factor
conditioned on the whole source::

    Pr(y_1, ..., y_T | x) = Π_t Pr(y_t | y_1, ..., y_{t-1}, x)

- The **encoder** embeds the source tokens (Ω_e times one-hot vectors plus a position
  embedding) and passes them through transformer layers with ordinary, unmasked
  self-attention: every source token sees every other (fig. 12.13a). Its output is one
  D-dimensional vector per source token, X_enc.
- The **decoder** embeds ``<bos> y_1 ... y_{T-1}`` and passes it through layers of
  three blocks: *masked* self-attention (position t sees positions ≤ t, §12.7.2),
  **cross-attention**, and the per-token MLP (fig. 12.13b). In cross-attention the
  queries come from the decoder and the keys and values from the encoder's output
  (fig. 12.14, in the book's column convention)::

      Q = β_q 1ᵀ + Ω_q X_dec,   K = β_k 1ᵀ + Ω_k X_enc,   V = β_v 1ᵀ + Ω_v X_enc
      Ca[X_dec, X_enc] = V · Softmax[Kᵀ Q / √D_q]          (as eq. 12.10)

  so each target position takes a weighted sum of the source tokens' values, the
  weights (one column per target position) summing to one over the source.
- A linear layer maps the decoder's output at position t to |V| logits for y_{t+1};
  training minimises the cross-entropy of every next target token given the true
  earlier ones ("teacher forcing"), as for the decoder-only model (§12.7.1).

Source padding is masked out of every attention over the source (``key_padding_mask``),
so padding changes nothing for the real tokens. Translation runs the decoder one token at
a time, greedily or by beam search, with a cache of each layer's keys and values: the
self-attention cache grows by one token per step, the cross-attention keys and values
of the encoder's output are computed once.

The layers are :class:`udl.nn.transformer.TransformerLayer` (the book's post-LN order by
default); the original transformer (Vaswani et al. 2017) has 6 + 6 layers of D = 512.
Training (:func:`~udl.train.transformers.train_seq2seq`, and the small translator of figs.
12.13-12.14 on :mod:`udl.data.numbers`, :func:`~udl.train.transformers.train_translator`)
lives in :mod:`udl.train.transformers`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.attention import record_attention_weights
from udl.nn.init import initialised_from
from udl.nn.transformer import (LearnedPositions, TokenEmbedding, TransformerLayer,
                                 check_transformer_config)
from udl.validate import as_generator, check_choice, check_int, check_tensor

__all__ = ["Seq2SeqConfig", "EncoderDecoder", "seq2seq_loss", "greedy_decode", "beam_search",
           "decoder_causal_gradient", "cross_attention_weights", "cross_attention_provenance",
           "TranslationScores", "evaluate_translation"]

STRATEGIES = ("greedy", "beam")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Seq2SeqConfig:
    """The shape of an :class:`EncoderDecoder`.

    Presets: :meth:`tiny` (for tests) and :meth:`numbers` (the translator of figs.
    12.13-12.14, sized for :mod:`udl.data.numbers`).

    Example::

        >>> Seq2SeqConfig.tiny().d_head
        8
    """

    src_vocab_size: int  # |V_src|, source tokens
    tgt_vocab_size: int  # |V_tgt|, target tokens
    src_context: int  # the longest source sentence (learned positions exist up to it)
    tgt_context: int  # the longest decoder input, <bos> included
    n_encoder_layers: int = 3  # L_enc
    n_decoder_layers: int = 3  # L_dec
    d_model: int = 128  # D, the embedding size of both stacks
    n_heads: int = 4  # H; each head has D/H dimensions
    d_mlp: int | None = None  # hidden width of each token's MLP; None means 4·D
    dropout: float = 0.0  # dropout on embeddings, attention weights and block outputs (training only)
    norm_first: bool = False  # False: the book's post-LN layer (fig. 12.7); True: pre-LN + final LayerNorms
    activation: str = "relu"  # the MLP's activation: "relu", "gelu" or "gelu_tanh"
    bias: bool = True  # biases in the linear layers and LayerNorms
    tie_embeddings: bool = True  # the output layer reuses the target embedding matrix (transposed)
    pad_id: int = 0  # the padding token of both vocabularies
    bos_id: int = 1  # the target's start token
    eos_id: int = 2  # the target's end token

    def __post_init__(self):
        owner = "Seq2SeqConfig"
        check_transformer_config(self, owner, ("src_vocab_size", "tgt_vocab_size", "src_context", "tgt_context",
                                               "n_encoder_layers", "n_decoder_layers", "d_model", "n_heads"),
                                 ("norm_first", "bias", "tie_embeddings"))
        for name in ("pad_id", "bos_id", "eos_id"):
            value = check_int(getattr(self, name), name, owner, minimum=0)
            if value >= self.tgt_vocab_size:
                raise ValueError(f"The {name!r} parameter of {owner} must be a target token id "
                                 f"(< {self.tgt_vocab_size}). Got {value} instead.")
        if self.pad_id >= self.src_vocab_size:
            raise ValueError(f"The 'pad_id' parameter of {owner} must be a source token id "
                             f"(< {self.src_vocab_size}). Got {self.pad_id} instead.")
        for name, other in (("bos_id", "pad_id"), ("eos_id", "pad_id"), ("eos_id", "bos_id")):
            if getattr(self, name) == getattr(self, other):  # the three special tokens are distinct
                raise ValueError(f"The {name!r} parameter of {owner} must differ from {other} = "
                                 f"{getattr(self, other)}. Got {getattr(self, name)} instead.")

    @property
    def d_head(self) -> int:
        """D/H, the size of each head's queries, keys and values."""
        return self.d_model // self.n_heads

    @classmethod
    def tiny(cls, **changes) -> Seq2SeqConfig:
        """For tests: |V_src| = 13, |V_tgt| = 11, contexts 8 and 10, 2 + 2 layers, D = 16, 2 heads."""
        return cls(**{**dict(src_vocab_size=13, tgt_vocab_size=11, src_context=8, tgt_context=10,
                             n_encoder_layers=2, n_decoder_layers=2, d_model=16, n_heads=2), **changes})

    @classmethod
    def numbers(cls, max_digits: int = 9, *, commas: bool = True, **changes) -> Seq2SeqConfig:
        """The digits-to-words translator: vocabularies and lengths of :mod:`udl.data.numbers`.

        Default sizes: 3 + 3 layers, D = 128, 4 heads, MLP 512 (1,398,400 parameters). Figs.
        12.13-12.14 train a smaller one, ``numbers(d_model=64, n_encoder_layers=2,
        n_decoder_layers=2, d_mlp=128)`` (172,352 parameters), to over 99 % held-out exact match.
        """
        from udl.data import numbers

        return cls(**{**dict(src_vocab_size=len(numbers.SOURCE_VOCAB), tgt_vocab_size=len(numbers.TARGET_VOCAB),
                             src_context=numbers.source_length(max_digits, commas=commas),
                             tgt_context=numbers.target_length(max_digits), pad_id=numbers.PAD,
                             bos_id=numbers.BOS, eos_id=numbers.EOS), **changes})

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- model
class EncoderDecoder(nn.Module):
    """A transformer encoder-decoder: unmasked encoder, decoder with masked self- and cross-attention.

    ``src → Ω_e[src] + positions → L_enc × TransformerLayer → X_enc``;
    ``tgt_in → Ω'_e[tgt_in] + positions → L_dec × TransformerLayer(causal, cross-attention to X_enc) → logits``.

    Args:
        config: a :class:`Seq2SeqConfig`.
        generator: randomness of the initial weights: matrices N(0, 0.02²), biases 0,
            LayerNorm gains 1; a ``torch.Generator`` or an int seed. Default: None (torch's
            global generator).

    Shape:
        ``src``: ``(B, S)`` source ids, S <= ``src_context``, padded on the right with
        ``pad_id``; ``tgt_in``: ``(B, T)`` target ids starting with ``<bos>``, T <=
        ``tgt_context`` -> logits ``(B, T, |V_tgt|)``; ``logits[:, t]`` scores y_{t+1}.

    Example::

        >>> model = EncoderDecoder(Seq2SeqConfig.tiny(), generator=torch.Generator().manual_seed(0))
        >>> model(torch.tensor([[3, 4, 5, 0]]), torch.tensor([[1, 6, 7]])).shape
        torch.Size([1, 3, 11])
    """

    def __init__(self, config: Seq2SeqConfig, *, generator: torch.Generator | int | None = None):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"The 'config' parameter of EncoderDecoder must be a Seq2SeqConfig. "
                            f"Got {config!r} instead.")
        generator = as_generator(generator, "EncoderDecoder")
        self.config = c = config
        kw = dict(dropout=c.dropout, norm_first=c.norm_first, activation=c.activation, bias=c.bias)
        with initialised_from(self, generator, own_rule_only=True):  # reset_parameters draws every weight
            self.src_embed = TokenEmbedding(c.src_vocab_size, c.d_model)
            self.src_positions = LearnedPositions(c.src_context, c.d_model)
            self.encoder = nn.ModuleList(TransformerLayer(c.d_model, c.n_heads, c.d_mlp, **kw)
                                         for _ in range(c.n_encoder_layers))
            self.tgt_embed = TokenEmbedding(c.tgt_vocab_size, c.d_model)
            self.tgt_positions = LearnedPositions(c.tgt_context, c.d_model)
            self.decoder = nn.ModuleList(TransformerLayer(c.d_model, c.n_heads, c.d_mlp, cross_attention=True, **kw)
                                         for _ in range(c.n_decoder_layers))
            # pre-LN leaves each stack's residual stream un-normalised: one LayerNorm at the end of each
            self.encoder_norm = nn.LayerNorm(c.d_model, bias=c.bias) if c.norm_first else nn.Identity()
            self.decoder_norm = nn.LayerNorm(c.d_model, bias=c.bias) if c.norm_first else nn.Identity()
            self.head = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        if c.tie_embeddings:  # after the block: moving off the meta device unties shared parameters
            self.head.weight = self.tgt_embed.weight  # logits = h · Ω'_eᵀ

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Matrices N(0, 0.02²), biases 0, LayerNorm gains 1; drawn on the CPU (same numbers on every device)."""
        for name, p in self.named_parameters():  # tied weights appear once
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 1:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)

    # ------------------------------------------------------------------ pieces
    def source_padding_mask(self, src: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` boolean, True at real source tokens and False at ``pad_id``."""
        return src != self.config.pad_id

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.config.dropout, self.training) if self.config.dropout > 0 else x

    def embed_source(self, src: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings of the source, ``(B, S)`` -> ``(B, S, D)``."""
        return self.src_positions(self.src_embed(src))

    def embed_target(self, tgt: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Token plus position embeddings of decoder inputs at positions offset, offset + 1, ..."""
        return self.tgt_positions(self.tgt_embed(tgt), offset)

    def encode_embedded(self, x: torch.Tensor, src_padding_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder stack on given embeddings ``(B, S, D)`` -> X_enc ``(B, S, D)``."""
        x = self._dropout(x)
        for layer in self.encoder:
            x = layer(x, padding_mask=src_padding_mask)  # unmasked self-attention over the real tokens
        return self.encoder_norm(x)

    def decode_embedded(self, x: torch.Tensor, memory: torch.Tensor, src_padding_mask: torch.Tensor | None, *,
                        cache: dict | None = None) -> torch.Tensor:
        """The decoder stack on given embeddings ``(B, T, D)`` and X_enc ``(B, S, D)`` -> logits ``(B, T, |V|)``."""
        x = self._dropout(x)
        caches = [None] * len(self.decoder) if cache is None else cache.setdefault("layers", [{} for _ in self.decoder])
        for layer, layer_cache in zip(self.decoder, caches):
            # masked self-attention, then cross-attention: queries from x, keys and values from X_enc
            x = layer(x, memory, causal=True, context_padding_mask=src_padding_mask, cache=layer_cache)
        return self.head(self.decoder_norm(x))

    # ------------------------------------------------------------------ public
    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """X_enc, the encoder's output: one vector per source token.

        Shape:
            ``(B, S)`` -> ``(B, S, D)`` (the rows at padding are computed but never attended to).
        """
        src = self._check_tokens(src, "src", self.config.src_vocab_size, self.config.src_context, "encode")
        return self.encode_embedded(self.embed_source(src), self.source_padding_mask(src))

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_padding_mask: torch.Tensor | None = None, *,
               cache: dict | None = None) -> torch.Tensor:
        """Next-token logits of decoder inputs ``tgt`` given X_enc.

        Args:
            tgt: ``(B, T)`` target ids (``<bos>`` first when starting).
            memory: X_enc ``(B, S, D)`` from :meth:`encode`.
            src_padding_mask: ``(B, S)``, False at source padding. Default: None (no padding).
            cache: for step-by-step decoding, a dict (start with ``{}``) keeping every layer's
                self-attention keys and values, the cross-attention keys and values of
                ``memory`` (computed at the first call) and the positions seen
                ("length"); each call appends ``tgt`` after those positions. Default: None.

        Shape:
            -> ``(B, T, |V_tgt|)``.
        """
        offset = 0 if cache is None else cache.get("length", 0)
        tgt = self._check_tokens(tgt, "tgt", self.config.tgt_vocab_size, self.config.tgt_context - offset, "decode")
        logits = self.decode_embedded(self.embed_target(tgt, offset), memory, src_padding_mask, cache=cache)
        if cache is not None:
            cache["length"] = offset + tgt.shape[1]
        return logits

    def decode_step(self, token: torch.Tensor, memory: torch.Tensor, src_padding_mask: torch.Tensor | None,
                    cache: dict) -> torch.Tensor:
        """One step of translation: the logits that follow ``token`` (the latest target token of each row).

        Shape:
            ``token``: ``(B,)`` -> ``(B, |V_tgt|)``.
        """
        if not isinstance(cache, dict):
            raise TypeError(f"The 'cache' parameter of decode_step must be a dict. Got {cache!r} instead.")
        return self.decode(token.reshape(-1, 1), memory, src_padding_mask, cache=cache)[:, -1]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits of y_{t+1} given the source and the true y_1 ... y_t, for every t at once."""
        src = self._check_tokens(src, "src", self.config.src_vocab_size, self.config.src_context, "forward")
        mask = self.source_padding_mask(src)
        return self.decode(tgt_in, self.encode_embedded(self.embed_source(src), mask), mask)

    @torch.no_grad()
    def translate(self, src: torch.Tensor, *, max_len: int | None = None, strategy: str = "greedy",
                  beam_width: int = 4, use_cache: bool = True) -> torch.Tensor:
        """The model's translation of each source sentence (eval mode; the mode is restored after).

        Args:
            src: ``(B, S)`` source ids.
            max_len: the most tokens to generate. Default: None (``tgt_context``).
            strategy: "greedy" (the most likely token each step) or "beam" (beam search,
                the most likely sequence among ``beam_width`` kept). Default: "greedy".
            beam_width: W for beam search. Default: 4.
            use_cache: decode with the key/value cache (same tokens, fewer operations). Default: True.

        Returns:
            ``(B, L)`` generated ids after ``<bos>``: the tokens, ``<eos>``, then ``<pad>``
            (L <= max_len; a row without ``<eos>`` ran out of length).
        """
        check_choice(strategy, "strategy", "translate", STRATEGIES)
        if strategy == "greedy":
            return greedy_decode(self, src, max_len=max_len, use_cache=use_cache)
        return beam_search(self, src, beam_width=beam_width, max_len=max_len, use_cache=use_cache)[0][:, 0]

    def _check_tokens(self, tokens, name: str, vocab: int, context: int, method: str) -> torch.Tensor:
        check_tensor(tokens, name, f"EncoderDecoder.{method}", ndim=2, dtype=torch.long)  # (B, N) ids
        if not 1 <= tokens.shape[1] <= context:
            raise ValueError(f"The {name!r} parameter of EncoderDecoder.{method} must hold 1 to {context} tokens "
                             f"per row. Got {tokens.shape[1]} instead.")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            raise ValueError(f"The {name!r} parameter of EncoderDecoder.{method} must hold ids in [0, {vocab}). "
                             f"Got values in [{int(tokens.min())}, {int(tokens.max())}] instead.")
        return tokens


# --------------------------------------------------------------------------- loss and decoding
def seq2seq_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """Mean cross-entropy −log Pr(y_{t+1} | y_≤t, x) over the real (non-padding) target tokens.

    Shape:
        ``logits``: ``(B, T, |V|)``; ``targets``: ``(B, T)`` -> scalar.
    """
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=pad_id)


def _prepare(model, src, max_len, owner):
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"The 'model' parameter of {owner} must be an EncoderDecoder. "
                        f"Got {type(model).__name__} instead.")
    c = model.config
    max_len = c.tgt_context if max_len is None else check_int(max_len, "max_len", owner)
    if max_len > c.tgt_context:
        raise ValueError(f"The 'max_len' parameter of {owner} must be at most tgt_context = {c.tgt_context}. "
                         f"Got {max_len} instead.")
    src = model._check_tokens(src, "src", c.src_vocab_size, c.src_context, owner)
    return src.to(next(model.parameters()).device), max_len


class _Stepper:
    """Next-token logits for a batch of growing target prefixes, with or without the cache."""

    def __init__(self, model: EncoderDecoder, memory, mask, use_cache: bool):
        self.model, self.memory, self.mask = model, memory, mask
        self.cache: dict | None = {} if use_cache else None

    def __call__(self, seqs: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            return self.model.decode(seqs, self.memory, self.mask)[:, -1]  # the whole prefix again
        return self.model.decode_step(seqs[:, -1], self.memory, self.mask, self.cache)  # (B, |V|)

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) rows of the batch: row i <- row ``rows[i]``, cache included."""
        self.memory, self.mask = self.memory[rows], self.mask[rows]
        if self.cache is None:
            return
        for layer in self.cache["layers"]:
            for block in layer.values():
                for name in ("k", "v"):
                    block[name] = block[name][rows]  # (B, H, T, D/H)


def _eval(model):
    was = model.training
    model.eval()
    return was


@torch.no_grad()
def greedy_decode(model: EncoderDecoder, src: torch.Tensor, *, max_len: int | None = None,
                  use_cache: bool = True) -> torch.Tensor:
    """Translate by choosing the most likely next token at every step, argmax_j Pr(y_{t+1} = j | y_≤t, x).

    Args:
        model: an :class:`EncoderDecoder` (run in eval mode; its mode is restored).
        src: ``(B, S)`` source ids.
        max_len: the most tokens to generate. Default: None (``tgt_context``).
        use_cache: one token per decoder pass with the key/value cache. Default: True.

    Returns:
        ``(B, L)``: generated ids, ``<eos>``, then ``<pad>``.
    """
    src, max_len = _prepare(model, src, max_len, "greedy_decode")
    c, was = model.config, _eval(model)
    try:
        step = _Stepper(model, model.encode(src), model.source_padding_mask(src), use_cache)
        seqs = torch.full((src.shape[0], 1), c.bos_id, dtype=torch.long, device=src.device)  # (B, 1)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            nxt = step(seqs).argmax(-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, c.pad_id), nxt)
            done |= nxt == c.eos_id
            seqs = torch.cat([seqs, nxt[:, None]], 1)
            if bool(done.all()):
                break
        return seqs[:, 1:].cpu()
    finally:
        model.train(was)


@torch.no_grad()
def beam_search(model: EncoderDecoder, src: torch.Tensor, *, beam_width: int = 4, max_len: int | None = None,
                use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``beam_width`` most likely translations of each source sentence found by beam search.

    Every row keeps W partial translations scored by their log-probability
    Σ_t log Pr(y_t | y_<t, x) (no length normalisation); each step extends every beam by
    every token and keeps the best W of the W·|V| candidates. A beam that has produced
    ``<eos>`` is finished: it continues with ``<pad>`` at no cost. Width 1 is greedy
    decoding. The rows of the batch are searched together.

    Args:
        model: an :class:`EncoderDecoder` (run in eval mode; its mode is restored).
        src: ``(B, S)`` source ids.
        beam_width: W. Default: 4.
        max_len: the most tokens to generate. Default: None (``tgt_context``).
        use_cache: decode with the key/value cache, reordered as beams are chosen. Default: True.

    Returns:
        ``(tokens (B, W, L), scores (B, W))``, best first; tokens as :func:`greedy_decode`.
        Beams that never had a finite score (W larger than the candidates) score −∞.
    """
    owner = "beam_search"
    src, max_len = _prepare(model, src, max_len, owner)
    W = check_int(beam_width, "beam_width", owner)
    c, was = model.config, _eval(model)
    try:
        B, V, dev = src.shape[0], c.tgt_vocab_size, src.device
        rows = torch.arange(B, device=dev).repeat_interleave(W)  # (B·W,): W copies of every row
        step = _Stepper(model, model.encode(src)[rows], model.source_padding_mask(src)[rows], use_cache)
        seqs = torch.full((B * W, 1), c.bos_id, dtype=torch.long, device=dev)
        scores = torch.full((B, W), float("-inf"), dtype=torch.float64, device=dev)
        scores[:, 0] = 0.0  # one live beam per row to start with, so no candidate is counted twice
        finished = torch.zeros(B * W, dtype=torch.bool, device=dev)
        after_eos = torch.full((V,), float("-inf"), dtype=torch.float64, device=dev)
        after_eos[c.pad_id] = 0.0
        for _ in range(max_len):
            logp = torch.log_softmax(step(seqs).double(), -1)  # (B·W, |V|)
            logp = torch.where(finished[:, None], after_eos, logp)
            candidates = (scores.reshape(-1, 1) + logp).reshape(B, W * V)  # (B, W·|V|)
            scores, flat = torch.topk(candidates, W, dim=-1)  # (B, W), sorted best first
            keep = (torch.arange(B, device=dev)[:, None] * W + flat // V).reshape(-1)  # (B·W,) rows kept
            token = (flat % V).reshape(-1)  # (B·W,)
            seqs = torch.cat([seqs[keep], token[:, None]], 1)
            finished = finished[keep] | (token == c.eos_id)
            step.reorder(keep)
            if bool(finished.all()):
                break
        return seqs[:, 1:].reshape(B, W, -1).cpu(), scores.cpu()
    finally:
        model.train(was)


# --------------------------------------------------------------------------- measurements
def _one_pair(model, src, tgt_in, owner):
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"The 'model' parameter of {owner} must be an EncoderDecoder. "
                        f"Got {type(model).__name__} instead.")
    c = model.config
    src = model._check_tokens(src, "src", c.src_vocab_size, c.src_context, owner)
    tgt_in = model._check_tokens(tgt_in, "tgt_in", c.tgt_vocab_size, c.tgt_context, owner)
    if src.shape[0] != tgt_in.shape[0]:
        raise ValueError(f"The 'tgt_in' parameter of {owner} must have as many rows as src ({src.shape[0]}). "
                         f"Got {tgt_in.shape[0]} instead.")
    device = next(model.parameters()).device
    return src.to(device), tgt_in.to(device)


def decoder_causal_gradient(model: EncoderDecoder, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """How much each decoder output depends on each decoder input: G[t, t'] = max |∂ logits_t / ∂ e_t'|.

    The gradient is taken with respect to the decoder's input embeddings e_t' (token
    plus position) of the first pair of the batch, for the sum of the logits at
    position t. Masked self-attention makes G[t, t'] exactly zero for t' > t: the
    prediction of y_{t+1} cannot see the later target tokens (§12.7.2).

    Shape:
        ``src`` ``(B, S)``, ``tgt_in`` ``(B, T)`` -> ``(T, T)``, rows t (outputs), columns t' (inputs).
    """
    src, tgt_in = _one_pair(model, src[:1] if torch.is_tensor(src) else src,
                            tgt_in[:1] if torch.is_tensor(tgt_in) else tgt_in, "decoder_causal_gradient")
    mask = model.source_padding_mask(src)
    memory = model.encode_embedded(model.embed_source(src), mask)
    e = model.embed_target(tgt_in).detach().requires_grad_()  # (1, T, D)
    out = model.decode_embedded(e, memory, mask)  # (1, T, |V|)
    n = tgt_in.shape[1]
    rows = []
    for t in range(n):
        (g,) = torch.autograd.grad(out[0, t].sum(), e, retain_graph=t < n - 1)
        rows.append(g[0].abs().amax(-1))  # (T,)
    return torch.stack(rows).detach().cpu()  # (T, T)


@torch.no_grad()
def cross_attention_weights(model: EncoderDecoder, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """The cross-attention weights of every decoder layer and head (teacher-forced on ``tgt_in``).

    Entry ``[l, b, h, t, s]`` is how much target position t (the query that predicts
    y_{t+1}) draws on source token s in head h of decoder layer l; each row sums to one
    over the real source tokens and is zero at padding.

    Shape:
        ``src`` ``(B, S)``, ``tgt_in`` ``(B, T)`` -> ``(L_dec, B, H, T, S)``.
    """
    src, tgt_in = _one_pair(model, src, tgt_in, "cross_attention_weights")
    was = _eval(model)
    try:
        with record_attention_weights([layer.cross_attn for layer in model.decoder]) as weights:
            model(src, tgt_in)
        return torch.stack(weights).cpu()  # (L, B, H, T, S)
    finally:
        model.train(was)


def _decoder_state(layer: TransformerLayer, y: torch.Tensor) -> torch.Tensor:
    """The decoder's hidden state that enters the cross-attention block of ``layer`` with input ``y``.

    Post-LN: LayerNorm[y + MhSa[y]]; pre-LN: the cross block's own LayerNorm of
    y + MhSa[LayerNorm[y]] (dropout off).
    """
    if layer.norm_first:
        return layer.norm_cross(y + layer.self_attn(layer.norm1(y), causal=True))
    return layer.norm1(y + layer.self_attn(y, causal=True))


def cross_attention_provenance(model: EncoderDecoder, src: torch.Tensor, tgt_in: torch.Tensor, *,
                               generator: torch.Generator | None = None) -> dict[str, list[float]]:
    """Where cross-attention's queries, keys and values come from, measured per decoder layer.

    Hooks record what each decoder layer's cross-attention receives and what its three
    projections output, in one teacher-forced pass (eval mode) from the embeddings
    e_src, e_tgt. Returned lists have one entry per decoder layer:

    - ``context_vs_encoder``: max |context − X_enc|, X_enc from a separate call of
      :meth:`EncoderDecoder.encode` (0: the keys' and values' input is the encoder output);
    - ``query_input_vs_decoder``: max |query input − the decoder's hidden state|, the
      state recomputed from the layer's input by its own masked self-attention block (0);
    - ``grad_{q,k,v}_{src,tgt}``: ‖∂(Σ R ⊙ P)/∂e‖ for the projection P = Q, K or V,
      R random (``generator``), e = e_src or e_tgt. K and V have zero gradient
      with respect to the target: they depend on the source only; Q depends on the
      target, and in the first layer on nothing else.
    """
    owner = "cross_attention_provenance"
    generator = as_generator(generator, owner)
    src, tgt_in = _one_pair(model, src, tgt_in, owner)
    was = _eval(model)
    records: list[dict] = [{} for _ in model.decoder]
    handles = []

    def save(layer_record, key):
        return lambda module, args, out: layer_record.__setitem__(key, out)

    for record, layer in zip(records, model.decoder):
        attn = layer.cross_attn
        handles.append(layer.register_forward_pre_hook(lambda m, args, r=record: r.__setitem__("y", args[0])))
        handles.append(attn.register_forward_pre_hook(
            lambda m, args, r=record: r.update(query_input=args[0], context=args[1])))
        for name in ("q", "k", "v"):
            handles.append(getattr(attn, f"{name}_proj").register_forward_hook(save(record, name)))
    try:
        mask = model.source_padding_mask(src)
        with torch.no_grad():
            encoder_output = model.encode(src)
        e_src = model.embed_source(src).detach().requires_grad_()
        e_tgt = model.embed_target(tgt_in).detach().requires_grad_()
        model.decode_embedded(e_tgt, model.encode_embedded(e_src, mask), mask)
        out: dict[str, list[float]] = {k: [] for k in ("context_vs_encoder", "query_input_vs_decoder")}
        for layer, r in zip(model.decoder, records):
            out["context_vs_encoder"].append(float((r["context"].detach() - encoder_output).abs().max()))
            with torch.no_grad():
                state = _decoder_state(layer, r["y"])
            out["query_input_vs_decoder"].append(float((r["query_input"].detach() - state).abs().max()))
            for name in ("q", "k", "v"):
                weights = torch.randn(r[name].shape, generator=generator).to(r[name].device)
                grads = torch.autograd.grad((weights * r[name]).sum(), [e_src, e_tgt], retain_graph=True,
                                            allow_unused=True)
                for which, g in zip(("src", "tgt"), grads):
                    out.setdefault(f"grad_{name}_{which}", []).append(0.0 if g is None else float(g.norm()))
        return out
    finally:
        for h in handles:
            h.remove()
        model.train(was)


class TranslationScores(NamedTuple):
    """How well a model translates a set of pairs."""

    exact_match: float  # share of sentences translated exactly (up to and including <eos>)
    token_accuracy: float  # share of target tokens predicted right under teacher forcing
    correct: torch.Tensor  # (B,) bool, sentence by sentence
    predictions: torch.Tensor  # (B, L) the generated ids (tokens, <eos>, <pad>)


@torch.no_grad()
def evaluate_translation(model: EncoderDecoder, src: torch.Tensor, tgt: torch.Tensor, *, strategy: str = "greedy",
                         beam_width: int = 4, batch_size: int = 512) -> TranslationScores:
    """Exact-match accuracy of translations and teacher-forced token accuracy.

    Args:
        model: an :class:`EncoderDecoder` (run in eval mode; its mode is restored).
        src: ``(B, S)`` source ids.
        tgt: ``(B, T)`` targets ``<bos> y_1 ... <eos> <pad> ...``.
        strategy: "greedy" or "beam". Default: "greedy".
        beam_width: W for beam search. Default: 4.
        batch_size: sentences per pass. Default: 512.
    """
    owner = "evaluate_translation"
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"The 'model' parameter of {owner} must be an EncoderDecoder. "
                        f"Got {type(model).__name__} instead.")
    check_choice(strategy, "strategy", owner, STRATEGIES)
    batch_size = check_int(batch_size, "batch_size", owner)
    c = model.config
    src = model._check_tokens(src, "src", c.src_vocab_size, c.src_context, owner)
    tgt = model._check_tokens(tgt, "tgt", c.tgt_vocab_size, c.tgt_context + 1, owner)
    if len(src) != len(tgt):
        raise ValueError(f"The 'tgt' parameter of {owner} must have as many rows as src ({len(src)}). "
                         f"Got {len(tgt)} instead.")
    device = next(model.parameters()).device
    was = _eval(model)
    try:
        hits, count, correct, predictions = 0, 0, [], []
        for i in range(0, len(src), batch_size):
            s, t = src[i:i + batch_size].to(device), tgt[i:i + batch_size].to(device)
            target = t[:, 1:]  # (b, T-1)
            real = target != c.pad_id
            hits += int(((model(s, t[:, :-1]).argmax(-1) == target) & real).sum())
            count += int(real.sum())
            pred = model.translate(s, max_len=min(c.tgt_context, target.shape[1]), strategy=strategy,
                                   beam_width=beam_width)
            width = max(pred.shape[1], target.shape[1])
            pred = F.pad(pred, (0, width - pred.shape[1]), value=c.pad_id)
            target = F.pad(target.cpu(), (0, width - target.shape[1]), value=c.pad_id)
            correct.append((pred == target).all(-1))
            predictions.append(pred)
        width = max(p.shape[1] for p in predictions)
        predictions = torch.cat([F.pad(p, (0, width - p.shape[1]), value=c.pad_id) for p in predictions])
        correct = torch.cat(correct)
        return TranslationScores(float(correct.float().mean()), hits / max(count, 1), correct, predictions)
    finally:
        model.train(was)
