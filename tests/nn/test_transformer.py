"""udl.nn.transformer against torch.nn.TransformerEncoderLayer / DecoderLayer and nn.Embedding."""

import math

import pytest
import torch

from udl.nn.attention import causal_mask
from udl.nn.transformer import LearnedPositions, TokenEmbedding, TransformerLayer, sinusoidal_positions

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _torch_grads(ref) -> dict[str, torch.Tensor]:
    """torch's parameter gradients under udl's names: in_proj split into q, k, v; torch's norms renamed."""
    decoder = isinstance(ref, torch.nn.TransformerDecoderLayer)
    rename = {"multihead_attn": "cross_attn", "norm2": "norm_cross", "norm3": "norm2"} if decoder else {}
    grads = {}
    for name, p in ref.named_parameters():
        head, _, tail = name.partition(".")
        head = rename.get(head, head)
        if tail.startswith("in_proj_"):
            kind = tail.removeprefix("in_proj_")
            for proj, g in zip(("q_proj", "k_proj", "v_proj"), p.grad.chunk(3)):
                grads[f"{head}.{proj}.{kind}"] = g
        else:
            grads[f"{head}.{tail}"] = p.grad
    return grads


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("causal", [False, True])
def test_encoder_layer_to_torch_equal_values_and_gradients(norm_first, activation, causal):
    ours = TransformerLayer(16, 4, 24, norm_first=norm_first, activation=activation, generator=0).double()
    theirs = ours.to_torch()
    assert isinstance(theirs, torch.nn.TransformerEncoderLayer) and theirs.norm_first == norm_first
    x = torch.randn(2, 5, 16, dtype=F64, generator=_gen(1), requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y = ours(x, causal=causal)
    y_ref = theirs(x2, src_mask=~causal_mask(5) if causal else None, is_causal=causal)
    assert y.shape == x.shape
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    r = torch.randn(y.shape, dtype=F64, generator=_gen(2))
    (y * r).sum().backward()
    (y_ref * r).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-12)
    grads = _torch_grads(theirs)
    assert set(grads) == {name for name, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_with_cross_attention_to_torch_equal_values_and_gradients(norm_first):
    ours = TransformerLayer(8, 2, 16, norm_first=norm_first, cross_attention=True, generator=1).double()
    theirs = ours.to_torch()
    assert isinstance(theirs, torch.nn.TransformerDecoderLayer)
    x = torch.randn(2, 4, 8, dtype=F64, generator=_gen(3), requires_grad=True)
    memory = torch.randn(2, 6, 8, dtype=F64, generator=_gen(4), requires_grad=True)
    x2, memory2 = (t.detach().clone().requires_grad_() for t in (x, memory))
    y = ours(x, memory, causal=True)
    y_ref = theirs(x2, memory2, tgt_mask=~causal_mask(4), tgt_is_causal=True)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    r = torch.randn(y.shape, dtype=F64, generator=_gen(5))
    (y * r).sum().backward()
    (y_ref * r).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(memory.grad, memory2.grad, rtol=0, atol=1e-12)
    grads = _torch_grads(theirs)
    assert set(grads) == {name for name, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=0, atol=1e-12, msg=name)
    ours.eval()
    with torch.no_grad():  # inference: torch may take its fused path
        torch.testing.assert_close(ours(x, memory), theirs.eval()(x, memory), rtol=0, atol=1e-12)


def test_to_torch_keeps_the_settings_and_copies():
    ours = TransformerLayer(8, 2, 12, dropout=0.1, bias=False, eps=1e-6, generator=2).eval()
    theirs = ours.to_torch()
    assert theirs.linear1.out_features == 12 and theirs.linear1.bias is None and theirs.norm1.eps == 1e-6
    assert theirs.dropout.p == 0.1 and not theirs.training
    with torch.no_grad():
        theirs.linear1.weight.zero_()
    assert ours.linear1.weight.abs().max() > 0


def test_the_generator_decides_every_weight_and_leaves_the_global_one_alone():
    state = torch.get_rng_state()
    build = [lambda g: TransformerLayer(8, 2, cross_attention=True, generator=g),
             lambda g: TokenEmbedding(11, 4, generator=g), lambda g: LearnedPositions(6, 4, generator=g)]
    for make in build:
        a, b, c = make(7), make(_gen(7)), make(8)
        assert torch.equal(torch.get_rng_state(), state)
        for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
            assert torch.equal(p, q), name
            assert "norm" in name or not torch.equal(p, r), name  # LayerNorms start at γ = 1, β = 0 whatever the seed
    layer = TransformerLayer(8, 2, 32, generator=0)
    assert 0.9 / math.sqrt(32) < layer.linear2.weight.abs().max() <= 1 / math.sqrt(32)  # U(±1/√fan_in)
    assert torch.equal(layer.norm1.weight, torch.ones(8)) and torch.equal(layer.norm1.bias, torch.zeros(8))
    emb = TokenEmbedding(1000, 50, std=0.5, generator=0)
    assert abs(emb.weight.std().item() / 0.5 - 1) < 0.02 and abs(emb.weight.mean().item()) < 0.01
    torch.manual_seed(0)  # None: the same numbers from torch's global generator
    assert torch.equal(TokenEmbedding(1000, 50, std=0.5).weight, emb.weight)
    with torch.device("meta"):
        assert TransformerLayer(8, 2, generator=0).linear1.weight.is_meta
        assert TokenEmbedding(5, 3, generator=0).weight.is_meta


def test_post_ln_layer_is_the_book_composition():
    layer = TransformerLayer(8, 2, generator=2).double()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    h = layer.norm1(x + layer.self_attn(x))
    expected = layer.norm2(h + layer.linear2(torch.relu(layer.linear1(h))))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-14)


