"""Joint, marginal and conditional densities on a 2D grid (UDL appendix C.1).

A density Pr(x, y) is stored as its values on a rectangular grid::

    joint[j, i] = Pr(x = x[i], y = y[j])      # rows index y, columns index x

so ``plt.imshow(joint, origin="lower", extent=(x[0], x[-1], y[0], y[-1]))`` draws it
with y upwards. Integrals use the trapezoid rule on the grid. For a smooth density
that is negligible at the edges of the box, the trapezoid rule converges faster
than any power of the grid spacing h (it is exact for the Fourier modes the grid
resolves): once the spacing is a fraction of the narrowest standard deviation the
quadrature error is around 1e-9 or less, and what remains is the mass outside the box.

- marginals by integrating out the other variable (§C.1.2): Pr(x) = ∫ Pr(x, y) dy;
- conditionals as normalised slices (§C.1.3): Pr(x | y) = Pr(x, y) / Pr(y);
- Bayes' rule (§C.1.4): Pr(x | y) = Pr(y | x) Pr(x) / ∫ Pr(y | x) Pr(x) dx;
- independence (§C.1.5): Pr(x, y) = Pr(x) Pr(y), measured by the largest gap and by
  the mutual information.

:class:`GaussianMixture2D` gives a density with closed-form marginals and
conditionals, to check the grid computations against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from udl.validate import check_array, check_float, is_real

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy >= 2 renamed trapz


# --------------------------------------------------------------------------- checks
def _check_axis(value, name: str, owner: str) -> np.ndarray:
    """A grid: at least 2 finite points, strictly increasing."""
    return check_array(value, name, owner, min_size=2, increasing=True)


def _check_density(value, shape: tuple[int, ...], name: str, owner: str) -> np.ndarray:
    if not isinstance(value, (np.ndarray, list, tuple)):
        raise TypeError(f"The {name!r} parameter of {owner} must be an array of density values. "
                        f"Got {value!r} instead.")
    p = np.asarray(value, dtype=np.float64)
    if p.shape != shape:
        raise ValueError(f"The {name!r} parameter of {owner} must have shape {shape}. Got {p.shape} instead.")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"The {name!r} parameter of {owner} must hold finite non-negative densities. "
                         f"Got values in [{np.nanmin(p):g}, {np.nanmax(p):g}] instead.")
    return p


def _check_grid(joint, x, y, owner: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = _check_axis(x, "x", owner), _check_axis(y, "y", owner)
    return _check_density(joint, (y.size, x.size), "joint", owner), x, y


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0 where den is 0 (a slice of zero probability has no conditional)."""
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=np.broadcast_to(den > 0, out.shape))
    return out


# --------------------------------------------------------------------------- integrals
def integrate(p, x) -> float:
    """∫ p(x) dx by the trapezoid rule on the grid ``x``.

    Shape: p (N,), x (N,) → a float.
    """
    x = _check_axis(x, "x", "integrate")
    p = _check_density(p, x.shape, "p", "integrate")
    return float(_trapezoid(p, x))


def integrate_2d(joint, x, y) -> float:
    """∫∫ Pr(x, y) dx dy by the trapezoid rule in each direction.

    Shape: joint (Ny, Nx), x (Nx,), y (Ny,) → a float.
    """
    joint, x, y = _check_grid(joint, x, y, "integrate_2d")
    return float(_trapezoid(_trapezoid(joint, x, axis=1), y))


# --------------------------------------------------------------------------- marginals and conditionals
def marginal_x(joint, x, y) -> np.ndarray:
    """Pr(x) = ∫ Pr(x, y) dy (UDL §C.1.2): integrate each column over y.

    Shape: joint (Ny, Nx) → (Nx,).

    Example:
        >>> x = y = np.linspace(-6, 6, 121)
        >>> joint = np.exp(-(x[None, :] ** 2 + y[:, None] ** 2) / 2) / (2 * np.pi)
        >>> round(integrate(marginal_x(joint, x, y), x), 6)
        1.0
    """
    joint, x, y = _check_grid(joint, x, y, "marginal_x")
    return _trapezoid(joint, y, axis=0)


def marginal_y(joint, x, y) -> np.ndarray:
    """Pr(y) = ∫ Pr(x, y) dx (UDL §C.1.2): integrate each row over x.

    Shape: joint (Ny, Nx) → (Ny,).
    """
    joint, x, y = _check_grid(joint, x, y, "marginal_y")
    return _trapezoid(joint, x, axis=1)


