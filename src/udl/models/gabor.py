"""The Gabor model and its least-squares loss surface (UDL §6.1, eqs. 6.8-6.9, figs. 6.1-6.8).

The model maps a scalar x to a scalar y with two parameters φ = [φ0, φ1]::

    z = φ0 + 0.06·φ1·x
    f[x, φ] = sin[z] · exp[-z²/32]                       (UDL eq. 6.8)

a sinusoid under a Gaussian envelope centred where z = 0, i.e. at x = -φ0 / (0.06·φ1):
raising φ0 moves it left, raising φ1 squeezes it. Its least-squares loss is the SUM of
squared errors (not the mean)::

    L[φ] = Σ_i (f[x_i, φ] - y_i)²                        (UDL eq. 6.9)

which on the book's data (:func:`udl.data.gabor.load_gabor_data`) is non-convex, with
a global minimum of about 0.64 near φ = (0, 16) and several local minima.

Contents, small to large:

- :func:`gabor`, :func:`gabor_loss`, :func:`gabor_loss_grad`: the model, the loss and
  its gradient (derived by hand), for any batch of parameter vectors.
- :class:`GaborModel`: the same model as an ``nn.Module`` with parameters ``phi0``,
  ``phi1``, for ``torch.optim`` optimisers and :func:`udl.train.fit`;
  :func:`optimize_path` records the path of φ that an optimiser takes.
- :func:`loss_surface`: L over a grid of (φ0, φ1), vectorised.
- :func:`valleys`, :func:`local_minima`, :func:`basins`, :func:`valley_of`: where the
  valleys are and which valley a point belongs to (used to say where a run ends).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from udl.train.batches import epoch_order
from udl.validate import check_float, check_int, check_tensor

SCALE = 0.06  # the book's factor on φ1·x (eq. 6.8)
WIDTH = 32.0  # the envelope's denominator exp(-z²/32) (eq. 6.8)


# --------------------------------------------------------------------------- argument checks
def _check_x(x, owner: str, name: str = "x") -> torch.Tensor:
    return check_tensor(x, name, owner, shape=("N",), dtype="float")


def _check_phi(phi, owner: str) -> torch.Tensor:
    return check_tensor(phi, "phi", owner, shape=(..., 2), dtype="float")  # (φ0, φ1) in the last axis


def _check_xy(x, y, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _check_x(x, owner), _check_x(y, owner, "y")
    if y.shape != x.shape:
        raise ValueError(f"The 'y' parameter of {owner} must have one target per input, shape "
                         f"{tuple(x.shape)}. Got shape {tuple(y.shape)} instead.")
    return x, y


# --------------------------------------------------------------------------- model, loss, gradient
def gabor(x: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """The Gabor model f[x, φ] = sin[z]·exp[-z²/32], z = φ0 + 0.06·φ1·x (UDL eq. 6.8).

    Broadcasts over a batch of parameter vectors: every φ is applied to every x.

    Args:
        x: inputs, shape (N,).
        phi: parameters (φ0, φ1), shape (..., 2).

    Shape:
        x (N,), phi (..., 2) → (..., N).

    Example:
        >>> gabor(torch.tensor([0.0, 1.0]), torch.tensor([[0.0, 10.0], [math.pi / 2, 10.0]])).shape
        torch.Size([2, 2])
        >>> round(float(gabor(torch.tensor([0.0]), torch.tensor([math.pi / 2, 10.0]))), 4)  # exp(-(π/2)²/32)
        0.9258
    """
    owner = "gabor"
    x, phi = _check_x(x, owner), _check_phi(phi, owner)
    z = phi[..., 0:1] + SCALE * phi[..., 1:2] * x  # (..., 1) + (..., 1)·(N,) -> (..., N)
    return torch.sin(z) * torch.exp(-z**2 / WIDTH)


def gabor_loss(phi: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The least-squares loss L[φ] = Σ_i (f[x_i, φ] - y_i)² (UDL eq. 6.9): a sum, not a mean.

    Args:
        phi: parameters (φ0, φ1), shape (..., 2).
        x: inputs, shape (N,).
        y: targets, shape (N,).

    Shape:
        phi (..., 2) → (...,).

    Example:
        >>> x, y = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])
        >>> float(gabor_loss(torch.tensor([0.0, 10.0]), x, y)) == float(gabor(x[1:], torch.tensor([0.0, 10.0]))**2)
        True
    """
    x, y = _check_xy(x, y, "gabor_loss")
    return ((gabor(x, _check_phi(phi, "gabor_loss")) - y) ** 2).sum(-1)  # (..., N) -> (...,)


