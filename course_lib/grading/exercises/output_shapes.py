"""The ``output_shapes`` assignment: output sizes, shapes and parameter counts of layers."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from .. import diagnoses as dg
from ..diagnoses import Diagnosis, Variant
from ._base import (
    PASS,
    Assignment,
    Chapter,
    Exercise,
    HiddenTest,
    Inputs,
    Raised,
    Trial,
    Verdict,
    Visible,
    expect_value_error,
    fail,
    is_int,
    judge_int,
    pair,
    settings,
)
from ._base import ref as reference
from ._policy import COURSE_LIB, NUMPY_AND_STDLIB, WINDOW_OPERATORS

FORBIDDEN = WINDOW_OPERATORS + COURSE_LIB

NO_VALUE_ERROR = Diagnosis(
    "no_value_error",
    "invalid settings are not rejected with ValueError",
    "check the arguments first (k >= 1, s >= 1, p >= 0, d >= 1, output size >= 1) and raise "
    "ValueError",
)
TRUNCATED_DIVISION = Diagnosis(
    "truncated_division",
    "the division truncates toward zero (int(a / b)) instead of rounding down (a // b)",
    "for a negative numerator int(-1 / 2) is 0 but -1 // 2 is -1: use // so that a kernel that "
    "does not fit gives a size below 1 (and a ValueError)",
)
POOL_STRIDE_DEFAULT = Diagnosis(
    "pool_stride_default",
    "stride=None is not turned into the kernel size",
    "for pooling, stride defaults to kernel_size: if stride is None: stride = kernel_size",
)
NUM_PARAMS_BIAS = Diagnosis(
    "num_params_bias",
    "the biases are counted wrongly",
    "a convolution has one bias per output channel (none when bias=False)",
)
NUM_PARAMS_KERNEL = Diagnosis(
    "num_params_kernel",
    "the kernel's weights are counted wrongly",
    "weights: out_channels * in_channels * kh * kw, with (kh, kw) = kernel_size",
)
BATCH_AXIS_INCLUDED = Diagnosis(
    "batch_axis_included",
    "the batch axis is included in the shapes",
    "input_shape is (C, H, W) without a batch axis; the shapes returned have none",
)
SAME_PADDING_IGNORED = Diagnosis(
    "same_padding_ignored",
    "padding='same' / 'valid' is not handled",
    "'same' keeps H and W (stride 1), 'valid' means padding 0",
)
CHANNELS_WRONG = Diagnosis(
    "channels_wrong",
    "the number of channels is wrong",
    "a convolution outputs out_channels channels; pooling keeps the channels",
)
NOT_A_SHAPE_LIST = Diagnosis(
    "not_a_shape_list",
    "the result is not a list with one shape tuple per layer",
    "append one tuple of ints per layer, e.g. (6, 28, 28), and return the list",
)

SIZE_DIAGNOSES = (
    dg.SIZE_OFF_BY_ONE,
    dg.PADDING_COUNTED_ONCE,
    dg.PADDING_IGNORED,
    dg.DILATION_IGNORED,
    dg.CEIL_NOT_FLOOR,
    dg.STRIDE_IGNORED,
    dg.TRUE_DIVISION,
    NO_VALUE_ERROR,
    TRUNCATED_DIVISION,
)

POLICY: dict[str, Any] = {"allowed_imports": NUMPY_AND_STDLIB, "forbidden_names": FORBIDDEN}


def _size_label(n: int, kernel_size: int, **values: object) -> str:
    return ", ".join([f"n={n}", f"kernel_size={kernel_size}", *(f"{k}={v}" for k, v in values.items())])


def _size_inputs(rows: list[tuple[int, int, dict]]) -> list[Inputs]:
    return [Inputs((n, k), dict(s), _size_label(n, k, **s)) for n, k, s in rows]


# ---------------------------------------------------------------------------------------------
# conv_output_size and pool_output_size
# ---------------------------------------------------------------------------------------------


def _draw_conv_size(rng: np.random.Generator) -> list[Inputs]:
    fixed = [
        (28, 5, 1, 2, 1),
        (7, 3, 2, 0, 1),
        (32, 3, 1, 1, 2),
        (5, 5, 1, 0, 1),  # exactly 1
        (10, 3, 3, 0, 1),
        (9, 2, 2, 1, 1),
        (1, 1, 1, 0, 1),
        (227, 11, 4, 0, 1),
        (4, 5, 2, 1, 1),  # (4 + 2 - 5) // 2 + 1 = 1: just fits
        (6, 3, 4, 0, 2),  # (6 - 4 - 1) // 4 + 1 = 1
    ]
    while len(fixed) < 24:
        n, k = int(rng.integers(1, 41)), int(rng.integers(1, 8))
        s, p, d = int(rng.integers(1, 5)), int(rng.integers(0, 4)), int(rng.integers(1, 4))
        if n + 2 * p - d * (k - 1) - 1 >= 0:
            fixed.append((n, k, s, p, d))
    rows = [
        (n, k, settings(stride=s if s != 1 else None, padding=p or None, dilation=d if d != 1 else None))
        for n, k, s, p, d in fixed
    ]
    return _size_inputs(rows)


def _draw_conv_size_errors(rng: np.random.Generator) -> list[Inputs]:
    return _size_inputs(
        [
            (5, 0, {}),
            (5, 3, {"stride": 0}),
            (5, 3, {"padding": -1}),
            (5, 3, {"dilation": 0}),
            (3, 5, {}),
            (4, 3, {"dilation": 2}),
            (2, 4, {"stride": 2, "padding": 0}),
            # one short of fitting: (4 - 5) // 2 + 1 = 0, while int((4 - 5) / 2) + 1 = 1
            (4, 5, {"stride": 2}),
            (4, 3, {"stride": 2, "dilation": 2}),
            (1, 4, {"stride": 3, "padding": 1}),
        ]
    )


def _draw_pool_size(rng: np.random.Generator) -> list[Inputs]:
    fixed: list[tuple[int, int, int | None, int]] = [
        (28, 2, None, 0),
        (7, 2, None, 0),
        (9, 3, 2, 1),
        (6, 3, 1, 0),
        (13, 3, 2, 0),
        (5, 5, None, 0),  # exactly 1
        (10, 4, 3, 2),
        (3, 4, 2, 1),  # (3 + 2 - 4) // 2 + 1 = 1
    ]
    while len(fixed) < 20:
        k = int(rng.integers(1, 6))
        n = int(rng.integers(k, 33))
        s = None if rng.random() < 0.4 else int(rng.integers(1, 5))
        p = int(rng.integers(0, k // 2 + 1))
        fixed.append((n, k, s, p))
    return _size_inputs([(n, k, settings(stride=s, padding=p or None)) for n, k, s, p in fixed])


def _draw_pool_size_errors(rng: np.random.Generator) -> list[Inputs]:
    return _size_inputs(
        [
            (5, 0, {}),
            (5, 2, {"stride": 0}),
            (5, 2, {"padding": -1}),
            (3, 4, {}),
            (2, 3, {"stride": 1}),
            (3, 4, {"stride": 2}),  # (3 - 4) // 2 + 1 = 0, truncation gives 1
            (5, 6, {"stride": 3}),
        ]
    )


def _size_terms(t: Trial) -> tuple[int, int, int, int, int]:
    a = t.a
    n, k, p = a["n"], a["kernel_size"], a["padding"]
    if t.case.function == "conv_output_size":
        s, d = a["stride"], a["dilation"]
    else:
        s, d = (k if a["stride"] is None else a["stride"]), 1
    return n, k, s, p, d


def _judge_size(t: Trial, out: object) -> Verdict:
    n, k, s, p, d = _size_terms(t)
    span = n + 2 * p - d * (k - 1) - 1
    if isinstance(t.expected, Raised):
        variants = []
        if k >= 1 and s >= 1 and p >= 0 and d >= 1:
            truncated = int(span / s) + 1
            if truncated >= 1:
                variants.append(Variant("truncated_division", truncated))
        return expect_value_error(t, out, variants)
    if isinstance(out, Raised):
        return fail(t.case, f"raised {out.type_name}: {out.message}, expected {t.expected}")
    variants = [
        Variant("ceil_not_floor", -(-span // s) + 1),
        Variant("padding_counted_once", (span - p) // s + 1),
        Variant("padding_ignored", (span - 2 * p) // s + 1),
        Variant("dilation_ignored", (n + 2 * p - k) // s + 1),
        Variant("dilation_ignored", (n + 2 * p - d * k) // s + 1),
        Variant("stride_ignored", span + 1),
        Variant("size_off_by_one", span // s),
        Variant("size_off_by_one", span // s + 2),
        Variant("size_off_by_one", (span + 1) // s + 1),
    ]
    if t.case.function == "pool_output_size" and t.a["stride"] is None:
        variants.insert(0, Variant("pool_stride_default", span + 1))
    return judge_int(t.case, out, t.expected, variants)


CONV_OUTPUT_SIZE = Exercise(
    name="conv_output_size",
    summary="output size of a convolution along one axis",
    tests=(
        HiddenTest(
            "test_conv_output_size",
            2.0,
            "many sizes, kernels, strides, paddings and dilations, outputs of exactly 1",
            _draw_conv_size,
        ),
        HiddenTest(
            "test_conv_output_size_errors",
            1.0,
            "out-of-range settings and kernels that do not fit (also by just one position) raise "
            "ValueError",
            _draw_conv_size_errors,
        ),
    ),
    judge=_judge_size,
    visible=(
        Visible((28, 5), {"padding": 2}, "visible example: n=28, kernel_size=5, padding=2", 28),
        Visible((7, 3), {"stride": 2}, "visible example: n=7, kernel_size=3, stride=2", 3),
        Visible((8, 3), {"stride": 2}, "visible example: n=8, kernel_size=3, stride=2", 3),
        Visible((10, 3), {"dilation": 2}, "visible example: n=10, kernel_size=3, dilation=2", 6),
        Visible((7, 3), {}, "visible example: n=7, kernel_size=3", 5),
        Visible((3, 5), {}, "visible example: n=3, kernel_size=5", Raised("ValueError", "")),
    ),
    misconceptions=SIZE_DIAGNOSES,
    judges_errors=True,
    **POLICY,
)

POOL_OUTPUT_SIZE = Exercise(
    name="pool_output_size",
    summary="output size of a pooling layer along one axis",
    tests=(
        HiddenTest(
            "test_pool_output_size",
            1.0,
            "many settings, default stride, outputs of exactly 1",
            _draw_pool_size,
        ),
        HiddenTest(
            "test_pool_output_size_errors",
            1.0,
            "out-of-range settings and windows that do not fit (also by just one position) raise "
            "ValueError",
            _draw_pool_size_errors,
        ),
    ),
    judge=_judge_size,
    visible=(
        Visible((28, 2), {}, "visible example: n=28, kernel_size=2", 14),
        Visible((7, 2), {}, "visible example: n=7, kernel_size=2", 3),
        Visible((13, 3), {"stride": 2}, "visible example: n=13, kernel_size=3, stride=2", 6),
        Visible(
            (9, 3), {"stride": 2, "padding": 1}, "visible example: n=9, kernel_size=3, stride=2, padding=1", 5
        ),
    ),
    misconceptions=(POOL_STRIDE_DEFAULT, *SIZE_DIAGNOSES),
    judges_errors=True,
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# conv2d_output_shape
# ---------------------------------------------------------------------------------------------


def _draw_output_shape(rng: np.random.Generator) -> list[Inputs]:
    rows = [
        ((3, 32, 32), 16, 3, 1, 1),
        ((1, 28, 28), 6, 5, 1, 2),
        ((3, 227, 227), 96, 11, 4, 0),
        ((2, 9, 14), 4, (3, 2), (2, 3), (1, 0)),
        ((5, 10, 7), 3, (1, 3), 1, (0, 1)),
        ((4, 8, 11), 8, 2, (3, 2), 1),
        ((3, 12, 9), 5, 3, 2, (2, 0)),
        ((2, 13, 13), 3, (5, 1), (2, 1), (0, 2)),
        ((3, 11, 8), 2, (2, 4), 2, 1),
    ]
    found = []
    for shape, out_channels, kernel, stride, padding in rows:
        kwargs = settings(stride=None if stride == 1 else stride, padding=None if padding == 0 else padding)
        label = (
            f"input_shape {shape}, out_channels {out_channels}, kernel_size {kernel}, "
            f"stride {stride}, padding {padding}"
        )
        found.append(Inputs((shape, out_channels, kernel), kwargs, label))
    return found


def _judge_output_shape(t: Trial, out: object) -> Verdict:
    expected = t.expected
    if not isinstance(out, tuple) or not all(is_int(v) for v in out):
        return fail(t.case, f"returned {out!r}, expected a tuple of ints like {expected}", "not_a_tuple")
    got = tuple(int(v) for v in out)
    if got == expected:
        return PASS
    a = t.a
    shape, c_out = a["input_shape"], a["out_channels"]
    k, s, p = pair(a["kernel_size"]), pair(a["stride"]), pair(a["padding"])
    variants = [Variant("channels_wrong", (shape[0], *expected[1:]))]
    for k2, s2, p2 in (
        (k[::-1], s, p),
        (k, s[::-1], p),
        (k, s, p[::-1]),
        (k[::-1], s[::-1], p[::-1]),
    ):
        with contextlib.suppress(ValueError):
            variants.append(Variant("pair_swapped", reference("conv2d_output_shape")(shape, c_out, k2, s2, p2)))
    variants += dg.window_shape_variants((c_out,), shape[1:], k, s, p)
    for v in variants:
        if tuple(v.output) == got and tuple(v.output) != expected:  # type: ignore[arg-type]
            return fail(t.case, f"returned {got}, expected {expected}", v.key)
    return fail(t.case, f"returned {got}, expected {expected}")


CONV2D_OUTPUT_SHAPE = Exercise(
    name="conv2d_output_shape",
    summary="output shape `(C', H', W')` of a convolution layer",
    tests=(
        HiddenTest(
            "test_conv2d_output_shape",
            2.0,
            "square and non-square inputs; int and pair kernel size, stride and padding, each pair "
            "with different height and width",
            _draw_output_shape,
        ),
    ),
    judge=_judge_output_shape,
    visible=(
        Visible(
            ((3, 32, 32), 16, 3),
            {"padding": 1},
            "visible example: input_shape (3, 32, 32), out_channels 16, kernel_size 3, padding 1",
            (16, 32, 32),
        ),
        Visible(
            ((1, 28, 28), 6, 5), {}, "visible example: input_shape (1, 28, 28), out_channels 6, kernel_size 5", (6, 24, 24)
        ),
        Visible(
            ((3, 10, 20), 4, (3, 5)),
            {"stride": (1, 5)},
            "visible example: input_shape (3, 10, 20), out_channels 4, kernel_size (3, 5), "
            "stride (1, 5)",
            (4, 8, 4),
        ),
    ),
    misconceptions=(
        CHANNELS_WRONG,
        dg.PAIR_SWAPPED,
        dg.HW_SWAPPED,
        dg.SQUARE_KERNEL,
        dg.PAIR_NOT_HANDLED,
        dg.SIZE_OFF_BY_ONE,
        dg.CEIL_NOT_FLOOR,
        dg.STRIDE_IGNORED,
        dg.PADDING_COUNTED_ONCE,
        dg.PADDING_IGNORED,
    ),
    pair_arguments=("kernel_size", "stride", "padding"),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# conv2d_num_params
# ---------------------------------------------------------------------------------------------


def _draw_num_params(rng: np.random.Generator) -> list[Inputs]:
    rows = [
        (1, 6, 5, True),
        (3, 64, 3, True),
        (6, 16, (5, 3), True),
        (8, 4, (1, 2), False),
        (3, 7, (2, 4), True),
        (16, 32, 3, False),
    ]
    return [
        Inputs(
            (c_in, c_out, kernel),
            {} if bias else {"bias": False},
            f"in_channels {c_in}, out_channels {c_out}, kernel_size {kernel}, bias {bias}",
        )
        for c_in, c_out, kernel, bias in rows
    ]


def _judge_num_params(t: Trial, out: object) -> Verdict:
    a = t.a
    c_in, c_out, bias = a["in_channels"], a["out_channels"], a["bias"]
    kh, kw = pair(a["kernel_size"])
    weights = c_out * c_in * kh * kw
    variants = [
        Variant("num_params_bias", weights if bias else weights + c_out),
        Variant("num_params_bias", weights + c_in * c_out * bias),
        Variant("num_params_bias", weights + c_in * bias),
        Variant("num_params_kernel", c_out * kh * kw + c_out * bias),
        Variant("num_params_kernel", c_out * c_in * (kh + kw) + c_out * bias),
        Variant("square_kernel", c_out * c_in * kh * kh + c_out * bias),
        Variant("square_kernel", c_out * c_in * kw * kw + c_out * bias),
    ]
    return judge_int(t.case, out, t.expected, [v for v in variants if v.output != t.expected])


CONV2D_NUM_PARAMS = Exercise(
    name="conv2d_num_params",
    summary="number of parameters of a convolution layer",
    tests=(
        HiddenTest(
            "test_conv2d_num_params",
            2.0,
            "int and pair kernel sizes, with and without bias",
            _draw_num_params,
        ),
    ),
    judge=_judge_num_params,
    visible=(
        Visible((1, 6, 5), {}, "visible example: in_channels 1, out_channels 6, kernel_size 5", 156),
        Visible(
            (3, 8, (3, 1)),
            {"bias": False},
            "visible example: in_channels 3, out_channels 8, kernel_size (3, 1), bias False",
            72,
        ),
    ),
    misconceptions=(NUM_PARAMS_BIAS, NUM_PARAMS_KERNEL, dg.SQUARE_KERNEL, dg.PAIR_NOT_HANDLED, dg.TRUE_DIVISION),
    pair_arguments=("kernel_size",),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# layer_output_shapes
# ---------------------------------------------------------------------------------------------


def _describe_layers(layers: list) -> str:
    return " -> ".join(repr(layer).replace("\n", "") for layer in layers)


def _stack(test_id_rows: list[tuple[list, tuple[int, int, int]]]) -> list[Inputs]:
    from torch import nn

    found = []
    for layers, input_shape in test_id_rows:
        # ("linear", out_features) stands for a Linear layer whose in_features is the
        # flattened size at that point
        built: list = []
        for layer in layers:
            if isinstance(layer, tuple):
                before = dg.layer_shapes(built, input_shape)[-1]
                layer = nn.Linear(math.prod(before), layer[1])
            built.append(layer)
        label = f"input_shape {input_shape}, layers {_describe_layers(built)}"
        found.append(Inputs((built, input_shape), {}, label))
    return found


def _draw_layers(rng: np.random.Generator) -> list[Inputs]:
    from torch import nn

    h = int(rng.integers(24, 33))
    first = [
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Sigmoid(),
        nn.AvgPool2d(2, stride=2),
        nn.Flatten(),
        ("linear", 120),
        nn.ReLU(),
        nn.Dropout(0.5),
        ("linear", 10),
    ]
    h2, w2 = int(rng.integers(20, 30)), int(rng.integers(12, 20))
    second = [
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.Tanh(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(8, 4, (3, 1)),
        nn.Flatten(),
        ("linear", 5),
    ]
    third = [
        nn.Conv2d(2, 4, (2, 3), stride=(2, 1)),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d((2, 1)),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        ("linear", 3),
    ]
    return _stack(
        [
            (first, (1, h, h)),
            (second, (3, h2, w2)),
            (third, (2, int(rng.integers(10, 16)), int(rng.integers(9, 14)))),
        ]
    )


def _draw_layers_padding(rng: np.random.Generator) -> list[Inputs]:
    from torch import nn

    h, w = int(rng.integers(14, 22)), int(rng.integers(11, 18))
    first = [
        nn.Conv2d(3, 6, 3, padding="same"),
        nn.ReLU(),
        nn.Conv2d(6, 6, 5, padding="valid"),
        nn.Conv2d(6, 4, 3, padding="same", dilation=2),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Flatten(),
    ]
    h2, w2 = int(rng.integers(16, 24)), int(rng.integers(20, 28))
    second = [
        nn.Conv2d(1, 4, 3, dilation=2),
        nn.Conv2d(4, 4, (3, 5), stride=(2, 3), padding=(1, 2)),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 2, 3, dilation=(2, 1), padding=(2, 0)),
        nn.AvgPool2d((2, 3), stride=(2, 1), padding=(1, 0)),
        nn.Flatten(),
        ("linear", 7),
    ]
    third = [
        nn.Conv2d(2, 3, 5, padding="same"),
        nn.Conv2d(3, 3, (1, 5), padding="same"),
        nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(1, 2)),
        nn.AdaptiveAvgPool2d((2, 1)),
        nn.Flatten(),
    ]
    return _stack(
        [
            (first, (3, h, w)),
            (second, (1, h2, w2)),
            (third, (2, int(rng.integers(9, 13)), int(rng.integers(12, 17)))),
        ]
    )


def _judge_layers(t: Trial, out: object) -> Verdict:
    expected = t.expected
    if not isinstance(out, list | tuple) or not all(
        isinstance(s, tuple | list) and all(is_int(v) for v in s) for s in out
    ):
        return fail(t.case, f"returned {out!r}, expected a list of shape tuples, one per layer", "not_a_shape_list")
    got = [tuple(int(v) for v in s) for s in out]
    if len(got) != len(expected):
        return fail(t.case, f"returned {len(got)} shapes for {len(expected)} layers", "not_a_shape_list")
    if not all(isinstance(s, tuple) for s in out):
        return fail(t.case, "each shape should be a tuple, e.g. (6, 28, 28)", "not_a_shape_list")
    if got == expected:
        return PASS
    layers, shape = t.a["layers"], t.a["input_shape"]
    bad = next(i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
    what = (
        f"after layer {bad} ({type(layers[bad]).__name__}) the shape is {got[bad]}, "
        f"expected {expected[bad]}"
    )
    options = [
        ("batch_axis_included", {"batch": True}),
        ("same_padding_ignored", {"same_as_zero": True}),
        ("dilation_ignored", {"ignore_dilation": True}),
        ("ceil_not_floor", {"ceil": True}),
        ("padding_ignored", {"ignore_pool_padding": True}),
        ("pair_swapped", {"swap_pairs": True}),
        ("pair_swapped", {"swap_pool_pairs": True}),
    ]
    for key, flags in options:
        try:
            variant = dg.layer_shapes(layers, shape, **flags)
        except (ValueError, ZeroDivisionError):
            continue
        if variant == got:
            return fail(t.case, what, key)
    return fail(t.case, what)


def _lenet() -> tuple:
    from torch import nn

    lenet = [
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
    ]
    return (lenet, (1, 28, 28))


def _same_and_dilated() -> tuple:
    from torch import nn

    return ([nn.Conv2d(3, 4, 3, padding="same"), nn.Conv2d(4, 2, 3, dilation=2)], (3, 9, 12))


LAYER_OUTPUT_SHAPES = Exercise(
    name="layer_output_shapes",
    summary="shape after each layer of a stack of `torch.nn` layers",
    tests=(
        HiddenTest(
            "test_layer_output_shapes",
            2.0,
            "LeNet-like stacks with pooling, batch norm, activations, Flatten and Linear",
            _draw_layers,
        ),
        HiddenTest(
            "test_layer_output_shapes_padding",
            3.0,
            "padding 'same' and 'valid', pair padding, stride and dilation, pooling with padding "
            "and dilation, adaptive pooling",
            _draw_layers_padding,
        ),
    ),
    judge=_judge_layers,
    visible=(
        Visible(
            _lenet,
            {},
            "visible example: LeNet-5 on (1, 28, 28)",
            [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5), (400,), (120,)],
        ),
        Visible(
            _same_and_dilated,
            {},
            "visible example: Conv2d(3, 4, 3, padding='same'), Conv2d(4, 2, 3, dilation=2) on (3, 9, 12)",
            [(4, 9, 12), (2, 5, 8)],
        ),
    ),
    misconceptions=(
        NOT_A_SHAPE_LIST,
        BATCH_AXIS_INCLUDED,
        SAME_PADDING_IGNORED,
        dg.DILATION_IGNORED,
        dg.CEIL_NOT_FLOOR,
        dg.PADDING_IGNORED,
        dg.PAIR_SWAPPED,
    ),
    allowed_imports=(*NUMPY_AND_STDLIB, "torch"),
    forbidden_names=FORBIDDEN,
    sandbox_packages=("numpy", "torch"),
    guards=("forbid_ready_made", "forbid_running_modules"),
)

ASSIGNMENT = Assignment(
    name="output_shapes",
    title="Output shapes and parameter counts",
    chapters=(
        Chapter(1, "From fully connected layers to convolutions", "book/part1/fc-to-conv.md"),
        Chapter(4, "Padding and stride", "book/part1/padding-stride.md"),
    ),
    functions=(CONV_OUTPUT_SIZE, POOL_OUTPUT_SIZE, CONV2D_OUTPUT_SHAPE, CONV2D_NUM_PARAMS, LAYER_OUTPUT_SHAPES),
    graded_on="many sizes, kernels, strides, paddings and dilations, settings that must raise "
    "ValueError, and stacks of real PyTorch layers",
)
