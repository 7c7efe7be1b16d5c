import numpy as np
import pytest
import torch

from udl.data.images import load_photo
from udl.data.photos import LUMA_WEIGHTS, photo_patches, to_grey


def _find(patch: np.ndarray, photo: np.ndarray):
    """Every (top, left) where ``patch`` (S, S, 3) sits exactly inside ``photo`` (H, W, 3)."""
    s = patch.shape[0]
    hits = []
    for top in range(photo.shape[0] - s + 1):
        rows = photo[top:top + s]
        for left in range(photo.shape[1] - s + 1):
            if np.array_equal(rows[:, left:left + s], patch):
                hits.append((top, left))
    return hits


def test_patches_are_crops_of_the_named_photographs():
    x = photo_patches(["chelsea", "coffee"], 6, 4, seed=1, downscale=8)
    assert x.shape == (4, 3, 6, 6) and x.dtype == torch.float32
    photos = {name: load_photo(name, downscale=8) for name in ("chelsea", "coffee")}
    for patch in x.permute(0, 2, 3, 1).numpy():  # (n, 3, S, S) -> (n, S, S, 3)
        assert any(_find(patch, photo) for photo in photos.values())


def test_the_draw_of_patch_i_is_documented():
    x = photo_patches(["chelsea", "coffee"], 5, 3, seed=2, downscale=8)
    photos = [load_photo(name, downscale=8) for name in ("chelsea", "coffee")]
    for i in range(3):
        rng = np.random.default_rng([2, i])
        photo = photos[rng.integers(2)]
        top, left = rng.integers(photo.shape[0] - 4), rng.integers(photo.shape[1] - 4)
        np.testing.assert_array_equal(x[i].permute(1, 2, 0).numpy(), photo[top:top + 5, left:left + 5])


def test_patch_i_does_not_depend_on_n_and_the_seed_names_the_set():
    a = photo_patches("chelsea", 8, 3, seed=0, downscale=4)
    b = photo_patches(["chelsea"], 8, 7, seed=0, downscale=4)
    c = photo_patches("chelsea", 8, 3, seed=1, downscale=4)
    torch.testing.assert_close(a, b[:3], rtol=0, atol=0)
    assert not torch.equal(a, c)
    assert 0.0 <= float(b.min()) and float(b.max()) <= 1.0


def test_the_whole_photograph_is_one_patch():
    photo = load_photo("chelsea", downscale=8)  # (37, 56, 3): the only 37 x 37 crops start at row 0
    x = photo_patches("chelsea", 37, 2, downscale=8)
    for patch in x.permute(0, 2, 3, 1).numpy():
        assert _find(patch, photo)[0][0] == 0


def test_grey_is_the_bt601_luminance():
    rgb = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = to_grey(rgb)
    assert y.shape == (2, 1, 4, 5) and y.dtype == torch.float64
    expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    torch.testing.assert_close(y[:, 0], expected, rtol=0, atol=1e-15)
    assert sum(LUMA_WEIGHTS) == pytest.approx(1.0)
    white = torch.ones(1, 3, 2, 2)  # the weights sum to 1: white stays white, a grey level stays itself
    torch.testing.assert_close(to_grey(white), torch.ones(1, 1, 2, 2))
    grey = torch.full((1, 3, 1, 1), 0.3)
    torch.testing.assert_close(to_grey(grey), torch.full((1, 1, 1, 1), 0.3))


def test_grey_agrees_with_pillow():
    from PIL import Image

    x = photo_patches("coffee", 16, 1, downscale=4)
    pixels = np.round(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # (16, 16, 3) uint8
    reference = np.asarray(Image.fromarray(pixels, "RGB").convert("L"), dtype=np.float64)  # Pillow: ITU-R 601-2
    mine = to_grey(torch.from_numpy(pixels).permute(2, 0, 1)[None].double())[0, 0].numpy()
    assert np.abs(mine - reference).max() <= 1.0  # Pillow rounds to 8 bits


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(names=[]), ValueError, "names"), (dict(names=["eagle"]), ValueError, "names"),
    (dict(names=3), TypeError, "names"), (dict(size=0), ValueError, "size"), (dict(size=38), ValueError, "size"),
    (dict(size=2.5), TypeError, "size"), (dict(n=0), ValueError, "n"), (dict(seed=-1), ValueError, "seed"),
    (dict(downscale=0), ValueError, "downscale")])
def test_bad_arguments(kwargs, error, name):
    args = dict(names="chelsea", size=8, n=2, downscale=8) | kwargs
    with pytest.raises(error, match=rf"^The '{name}' parameter of photo_patches must be .+ instead\.$"):
        photo_patches(**args)


def test_grey_refuses_what_is_not_rgb():
    with pytest.raises(ValueError, match=r"^The 'rgb' parameter of to_grey must be a tensor of shape"):
        to_grey(torch.zeros(1, 1, 4, 4))
    with pytest.raises(TypeError, match=r"^The 'rgb' parameter of to_grey must be a floating-point tensor"):
        to_grey(torch.zeros(1, 3, 4, 4, dtype=torch.int64))
