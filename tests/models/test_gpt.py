"""udl.models.gpt: sizes counted without memory, a torch reference, causality, the chain rule, training."""

import math
import time

import pytest
import torch
import torch.nn.functional as F

from udl.models.gpt import (GPT, GPTConfig, attention_weights, causal_gradient, evaluate_cross_entropy,
                            language_model_windows, lm_loss, parameter_count, parameter_groups, sequence_log_prob,
                            token_log_probs)
from udl.nn.attention import MultiHeadAttention


def _model(seed=0, **changes):
    return GPT(GPTConfig.tiny(**changes), generator=torch.Generator().manual_seed(seed)).double().eval()


def _tokens(shape, vocab=11, seed=0):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


# --------------------------------------------------------------------------- configuration and sizes
def test_config_defaults_and_presets():
    c = GPTConfig()
    assert (c.vocab_size, c.context, c.n_layers, c.d_model, c.n_heads, c.d_mlp) == (50257, 1024, 12, 768, 12, 3072)
    assert c.norm_first and c.activation == "gelu_tanh" and c.tie_embeddings and c == GPTConfig.gpt2_small()
    g = GPTConfig.gpt3()
    assert (g.context, g.n_layers, g.d_model, g.n_heads, g.d_head, g.d_mlp) == (2048, 96, 12288, 96, 128, 49152)
    assert GPTConfig.gpt3(d_model=1024, n_heads=8).d_mlp == 4096  # the default follows D
    assert GPTConfig.tiny(d_mlp=7).d_mlp == 7


@pytest.mark.parametrize("changes, match", [(dict(n_heads=3), "n_heads"), (dict(d_model=0), "d_model"),
                                            (dict(dropout=1.0), "dropout"), (dict(activation="tanh"), "activation"),
                                            (dict(bias=1), "bias"), (dict(context=2.0), "context")])
def test_config_refuses_bad_values(changes, match):
    with pytest.raises((ValueError, TypeError), match=f"'{match}' parameter of GPTConfig"):
        GPTConfig.tiny(**changes)


def test_gpt2_small_has_124_million_parameters():
    n = parameter_count(GPTConfig.gpt2_small())
    assert n == 124_439_808  # 38.6M token embeddings + 0.8M positions + 12 x 7.08M + final LayerNorm
    assert abs(n / 124e6 - 1) < 0.01


def test_gpt3_has_175_billion_parameters_counted_without_memory():
    before, start = _rss_bytes(), time.perf_counter()
    n = parameter_count(GPTConfig.gpt3())
    seconds, grown = time.perf_counter() - start, _rss_bytes() - before
    assert abs(n / 175e9 - 1) < 0.01, n
    assert n == GPTConfig.gpt3().parameter_count()
    assert grown < 200e6 and seconds < 10  # 175e9 float32 parameters would be 700 GB


@pytest.mark.parametrize("changes", [{}, dict(bias=False), dict(tie_embeddings=False), dict(norm_first=False),
                                     dict(d_mlp=24, n_layers=3)])
def test_closed_form_equals_the_module_part_by_part(changes):
    config = GPTConfig.tiny(**changes)
    groups = parameter_groups(config)
    assert groups == config.parameter_formula()
    real = GPT(config)
    assert sum(p.numel() for p in real.parameters()) == sum(groups.values()) == parameter_count(config)


def test_twelve_l_d_squared():
    g = GPTConfig.gpt3()
    f = g.parameter_formula()
    assert abs((f["attention"] + f["MLP"]) / (12 * g.n_layers * g.d_model ** 2) - 1) < 1e-3


# --------------------------------------------------------------------------- the module
def test_initialisation_is_gpt2s():
    config = GPTConfig(vocab_size=500, context=64, n_layers=4, d_model=64, n_heads=4)
    a = GPT(config, generator=torch.Generator().manual_seed(3))
    assert a.head.weight is a.embed.weight
    layer = a.layers[0]
    assert layer.self_attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert a.embed.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual = 0.02 / math.sqrt(2 * 4)
    assert layer.linear2.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert layer.self_attn.out_proj.weight.std().item() == pytest.approx(residual, rel=0.1)
    assert layer.linear1.bias.abs().max() == 0 and torch.equal(layer.norm1.weight, torch.ones(64))


