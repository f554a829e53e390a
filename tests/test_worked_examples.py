"""The worked examples of the lecture notes, reproduced by code.

Each example's *inputs* (images, filters, layer settings) are written here as the notes give
them; every *result* is computed — by a hand-written loop, by course_lib's operators and by
``torch.nn.functional`` — and the three must agree. Where the notes print a wrong result, the
test asserts the correct value and a comment says how the notes differ.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib
from course_lib import (
    conv_output_size,
    count_parameters,
    pool_output_size,
    receptive_field,
    shape_trace,
)
from course_lib.models import fashion_mnist_cnn, lenet5

DT = torch.float64


# thousands of tiny operations: see the one_thread fixture in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=DT)


def nchw(matrix: torch.Tensor) -> torch.Tensor:
    return matrix[None, None]


def loop_corr2d(image: torch.Tensor, kernel: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """O(i, j) = sum_m sum_n I(i*stride + m, j*stride + n) F(m, n), written out."""
    kh, kw = kernel.shape
    oh = (image.shape[0] - kh) // stride + 1
    ow = (image.shape[1] - kw) // stride + 1
    out = torch.zeros(oh, ow, dtype=image.dtype)
    for i in range(oh):
        for j in range(ow):
            total = 0.0
            for m in range(kh):
                for n in range(kw):
                    total += float(image[i * stride + m, j * stride + n] * kernel[m, n])
            out[i, j] = total
    return out


def loop_max_pool(image: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    oh = (image.shape[0] - size) // stride + 1
    ow = (image.shape[1] - size) // stride + 1
    out = torch.empty(oh, ow, dtype=image.dtype)
    for i in range(oh):
        for j in range(ow):
            best = -math.inf
            for m in range(size):
                for n in range(size):
                    best = max(best, float(image[i * stride + m, j * stride + n]))
            out[i, j] = best
    return out


def all_convs(image: torch.Tensor, kernel: torch.Tensor, **kwargs) -> list[torch.Tensor]:
    """course_lib.conv2d and F.conv2d on the (1, 1, H, W) view, back to (H', W')."""
    return [
        course_lib.conv2d(nchw(image), nchw(kernel), **kwargs)[0, 0],
        F.conv2d(nchw(image), nchw(kernel), **kwargs)[0, 0],
    ]


# ---------------------------------------------------------------------------------------------
# Notes 003: convolution worked on a 7x7 input with a 3x3 filter
# ---------------------------------------------------------------------------------------------

INPUT_7X7 = t(
    [
        [6, 3, 4, 4, 5, 0, 3],
        [4, 7, 4, 0, 4, 0, 4],
        [7, 0, 2, 3, 4, 5, 2],
        [3, 7, 5, 0, 3, 0, 7],
        [5, 8, 1, 2, 5, 4, 2],
        [8, 0, 1, 0, 6, 0, 0],
        [6, 4, 1, 3, 0, 4, 5],
    ]
)
FILTER_3X3 = t([[1, 0, 1], [1, 0, 0], [0, 0, 2]])


def test_7x7_example_loop_corr2d_conv2d_and_pytorch_agree():
    expected = loop_corr2d(INPUT_7X7, FILTER_3X3)
    assert expected.shape == (5, 5)
    torch.testing.assert_close(course_lib.corr2d(INPUT_7X7, FILTER_3X3), expected)
    for result in all_convs(INPUT_7X7, FILTER_3X3):
        torch.testing.assert_close(result, expected)


def test_7x7_example_the_two_hand_computed_positions():
    out = loop_corr2d(INPUT_7X7, FILTER_3X3)
    # The notes' first hand calculation, 5x1 + 8x1 + 1x1 + 1x2 = 16, is the window whose
    # top-left corner is row 4, column 0 (not the top-left corner of the image, where the
    # notes' figure places it; the top-left output is computed below).
    window = INPUT_7X7[4:7, 0:3]
    assert torch.equal(window[[0, 0, 1, 2], [0, 2, 0, 2]], t([5, 1, 8, 1]))
    assert out[4, 0] == 5 * 1 + 8 * 1 + 1 * 1 + 1 * 2
    # The second, 4x1 + 4x1 + 4x1 + 7x2 = 26, is the window at row 1, column 4.
    assert out[1, 4] == 4 * 1 + 4 * 1 + 4 * 1 + 7 * 2
    top_left = INPUT_7X7[0, 0] + INPUT_7X7[0, 2] + INPUT_7X7[1, 0] + 2 * INPUT_7X7[2, 2]
    assert out[0, 0] == top_left
    assert out[0, 0] != out[4, 0]


def test_7x7_example_entries_the_notes_print_wrongly():
    out = loop_corr2d(INPUT_7X7, FILTER_3X3)
    # Notes' output figure: row 5, column 4 (1-based) reads 16; the correct value is
    # 2*1 + 4*1 + 0*1 + 4*2 = 14 (window rows 4-6, columns 3-5).
    w = INPUT_7X7[4:7, 3:6]
    assert out[4, 3] == w[0, 0] + w[0, 2] + w[1, 0] + 2 * w[2, 2]
    assert out[4, 3] == 14
    # Notes' "NumPy Implementation Output" ([[16 26 18 14 17] ...]) is not the output of the
    # code it prints: that code computes `out` above, whose first row starts with the
    # top-left window's value, not 16 and 26 (which are the entries [4, 0] and [1, 4]).
    assert out[0, 0] == 18
    assert out[0, 1] == 20
    # Notes' "TensorFlow Implementation Output" shows non-integer values; a convolution of
    # integers with an integer filter gives integers. Only its shape (1, 5, 5, 1) in NHWC,
    # i.e. (1, 1, 5, 5) in NCHW, is right.
    assert torch.equal(out, out.round())
    assert F.conv2d(nchw(INPUT_7X7), nchw(FILTER_3X3)).shape == (1, 1, 5, 5)


def test_7x7_example_is_cross_correlation_not_flipped_convolution():
    """The notes' formula O(i,j) = sum I(i+m, j+n) F(m,n) is cross-correlation (what deep
    learning libraries call convolution); the mathematical convolution flips the filter."""
    from scipy import signal  # a dependency of scikit-learn and scikit-image

    true_convolution = torch.from_numpy(
        signal.convolve2d(INPUT_7X7.numpy(), FILTER_3X3.numpy(), mode="valid")
    )
    flipped = torch.flip(FILTER_3X3, dims=(0, 1))
    torch.testing.assert_close(course_lib.corr2d(INPUT_7X7, flipped), true_convolution)
    assert not torch.equal(true_convolution, loop_corr2d(INPUT_7X7, FILTER_3X3))


# ---------------------------------------------------------------------------------------------
# Notes 001: a 5x5 binary image with a 3x3 filter, and a 6x6 input with a 3x3 kernel
# ---------------------------------------------------------------------------------------------

IMAGE_5X5_BINARY = t(
    [
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
    ]
)
FILTER_X = t([[1, 0, 1], [0, 1, 0], [1, 0, 1]])  # the "x1 x0 x1 / x0 x1 x0 / x1 x0 x1" overlay


def test_5x5_binary_image_convolved_feature():
    out = loop_corr2d(IMAGE_5X5_BINARY, FILTER_X)
    for result in all_convs(IMAGE_5X5_BINARY, FILTER_X):
        torch.testing.assert_close(result, out)
    assert out.shape == (3, 3)
    # the first step of the notes: overlay at the top-left corner, multiply, add
    assert out[0, 0] == (IMAGE_5X5_BINARY[:3, :3] * FILTER_X).sum()


def test_6x6_input_with_3x3_kernel_gives_4x4():
    assert conv_output_size(6, 3) == 4
    image = torch.arange(36, dtype=DT).reshape(6, 6)
    for result in all_convs(image, torch.ones(3, 3, dtype=DT)):
        assert result.shape == (4, 4)


# ---------------------------------------------------------------------------------------------
# Max pooling: notes 002 (4x4) and 003 (4x4 and 6x6), all 2x2 with stride 2
# ---------------------------------------------------------------------------------------------

POOL_002_4X4 = t([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]])
POOL_003_4X4 = t([[1, 3, 2, 4], [5, 6, 1, 8], [9, 2, 7, 3], [4, 5, 6, 1]])
POOL_003_6X6 = t(
    [
        [1, 3, 2, 4, 8, 6],
        [5, 6, 1, 8, 7, 3],
        [9, 2, 7, 3, 6, 5],
        [4, 5, 6, 1, 9, 2],
        [8, 3, 4, 7, 2, 1],
        [5, 7, 9, 2, 3, 6],
    ]
)


@pytest.mark.parametrize("image", [POOL_002_4X4, POOL_003_4X4, POOL_003_6X6])
def test_max_pooling_examples(image):
    expected = loop_max_pool(image, 2, 2)
    assert expected.shape == (image.shape[0] // 2, image.shape[1] // 2)
    torch.testing.assert_close(course_lib.max_pool2d(nchw(image), 2, 2)[0, 0], expected)
    torch.testing.assert_close(F.max_pool2d(nchw(image), 2, 2)[0, 0], expected)
    # each output is the largest of its own 2x2 block
    blocks = image.reshape(image.shape[0] // 2, 2, image.shape[1] // 2, 2)
    torch.testing.assert_close(blocks.amax(dim=(1, 3)), expected)


def test_max_pooling_003_4x4_has_a_2x2_output():
    # The notes print this 2x2 output as four rows of two numbers (3 4 / 6 8 / 9 7 / 5 6);
    # the output has two rows, the maxima of the four blocks: [[6, 8], [9, 7]]. "3 4" and
    # "5 6" are not maxima of any block.
    out = loop_max_pool(POOL_003_4X4, 2, 2)
    assert out.shape == (2, 2)
    assert out.tolist() == [[6, 8], [9, 7]]


def test_pooling_sizes_of_002_and_001():
    # 002: a 28x28 map, 2x2 max pooling with stride 2 -> 14x14; 001: (14 - 2)/2 + 1 = 7
    assert pool_output_size(28, 2, 2) == 14
    assert pool_output_size(14, 2, 2) == 7
    assert course_lib.max_pool2d(torch.zeros(1, 1, 28, 28, dtype=DT), 2, 2).shape[-2:] == (14, 14)


# ---------------------------------------------------------------------------------------------
# Notes 003: same / valid / full padding and stride 1 / 2 / 3 on a 5x5 input, 3x3 filter
# ---------------------------------------------------------------------------------------------

INPUT_5X5 = torch.arange(1, 26, dtype=DT).reshape(5, 5)  # 1 ... 25, row by row
BOX_3X3 = torch.full((3, 3), 1 / 9, dtype=DT)  # the notes name no filter; a 3x3 mean


@pytest.mark.parametrize(
    ("name", "padding", "size"),
    [("valid", 0, 5 - 3 + 1), ("same", (3 - 1) // 2, 5), ("full", 3 - 1, 5 + 3 - 1)],
)
def test_same_valid_full_padding_sizes(name, padding, size):
    assert conv_output_size(5, 3, padding=padding) == size
    for result in all_convs(INPUT_5X5, BOX_3X3, padding=padding):
        assert result.shape == (size, size), name


def test_same_padding_adds_one_ring_of_zeros():
    # The notes' "After Padding (7x7)" table is garbled (rows repeat, values are missing);
    # the padded input is the 5x5 input inside one ring of zeros.
    padded = F.pad(INPUT_5X5, (1, 1, 1, 1))
    assert padded.shape == (7, 7)
    assert torch.equal(padded[1:-1, 1:-1], INPUT_5X5)
    border = torch.ones(7, 7, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    assert torch.count_nonzero(padded[border]) == 0
    torch.testing.assert_close(
        course_lib.conv2d(nchw(INPUT_5X5), nchw(BOX_3X3), padding=1)[0, 0],
        loop_corr2d(padded, BOX_3X3),
    )


def test_full_padding_sees_every_partial_overlap():
    out = course_lib.conv2d(nchw(INPUT_5X5), nchw(torch.ones(3, 3, dtype=DT)), padding=2)[0, 0]
    assert out.shape == (7, 7)
    assert out[0, 0] == INPUT_5X5[0, 0]  # only the corner pixel overlaps the filter
    assert out[3, 3] == INPUT_5X5[1:4, 1:4].sum()  # fully inside: a 3x3 block sum
    assert out.sum() == 9 * INPUT_5X5.sum()  # every pixel meets all 9 filter entries


@pytest.mark.parametrize(("stride", "size"), [(1, 3), (2, 2), (3, 1)])
def test_strides_1_2_3(stride, size):
    # (5 - 3)/stride + 1, rounded down: 3, 2 and 1
    assert conv_output_size(5, 3, stride=stride) == size
    dense = loop_corr2d(INPUT_5X5, BOX_3X3)
    strided = loop_corr2d(INPUT_5X5, BOX_3X3, stride=stride)
    assert strided.shape == (size, size)
    # a strided convolution is the stride-1 output sampled every `stride` positions
    torch.testing.assert_close(strided, dense[::stride, ::stride])
    for result in all_convs(INPUT_5X5, BOX_3X3, stride=stride):
        torch.testing.assert_close(result, strided)


def test_box_filter_values_on_the_5x5_input():
    # With a 3x3 mean filter each output is the centre pixel of its window (1..25 is linear),
    # i.e. [[7, 8, 9], [12, 13, 14], [17, 18, 19]]. The notes print [[8, 9, 10], [13, 14, 15],
    # [18, 19, 20]] without naming a filter: every value is 1 larger, as for this filter plus a
    # bias of 1. The sampling pattern of stride 2 and 3 in the notes matches.
    out = loop_corr2d(INPUT_5X5, BOX_3X3)
    torch.testing.assert_close(out, INPUT_5X5[1:4, 1:4])
    biased = course_lib.conv2d(nchw(INPUT_5X5), nchw(BOX_3X3), bias=torch.ones(1, dtype=DT))
    torch.testing.assert_close(biased[0, 0], INPUT_5X5[1:4, 1:4] + 1)


# ---------------------------------------------------------------------------------------------
# Notes 003: bias, and ReLU
# ---------------------------------------------------------------------------------------------

BIAS_INPUT = torch.arange(1, 10, dtype=DT).reshape(3, 3)  # 1 2 3 / 4 5 6 / 7 8 9
BIAS_FILTER = t([[1, 0, -1], [1, 0, -1], [1, 0, -1]])


def test_bias_example_output_is_not_zero():
    # The notes claim the output is a 3x3 of zeros without bias and of ones with bias +1.
    # Both are wrong. Without padding, a 3x3 filter on a 3x3 input gives ONE value:
    # (1 + 4 + 7) - (3 + 6 + 9) = -6 (cross-correlation; a flipped, true convolution gives +6).
    valid = loop_corr2d(BIAS_INPUT, BIAS_FILTER)
    assert valid.shape == (1, 1)
    assert valid[0, 0] == (1 + 4 + 7) - (3 + 6 + 9)
    assert valid[0, 0] == -6
    for result in all_convs(BIAS_INPUT, BIAS_FILTER):
        torch.testing.assert_close(result, valid)
    # With 'same' padding the output is 3x3, and still not zero anywhere.
    same = course_lib.conv2d(nchw(BIAS_INPUT), nchw(BIAS_FILTER), padding=1)[0, 0]
    torch.testing.assert_close(same, loop_corr2d(F.pad(BIAS_INPUT, (1, 1, 1, 1)), BIAS_FILTER))
    assert torch.count_nonzero(same) == 9
    # The bias is added to every output position: bias +1 gives -5, and same + 1.
    bias = torch.ones(1, dtype=DT)
    with_bias = course_lib.conv2d(nchw(BIAS_INPUT), nchw(BIAS_FILTER), bias=bias)[0, 0]
    assert with_bias[0, 0] == valid[0, 0] + 1
    torch.testing.assert_close(
        course_lib.conv2d(nchw(BIAS_INPUT), nchw(BIAS_FILTER), bias=bias, padding=1)[0, 0],
        same + 1,
    )


def test_bias_makes_a_zero_response_non_zero():
    # The notes' point holds for an input on which the filter's response IS zero: a constant
    # image (no vertical edge). Then the output is 0 without bias and b with bias b.
    flat = torch.full((3, 3), 5.0, dtype=DT)
    assert course_lib.conv2d(nchw(flat), nchw(BIAS_FILTER))[0, 0, 0, 0] == 0
    bias = torch.tensor([1.0], dtype=DT)
    assert course_lib.conv2d(nchw(flat), nchw(BIAS_FILTER), bias=bias)[0, 0, 0, 0] == 1


def test_relu_example():
    feature_map = t([[-2, 3, -1], [4, -5, 6], [-7, 8, -9]])
    out = course_lib.relu(feature_map)
    assert out.shape == feature_map.shape
    torch.testing.assert_close(out, torch.where(feature_map > 0, feature_map, 0.0))
    assert torch.count_nonzero(out) == int((feature_map > 0).sum())


# ---------------------------------------------------------------------------------------------
# Notes 001: the Fashion-MNIST network, stage by stage
# ---------------------------------------------------------------------------------------------


def notes_formula(w: int, f: int, p: int, s: int) -> int:
    """W_out = (W - F + 2P)/S + 1, as in the notes (exact division in these examples)."""
    assert (w - f + 2 * p) % s == 0
    return (w - f + 2 * p) // s + 1


def test_fashion_mnist_network_shapes():
    conv1 = notes_formula(28, 5, 2, 1)
    pool1 = notes_formula(conv1, 2, 0, 2)
    conv2 = notes_formula(pool1, 5, 2, 1)
    pool2 = notes_formula(conv2, 2, 0, 2)
    assert (conv1, pool1, conv2, pool2) == (28, 14, 14, 7)
    model = fashion_mnist_cnn()
    rows = {r.name: r.output_shape for r in shape_trace(model, (1, 28, 28))}
    assert rows["conv1"] == (16, conv1, conv1)
    assert rows["pool1"] == (16, pool1, pool1)
    assert rows["conv2"] == (32, conv2, conv2)
    assert rows["pool2"] == (32, pool2, pool2)
    assert rows["flatten"] == (32 * pool2 * pool2,)
    assert rows["fc"] == (10,)
    # and running the model agrees with the analysis
    x = torch.randn(3, 1, 28, 28)
    for name, layer in model.named_children():
        x = layer(x)
        assert tuple(x.shape[1:]) == rows[name]


# ---------------------------------------------------------------------------------------------
# LeNet-5 layer by layer (notes 001 and 003)
# ---------------------------------------------------------------------------------------------


def test_lenet5_layer_by_layer():
    c1 = conv_output_size(32, 5)
    s2 = pool_output_size(c1, 2, 2)
    c3 = conv_output_size(s2, 5)
    s4 = pool_output_size(c3, 2, 2)
    c5 = conv_output_size(s4, 5)
    assert (c1, s2, c3, s4, c5) == (28, 14, 10, 5, 1)
    for variant in ("original", "modern"):
        shapes = [r.output_shape for r in shape_trace(lenet5(variant), (1, 28, 28))]
        for expected in [(6, c1, c1), (6, s2, s2), (16, c3, c3), (16, s4, s4), (84,), (10,)]:
            assert expected in shapes, (variant, expected)


def _forward_with_course_lib_ops(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run a model layer by layer with course_lib's operators where it has them."""
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            bias = None if layer.bias is None else layer.bias.detach()
            x = course_lib.conv2d(
                x, layer.weight.detach(), bias, layer.stride, layer.padding, layer.dilation
            )
        elif isinstance(layer, nn.AvgPool2d):
            x = course_lib.avg_pool2d(x, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, nn.MaxPool2d):
            x = course_lib.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, nn.ReLU):
            x = course_lib.relu(x)
        else:
            x = layer(x)
    return x


