"""Synthetic articulated figures for pose estimation, with exact joints (UDL §11.5.3, fig. 11.12).

Each image shows one stick-bodied figure facing the viewer, drawn with thick limbs
on a cluttered, textured background, together with the exact pixel position of its
14 joints and whether each joint can be seen::

     0 head            1 neck
     2 right_shoulder  3 right_elbow  4 right_wrist
     5 left_shoulder   6 left_elbow   7 left_wrist
     8 right_hip       9 right_knee  10 right_ankle
    11 left_hip       12 left_knee   13 left_ankle

"Right" and "left" are the figure's own: it faces the viewer, so its right side is
on the image's left (before rotation), as in human pose datasets.

The body (lengths in units of the torso length L, the neck-to-hips distance)::

    head      a disc of radius 0.22 L; the "head" joint is its centre, 0.42 L above
              the neck (tilted by up to ±20°)
    torso     a trapezoid from the shoulders (0.72 L apart) to the hips (0.40 L
              apart), both widths jittered by ±15 %
    arms      upper arm 0.45 L, forearm 0.42 L, limb radius 0.11 L
    legs      thigh 0.55 L, shin 0.52 L, limb radius 0.14 L

Every limb length is jittered by ±10 %. Joint angles, with 0° pointing straight down
from the torso and positive angles turning outwards (away from the body's midline):

    upper arm   10° .. 170°  (from hanging down to raised overhead)
    elbow bend  -120° .. 120° (the forearm turns by this relative to the upper arm)
    thigh       -10° .. 45°
    knee bend   -45° .. 45°

The whole figure is then rotated by up to ±``max_rotation`` degrees about the neck,
scaled so that L is ``scale`` · size with ``scale`` uniform in
``[min_scale, max_scale]`` (shrunk further when needed to fit), and placed uniformly
where every joint lies at least ``margin`` pixels inside the image.

Drawing order, back to front: background, distractors, legs, torso, neck and head,
arms, occluders. Torso and arms share a random "shirt" colour, the legs a "trousers"
colour and the head a skin tone. Limb edges are anti-aliased.

The background is a smooth random colour field (a 4 x 4 grid of dark colours,
bilinearly interpolated) plus a faint stripe texture, with ``distractors`` to
``2 · distractors`` limb-like bars and discs of random bright colours drawn behind
the figure; ``occluders`` discs may be drawn in front of it. Finally every pixel gets
N(0, ``noise``²) noise and is clipped to [0, 1].

Conventions: a joint is a point ``(x, y)`` in pixels, x to the right, y downwards;
pixel (row i, column j) covers ``[j, j + 1) x [i, i + 1)``, so its centre is
``(j + 0.5, i + 0.5)``. A joint is *visible* when the pixel that contains it is drawn
by one of the body parts that meet at that joint (not by another limb in front of
it, nor by an occluder). Image ``i`` of seed ``s`` is drawn from its own generator
seeded with ``(s, i)``: the first 100 images of ``make_poses(200, seed=s)`` are
``make_poses(100, seed=s)``.

Example::

    poses = make_poses(8, size=64, seed=0)
    poses.images.shape     # torch.Size([8, 3, 64, 64]), float32 in [0, 1]
    poses.joints.shape     # torch.Size([8, 14, 2]), (x, y) in pixels
    poses.visible.shape    # torch.Size([8, 14]), bool
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from udl.validate import check_float, check_int

JOINTS = ("head", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
          "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle")
# the bones of the skeleton drawn over a pose: pairs of joint indices
SKELETON = ((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (2, 8), (5, 11), (8, 11),
            (8, 9), (9, 10), (11, 12), (12, 13))
# the parts that meet at each joint (see _PARTS), for visibility
_PARTS = ("head", "neck", "torso", "right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm",
          "right_thigh", "right_shin", "left_thigh", "left_shin")
_JOINT_PARTS = (("head", "neck"), ("neck", "torso"), ("torso", "right_upper_arm"),
                ("right_upper_arm", "right_forearm"), ("right_forearm",), ("torso", "left_upper_arm"),
                ("left_upper_arm", "left_forearm"), ("left_forearm",), ("torso", "right_thigh"),
                ("right_thigh", "right_shin"), ("right_shin",), ("torso", "left_thigh"),
                ("left_thigh", "left_shin"), ("left_shin",))
_OCCLUDER = -2  # label of occluder pixels
_BACKGROUND = -1

# body proportions, in units of the torso length L (see the module docstring)
_HEAD_RADIUS, _HEAD_HEIGHT, _NECK_RADIUS = 0.22, 0.42, 0.08
_SHOULDER_HALF, _HIP_HALF, _SHOULDER_DROP = 0.36, 0.20, 0.08
_UPPER_ARM, _FOREARM, _ARM_RADIUS = 0.45, 0.42, 0.11
_THIGH, _SHIN, _LEG_RADIUS = 0.55, 0.52, 0.14
_TORSO_RADIUS = 0.08
# joint-angle limits in degrees: 0 points down the torso, positive turns outwards
_UPPER_ARM_RANGE, _ELBOW_RANGE = (10.0, 170.0), (-120.0, 120.0)
_THIGH_RANGE, _KNEE_RANGE = (-10.0, 45.0), (-45.0, 45.0)
_HEAD_TILT = 20.0


class Poses(NamedTuple):
    """A batch of articulated figures: images, joints and their visibility.

    Attributes:
        images: ``(N, 3, size, size)`` float32 RGB in [0, 1].
        joints: ``(N, 14, 2)`` float32, ``(x, y)`` of each joint of ``JOINTS`` in pixels.
        visible: ``(N, 14)`` bool, whether each joint can be seen (see the module docstring).
        masks: ``(N, size, size)`` bool, the figure's own visible pixels (coverage over
            one half), or None unless ``make_poses(..., masks=True)``.
    """

    images: torch.Tensor
    joints: torch.Tensor
    visible: torch.Tensor
    masks: torch.Tensor | None = None

    def __len__(self) -> int:  # the number of images, not the tuple's fields
        return self.images.shape[0]


# --------------------------------------------------------------------------- kinematics
def _direction(angle_deg: float, side: float) -> np.ndarray:
    """The unit vector at ``angle`` from straight down, turned towards ``side`` (-1 image-left, +1 right)."""
    a = math.radians(angle_deg)
    return np.array([side * math.sin(a), math.cos(a)])


def _skeleton(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """Joint positions ``(14, 2)`` in body units (neck at the origin, torso length 1) and part radii."""
    jitter = lambda: rng.uniform(0.9, 1.1)  # noqa: E731 - limb-length jitter
    joints = np.zeros((len(JOINTS), 2))
    tilt = rng.uniform(-_HEAD_TILT, _HEAD_TILT)
    joints[0] = -_HEAD_HEIGHT * _direction(tilt, 1.0)  # head centre, above the neck
    shoulder_half = _SHOULDER_HALF * rng.uniform(0.85, 1.15)
    hip_half = _HIP_HALF * rng.uniform(0.85, 1.15)
    for side, (shoulder, elbow, wrist, hip, knee, ankle) in ((-1.0, (2, 3, 4, 8, 9, 10)),
                                                             (1.0, (5, 6, 7, 11, 12, 13))):
        # the figure's right side (side -1) lies on the image's left: it faces the viewer
        joints[shoulder] = (side * shoulder_half, _SHOULDER_DROP)
        joints[hip] = (side * hip_half, 1.0)
        upper, bend = rng.uniform(*_UPPER_ARM_RANGE), rng.uniform(*_ELBOW_RANGE)
        joints[elbow] = joints[shoulder] + _UPPER_ARM * jitter() * _direction(upper, side)
        joints[wrist] = joints[elbow] + _FOREARM * jitter() * _direction(upper + bend, side)
        thigh, knee_bend = rng.uniform(*_THIGH_RANGE), rng.uniform(*_KNEE_RANGE)
        joints[knee] = joints[hip] + _THIGH * jitter() * _direction(thigh, side)
        joints[ankle] = joints[knee] + _SHIN * jitter() * _direction(thigh + knee_bend, side)
    return joints, {"head": _HEAD_RADIUS, "neck": _NECK_RADIUS, "torso": _TORSO_RADIUS,
                    "arm": _ARM_RADIUS, "leg": _LEG_RADIUS}


# --------------------------------------------------------------------------- rasterising
def _window(a: np.ndarray, b: np.ndarray, reach: float, size: int) -> tuple[slice, slice]:
    """The rows and columns of the pixels within ``reach`` of the box spanned by points a and b."""
    lo = np.floor(np.minimum(a, b) - reach).astype(int).clip(0, size)
    hi = np.ceil(np.maximum(a, b) + reach).astype(int).clip(0, size)
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _capsule(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a capsule (a thick segment a-b with round ends) per pixel centre."""
    ab = b - a
    t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    distance = np.hypot(px - a[0] - t * ab[0], py - a[1] - t * ab[1])
    return np.clip(radius - distance + 0.5, 0.0, 1.0)  # one pixel wide ramp at the edge