def test_forward_equals_a_torch_reference():
    """Embeddings + torch's pre-LN TransformerEncoderLayer (causal) + LayerNorm + Ω_eᵀ, same weights."""
    model = _model(seed=1)
    c = model.config
    ref_layers = [layer.to_torch().eval() for layer in model.layers]  # pre-LN, GELU (tanh), the same weights
    tokens = _tokens((3, 9))
    x = model.embed.weight[tokens] + model.positions.weight[:9]
    blocked = torch.triu(torch.ones(9, 9, dtype=torch.bool), 1)  # torch: True = may not attend
    for ref in ref_layers:
        x = ref(x, src_mask=blocked)
    expected = F.layer_norm(x, (c.d_model,), model.norm.weight, model.norm.bias) @ model.embed.weight.T
    torch.testing.assert_close(model(tokens), expected, rtol=0, atol=1e-12)


def test_fused_qkv_projection_equals_the_three_projections():
    m = MultiHeadAttention(12, 3, generator=0).double()
    x = torch.randn(2, 5, 12, dtype=torch.float64)
    q, k, v = m._project_qkv(x)
    for got, proj in ((q, m.q_proj), (k, m.k_proj), (v, m.v_proj)):
        torch.testing.assert_close(got, proj(x), rtol=0, atol=1e-14)


def test_output_at_t_does_not_depend_on_later_inputs():
    model = _model(seed=2)
    g = causal_gradient(model, _tokens((10,), seed=1))  # (N, N): output t, input t'
    later = torch.ones(10, 10, dtype=torch.bool).triu(1)
    assert g[later].abs().max().item() == 0.0
    assert g[~later].min().item() > 0


def test_attention_weights_are_causal_distributions():
    model = _model(seed=2)
    w = attention_weights(model, _tokens((7,)))
    assert w.shape == (2, 2, 7, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 7, dtype=torch.float64))
    assert (w[..., torch.ones(7, 7, dtype=torch.bool).triu(1)] == 0).all()
    assert isinstance(model.layers[0].self_attn(torch.zeros(1, 2, model.config.d_model, dtype=torch.float64)),
                      torch.Tensor)  # the recording hooks are gone


def test_cache_in_chunks_equals_the_full_pass():
    model = _model(seed=4)
    tokens = _tokens((2, 12))
    cache = {}
    parts = [model(tokens[:, :5], cache=cache), model(tokens[:, 5:6], cache=cache), model(tokens[:, 6:], cache=cache)]
    torch.testing.assert_close(torch.cat(parts, 1), model(tokens), rtol=0, atol=1e-12)
    assert cache["length"] == 12 and cache["layers"][0]["self"]["k"].shape == (2, 2, 12, 8)


def test_positions_beyond_the_context_are_refused():
    with pytest.raises(ValueError, match=r"^The 'tokens' parameter of GPT must be at most 16 tokens per sequence "
                                         r"\(the context is 16\)\. Got 17 instead\.$"):
        _model()(_tokens((1, 17)))
    cache = {}
    _model()(_tokens((1, 10)), cache=cache)
    with pytest.raises(ValueError, match=r"at most 6 tokens per sequence \(the context is 16, 10 of them in the "
                                         r"cache\)\. Got 7 instead"):
        _model()(_tokens((1, 7)), cache=cache)


def test_int32_ids_are_taken_as_torch_takes_them():
    model = _model(seed=1)
    tokens = _tokens((2, 9))
    torch.testing.assert_close(model(tokens.int()), model(tokens), rtol=0, atol=0)


# --------------------------------------------------------------------------- probabilities
def test_chain_rule_one_token_at_a_time():
    model = _model(seed=5)
    tokens = _tokens((8,), seed=2)
    logp = token_log_probs(model, tokens)
    by_hand = [torch.log_softmax(model(tokens[None, :t])[0, -1], -1)[tokens[t]] for t in range(1, 8)]
    torch.testing.assert_close(logp, torch.stack(by_hand).double(), rtol=0, atol=1e-12)
    torch.testing.assert_close(token_log_probs(model, tokens, use_cache=True), logp, rtol=0, atol=1e-12)
    total = sequence_log_prob(model, tokens)
    torch.testing.assert_close(total, logp.sum())
    # the mean cross-entropy of one forward pass: Pr = exp(-(N-1) · CE)
    ce = lm_loss(model(tokens[None, :-1]), tokens[None, 1:])
    assert total.item() == pytest.approx(-7 * ce.item(), abs=1e-5)


