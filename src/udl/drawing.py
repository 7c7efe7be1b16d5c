"""Drawing primitives for the gallery's diagrams: cells, grids of numbers, boxes, nodes, arrows.

The diagrams of chapters 3, 10, 11 and 12 (networks as nodes and arrows, convolutions
as rows of cells, matrices as grids of numbers, layers as boxes) are drawn in data
coordinates on an ordinary matplotlib axis, with the palette of :mod:`udl.style`.
Every function adds artists to ``ax`` and returns what it added, so that a figure can
restyle one piece and a test can count them.

Layers, back to front: region boxes (``zorder`` 0), links and arrows (1), cells and
boxes (2), nodes (3), text (3 and above).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from matplotlib.colors import is_color_like, to_rgb
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

__all__ = ["light", "frame", "image", "mosaic", "cell", "grid", "value_faces", "box", "node", "arrow"]

_LABEL_BOX = dict(fc="white", ec="none", pad=0.3)  # a white patch behind a label that sits on a line


def light(color, amount: float) -> tuple[float, float, float]:
    """``color`` mixed with white: ``amount`` 0 is white, 1 the full colour (clipped to [0, 1]).

    Example::

        >>> light("black", 0.25)
        (0.75, 0.75, 0.75)
    """
    t = float(np.clip(amount, 0, 1))
    return tuple(float(1 - t * (1 - c)) for c in to_rgb(color))


def frame(ax, xlim, ylim) -> None:
    """A diagram's canvas: the given limits, equal scales on both axes, no axis lines or ticks."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


def image(ax, pixels, title: str | None = None, *, sized: bool = False, fontsize: float = 8, **imshow):
    """An image panel: ``pixels`` drawn by ``ax.imshow``, without ticks, under ``title``.

    Args:
        pixels: an (H, W) array or an (H, W, 3) RGB image.
        title: the panel's title; None for none.
        sized: append the image's size, "title (HxW)", as the pooling figures of chapter 10 do.
        fontsize: the title's size.
        **imshow: passed on to ``ax.imshow`` (``cmap``, ``vmin``, ``vmax``, ``interpolation``, ...).

    Returns:
        The ``AxesImage``.
    """
    shown = ax.imshow(pixels, **imshow)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        height, width = np.shape(pixels)[:2]
        ax.set_title(f"{title} ({height}x{width})" if sized else title, fontsize=fontsize)
    return shown


def mosaic(images, rows: int, cols: int, *, gap: int = 1) -> np.ndarray:
    """``rows x cols`` small images in one array, row by row, ``gap`` pixels of NaN between them.

    ``imshow`` draws NaN as its colour map's "bad" colour, so the gaps take the background
    (``plt.get_cmap("gray_r").with_extremes(bad="white")``). Cells after the last image stay NaN.

    Args:
        images: ``(N, H, W)``, ``(N, 1, H, W)``, or ``(N, D)`` flat square images (D = S², e.g.
            udl's 8x8 digits as 64 values); a NumPy array or a tensor.
        rows, cols: the layout; the first ``rows * cols`` images are placed.
        gap: pixels between neighbours. Default: 1.

    Returns:
        float64 array ``(rows (H + gap) − gap, cols (W + gap) − gap)``.

    Example::

        >>> mosaic(np.zeros((3, 64)), 2, 2).shape
        (17, 17)
    """
    x = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=np.float64)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"The 'images' parameter of mosaic must be (N, H, W), (N, 1, H, W) or (N, S*S). "
                             f"Got shape {x.shape} instead.")
        x = x.reshape(len(x), side, side)
    if x.ndim != 3:
        raise ValueError(f"The 'images' parameter of mosaic must be (N, H, W), (N, 1, H, W) or (N, S*S). "
                         f"Got shape {x.shape} instead.")
    for name, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"The '{name}' parameter of mosaic must be a positive int. Got {value!r} instead.")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"The 'gap' parameter of mosaic must be a non-negative int. Got {gap!r} instead.")
    h, w = x.shape[1:]
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i, img in enumerate(x[:rows * cols]):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    return out


