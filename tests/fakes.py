"""Figures made for the tests of the registry, cache, CLI and gallery."""

import contextlib

import numpy as np

from udl import style
from udl.registry import REGISTRY, Check, Limit, Result, figure

CALLS = {"count": 0}


def _register():
    @figure("99.square", title="Squares", caption="Squares of a seeded sample.",
            params={"tiny": dict(n=5, scale=1.0, flag=False, name="a", sizes=[1, 2]),
                    "full": dict(n=50, scale=1.0, flag=False, name="a", sizes=[1, 2])},
            limits={"n": (1, 1000), "scale": (0.0, 10.0), "sizes": Limit(1, 8, max_len=4),
                    "name": Limit(choices=("a", "b"))})
    def square(p, run):
        CALLS["count"] += 1
        x = run.rng.normal(size=p.n) * p.scale
        return Result(metrics={"n": p.n, "mean_square": float(np.mean(x ** 2)), "first": float(x[0])},
                      arrays={"x": x})

    @square.plot
    def _(r):
        fig, ax = style.subplots()
        ax.plot(r.arrays["x"] ** 2, color=style.MODEL)
        return fig

    @square.checks
    def _(r):
        return [Check.greater("squares are non-negative", r.metrics["mean_square"], -1e-12),
                Check.untested("the mean square grows with the scale", "needs runs at several scales")]

    @figure("99.broken", title="Broken", caption="Raises.", params={"tiny": {}, "full": {}})
    def broken(p, run):
        raise RuntimeError("this figure is broken on purpose")

    @broken.checks
    def _(r):
        return [Check.holds("never reached", True, True)]

    @figure("99.false", title="False claim", caption="A check that fails.", params={"tiny": {}, "full": {}})
    def false_claim(p, run):
        return Result(metrics={"value": 1.0})

    @false_claim.plot
    def _(r):
        return style.subplots()[0]

    @false_claim.checks
    def _(r):
        return [Check.close("value is two", r.metrics["value"], 2.0, 0.1)]


@contextlib.contextmanager
def fake_figures():
    """Register the fake figures for the duration of a test."""
    _register()
    try:
        yield
    finally:
        for key in ("99.square", "99.broken", "99.false"):
            REGISTRY.pop(key, None)
