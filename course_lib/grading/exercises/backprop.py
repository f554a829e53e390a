"""The ``backprop`` assignment: backward passes of ReLU, pooling and convolution, and a
numerical gradient to check them."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from .. import _case_functions as fn
from .. import diagnoses as dg
from ..diagnoses import Diagnosis, Variant
from ._base import (
    NO_LITERAL,
    PASS,
    Assignment,
    Chapter,
    Exercise,
    HiddenTest,
    Inputs,
    Part,
    Trial,
    Verdict,
    Visible,
    fail,
    judge_array,
    keep_different,
    normal,
    pair,
    settings,
    ties,
)
from ._base import ref as reference
from ._policy import COURSE_LIB, NUMPY_AND_STDLIB, WINDOW_OPERATORS
from .convolution import conv_label, window_label

FORBIDDEN = WINDOW_OPERATORS + COURSE_LIB
POLICY: dict[str, Any] = {"allowed_imports": NUMPY_AND_STDLIB, "forbidden_names": FORBIDDEN}

RELU_AT_ZERO = Diagnosis(
    "relu_at_zero",
    "the ReLU gradient at x == 0 is taken as 1",
    "the gradient passes only where x > 0 (strictly); at x == 0 it is 0",
)
RELU_WRONG_MASK = Diagnosis(
    "relu_wrong_mask",
    "the ReLU mask is taken from the wrong array or dout is not multiplied",
    "dx = dout where x > 0, else 0: the mask comes from x, the values from dout",
)
TIE_ALL_MAXIMA = Diagnosis(
    "tie_all_maxima",
    "with tied maxima, the gradient is sent to every maximum",
    "only one position per window receives the gradient: the first maximum in row-major order "
    "(np.argmax of the flattened window)",
)
TIE_LAST_MAXIMUM = Diagnosis(
    "tie_last_maximum",
    "with tied maxima, the gradient goes to the last maximum",
    "use the first maximum in row-major order (np.argmax does this; a '>=' comparison in a loop "
    "picks the last one)",
)
ARGMAX_NOT_OFFSET = Diagnosis(
    "argmax_not_offset",
    "the position of the maximum inside the window is not offset by the window's position",
    "np.argmax gives (a, b) inside the window; in dx that is row i * sh + a, column j * sw + b",
)
AVG_GRAD_NOT_DIVIDED = Diagnosis(
    "avg_grad_not_divided",
    "the average-pool gradient is not divided by the window area",
    "each of the kh * kw inputs of a window gets dout / (kh * kw)",
)
DW_NOT_SUMMED_OVER_BATCH = Diagnosis(
    "dw_not_summed_over_batch",
    "dw is not summed over the batch",
    "the weights are shared by all samples: dw adds the contributions of every sample n",
)
DB_WRONG_AXES = Diagnosis(
    "db_wrong_axes",
    "db is summed over the wrong axes",
    "db[f] is the sum of dout[:, f, :, :], over the batch and both spatial axes",
)
PADDING_NOT_REMOVED = Diagnosis(
    "padding_not_removed",
    "dx still includes the padding",
    "compute the gradient of the padded input, then cut the padding away: "
    "dx_padded[:, :, ph:ph + H, pw:pw + W]",
)
DB_NOT_NONE = Diagnosis(
    "db_not_none",
    "db is not None although b is None",
    "without a bias there is no bias gradient: return None for db when b is None",
)
FORWARD_DIFFERENCE = Diagnosis(
    "forward_difference",
    "a one-sided difference is used instead of the centred difference",
    "use (f(x + h e_i) - f(x - h e_i)) / (2 h)",
)
CENTRED_OVER_H = Diagnosis(
    "centred_over_h",
    "the centred difference is divided by h instead of 2 h",
    "the two evaluations are 2 h apart: divide by 2 * h",
)
H_IGNORED = Diagnosis("h_ignored", "the step h passed in is ignored", "use the argument h, not a constant")
FIRST_AXIS_ONLY = Diagnosis(
    "first_axis_only",
    "the entries are nudged along the first axis only (x[i] += h moves a whole row at once)",
    "nudge one entry at a time over every index of x: for index in np.ndindex(x.shape), "
    "x[index] += h",
)
X_NOT_RESTORED = Diagnosis(
    "x_not_restored",
    "the nudged entry is not put back before the next one is nudged",
    "after evaluating f(x + h e_i) and f(x - h e_i), set x_i back to its old value",
)
MINUS_AT_X = Diagnosis(
    "minus_at_x",
    "the second evaluation is at x instead of x - h e_i",
    "after x_i += h, go to x_i - h by subtracting 2 h (or set x_i = old - h), then put x_i back",
)

# ---------------------------------------------------------------------------------------------
# relu_backward
# ---------------------------------------------------------------------------------------------


def _draw_relu(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for shape, kind in [((2, 3, 4, 5), "normal"), ((3, 7), "ties"), ((2, 2, 3, 4), "ties")]:
        x = normal(rng, *shape) if kind == "normal" else rng.integers(-2, 3, shape).astype(float)
        dout = normal(rng, *shape)
        label = f"x shape {shape}" + (", integer values including x == 0" if kind == "ties" else "")
        found.append(Inputs((dout, x), {}, label))
    return found


def _judge_relu(t: Trial, out: object) -> Verdict:
    dout, x = t.a["dout"], t.a["x"]

    def variants() -> list[Variant]:
        return keep_different(
            [
                Variant("relu_at_zero", dout * (x >= 0)),
                Variant("relu_wrong_mask", dout * (dout > 0)),
                Variant("relu_wrong_mask", (x > 0).astype(np.float64)),
                Variant("relu_wrong_mask", dout * x * (x > 0)),
                Variant("relu_wrong_mask", np.maximum(x, 0.0)),
            ],
            t.expected,
        )

    return judge_array(t.case, "the output", out, t.expected, variants)


RELU_BACKWARD = Exercise(
    name="relu_backward",
    summary="gradient of ReLU",
    tests=(
        HiddenTest("test_relu_backward", 1.0, "random shapes, integer inputs with x == 0", _draw_relu),
    ),
    judge=_judge_relu,
    visible=(
        Visible(
            (np.array([[5.0, 6.0, 7.0]]), np.array([[-1.0, 0.0, 2.0]])),
            {},
            "visible example: dout = [[5, 6, 7]], x = [[-1, 0, 2]]",
            np.array([[0.0, 0.0, 7.0]]),
        ),
    ),
    misconceptions=(RELU_AT_ZERO, RELU_WRONG_MASK),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# pooling backward
# ---------------------------------------------------------------------------------------------


def _pool_backward_inputs(rng: np.random.Generator, table: list[tuple], tied: bool) -> list[Inputs]:
    found = []
    for shape, kernel, stride in table:
        x = ties(rng, *shape) if tied else normal(rng, *shape)
        kh, kw = pair(kernel)
        sh, sw = pair(kernel if stride is None else stride)
        out = (shape[0], shape[1], (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1)
        dout = normal(rng, *out)
        extra = ", integer values with tied maxima" if tied else ""
        found.append(
            Inputs((dout, x, kernel), settings(stride=stride), window_label(x, kernel, stride, extra))
        )
    return found


def _draw_max_back(rng: np.random.Generator) -> list[Inputs]:
    table = [
        ((2, 3, 6, 8), 2, None),
        ((1, 2, 7, 5), (2, 3), None),
        ((2, 2, 7, 9), 3, 2),
        ((1, 1, 6, 7), (3, 2), (1, 2)),
        ((1, 2, 7, 6), (2, 3), (2, 1)),
    ]
    return _pool_backward_inputs(rng, table, False)


def _draw_max_back_ties(rng: np.random.Generator) -> list[Inputs]:
    table = [
        ((2, 2, 5, 6), 2, 1),
        ((1, 2, 7, 8), 3, 2),
        ((2, 1, 6, 7), (2, 2), (1, 2)),
        ((1, 3, 6, 6), 2, None),
        ((1, 2, 6, 5), (3, 2), (2, 1)),
    ]
    return _pool_backward_inputs(rng, table, True)


def _draw_avg_back(rng: np.random.Generator) -> list[Inputs]:
    table = [
        ((2, 3, 6, 8), 2, None),
        ((2, 2, 7, 9), 3, 2),
        ((1, 2, 6, 7), (2, 3), (1, 2)),
        ((2, 1, 7, 6), (3, 2), (2, 1)),
        ((1, 2, 5, 7), (2, 3), None),
        ((2, 2, 7, 8), 2, (2, 1)),
    ]
    return _pool_backward_inputs(rng, table, False)


def _judge_pool_backward(t: Trial, out: object) -> Verdict:
    dout, x, k = t.a["dout"], t.a["x"], pair(t.a["kernel_size"])
    s = k if t.a["stride"] is None else pair(t.a["stride"])
    is_max = t.case.function == "max_pool2d_backward"
    loop = dg.max_pool_backward_loop if is_max else dg.avg_pool_backward_loop

    def variants() -> list[Variant]:
        if is_max:
            found = [
                Variant("tie_all_maxima", loop(dout, x, k, s, "all")),
                Variant("tie_last_maximum", loop(dout, x, k, s, "last")),
                Variant("overlap_overwritten", loop(dout, x, k, s, "first", accumulate=False)),
                Variant("tie_all_maxima", loop(dout, x, k, s, "all", accumulate=False)),
                Variant("tie_last_maximum", loop(dout, x, k, s, "last", accumulate=False)),
                Variant("argmax_not_offset", loop(dout, x, k, s, "first", offset=False)),
                Variant("argmax_not_offset", loop(dout, x, k, s, "first", False, offset=False)),
            ]
        else:
            found = [
                Variant("avg_grad_not_divided", loop(dout, x, k, s, divide=False)),
                Variant("overlap_overwritten", loop(dout, x, k, s, accumulate=False)),
                Variant("avg_grad_not_divided", loop(dout, x, k, s, divide=False, accumulate=False)),
            ]
        alternatives = [("pair_swapped", k2, s2) for k2, s2 in ((k[::-1], s[::-1]), (k[::-1], s), (k, s[::-1]))]
        if k[0] != k[1]:
            for square in ((k[0], k[0]), (k[1], k[1])):
                alternatives.append(("square_kernel", square, square if t.a["stride"] is None else s))
        alternatives.append(("stride_ignored", k, (1, 1)))
        for key, k2, s2 in alternatives:
            if (k2, s2) == (k, s):
                continue
            with contextlib.suppress(ValueError, IndexError):  # windows cut off at the edge
                found.append(Variant(key, loop(dout, x, k2, s2)))
        return keep_different(found, t.expected)

    return judge_array(t.case, "dx", out, t.expected, variants)


_MAX_BACK_X = np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 6.0]]).reshape(1, 1, 2, 3)

MAX_POOL2D_BACKWARD = Exercise(
    name="max_pool2d_backward",
    summary="gradient of max pooling",
    tests=(
        HiddenTest(
            "test_max_pool2d_backward",
            2.0,
            "default stride, pair kernels (2, 3) and (3, 2), pair strides, overlapping windows",
            _draw_max_back,
        ),
        HiddenTest(
            "test_max_pool2d_backward_ties",
            2.0,
            "integer inputs with tied maxima in overlapping windows",
            _draw_max_back_ties,
        ),
    ),
    judge=_judge_pool_backward,
    visible=(
        Visible(
            (np.array([[10.0, 20.0]]).reshape(1, 1, 1, 2), _MAX_BACK_X, 2),
            {"stride": 1},
            "visible example: x = [[1, 5, 2], [3, 4, 6]], dout = [[10, 20]], kernel_size 2, stride 1",
            np.array([[[[0.0, 10.0, 0.0], [0.0, 0.0, 20.0]]]]),
        ),
        Visible(
            (np.ones((1, 1, 1, 1)), np.array([[2.0, 2.0], [2.0, 1.0]]).reshape(1, 1, 2, 2), 2),
            {},
            "visible example: x = [[2, 2], [2, 1]] (a tie), dout = [[1]], kernel_size 2",
            np.array([[[[1.0, 0.0], [0.0, 0.0]]]]),
        ),
    ),
    misconceptions=(
        TIE_ALL_MAXIMA,
        TIE_LAST_MAXIMUM,
        ARGMAX_NOT_OFFSET,
        dg.OVERLAP_OVERWRITTEN,
        dg.PAIR_SWAPPED,
        dg.SQUARE_KERNEL,
        dg.STRIDE_IGNORED,
        dg.PAIR_NOT_HANDLED,
    ),
    pair_arguments=("kernel_size", "stride"),
    **POLICY,
)

AVG_POOL2D_BACKWARD = Exercise(
    name="avg_pool2d_backward",
    summary="gradient of average pooling",
    tests=(
        HiddenTest(
            "test_avg_pool2d_backward",
            2.0,
            "default stride, overlapping windows, pair kernels (2, 3) and (3, 2) and pair strides",
            _draw_avg_back,
        ),
    ),
    judge=_judge_pool_backward,
    visible=(
        Visible(
            (np.array([[4.0, 8.0]]).reshape(1, 1, 1, 2), np.zeros((1, 1, 2, 3)), 2),
            {"stride": 1},
            "visible example: x = np.zeros((1, 1, 2, 3)), dout = [[4, 8]], kernel_size 2, stride 1",
            np.array([[[[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]]]]),
        ),
    ),
    misconceptions=(
        AVG_GRAD_NOT_DIVIDED,
        dg.OVERLAP_OVERWRITTEN,
        dg.PAIR_SWAPPED,
        dg.SQUARE_KERNEL,
        dg.STRIDE_IGNORED,
        dg.PAIR_NOT_HANDLED,
    ),
    pair_arguments=("kernel_size", "stride"),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# conv2d_backward
# ---------------------------------------------------------------------------------------------


def _conv_backward_inputs(rng: np.random.Generator, table: list[tuple]) -> list[Inputs]:
    found = []
    for xs, ws, with_bias, stride, padding in table:
        x, w = normal(rng, *xs), normal(rng, *ws)
        b = normal(rng, ws[0]) if with_bias else None
        (sh, sw), (ph, pw) = pair(stride), pair(padding)
        out = (xs[0], ws[0], (xs[2] + 2 * ph - ws[2]) // sh + 1, (xs[3] + 2 * pw - ws[3]) // sw + 1)
        dout = normal(rng, *out)
        kwargs = settings(stride=None if stride == 1 else stride, padding=None if padding == 0 else padding)
        found.append(Inputs((dout, x, w, b), kwargs, conv_label(x, w, b, stride, padding)))
    return found


def _draw_conv_back(rng: np.random.Generator) -> list[Inputs]:
    return _conv_backward_inputs(
        rng,
        [
            ((2, 3, 5, 6), (4, 3, 3, 2), True, 1, 0),
            ((3, 2, 4, 4), (2, 2, 2, 3), True, 1, 0),
            ((1, 1, 5, 4), (2, 1, 3, 3), False, 1, 0),
        ],
    )


def _draw_conv_back_stride(rng: np.random.Generator) -> list[Inputs]:
    return _conv_backward_inputs(
        rng,
        [
            ((2, 2, 7, 8), (3, 2, 3, 3), True, 2, 1),
            ((2, 3, 9, 10), (2, 3, 3, 2), False, (2, 3), (1, 0)),
            ((1, 2, 10, 8), (2, 2, 2, 2), True, 3, 0),
            ((2, 1, 5, 6), (2, 1, 3, 2), True, 1, (2, 1)),
            ((1, 2, 8, 9), (2, 2, 2, 3), True, (3, 2), (0, 1)),
            ((2, 2, 8, 7), (2, 2, 3, 2), True, (2, 1), 1),
        ],
    )


def _conv_back_alternatives(t: Trial) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(key, dx, dw) of buggy versions, computed once per judged case."""
    dout, x, w = t.a["dout"], t.a["x"], t.a["w"]
    s, p = pair(t.a["stride"]), pair(t.a["padding"])
    found = []
    dx_o, dw_o = dg.conv_backward_loop(dout, x, w, s, p, accumulate=False)
    found.append(("overlap_overwritten", dx_o, dw_o))
    ref_back = reference("conv2d_backward")
    dx_f, dw_f, _ = ref_back(dout, x, w[..., ::-1, ::-1], None, s, p)
    found.append(("kernel_flipped", dx_f, dw_f[..., ::-1, ::-1]))
    for key, s2 in (("stride_ignored", (1, 1)), ("pair_swapped", s[::-1])):
        if s2 != s:
            with contextlib.suppress(ValueError):
                found.append((key, *dg.conv_backward_loop(dout, x, w, s2, p)))
    if p[0] != p[1]:
        with contextlib.suppress(ValueError):
            found.append(("pair_swapped", *dg.conv_backward_loop(dout, x, w, s, p[::-1])))
    return found


