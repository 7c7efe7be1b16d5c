"""udl: *Understanding Deep Learning* (S. J. D. Prince, MIT Press 2023), executable.

Every figure of the book is a real computation with udl's library code, a picture
and a list of measured claims::

    import udl
    r = udl.figure("3.5", preset="tiny")   # compute (or reuse the cache) and check
    r.metrics, r.checks, r.ok
    r.plot()                                # a matplotlib Figure (shown in Jupyter)
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make small networks up to 20x slower when the
# cores are shared (a gallery with --jobs, a busy laptop); passive waiting costs nothing
# otherwise. Takes effect when udl is imported before torch; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def figure(fig_id: str, preset: str = "full", *, seed: int = 0, device: str = "auto",
           cache: bool = True, **params):
    """Compute figure ``fig_id`` and measure its checks; keyword ``params`` override the preset.

    Example: ``udl.figure("3.5", preset="tiny", seed=1).plot()``.
    See :func:`udl.runner.run_figure`.
    """
    from udl.runner import run_figure

    return run_figure(fig_id, preset, seed=seed, device=device, overrides=params, cache=cache)


def figures() -> list[str]:
    """The ids of every registered figure, in book order."""
    from udl.registry import load_all

    return list(load_all())