@pytest.mark.parametrize("name", ["lenet5-original", "lenet5-modern", "fashion_mnist_cnn"])
def test_the_networks_forward_with_course_lib_operators(name):
    torch.manual_seed(0)
    model = fashion_mnist_cnn() if name == "fashion_mnist_cnn" else lenet5(name.split("-")[1])
    model = model.to(DT).eval()
    x = torch.randn(2, 1, 28, 28, dtype=DT)
    with torch.no_grad():
        torch.testing.assert_close(_forward_with_course_lib_ops(model, x), model(x))


def test_lenet5_parameter_count_of_the_paper_is_60000():
    """The notes' "about 60,000 parameters" is the original network's count.

    In the 1998 paper C3's 16 maps see 3, 4 or 6 of S2's maps (6 maps see 3, 9 see 4, one
    sees all 6), and S2/S4 have one trainable coefficient and one bias per map. The output
    RBF units have fixed parameters. With C3 fully connected (as in course_lib's lenet5) the
    count is 61,706.
    """
    c1 = 6 * (5 * 5 * 1 + 1)
    s2 = 6 * 2
    c3 = 5 * 5 * (6 * 3 + 9 * 4 + 1 * 6) + 16
    s4 = 16 * 2
    c5 = 120 * (5 * 5 * 16 + 1)
    f6 = 84 * (120 + 1)
    assert c1 + s2 + c3 + s4 + c5 + f6 == 60_000
    full = count_parameters(lenet5("original"))
    assert full == c1 + (16 * (5 * 5 * 6 + 1)) + c5 + f6 + 10 * (84 + 1)
    assert full == 61_706


