"""Known misconceptions, and the outputs of buggy variants that reveal them.

When a student's output is wrong, the judge computes what some typical buggy versions of the
function would return on the same inputs; if the student's output matches one of them, the
feedback names the misconception and says where to look. Each exercise declares the
misconceptions its judge may name (``course_lib.grading.exercises``); the ones several
exercises share are defined here, with the loops and shape rules that produce buggy outputs.
:data:`DIAGNOSES` (key -> :class:`Diagnosis`) is the union over all declarations.

This module imports NumPy only (PyTorch is imported by :func:`layer_shapes` when called).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GENERAL", "Diagnosis", "Variant", "all_diagnoses", "explain"]  # and DIAGNOSES


@dataclass(frozen=True)
class Diagnosis:
    """A misconception: what it is, and what to look at to fix it."""

    key: str
    misconception: str
    look_at: str


@dataclass(frozen=True)
class Variant:
    """What a buggy version returns: compared by shape only, or by shape and values."""

    key: str
    output: object
    shape_only: bool = False


def explain(key: str) -> str:
    """'Likely misconception: ... Look at: ...' for a diagnosis key."""
    d = all_diagnoses()[key]
    return f"Likely misconception: {d.misconception}. Look at: {d.look_at}."


def all_diagnoses() -> dict[str, Diagnosis]:
    """Every misconception any exercise declares, by key."""
    from .exercises import FUNCTIONS

    found = {d.key: d for d in GENERAL}
    for exercise in FUNCTIONS.values():
        found.update(exercise.diagnoses)
    return found


def __getattr__(name: str) -> Any:
    if name == "DIAGNOSES":  # derived from the declarations, when first asked for
        return all_diagnoses()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# misconceptions any function may show
# ---------------------------------------------------------------------------------------------

FORBIDDEN_CALL = Diagnosis(
    "forbidden_call",
    "a ready-made operator is used",
    "write it yourself with NumPy: scipy, torch, torchvision and course_lib are not allowed here",
)
INPUT_MODIFIED = Diagnosis(
    "input_modified",
    "the input is modified in place",
    "work on a copy (x.copy(), np.pad, np.zeros) and never assign into an argument",
)
OUTPUT_ALIASES_INPUT = Diagnosis(
    "output_aliases_input",
    "the returned array is (a view of) an input, not a new array",
    "return a new array even when there is nothing to change: x.copy(), np.array(x)",
)
WRONG_SHAPE = Diagnosis(
    "wrong_shape",
    "the output has the wrong shape",
    "work out the expected shape from the contract before writing the loops",
)
WRONG_DTYPE = Diagnosis(
    "wrong_dtype",
    "the output has the wrong dtype",
    "float outputs are float64: create them with np.zeros(shape) or dtype=np.float64, not from "
    "integer arrays or float32; index outputs are int64 and flags bool",
)
NOT_AN_ARRAY = Diagnosis(
    "not_an_array",
    "the output is not a NumPy array",
    "return a numpy.ndarray (np.array(values)), not a list or a number",
)
NOT_A_TUPLE = Diagnosis(
    "not_a_tuple",
    "the function does not return the tuple the contract asks for",
    "return all the outputs, in the contract's order, as one tuple: return a, b, c",
)
NOT_AN_INT = Diagnosis(
    "not_an_int",
    "the result is not an int",
    "return a Python int (int(value)), not an array, a tuple or None",
)
NOT_A_FLOAT = Diagnosis(
    "not_a_float",
    "the result is not a number",
    "return one float (float(value)), not an array or a list",
)

#: Misconceptions every exercise's judge may name.
GENERAL: tuple[Diagnosis, ...] = (
    FORBIDDEN_CALL,
    INPUT_MODIFIED,
    OUTPUT_ALIASES_INPUT,
    WRONG_SHAPE,
    WRONG_DTYPE,
    NOT_AN_ARRAY,
    NOT_A_TUPLE,
    NOT_AN_INT,
    NOT_A_FLOAT,
)

# ---------------------------------------------------------------------------------------------
# misconceptions several exercises share
# ---------------------------------------------------------------------------------------------

KERNEL_FLIPPED = Diagnosis(
    "kernel_flipped",
    "the kernel is flipped (true convolution instead of cross-correlation)",
    "CNN layers compute cross-correlation: multiply x[i + a, j + b] by k[a, b] "
    "without reversing the kernel",
)
SIZE_OFF_BY_ONE = Diagnosis(
    "size_off_by_one",
    "the output size is off by one",
    "the output size is (H + 2p - k) // s + 1: check the '+ 1' and the loop bounds",
)
CEIL_NOT_FLOOR = Diagnosis(
    "ceil_not_floor",
    "the output size is rounded up (ceil) instead of down (floor)",
    "a window that would stick out past the (padded) input is dropped: use // (floor)",
)
STRIDE_IGNORED = Diagnosis(
    "stride_ignored",
    "the stride is ignored (windows move one step at a time)",
    "output position i starts its window at input row i * stride (same for columns)",
)
PAIR_SWAPPED = Diagnosis(
    "pair_swapped",
    "the two entries of a pair are swapped (kernel_size / stride / padding as (width, height))",
    "a pair is (height, width): the first entry goes with H (axis -2), the second with W",
)
HW_SWAPPED = Diagnosis(
    "hw_swapped",
    "height and width are swapped (the shape read as (..., W, H), or the output laid out (W', H'))",
    "x.shape is (N, C, H, W): H = x.shape[-2] (rows, the first index of a window), W = x.shape[-1]",
)
SQUARE_KERNEL = Diagnosis(
    "square_kernel",
    "the kernel is assumed to be square (its height used for its width too, or the reverse)",
    "kh and kw may differ: kh, kw = w.shape[-2:] (or the pair kernel_size), and use kh for the "
    "rows, kw for the columns",
)
PAIR_NOT_HANDLED = Diagnosis(
    "pair_not_handled",
    "an argument that may be an int or a pair (height, width) is used as an int only",
    "turn it into a pair first: kh, kw = (k, k) if np.ndim(k) == 0 else k",
)
PADDING_ONE_SIDE = Diagnosis(
    "padding_one_side",
    "padding is added on one side only",
    "zero padding p adds p rows on top AND bottom and p columns on the left AND right",
)
PADDING_WRONG_AXES = Diagnosis(
    "padding_wrong_axes",
    "padding is applied to the wrong axes",
    "pad only the last two axes (H and W), never the batch or channel axes, and both of them",
)
PADDING_IGNORED = Diagnosis(
    "padding_ignored",
    "the padding is ignored",
    "pad x first (pad2d), then slide the kernel over the padded input",
)
PADDING_COUNTED_ONCE = Diagnosis(
    "padding_counted_once",
    "the padding is counted once instead of on both sides",
    "padding adds p on each side: n + 2 * p",
)
OVERLAP_OVERWRITTEN = Diagnosis(
    "overlap_overwritten",
    "where windows overlap, gradients are overwritten instead of added",
    "accumulate with += into dx: an input value in several windows gets the sum of their gradients",
)
DILATION_IGNORED = Diagnosis(
    "dilation_ignored",
    "the dilation is ignored",
    "a dilated kernel spans d * (k - 1) + 1 inputs",
)
TRUE_DIVISION = Diagnosis(
    "true_division",
    "the size is computed with / (a float) instead of // (an int)",
    "use integer division // and return an int",
)
EPS_OUTSIDE_SQRT = Diagnosis(
    "eps_outside_sqrt",
    "eps is added outside the square root",
    "the normaliser is sqrt(var + eps), not sqrt(var) + eps",
)
IOU_PLUS_ONE = Diagnosis(
    "iou_plus_one",
    'widths and heights use the "+ 1" pixel convention',
    "boxes are in continuous coordinates: the width is x2 - x1 and the height y2 - y1, without + 1",
)
IOU_UNCLAMPED = Diagnosis(
    "iou_unclamped",
    "the overlap of boxes that do not intersect is not clamped at 0",
    "the intersection's width is max(0, min(x2, x2') - max(x1, x1')), the same for its height: "
    "two negative sides would multiply into a positive area",
)
GREATER_EQUAL = Diagnosis(
    "nms_greater_equal",
    "a box is suppressed when its IoU equals the threshold (>= instead of >)",
    "drop a box only when its IoU with the kept box is strictly greater than iou_threshold",
)
NOT_SORTED_BY_SCORE = Diagnosis(
    "not_sorted_by_score",
    "the boxes are visited in index order, not by decreasing score",
    "order = np.argsort(-scores, kind='stable'), then go through the boxes in that order",
)
TIES_REVERSED = Diagnosis(
    "ties_reversed",
    "equal scores are ordered with the higher index first",
    "np.argsort(scores)[::-1] reverses ties too: use np.argsort(-scores, kind='stable') so that "
    "ties keep the lower index first",
)


# ---------------------------------------------------------------------------------------------
# sizes and shapes
# ---------------------------------------------------------------------------------------------


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        return (int(value), int(value))
    return (int(value[0]), int(value[1]))


def out_size(n: int, k: int, s: int, p: int = 0, d: int = 1, ceil: bool = False) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


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
        Variant("hw_swapped", (*lead, good[1], good[0]), True),
        Variant("square_kernel", (*lead, out_size(h, kh, sh, ph), out_size(w, kh, sw, pw)), True),
        Variant("square_kernel", (*lead, out_size(h, kw, sh, ph), out_size(w, kw, sw, pw)), True),
        Variant("pair_swapped", (*lead, out_size(h, kw, sw, pw), out_size(w, kh, sh, ph)), True),
        Variant("pair_swapped", (*lead, out_size(h, kh, sw, ph), out_size(w, kw, sh, pw)), True),
        Variant("pair_swapped", (*lead, out_size(h, kw, sh, ph), out_size(w, kh, sw, pw)), True),
        Variant("pair_swapped", (*lead, out_size(h, kh, sh, pw), out_size(w, kw, sw, ph)), True),
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
    offset: bool = True,
) -> np.ndarray:
    """Max-pool backward; ``tie`` in {'first', 'last', 'all'}; overwrite when not accumulate;
    without ``offset`` the maximum's position inside the window is used as if the window
    started at (0, 0)."""
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
                        r, q = (i * sh + a, j * sw + b) if offset else (a, b)
                        if accumulate:
                            dx[n, c, r, q] += dout[n, c, i, j]
                        else:
                            dx[n, c, r, q] = dout[n, c, i, j]
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


def conv_backward_loop(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int],
    accumulate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dw) of a convolution by loops over the output positions of ``dout``, with windows
    ``stride`` apart; each window's dx overwrites instead of adding when not ``accumulate``."""
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = w.shape[2:]
    h, width = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    _, _, ho, wo = dout.shape
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            window = xp[:, :, rows, cols]
            if window.shape[2:] != (kh, kw):
                raise ValueError("the windows do not fit")
            contribution = np.einsum("nf,fckl->nckl", dout[:, :, i, j], w)
            if accumulate:
                dxp[:, :, rows, cols] += contribution
            else:
                dxp[:, :, rows, cols] = contribution
            dw += np.einsum("nf,nckl->fckl", dout[:, :, i, j], window)
    return dxp[:, :, ph : ph + h, pw : pw + width], dw


