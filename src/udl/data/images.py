"""Real images that ship with installed packages: nothing downloads.

scikit-learn installs the UCI 8x8 handwritten digits (1797 images of the digits
0-9, grey levels 0-16). :func:`load_digits` scales them to [0, 1] and splits them
into a training and a held-out part with a seeded permutation, so the same seed
always gives the same split.

Example::

    x_train, y_train = load_digits("train", seed=0)   # (1438, 64), (1438,)
    x_test, y_test = load_digits("test", seed=0)      # (359, 64), (359,)
"""

from __future__ import annotations

import functools

import numpy as np

from udl.validate import check_float, check_int

SPLITS = ("train", "test", "all")
DIGITS_SHAPE = (8, 8)  # height x width of one digit image
DIGITS_LEVELS = 16.0  # the raw grey levels run from 0 to 16


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def load_digits(split: str = "train", *, test_fraction: float = 0.2, seed: int = 0,
                flat: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits, scaled to [0, 1], split by a seeded permutation.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (every image, in the original order).
        test_fraction: the share of images held out for ``"test"`` (default 0.2, i.e.
            359 of 1797), in (0, 1).
        seed: the seed of the permutation that assigns images to the two parts.
        flat: return each image as a 64-vector (default) or as an 8x8 array.

    Returns:
        ``(x, y)``: float32 images in [0, 1] and int64 labels 0-9.

    Shape:
        x: ``(N, 64)`` when ``flat``, else ``(N, 8, 8)``; y: ``(N,)``.
    """
    if split not in SPLITS:
        raise ValueError(f"The 'split' parameter of load_digits must be one of {', '.join(SPLITS)}. "
                         f"Got {split!r} instead.")
    test_fraction = check_float(test_fraction, "test_fraction", "load_digits", low=0.0, high=1.0, low_open=True,
                                high_open=True)
    seed = check_int(seed, "seed", "load_digits", minimum=0)
    if not isinstance(flat, bool):
        raise TypeError(f"The 'flat' parameter of load_digits must be a bool. Got {flat!r} instead.")
    data, target = _raw_digits()
    x = data / DIGITS_LEVELS  # grey levels 0..16 -> [0, 1]
    y = target
    if split != "all":
        n_test = int(round(test_fraction * len(x)))
        order = np.random.default_rng(seed).permutation(len(x))
        index = order[n_test:] if split == "train" else order[:n_test]
        x, y = x[index], y[index]
    x = x.copy() if flat else x.reshape(-1, *DIGITS_SHAPE)  # (N, 64) -> (N, 8, 8)
    return x, y.copy()


PHOTOS = ("china", "flower")  # the two photographs scikit-learn installs (427 x 640 RGB)


@functools.lru_cache(maxsize=2)
def _raw_photo(name: str) -> np.ndarray:
    """The JPEG that ``sklearn.datasets.load_sample_image`` reads, decoded by Pillow without importing
    scikit-learn (its import takes most of a second)."""
    import importlib.util
    from pathlib import Path

    from PIL import Image

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "images" / f"{name}.jpg"
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))  # (427, 640, 3) uint8


def load_photo(name: str = "china", *, downscale: int = 1) -> np.ndarray:
    """A real RGB photograph that ships with scikit-learn, as floats in [0, 1].

    ``"china"`` is a temple roof in a park, ``"flower"`` a close-up of a flower; both
    are 427 x 640 pixels and are read from the installed package (nothing downloads).

    Args:
        name: ``"china"`` (default) or ``"flower"``.
        downscale: an integer factor f: each f x f block of pixels is averaged into
            one (the image is first cropped to a multiple of f). Default 1 (full size).

    Returns:
        float32 array, red, green and blue in [0, 1].

    Shape:
        (⌊427/f⌋, ⌊640/f⌋, 3): height, width, channel (channels last, as images are
        stored; ``torch.from_numpy(img).permute(2, 0, 1)`` gives PyTorch's (3, H, W)).

    Example::

        >>> load_photo(downscale=8).shape
        (53, 80, 3)
    """
    if name not in PHOTOS:
        raise ValueError(f"The 'name' parameter of load_photo must be one of {', '.join(PHOTOS)}. "
                         f"Got {name!r} instead.")
    downscale = check_int(downscale, "downscale", "load_photo")
    img = _raw_photo(name).astype(np.float32) / 255.0  # uint8 0..255 -> [0, 1]
    f = int(downscale)
    h, w = img.shape[0] // f, img.shape[1] // f
    blocks = img[:h * f, :w * f].reshape(h, f, w, f, 3)  # (H, W, 3) -> (h, f, w, f, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)  # (h, w, 3)


__all__ = ["load_digits", "load_photo"]
