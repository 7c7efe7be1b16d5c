"""udl.models.ensemble: bootstrap resampling and bagged averages against closed forms."""

import numpy as np
import pytest
import torch

from udl.models.ensemble import BaggingEnsemble, bootstrap_counts, bootstrap_indices


def test_each_resample_has_n_draws_with_replacement_from_the_n_items():
    idx = bootstrap_indices(15, 4, generator=3)
    assert idx.shape == (4, 15) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < 15
    assert any(len(np.unique(row)) < 15 for row in idx)  # repeats: drawn with replacement
    np.testing.assert_array_equal(idx, bootstrap_indices(15, 4, generator=3))
    assert not np.array_equal(idx, bootstrap_indices(15, 4, generator=4))
    np.testing.assert_array_equal(bootstrap_counts(idx, 15).sum(1), [15] * 4)


@pytest.mark.parametrize("n", [15, 1000])
def test_the_expected_fraction_of_distinct_items_is_one_minus_one_minus_one_over_n_to_the_n(n):
    m = 4000
    unique = np.array([len(np.unique(row)) / n for row in bootstrap_indices(n, m, generator=0)])
    expected = 1 - (1 - 1 / n) ** n  # 0.6447 for n = 15, → 1 - 1/e = 0.632
    assert abs(unique.mean() - expected) < 5 * unique.std() / np.sqrt(m)
    if n == 1000:
        assert abs(unique.mean() - (1 - np.exp(-1))) < 0.002


def test_counts_match_a_direct_tally():
    idx = bootstrap_indices(7, 5, generator=1)
    counts = bootstrap_counts(idx, 7)
    for m in range(5):
        for i in range(7):
            assert counts[m, i] == int((idx[m] == i).sum())


def _least_squares_line(xb, yb):
    a = torch.stack([torch.ones_like(xb), xb], 1)  # (N, 2)
    c = torch.linalg.lstsq(a, yb[:, None]).solution[:, 0]
    fitted = lambda t: c[0] + c[1] * t  # noqa: E731
    fitted.coef = c
    return fitted


def test_each_member_is_fitted_to_its_resample():
    seen = []

    def fit_fn(xb, yb):
        seen.append((xb.clone(), yb.clone()))
        return lambda t: torch.zeros(len(t))

    x = torch.arange(10.0)
    y = 2 * x
    bag = BaggingEnsemble(fit_fn, 3, generator=5).fit(x, y)
    assert len(seen) == 3 and bag.indices.shape == (3, 10)
    for (xb, yb), rows in zip(seen, bag.indices):
        assert torch.equal(xb, x[torch.from_numpy(rows)]) and torch.equal(yb, 2 * xb)


def test_average_of_linear_models_is_the_linear_model_with_averaged_parameters():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, generator=g, dtype=torch.float64)
    y = 1 - 3 * x + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)
    bag = BaggingEnsemble(_least_squares_line, 8, generator=2).fit(x, y)
    coef = torch.stack([m.coef for m in bag.members]).mean(0)
    t = torch.linspace(-1, 2, 50, dtype=torch.float64)
    torch.testing.assert_close(bag.predict(t), coef[0] + coef[1] * t)
    # the members differ (different resamples), the average lies between them
    preds = bag.member_predictions(t)
    assert preds.shape == (8, 50) and preds.std(0).min() > 0
    assert bool((bag(t) <= preds.max(0).values + 1e-12).all() and (bag(t) >= preds.min(0).values - 1e-12).all())


def test_bagged_means_equal_the_mean_of_the_bootstrap_means():
    y = np.array([0.5, 1.0, 4.0, -2.0, 3.0])
    bag = BaggingEnsemble(lambda xb, yb: (lambda t, mu=float(yb.mean()): np.full(len(t), mu)), 6, generator=9)
    bag.fit(np.zeros(5), y)
    expected = y[bag.indices].mean(1).mean()  # (M, N) -> mean of each resample -> mean over members
    np.testing.assert_allclose(bag.predict(np.zeros(3)).numpy(), [expected] * 3)


def test_classification_averages_probabilities_not_logits():
    logits = [torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[-3.0, 4.0, 0.0]])]
    members = iter(logits)
    bag = BaggingEnsemble(lambda xb, yb, it=members: (lambda t, z=next(it): z), 2, kind="classification")
    bag.fit(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    expected = (torch.softmax(logits[0], -1) + torch.softmax(logits[1], -1)) / 2
    torch.testing.assert_close(bag.predict(torch.zeros(1, 1)), expected)
    assert not torch.allclose(expected, torch.softmax((logits[0] + logits[1]) / 2, -1))
    torch.testing.assert_close(bag.predict(torch.zeros(1, 1)).sum(-1), torch.ones(1))


@pytest.mark.parametrize("call, message", [
    (lambda: bootstrap_indices(0, 4), "'n'"), (lambda: bootstrap_indices(5, 0), "'n_models'"),
    (lambda: bootstrap_indices(5, 2, generator=-1), "'generator'"),
    (lambda: bootstrap_counts(np.array([[0, 5]]), 5), "'indices'"),
    (lambda: BaggingEnsemble(3), "'fit_fn'"), (lambda: BaggingEnsemble(_least_squares_line, 0), "'n_models'"),
    (lambda: BaggingEnsemble(_least_squares_line, kind="ranking"), "'kind'"),
    (lambda: BaggingEnsemble(_least_squares_line).fit(torch.zeros(3), torch.zeros(4)), "'y'"),
    (lambda: BaggingEnsemble(_least_squares_line).fit([1.0, 2.0], torch.zeros(2)), "'x'"),
    (lambda: BaggingEnsemble(lambda xb, yb: 3).fit(torch.zeros(3), torch.zeros(3)), "'fit_fn'"),
    (lambda: BaggingEnsemble(_least_squares_line).predict(torch.zeros(3)), "fit"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        call()