def _dx_variants(t: Trial) -> list[Variant]:
    dout, x, w = t.a["dout"], t.a["x"], t.a["w"]
    s, p = pair(t.a["stride"]), pair(t.a["padding"])
    found = [Variant(key, dx) for key, dx, _ in _conv_back_alternatives(t)]
    if p != (0, 0):
        ph, pw = p
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        found.append(Variant("padding_not_removed", reference("conv2d_backward")(dout, xp, w, None, s, 0)[0]))
    return keep_different(found, t.expected[0])


def _dw_variants(t: Trial) -> list[Variant]:
    dout, x, w = t.a["dout"], t.a["x"], t.a["w"]
    s, p = pair(t.a["stride"]), pair(t.a["padding"])
    dw = t.expected[1]
    found = [Variant(key, dw_bug) for key, _, dw_bug in _conv_back_alternatives(t)]
    found.append(Variant("kernel_flipped", dw[..., ::-1, ::-1]))
    n = x.shape[0]
    if n > 1:
        for sample in (slice(-1, None), slice(0, 1)):
            part = reference("conv2d_backward")(dout[sample], x[sample], w, None, s, p)[1]
            found.append(Variant("dw_not_summed_over_batch", part))
        found.append(Variant("dw_not_summed_over_batch", dw / n))
    return keep_different(found, dw)


