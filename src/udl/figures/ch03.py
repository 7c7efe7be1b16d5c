"""Chapter 3: shallow neural networks."""

from __future__ import annotations

import numpy as np
import torch

from udl import style
from udl.nn.activations import relu
from udl.registry import Check, Result, figure


@figure("3.1", title="The rectified linear unit",
        caption="ReLU clips negative inputs to zero and passes positive inputs through "
                "unchanged. Evaluated with udl's ReLU on a grid and compared with torch.relu.",
        params={"tiny": dict(n=201, span=5.0), "full": dict(n=2001, span=5.0)})
def relu_curve(p, run):
    z = torch.linspace(-p.span, p.span, p.n, dtype=torch.float64)
    a = relu(z)
    negative, positive = z < 0, z >= 0
    return Result(
        metrics={"max_abs_diff_torch": (a - torch.relu(z)).abs().max().item(),
                 "max_abs_negative": a[negative].abs().max().item(),
                 "max_abs_identity_error": (a[positive] - z[positive]).abs().max().item()},
        arrays={"z": z.numpy(), "a": a.numpy()})


@relu_curve.plot
def _(r):
    fig, ax = style.subplots()
    ax.plot(r.arrays["z"], r.arrays["a"], color=style.MODEL, lw=2)
    ax.axhline(0, color=style.REGION, lw=0.8)
    ax.axvline(0, color=style.REGION, lw=0.8)
    ax.set(xlabel="input z", ylabel="ReLU[z]", title="ReLU", aspect="equal")
    return fig


@relu_curve.checks
def _(r):
    m = r.metrics
    return [Check.close("udl's ReLU equals torch.relu", m["max_abs_diff_torch"], 0.0, 0.0),
            Check.close("zero for every negative input", m["max_abs_negative"], 0.0, 0.0),
            Check.close("identity for every non-negative input", m["max_abs_identity_error"], 0.0, 0.0)]
