"""k-fold cross-validation: scikit-learn's KFold splits, hand-checked scores and selection."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold

from udl.analysis.cross_validation import cross_validate, kfold_indices


@pytest.mark.parametrize("n, k, shuffle, seed", [(10, 5, False, None), (23, 4, False, None), (23, 4, True, 0),
                                                 (100, 7, True, 3), (5, 5, True, 11)])
def test_splits_equal_sklearn_kfold(n, k, shuffle, seed):
    ours = kfold_indices(n, k, shuffle=shuffle, seed=seed)
    theirs = list(KFold(n_splits=k, shuffle=shuffle, random_state=seed).split(np.zeros(n)))
    assert len(ours) == k
    for (train, val), (train_ref, val_ref) in zip(ours, theirs):
        np.testing.assert_array_equal(train, train_ref)
        np.testing.assert_array_equal(val, val_ref)


@pytest.mark.parametrize("shuffle, seed", [(False, None), (True, 1)])
def test_folds_are_disjoint_cover_the_data_and_train_is_the_complement(shuffle, seed):
    n, k = 23, 5
    folds = kfold_indices(n, k, shuffle=shuffle, seed=seed)
    vals = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(vals), np.arange(n))  # disjoint and covering: each index once
    assert sorted(len(val) for _, val in folds) == [4, 4, 5, 5, 5]  # the first n mod k folds one larger
    for train, val in folds:
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


def test_unshuffled_folds_are_contiguous_blocks():
    assert [val.tolist() for _, val in kfold_indices(7, 3)] == [[0, 1, 2], [3, 4], [5, 6]]


def test_seed_changes_the_shuffled_folds_and_repeats_exactly():
    a = kfold_indices(50, 5, shuffle=True, seed=0)
    b = kfold_indices(50, 5, shuffle=True, seed=0)
    c = kfold_indices(50, 5, shuffle=True, seed=1)
    assert all(np.array_equal(va, vb) for (_, va), (_, vb) in zip(a, b))
    assert not all(np.array_equal(va, vc) for (_, va), (_, vc) in zip(a, c))


def _neg_mse_of_slope(a, x_train, y_train, x_val, y_val):
    return -float(np.mean((a * x_val - y_val) ** 2))


def test_scores_match_a_hand_loop_and_the_best_mean_is_chosen():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 40)
    y = 1.3 * x + 0.1 * rng.standard_normal(40)
    grid = [0.0, 1.0, 1.3, 2.0]
    cv = cross_validate(_neg_mse_of_slope, x, y, grid, k=4, seed=2)
    folds = list(KFold(4, shuffle=True, random_state=2).split(x))
    expected = np.array([[-np.mean((a * x[val] - y[val]) ** 2) for _, val in folds] for a in grid])
    np.testing.assert_allclose(cv.fold_scores, expected)
    np.testing.assert_allclose(cv.mean_scores, expected.mean(1))
    np.testing.assert_allclose(cv.std_scores, expected.std(1))
    assert cv.best_index == int(np.argmax(expected.mean(1))) == 2 and cv.best_param == 1.3
    assert cv.params == grid and len(cv.folds) == 4


def test_fit_receives_the_fold_rows_and_ties_go_to_the_first():
    x, y = np.arange(10.0), np.arange(10.0) * 10
    seen = []

    def record(param, x_train, y_train, x_val, y_val):
        seen.append((param, x_train.copy(), x_val.copy()))
        np.testing.assert_array_equal(y_train, 10 * x_train)  # rows of x and y stay paired
        return 1.0  # every value ties

    cv = cross_validate(record, x, y, ["a", "b"], k=2, seed=None, shuffle=False)
    assert cv.best_param == "a" and cv.best_index == 0
    assert [p for p, _, _ in seen] == ["a", "a", "b", "b"]
    np.testing.assert_array_equal(seen[0][2], np.arange(5.0))
    np.testing.assert_array_equal(seen[0][1], np.arange(5.0, 10.0))


def test_torch_tensors_are_indexed_as_tensors():
    x, y = torch.arange(12.0)[:, None], torch.arange(12)
    kinds = []

    def score(param, x_train, y_train, x_val, y_val):
        kinds.append((type(x_train), tuple(x_val.shape), y_val.dtype))
        return float(param)

    cv = cross_validate(score, x, y, [3, 1], k=3)
    assert cv.best_param == 3
    assert set(kinds) == {(torch.Tensor, (4, 1), torch.int64)}


@pytest.mark.parametrize("kwargs, match", [(dict(k=1), "'k'"), (dict(k=2.0), "'k'"), (dict(n=3, k=4), "'n'"),
                                           (dict(shuffle=1), "'shuffle'"), (dict(seed=0), "'seed'"),
                                           (dict(shuffle=True, seed=-1), "'seed'")])
def test_kfold_bad_arguments(kwargs, match):
    args = dict(n=10, k=5) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        kfold_indices(args.pop("n"), args.pop("k"), **args)


def test_cross_validate_bad_arguments():
    x = np.arange(10.0)
    with pytest.raises(TypeError, match="'fit_score_fn'"):
        cross_validate(3, x, x, [1])
    with pytest.raises(ValueError, match="'params_grid'"):
        cross_validate(_neg_mse_of_slope, x, x, [])
    with pytest.raises(ValueError, match="'y'"):
        cross_validate(_neg_mse_of_slope, x, x[:5], [1])
    with pytest.raises(ValueError, match="'k'"):
        cross_validate(_neg_mse_of_slope, x[:3], x[:3], [1], k=5)
    with pytest.raises(ValueError, match="finite"):
        cross_validate(lambda *a: float("nan"), x, x, [1])
