"""Synthetic microscopy for segmentation, with exact ground truth (UDL §11.5.3, figs. 11.10-11.11).

Two generators stand in for the book's microscopy data (HeLa cells for the U-Net of
Ronneberger et al. 2015, electron-microscope volumes of neurites for the 3D U-Nets
of Falk et al. 2019), which udl cannot download.

**Cells** (:func:`make_cells`): grayscale images of irregular cells, some touching.
Cell j has a centre c_j, a mean radius R_j and three harmonics of its outline::

    R_j(θ) = R_j (1 + Σ_{m=2,3,4} a_jm cos(m θ + φ_jm))                       (outline)
    ρ_j(p) = |p - c_j| / R_j(θ_j(p)),  θ_j(p) = atan2(p_y - c_jy, p_x - c_jx)

Pixel p (pixel centres at integer coordinates, ``p = (row, column)``) lies inside
cell j when ρ_j(p) ≤ 1. Where cells overlap, the pixel belongs to the cell with the
smallest ρ, which draws a natural dividing line between touching cells. The
instance map holds that cell's number 1..K (0 = background); the binary mask is
"inside some cell". Both are computed from the geometry (returned as well), so they
are exact, not thresholded from the picture. The picture: a dark, faintly textured
background; cell interiors of a per-cell brightness with a fine-grained texture and
a darker nucleus; a bright border (pixels within ``border`` of another region,
membranes between touching cells included); then a slight blur, a smooth uneven
illumination (a random linear ramp and a Gaussian bump, ± ``illumination``) and
Gaussian pixel noise; clipped to [0, 1]. About half of the cells are placed touching
an earlier one (``touching``).

**Tubes** (:func:`make_tubes`): cubic volumes holding thin neurite-like tubes and
distractor blobs. Tube t follows a cubic Bézier curve between two points on the
volume's faces (through two random inner control points); its radius varies
smoothly along the curve, r(s) = r_lo + (r_hi - r_lo)(1 + sin(2π f s + φ)) / 2 (s: the fraction of
the curve's length) with
``min_radius ≤ r_lo ≤ r_hi ≤ max_radius``. The tube *is* the union of the balls
B(γ(s_i), r(s_i)) over centre-line samples s_i spaced at most 0.25 voxel apart; the
label of voxel v (voxel centres at integer coordinates, ``v = (z, y, x)``) is 1 when
v lies in some tube's ball, so the mask is exact for the returned samples. The
distractors are solid ellipsoids (semi-axes in ``blob_radius``, random orientation),
as bright as the tubes but labelled 0 and kept at least two voxels away from every
tube: a segmenter must tell tubes from blobs by their shape. The picture: a dim
background with smooth clutter, tubes and blobs of random brightness, a Gaussian
blur (``blur``) and Gaussian noise (``noise``).

Image i of seed s is drawn from its own generator ``np.random.default_rng([s, i])``,
so the first 10 images of ``make_cells(20, seed=s)`` are ``make_cells(10, seed=s)``.

Example::

    cells = make_cells(8, size=64, seed=0)
    cells.images.shape      # torch.Size([8, 1, 64, 64]), float32 in [0, 1]
    cells.masks.shape       # torch.Size([8, 64, 64]), int64 in {0, 1}
    tubes = make_tubes(4, size=32, seed=0)
    tubes.volumes.shape     # torch.Size([4, 1, 32, 32, 32])
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from udl.validate import check_float, check_int, is_real

__all__ = ["CellImages", "TubeVolumes", "make_cells", "make_tubes", "cell_outline_radius", "cell_rho",
           "ellipsoid_mask", "ball_union_mask", "bezier"]

HARMONICS = (2, 3, 4)  # the orders m of the outline's harmonics
_MAX_AMPLITUDE = (0.22, 0.10, 0.06)  # a_m ~ U(0, this): R_j(θ) ≥ 0.62 R_j, an irregular but star-shaped outline
_SAMPLE_SPACING = 0.25  # voxels between the centre-line samples of a tube


# --------------------------------------------------------------------------- 2D cells: geometry
def cell_outline_radius(theta, radius: float, amplitude, phase) -> np.ndarray:
    """R(θ) = R (1 + Σ_m a_m cos(m θ + φ_m)) for m = 2, 3, 4: a cell's outline in polar form.

    Args:
        theta: angles (any shape).
        radius: the mean radius R.
        amplitude: the three a_m.
        phase: the three φ_m.

    Example:
        >>> float(cell_outline_radius(0.0, 10.0, [0.1, 0.0, 0.0], [0.0, 0.0, 0.0]))
        11.0
    """
    theta = np.asarray(theta, dtype=np.float64)
    wiggle = sum(a * np.cos(m * theta + f) for m, a, f in zip(HARMONICS, amplitude, phase))
    return radius * (1.0 + wiggle)


def cell_rho(size: int, centre, radius: float, amplitude, phase) -> np.ndarray:
    """ρ(p) = |p - c| / R(θ(p)) at every pixel centre of a ``size`` x ``size`` image (inside: ρ ≤ 1).

    Pixel ``[row, col]`` is the point ``p = (row, col)``; ``centre = (c_row, c_col)``.

    Shape:
        ``(size, size)`` float64.
    """
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = rows - centre[0], cols - centre[1]
    return np.hypot(dy, dx) / cell_outline_radius(np.arctan2(dy, dx), radius, amplitude, phase)


class CellImages(NamedTuple):
    """Synthetic cell images with exact masks (see the module docstring).

    Fields:
        images: ``(N, 1, H, W)`` float32 in [0, 1].
        masks: ``(N, H, W)`` int64, 1 inside a cell (the foreground), else 0.
        instances: ``(N, H, W)`` int64, the cell's number 1..K_n, 0 for background.
        geometry: N dicts of NumPy arrays describing the K_n cells: ``centre`` (K, 2)
            as (row, col), ``radius`` (K,), ``amplitude`` (K, 3) and ``phase`` (K, 3).
    """

    images: torch.Tensor
    masks: torch.Tensor
    instances: torch.Tensor
    geometry: list[dict[str, np.ndarray]]

    def __len__(self) -> int:  # the number of images, not the tuple's fields
        return self.images.shape[0]


def _place_cells(rng, size, n_cells, min_radius, max_radius, touching, tries=60):
    centres, radii = [], []
    for _ in range(n_cells):
        R = rng.uniform(min_radius, max_radius)
        for _ in range(tries):
            if centres and rng.random() < touching:  # overlap an earlier cell slightly
                i = rng.integers(len(centres))
                angle = rng.uniform(0, 2 * math.pi)
                d = (radii[i] + R) * rng.uniform(0.72, 0.92)
                c = centres[i] + d * np.array([math.sin(angle), math.cos(angle)])
                gap = [0.7 if j == i else 1.05 for j in range(len(centres))]
            else:
                c = rng.uniform(0, size - 1, 2)
                gap = [1.05] * len(centres)
            if not (0 <= c[0] <= size - 1 and 0 <= c[1] <= size - 1):
                continue
            if all(np.hypot(*(c - cj)) >= g * (rj + R) for cj, rj, g in zip(centres, radii, gap)):
                centres.append(c)
                radii.append(R)
                break
    return np.array(centres).reshape(-1, 2), np.array(radii)


def _smooth_noise(rng, shape, sigma: float) -> np.ndarray:
    """Gaussian noise blurred with ``sigma`` and rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / (field.std() + 1e-12)