def test_decoding_with_a_cache_equals_the_full_pass():
    layer = TransformerLayer(8, 2, cross_attention=True, norm_first=True, generator=3).double().eval()
    x, memory = torch.randn(1, 5, 8, dtype=torch.float64), torch.randn(1, 4, 8, dtype=torch.float64)
    full = layer(x, memory, causal=True)
    cache = {}
    steps = torch.cat([layer(x[:, t:t + 1], memory, causal=True, cache=cache) for t in range(5)], 1)
    torch.testing.assert_close(steps, full, rtol=0, atol=1e-13)


def test_context_must_match_the_layer():
    with pytest.raises(ValueError, match=r"^The 'context' parameter of TransformerLayer must be None \(the layer "
                                         r"has no cross-attention\)\. Got Tensor instead\.$"):
        TransformerLayer(8, 2)(torch.zeros(1, 2, 8), torch.zeros(1, 3, 8))
    with pytest.raises(ValueError, match=r"'context' parameter of TransformerLayer must be a tensor \(B, M, D\) "
                                         r"\(the layer has cross-attention\)\. Got None instead"):
        TransformerLayer(8, 2, cross_attention=True)(torch.zeros(1, 2, 8))


def test_embedding_is_one_hot_times_matrix_and_equals_nn_embedding():
    emb = TokenEmbedding(11, 6)
    ref = torch.nn.Embedding(11, 6)
    ref.load_state_dict(emb.state_dict())
    tokens = torch.tensor([[1, 5, 5, 10, 0]])
    out = emb(tokens)
    torch.testing.assert_close(out, ref(tokens), rtol=0, atol=0)
    torch.testing.assert_close(emb.one_hot_forward(tokens), out, rtol=0, atol=1e-7)
    assert torch.equal(out[0, 1], out[0, 2])  # a repeated token gets the same column


def test_positions():
    pos = LearnedPositions(8, 4)
    x = torch.zeros(2, 3, 4)
    torch.testing.assert_close(pos(x, offset=2), pos.weight[2:5].expand(2, 3, 4))
    with pytest.raises(ValueError, match=r"^The 'x' parameter of LearnedPositions must be at most 8 positions long "
                                         r"\(the context of 8, from offset 0\)\. Got 9 instead\.$"):
        pos(torch.zeros(1, 9, 4))
    with pytest.raises(ValueError, match=r"at most 2 positions long \(the context of 8, from offset 6\)\. Got 3 instead"):
        pos(x, offset=6)
    pe = sinusoidal_positions(50, 6)
    assert pe.shape == (50, 6)
    torch.testing.assert_close(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(50, 3))  # sin² + cos² = 1
    assert pe[0, 0] == 0 and pe[0, 1] == 1


