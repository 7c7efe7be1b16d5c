"""The BERT encoder: sizes, attention in both directions, padding, the 80/10/10 rule, training."""

import math

import pytest
import torch
import torch.nn.functional as F

from udl.models.bert import (BERT, IGNORE, BertClassifier, BertConfig, MaskedLanguageModel, encode_texts,
                             mask_tokens, measure_masking_rule, mlm_windows, parameter_count, parameter_groups)

SPECIAL = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, "<mask>": 4, "<cls>": 5, "<sep>": 6}


def _mlm(config=None, seed=0):
    config = config or BertConfig.tiny()
    return MaskedLanguageModel(BERT(config, generator=torch.Generator().manual_seed(seed)),
                               generator=torch.Generator().manual_seed(seed + 1))


# --------------------------------------------------------------------------- sizes
def test_bert_large_has_about_340_million_parameters():
    n = parameter_count(BertConfig.bert_large())
    assert n == 335_689_008
    assert abs(n - 340e6) / 340e6 < 0.03
    assert BertConfig.bert_large().d_head == 64


@pytest.mark.parametrize("config", [BertConfig.bert_large(), BertConfig.bert_base(), BertConfig.tiny(),
                                    BertConfig.tiny(norm_first=True, n_segments=0, d_mlp=24)])
def test_closed_form_equals_the_module(config):
    groups = parameter_groups(config)
    assert groups == config.parameter_formula()
    assert sum(groups.values()) == parameter_count(config) == config.parameter_count()


def test_a_small_model_counts_as_many_parameters_as_it_holds():
    config = BertConfig.tiny()
    model = _mlm(config)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config) == 7677


def test_config_validation():
    with pytest.raises(ValueError, match="'n_heads'"):
        BertConfig.tiny(n_heads=3)
    with pytest.raises(ValueError, match="'pad_id'"):
        BertConfig.tiny(pad_id=13)
    with pytest.raises(TypeError, match="'config'"):
        BERT("base")
    assert BertConfig.tiny().d_mlp == 64


# --------------------------------------------------------------------------- encoder
def test_every_output_sees_every_input():
    """No causal mask: the first output depends on the last input and vice versa."""
    model = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0)).eval()
    tokens = torch.tensor([[5, 7, 8, 9, 10, 11]])
    x = model.positions(model.embed(tokens)).detach().requires_grad_()
    h = model.embed_norm(x + model.segments(torch.zeros_like(tokens)))
    for layer in model.layers:
        h = layer(h)
    w = torch.randn(16, generator=torch.Generator().manual_seed(1))  # (a plain sum of a LayerNorm output is constant)
    (g_first,) = torch.autograd.grad(h[0, 0] @ w, x, retain_graph=True)
    (g_last,) = torch.autograd.grad(h[0, -1] @ w, x)
    assert g_first[0, -1].abs().max() > 1e-4 and g_last[0, 0].abs().max() > 1e-4
    assert torch.allclose(h, model(tokens), atol=1e-6)


def test_padding_is_ignored():
    model = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(1)).eval()
    tokens = torch.tensor([[5, 7, 8, 9]])
    padded = torch.tensor([[5, 7, 8, 9, 0, 0, 0]])
    assert torch.allclose(model(tokens), model(padded)[:, :4], atol=1e-5)
    # without the mask the padding changes the real tokens' outputs
    no_mask = model(padded, padding_mask=torch.ones(1, 7, dtype=torch.bool))[:, :4]
    assert not torch.allclose(model(tokens), no_mask, atol=1e-3)


def test_segments_change_the_embedding():
    model = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(2)).eval()
    tokens = torch.tensor([[5, 7, 8]])
    assert not torch.allclose(model(tokens), model(tokens, segments=torch.tensor([[0, 1, 1]])))


def test_the_output_layer_is_tied_to_the_token_embeddings():
    mlm = _mlm()
    hidden = torch.randn(3, 16)
    h = mlm.norm(F.gelu(mlm.dense(hidden)))
    assert torch.allclose(mlm.head(hidden), h @ mlm.encoder.embed.weight.T + mlm.bias)
    names = [n for n, _ in mlm.named_parameters()]
    assert sum("embed.weight" in n for n in names) == 1


def test_loss_at_the_chosen_positions_is_the_cross_entropy():
    mlm = _mlm().eval()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(7, 13, (4, 10), generator=g)
    out = mask_tokens(tokens, mask_id=4, vocab_size=13, special_ids=SPECIAL.values(), prob=0.3, generator=g)
    expected = F.cross_entropy(mlm(out.inputs).flatten(0, 1), out.targets.flatten(), ignore_index=IGNORE)
    assert torch.allclose(mlm.loss(out.inputs, out.targets), expected, atol=1e-6)
    nothing = torch.full_like(tokens, IGNORE)
    assert float(mlm.loss(tokens, nothing).detach()) == 0.0