def _one_cell_image(rng, size, min_cells, max_cells, min_radius, max_radius, touching, border, noise,
                    illumination):
    centres, radii = _place_cells(rng, size, int(rng.integers(min_cells, max_cells + 1)), min_radius, max_radius,
                                  touching)
    K = len(radii)
    amplitude = rng.uniform(0, 1, (K, 3)) * np.array(_MAX_AMPLITUDE)
    phase = rng.uniform(0, 2 * math.pi, (K, 3))
    rho = np.stack([cell_rho(size, centres[j], radii[j], amplitude[j], phase[j]) for j in range(K)]) \
        if K else np.full((1, size, size), np.inf)  # (K, H, W)
    nearest = rho.argmin(0)
    inside = rho.min(0) <= 1.0
    instances = np.where(inside, nearest + 1, 0)

    # the picture
    image = 0.22 + 0.03 * _smooth_noise(rng, (size, size), 3.0)  # background
    texture = _smooth_noise(rng, (size, size), 0.8)
    for j in range(K):
        cell = instances == j + 1
        level = rng.uniform(0.22, 0.4)
        nucleus = rho[j] <= rng.uniform(0.3, 0.45)
        image[cell] = level + 0.06 * texture[cell] - 0.10 * nucleus[cell]
    changes = np.zeros((size, size), dtype=bool)  # pixels next to another region (4-neighbourhood)
    changes[1:, :] |= instances[1:, :] != instances[:-1, :]
    changes[:-1, :] |= instances[1:, :] != instances[:-1, :]
    changes[:, 1:] |= instances[:, 1:] != instances[:, :-1]
    changes[:, :-1] |= instances[:, 1:] != instances[:, :-1]
    near_edge = ndimage.distance_transform_edt(~changes) <= border - 1 if changes.any() else changes
    image[near_edge & inside] = rng.uniform(0.78, 0.9)
    image = ndimage.gaussian_filter(image, 0.6)
    rows, cols = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1  # in [-1, 1]
    ramp = rng.normal(size=2)
    ramp /= np.linalg.norm(ramp)
    bump_at, bump_width = rng.uniform(-1, 1, 2), rng.uniform(0.5, 1.0)
    bump = np.exp(-((rows - bump_at[0]) ** 2 + (cols - bump_at[1]) ** 2) / (2 * bump_width ** 2))
    light = 1 + illumination * (0.6 * (ramp[0] * rows + ramp[1] * cols) + 0.8 * (bump - 0.5))
    image = np.clip(image * light + noise * rng.standard_normal((size, size)), 0.0, 1.0)
    geometry = {"centre": centres, "radius": radii, "amplitude": amplitude, "phase": phase}
    return image, instances, geometry