def centred(f: Callable[[np.ndarray], float], x: np.ndarray, h: float, kind: str) -> np.ndarray:
    """Difference quotients with optional bugs.

    kind: 'centred', 'forward', 'backward', 'centred_over_h', 'not_restored' (each entry is
    left at x_i - h), 'minus_at_x' (the second evaluation at x, not x - h e_i), 'first_axis'
    (whole slices x[i] along the first axis nudged at once).
    """
    x = np.array(x, dtype=np.float64, copy=True)
    grad = np.zeros_like(x)
    if kind == "first_axis":
        for i in range(x.shape[0]):
            step = np.zeros_like(x)
            step[i] = h
            grad[i] = (float(f(x + step)) - float(f(x - step))) / (2 * h)
        return grad
    flat, out = x.reshape(-1), grad.reshape(-1)
    base = float(f(x))
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = float(f(x))
        if kind == "minus_at_x":
            flat[i] = old
        else:
            flat[i] = old - h
        minus = float(f(x))
        if kind != "not_restored":
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
    pool_stride_one: bool = False,
    ignore_pool_padding: bool = False,
    swap_pairs: bool = False,
    swap_pool_pairs: bool = False,
) -> list[tuple[int, ...]]:
    """Shapes after each layer, worked out from the settings, with optional bugs."""
    from torch import nn

    def order(value: tuple[int, int]) -> tuple[int, int]:
        return (value[1], value[0]) if swap_pairs else value

    shape = tuple(int(s) for s in input_shape)
    shapes: list[tuple[int, ...]] = []
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            c, h, w = shape
            k, s, d = order(layer.kernel_size), order(layer.stride), order(layer.dilation)
            if ignore_dilation:
                d = (1, 1)
            if layer.padding == "same" and not same_as_zero:
                size = (h, w)
            else:
                p = (0, 0) if isinstance(layer.padding, str) else order(layer.padding)
                size = (
                    out_size(h, k[0], s[0], p[0], d[0], ceil),
                    out_size(w, k[1], s[1], p[1], d[1], ceil),
                )
            shape = (layer.out_channels, *size)
        elif isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
            c, h, w = shape

            def order(value: tuple[int, int]) -> tuple[int, int]:
                return (value[1], value[0]) if swap_pairs or swap_pool_pairs else value

            k = order(pair(layer.kernel_size))
            s = k if layer.stride in (None, ()) else order(pair(layer.stride))
            if pool_stride_one and layer.stride in (None, ()):
                s = (1, 1)
            p = (0, 0) if ignore_pool_padding else order(pair(layer.padding))
            d = order(pair(getattr(layer, "dilation", 1)))
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
