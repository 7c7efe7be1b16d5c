"""How rough a 1D function is: the changes of slope of its samples (UDL figs. 9.7, 9.9).

For a piecewise-linear function (any 1D ReLU network) the slope is constant between
joints and jumps at each joint. Sampled on a grid x_0 < x_1 < ... < x_K, the slope
of segment i is s_i = (f_{i+1} - f_i) / (x_{i+1} - x_i) and the change of slope at
grid point i is Δs_i = s_i - s_{i-1}. When every joint sits on a grid point, Δs is
exactly the jump of the slope there (the weight ω_j of the unit with that joint, for
the fixed-joint model of fig. 8.4) and zero elsewhere.

- :func:`slope_changes`: Δs at the interior grid points.
- :func:`roughness`: Σ Δs², the total squared change of slope; zero for a straight
  line, large for a curve with sharp kinks.
"""

from __future__ import annotations

import numpy as np

from udl.validate import check_array

__all__ = ["slope_changes", "roughness"]


def slope_changes(x, f) -> np.ndarray:
    """The change of slope Δs_i = s_i - s_{i-1} at each interior grid point of a sampled function.

    Args:
        x: strictly increasing grid, shape (K+1,), K ≥ 2.
        f: the function's values on the grid, shape (K+1,).

    Shape:
        (K+1,), (K+1,) -> (K-1,): one value per interior grid point x_1..x_{K-1}.

    Example:
        >>> x = np.linspace(0, 1, 5)                     # a kink of +2 at x = 0.5
        >>> slope_changes(x, np.maximum(x - 0.5, 0) * 2).round(12).tolist()
        [0.0, 2.0, 0.0]
    """
    owner = "slope_changes"
    x = check_array(x, "x", owner, min_size=3, increasing=True)
    f = check_array(f, "f", owner, min_size=3)
    if f.shape != x.shape:
        raise ValueError(f"The 'f' parameter of {owner} must have one value per grid point ({x.shape[0]}). "
                         f"Got {f.shape[0]} instead.")
    s = np.diff(f) / np.diff(x)  # (K,) slope of each segment
    return np.diff(s)  # (K-1,) Δs_i = s_i - s_{i-1}


def roughness(x, f) -> float:
    """The total squared change of slope Σ_i Δs_i² of a sampled function (0 for a line).

    Args:
        x: strictly increasing grid, shape (K+1,).
        f: the function's values on the grid, shape (K+1,).

    Example:
        >>> x = np.linspace(0, 1, 5)
        >>> roughness(x, 3 * x + 1) < 1e-20, roughness(x, np.abs(x - 0.5))   # |x - ½|: slope -1 -> +1
        (True, 4.0)
    """
    return float(np.sum(slope_changes(x, f) ** 2))
