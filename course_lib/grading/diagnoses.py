"""Known misconceptions, and the outputs of buggy variants that reveal them.

When a student's output is wrong, the checker computes what some typical buggy versions of the
function would return on the same inputs; if the student's output matches one of them, the
feedback names the misconception and says where to look. Each variant here is written from the
reference (transformed inputs or outputs) or as a short NumPy loop with the bug in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DIAGNOSES", "Diagnosis", "Variant", "explain"]


@dataclass(frozen=True)
class Diagnosis:
    """A misconception: what it is, and what to look at to fix it."""

    key: str
    misconception: str
    look_at: str


DIAGNOSES: dict[str, Diagnosis] = {
    d.key: d
    for d in [
        Diagnosis(
            "kernel_flipped",
            "the kernel is flipped (true convolution instead of cross-correlation)",
            "CNN layers compute cross-correlation: multiply x[i + a, j + b] by k[a, b] "
            "without reversing the kernel",
        ),
        Diagnosis(
            "size_off_by_one",
            "the output size is off by one",
            "the output size is (H + 2p - k) // s + 1: check the '+ 1' and the loop bounds",
        ),
        Diagnosis(
            "ceil_not_floor",
            "the output size is rounded up (ceil) instead of down (floor)",
            "a window that would stick out past the (padded) input is dropped: use // (floor)",
        ),
        Diagnosis(
            "padding_wrong_axes",
            "padding is applied to the wrong axes",
            "pad only the last two axes (H and W), never the batch or channel axes, and both "
            "of them",
        ),
        Diagnosis(
            "padding_one_side",
            "padding is added on one side only",
            "zero padding p adds p rows on top AND bottom and p columns on the left AND right",
        ),
        Diagnosis(
            "padding_ignored",
            "the padding is ignored",
            "pad x first (pad2d), then slide the kernel over the padded input",
        ),
        Diagnosis(
            "bias_missing",
            "the bias is missing",
            "add b[f] once to every output value of filter f",
        ),
        Diagnosis(
            "bias_repeated",
            "the bias is added more than once per output value (inside a loop over channels or "
            "kernel positions)",
            "add b[f] once per output value, after summing over channels and the window",
        ),
        Diagnosis(
            "stride_ignored",
            "the stride is ignored (windows move one step at a time)",
            "output position i starts its window at input row i * stride (same for columns)",
        ),
        Diagnosis(
            "pair_swapped",
            "height and width are swapped (pair order of kernel_size / stride / padding)",
            "a pair is (height, width): the first entry goes with H (axis -2), the second with W",
        ),
        Diagnosis(
            "overlap_overwritten",
            "where windows overlap, gradients are overwritten instead of added",
            "accumulate with += into dx: an input value in several windows gets the sum of "
            "their gradients",
        ),
        Diagnosis(
            "dw_not_summed_over_batch",
            "dw is not summed over the batch",
            "the weights are shared by all samples: dw adds the contributions of every sample n",
        ),
        Diagnosis(
            "db_wrong_axes",
            "db is summed over the wrong axes",
            "db[f] is the sum of dout[:, f, :, :], over the batch and both spatial axes",
        ),
        Diagnosis(
            "tie_all_maxima",
            "with tied maxima, the gradient is sent to every maximum",
            "only one position per window receives the gradient: the first maximum in "
            "row-major order (np.argmax of the flattened window)",
        ),
        Diagnosis(
            "tie_last_maximum",
            "with tied maxima, the gradient goes to the last maximum",
            "use the first maximum in row-major order (np.argmax does this; a '>=' "
            "comparison in a loop picks the last one)",
        ),
        Diagnosis(
            "avg_grad_not_divided",
            "the average-pool gradient is not divided by the window area",
            "each of the kh * kw inputs of a window gets dout / (kh * kw)",
        ),
        Diagnosis(
            "avg_wrong_divisor",
            "the window is not divided by its area kh * kw (sum, or a wrong divisor)",
            "the mean of a kh x kw window is its sum divided by kh * kw",
        ),
        Diagnosis(
            "input_modified",
            "the input is modified in place",
            "work on a copy (x.copy(), np.pad, np.zeros) and never assign into an argument",
        ),
        Diagnosis(
            "forward_difference",
            "a one-sided difference is used instead of the centred difference",
            "use (f(x + h e_i) - f(x - h e_i)) / (2 h)",
        ),
        Diagnosis(
            "centred_over_h",
            "the centred difference is divided by h instead of 2 h",
            "the two evaluations are 2 h apart: divide by 2 * h",
        ),
        Diagnosis(
            "h_ignored",
            "the step h passed in is ignored",
            "use the argument h, not a constant",
        ),
        Diagnosis(
            "wrong_dtype",
            "the output has the wrong dtype (integer or float32)",
            "create the output with np.zeros(shape) (float64) or dtype=x.dtype, not from "
            "integer arrays or float32",
        ),
        Diagnosis(
            "wrong_shape",
            "the output has the wrong shape",
            "work out the expected shape from the contract before writing the loops",
        ),
        Diagnosis(
            "relu_at_zero",
            "the ReLU gradient at x == 0 is taken as 1",
            "the gradient passes only where x > 0 (strictly); at x == 0 it is 0",
        ),
        Diagnosis(
            "relu_wrong_mask",
            "the ReLU mask is taken from the wrong array or dout is not multiplied",
            "dx = dout where x > 0, else 0: the mask comes from x, the values from dout",
        ),
        Diagnosis(
            "padding_not_removed",
            "dx still includes the padding",
            "compute the gradient of the padded input, then cut the padding away: "
            "dx_padded[:, :, ph:ph + H, pw:pw + W]",
        ),
        Diagnosis(
            "dilation_ignored",
            "the dilation is ignored",
            "a dilated kernel spans d * (k - 1) + 1 inputs",
        ),
        Diagnosis(
            "padding_counted_once",
            "the padding is counted once instead of on both sides",
            "padding adds p on each side: n + 2 * p",
        ),
        Diagnosis(
            "no_value_error",
            "invalid settings are not rejected with ValueError",
            "check the arguments first (k >= 1, s >= 1, p >= 0, d >= 1, output size >= 1) "
            "and raise ValueError",
        ),
        Diagnosis(
            "pool_stride_default",
            "stride=None is not turned into the kernel size",
            "for pooling, stride defaults to kernel_size: if stride is None: stride = kernel_size",
        ),
        Diagnosis(
            "true_division",
            "the size is computed with / (a float) instead of // (an int)",
            "use integer division // and return an int",
        ),
        Diagnosis(
            "num_params_bias",
            "the biases are counted wrongly",
            "a convolution has one bias per output channel (none when bias=False)",
        ),
        Diagnosis(
            "num_params_kernel",
            "the kernel's weights are counted wrongly",
            "weights: out_channels * in_channels * kh * kw, with (kh, kw) = kernel_size",
        ),
        Diagnosis(
            "batch_axis_included",
            "the batch axis is included in the shapes",
            "input_shape is (C, H, W) without a batch axis; the shapes returned have none",
        ),
        Diagnosis(
            "same_padding_ignored",
            "padding='same' / 'valid' is not handled",
            "'same' keeps H and W (stride 1), 'valid' means padding 0",
        ),
        Diagnosis(
            "channels_wrong",
            "the number of channels is wrong",
            "a convolution outputs out_channels channels; pooling keeps the channels",
        ),
        Diagnosis(
            "forbidden_call",
            "a ready-made operator is used",
            "write the loops with NumPy: scipy, torch and course_lib are not allowed here",
        ),
    ]
}


def explain(key: str) -> str:
    """'Likely misconception: ... Look at: ...' for a diagnosis key."""
    d = DIAGNOSES[key]
    return f"Likely misconception: {d.misconception}. Look at: {d.look_at}."


@dataclass(frozen=True)
class Variant:
    """What a buggy version returns: compared by shape only, or by shape and values."""

    key: str
    output: object
    shape_only: bool = False


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        return (int(value), int(value))
    return (int(value[0]), int(value[1]))


def out_size(n: int, k: int, s: int, p: int = 0, d: int = 1, ceil: bool = False) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


# ---------------------------------------------------------------------------------------------
# shape-level variants shared by the window operators
# ---------------------------------------------------------------------------------------------


def window_shape_variants(
    lead: tuple[int, ...],
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> list[Variant]:
    """Shapes that buggy size rules give for an output ``(*lead, H', W')``."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
    good = (out_size(h, kh, sh, ph), out_size(w, kw, sw, pw))
    variants = [
        Variant(
            "ceil_not_floor",
            (*lead, out_size(h, kh, sh, ph, ceil=True), out_size(w, kw, sw, pw, ceil=True)),
            True,
        ),
        Variant("stride_ignored", (*lead, out_size(h, kh, 1, ph), out_size(w, kw, 1, pw)), True),
        Variant(
            "padding_counted_once",
            (*lead, out_size(h + ph, kh, sh), out_size(w + pw, kw, sw)),
            True,
        ),
        Variant("padding_ignored", (*lead, out_size(h, kh, sh), out_size(w, kw, sw)), True),
        Variant("pair_swapped", (*lead, good[1], good[0]), True),
        Variant("pair_swapped", (*lead, out_size(h, kw, sw, pw), out_size(w, kh, sh, ph)), True),
        Variant("pair_swapped", (*lead, out_size(h, kh, sw, ph), out_size(w, kw, sh, pw)), True),
        Variant("pair_swapped", (*lead, out_size(h, kw, sh, ph), out_size(w, kh, sw, pw)), True),
    ]
    for dh in (-1, 0, 1):
        for dw in (-1, 0, 1):
            if (dh, dw) != (0, 0):
                variants.append(
                    Variant("size_off_by_one", (*lead, good[0] + dh, good[1] + dw), True)
                )
    return [v for v in variants if v.output != (*lead, *good)]


