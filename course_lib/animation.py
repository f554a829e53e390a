"""Animations for the website: matplotlib ``FuncAnimation`` rendered to self-contained HTML/JS.

A reader of the website cannot run an ipywidgets explorer, so the chapters show them an
animation instead. Both helpers here return an :class:`IPython.display.HTML` object whose frames
are embedded as PNG images (``to_jshtml``): no external script, no network. The sliding-window
animation of convolution and pooling lives in :mod:`course_lib.plots`; this module adds a generic
wrapper and the backward pass of max pooling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML
from matplotlib.animation import Animation, FuncAnimation
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib._validate import check_int, int_or_pair, window_output_size
from course_lib.plots import animation_html, show_grid, strip_external_stylesheets, to_numpy

__all__ = ["embed", "jshtml", "max_pool_backward_animation"]


def embed(animation: Animation | str, default_mode: str = "loop") -> HTML:
    """An animation (or the HTML of ``to_jshtml``) as self-contained HTML for a notebook cell.

    External stylesheet links are removed, so the page loads nothing from the network.
    """
    if isinstance(animation, str):
        return HTML(strip_external_stylesheets(animation))
    return HTML(animation_html(animation, default_mode=default_mode))


def jshtml(
    fig: Figure,
    update: Callable[[int], object],
    frames: int,
    interval_ms: int = 600,
    default_mode: str = "loop",
) -> HTML:
    """Render ``update(0) ... update(frames - 1)`` drawn on ``fig`` as an embedded JS animation.

    The figure is closed afterwards so that the notebook does not also show it as a still image.
    """
    check_int(frames, "frames", minimum=1)
    anim = FuncAnimation(fig, update, frames=frames, interval=interval_ms, blit=False)
    html = animation_html(anim, default_mode=default_mode)
    plt.close(fig)
    return HTML(html)


def max_pool_backward_animation(
    x: torch.Tensor | np.ndarray,
    dout: torch.Tensor | np.ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    interval_ms: int = 900,
) -> HTML:
    """Animate how max pooling sends each output gradient back to its window's maximum.

    x: (H, W) input of the pooling layer; dout: (H_out, W_out) gradient of the loss with
    respect to the pooled output (no padding, floor mode). Frame ``k`` routes ``dout`` of output
    cell ``k`` (row-major) to the first maximum of its window and adds it to the input gradient,
    so overlapping windows visibly sum their contributions.
    """
    values = to_numpy(x).astype(float)
    grads = to_numpy(dout).astype(float)
    if values.ndim != 2 or grads.ndim != 2:
        raise ValueError(
            f"expected x (H, W) and dout (H_out, W_out), got {values.shape} and {grads.shape}"
        )
    kh, kw = int_or_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = (kh, kw) if stride is None else int_or_pair(stride, "stride", minimum=1)
    out_h = window_output_size(values.shape[0], kh, sh)
    out_w = window_output_size(values.shape[1], kw, sw)
    if grads.shape != (out_h, out_w):
        raise ValueError(f"expected dout of shape {(out_h, out_w)}, got {grads.shape}")

    steps: list[tuple[int, int, int, int, np.ndarray]] = []
    dx = np.zeros_like(values)
    for i in range(out_h):
        for j in range(out_w):
            window = values[i * sh : i * sh + kh, j * sw : j * sw + kw]
            r, c = divmod(int(np.argmax(window)), kw)
            dx[i * sh + r, j * sw + c] += grads[i, j]
            steps.append((i, j, i * sh + r, j * sw + c, dx.copy()))
    limit = float(np.abs(dx).max()) or 1.0

    fig, axes = plt.subplots(
        1,
        3,
        figsize=(9.0, 3.4),
        dpi=72,
        gridspec_kw={"width_ratios": [values.shape[1], out_w, values.shape[1]]},
    )
    caption = fig.text(0.5, 0.02, "", ha="center", fontsize=10)

    def draw(frame: int) -> None:
        i, j, r, c, partial = steps[frame]
        for ax in axes:
            ax.clear()
        show_grid(values, axes[0], title="input x", highlight=(i * sh, j * sw, kh, kw))
        axes[0].add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="gold", lw=3))
        show_grid(grads, axes[1], title="dout", cmap="Oranges", highlight=(i, j, 1, 1))
        show_grid(partial, axes[2], title="dx so far", cmap="RdBu", vmin=-limit, vmax=limit)
        axes[2].add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="gold", lw=3))
        caption.set_text(f"dout[{i}, {j}] goes to the window's maximum x[{r}, {c}] and is added")

    return jshtml(fig, draw, frames=len(steps), interval_ms=interval_ms)
