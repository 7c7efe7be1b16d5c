"""Generating text from a decoder: greedy, top-k, nucleus sampling and beam search (UDL §12.7.3).

A decoder gives Pr(x_{t+1} | x_1 ... x_t), a distribution over the vocabulary. Text is
generated one token at a time: choose the next token, append it, run the model again.
The strategies differ in how they choose:

- **greedy**: the most likely token, argmax_j Pr(x_{t+1} = j | x_{≤t}). Deterministic,
  and prone to repeat itself.
- **top-k sampling**: draw from the k most likely tokens, their probabilities
  renormalised to sum to one; the long tail of unlikely tokens is never drawn.
- **nucleus (top-p) sampling**: draw from the smallest set of most likely tokens whose
  total probability reaches p, renormalised; the set is small where the model is sure
  and large where it is not.
- **beam search**: keep the W partial sequences with the highest log-probability
  Σ log Pr(x_s | x_{<s}); extend each by every token, keep the best W of the W·|V|
  candidates, and return the best at the end. Width 1 is greedy; a width of
  |V|^{n-1} for n new tokens is exhaustive search.

A temperature τ divides the logits before sampling: τ < 1 sharpens the distribution,
τ > 1 flattens it.

The key/value cache makes each step cost one token's forward pass instead of the
whole sequence's: every layer keeps the keys and values of the positions already seen
(:class:`udl.nn.attention.MultiHeadAttention`), and masked self-attention guarantees
that these never change when tokens are appended. Past the model's context the
decoder sees the last ``context`` tokens only, and the positions shift, so the cache
is no longer valid: the full window is recomputed at every step.

Prompts of different lengths are decoded in one batch, padded on the left as Hugging
Face's ``generate`` does; the model's padding mask makes each row's tokens exactly those
of the prompt decoded alone. Beam search decodes one prompt at a time.
"""

from __future__ import annotations

import torch

from udl.models.gpt import GPT
from udl.validate import as_generator, check_choice, check_float, check_int, check_tensor

__all__ = ["STRATEGIES", "top_k_filter", "nucleus_filter", "next_token_distribution", "sample_next", "generate",
           "beam_search", "reorder_cache"]

