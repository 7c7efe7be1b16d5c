"""udl.drawing: each primitive adds the artists it promises, where it promises them."""

import matplotlib.pyplot as plt  # headless: tests/conftest.py selects the Agg backend
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

from udl import drawing


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_light_mixes_with_white():
    assert drawing.light("black", 0.25) == (0.75, 0.75, 0.75)
    assert drawing.light("#FF0000", 1.0) == (1.0, 0.0, 0.0)
    assert drawing.light("#FF0000", 0.0) == (1.0, 1.0, 1.0)
    assert drawing.light("black", 7) == (0.0, 0.0, 0.0)  # clipped to the full colour


def test_frame_sets_limits_equal_aspect_and_hides_the_axis(ax):
    drawing.frame(ax, (-1, 3), (0, 2))
    assert ax.get_xlim() == (-1, 3) and ax.get_ylim() == (0, 2)
    assert ax.get_aspect() == 1.0 and not ax.axison


def test_image_has_no_ticks_and_can_give_its_size_in_the_title(ax):
    pixels = np.arange(12.0).reshape(3, 4)
    shown = drawing.image(ax, pixels, "photo", sized=True, cmap="gray", vmin=0, vmax=11)
    assert list(ax.images) == [shown] and shown.get_array().shape == (3, 4)
    assert shown.get_clim() == (0, 11) and shown.get_cmap().name == "gray"
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert ax.get_title() == "photo (3x4)" and ax.title.get_fontsize() == 8
    drawing.image(ax, np.zeros((2, 5, 3)), "rgb", fontsize=9)
    assert ax.get_title() == "rgb" and ax.title.get_fontsize() == 9


def test_cell_is_a_centred_square_with_its_text_above_it(ax):
    square = drawing.cell(ax, 2.0, 3.0, "7", face="red", size=0.5)
    assert isinstance(square, Rectangle) and square in ax.patches
    assert (square.get_x(), square.get_y(), square.get_width(), square.get_height()) == (1.75, 2.75, 0.5, 0.5)
    assert square.get_facecolor() == to_rgba("red")
    (text,) = ax.texts
    assert text.get_text() == "7" and text.get_position() == (2.0, 3.0) and text.zorder > square.zorder
    drawing.cell(ax, 0, 0)  # no text: no text artist
    assert len(ax.texts) == 1


def test_grid_places_row_zero_at_the_top_and_formats_the_numbers(ax):
    values = np.array([[1.0, -0.0], [2.5, -3.25]])
    squares = drawing.grid(ax, values, (10.0, 5.0), faces="white", fmt="{:.1f}", step=2.0, size=1.5)
    assert len(squares) == 4 and len(ax.patches) == 4
    centres = [(s.get_x() + s.get_width() / 2, s.get_y() + s.get_height() / 2) for s in squares]
    assert centres == [(10.0, 5.0), (12.0, 5.0), (10.0, 3.0), (12.0, 3.0)]
    assert all(s.get_width() == 1.5 for s in squares)
    assert [t.get_text() for t in ax.texts] == ["1.0", "0.0", "2.5", "-3.2"]  # no "-0.0"


def test_grid_takes_one_setting_or_one_per_cell(ax):
    faces = np.array([["red", "blue"]], dtype=object)
    squares = drawing.grid(ax, None, faces=faces, edges="green", styles=[["-", "--"]])
    assert [s.get_facecolor() for s in squares] == [to_rgba("red"), to_rgba("blue")]
    assert all(s.get_edgecolor() == to_rgba("green") for s in squares)
    assert [s.get_linestyle() for s in squares] == ["-", "--"]
    assert not ax.texts  # no values, no numbers
    with pytest.raises(ValueError, match="'faces' parameter of grid"):
        drawing.grid(ax, None)


