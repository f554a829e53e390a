"""Diagrams of networks and blocks, drawn with matplotlib from the modules themselves.

Every function reads the layers it draws from a real ``nn.Module`` (kernel sizes, strides,
channels, output shapes), so a diagram cannot disagree with the model the chapter builds. Each
returns the :class:`~matplotlib.figure.Figure`; nothing here calls ``plt.show()``.

- :func:`network_diagram`: a plain stack such as AlexNet or VGG as a row of feature-map volumes
  (height from the spatial size, thickness from the channels), with the layer between each two;
- :func:`block_diagram`: residual, bottleneck and ConvNeXt blocks as flow charts whose box widths
  follow the channels, with the shortcut drawn around them; :func:`block_diagrams` puts several
  side by side;
- :func:`dense_block_diagram`: a DenseNet block, every earlier output feeding every later layer;
- :func:`inception_diagram`: the four parallel branches of an Inception module and their
  concatenation;
- :func:`freezing_diagram`: which parts of a network each transfer-learning strategy trains
  (read from ``requires_grad``);
- :func:`convolution_matrix` and :func:`convolution_matrix_figure`: a convolution as a sparse
  matrix ``C`` with ``y = C x``, its im2col form, and the transposed convolution as ``C^T``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle
from torch import nn

from course_lib._validate import check_positive_int

__all__ = [
    "network_diagram",
    "block_diagram",
    "block_diagrams",
    "dense_block_diagram",
    "inception_diagram",
    "freezing_diagram",
    "convolution_matrix",
    "convolution_matrix_figure",
]

# One colour (fill, edge) per kind of layer, used by every diagram of the book.
_STYLE: dict[str, tuple[str, str]] = {
    "conv": ("#cfe0f1", "#2f5d8a"),
    "depthwise": ("#bcd7ee", "#2f5d8a"),
    "norm": ("#fbeec2", "#a0801a"),
    "act": ("#d7ebd0", "#467a38"),
    "pool": ("#f6d2cf", "#a14a43"),
    "linear": ("#e4d8ef", "#67498a"),
    "scale": ("#ece6dc", "#7a6a52"),
    "merge": ("#ffffff", "#444444"),
    "io": ("#f4f4f4", "#777777"),
}
_TEXT = "#222222"
_ARROW = "#555555"
_FONT = 9


def _box(
    ax: Axes,
    x: float,
    y: float,
    width: float,
    height: float,
    label: str,
    kind: str,
    fontsize: float = _FONT,
) -> None:
    """A rounded box centred on (x, y), filled with the colour of ``kind``, with its label."""
    fill, edge = _STYLE[kind]
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=fill,
            edgecolor=edge,
            linewidth=1.0,
            zorder=2,
        )
    )
    ax.text(x, y, label, ha="center", va="center", fontsize=fontsize, color=_TEXT, zorder=3)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], **kwargs) -> None:
    style = {"arrowstyle": "-|>", "mutation_scale": 10, "color": _ARROW, "linewidth": 1.0}
    style.update(kwargs)
    ax.add_patch(FancyArrowPatch(start, end, shrinkA=0, shrinkB=0, zorder=1, **style))


def _merge_node(ax: Axes, x: float, y: float, symbol: str, radius: float = 0.2) -> None:
    ax.add_patch(
        Circle((x, y), radius, facecolor="white", edgecolor=_STYLE["merge"][1], lw=1.1, zorder=2)
    )
    ax.text(x, y, symbol, ha="center", va="center", fontsize=_FONT + 3, color=_TEXT, zorder=3)


def _finish(fig: Figure, ax: Axes, title: str | None) -> None:
    ax.set_aspect("equal")
    ax.axis("off")
    ax.autoscale_view()
    if title:
        ax.set_title(title, fontsize=_FONT + 2)


def _shape_text(shape: Sequence[int]) -> str:
    return " × ".join(str(s) for s in shape)


def _pair_text(value: int | tuple[int, ...]) -> str:
    a, b = (value, value) if isinstance(value, int) else value
    return f"{a}×{b}"


# --------------------------------------------------------------------------------------------
# A plain stack (AlexNet, VGG) as feature-map volumes
# --------------------------------------------------------------------------------------------


def _volume(
    ax: Axes, x: float, height: float, thickness: float, kind: str, depth_ratio: float = 0.45
) -> float:
    """A feature-map volume in oblique projection, its front face standing on y = -height/2.

    Returns the x of its right edge (the oblique face included)."""
    fill, edge = _STYLE[kind]
    dx, dy = height * depth_ratio * 0.6, height * depth_ratio * 0.5
    bottom, top = -height / 2, height / 2
    front = [(x, bottom), (x + thickness, bottom), (x + thickness, top), (x, top)]
    side = [
        (x + thickness, bottom),
        (x + thickness + dx, bottom + dy),
        (x + thickness + dx, top + dy),
        (x + thickness, top),
    ]
    lid = [(x, top), (x + thickness, top), (x + thickness + dx, top + dy), (x + dx, top + dy)]
    for face, shade in ((front, 1.0), (side, 0.86), (lid, 0.93)):
        rgb = np.array(plt.matplotlib.colors.to_rgb(fill)) * shade
        ax.add_patch(Polygon(face, closed=True, facecolor=rgb, edgecolor=edge, lw=0.8, zorder=2))
    return x + thickness + dx


@dataclass(frozen=True)
class _Stage:
    kind: str  # "input", "conv", "pool", "linear"
    label: str  # the layer that produced it ("3×3 conv ×2")
    shape: tuple[int, ...]  # output shape without the batch axis


def _stages(model: nn.Module, input_shape: Sequence[int], merge_repeats: bool) -> list[_Stage]:
    from course_lib.shapes import _leaf_modules, shape_trace

    rows = shape_trace(model, tuple(input_shape))
    modules = dict(_leaf_modules(model))
    stages = [_Stage("input", "input", tuple(input_shape))]
    for row in rows:
        module = modules[row.name]
        if isinstance(module, nn.Conv2d):
            label = _pair_text(module.kernel_size)
            if module.stride != (1, 1):
                label += f"/{module.stride[0]}"
            last = stages[-1]
            if (
                merge_repeats
                and last.kind == "conv"
                and last.shape == row.output_shape
                and last.label.split("\n")[1] == label
            ):
                count = int(last.label.split(" ")[0]) if last.label[0].isdigit() else 1
                stages[-1] = _Stage("conv", f"{count + 1} conv\n{label}", row.output_shape)
                continue
            stages.append(_Stage("conv", f"conv\n{label}", row.output_shape))
        elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            name = "max pool" if isinstance(module, nn.MaxPool2d) else "avg pool"
            stride = module.stride if isinstance(module.stride, int) else module.stride[0]
            label = f"{name}\n{_pair_text(module.kernel_size)}/{stride}"
            stages.append(_Stage("pool", label, row.output_shape))
        elif isinstance(module, nn.Linear):
            stages.append(_Stage("linear", "fc", row.output_shape))
    return stages


def network_diagram(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    merge_repeats: bool = False,
    title: str | None = None,
) -> Figure:
    """A plain stack of layers as a row of feature-map volumes, left to right.

    model: an ``nn.Sequential`` that :func:`~course_lib.shapes.shape_trace` can follow (AlexNet,
    VGG; it may live on the ``meta`` device). input_shape: ``(C, H, W)``. Each convolution and
    pooling output is drawn as a box whose height grows with its spatial size and whose thickness
    grows with its channels (both on compressed scales, so that 224 × 224 × 3 and 7 × 7 × 512 fit
    in one picture), labelled with its shape below and the layer above ("3×3/2": a 3×3 window
    with stride 2); each fully connected layer is a bar labelled with its units.
    ``merge_repeats`` draws consecutive convolutions with the same output shape as one volume
    ("3 conv 3×3"), which keeps VGG readable.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {shape}")
    stages = _stages(model, shape, merge_repeats)
    spatial = [s.shape[1] for s in stages if len(s.shape) == 3]
    largest = max(spatial)
    units = [s.shape[0] for s in stages if s.kind == "linear"]
    most_units = max(units, default=1)

    fig, ax = plt.subplots()
    crowded = True  # captions alternate between two rows, so that long shapes never touch
    slot = 1.4  # drawing units per stage
    for i, stage in enumerate(stages):
        if len(stage.shape) == 3:
            channels, height_px = stage.shape[0], stage.shape[1]
            height = 0.55 + 2.45 * math.sqrt(height_px / largest)
            thickness = 0.05 + 0.06 * math.log2(max(channels, 1))
            depth = height * 0.36 * 0.6
            x = i * slot - (thickness + depth) / 2
            kind = {"input": "io", "conv": "conv", "pool": "pool"}[stage.kind]
            right = _volume(ax, x, height, thickness, kind, depth_ratio=0.36)
            caption = "×".join(str(v) for v in (stage.shape[1], stage.shape[2], stage.shape[0]))
        else:
            height = 0.6 + 2.4 * math.log(stage.shape[0] + 1) / math.log(most_units + 1)
            thickness = 0.2
            x = i * slot - thickness / 2
            _box(ax, i * slot, 0.0, thickness, height, "", "linear")
            right = x + thickness
            caption = f"{stage.shape[0]:,}"
        low = crowded and i % 2
        ax.text(
            i * slot,
            -1.75 - 0.42 * low,
            caption,
            ha="center",
            va="top",
            fontsize=_FONT - 1.5,
            color=_TEXT,
        )
        if stage.kind != "input":
            ax.text(
                i * slot,
                2.15,
                stage.label,
                ha="center",
                va="bottom",
                fontsize=_FONT - 1.5,
                color=_TEXT,
                linespacing=1.15,
            )
        if i + 1 < len(stages):
            _arrow(
                ax, (right + 0.06, 0.0), ((i + 1) * slot - 0.5 * slot + 0.25, 0.0), mutation_scale=7
            )
    x = (len(stages) - 1) * slot + slot / 2
    bottom = -3.3 - 0.42 * crowded
    note = (
        "below: output H×W×C (fc: units); above: window/stride; "
        "ReLU, normalisation and dropout are not drawn"
    )
    ax.text(-slot / 2, bottom + 0.65, note, fontsize=_FONT - 2, color="0.4", va="center")
    legend = [
        ("io", "input"),
        ("conv", "convolution"),
        ("pool", "pooling"),
        ("linear", "fully connected"),
    ]
    for j, (kind, name) in enumerate(legend):
        lx = -slot / 2 + 2.1 * j
        ax.add_patch(
            Rectangle(
                (lx, bottom + 0.11),
                0.18,
                0.18,
                facecolor=_STYLE[kind][0],
                edgecolor=_STYLE[kind][1],
            )
        )
        ax.text(lx + 0.28, bottom + 0.2, name, fontsize=_FONT - 2, va="center", color="0.3")
    ax.set_xlim(-slot / 2, x)
    ax.set_ylim(bottom, 3.0 + (0.3 if title else 0.0))
    unit = 0.4  # inches per unit of the drawing
    fig.set_size_inches((x + slot / 2) * unit + 0.2, (3.3 - bottom) * unit + 0.2)
    _finish(fig, ax, title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Blocks as flow charts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    label: str
    kind: str
    channels: int | None = None


def _conv_label(conv: nn.Conv2d) -> str:
    label = f"{_pair_text(conv.kernel_size)} conv, {conv.out_channels}"
    if conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1:
        label = f"{_pair_text(conv.kernel_size)} depthwise, {conv.out_channels}"
    if conv.stride != (1, 1):
        label += f", stride {conv.stride[0]}"
    return label


def _conv_node(conv: nn.Conv2d) -> _Node:
    kind = "depthwise" if conv.groups > 1 else "conv"
    return _Node(_conv_label(conv), kind, conv.out_channels)


def _shortcut_label(shortcut: nn.Module | None) -> str | None:
    if shortcut is None:
        return None
    if isinstance(shortcut, nn.Identity):
        return "identity"
    convs = [m for m in shortcut.modules() if isinstance(m, nn.Conv2d)]
    if convs:
        conv = convs[0]
        norm = " + BN" if any(isinstance(m, nn.BatchNorm2d) for m in shortcut.modules()) else ""
        stride = f"\nstride {conv.stride[0]}" if conv.stride != (1, 1) else ""
        return f"1×1 conv, {conv.out_channels}{stride}{norm}"
    return "subsample,\nzero channels"


def _block_nodes(block: nn.Module) -> tuple[list[_Node], str | None, str]:
    """The main path of a block, its shortcut's label and the name of the merge."""
    from course_lib.models import BasicBlock, Bottleneck, ConvNeXtBlock, DenseLayer

    if isinstance(block, BasicBlock | Bottleneck):
        convs = [block.conv1, block.conv2] + (
            [block.conv3] if isinstance(block, Bottleneck) else []
        )
        nodes: list[_Node] = []
        for i, conv in enumerate(convs):
            nodes.append(_conv_node(conv))
            nodes.append(_Node("batch norm", "norm", conv.out_channels))
            if i + 1 < len(convs):
                nodes.append(_Node("ReLU", "act", conv.out_channels))
        return nodes, _shortcut_label(block.shortcut), "add-relu"
    if isinstance(block, ConvNeXtBlock):
        c = block.dwconv.out_channels
        nodes = [
            _conv_node(block.dwconv),
            _Node("layer norm", "norm", c),
            _Node(f"1×1 conv, {block.pwconv1.out_features}", "conv", block.pwconv1.out_features),
            _Node("GELU", "act", block.pwconv1.out_features),
            _Node(f"1×1 conv, {block.pwconv2.out_features}", "conv", c),
            _Node("layer scale γ", "scale", c),
        ]
        return nodes, "identity", "add"
    if isinstance(block, DenseLayer):
        nodes = [
            _Node("batch norm", "norm", block.norm1.num_features),
            _Node("ReLU", "act", block.norm1.num_features),
            _conv_node(block.conv1),
            _Node("batch norm", "norm", block.conv1.out_channels),
            _Node("ReLU", "act", block.conv1.out_channels),
            _conv_node(block.conv2),
        ]
        return nodes, "identity", "concat"
    raise TypeError(
        "block_diagram draws BasicBlock, Bottleneck, ConvNeXtBlock or DenseLayer, "
        f"got {type(block).__name__}"
    )


def _block_in_out(block: nn.Module, input_shape: Sequence[int] | None):
    if input_shape is None:
        return None, None
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {shape}")
    probe = copy.deepcopy(block).to("meta").eval()
    with torch.no_grad():
        out = probe(torch.zeros((1, *shape), device="meta"))
    return shape, tuple(out.shape[1:])


def _draw_block(
    ax: Axes,
    block: nn.Module,
    input_shape: Sequence[int] | None,
    widest: int,
    title: str | None,
) -> None:
    nodes, shortcut, merge = _block_nodes(block)
    in_shape, out_shape = _block_in_out(block, input_shape)
    full, small = 0.52, 0.40
    y = 0.0
    in_label = f"input {_shape_text(in_shape)}" if in_shape else "input"
    _box(ax, 0, y, _text_width(in_label), 0.46, in_label, "io", fontsize=_FONT - 1)
    split_y = y - 0.42
    ax.plot([0, 0], [y - 0.23, split_y], color=_ARROW, lw=1.0, zorder=1)
    y = split_y
    right_edge = 0.0
    for node in nodes:
        height = small if node.kind in ("norm", "act", "scale") else full
        width = 2.0 + 2.2 * (node.channels or widest) / widest
        right_edge = max(right_edge, width / 2)
        top = y - 0.30
        _arrow(ax, (0, y), (0, top))
        y = top - height / 2
        # a label longer than its box gets a smaller font, so that widths keep meaning channels
        fit = min(1.0, (width - 0.15) / (_text_width(node.label) - 0.5))
        _box(ax, 0, y, width, height, node.label, node.kind, fontsize=(_FONT - 1) * fit)
        y -= height / 2
    merge_y = y - 0.55
    _arrow(ax, (0, y), (0, merge_y + 0.2))
    symbol = {"add-relu": "+", "add": "+", "concat": "‖"}[merge]
    _merge_node(ax, 0, merge_y, symbol)
    y = merge_y - 0.2
    if merge == "add-relu":
        top = y - 0.30
        _arrow(ax, (0, y), (0, top))
        y = top - small / 2
        _box(ax, 0, y, 1.6, small, "ReLU", "act", fontsize=_FONT - 1)
        y -= small / 2
    if shortcut is not None:
        side = right_edge + (0.45 if shortcut == "identity" else 1.1)
        ax.plot([0, side, side], [split_y, split_y, merge_y], color=_ARROW, lw=1.1, zorder=1)
        _arrow(ax, (side, merge_y), (0.2, merge_y))
        ax.add_patch(Circle((0, split_y), 0.04, color=_ARROW, zorder=3))
        middle = (split_y + merge_y) / 2
        if shortcut == "identity":
            ax.text(
                side + 0.12,
                middle,
                shortcut,
                ha="left",
                va="center",
                fontsize=_FONT - 1.5,
                color="0.25",
                style="italic",
            )
        else:  # a layer on the shortcut: drawn as a box on the line
            kind = "conv" if shortcut.startswith("1×1") else "scale"
            _box(ax, side, middle, 1.75, 0.62, shortcut, kind, fontsize=_FONT - 2)
    _arrow(ax, (0, y), (0, y - 0.32))
    y -= 0.32 + 0.23
    out_label = f"output {_shape_text(out_shape)}" if out_shape else "output"
    if merge == "concat" and out_shape:
        out_label = f"output {_shape_text(out_shape)} (input ‖ new)"
    _box(ax, 0, y, _text_width(out_label), 0.46, out_label, "io", fontsize=_FONT - 1)
    ax.set_ylim(y - 0.5, 0.5)
    ax.set_xlim(-2.4, 4.6)
    _finish(ax.figure, ax, title)


def _text_width(label: str) -> float:
    """Width in drawing units of a box that holds ``label`` at the blocks' font size."""
    return 0.5 + 0.16 * len(label)


def _widest(block: nn.Module) -> int:
    nodes, _, _ = _block_nodes(block)
    return max(node.channels or 1 for node in nodes)


def block_diagram(
    block: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """A residual-style block as a flow chart, input at the top.

    block: a ``BasicBlock``, ``Bottleneck``, ``ConvNeXtBlock`` or ``DenseLayer`` of
    ``course_lib.models``. input_shape: ``(C, H, W)``; when given, the input and output boxes
    show the shapes, computed by running a copy of the block on the ``meta`` device. Each box is
    one layer, as wide as its output has channels (relative to the widest layer of the block),
    so a bottleneck is narrow in the middle and ConvNeXt's inverted bottleneck wide. The
    shortcut runs down the right side to the addition (or, for a dense layer, the
    concatenation ‖).
    """
    fig, ax = plt.subplots(figsize=(3.6, 5.6))
    _draw_block(ax, block, input_shape, _widest(block), title)
    fig.tight_layout()
    return fig


def block_diagrams(
    blocks: Mapping[str, tuple[nn.Module, Sequence[int] | None]],
    *,
    same_scale: bool = True,
) -> Figure:
    """Several blocks side by side: ``{title: (block, input_shape or None)}``.

    With ``same_scale`` every box width is relative to the widest layer of *all* the blocks,
    so the widths compare across blocks."""
    if not blocks:
        raise ValueError("blocks is empty: pass {title: (block, input_shape)}")
    widest = max(_widest(b) for b, _ in blocks.values())
    fig, axes = plt.subplots(1, len(blocks), figsize=(3.1 * len(blocks), 5.4))
    axes = np.atleast_1d(axes)
    for ax, (name, (block, shape)) in zip(axes, blocks.items(), strict=True):
        _draw_block(ax, block, shape, widest if same_scale else _widest(block), name)
    lows = [ax.get_ylim()[0] for ax in axes]
    for ax in axes:  # the same vertical scale in every panel
        ax.set_ylim(min(lows), 0.5)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# DenseNet: every earlier output feeds every later layer
# --------------------------------------------------------------------------------------------


def dense_block_diagram(block: nn.Module, *, title: str | None = None) -> Figure:
    """A dense block, left to right: the input, each layer ``H_l`` with the channels it reads,
    and the ``k`` channels it adds, with one arc from every earlier output to every later layer.

    block: a ``course_lib.models.DenseBlock`` (a few layers draw best)."""
    from course_lib.models import DenseBlock

    if not isinstance(block, DenseBlock):
        raise TypeError(f"expected a course_lib.models.DenseBlock, got {type(block).__name__}")
    layers = list(block)
    c0 = layers[0].norm1.num_features
    growth = layers[0].conv2.out_channels
    n = len(layers)
    spacing = 2.0
    fig, ax = plt.subplots(figsize=(1.4 * (n + 2) + 0.4, 3.2))
    # the feature maps x_0 ... x_n, each a slab; the layers H_1 ... H_n between them
    map_x = [i * spacing for i in range(n + 1)]
    colours = plt.get_cmap("tab10")
    for i, x in enumerate(map_x):
        channels = c0 if i == 0 else growth
        height = 1.1 if i == 0 else 0.75
        fill = (
            "#f4f4f4" if i == 0 else plt.matplotlib.colors.to_hex(colours(i - 1), keep_alpha=False)
        )
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.18, -height / 2),
                0.36,
                height,
                boxstyle="round,pad=0,rounding_size=0.05",
                facecolor=fill,
                edgecolor="#444444",
                alpha=1.0 if i == 0 else 0.55,
                lw=0.9,
                zorder=2,
            )
        )
        name = "x₀" if i == 0 else f"x{_subscript(i)}"
        ax.text(x, -0.78, f"{name}\n{channels} ch", ha="center", va="top", fontsize=_FONT - 0.5)
    for j in range(1, n + 1):
        hx = map_x[j] - spacing / 2
        reads = c0 + (j - 1) * growth
        _box(ax, hx, 0, 0.95, 0.62, f"H{_subscript(j)}", "conv")
        ax.text(
            hx, -0.5, f"reads {reads}", ha="center", va="top", fontsize=_FONT - 1.5, color="0.35"
        )
        _arrow(ax, (hx + 0.48, 0), (map_x[j] - 0.2, 0))
        # arcs from every earlier map x_i (i < j) into H_j, from above
        for i in range(j):
            start = (map_x[i], 0.6 if i else 0.57)
            end = (hx, 0.32)
            rad = -0.45 if j - i > 1 else -0.3
            colour = "#777777" if i == 0 else colours(i - 1)
            ax.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    connectionstyle=f"arc3,rad={rad}",
                    arrowstyle="-|>",
                    mutation_scale=8,
                    color=colour,
                    lw=1.0,
                    alpha=0.9,
                    shrinkA=2,
                    shrinkB=2,
                    zorder=1,
                )
            )
    out_x = map_x[-1] + 1.5
    _arrow(ax, (map_x[-1] + 0.2, 0), (out_x - 0.62, 0))
    _box(ax, out_x, 0, 1.2, 0.95, f"output\n[x₀ … x{_subscript(n)}]\n{c0 + n * growth} ch", "io")
    ax.text(
        map_x[0] - 0.4,
        2.15,
        f"{n} layers, growth rate k = {growth}: each layer reads the input and all earlier "
        f"outputs and adds k channels",
        fontsize=_FONT - 0.5,
        color="0.25",
    )
    ax.set_xlim(map_x[0] - 0.6, out_x + 0.8)
    ax.set_ylim(-1.45, 2.45)
    _finish(fig, ax, title)
    fig.tight_layout()
    return fig


