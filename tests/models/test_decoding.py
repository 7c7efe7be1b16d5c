"""udl.models.decoding: filters, sampling frequencies, cached = uncached, beam search against brute force."""

import itertools

import pytest
import torch

from udl.models.decoding import (beam_search, generate, next_token_distribution, nucleus_filter, sample_next,
                                 top_k_filter)
from udl.models.gpt import GPT, GPTConfig, sequence_log_prob

LOGITS = torch.log(torch.tensor([0.30, 0.05, 0.20, 0.02, 0.15, 0.08, 0.12, 0.08]))


def _model(seed=0, **changes):
    return GPT(GPTConfig.tiny(**changes), generator=torch.Generator().manual_seed(seed)).double().eval()


def _chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    keep = expected > 0
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


# --------------------------------------------------------------------------- filters
def test_top_k_keeps_the_k_largest():
    kept = torch.isfinite(top_k_filter(LOGITS, 3))
    assert kept.tolist() == [True, False, True, False, True, False, False, False]
    assert torch.isfinite(top_k_filter(LOGITS, 100)).all()
    rows = top_k_filter(torch.stack([LOGITS, -LOGITS]), 2)
    assert torch.isfinite(rows).sum(1).tolist() == [2, 2]


@pytest.mark.parametrize("p", [0.01, 0.3, 0.5, 0.65, 0.8, 0.9, 0.999, 1.0])
def test_nucleus_keeps_the_smallest_set_reaching_p(p):
    probs = torch.softmax(LOGITS.double(), -1)
    kept = torch.isfinite(nucleus_filter(LOGITS, p))
    order = torch.argsort(probs, descending=True)
    # brute force: the shortest prefix of the sorted tokens whose mass reaches p
    size = next(n for n in range(1, 9) if probs[order[:n]].sum() >= p - 1e-12)
    assert kept.sum().item() == size
    assert kept[order[:size]].all()
    assert probs[kept].sum() >= p - 1e-12
    assert size == 1 or probs[order[:size - 1]].sum() < p


