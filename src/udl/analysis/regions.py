"""Linear regions of ReLU networks (UDL §3.1.1, §3.3, fig. 3.3 and §4.2, fig. 4.3).

A ReLU network computes a continuous piecewise-linear function. Its linear regions
are where the pattern of active hidden units stays the same; a region ends where a
hidden unit's pre-activation crosses zero (a *joint*, fig. 3.3).

1D input, exact (:func:`linear_pieces_1d`, :func:`linear_regions_1d`,
:func:`count_regions_1d`): the breakpoints are traced layer by layer. Before a
ReLU, every pre-activation is linear between the breakpoints found so far, so its
zero crossings are found exactly by linear interpolation; they become new
breakpoints. The slope of each piece then comes from forward-mode differentiation
at its midpoint, and neighbouring pieces with the same slope are merged: a joint
where the slope does not change (a dead unit, or φ_d = 0) is not a region boundary.

1D input, sampled (:func:`count_regions_sampled_1d`): for any callable, from slopes
on a uniform grid. A tolerance decides when two slopes are equal; the count is exact
when every region is at least three grid steps wide (see its docstring).

Di-dimensional input, shallow networks: the D hidden units cut R^Di with D
hyperplanes θ_d0 + θ_d·x = 0. In general position their number of regions is
Zaslavsky's Σ_{j=0}^{Di} C(D, j) (:func:`max_regions`; fig. 3.3's count, which is
D + 1 for Di = 1). :func:`count_regions_shallow` counts them independently, by
enumerating activation patterns around the arrangement's vertices, and
:func:`activation_patterns` with :func:`region_labels` count them on a grid of points.

Every network here is evaluated in float64 from its own weights; the networks may be
``ShallowNetwork``, ``DeepNetwork``, ``nn.Linear``, ``nn.ReLU`` or ``nn.Sequential``
chains of them.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import torch
from torch import nn

from udl.nn.deep import DeepNetwork
from udl.nn.shallow import ShallowNetwork
from udl.validate import check_float, check_int

__all__ = ["max_regions", "linear_pieces_1d", "linear_regions_1d", "count_regions_1d",
           "count_regions_sampled_1d", "activation_patterns", "region_labels", "hyperplane_vertices",
           "region_patterns_shallow", "count_regions_shallow"]


# --------------------------------------------------------------------------- formula
def max_regions(d_in: int, d_hidden: int) -> int:
    """Regions cut by D hyperplanes in general position in R^Di: Σ_{j=0}^{Di} C(D, j).

    Zaslavsky's theorem; the number of linear regions of a shallow ReLU network with
    Di inputs and D hidden units in general position (§3.3, fig. 3.3). For Di = 1 it
    is D + 1; for D <= Di it is 2^D.

    Args:
        d_in: input dimension Di (positive).
        d_hidden: number of hidden units D (non-negative).

    Example::

        >>> max_regions(2, 3)      # 1 + 3 + 3
        7
    """
    check_int(d_in, "d_in", "max_regions")
    check_int(d_hidden, "d_hidden", "max_regions", minimum=0)
    return sum(math.comb(d_hidden, j) for j in range(min(d_in, d_hidden) + 1))


# --------------------------------------------------------------------------- networks as layer stacks
def _stack(net, owner: str) -> list[nn.Module]:
    """The network as a flat list of nn.Linear and nn.ReLU, in order."""
    if isinstance(net, ShallowNetwork):
        return [net.hidden, nn.ReLU(), net.output]
    if isinstance(net, DeepNetwork):
        layers = list(net.layers)
        return [m for layer in layers[:-1] for m in (layer, nn.ReLU())] + [layers[-1]]
    if isinstance(net, (nn.Linear, nn.ReLU)):
        return [net]
    if isinstance(net, nn.Sequential):
        return [m for child in net for m in _stack(child, owner)]
    raise TypeError(f"The 'net' parameter of {owner} must be a ShallowNetwork, DeepNetwork, nn.Linear, nn.ReLU "
                    f"or an nn.Sequential of them. Got {type(net).__name__} instead.")


def _width_in(stack: list[nn.Module]) -> int | None:
    return next((m.in_features for m in stack if isinstance(m, nn.Linear)), None)


def _check_in(stack: list[nn.Module], want: int | None, owner: str) -> int:
    width = _width_in(stack)
    if width is None:
        raise ValueError(f"The 'net' parameter of {owner} must contain at least one nn.Linear layer. "
                         f"Got none instead.")
    if want is not None and width != want:
        raise ValueError(f"The 'net' parameter of {owner} must take {want}-dimensional inputs. "
                         f"Got a network with {width} inputs instead.")
    return width


def _affine(layer: nn.Linear, v: torch.Tensor, bias: bool = True) -> torch.Tensor:
    w = layer.weight.detach().to(torch.float64)
    out = v @ w.T  # (P, D_in) @ (D_in, D_out) -> (P, D_out)
    if bias and layer.bias is not None:
        out = out + layer.bias.detach().to(torch.float64)
    return out


def _check_interval(lo, hi, owner: str) -> tuple[float, float]:
    lo, hi = check_float(lo, "lo", owner), check_float(hi, "hi", owner)
    if not hi > lo:
        raise ValueError(f"The 'hi' parameter of {owner} must be greater than lo={lo:g}. Got {hi!r} instead.")
    return lo, hi


# --------------------------------------------------------------------------- 1D, exact
_SNAP = 1e-12  # pre-activations this small (relative) at a breakpoint count as exactly zero

class Pieces(NamedTuple):
    """A 1D piecewise-linear function as breakpoints and per-piece slopes."""

    breaks: torch.Tensor  # (P + 1,) sorted: lo, every candidate joint, hi
    slopes: torch.Tensor  # (P, Do) slope of each piece
    values: torch.Tensor  # (P + 1, Do) the function at the breakpoints


def linear_pieces_1d(net, lo: float, hi: float) -> Pieces:
    """Trace every joint of a 1-input ReLU network on [lo, hi], layer by layer.

    Before each ReLU the pre-activations are linear between consecutive breakpoints,
    so a unit whose value changes sign between two of them crosses zero at

        x* = x_a + t (x_b - x_a),   t = z(x_a) / (z(x_a) - z(x_b))

    which is added as a breakpoint (its other units' values are interpolated the same
    way). Joints exactly at ``lo`` or ``hi`` add no piece. A pre-activation within
    1e-12 (relative) of zero at a breakpoint counts as zero, so a unit that touches
    zero there without changing sign adds no spurious piece. Pieces are returned
    unmerged: two neighbours may share a slope (see :func:`linear_regions_1d`).

    Args:
        net: a 1-input network (see the module docstring for the accepted types).
        lo, hi: the interval, lo < hi.

    Shape:
        breaks: (P + 1,), slopes: (P, Do), values: (P + 1, Do), float64.

    Example::

        >>> net = ShallowNetwork(1, 3, 1)
        >>> pieces = linear_pieces_1d(net, -1.0, 1.0)
    """
    owner = "linear_pieces_1d"
    stack = _stack(net, owner)
    _check_in(stack, 1, owner)
    lo, hi = _check_interval(lo, hi, owner)
    xs = torch.tensor([lo, hi], dtype=torch.float64)
    v = xs[:, None]  # (P, 1): the network's state at each breakpoint
    with torch.no_grad():
        for op in stack:
            if isinstance(op, nn.Linear):
                v = _affine(op, v)
                continue
            # a unit that only touches zero at a breakpoint (e.g. at a fold of the layer
            # before) must not create a crossing from rounding noise: snap |z| <= 1e-12 scale
            v = torch.where(v.abs() <= _SNAP * (1.0 + v.abs().amax()), torch.zeros_like(v), v)
            left, right = v[:-1], v[1:]  # (P-1, D) both ends of each piece
            rows, units = torch.nonzero(left * right < 0, as_tuple=True)
            if len(rows):
                t = left[rows, units] / (left[rows, units] - right[rows, units])  # (M,) in (0, 1)
                x_new = xs[rows] + t * (xs[rows + 1] - xs[rows])
                v_new = left[rows] + t[:, None] * (right[rows] - left[rows])  # (M, D) linear in between
                v_new[torch.arange(len(rows)), units] = 0.0  # the crossing unit is exactly at its joint
                xs, order = torch.sort(torch.cat([xs, x_new]), stable=True)
                v = torch.cat([v, v_new])[order]
                keep = torch.cat([torch.tensor([True]), xs[1:] > xs[:-1]])  # coincident joints: one breakpoint
                xs, v = xs[keep], v[keep]
            v = torch.relu(v)
        # forward-mode derivative at each piece's midpoint: exact slope of that piece
        mid = (0.5 * (xs[:-1] + xs[1:]))[:, None]  # (P, 1)
        z, dz = mid, torch.ones_like(mid)
        for op in stack:
            if isinstance(op, nn.Linear):
                z, dz = _affine(op, z), _affine(op, dz, bias=False)
            else:
                on = (z > 0).to(z.dtype)
                z, dz = z * on, dz * on
    return Pieces(xs, dz, v)


def linear_regions_1d(net, lo: float, hi: float, *, rtol: float = 1e-9) -> torch.Tensor:
    """The boundaries of the linear regions of a 1-input ReLU network on [lo, hi].

    Built from :func:`linear_pieces_1d`: a candidate joint is a boundary only where the
    slope changes, i.e. where ``max_j |s_left,j - s_right,j| > rtol · max |s|``
    (all outputs j together).

    Args:
        net: a 1-input network.
        lo, hi: the interval.
        rtol: relative tolerance for equal slopes. Default 1e-9 (float64 arithmetic).

    Returns:
        float64 tensor ``[lo, b_1, ..., b_{R-1}, hi]`` for R regions.
    """
    owner = "linear_regions_1d"
    rtol = check_float(rtol, "rtol", owner, low=0.0)
    pieces = linear_pieces_1d(net, lo, hi)
    s = pieces.slopes
    scale = float(s.abs().max()) if s.numel() else 0.0
    change = (s[1:] - s[:-1]).abs().amax(dim=1) > rtol * scale  # (P-1,) one per interior breakpoint
    inner = pieces.breaks[1:-1][change]
    return torch.cat([pieces.breaks[:1], inner, pieces.breaks[-1:]])


def count_regions_1d(net, lo: float, hi: float, *, rtol: float = 1e-9) -> int:
    """The number of linear regions of a 1-input ReLU network on [lo, hi] (exact).

    For a shallow network in general position this is 1 + the number of joints
    -θ_d0/θ_d1 strictly inside (lo, hi) (fig. 3.3); for deep networks joints are
    traced through every layer (fig. 4.3).

    Args:
        net: a 1-input network.
        lo, hi: the interval.
        rtol: see :func:`linear_regions_1d`. Default 1e-9.

    Example::

        >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> count_regions_1d(net, -10.0, 10.0) <= 3
        True
    """
    return len(linear_regions_1d(net, lo, hi, rtol=rtol)) - 1


# --------------------------------------------------------------------------- 1D, sampled
def count_regions_sampled_1d(f: Callable[[torch.Tensor], torch.Tensor], lo: float, hi: float, *,
                             n: int = 20001, rtol: float = 1e-6) -> int:
    """Count the linear regions of any 1D function from slopes on a uniform grid.

    With grid step h = (hi - lo)/(n - 1), each grid interval has a slope
    s_i = (f(x_{i+1}) - f(x_i))/h. Intervals with equal slopes (within
    ``rtol · max |s|``) next to each other form runs; an interval holding a joint has
    a slope between its neighbours' and forms a run of its own. Every run of at least
    two intervals is one region.

    The count is exact when every linear region is at least 3h wide (so it contains
    two whole grid intervals) and the slopes of neighbouring regions differ by more
    than the tolerance; narrower regions are missed. ``f`` receives float64 inputs and
    should compute in float64 (float32 noise in the slopes is ~1e-7/h). An
    ``nn.Module`` is evaluated on a float64 copy.

    Args:
        f: maps x of shape (n, 1) to (n,) or (n, Do).
        lo, hi: the interval.
        n: number of grid points (at least 3). Default 20001.
        rtol: relative tolerance for equal slopes. Default 1e-6.
    """
    owner = "count_regions_sampled_1d"
    if not callable(f):
        raise TypeError(f"The 'f' parameter of {owner} must be callable. Got {type(f).__name__} instead.")
    lo, hi = _check_interval(lo, hi, owner)
    check_int(n, "n", owner, minimum=3)
    rtol = check_float(rtol, "rtol", owner, low=0.0)
    if isinstance(f, nn.Module):
        import copy

        f = copy.deepcopy(f).to(torch.float64)
    x = torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]  # (n, 1)
    with torch.no_grad():
        y = torch.as_tensor(f(x), dtype=torch.float64).reshape(n, -1)  # (n, Do)
    s = torch.diff(y, dim=0) / ((hi - lo) / (n - 1))  # (n-1, Do)
    scale = float(s.abs().max())
    same = (s[1:] - s[:-1]).abs().amax(dim=1) <= rtol * scale  # (n-2,) interval i joins interval i+1
    # run lengths of consecutive intervals joined by `same`
    runs, length = 0, 1
    for joined in same.tolist():
        if joined:
            length += 1
        else:
            runs += length >= 2
            length = 1
    return runs + (length >= 2)


# --------------------------------------------------------------------------- patterns in Di dimensions
def activation_patterns(net, x: torch.Tensor) -> torch.Tensor:
    """Which hidden units are active (pre-activation > 0) at each input.

    Points with the same pattern lie in the same linear region of a shallow network
    (and, for deep networks, the pattern of all layers identifies the region).

    Args:
        net: a network (see the module docstring).
        x: inputs, shape (N, Di).

    Shape:
        (N, Di) -> (N, H) bool, with H the total number of hidden units (layer by layer).
    """
    owner = "activation_patterns"
    stack = _stack(net, owner)
    width = _check_in(stack, None, owner)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"The 'x' parameter of {owner} must be a torch.Tensor. Got {type(x).__name__} instead.")
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"The 'x' parameter of {owner} must have shape (N, {width}). "
                         f"Got {tuple(x.shape)} instead.")
    v, bits = x.detach().to(torch.float64), []
    with torch.no_grad():
        for op in stack:
            if isinstance(op, nn.Linear):
                v = _affine(op, v)
            else:
                bits.append(v > 0)
                v = torch.relu(v)
    if not bits:
        return torch.zeros(len(x), 0, dtype=torch.bool)
    return torch.cat(bits, dim=1)


def region_labels(patterns: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Number the distinct activation patterns: (label of each row, number of patterns).

    Shape:
        (N, H) bool -> labels (N,) int64 in [0, count).
    """
    if not isinstance(patterns, torch.Tensor) or patterns.dim() != 2:
        raise TypeError("The 'patterns' parameter of region_labels must be a 2D torch.Tensor. "
                        f"Got {getattr(patterns, 'shape', type(patterns).__name__)} instead.")
    if len(patterns) == 0:
        return torch.zeros(0, dtype=torch.int64), 0
    unique, labels = torch.unique(patterns.to(torch.int8), dim=0, return_inverse=True)
    return labels, len(unique)


