"""Interactive explorers for JupyterLab (ipywidgets).

Each explorer is an :class:`Explorer`: sliders or drop-downs (``controls``), an image that is
redrawn with matplotlib whenever a control changes (``image``, PNG bytes) and a line of text
(``label``, HTML). Put it last in a cell to display it. It works without a running kernel too
(the figure is rendered to PNG in Python), which is what lets the tests drive it, and a book build
that executes the cell just stores a widget view that the website does not need.

- :func:`conv_explorer`: step the kernel over the input and watch the output fill in;
- :func:`output_size_explorer`: move input size, kernel size, padding, stride (and dilation) and
  see the grid of windows and the output size;
- :func:`feature_map_explorer`: pick a kernel and see the feature map it produces on an image.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from scipy.signal import correlate2d

from ._validate import check_int, window_output_size
from .plots import (
    output_grid_figure,
    show_grid,
    sliding_window_output,
    to_numpy,
)

__all__ = [
    "Explorer",
    "conv_explorer",
    "output_size_explorer",
    "feature_map_explorer",
    "figure_png",
]


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


class Explorer:
    """Controls, an image redrawn on every change, and a text label, laid out in a ``VBox``.

    controls: name -> ipywidget (slider, drop-down ...); changing any of them calls ``update``.
    image: ``ipywidgets.Image`` with the current figure as PNG bytes.
    label: ``ipywidgets.HTML`` with a line of text about the current state.
    box: the ``ipywidgets.VBox`` that is displayed.
    draw: ``draw(**values) -> (Figure, str)``, called with the controls' current values.
    """

    def __init__(
        self,
        controls: Mapping[str, widgets.ValueWidget],
        draw: Callable[..., tuple[Figure, str]],
        *,
        dpi: int = 110,
    ) -> None:
        self.controls = dict(controls)
        self.draw = draw
        self.dpi = dpi
        # Shown at its own size (a VBox would stretch it to the full width and blur it), but
        # never wider than the notebook.
        self.image = widgets.Image(
            format="png",
            layout=widgets.Layout(width="auto", max_width="100%", align_self="flex-start"),
        )
        self.label = widgets.HTML()
        self.box = widgets.VBox(
            [widgets.HBox(list(self.controls.values())), self.label, self.image]
        )
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self) -> None:
        """Redraw the figure and the label from the controls' current values."""
        fig, text = self.draw(**self.values())
        self.image.value = figure_png(fig, dpi=self.dpi)
        self.label.value = text

    def _on_change(self, change: Mapping[str, Any]) -> None:
        self.update()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


def _int_slider(description: str, value: int, low: int, high: int) -> widgets.IntSlider:
    return widgets.IntSlider(
        value=value,
        min=low,
        max=high,
        step=1,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="220px"),
    )


def conv_explorer(
    x: Any,
    kernel: Any,
    *,
    stride: int = 1,
    padding: int = 0,
) -> Explorer:
    """Step a kernel over a 2-D input and watch the output (cross-correlation) fill in.

    x: (H, W) input; kernel: (kH, kW). ``stride`` and ``padding`` are the starting values of
    their sliders. A ``step`` slider picks the output cell (row-major); the figure shows the
    padded input with the window, the kernel, and the output computed up to that cell; the label
    writes the sum of products for the current cell.

    Returns the :class:`Explorer`; its controls are ``step``, ``stride`` and ``padding``.
    """
    stride = check_int(stride, "stride", minimum=1)
    padding = check_int(padding, "padding", minimum=0)
    image = to_numpy(x).astype(float)
    weights = to_numpy(kernel).astype(float)
    if image.ndim != 2 or weights.ndim != 2:
        raise ValueError(
            f"expected x and kernel with 2 dims (H, W), got shapes {image.shape} and "
            f"{weights.shape}"
        )
    max_padding = max(weights.shape) - 1
    controls = {
        "step": _int_slider("output cell", 0, 0, 0),
        "stride": _int_slider("stride", stride, 1, 3),
        "padding": _int_slider("padding", padding, 0, max(max_padding, padding)),
    }

    def draw(step: int, stride: int, padding: int) -> tuple[Figure, str]:
        padded, output, corners = sliding_window_output(
            image, weights, stride=stride, padding=padding
        )
        slider = controls["step"]
        if slider.max != len(corners) - 1:
            slider.max = len(corners) - 1
        step = min(step, len(corners) - 1)
        r, c = corners[step]
        i, j = divmod(step, output.shape[1])
        fig, axes = plt.subplots(
            1,
            3,
            figsize=(0.4 * (padded.shape[1] + weights.shape[1] + output.shape[1]) + 2.0, 3.2),
            gridspec_kw={"width_ratios": [padded.shape[1], weights.shape[1], output.shape[1]]},
        )
        show_grid(padded, axes[0], title="input", highlight=(r, c, *weights.shape))
        show_grid(weights, axes[1], title="kernel", cmap="Oranges")
        hidden = np.ones(output.shape, dtype=bool)
        hidden.ravel()[: step + 1] = False
        show_grid(
            output,
            axes[2],
            title=f"output {output.shape[0]}×{output.shape[1]}",
            cmap="Greens",
            masked=hidden,
            highlight=(i, j, 1, 1),
            vmin=float(output.min()),
            vmax=float(output.max()),
        )
        window = padded[r : r + weights.shape[0], c : c + weights.shape[1]]
        terms = " + ".join(
            f"{a:g}·{b:g}" for a, b in zip(window.ravel(), weights.ravel(), strict=True)
        )
        text = f"output[{i}, {j}] = {terms} = <b>{output[i, j]:g}</b>"
        return fig, text

    return Explorer(controls, draw)


