"""The ``convolution`` assignment: cross-correlation, padding, convolution and pooling, forward."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import diagnoses as dg
from ..diagnoses import Diagnosis, Variant
from ._base import (
    NO_LITERAL,
    Assignment,
    Chapter,
    Exercise,
    HiddenTest,
    Inputs,
    Trial,
    Verdict,
    Visible,
    dims,
    judge_array,
    keep_different,
    normal,
    pair,
    settings,
    ties,
)
from ._base import ref as reference
from ._policy import COURSE_LIB, NUMPY_AND_STDLIB, WINDOW_OPERATORS

FORBIDDEN = WINDOW_OPERATORS + COURSE_LIB

BIAS_MISSING = Diagnosis(
    "bias_missing",
    "the bias is missing",
    "add b[f] once to every output value of filter f",
)
BIAS_REPEATED = Diagnosis(
    "bias_repeated",
    "the bias is added more than once per output value (inside a loop over channels or "
    "kernel positions)",
    "add b[f] once per output value, after summing over channels and the window",
)
AVG_WRONG_DIVISOR = Diagnosis(
    "avg_wrong_divisor",
    "the window is not divided by its area kh * kw (sum, or a wrong divisor)",
    "the mean of a kh x kw window is its sum divided by kh * kw",
)
POOL_ACROSS_CHANNELS = Diagnosis(
    "pool_across_channels",
    "the window is pooled across the channels too",
    "pooling works on each channel on its own: reduce over the window's two spatial axes "
    "only, e.g. x[n, c, rows, cols].max() or window.max(axis=(2, 3))",
)
CHANNELS_NOT_SUMMED = Diagnosis(
    "channels_not_summed",
    "the input channels are not all summed (one channel used, or channels kept apart)",
    "out[n, f, i, j] sums the window times w[f] over every input channel c as well",
)

WINDOW_DIAGNOSES = (
    dg.SIZE_OFF_BY_ONE,
    dg.CEIL_NOT_FLOOR,
    dg.STRIDE_IGNORED,
    dg.PAIR_SWAPPED,
    dg.HW_SWAPPED,
    dg.SQUARE_KERNEL,
    dg.PAIR_NOT_HANDLED,
    dg.PADDING_COUNTED_ONCE,
    dg.PADDING_IGNORED,
)


def _policy(**extra: Any) -> dict[str, Any]:
    return {"allowed_imports": NUMPY_AND_STDLIB, "forbidden_names": FORBIDDEN, **extra}


# ---------------------------------------------------------------------------------------------
# corr2d
# ---------------------------------------------------------------------------------------------


def _draw_corr2d(rng: np.random.Generator) -> list[Inputs]:
    shapes = [
        ((5, 7), (2, 3)),
        ((6, 4), (3, 1)),
        ((5, 7), (2, 4)),  # a square output from a non-square image: H and W swapped shows
        ((4, 5), (4, 5)),
        ((3, 5), (1, 1)),
        ((7, 6), (3, 3)),
    ]
    return [
        Inputs((normal(rng, *xs), normal(rng, *ks)), {}, f"x {xs}, k {ks}") for xs, ks in shapes
    ]


def _swapped_output(expected: np.ndarray) -> list[Variant]:
    if expected.ndim >= 2 and expected.shape[-1] == expected.shape[-2]:
        return [Variant("hw_swapped", np.swapaxes(expected, -1, -2))]
    return []


def _judge_corr2d(t: Trial, out: object) -> Verdict:
    x, k = t.a["x"], t.a["k"]

    def variants() -> list[Variant]:
        found = [Variant("kernel_flipped", reference("corr2d")(x, k[::-1, ::-1]))]
        found += _swapped_output(t.expected)
        found += dg.window_shape_variants((), x.shape, k.shape, (1, 1), (0, 0))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the output", out, t.expected, variants)


CORR2D = Exercise(
    name="corr2d",
    summary="2-D cross-correlation of one image with one kernel",
    tests=(
        HiddenTest(
            "test_corr2d",
            3.0,
            "non-square images and kernels, 1x1 kernels, a kernel as large as the image",
            _draw_corr2d,
        ),
    ),
    judge=_judge_corr2d,
    visible=(
        Visible(
            (np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])),
            {},
            "visible example: x = np.arange(9.0).reshape(3, 3), k = [[0, 1], [2, 3]]",
            np.array([[19.0, 25.0], [37.0, 43.0]]),
        ),
        Visible(
            (np.ones((4, 6)), np.ones((2, 3))),
            {},
            "visible example: x = np.ones((4, 6)), k = np.ones((2, 3))",
            np.full((3, 4), 6.0),
        ),
    ),
    misconceptions=(dg.KERNEL_FLIPPED, *WINDOW_DIAGNOSES),
    **_policy(),
)

# ---------------------------------------------------------------------------------------------
# pad2d
# ---------------------------------------------------------------------------------------------


def _draw_pad2d_int(rng: np.random.Generator) -> list[Inputs]:
    table = [((2, 3, 4, 5), 1), ((4, 3), 2), ((2, 3, 3), 0), ((1, 1, 2, 3), 3)]
    return [
        Inputs((normal(rng, *shape), p), {}, f"x shape {shape}, padding {p}") for shape, p in table
    ]


def _draw_pad2d_pair(rng: np.random.Generator) -> list[Inputs]:
    table = [
        ((1, 2, 3, 5), (1, 2)),
        ((4, 6), (2, 0)),
        ((2, 3, 4), (0, 3)),
        ((2, 1, 3, 2), (3, 1)),
        ((3, 4), (0, 0)),
    ]
    return [
        Inputs((normal(rng, *shape), p), {}, f"x shape {shape}, padding {p}") for shape, p in table
    ]


def _judge_pad2d(t: Trial, out: object) -> Verdict:
    x = t.a["x"]
    ph, pw = pair(t.a["padding"])
    lead = [(0, 0)] * (x.ndim - 2)

    def variants() -> list[Variant]:
        found = [
            Variant("padding_wrong_axes", np.pad(x, max(ph, pw))),
            Variant("padding_wrong_axes", np.pad(x, [*lead, (ph, ph), (0, 0)])),
            Variant("padding_wrong_axes", np.pad(x, [*lead, (0, 0), (pw, pw)])),
            Variant("padding_one_side", np.pad(x, [*lead, (2 * ph, 0), (2 * pw, 0)])),
            Variant("padding_one_side", np.pad(x, [*lead, (0, 2 * ph), (0, 2 * pw)])),
            Variant("padding_one_side", np.pad(x, [*lead, (ph, 0), (pw, 0)])),
            Variant("padding_one_side", np.pad(x, [*lead, (0, ph), (0, pw)])),
            Variant("pair_swapped", np.pad(x, [*lead, (pw, pw), (ph, ph)])),
        ]
        if x.ndim > 2:
            found.append(Variant("padding_wrong_axes", np.pad(x, [(ph, ph), (pw, pw), *lead])))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the output", out, t.expected, variants)


PAD2D = Exercise(
    name="pad2d",
    summary="zero padding of the last two axes",
    tests=(
        HiddenTest(
            "test_pad2d",
            1.0,
            "int padding on 2-D, 3-D and 4-D arrays, padding 0 (a new array all the same)",
            _draw_pad2d_int,
        ),
        HiddenTest(
            "test_pad2d_pair",
            1.0,
            "pair padding (ph, pw) with ph != pw, 0 on one axis and on both",
            _draw_pad2d_pair,
        ),
    ),
    judge=_judge_pad2d,
    visible=(
        Visible(
            (np.array([[1.0, 2.0], [3.0, 4.0]]), 1),
            {},
            "visible example: x = [[1, 2], [3, 4]], padding 1",
            np.array(
                [
                    [0.0, 0.0, 0.0, 0.0],
                    [0.0, 1.0, 2.0, 0.0],
                    [0.0, 3.0, 4.0, 0.0],
                    [0.0, 0.0, 0.0, 0.0],
                ]
            ),
        ),
        Visible(
            (np.ones((2, 3, 4, 5)), (1, 2)),
            {},
            "visible example: x = np.ones((2, 3, 4, 5)), padding (1, 2)",
            NO_LITERAL,
        ),
    ),
    misconceptions=(
        dg.PADDING_WRONG_AXES,
        dg.PADDING_ONE_SIDE,
        dg.PAIR_SWAPPED,
        dg.PAIR_NOT_HANDLED,
    ),
    pair_arguments=("padding",),
    new_arrays=True,
    **_policy(),
)

# ---------------------------------------------------------------------------------------------
# conv2d_forward
# ---------------------------------------------------------------------------------------------


def conv_label(x: np.ndarray, w: np.ndarray, b: object, stride: object, padding: object) -> str:
    bias = "bias None" if b is None else "bias nonzero"
    return (
        f"x {dims(x)}, w (F={w.shape[0]}, C={w.shape[1]}, kh={w.shape[2]}, kw={w.shape[3]}), "
        f"{bias}, stride {stride}, padding {padding}"
    )


def _conv_inputs(rng: np.random.Generator, table: list[tuple]) -> list[Inputs]:
    found = []
    for xs, ws, with_bias, stride, padding in table:
        x, w = normal(rng, *xs), normal(rng, *ws)
        b = rng.uniform(0.5, 2.0, ws[0]) * rng.choice([-1.0, 1.0], ws[0]) if with_bias else None
        kwargs = settings(
            stride=None if stride == 1 else stride, padding=None if padding == 0 else padding
        )
        found.append(Inputs((x, w, b), kwargs, conv_label(x, w, b, stride, padding)))
    return found


def _draw_conv(rng: np.random.Generator) -> list[Inputs]:
    return _conv_inputs(
        rng,
        [
            ((2, 3, 6, 7), (4, 3, 3, 2), True, 1, 0),
            ((1, 1, 5, 5), (1, 1, 3, 3), True, 1, 0),
            ((3, 2, 4, 6), (2, 2, 1, 3), True, 1, 0),
            ((2, 2, 5, 4), (3, 2, 2, 2), False, 1, 0),
            ((1, 2, 5, 7), (2, 2, 2, 4), True, 1, 0),  # H' == W' from H != W
        ],
    )


def _draw_conv_padding(rng: np.random.Generator) -> list[Inputs]:
    return _conv_inputs(
        rng,
        [
            ((2, 3, 5, 6), (2, 3, 3, 3), True, 1, 1),
            ((1, 2, 4, 7), (3, 2, 3, 2), True, 1, (2, 1)),
            ((2, 1, 4, 4), (2, 1, 3, 3), False, 1, 2),
            ((1, 2, 5, 3), (2, 2, 2, 3), True, 1, (0, 2)),
        ],
    )


def _draw_conv_stride(rng: np.random.Generator) -> list[Inputs]:
    return _conv_inputs(
        rng,
        [
            ((2, 3, 8, 9), (2, 3, 3, 3), True, 2, 0),
            ((1, 2, 10, 11), (3, 2, 2, 3), True, 3, 1),
            ((2, 2, 9, 10), (2, 2, 3, 2), True, (2, 3), (1, 2)),
            ((1, 3, 8, 7), (2, 3, 2, 2), False, (3, 1), 1),
            ((1, 2, 7, 9), (2, 2, 3, 3), True, (1, 2), (2, 0)),
        ],
    )


def _judge_conv2d_forward(t: Trial, out: object) -> Verdict:
    x, w, b = t.a["x"], t.a["w"], t.a["b"]
    s, p = pair(t.a["stride"]), pair(t.a["padding"])
    expected = t.expected
    forward = reference("conv2d_forward")

    def variants() -> list[Variant]:
        found = [Variant("kernel_flipped", forward(x, w[..., ::-1, ::-1], b, s, p))]
        if b is not None:
            plain = forward(x, w, None, s, p)
            c, kh, kw = w.shape[1:]
            found.append(Variant("bias_missing", plain))
            for times in {c, kh * kw, c * kh * kw} - {1}:
                found.append(Variant("bias_repeated", plain + times * b[None, :, None, None]))
        if x.shape[1] > 1:
            for c in (0, x.shape[1] - 1):
                found.append(
                    Variant("channels_not_summed", forward(x[:, c : c + 1], w[:, c : c + 1], b, s, p))
                )
        step1 = forward(x, w, b, 1, p)
        found.append(Variant("stride_ignored", step1[:, :, : expected.shape[2], : expected.shape[3]]))
        found.append(Variant("stride_ignored", step1))
        if s[0] != s[1] or p[0] != p[1]:
            for s2, p2 in ((s[::-1], p[::-1]), (s[::-1], p), (s, p[::-1])):
                try:
                    found.append(Variant("pair_swapped", forward(x, w, b, s2, p2)))
                except (ValueError, RuntimeError):
                    pass
        if p != (0, 0):
            ph, pw = p
            for before, after in (
                ((2 * ph, 2 * pw), (0, 0)),
                ((0, 0), (2 * ph, 2 * pw)),
                ((ph, pw), (0, 0)),
                ((0, 0), (ph, pw)),
            ):
                xp = np.pad(x, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))
                found.append(Variant("padding_one_side", forward(xp, w, b, s, 0)))
            for only in ((ph, 0), (0, pw)):
                if only != p:
                    found.append(Variant("padding_wrong_axes", forward(x, w, b, s, only)))
            found.append(Variant("padding_ignored", forward(x, w, b, s, 0)))
        found += _swapped_output(expected)
        found += dg.window_shape_variants(expected.shape[:2], x.shape[2:], w.shape[2:], s, p)
        return keep_different(found, expected)

    return judge_array(t.case, "the output", out, expected, variants)


CONV2D_FORWARD = Exercise(
    name="conv2d_forward",
    summary="a convolution layer: batch, channels, filters, bias, stride, padding",
    tests=(
        HiddenTest(
            "test_conv2d_forward",
            3.0,
            "stride 1, no padding; batches, several channels and filters, non-square kernels, "
            "nonzero and None bias",
            _draw_conv,
        ),
        HiddenTest(
            "test_conv2d_forward_padding",
            2.0,
            "padding 1 and 2 and pairs like (2, 1) and (0, 2)",
            _draw_conv_padding,
        ),
        HiddenTest(
            "test_conv2d_forward_stride",
            3.0,
            "stride 2 and 3 with sizes that don't divide evenly, pair strides (2, 3), (3, 1) and "
            "(1, 2) with pair padding",
            _draw_conv_stride,
        ),
    ),
    judge=_judge_conv2d_forward,
    visible=(
        Visible(
            (np.arange(16.0).reshape(1, 1, 4, 4), np.ones((1, 1, 2, 2)), np.array([0.5])),
            {},
            "visible example: x = np.arange(16.0).reshape(1, 1, 4, 4), w = np.ones((1, 1, 2, 2)), "
            "b = [0.5]",
            NO_LITERAL,
        ),
        Visible(
            (np.arange(16.0).reshape(1, 1, 4, 4), np.ones((1, 1, 2, 2)), None),
            {"stride": 2},
            "visible example: the same x and w, b None, stride 2",
            np.array([[[[10.0, 18.0], [42.0, 50.0]]]]),
        ),
        Visible(
            (np.arange(16.0).reshape(1, 1, 4, 4), np.ones((1, 1, 3, 3)), None),
            {"padding": 1},
            "visible example: the same x, w = np.ones((1, 1, 3, 3)), b None, padding 1",
            NO_LITERAL,
        ),
        Visible(
            (np.ones((2, 2, 5, 6)), np.ones((3, 2, 3, 2)), np.zeros(3)),
            {},
            "visible example: x = np.ones((2, 2, 5, 6)), w = np.ones((3, 2, 3, 2)), "
            "b = np.zeros(3)",
            np.full((2, 3, 3, 5), 12.0),
        ),
    ),
    misconceptions=(
        dg.KERNEL_FLIPPED,
        BIAS_MISSING,
        BIAS_REPEATED,
        CHANNELS_NOT_SUMMED,
        dg.PADDING_ONE_SIDE,
        dg.PADDING_WRONG_AXES,
        *WINDOW_DIAGNOSES,
    ),
    pair_arguments=("stride", "padding"),
    **_policy(),
)

# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


def window_label(x: np.ndarray, kernel: object, stride: object, extra: str = "") -> str:
    parts = [f"x {dims(x)}", f"kernel_size {kernel}"]
    parts.append("stride default" if stride is None else f"stride {stride}")
    return ", ".join(parts) + extra


def _pool_inputs(rng: np.random.Generator, table: list[tuple]) -> list[Inputs]:
    found = []
    for shape, kernel, stride, tied in table:
        x = ties(rng, *shape) if tied else normal(rng, *shape)
        extra = ", integer values with tied maxima" if tied else ""
        found.append(
            Inputs((x, kernel), settings(stride=stride), window_label(x, kernel, stride, extra))
        )
    return found


_PLAIN = [
    ((2, 3, 6, 8), 2, None, False),
    ((1, 2, 7, 5), 2, None, False),
    ((2, 2, 6, 9), (2, 3), None, False),  # a pair kernel as the default stride: H' == W'
    ((1, 1, 7, 8), 3, 3, False),
    ((2, 2, 9, 6), (3, 2), None, False),
]
_OVERLAP = [
    ((2, 2, 7, 9), 3, 2, False),
    ((1, 3, 6, 7), (3, 2), (1, 2), False),
    ((2, 2, 5, 6), 2, 1, True),
    ((1, 2, 8, 7), 3, (2, 1), True),
    ((2, 2, 7, 8), (2, 3), (2, 1), False),
]


def _judge_pool(t: Trial, out: object) -> Verdict:
    x, expected = t.a["x"], t.expected
    k = pair(t.a["kernel_size"])
    s = k if t.a["stride"] is None else pair(t.a["stride"])
    is_max = t.case.function == "max_pool2d_forward"
    forward = reference("max_pool2d_forward" if is_max else "avg_pool2d_forward")

    def variants() -> list[Variant]:
        step1 = forward(x, k, 1)
        found = [
            Variant("stride_ignored", step1[:, :, : expected.shape[2], : expected.shape[3]]),
            Variant("stride_ignored", step1),
        ]
        across = expected.max(axis=1, keepdims=True) if is_max else None
        if not is_max:
            across = expected.mean(axis=1, keepdims=True)
        if x.shape[1] > 1:
            found += [
                Variant("pool_across_channels", np.broadcast_to(across, expected.shape).copy()),
                Variant("pool_across_channels", across),
                Variant("pool_across_channels", across[:, 0]),
            ]
        if not is_max:
            for times in {k[0] * k[1], k[0], k[1]} - {1}:
                found.append(Variant("avg_wrong_divisor", expected * times))
        if k[0] != k[1]:
            for square in ((k[0], k[0]), (k[1], k[1])):
                for stride in {square if t.a["stride"] is None else s, s}:
                    try:
                        found.append(Variant("square_kernel", forward(x, square, stride)))
                    except (ValueError, RuntimeError):
                        pass
        if k[0] != k[1] or s[0] != s[1]:
            for k2, s2 in ((k[::-1], s[::-1]), (k[::-1], s), (k, s[::-1])):
                try:
                    found.append(Variant("pair_swapped", forward(x, k2, s2)))
                except (ValueError, RuntimeError):
                    pass
        found += _swapped_output(expected)
        found += dg.window_shape_variants(expected.shape[:2], x.shape[2:], k, s, (0, 0))
        if x.shape[1] > 1:
            n, _, h2, w2 = expected.shape
            found += [
                Variant("pool_across_channels", (n, 1, h2, w2), True),
                Variant("pool_across_channels", (n, h2, w2), True),
            ]
        return keep_different(found, expected)

    return judge_array(t.case, "the output", out, expected, variants)


_POOL_X = np.array([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 5.0], [0.0, 1.0, 7.0, 2.0]]).reshape(
    1, 1, 3, 4
)
_POOL_X_LABEL = "x = [[1, 3, 2, 0], [4, 2, 1, 5], [0, 1, 7, 2]] as (1, 1, 3, 4)"

POOL_DIAGNOSES = (POOL_ACROSS_CHANNELS, *WINDOW_DIAGNOSES)

MAX_POOL2D_FORWARD = Exercise(
    name="max_pool2d_forward",
    summary="max pooling",
    tests=(
        HiddenTest(
            "test_max_pool2d_forward",
            2.0,
            "default stride, sizes that don't divide, pair kernels (2, 3) and (3, 2)",
            lambda rng: _pool_inputs(rng, _PLAIN),
        ),
        HiddenTest(
            "test_max_pool2d_forward_overlap",
            2.0,
            "overlapping windows, pair kernels and strides (1, 2) and (2, 1), integer inputs "
            "with tied maxima",
            lambda rng: _pool_inputs(rng, _OVERLAP),
        ),
    ),
    judge=_judge_pool,
    visible=(
        Visible((_POOL_X, 2), {}, f"visible example: {_POOL_X_LABEL}, kernel_size 2", np.array([[[[4.0, 5.0]]]])),
        Visible(
            (_POOL_X, 2),
            {"stride": 1},
            f"visible example: {_POOL_X_LABEL}, kernel_size 2, stride 1",
            np.array([[[[4.0, 3.0, 5.0], [4.0, 7.0, 7.0]]]]),
        ),
        Visible(
            (_POOL_X, (3, 2)),
            {},
            f"visible example: {_POOL_X_LABEL}, kernel_size (3, 2)",
            np.array([[[[4.0, 7.0]]]]),
        ),
    ),
    misconceptions=POOL_DIAGNOSES,
    pair_arguments=("kernel_size", "stride"),
    **_policy(),
)

AVG_POOL2D_FORWARD = Exercise(
    name="avg_pool2d_forward",
    summary="average pooling",
    tests=(
        HiddenTest(
            "test_avg_pool2d_forward",
            1.0,
            "default stride, sizes that don't divide, pair kernels (2, 3) and (3, 2)",
            lambda rng: _pool_inputs(rng, _PLAIN),
        ),
        HiddenTest(
            "test_avg_pool2d_forward_overlap",
            2.0,
            "overlapping windows, pair kernels and strides (1, 2) and (2, 1)",
            lambda rng: _pool_inputs(
                rng,
                [*_OVERLAP[:2], ((2, 1, 6, 5), 2, 1, False), ((1, 2, 8, 7), 3, (2, 1), False), _OVERLAP[4]],
            ),
        ),
    ),
    judge=_judge_pool,
    visible=(
        Visible((_POOL_X, 2), {}, f"visible example: {_POOL_X_LABEL}, kernel_size 2", np.array([[[[2.5, 2.0]]]])),
        Visible(
            (_POOL_X, (1, 2)),
            {"stride": (2, 1)},
            f"visible example: {_POOL_X_LABEL}, kernel_size (1, 2), stride (2, 1)",
            np.array([[[[2.0, 2.5, 1.0], [0.5, 4.0, 4.5]]]]),
        ),
    ),
    misconceptions=(AVG_WRONG_DIVISOR, *POOL_DIAGNOSES),
    pair_arguments=("kernel_size", "stride"),
    **_policy(),
)

ASSIGNMENT = Assignment(
    name="convolution",
    title="Convolution and pooling, forward",
    chapters=(
        Chapter(2, "The convolution operator", "book/part1/convolution.md"),
        Chapter(4, "Padding and stride", "book/part1/padding-stride.md"),
        Chapter(5, "Pooling", "book/part1/pooling.md"),
    ),
    functions=(CORR2D, PAD2D, CONV2D_FORWARD, MAX_POOL2D_FORWARD, AVG_POOL2D_FORWARD),
    graded_on="non-square images and kernels, strides 2 and 3 with sizes that don't divide, "
    "padding, batches and channels, overlapping pools and tied maxima",
)