def gabor_loss_grad(phi: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The gradient ∂L/∂φ of the least-squares loss (UDL eq. 6.9), derived by hand (chain rule).

    With z_i = φ0 + 0.06·φ1·x_i and f_i = sin[z_i]·exp[-z_i²/32]::

        ∂f_i/∂z_i = (cos[z_i] - z_i/16 · sin[z_i]) · exp[-z_i²/32]
        ∂L/∂φ0    = Σ_i 2 (f_i - y_i) ∂f_i/∂z_i
        ∂L/∂φ1    = Σ_i 2 (f_i - y_i) ∂f_i/∂z_i · 0.06·x_i

    Args:
        phi: parameters (φ0, φ1), shape (..., 2).
        x: inputs, shape (N,).
        y: targets, shape (N,).

    Shape:
        phi (..., 2) → (..., 2).

    Example:
        >>> x, y = torch.linspace(-5, 5, 7, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)
        >>> g = gabor_loss_grad(torch.tensor([0.0, 10.0], dtype=torch.float64), x, y)
        >>> abs(float(g[0])) < 1e-12  # f is odd about x = 0 and the x are symmetric: ∂L/∂φ0 = 0
        True
    """
    owner = "gabor_loss_grad"
    x, y = _check_xy(x, y, owner)
    phi = _check_phi(phi, owner)
    z = phi[..., 0:1] + SCALE * phi[..., 1:2] * x  # (..., N)
    envelope = torch.exp(-z**2 / WIDTH)
    residual = torch.sin(z) * envelope - y  # f_i - y_i, (..., N)
    df_dz = (torch.cos(z) - 2 * z / WIDTH * torch.sin(z)) * envelope  # (..., N)
    dl_dphi0 = (2 * residual * df_dz).sum(-1)
    dl_dphi1 = (2 * residual * df_dz * SCALE * x).sum(-1)
    return torch.stack([dl_dphi0, dl_dphi1], dim=-1)  # (..., 2)


class GaborModel(nn.Module):
    """The Gabor model (UDL eq. 6.8) as an ``nn.Module`` with parameters ``phi0`` and ``phi1``.

    ``forward(x)`` returns f[x, φ] for every input; :meth:`loss` the book's sum of
    squared errors (eq. 6.9). The two parameters are scalar ``nn.Parameter`` s so any
    ``torch.optim`` optimiser (or :mod:`udl.optim`) can fit them; :attr:`phi` returns
    them stacked as one vector (φ0, φ1).

    Args:
        phi0: initial offset φ0, default 0.0.
        phi1: initial frequency φ1, default 10.0.
        dtype: a floating-point dtype for the parameters, default ``torch.float64``.

    Shape:
        x: (N,) → (N,).

    Example:
        >>> model = GaborModel(-1.5, 8.5)
        >>> model(torch.zeros(3, dtype=torch.float64)).shape
        torch.Size([3])
    """

    def __init__(self, phi0: float = 0.0, phi1: float = 10.0, *, dtype: torch.dtype = torch.float64):
        super().__init__()
        owner = "GaborModel"
        phi0 = check_float(phi0, "phi0", owner)
        phi1 = check_float(phi1, "phi1", owner)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"The 'dtype' parameter of {owner} must be a floating-point torch.dtype. "
                            f"Got {dtype!r} instead.")
        self.phi0 = nn.Parameter(torch.tensor(phi0, dtype=dtype))
        self.phi1 = nn.Parameter(torch.tensor(phi1, dtype=dtype))

    @property
    def phi(self) -> torch.Tensor:
        """The parameter vector (φ0, φ1), shape (2,), detached."""
        return torch.stack([self.phi0, self.phi1]).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f[x, φ] for every input; shape (N,) → (N,)."""
        return gabor(_check_x(x, "GaborModel.forward"), torch.stack([self.phi0, self.phi1]))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The sum of squared errors Σ_i (f[x_i, φ] - y_i)² (UDL eq. 6.9), a scalar."""
        x, y = _check_xy(x, y, "GaborModel.loss")
        return ((self(x) - y) ** 2).sum()

    def extra_repr(self) -> str:
        return f"phi0={self.phi0.item():.4g}, phi1={self.phi1.item():.4g}"


# --------------------------------------------------------------------------- optimisation paths
def optimize_path(make_optimizer, start, x: torch.Tensor, y: torch.Tensor, *, steps: int,
                  batch_size: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit a :class:`GaborModel` from ``start`` and record the path of φ, step by step.

    Each step draws a batch, builds a closure that returns the batch's sum of squared
    errors (eq. 6.9 on the batch) after ``backward()``, and calls
    ``optimizer.step(closure)`` -- so optimisers that need a closure (line search,
    Nesterov momentum) work as well as ``torch.optim.SGD``. The batches follow the
    order of :func:`udl.train.fit`: epoch e visits the points in the permutation
    :func:`udl.train.epoch_order` (N, e, seed), cut into ⌊N/B⌋ batches of B. Two runs
    with the same ``seed`` and ``batch_size`` therefore see the same batches.

    Args:
        make_optimizer: a function ``params -> torch.optim.Optimizer``.
        start: the initial (φ0, φ1), a pair of floats.
        x: inputs, shape (N,).
        y: targets, shape (N,).
        steps: number of optimiser steps.
        batch_size: points per batch B ≤ N; ``None`` (default) uses all N (full batch).
        seed: seeds the batch order, default 0.

    Returns:
        ``(path, losses)``: φ before each step and after the last, shape (steps + 1, 2),
        and the loss on ALL the data at those points, shape (steps + 1,).

    Example:
        >>> from udl.data.gabor import load_gabor_data
        >>> x, y = load_gabor_data()
        >>> path, losses = optimize_path(lambda p: torch.optim.SGD(p, lr=0.01), (-1.5, 8.5), x, y, steps=20)
        >>> path.shape, bool(losses[-1] < losses[0])
        (torch.Size([21, 2]), True)
    """
    owner = "optimize_path"
    if not callable(make_optimizer):
        raise TypeError(f"The 'make_optimizer' parameter of {owner} must be a function params -> Optimizer. "
                        f"Got {make_optimizer!r} instead.")
    if not isinstance(start, (tuple, list)) or len(start) != 2:
        raise ValueError(f"The 'start' parameter of {owner} must be a pair (φ0, φ1). Got {start!r} instead.")
    x, y = _check_xy(x, y, owner)
    steps = check_int(steps, "steps", owner, minimum=0)
    n = len(x)
    if batch_size is not None:
        check_int(batch_size, "batch_size", owner)
        if batch_size > n:
            raise ValueError(f"The 'batch_size' parameter of {owner} must be at most the {n} data points. "
                             f"Got {batch_size} instead.")
    seed = check_int(seed, "seed", owner, minimum=0)
    model = GaborModel(*start, dtype=x.dtype)
    optimizer = make_optimizer(model.parameters())
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"The 'make_optimizer' parameter of {owner} must return a torch.optim.Optimizer. "
                        f"Got {type(optimizer).__name__} instead.")
    per_epoch = 1 if batch_size is None else n // batch_size
    path, order = [model.phi], None
    for step in range(steps):
        if batch_size is None:
            x_b, y_b = x, y
        else:
            epoch, b = divmod(step, per_epoch)
            if b == 0:
                order = epoch_order(n, epoch, seed=seed)  # this epoch's permutation, (N,)
            rows = order[b * batch_size:(b + 1) * batch_size]  # (B,)
            x_b, y_b = x[rows], y[rows]

        def closure():
            optimizer.zero_grad()
            loss = model.loss(x_b, y_b)
            loss.backward()
            return loss

        optimizer.step(closure)
        path.append(model.phi)
    path = torch.stack(path)  # (steps + 1, 2)
    return path, gabor_loss(path, x, y)


