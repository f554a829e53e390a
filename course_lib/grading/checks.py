"""What every hidden test of the autograded assignments checks.

This module is the single source of truth for the hidden tests. For a test id (the nbgrader
``grade_id`` of a hidden test cell) :func:`make_cases` draws fresh random inputs; :func:`judge`
compares a function's output on a case with the reference answer (course_lib's operators, float64)
and, when it is wrong, names the likely misconception; :func:`judge_inputs_unmodified` checks
that the inputs were left as they were. :func:`run_test` puts them together for a hidden test cell
in the student's notebook:

    from course_lib.grading.checks import run_test
    run_test("test_conv2d_forward_stride", conv2d_forward)

Nothing here runs student code except :func:`run_test`, and importing this module imports only
NumPy (PyTorch and course_lib are imported when first needed).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import math
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import diagnoses as dg

# the scalar functions for numerical_gradient: in a module that imports only NumPy, which the
# sandbox (it sees NumPy alone) loads to call them
from ._case_functions import cubic_sum, neighbour_products, sin_times_square, softplus_weighted
from .diagnoses import Variant, explain, pair
from .guard import forbidden_message

__all__ = [
    "ASSIGNMENTS",
    "POINTS",
    "Case",
    "Raised",
    "TimeLimitExceeded",
    "make_cases",
    "judge",
    "judge_inputs_unmodified",
    "run_test",
    "call_student",
    "test_ids",
    "cubic_sum",
    "neighbour_products",
    "softplus_weighted",
    "sin_times_square",
]


@dataclass(frozen=True)
class Case:
    """One call of a student function: ``function(*args, **kwargs)``."""

    test_id: str
    function: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Raised:
    """What a student call raised, as seen by the judge."""

    type_name: str
    message: str


class TimeLimitExceeded(BaseException):
    """A student call ran past its time limit.

    A BaseException, so that the student's ``except Exception`` can't hide it.
    """


#: assignment -> function -> hidden test ids, in notebook order.
ASSIGNMENTS: dict[str, dict[str, list[str]]] = {
    "convolution": {
        "corr2d": ["test_corr2d"],
        "pad2d": ["test_pad2d", "test_pad2d_pair"],
        "conv2d_forward": [
            "test_conv2d_forward",
            "test_conv2d_forward_padding",
            "test_conv2d_forward_stride",
        ],
        "max_pool2d_forward": ["test_max_pool2d_forward", "test_max_pool2d_forward_overlap"],
        "avg_pool2d_forward": ["test_avg_pool2d_forward", "test_avg_pool2d_forward_overlap"],
    },
    "output_shapes": {
        "conv_output_size": ["test_conv_output_size", "test_conv_output_size_errors"],
        "pool_output_size": ["test_pool_output_size", "test_pool_output_size_errors"],
        "conv2d_output_shape": ["test_conv2d_output_shape"],
        "conv2d_num_params": ["test_conv2d_num_params"],
        "layer_output_shapes": ["test_layer_output_shapes", "test_layer_output_shapes_padding"],
    },
    "backprop": {
        "relu_backward": ["test_relu_backward"],
        "max_pool2d_backward": ["test_max_pool2d_backward", "test_max_pool2d_backward_ties"],
        "avg_pool2d_backward": ["test_avg_pool2d_backward"],
        "conv2d_backward": ["test_conv2d_backward", "test_conv2d_backward_stride"],
        "numerical_gradient": ["test_numerical_gradient", "test_numerical_gradient_step"],
    },
}

#: test id -> points of its test cell (the same numbers as in the notebooks).
POINTS: dict[str, float] = {
    "test_corr2d": 3.0,
    "test_pad2d": 1.0,
    "test_pad2d_pair": 1.0,
    "test_conv2d_forward": 3.0,
    "test_conv2d_forward_padding": 2.0,
    "test_conv2d_forward_stride": 3.0,
    "test_max_pool2d_forward": 2.0,
    "test_max_pool2d_forward_overlap": 2.0,
    "test_avg_pool2d_forward": 1.0,
    "test_avg_pool2d_forward_overlap": 2.0,
    "test_conv_output_size": 2.0,
    "test_conv_output_size_errors": 1.0,
    "test_pool_output_size": 1.0,
    "test_pool_output_size_errors": 1.0,
    "test_conv2d_output_shape": 2.0,
    "test_conv2d_num_params": 2.0,
    "test_layer_output_shapes": 2.0,
    "test_layer_output_shapes_padding": 3.0,
    "test_relu_backward": 1.0,
    "test_max_pool2d_backward": 2.0,
    "test_max_pool2d_backward_ties": 2.0,
    "test_avg_pool2d_backward": 2.0,
    "test_conv2d_backward": 3.0,
    "test_conv2d_backward_stride": 3.0,
    "test_numerical_gradient": 1.0,
    "test_numerical_gradient_step": 1.0,
}

_FUNCTION_OF: dict[str, str] = {
    test_id: function
    for functions in ASSIGNMENTS.values()
    for function, ids in functions.items()
    for test_id in ids
}

_RTOL, _ATOL = 1e-6, 1e-8


def test_ids(assignment: str | None = None) -> list[str]:
    """All hidden test ids (of one assignment), in notebook order."""
    chosen = ASSIGNMENTS if assignment is None else {assignment: ASSIGNMENTS[assignment]}
    return [t for functions in chosen.values() for ids in functions.values() for t in ids]


test_ids.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def _ties(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Integer-valued floats in {0, 1, 2}: many repeated maxima in every window."""
    return rng.integers(0, 3, size=shape).astype(np.float64)


def _dims(x: np.ndarray) -> str:
    names = "NCHW"[-x.ndim :] if x.ndim <= 4 else ""
    return " ".join(f"{a}={s}" for a, s in zip(names, x.shape, strict=True)) or str(x.shape)


def _setting(name: str, value: object) -> str:
    if isinstance(value, tuple):
        return f"{name} {value}"
    return f"{name} {value}"


def _case(test_id: str, args: tuple, kwargs: dict | None = None, label: str = "") -> Case:
    return Case(test_id, _FUNCTION_OF[test_id], args, dict(kwargs or {}), label)


def _window_label(x: np.ndarray, kernel: object, stride: object, extra: str = "") -> str:
    parts = [f"x {_dims(x)}", _setting("kernel_size", kernel)]
    parts.append("stride default" if stride is None else _setting("stride", stride))
    return ", ".join(parts) + extra


