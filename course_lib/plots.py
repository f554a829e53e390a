"""Figures for the book: small arrays drawn as grids, feature maps, sliding-window animations.

Every function takes NumPy arrays or PyTorch tensors (any device; they are copied to the CPU),
draws with matplotlib and returns the :class:`~matplotlib.figure.Figure` (or the animation), so a
chapter can show it, save it or inspect it. Nothing here calls ``plt.show()``.

The helpers are used across Part I of the book:

- :func:`show_grid` / :func:`show_grids`: a 2-D array as a heat map with its values written in the
  cells, optionally with a highlighted window (the kernel's current position);
- :func:`feature_map_grid`: a grid of feature maps (one panel per channel or per kernel);
- :func:`sliding_window_animation` + :func:`animation_html`: the kernel (or a pooling window)
  sliding over its input while the output fills in, as an embedded HTML/JavaScript animation;
- :func:`output_grid_figure`: where the windows of a convolution land on a padded input, for a
  given input size, kernel size, padding, stride and dilation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib._validate import check_int, int_or_pair, window_output_size

__all__ = [
    "to_numpy",
    "show_grid",
    "show_grids",
    "feature_map_grid",
    "sliding_window_output",
    "sliding_window_animation",
    "animation_html",
    "strip_external_stylesheets",
    "output_grid_figure",
]

_WINDOW_MODES = ("conv", "max", "avg", "min")


def to_numpy(values: Any) -> np.ndarray:
    """Return ``values`` (NumPy array, PyTorch tensor on any device, nested lists) as a NumPy array.

    >>> to_numpy([[1, 2], [3, 4]]).shape
    (2, 2)
    """
    if hasattr(values, "detach"):  # a torch.Tensor; avoids importing torch here
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _as_2d(values: Any, name: str) -> np.ndarray:
    array = to_numpy(values)
    if array.ndim != 2:
        raise ValueError(f"expected {name} with 2 dims (H, W), got shape {tuple(array.shape)}")
    return array


def _format_value(value: float, fmt: str) -> str:
    if fmt == "auto":
        nearest = round(float(value))
        if abs(float(value) - nearest) <= 1e-9 * max(1.0, abs(nearest)):
            return f"{nearest}"  # integers (up to rounding error) without decimals
        return f"{value:.2f}"
    return fmt.format(value)


def show_grid(
    values: Any,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    cmap: str = "Blues",
    fmt: str = "auto",
    show_values: bool = True,
    highlight: tuple[int, int, int, int] | None = None,
    highlight_color: str = "tab:red",
    vmin: float | None = None,
    vmax: float | None = None,
    fontsize: float | None = None,
    masked: Any = None,
) -> Figure:
    """Draw a 2-D array as a grid of coloured cells with each value written in its cell.

    values: (H, W) array or tensor.
    ax: the axes to draw into; a new figure sized to the grid is made when ``None``.
    title: written above the grid.
    cmap, vmin, vmax: the colour map and its range (default: the array's min and max).
    fmt: ``"auto"`` (integers as integers, otherwise two decimals) or a format string such as
        ``"{:.1f}"``.
    show_values: write the values in the cells (turn off for large grids).
    highlight: ``(row, col, height, width)`` of a window to outline, e.g. the kernel's position.
    masked: optional (H, W) boolean array; ``True`` cells are drawn blank with no value (used for
        output cells that have not been computed yet).

    Returns the figure holding ``ax``. The cells are an ``AxesImage`` (``ax.images[0]``); the
    written values are the axes' ``Text`` artists (``ax.texts``), row by row.
    """
    array = _as_2d(values, "values").astype(float)
    height, width = array.shape
    if ax is None:
        size = 0.45 * max(height, width) + 0.6
        fig, ax = plt.subplots(figsize=(size * width / max(height, width) + 0.3, size))
    fig = ax.figure
    hidden = np.zeros(array.shape, dtype=bool) if masked is None else to_numpy(masked).astype(bool)
    if hidden.shape != array.shape:
        raise ValueError(f"expected masked with shape {array.shape}, got {hidden.shape}")
    finite = array[~hidden]
    low = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    high = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if high == low:
        high = low + 1.0
    shown = np.ma.masked_array(array, mask=hidden)
    colormap = plt.get_cmap(cmap).with_extremes(bad="white")
    ax.imshow(shown, cmap=colormap, vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, width, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, height, 1), minor=True)
    ax.grid(which="minor", color="0.55", linewidth=0.6)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xticks([])
    ax.set_yticks([])
    if show_values:
        size = fontsize if fontsize is not None else max(6.0, 11.0 - 0.25 * max(height, width))
        for i in range(height):
            for j in range(width):
                if hidden[i, j]:
                    continue
                level = (array[i, j] - low) / (high - low)
                color = "white" if level > 0.6 else "black"
                label = _format_value(array[i, j], fmt)
                ax.text(
                    j,
                    i,
                    label,
                    ha="center",
                    va="center",
                    fontsize=size * min(1.0, 3.0 / max(len(label), 1)),  # long labels: smaller
                    color=color,
                )
    if highlight is not None:
        row, col, box_h, box_w = highlight
        ax.add_patch(
            Rectangle(
                (col - 0.5, row - 0.5),
                box_w,
                box_h,
                fill=False,
                edgecolor=highlight_color,
                linewidth=2.5,
            )
        )
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def show_grids(
    arrays: Sequence[Any],
    titles: Sequence[str] | None = None,
    *,
    separators: Sequence[str] | None = None,
    cmaps: Sequence[str] | str = "Blues",
    fmt: str = "auto",
    cell_size: float = 0.42,
) -> Figure:
    """Draw several 2-D arrays side by side (e.g. input, kernel, output) in one figure.

    arrays: a sequence of (H_i, W_i) arrays or tensors.
    titles: one title per array.
    separators: strings written between consecutive grids (``["⋆", "="]`` for
        ``input ⋆ kernel = output``); ``len(arrays) - 1`` of them.
    cmaps: one colour map for all grids, or one per grid.

    The panels are sized in proportion to their arrays, so cells have the same size in all of
    them. Returns the figure; ``fig.axes[i]`` holds ``arrays[i]``.
    """
    grids = [_as_2d(a, f"arrays[{k}]") for k, a in enumerate(arrays)]
    if not grids:
        raise ValueError("expected at least one array to draw")
    if titles is not None and len(titles) != len(grids):
        raise ValueError(f"expected {len(grids)} titles, got {len(titles)}")
    if separators is not None and len(separators) != len(grids) - 1:
        raise ValueError(f"expected {len(grids) - 1} separators, got {len(separators)}")
    colormaps = [cmaps] * len(grids) if isinstance(cmaps, str) else list(cmaps)
    if len(colormaps) != len(grids):
        raise ValueError(f"expected {len(grids)} colour maps, got {len(colormaps)}")
    tallest = max(g.shape[0] for g in grids)
    widths = [g.shape[1] for g in grids]
    gap = 1.2
    ratios: list[float] = []
    for k, w in enumerate(widths):
        ratios.append(w)
        if k < len(widths) - 1:
            ratios.append(gap)
    fig = plt.figure(figsize=(cell_size * sum(ratios) + 0.4, cell_size * tallest + 0.7))
    spec = fig.add_gridspec(1, len(ratios), width_ratios=ratios, wspace=0.05)
    for k, grid in enumerate(grids):
        ax = fig.add_subplot(spec[0, 2 * k])
        show_grid(grid, ax, title=None if titles is None else titles[k], cmap=colormaps[k], fmt=fmt)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if separators is not None:
        for k, sep in enumerate(separators):
            # in the data coordinates of the left grid: half a gap right of its last column,
            # level with its middle (the grids are centred vertically)
            fig.axes[k].text(
                grids[k].shape[1] - 0.5 + gap / 2 + 0.05,
                (grids[k].shape[0] - 1) / 2,
                sep,
                ha="center",
                va="center",
                fontsize=18,
                clip_on=False,
            )
    return fig


def feature_map_grid(
    maps: Any,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    cmap: str = "gray",
    panel_size: float = 2.0,
    colorbar: bool = False,
    suptitle: str | None = None,
    share_range: bool = False,
) -> Figure:
    """Draw a stack of feature maps as a grid of images, one panel per map.

    maps: (C, H, W) array/tensor, or a sequence of (H, W) maps (which may differ in size).
    titles: one title per map.
    ncols: panels per row.
    share_range: use one colour range for all panels (to compare strengths); otherwise each
        panel is scaled to its own min and max.
    colorbar: add a colour bar to each panel.

    Returns the figure; unused panels are hidden, so ``len(fig.axes)`` may exceed the number of
    maps only by the colour bars.
    """
    if isinstance(maps, Sequence) and not isinstance(maps, np.ndarray):
        panels = [_as_2d(m, f"maps[{k}]") for k, m in enumerate(maps)]
    else:
        stack = to_numpy(maps)
        if stack.ndim != 3:
            raise ValueError(f"expected maps with 3 dims (C, H, W), got shape {stack.shape}")
        panels = list(stack)
    if not panels:
        raise ValueError("expected at least one feature map")
    if titles is not None and len(titles) != len(panels):
        raise ValueError(f"expected {len(panels)} titles, got {len(titles)}")
    if ncols < 1:
        raise ValueError(f"ncols must be positive, got {ncols}")
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + (0.4 if suptitle else 0))
    )
    axes = np.atleast_1d(axes).ravel()
    low = min(float(p.min()) for p in panels) if share_range else None
    high = max(float(p.max()) for p in panels) if share_range else None
    for k, ax in enumerate(axes):
        if k >= len(panels):
            ax.remove()
            continue
        image = ax.imshow(panels[k], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
        if colorbar:
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _pad_zeros(array: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    return np.pad(array, ((padding[0], padding[0]), (padding[1], padding[1])))


def sliding_window_output(
    x: Any,
    kernel: Any = None,
    *,
    kernel_size: int | Sequence[int] | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    mode: str = "conv",
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Slide a window over a zero-padded 2-D input and return what the animation shows.

    x: (H, W) input. kernel: (kH, kW) weights, needed for ``mode="conv"`` (deep learning's
    convolution, i.e. cross-correlation: no flip). For ``"max"``, ``"avg"``, ``"min"`` give
    ``kernel_size`` instead.

    Returns ``(padded, output, corners)``: the padded input (H + 2p, W + 2p), the output
    (H_out, W_out) and, for each output cell in row-major order, the top-left corner of its
    window in the padded input. This small loop is the definition the book teaches; use
    ``course_lib.conv2d`` for real work.
    """
    if mode not in _WINDOW_MODES:
        raise ValueError(f"mode must be one of {_WINDOW_MODES}, got {mode!r}")
    image = _as_2d(x, "x").astype(float)
    if mode == "conv":
        if kernel is None:
            raise ValueError('mode="conv" needs a kernel')
        weights = _as_2d(kernel, "kernel").astype(float)
        size = weights.shape
    else:
        if kernel_size is None:
            raise ValueError(f"mode={mode!r} needs kernel_size")
        size = int_or_pair(kernel_size, "kernel_size", minimum=1)
        weights = None
    step = int_or_pair(stride, "stride", minimum=1)
    pad = int_or_pair(padding, "padding", minimum=0)
    padded = _pad_zeros(image, pad)
    out_h = window_output_size(image.shape[0], size[0], step[0], pad[0])
    out_w = window_output_size(image.shape[1], size[1], step[1], pad[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"the window {size} does not fit in the padded input {padded.shape}; "
            "use a smaller kernel or more padding"
        )
    output = np.zeros((out_h, out_w))
    corners: list[tuple[int, int]] = []
    reduce = {"max": np.max, "avg": np.mean, "min": np.min}
    for i in range(out_h):
        for j in range(out_w):
            r, c = i * step[0], j * step[1]
            window = padded[r : r + size[0], c : c + size[1]]
            if weights is not None:
                output[i, j] = float(np.sum(window * weights))
            else:
                output[i, j] = float(reduce[mode](window))
            corners.append((r, c))
    return padded, output, corners


def sliding_window_animation(
    x: Any,
    kernel: Any = None,
    *,
    kernel_size: int | Sequence[int] | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    mode: str = "conv",
    interval: int = 700,
    fmt: str = "auto",
    cell_size: float = 0.38,
    dpi: int = 90,
) -> animation.FuncAnimation:
    """Build an animation of a window sliding over ``x`` while the output fills in cell by cell.

    The arguments are those of :func:`sliding_window_output`. The first panel shows the (padded)
    input with the current window outlined, the middle panel the kernel (for ``mode="conv"``),
    the last panel the output computed so far, with the current cell outlined. Each frame's
    caption writes the sum of products (or the max/average/min) that gives the current cell.

    One frame per output cell. Returns a ``FuncAnimation`` whose figure is already closed (so
    it is not shown a second time as a still image); turn it into HTML with
    :func:`animation_html`.
    """
    padded, output, corners = sliding_window_output(
        x, kernel, kernel_size=kernel_size, stride=stride, padding=padding, mode=mode
    )
    pad = int_or_pair(padding, "padding", minimum=0)
    size = (
        _as_2d(kernel, "kernel").shape
        if mode == "conv"
        else int_or_pair(kernel_size, "kernel_size", minimum=1)  # type: ignore[arg-type]
    )
    panels = (
        [padded, _as_2d(kernel, "kernel").astype(float), output]
        if mode == "conv"
        else [
            padded,
            output,
        ]
    )
    tallest = max(p.shape[0] for p in panels)
    ratios = [p.shape[1] for p in panels]
    fig = plt.figure(
        figsize=(cell_size * (sum(ratios) + 1.5 * len(panels)) + 0.4, cell_size * tallest + 1.3),
        dpi=dpi,
    )
    spec = fig.add_gridspec(1, len(panels), width_ratios=ratios, wspace=0.35)
    axes = [fig.add_subplot(spec[0, k]) for k in range(len(panels))]
    name = {"conv": "kernel", "max": "max", "avg": "average", "min": "min"}[mode]
    input_title = "input" + (f" (padding {pad[0]})" if any(pad) else "")
    caption = fig.text(0.5, 0.03, "", ha="center", fontsize=9)
    low, high = float(padded.min()), float(padded.max())
    out_low, out_high = float(output.min()), float(output.max())
    out_w = output.shape[1]
    unpadded = np.ones(padded.shape, dtype=bool)
    unpadded[pad[0] : padded.shape[0] - pad[0], pad[1] : padded.shape[1] - pad[1]] = False

    def draw(frame: int) -> list:
        for ax in axes:
            ax.clear()
        r, c = corners[frame]
        show_grid(
            padded,
            axes[0],
            title=input_title,
            cmap="Blues",
            fmt=fmt,
            highlight=(r, c, size[0], size[1]),
            vmin=low,
            vmax=high,
        )
        for i, j in zip(*np.nonzero(unpadded), strict=True):
            axes[0].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.9", zorder=0.5))
        if mode == "conv":
            show_grid(panels[1], axes[1], title="kernel", cmap="Oranges", fmt=fmt)
        done = np.ones(output.shape, dtype=bool)
        done.ravel()[: frame + 1] = False
        i, j = divmod(frame, out_w)
        show_grid(
            output,
            axes[-1],
            title="output",
            cmap="Greens",
            fmt=fmt,
            masked=done,
            highlight=(i, j, 1, 1),
            vmin=out_low,
            vmax=out_high,
        )
        for ax in axes:
            for spine in ax.spines.values():
                spine.set_visible(False)
        window = padded[r : r + size[0], c : c + size[1]]
        if mode == "conv":
            terms = [
                f"{_format_value(a, fmt)}·{_format_value(b, fmt)}"
                for a, b in zip(window.ravel(), panels[1].ravel(), strict=True)
                if a != 0 and b != 0
            ]
            text = " + ".join(terms) if terms else "0"
            if len(text) > 90:
                text = text[:87] + "…"
        else:
            text = f"{name} of the window"
        caption.set_text(f"output[{i}, {j}] = {text} = {_format_value(output[i, j], fmt)}")
        return [*axes, caption]

    anim = animation.FuncAnimation(fig, draw, frames=len(corners), interval=interval, blit=False)
    plt.close(fig)
    return anim


# matplotlib's player links a Font Awesome stylesheet on a CDN for its button icons. The book's
# theme already ships Font Awesome, and the website must not load anything from elsewhere.
_CDN_STYLESHEET = re.compile(r"<link[^>]*rel=[\"']stylesheet[\"'][^>]*https?://[^>]*>", re.DOTALL)


def strip_external_stylesheets(html: str) -> str:
    """Remove ``<link rel="stylesheet">`` tags that point to another site."""
    return _CDN_STYLESHEET.sub("", html)


def animation_html(anim: animation.Animation, *, default_mode: str = "once") -> str:
    """Render an animation to a self-contained HTML/JavaScript player (frames embedded as PNG).

    The string can be shown in a notebook or on the book's website with
    ``IPython.display.HTML(animation_html(anim))``; no JavaScript library or network is needed
    (matplotlib's link to a stylesheet on a CDN is removed).
    """
    return strip_external_stylesheets(anim.to_jshtml(default_mode=default_mode))


def output_grid_figure(
    input_size: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draw where the windows of a 1-channel square convolution land on its (padded) input.

    The padded input is drawn as a grid (input cells blue, padding cells grey); the first
    window's taps are outlined in red (spread out when ``dilation > 1``); every window's
    top-left tap is marked with an orange dot (one dot per output cell). The title gives the output
    size ``floor((n + 2p - d(k - 1) - 1) / s) + 1`` and the number of input rows/columns the
    windows never reach at the bottom/right (they are skipped when the stride does not divide
    evenly).

    Returns the figure. Raises ``ValueError`` when no window fits.
    """
    input_size = check_int(input_size, "input_size", minimum=1)
    kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
    stride = check_int(stride, "stride", minimum=1)
    padding = check_int(padding, "padding", minimum=0)
    dilation = check_int(dilation, "dilation", minimum=1)
    padded = input_size + 2 * padding
    span = dilation * (kernel_size - 1) + 1
    if span > padded:
        raise ValueError(
            f"a kernel spanning {span} cells does not fit in the padded input of {padded} cells"
        )
    out = window_output_size(input_size, kernel_size, stride, padding, dilation)
    unused = padded - ((out - 1) * stride + span)
    if ax is None:
        size = 0.3 * padded + 0.8
        fig, ax = plt.subplots(figsize=(size, size + 0.3))
    fig = ax.figure
    cells = np.zeros((padded, padded))
    cells[padding : padding + input_size, padding : padding + input_size] = 1.0
    ax.imshow(cells, cmap="Blues", vmin=-0.6, vmax=2.2, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, padded, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, padded, 1), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="both", length=0)
    ax.set_xticks([])
    ax.set_yticks([])
    for a in range(kernel_size):
        for b in range(kernel_size):
            ax.add_patch(
                Rectangle(
                    (b * dilation - 0.5, a * dilation - 0.5),
                    1,
                    1,
                    fill=False,
                    edgecolor="tab:red",
                    linewidth=2,
                )
            )
    for i in range(out):
        for j in range(out):
            ax.plot(j * stride, i * stride, "o", color="tab:orange", markersize=4)
    if title is None:
        title = f"n={input_size}, k={kernel_size}, p={padding}, s={stride}"
        if dilation != 1:
            title += f", d={dilation}"
        title += f"\noutput {out}×{out}"
        if unused:
            title += f", {unused} unused"
    ax.set_title(title, fontsize=9)
    return fig