def _db_variants(t: Trial) -> list[Variant]:
    dout, n = t.a["dout"], t.a["x"].shape[0]
    found = [
        Variant("db_wrong_axes", dout.sum(axis=axes))
        for axes in ((0,), (1, 2, 3), (2, 3), (0, 1, 2, 3), (0, 2), (0, 3), (1,))
    ]
    found += [
        Variant("db_wrong_axes", dout[-1].sum(axis=(1, 2))),
        Variant("db_wrong_axes", dout[0].sum(axis=(1, 2))),
        Variant("db_wrong_axes", dout.mean(axis=(0, 2, 3))),
        Variant("db_wrong_axes", dout.sum(axis=(0, 2, 3)) / n),
    ]
    return keep_different(found, t.expected[2])


def _judge_conv2d_backward(t: Trial, out: object) -> Verdict:
    if not isinstance(out, tuple | list) or len(out) != 3:
        return fail(t.case, f"returned a {type(out).__name__}, expected the tuple (dx, dw, db)", "not_a_tuple")
    for index, part in enumerate((Part("dx", _dx_variants), Part("dw", _dw_variants))):
        verdict = judge_array(t.case, part.name, out[index], t.expected[index], lambda p=part: p.variants(t))
        if not verdict.passed:
            return verdict
    if t.a["b"] is None:
        if out[2] is not None:
            return fail(t.case, f"db is a {type(out[2]).__name__}, expected None because b is None", "db_not_none")
        return PASS
    return judge_array(t.case, "db", out[2], t.expected[2], lambda: _db_variants(t))