def make_cells(n: int, *, size: int = 64, min_cells: int = 3, max_cells: int = 8, min_radius: float = 6.0,
               max_radius: float = 12.0, touching: float = 0.5, border: float = 2.0, noise: float = 0.05,
               illumination: float = 0.3, seed: int = 0) -> CellImages:
    """``n`` synthetic cell images with exact foreground masks and instance labels.

    See the module docstring for the geometry and the picture.

    Args:
        n: the number of images N.
        size: the side of the square images. Default: 64.
        min_cells, max_cells: cells per image, uniform in this range (fewer when they
            do not fit). Default: 3, 8.
        min_radius, max_radius: the mean radius R_j of a cell, uniform in this range
            (pixels). Default: 6.0, 12.0.
        touching: the probability that a cell is placed overlapping an earlier one
            (then split along the dividing line of smallest ρ). Default: 0.5.
        border: the width of the bright border, in pixels. Default: 2.0.
        noise: the standard deviation of the Gaussian pixel noise. Default: 0.05.
        illumination: the relative amplitude of the uneven lighting. Default: 0.3.
        seed: image i is drawn from ``np.random.default_rng([seed, i])``. Default: 0.

    Returns:
        :class:`CellImages`.

    Example:
        >>> cells = make_cells(2, size=48, seed=1)
        >>> cells.images.shape, cells.masks.shape, int(cells.instances.max()) >= 1
        (torch.Size([2, 1, 48, 48]), torch.Size([2, 48, 48]), True)
    """
    owner = "make_cells"
    check_int(n, "n", owner)
    check_int(size, "size", owner, minimum=16)
    check_int(min_cells, "min_cells", owner, minimum=0)
    check_int(max_cells, "max_cells", owner, minimum=max(1, min_cells))
    check_float(min_radius, "min_radius", owner, low=2.0)
    check_float(max_radius, "max_radius", owner, low=min_radius, high=size / 2)
    check_float(touching, "touching", owner, low=0.0, high=1.0)
    check_float(border, "border", owner, low=1.0, high=min_radius / 2)
    check_float(noise, "noise", owner, low=0.0)
    check_float(illumination, "illumination", owner, low=0.0, high=1.0)
    check_int(seed, "seed", owner, minimum=0)
    images, instances, geometry = [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        image, inst, geo = _one_cell_image(rng, size, min_cells, max_cells, min_radius, max_radius, touching,
                                           border, noise, illumination)
        images.append(image)
        instances.append(inst)
        geometry.append(geo)
    instances = torch.as_tensor(np.stack(instances), dtype=torch.int64)  # (N, H, W)
    return CellImages(images=torch.as_tensor(np.stack(images)[:, None], dtype=torch.float32),  # (N, 1, H, W)
                      masks=(instances > 0).long(), instances=instances, geometry=geometry)


# --------------------------------------------------------------------------- 3D tubes
def bezier(control: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of the cubic Bézier curve with 4 control points at parameters t ∈ [0, 1].

    γ(t) = (1-t)³ P0 + 3(1-t)² t P1 + 3(1-t) t² P2 + t³ P3.

    Shape:
        ``control (4, d), t (T,) -> (T, d)``.
    """
    control, t = np.asarray(control, dtype=np.float64), np.asarray(t, dtype=np.float64)[:, None]
    u = 1 - t
    return u ** 3 * control[0] + 3 * u ** 2 * t * control[1] + 3 * u * t ** 2 * control[2] + t ** 3 * control[3]


def ball_union_mask(size: int, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Voxels of a ``size``³ grid whose centre lies in some ball B(centres[i], radii[i]).

    Shape:
        ``centres (M, 3), radii (M,) -> (size, size, size)`` bool, indexed ``[z, y, x]``.
    """
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1).reshape(-1, 3)  # (S³, 3)
    mask = np.zeros(len(grid), dtype=bool)
    if len(centres):
        hits = cKDTree(grid).query_ball_point(np.asarray(centres, dtype=np.float64), r=np.asarray(radii) + 1e-9)
        mask[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])] = True
    return mask.reshape(size, size, size)