def _text_of(value, fmt) -> str:
    """``value`` formatted by ``fmt`` (a format string or a function), without a negative zero ("-0.0")."""
    text = fmt(value) if callable(fmt) else fmt.format(value)
    if text.startswith("-"):
        try:
            if float(text) == 0:
                return text[1:]
        except ValueError:
            pass
    return text


def cell(ax, x, y, text: str = "", *, face="white", edge="black", ls="-", size: float = 0.84, lw: float = 0.9,
         fontsize: float = 8, zorder: float = 2) -> Rectangle:
    """One square cell of side ``size`` centred at ``(x, y)``, with ``text`` in it (none when empty).

    Returns:
        The square (its text, if any, is the last of ``ax.texts``).
    """
    square = Rectangle((x - size / 2, y - size / 2), size, size, facecolor=face, edgecolor=edge, lw=lw, ls=ls,
                       zorder=zorder)
    ax.add_patch(square)
    if text != "":
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=zorder + 1)
    return square


def value_faces(values, color=None, vmax: float | None = None) -> np.ndarray:
    """A face colour per entry of a matrix, from its value: a heat map drawn as cells.

    With ``color``, shades of it by magnitude, ``light(color, 0.1 + 0.8 |v| / vmax)``;
    without, red above zero and blue below (``RdBu_r``, white at zero).

    Args:
        values: a 2D array (a 1D one is one row).
        color: the colour of the largest magnitude, or None for signed colours.
        vmax: the magnitude of the strongest colour. Default: the largest |value| (1 if all are 0).

    Returns:
        An object array of the values' shape holding one RGB(A) tuple per entry.
    """
    import matplotlib

    values = np.atleast_2d(np.asarray(values, dtype=float))
    vmax = vmax or (float(np.abs(values).max()) or 1.0)
    signed = matplotlib.colormaps["RdBu_r"]
    faces = np.empty(values.shape, dtype=object)
    for index, v in np.ndenumerate(values):
        faces[index] = light(color, 0.1 + 0.8 * abs(v) / vmax) if color is not None \
            else signed(0.5 + 0.5 * float(np.clip(v / vmax, -1, 1)) * 0.8)
    return faces


def _at(setting, i: int, j: int, is_one: Callable):
    """``setting`` when it is one value for every cell, else its entry ``[i][j]``."""
    return setting if is_one(setting) else setting[i][j]


def grid(ax, values=None, origin=(0.0, 0.0), *, faces=None, edges="black", styles="-",
         fmt: str | Callable | None = "{:g}", step: float = 1.0, size: float | None = None, lw: float = 0.9, fontsize: float = 8, color=None,
         vmax: float | None = None) -> list[Rectangle]:
    """A matrix drawn as cells, row 0 at the top: entry ``[i, j]`` is centred at ``origin + (j, -i) · step``.

    Args:
        values: the numbers, a 2D array (a 1D one is one row); None for empty cells,
            whose number is then the shape of ``faces``.
        origin: the centre of cell ``[0, 0]``.
        faces: one colour for every cell, or a colour per cell (a 2D array or nested
            lists). Default: from the values, :func:`value_faces` with ``color`` and ``vmax``.
        edges: the cells' edge colour, one or per cell. Default black.
        styles: the edges' line style, one or per cell. Default solid.
        fmt: how a value becomes text: a format string (``"{:.2f}"``) or a function;
            None writes no numbers. A negative zero is written without its sign.
        step: the distance between neighbouring cells' centres. Default 1.
        size: the side of a cell. Default ``step`` (the cells touch).
        lw: the edges' width. fontsize: the numbers' size.
        color, vmax: the heat map of the default ``faces``.

    Returns:
        The squares, row by row.
    """
    values = None if values is None else np.atleast_2d(np.asarray(values))
    if values is None and faces is None:
        raise ValueError("The 'faces' parameter of grid must be given when values is None. Got None instead.")
    if faces is None:
        faces = value_faces(values, color, vmax)
    rows, cols = values.shape if values is not None else np.shape(faces)[:2]
    size = step if size is None else size
    squares = []
    for i in range(rows):
        for j in range(cols):
            text = "" if values is None or fmt is None else _text_of(float(values[i, j]), fmt)
            squares.append(cell(ax, origin[0] + j * step, origin[1] - i * step, text,
                                face=_at(faces, i, j, is_color_like), edge=_at(edges, i, j, is_color_like),
                                ls=_at(styles, i, j, lambda s: isinstance(s, str)), size=size, lw=lw,
                                fontsize=fontsize))
    return squares


