"""udl.data.mnist1d: local generation, seeding, the on-disk cache and the global RNG."""

import random

import numpy as np
import pytest
import torch

from udl.data import mnist1d as m1d

SMALL = 200  # 20 sequences per class: fast


def _equal(a, b):
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("x_train", "y_train", "x_test", "y_test", "t"))


def test_shapes_dtypes_and_class_balance(tmp_path):
    data = m1d.load_mnist1d(num_samples=SMALL, cache_dir=tmp_path)
    assert data.x_train.shape == (160, 40) and data.x_test.shape == (40, 40)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64 and data.t.shape == (40,)
    labels = np.concatenate([data.y_train, data.y_test])
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, SMALL // 10))
    everything = np.concatenate([data.x_train, data.x_test])
    assert abs(everything.mean()) < 1e-5 and abs(everything.std() - 1) < 1e-4  # mnist1d standardises
    x, y, *_ = data.tensors()
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (160, 40)


def test_equals_mnist1d_make_dataset(tmp_path):
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    args = get_dataset_args(as_dict=True)
    args.update(num_samples=SMALL, seed=7)
    ref = make_dataset(ObjectView(args))
    data = m1d.load_mnist1d(num_samples=SMALL, seed=7, cache_dir=tmp_path)
    np.testing.assert_array_equal(data.x_train, ref["x"].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, ref["y_test"])


def test_same_seed_same_arrays_different_seed_different(tmp_path):
    a = m1d.load_mnist1d(num_samples=SMALL, seed=1, cache_dir=tmp_path / "a")
    b = m1d.load_mnist1d(num_samples=SMALL, seed=1, cache_dir=tmp_path / "b")
    c = m1d.load_mnist1d(num_samples=SMALL, seed=2, cache_dir=tmp_path / "a")
    assert _equal(a, b) and not np.array_equal(a.x_train, c.x_train)


def test_cache_is_written_named_by_hash_and_reused(tmp_path, monkeypatch):
    fresh = m1d.load_mnist1d(num_samples=SMALL, seed=3, cache_dir=tmp_path)
    path = m1d.cache_path(m1d.dataset_args(SMALL, 0.8, 3), tmp_path)
    assert path.exists() and path.name.startswith("mnist1d-") and path.suffix == ".npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left behind
    other = m1d.cache_path(m1d.dataset_args(SMALL, 0.8, 4), tmp_path)
    assert other != path

    def no_generation(args):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(m1d, "_generate", no_generation)
    assert _equal(m1d.load_mnist1d(num_samples=SMALL, seed=3, cache_dir=tmp_path), fresh)


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UDL_DATA_DIR", str(tmp_path))
    m1d.load_mnist1d(num_samples=SMALL, seed=5)
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1


@pytest.mark.parametrize("damage", [b"", b"not a zip file", None])
def test_corrupted_cache_is_regenerated(tmp_path, damage):
    fresh = m1d.load_mnist1d(num_samples=SMALL, seed=6, cache_dir=tmp_path)
    path = m1d.cache_path(m1d.dataset_args(SMALL, 0.8, 6), tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage is None else damage)  # None: truncated
    again = m1d.load_mnist1d(num_samples=SMALL, seed=6, cache_dir=tmp_path)
    assert _equal(again, fresh)
    with np.load(path, allow_pickle=False) as stored:  # the file was rewritten whole
        np.testing.assert_array_equal(stored["x_train"], fresh.x_train)


def test_global_random_state_is_unchanged(tmp_path):
    np.random.seed(123)
    random.seed(456)
    expected_np, expected_py = np.random.random(3), random.random()
    np.random.seed(123)
    random.seed(456)
    m1d.load_mnist1d(num_samples=SMALL, seed=8, cache_dir=tmp_path)  # generates
    m1d.load_mnist1d(num_samples=SMALL, seed=8, cache_dir=tmp_path)  # from the cache
    np.testing.assert_array_equal(np.random.random(3), expected_np)
    assert random.random() == expected_py


def test_overrides_reach_the_generator(tmp_path):
    data = m1d.load_mnist1d(num_samples=SMALL, cache_dir=tmp_path, final_seq_length=24)
    assert data.x_train.shape == (160, 24)


@pytest.mark.parametrize("kwargs", [dict(num_samples=5), dict(num_samples=100.0), dict(train_split=1.0),
                                    dict(train_split=0.0), dict(seed=-1), dict(url="http://x"), dict(bogus=1),
                                    dict(cache_dir=3), dict(num_samples=10, train_split=0.05)])
def test_bad_arguments(kwargs, tmp_path):
    kwargs.setdefault("cache_dir", tmp_path)
    with pytest.raises((ValueError, TypeError)):
        m1d.load_mnist1d(**kwargs)


def test_book_default_split_sizes():
    args = m1d.dataset_args()
    assert args["num_samples"] == 5000 and args["train_split"] == 0.8 and args["seed"] == 42
    assert args["final_seq_length"] == 40 and "url" not in args


def test_a_valid_file_for_other_arguments_is_not_trusted(tmp_path):
    fresh = m1d.load_mnist1d(num_samples=SMALL, seed=9, cache_dir=tmp_path)
    other = m1d.load_mnist1d(num_samples=SMALL, seed=10, cache_dir=tmp_path)
    path9 = m1d.cache_path(m1d.dataset_args(SMALL, 0.8, 9), tmp_path)
    path10 = m1d.cache_path(m1d.dataset_args(SMALL, 0.8, 10), tmp_path)
    path9.write_bytes(path10.read_bytes())  # a whole, readable file, but made with seed 10
    again = m1d.load_mnist1d(num_samples=SMALL, seed=9, cache_dir=tmp_path)
    assert _equal(again, fresh) and not _equal(again, other)


@pytest.mark.parametrize("num_samples, train_split", [(5000, 0.8), (105, 0.8), (1234, 0.7), (100, 0.33)])
def test_split_sizes_are_the_loaded_splits(num_samples, train_split):
    data = m1d.load_mnist1d(num_samples=num_samples, train_split=train_split)
    assert m1d.split_sizes(num_samples, train_split) == (len(data.y_train), len(data.y_test))
