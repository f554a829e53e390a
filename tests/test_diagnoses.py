"""Each known misconception, written as buggy code, is named by the judge; right code passes.

Every buggy function below has exactly one typical mistake. It is run on the cases of a hidden
test, and the first failing case's message must name the misconception.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib.grading import checks
from course_lib.grading.checks import ASSIGNMENTS, judge, judge_inputs_unmodified, make_cases
from course_lib.grading.diagnoses import DIAGNOSES

ROOT = Path(__file__).resolve().parents[1]


def solution_functions() -> dict:
    """The functions of the answer cells of all three solution notebooks."""
    namespace: dict = {}
    exec("import numpy as np", namespace)
    for assignment in ASSIGNMENTS:
        path = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                exec(cell.source, namespace)
    return namespace


SOLUTIONS = solution_functions()


def pair(value):
    return (value, value) if np.ndim(value) == 0 else tuple(value)


def first_failure(test_id: str, fn, seed: int = 0) -> str | None:
    """Run fn on copies of the cases of test_id; the first failure message, else None.

    Modified inputs are reported first (as run_test does): they can also spoil the output.
    """
    for case in make_cases(test_id, np.random.default_rng(seed)):
        args, kwargs = copy.deepcopy((case.args, case.kwargs))
        try:
            output = fn(*args, **kwargs)
        except Exception as error:
            output = checks.Raised(type(error).__name__, str(error))
        message = judge_inputs_unmodified(case, args, kwargs) or judge(case, output)
        if message:
            return message
    return None


# --------------------------------------------------------------------------------------------
# buggy versions, one mistake each
# --------------------------------------------------------------------------------------------


def corr2d_flipped(x, k):
    return SOLUTIONS["corr2d"](x, k[::-1, ::-1])


def corr2d_one_short(x, k):
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh, x.shape[1] - kw))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)
    return out


def corr2d_flat(x, k):
    return SOLUTIONS["corr2d"](x, k).ravel()


def pad2d_all_axes(x, padding):
    return np.pad(x, max(pair(padding)))


def pad2d_one_side(x, padding):
    ph, pw = pair(padding)
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(2 * ph, 0), (2 * pw, 0)])


def pad2d_float32(x, padding):
    return SOLUTIONS["pad2d"](x, padding).astype(np.float32)


def conv_without_bias(x, w, b, stride=1, padding=0):
    return SOLUTIONS["conv2d_forward"](x, w, None, stride, padding)


def conv_bias_per_channel(x, w, b, stride=1, padding=0):
    out = SOLUTIONS["conv2d_forward"](x, w, None, stride, padding)
    if b is not None:
        for _ in range(x.shape[1]):  # added once per input channel
            out += b[None, :, None, None]
    return out


def conv_stride_ignored(x, w, b, stride=1, padding=0):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    full = SOLUTIONS["conv2d_forward"](x, w, b, 1, padding)
    out_h = (x.shape[2] + 2 * ph - w.shape[2]) // sh + 1
    out_w = (x.shape[3] + 2 * pw - w.shape[3]) // sw + 1
    return full[:, :, :out_h, :out_w].copy()  # windows at i, j instead of i*s, j*s


def conv_pairs_swapped(x, w, b, stride=1, padding=0):
    return SOLUTIONS["conv2d_forward"](x, w, b, pair(stride)[::-1], pair(padding)[::-1])


def conv_padding_ignored(x, w, b, stride=1, padding=0):
    return SOLUTIONS["conv2d_forward"](x, w, b, stride, 0)


def conv_padding_one_side(x, w, b, stride=1, padding=0):
    ph, pw = pair(padding)
    padded = np.pad(x, ((0, 0), (0, 0), (2 * ph, 0), (2 * pw, 0)))
    return SOLUTIONS["conv2d_forward"](padded, w, b, stride, 0)


def max_pool_ceil(x, kernel_size, stride=None):
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    out_h = -(-(x.shape[2] - kh) // sh) + 1
    out_w = -(-(x.shape[3] - kw) // sw) + 1
    out = np.zeros((*x.shape[:2], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].max(axis=(2, 3))
    return out


def avg_pool_sum(x, kernel_size, stride=None):
    kh, kw = pair(kernel_size)
    return SOLUTIONS["avg_pool2d_forward"](x, kernel_size, stride) * (kh * kw)


def relu_at_zero(dout, x):
    return np.where(x >= 0, dout, 0.0)


def relu_mask_from_dout(dout, x):
    return np.where(dout > 0, dout, 0.0)


def relu_in_place(dout, x):
    dout[x <= 0] = 0.0
    return dout


def max_pool_back(tie: str, accumulate: bool = True):
    def backward(dout, x, kernel_size, stride=None):
        kh, kw = pair(kernel_size)
        sh, sw = pair(kernel_size if stride is None else stride)
        dx = np.zeros(x.shape)
        for n, c, i, j in np.ndindex(dout.shape):
            window = x[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
            hits = np.argwhere(window == window.max())
            if tie != "all":
                hits = hits[:1] if tie == "first" else hits[-1:]
            for a, b in hits:
                if accumulate:
                    dx[n, c, i * sh + a, j * sw + b] += dout[n, c, i, j]
                else:
                    dx[n, c, i * sh + a, j * sw + b] = dout[n, c, i, j]
        return dx

    return backward


def avg_pool_back_not_divided(dout, x, kernel_size, stride=None):
    kh, kw = pair(kernel_size)
    return SOLUTIONS["avg_pool2d_backward"](dout, x, kernel_size, stride) * (kh * kw)


def avg_pool_back_overwritten(dout, x, kernel_size, stride=None):
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    dx = np.zeros(x.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            share = dout[:, :, i, j] / (kh * kw)
            dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] = share[:, :, None, None]
    return dx


def conv_back_dw_last_sample(dout, x, w, b, stride=1, padding=0):
    dx, _, db = SOLUTIONS["conv2d_backward"](dout, x, w, b, stride, padding)
    _, dw_last, _ = SOLUTIONS["conv2d_backward"](dout[-1:], x[-1:], w, b, stride, padding)
    return dx, dw_last, db


def conv_back_db_axes(dout, x, w, b, stride=1, padding=0):
    dx, dw, _ = SOLUTIONS["conv2d_backward"](dout, x, w, b, stride, padding)
    return dx, dw, None if b is None else dout.sum(axis=(1, 2, 3))


def conv_back_padded_dx(dout, x, w, b, stride=1, padding=0):
    ph, pw = pair(padding)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    _, dw, db = SOLUTIONS["conv2d_backward"](dout, x, w, b, stride, padding)
    dx_padded, _, _ = SOLUTIONS["conv2d_backward"](dout, padded, w, b, stride, 0)
    return dx_padded, dw, db


def conv_back_dx_overwritten(dout, x, w, b, stride=1, padding=0):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    _, dw, db = SOLUTIONS["conv2d_backward"](dout, x, w, b, stride, padding)
    kh, kw = w.shape[2:]
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            contribution = np.einsum("nf,fckl->nckl", dout[:, :, i, j], w)
            dxp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] = contribution
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


def numgrad(kind: str, fixed_h: float | None = None):
    def numerical_gradient(f, x, h=1e-5):
        h = fixed_h or h
        point = x.copy()
        grad = np.zeros(x.shape)
        base = f(point)
        for index in np.ndindex(x.shape):
            old = point[index]
            point[index] = old + h
            plus = f(point)
            point[index] = old - h
            minus = f(point)
            point[index] = old
            if kind == "forward":
                grad[index] = (plus - base) / h
            elif kind == "over_h":
                grad[index] = (plus - minus) / h
            else:
                grad[index] = (plus - minus) / (2 * h)
        return grad

    return numerical_gradient


def numgrad_not_restored(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = f(x)
        x[index] = old - h
        minus = f(x)
        grad[index] = (plus - minus) / (2 * h)
    return grad


def size_without_dilation(n, kernel_size, stride=1, padding=0, dilation=1):
    return SOLUTIONS["conv_output_size"](n, kernel_size, stride, padding, 1)


def size_padding_once(n, kernel_size, stride=1, padding=0, dilation=1):
    return (n + padding - dilation * (kernel_size - 1) - 1) // stride + 1


def size_unchecked(n, kernel_size, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def size_true_division(n, kernel_size, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1


def pool_size_stride_one(n, kernel_size, stride=None, padding=0):
    return SOLUTIONS["pool_output_size"](n, kernel_size, stride or 1, padding)


def output_shape_keeps_channels(input_shape, out_channels, kernel_size, stride=1, padding=0):
    _, h, w = SOLUTIONS["conv2d_output_shape"](
        input_shape, out_channels, kernel_size, stride, padding
    )
    return (input_shape[0], h, w)


def num_params_no_bias(in_channels, out_channels, kernel_size, bias=True):
    return SOLUTIONS["conv2d_num_params"](in_channels, out_channels, kernel_size, False)


def num_params_square_kernel(in_channels, out_channels, kernel_size, bias=True):
    kh, _ = pair(kernel_size)
    return out_channels * in_channels * kh * kh + (out_channels if bias else 0)


def shapes_with_batch(layers, input_shape):
    return [(1, *s) for s in SOLUTIONS["layer_output_shapes"](layers, input_shape)]


def shapes_same_as_valid(layers, input_shape):
    shape, shapes = tuple(input_shape), []
    for layer in layers:
        if type(layer).__name__ == "Conv2d":
            padding = (0, 0) if isinstance(layer.padding, str) else layer.padding
            size = [
                (n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(
                    shape[1:], layer.kernel_size, layer.stride, padding, layer.dilation, strict=True
                )
            ]
            shape = (layer.out_channels, *size)
            shapes.append(shape)
        else:
            shape = SOLUTIONS["layer_output_shapes"]([layer], shape)[0]
            shapes.append(shape)
    return shapes


def shapes_without_dilation(layers, input_shape):
    shape, shapes = tuple(input_shape), []
    for layer in layers:
        if type(layer).__name__ == "Conv2d" and not isinstance(layer.padding, str):
            size = [
                (n + 2 * p - k) // s + 1
                for n, k, s, p in zip(
                    shape[1:], layer.kernel_size, layer.stride, layer.padding, strict=True
                )
            ]
            shape = (layer.out_channels, *size)
        else:
            shape = SOLUTIONS["layer_output_shapes"]([layer], shape)[0]
        shapes.append(shape)
    return shapes


BUGS = [
    ("kernel_flipped", "test_corr2d", corr2d_flipped),
    ("size_off_by_one", "test_corr2d", corr2d_one_short),
    ("wrong_shape", "test_corr2d", corr2d_flat),
    ("padding_wrong_axes", "test_pad2d", pad2d_all_axes),
    ("padding_one_side", "test_pad2d_pair", pad2d_one_side),
    ("wrong_dtype", "test_pad2d", pad2d_float32),
    ("bias_missing", "test_conv2d_forward", conv_without_bias),
    ("bias_repeated", "test_conv2d_forward", conv_bias_per_channel),
    ("stride_ignored", "test_conv2d_forward_stride", conv_stride_ignored),
    ("pair_swapped", "test_conv2d_forward_stride", conv_pairs_swapped),
    ("padding_ignored", "test_conv2d_forward_padding", conv_padding_ignored),
    ("padding_one_side", "test_conv2d_forward_padding", conv_padding_one_side),
    ("ceil_not_floor", "test_max_pool2d_forward", max_pool_ceil),
    ("avg_wrong_divisor", "test_avg_pool2d_forward", avg_pool_sum),
    ("relu_at_zero", "test_relu_backward", relu_at_zero),
    ("relu_wrong_mask", "test_relu_backward", relu_mask_from_dout),
    ("input_modified", "test_relu_backward", relu_in_place),
    ("tie_all_maxima", "test_max_pool2d_backward_ties", max_pool_back("all")),
    ("tie_last_maximum", "test_max_pool2d_backward_ties", max_pool_back("last")),
    ("overlap_overwritten", "test_max_pool2d_backward_ties", max_pool_back("first", False)),
    ("overlap_overwritten", "test_avg_pool2d_backward", avg_pool_back_overwritten),
    ("avg_grad_not_divided", "test_avg_pool2d_backward", avg_pool_back_not_divided),
    ("dw_not_summed_over_batch", "test_conv2d_backward", conv_back_dw_last_sample),
    ("db_wrong_axes", "test_conv2d_backward", conv_back_db_axes),
    ("padding_not_removed", "test_conv2d_backward_stride", conv_back_padded_dx),
    ("overlap_overwritten", "test_conv2d_backward", conv_back_dx_overwritten),
    ("forward_difference", "test_numerical_gradient_step", numgrad("forward")),
    ("forward_difference", "test_numerical_gradient", numgrad("forward")),
    ("centred_over_h", "test_numerical_gradient", numgrad("over_h")),
    ("h_ignored", "test_numerical_gradient_step", numgrad("centred", fixed_h=1e-5)),
    ("input_modified", "test_numerical_gradient", numgrad_not_restored),
    ("dilation_ignored", "test_conv_output_size", size_without_dilation),
    ("padding_counted_once", "test_conv_output_size", size_padding_once),
    ("true_division", "test_conv_output_size", size_true_division),
    ("no_value_error", "test_conv_output_size_errors", size_unchecked),
    ("pool_stride_default", "test_pool_output_size", pool_size_stride_one),
    ("channels_wrong", "test_conv2d_output_shape", output_shape_keeps_channels),
    ("num_params_bias", "test_conv2d_num_params", num_params_no_bias),
    ("num_params_kernel", "test_conv2d_num_params", num_params_square_kernel),
    ("batch_axis_included", "test_layer_output_shapes", shapes_with_batch),
    ("same_padding_ignored", "test_layer_output_shapes_padding", shapes_same_as_valid),
    ("dilation_ignored", "test_layer_output_shapes_padding", shapes_without_dilation),
]


@pytest.mark.parametrize(("key", "test_id", "buggy"), BUGS, ids=[f"{k}-{t}" for k, t, _ in BUGS])
def test_each_misconception_is_named(key: str, test_id: str, buggy) -> None:
    for seed in (0, 1):
        message = first_failure(test_id, buggy, seed)
        assert message is not None, f"{buggy.__name__} passed {test_id}"
        assert DIAGNOSES[key].misconception in message, message
        assert DIAGNOSES[key].look_at in message


def test_every_diagnosis_but_the_guard_has_a_buggy_example() -> None:
    covered = {key for key, _, _ in BUGS}
    assert set(DIAGNOSES) - covered == {"forbidden_call"}  # covered in test_checks


@pytest.mark.parametrize("test_id", checks.test_ids())
def test_the_solutions_pass_every_case_for_many_seeds(test_id: str) -> None:
    fn = SOLUTIONS[checks._FUNCTION_OF[test_id]]
    for seed in range(8):
        assert first_failure(test_id, fn, seed) is None