def path_turning(path: torch.Tensor) -> tuple[float, float]:
    """How much a path of parameter vectors turns: total |turning angle| and mean cosine.

    With steps d_t = φ_{t+1} - φ_t, the turning angle at t is the angle between d_t and
    d_{t+1}; a straight path turns 0°, a path that reverses at every step turns 180°
    per step. Zero-length steps are skipped.

    Args:
        path: points, shape (T, D) with T ≥ 3.

    Returns:
        ``(total_degrees, mean_cosine)``: the sum over t of the angle (degrees) between
        successive steps, and the mean of their cosines (1 for a straight path).

    Example:
        >>> path_turning(torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0]]))
        (180.0, 0.0)
    """
    owner = "path_turning"
    path = check_tensor(path, "path", owner, dtype="float")
    if path.dim() != 2 or path.shape[0] < 3:
        raise ValueError(f"The 'path' parameter of {owner} must have shape (T, D) with T >= 3. "
                         f"Got shape {tuple(path.shape)} instead.")
    steps = torch.diff(path.double(), dim=0)  # (T-1, D)
    steps = steps[steps.norm(dim=1) > 0]
    if len(steps) < 2:
        return 0.0, 1.0
    unit = steps / steps.norm(dim=1, keepdim=True)
    cosine = (unit[1:] * unit[:-1]).sum(1).clamp(-1.0, 1.0)  # (T-2,)
    return float(torch.rad2deg(torch.arccos(cosine)).sum()), float(cosine.mean())


