"""Issue 12, the wrong numbers: items 1 (BertClassifier and padding), 3 (normalization in half
precision) and 15 (bracket_minimize's first inner points), replayed as the issue reports them."""

import pytest
import torch
from torch import nn

from udl.data.testfunctions import line_search_loss
from udl.models.bert import BERT, BertClassifier, BertConfig
from udl.nn.normalization import GroupNorm, LayerNorm
from udl.optim import Bracket, bracket_minimize

T, F = True, False


# --------------------------------------------------------------------------- item 1
@pytest.mark.parametrize("tokens, mask", [
    ([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]], [[T, T, F, T, T], [T, T, T, F, F]]),  # the interior padding
    ([[0, 0, 5, 6, 7], [5, 6, 7, 0, 0]], [[F, F, T, T, T], [T, T, T, F, F]]),  # left padding beside right padding
])
def test_bert_classifier_keeps_every_real_token(tokens, mask):
    # before: the first max(real tokens per row) = 4 or 3 columns were kept, and row 0 lost
    # a real token (6e-3 and 3e-2 off the unshortened logits)
    encoder = BERT(BertConfig.tiny(), generator=torch.Generator().manual_seed(0))
    clf = BertClassifier(encoder, 3, generator=torch.Generator().manual_seed(1)).eval()
    tokens, mask = torch.tensor(tokens), torch.tensor(mask)
    unshortened = clf.out(encoder.pool(encoder(tokens, padding_mask=mask)))  # (B, K)
    assert (clf(tokens, padding_mask=mask) - unshortened).abs().max().item() < 1e-6


# --------------------------------------------------------------------------- item 3
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("ours, torchs", [(lambda: LayerNorm(8), lambda: nn.GroupNorm(1, 8)),
                                          (lambda: GroupNorm(4, 8), lambda: nn.GroupNorm(4, 8))],
                         ids=["LayerNorm", "GroupNorm"])
def test_layer_and_group_norm_are_as_accurate_as_torch_in_half_precision(ours, torchs, dtype):
    # before: 21-49x torch's error in bfloat16, 32-37x in float16
    x = (100 + torch.randn(16, 8, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)).to(dtype)
    exact = ours().double()(x.double())  # float64 on the same rounded input
    error = (ours().to(dtype)(x).double() - exact).abs().max().item()
    torch_error = (torchs().to(dtype)(x).double() - exact).abs().max().item()
    assert error <= 1.5 * torch_error


# --------------------------------------------------------------------------- item 15
def test_bracket_minimize_can_start_where_the_notebook_does():
    # notebook 6.1: a, b, c, d = 0, 0.33, 0.66, 1; then b and c at the thirds of each new bracket
    _, history = bracket_minimize(line_search_loss, 0.0, 1.0, first_inner=(0.33, 0.66))
    assert history[0] == Bracket(0.0, 0.33, 0.66, 1.0)
    assert history[1] == pytest.approx(Bracket(0.0, 0.22, 0.44, 0.66), abs=1e-15)  # L[b] < L[c]: d ← c
    assert bracket_minimize(line_search_loss, 0.0, 1.0)[1][0] == Bracket(0.0, 1 / 3, 2 / 3, 1.0)  # the default