def test_value_faces_shade_by_magnitude_or_sign():
    faces = drawing.value_faces([[0.0, 1.0, -2.0]], "black", vmax=2.0)
    assert faces.shape == (1, 3)
    assert faces[0, 0] == drawing.light("black", 0.1) and faces[0, 2] == drawing.light("black", 0.9)
    signed = drawing.value_faces([[0.0, 1.0, -1.0]])
    assert signed[0, 0][:3] == pytest.approx((0.97, 0.97, 0.97), abs=0.02)  # white-ish at zero
    assert signed[0, 1][0] > signed[0, 1][2] and signed[0, 2][2] > signed[0, 2][0]  # red above, blue below


def test_box_sharp_or_rounded_with_centred_text(ax):
    sharp = drawing.box(ax, 1.0, 2.0, 4.0, 1.0, "layer", face="yellow", alpha=0.5)
    assert isinstance(sharp, Rectangle) and (sharp.get_x(), sharp.get_y()) == (-1.0, 1.5)
    assert sharp.get_alpha() == 0.5
    rounded = drawing.box(ax, 0.0, 0.0, 2.0, 2.0, boxstyle="round,pad=0.1", zorder=0)
    assert isinstance(rounded, FancyBboxPatch) and rounded.zorder == 0
    assert [t.get_text() for t in ax.texts] == ["layer"] and ax.texts[0].get_position() == (1.0, 2.0)
    assert ax.texts[0].get_alpha() is None  # the text stays opaque


def test_node_is_a_circle_with_its_label(ax):
    circle = drawing.node(ax, (1.0, 2.0), "$h_1$", r=0.3, face="red")
    assert isinstance(circle, Circle) and circle.center == (1.0, 2.0) and circle.radius == 0.3
    assert ax.texts[0].get_text() == "$h_1$" and ax.texts[0].zorder > circle.zorder


def test_arrow_is_trimmed_to_the_nodes_and_labelled_at_its_middle(ax):
    patch = drawing.arrow(ax, (0.0, 0.0), (3.0, 4.0), trim=0.5, text="w", head=9)
    assert isinstance(patch, FancyArrowPatch) and patch in ax.patches
    (x0, y0), (x1, y1) = patch._posA_posB
    assert (x0, y0) == pytest.approx((0.3, 0.4)) and (x1, y1) == pytest.approx((2.7, 3.6))  # 0.5 along the unit line
    assert patch.get_mutation_scale() == 9
    assert ax.texts[0].get_text() == "w" and ax.texts[0].get_position() == (1.5, 2.0)


def test_mosaic_places_images_row_by_row_with_nan_gaps():
    images = np.arange(3 * 4, dtype=float).reshape(3, 2, 2)  # three 2x2 images
    out = drawing.mosaic(images, 2, 2)
    assert out.shape == (5, 5)
    np.testing.assert_array_equal(out[0:2, 0:2], images[0])
    np.testing.assert_array_equal(out[0:2, 3:5], images[1])
    np.testing.assert_array_equal(out[3:5, 0:2], images[2])
    assert np.isnan(out[2]).all() and np.isnan(out[:, 2]).all() and np.isnan(out[3:5, 3:5]).all()  # gaps, empty cell
    flat = drawing.mosaic(np.ones((2, 64)), 1, 2, gap=0)  # udl's digits, flat
    assert flat.shape == (8, 16) and (flat == 1).all()
    np.testing.assert_array_equal(drawing.mosaic(images[:, None], 2, 2), out)  # (N, 1, H, W)


@pytest.mark.parametrize("images, rows, cols, gap", [(np.zeros((2, 5)), 1, 2, 1), (np.zeros(4), 1, 1, 1),
                                                      (np.zeros((2, 2, 2)), 0, 1, 1), (np.zeros((2, 2, 2)), 1, 1, -1)])
def test_mosaic_refuses_bad_input_in_one_line(images, rows, cols, gap):
    with pytest.raises(ValueError, match=r"parameter of mosaic must be .*\. Got .* instead\.$"):
        drawing.mosaic(images, rows, cols, gap=gap)
