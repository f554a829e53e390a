"""Every public function that takes a kernel size, stride, padding, dilation (or an input or
output size) as an int or a pair checks it the same way: ``TypeError`` naming the argument for a
value of the wrong type, ``ValueError`` naming it for a wrong value. And the one output-size
formula they share agrees with PyTorch."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import course_lib as cl
from course_lib import animation, detection, plots, widgets
from course_lib._validate import (
    check_int,
    int_or_pair,
    transposed_output_size,
    window_output_size,
)

X4 = torch.zeros(2, 4, 9, 8, dtype=torch.float64)
W4 = torch.zeros(6, 4, 3, 3, dtype=torch.float64)
W_T = torch.zeros(4, 3, 3, 3, dtype=torch.float64)  # conv_transpose2d: (C_in, C_out, kh, kw)
DOUT = torch.zeros(2, 6, 7, 6, dtype=torch.float64)  # conv2d(X4, W4) output
POOL_DOUT = torch.zeros(2, 4, 4, 4, dtype=torch.float64)  # 2x2 pooling of X4
IMAGE = np.arange(30.0).reshape(5, 6)


def _pooling(fn: Callable) -> Callable:
    return lambda **kw: fn(X4, **{"kernel_size": 2, **kw})


def _pooling_backward(fn: Callable) -> Callable:
    return lambda **kw: fn(POOL_DOUT, X4, **{"kernel_size": 2, **kw})


def _input_grad(fn: Callable) -> Callable:
    return lambda **kw: fn(DOUT, W4, **{"input_size": (9, 8), **kw})


# (function name, call taking keyword arguments, {argument: smallest allowed value})
CASES = [
    *[
        (fn.__name__, lambda fn=fn, **kw: fn(X4, W4, **kw), dict(stride=1, padding=0, dilation=1))
        for fn in (cl.conv2d, cl.conv2d_naive)
    ],
    *[
        (
            fn.__name__,
            lambda fn=fn, **kw: fn(X4, W_T, **kw),
            dict(stride=1, padding=0, output_padding=0, dilation=1),
        )
        for fn in (cl.conv_transpose2d, cl.conv_transpose2d_naive)
    ],
    *[
        (
            fn.__name__,
            lambda fn=fn, **kw: fn(DOUT, X4, W4, **kw),
            dict(stride=1, padding=0, dilation=1),
        )
        for fn in (cl.conv2d_backward, cl.conv2d_backward_naive)
    ],
    *[
        (fn.__name__, _input_grad(fn), dict(input_size=1, stride=1, padding=0, dilation=1))
        for fn in (cl.conv2d_input_grad_via_transpose, cl.conv2d_input_grad_via_flipped_kernel)
    ],
    *[
        (
            fn.__name__,
            lambda fn=fn, **kw: fn(**{"kernel_size": 3, **kw}),
            dict(kernel_size=1, dilation=1),
        )
        for fn in (cl.same_padding, cl.full_padding)
    ],
    (
        "resolve_padding",
        lambda **kw: cl.resolve_padding(**{"padding": 1, "kernel_size": 3, **kw}),
        dict(padding=0, kernel_size=1, dilation=1),
    ),
    ("pad2d", lambda **kw: cl.pad2d(X4, **kw), dict(padding=0)),
    *[
        (fn.__name__, _pooling(fn), dict(kernel_size=1, stride=1, padding=0))
        for fn in (
            cl.max_pool2d,
            cl.max_pool2d_naive,
            cl.avg_pool2d,
            cl.avg_pool2d_naive,
            cl.min_pool2d,
        )
    ],
    *[
        (fn.__name__, _pooling_backward(fn), dict(kernel_size=1, stride=1, padding=0))
        for fn in (
            cl.max_pool2d_backward,
            cl.max_pool2d_backward_naive,
            cl.avg_pool2d_backward,
            cl.avg_pool2d_backward_naive,
        )
    ],
    *[
        (fn.__name__, lambda fn=fn, **kw: fn(X4, **kw), dict(output_size=1))
        for fn in (cl.adaptive_avg_pool2d, cl.adaptive_max_pool2d)
    ],
    (
        "receptive_field",
        lambda **kw: cl.receptive_field([torch.nn.Conv2d(1, 1, 3)], **kw),
        dict(input_size=1),
    ),
    (
        "sliding_window_output",
        lambda **kw: plots.sliding_window_output(IMAGE, **{"mode": "max", "kernel_size": 2, **kw}),
        dict(kernel_size=1, stride=1, padding=0),
    ),
    (
        "sliding_window_animation",
        lambda **kw: plots.sliding_window_animation(
            IMAGE, **{"mode": "avg", "kernel_size": 2, **kw}
        ),
        dict(kernel_size=1, stride=1, padding=0),
    ),
    (
        "max_pool_backward_animation",
        lambda **kw: animation.max_pool_backward_animation(
            IMAGE, np.zeros((2, 3)), **{"kernel_size": 2, **kw}
        ),
        dict(kernel_size=1, stride=1),
    ),
    (
        "generate_anchors",
        lambda **kw: detection.generate_anchors(
            **{"feature_size": 4, "stride": 8, **kw}, sizes=[8]
        ),
        dict(feature_size=1, stride=1),
    ),
]
# These take the padding modes "valid", "same", "full" too: an unknown string is a wrong value.
TAKES_PADDING_MODES = {
    "conv2d",
    "conv2d_naive",
    "conv2d_backward",
    "conv2d_backward_naive",
    "conv2d_input_grad_via_transpose",
    "conv2d_input_grad_via_flipped_kernel",
    "resolve_padding",
}

# Functions that take one int per argument: a pair is a wrong type there.
INT_CASES = [
    (
        "conv_output_size",
        lambda **kw: cl.conv_output_size(**{"n": 9, "kernel_size": 3, **kw}),
        dict(n=1, kernel_size=1, stride=1, padding=0, dilation=1),
    ),
    (
        "pool_output_size",
        lambda **kw: cl.pool_output_size(**{"n": 9, "kernel_size": 3, **kw}),
        dict(n=1, kernel_size=1, stride=1, padding=0, dilation=1),
    ),
    (
        "output_grid_figure",
        lambda **kw: plots.output_grid_figure(**{"input_size": 7, "kernel_size": 3, **kw}),
        dict(input_size=1, kernel_size=1, stride=1, padding=0, dilation=1),
    ),
    (
        "output_size_explorer",
        lambda **kw: widgets.output_size_explorer(**kw),
        dict(input_size=1, kernel_size=1, stride=1, padding=0, dilation=1),
    ),
    (
        "conv_explorer",
        lambda **kw: widgets.conv_explorer(IMAGE, np.ones((2, 2)), **kw),
        dict(stride=1, padding=0),
    ),
]


def _names(argument: str) -> str:
    """A regex for the argument's name as a word of the message (not "output_padding" for
    "padding"); ``n`` is written "n (input size)"."""
    word = "n (input size)" if argument == "n" else argument
    return rf"(?<![\w]){re.escape(word)}(?![\w])"


def _rows(cases, wrong_types):
    for name, call, arguments in cases:
        for argument, minimum in arguments.items():
            for value in wrong_types:
                error = TypeError
                if isinstance(value, str) and argument == "padding" and name in TAKES_PADDING_MODES:
                    error = ValueError
                yield pytest.param(call, argument, value, error, id=f"{name}-{argument}-{value!r}")
            for value in (minimum - 1, -3):
                yield pytest.param(
                    call, argument, value, ValueError, id=f"{name}-{argument}-{value!r}"
                )


@pytest.mark.parametrize(
    ("call", "argument", "value", "error"),
    [
        *_rows(CASES, (2.5, True, "2", (1, 2, 3), (2, 1.5))),
        *_rows(INT_CASES, (2.5, True, "2", (2, 2))),
    ],
)
def test_a_bad_window_argument_is_named_with_the_right_exception(
    call, argument, value, error
) -> None:
    with pytest.raises(error) as info:
        call(**{argument: value})
    assert type(info.value) is error
    assert re.search(_names(argument), str(info.value)), str(info.value)


@pytest.mark.parametrize(
    ("call", "arguments"), [pytest.param(call, args, id=name) for name, call, args in CASES]
)
def test_one_bad_entry_of_a_pair_is_enough(call, arguments) -> None:
    for argument, minimum in arguments.items():
        for pair in ((minimum, minimum - 1), (minimum - 1, minimum)):
            with pytest.raises(ValueError) as info:
                call(**{argument: pair})
            assert type(info.value) is ValueError
            assert re.search(_names(argument) + " must be", str(info.value)), str(info.value)


def test_int_or_pair() -> None:
    assert int_or_pair(3, "kernel_size", minimum=1) == (3, 3)
    assert int_or_pair([2, 1], "stride", minimum=1) == (2, 1)
    assert int_or_pair((np.int64(4), 0), "padding", minimum=0) == (4, 0)
    assert all(type(v) is int for v in int_or_pair(np.int32(2), "stride", minimum=1))
    assert int_or_pair(torch.Size([5, 6]), "input_size", minimum=1) == (5, 6)
    for bad in (2.0, False, None, "ab", (1,), (1, 2, 3), np.array([1, 2]), (1, None)):
        with pytest.raises(TypeError, match=r"^stride must be an int or a pair of ints"):
            int_or_pair(bad, "stride", minimum=1)
    with pytest.raises(ValueError, match=r"^stride must be positive \(>= 1\), got \(2, 0\)"):
        int_or_pair((2, 0), "stride", minimum=1)
    with pytest.raises(ValueError, match=r"^padding must be non-negative \(>= 0\), got -1"):
        int_or_pair(-1, "padding", minimum=0)


def test_check_int() -> None:
    assert check_int(np.int64(3), "kernel_size", minimum=1) == 3
    assert check_int(-2, "offset") == -2
    with pytest.raises(TypeError, match=r"^kernel_size must be an int, got 3\.0"):
        check_int(3.0, "kernel_size", minimum=1)
    with pytest.raises(TypeError, match="kernel_size must be an int, got True"):
        check_int(True, "kernel_size", minimum=1)
    with pytest.raises(ValueError, match=r"^depth must be >= 2, got 1"):
        check_int(1, "depth", minimum=2)


def test_window_output_size_is_pytorchs() -> None:
    """Convolutions (asymmetric padding as a pair) and pooling in floor and ceil mode, on random
    sizes, against the sizes PyTorch's operators produce."""
    rnd = random.Random(0)
    for _ in range(300):
        kernel, stride, dilation = rnd.randint(1, 5), rnd.randint(1, 4), rnd.randint(1, 3)
        before, after = rnd.randint(0, 3), rnd.randint(0, 3)
        size = rnd.randint(max(1, dilation * (kernel - 1) + 1 - before - after), 20)
        x = torch.zeros(1, 1, size + before + after, 1)
        w = torch.zeros(1, 1, kernel, 1)
        expected = F.conv2d(x, w, stride=(stride, 1), dilation=(dilation, 1)).shape[2]
        assert window_output_size(size, kernel, stride, (before, after), dilation) == expected
        assert window_output_size(size, kernel, stride, 0, dilation) == (
            F.conv2d(
                torch.zeros(1, 1, size, 1), w, stride=(stride, 1), dilation=(dilation, 1)
            ).shape[2]
            if size >= dilation * (kernel - 1) + 1
            else window_output_size(size, kernel, stride, 0, dilation)
        )
        padding = rnd.randint(0, kernel // 2)
        size = rnd.randint(max(1, dilation * (kernel - 1) + 1 - 2 * padding), 20)
        for ceil_mode in (False, True):
            pooled = F.max_pool2d(
                torch.zeros(1, 1, size, 1),
                (kernel, 1),
                (stride, 1),
                (padding, 0),
                (dilation, 1),
                ceil_mode=ceil_mode,
            )
            got = window_output_size(size, kernel, stride, padding, dilation, ceil_mode)
            assert got == pooled.shape[2], (size, kernel, stride, padding, dilation, ceil_mode)


def test_window_output_size_below_one_when_the_window_does_not_fit() -> None:
    assert window_output_size(3, kernel_size=4) < 1
    assert window_output_size(3, kernel_size=3, dilation=2, stride=3) < 1
    assert window_output_size(3, kernel_size=3, padding=(0, 0)) == 1


def test_transposed_output_size_is_pytorchs() -> None:
    rnd = random.Random(1)
    for _ in range(200):
        size, kernel = rnd.randint(1, 8), rnd.randint(1, 4)
        stride, dilation = rnd.randint(1, 3), rnd.randint(1, 3)
        output_padding = rnd.randint(0, max(stride, dilation) - 1)
        padding = rnd.randint(0, 2)
        expected = transposed_output_size(size, kernel, stride, padding, dilation, output_padding)
        if expected < 1:
            continue
        out = F.conv_transpose2d(
            torch.zeros(1, 1, size, 1),
            torch.zeros(1, 1, kernel, 1),
            stride=(stride, 1),
            padding=(padding, 0),
            output_padding=(output_padding, 0),
            dilation=(dilation, 1),
        )
        assert out.shape[2] == expected