# --------------------------------------------------------------------------- the loss surface
def loss_surface(phi0: torch.Tensor, phi1: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L[φ] (UDL eq. 6.9) on the grid φ0 × φ1, vectorised (no loop over the grid).

    Entry [i, j] is the loss at φ = (phi0[i], phi1[j]) (``indexing="ij"``: φ0 varies
    along the first axis; transpose for ``plt.contour(phi0, phi1, L.T)``).

    Args:
        phi0: grid values of φ0, shape (G0,).
        phi1: grid values of φ1, shape (G1,).
        x: inputs, shape (N,).
        y: targets, shape (N,).

    Shape:
        (G0,), (G1,) → (G0, G1).

    Example:
        >>> from udl.data.gabor import load_gabor_data
        >>> x, y = load_gabor_data()
        >>> L = loss_surface(torch.linspace(-10, 10, 201, dtype=torch.float64),
        ...                  torch.linspace(2.5, 22.5, 201, dtype=torch.float64), x, y)
        >>> L.shape, round(float(L.min()), 2)
        (torch.Size([201, 201]), 0.65)
    """
    owner = "loss_surface"
    phi0, phi1 = _check_x(phi0, owner, "phi0"), _check_x(phi1, owner, "phi1")
    x, y = _check_xy(x, y, owner)
    z = phi0[:, None, None] + SCALE * phi1[None, :, None] * x  # (G0, 1, 1) + (1, G1, 1)·(N,) -> (G0, G1, N)
    return ((torch.sin(z) * torch.exp(-z**2 / WIDTH) - y) ** 2).sum(-1)  # (G0, G1)


def local_minima(phi0: torch.Tensor, phi1: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                 grad_tol: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """The local minima of L[φ] inside the grid's rectangle, sorted by loss (global first).

    The sinks of the gridded surface (:func:`basins`) are the candidates; each is refined
    by Newton's method (see :func:`valleys`). Use a grid fine enough to separate the
    valleys (spacing well below their width).

    Args:
        phi0: grid values of φ0, shape (G0,), ascending.
        phi1: grid values of φ1, shape (G1,), ascending.
        x: inputs, shape (N,).
        y: targets, shape (N,).
        grad_tol: the largest gradient norm accepted at a minimum, default 1e-6.

    Returns:
        ``(minima, losses)``: shapes (K, 2) and (K,), in the dtype of ``phi0``.

    Example:
        >>> from udl.data.gabor import load_gabor_data
        >>> x, y = load_gabor_data()
        >>> phi, L = local_minima(torch.linspace(-10, 10, 201, dtype=torch.float64),
        ...                       torch.linspace(2.5, 22.5, 201, dtype=torch.float64), x, y)
        >>> round(float(L[0]), 3)
        0.646
    """
    _, minima, losses = valleys(phi0, phi1, x, y, grad_tol=grad_tol, owner="local_minima")
    return minima, losses


def valleys(phi0: torch.Tensor, phi1: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
            grad_tol: float = 1e-6, owner: str = "valleys") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which valley of L[φ] each grid point lies in, and the minimum at the bottom of each.

    Two stages, both honest about what they measure:

    1. :func:`basins` on the gridded surface: each cell follows steepest descent on the
       grid to a *sink* (a grid point no higher than its eight neighbours).
    2. Each sink inside the rectangle is refined by Newton's method on the exact
       gradient (:func:`gabor_loss_grad`) and Hessian (derived by hand), with step halving so
       that the loss never rises. A refined point is a minimum if it stays in the
       rectangle, its gradient norm is below ``grad_tol`` and its Hessian is positive
       definite. Sinks that refine to the same minimum (a long narrow valley can hold
       several grid sinks) are merged into one valley.

    Cells whose sink lies on the border of the rectangle, or does not refine to a
    minimum inside it, get the label -1 (their valley leaves the rectangle).

    Args:
        phi0: grid values of φ0, shape (G0,), ascending and evenly spaced.
        phi1: grid values of φ1, shape (G1,), ascending and evenly spaced.
        x: inputs, shape (N,).
        y: targets, shape (N,).
        grad_tol: the largest gradient norm accepted at a minimum, default 1e-6.

    Returns:
        ``(labels, minima, losses)``: labels (G0, G1) int64 (index into ``minima``, or -1);
        minima (K, 2) and losses (K,), sorted by loss, so label 0 is the global minimum's
        valley.

    Example:
        >>> from udl.data.gabor import load_gabor_data
        >>> x, y = load_gabor_data()
        >>> phi0 = torch.linspace(-10, 10, 201, dtype=torch.float64)
        >>> phi1 = torch.linspace(2.5, 22.5, 201, dtype=torch.float64)
        >>> labels, minima, losses = valleys(phi0, phi1, x, y)
        >>> int(valley_of(torch.tensor([-1.5, 8.5], dtype=torch.float64), phi0, phi1, labels))
        0
    """
    phi0, phi1 = _check_x(phi0, owner, "phi0"), _check_x(phi1, owner, "phi1")
    if len(phi0) < 3 or len(phi1) < 3:
        raise ValueError(f"The 'phi0' parameter of {owner} must hold at least 3 grid values (and 'phi1' too). "
                         f"Got {len(phi0)} and {len(phi1)} instead.")
    x, y = _check_xy(x, y, owner)
    grad_tol = check_float(grad_tol, "grad_tol", owner, low=0, low_open=True)
    surface = loss_surface(phi0, phi1, x, y)
    grid_labels, sinks = basins(surface)
    found: list[torch.Tensor] = []
    sink_to_minimum = torch.full((len(sinks),), -1, dtype=torch.long)
    for k, (i, j) in enumerate(sinks.tolist()):
        if i in (0, len(phi0) - 1) or j in (0, len(phi1) - 1):
            continue  # the valley continues outside the rectangle
        phi = _newton(torch.stack([phi0[i], phi1[j]]), x, y)
        inside = bool(phi0[0] <= phi[0] <= phi0[-1]) and bool(phi1[0] <= phi[1] <= phi1[-1])
        if not inside or float(gabor_loss_grad(phi, x, y).norm()) > grad_tol:
            continue
        if torch.linalg.eigvalsh(_hessian(phi, x, y)).min() <= 0:
            continue
        same = [m for m, other in enumerate(found) if float((phi - other).norm()) < 1e-5]
        if not same:
            found.append(phi)
        sink_to_minimum[k] = same[0] if same else len(found) - 1
    if not found:
        return torch.full_like(grid_labels, -1), phi0.new_zeros(0, 2), phi0.new_zeros(0)
    minima = torch.stack(found)
    losses = gabor_loss(minima, x, y)
    order = torch.argsort(losses)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    remap = torch.where(sink_to_minimum >= 0, rank[sink_to_minimum.clamp(min=0)], -1)
    return remap[grid_labels], minima[order], losses[order]


def _hessian(phi: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂²L/∂φ² at one φ (2,), by hand: H = Σ_i 2 (f_i'² + (f_i - y_i) f_i'') ∂z_i/∂φ ∂z_i/∂φᵀ."""
    z = phi[0] + SCALE * phi[1] * x  # (N,)
    envelope = torch.exp(-z**2 / WIDTH)
    sin, cos = torch.sin(z), torch.cos(z)
    df = (cos - 2 * z / WIDTH * sin) * envelope  # ∂f/∂z
    d2f = (-sin * (1 + 2 / WIDTH - (2 * z / WIDTH) ** 2) - 4 * z / WIDTH * cos) * envelope  # ∂²f/∂z²
    weight = 2 * (df**2 + (sin * envelope - y) * d2f)  # (N,)
    dz = torch.stack([torch.ones_like(x), SCALE * x])  # ∂z/∂φ, (2, N)
    return (dz * weight) @ dz.T  # (2, N) @ (N, 2) -> (2, 2)


def _newton(phi: torch.Tensor, x: torch.Tensor, y: torch.Tensor, iters: int = 100) -> torch.Tensor:
    """Refine a point near a minimum: Newton steps, a short gradient step where H is not PD."""
    loss = gabor_loss(phi, x, y)
    for _ in range(iters):
        g = gabor_loss_grad(phi, x, y)
        if float(g.norm()) < 1e-11:
            break
        h = _hessian(phi, x, y)
        step = torch.linalg.solve(h, g) if torch.linalg.eigvalsh(h).min() > 0 else 1e-3 * g
        # halve the step until the loss does not rise (keeps the refinement in its valley)
        for _ in range(30):
            trial = gabor_loss(phi - step, x, y)
            if trial <= loss:
                break
            step = step / 2
        else:
            break  # no descent left at working precision
        phi, loss = phi - step, trial
    return phi


def basins(surface: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The valleys of a gridded surface: where steepest descent on the grid ends, per cell.

    Every cell points to the lowest of itself and its eight neighbours; following the
    pointers (by pointer doubling, vectorised) leads each cell to a grid minimum, its
    *sink*. Cells with the same sink form one basin of attraction of this discrete
    steepest-descent flow, a gridded picture of the valleys that gradient descent with
    small steps would follow (larger steps can jump between basins).

    Args:
        surface: values on a grid, shape (G0, G1).

    Returns:
        ``(labels, sinks)``: labels (G0, G1) int64, the index of each cell's sink in
        ``sinks``; sinks (K, 2) int64, the grid indices (i, j) of the sinks, sorted by
        their value (lowest first).

    Example:
        >>> labels, sinks = basins(torch.tensor([[0.0, 1.0, 2.0, 1.0, 0.5]]))
        >>> labels.tolist(), sinks.tolist()
        ([[0, 0, 0, 1, 1]], [[0, 0], [0, 4]])
    """
    owner = "basins"
    surface = check_tensor(surface, "surface", owner, dtype="float")
    if surface.dim() != 2:
        raise ValueError(f"The 'surface' parameter of {owner} must be two-dimensional, shape (G0, G1). "
                         f"Got shape {tuple(surface.shape)} instead.")
    g0, g1 = surface.shape
    padded = torch.nn.functional.pad(surface[None, None], (1, 1, 1, 1), value=math.inf)[0, 0]  # (G0+2, G1+2)
    shifts = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]
    windows = torch.stack([padded[1 + di:g0 + 1 + di, 1 + dj:g1 + 1 + dj] for di, dj in shifts])  # (9, G0, G1)
    best = windows.argmin(0)  # (G0, G1); shift (0, 0) wins ties only if listed first among equals
    offsets = torch.tensor(shifts)  # (9, 2)
    ii, jj = torch.meshgrid(torch.arange(g0), torch.arange(g1), indexing="ij")
    target = (ii + offsets[best, 0]) * g1 + (jj + offsets[best, 1])  # flat index of the next cell, (G0, G1)
    # a cell whose minimum ties with itself stays put (plateaus end the descent)
    stay = windows.min(0).values >= surface
    pointer = torch.where(stay, ii * g1 + jj, target).flatten()  # (G0·G1,)
    while True:  # pointer doubling: after k rounds each cell has jumped 2^k steps
        jumped = pointer[pointer]
        if torch.equal(jumped, pointer):
            break
        pointer = jumped
    is_sink = pointer == torch.arange(g0 * g1)
    sink_flat = torch.nonzero(is_sink)[:, 0]  # (K,)
    labels = (torch.cumsum(is_sink, 0) - 1)[pointer]  # index of each cell's sink in sink_flat
    order = torch.argsort(surface.flatten()[sink_flat])
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    sinks = torch.stack([sink_flat[order] // g1, sink_flat[order] % g1], dim=1)  # (K, 2)
    return rank[labels].view(g0, g1), sinks


def valley_of(phi: torch.Tensor, phi0: torch.Tensor, phi1: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The label (from :func:`valleys` or :func:`basins`) of the grid cell nearest to each point φ.

    Args:
        phi: points (φ0, φ1), shape (..., 2).
        phi0: grid values of φ0, shape (G0,), ascending and evenly spaced.
        phi1: grid values of φ1, shape (G1,), ascending and evenly spaced.
        labels: basin labels, shape (G0, G1).

    Shape:
        phi (..., 2) → (...,) int64.
    """
    owner = "valley_of"
    phi = _check_phi(phi, owner)
    phi0, phi1 = _check_x(phi0, owner, "phi0"), _check_x(phi1, owner, "phi1")
    if labels.shape != (len(phi0), len(phi1)):
        raise ValueError(f"The 'labels' parameter of {owner} must have shape ({len(phi0)}, {len(phi1)}). "
                         f"Got shape {tuple(labels.shape)} instead.")

    def index(values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        step = (grid[-1] - grid[0]) / (len(grid) - 1)
        return ((values - grid[0]) / step).round().long().clamp(0, len(grid) - 1)

    return labels[index(phi[..., 0], phi0), index(phi[..., 1], phi1)]


__all__ = ["GaborModel", "basins", "gabor", "gabor_loss", "gabor_loss_grad", "local_minima", "loss_surface",
           "optimize_path", "path_turning", "valley_of", "valleys"]
