import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from udl.data.images import load_digits


def test_split_sizes_range_and_scaling():
    x_train, y_train = load_digits("train", seed=0)
    x_test, y_test = load_digits("test", seed=0)
    assert x_train.shape == (1438, 64) and y_train.shape == (1438,)
    assert x_test.shape == (359, 64) and y_test.shape == (359,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    raw = sklearn_digits()
    np.testing.assert_allclose(load_digits("all")[0], raw.data / 16.0, rtol=0, atol=1e-7)


def test_train_and_test_partition_all_images():
    x_all, y_all = load_digits("all")
    x_train, y_train = load_digits("train", seed=3)
    x_test, y_test = load_digits("test", seed=3)
    joined = np.concatenate([np.c_[x_train, y_train], np.c_[x_test, y_test]])
    full = np.c_[x_all, y_all]
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731 - sort rows lexicographically
    np.testing.assert_array_equal(order(joined), order(full))


def test_seed_controls_split():
    a, _ = load_digits("train", seed=0)
    b, _ = load_digits("train", seed=0)
    c, _ = load_digits("train", seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unflattened_images():
    x, _ = load_digits("test", seed=0, flat=False)
    x_flat, _ = load_digits("test", seed=0)
    assert x.shape == (359, 8, 8)
    np.testing.assert_array_equal(x.reshape(-1, 64), x_flat)


@pytest.mark.parametrize("kwargs, error", [(dict(split="val"), ValueError), (dict(test_fraction=0.0), ValueError),
                                           (dict(test_fraction=1.5), ValueError), (dict(seed=-1), ValueError),
                                           (dict(seed=1.5), TypeError)])
def test_bad_arguments(kwargs, error):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(error, match=rf"^The '{name}' parameter of load_digits must be .+\. Got {value!r} instead\.$"):
        load_digits(**kwargs)
    with pytest.raises(TypeError):
        load_digits(flat="yes")
