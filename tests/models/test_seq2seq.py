"""udl.models.seq2seq: the encoder-decoder with cross-attention, its decoding and measurements."""

import itertools

import pytest
import torch

from udl.models import seq2seq as s2s
from udl.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from udl.train.transformers import train_seq2seq

PAD, BOS, EOS = 0, 1, 2


def _model(seed=0, scale=1.0, **changes):
    """A random tiny model; ``scale`` > 1 sharpens its outputs so that decoding varies from step to step."""
    model = EncoderDecoder(Seq2SeqConfig.tiny(**changes), generator=torch.Generator().manual_seed(seed)).eval()
    if scale != 1.0:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2:
                    p.mul_(scale)
    return model


@pytest.fixture(scope="module", params=[False, True], ids=["post-LN", "pre-LN"])
def copier(request):
    """A tiny model trained briefly to copy its source (token x -> 3 + (x - 3) mod 8), so that decoding varies."""
    g = torch.Generator().manual_seed(0)
    n = 512
    src = torch.randint(3, 13, (n, 6), generator=g)
    lengths = torch.randint(2, 7, (n,), generator=g)
    src[torch.arange(6)[None] >= lengths[:, None]] = PAD
    tgt = torch.full((n, 8), PAD)
    tgt[:, 0] = BOS
    tgt[:, 1:7] = torch.where(src == PAD, PAD, 3 + (src - 3) % 8)
    tgt[torch.arange(n), lengths + 1] = EOS
    model = EncoderDecoder(Seq2SeqConfig.tiny(norm_first=request.param), generator=torch.Generator().manual_seed(1))
    train_seq2seq(model, src, tgt, steps=40, batch_size=32, lr=1e-2, warmup=5, device="cpu", progress=False)
    return model.eval()


def _batch(seed=0, b=3, s=6, t=5):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 13, (b, s), generator=g)
    src[1, 4:] = PAD  # rows of different lengths
    src[2, 2:] = PAD
    tgt = torch.randint(3, 11, (b, t), generator=g)
    tgt[:, 0] = BOS
    return src, tgt


def test_shapes():
    model = _model()
    src, tgt = _batch()
    assert model(src, tgt).shape == (3, 5, 11)
    assert model.encode(src).shape == (3, 6, 16)
    assert model.translate(src, max_len=4).shape[0] == 3 and model.translate(src, max_len=4).shape[1] <= 4
    tokens, scores = s2s.beam_search(model, src, beam_width=3, max_len=4)
    assert tokens.shape[:2] == (3, 3) and scores.shape == (3, 3)


def test_config_validation_and_tied_output():
    assert Seq2SeqConfig.tiny().d_mlp == 64
    assert Seq2SeqConfig.numbers().src_context == 11 and Seq2SeqConfig.numbers().tgt_context == 19
    model = _model()
    assert model.head.weight is model.tgt_embed.weight
    assert _model(tie_embeddings=False).head.weight is not _model(tie_embeddings=False).tgt_embed.weight
    with pytest.raises(ValueError, match="'n_heads' parameter of Seq2SeqConfig must divide"):
        Seq2SeqConfig.tiny(n_heads=3)
    with pytest.raises(ValueError, match="'eos_id'"):
        Seq2SeqConfig.tiny(eos_id=1)
    with pytest.raises(ValueError, match="'bos_id'"):
        Seq2SeqConfig.tiny(bos_id=11)
    with pytest.raises(ValueError, match="'src'"):
        model(torch.zeros(1, 9, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))  # longer than src_context
    with pytest.raises(ValueError, match="ids in"):
        model(torch.full((1, 3), 13), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^The 'src' parameter of EncoderDecoder\.encode must be a torch\.int64 tensor\. "
                                        r"Got dtype torch\.float32 instead\.$"):
        model.encode(torch.zeros(1, 3))


@pytest.mark.parametrize("norm_first", [False, True])
def test_source_padding_changes_nothing(norm_first):
    model = _model(norm_first=norm_first)
    src, tgt = _batch()
    padded = torch.cat([src, torch.full((3, 2), PAD)], 1)  # two more padding columns
    assert (model(padded, tgt) - model(src, tgt)).abs().max() < 1e-6
    for i, n in enumerate((6, 4, 2)):  # each row alone, without any padding
        alone = model(src[i:i + 1, :n], tgt[i:i + 1])
        assert (alone - model(src, tgt)[i:i + 1]).abs().max() < 1e-6
        assert (model.encode(src[i:i + 1, :n]) - model.encode(padded)[i:i + 1, :n]).abs().max() < 1e-6
    # while a real token does change the output
    changed = src.clone()
    changed[0, 0] = 3 if src[0, 0] != 3 else 4
    assert (model(changed, tgt)[0] - model(src, tgt)[0]).abs().max() > 1e-4


