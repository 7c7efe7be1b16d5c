"""Double-descent sweep: parameter counts, label noise, and the sweep against a hand-run training."""

import numpy as np
import pytest
import torch

from udl.analysis.double_descent import (double_descent, interpolation_width, mlp_parameter_count,
                                         randomize_labels)
from udl.nn.deep import DeepNetwork
from udl.train import fit


@pytest.mark.parametrize("width", [1, 2, 43, 100, 400])
def test_parameter_count_is_the_books_formula_and_the_modules(width):
    h = width
    assert mlp_parameter_count(40, h, 10) == 40 * h + h + h * h + h + 10 * h + 10  # UDL §8.4
    net = DeepNetwork([40, h, h, 10])
    assert mlp_parameter_count(40, h, 10) == sum(p.numel() for p in net.parameters())
    for layers in (1, 3):
        deep = DeepNetwork([7, *[h] * layers, 3])
        assert mlp_parameter_count(7, h, 3, layers) == sum(p.numel() for p in deep.parameters())


@pytest.mark.parametrize("n, layers", [(4000, 2), (10000, 2), (500, 1), (2000, 3)])
def test_interpolation_width_solves_p_equals_n(n, layers):
    h = interpolation_width(n, 40, 10, layers)
    a, b = layers - 1, 40 + 1 + layers - 1 + 10
    assert a * h * h + b * h + 10 == pytest.approx(n)  # P(h*) = N
    below, above = int(np.floor(h)), int(np.ceil(h))
    assert mlp_parameter_count(40, below, 10, layers) <= n < mlp_parameter_count(40, above, 10, layers)


def test_book_thresholds():
    assert interpolation_width(4000, 40, 10) == pytest.approx(42.31, abs=0.01)
    assert interpolation_width(10000, 40, 10) == pytest.approx(77.27, abs=0.01)


def test_randomize_labels_changes_exactly_the_fraction_to_other_classes():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 20000)
    noisy = randomize_labels(y, 0.15, 10, seed=3)
    changed = noisy != y
    assert changed.sum() == 3000 and y.dtype == noisy.dtype
    assert noisy.min() >= 0 and noisy.max() <= 9
    shift = (noisy[changed] - y[changed]) % 10  # uniform over 1..9
    counts = np.bincount(shift, minlength=10)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] - 3000 / 9) < 4 * np.sqrt(3000 / 9))
    np.testing.assert_array_equal(noisy, randomize_labels(y, 0.15, 10, seed=3))  # same seed, same labels
    assert not np.array_equal(noisy, randomize_labels(y, 0.15, 10, seed=4))
    np.testing.assert_array_equal(randomize_labels(y, 0.0, 10), y)


def test_randomize_labels_keeps_tensors_and_leaves_the_input_alone():
    y = torch.arange(10) % 3
    before = y.clone()
    noisy = randomize_labels(y, 0.5, 3, seed=0)
    assert isinstance(noisy, torch.Tensor) and noisy.dtype == torch.int64
    assert int((noisy != y).sum()) == 5
    assert torch.equal(y, before)


@pytest.mark.parametrize("kwargs, match", [(dict(fraction=1.5), "'fraction'"), (dict(fraction=-0.1), "'fraction'"),
                                           (dict(n_classes=1), "'n_classes'"), (dict(y=[0, 1]), "'y'"),
                                           (dict(y=np.array([0, 5])), "'y'"), (dict(y=np.array([0.0, 1.0])), "'y'"),
                                           (dict(seed=-1), "'seed'")])
def test_randomize_labels_bad_arguments(kwargs, match):
    args = dict(y=np.array([0, 1, 2]), fraction=0.5, n_classes=3, seed=0) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        randomize_labels(**args)


def _toy_data(n_train=60, n_test=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 5, generator=g) * 2
    def draw(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return centres[y] + torch.randn(n, 5, generator=g), y
    return (*draw(n_train), *draw(n_test))


def test_sweep_matches_a_hand_run_and_the_parameter_counts():
    data = _toy_data()
    dd = double_descent([2, 16], data, label_noise=0.2, steps=150, lr=0.01, seed=5)
    np.testing.assert_array_equal(dd.parameters, [mlp_parameter_count(5, h, 3) for h in (2, 16)])
    assert dd.n_train == 60 and dd.label_noise == 0.2
    assert dd.interpolation_width == pytest.approx(interpolation_width(60, 5, 3))
    # the width-16 network by hand: the same noisy labels, initialisation and full-batch Adam
    x, y, x_test, y_test = data
    noisy = randomize_labels(y, 0.2, 3, seed=5)
    net = DeepNetwork([5, 16, 16, 3], generator=torch.Generator().manual_seed(5))
    fit(net, (x, noisy), torch.nn.functional.cross_entropy, lambda p: torch.optim.Adam(p, lr=0.01), steps=150,
        batch_size=60, shuffle=False, device="cpu", progress=False)
    with torch.no_grad():
        train_error = (net(x).argmax(1) != noisy).float().mean().item()
        test_error = (net(x_test).argmax(1) != y_test).float().mean().item()
    assert dd.train_error[1] == pytest.approx(train_error)
    assert dd.test_error[1] == pytest.approx(test_error)
    assert dd.test_error_runs.shape == (1, 2)


def test_a_wide_network_memorises_the_noisy_labels_and_a_narrow_one_cannot():
    dd = double_descent([1, 64], _toy_data(), label_noise=0.3, steps=400, lr=0.01, seed=0)
    assert dd.train_error[1] == 0.0  # interpolates every training label, the wrong ones included
    assert dd.train_error[0] > 0.2  # one unit per layer cannot fit 30% random labels
    assert dd.test_error[1] > dd.test_error.min() - 1e-12  # sanity: errors are fractions of the test set
    assert 0.0 <= dd.test_error.min() <= dd.test_error.max() <= 1.0


def test_repeats_average_independent_runs_and_the_progress_hook_sees_every_job():
    seen = []

    def progress(jobs, desc, total):
        seen.append((desc, total))
        return jobs

    dd = double_descent([4], _toy_data(), steps=20, repeats=3, seed=1, progress=progress)
    assert seen == [("networks", 3)]
    assert dd.test_error_runs.shape == (3, 1)
    assert dd.test_error[0] == pytest.approx(dd.test_error_runs[:, 0].mean())
    single = double_descent([4], _toy_data(), steps=20, seed=2)
    assert single.test_error[0] == pytest.approx(dd.test_error_runs[1, 0])  # repeat r uses seed + r


@pytest.mark.parametrize("kwargs, match", [(dict(widths=[0, 4]), "'widths'"), (dict(widths=5), "'widths'"),
                                           (dict(label_noise=1.0), "'label_noise'"), (dict(steps=0), "'steps'"),
                                           (dict(lr=0.0), "'lr'"), (dict(repeats=0), "'repeats'"),
                                           (dict(device="tpu"), "'device'"), (dict(progress="yes"), "'progress'"),
                                           (dict(data=(1, 2)), "'data'")])
def test_double_descent_bad_arguments(kwargs, match):
    args = dict(widths=[2], data=_toy_data(), steps=1) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        double_descent(args.pop("widths"), args.pop("data"), **args)
