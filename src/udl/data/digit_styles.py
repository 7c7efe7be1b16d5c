"""Two styles of the same handwritten digits, for unpaired image translation (UDL §15.4.4, fig. 15.18).

Domain A is udl's 8x8 digits (:func:`udl.data.images.load_digits`). Domain B is the same
kind of digit written in **bold**: each stroke is made ``width`` pixels wider to the
right, the way a typesetter fakes a bold face by printing a glyph again shifted
sideways. For a grey image this is a grey dilation by a horizontal ``1 x width`` line::

    bold[x]_{i,j} = max_{0 <= k < width} x_{i,j-k}        (pixels left of the image count as 0)

Because the map is known, every held-out digit has a true partner in the other domain,
and a translation learned from *unpaired* examples can be scored against it: the
question CycleGAN (Zhu et al. 2017) could only answer by eye for horses and zebras.
The bold digits stay readable: udl's independent digit classifier
(:func:`udl.analysis.generative.digit_classifier`) recognises 96% of the held-out ones
at ``width=2``, against 99.4% of the plain ones.

:func:`digit_domains` splits the training digits of ``load_digits("train", seed=0)`` (the
split every generative model of udl trains on) into two disjoint halves by a seeded
permutation: one half is domain A as written, the other half is emboldened to make
domain B. No digit appears in both domains, so the training set holds no pairs. The
held-out digits (``load_digits("test", seed=0)``) come in both styles, paired.

Example::

    >>> d = digit_domains()
    >>> d.a.shape, d.b.shape, d.held_a.shape
    (torch.Size([719, 1, 8, 8]), torch.Size([719, 1, 8, 8]), torch.Size([359, 1, 8, 8]))
    >>> bool(torch.equal(d.held_b, embolden(d.held_a)))
    True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from udl.data.images import load_digits
from udl.validate import _refuse, _shown, check_int

__all__ = ["embolden", "DigitDomains", "digit_domains", "SPLIT_SEED"]

SPLIT_SEED = 0  # the train/held-out split of load_digits that every generative model of udl uses
MAX_WIDTH = 8  # a line as wide as the image


def embolden(images, *, width: int = 2) -> torch.Tensor:
    """The bold style: grey dilation of each image by a horizontal line of ``width`` pixels.

    Each pixel becomes the maximum of itself and the ``width - 1`` pixels to its left
    (zeros beyond the left edge), so every stroke grows ``width - 1`` pixels to the right.
    ``width=1`` is the identity.

    Args:
        images: ``(N, 1, H, W)``, ``(N, H, W)`` or ``(H, W)`` float images (tensor or array).
        width: the line's length in pixels, 1-8. Default: 2.

    Returns:
        float tensor of ``images``' shape.

    Example::

        >>> embolden(torch.tensor([[0.0, 0.5, 0.0, 0.25]])).tolist()
        [[0.0, 0.5, 0.5, 0.25]]
    """
    owner = "embolden"
    width = check_int(width, "width", owner, maximum=MAX_WIDTH)
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or not images.dtype.is_floating_point:
        _refuse("images", owner, "a floating-point tensor or array of images", _shown(images), TypeError)
    if images.dim() not in (2, 3, 4) or images.numel() == 0:
        _refuse("images", owner, "images of shape (N, 1, H, W), (N, H, W) or (H, W)", f"shape {tuple(images.shape)}")
    shape = images.shape
    x = images.reshape(-1, 1, *shape[-2:])  # (N, 1, H, W)
    padded = F.pad(x, (width - 1, 0), value=float("-inf"))  # (N, 1, H, W + width - 1): nothing left of the edge
    bold = F.max_pool2d(padded, (1, width), stride=1)  # max over x_{i, j-k}, k < width
    return bold.reshape(shape)


class DigitDomains(NamedTuple):
    """Two unpaired training domains and paired held-out digits; images ``(N, 1, 8, 8)`` in [0, 1]."""

    a: torch.Tensor  # domain A for training: plain digits
    labels_a: torch.Tensor  # their classes (N_a,), never shown to a translator
    b: torch.Tensor  # domain B for training: *other* digits, emboldened
    labels_b: torch.Tensor
    held_a: torch.Tensor  # the held-out digits, plain
    held_b: torch.Tensor  # the same digits in bold: the true partners of held_a
    held_labels: torch.Tensor


def digit_domains(*, width: int = 2, seed: int = 0) -> DigitDomains:
    """Plain digits (A) and bold digits (B) from disjoint training digits; the held-out digits in both styles.

    The 1,438 training digits of ``load_digits("train", seed=0)`` are permuted by
    ``np.random.default_rng(seed)``; the first half (719) is domain A, the second half
    (719) emboldened by :func:`embolden` is domain B. The 359 held-out digits of
    ``load_digits("test", seed=0)`` come plain (``held_a``) and bold (``held_b``): row i of
    one is the true translation of row i of the other.

    Args:
        width: the bold line's length, 1-8 (:func:`embolden`). Default: 2.
        seed: the permutation that halves the training digits. Default: 0.

    Returns:
        a :class:`DigitDomains`.
    """
    owner = "digit_domains"
    width = check_int(width, "width", owner, maximum=MAX_WIDTH)
    seed = check_int(seed, "seed", owner, minimum=0)
    x, y = (torch.from_numpy(v) for v in load_digits("train", seed=SPLIT_SEED, flat=False))
    x_held, y_held = (torch.from_numpy(v) for v in load_digits("test", seed=SPLIT_SEED, flat=False))
    x, x_held = x[:, None], x_held[:, None]  # (N, 8, 8) -> (N, 1, 8, 8)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    half = len(x) // 2
    in_a, in_b = order[:half], order[half:2 * half]
    return DigitDomains(a=x[in_a], labels_a=y[in_a], b=embolden(x[in_b], width=width), labels_b=y[in_b],
                        held_a=x_held, held_b=embolden(x_held, width=width), held_labels=y_held)