def test_sequence_log_prob_is_batched_and_validated():
    model = _model()
    tokens = _tokens((3, 6))
    torch.testing.assert_close(sequence_log_prob(model, tokens),
                               torch.stack([sequence_log_prob(model, t) for t in tokens]))
    with pytest.raises(ValueError, match="'tokens' parameter of token_log_probs"):
        token_log_probs(model, torch.tensor([1]))
    with pytest.raises(TypeError, match="'model' parameter"):
        sequence_log_prob(torch.nn.Linear(2, 2), tokens)


def test_windows_and_held_out_cross_entropy():
    stream = torch.arange(20)
    x, y = language_model_windows(stream, 4, stride=3)
    assert x.shape == (6, 4) and x[1].tolist() == [3, 4, 5, 6] and y[1].tolist() == [4, 5, 6, 7]
    model = _model(seed=6)
    held_out = _tokens((40,), seed=3)
    x, y = language_model_windows(held_out, 16, stride=17)  # two windows
    expected = -torch.cat([token_log_probs(model, torch.cat([xi, yi[-1:]])) for xi, yi in zip(x, y)]).mean()
    assert evaluate_cross_entropy(model, held_out, batch_size=1) == pytest.approx(expected.item(), abs=1e-10)


# --------------------------------------------------------------------------- padding
def _left_padded(rows, pad=0):
    """Rows of different lengths padded on the left, and the mask of real tokens."""
    n = max(len(r) for r in rows)
    tokens = torch.full((len(rows), n), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), n, dtype=torch.bool)
    for i, r in enumerate(rows):
        tokens[i, n - len(r):], mask[i, n - len(r):] = r, True
    return tokens, mask


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_left_padded_rows_give_the_logits_of_the_unpadded_sequences(dtype, atol):
    model = _model(seed=7).to(dtype)
    rows = [_tokens((n,), seed=n) for n in (9, 4, 1, 9)]
    tokens, mask = _left_padded(rows, pad=5)
    logits = model(tokens, padding_mask=mask)
    for row, real, r in zip(logits, mask, rows):
        torch.testing.assert_close(row[real], model(r[None])[0], rtol=0, atol=atol)
    # Hugging Face's 0/1 attention_mask is taken too, and the padding's id does not matter
    torch.testing.assert_close(model(tokens.masked_fill(~mask, 3), padding_mask=mask.long())[mask], logits[mask],
                               rtol=0, atol=0)


def test_padding_anywhere_is_skipped_and_positions_count_real_tokens():
    model = _model(seed=8)
    tokens = _tokens((1, 8), seed=4)
    mask = torch.tensor([[True, False, True, True, False, False, True, True]])
    torch.testing.assert_close(model(tokens, padding_mask=mask)[mask], model(tokens[mask][None])[0],
                               rtol=0, atol=1e-12)
    everything = torch.ones(1, 8, dtype=torch.bool)
    torch.testing.assert_close(model(tokens, padding_mask=everything), model(tokens), rtol=0, atol=1e-12)


def test_cache_keeps_the_mask_and_each_rows_count():
    model = _model(seed=9)
    tokens, mask = _left_padded([_tokens((7,), seed=1), _tokens((3,), seed=2)])
    more = _tokens((2, 3), seed=3)
    full = model(torch.cat([tokens, more], 1), padding_mask=torch.cat([mask, torch.ones(2, 3, dtype=torch.bool)], 1))
    cache = {}
    parts = [model(tokens[:, :4], padding_mask=mask[:, :4], cache=cache),
             model(tokens[:, 4:], padding_mask=mask[:, 4:], cache=cache)]
    assert cache["counts"].tolist() == [7, 3] and cache["padding_mask"].shape == (2, 7)
    parts += [model(more[:, :1], cache=cache), model(more[:, 1:], cache=cache)]  # appended tokens are real
    assert cache["counts"].tolist() == [10, 6] and cache["length"] == 10
    keep = torch.cat([mask, torch.ones(2, 3, dtype=torch.bool)], 1)
    torch.testing.assert_close(torch.cat(parts, 1)[keep], full[keep], rtol=0, atol=1e-12)
    # a mask for appended tokens is taken too: a padding token appended changes no real logit
    cache2 = {}
    model(tokens, padding_mask=mask, cache=cache2)
    model(more[:, :1], padding_mask=torch.tensor([[False], [True]]), cache=cache2)
    assert cache2["counts"].tolist() == [7, 4]


