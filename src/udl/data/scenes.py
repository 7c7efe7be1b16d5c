"""Synthetic scenes for object detection, with exact ground-truth boxes (UDL §10.5.2).

Each scene is an RGB image of a few shapes on a cluttered background, together with
one bounding box and one class label per shape. The shapes come in five classes::

    0 rectangle   1 ellipse   2 triangle   3 plus   4 ring

Every shape is drawn into its own box of random size, aspect ratio (up to 4:3 either
way), position and colour; triangles point in one of four directions. The box is
the tight bound of the shape's own pixels, computed from its mask, so it is exact:
its four edges each touch the shape. Shapes may overlap partially (a later shape
covers an earlier one), but no box overlaps another by more than ``max_overlap``
(IoU) and no shape's centre lies inside another's box. The background is a random
linear colour gradient with Gaussian pixel noise and small distractors (dots and
thin lines) drawn behind the shapes.

The synthetic scenes of chapter 11 live in their own modules and are re-exported
here, so that ``udl.data.scenes`` is the one place to find generated images with
ground truth: :func:`make_cells` (cell-like images with masks, fig. 11.10),
:func:`make_tubes` (3D volumes with thin tubes and voxel labels, fig. 11.11) and
:func:`make_poses` (articulated figures with joint positions, fig. 11.12).

Box convention: ``(x0, y0, x1, y1)`` in pixels, x to the right, y downwards, the
corners of the pixel grid: a shape covering columns 3..7 and rows 10..14 has the box
``(3, 10, 8, 15)`` (x1 and y1 exclusive), width ``x1 - x0`` = 5 pixels. A box lies
inside a ``size`` x ``size`` image when ``0 <= x0 < x1 <= size`` (same for y).

Scene ``i`` of seed ``s`` is drawn from its own generator seeded with ``(s, i)``, so
the first 100 scenes of ``make_scenes(200, seed=s)`` are ``make_scenes(100, seed=s)``.

Example::

    scenes = make_scenes(8, size=56, max_objects=4, seed=0)
    scenes.images.shape        # torch.Size([8, 3, 56, 56]), float32 in [0, 1]
    scenes.boxes[0]            # (K_0, 4) float32, pixels
    scenes.labels[0]           # (K_0,) int64 in 0..4
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from udl.validate import check_float, check_int

CLASSES = ("rectangle", "ellipse", "triangle", "plus", "ring")

_PLUS_ARM = 1 / 3  # arm thickness of the plus, as a fraction of its box
_RING_HOLE = 0.55  # inner radius of the ring, as a fraction of the outer radius
_MAX_ASPECT = 4 / 3  # the longer side of a shape's box is at most 4/3 of the shorter


# --------------------------------------------------------------------------- boxes
def _box_number(value, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"The {name!r} parameter of {owner} must be a float. Got {value!r} instead.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"The {name!r} parameter of {owner} must be a finite float. Got {value!r} instead.")
    return value


@dataclass(frozen=True)
class Box:
    """One axis-aligned bounding box ``(x0, y0, x1, y1)`` in pixels, validated.

    ``x0 < x1`` and ``y0 < y1`` (positive width and height); with ``image_size`` the
    box must also lie inside the ``image_size`` x ``image_size`` image,
    ``0 <= x0 < x1 <= image_size`` (same for y). Anything else (a negative or zero
    size, a corner outside the image, NaN or inf, a non-number) is refused with a
    ValueError or TypeError that names the coordinate.

    Args:
        x0, y0: the top-left corner (pixel-grid coordinates).
        x1, y1: the bottom-right corner (exclusive, see the module docstring).
        image_size: if given, the side of the square image the box must lie in.
            Default: None (no bound).

    Example:
        >>> Box(3, 10, 8, 15).width, Box(3, 10, 8, 15).area
        (5.0, 25.0)
        >>> Box(3, 10, 2, 15)
        Traceback (most recent call last):
        ...
        ValueError: The 'x1' parameter of Box must be greater than x0 = 3.0 (a positive width). Got 2.0 instead.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    image_size: float | None = None

    def __post_init__(self):
        for name in ("x0", "y0", "x1", "y1"):
            object.__setattr__(self, name, _box_number(getattr(self, name), name, "Box"))
        for lo, hi, side in (("x0", "x1", "width"), ("y0", "y1", "height")):
            if getattr(self, hi) <= getattr(self, lo):
                raise ValueError(f"The {hi!r} parameter of Box must be greater than {lo} = {getattr(self, lo)!r} "
                                 f"(a positive {side}). Got {getattr(self, hi)!r} instead.")
        if self.image_size is not None:
            size = _box_number(self.image_size, "image_size", "Box")
            if size <= 0:
                raise ValueError(f"The 'image_size' parameter of Box must be a positive float. Got {size!r} instead.")
            for name in ("x0", "y0", "x1", "y1"):
                value = getattr(self, name)
                if not 0 <= value <= size:
                    raise ValueError(f"The {name!r} parameter of Box must lie inside the image, in [0, {size:g}]. "
                                     f"Got {value!r} instead.")

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def as_tuple(self) -> tuple[float, float, float, float]:
        return self.x0, self.y0, self.x1, self.y1