def ellipsoid_mask(size: int, centre, axes, rotation) -> np.ndarray:
    """Voxels of a ``size``³ grid inside the ellipsoid ``|diag(1/axes) Qᵀ (v - centre)| ≤ 1``.

    Args:
        centre: (3,) in voxel coordinates (z, y, x).
        axes: the three semi-axes.
        rotation: the orthogonal 3 x 3 matrix Q whose columns are the axes' directions.

    Shape:
        ``(size, size, size)`` bool.
    """
    centre = np.asarray(centre, dtype=np.float64)
    reach = float(np.max(axes))  # the ellipsoid lies in the ball of its longest semi-axis
    lo = np.clip(np.floor(centre - reach).astype(int), 0, size)
    hi = np.clip(np.ceil(centre + reach).astype(int) + 1, 0, size)
    mask = np.zeros((size, size, size), dtype=bool)
    if (hi > lo).all():
        box = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1)  # (d, h, w, 3)
        local = (box - centre) @ np.asarray(rotation) / np.asarray(axes)  # (d, h, w, 3)
        mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = (local ** 2).sum(-1) <= 1.0
    return mask


class TubeVolumes(NamedTuple):
    """Synthetic volumes of tubes and distractor blobs with exact voxel labels.

    Fields:
        volumes: ``(N, 1, D, H, W)`` float32 in [0, 1] (D = H = W = size).
        masks: ``(N, D, H, W)`` int64, 1 inside a tube, else 0 (blobs are 0).
        blobs: ``(N, D, H, W)`` bool, the distractors' voxels.
        geometry: N dicts: ``centres`` and ``radii``, lists with one array per tube of
            its centre-line samples (M_t, 3) as (z, y, x) and their radii (M_t,);
            ``blob_centre`` (B, 3), ``blob_axes`` (B, 3), ``blob_rotation`` (B, 3, 3).
    """

    volumes: torch.Tensor
    masks: torch.Tensor
    blobs: torch.Tensor
    geometry: list[dict]

    def __len__(self) -> int:
        return self.volumes.shape[0]


