"""The book's figure and widget helpers: they draw what they say, and the explorers react."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from course_lib import plots, widgets

X = np.arange(1, 26).reshape(5, 5)
KERNEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _reference_correlation(x, w, stride, padding):
    padded = np.pad(x.astype(float), padding)
    kh, kw = w.shape
    out_h = (padded.shape[0] - kh) // stride + 1
    out_w = (padded.shape[1] - kw) // stride + 1
    result = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[i * stride : i * stride + kh, j * stride : j * stride + kw]
            result[i, j] = (patch * w).sum()
    return result


def test_show_grid_writes_every_value_in_its_cell():
    values = np.array([[1, 2.5, 3], [4, 5, -6]])
    fig = plots.show_grid(values, title="t", highlight=(0, 1, 2, 2))
    ax = fig.axes[0]
    images = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    assert len(images) == 1
    np.testing.assert_array_equal(images[0].get_array(), values)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1", "2.50", "3", "4", "5", "-6"]
    positions = [t.get_position() for t in ax.texts]
    assert positions[1] == (1, 0) and positions[5] == (2, 1)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 1
    assert boxes[0].get_xy() == (0.5, -0.5)
    assert (boxes[0].get_width(), boxes[0].get_height()) == (2, 2)
    assert ax.get_title() == "t"


def test_show_grid_accepts_tensors_and_masks_cells():
    fig = plots.show_grid(
        torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        masked=np.array([[False, True], [True, True]]),
        fmt="{:.1f}",
    )
    assert [t.get_text() for t in fig.axes[0].texts] == ["1.0"]


def test_show_grid_rejects_non_2d_input():
    with pytest.raises(ValueError, match=r"2 dims \(H, W\), got shape \(2, 2, 2\)"):
        plots.show_grid(np.zeros((2, 2, 2)))


def test_show_grids_draws_one_panel_per_array_and_the_separators():
    fig = plots.show_grids(
        [X, KERNEL, np.zeros((3, 3))], ["input", "kernel", "output"], separators=["⋆", "="]
    )
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["input", "kernel", "output"]
    assert len(fig.axes[0].texts) == 25 + 1  # the values, then the separator
    assert fig.axes[0].texts[-1].get_text() == "⋆"
    assert fig.axes[1].texts[-1].get_text() == "="
    with pytest.raises(ValueError, match="separators"):
        plots.show_grids([X, KERNEL], separators=["a", "b"])


def test_feature_map_grid_one_panel_per_map():
    maps = np.random.default_rng(0).normal(size=(5, 6, 6))
    fig = plots.feature_map_grid(maps, [f"map {k}" for k in range(5)], ncols=3)
    assert len(fig.axes) == 5
    np.testing.assert_allclose(fig.axes[4].images[0].get_array(), maps[4])
    assert fig.axes[2].get_title() == "map 2"
    with pytest.raises(ValueError, match="3 dims"):
        plots.feature_map_grid(np.zeros((4, 4)))


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (3, 0), (2, 2)])
def test_sliding_window_output_is_cross_correlation(stride, padding):
    x = np.random.default_rng(1).integers(-5, 6, size=(6, 7))
    padded, output, corners = plots.sliding_window_output(x, KERNEL, stride=stride, padding=padding)
    expected = _reference_correlation(x, KERNEL, stride, padding)
    np.testing.assert_allclose(output, expected)
    assert padded.shape == (6 + 2 * padding, 7 + 2 * padding)
    assert len(corners) == output.size
    assert corners[1] == (0, stride)


def test_sliding_window_output_pooling_modes():
    _, out_max, _ = plots.sliding_window_output(X, kernel_size=2, stride=2, mode="max")
    np.testing.assert_array_equal(out_max, [[7, 9], [17, 19]])
    _, out_avg, _ = plots.sliding_window_output(X, kernel_size=2, stride=2, mode="avg")
    np.testing.assert_array_equal(out_avg, [[4, 6], [14, 16]])
    with pytest.raises(ValueError, match="kernel_size"):
        plots.sliding_window_output(X, mode="max")
    with pytest.raises(ValueError, match="does not fit"):
        plots.sliding_window_output(np.ones((2, 2)), KERNEL)


def test_sliding_window_animation_has_one_frame_per_output_cell():
    anim = plots.sliding_window_animation(X, KERNEL, stride=2)
    html = plots.animation_html(anim)
    # 5x5 input, 3x3 kernel, stride 2: a 2x2 output, so 4 frames embedded as PNG images
    assert html.count("data:image/png;base64") == 4
    assert "<script" in html
    last_caption = anim._fig.texts[0].get_text()
    assert last_caption.endswith(f"= {int(_reference_correlation(X, KERNEL, 2, 0)[1, 1])}")


def test_sliding_window_animation_for_pooling():
    anim = plots.sliding_window_animation(X, kernel_size=2, stride=2, mode="max")
    assert plots.animation_html(anim).count("data:image/png;base64") == 4


def test_output_grid_figure_marks_one_dot_per_output_cell():
    fig = plots.output_grid_figure(7, 3, stride=2, padding=1)
    ax = fig.axes[0]
    assert len(ax.lines) == 4 * 4  # floor((7 + 2 - 3) / 2) + 1 = 4 per side
    assert "output 4×4" in ax.get_title()
    dilated = plots.output_grid_figure(9, 3, stride=3, dilation=2)
    assert "output 2×2" in dilated.axes[0].get_title()
    assert "1 unused" in dilated.axes[0].get_title()
    with pytest.raises(ValueError, match="does not fit"):
        plots.output_grid_figure(3, 5)


def test_conv_explorer_updates_image_and_label_on_change():
    explorer = widgets.conv_explorer(X, KERNEL)
    assert set(explorer.controls) == {"step", "stride", "padding"}
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
    expected = _reference_correlation(X, KERNEL, 1, 0)
    assert explorer.label.value.endswith(f"<b>{expected[0, 0]:g}</b>")
    assert explorer.controls["step"].max == 8
    first_image = explorer.image.value
    explorer.controls["step"].value = 4
    assert explorer.label.value.startswith("output[1, 1]")
    assert explorer.label.value.endswith(f"<b>{expected[1, 1]:g}</b>")
    assert explorer.image.value != first_image
    explorer.controls["padding"].value = 1
    assert explorer.controls["step"].max == 24
    assert isinstance(explorer.box, ipywidgets.VBox)


def test_output_size_explorer_writes_the_formula_result():
    explorer = widgets.output_size_explorer(input_size=7, kernel_size=3)
    assert explorer.label.value.endswith("<b>5</b>")
    explorer.controls["stride"].value = 3
    assert explorer.label.value.endswith("<b>2</b>")
    explorer.controls["padding"].value = 2
    assert explorer.label.value.endswith("<b>3</b>")  # floor((7 + 4 - 3) / 3) + 1
    explorer.controls["input_size"].value = 1
    explorer.controls["padding"].value = 0
    assert "does not fit" in explorer.label.value


def test_feature_map_explorer_switches_kernels_and_relu():
    image = np.zeros((8, 8))
    image[:, 4:] = 1.0
    kernels = {
        "right edge": np.array([[-1.0, 0.0, 1.0]] * 3),
        "left edge": np.array([[1.0, 0, -1]] * 3),
    }
    explorer = widgets.feature_map_explorer(image, kernels)
    positive = float(explorer.label.value.split("<b>")[1].split("</b>")[0])
    assert positive > 0
    explorer.controls["kernel"].value = "left edge"
    explorer.controls["relu"].value = False
    negative = float(explorer.label.value.split("<b>")[1].split("</b>")[0])
    assert negative < 0