def _hyperplanes(net, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(net, ShallowNetwork):
        raise TypeError(f"The 'net' parameter of {owner} must be a ShallowNetwork. Got {type(net).__name__} instead.")
    normal = net.theta.detach().to(torch.float64)  # (D, Di): θ_d
    offset = net.theta_0.detach().to(torch.float64)  # (D,): θ_d0
    alive = normal.abs().amax(dim=1) > 0  # θ_d = 0: the unit is constant and cuts nothing
    return normal[alive], offset[alive]


def _vertices(normal: torch.Tensor, offset: torch.Tensor, owner: str):
    """Yield (incident units, vertex) for every set of r = min(D, Di) hyperplanes."""
    d, d_in = normal.shape
    r = min(d, d_in)
    for subset in itertools.combinations(range(d), r):
        a = normal[list(subset)]  # (r, Di)
        if torch.linalg.matrix_rank(a) < r:
            raise ValueError(f"The 'net' parameter of {owner} must have hidden units in general position. "
                             f"Got units {subset} whose normals are linearly dependent instead.")
        vertex = torch.linalg.pinv(a) @ -offset[list(subset)]  # (Di, r) @ (r,): a point on all r hyperplanes
        yield list(subset), vertex


def hyperplane_vertices(net) -> torch.Tensor:
    """The points where Di of a shallow network's hyperplanes θ_d0 + θ_d·x = 0 meet.

    For Di = 1 these are the joints -θ_d0/θ_d1. Empty when D < Di (no point is
    determined). Units with θ_d = 0 are ignored.

    Shape:
        (C(D, Di), Di) float64.
    """
    owner = "hyperplane_vertices"
    normal, offset = _hyperplanes(net, owner)
    d, d_in = normal.shape
    if d < d_in:
        return torch.zeros(0, d_in, dtype=torch.float64)
    points = [v for _, v in _vertices(normal, offset, owner)]
    return torch.stack(points) if points else torch.zeros(0, d_in, dtype=torch.float64)


def region_patterns_shallow(net, *, max_vertices: int = 100_000) -> torch.Tensor:
    """Enumerate the activation patterns of every linear region of a shallow network.

    Enumeration, not the formula: a region is a pattern of active hidden units. The
    hyperplanes are in general position, so every region touches a vertex where
    r = min(D, Di) of them meet; around such a vertex the r incident units take all
    2^r on/off combinations while every other unit keeps the sign it has at the
    vertex. The regions are the distinct patterns gathered this way over all
    C(D, r) vertices, over the whole of R^Di. Compare with :func:`max_regions`.

    Args:
        net: a ``ShallowNetwork`` whose hidden units are in general position (true
            with probability one for random weights); degenerate ones raise ValueError.
        max_vertices: refuse arrangements with more vertices than this. Default 100,000.

    Shape:
        (R, D) bool, one row per region, sorted; columns are the hidden units (units
        with θ_d = 0, which cut nothing, keep their constant state).
    """
    owner = "region_patterns_shallow"
    normal, offset = _hyperplanes(net, owner)
    check_int(max_vertices, "max_vertices", owner)
    theta_0 = net.theta_0.detach().to(torch.float64)
    alive = net.theta.detach().abs().amax(dim=1) > 0
    d, d_in = normal.shape
    r = min(d, d_in)
    if math.comb(d, r) > max_vertices:
        raise ValueError(f"The 'net' parameter of {owner} must have at most max_vertices={max_vertices} vertices. "
                         f"Got C({d}, {r}) = {math.comb(d, r)} instead.")
    scale = (float(offset.abs().max()) + float(normal.abs().max())) if d else 1.0
    patterns = set()
    for incident, vertex in _vertices(normal, offset, owner):
        z = offset + normal @ vertex  # (D,) pre-activations at the vertex: 0 on the incident units
        others = [k for k in range(d) if k not in incident]
        if len(others) and float(z[others].abs().min()) <= 1e-9 * scale * (1 + float(vertex.abs().max())):
            raise ValueError(f"The 'net' parameter of {owner} must have hidden units in general position. "
                             f"Got more than {r} hyperplanes through one point instead.")
        base = (z > 0).tolist()
        for signs in itertools.product((False, True), repeat=r):
            pattern = list(base)
            for k, on in zip(incident, signs):
                pattern[k] = on
            patterns.add(tuple(pattern))
    live = torch.tensor(sorted(patterns), dtype=torch.bool).reshape(-1, d)  # (R, D alive)
    full = (theta_0 > 0).expand(len(live), -1).clone()  # a unit with θ_d = 0 is on iff θ_d0 > 0
    full[:, alive] = live
    return full


def count_regions_shallow(net, *, max_vertices: int = 100_000) -> int:
    """Count the linear regions of a shallow ReLU network over all of R^Di, exactly.

    The number of rows of :func:`region_patterns_shallow` (see there for the method
    and its general-position requirement); equals :func:`max_regions` for hidden
    units in general position.

    Example::

        >>> net = ShallowNetwork(2, 4, 1, generator=torch.Generator().manual_seed(0))
        >>> count_regions_shallow(net) == max_regions(2, 4)
        True
    """
    return len(region_patterns_shallow(net, max_vertices=max_vertices))
