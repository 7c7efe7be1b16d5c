import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from udl.data.images import GREY_PHOTOS, PHOTOS, load_digits, load_photo


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


# --------------------------------------------------------------------------- photographs
# udl's name -> scikit-image's function that returns the same photograph (as uint8)
SKIMAGE = {"astronaut": "astronaut", "chelsea": "chelsea", "coffee": "coffee", "rocket": "rocket", "retina": "retina",
           "hubble_deep_field": "hubble_deep_field", "immunohistochemistry": "immunohistochemistry",
           "motorcycle": "stereo_motorcycle", "camera": "camera", "moon": "moon", "coins": "coins", "page": "page",
           "clock": "clock", "cell": "cell", "microaneurysms": "microaneurysms", "brick": "brick", "grass": "grass",
           "gravel": "gravel"}


def test_every_photograph_is_listed():
    assert set(PHOTOS) == set(SKIMAGE) | {"china", "flower"}
    assert set(GREY_PHOTOS) <= set(PHOTOS)


@pytest.mark.parametrize("name", sorted(SKIMAGE))
def test_photographs_equal_scikit_image(name):
    skimage_data = pytest.importorskip("skimage.data")
    reference = getattr(skimage_data, SKIMAGE[name])()
    reference = reference[0] if name == "motorcycle" else reference  # (left, right, disparity): the left image
    img = load_photo(name)
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert img.min() >= 0.0 and img.max() <= 1.0
    if name in GREY_PHOTOS:
        assert reference.ndim == 2
        reference = np.repeat(reference[:, :, None], 3, axis=2)  # grey: the one channel three times
    np.testing.assert_array_equal(np.round(img * 255).astype(np.uint8), reference)
    assert np.abs(img * 255 - reference).max() < 1e-4


def test_grey_photographs_have_three_equal_channels_and_colour_ones_do_not():
    for name in PHOTOS:
        img = load_photo(name, downscale=4)
        grey = np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
        assert grey == (name in GREY_PHOTOS), name


def test_downscale_averages_blocks():
    full = load_photo("astronaut")
    small = load_photo("astronaut", downscale=4)
    assert small.shape == (128, 128, 3)
    np.testing.assert_allclose(small[10, 20], full[40:44, 80:84].mean(axis=(0, 1)), rtol=0, atol=1e-6)
    assert load_photo("chelsea", downscale=7).shape == (300 // 7, 451 // 7, 3)  # cropped to a multiple of 7


def test_photographs_are_read_without_the_network(monkeypatch):
    import socket

    from udl.data import images

    def refuse(*args, **kwargs):
        raise AssertionError("load_photo tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    images._raw_photo.cache_clear()
    for name in PHOTOS:
        assert load_photo(name, downscale=8).shape[2] == 3


@pytest.mark.parametrize("name, why", [("eagle", "downloads on first use"), ("cells3d", "downloads on first use"),
                                       ("horse", "a drawing"), ("logo", "a drawing"), ("lena", None), (3, None)])
def test_photographs_that_do_not_ship_are_refused(name, why):
    with pytest.raises(ValueError, match=rf"^The 'name' parameter of load_photo must be .+\. Got {name!r} instead\.$") \
            as info:
        load_photo(name)
    assert "astronaut" in str(info.value)
    if why:
        assert why in str(info.value)


def test_downscale_refusals():
    with pytest.raises(ValueError, match="'downscale' parameter of load_photo must be at most 102"):
        load_photo("microaneurysms", downscale=103)
    with pytest.raises(TypeError, match="'downscale' parameter of load_photo must be an int"):
        load_photo("coffee", downscale=2.0)