def _subscript(i: int) -> str:
    return str(i).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


# --------------------------------------------------------------------------------------------
# Inception: parallel branches, concatenated
# --------------------------------------------------------------------------------------------


def _branch_nodes(branch: nn.Module) -> list[_Node]:
    nodes = []
    for module in branch.modules():
        if isinstance(module, nn.Conv2d):
            nodes.append(_conv_node(module))
        elif isinstance(module, nn.MaxPool2d):
            nodes.append(
                _Node(f"{_pair_text(module.kernel_size)} max pool, stride {module.stride}", "pool")
            )
    return nodes


def inception_diagram(
    module: nn.Module, input_shape: Sequence[int] | None = None, *, title: str | None = None
) -> Figure:
    """The Inception module: the input, four branches side by side, their concatenation.

    module: a ``course_lib.models.Inception``. input_shape: ``(C, H, W)``, shown with the output
    shape (computed on the ``meta`` device) when given. Every convolution in it is followed by a
    ReLU (not drawn)."""
    from course_lib.models import Inception

    if not isinstance(module, Inception):
        raise TypeError(f"expected a course_lib.models.Inception, got {type(module).__name__}")
    branches = [module.branch1, module.branch3, module.branch5, module.branch_pool]
    columns = [_branch_nodes(b) for b in branches]
    in_shape, out_shape = _block_in_out(module, input_shape)
    fig, ax = plt.subplots(figsize=(8.4, 3.9))
    xs = [-4.2, -1.4, 1.4, 4.2]
    top, row = 2.4, 1.05
    in_label = f"previous layer  {_shape_text(in_shape)}" if in_shape else "previous layer"
    _box(ax, 0, top, 3.6, 0.5, in_label, "io")
    bottom = top - row * 3.1
    out_label = (
        f"concatenate along channels  {_shape_text(out_shape)}" if out_shape else "concatenate"
    )
    _box(ax, 0, bottom, 4.6, 0.5, out_label, "io")
    for x, nodes in zip(xs, columns, strict=True):
        y_prev = top - 0.25
        ys = [top - row * (1 + i) for i in range(len(nodes))]
        if len(nodes) == 1:
            ys = [top - row * 1.55]
        for y, node in zip(ys, nodes, strict=True):
            _arrow(ax, (x if y_prev != top - 0.25 else x * 0.35, y_prev), (x, y + 0.26))
            _box(ax, x, y, 2.45, 0.52, node.label, node.kind, fontsize=_FONT - 1)
            y_prev = y - 0.26
        _arrow(ax, (x, y_prev), (x * 0.45, bottom + 0.25))
        channels = [n.channels for n in nodes if n.channels]
        ax.text(
            (x + x * 0.45) / 2,
            (y_prev + bottom + 0.25) / 2,
            f"{channels[-1]} ch",
            fontsize=_FONT - 1,
            color="0.25",
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            zorder=3,
        )
    ax.set_xlim(-5.8, 5.8)
    ax.set_ylim(bottom - 0.5, top + 0.5)
    _finish(fig, ax, title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Transfer learning: what each strategy trains
# --------------------------------------------------------------------------------------------


def _part_state(model: nn.Module, prefix: str, new: Sequence[str]) -> str:
    params = [p for name, p in model.named_parameters() if _under(name, prefix)]
    if not params:
        raise ValueError(f"no parameters under {prefix!r} in {type(model).__name__}")
    if any(_under(prefix, n) or _under(n, prefix) for n in new):
        return "new"
    trained = [p.requires_grad for p in params]
    if all(trained):
        return "trained"
    if not any(trained):
        return "frozen"
    return "partly"


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


_FREEZE_STYLE = {
    "frozen": ("#d9dee5", "#7b8794", "frozen (pretrained, not updated)"),
    "trained": ("#f7c99b", "#b86a1e", "fine-tuned (pretrained, updated)"),
    "scratch": ("#f2a7a0", "#a63a30", "trained from random weights"),
    "new": ("#a8d5a2", "#3d7a35", "new layer, trained"),
    "partly": ("#f3e0b5", "#a0801a", "partly trained"),
}


def freezing_diagram(
    strategies: Mapping[
        str, tuple[nn.Module, Sequence[str]] | tuple[nn.Module, Sequence[str], str]
    ],
    parts: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
) -> Figure:
    """Which parts of a network each transfer-learning strategy trains, one row per strategy.

    strategies: ``{name: (model, new_parts)}`` or ``{name: (model, new_parts, "scratch")}``;
    each model has its ``requires_grad`` flags set (for example by
    :func:`course_lib.transfer.freeze`), and ``new_parts`` lists the prefixes of layers that
    are new (a replaced classifier). ``"scratch"`` marks a network trained from random weights.
    parts: ``[(label, parameter-name prefix), ...]`` left to right, e.g.
    ``[("stem", "_conv_stem"), ("block 0", "_blocks.0"), ...]``. A part is *frozen* when none of
    its parameters require a gradient, *trained* when all do.
    """
    if not strategies:
        raise ValueError("strategies is empty: pass {name: (model, new_parts)}")
    if not parts:
        raise ValueError("parts is empty: pass [(label, prefix), ...]")
    n_parts = len(parts)
    cell, gap = 0.52, 0.06
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * n_parts + 3.0), 0.55 * len(strategies) + 1.5))
    used = set()
    for row, (name, spec) in enumerate(strategies.items()):
        model, new = spec[0], spec[1]
        scratch = len(spec) > 2 and spec[2] == "scratch"
        y = -row * (cell + 0.22)
        ax.text(-0.25, y, name, ha="right", va="center", fontsize=_FONT, color=_TEXT)
        for j, (_, prefix) in enumerate(parts):
            state = _part_state(model, prefix, new)
            if scratch and state in ("trained", "new"):
                state = "scratch"
            used.add(state)
            fill, edge, _ = _FREEZE_STYLE[state]
            ax.add_patch(
                FancyBboxPatch(
                    (j * (cell + gap), y - cell / 2),
                    cell,
                    cell,
                    boxstyle="round,pad=0,rounding_size=0.06",
                    facecolor=fill,
                    edgecolor=edge,
                    lw=0.9,
                    hatch="///" if state == "frozen" else None,
                )
            )
    bottom = -(len(strategies) - 1) * (cell + 0.22) - cell / 2
    for j, (label, _) in enumerate(parts):
        ax.text(
            j * (cell + gap) + cell / 2,
            bottom - 0.1,
            label,
            rotation=60,
            ha="right",
            va="top",
            fontsize=_FONT - 1.5,
            color="0.3",
            rotation_mode="anchor",
        )
    ax.text(-0.05, cell / 2 + 0.12, "input →", fontsize=_FONT - 1, color="0.4", ha="left")
    ax.text(
        n_parts * (cell + gap) - gap,
        cell / 2 + 0.12,
        "→ classes",
        fontsize=_FONT - 1,
        color="0.4",
        ha="right",
    )
    order = [s for s in ("frozen", "trained", "scratch", "partly", "new") if s in used]
    handles = [
        Rectangle(
            (0, 0),
            1,
            1,
            facecolor=_FREEZE_STYLE[s][0],
            edgecolor=_FREEZE_STYLE[s][1],
            hatch="///" if s == "frozen" else None,
        )
        for s in order
    ]
    ax.legend(
        handles,
        [_FREEZE_STYLE[s][2] for s in order],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(order) if len(order) <= 3 else 2,
        frameon=False,
        fontsize=_FONT - 1,
        borderaxespad=0.6,
    )
    ax.set_xlim(-0.2, n_parts * (cell + gap))
    ax.set_ylim(bottom - 0.2, cell / 2 + 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=_FONT + 2)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Convolution as a matrix
