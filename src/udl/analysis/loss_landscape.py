"""Loss landscapes: the loss along random directions around trained parameters (UDL fig. 11.13).

The loss L[φ] of a network lives in a space of millions of dimensions. Li et al.
(2018, "Visualizing the loss landscape of neural nets") look at a 2D slice of it
around the trained parameters φ*::

    f(α, β) = L[φ* + α·d₁ + β·d₂]

along two random Gaussian directions d₁, d₂. Without care the picture depends on
the scale of the weights: a ReLU network whose layer's weights are all multiplied
by c > 0 (and the next layer's divided by c) computes the same function, but a step
of fixed size moves it much further when c is small. *Filter normalisation* removes
this: each filter of the direction (the slice of a weight tensor that produces one
output unit or channel) is rescaled to the norm of the same filter of φ*::

    d_{i,j} ← d_{i,j} · ‖φ*_{i,j}‖ / ‖d_{i,j}‖        (filter j of layer i)

so that α = 1 changes every filter by as much as its own size. Biases and batch
norm's scale and offset (the 1D parameters) get a zero direction, as in Li et al.

- :func:`random_direction`: a filter-normalised Gaussian direction.
- :func:`loss_surface`: f(α, β) on a grid, without touching the model's weights.
- :func:`loss_slice`: the 1D version f(α) = L[φ* + α·d].
- :func:`surface_roughness`: how much a surface bends at the scale of the grid,
  relative to its overall rise (0 for a plane, small for a smooth bowl, large for a
  chaotic surface).
- :func:`nonconvexity`: the fraction of the grid where the surface curves down
  along some direction of the plane (Li et al.'s map of negative curvature).
- :func:`local_minima`: how many grid points are lower than all their neighbours.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from udl.validate import as_generator, check_array, check_callable, check_choice, check_float, check_int

__all__ = ["random_direction", "loss_surface", "loss_slice", "model_loss", "surface_roughness", "nonconvexity",
           "local_minima", "NORMALIZATIONS", "BATCH_NORM_MODES"]

NORMALIZATIONS = ("filter", "layer", "none")

Direction = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- directions
def _check_model(model, owner: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' parameter of {owner} must be a torch.nn.Module. Got {type(model).__name__} "
                        "instead.")
    if not any(True for _ in model.parameters()):
        raise ValueError(f"The 'model' parameter of {owner} must have parameters. Got {type(model).__name__} "
                         "without any instead.")
    return model


def random_direction(model: nn.Module, generator: torch.Generator | None = None, *, normalization: str = "filter",
                     ignore_bias_bn: bool = True) -> Direction:
    """A random direction d in parameter space, normalised filter by filter (Li et al. 2018).

    Every entry of d is drawn from N(0, 1), then each weight tensor of ≥ 2 dimensions
    is rescaled according to ``normalization``:

    - ``"filter"``: each filter j (the slice ``[j]`` along the first, output axis of a
      convolution or linear weight) gets the norm of the same filter of φ*:
      d_j ← d_j · ‖φ*_j‖ / ‖d_j‖;
    - ``"layer"``: the whole tensor gets the norm of the whole weight tensor;
    - ``"none"``: d is left as drawn.

    1D parameters (biases, batch norm's γ and δ) get a zero direction when
    ``ignore_bias_bn`` (Li et al.'s setting), else the parameters themselves, d = φ*
    (their code's alternative: moving along d rescales them).

    Args:
        model: the network whose trained parameters φ* the direction is for.
        generator: a CPU ``torch.Generator`` for the Gaussian draw. Default None
            (torch's global generator).
        normalization: ``"filter"`` (default), ``"layer"`` or ``"none"``.
        ignore_bias_bn: zero direction for 1D parameters. Default True.

    Returns:
        ``{name: tensor}`` for every entry of ``model.named_parameters()``, each of the
        parameter's shape, dtype and device.

    Shape:
        one tensor per parameter, of that parameter's shape.

    Example::

        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> d = random_direction(net, torch.Generator().manual_seed(0))
        >>> torch.allclose(d["0.weight"].norm(dim=1), net[0].weight.norm(dim=1))
        True
        >>> bool((d["0.bias"] == 0).all())
        True
    """
    owner = "random_direction"
    _check_model(model, owner)
    generator = as_generator(generator, owner)
    check_choice(normalization, "normalization", owner, NORMALIZATIONS)
    if not isinstance(ignore_bias_bn, bool):
        raise TypeError(f"The 'ignore_bias_bn' parameter of {owner} must be a bool. Got {ignore_bias_bn!r} instead.")
    direction = {}
    for name, phi in model.named_parameters():
        phi = phi.detach()
        if phi.dim() <= 1:
            direction[name] = torch.zeros_like(phi) if ignore_bias_bn else phi.clone()
            continue
        d = torch.randn(phi.shape, generator=generator, dtype=torch.float32).to(phi)
        if normalization == "filter":
            d_norm = d.flatten(1).norm(dim=1)  # (C_out,) ‖d_j‖ per filter
            phi_norm = phi.flatten(1).norm(dim=1)  # (C_out,) ‖φ*_j‖ per filter
            scale = phi_norm / (d_norm + 1e-10)
            d = d * scale.view(-1, *([1] * (d.dim() - 1)))  # (C_out, 1, ...) broadcasts over each filter
        elif normalization == "layer":
            d = d * (phi.norm() / (d.norm() + 1e-10))
        direction[name] = d
    return direction


def _check_direction(direction, params: dict[str, torch.Tensor], name: str, owner: str) -> Direction:
    if not isinstance(direction, dict):
        raise TypeError(f"The {name!r} parameter of {owner} must be a dict of tensors from random_direction. "
                        f"Got {type(direction).__name__} instead.")
    if set(direction) != set(params):
        missing = sorted(set(params) ^ set(direction))[:3]
        raise ValueError(f"The {name!r} parameter of {owner} must have one tensor per model parameter. "
                         f"Got mismatched names {missing} instead.")
    out = {}
    for key, phi in params.items():
        d = direction[key]
        if not isinstance(d, torch.Tensor) or d.shape != phi.shape:
            got = tuple(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
            raise ValueError(f"The {name!r} parameter of {owner} must match the shape {tuple(phi.shape)} of "
                             f"{key!r}. Got {got} instead.")
        out[key] = d.detach().to(phi)
    return out


# --------------------------------------------------------------------------- evaluation
def _check_data(data, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)):
        raise TypeError(f"The 'data' parameter of {owner} must be a tuple (x, y) of tensors. "
                        f"Got {type(data).__name__} instead.")
    x, y = data
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"The 'data' parameter of {owner} must hold as many targets as inputs (at least one). "
                         f"Got {len(x)} inputs and {len(y)} targets instead.")
    return x, y


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
BATCH_NORM_MODES = ("eval", "batch")


class _Evaluator:
    """L[φ] for parameter dicts φ, on fixed data; the model must be in the right mode."""

    def __init__(self, model: nn.Module, loss_fn: Callable, data, batch_size: int | None, owner: str,
                 batch_norm: str = "eval"):
        self.model = model
        self.batch_norm = batch_norm
        self.loss_fn = loss_fn
        x, y = _check_data(data, owner)
        device = next(model.parameters()).device
        size = len(x) if batch_size is None else batch_size
        self.batches = [(xb.to(device), yb.to(device)) for xb, yb in zip(x.split(size), y.split(size))]
        self.n = len(x)
        self.buffers = {k: b.detach() for k, b in model.named_buffers()}

    @torch.no_grad()
    def __call__(self, params: dict[str, torch.Tensor]) -> float:
        total = 0.0
        for xb, yb in self.batches:
            buffers = self.buffers
            if self.batch_norm == "batch":  # batch norm in training mode writes to its running statistics
                buffers = {k: b.clone() for k, b in buffers.items()}
            state = {**buffers, **params}
            out = functional_call(self.model, state, (xb,))
            total += float(self.loss_fn(out, yb)) * len(xb)  # loss_fn returns the batch mean
        return total / self.n


class _Mode:
    """Eval mode (batch norm in ``"batch"`` mode excepted); each module's flag restored afterwards."""

    def __init__(self, model: nn.Module, batch_norm: str = "eval"):
        self.model = model
        self.batch_norm = batch_norm
        self.flags = [(m, m.training) for m in model.modules()]

    def __enter__(self):
        self.model.eval()
        if self.batch_norm == "batch":
            for m in self.model.modules():
                if isinstance(m, _BATCH_NORMS):
                    m.train()

    def __exit__(self, *exc):
        for m, flag in self.flags:
            m.training = flag


def _checked(model, loss_fn, batch_size, owner):
    _check_model(model, owner)
    check_callable(loss_fn, "loss_fn", owner)
    if batch_size is not None:
        check_int(batch_size, "batch_size", owner)


def model_loss(model: nn.Module, loss_fn: Callable, data: tuple[torch.Tensor, torch.Tensor], *,
               batch_size: int | None = None, batch_norm: str = "eval") -> float:
    """L[φ*]: the mean loss of the model as it is, over ``data``, evaluated as :func:`loss_surface` does.

    An ordinary forward pass ``model(x)`` (not a functional call) in eval mode, with
    batch norm using its running statistics (``"eval"``) or the statistics of each
    batch (``"batch"``, on a copy of the model so that its stored statistics stay as
    they are): an independent check of the centre of a surface.

    Args:
        model: the network.
        loss_fn: ``loss_fn(model(x), y)`` -> the batch's mean loss.
        data: ``(x, y)`` tensors.
        batch_size: evaluate in batches of this size. Default None (all at once).
        batch_norm: ``"eval"`` (default) or ``"batch"``.

    Example::

        >>> net = nn.Linear(2, 1)
        >>> x, y = torch.ones(4, 2), torch.zeros(4, 1)
        >>> abs(model_loss(net, nn.MSELoss(), (x, y)) - float(net(x).pow(2).mean())) < 1e-7
        True
    """
    owner = "model_loss"
    _checked(model, loss_fn, batch_size, owner)
    check_choice(batch_norm, "batch_norm", owner, BATCH_NORM_MODES)
    x, y = _check_data(data, owner)
    net = copy.deepcopy(model) if batch_norm == "batch" else model
    device = next(net.parameters()).device
    size = len(x) if batch_size is None else batch_size
    total = 0.0
    with _Mode(net, batch_norm), torch.no_grad():
        for xb, yb in zip(x.split(size), y.split(size)):
            total += float(loss_fn(net(xb.to(device)), yb.to(device))) * len(xb)
    return total / len(x)


def loss_surface(model: nn.Module, loss_fn: Callable, data: tuple[torch.Tensor, torch.Tensor],
                 directions: Sequence[Direction], alphas, betas, *, batch_size: int | None = None,
                 batch_norm: str = "eval", progress: Callable[[Iterable], Iterable] | None = None) -> np.ndarray:
    """The loss f(α, β) = L[φ* + α·d₁ + β·d₂] on a grid around the model's parameters φ*.

    Each grid point is evaluated with ``torch.func.functional_call`` on the moved
    parameters, so the model's own weights are never modified (not even temporarily).
    The network is evaluated in **eval mode** (dropout off). Batch norm, by default
    (``batch_norm="eval"``), normalises with the running statistics stored at φ*, as
    Li et al.'s code does: the loss is then a fixed function of the parameters that
    does not depend on ``batch_size``, but the stored statistics no longer match the
    moved network, so activations (and the loss) can grow quickly away from φ*.
    ``batch_norm="batch"`` recomputes the statistics from each evaluation batch (as in
    training, without updating the stored ones): the loss is then unchanged when a
    filter feeding a batch norm is rescaled, but depends on the batches (use one
    batch, ``batch_size=None``, for a fixed function). The model's train/eval flags
    and buffers are restored or untouched afterwards.

    Args:
        model: the trained network (its parameters are φ*).
        loss_fn: ``loss_fn(model(x), y)`` -> the batch's *mean* loss
            (e.g. ``nn.CrossEntropyLoss()``); batch means are weighted by batch size.
        data: ``(x, y)`` tensors, e.g. the training set.
        directions: ``(d₁, d₂)`` from :func:`random_direction`.
        alphas: the grid values α_i along d₁ (1D).
        betas: the grid values β_j along d₂ (1D).
        batch_size: evaluate in batches of this size. Default None (all at once).
        batch_norm: ``"eval"`` (running statistics, default) or ``"batch"``.
        progress: optional wrapper of the loop over α (e.g. ``tqdm``). Default None.

    Returns:
        ``surface[i, j] = L[φ* + α_i·d₁ + β_j·d₂]`` as float64 (matrix indexing, as
        ``np.meshgrid(alphas, betas, indexing="ij")``; transpose it for ``contour``).

    Shape:
        alphas (A,), betas (B,) -> (A, B).

    Example::

        >>> net = nn.Linear(2, 1)
        >>> data = (torch.randn(8, 2), torch.randn(8, 1))
        >>> g = torch.Generator().manual_seed(0)
        >>> d1, d2 = random_direction(net, g), random_direction(net, g)
        >>> loss_surface(net, nn.MSELoss(), data, (d1, d2), [-1, 0, 1], [0, 1]).shape
        (3, 2)
    """
    owner = "loss_surface"
    _checked(model, loss_fn, batch_size, owner)
    check_choice(batch_norm, "batch_norm", owner, BATCH_NORM_MODES)
    if not isinstance(directions, (tuple, list)) or len(directions) != 2:
        raise ValueError(f"The 'directions' parameter of {owner} must be a pair (d1, d2) of directions. "
                         f"Got {directions!r:.60} instead.")
    alphas, betas = check_array(alphas, "alphas", owner), check_array(betas, "betas", owner)
    phi = {k: p.detach() for k, p in model.named_parameters()}
    d1 = _check_direction(directions[0], phi, "directions", owner)
    d2 = _check_direction(directions[1], phi, "directions", owner)
    evaluate = _Evaluator(model, loss_fn, data, batch_size, owner, batch_norm)
    surface = np.empty((len(alphas), len(betas)))
    rows = progress(range(len(alphas))) if progress is not None else range(len(alphas))
    with _Mode(model, batch_norm):
        for i in rows:
            for j, beta in enumerate(betas):
                alpha = alphas[i]
                # φ = φ* + α·d₁ + β·d₂; α = β = 0 gives φ* itself, bit for bit
                moved = {k: phi[k] + alpha * d1[k] + beta * d2[k] if (alpha or beta) else phi[k] for k in phi}
                surface[i, j] = evaluate(moved)
    return surface


def loss_slice(model: nn.Module, loss_fn: Callable, data: tuple[torch.Tensor, torch.Tensor],
               direction: Direction, alphas, *, batch_size: int | None = None, batch_norm: str = "eval") -> np.ndarray:
    """The loss f(α) = L[φ* + α·d] along one direction (a 1D cut through the landscape).

    Evaluated as :func:`loss_surface` is (functional calls, eval mode).

    Args:
        model: the trained network.
        loss_fn: ``loss_fn(model(x), y)`` -> the batch's mean loss.
        data: ``(x, y)`` tensors.
        direction: d, from :func:`random_direction`.
        alphas: the values α_i (1D).
        batch_size: evaluate in batches of this size. Default None.
        batch_norm: ``"eval"`` (running statistics, default) or ``"batch"``.

    Shape:
        alphas (A,) -> (A,).

    Example::

        >>> net = nn.Linear(2, 1)
        >>> data = (torch.randn(8, 2), torch.randn(8, 1))
        >>> d = random_direction(net, torch.Generator().manual_seed(0))
        >>> loss_slice(net, nn.MSELoss(), data, d, [-1, 0, 1]).shape
        (3,)
    """
    owner = "loss_slice"
    _check_model(model, owner)
    phi = {k: p.detach() for k, p in model.named_parameters()}
    d = _check_direction(direction, phi, "direction", owner)
    zero = {k: torch.zeros_like(v) for k, v in d.items()}
    return loss_surface(model, loss_fn, data, (d, zero), alphas, [0.0], batch_size=batch_size,
                        batch_norm=batch_norm)[:, 0]


# --------------------------------------------------------------------------- roughness
def _second_differences(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Δ²_α f, Δ²_β f and the mixed difference at the interior points (grid units)."""
    f_aa = f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]  # (A-2, B-2)
    f_bb = f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]  # (A-2, B-2)
    f_ab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / 4  # (A-2, B-2) central mixed difference
    return f_aa, f_bb, f_ab


def surface_roughness(surface) -> float:
    """How much a surface bends at the grid's scale, relative to its overall rise.

    With the Hessian H of the sampled surface estimated by central second differences
    at each interior grid point (in grid steps), the roughness is the mean Frobenius
    norm of H divided by the surface's range::

        R = mean_points ‖H‖_F / (max f - min f),   ‖H‖_F² = (Δ²_α f)² + (Δ²_β f)² + 2 (Δ_αβ f)²

    Dividing by the range makes R unitless and unchanged when the loss is scaled or
    shifted. A plane has R = 0; a quadratic bowl sampled on K×K points has R of
    order 1/K² (its curvature is constant and the range grows as K² steps²); any
    bending at the scale of the grid spacing (noise, ripples, many small basins)
    adds curvature without adding range and raises R towards order 1.

    Args:
        surface: the sampled surface, e.g. from :func:`loss_surface` (2D, ≥ 3×3).

    Returns:
        R ≥ 0 (0 also for a constant surface).

    Shape:
        (A, B) -> scalar.

    Example::

        >>> a = np.linspace(-1, 1, 21)
        >>> bowl = a[:, None] ** 2 + a[None, :] ** 2
        >>> ripples = bowl + 0.1 * np.sin(30 * a)[:, None] * np.sin(30 * a)[None, :]
        >>> surface_roughness(bowl) < surface_roughness(ripples)
        True
    """
    f = check_array(surface, "surface", "surface_roughness", ndim=2, min_size=3)
    rise = f.max() - f.min()
    if rise == 0:
        return 0.0
    f_aa, f_bb, f_ab = _second_differences(f)
    frobenius = np.sqrt(f_aa ** 2 + f_bb ** 2 + 2 * f_ab ** 2)
    return float(frobenius.mean() / rise)


def nonconvexity(surface, *, tolerance: float = 0.1) -> float:
    """The fraction of interior grid points where the surface curves down along some direction.

    At each interior point the 2×2 Hessian of the plane, H = [[Δ²_α f, Δ_αβ f],
    [Δ_αβ f, Δ²_β f]], has eigenvalues λ_min ≤ λ_max. The point counts as non-convex
    when λ_min < -tolerance·|λ_max| (a clear negative curvature, not round-off on a
    flat stretch): the in-plane version of Li et al.'s map of |λ_min / λ_max|.

    Args:
        surface: the sampled surface (2D, ≥ 3×3).
        tolerance: how negative λ_min must be, relative to |λ_max|. Default 0.1.

    Returns:
        a fraction in [0, 1]: 0 for a convex bowl.

    Shape:
        (A, B) -> scalar.

    Example::

        >>> a = np.linspace(-1, 1, 11)
        >>> nonconvexity(a[:, None] ** 2 + a[None, :] ** 2), nonconvexity(a[:, None] ** 2 - a[None, :] ** 2)
        (0.0, 1.0)
    """
    owner = "nonconvexity"
    f = check_array(surface, "surface", owner, ndim=2, min_size=3)
    tolerance = check_float(tolerance, "tolerance", owner, low=0.0, high=1.0, high_open=True)
    f_aa, f_bb, f_ab = _second_differences(f)
    mean, gap = (f_aa + f_bb) / 2, np.sqrt(((f_aa - f_bb) / 2) ** 2 + f_ab ** 2)
    lam_min, lam_max = mean - gap, mean + gap  # eigenvalues of the symmetric 2×2 Hessian
    return float(np.mean(lam_min < -tolerance * np.abs(lam_max)))


def local_minima(surface) -> int:
    """How many grid points are strictly lower than all their (up to 8) neighbours.

    A smooth bowl has one; a chaotic surface has many. Edge and corner points are
    compared with the neighbours they have.

    Args:
        surface: the sampled surface (2D, ≥ 3×3).

    Shape:
        (A, B) -> int.

    Example::

        >>> a = np.linspace(-1, 1, 11)
        >>> local_minima(a[:, None] ** 2 + a[None, :] ** 2)
        1
    """
    f = check_array(surface, "surface", "local_minima", ndim=2, min_size=3)
    padded = np.pad(f, 1, constant_values=np.inf)
    lower = np.ones(f.shape, dtype=bool)
    rows, cols = f.shape
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                neighbour = padded[1 + di:1 + di + rows, 1 + dj:1 + dj + cols]
                lower &= f < neighbour
    return int(lower.sum())
