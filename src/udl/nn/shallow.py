"""The shallow neural network of UDL chapter 3, in the book's notation.

One hidden layer of D ReLU units between a Di-dimensional input and a Do-dimensional
output (UDL eqs. 3.8-3.9; eq. 3.1 is the case Di = Do = 1)::

    h_d = a[θ_d0 + Σ_i θ_di x_i]          d = 1..D      (pre-activation inside a[.])
    y_j = φ_j0 + Σ_d φ_jd h_d             j = 1..Do

with a[.] the ReLU. It has (Di + 1)·D + (D + 1)·Do parameters (§3.4).

Storage: the two layers are ``nn.Linear`` modules, so ``theta`` (D x Di) is the
hidden layer's weight, ``theta_0`` (D,) its bias, ``phi`` (Do x D) the output
layer's weight and ``phi_0`` (Do,) its bias. Batch-first: the book's column vector
x is one row of our ``x`` (N x Di).

:func:`fit_shallow` fits a 1D network to data (least squares for φ with the joints
spread over the data, then all parameters refined by L-BFGS).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from udl.nn.init import fan_in_uniform_, initialised_from
from udl.validate import as_generator, check_float, check_int, check_tensor

__all__ = ["ShallowNetwork", "fit_shallow"]  # ShallowPass and Edge: return types


class ShallowPass(NamedTuple):
    """The quantities of one forward pass (fig. 3.12's terminology)."""

    y: torch.Tensor  # (..., Do) outputs
    pre: torch.Tensor  # (..., D) pre-activations θ_d0 + Σ_i θ_di x_i
    act: torch.Tensor  # (..., D) activations h_d = a[pre]


class Edge(NamedTuple):
    """One arrow of the book's network diagram (fig. 3.4): one parameter.

    The parameter multiplies the value at ``source`` and adds it to ``target``;
    intercepts come from the constant nodes ``"1_h"`` (feeding the hidden layer)
    and ``"1_y"`` (feeding the output).
    """

    source: str  # "x1".., "h1".., "1_h", "1_y"
    target: str  # "h1".., "y1"..
    symbol: str  # the book's name in matplotlib mathtext, e.g. r"\theta_{11}"
    value: float  # the parameter's current value
    kind: str  # "intercept" or "slope"


class ShallowNetwork(nn.Module):
    """A shallow ReLU network y = φ_0 + Σ_d φ_d a[θ_d0 + θ_d·x] (UDL eqs. 3.1, 3.8-3.9).

    Args:
        d_in: input dimension Di. Default 1.
        d_hidden: number of hidden units D. Default 3.
        d_out: output dimension Do. Default 1.
        generator: draws the initial parameters, U(-1/√fan_in, 1/√fan_in) as
            ``nn.Linear`` does: a ``torch.Generator`` or an int seed; None uses torch's
            global generator.

    Shape:
        x: (..., Di) -> y: (..., Do).

    Example::

        >>> net = ShallowNetwork(1, 3, 1, generator=torch.Generator().manual_seed(0))
        >>> sum(p.numel() for p in net.parameters())      # (1+1)·3 + (3+1)·1
        10
        >>> y, pre, act = net.forward_with_activations(torch.zeros(5, 1))
    """

    def __init__(self, d_in: int = 1, d_hidden: int = 3, d_out: int = 1, *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.d_in = check_int(d_in, "d_in", "ShallowNetwork")
        self.d_hidden = check_int(d_hidden, "d_hidden", "ShallowNetwork")
        self.d_out = check_int(d_out, "d_out", "ShallowNetwork")
        generator = as_generator(generator, "ShallowNetwork")
        with initialised_from(self, generator, own_rule_only=True):
            self.hidden = nn.Linear(d_in, d_hidden)  # weight θ (D x Di), bias θ_0 (D,)
            self.output = nn.Linear(d_hidden, d_out)  # weight φ (Do x D), bias φ_0 (Do,)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every parameter from U(-1/√fan_in, 1/√fan_in), nn.Linear's distribution, drawn in float64."""
        for layer in (self.hidden, self.output):
            fan_in_uniform_((layer.weight, layer.bias), layer.in_features, generator)

    # -- the book's names for the parameters (views of the same tensors) --
    @property
    def theta_0(self) -> nn.Parameter:
        """Hidden-layer intercepts θ_d0, shape (D,)."""
        return self.hidden.bias

    @property
    def theta(self) -> nn.Parameter:
        """Hidden-layer slopes θ_di, shape (D, Di)."""
        return self.hidden.weight

    @property
    def phi_0(self) -> nn.Parameter:
        """Output intercepts φ_j0, shape (Do,)."""
        return self.output.bias

    @property
    def phi(self) -> nn.Parameter:
        """Output slopes φ_jd, shape (Do, D)."""
        return self.output.weight

    @property
    def depth(self) -> int:
        """The number of hidden layers: one."""
        return 1

    @staticmethod
    def parameter_count(d_in: int, d_hidden: int, d_out: int) -> int:
        """(Di + 1)·D + (D + 1)·Do, the number of parameters (§3.4)."""
        for name, v in (("d_in", d_in), ("d_hidden", d_hidden), ("d_out", d_out)):
            check_int(v, name, "ShallowNetwork.parameter_count")
        return (d_in + 1) * d_hidden + (d_hidden + 1) * d_out

    def forward_with_activations(self, x: torch.Tensor) -> ShallowPass:
        """The outputs with the hidden pre-activations and activations (fig. 3.12)."""
        check_tensor(x, "x", "ShallowNetwork.forward", shape=(..., self.d_in))
        pre = self.theta_0 + x @ self.theta.T  # (..., Di) @ (Di, D) -> (..., D); the bracket of eq. 3.8
        act = torch.relu(pre)  # h_d = a[.]  (eq. 3.8)
        y = self.phi_0 + act @ self.phi.T  # (..., D) @ (D, Do) -> (..., Do)  (eq. 3.9)
        return ShallowPass(y, pre, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_activations(x).y

    def joints(self) -> torch.Tensor:
        """The inputs where each hidden unit's pre-activation crosses zero (Di = 1 only).

        x_d = -θ_d0 / θ_d1 (fig. 3.3's joints); NaN for a unit with θ_d1 = 0, whose
        pre-activation never crosses zero.

        Shape: (D,).
        """
        if self.d_in != 1:
            raise ValueError(f"The 'd_in' parameter of ShallowNetwork.joints must be 1. Got {self.d_in} instead.")
        slope = self.theta[:, 0].detach()
        joints = -self.theta_0.detach() / slope
        return torch.where(slope == 0, torch.full_like(joints, math.nan), joints)

    def edges(self) -> list[Edge]:
        """One :class:`Edge` per parameter, in the order of fig. 3.4: θ's, then φ's."""
        xs = ["x"] if self.d_in == 1 else [f"x{i + 1}" for i in range(self.d_in)]
        ys = ["y"] if self.d_out == 1 else [f"y{j + 1}" for j in range(self.d_out)]
        theta_0, theta = self.theta_0.detach().tolist(), self.theta.detach().tolist()
        phi_0, phi = self.phi_0.detach().tolist(), self.phi.detach().tolist()
        edges = []
        for d in range(self.d_hidden):
            h = f"h{d + 1}"
            edges.append(Edge("1_h", h, rf"\theta_{{{d + 1}0}}", theta_0[d], "intercept"))
            for i, x in enumerate(xs):
                edges.append(Edge(x, h, rf"\theta_{{{d + 1}{i + 1}}}", theta[d][i], "slope"))
        for j, y in enumerate(ys):
            row = "" if self.d_out == 1 else f"{j + 1}"  # φ_d for one output, φ_jd for several
            edges.append(Edge("1_y", y, rf"\phi_{{{row}0}}", phi_0[j], "intercept"))
            for d in range(self.d_hidden):
                edges.append(Edge(f"h{d + 1}", y, rf"\phi_{{{row}{d + 1}}}", phi[j][d], "slope"))
        return edges

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_hidden={self.d_hidden}, d_out={self.d_out}"


# --------------------------------------------------------------------------- fitting
def _check_1d_data(v, name: str) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"The {name!r} parameter of fit_shallow must be a torch.Tensor. "
                        f"Got {type(v).__name__} instead.")
    if v.dim() == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.dim() != 1 or v.numel() < 2:
        raise ValueError(f"The {name!r} parameter of fit_shallow must have shape (N,) or (N, 1) with N >= 2. "
                         f"Got {tuple(v.shape)} instead.")
    if not torch.isfinite(v).all():
        raise ValueError(f"The {name!r} parameter of fit_shallow must be finite. Got non-finite values instead.")
    return v.to(torch.float64)


def fit_shallow(x: torch.Tensor, y: torch.Tensor, d_hidden: int, *, steps: int = 200,
                lo: float | None = None, hi: float | None = None) -> ShallowNetwork:
    """Fit a 1-input, 1-output shallow network to data by least squares.

    Deterministic, in three steps:

    1. joints spread evenly over [lo, hi]: x_d = lo + (d - ½)(hi - lo)/D, unit d
       facing right (θ_d1 > 0) for odd d and left for even d, with |θ_d1| = 1/(hi - lo);
    2. the output layer φ solved in closed form (linear least squares on the
       activations, as fig. 8.4's simplified model is);
    3. all 3D + 1 parameters refined by full-batch L-BFGS on the mean squared error.

    Step 3 finds a local minimum: joints move freely, but a unit rarely changes the
    side it faces (that needs θ_d1 to cross zero, sending its joint to infinity).

    Args:
        x: inputs, shape (N,) or (N, 1).
        y: targets, same length as ``x``.
        d_hidden: number of hidden units D.
        steps: L-BFGS iterations in step 3 (0 keeps the least-squares fit). Default 200.
        lo, hi: the domain the joints start in. Default: min and max of ``x``.

    Returns:
        A float64 :class:`ShallowNetwork` (1, D, 1).

    Example::

        >>> x = torch.linspace(0, 1, 100)
        >>> net = fit_shallow(x, torch.sin(6 * x), d_hidden=5)
    """
    x, y = _check_1d_data(x, "x"), _check_1d_data(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"The 'x' and 'y' parameters of fit_shallow must have the same length. "
                         f"Got {x.numel()} and {y.numel()} instead.")
    check_int(d_hidden, "d_hidden", "fit_shallow")
    check_int(steps, "steps", "fit_shallow", minimum=0)
    lo = float(x.min()) if lo is None else check_float(lo, "lo", "fit_shallow")
    hi = float(x.max()) if hi is None else check_float(hi, "hi", "fit_shallow")
    if not hi > lo:
        raise ValueError(f"The 'hi' parameter of fit_shallow must be greater than lo={lo:g}. Got {hi!r} instead.")

    net = ShallowNetwork(1, d_hidden, 1, generator=0).to(torch.float64)  # every value is set below
    d = torch.arange(d_hidden, dtype=torch.float64)
    joint = lo + (d + 0.5) * (hi - lo) / d_hidden
    slope = torch.where(d % 2 == 0, 1.0, -1.0) / (hi - lo)
    with torch.no_grad():
        net.theta.copy_(slope[:, None])
        net.theta_0.copy_(-slope * joint)  # θ_d0 + θ_d1 x_d = 0 at the joint
        # φ by least squares on [1, h_1 .. h_D]  (fixed joints: a linear model)
        act = net.forward_with_activations(x[:, None]).act  # (N, D)
        design = torch.cat([torch.ones_like(x)[:, None], act], dim=1)  # (N, D+1)
        sol = torch.linalg.lstsq(design, y[:, None], driver="gelsd").solution[:, 0]  # (D+1,)
        net.phi_0.copy_(sol[:1])
        net.phi.copy_(sol[None, 1:])

    if steps:
        opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=steps, history_size=50,
                                tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (net(x[:, None])[:, 0] - y).pow(2).mean()
            loss.backward()
            return loss

        opt.step(closure)
    return net
