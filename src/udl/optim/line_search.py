"""Line search (UDL §6.1.2, fig. 6.10): bracketing in 1D, and gradient descent that uses it.

Gradient descent moves downhill by ``φ ← φ - α·g`` (UDL eq. 6.3). Instead of fixing the
step α, *line search* picks, at each step, the α in ``[0, max_step]`` that minimises the
loss along the downhill direction, ``α* = argmin_α L[φ - α·g]``. The book finds it by
*bracketing*: keep four points ``a < b < c < d`` and shrink ``[a, d]`` towards the lowest
of the two inner ones until the bracket is narrower than a tolerance.

- :func:`bracket_minimize`: the bracketing search on any function of one variable.
- :class:`LineSearchGD`: a ``torch.optim.Optimizer`` that does one line search per step,
  on any model's parameters (what ``torch.optim`` does not offer).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch.optim import Optimizer

from udl.validate import check_float, check_int, is_real

__all__ = ["Bracket", "bracket_minimize", "LineSearchGD"]


class Bracket(NamedTuple):
    """The four points ``a < b < c < d`` of one iteration of the bracketing search."""

    a: float
    b: float
    c: float
    d: float

    @property
    def width(self) -> float:
        """``d - a``, the length of the search interval."""
        return self.d - self.a


def _as_float(value) -> float:
    return float(value.detach()) if torch.is_tensor(value) else float(value)


def _thirds(a: float, d: float) -> Bracket:
    # b, c at a third and two thirds of [a, d], as notebook 6.1 places them after each cut
    return Bracket(a, a + (d - a) / 3, a + 2 * (d - a) / 3, d)


def _first_bracket(a: float, d: float, first_inner: tuple[float, float] | None) -> Bracket:
    if first_inner is None:
        return _thirds(a, d)
    return Bracket(a, a + first_inner[0] * (d - a), a + first_inner[1] * (d - a), d)


def _check_first_inner(first_inner, owner: str) -> tuple[float, float] | None:
    if first_inner is None:
        return None
    if not isinstance(first_inner, (tuple, list)) or len(first_inner) != 2 or \
            not all(is_real(f) for f in first_inner) or \
            not 0 < first_inner[0] < first_inner[1] < 1:
        error = ValueError if isinstance(first_inner, (tuple, list)) else TypeError
        raise error(f"The 'first_inner' parameter of {owner} must be None or two fractions 0 < f_b < f_c < 1 "
                    f"(where b and c start in [a, d]). Got {first_inner!r} instead.")
    return float(first_inner[0]), float(first_inner[1])


def bracket_minimize(f: Callable[[float], float], a: float, d: float, *, tol: float = 1e-4,
                     max_iter: int = 100, shrink_to_start: bool = False,
                     first_inner: tuple[float, float] | None = None) -> tuple[float, list[Bracket]]:
    """Minimise ``f`` on ``[a, d]`` by bracketing (UDL §6.1.2, fig. 6.10).

    Each iteration keeps the part of the bracket that must hold a minimum of a
    unimodal function and places the new ``b`` and ``c`` at its exact thirds, as the
    book's notebook 6.1 does (not the golden-section points, so each iteration costs
    two new evaluations)::

        L[b] > L[c]:  drop [a, b]   (a ← b)
        otherwise:    drop [c, d]   (d ← c)

    until ``d - a < tol``. The result is the centre of the last bracket. On a unimodal
    function this is the minimiser within ``tol / 2``; otherwise it is *a* local
    minimum (or an end point).

    Where the first ``b`` and ``c`` stand is ``first_inner``: by default at the exact
    thirds too, so the bracket shrinks by exactly 2/3 per iteration. The notebook
    starts at ``b = 0.33`` and ``c = 0.66`` of ``[a, d]``: ``first_inner=(0.33, 0.66)``
    reproduces its brackets (its first cut keeps 0.66 or 0.67 of the bracket).
    Unlike this function, the notebook stops once ``|c - b| <= thresh`` and returns
    ``(b + c)/2``, the same centre whenever ``b`` and ``c`` are at the thirds.

    With ``shrink_to_start=True`` the notebook's first rule applies as well: when
    ``L[a]`` is the lowest of the four values, the minimum is presumably close to ``a``
    and ``b``, ``c`` and ``d`` move halfway towards ``a`` (the bracket
    ``[a, a + (d - a)/2]``, the inner points at the same fractions of it). Gradient
    descent uses it to stay in the valley it starts from rather than jump to a far one.

    Args:
        f: the function of one variable; it takes a Python float and returns anything
            ``float()`` accepts (a float, a 0-d tensor).
        a, d: the ends of the search interval, ``a < d``.
        tol: stop once the bracket is narrower than this. Default: 1e-4.
        max_iter: at most this many iterations (two evaluations each). Default: 100.
        shrink_to_start: also apply the "a is lowest" rule. Default: False.
        first_inner: the fractions ``(f_b, f_c)`` of ``[a, d]`` where the first inner
            points stand, ``0 < f_b < f_c < 1``: ``b = a + f_b (d - a)``,
            ``c = a + f_c (d - a)``. ``(0.33, 0.66)`` is the notebook's start.
            Default: None (exact thirds, ``a + (d - a)/3`` and ``a + 2(d - a)/3``).

    Returns:
        ``(phi_min, history)``: the centre of the final bracket and the list of
        brackets, ``history[0] == (a, b, c, d)`` the first one, ``history[k]`` the bracket
        after ``k`` iterations (the last one is narrower than ``tol`` unless
        ``max_iter`` ran out).

    Example:
        >>> phi, history = bracket_minimize(lambda x: (x - 0.3) ** 2, 0.0, 1.0, tol=1e-6)
        >>> round(phi, 5), len(history) - 1
        (0.3, 35)
    """
    owner = "bracket_minimize"
    if not callable(f):
        raise TypeError(f"The 'f' parameter of {owner} must be a callable. Got {f!r} instead.")
    a = check_float(a, "a", owner)
    d = check_float(d, "d", owner, low=a, low_open=True)
    tol = check_float(tol, "tol", owner, low=0, low_open=True)
    max_iter = check_int(max_iter, "max_iter", owner)
    if not isinstance(shrink_to_start, bool):
        raise TypeError(f"The 'shrink_to_start' parameter of {owner} must be a bool. Got {shrink_to_start!r} instead.")
    first_inner = _check_first_inner(first_inner, owner)

    bracket = _first_bracket(a, d, first_inner)
    history = [bracket]
    loss_a = _as_float(f(a)) if shrink_to_start else None
    for _ in range(max_iter):
        if bracket.width < tol:
            break
        a, b, c, d = bracket
        loss_b, loss_c = _as_float(f(b)), _as_float(f(c))
        if shrink_to_start and loss_a < min(loss_b, loss_c, _as_float(f(d))):
            bracket = Bracket(a, a + (b - a) / 2, a + (c - a) / 2, a + (d - a) / 2)  # notebook rule 1: stay near a
        elif loss_b > loss_c:
            bracket = _thirds(b, d)  # the minimum is not in [a, b]
            loss_a = loss_b
        else:
            bracket = _thirds(a, c)  # the minimum is not in [c, d]
        history.append(bracket)
    return (bracket.a + bracket.d) / 2, history


class LineSearchGD(Optimizer):
    r"""Gradient descent whose step size is found by a line search (UDL §6.1.2).

    Each :meth:`step` computes the gradient ``g = ∂L/∂φ`` at the current parameters,
    then searches the step along the downhill direction with :func:`bracket_minimize`::

        α* = argmin_{α ∈ [0, max_step]} L[φ - α·g]      (line search, fig. 6.10)
        φ ← φ - α*·g                                     (UDL eq. 6.3)

    ``φ`` is every parameter the optimizer holds (any number of tensors, moved together
    by one α). Like :class:`torch.optim.LBFGS`, it needs a closure that re-evaluates the
    model and returns the loss; the closure is called once with the parameters at ``φ``
    for the gradient, then twice per bracketing iteration with the parameters
    temporarily at ``φ - α·g``. The closure may call ``backward()`` (the usual
    ``zero_grad(); loss = ...; loss.backward(); return loss``): the gradients of the
    search points are discarded, and after the step ``p.grad`` holds ``g`` again. Only
    one parameter group is supported, as in LBFGS.

    Args:
        params: the parameters (an iterable of tensors or one parameter group dict).
        max_step: the largest step searched, the right end of ``[0, max_step]``. Default: 1.0.
        tol: the bracket width at which the search stops. Default: 1e-4.
        max_iter: at most this many bracketing iterations per step. Default: 100.
        shrink_to_start: also use the notebook's "a is lowest" rule, see
            :func:`bracket_minimize`. Default: False.
        first_inner: where the first inner points stand, as fractions of
            ``[0, max_step]``, see :func:`bracket_minimize`; ``(0.33, 0.66)`` is the
            notebook's. Default: None (exact thirds).

    Attributes:
        last_alpha: the step size α* of the last step.
        last_history: the brackets of the last line search.

    Example:
        >>> phi = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = LineSearchGD([phi], max_step=2.0)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (phi ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> round(opt.last_alpha, 3), phi.detach().abs().max().item() < 1e-3
        (0.5, True)
    """

    def __init__(self, params, *, max_step: float = 1.0, tol: float = 1e-4, max_iter: int = 100,
                 shrink_to_start: bool = False, first_inner: tuple[float, float] | None = None):
        owner = "LineSearchGD"
        max_step = check_float(max_step, "max_step", owner, low=0, low_open=True)
        tol = check_float(tol, "tol", owner, low=0, low_open=True)
        max_iter = check_int(max_iter, "max_iter", owner)
        if not isinstance(shrink_to_start, bool):
            raise TypeError(f"The 'shrink_to_start' parameter of {owner} must be a bool. "
                            f"Got {shrink_to_start!r} instead.")
        first_inner = _check_first_inner(first_inner, owner)
        super().__init__(params, dict(max_step=max_step, tol=tol, max_iter=max_iter,
                                      shrink_to_start=shrink_to_start, first_inner=first_inner))
        if len(self.param_groups) != 1:
            raise ValueError(f"The 'params' parameter of {owner} must be one parameter group "
                             f"(one α moves them all). Got {len(self.param_groups)} groups instead.")
        self.last_alpha: float | None = None
        self.last_history: list[Bracket] = []

    @torch.no_grad()
    def step(self, closure):
        """Search α along ``-g`` and move; returns the loss at the starting point.

        Args:
            closure: re-evaluates the model and returns the loss (required).
        """
        if closure is None:
            raise ValueError("The 'closure' parameter of LineSearchGD.step must be a callable that returns the "
                             "loss (line search evaluates the loss at several step sizes). Got None instead.")
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.requires_grad]
        with torch.enable_grad():
            loss = closure()
        phi = [p.detach().clone() for p in params]
        g = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]

        def loss_along_line(alpha: float) -> float:  # L[φ - α·g]
            for p, phi_p, g_p in zip(params, phi, g):
                p.copy_(phi_p - alpha * g_p)
            with torch.enable_grad():
                return _as_float(closure())

        alpha, history = bracket_minimize(loss_along_line, 0.0, group["max_step"], tol=group["tol"],
                                          max_iter=group["max_iter"], shrink_to_start=group["shrink_to_start"],
                                          first_inner=group.get("first_inner"))  # absent in older state_dicts
        for p, phi_p, g_p in zip(params, phi, g):
            p.copy_(phi_p - alpha * g_p)  # φ ← φ - α*·g  (UDL eq. 6.3)
            if p.grad is not None:
                p.grad.copy_(g_p)
        self.last_alpha, self.last_history = alpha, history
        return loss