def conditional_x_given_y(joint, x, y) -> np.ndarray:
    """Pr(x | y) = Pr(x, y) / Pr(y) for every grid value of y (UDL §C.1.3).

    Row j is the slice of the joint at y = y[j] divided by its area Pr(y[j]), so that
    it integrates to one over x. A row of zero area stays zero.

    Shape: joint (Ny, Nx) → (Ny, Nx); row j is Pr(x | y = y[j]).
    """
    joint, x, y = _check_grid(joint, x, y, "conditional_x_given_y")
    return _safe_divide(joint, _trapezoid(joint, x, axis=1)[:, None])  # (Ny, Nx) / (Ny, 1)


def conditional_y_given_x(joint, x, y) -> np.ndarray:
    """Pr(y | x) = Pr(x, y) / Pr(x) for every grid value of x (UDL §C.1.3).

    Shape: joint (Ny, Nx) → (Ny, Nx); column i is Pr(y | x = x[i]).
    """
    joint, x, y = _check_grid(joint, x, y, "conditional_y_given_x")
    return _safe_divide(joint, _trapezoid(joint, y, axis=0)[None, :])  # (Ny, Nx) / (1, Nx)


def slice_x_given_y(joint, x, y, y0: float) -> tuple[np.ndarray, float]:
    """The conditional Pr(x | y = y0) at any y0 in the grid's range (UDL fig. C.2).

    The joint is interpolated linearly between the two grid rows around y0 (exact
    when y0 is a grid value), giving the slice Pr(x, y = y0); its area is Pr(y0),
    and the slice divided by its area is the conditional.

    Returns:
        ``(conditional, area)``: Pr(x | y = y0) of shape (Nx,), and Pr(y = y0).
    """
    owner = "slice_x_given_y"
    joint, x, y = _check_grid(joint, x, y, owner)
    y0 = check_float(y0, "y0", owner, low=float(y[0]), high=float(y[-1]))
    j = int(np.clip(np.searchsorted(y, y0, side="right") - 1, 0, y.size - 2))
    w = (y0 - y[j]) / (y[j + 1] - y[j])
    joint_slice = (1 - w) * joint[j] + w * joint[j + 1]  # Pr(x, y = y0), (Nx,)
    area = float(_trapezoid(joint_slice, x))
    return _safe_divide(joint_slice, np.asarray(area)), area


def bayes_rule(likelihood, prior, x) -> np.ndarray:
    """Posterior Pr(x | y) from the likelihood Pr(y | x) and the prior Pr(x) (UDL §C.1.4).

    ``Pr(x | y) = Pr(y | x) Pr(x) / Pr(y)`` with the evidence
    ``Pr(y) = ∫ Pr(y | x) Pr(x) dx`` computed by the trapezoid rule.

    Args:
        likelihood: Pr(y | x) on the grid, (Ny, Nx): column i is the distribution
            of y given x = x[i] (as :func:`conditional_y_given_x` returns it).
        prior: Pr(x), (Nx,).
        x: the grid of x, (Nx,).

    Shape: (Ny, Nx), (Nx,), (Nx,) → (Ny, Nx); row j is Pr(x | y = y[j]).
    """
    owner = "bayes_rule"
    x = _check_axis(x, "x", owner)
    prior = _check_density(prior, x.shape, "prior", owner)
    if not isinstance(likelihood, (np.ndarray, list, tuple)):
        raise TypeError(f"The 'likelihood' parameter of {owner} must be an array. Got {likelihood!r} instead.")
    likelihood = np.asarray(likelihood, dtype=np.float64)
    if likelihood.ndim != 2:
        raise ValueError(f"The 'likelihood' parameter of {owner} must have shape (Ny, {x.size}). "
                         f"Got {likelihood.shape} instead.")
    likelihood = _check_density(likelihood, (likelihood.shape[0], x.size), "likelihood", owner)
    unnormalised = likelihood * prior[None, :]  # Pr(y | x) Pr(x) = Pr(x, y), (Ny, Nx)
    evidence = _trapezoid(unnormalised, x, axis=1)  # Pr(y), (Ny,)
    return _safe_divide(unnormalised, evidence[:, None])