# ---------------------------------------------------------------------------------------------
# Notes 001/002: fully connected versus convolutional parameter counts
# ---------------------------------------------------------------------------------------------


def test_224x224x3_image_in_a_fully_connected_layer():
    features = shape_trace(nn.Sequential(nn.Flatten()), (3, 224, 224))[0].output_shape[0]
    assert features == 224 * 224 * 3 == 150_528
    # "over a million weights in the first layer alone": already 7 hidden units are enough
    units = math.ceil(1_000_000 / features)
    assert units == 7
    with torch.device("meta"):  # no memory is allocated for these weights
        assert count_parameters(nn.Linear(features, units, bias=False)) > 1_000_000
        # with 1000 hidden units it is over 150 million
        assert count_parameters(nn.Linear(features, 1000)) == features * 1000 + 1000
    # a convolution with 64 filters of 3x3x3 needs only 1,792, whatever the image size
    assert count_parameters(nn.Conv2d(3, 64, 3)) == 64 * (3 * 3 * 3 + 1)


def test_28x28x32_convolution_layer_example():
    layer = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding="same")
    x = torch.randn(1, 1, 28, 28, dtype=DT)
    out = course_lib.conv2d(x, layer.weight.detach().to(DT), layer.bias.detach().to(DT), padding=1)
    assert out.shape == (1, 32, 28, 28)
    torch.testing.assert_close(out, layer.to(DT)(x).detach())
    assert shape_trace(nn.Sequential(layer), (1, 28, 28))[0].output_shape == (32, 28, 28)
    assert count_parameters(layer) == 32 * (3 * 3 * 1 + 1) == 320
    assert count_parameters(nn.Conv2d(3, 32, 3)) == 32 * (3 * 3 * 3 + 1)  # on an RGB input