STRATEGIES = ("greedy", "top_k", "nucleus", "beam")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row, set the others to −∞ (ties at the k-th value are kept).

    Shape:
        ``(..., |V|)`` -> same.

    Example::

        >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0]), 2)
        tensor([-inf, 3., 2.])
    """
    k = check_int(k, "k", "top_k_filter")
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def nucleus_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability mass reaches p; −∞ elsewhere.

    Sorted by probability π_(1) >= π_(2) >= ..., token (i) is kept when the mass before
    it, Σ_{j<i} π_(j), is still below p; so the kept mass is >= p, and dropping the
    least likely kept token would bring it below p. The most likely token is always kept.

    Shape:
        ``(..., |V|)`` -> same.

    Example::

        >>> nucleus_filter(torch.log(torch.tensor([0.5, 0.3, 0.2])), 0.7)
        tensor([-0.6931, -1.2040,    -inf])
    """
    p = check_float(p, "p", "nucleus_filter", low=0.0, high=1.0, low_open=True)
    probs = torch.softmax(logits.double(), -1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    mass_before = torch.cumsum(sorted_probs, -1) - sorted_probs  # Σ_{j<i} π_(j)
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def next_token_distribution(logits: torch.Tensor, *, strategy: str = "top_k", k: int = 50, p: float = 0.9,
                            temperature: float = 1.0) -> torch.Tensor:
    """The distribution the next token is drawn from: softmax(filter(logits) / τ), in float64.

    ``strategy`` "greedy" puts all the mass on the argmax; "top_k" and "nucleus" filter
    as :func:`top_k_filter` and :func:`nucleus_filter` (after dividing by τ), and
    renormalise.

    Shape:
        ``(..., |V|)`` -> same, each row summing to one.
    """
    owner = "next_token_distribution"
    check_choice(strategy, "strategy", owner, ("greedy", "top_k", "nucleus"))
    temperature = check_float(temperature, "temperature", owner, low=0.0, low_open=True)
    logits = logits.double()
    if strategy == "greedy":
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    logits = logits / temperature
    logits = top_k_filter(logits, k) if strategy == "top_k" else nucleus_filter(logits, p)
    return torch.softmax(logits, -1)


def sample_next(logits: torch.Tensor, *, strategy: str = "top_k", k: int = 50, p: float = 0.9,
                temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose the next token of each row: the argmax ("greedy") or a draw from :func:`next_token_distribution`.

    The draw happens on the CPU with ``generator``, so a seed gives the same tokens on
    every device.

    Shape:
        ``logits``: ``(B, |V|)`` -> ``(B,)`` token ids (on the device of ``logits``).
    """
    if strategy == "greedy":
        return logits.argmax(-1)
    probs = next_token_distribution(logits.detach().cpu(), strategy=strategy, k=k, p=p, temperature=temperature)
    return torch.multinomial(probs, 1, generator=generator)[:, 0].to(logits.device)  # (B,)


def reorder_cache(cache: dict, index: torch.Tensor) -> None:
    """Select (and repeat) batch rows of a decoder's key/value cache in place: row i ← row index[i]."""
    for layer in cache.get("layers", []):
        for block in layer.values():
            for name in ("k", "v"):
                if name in block:
                    block[name] = block[name].index_select(0, index.to(block[name].device))  # (B', H, T, Q)


def _check(model, prompt, max_new_tokens, owner):
    if not isinstance(model, GPT):
        raise TypeError(f"The 'model' parameter of {owner} must be a GPT. Got {type(model).__name__} instead.")
    if not isinstance(prompt, torch.Tensor) or prompt.dtype != torch.long or prompt.dim() not in (1, 2) \
            or prompt.shape[-1] < 1:
        raise TypeError(f"The 'prompt' parameter of {owner} must be a non-empty LongTensor of shape (N,) or (B, N). "
                        f"Got {prompt!r} instead.")
    check_int(max_new_tokens, "max_new_tokens", owner, minimum=0)


class _Stepper:
    """Next-token logits for a growing batch of sequences, with or without the cache.

    ``mask`` (B, T) marks the real tokens of ``seqs`` when some are padding (else None).
    """

    def __init__(self, model: GPT, use_cache: bool):
        self.model, self.use_cache = model, use_cache
        self.cache: dict | None = None

    def __call__(self, seqs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        context = self.model.context
        longest = seqs.shape[1] if mask is None else int(mask.sum(1).max())  # real tokens of the longest row
        if self.use_cache and longest <= context:
            if self.cache is None:  # the prompt, in one pass
                self.cache = {}
                return self.model(seqs, padding_mask=mask, cache=self.cache)[:, -1]
            return self.model(seqs[:, -1:], cache=self.cache)[:, -1]  # the newest token only (real)
        self.cache = None  # past the context: positions shift, recompute the window
        if mask is None:
            return self.model(seqs[:, -context:])[:, -1]  # (B, |V|)
        # each row's last `context` real tokens; leading columns with none of them are dropped
        window = mask & (mask.flip(1).cumsum(1).flip(1) <= context)  # (B, T)
        first = int(window.any(0).long().argmax())
        return self.model(seqs[:, first:], padding_mask=window[:, first:])[:, -1]  # (B, |V|)


def _batch(prompt, padding_mask, owner: str):
    """``prompt`` as ``(B, N)`` ids and its mask of real tokens (None when every token is real)."""
    if isinstance(prompt, (list, tuple)):
        if not prompt or not all(isinstance(x, torch.Tensor) and x.dtype == torch.long and x.dim() == 1
                                 and len(x) >= 1 for x in prompt):
            raise TypeError(f"The 'prompt' parameter of {owner} must be a non-empty LongTensor of shape (N,) or "
                            f"(B, N), or a list of non-empty 1-D LongTensors. Got {prompt!r} instead.")
        if padding_mask is not None:
            raise ValueError(f"The 'padding_mask' parameter of {owner} must be None when the prompts are a list "
                             f"(they are padded here). Got a {type(padding_mask).__name__} instead.")
        longest = max(len(x) for x in prompt)
        seqs = torch.zeros(len(prompt), longest, dtype=torch.long)  # padding on the left, as Hugging Face's
        mask = torch.zeros(len(prompt), longest, dtype=torch.bool)
        for i, x in enumerate(prompt):
            seqs[i, longest - len(x):] = x.cpu()
            mask[i, longest - len(x):] = True
        return seqs, (None if bool(mask.all()) else mask)
    squeeze = prompt.dim() == 1
    seqs = prompt.reshape(1, -1) if squeeze else prompt
    if padding_mask is None:
        return seqs, None
    if not (isinstance(padding_mask, torch.Tensor) and padding_mask.shape == prompt.shape):
        check_tensor(padding_mask, "padding_mask", owner, shape=tuple(prompt.shape))
    if padding_mask.is_floating_point() or bool(((padding_mask != 0) & (padding_mask != 1)).any()):
        raise ValueError(f"The 'padding_mask' parameter of {owner} must be boolean or 0/1 integers. "
                         f"Got {padding_mask.dtype} values instead.")
    mask = padding_mask.bool().reshape(seqs.shape)
    if not bool(mask.any(1).all()):
        raise ValueError(f"The 'padding_mask' parameter of {owner} must mark at least one real token in every "
                         f"prompt. Got a row of padding only instead.")
    return seqs, (None if bool(mask.all()) else mask)


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor | list[torch.Tensor], max_new_tokens: int, *,
             padding_mask: torch.Tensor | None = None, strategy: str = "greedy", k: int = 50, p: float = 0.9,
             temperature: float = 1.0, beam_width: int = 4, generator: torch.Generator | None = None,
             use_cache: bool = True, eos_id: int | None = None) -> torch.Tensor | list[torch.Tensor]:
    """Continue ``prompt`` by ``max_new_tokens`` tokens chosen by ``strategy``.

    Prompts of different lengths are decoded together: a list of them is padded on the
    left (as Hugging Face's ``generate`` expects), and the model ignores the padding
    (:meth:`GPT.forward`'s ``padding_mask``: no token attends to it, and positions count
    real tokens only), so each prompt is continued exactly as it would be alone.

    Args:
        model: a :class:`udl.models.gpt.GPT`; switched to eval mode.
        prompt: ``(N,)`` or ``(B, N)`` token ids, or a list of 1-D prompts of any lengths
            (beam search: one sequence).
        max_new_tokens: how many tokens to add.
        padding_mask: for a ``(B, N)`` prompt, True (or 1) at real tokens and False (or 0)
            at padding, as Hugging Face's ``attention_mask``; every row needs a real token.
            Default: None (every token is real).
        strategy: "greedy" (default), "top_k", "nucleus" or "beam".
        k: top-k's k. Default: 50.
        p: the nucleus's probability mass. Default: 0.9.
        temperature: τ dividing the logits before sampling. Default: 1.0.
        beam_width: W, beams kept by beam search. Default: 4.
        generator: randomness of the sampling strategies (draws on the CPU, so a seed
            gives the same text on every device). Default: None (the global generator).
        use_cache: decode with the key/value cache (one token per forward pass). The
            tokens are the same either way. Default: True.
        eos_id: a token that ends a sequence: once drawn, the sequence is padded with
            it, and generation stops when every sequence has ended. Default: None.

    Returns:
        For a tensor: the prompt followed by the new tokens, ``(N + n,)`` or
        ``(B, N + n)`` with n <= max_new_tokens (fewer only when every sequence ended
        with ``eos_id``); padding stays where it was. For a list: a list of 1-D tensors,
        each prompt followed by its own continuation, without padding (and cut after
        its first ``eos_id``).

    Example::

        >>> from udl.models.gpt import GPTConfig
        >>> model = GPT(GPTConfig.tiny(), generator=torch.Generator().manual_seed(0))
        >>> generate(model, torch.tensor([0, 1]), 3).shape
        torch.Size([5])
        >>> [len(x) for x in generate(model, [torch.tensor([0, 1]), torch.tensor([4])], 3)]
        [5, 4]
    """
    owner = "generate"
    listed = isinstance(prompt, (list, tuple))
    _check(model, prompt[0] if listed and prompt and isinstance(prompt[0], torch.Tensor) else prompt,
           max_new_tokens, owner)
    check_choice(strategy, "strategy", owner, STRATEGIES)
    check_int(k, "k", owner)
    check_float(p, "p", owner, low=0.0, high=1.0, low_open=True)
    check_float(temperature, "temperature", owner, low=0.0, low_open=True)
    check_int(beam_width, "beam_width", owner)
    generator = as_generator(generator, owner)
    if eos_id is not None:
        check_int(eos_id, "eos_id", owner, minimum=0)
    seqs, mask = _batch(prompt, padding_mask, owner)
    if strategy == "beam":
        if seqs.shape[0] != 1:
            raise ValueError(f"The 'prompt' parameter of {owner} must be one sequence for beam search "
                             f"(beam search decodes one prompt at a time). Got a batch of {seqs.shape[0]} instead.")
        real = seqs[0] if mask is None else seqs[0][mask[0].to(seqs.device)]
        best, _ = beam_search(model, real, max_new_tokens, beam_width=beam_width, eos_id=eos_id,
                              use_cache=use_cache)
        if listed:
            return [_cut_after_eos(best[0], len(real), eos_id)]
        if mask is not None:  # the prompt's padding stays where it was
            best = torch.cat([prompt.reshape(1, -1).cpu(), best[:, len(real):]], 1)
        return best[0] if prompt.dim() == 1 else best[:1]

    model.eval()
    device = next(model.parameters()).device
    seqs = seqs.to(device)
    mask = None if mask is None else mask.to(device)
    done = torch.zeros(seqs.shape[0], dtype=torch.bool, device=device)
    step = _Stepper(model, use_cache)
    for _ in range(max_new_tokens):
        logits = step(seqs, mask)  # (B, |V|)
        nxt = sample_next(logits, strategy=strategy, k=k, p=p, temperature=temperature, generator=generator)  # (B,)
        if eos_id is not None:
            nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
            done |= nxt == eos_id
        seqs = torch.cat([seqs, nxt[:, None]], 1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
        if eos_id is not None and bool(done.all()):
            break
    seqs = seqs.cpu()
    if listed:
        n_prompt = [len(x) for x in prompt]
        width = seqs.shape[1] - max(n_prompt)  # new tokens
        return [_cut_after_eos(torch.cat([x.cpu(), row[seqs.shape[1] - width:]]), n, eos_id)
                for x, row, n in zip(prompt, seqs, n_prompt)]
    return seqs[0] if prompt.dim() == 1 else seqs


def _cut_after_eos(seq: torch.Tensor, n_prompt: int, eos_id: int | None) -> torch.Tensor:
    """``seq`` up to and including the first ``eos_id`` after its first ``n_prompt`` tokens."""
    if eos_id is None:
        return seq
    hits = (seq[n_prompt:] == eos_id).nonzero()
    return seq if len(hits) == 0 else seq[:n_prompt + int(hits[0]) + 1]


@torch.no_grad()
def beam_search(model: GPT, prompt: torch.Tensor, max_new_tokens: int, *, beam_width: int = 4,
                eos_id: int | None = None, use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``beam_width`` most likely continuations found by beam search, best first.

    Each beam's score is its log-probability Σ_s log Pr(x_s | x_{<s}) over the new
    tokens (no length normalisation). A beam that has produced ``eos_id`` is finished:
    its score is frozen and it is padded with ``eos_id``.

    Args:
        model: a :class:`udl.models.gpt.GPT`; switched to eval mode.
        prompt: ``(N,)`` token ids.
        max_new_tokens: tokens to add.
        beam_width: W. Default: 4.
        eos_id: the end-of-sequence token, or None. Default: None.
        use_cache: decode with the key/value cache (reordered as beams are chosen). Default: True.

    Returns:
        ``(sequences (W', N + n), scores (W',))`` with W' = min(W, number of distinct
        continuations), sorted by score, best first.
    """
    owner = "beam_search"
    _check(model, prompt, max_new_tokens, owner)
    if prompt.dim() != 1:
        raise TypeError(f"The 'prompt' parameter of {owner} must be one sequence (N,). Got {prompt!r} instead.")
    beam_width = check_int(beam_width, "beam_width", owner)
    if eos_id is not None:
        check_int(eos_id, "eos_id", owner, minimum=0)
    model.eval()
    device = next(model.parameters()).device
    seqs = prompt.reshape(1, -1).to(device)  # (W, N): one beam to start with
    scores = torch.zeros(1, dtype=torch.float64, device=device)
    step = _Stepper(model, use_cache)
    vocab = model.config.vocab_size
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(step(seqs).double(), -1)  # (W, |V|)
        if eos_id is not None:  # a finished beam continues only with eos, at no cost
            finished = seqs[:, -1] == eos_id if seqs.shape[1] > prompt.shape[0] else torch.zeros_like(scores).bool()
            pad = torch.full_like(logp, float("-inf"))
            pad[:, eos_id] = 0.0
            logp = torch.where(finished[:, None], pad, logp)
        candidates = (scores[:, None] + logp).flatten()  # (W·|V|,)
        n_keep = min(beam_width, int(torch.isfinite(candidates).sum()))
        scores, flat = torch.topk(candidates, n_keep)  # sorted, best first
        beam, token = flat // vocab, flat % vocab
        seqs = torch.cat([seqs[beam], token[:, None]], 1)  # (W, N + s)
        if step.cache is not None:
            reorder_cache(step.cache, beam)
        if eos_id is not None and bool((token == eos_id).all()):
            break
    return seqs.cpu(), scores.cpu()