def box(ax, x, y, width: float, height: float, text: str = "", *, face="white", edge="none", lw: float = 0.8,
        boxstyle: str | None = None, alpha: float | None = None, zorder: float = 1, fontsize: float = 7,
        color="black", weight="normal", rotation: float = 0):
    """A ``width`` x ``height`` box centred at ``(x, y)`` with ``text`` centred in it.

    Args:
        face, edge, lw: the box's fill, edge colour and edge width.
        boxstyle: None for a sharp rectangle, or a matplotlib box style such as
            ``"round,pad=0.02,rounding_size=0.1"`` (drawn around the same rectangle).
        alpha: the box's opacity (not the text's). Default opaque.
        zorder: the box's layer (the text is drawn above, at matplotlib's default 3).
        fontsize, color, weight, rotation: the text's.

    Returns:
        The box patch (a ``Rectangle``, or a ``FancyBboxPatch`` with a ``boxstyle``).
    """
    corner = (x - width / 2, y - height / 2)
    if boxstyle is None:
        patch = Rectangle(corner, width, height, facecolor=face, edgecolor=edge, lw=lw, alpha=alpha, zorder=zorder)
    else:
        patch = FancyBboxPatch(corner, width, height, boxstyle=boxstyle, facecolor=face, edgecolor=edge, lw=lw,
                               alpha=alpha, zorder=zorder)
    ax.add_patch(patch)
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=color, weight=weight,
                rotation=rotation)
    return patch


def node(ax, xy, text: str = "", *, r: float = 0.2, face="white", edge="black", lw: float = 1.0,
         fontsize: float = 9, color="black", zorder: float = 3) -> Circle:
    """A circle of radius ``r`` centred at ``xy`` with ``text`` in it: a unit of a network diagram."""
    circle = Circle(xy, r, facecolor=face, edgecolor=edge, lw=lw, zorder=zorder)
    ax.add_patch(circle)
    if text:
        ax.text(*xy, text, ha="center", va="center", fontsize=fontsize, color=color, zorder=zorder + 1)
    return circle


def arrow(ax, start, end, *, color="black", lw: float = 1.0, ls="-", trim: float = 0.0, head: float = 8,
          arrowstyle: str = "-|>", rad: float = 0.0, zorder: float = 1, text: str | None = None,
          fontsize: float = 7) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end``, optionally labelled at its middle.

    Args:
        color, lw, ls: the line's colour, width and style.
        trim: shorten both ends by this distance along the line (the radius of the
            :func:`node` s it joins, so that it meets their edges). Default 0.
        head: the size of the arrow head (matplotlib's ``mutation_scale``). Default 8.
        arrowstyle: matplotlib's arrow style. Default ``"-|>"``, a filled head.
        rad: bend: the curvature of an ``arc3`` connection (0 is straight).
        zorder: its layer. Default 1, below cells and boxes.
        text: a label on a white patch at the arrow's middle, in ``color``.
        fontsize: the label's size.

    Returns:
        The arrow patch.
    """
    (x0, y0), (x1, y1) = start, end
    if trim:
        length = float(np.hypot(x1 - x0, y1 - y0))
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        start, end = (x0 + trim * ux, y0 + trim * uy), (x1 - trim * ux, y1 - trim * uy)
    patch = FancyArrowPatch(start, end, arrowstyle=arrowstyle, mutation_scale=head, color=color, lw=lw, ls=ls,
                            zorder=zorder, connectionstyle=f"arc3,rad={rad}")
    ax.add_patch(patch)
    if text:
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, text, ha="center", va="center", fontsize=fontsize, color=color,
                zorder=4, bbox=_LABEL_BOX)
    return patch
