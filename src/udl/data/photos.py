"""Square patches cut from real photographs, and their grey (luminance) versions.

Image-to-image networks (Pix2Pix's colouriser, SRGAN's super-resolver; UDL §15.4-15.5)
train on small crops of photographs rather than whole images. :func:`photo_patches`
cuts ``n`` random ``size x size`` crops from the photographs of
:func:`udl.data.images.load_photo` (which read files inside installed packages:
nothing downloads). Patch i comes from ``np.random.default_rng([seed, i])``: the
photograph it is cut from and its top-left corner, so patch i does not depend on how
many patches are asked for. :func:`to_grey` turns RGB patches into one luminance
channel with the ITU-R BT.601 weights.

Example::

    >>> x = photo_patches(["china", "flower"], 16, 4, downscale=2)
    >>> x.shape, bool(x.min() >= 0), bool(x.max() <= 1)
    (torch.Size([4, 3, 16, 16]), True, True)
    >>> to_grey(x).shape
    torch.Size([4, 1, 16, 16])
"""

from __future__ import annotations

import numpy as np
import torch

from udl.data.images import PHOTOS, load_photo
from udl.validate import check_int, check_sequence, check_tensor

__all__ = ["photo_patches", "to_grey", "LUMA_WEIGHTS"]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601: the luminance Y of red, green and blue


def photo_patches(names, size: int, n: int, *, seed: int = 0, downscale: int = 1) -> torch.Tensor:
    """``n`` random ``size x size`` crops from the photographs ``names``, as a batch of RGB images in [0, 1].

    Patch i is drawn from ``np.random.default_rng([seed, i])``: first which photograph
    (uniformly among ``names``), then its top-left corner (uniformly among all positions
    where the crop fits). The same ``(names, size, seed, downscale)`` thus gives the same
    first patches whatever ``n`` is.

    Args:
        names: a photograph's name, or a non-empty list of them (each one of
            :data:`udl.data.images.PHOTOS`).
        size: the side of each square patch in pixels (of the downscaled photograph);
            at most the shorter side of every photograph named.
        n: how many patches.
        seed: names the set of patches (a non-negative int). Default 0.
        downscale: each photograph is first shrunk by this integer factor (f x f blocks
            averaged, as :func:`~udl.data.images.load_photo`). Default 1 (full size).

    Returns:
        float32 tensor of RGB patches in [0, 1].

    Shape:
        ``(n, 3, size, size)``: patch, channel (red, green, blue), row, column.
    """
    owner = "photo_patches"
    if isinstance(names, str):
        names = [names]
    check_sequence(names, "names", owner, of="photograph names")
    if len(names) == 0 or any(not isinstance(name, str) or name not in PHOTOS for name in names):
        raise ValueError(f"The 'names' parameter of {owner} must be a non-empty list of names from "
                         f"{', '.join(PHOTOS)}. Got {names!r} instead.")
    size = check_int(size, "size", owner)
    n = check_int(n, "n", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    downscale = check_int(downscale, "downscale", owner)
    photos = [load_photo(name, downscale=downscale) for name in names]  # each (H, W, 3)
    shortest = min(min(p.shape[:2]) for p in photos)
    if size > shortest:
        raise ValueError(f"The 'size' parameter of {owner} must be at most {shortest} (the shortest side of the "
                         f"photographs at downscale {downscale}). Got {size} instead.")
    patches = np.empty((n, size, size, 3), dtype=np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - size + 1)
        left = rng.integers(photo.shape[1] - size + 1)
        patches[i] = photo[top:top + size, left:left + size]
    return torch.from_numpy(patches).permute(0, 3, 1, 2).contiguous()  # (n, S, S, 3) -> (n, 3, S, S)


def to_grey(rgb: torch.Tensor) -> torch.Tensor:
    """The luminance of RGB images, Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601).

    Args:
        rgb: a floating-point batch of RGB images.

    Returns:
        The grey images, one channel, in the range of the input (weights sum to 1).

    Shape:
        ``(N, 3, H, W) -> (N, 1, H, W)``.
    """
    check_tensor(rgb, "rgb", "to_grey", shape=("N", 3, "H", "W"), dtype="float")
    weights = torch.tensor(LUMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("nchw,c->nhw", rgb, weights)[:, None]  # (N, 3, H, W) -> (N, 1, H, W)
