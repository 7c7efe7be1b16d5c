"""The book's palette and a consistent look for every figure.

Orange is data, cyan is the model, black is the truth, gray marks regions. Figures
call :func:`subplots` (or :func:`apply`) so that every picture in the gallery reads
the same way.
"""

from __future__ import annotations

import matplotlib

import matplotlib.pyplot as plt

DATA = "#F28C28"  # orange: observed data points
MODEL = "#1FB5C9"  # cyan: the model's output
TRUTH = "#000000"  # black: the true function / ground truth
REGION = "#BDBDBD"  # gray: regions, bands, background structure
EXTRA = ("#7B4EA3", "#2E7D32", "#C62828", "#1565C0")  # further series, when one colour is not enough
CMAP = "viridis"  # densities and images

RC = {
    "figure.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=[MODEL, DATA, TRUTH, *EXTRA]),
    "legend.frameon": False,
    "savefig.facecolor": "white",
}


def subplots(nrows: int = 1, ncols: int = 1, *, width: float = 3.2, height: float = 2.8, **kwargs):
    """``plt.subplots`` with the book's style and ``width x height`` inches per panel."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                                 layout="constrained", **kwargs)
    return fig, axes


def panel_labels(axes, start: str = "a") -> None:
    """Label panels a), b), c) ... in their top-left corners, as the book does."""
    for i, ax in enumerate(getattr(axes, "flat", [axes])):
        ax.set_title(f"{chr(ord(start) + i)})", loc="left", fontweight="bold")