def check_boxes(boxes, name: str, owner: str, *, image_size: float | None = None,
                allow_empty: bool = False) -> torch.Tensor:
    """Validate a ``(K, 4)`` tensor of ``(x0, y0, x1, y1)`` boxes; return it as float32.

    The tensor form of :class:`Box`: every row must have positive width and height,
    finite corners and, with ``image_size``, lie inside the image. ``K = 0`` is allowed.
    With ``allow_empty`` a row may also have zero width or height (``x0 == x1`` or
    ``y0 == y1``), as torchvision's box operations accept: an empty box, which
    overlaps nothing; ``x1 < x0`` is refused either way.

    Raises:
        TypeError: ``boxes`` is not a tensor (or array) of real numbers.
        ValueError: a wrong shape, or a row that :class:`Box` would refuse (the
            message gives the row).
    """
    if isinstance(boxes, np.ndarray):
        boxes = torch.from_numpy(boxes)
    if not isinstance(boxes, torch.Tensor) or boxes.is_complex() or boxes.dtype == torch.bool:
        raise TypeError(f"The {name!r} parameter of {owner} must be a real tensor of shape (K, 4). "
                        f"Got {type(boxes).__name__} instead.")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"The {name!r} parameter of {owner} must have shape (K, 4). "
                         f"Got {tuple(boxes.shape)} instead.")
    boxes = boxes.float()
    if allow_empty:
        inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    else:
        inverted = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    bad = ~torch.isfinite(boxes).all(1) | inverted
    if image_size is not None:
        bad |= (boxes < 0).any(1) | (boxes > image_size).any(1)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        inside = "" if image_size is None else f" inside [0, {image_size:g}]"
        order = "<=" if allow_empty else "<"
        raise ValueError(f"The {name!r} parameter of {owner} must hold boxes (x0, y0, x1, y1) with x0 {order} x1, "
                         f"y0 {order} y1{inside}. Got {boxes[row].tolist()} in row {row} instead.")
    return boxes