def _conv_label(x: np.ndarray, w: np.ndarray, b: object, stride: object, padding: object) -> str:
    bias = "bias None" if b is None else "bias nonzero"
    return (
        f"x {_dims(x)}, w (F={w.shape[0]}, C={w.shape[1]}, kh={w.shape[2]}, kw={w.shape[3]}), "
        f"{bias}, stride {stride}, padding {padding}"
    )


def _cases_corr2d(test_id: str, rng: np.random.Generator) -> list[Case]:
    shapes = [
        ((5, 7), (2, 3)),
        ((6, 4), (3, 1)),
        ((4, 5), (4, 5)),
        ((3, 5), (1, 1)),
        ((7, 6), (3, 3)),
    ]
    cases = []
    for xs, ks in shapes:
        x, k = _normal(rng, *xs), _normal(rng, *ks)
        cases.append(_case(test_id, (x, k), label=f"x {xs}, k {ks}"))
    return cases


def _cases_pad2d(test_id: str, rng: np.random.Generator) -> list[Case]:
    if test_id == "test_pad2d":
        settings = [((2, 3, 4, 5), 1), ((4, 3), 2), ((2, 3, 3), 0), ((1, 1, 2, 3), 3)]
    else:
        settings = [
            ((1, 2, 3, 5), (1, 2)),
            ((4, 6), (2, 0)),
            ((2, 3, 4), (0, 3)),
            ((2, 1, 3, 2), (3, 1)),
        ]
    cases = []
    for shape, padding in settings:
        x = _normal(rng, *shape)
        cases.append(_case(test_id, (x, padding), label=f"x shape {shape}, padding {padding}"))
    return cases


def _cases_conv2d_forward(test_id: str, rng: np.random.Generator) -> list[Case]:
    # (x shape, w shape, with bias, stride, padding)
    table = {
        "test_conv2d_forward": [
            ((2, 3, 6, 7), (4, 3, 3, 2), True, 1, 0),
            ((1, 1, 5, 5), (1, 1, 3, 3), True, 1, 0),
            ((3, 2, 4, 6), (2, 2, 1, 3), True, 1, 0),
            ((2, 2, 5, 4), (3, 2, 2, 2), False, 1, 0),
        ],
        "test_conv2d_forward_padding": [
            ((2, 3, 5, 6), (2, 3, 3, 3), True, 1, 1),
            ((1, 2, 4, 7), (3, 2, 3, 2), True, 1, (2, 1)),
            ((2, 1, 4, 4), (2, 1, 3, 3), False, 1, 2),
            ((1, 2, 5, 3), (2, 2, 2, 3), True, 1, (0, 2)),
        ],
        "test_conv2d_forward_stride": [
            ((2, 3, 8, 9), (2, 3, 3, 3), True, 2, 0),
            ((1, 2, 10, 11), (3, 2, 2, 3), True, 3, 1),
            ((2, 2, 9, 10), (2, 2, 3, 2), True, (2, 3), (1, 2)),
            ((1, 3, 8, 7), (2, 3, 2, 2), False, (3, 1), 1),
        ],
    }
    cases = []
    for xs, ws, with_bias, stride, padding in table[test_id]:
        x, w = _normal(rng, *xs), _normal(rng, *ws)
        b = rng.uniform(0.5, 2.0, ws[0]) * rng.choice([-1.0, 1.0], ws[0]) if with_bias else None
        kwargs: dict[str, Any] = {}
        if stride != 1:
            kwargs["stride"] = stride
        if padding != 0:
            kwargs["padding"] = padding
        cases.append(_case(test_id, (x, w, b), kwargs, _conv_label(x, w, b, stride, padding)))
    return cases


def _cases_pool_forward(test_id: str, rng: np.random.Generator) -> list[Case]:
    # (x shape, kernel_size, stride (None = default), tie-valued input)
    plain = [
        ((2, 3, 6, 8), 2, None, False),
        ((1, 2, 7, 5), 2, None, False),
        ((2, 2, 6, 9), (2, 3), None, False),
        ((1, 1, 7, 8), 3, 3, False),
    ]
    overlap = [
        ((2, 2, 7, 9), 3, 2, False),
        ((1, 3, 6, 7), (3, 2), (1, 2), False),
        ((2, 2, 5, 6), 2, 1, True),
        ((1, 2, 8, 7), 3, (2, 1), True),
    ]
    table = {
        "test_max_pool2d_forward": plain,
        "test_max_pool2d_forward_overlap": overlap,
        "test_avg_pool2d_forward": plain,
        "test_avg_pool2d_forward_overlap": [*overlap[:2], ((2, 1, 6, 5), 2, 1, False)],
    }
    cases = []
    for shape, kernel, stride, ties in table[test_id]:
        x = _ties(rng, *shape) if ties else _normal(rng, *shape)
        kwargs = {} if stride is None else {"stride": stride}
        extra = ", integer values with tied maxima" if ties else ""
        cases.append(_case(test_id, (x, kernel), kwargs, _window_label(x, kernel, stride, extra)))
    return cases


def _size_label(n: int, kernel_size: int, **settings: object) -> str:
    parts = [f"n={n}", f"kernel_size={kernel_size}"]
    parts += [f"{k}={v}" for k, v in settings.items()]
    return ", ".join(parts)


def _cases_conv_output_size(test_id: str, rng: np.random.Generator) -> list[Case]:
    cases = []
    if test_id == "test_conv_output_size":
        fixed = [
            (28, 5, 1, 2, 1),
            (7, 3, 2, 0, 1),
            (32, 3, 1, 1, 2),
            (5, 5, 1, 0, 1),
            (10, 3, 3, 0, 1),
            (9, 2, 2, 1, 1),
            (1, 1, 1, 0, 1),
            (227, 11, 4, 0, 1),
        ]
        while len(fixed) < 24:
            n, k = int(rng.integers(1, 41)), int(rng.integers(1, 8))
            s, p, d = int(rng.integers(1, 5)), int(rng.integers(0, 4)), int(rng.integers(1, 4))
            if n + 2 * p - d * (k - 1) - 1 >= 0:
                fixed.append((n, k, s, p, d))
        for n, k, s, p, d in fixed:
            settings: dict[str, int] = {}
            if s != 1:
                settings["stride"] = s
            if p != 0:
                settings["padding"] = p
            if d != 1:
                settings["dilation"] = d
            cases.append(_case(test_id, (n, k), settings, _size_label(n, k, **settings)))
    else:
        bad = [
            (5, 0, {}),
            (5, 3, {"stride": 0}),
            (5, 3, {"padding": -1}),
            (5, 3, {"dilation": 0}),
            (3, 5, {}),
            (4, 3, {"dilation": 2}),
            (2, 4, {"stride": 2, "padding": 0}),
        ]
        for n, k, settings in bad:
            cases.append(_case(test_id, (n, k), settings, _size_label(n, k, **settings)))
    return cases