# --------------------------------------------------------------------------- dropout sites
def test_dropout_rates_default_to_dropout_and_are_validated():
    layer = TransformerLayer(8, 2, dropout=0.3, generator=0)
    assert (layer.p_drop, layer.p_attn, layer.p_mlp, layer.self_attn.dropout) == (0.3, 0.3, 0.3, 0.3)
    layer = TransformerLayer(8, 2, dropout=0.3, attention_dropout=0.1, mlp_dropout=0.0, cross_attention=True,
                             generator=0)
    assert (layer.p_drop, layer.p_attn, layer.p_mlp) == (0.3, 0.1, 0.0)
    assert layer.self_attn.dropout == layer.cross_attn.dropout == 0.1
    for name, bad in (("attention_dropout", 1.0), ("attention_dropout", -0.1), ("mlp_dropout", 1.5),
                      ("mlp_dropout", "0.1")):
        with pytest.raises((ValueError, TypeError), match=f"^The '{name}' parameter of TransformerLayer"):
            TransformerLayer(8, 2, **{name: bad})


def test_mlp_dropout_zero_leaves_the_hidden_layer_alone():
    layer = TransformerLayer(8, 2, 12, dropout=0.5, mlp_dropout=0.0, generator=0).double().train()
    x = torch.randn(3, 4, 8, dtype=F64, generator=_gen(1))
    expected = layer.linear2(torch.relu(layer.linear1(x)))
    torch.testing.assert_close(layer.mlp(x), expected, rtol=0, atol=0)  # no draw, nothing dropped
    dropped = TransformerLayer(8, 2, 12, dropout=0.0, mlp_dropout=0.5, generator=0).double().train()
    torch.manual_seed(0)
    got = dropped.mlp(x)
    torch.manual_seed(0)
    by_hand = dropped.linear2(torch.nn.functional.dropout(torch.relu(dropped.linear1(x)), 0.5, True))
    torch.testing.assert_close(got, by_hand, rtol=0, atol=0)
    assert not torch.allclose(got, expected)


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_output_dropout_sits_before_the_residual_sum(norm_first):
    """With only `dropout` on, the layer is x + drop(attn) and x + drop(mlp), the draws in that order."""
    layer = TransformerLayer(8, 2, 12, dropout=0.4, attention_dropout=0.0, mlp_dropout=0.0, norm_first=norm_first,
                             generator=2).double().train()
    x = torch.randn(2, 5, 8, dtype=F64, generator=_gen(3))
    drop = lambda h: torch.nn.functional.dropout(h, 0.4, True)  # noqa: E731
    torch.manual_seed(7)
    got = layer(x, causal=True)
    torch.manual_seed(7)
    if norm_first:
        h = x + drop(layer.self_attn(layer.norm1(x), causal=True))
        expected = h + drop(layer.mlp(layer.norm2(h)))
    else:
        h = layer.norm1(x + drop(layer.self_attn(x, causal=True)))
        expected = layer.norm2(h + drop(layer.mlp(h)))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)


def test_to_torch_refuses_unequal_rates():
    with pytest.raises(ValueError, match=r"^TransformerLayer.to_torch needs one dropout rate at every site .*"
                                         r"dropout=0.1, attention_dropout=0.1, mlp_dropout=0\.$"):
        TransformerLayer(8, 2, dropout=0.1, mlp_dropout=0.0, generator=0).to_torch()
    ref = TransformerLayer(8, 2, dropout=0.1, attention_dropout=0.1, mlp_dropout=0.1, generator=0).to_torch()
    assert ref.dropout.p == ref.dropout1.p == ref.self_attn.dropout == 0.1