def test_flatten_examples():
    # 002: a 12x12x32 feature map flattens to 12*12*32 values
    assert shape_trace(nn.Sequential(nn.Flatten()), (32, 12, 12))[0].output_shape == (4608,)
    pooled = t([[1, 1, 0], [4, 2, 1], [0, 2, 1]])
    row_by_row = [value for row in pooled.tolist() for value in row]
    assert nn.Flatten()(nchw(pooled)).tolist() == [row_by_row]


def test_two_fc_layers_of_4096():
    assert count_parameters(nn.Linear(4096, 4096)) == 4096 * 4096 + 4096  # over 16 million


def test_5x5_versus_two_3x3_filters():
    # The notes say a 5x5xc filter needs 25c parameters and two 3x3xc filters "only 18"; it
    # is 18c (9c each), and both see a 5x5 region.
    for c in (1, 3, 16):
        one = count_parameters(nn.Conv2d(c, 1, 5, bias=False))
        two = count_parameters(nn.Conv2d(c, 1, 3, bias=False)) * 2
        assert (one, two) == (25 * c, 18 * c)
    rows = receptive_field([nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)])
    assert rows[-1].receptive_field == (5, 5)
    # VGG (003): three 3x3 convolutions see 7x7 with 27 weights per channel pair, not 49
    rows = receptive_field([nn.Conv2d(1, 1, 3) for _ in range(3)])
    assert rows[-1].receptive_field == (7, 7)