# --------------------------------------------------------------------------- the 80/10/10 rule
def test_masking_proportions():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 100, (400, 500), generator=g)  # ids 0..6 are special
    out = mask_tokens(tokens, mask_id=4, vocab_size=100, special_ids=SPECIAL.values(), generator=g)
    special = tokens < 7
    ordinary = (~special).sum().item()
    chosen = out.targets != IGNORE
    assert not (chosen & special).any()  # specials are never chosen
    assert torch.equal(out.targets[chosen], tokens[chosen])
    assert torch.equal(out.inputs[~chosen], tokens[~chosen])  # unchosen tokens are untouched
    n = chosen.sum().item()
    assert abs(n / ordinary - 0.15) < 4 * math.sqrt(0.15 * 0.85 / ordinary)
    for action, p in ((1, 0.8), (2, 0.1), (3, 0.1)):
        share = (out.action == action).sum().item() / n
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n), (action, share)
    assert (out.inputs[out.action == 1] == 4).all()
    assert torch.equal(out.inputs[out.action == 3], tokens[out.action == 3])
    replaced = out.inputs[out.action == 2]
    assert (replaced >= 7).all()  # random replacements are ordinary tokens
    # uniform over the 93 ordinary ids: every one appears, none far too often
    counts = torch.bincount(replaced, minlength=100)[7:]
    assert (counts > 0).all() and counts.max() < 3 * counts.float().mean()


def test_masking_is_deterministic_given_the_generator():
    tokens = torch.randint(7, 50, (8, 20), generator=torch.Generator().manual_seed(0))
    a = mask_tokens(tokens, mask_id=4, vocab_size=50, generator=torch.Generator().manual_seed(5))
    b = mask_tokens(tokens, mask_id=4, vocab_size=50, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_evaluation_masking_hides_every_chosen_token():
    tokens = torch.randint(7, 50, (50, 40), generator=torch.Generator().manual_seed(0))
    out = mask_tokens(tokens, mask_id=4, vocab_size=50, p_mask=1.0, p_random=0.0,
                      generator=torch.Generator().manual_seed(1))
    assert torch.equal(out.inputs == 4, out.targets != IGNORE)
    with pytest.raises(ValueError, match="'p_random'"):
        mask_tokens(tokens, mask_id=4, vocab_size=50, p_mask=0.95, p_random=0.1)


def test_measure_masking_rule_counts_what_mask_tokens_did():
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 60, (300, 200), generator=g)  # ids 0..6 are special
    out = mask_tokens(tokens, mask_id=4, vocab_size=60, special_ids=SPECIAL.values(), generator=g)
    halves = [(out.inputs[:150], out.targets[:150]), (out.inputs[150:], out.targets[150:])]  # two batches
    rule = measure_masking_rule(halves, special_ids=SPECIAL)
    chosen = out.targets != IGNORE
    kept = (out.action == 3) | ((out.action == 2) & (out.inputs == tokens))  # a random draw of itself is kept
    assert rule["ordinary"] == int((tokens >= 7).sum()) and rule["chosen"] == int(chosen.sum())
    assert rule["mask"] == int((out.action == 1).sum()) and rule["kept"] == int(kept.sum())
    assert rule["mask"] + rule["random"] + rule["kept"] == rule["chosen"]
    assert rule["special_chosen"] == 0 and rule["random_special"] == 0
    assert rule["chosen_share"] == rule["chosen"] / rule["ordinary"]
    for name, p in (("mask", 0.8), ("random", 0.1), ("kept", 0.1)):  # within four binomial standard deviations
        assert abs(rule[f"{name}_share"] - p) < 4 * math.sqrt(p * (1 - p) / rule["chosen"]), name
    assert abs(rule["chosen_share"] - 0.15) < 4 * math.sqrt(0.15 * 0.85 / rule["ordinary"])


def test_measure_masking_rule_sees_a_broken_rule():
    inputs = torch.tensor([[5, 4, 4, 6, 9]])  # <cls>, two masks, a <sep> drawn as a "random" token, a kept 9
    targets = torch.tensor([[5, 8, 10, 11, 9]])  # ... and <cls> itself chosen
    rule = measure_masking_rule([(inputs, targets)], special_ids=SPECIAL)
    assert (rule["ordinary"], rule["chosen"], rule["special_chosen"], rule["random_special"]) == (4, 5, 1, 1)
    assert (rule["mask"], rule["random"], rule["kept"]) == (2, 1, 2)
    with pytest.raises(ValueError, match=r"^The 'batches' parameter of measure_masking_rule must yield inputs and "
                                         r"targets of one shape\. Got \(1, 5\) and \(1, 4\) instead\.$"):
        measure_masking_rule([(inputs, targets[:, :4])], special_ids=SPECIAL)