def _cases_pool_output_size(test_id: str, rng: np.random.Generator) -> list[Case]:
    cases = []
    if test_id == "test_pool_output_size":
        fixed: list[tuple[int, int, int | None, int]] = [
            (28, 2, None, 0),
            (7, 2, None, 0),
            (9, 3, 2, 1),
            (6, 3, 1, 0),
            (13, 3, 2, 0),
            (5, 5, None, 0),
            (10, 4, 3, 2),
        ]
        while len(fixed) < 20:
            k = int(rng.integers(1, 6))
            n = int(rng.integers(k, 33))
            s = None if rng.random() < 0.4 else int(rng.integers(1, 5))
            p = int(rng.integers(0, k // 2 + 1))
            fixed.append((n, k, s, p))
        for n, k, s, p in fixed:
            settings: dict[str, int] = {}
            if s is not None:
                settings["stride"] = s
            if p != 0:
                settings["padding"] = p
            cases.append(_case(test_id, (n, k), settings, _size_label(n, k, **settings)))
    else:
        bad = [
            (5, 0, {}),
            (5, 2, {"stride": 0}),
            (5, 2, {"padding": -1}),
            (3, 4, {}),
            (2, 3, {"stride": 1}),
        ]
        for n, k, settings in bad:
            cases.append(_case(test_id, (n, k), settings, _size_label(n, k, **settings)))
    return cases


def _cases_conv2d_output_shape(test_id: str, rng: np.random.Generator) -> list[Case]:
    settings = [
        ((3, 32, 32), 16, 3, 1, 1),
        ((1, 28, 28), 6, 5, 1, 2),
        ((3, 227, 227), 96, 11, 4, 0),
        ((2, 9, 14), 4, (3, 2), (2, 3), (1, 0)),
        ((5, 10, 7), 3, (1, 3), 1, (0, 1)),
        ((4, 8, 11), 8, 2, (3, 2), 1),
    ]
    cases = []
    for shape, out_channels, kernel, stride, padding in settings:
        kwargs: dict[str, Any] = {}
        if stride != 1:
            kwargs["stride"] = stride
        if padding != 0:
            kwargs["padding"] = padding
        label = (
            f"input_shape {shape}, out_channels {out_channels}, kernel_size {kernel}, "
            f"stride {stride}, padding {padding}"
        )
        cases.append(_case(test_id, (shape, out_channels, kernel), kwargs, label))
    return cases


def _cases_conv2d_num_params(test_id: str, rng: np.random.Generator) -> list[Case]:
    settings = [
        (1, 6, 5, True),
        (3, 64, 3, True),
        (6, 16, (5, 3), True),
        (8, 4, (1, 2), False),
        (3, 7, (2, 4), True),
        (16, 32, 3, False),
    ]
    cases = []
    for c_in, c_out, kernel, bias in settings:
        kwargs = {} if bias else {"bias": False}
        label = f"in_channels {c_in}, out_channels {c_out}, kernel_size {kernel}, bias {bias}"
        cases.append(_case(test_id, (c_in, c_out, kernel), kwargs, label))
    return cases


def _describe_layers(layers: list) -> str:
    return " -> ".join(repr(layer).replace("\n", "") for layer in layers)


def _cases_layer_output_shapes(test_id: str, rng: np.random.Generator) -> list[Case]:
    from torch import nn

    cases = []

    def add(layers: list, input_shape: tuple[int, int, int]) -> None:
        # ("linear", out_features) stands for a Linear layer whose in_features is the
        # flattened size at that point
        built: list = []
        for layer in layers:
            if isinstance(layer, tuple):
                before = dg.layer_shapes(built, input_shape)[-1]
                layer = nn.Linear(math.prod(before), layer[1])
            built.append(layer)
        label = f"input_shape {input_shape}, layers {_describe_layers(built)}"
        cases.append(_case(test_id, (built, input_shape), {}, label))

    if test_id == "test_layer_output_shapes":
        h = int(rng.integers(24, 33))
        add(
            [
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
            ],
            (1, h, h),
        )
        h, w = int(rng.integers(20, 30)), int(rng.integers(12, 20))
        add(
            [
                nn.Conv2d(3, 8, 3),
                nn.BatchNorm2d(8),
                nn.Tanh(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(8, 4, (3, 1)),
                nn.Flatten(),
                ("linear", 5),
            ],
            (3, h, w),
        )
        add(
            [
                nn.Conv2d(2, 4, (2, 3), stride=(2, 1)),
                nn.LeakyReLU(0.1),
                nn.AvgPool2d((2, 1)),
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.Flatten(),
                ("linear", 3),
            ],
            (2, int(rng.integers(10, 16)), int(rng.integers(9, 14))),
        )
    else:
        h, w = int(rng.integers(14, 22)), int(rng.integers(11, 18))
        add(
            [
                nn.Conv2d(3, 6, 3, padding="same"),
                nn.ReLU(),
                nn.Conv2d(6, 6, 5, padding="valid"),
                nn.Conv2d(6, 4, 3, padding="same", dilation=2),
                nn.MaxPool2d(3, stride=2, padding=1),
                nn.Flatten(),
            ],
            (3, h, w),
        )
        h, w = int(rng.integers(16, 24)), int(rng.integers(20, 28))
        add(
            [
                nn.Conv2d(1, 4, 3, dilation=2),
                nn.Conv2d(4, 4, (3, 5), stride=(2, 3), padding=(1, 2)),
                nn.BatchNorm2d(4),
                nn.Conv2d(4, 2, 3, dilation=(2, 1), padding=(2, 0)),
                nn.AvgPool2d((2, 3), stride=(2, 1), padding=(1, 0)),
                nn.Flatten(),
                ("linear", 7),
            ],
            (1, h, w),
        )
        add(
            [
                nn.Conv2d(2, 3, 5, padding="same"),
                nn.Conv2d(3, 3, (1, 5), padding="same"),
                nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(1, 2)),
                nn.AdaptiveAvgPool2d((2, 1)),
                nn.Flatten(),
            ],
            (2, int(rng.integers(9, 13)), int(rng.integers(12, 17))),
        )
    return cases


def _cases_relu_backward(test_id: str, rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, kind in [((2, 3, 4, 5), "normal"), ((3, 7), "ties"), ((2, 2, 3, 4), "ties")]:
        x = _normal(rng, *shape) if kind == "normal" else rng.integers(-2, 3, shape).astype(float)
        dout = _normal(rng, *shape)
        label = f"x shape {shape}" + (", integer values including x == 0" if kind == "ties" else "")
        cases.append(_case(test_id, (dout, x), {}, label))
    return cases


def _pool_backward_case(
    test_id: str,
    rng: np.random.Generator,
    shape: tuple,
    kernel: object,
    stride: object,
    ties: bool,
) -> Case:
    x = _ties(rng, *shape) if ties else _normal(rng, *shape)
    kh, kw = pair(kernel)
    sh, sw = pair(kernel if stride is None else stride)
    out = (shape[0], shape[1], (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1)
    dout = _normal(rng, *out)
    kwargs = {} if stride is None else {"stride": stride}
    extra = ", integer values with tied maxima" if ties else ""
    return _case(test_id, (dout, x, kernel), kwargs, _window_label(x, kernel, stride, extra))


def _cases_max_pool2d_backward(test_id: str, rng: np.random.Generator) -> list[Case]:
    if test_id == "test_max_pool2d_backward":
        table = [
            ((2, 3, 6, 8), 2, None),
            ((1, 2, 7, 5), (2, 3), None),
            ((2, 2, 7, 9), 3, 2),
            ((1, 1, 6, 7), (3, 2), (1, 2)),
        ]
        return [_pool_backward_case(test_id, rng, *row, False) for row in table]
    table = [
        ((2, 2, 5, 6), 2, 1),
        ((1, 2, 7, 8), 3, 2),
        ((2, 1, 6, 7), (2, 2), (1, 2)),
        ((1, 3, 6, 6), 2, None),
    ]
    return [_pool_backward_case(test_id, rng, *row, True) for row in table]


def _cases_avg_pool2d_backward(test_id: str, rng: np.random.Generator) -> list[Case]:
    table = [((2, 3, 6, 8), 2, None), ((2, 2, 7, 9), 3, 2), ((1, 2, 6, 7), (2, 3), (1, 2))]
    return [_pool_backward_case(test_id, rng, *row, False) for row in table]


def _cases_conv2d_backward(test_id: str, rng: np.random.Generator) -> list[Case]:
    table = {
        "test_conv2d_backward": [
            ((2, 3, 5, 6), (4, 3, 3, 2), True, 1, 0),
            ((3, 2, 4, 4), (2, 2, 2, 3), True, 1, 0),
            ((1, 1, 5, 4), (2, 1, 3, 3), False, 1, 0),
        ],
        "test_conv2d_backward_stride": [
            ((2, 2, 7, 8), (3, 2, 3, 3), True, 2, 1),
            ((2, 3, 9, 10), (2, 3, 3, 2), False, (2, 3), (1, 0)),
            ((1, 2, 10, 8), (2, 2, 2, 2), True, 3, 0),
            ((2, 1, 5, 6), (2, 1, 3, 2), True, 1, (2, 1)),
        ],
    }
    cases = []
    for xs, ws, with_bias, stride, padding in table[test_id]:
        x, w = _normal(rng, *xs), _normal(rng, *ws)
        b = _normal(rng, ws[0]) if with_bias else None
        (sh, sw), (ph, pw) = pair(stride), pair(padding)
        out = (xs[0], ws[0], (xs[2] + 2 * ph - ws[2]) // sh + 1, (xs[3] + 2 * pw - ws[3]) // sw + 1)
        dout = _normal(rng, *out)
        kwargs: dict[str, Any] = {}
        if stride != 1:
            kwargs["stride"] = stride
        if padding != 0:
            kwargs["padding"] = padding
        label = _conv_label(x, w, b, stride, padding)
        cases.append(_case(test_id, (dout, x, w, b), kwargs, label))
    return cases


def _cases_numerical_gradient(test_id: str, rng: np.random.Generator) -> list[Case]:
    if test_id == "test_numerical_gradient":
        table = [
            (neighbour_products, (3, 4), None),
            (softplus_weighted, (2, 3, 2), None),
            (sin_times_square, (5,), None),
        ]
    else:
        table = [
            (cubic_sum, (3, 4), 1e-2),
            (cubic_sum, (2, 5), 1e-3),
            (sin_times_square, (4, 3), 0.05),
        ]
    cases = []
    for f, shape, h in table:
        x = _normal(rng, *shape)
        kwargs = {} if h is None else {"h": h}
        label = f"f = {f.__name__}, x shape {shape}, " + ("h default" if h is None else f"h={h}")
        cases.append(_case(test_id, (f, x), kwargs, label))
    return cases


_CASES: dict[str, Callable[[str, np.random.Generator], list[Case]]] = {
    "corr2d": _cases_corr2d,
    "pad2d": _cases_pad2d,
    "conv2d_forward": _cases_conv2d_forward,
    "max_pool2d_forward": _cases_pool_forward,
    "avg_pool2d_forward": _cases_pool_forward,
    "conv_output_size": _cases_conv_output_size,
    "pool_output_size": _cases_pool_output_size,
    "conv2d_output_shape": _cases_conv2d_output_shape,
    "conv2d_num_params": _cases_conv2d_num_params,
    "layer_output_shapes": _cases_layer_output_shapes,
    "relu_backward": _cases_relu_backward,
    "max_pool2d_backward": _cases_max_pool2d_backward,
    "avg_pool2d_backward": _cases_avg_pool2d_backward,
    "conv2d_backward": _cases_conv2d_backward,
    "numerical_gradient": _cases_numerical_gradient,
}


def make_cases(test_id: str, rng: np.random.Generator) -> list[Case]:
    """The cases of one hidden test, with inputs drawn from ``rng``."""
    if test_id not in _FUNCTION_OF:
        known = ", ".join(sorted(_FUNCTION_OF))
        raise KeyError(f"unknown test id {test_id!r}; known: {known}")
    return _CASES[_FUNCTION_OF[test_id]](test_id, rng)


# ---------------------------------------------------------------------------------------------
# judging
# ---------------------------------------------------------------------------------------------


def _reference(function: str) -> Callable[..., Any]:
    from . import reference

    return getattr(reference, function)


def _bound(case: Case) -> dict[str, Any]:
    """The case's arguments by parameter name, defaults filled in."""
    signature = inspect.signature(_reference(case.function))
    bound = signature.bind(*case.args, **case.kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _expected(case: Case) -> Any:
    try:
        return _reference(case.function)(*case.args, **case.kwargs)
    except ValueError as error:
        return Raised("ValueError", str(error))


def _say(case: Case, what: str, key: str | None = None) -> str:
    message = f"{case.function}, case {case.label}: {what}"
    if key is not None:
        message += f"\n{explain(key)}"
    return message


def _raised(case: Case, output: Raised) -> str:
    if output.type_name == "NotImplementedError":
        return _say(case, "not written yet (it raises NotImplementedError)")
    if output.type_name == "ForbiddenCallError":
        return _say(case, output.message, "forbidden_call")
    if output.type_name == "TimeLimitExceeded":
        return _say(case, output.message)
    return _say(case, f"raised {output.type_name}: {output.message}")


def _first_difference(out: np.ndarray, expected: np.ndarray) -> str:
    close = np.isclose(out, expected, rtol=_RTOL, atol=_ATOL)
    bad = np.argwhere(~close)
    index = tuple(int(i) for i in bad[0])
    return (
        f"{len(bad)} of {expected.size} values differ from the expected ones; e.g. at index "
        f"{index}: got {out[index]:.6g}, expected {expected[index]:.6g}"
    )


def _judge_array(
    case: Case, name: str, out: object, expected: np.ndarray, variants: list[Variant]
) -> str | None:
    if isinstance(out, Raised):
        return _raised(case, out)
    if not isinstance(out, np.ndarray):
        return _say(
            case,
            f"{name} is a {type(out).__name__}, expected a numpy.ndarray of shape {expected.shape}",
            "wrong_shape",
        )
    if out.shape != expected.shape:
        what = f"{name} has shape {out.shape}, expected {expected.shape}"
        for v in variants:
            shape = v.output if v.shape_only else np.shape(v.output)
            if tuple(shape) == out.shape:  # type: ignore[arg-type]
                if v.shape_only or np.allclose(out, v.output, rtol=_RTOL, atol=_ATOL):
                    return _say(case, what, v.key)
        for v in variants:
            shape = v.output if v.shape_only else np.shape(v.output)
            if tuple(shape) == out.shape:  # type: ignore[arg-type]
                return _say(case, what, v.key)
        return _say(case, what, "wrong_shape")
    if out.dtype != np.float64:
        return _say(case, f"{name} has dtype {out.dtype}, expected float64", "wrong_dtype")
    if np.allclose(out, expected, rtol=_RTOL, atol=_ATOL):
        return None
    for v in variants:
        if v.shape_only or np.shape(v.output) != out.shape:
            continue
        if np.allclose(out, v.output, rtol=_RTOL, atol=_ATOL, equal_nan=True):
            return _say(case, f"{name} is wrong: {_first_difference(out, expected)}", v.key)
    return _say(case, f"{name} is wrong: {_first_difference(out, expected)}")


def _variants_window(case: Case, a: dict[str, Any], expected: np.ndarray) -> list[Variant]:
    """Variants of the forward window operators (corr2d, conv2d_forward, pooling)."""
    from . import reference as ref

    f = case.function
    variants: list[Variant] = []
    if f == "corr2d":
        x, k = a["x"], a["k"]
        variants.append(Variant("kernel_flipped", ref.corr2d(x, k[::-1, ::-1])))
        variants += dg.window_shape_variants((), x.shape, k.shape, (1, 1), (0, 0))
        return variants
    if f == "conv2d_forward":
        x, w, b = a["x"], a["w"], a["b"]
        s, p = pair(a["stride"]), pair(a["padding"])
        kernel = w.shape[2:]
        variants.append(
            Variant("kernel_flipped", ref.conv2d_forward(x, w[..., ::-1, ::-1], b, s, p))
        )
        if b is not None:
            plain = ref.conv2d_forward(x, w, None, s, p)
            c, kh, kw = w.shape[1:]
            variants.append(Variant("bias_missing", plain))
            for times in {c, kh * kw, c * kh * kw} - {1}:
                variants.append(Variant("bias_repeated", plain + times * b[None, :, None, None]))
        step1 = ref.conv2d_forward(x, w, b, 1, p)
        variants.append(
            Variant("stride_ignored", step1[:, :, : expected.shape[2], : expected.shape[3]])
        )
        variants.append(Variant("stride_ignored", step1))
        if s[0] != s[1] or p[0] != p[1]:
            for s2, p2 in ((s[::-1], p[::-1]), (s[::-1], p), (s, p[::-1])):
                try:
                    variants.append(Variant("pair_swapped", ref.conv2d_forward(x, w, b, s2, p2)))
                except (ValueError, RuntimeError):
                    pass
        if p != (0, 0):
            (ph, pw) = p
            for before, after in (
                ((2 * ph, 2 * pw), (0, 0)),
                ((0, 0), (2 * ph, 2 * pw)),
                ((ph, pw), (0, 0)),
                ((0, 0), (ph, pw)),
            ):
                xp = np.pad(x, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))
                variants.append(Variant("padding_one_side", ref.conv2d_forward(xp, w, b, s, 0)))
            for only in ((ph, 0), (0, pw)):
                if only != p:
                    variants.append(
                        Variant("padding_wrong_axes", ref.conv2d_forward(x, w, b, s, only))
                    )
        lead = expected.shape[:2]
        variants += dg.window_shape_variants(lead, x.shape[2:], kernel, s, p)
        return variants
    # pooling
    x, k = a["x"], pair(a["kernel_size"])
    s = k if a["stride"] is None else pair(a["stride"])
    forward = ref.max_pool2d_forward if f == "max_pool2d_forward" else ref.avg_pool2d_forward
    step1 = forward(x, k, 1)
    variants.append(
        Variant("stride_ignored", step1[:, :, : expected.shape[2], : expected.shape[3]])
    )
    variants.append(Variant("stride_ignored", step1))
    if f == "avg_pool2d_forward":
        for times in {k[0] * k[1], k[0], k[1]} - {1}:
            variants.append(Variant("avg_wrong_divisor", expected * times))
    if k[0] != k[1] or s[0] != s[1]:
        for k2, s2 in ((k[::-1], s[::-1]), (k[::-1], s), (k, s[::-1])):
            try:
                variants.append(Variant("pair_swapped", forward(x, k2, s2)))
            except (ValueError, RuntimeError):
                pass
    variants += dg.window_shape_variants(expected.shape[:2], x.shape[2:], k, s, (0, 0))
    return variants


def _variants_pad2d(a: dict[str, Any], expected: np.ndarray) -> list[Variant]:
    x = a["x"]
    ph, pw = pair(a["padding"])
    lead = [(0, 0)] * (x.ndim - 2)
    variants = [
        Variant("padding_wrong_axes", np.pad(x, max(ph, pw))),
        Variant("padding_wrong_axes", np.pad(x, [*lead, (ph, ph), (0, 0)])),
        Variant("padding_wrong_axes", np.pad(x, [*lead, (0, 0), (pw, pw)])),
        Variant("padding_one_side", np.pad(x, [*lead, (2 * ph, 0), (2 * pw, 0)])),
        Variant("padding_one_side", np.pad(x, [*lead, (0, 2 * ph), (0, 2 * pw)])),
        Variant("padding_one_side", np.pad(x, [*lead, (ph, 0), (pw, 0)])),
        Variant("padding_one_side", np.pad(x, [*lead, (0, ph), (0, pw)])),
        Variant("pair_swapped", np.pad(x, [*lead, (pw, pw), (ph, ph)])),
    ]
    return [v for v in variants if not np.array_equal(v.output, expected)]


def _variants_backward(case: Case, a: dict[str, Any], expected: np.ndarray) -> list[Variant]:
    f = case.function
    if f == "relu_backward":
        dout, x = a["dout"], a["x"]
        return [
            Variant("relu_at_zero", dout * (x >= 0)),
            Variant("relu_wrong_mask", dout * (dout > 0)),
            Variant("relu_wrong_mask", (x > 0).astype(np.float64)),
            Variant("relu_wrong_mask", dout * x * (x > 0)),
        ]
    if f == "numerical_gradient":
        fn, x, h = a["f"], a["x"], a["h"]
        variants = [
            Variant("forward_difference", dg.centred(fn, x, h, "forward")),
            Variant("forward_difference", dg.centred(fn, x, h, "backward")),
            Variant("centred_over_h", dg.centred(fn, x, h, "centred_over_h")),
        ]
        for other in (1e-5, 1e-4, 1e-6, 1e-3, 1e-7):
            if not math.isclose(other, h):
                variants.append(Variant("h_ignored", dg.centred(fn, x, other, "centred")))
        return variants
    dout, x, k = a["dout"], a["x"], pair(a["kernel_size"])
    s = k if a["stride"] is None else pair(a["stride"])
    variants = []
    if f == "max_pool2d_backward":
        variants += [
            Variant("tie_all_maxima", dg.max_pool_backward_loop(dout, x, k, s, "all")),
            Variant("tie_last_maximum", dg.max_pool_backward_loop(dout, x, k, s, "last")),
            Variant(
                "overlap_overwritten",
                dg.max_pool_backward_loop(dout, x, k, s, "first", accumulate=False),
            ),
            Variant(
                "tie_all_maxima", dg.max_pool_backward_loop(dout, x, k, s, "all", accumulate=False)
            ),
            Variant(
                "tie_last_maximum",
                dg.max_pool_backward_loop(dout, x, k, s, "last", accumulate=False),
            ),
        ]
    else:
        variants += [
            Variant("avg_grad_not_divided", dg.avg_pool_backward_loop(dout, x, k, s, divide=False)),
            Variant(
                "overlap_overwritten", dg.avg_pool_backward_loop(dout, x, k, s, accumulate=False)
            ),
            Variant(
                "avg_grad_not_divided",
                dg.avg_pool_backward_loop(dout, x, k, s, divide=False, accumulate=False),
            ),
        ]
    if k != k[::-1] or s != s[::-1]:
        loop = (
            dg.max_pool_backward_loop if f == "max_pool2d_backward" else dg.avg_pool_backward_loop
        )
        for k2, s2 in ((k[::-1], s[::-1]), (k[::-1], s), (k, s[::-1])):
            h_out = (x.shape[2] - k2[0]) // s2[0] + 1
            w_out = (x.shape[3] - k2[1]) // s2[1] + 1
            if (h_out, w_out) == dout.shape[2:]:
                variants.append(Variant("pair_swapped", loop(dout, x, k2, s2)))
    return [v for v in variants if _differs(v.output, expected)]


def _judge_conv2d_backward(case: Case, a: dict[str, Any], out: object) -> str | None:
    from . import reference as ref

    if isinstance(out, Raised):
        return _raised(case, out)
    if not isinstance(out, tuple | list) or len(out) != 3:
        return _say(case, f"returned a {type(out).__name__}, expected the tuple (dx, dw, db)")
    dout, x, w, b = a["dout"], a["x"], a["w"], a["b"]
    s, p = pair(a["stride"]), pair(a["padding"])
    dx, dw, db = ref.conv2d_backward(dout, x, w, b, s, p)
    out_dx, out_dw, out_db = out
    n = x.shape[0]
    (ph, pw) = p
    dx_variants = [Variant("overlap_overwritten", dg.conv_dx_overwritten(dout, x, w, s, p))]
    dx_flipped, dw_flipped, _ = ref.conv2d_backward(dout, x, w[..., ::-1, ::-1], b, s, p)
    dx_variants.append(Variant("kernel_flipped", dx_flipped))
    if p != (0, 0):
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        dx_variants.append(
            Variant("padding_not_removed", ref.conv2d_backward(dout, xp, w, b, s, 0)[0])
        )
    dx_variants = [v for v in dx_variants if _differs(v.output, dx)]
    message = _judge_array(case, "dx", out_dx, dx, dx_variants)
    if message:
        return message
    dw_variants = [
        Variant("kernel_flipped", dw_flipped[..., ::-1, ::-1]),
        Variant("kernel_flipped", dw[..., ::-1, ::-1]),
    ]
    if n > 1:
        for sample in (slice(-1, None), slice(0, 1)):
            part = ref.conv2d_backward(dout[sample], x[sample], w, b, s, p)[1]
            dw_variants.append(Variant("dw_not_summed_over_batch", part))
        dw_variants.append(Variant("dw_not_summed_over_batch", dw / n))
    message = _judge_array(case, "dw", out_dw, dw, dw_variants)
    if message:
        return message
    if b is None:
        if out_db is not None:
            return _say(case, f"db is a {type(out_db).__name__}, expected None because b is None")
        return None
    db_variants = [
        Variant("db_wrong_axes", dout.sum(axis=axes))
        for axes in ((0,), (1, 2, 3), (2, 3), (0, 1, 2, 3), (0, 2), (0, 3), (1,))
    ]
    db_variants += [
        Variant("db_wrong_axes", dout[-1].sum(axis=(1, 2))),
        Variant("db_wrong_axes", dout[0].sum(axis=(1, 2))),
        Variant("db_wrong_axes", dout.mean(axis=(0, 2, 3))),
        Variant("db_wrong_axes", dout.sum(axis=(0, 2, 3)) / n),
    ]
    db_variants = [v for v in db_variants if _differs(v.output, db)]
    return _judge_array(case, "db", out_db, db, db_variants)


def _differs(output: object, expected: np.ndarray) -> bool:
    """True when a variant's output is distinguishable from the right answer."""
    return np.shape(output) != expected.shape or not np.allclose(
        output, expected, rtol=_RTOL, atol=_ATOL
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _size_variants(case: Case, a: dict[str, Any]) -> list[Variant]:
    n, k, p = a["n"], a["kernel_size"], a["padding"]
    if case.function == "conv_output_size":
        s, d = a["stride"], a["dilation"]
    else:
        s, d = (k if a["stride"] is None else a["stride"]), 1
    span = n + 2 * p - d * (k - 1) - 1
    variants = [
        Variant("size_off_by_one", span // s),
        Variant("size_off_by_one", span // s + 2),
        Variant("size_off_by_one", (span + 1) // s + 1),
        Variant("padding_counted_once", (span - p) // s + 1),
        Variant("padding_ignored", (span - 2 * p) // s + 1),
        Variant("dilation_ignored", (n + 2 * p - k) // s + 1),
        Variant("ceil_not_floor", -(-span // s) + 1),
    ]
    if case.function == "pool_output_size" and a["stride"] is None:
        variants.append(Variant("pool_stride_default", span + 1))
    return variants


def _judge_int(case: Case, out: object, expected: object, variants: list[Variant]) -> str | None:
    if isinstance(expected, Raised):
        if isinstance(out, Raised):
            if out.type_name == "ValueError":
                return None
            if out.type_name == "NotImplementedError":
                return _raised(case, out)
            return _say(
                case,
                f"raised {out.type_name}: {out.message}, expected ValueError",
                "no_value_error",
            )
        return _say(case, f"returned {out!r}, expected a ValueError", "no_value_error")
    if isinstance(out, Raised):
        return _raised(case, out)
    if isinstance(out, float | np.floating):
        return _say(
            case, f"returned the float {out!r}, expected the int {expected}", "true_division"
        )
    if not _is_int(out):
        return _say(case, f"returned a {type(out).__name__}, expected an int")
    if out == expected:
        return None
    for v in variants:
        if v.output == out:
            return _say(case, f"returned {out}, expected {expected}", v.key)
    return _say(case, f"returned {out}, expected {expected}")


def _judge_output_shape(case: Case, a: dict[str, Any], out: object, expected: tuple) -> str | None:
    from . import reference as ref

    if isinstance(out, Raised):
        return _raised(case, out)
    if not isinstance(out, tuple) or not all(_is_int(v) for v in out):
        return _say(case, f"returned {out!r}, expected a tuple of ints like {expected}")
    if tuple(int(v) for v in out) == expected:
        return None
    shape, c_out = a["input_shape"], a["out_channels"]
    k, s, p = pair(a["kernel_size"]), pair(a["stride"]), pair(a["padding"])
    variants = [Variant("channels_wrong", (shape[0], *expected[1:]))]
    variants.append(Variant("pair_swapped", (expected[0], expected[2], expected[1])))
    for k2, s2, p2 in (
        (k[::-1], s, p),
        (k, s[::-1], p),
        (k, s, p[::-1]),
        (k[::-1], s[::-1], p[::-1]),
    ):
        with contextlib.suppress(ValueError):
            variants.append(
                Variant("pair_swapped", ref.conv2d_output_shape(shape, c_out, k2, s2, p2))
            )
    for v in dg.window_shape_variants((c_out,), shape[1:], k, s, p):
        variants.append(v)
    got = tuple(int(v) for v in out)
    for v in variants:
        if tuple(v.output) == got and tuple(v.output) != expected:  # type: ignore[arg-type]
            return _say(case, f"returned {got}, expected {expected}", v.key)
    return _say(case, f"returned {got}, expected {expected}")


def _judge_num_params(case: Case, a: dict[str, Any], out: object, expected: int) -> str | None:
    c_in, c_out, bias = a["in_channels"], a["out_channels"], a["bias"]
    kh, kw = pair(a["kernel_size"])
    weights = c_out * c_in * kh * kw
    variants = [
        Variant("num_params_bias", weights if bias else weights + c_out),
        Variant("num_params_bias", weights + c_in * c_out * bias),
        Variant("num_params_bias", weights + c_in * bias),
        Variant("num_params_kernel", c_out * c_in * kh * kh + c_out * bias),
        Variant("num_params_kernel", c_out * kh * kw + c_out * bias),
        Variant("num_params_kernel", c_out * c_in * (kh + kw) + c_out * bias),
    ]
    return _judge_int(case, out, expected, [v for v in variants if v.output != expected])


def _judge_layer_shapes(case: Case, a: dict[str, Any], out: object, expected: list) -> str | None:
    if isinstance(out, Raised):
        return _raised(case, out)
    if not isinstance(out, list | tuple) or not all(
        isinstance(s, tuple | list) and all(_is_int(v) for v in s) for s in out
    ):
        return _say(
            case, f"returned {out!r}, expected a list of shape tuples, one per layer", "wrong_shape"
        )
    got = [tuple(int(v) for v in s) for s in out]
    if len(got) != len(expected):
        return _say(case, f"returned {len(got)} shapes for {len(expected)} layers")
    if not all(isinstance(s, tuple) for s in out):
        return _say(case, "each shape should be a tuple, e.g. (6, 28, 28)")
    if got == expected:
        return None
    layers, shape = a["layers"], a["input_shape"]
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
    ]
    for key, flags in options:
        try:
            variant = dg.layer_shapes(layers, shape, **flags)
        except (ValueError, ZeroDivisionError):
            continue
        if variant == got:
            return _say(case, what, key)
    return _say(case, what)


def judge(case: Case, output: object) -> str | None:
    """None when ``output`` is right for ``case``; else what is wrong and the likely cause.

    ``output`` is what the student's function returned, or a :class:`Raised`. The message
    starts with the function and the case, and ends with a diagnosis ("Likely misconception:
    ... Look at: ...") when the output matches a known buggy variant.
    """
    f = case.function
    a = _bound(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if f == "conv2d_backward":
            return _judge_conv2d_backward(case, a, output)
        expected = _expected(case)
        if f in ("conv_output_size", "pool_output_size"):
            variants = [] if isinstance(expected, Raised) else _size_variants(case, a)
            variants = [v for v in variants if v.output != expected]
            return _judge_int(case, output, expected, variants)
        if f == "conv2d_num_params":
            return _judge_num_params(case, a, output, expected)
        if f == "conv2d_output_shape":
            return _judge_output_shape(case, a, output, expected)
        if f == "layer_output_shapes":
            return _judge_layer_shapes(case, a, output, expected)
        if isinstance(output, Raised):
            return _raised(case, output)
        if f == "pad2d":
            variants = _variants_pad2d(a, expected)
        elif f in ("corr2d", "conv2d_forward", "max_pool2d_forward", "avg_pool2d_forward"):
            variants = _variants_window(case, a, expected)
        else:
            variants = _variants_backward(case, a, expected)
        return _judge_array(case, "the output", output, expected, variants)


def _same(before: object, after: object) -> bool:
    if isinstance(before, np.ndarray):
        return (
            isinstance(after, np.ndarray)
            and before.shape == after.shape
            and before.dtype == after.dtype
            and np.array_equal(before, after, equal_nan=True)
        )
    if isinstance(before, tuple | list):
        return (
            type(before) is type(after)
            and len(before) == len(after)  # type: ignore[arg-type]
            and all(_same(x, y) for x, y in zip(before, after, strict=True))  # type: ignore[call-overload]
        )
    if type(before).__module__.startswith("torch"):
        return _same_module(before, after)
    return before == after


def _same_module(before: Any, after: Any) -> bool:
    if type(before) is not type(after) or repr(before) != repr(after):
        return False
    state_before, state_after = before.state_dict(), after.state_dict()
    return state_before.keys() == state_after.keys() and all(
        bool((state_before[k] == state_after[k]).all()) for k in state_before
    )


def judge_inputs_unmodified(case: Case, args_after: tuple, kwargs_after: dict) -> str | None:
    """None when the arguments after the call equal the case's; else which one changed."""
    names = list(_bound(case))
    for i, (before, after) in enumerate(zip(case.args, args_after, strict=True)):
        if not _same(before, after):
            return _say(case, f"the argument {names[i]} was modified", "input_modified")
    for name, before in case.kwargs.items():
        if not _same(before, kwargs_after.get(name)):
            return _say(case, f"the argument {name} was modified", "input_modified")
    return None


# ---------------------------------------------------------------------------------------------
# running a hidden test in the student's kernel
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Warnings and anything written to stderr are swallowed (nbgrader zeroes stderr)."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        yield


def _call_with_time_limit(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    message = (
        f"did not finish within {limit:g} s: look for a loop that never ends (a while loop "
        "whose condition never changes) or for far more work than the inputs need"
    )
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def on_alarm(signum: int, frame: object) -> None:
            raise TimeLimitExceeded(message)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    # not on the main thread: run in a helper thread and stop waiting after the limit
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as error:  # handed over to the caller below
            result["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise TimeLimitExceeded(message)
    if "error" in result:
        raise result["error"]
    return result["value"]


def call_student(
    case: Case, fn: Callable[..., Any], time_limit: float = 10.0
) -> tuple[object, tuple, dict, list[str]]:
    """Call ``fn`` on copies of the case's arguments, guarded and time-limited.

    Returns ``(output or Raised, args after, kwargs after, forbidden calls attempted)``.
    """
    from .guard import forbid_ready_made, forbid_running_modules

    args, kwargs = copy.deepcopy((case.args, case.kwargs))
    with contextlib.ExitStack() as stack:
        guard = stack.enter_context(forbid_ready_made())
        attempts = [guard.attempts]
        if case.function == "layer_output_shapes":
            attempts.append(stack.enter_context(forbid_running_modules()).attempts)
        try:
            output: object = _call_with_time_limit(fn, args, kwargs, time_limit)
        except TimeLimitExceeded as error:
            output = Raised("TimeLimitExceeded", str(error))
        except Exception as error:
            output = Raised(type(error).__name__, str(error))
    return output, args, kwargs, [name for found in attempts for name in found]


def run_test(
    test_id: str, fn: Callable[..., Any], *, seed: int | None = None, time_limit: float = 10.0
) -> None:
    """Run the hidden test ``test_id`` on the student's function ``fn``.

    Fresh random cases (``seed=None``: new inputs at every grading run); each call gets copies of
    the inputs, runs with ready-made operators switched off and a time limit. Raises
    ``AssertionError`` with the diagnosis on the first failing case; writes nothing to stderr.
    """
    failure = None
    with _quiet():
        cases = make_cases(test_id, np.random.default_rng(seed))
        for case in cases:
            output, args, kwargs, forbidden = call_student(case, fn, time_limit)
            if forbidden:
                failure = _say(case, forbidden_message(forbidden[0]), "forbidden_call")
            else:
                failure = judge_inputs_unmodified(case, args, kwargs) or judge(case, output)
            if failure:
                break
    if failure:
        raise AssertionError(failure)