# --------------------------------------------------------------------------------------------


def convolution_matrix(
    kernel: torch.Tensor, input_size: tuple[int, int], stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """The matrix ``C`` of a single-channel convolution: ``y.flatten() = C @ x.flatten()``.

    kernel: (kh, kw). input_size: (H, W). Returns ``C``: (H_out * W_out, H * W), row ``i`` holding
    the kernel's weights at the pixels that output ``i`` reads (the rest are zeros). Built by
    convolving each one-hot image, so it is exactly what ``conv2d`` computes; the transposed
    convolution (the input gradient of Chapter 7) multiplies by ``C.T``.
    """
    if not isinstance(kernel, torch.Tensor) or kernel.dim() != 2:
        shape = tuple(kernel.shape) if isinstance(kernel, torch.Tensor) else type(kernel).__name__
        raise ValueError(f"expected kernel with 2 dims (kh, kw), got {shape}")
    height, width = (check_positive_int(s, "input_size") for s in input_size)
    stride = check_positive_int(stride, "stride")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    if kernel.shape[0] > height + 2 * padding or kernel.shape[1] > width + 2 * padding:
        raise ValueError(
            f"kernel {tuple(kernel.shape)} does not fit the padded input "
            f"{(height + 2 * padding, width + 2 * padding)}"
        )
    basis = torch.eye(height * width, dtype=kernel.dtype).view(-1, 1, height, width)
    columns = F.conv2d(basis, kernel[None, None], stride=stride, padding=padding)
    return columns.flatten(1).T.contiguous()  # (outputs, inputs)


def _matrix_cells(
    ax: Axes,
    x0: float,
    y0: float,
    cells: np.ndarray,
    colours: np.ndarray,
    row_names: Sequence[str] = (),
    col_names: Sequence[str] = (),
) -> None:
    """A grid of unit cells with its top-left corner at (x0, y0): ``cells`` holds the text of
    each cell ("" for a zero), ``colours`` its tap index (0 for white)."""
    cmap = _tap_colours(int(colours.max()) if colours.size else 1)
    rows, cols = cells.shape
    for r in range(rows):
        for c in range(cols):
            tap = int(colours[r, c])
            ax.add_patch(
                Rectangle(
                    (x0 + c, y0 - r - 1),
                    1,
                    1,
                    facecolor=cmap[tap - 1] if tap else ("#f7f7f7" if cells[r, c] else "white"),
                    edgecolor="#b5b5b5",
                    lw=0.5,
                )
            )
            if cells[r, c]:
                ax.text(
                    x0 + c + 0.5,
                    y0 - r - 0.5,
                    cells[r, c],
                    ha="center",
                    va="center",
                    fontsize=_FONT - 2,
                )
    ax.add_patch(Rectangle((x0, y0 - rows), cols, rows, fill=False, edgecolor="#555555", lw=0.9))
    for r, name in enumerate(row_names):
        ax.text(x0 - 0.2, y0 - r - 0.5, name, ha="right", va="center", fontsize=_FONT - 2)
    for c, name in enumerate(col_names):
        ax.text(x0 + c + 0.5, y0 + 0.15, name, ha="center", va="bottom", fontsize=_FONT - 2.5)


def _tap_colours(n_taps: int) -> list:
    cmap = plt.get_cmap("tab10" if n_taps <= 10 else "tab20")
    return [
        tuple(0.55 * np.array(cmap(i % cmap.N)[:3]) + 0.45)  # lighter, so the text reads
        for i in range(max(n_taps, 1))
    ]


def convolution_matrix_figure(
    input_size: tuple[int, int] = (4, 4),
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 0,
    *,
    matrix: bool = True,
    im2col: bool = True,
    transpose: bool = True,
) -> Figure:
    """One small single-channel convolution drawn as matrices, computed with
    :func:`convolution_matrix`; every cell has the same size, so the shapes compare. The three
    views can be drawn together or one figure at a time (``matrix``, ``im2col``, ``transpose``).

    Top left: ``C``, with ``y = C x`` (input and output flattened row by row): each coloured
    cell holds one kernel weight ``w_ij``, every other entry is zero. Below it (``im2col``): the
    same product as the kernel's ``kh * kw`` weights times a matrix whose columns are the
    input's patches, one column per output. Right (``transpose``): ``C^T``, the matrix of the
    transposed convolution, which maps an output-sized array back to input size; it is the
    input gradient ``dx = C^T dy`` of backpropagation (Chapter 7).
    """
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    n_taps = kernel_size * kernel_size
    ids = torch.arange(1, n_taps + 1, dtype=torch.float64).view(kernel_size, kernel_size)
    taps = convolution_matrix(ids, input_size, stride, padding).round().numpy().astype(int)
    height, width = input_size
    n_out, n_in = taps.shape
    out_h = (height + 2 * padding - kernel_size) // stride + 1
    out_w = n_out // out_h

    def names(letter: str, rows: int, cols: int) -> list[str]:
        return [
            f"{letter}{_subscript(r + 1)}{_subscript(c + 1)}"
            for r in range(rows)
            for c in range(cols)
        ]

    tap_names = names("w", kernel_size, kernel_size)
    x_names, y_names = names("x", height, width), names("y", out_h, out_w)
    weight_text = np.array([[tap_names[t - 1] if t else "" for t in row] for row in taps])

    if not (matrix or im2col or transpose):
        raise ValueError("nothing to draw: set matrix, im2col or transpose")
    fig, ax = plt.subplots()
    setting = f"{height}×{width} input, {kernel_size}×{kernel_size} kernel"
    if stride != 1:
        setting += f", stride {stride}"
    if padding:
        setting += f", padding {padding}"
    right, extent_y = 0.0, 0.0
    if matrix:
        ax.text(
            0,
            1.0,
            f"convolution  y = C x\nC is {n_out} × {n_in}  ({setting})",
            fontsize=_FONT,
            va="bottom",
        )
        _matrix_cells(ax, 0, 0, weight_text, taps, y_names, x_names)
        extent_y = -n_out
        right = float(n_in)
    if im2col:
        top = extent_y - (3.0 if matrix else 0.0)
        patches = np.full((n_taps, n_out), "", dtype=object)
        for o in range(n_out):
            for i in np.nonzero(taps[o])[0]:
                patches[taps[o, i] - 1, o] = x_names[i]
        ax.text(
            0,
            top + 1.0,
            f"im2col  y = kernel · patches\none column of {n_taps} input pixels per output",
            fontsize=_FONT,
            va="bottom",
        )
        middle = top - (n_taps - 1) / 2  # the kernel and the result sit level with the patches
        kernel_row = np.array([tap_names], dtype=object)
        _matrix_cells(ax, 0, middle, kernel_row, np.arange(1, n_taps + 1)[None, :])
        ax.text(n_taps + 0.6, middle - 0.5, "·", ha="center", va="center", fontsize=_FONT + 12)
        p_left = n_taps + 1.2
        _matrix_cells(ax, p_left, top, patches, np.zeros_like(patches, dtype=int), (), y_names)
        ax.text(
            p_left + n_out + 0.6, middle - 0.5, "=", ha="center", va="center", fontsize=_FONT + 5
        )
        result = np.array([y_names], dtype=object)
        _matrix_cells(ax, p_left + n_out + 1.2, middle, result, np.zeros((1, n_out), dtype=int))
        right = max(right, p_left + 2 * n_out + 1.2)
        extent_y = top - n_taps
    extent_x = right
    if transpose:
        left = right + 3.0 if right else 1.2
        ax.text(
            left - 1.2,
            1.0,
            f"transposed convolution\ndx = Cᵀ dy,  Cᵀ is {n_in} × {n_out}",
            fontsize=_FONT,
            va="bottom",
        )
        _matrix_cells(ax, left, 0, weight_text.T, taps.T, x_names, y_names)
        extent_x = max(left + n_out, left + 6.0)
        extent_y = min(extent_y, -n_in)
    ax.set_xlim(-1.6, extent_x + 0.3)
    ax.set_ylim(extent_y - 0.4, 2.6)
    ax.set_aspect("equal")
    ax.axis("off")
    unit = 0.34  # inches per cell
    fig.set_size_inches((extent_x + 1.9) * unit, (3.0 - extent_y) * unit)
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.99)
    return fig