def _face_point(rng, size, face: int) -> np.ndarray:
    """A random point on one of the cube's six faces (slightly outside it)."""
    p = rng.uniform(0, size - 1, 3)
    axis, side = divmod(face, 2)
    p[axis] = -1.0 if side == 0 else size
    return p


def _one_tube_volume(rng, size, min_tubes, max_tubes, min_radius, max_radius, n_blobs, blob_radius, noise, blur):
    centres, radii = [], []
    for _ in range(int(rng.integers(min_tubes, max_tubes + 1))):
        face = int(rng.integers(6))
        other = int(rng.choice([f for f in range(6) if f != face]))
        margin = 0.15 * size
        control = np.stack([_face_point(rng, size, face), rng.uniform(margin, size - 1 - margin, 3),
                            rng.uniform(margin, size - 1 - margin, 3), _face_point(rng, size, other)])
        fine_t = np.linspace(0, 1, 4001)
        fine = bezier(control, fine_t)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(fine, axis=0), axis=1))])
        n_samples = int(math.ceil(arc[-1] / (0.8 * _SAMPLE_SPACING))) + 1  # chords shorter than the arcs
        s = np.linspace(0, 1, n_samples)  # arc-length fraction
        t = np.interp(s * arc[-1], arc, fine_t)  # Bézier parameter at equal arc-length steps
        r_lo, r_hi = np.sort(rng.uniform(min_radius, max_radius, 2))
        f, phi = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * math.pi)
        centres.append(bezier(control, t))
        radii.append(r_lo + (r_hi - r_lo) * (1 + np.sin(2 * math.pi * f * s + phi)) / 2)
    tube = ball_union_mask(size, np.concatenate(centres), np.concatenate(radii))
    keep_out = ndimage.binary_dilation(tube, iterations=2)  # blobs stay two voxels away from the tubes

    blob = np.zeros_like(tube)
    blob_centre, blob_axes, blob_rotation = [], [], []
    for _ in range(n_blobs):
        for _ in range(30):
            c = rng.uniform(0, size - 1, 3)
            axes = rng.uniform(*blob_radius, 3)
            q, r = np.linalg.qr(rng.standard_normal((3, 3)))
            q = q * np.sign(np.diag(r))  # a uniformly random orthogonal matrix
            m = ellipsoid_mask(size, c, axes, q)
            if m.any() and not (m & keep_out).any():
                blob |= m
                blob_centre.append(c)
                blob_axes.append(axes)
                blob_rotation.append(q)
                break

    labels, n_tubes = ndimage.label(tube)
    volume = 0.15 + 0.05 * _smooth_noise(rng, (size,) * 3, 2.0)  # dim background with smooth clutter
    for k in range(1, n_tubes + 1):  # each connected piece of tube its own brightness
        volume[labels == k] = rng.uniform(0.55, 0.85)
    blob_labels, n_pieces = ndimage.label(blob)
    for k in range(1, n_pieces + 1):
        volume[blob_labels == k] = rng.uniform(0.55, 0.85)
    volume = ndimage.gaussian_filter(volume, blur) if blur > 0 else volume
    volume = np.clip(volume + noise * rng.standard_normal(volume.shape), 0.0, 1.0)
    geometry = {"centres": centres, "radii": radii, "blob_centre": np.array(blob_centre).reshape(-1, 3),
                "blob_axes": np.array(blob_axes).reshape(-1, 3),
                "blob_rotation": np.array(blob_rotation).reshape(-1, 3, 3)}
    return volume, tube, blob, geometry