def test_padding_mask_is_validated():
    model = _model()
    tokens = _tokens((2, 4))
    with pytest.raises(ValueError, match=r"^The 'padding_mask' parameter of GPT must be a tensor of shape \(2, 4\)"):
        model(tokens, padding_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="'padding_mask' parameter of GPT must be a boolean tensor or one of 0/1"):
        model(tokens, padding_mask=torch.full((2, 4), 2))
    with pytest.raises(ValueError, match=r"at most 16 real tokens per sequence"):
        model(_tokens((1, 17)), padding_mask=torch.ones(1, 17, dtype=torch.bool))
    # 17 columns of which 16 are real fit: the limit counts real tokens
    mask = torch.ones(1, 17, dtype=torch.bool)
    mask[0, 0] = False
    assert model(_tokens((1, 17)), padding_mask=mask).shape == (1, 17, 11)


# --------------------------------------------------------------------------- loss with ignored targets
def test_lm_loss_leaves_out_ignored_targets():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g, dtype=torch.float64, requires_grad=True)
    targets = _tokens((3, 5), seed=1)
    ignored = torch.zeros(3, 5, dtype=torch.bool)
    ignored[0, :2], ignored[2, 4] = True, True
    loss = lm_loss(logits, targets.masked_fill(ignored, -100))
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]  # (3, 5)
    by_hand = -logp[~ignored].sum() / (~ignored).sum()
    torch.testing.assert_close(loss, by_hand, rtol=0, atol=1e-15)
    assert lm_loss(logits, targets.masked_fill(ignored, 7), ignore_index=7).item() == pytest.approx(
        -logp[~(targets.masked_fill(ignored, 7) == 7)].mean().item(), abs=1e-14)
    torch.testing.assert_close(lm_loss(logits, targets), -logp.mean(), rtol=0, atol=1e-15)  # nothing ignored
    (g_loss,) = torch.autograd.grad(loss, logits)
    assert (g_loss[ignored] == 0).all() and (g_loss[~ignored] != 0).any()


def test_lm_loss_of_only_ignored_targets_is_zero_with_a_zero_gradient():
    logits = torch.randn(2, 3, 11, requires_grad=True)
    loss = lm_loss(logits, torch.full((2, 3), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(TypeError, match="'ignore_index' parameter of lm_loss must be an int"):
        lm_loss(logits, torch.zeros(2, 3, dtype=torch.long), ignore_index=0.5)


def test_embedding_dropout_is_its_own_rate():
    assert GPTConfig.tiny(dropout=0.2).p_embedding == 0.2
    assert GPTConfig.tiny(dropout=0.2, embedding_dropout=0.0).p_embedding == 0.0
    with pytest.raises(ValueError, match="'embedding_dropout' parameter of GPTConfig"):
        GPTConfig.tiny(embedding_dropout=1.0)
    # with every block rate 0, only the embeddings are dropped: a row's logits change only where it was
    model = GPT(GPTConfig.tiny(embedding_dropout=0.5), generator=0).train()
    tokens = _tokens((1, 6))
    torch.manual_seed(0)
    dropped = model(tokens)
    torch.manual_seed(0)
    keep = torch.nn.functional.dropout(torch.ones(1, 6, 16), 0.5, True)
    x = keep * model.positions(model.embed(tokens))
    for layer in model.layers:
        x = layer(x, causal=True)
    torch.testing.assert_close(dropped, model.head(model.norm(x)), rtol=0, atol=1e-6)
