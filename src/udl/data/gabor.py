"""The Gabor model's dataset (UDL §6.1, figs. 6.1-6.8).

- :func:`load_gabor_data`: the book's 30 (x, y) pairs, exactly as the book's notebooks
  and interactive figures give them (the text of §6.1 says 28 points; the published
  data have 30). The least-squares loss of the Gabor model on them has its global
  minimum, about 0.64, near φ = (0, 16).
- :func:`make_gabor_data`: a seeded synthetic set drawn from a Gabor model with known
  parameters plus Gaussian noise, for experiments with other sizes.

The Gabor model itself lives in :mod:`udl.models.gabor`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from udl.data.toy import ToyData
from udl.validate import check_float, check_int, is_real

# The book's data (UDL §6.1; notebooks 6.2-6.4), in the published order.
GABOR_X = (-1.920, -14.22, 1.490, -1.940, -2.389, -5.090, -8.861, 3.578, -6.010, -6.995,
           3.634, 0.8743, -10.96, 0.4073, -9.467, 8.560, 10.62, -0.1729, 10.40, -12.61,
           0.1574, -13.04, -2.156, -12.10, -11.19, 2.902, -8.220, -11.79, -8.391, -4.505)
GABOR_Y = (-1.051, -0.02482, 0.8896, -0.4943, -0.9371, 0.4306, 0.009577, -0.07944, 0.1624, -0.2682,
           -0.3129, 0.8303, -0.02365, 0.5098, -0.2777, 0.3367, 0.1927, -0.2222, 0.06352, 0.006888,
           0.03224, 0.01091, -0.5706, -0.05258, -0.03666, 0.1709, -0.04805, 0.2008, -0.1904, 0.5952)


def load_gabor_data(*, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's 30-point dataset for the Gabor model, in the published order.

    Args:
        dtype: a floating-point torch dtype, default ``torch.float64`` (the loss
            surface and the optimiser comparisons of chapter 6 are made in float64).

    Returns:
        ``(x, y)``, two tensors of shape (30,).

    Example:
        >>> x, y = load_gabor_data()
        >>> x.shape, float(x[0]), float(y[0])
        (torch.Size([30]), -1.92, -1.051)
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"The 'dtype' parameter of load_gabor_data must be a floating-point torch.dtype. "
                        f"Got {dtype!r} instead.")
    return torch.tensor(GABOR_X, dtype=dtype), torch.tensor(GABOR_Y, dtype=dtype)


def gabor_truth(x, phi0: float, phi1: float) -> np.ndarray:
    """The Gabor model ``sin(z)·exp(-z²/32)``, ``z = φ0 + 0.06·φ1·x`` (UDL eq. 6.8), in NumPy.

    Shape: any; the output has the shape of ``x``.
    """
    z = phi0 + 0.06 * phi1 * np.asarray(x, dtype=np.float64)
    return np.sin(z) * np.exp(-z**2 / 32.0)


def make_gabor_data(n: int = 30, phi0: float = 0.0, phi1: float = 16.0, noise_sd: float = 0.1, *,
                    x_range: tuple[float, float] = (-15.0, 15.0),
                    seed: int | np.random.Generator = 0) -> ToyData:
    """A synthetic Gabor dataset: x uniform on ``x_range``, ``y = f[x, φ] + ε``, ε ~ N(0, σ²).

    Args:
        n: number of points, default 30.
        phi0: the true offset φ0, default 0.0.
        phi1: the true frequency φ1, default 16.0 (near the book data's best fit).
        noise_sd: the noise standard deviation σ ≥ 0, default 0.1.
        x_range: ``(low, high)`` with low < high, default (-15, 15).
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        :class:`~udl.data.toy.ToyData` with x, y of shape (n,) (x sorted ascending) and
        ``truth(x)`` the noise-free Gabor function.

    Example:
        >>> data = make_gabor_data(100, noise_sd=0.0, seed=0)
        >>> bool(np.allclose(data.y, data.truth(data.x)))
        True
    """
    owner = "make_gabor_data"
    check_int(n, "n", owner)
    phi0 = check_float(phi0, "phi0", owner)
    phi1 = check_float(phi1, "phi1", owner)
    noise_sd = check_float(noise_sd, "noise_sd", owner, low=0)
    if (not isinstance(x_range, (tuple, list)) or len(x_range) != 2
            or not all(is_real(v) and math.isfinite(v)
                       for v in x_range)
            or not x_range[0] < x_range[1]):
        raise ValueError(f"The 'x_range' parameter of {owner} must be a pair (low, high) of finite floats "
                         f"with low < high. Got {x_range!r} instead.")
    if isinstance(seed, np.random.Generator):
        rng = seed
    else:
        rng = np.random.default_rng(check_int(seed, "seed", owner, minimum=0))

    def truth(x):
        return gabor_truth(x, phi0, phi1)

    x = np.sort(rng.uniform(x_range[0], x_range[1], n))
    y = truth(x) + noise_sd * rng.standard_normal(n)
    return ToyData(x=x, y=y, truth=truth, noise_sd=noise_sd)


__all__ = ["GABOR_X", "GABOR_Y", "gabor_truth", "load_gabor_data", "make_gabor_data"]