def test_windows_start_with_cls():
    stream = torch.arange(7, 107)
    inputs, targets = next(mlm_windows(stream, 10, special_ids=SPECIAL, batch_size=4, vocab_size=107,
                                       generator=torch.Generator().manual_seed(0)))
    assert inputs.shape == (4, 10) and (inputs[:, 0] == 5).all() and (targets[:, 0] == IGNORE).all()
    originals = torch.where(targets == IGNORE, inputs, targets)[:, 1:]
    assert (originals.diff(dim=1) == 1).all()  # consecutive tokens of the stream


# --------------------------------------------------------------------------- the classifier
def test_classifier_freezes_the_encoder_and_learns():
    encoder = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0))
    frozen = BertClassifier(encoder, 2, freeze=True)
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable == {"out.weight", "out.bias", "encoder.pooler.weight", "encoder.pooler.bias"}
    # class 1 when token 8 occurs anywhere after <cls>
    g = torch.Generator().manual_seed(1)
    x = torch.randint(9, 13, (64, 6), generator=g)
    y = torch.arange(64) % 2
    x[y == 1, 3] = 8
    x[:, 0] = 5
    clf = BertClassifier(BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0)), 2,
                         generator=torch.Generator().manual_seed(2))
    opt = torch.optim.Adam(clf.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(clf(x), y).backward()
        opt.step()
    assert (clf.eval()(x).argmax(1) == y).float().mean() == 1.0


def test_meta_model_allocates_nothing():
    from udl.models.bert import meta_model

    model = meta_model(BertConfig.bert_large())
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == parameter_count(BertConfig.bert_large())


class _CharTokenizer:
    """Characters as tokens, after the seven special ids."""

    special_ids = SPECIAL

    def encode(self, text):
        return [7 + (ord(c) % 6) for c in text]


def test_encode_texts_adds_cls_pads_and_cuts():
    tokens, lengths = encode_texts(["ab", "abcdefgh"], _CharTokenizer(), context=5)
    assert tokens.tolist() == [[5, 8, 9, 0, 0], [5, 8, 9, 10, 11]]
    assert lengths.tolist() == [2, 8]


def test_classifier_ignores_trailing_padding():
    clf = BertClassifier(BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0)), 3,
                         generator=torch.Generator().manual_seed(1)).eval()
    short = torch.tensor([[5, 7, 8, 0], [5, 9, 0, 0]])
    padded = torch.cat([short, torch.zeros(2, 5, dtype=torch.long)], 1)
    assert torch.allclose(clf(short), clf(padded), atol=1e-6)
    assert torch.allclose(clf(short[1:, :2]), clf(short)[1:], atol=1e-6)  # padding never changes <cls>


T, F_ = True, False
PADDING_LAYOUTS = {  # (B=3, N=6) masks, True = a real token; no row is full, so columns can be dropped
    "right": [[T, T, T, T, F_, F_], [T, T, T, F_, F_, F_], [T, T, F_, F_, F_, F_]],
    "left": [[F_, F_, T, T, T, T], [F_, F_, F_, T, T, T], [F_, F_, F_, F_, T, T]],
    "interior": [[T, T, F_, T, T, F_], [T, F_, F_, T, F_, F_], [T, T, T, F_, F_, F_]],
    "mixed": [[F_, T, T, T, F_, F_], [T, F_, T, F_, T, F_], [T, T, T, F_, F_, F_]],
    "an all-padding row": [[T, T, T, F_, F_, F_], [F_, F_, F_, F_, F_, F_], [T, F_, T, F_, F_, F_]],
    "all padding": [[F_] * 6] * 3,
}


@pytest.mark.parametrize("layout", PADDING_LAYOUTS)
def test_classifier_equals_the_unshortened_computation_for_any_padding(layout):
    encoder = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0))
    clf = BertClassifier(encoder, 3, generator=torch.Generator().manual_seed(1)).eval()
    mask = torch.tensor(PADDING_LAYOUTS[layout])
    tokens = torch.where(mask, torch.randint(5, 13, mask.shape, generator=torch.Generator().manual_seed(2)), 0)
    segments = (torch.arange(6) >= 3).long().expand(3, 6)
    for kwargs in (dict(padding_mask=mask), dict(padding_mask=mask, segments=segments)):
        expected = clf.out(encoder.pool(encoder(tokens, **kwargs)))  # (B, K), nothing dropped
        assert torch.allclose(clf(tokens, **kwargs), expected, atol=1e-6, rtol=0)
    if layout not in ("interior", "mixed"):  # where padding is token 0, the default mask is the same
        assert torch.allclose(clf(tokens), clf(tokens, padding_mask=mask), atol=1e-6, rtol=0)