# --------------------------------------------------------------------------- shapes
def shape_mask(kind: int, width: int, height: int, *, orientation: int = 0) -> np.ndarray:
    """Rasterise shape class ``kind`` into a ``height`` x ``width`` box; a boolean mask.

    A pixel belongs to the shape when its centre does. With ``u, v`` the pixel centre
    in box coordinates scaled to ``[-1, 1]``: rectangle, every pixel; ellipse,
    ``u² + v² <= 1``; triangle, ``|u| <= (v + 1) / 2`` (apex up; ``orientation``
    0-3 turns it by multiples of 90°); plus, ``|u| <= 1/3`` or ``|v| <= 1/3``; ring,
    ``0.55² < u² + v² <= 1``.

    Args:
        kind: the class index, 0..4 (see ``CLASSES``).
        width, height: the box's size in pixels (at least 3).
        orientation: for triangles, quarter turns (0 up, 1 right, 2 down, 3 left).

    Shape:
        ``(height, width)`` bool.
    """
    check_int(kind, "kind", "shape_mask", minimum=0)
    if kind >= len(CLASSES):
        raise ValueError(f"The 'kind' parameter of shape_mask must be an int in 0..{len(CLASSES) - 1}. "
                         f"Got {kind!r} instead.")
    check_int(width, "width", "shape_mask", minimum=3)
    check_int(height, "height", "shape_mask", minimum=3)
    check_int(orientation, "orientation", "shape_mask", minimum=0)
    u = (np.arange(width) + 0.5) / width * 2 - 1  # pixel centres in [-1, 1]
    v = (np.arange(height) + 0.5) / height * 2 - 1
    u, v = np.meshgrid(u, v)  # (height, width) each
    r2 = u ** 2 + v ** 2
    name = CLASSES[kind]
    if name == "rectangle":
        return np.ones((height, width), dtype=bool)
    if name == "ellipse":
        return r2 <= 1
    if name == "triangle":
        # the apex at the middle of one side, the base along the opposite side
        along, across = [(v, u), (-u, v), (-v, u), (u, v)][orientation % 4]
        return np.abs(across) <= (along + 1) / 2
    if name == "plus":
        return (np.abs(u) <= _PLUS_ARM) | (np.abs(v) <= _PLUS_ARM)
    return (r2 <= 1) & (r2 > _RING_HOLE ** 2)  # ring


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The smallest ``(x0, y0, x1, y1)`` box holding every True pixel of a 2D mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        raise ValueError("The 'mask' parameter of tight_box must hold at least one True pixel. Got none instead.")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# --------------------------------------------------------------------------- scenes
class Scenes(NamedTuple):
    """A batch of scenes: images and, per image, its boxes and labels.

    Attributes:
        images: ``(N, 3, size, size)`` float32 RGB in [0, 1].
        boxes: N tensors ``(K_n, 4)`` float32, ``(x0, y0, x1, y1)`` in pixels.
        labels: N tensors ``(K_n,)`` int64, class indices into ``CLASSES``.
        masks: N tensors ``(K_n, size, size)`` bool (each shape's own pixels, hidden
            ones included), or None unless ``make_scenes(..., masks=True)``.
    """

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    masks: list[torch.Tensor] | None = None

    def __len__(self) -> int:  # the number of scenes, not the tuple's fields
        return self.images.shape[0]

    @property
    def n_objects(self) -> int:
        return sum(len(b) for b in self.boxes)


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A bright, saturated random colour: hue uniform, saturation and value high."""
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.75, 1.0)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6  # HSV -> RGB, the standard closed form
    return val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)


def _background(rng: np.random.Generator, size: int, noise: float, n_distractors: int) -> np.ndarray:
    """A dark linear gradient between two random colours, dots and thin lines, (3, size, size)."""
    start, end = rng.uniform(0.0, 0.35, 3), rng.uniform(0.0, 0.35, 3)
    angle = rng.uniform(0, 2 * np.pi)
    coord = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(coord, coord)
    t = np.clip((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) + 0.5, 0, 1)  # (size, size)
    image = start[:, None, None] + (end - start)[:, None, None] * t  # (3, size, size)
    pix = np.arange(size) + 0.5
    for _ in range(n_distractors):
        colour = _colour(rng) * rng.uniform(0.5, 1.0)
        if rng.uniform() < 0.5:  # a dot of radius 1-2.5 pixels
            cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.0, 2.5)
            hit = (pix[None, :] - cx) ** 2 + (pix[:, None] - cy) ** 2 <= r ** 2
        else:  # a one-pixel line of length 5-15
            cx, cy, length, theta = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(5, 15), rng.uniform(0, np.pi)
            s = np.linspace(-length / 2, length / 2, int(2 * length))
            cols = np.clip((cx + s * np.cos(theta)).astype(int), 0, size - 1)
            rows = np.clip((cy + s * np.sin(theta)).astype(int), 0, size - 1)
            hit = np.zeros((size, size), dtype=bool)
            hit[rows, cols] = True
        image[:, hit] = colour[:, None]
    return image


def _place(rng, size, min_size, max_size, placed, max_overlap, tries=50):
    """A random box ``(x0, y0, w, h)`` that overlaps no placed box too much, or None."""
    for _ in range(tries):
        side = rng.uniform(min_size, max_size)
        aspect = math.exp(rng.uniform(-math.log(_MAX_ASPECT), math.log(_MAX_ASPECT)))
        w = int(round(min(max(side * math.sqrt(aspect), min_size), max_size)))
        h = int(round(min(max(side / math.sqrt(aspect), min_size), max_size)))
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        box = np.array([x0, y0, x0 + w, y0 + h], dtype=float)
        ok = True
        for other in placed:
            if _iou(box, other) > max_overlap or _inside(_centre(box), other) or _inside(_centre(other), box):
                ok = False
                break
        if ok:
            return x0, y0, w, h
    return None


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def make_scenes(n: int, *, size: int = 56, min_objects: int = 1, max_objects: int = 4,
                min_size: int = 10, max_size: int = 24, n_classes: int = len(CLASSES),
                noise: float = 0.03, distractors: int = 6, max_overlap: float = 0.2,
                masks: bool = False, seed: int = 0) -> Scenes:
    """Draw ``n`` random scenes of shapes on cluttered backgrounds, with exact boxes.

    Per scene: a number of shapes K uniform in ``min_objects..max_objects``, each of a
    class uniform in ``0..n_classes-1``, a side uniform in ``[min_size, max_size]``
    stretched by an aspect ratio of up to 4:3, a uniform position inside the image, a
    random bright colour. A shape that cannot be placed within the overlap limits in
    50 tries is left out (K may then fall below ``min_objects``; rare with the
    defaults). The background: a gradient of two dark colours, ``distractors`` to
    ``2 * distractors`` dots and lines, then N(0, ``noise``²) noise on every pixel
    (objects included), clipped to [0, 1].

    Args:
        n: number of scenes.
        size: image side in pixels. Default: 56 (the book's 448 / 8).
        min_objects, max_objects: the range of K. Defaults: 1 and 4.
        min_size, max_size: the range of a shape's box side in pixels. Defaults: 10 and 24.
        n_classes: use the first ``n_classes`` of ``CLASSES`` (2-5). Default: 5.
        noise: standard deviation of the pixel noise. Default: 0.03.
        distractors: the least number of background dots and lines. Default: 6.
        max_overlap: the largest IoU allowed between two boxes, in [0, 1). Default: 0.2.
        masks: also return each shape's mask. Default: False.
        seed: scene i is drawn from ``np.random.default_rng([seed, i])``. Default: 0.

    Returns:
        :class:`Scenes` ``(images, boxes, labels, masks)``.

    Shape:
        images ``(n, 3, size, size)``; boxes[i] ``(K_i, 4)``; labels[i] ``(K_i,)``.

    Example:
        >>> s = make_scenes(4, size=48, max_objects=3, seed=1)
        >>> s.images.shape, len(s.boxes), s.boxes[0].shape[1]
        (torch.Size([4, 3, 48, 48]), 4, 4)
    """
    owner = "make_scenes"
    check_int(n, "n", owner)
    check_int(size, "size", owner, minimum=16)
    check_int(min_objects, "min_objects", owner, minimum=0)
    check_int(max_objects, "max_objects", owner, minimum=max(1, min_objects))
    check_int(min_size, "min_size", owner, minimum=3)
    check_int(max_size, "max_size", owner, minimum=min_size)
    if max_size > size:
        raise ValueError(f"The 'max_size' parameter of {owner} must be at most size = {size}. Got {max_size!r} instead.")
    check_int(n_classes, "n_classes", owner, minimum=2)
    if n_classes > len(CLASSES):
        raise ValueError(f"The 'n_classes' parameter of {owner} must be an int in 2..{len(CLASSES)}. "
                         f"Got {n_classes!r} instead.")
    check_float(noise, "noise", owner, low=0.0)
    check_int(distractors, "distractors", owner, minimum=0)
    check_float(max_overlap, "max_overlap", owner, low=0.0, high=1.0, high_open=True)
    if not isinstance(masks, bool):
        raise TypeError(f"The 'masks' parameter of {owner} must be a bool. Got {masks!r} instead.")
    check_int(seed, "seed", owner, minimum=0)

    images = np.empty((n, 3, size, size), dtype=np.float32)
    all_boxes, all_labels, all_masks = [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        image = _background(rng, size, noise, int(rng.integers(distractors, 2 * distractors + 1)))
        boxes, labels, shapes = [], [], []
        for _ in range(int(rng.integers(min_objects, max_objects + 1))):
            placed = _place(rng, size, min_size, max_size, boxes, max_overlap)
            if placed is None:
                continue
            x0, y0, w, h = placed
            kind = int(rng.integers(0, n_classes))
            local = shape_mask(kind, w, h, orientation=int(rng.integers(0, 4)))
            mask = np.zeros((size, size), dtype=bool)
            mask[y0:y0 + h, x0:x0 + w] = local
            image[:, mask] = _colour(rng)[:, None]  # later shapes cover earlier ones
            boxes.append(np.array(tight_box(mask), dtype=float))  # exact: the bound of the shape's own pixels
            labels.append(kind)
            shapes.append(mask)
        image += rng.normal(0.0, noise, image.shape) if noise > 0 else 0.0
        images[i] = np.clip(image, 0.0, 1.0)
        all_boxes.append(torch.tensor(np.array(boxes, dtype=np.float32).reshape(-1, 4)))  # (K, 4)
        all_labels.append(torch.tensor(labels, dtype=torch.int64))
        if masks:
            all_masks.append(torch.from_numpy(np.array(shapes, dtype=bool).reshape(-1, size, size)))
    return Scenes(torch.from_numpy(images), all_boxes, all_labels, all_masks if masks else None)


__all__ = ["CLASSES", "Box", "Scenes", "check_boxes", "make_scenes", "shape_mask", "tight_box",
           "make_cells", "make_tubes", "CellImages", "TubeVolumes", "make_poses", "Poses", "JOINTS", "SKELETON"]

from udl.data.cells import CellImages, TubeVolumes, make_cells, make_tubes  # noqa: E402 (re-exported)
from udl.data.poses import JOINTS, SKELETON, Poses, make_poses  # noqa: E402 (re-exported)