# ---------------------------------------------------------------------------------------------
# loop versions with optional bugs (backward passes)
# ---------------------------------------------------------------------------------------------


def max_pool_backward_loop(
    dout: np.ndarray,
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    tie: str = "first",
    accumulate: bool = True,
) -> np.ndarray:
    """Max-pool backward; ``tie`` in {'first', 'last', 'all'}; overwrite when not accumulate."""
    (kh, kw), (sh, sw) = kernel, stride
    dx = np.zeros_like(x, dtype=np.float64)
    n_, c_, ho, wo = dout.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    window = x[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    hits = np.argwhere(window == window.max())
                    if tie == "first":
                        hits = hits[:1]
                    elif tie == "last":
                        hits = hits[-1:]
                    for a, b in hits:
                        if accumulate:
                            dx[n, c, i * sh + a, j * sw + b] += dout[n, c, i, j]
                        else:
                            dx[n, c, i * sh + a, j * sw + b] = dout[n, c, i, j]
    return dx


def avg_pool_backward_loop(
    dout: np.ndarray,
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    divide: bool = True,
    accumulate: bool = True,
) -> np.ndarray:
    """Average-pool backward with optional bugs."""
    (kh, kw), (sh, sw) = kernel, stride
    dx = np.zeros_like(x, dtype=np.float64)
    scale = 1.0 / (kh * kw) if divide else 1.0
    _, _, ho, wo = dout.shape
    for i in range(ho):
        for j in range(wo):
            share = dout[:, :, i, j][:, :, None, None] * scale
            target = dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            if accumulate:
                target += share
            else:
                target[...] = share
    return dx


def conv_dx_overwritten(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> np.ndarray:
    """conv2d dx where each window's contribution overwrites instead of adding up."""
    (sh, sw), (ph, pw) = stride, padding
    _, c_, kh, kw = w.shape
    n_, _, h, width = x.shape
    dxp = np.zeros((n_, c_, h + 2 * ph, width + 2 * pw))
    _, _, ho, wo = dout.shape
    for i in range(ho):
        for j in range(wo):
            contribution = np.einsum("nf,fckl->nckl", dout[:, :, i, j], w)
            dxp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] = contribution
    return dxp[:, :, ph : ph + h, pw : pw + width]


def centred(f: Callable[[np.ndarray], float], x: np.ndarray, h: float, kind: str) -> np.ndarray:
    """Difference quotients: kind in {'centred', 'forward', 'backward', 'centred_over_h'}."""
    x = np.array(x, dtype=np.float64, copy=True)
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    base = float(f(x))
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = float(f(x))
        flat[i] = old - h
        minus = float(f(x))
        flat[i] = old
        if kind == "forward":
            out[i] = (plus - base) / h
        elif kind == "backward":
            out[i] = (base - minus) / h
        elif kind == "centred_over_h":
            out[i] = (plus - minus) / h
        else:
            out[i] = (plus - minus) / (2 * h)
    return grad


# ---------------------------------------------------------------------------------------------
# layer shapes with optional bugs
# ---------------------------------------------------------------------------------------------


def layer_shapes(
    layers: Sequence[object],
    input_shape: Sequence[int],
    *,
    same_as_zero: bool = False,
    ignore_dilation: bool = False,
    ceil: bool = False,
    batch: bool = False,
) -> list[tuple[int, ...]]:
    """Shapes after each layer, worked out from the settings, with optional bugs."""
    from torch import nn

    shape = tuple(int(s) for s in input_shape)
    shapes: list[tuple[int, ...]] = []
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            c, h, w = shape
            k, s, d = layer.kernel_size, layer.stride, layer.dilation
            if ignore_dilation:
                d = (1, 1)
            if layer.padding == "same" and not same_as_zero:
                size = (h, w)
            else:
                p = (0, 0) if isinstance(layer.padding, str) else layer.padding
                size = (
                    out_size(h, k[0], s[0], p[0], d[0], ceil),
                    out_size(w, k[1], s[1], p[1], d[1], ceil),
                )
            shape = (layer.out_channels, *size)
        elif isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
            c, h, w = shape
            k = pair(layer.kernel_size)
            s = k if layer.stride in (None, ()) else pair(layer.stride)
            p = pair(layer.padding)
            d = pair(getattr(layer, "dilation", 1))
            if ignore_dilation:
                d = (1, 1)
            shape = (
                c,
                out_size(h, k[0], s[0], p[0], d[0], ceil),
                out_size(w, k[1], s[1], p[1], d[1], ceil),
            )
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            size = layer.output_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            shape = (shape[0], *(shape[i + 1] if v is None else v for i, v in enumerate(size)))
        elif isinstance(layer, nn.Flatten):
            shape = (math.prod(shape),)
        elif isinstance(layer, nn.Linear):
            shape = (layer.out_features,)
        shapes.append((1, *shape) if batch else shape)
    return shapes