# ---------------------------------------------------------------------------------------------
# AlexNet and VGG (notes 001 and 003)
# ---------------------------------------------------------------------------------------------


def test_alexnet_table_needs_a_227_input():
    # Conv1: 96 filters 11x11, stride 4, no padding. From the notes' 224x224 input this gives
    # floor((224 - 11)/4) + 1 = 54, not the table's 55; 55 comes from 227 (as notes 001 say).
    assert conv_output_size(224, 11, stride=4) == 54
    conv1 = conv_output_size(227, 11, stride=4)
    pool1 = pool_output_size(conv1, 3, 2)
    conv2 = conv_output_size(pool1, 5, padding=2)
    pool2 = pool_output_size(conv2, 3, 2)
    conv345 = conv_output_size(conv_output_size(conv_output_size(pool2, 3, 1, 1), 3, 1, 1), 3, 1, 1)
    pool3 = pool_output_size(conv345, 3, 2)
    assert (conv1, pool1, conv2, pool2, conv345, pool3) == (55, 27, 27, 13, 13, 6)


def _vgg16_meta() -> nn.Sequential:
    from torchvision.models import vgg16

    with torch.device("meta"):
        vgg = vgg16(weights=None)
    return nn.Sequential(vgg.features, vgg.avgpool, nn.Flatten(), vgg.classifier)