def output_size_explorer(
    input_size: int = 7,
    kernel_size: int = 3,
    padding: int = 0,
    stride: int = 1,
    dilation: int = 1,
    *,
    max_input_size: int = 16,
) -> Explorer:
    """Move input size, kernel size, padding, stride and dilation; see the windows and output size.

    The figure is :func:`course_lib.plots.output_grid_figure`; the label writes the output-size
    formula ``floor((n + 2p - d(k - 1) - 1) / s) + 1`` with the current numbers, or says that the
    kernel does not fit.

    Returns the :class:`Explorer`; its controls are ``input_size``, ``kernel_size``, ``padding``,
    ``stride`` and ``dilation``.
    """
    input_size = check_int(input_size, "input_size", minimum=1)
    kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
    padding = check_int(padding, "padding", minimum=0)
    stride = check_int(stride, "stride", minimum=1)
    dilation = check_int(dilation, "dilation", minimum=1)
    controls = {
        "input_size": _int_slider("input n", input_size, 1, max_input_size),
        "kernel_size": _int_slider("kernel k", kernel_size, 1, 7),
        "padding": _int_slider("padding p", padding, 0, 4),
        "stride": _int_slider("stride s", stride, 1, 4),
        "dilation": _int_slider("dilation d", dilation, 1, 3),
    }

    def draw(
        input_size: int, kernel_size: int, padding: int, stride: int, dilation: int
    ) -> tuple[Figure, str]:
        out = window_output_size(input_size, kernel_size, stride, padding, dilation)
        formula = (
            f"⌊({input_size} + 2·{padding} − {dilation}·({kernel_size} − 1) − 1) / {stride}⌋ + 1"
        )
        if out < 1:
            fig, ax = plt.subplots(figsize=(3, 1))
            ax.axis("off")
            ax.text(0.5, 0.5, "the kernel does not fit", ha="center", va="center")
            return (
                fig,
                f"{formula}: the kernel does not fit in the padded input",
            )
        fig = output_grid_figure(
            input_size, kernel_size, stride=stride, padding=padding, dilation=dilation
        )
        return fig, f"output size = {formula} = <b>{out}</b>"

    return Explorer(controls, draw)


def feature_map_explorer(
    image: Any,
    kernels: Mapping[str, Any],
    *,
    relu: bool = True,
    conv: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Explorer:
    """Pick a kernel from a drop-down and see the feature map it produces on ``image``.

    image: (H, W) grey-scale image. kernels: name -> (kH, kW) kernel. ``relu``: whether the
    check box "ReLU" starts ticked. ``conv(image, kernel) -> feature map`` computes the map;
    by default a 'same'-size cross-correlation with zero padding (odd kernels).

    Returns the :class:`Explorer`; its controls are ``kernel`` (drop-down) and ``relu``.
    """
    picture = to_numpy(image).astype(float)
    if picture.ndim != 2:
        raise ValueError(f"expected image with 2 dims (H, W), got shape {picture.shape}")
    if not kernels:
        raise ValueError("expected at least one kernel")
    bank = {name: to_numpy(k).astype(float) for name, k in kernels.items()}

    def same_correlation(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return correlate2d(x, w, mode="same", boundary="fill")

    compute = conv if conv is not None else same_correlation
    controls = {
        "kernel": widgets.Dropdown(
            options=list(bank), value=next(iter(bank)), description="kernel"
        ),
        "relu": widgets.Checkbox(value=relu, description="ReLU"),
    }

    def draw(kernel: str, relu: bool) -> tuple[Figure, str]:
        feature_map = np.asarray(compute(picture, bank[kernel]), dtype=float)
        if relu:
            feature_map = np.maximum(feature_map, 0.0)
        fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), width_ratios=[3, 1.2, 3])
        axes[0].imshow(picture, cmap="gray")
        axes[0].set_title("image")
        show_grid(bank[kernel], axes[1], title=kernel, cmap="RdBu_r", fmt="{:.2g}")
        axes[2].imshow(feature_map, cmap="magma")
        axes[2].set_title("feature map" + (" after ReLU" if relu else ""))
        for ax in (axes[0], axes[2]):
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        return fig, f"sum of the feature map: <b>{feature_map.sum():.4g}</b>"

    return Explorer(controls, draw)
