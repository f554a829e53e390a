"""The book's diagrams: they render, and what they draw is read from the modules they show."""

from __future__ import annotations

import copy
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from course_lib import diagrams
from course_lib.models import (
    GOOGLENET_INCEPTIONS,
    BasicBlock,
    Bottleneck,
    ConvNeXtBlock,
    DenseBlock,
    DenseLayer,
    Inception,
    alexnet,
    vgg,
)
from course_lib.transfer import freeze, load_model, replace_head


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png(fig: Figure) -> bytes:
    """The figure saved as PNG: rendering is the check that every artist draws."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def _box_width(fig: Figure, label: str) -> float:
    """The width of the rounded box that holds the text ``label``."""
    (ax,) = fig.axes
    (text,) = [t for t in ax.texts if t.get_text() == label]
    x, y = text.get_position()
    for patch in ax.patches:
        if isinstance(patch, FancyBboxPatch):
            left, bottom = patch.get_x(), patch.get_y()
            if left <= x <= left + patch.get_width() and bottom <= y <= bottom + patch.get_height():
                return patch.get_width()
    raise AssertionError(f"no box around {label!r}")


# ---------------------------------------------------------------------------------------------
# convolution_matrix
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel_size", "stride", "padding"),
    [((4, 4), 3, 1, 0), ((5, 6), 3, 2, 1), ((7, 5), (2, 3), 3, 0), ((3, 3), 1, 1, 2)],
)
def test_convolution_matrix_is_the_convolution_and_its_transpose_the_transposed_one(
    size, kernel_size, stride, padding
):
    gen = torch.Generator().manual_seed(0)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    kernel = torch.randn(kh, kw, generator=gen, dtype=torch.float64)
    x = torch.randn(1, 1, *size, generator=gen, dtype=torch.float64)
    c = diagrams.convolution_matrix(kernel, size, stride, padding)
    y = F.conv2d(x, kernel[None, None], stride=stride, padding=padding)
    assert c.shape == (y.numel(), x.numel())
    torch.testing.assert_close(c @ x.flatten(), y.flatten())
    # each row holds exactly the kernel's weights that fall inside the (unpadded) input
    assert (c != 0).sum(dim=1).max() <= kh * kw
    dy = torch.randn_like(y)
    dx = torch.nn.grad.conv2d_input(x.shape, kernel[None, None], dy, stride=stride, padding=padding)
    torch.testing.assert_close(c.T @ dy.flatten(), dx.flatten())


def test_convolution_matrix_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"kernel with 2 dims \(kh, kw\)"):
        diagrams.convolution_matrix(torch.ones(1, 3, 3), (4, 4))
    with pytest.raises(ValueError, match="does not fit the padded input"):
        diagrams.convolution_matrix(torch.ones(5, 5), (4, 4))
    with pytest.raises(ValueError, match="stride must be a positive int"):
        diagrams.convolution_matrix(torch.ones(3, 3), (4, 4), stride=0)
    with pytest.raises(ValueError, match="padding must be a non-negative int"):
        diagrams.convolution_matrix(torch.ones(3, 3), (4, 4), padding=-1)


def test_convolution_matrix_figure_names_every_weight_where_the_matrix_has_it():
    fig = diagrams.convolution_matrix_figure((4, 4), 3)
    _png(fig)
    texts = _texts(fig)
    assert any("C is 4 × 16" in t for t in texts)
    assert any("Cᵀ is 16 × 4" in t for t in texts)
    # C and Cᵀ hold every weight once per output (4 × 9 each), im2col's kernel row once more
    assert texts.count("w₁₁") == 4 + 4 + 1
    # im2col: the patch of the first output starts at x₁₁, that of the last ends at x₄₄
    assert texts.count("x₄₄") >= 2
    alone = diagrams.convolution_matrix_figure((4, 4), 3, matrix=False, im2col=False)
    assert _texts(alone).count("w₁₁") == 4 and not any("C is" in t for t in _texts(alone))
    with pytest.raises(ValueError, match="nothing to draw"):
        diagrams.convolution_matrix_figure(matrix=False, im2col=False, transpose=False)
    only_c = diagrams.convolution_matrix_figure((5, 5), 3, stride=2, im2col=False, transpose=False)
    assert any("C is 4 × 25" in t and "stride 2" in t for t in _texts(only_c))


# ---------------------------------------------------------------------------------------------
# networks and blocks
# ---------------------------------------------------------------------------------------------


def test_network_diagram_of_alexnet_shows_the_traced_shapes():
    with torch.device("meta"):
        model = alexnet("paper")
    fig = diagrams.network_diagram(model, (3, 227, 227), title="AlexNet")
    _png(fig)
    texts = _texts(fig)
    for shape in ("227×227×3", "55×55×96", "27×27×96", "6×6×256", "4,096", "1,000"):
        assert shape in texts
    assert "conv\n11×11/4" in texts and "max pool\n3×3/2" in texts
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        diagrams.network_diagram(model, (1, 3, 227, 227))


def test_network_diagram_merges_vggs_repeated_convolutions():
    with torch.device("meta"):
        model = vgg(16)
    merged = _texts(diagrams.network_diagram(model, (3, 224, 224), merge_repeats=True))
    assert merged.count("2 conv\n3×3") == 2 and merged.count("3 conv\n3×3") == 3
    plain = _texts(diagrams.network_diagram(model, (3, 224, 224)))
    assert plain.count("conv\n3×3") == 13


def test_block_diagram_reads_the_layers_and_widths_follow_the_channels():
    fig = diagrams.block_diagram(Bottleneck(256, 64), (256, 56, 56))
    _png(fig)
    texts = _texts(fig)
    for label in ("1×1 conv, 64", "3×3 conv, 64", "1×1 conv, 256", "identity"):
        assert label in texts
    assert "output 256 × 56 × 56" in texts
    assert _box_width(fig, "1×1 conv, 64") < _box_width(fig, "1×1 conv, 256")

    convnext = diagrams.block_diagram(ConvNeXtBlock(96), (96, 14, 14))
    assert _box_width(convnext, "1×1 conv, 384") > _box_width(convnext, "1×1 conv, 96")
    assert "7×7 depthwise, 96" in _texts(convnext)


def test_block_diagram_of_a_downsampling_block_shows_the_projection():
    texts = _texts(diagrams.block_diagram(BasicBlock(64, 128, stride=2), (64, 56, 56)))
    assert "3×3 conv, 128, stride 2" in texts
    assert "1×1 conv, 128\nstride 2 + BN" in texts
    assert "output 128 × 28 × 28" in texts
    zero_pad = _texts(diagrams.block_diagram(BasicBlock(16, 32, stride=2, shortcut="A")))
    assert "subsample,\nzero channels" in zero_pad
    dense = _texts(diagrams.block_diagram(DenseLayer(64, 32), (64, 8, 8)))
    assert "output 96 × 8 × 8 (input ‖ new)" in dense


def test_block_diagram_refuses_other_modules():
    with pytest.raises(TypeError, match="BasicBlock, Bottleneck, ConvNeXtBlock or DenseLayer"):
        diagrams.block_diagram(torch.nn.Conv2d(3, 3, 3))
    with pytest.raises(ValueError, match="blocks is empty"):
        diagrams.block_diagrams({})


def test_block_diagrams_share_one_width_scale():
    fig = diagrams.block_diagrams(
        {
            "bottleneck": (Bottleneck(256, 64), (256, 56, 56)),
            "ConvNeXt": (ConvNeXtBlock(96), (96, 56, 56)),
        }
    )
    _png(fig)
    assert [ax.get_title() for ax in fig.axes] == ["bottleneck", "ConvNeXt"]
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()


def test_dense_block_diagram_counts_the_channels_each_layer_reads():
    fig = diagrams.dense_block_diagram(DenseBlock(4, 64, 32))
    _png(fig)
    texts = _texts(fig)
    assert [t for t in texts if t.startswith("reads")] == [
        "reads 64",
        "reads 96",
        "reads 128",
        "reads 160",
    ]
    assert any("192 ch" in t for t in texts)
    (ax,) = fig.axes
    arcs = [
        p
        for p in ax.patches
        if isinstance(p, FancyArrowPatch) and getattr(p.get_connectionstyle(), "rad", 0) != 0
    ]
    assert len(arcs) == 4 * 5 // 2  # one from every earlier output to every later layer
    with pytest.raises(TypeError, match="DenseBlock"):
        diagrams.dense_block_diagram(DenseLayer(64, 32))


def test_inception_diagram_shows_the_branches_and_the_concatenated_width():
    _, c1, c3, c5, pool_proj = GOOGLENET_INCEPTIONS[0]
    fig = diagrams.inception_diagram(Inception(192, c1, c3, c5, pool_proj), (192, 28, 28))
    _png(fig)
    texts = _texts(fig)
    for label in ("1×1 conv, 64", "1×1 conv, 96", "3×3 conv, 128", "5×5 conv, 32"):
        assert label in texts
    assert "3×3 max pool, stride 1" in texts
    assert "concatenate along channels  256 × 28 × 28" in texts
    with pytest.raises(TypeError, match="Inception"):
        diagrams.inception_diagram(BasicBlock(4, 4))


# ---------------------------------------------------------------------------------------------
# freezing strategies
# ---------------------------------------------------------------------------------------------


def test_freezing_diagram_colours_follow_requires_grad():
    base = load_model(pretrained=False)
    replace_head(base, 10)
    probe, partial = copy.deepcopy(base), copy.deepcopy(base)
    freeze(probe, ["_fc"])
    freeze(partial, ["_blocks.15", "_conv_head", "_bn1", "_fc"])
    parts = [("stem", "_conv_stem"), ("block 14", "_blocks.14"), ("block 15", "_blocks.15")]
    parts += [("classifier", "_fc")]
    strategies = {
        "probe": (probe, ["_fc"]),
        "partial": (partial, ["_fc"]),
        "scratch": (copy.deepcopy(base), ["_fc"], "scratch"),
    }
    fig = diagrams.freezing_diagram(strategies, parts)
    _png(fig)
    (ax,) = fig.axes
    cells = [to_hex(p.get_facecolor()) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    style = {state: fill for state, (fill, _, _) in diagrams._FREEZE_STYLE.items()}
    frozen, trained, new, scratch = (style[s] for s in ("frozen", "trained", "new", "scratch"))
    assert cells == [
        frozen, frozen, frozen, new,
        frozen, frozen, trained, new,
        scratch, scratch, scratch, scratch,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no parameters under '_nothing'"):
        diagrams.freezing_diagram({"probe": (probe, [])}, [("x", "_nothing")])
    with pytest.raises(ValueError, match="strategies is empty"):
        diagrams.freezing_diagram({}, parts)
