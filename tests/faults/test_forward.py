"""Issue 12, forward passes: items 2 (the written-out attention path: NaN for a query that sees no
key, and its accuracy in bfloat16), 11 (torch's internal errors where udl's template belongs) and
13 (Seq2SeqConfig blaming the wrong id), replayed as the issue reports them."""

import pytest
import torch
import torch.nn.functional as F

from udl.models.gpt import GPT, GPTConfig
from udl.models.seq2seq import EncoderDecoder, Seq2SeqConfig, cross_attention_weights
from udl.nn.attention import MultiHeadAttention, attention, causal_mask
from udl.nn.deep import DeepNetwork
from udl.nn.transformer import TokenEmbedding, TransformerLayer

T, F_ = True, False
TEMPLATE = r"^The '{name}' parameter of {owner} must be {wanted}\. Got {got} instead\.$"


def _template(name, owner, wanted, got):
    return TEMPLATE.format(name=name, owner=owner, wanted=wanted, got=got)


# --------------------------------------------------------------------------- item 2
def test_a_query_that_sees_no_key_gives_zero_as_sdpa_does():
    # before: the written-out path gave NaN in row 1, SDPA gives 0
    q = k = v = torch.randn(1, 1, 2, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[T, T], [F_, F_]])
    out, weights = attention(q, k, v, mask, need_weights=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), rtol=0, atol=1e-6)
    assert out[0, 0, 1].abs().max() == 0 and weights[0, 0, 1].abs().max() == 0


def test_cross_attention_weights_of_an_all_padding_source_are_zero():
    # a source row of <pad> only: every query of that row sees no key (before: NaN weights)
    model = EncoderDecoder(Seq2SeqConfig.tiny(), generator=0)
    src = torch.tensor([[3, 4, 5], [0, 0, 0]])
    tgt_in = torch.tensor([[1, 6], [1, 6]])
    weights = cross_attention_weights(model, src, tgt_in)  # (L, B, H, T, S)
    assert torch.isfinite(weights).all() and weights[:, 1].abs().max() == 0
    torch.testing.assert_close(weights[:, 0].sum(-1), torch.ones(2, 2, 2))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_written_out_attention_is_as_accurate_as_sdpa_in_low_precision(dtype):
    # before (bfloat16): 0.12-0.18 from the float64 answer where SDPA was 0.008-0.014 off
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        q, k, v = (s * torch.randn(2, 4, 64, 32, generator=g) for s in (3, 3, 1))
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
        ours = (attention(q, k, v, need_weights=True)[0].double() - exact).abs().max().item()
        sdpa = (F.scaled_dot_product_attention(q, k, v).double() - exact).abs().max().item()
        assert ours <= 1.5 * sdpa


# --------------------------------------------------------------------------- item 11
_MHA = MultiHeadAttention(16, 4, generator=0)
_LAYER = TransformerLayer(16, 4, generator=0)
_EMBED = TokenEmbedding(11, 16, generator=0)
_GPT = GPT(GPTConfig.tiny(), generator=0)
_DEEP = DeepNetwork([3, 4, 2], generator=0)
_Q = torch.zeros(1, 2, 3, 4)