# --------------------------------------------------------------------------- independence
def independent_joint(px, py) -> np.ndarray:
    """The joint of independent variables, Pr(x, y) = Pr(x) Pr(y) (UDL §C.1.5, fig. C.3).

    Shape: px (Nx,), py (Ny,) → (Ny, Nx).
    """
    owner = "independent_joint"
    for name, value in (("px", px), ("py", py)):
        if not isinstance(value, (np.ndarray, list, tuple)) or np.ndim(value) != 1:
            raise TypeError(f"The {name!r} parameter of {owner} must be a 1D array. Got {value!r} instead.")
        if np.size(value) == 0:
            raise ValueError(f"The {name!r} parameter of {owner} must not be empty. Got {value!r} instead.")
    px = _check_density(px, np.shape(px), "px", owner)
    py = _check_density(py, np.shape(py), "py", owner)
    return py[:, None] * px[None, :]  # (Ny, 1) * (1, Nx) -> (Ny, Nx)


def _normalised(joint, x, y, owner: str) -> np.ndarray:
    """The joint divided by its grid integral, so that it and its marginals integrate to exactly 1."""
    total = float(_trapezoid(_trapezoid(joint, x, axis=1), y))
    if total <= 0:
        raise ValueError(f"The 'joint' parameter of {owner} must have positive mass on the grid. "
                         f"Got {total!r} instead.")
    return joint / total


def independence_gap(joint, x, y) -> float:
    """max |Pr(x, y) - Pr(x) Pr(y)| over the grid: zero exactly when x and y are independent.

    The joint is first normalised on the grid (divided by its trapezoid integral), so
    that mass lost outside the box does not count as dependence.
    """
    joint, x, y = _check_grid(joint, x, y, "independence_gap")
    joint = _normalised(joint, x, y, "independence_gap")
    product = np.outer(marginal_y(joint, x, y), marginal_x(joint, x, y))  # (Ny, Nx)
    return float(np.abs(joint - product).max())


def mutual_information(joint, x, y) -> float:
    """Mutual information ∫∫ Pr(x, y) log[Pr(x, y) / (Pr(x) Pr(y))] dx dy, in nats.

    Zero for independent variables, positive otherwise; for a bivariate normal with
    correlation ρ it is -½ log(1 - ρ²). The joint is first normalised on the grid.
    """
    joint, x, y = _check_grid(joint, x, y, "mutual_information")
    joint = _normalised(joint, x, y, "mutual_information")
    product = np.outer(marginal_y(joint, x, y), marginal_x(joint, x, y))  # (Ny, Nx)
    ratio = _safe_divide(joint, product)
    integrand = np.where(joint > 0, joint * np.log(np.where(ratio > 0, ratio, 1.0)), 0.0)
    return float(_trapezoid(_trapezoid(integrand, x, axis=1), y))


# --------------------------------------------------------------------------- a density with closed forms
def normal_pdf(x, mean: float = 0.0, var: float = 1.0) -> np.ndarray:
    """The univariate normal density N(x; μ, σ²) (UDL eq. 5.7).

    Shape: any; the output has the shape of ``x``.
    """
    mean = check_float(mean, "mean", "normal_pdf")
    var = check_float(var, "var", "normal_pdf", low=0, low_open=True)
    if not (is_real(x) or isinstance(x, (np.ndarray, list, tuple))):
        raise TypeError(f"The 'x' parameter of normal_pdf must be a float or an array. Got {x!r} instead.")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"The 'x' parameter of normal_pdf must hold finite numbers. Got {x!r} instead.")
    return np.exp(-(x - mean) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)