_CB_X = np.arange(4.0).reshape(1, 1, 2, 2)
_CB_W = np.array([[1.0, -1.0], [2.0, 0.5]]).reshape(1, 1, 2, 2)

CONV2D_BACKWARD = Exercise(
    name="conv2d_backward",
    summary="gradients of a convolution layer: dx, dw, db",
    tests=(
        HiddenTest(
            "test_conv2d_backward",
            3.0,
            "stride 1, no padding; batches, channels, non-square kernels, bias and no bias",
            _draw_conv_back,
        ),
        HiddenTest(
            "test_conv2d_backward_stride",
            3.0,
            "stride 2 and 3, pair strides (2, 3) and (3, 2) and pair padding, sizes that don't divide",
            _draw_conv_back_stride,
        ),
    ),
    judge=_judge_conv2d_backward,
    visible=(
        Visible(
            (np.array([3.0]).reshape(1, 1, 1, 1), _CB_X, _CB_W, np.zeros(1)),
            {},
            "visible example: x = np.arange(4.0).reshape(1, 1, 2, 2), w = [[1, -1], [2, 0.5]], "
            "dout = [[3]], b = [0]",
            (3.0 * _CB_W, 3.0 * _CB_X, np.array([3.0])),
        ),
        Visible(
            (np.ones((2, 4, 3, 4)), np.ones((2, 3, 5, 6)), np.ones((4, 3, 3, 2)), None),
            {"stride": 2, "padding": 1},
            "visible example: x = np.ones((2, 3, 5, 6)), w = np.ones((4, 3, 3, 2)), b None, "
            "stride 2, padding 1",
            NO_LITERAL,
        ),
    ),
    misconceptions=(
        dg.KERNEL_FLIPPED,
        dg.OVERLAP_OVERWRITTEN,
        DW_NOT_SUMMED_OVER_BATCH,
        DB_WRONG_AXES,
        DB_NOT_NONE,
        PADDING_NOT_REMOVED,
        dg.STRIDE_IGNORED,
        dg.PAIR_SWAPPED,
        dg.SQUARE_KERNEL,
        dg.PAIR_NOT_HANDLED,
    ),
    pair_arguments=("stride", "padding"),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# numerical_gradient
# ---------------------------------------------------------------------------------------------


def _numgrad_inputs(rng: np.random.Generator, table: list[tuple]) -> list[Inputs]:
    found = []
    for f, shape, h in table:
        x = normal(rng, *shape)
        label = f"f = {f.__name__}, x shape {shape}, " + ("h default" if h is None else f"h={h}")
        found.append(Inputs((f, x), settings(h=h), label))
    return found


def _draw_numgrad(rng: np.random.Generator) -> list[Inputs]:
    return _numgrad_inputs(
        rng,
        [
            (fn.neighbour_products, (3, 4), None),
            (fn.softplus_weighted, (2, 3, 2), None),
            (fn.sin_times_square, (5,), None),
            (fn.weighted_squares, (2, 3), None),
        ],
    )


def _draw_numgrad_step(rng: np.random.Generator) -> list[Inputs]:
    return _numgrad_inputs(
        rng,
        [(fn.cubic_sum, (3, 4), 1e-2), (fn.cubic_sum, (2, 5), 1e-3), (fn.sin_times_square, (4, 3), 0.05)],
    )


def _judge_numgrad(t: Trial, out: object) -> Verdict:
    f, x, h = t.a["f"], t.a["x"], t.a["h"]

    def variants() -> list[Variant]:
        found = [
            Variant("forward_difference", dg.centred(f, x, h, "forward")),
            Variant("forward_difference", dg.centred(f, x, h, "backward")),
            Variant("centred_over_h", dg.centred(f, x, h, "centred_over_h")),
            Variant("x_not_restored", dg.centred(f, x, h, "not_restored")),
            Variant("minus_at_x", dg.centred(f, x, h, "minus_at_x")),
        ]
        if x.ndim > 1:
            found.append(Variant("first_axis_only", dg.centred(f, x, h, "first_axis")))
        for other in (1e-5, 1e-4, 1e-6, 1e-3, 1e-7):
            if not math.isclose(other, h):
                found.append(Variant("h_ignored", dg.centred(f, x, other, "centred")))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the output", out, t.expected, variants)


NUMERICAL_GRADIENT = Exercise(
    name="numerical_gradient",
    summary="gradient by centred differences, to check the others",
    tests=(
        HiddenTest(
            "test_numerical_gradient",
            1.0,
            "several functions of 1-D, 2-D and 3-D arrays with the default h",
            _draw_numgrad,
        ),
        HiddenTest(
            "test_numerical_gradient_step",
            1.0,
            "the h passed in is used (the centred difference of x**3 is 3x**2 + h**2)",
            _draw_numgrad_step,
        ),
    ),
    judge=_judge_numgrad,
    visible=(
        Visible(
            (fn.square_sum, np.array([[1.0, -2.0], [0.5, 3.0]])),
            {},
            "visible example: f(v) = np.sum(v**2), x = [[1, -2], [0.5, 3]]",
            np.array([[2.0, -4.0], [1.0, 6.0]]),
        ),
        Visible(
            (fn.product_of_first_two, np.array([3.0, 5.0])),
            {"h": 1e-3},
            "visible example: f(v) = v[0] * v[1], x = [3, 5], h=0.001",
            np.array([5.0, 3.0]),
        ),
    ),
    misconceptions=(
        FORWARD_DIFFERENCE,
        CENTRED_OVER_H,
        H_IGNORED,
        FIRST_AXIS_ONLY,
        X_NOT_RESTORED,
        MINUS_AT_X,
    ),
    **POLICY,
)

ASSIGNMENT = Assignment(
    name="backprop",
    title="Backpropagation through convolution and pooling",
    chapters=(Chapter(7, "Backpropagation in CNNs", "book/part1/backprop.md"),),
    functions=(RELU_BACKWARD, MAX_POOL2D_BACKWARD, AVG_POOL2D_BACKWARD, CONV2D_BACKWARD, NUMERICAL_GRADIENT),
    graded_on="non-square inputs and kernels, strides and paddings, batches and channels, "
    "overlapping windows and tied maxima, and several scalar functions",
)
