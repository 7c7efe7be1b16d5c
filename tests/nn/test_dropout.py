"""udl.nn.dropout: inverted dropout against torch.nn.Dropout and torch.nn.functional.dropout."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.dropout import Dropout, apply_dropout_mask, drop_one_of, dropout_mask


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def binomial_bound(n, p, sigmas=5.0):
    return sigmas * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drop_rate_and_scaling_match_torch_dropout(p):
    n = 200_000
    h = torch.ones(n)
    ours = Dropout(p, generator=gen(1)).train()(h)
    torch.manual_seed(1)
    ref = nn.Dropout(p).train()(h)
    for out in (ours, ref):
        dropped = (out == 0).double().mean().item()
        assert abs(dropped - p) < binomial_bound(n, p)
        survivors = out[out != 0]
        torch.testing.assert_close(survivors, torch.full_like(survivors, 1 / (1 - p)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_functional_dropout_given_the_same_mask(p, dtype):
    h = torch.randn(64, 33, generator=gen(2), dtype=dtype)  # no exact zeros
    torch.manual_seed(3)
    ref = F.dropout(h, p, training=True)
    mask = ref != 0  # the mask torch drew
    assert torch.equal(apply_dropout_mask(h, mask, p), ref)


def test_last_mask_is_the_mask_applied_and_dropped_units_get_no_gradient():
    p = 0.4
    layer = Dropout(p, generator=gen(4))
    h = torch.randn(8, 10, generator=gen(5)).requires_grad_()
    out = layer(h)
    m = layer.last_mask
    assert m.dtype == torch.bool and m.shape == h.shape
    assert torch.equal(out, apply_dropout_mask(h.detach(), m, p))
    out.sum().backward()
    assert torch.equal(h.grad[~m], torch.zeros(int((~m).sum())))
    torch.testing.assert_close(h.grad[m], torch.full((int(m.sum()),), 1 / (1 - p)))


def test_eval_mode_and_p_zero_are_the_identity():
    h = torch.randn(5, 7, generator=gen(6))
    layer = Dropout(0.5, generator=gen(7)).eval()
    assert layer(h) is h and bool(layer.last_mask.all())
    layer0 = Dropout(0.0).train()
    assert layer0(h) is h and bool(layer0.last_mask.all())
    assert torch.equal(nn.Dropout(0.5).eval()(h), layer(h))


def test_inverted_scaling_keeps_the_expected_activation():
    p, n_masks = 0.5, 20_000
    h = torch.linspace(-2, 3, 6, dtype=torch.float64)
    layer = Dropout(p, generator=gen(8))
    mean = layer(h.expand(n_masks, -1)).mean(0)  # one mask per row
    # each entry is h_d · Bernoulli(1-p)/(1-p): standard deviation |h_d| √(p/(1-p))
    sd = h.abs() * math.sqrt(p / (1 - p)) / math.sqrt(n_masks)
    assert bool(((mean - h).abs() <= 5 * sd + 1e-12).all())


def test_masks_are_reproducible_from_the_generator_and_change_between_calls():
    a, b = Dropout(0.5, generator=gen(9)), Dropout(0.5, generator=gen(9))
    h = torch.ones(100)
    a(h), b(h)
    first = a.last_mask.clone()
    assert torch.equal(first, b.last_mask)
    a(h)
    assert not torch.equal(first, a.last_mask)
    torch.testing.assert_close(dropout_mask((3, 4), 0.3, generator=gen(10)),
                               torch.rand(3, 4, generator=gen(10)) >= 0.3)


def test_drop_one_of_removes_exactly_one_candidate_uniformly_and_keeps_the_mean():
    g, candidates, n = gen(11), [6, 7, 8], 3000
    draws = torch.stack([drop_one_of(14, candidates, generator=g) for _ in range(n)])  # (n, 14)
    dropped = draws == 0
    assert torch.equal(dropped.sum(1), torch.ones(n, dtype=torch.long))
    others = [i for i in range(14) if i not in candidates]
    assert bool((draws[:, others] == 1).all())
    assert bool(((draws[:, candidates] == 0) | (draws[:, candidates] == 1.5)).all())
    for c in candidates:  # each removed with probability 1/3
        assert abs(dropped[:, c].double().mean().item() - 1 / 3) < binomial_bound(n, 1 / 3)
    # inverted scaling: every multiplier has mean 1, so the expected output is unchanged
    assert bool(((draws.double().mean(0) - 1).abs() < 5 * 0.75 / math.sqrt(n)).all())
    plain = drop_one_of(14, candidates, inverted=False, generator=gen(12))
    assert sorted(plain.tolist()) == [0.0] + [1.0] * 13


@pytest.mark.parametrize("call, message", [
    (lambda: Dropout(1.0), "'p'"), (lambda: Dropout(-0.1), "'p'"), (lambda: Dropout("a"), "'p'"),
    (lambda: Dropout(0.5, generator=1.5), "'generator'"),
    (lambda: Dropout(0.5)([1.0]), "'h'"),
    (lambda: dropout_mask((2, -1), 0.5), "'shape'"),
    (lambda: apply_dropout_mask(torch.ones(3), torch.ones(4, dtype=torch.bool), 0.5), "'mask'"),
    (lambda: drop_one_of(5, [5, 1]), "'candidates'"), (lambda: drop_one_of(5, [1]), "'candidates'"),
    (lambda: drop_one_of(5, [1, 2], inverted=1), "'inverted'"),
    (lambda: drop_one_of(5, [1, 1]), "'candidates'"), (lambda: drop_one_of(0, [0, 1]), "'n_units'"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