@dataclass(frozen=True)
class GaussianMixture2D:
    """A mixture of bivariate normals, with closed-form marginals and conditionals.

    ``Pr(x, y) = Σ_k w_k N([x, y]; μ_k, Σ_k)``. Each marginal is the mixture of the
    components' marginals; each conditional Pr(x | y = y0) is a mixture of the
    components' normal conditionals, reweighted by how well each explains y0.

    Args:
        weights: mixture weights w_k, positive, summing to 1.
        means: μ_k = (μ_x, μ_y) per component.
        covs: Σ_k = ((σ_xx, σ_xy), (σ_xy, σ_yy)) per component, symmetric positive definite.

    Example:
        >>> g = GaussianMixture2D(weights=(1.0,), means=((0.0, 0.0),), covs=(((1.0, 0.5), (0.5, 1.0)),))
        >>> round(float(g.pdf(0.0, 0.0)), 4)
        0.1838
    """

    weights: tuple[float, ...]
    means: tuple[tuple[float, float], ...]
    covs: tuple[tuple[tuple[float, float], tuple[float, float]], ...]

    def __post_init__(self):
        owner = "GaussianMixture2D"
        for name in ("weights", "means", "covs"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise TypeError(f"The {name!r} parameter of {owner} must be a tuple. "
                                f"Got {getattr(self, name)!r} instead.")
        try:
            w = np.asarray(self.weights, dtype=np.float64)
            mu = np.asarray(self.means, dtype=np.float64)
            cov = np.asarray(self.covs, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"The parameters of {owner} must be numbers. Got {self.weights!r}, {self.means!r}, "
                            f"{self.covs!r} instead.") from None
        k = w.size
        if w.ndim != 1 or k == 0 or np.any(~np.isfinite(w)) or np.any(w <= 0) or abs(w.sum() - 1) > 1e-9:
            raise ValueError(f"The 'weights' parameter of {owner} must be positive and sum to 1. "
                             f"Got {self.weights!r} instead.")
        if mu.shape != (k, 2) or not np.all(np.isfinite(mu)):
            raise ValueError(f"The 'means' parameter of {owner} must hold {k} finite pairs. "
                             f"Got {self.means!r} instead.")
        if cov.shape != (k, 2, 2) or not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.transpose(0, 2, 1)) \
                or np.any(cov[:, 0, 0] <= 0) or np.any(np.linalg.det(cov) <= 0):
            raise ValueError(f"The 'covs' parameter of {owner} must hold {k} symmetric positive-definite 2x2 "
                             f"matrices. Got {self.covs!r} instead.")
        object.__setattr__(self, "_w", w)
        object.__setattr__(self, "_mu", mu)
        object.__setattr__(self, "_cov", cov)

    def pdf(self, x, y) -> np.ndarray:
        """Pr(x, y), broadcasting ``x`` against ``y``.

        For the grid convention of this module use ``pdf(x[None, :], y[:, None])`` → (Ny, Nx).
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        total = np.zeros(np.broadcast_shapes(x.shape, y.shape))
        for w, (mx, my), cov in zip(self._w, self._mu, self._cov):
            inv, det = np.linalg.inv(cov), np.linalg.det(cov)
            dx, dy = x - mx, y - my
            q = inv[0, 0] * dx ** 2 + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy ** 2  # Mahalanobis²
            total = total + w * np.exp(-q / 2) / (2 * np.pi * np.sqrt(det))
        return total

    def grid(self, x, y) -> np.ndarray:
        """Pr(x, y) on the grid of this module: (Nx,), (Ny,) → (Ny, Nx)."""
        x, y = _check_axis(x, "x", "GaussianMixture2D.grid"), _check_axis(y, "y", "GaussianMixture2D.grid")
        return self.pdf(x[None, :], y[:, None])

    def marginal_x(self, x) -> np.ndarray:
        """Pr(x) = Σ_k w_k N(x; μ_kx, σ_kxx), in closed form."""
        return sum(w * normal_pdf(x, m[0], c[0, 0]) for w, m, c in zip(self._w, self._mu, self._cov))

    def marginal_y(self, y) -> np.ndarray:
        """Pr(y) = Σ_k w_k N(y; μ_ky, σ_kyy), in closed form."""
        return sum(w * normal_pdf(y, m[1], c[1, 1]) for w, m, c in zip(self._w, self._mu, self._cov))

    def conditional_x_given_y(self, x, y0: float) -> np.ndarray:
        """Pr(x | y = y0) in closed form: a mixture of the components' normal conditionals.

        Component k conditions to N(μ_kx + σ_kxy/σ_kyy (y0 - μ_ky), σ_kxx - σ_kxy²/σ_kyy)
        with weight ∝ w_k N(y0; μ_ky, σ_kyy).
        """
        y0 = check_float(y0, "y0", "GaussianMixture2D.conditional_x_given_y")
        resp = np.array([w * normal_pdf(y0, m[1], c[1, 1]) for w, m, c in zip(self._w, self._mu, self._cov)])
        resp = resp / resp.sum()
        return sum(r * normal_pdf(x, m[0] + c[0, 1] / c[1, 1] * (y0 - m[1]), c[0, 0] - c[0, 1] ** 2 / c[1, 1])
                   for r, m, c in zip(resp, self._mu, self._cov))


__all__ = ["integrate", "integrate_2d", "marginal_x", "marginal_y", "conditional_x_given_y",
           "conditional_y_given_x", "slice_x_given_y", "bayes_rule", "independent_joint", "independence_gap",
           "mutual_information", "normal_pdf", "GaussianMixture2D"]