def test_cached_decoding_equals_the_full_pass(copier):
    model = copier
    src, tgt = _batch(t=8)
    mask = model.source_padding_mask(src)
    memory = model.encode(src)
    full = model.decode(tgt, memory, mask)  # (B, T, |V|)
    cache: dict = {}
    steps = torch.stack([model.decode_step(tgt[:, t], memory, mask, cache) for t in range(tgt.shape[1])], 1)
    assert cache["length"] == 8 and len(cache["layers"]) == 2
    assert (steps - full).abs().max() < 1e-5
    cached = s2s.greedy_decode(model, src, max_len=8, use_cache=True)
    uncached = s2s.greedy_decode(model, src, max_len=8, use_cache=False)
    assert torch.equal(cached, uncached)
    assert len(set(cached.flatten().tolist())) >= 4  # the trained model says different things
    beam_cached = s2s.beam_search(model, src, beam_width=3, max_len=8)
    beam_uncached = s2s.beam_search(model, src, beam_width=3, max_len=8, use_cache=False)
    assert torch.equal(beam_cached[0], beam_uncached[0])
    assert torch.allclose(beam_cached[1], beam_uncached[1], atol=1e-4)


def test_decoder_output_ignores_later_target_tokens():
    model = _model()
    src, tgt = _batch(t=6)
    G = s2s.decoder_causal_gradient(model, src[1:2], tgt[1:2])
    assert G.shape == (6, 6)
    assert torch.triu(G, 1).abs().max() == 0.0  # exactly: position t never sees t' > t
    assert torch.tril(G).masked_select(torch.tril(torch.ones(6, 6, dtype=torch.bool))).min() > 0
    changed = tgt.clone()
    changed[:, 4:] = 3 + (tgt[:, 4:] - 2) % 8  # change the last two target tokens
    a, b = model(src, tgt), model(src, changed)
    assert (a[:, :4] - b[:, :4]).abs().max() < 1e-6 and (a[:, 4:] - b[:, 4:]).abs().max() > 1e-4


@pytest.mark.parametrize("norm_first", [False, True])
def test_cross_attention_queries_from_decoder_keys_values_from_encoder(norm_first):
    model = _model(norm_first=norm_first)
    src, tgt = _batch()
    p = s2s.cross_attention_provenance(model, src, tgt, generator=torch.Generator().manual_seed(0))
    assert max(p["context_vs_encoder"]) < 1e-6  # keys and values are computed from X_enc
    assert max(p["query_input_vs_decoder"]) < 1e-6  # queries from the decoder's own hidden state
    assert p["grad_k_tgt"] == [0.0, 0.0] and p["grad_v_tgt"] == [0.0, 0.0]
    assert min(p["grad_k_src"] + p["grad_v_src"] + p["grad_q_tgt"]) > 1e-3
    assert p["grad_q_src"][0] == 0.0 and p["grad_q_src"][1] > 0  # layer 2's queries saw layer 1's cross-attention


def test_cross_attention_weights_are_distributions_over_the_real_source():
    model = _model()
    src, tgt = _batch()
    w = s2s.cross_attention_weights(model, src, tgt)
    assert w.shape == (2, 3, 2, 5, 6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 2, 5), atol=1e-6)
    assert w[:, 1, :, :, 4:].abs().max() == 0 and w[:, 2, :, :, 2:].abs().max() == 0
    x = torch.zeros(1, 2, model.config.d_model)
    assert isinstance(model.decoder[0].cross_attn(x, x), torch.Tensor)  # the recording hooks are gone


@torch.no_grad()
def _sequence_log_probs(model, src, tokens):
    """Σ log Pr(y_t | y_<t, x) of each row of generated ``tokens`` (after <bos>) up to and including <eos>."""
    tgt_in = torch.cat([torch.full((len(tokens), 1), BOS), tokens[:, :-1]], 1)  # (K, L)
    logp = torch.log_softmax(model(src[None].expand(len(tokens), -1), tgt_in).double(), -1)
    logp = logp.gather(-1, tokens[..., None])[..., 0]  # (K, L)
    ended_before = torch.cumsum(tokens == EOS, 1) - (tokens == EOS).long() > 0  # after the first <eos>
    return logp.masked_fill(ended_before, 0.0).sum(1)  # (K,)


def test_beam_search_scores_are_log_probabilities_and_width_one_is_greedy(copier):
    model = copier
    src, _ = _batch()
    assert torch.equal(s2s.beam_search(model, src, beam_width=1, max_len=6)[0][:, 0],
                       s2s.greedy_decode(model, src, max_len=6))
    tokens, scores = s2s.beam_search(model, src, beam_width=4, max_len=6)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
    for b in range(3):
        assert torch.allclose(_sequence_log_probs(model, src[b], tokens[b]), scores[b], atol=1e-4)


def test_beam_search_as_wide_as_the_search_space_is_exhaustive():
    model = _model(scale=6.0, seed=3)
    src, _ = _batch()
    tokens, scores = s2s.beam_search(model, src, beam_width=11, max_len=2)
    every = torch.tensor(list(itertools.product(range(11), repeat=2)))  # all 121 two-token outputs
    for b in range(3):
        assert abs(float(_sequence_log_probs(model, src[b], every).max()) - float(scores[b, 0])) < 1e-6


def test_loss_counts_real_tokens_only():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[3, 2, 0], [4, 0, 0]])
    by_hand = -torch.stack([torch.log_softmax(logits[0, 0], -1)[3], torch.log_softmax(logits[0, 1], -1)[2],
                            torch.log_softmax(logits[1, 0], -1)[4]]).mean()
    assert torch.allclose(s2s.seq2seq_loss(logits, targets), by_hand)
