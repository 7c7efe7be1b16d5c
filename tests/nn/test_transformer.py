"""udl.nn.transformer against torch.nn.TransformerEncoderLayer / DecoderLayer and nn.Embedding."""

import pytest
import torch

from udl.nn.transformer import LearnedPositions, TokenEmbedding, TransformerLayer, sinusoidal_positions


def _copy_attention(ours, theirs):
    theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    theirs.out_proj.weight.copy_(ours.out_proj.weight)
    theirs.out_proj.bias.copy_(ours.out_proj.bias)


def _copy_common(ours, theirs):
    for name in ("linear1", "linear2", "norm1", "norm2"):
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
    _copy_attention(ours.self_attn, theirs.self_attn)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_equals_torch(norm_first, activation):
    torch.manual_seed(0)
    ours = TransformerLayer(16, 4, 24, norm_first=norm_first, activation=activation).double()
    theirs = torch.nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, activation=activation, batch_first=True,
                                              norm_first=norm_first, dtype=torch.float64)
    with torch.no_grad():
        _copy_common(ours, theirs)
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y = ours(x)
    y_ref = theirs(x2)
    assert y.shape == x.shape
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    (y * torch.arange(16.0, dtype=torch.float64)).sum().backward()
    (y_ref * torch.arange(16.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-11)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_with_cross_attention_equals_torch(norm_first):
    torch.manual_seed(1)
    ours = TransformerLayer(8, 2, 16, norm_first=norm_first, cross_attention=True).double().eval()
    theirs = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first,
                                              dtype=torch.float64).eval()
    with torch.no_grad():
        _copy_common(ours, theirs)
        _copy_attention(ours.cross_attn, theirs.multihead_attn)
        theirs.norm2.load_state_dict(ours.norm_cross.state_dict())  # torch: norm2 after cross-attention
        theirs.norm3.load_state_dict(ours.norm2.state_dict())
    x, memory = torch.randn(2, 4, 8, dtype=torch.float64), torch.randn(2, 6, 8, dtype=torch.float64)
    y = ours(x, memory, causal=True)
    y_ref = theirs(x, memory, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64),
                   tgt_is_causal=True)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)


def test_post_ln_layer_is_the_book_composition():
    torch.manual_seed(2)
    layer = TransformerLayer(8, 2).double()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    h = layer.norm1(x + layer.self_attn(x))
    expected = layer.norm2(h + layer.linear2(torch.relu(layer.linear1(h))))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-14)


def test_decoding_with_a_cache_equals_the_full_pass():
    torch.manual_seed(3)
    layer = TransformerLayer(8, 2, cross_attention=True, norm_first=True).double().eval()
    x, memory = torch.randn(1, 5, 8, dtype=torch.float64), torch.randn(1, 4, 8, dtype=torch.float64)
    full = layer(x, memory, causal=True)
    cache = {}
    steps = torch.cat([layer(x[:, t:t + 1], memory, causal=True, cache=cache) for t in range(5)], 1)
    torch.testing.assert_close(steps, full, rtol=0, atol=1e-13)


def test_context_must_match_the_layer():
    with pytest.raises(ValueError, match="context exactly when"):
        TransformerLayer(8, 2)(torch.zeros(1, 2, 8), torch.zeros(1, 3, 8))


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
    with pytest.raises(ValueError, match="exceed the context"):
        pos(torch.zeros(1, 9, 4))
    pe = sinusoidal_positions(50, 6)
    assert pe.shape == (50, 6)
    torch.testing.assert_close(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(50, 3))  # sin² + cos² = 1
    assert pe[0, 0] == 0 and pe[0, 1] == 1
