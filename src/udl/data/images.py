"""Real images that ship with installed packages: nothing downloads.

scikit-learn installs the UCI 8x8 handwritten digits (1797 images of the digits
0-9, grey levels 0-16). :func:`load_digits` scales them to [0, 1] and splits them
into a training and a held-out part with a seeded permutation, so the same seed
always gives the same split.

Example::

    x_train, y_train = load_digits("train", seed=0)   # (1438, 64), (1438,)
    x_test, y_test = load_digits("test", seed=0)      # (359, 64), (359,)

:func:`load_photo` reads the photographs inside scikit-learn's and scikit-image's
wheels (a temple, a flower, an astronaut, a cat, a coffee cup, a rocket, a retina...).
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


# name -> (package, file inside it, what it shows, "colour" or "grey"); every file ships in the package's wheel
_PHOTO_FILES = {
    "china": ("sklearn", "datasets/images/china.jpg", "a temple roof in a park, 427 x 640", "colour"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "a close-up of a flower, 427 x 640", "colour"),
    "astronaut": ("skimage", "data/astronaut.png", "the astronaut Eileen Collins, 512 x 512", "colour"),
    "chelsea": ("skimage", "data/chelsea.png", "Chelsea the cat, 300 x 451", "colour"),
    "coffee": ("skimage", "data/coffee.png", "a cup of coffee on a wooden table, 400 x 600", "colour"),
    "rocket": ("skimage", "data/rocket.jpg", "a Falcon 9 rocket lifting off, 427 x 640", "colour"),
    "retina": ("skimage", "data/retina.jpg", "a human retina, 1411 x 1411", "colour"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg", "galaxies in the Hubble eXtreme Deep Field, "
                          "872 x 1000", "colour"),
    "immunohistochemistry": ("skimage", "data/ihc.png", "stained colonic glands under a microscope, 512 x 512",
                             "colour"),
    "motorcycle": ("skimage", "data/motorcycle_left.png", "a motorcycle (left image of a stereo pair), 500 x 741",
                   "colour"),
    "camera": ("skimage", "data/camera.png", "a man with a camera on a tripod, 512 x 512", "grey"),
    "moon": ("skimage", "data/moon.png", "the surface of the moon, low contrast, 512 x 512", "grey"),
    "coins": ("skimage", "data/coins.png", "Greek coins from Pompeii, 303 x 384", "grey"),
    "page": ("skimage", "data/page.png", "a scanned page of text, unevenly lit, 191 x 384", "grey"),
    "clock": ("skimage", "data/clock_motion.png", "a wall clock blurred by camera motion, 300 x 400", "grey"),
    "cell": ("skimage", "data/cell.png", "a cell floating in saline (phase image), 660 x 550", "grey"),
    "microaneurysms": ("skimage", "data/microaneurysms.png", "a detail of a retina, 102 x 102", "grey"),
    "brick": ("skimage", "data/brick.png", "a brick wall, 512 x 512", "grey"),
    "grass": ("skimage", "data/grass.png", "grass, 512 x 512", "grey"),
    "gravel": ("skimage", "data/gravel.png", "gravel, 512 x 512", "grey"),
}
PHOTOS = tuple(_PHOTO_FILES)  # china and flower from scikit-learn, the rest from scikit-image
GREY_PHOTOS = tuple(name for name, entry in _PHOTO_FILES.items() if entry[3] == "grey")
# scikit-image's images that are not here: downloaded on first use (udl downloads nothing), or drawings, not photos
_DOWNLOADED = ("eagle", "brain", "cells3d", "human_mitosis", "kidney", "lily", "lfw_subset", "nickel_solidification",
               "palisades_of_vogt", "protein_transport", "skin", "vortex")
_NOT_PHOTOS = ("binary_blobs", "checkerboard", "colorwheel", "horse", "logo", "shepp_logan_phantom", "text")


@functools.lru_cache(maxsize=4)
def _raw_photo(name: str) -> np.ndarray:
    """The file as its package ships it, decoded by Pillow without importing the package (scikit-learn's
    import takes most of a second); grey images come back with one channel, (H, W) uint8."""
    import importlib.util
    from pathlib import Path

    from PIL import Image

    package, file, _, kind = _PHOTO_FILES[name]
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None:
        wheel = "scikit-image" if package == "skimage" else "scikit-learn"
        raise ModuleNotFoundError(f"load_photo({name!r}) reads a file of the package {package!r}, which is not "
                                  f"installed: pip install {wheel}")
    path = Path(spec.submodule_search_locations[0]) / file
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB" if kind == "colour" else "L"))  # (H, W, 3) or (H, W) uint8


def load_photo(name: str = "china", *, downscale: int = 1) -> np.ndarray:
    """A real photograph that ships inside an installed package, as RGB floats in [0, 1].

    The photographs are files inside the wheels of scikit-learn and scikit-image, read
    from the installed packages (nothing downloads):

    - scikit-learn: ``"china"`` (a temple roof in a park) and ``"flower"``, both 427 x 640.
    - scikit-image, in colour: ``"astronaut"`` (512 x 512), ``"chelsea"`` (a cat, 300 x 451),
      ``"coffee"`` (400 x 600), ``"rocket"`` (427 x 640), ``"retina"`` (1411 x 1411),
      ``"hubble_deep_field"`` (872 x 1000), ``"immunohistochemistry"`` (512 x 512),
      ``"motorcycle"`` (500 x 741).
    - scikit-image, grey (:data:`GREY_PHOTOS`; returned with three equal channels, take
      ``[..., 0]`` for one): ``"camera"``, ``"moon"``, ``"coins"``, ``"page"``, ``"clock"``,
      ``"cell"``, ``"microaneurysms"``, and the textures ``"brick"``, ``"grass"``, ``"gravel"``.

    scikit-image's other images are refused: some (``"eagle"``, ``"cells3d"``...) it
    downloads on first use, and the rest are drawings (``"horse"``, ``"logo"``...).

    Args:
        name: one of :data:`PHOTOS`. Default: ``"china"``.
        downscale: an integer factor f: each f x f block of pixels is averaged into
            one (the image is first cropped to a multiple of f). Default 1 (full size).

    Returns:
        float32 array, red, green and blue in [0, 1] (the file's 8-bit values / 255).

    Shape:
        (⌊H/f⌋, ⌊W/f⌋, 3): height, width, channel (channels last, as images are stored;
        ``torch.from_numpy(img).permute(2, 0, 1)`` gives PyTorch's (3, H, W)).

    Example::

        >>> load_photo(downscale=8).shape
        (53, 80, 3)
        >>> load_photo("astronaut", downscale=4).shape
        (128, 128, 3)
    """
    if name in _DOWNLOADED or name in _NOT_PHOTOS:
        why = "a file scikit-image downloads on first use (udl downloads nothing)" if name in _DOWNLOADED \
            else "a drawing (a photograph is wanted)"
        raise ValueError(f"The 'name' parameter of load_photo must be a photograph that ships inside an installed "
                         f"package, not {why}: one of {', '.join(PHOTOS)}. Got {name!r} instead.")
    if not isinstance(name, str) or name not in PHOTOS:
        raise ValueError(f"The 'name' parameter of load_photo must be one of {', '.join(PHOTOS)}. "
                         f"Got {name!r} instead.")
    downscale = check_int(downscale, "downscale", "load_photo")
    raw = _raw_photo(name)
    if raw.ndim == 2:  # grey: the one channel three times, so every photograph is (H, W, 3)
        raw = np.repeat(raw[:, :, None], 3, axis=2)
    img = raw.astype(np.float32) / 255.0  # uint8 0..255 -> [0, 1]
    f = int(downscale)
    h, w = img.shape[0] // f, img.shape[1] // f
    if h == 0 or w == 0:
        raise ValueError(f"The 'downscale' parameter of load_photo must be at most {min(img.shape[:2])} for "
                         f"{name!r} ({img.shape[0]} x {img.shape[1]}). Got {f} instead.")
    blocks = img[:h * f, :w * f].reshape(h, f, w, f, 3)  # (H, W, 3) -> (h, f, w, f, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)  # (h, w, 3)


__all__ = ["load_digits", "load_photo", "PHOTOS", "GREY_PHOTOS"]