def test_next_token_distribution_is_the_renormalised_top_k():
    dist = next_token_distribution(LOGITS, strategy="top_k", k=3)
    probs = torch.softmax(LOGITS.double(), -1)
    expected = torch.zeros(8, dtype=torch.float64)
    expected[[0, 2, 4]] = probs[[0, 2, 4]] / probs[[0, 2, 4]].sum()
    torch.testing.assert_close(dist, expected)
    hot = next_token_distribution(LOGITS, strategy="greedy")
    assert hot.tolist() == [1.0] + [0.0] * 7
    flat = next_token_distribution(LOGITS, strategy="top_k", k=8, temperature=1e6)
    torch.testing.assert_close(flat, torch.full((8,), 1 / 8, dtype=torch.float64), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- sampling frequencies
@pytest.mark.parametrize("strategy, k, p", [("top_k", 3, 0.9), ("nucleus", 50, 0.7)])
def test_sampled_frequencies_match_the_renormalised_distribution(strategy, k, p):
    n = 40_000
    draws = sample_next(LOGITS.expand(n, 8), strategy=strategy, k=k, p=p, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=8).double()
    target = next_token_distribution(LOGITS, strategy=strategy, k=k, p=p)
    assert (counts[target == 0] == 0).all()  # nothing outside the kept set, ever
    support = int((target > 0).sum())
    # chi-square with support - 1 degrees of freedom; 16.3 is the 99.9% quantile for 3
    # degrees of freedom (top-k: 2, nucleus: 3 kept tokens -> even safer)
    assert support in (3, 4)
    assert _chi_square(counts, target) < 16.3


def test_temperature_sharpens_and_flattens():
    n = 20_000
    g = torch.Generator().manual_seed(1)
    cold = sample_next(LOGITS.expand(n, 8), strategy="top_k", k=8, temperature=0.25, generator=g)
    hot = sample_next(LOGITS.expand(n, 8), strategy="top_k", k=8, temperature=4.0, generator=g)
    share = lambda draws: (draws == 0).double().mean().item()  # noqa: E731
    assert share(cold) > 0.7 > 0.3 > share(hot) > 0.15  # Pr(token 0) = 0.30 at temperature 1


# --------------------------------------------------------------------------- generation
@pytest.mark.parametrize("strategy", ["greedy", "top_k", "nucleus", "beam"])
def test_cached_generation_equals_uncached_token_for_token(strategy):
    model = _model(seed=1)
    prompt = torch.tensor([2, 5, 1])
    kwargs = dict(strategy=strategy, k=4, p=0.8, beam_width=3)
    a = generate(model, prompt, 20, generator=torch.Generator().manual_seed(3), **kwargs)  # passes the context of 16
    b = generate(model, prompt, 20, generator=torch.Generator().manual_seed(3), use_cache=False, **kwargs)
    assert a.shape == (23,) and torch.equal(a, b) and torch.equal(a[:3], prompt)


def test_greedy_picks_the_argmax_at_every_step():
    model = _model(seed=2)
    out = generate(model, torch.tensor([[1, 2], [3, 4]]), 5)
    assert out.shape == (2, 7)
    for row in out:
        for t in range(2, 7):
            assert row[t] == model(row[None, :t])[0, -1].argmax()


def test_top_k_generation_stays_in_the_top_k():
    model = _model(seed=3)
    out = generate(model, torch.tensor([[1, 2]] * 8), 10, strategy="top_k", k=2,
                   generator=torch.Generator().manual_seed(0))
    for row in out:
        for t in range(2, 12):
            top = torch.topk(model(row[None, :t])[0, -1], 2).indices
            assert row[t] in top


def test_sampling_is_reproducible_from_the_generator():
    model = _model(seed=4)
    draw = lambda s: generate(model, torch.tensor([1]), 12, strategy="nucleus", p=0.95,  # noqa: E731
                              generator=torch.Generator().manual_seed(s))
    assert torch.equal(draw(7), draw(7)) and not torch.equal(draw(7), draw(8))


def test_eos_ends_a_sequence():
    model = _model(seed=5)
    out = generate(model, torch.tensor([[1, 2]] * 6), 15, strategy="top_k", k=11, eos_id=3,
                   generator=torch.Generator().manual_seed(2))
    for row in out:
        hits = (row[2:] == 3).nonzero()
        if len(hits):
            assert (row[2 + hits[0, 0]:] == 3).all()  # padded with eos after the first one
    ended_all = generate(model, torch.tensor([1, 2]), 15, strategy="greedy",
                         eos_id=int(generate(model, torch.tensor([1, 2]), 1)[-1]))
    assert ended_all.shape == (3,)  # greedy's first token is eos: stop at once


# --------------------------------------------------------------------------- beam search
def test_beam_of_width_one_is_greedy():
    model = _model(seed=6)
    prompt = torch.tensor([4, 0, 7])
    assert torch.equal(generate(model, prompt, 8, strategy="beam", beam_width=1), generate(model, prompt, 8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_beam_is_exhaustive_search(seed):
    """With W = |V|^(n-1) every prefix survives, so the best beam is the most likely of all |V|^n continuations."""
    model = _model(seed=seed, vocab_size=5)
    prompt, n = torch.tensor([1, 3]), 3
    seqs, scores = beam_search(model, prompt, n, beam_width=5 ** (n - 1))
    candidates = torch.tensor([[1, 3, *c] for c in itertools.product(range(5), repeat=n)])
    logp = sequence_log_prob(model, candidates) - sequence_log_prob(model, candidates[:, :2])  # new tokens only
    best = int(logp.argmax())
    assert torch.equal(seqs[0], candidates[best])
    assert scores[0].item() == pytest.approx(logp[best].item(), abs=1e-9)
    assert (scores[:-1] >= scores[1:]).all()
    greedy = generate(model, prompt, n)
    greedy_logp = sequence_log_prob(model, greedy[None]) - sequence_log_prob(model, prompt[None])
    assert scores[0].item() >= greedy_logp.item() - 1e-12


def test_beam_scores_are_the_sequences_log_probabilities():
    model = _model(seed=7)
    prompt = torch.tensor([2, 2])
    seqs, scores = beam_search(model, prompt, 6, beam_width=4)
    assert seqs.shape == (4, 8)
    expected = sequence_log_prob(model, seqs) - sequence_log_prob(model, seqs[:, :2])
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-9)
    uncached, _ = beam_search(model, prompt, 6, beam_width=4, use_cache=False)
    assert torch.equal(seqs, uncached)


def test_finished_beams_keep_their_score():
    model = _model(seed=8)
    seqs, scores = beam_search(model, torch.tensor([1]), 6, beam_width=3, eos_id=0)
    for row, score in zip(seqs, scores):
        hits = (row[1:] == 0).nonzero()
        end = 1 + (int(hits[0, 0]) + 1 if len(hits) else 6)
        assert (row[end:] == 0).all()
        body = row[:end]
        expected = sequence_log_prob(model, body) if len(body) > 1 else torch.tensor(0.0)
        assert score.item() == pytest.approx(expected.item(), abs=1e-9)


def test_bad_arguments():
    model = _model()
    with pytest.raises(ValueError, match="'strategy' parameter of generate"):
        generate(model, torch.tensor([1]), 2, strategy="random")
    with pytest.raises(ValueError, match="'temperature' parameter of generate"):
        generate(model, torch.tensor([1]), 2, temperature=0.0)
    with pytest.raises(ValueError, match="one sequence for beam search"):
        generate(model, torch.tensor([[1], [2]]), 2, strategy="beam")
    with pytest.raises(TypeError, match="'prompt' parameter of generate"):
        generate(model, [1, 2], 2)
    with pytest.raises(ValueError, match="'p' parameter of nucleus_filter"):
        nucleus_filter(LOGITS, 0.0)


# --------------------------------------------------------------------------- prompts of different lengths
PROMPTS = [torch.tensor([1, 2, 3, 4, 5]), torch.tensor([7]), torch.tensor([3, 9, 2])]


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("n", [6, 14])  # 14: the longest prompt passes the context of 16
def test_batched_greedy_equals_each_prompt_alone(use_cache, n):
    model = _model(seed=11)
    out = generate(model, PROMPTS, n, use_cache=use_cache)
    assert isinstance(out, list) and [len(x) for x in out] == [len(x) + n for x in PROMPTS]
    for got, prompt in zip(out, PROMPTS):
        assert torch.equal(got, generate(model, prompt, n, use_cache=use_cache))


def test_padded_tensor_with_a_mask_equals_the_list():
    model = _model(seed=12)
    width = max(len(x) for x in PROMPTS)
    tokens = torch.full((3, width), 8)
    mask = torch.zeros(3, width, dtype=torch.long)  # HF's 0/1 attention_mask
    for i, x in enumerate(PROMPTS):
        tokens[i, width - len(x):], mask[i, width - len(x):] = x, 1
    out = generate(model, tokens, 5, padding_mask=mask)
    assert out.shape == (3, width + 5) and torch.equal(out[:, :width], tokens)  # padding stays, on the left
    for row, listed in zip(out, generate(model, PROMPTS, 5)):
        assert torch.equal(row[width:], listed[-5:])


@pytest.mark.parametrize("strategy", ["top_k", "nucleus"])
def test_batched_sampling_draws_from_each_prompts_own_distribution(strategy):
    model = _model(seed=13)
    out = generate(model, PROMPTS, 6, strategy=strategy, k=2, p=0.5, generator=torch.Generator().manual_seed(0))
    for seq, prompt in zip(out, PROMPTS):
        for t in range(len(prompt), len(seq)):
            allowed = next_token_distribution(model(seq[None, :t])[0, -1], strategy=strategy, k=2, p=0.5) > 0
            assert allowed[seq[t]]


def test_list_output_is_cut_after_eos_and_beam_takes_one_prompt():
    model = _model(seed=14)
    eos = int(generate(model, PROMPTS[1], 1)[-1])  # the first greedy token of the short prompt
    out = generate(model, PROMPTS, 6, eos_id=eos)
    assert torch.equal(out[1], torch.cat([PROMPTS[1], torch.tensor([eos])]))
    for seq, prompt in zip(out, PROMPTS):
        assert (seq[len(prompt):-1] != eos).all()
    (beam,) = generate(model, PROMPTS[:1], 4, strategy="beam", beam_width=3)
    assert torch.equal(beam, generate(model, PROMPTS[0], 4, strategy="beam", beam_width=3))
    with pytest.raises(ValueError, match=r"one sequence for beam search \(beam search decodes one prompt at a time\)"):
        generate(model, PROMPTS, 4, strategy="beam")


def test_prompt_lists_and_masks_are_validated():
    model = _model()
    with pytest.raises(TypeError, match="'prompt' parameter of generate must be a non-empty LongTensor"):
        generate(model, [torch.tensor([1]), torch.tensor([], dtype=torch.long)], 2)
    with pytest.raises(ValueError, match="'padding_mask' parameter of generate must be None when the prompts are"):
        generate(model, PROMPTS, 2, padding_mask=torch.ones(3, 5))
    with pytest.raises(ValueError, match="'padding_mask' parameter of generate must mark at least one real token"):
        generate(model, torch.tensor([[1, 2], [3, 4]]), 2, padding_mask=torch.tensor([[1, 1], [0, 0]]))
    with pytest.raises(ValueError, match=r"'padding_mask' parameter of generate must be a tensor of shape \(2, 2\)"):
        generate(model, torch.tensor([[1, 2], [3, 4]]), 2, padding_mask=torch.ones(2, 3))