def make_tubes(n: int, *, size: int = 32, min_tubes: int = 3, max_tubes: int = 5, min_radius: float = 1.2,
               max_radius: float = 2.5, n_blobs: int = 6, blob_radius: tuple[float, float] = (1.5, 3.5),
               noise: float = 0.15, blur: float = 0.8, seed: int = 0) -> TubeVolumes:
    """``n`` synthetic volumes of neurite-like tubes and distractor blobs, with exact tube labels.

    See the module docstring for the geometry and the picture.

    Args:
        n: the number of volumes N.
        size: the side of the cubic volumes. Default: 32.
        min_tubes, max_tubes: tubes per volume, uniform in this range. Default: 3, 5.
        min_radius, max_radius: the tubes' radii lie in this range (voxels). Default: 1.2, 2.5.
        n_blobs: distractor ellipsoids tried per volume (fewer when they do not fit). Default: 6.
        blob_radius: the range of the ellipsoids' semi-axes (voxels). Default: (1.5, 3.5).
        noise: the standard deviation of the Gaussian voxel noise. Default: 0.15.
        blur: the standard deviation of the Gaussian blur, in voxels (0: none). Default: 0.8.
        seed: volume i is drawn from ``np.random.default_rng([seed, i])``. Default: 0.

    Returns:
        :class:`TubeVolumes`.

    Example:
        >>> tubes = make_tubes(2, size=16, seed=0)
        >>> tubes.volumes.shape, tubes.masks.shape
        (torch.Size([2, 1, 16, 16, 16]), torch.Size([2, 16, 16, 16]))
    """
    owner = "make_tubes"
    check_int(n, "n", owner)
    check_int(size, "size", owner, minimum=8)
    check_int(min_tubes, "min_tubes", owner)
    check_int(max_tubes, "max_tubes", owner, minimum=min_tubes)
    check_float(min_radius, "min_radius", owner, low=0.5)
    check_float(max_radius, "max_radius", owner, low=min_radius, high=size / 4)
    check_int(n_blobs, "n_blobs", owner, minimum=0)
    if not isinstance(blob_radius, (list, tuple)) or len(blob_radius) != 2 or \
            any(not is_real(v) for v in blob_radius) or \
            not 0.5 <= blob_radius[0] <= blob_radius[1] <= size / 4:
        raise ValueError(f"The 'blob_radius' parameter of {owner} must be a pair (low, high) with "
                         f"0.5 <= low <= high <= size / 4. Got {blob_radius!r} instead.")
    check_float(noise, "noise", owner, low=0.0)
    check_float(blur, "blur", owner, low=0.0)
    check_int(seed, "seed", owner, minimum=0)
    volumes, masks, blobs, geometry = [], [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        volume, tube, blob, geo = _one_tube_volume(rng, size, min_tubes, max_tubes, min_radius, max_radius,
                                                   n_blobs, tuple(map(float, blob_radius)), noise, blur)
        volumes.append(volume)
        masks.append(tube)
        blobs.append(blob)
        geometry.append(geo)
    return TubeVolumes(volumes=torch.as_tensor(np.stack(volumes)[:, None], dtype=torch.float32),  # (N, 1, D, H, W)
                       masks=torch.as_tensor(np.stack(masks), dtype=torch.int64),  # (N, D, H, W)
                       blobs=torch.as_tensor(np.stack(blobs)), geometry=geometry)