def test_vgg16_spatial_sizes_and_parameters():
    rows = shape_trace(_vgg16_meta(), (3, 224, 224))
    pooled = [r.output_shape[1] for r in rows if r.type == "MaxPool2d"]
    assert pooled == [224 // 2**k for k in range(1, 6)]  # 112, 56, 28, 14, 7
    total = sum(r.params for r in rows)
    fc6 = next(r for r in rows if r.type == "Linear")
    assert fc6.params == 7 * 7 * 512 * 4096 + 4096  # 102.76 million
    assert round(total / 1e6) == 138
    dense = sum(r.params for r in rows if r.type == "Linear")
    assert 0.74 < fc6.params / total < 0.75  # "75% in a single FC layer": 74.3%
    assert 0.89 < dense / total < 0.90  # "90% in dense connections": 89.4%


def test_vgg16_activation_memory_per_image():
    # The notes say 93 MB per image and 12 GB for a batch of 128. Adding up the outputs of the
    # input, the 13 convolutions, 5 poolings and 3 dense layers gives about 15.2 million
    # values, 61 MB (58 MiB) in float32 per image for the forward pass, and 7.8 GB for 128
    # images. 93 MB corresponds to 24 million values, which the layer sizes do not add up to.
    rows = shape_trace(_vgg16_meta(), (3, 224, 224))
    counted = [r for r in rows if r.type in ("Conv2d", "MaxPool2d", "Linear")]
    values = 3 * 224 * 224 + sum(r.activations for r in counted)
    by_formula = 3 * 224 * 224
    size = 224
    for convs, channels in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]:
        by_formula += convs * channels * size * size  # convolutions keep the size
        size //= 2
        by_formula += channels * size * size  # the pooling halves it
    by_formula += 4096 + 4096 + 1000
    assert values == by_formula
    per_image = values * 4
    assert 60e6 < per_image < 62e6
    assert 7.7e9 < per_image * 128 < 7.9e9
    costs = course_lib.layer_costs(rows)
    first_conv = next(c for c in costs if c.type == "Conv2d")
    assert first_conv.activation_bytes == 64 * 224 * 224 * 4  # the early layers dominate memory
    assert (
        first_conv.activation_bytes
        > 200 * next(c for c in costs if c.type == "Linear").activation_bytes
    )


def test_every_listed_example_uses_the_same_output_size_rule():
    """conv_output_size agrees with PyTorch for every (size, filter, stride, padding) above."""
    cases = [(7, 3, 1, 0), (6, 3, 1, 0), (5, 3, 1, 0), (5, 3, 2, 0), (5, 3, 3, 0), (5, 3, 1, 1)]
    cases += [(5, 3, 1, 2), (28, 5, 1, 2), (14, 5, 1, 2), (32, 5, 1, 0), (227, 11, 4, 0)]
    for n, k, s, p in cases:
        out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p)
        assert conv_output_size(n, k, s, p) == out.shape[-1]