def _polygon(px: np.ndarray, py: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Coverage (0 or 1) of a convex polygon whose corners are listed in order."""
    inside_left = np.ones(px.shape, dtype=bool)
    inside_right = np.ones(px.shape, dtype=bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        cross = (b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0])
        inside_left &= cross >= 0
        inside_right &= cross <= 0
    return (inside_left | inside_right).astype(float)


def _colour(rng: np.random.Generator, sat=(0.5, 1.0), val=(0.7, 1.0)) -> np.ndarray:
    """A random colour from hue, saturation and value (the standard HSV -> RGB closed form)."""
    hue, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


class _Canvas:
    """An image being drawn and the label of the part that drew each pixel (for visibility)."""

    def __init__(self, image: np.ndarray, px: np.ndarray, py: np.ndarray):
        self.image, self.px, self.py = image, px, py  # (3, size, size), (size, size), (size, size)
        self.labels = np.full(px.shape, _BACKGROUND, dtype=np.int64)
        self.size = px.shape[0]

    def paint(self, coverage: np.ndarray, window: tuple[slice, slice], colour: np.ndarray, label: int) -> None:
        """Alpha-blend ``colour`` with ``coverage`` over ``window``; pixels over half covered take ``label``."""
        patch = self.image[(slice(None), *window)]  # (3, h, w) view
        patch *= 1.0 - coverage
        patch += coverage * colour[:, None, None]
        self.labels[window][coverage > 0.5] = label

    def capsule(self, a: np.ndarray, b: np.ndarray, radius: float, colour: np.ndarray, label: int) -> None:
        window = _window(a, b, radius + 1.0, self.size)
        self.paint(_capsule(self.px[window], self.py[window], a, b, radius), window, colour, label)

    def torso(self, corners: np.ndarray, radius: float, colour: np.ndarray, label: int) -> None:
        """A convex polygon with rounded, anti-aliased edges of ``radius``."""
        window = _window(corners.min(0), corners.max(0), radius + 1.0, self.size)
        px, py = self.px[window], self.py[window]
        coverage = _polygon(px, py, corners)
        for a, b in zip(corners, np.roll(corners, -1, axis=0)):
            coverage = np.maximum(coverage, _capsule(px, py, a, b, radius))
        self.paint(coverage, window, colour, label)


def _background(rng: np.random.Generator, px: np.ndarray, py: np.ndarray, n_distractors: int,
                body_length: float) -> _Canvas:
    """A smooth dark colour field with stripes, and limb-like bars and discs behind the figure."""
    size = px.shape[0]
    grid = rng.uniform(0.05, 0.5, (3, 4, 4))  # 4 x 4 random colours, bilinearly interpolated
    u = (np.arange(size) + 0.5) / size * 3  # pixel centres in grid units, 0..3
    i0 = np.minimum(u.astype(int), 2)
    f = u - i0
    rows = grid[:, i0] * (1 - f)[None, :, None] + grid[:, i0 + 1] * f[None, :, None]  # (3, size, 4)
    image = rows[:, :, i0] * (1 - f) + rows[:, :, i0 + 1] * f  # (3, size, size)
    angle, period = rng.uniform(0, np.pi), rng.uniform(3.0, 8.0)
    stripes = np.sin(2 * np.pi * (px * np.cos(angle) + py * np.sin(angle)) / period)
    canvas = _Canvas(image + rng.uniform(0.0, 0.08) * stripes, px, py)
    for _ in range(n_distractors):
        colour = _colour(rng, val=(0.4, 1.0))
        centre = rng.uniform(0, size, 2)
        if rng.uniform() < 0.6:  # a bar as thick as a limb
            half = 0.5 * rng.uniform(0.3, 1.0) * body_length * _direction(rng.uniform(0, 360), 1.0)
            radius = rng.uniform(_ARM_RADIUS, _LEG_RADIUS) * body_length
            canvas.capsule(centre - half, centre + half, radius, colour, _BACKGROUND)
        else:  # a disc as large as a head
            canvas.capsule(centre, centre, rng.uniform(0.1, 0.25) * body_length, colour, _BACKGROUND)
    return canvas


def _place(rng, size, margin, min_scale, max_scale, max_rotation):
    """Joints ``(14, 2)`` in pixels, the torso length L, and the body-unit skeleton's radii."""
    body, radii = _skeleton(rng)
    theta = math.radians(rng.uniform(-max_rotation, max_rotation))
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    body = body @ rotation.T  # (14, 2): rotated about the neck
    length = rng.uniform(min_scale, max_scale) * size
    extent = body.max(0) - body.min(0)  # (2,) width and height in body units
    length = min(length, (size - 2 * margin) / extent.max())  # shrink to fit inside the margins
    lo = margin - length * body.min(0)  # the neck's allowed range keeping every joint inside
    hi = size - margin - length * body.max(0)
    neck = rng.uniform(lo, np.maximum(hi, lo))
    return neck + length * body, length, radii


def make_poses(n: int, *, size: int = 64, min_scale: float = 0.18, max_scale: float = 0.26,
               max_rotation: float = 30.0, margin: float = 4.0, distractors: int = 4, occluders: int = 0,
               noise: float = 0.03, masks: bool = False, seed: int = 0) -> Poses:
    """Draw ``n`` images of articulated stick figures on cluttered backgrounds, with exact joints.

    Per image: a random pose within the joint-angle limits of the module docstring,
    a rotation uniform in ``±max_rotation`` degrees, a torso length L uniform in
    ``[min_scale, max_scale]`` · size (the figure is then about 2.7 L tall), a
    uniform position keeping every joint at least ``margin`` pixels from the
    border, random shirt, trousers and skin colours, ``distractors`` to
    ``2 · distractors`` background bars and discs, ``occluders`` discs in front of
    the figure, and N(0, ``noise``²) pixel noise.

    Args:
        n: number of images.
        size: image side in pixels (at least 32). Default: 64.
        min_scale, max_scale: the range of the torso length as a fraction of ``size``.
            Defaults: 0.18 and 0.26 (figures about 31-45 pixels tall at size 64).
        max_rotation: the largest rotation of the figure in degrees, in [0, 180].
            Default: 30.
        margin: the least distance in pixels from any joint to the image border.
            Default: 4.
        distractors: the least number of background bars and discs. Default: 4.
        occluders: discs drawn in front of the figure (they hide joints). Default: 0.
        noise: standard deviation of the pixel noise. Default: 0.03.
        masks: also return the figure's visible pixels. Default: False.
        seed: image i is drawn from ``np.random.default_rng([seed, i])``. Default: 0.

    Returns:
        :class:`Poses` ``(images, joints, visible, masks)``.

    Shape:
        images ``(n, 3, size, size)``; joints ``(n, 14, 2)``; visible ``(n, 14)``;
        masks ``(n, size, size)``.

    Example:
        >>> p = make_poses(4, size=64, seed=1)
        >>> p.images.shape, p.joints.shape, p.visible.shape
        (torch.Size([4, 3, 64, 64]), torch.Size([4, 14, 2]), torch.Size([4, 14]))
    """
    owner = "make_poses"
    check_int(n, "n", owner)
    check_int(size, "size", owner, minimum=32)
    check_float(min_scale, "min_scale", owner, low=0.05, high=0.5)
    check_float(max_scale, "max_scale", owner, low=min_scale, high=0.5)
    check_float(max_rotation, "max_rotation", owner, low=0.0, high=180.0)
    check_float(margin, "margin", owner, low=0.0, high=size / 4)
    check_int(distractors, "distractors", owner, minimum=0)
    check_int(occluders, "occluders", owner, minimum=0)
    check_float(noise, "noise", owner, low=0.0)
    if not isinstance(masks, bool):
        raise TypeError(f"The 'masks' parameter of {owner} must be a bool. Got {masks!r} instead.")
    check_int(seed, "seed", owner, minimum=0)

    pix = np.arange(size) + 0.5
    px, py = np.meshgrid(pix, pix)  # (size, size) pixel centres
    part = {name: k for k, name in enumerate(_PARTS)}
    images = np.empty((n, 3, size, size), dtype=np.float32)
    all_joints = np.empty((n, len(JOINTS), 2), dtype=np.float32)
    all_visible = np.empty((n, len(JOINTS)), dtype=bool)
    all_masks = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        joints, length, radii = _place(rng, size, margin, min_scale, max_scale, max_rotation)
        canvas = _background(rng, px, py, int(rng.integers(distractors, 2 * distractors + 1)), length)
        shirt, trousers = _colour(rng), _colour(rng)
        skin = _colour(rng, sat=(0.2, 0.6), val=(0.6, 1.0))
        r_arm, r_leg = radii["arm"] * length, radii["leg"] * length
        for name, (a, b) in (("right_thigh", (8, 9)), ("right_shin", (9, 10)),
                             ("left_thigh", (11, 12)), ("left_shin", (12, 13))):
            canvas.capsule(joints[a], joints[b], r_leg, trousers, part[name])
        # shoulders and hips, in order around the torso
        canvas.torso(joints[[2, 5, 11, 8]], radii["torso"] * length, shirt, part["torso"])
        canvas.capsule(joints[1], joints[0], radii["neck"] * length, skin, part["neck"])
        canvas.capsule(joints[0], joints[0], radii["head"] * length, skin, part["head"])
        for name, (a, b) in (("right_upper_arm", (2, 3)), ("right_forearm", (3, 4)),
                             ("left_upper_arm", (5, 6)), ("left_forearm", (6, 7))):
            canvas.capsule(joints[a], joints[b], r_arm, shirt, part[name])
        for _ in range(occluders):
            centre = joints[rng.integers(len(JOINTS))] + rng.normal(0.0, 0.3 * length, 2)
            canvas.capsule(centre, centre, rng.uniform(0.15, 0.3) * length, _colour(rng, val=(0.3, 1.0)), _OCCLUDER)
        image, labels = canvas.image, canvas.labels
        cells = np.floor(joints).astype(int)  # (14, 2) the pixel holding each joint
        at_joint = labels[cells[:, 1], cells[:, 0]]  # (14,)
        all_visible[i] = [at_joint[j] in [part[p] for p in _JOINT_PARTS[j]] for j in range(len(JOINTS))]
        if noise > 0:
            image += rng.normal(0.0, noise, image.shape)
        images[i] = np.clip(image, 0.0, 1.0)
        all_joints[i] = joints
        all_masks[i] = labels >= 0
    return Poses(torch.from_numpy(images), torch.from_numpy(all_joints), torch.from_numpy(all_visible),
                 torch.from_numpy(all_masks) if masks else None)


__all__ = ["JOINTS", "SKELETON", "Poses", "make_poses"]