CASES = [  # (id, call, error, message)
    ("MultiHeadAttention, wrong feature size", lambda: _MHA(torch.zeros(2, 5, 8)), ValueError,
     _template("x", "MultiHeadAttention", r"a tensor of shape \(B, N, 16\)", r"shape \(2, 5, 8\)")),
    ("MultiHeadAttention, float64", lambda: _MHA(torch.zeros(2, 5, 16, dtype=torch.float64)), TypeError,
     _template("x", "MultiHeadAttention", r"a torch\.float32 tensor", r"dtype torch\.float64")),
    ("MultiHeadAttention, 2-D input", lambda: _MHA(torch.zeros(5, 16)), ValueError,
     _template("x", "MultiHeadAttention", r"a tensor of shape \(B, N, 16\)", r"shape \(5, 16\)")),
    ("MultiHeadAttention, context of another size", lambda: _MHA(torch.zeros(2, 5, 16), torch.zeros(2, 3, 8)),
     ValueError, _template("context", "MultiHeadAttention", r"a tensor of shape \(2, M, 16\)", r"shape \(2, 3, 8\)")),
    ("TransformerLayer, wrong feature size", lambda: _LAYER(torch.zeros(2, 5, 8)), ValueError,
     _template("x", "TransformerLayer", r"a tensor of shape \(B, N, 16\)", r"shape \(2, 5, 8\)")),
    ("TransformerLayer, float64", lambda: _LAYER(torch.zeros(2, 5, 16, dtype=torch.float64)), TypeError,
     _template("x", "TransformerLayer", r"a torch\.float32 tensor", r"dtype torch\.float64")),
    ("attention, keys of another size", lambda: attention(_Q, torch.zeros(1, 2, 3, 5), _Q), ValueError,
     _template("k", "attention", r"a tensor of shape \(1, 2, N_k, 4\)", r"shape \(1, 2, 3, 5\)")),
    ("attention, float64 keys", lambda: attention(_Q, _Q.double(), _Q), TypeError,
     _template("k", "attention", r"a torch\.float32 tensor", r"dtype torch\.float64")),
    ("attention, float64 keys, weights", lambda: attention(_Q, _Q.double(), _Q, need_weights=True), TypeError,
     _template("k", "attention", r"a torch\.float32 tensor", r"dtype torch\.float64")),
    ("attention, integer inputs", lambda: attention(_Q.long(), _Q.long(), _Q.long()), TypeError,
     _template("q", "attention", "a floating-point tensor", r"dtype torch\.int64")),
    ("GPT, 1-D tokens", lambda: _GPT(torch.zeros(5, dtype=torch.long)), ValueError,
     _template("tokens", "GPT", r"a tensor of shape \(B, N\)", r"shape \(5,\)")),
    ("GPT, float tokens", lambda: _GPT(torch.zeros(1, 5)), TypeError,
     _template("tokens", "GPT", r"a torch\.int64 tensor", r"dtype torch\.float32")),
    ("GPT, token id = |V|", lambda: _GPT(torch.tensor([[1, 2, 11]])), ValueError,
     _template("tokens", "TokenEmbedding", r"ids in \[0, 11\)", r"values in \[1, 11\]")),
    ("GPT, negative token id", lambda: _GPT(torch.tensor([[1, -1, 2]])), ValueError,
     _template("tokens", "TokenEmbedding", r"ids in \[0, 11\)", r"values in \[-1, 2\]")),
    ("TokenEmbedding, float ids", lambda: _EMBED(torch.zeros(1, 5)), TypeError,
     _template("tokens", "TokenEmbedding", r"a torch\.int64 tensor", r"dtype torch\.float32")),
    ("TokenEmbedding, id = |V|", lambda: _EMBED(torch.tensor([[1, 2, 11]])), ValueError,
     _template("tokens", "TokenEmbedding", r"ids in \[0, 11\)", r"values in \[1, 11\]")),
    ("TokenEmbedding, negative id", lambda: _EMBED(torch.tensor([[1, -2]])), ValueError,
     _template("tokens", "TokenEmbedding", r"ids in \[0, 11\)", r"values in \[-2, 1\]")),
    ("DeepNetwork, float64", lambda: _DEEP(torch.zeros(4, 3, dtype=torch.float64)), TypeError,
     _template("x", r"DeepNetwork\.forward", r"a torch\.float32 tensor", r"dtype torch\.float64")),
    ("DeepNetwork, int", lambda: _DEEP(torch.zeros(4, 3, dtype=torch.long)), TypeError,
     _template("x", r"DeepNetwork\.forward", r"a torch\.float32 tensor", r"dtype torch\.int64")),
    ("causal_mask(-1)", lambda: causal_mask(-1), ValueError,
     _template("n_queries", "causal_mask", "a positive int", "-1")),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_forward_passes_refuse_bad_input_in_one_line(call, error, message):
    # before: torch's internals ("mat1 and mat2 shapes cannot be multiplied", "not enough values to
    # unpack", "index out of range in self", "upper bound and lower bound inconsistent with step sign")
    with pytest.raises(error, match=message) as refused:
        call()
    assert "\n" not in str(refused.value)


def test_keys_and_values_of_different_lengths_are_refused():
    # before: SDPA returned an output for 3 keys and 5 values without a word
    with pytest.raises(ValueError, match=_template("v", "attention", r"a tensor of shape \(1, 2, 3, D_v\)",
                                                   r"shape \(1, 2, 5, 4\)")):
        attention(_Q, _Q, torch.zeros(1, 2, 5, 4))
    with pytest.raises(ValueError, match=_template("k", "attention", r"a tensor of shape \(N_k, 4\)",
                                                   r"shape \(4,\)")):
        attention(torch.zeros(3, 4), torch.zeros(4), torch.zeros(4))


# --------------------------------------------------------------------------- item 13
@pytest.mark.parametrize("ids, name, other", [
    (dict(pad_id=1, bos_id=1), "bos_id", "pad_id"),  # the case: it named eos_id
    (dict(pad_id=0, bos_id=1, eos_id=0), "eos_id", "pad_id"),
])
def test_seq2seq_config_names_the_ids_that_clash(ids, name, other):
    message = rf"^The '{name}' parameter of Seq2SeqConfig must differ from {other} = {ids[other]}\. Got {ids[name]} instead\.$"
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig.tiny(**ids)
