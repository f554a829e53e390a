"""NumPy-in, NumPy-out reference answers for the autograded functions.

Each function here has the signature of the exercise it answers and computes the answer with
course_lib's PyTorch operators in float64. The hidden tests compare a student's output with these.
Nothing here is meant for students: while a student's code runs, these are switched off by
:func:`course_lib.grading.guard.forbid_ready_made`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

import course_lib

__all__ = [
    "corr2d",
    "pad2d",
    "conv2d_forward",
    "max_pool2d_forward",
    "avg_pool2d_forward",
    "conv_output_size",
    "pool_output_size",
    "conv2d_output_shape",
    "conv2d_num_params",
    "layer_output_shapes",
    "relu_backward",
    "max_pool2d_backward",
    "avg_pool2d_backward",
    "conv2d_backward",
    "numerical_gradient",
    "pair",
]

Pair = int | Sequence[int]


def pair(value: Pair) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(2, 1) -> (2, 1)``."""
    if isinstance(value, int | np.integer):
        return (int(value), int(value))
    first, second = value
    return (int(first), int(second))


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float64, copy=True))


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float64, copy=True)


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """x: (H, W), k: (kh, kw) -> (H - kh + 1, W - kw + 1)."""
    return _np(course_lib.corr2d(_t(x), _t(k)))


def pad2d(x: np.ndarray, padding: Pair) -> np.ndarray:
    """Zero-pad the last two axes of x by ``padding`` on each side."""
    return _np(course_lib.pad2d(_t(x), pair(padding)))


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair = 1, padding: Pair = 0
) -> np.ndarray:
    """x: (N, C, H, W), w: (F, C, kh, kw), b: (F,) or None -> (N, F, H', W')."""
    bias = None if b is None else _t(b)
    out = course_lib.conv2d(_t(x), _t(w), bias, stride=pair(stride), padding=pair(padding))
    return _np(out)


def max_pool2d_forward(x: np.ndarray, kernel_size: Pair, stride: Pair | None = None) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'), floor mode, no padding."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.max_pool2d(_t(x), pair(kernel_size), stride=pair(stride)))


def avg_pool2d_forward(x: np.ndarray, kernel_size: Pair, stride: Pair | None = None) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'), the mean of each window."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.avg_pool2d(_t(x), pair(kernel_size), stride=pair(stride)))


# ---------------------------------------------------------------------------------------------
# output shapes
# ---------------------------------------------------------------------------------------------


def _check_range(kernel_size: int, stride: int, padding: int, dilation: int) -> None:
    if kernel_size < 1 or stride < 1 or padding < 0 or dilation < 1:
        raise ValueError(
            f"out of range: kernel_size={kernel_size}, stride={stride}, padding={padding}, "
            f"dilation={dilation}"
        )


def conv_output_size(
    n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """``(n + 2p - d(k-1) - 1) // s + 1``; ValueError when out of range or < 1."""
    _check_range(kernel_size, stride, padding, dilation)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return int(course_lib.conv_output_size(n, kernel_size, stride, padding, dilation))


def pool_output_size(n: int, kernel_size: int, stride: int | None = None, padding: int = 0) -> int:
    """Pooling output size in floor mode; stride defaults to kernel_size."""
    stride = kernel_size if stride is None else stride
    _check_range(kernel_size, stride, padding, 1)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    # The exercise's rule is the convolution's rule; PyTorch's extra limit on pooling padding
    # (at most half the kernel) is not part of the contract, so the conv formula answers here.
    return int(course_lib.conv_output_size(n, kernel_size, stride, padding, 1))


def conv2d_output_shape(
    input_shape: Sequence[int],
    out_channels: int,
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
) -> tuple[int, int, int]:
    """input_shape (C, H, W) -> (out_channels, H', W')."""
    _, height, width = input_shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    return (
        int(out_channels),
        conv_output_size(height, kh, sh, ph),
        conv_output_size(width, kw, sw, pw),
    )


def conv2d_num_params(
    in_channels: int, out_channels: int, kernel_size: Pair, bias: bool = True
) -> int:
    """Weights ``out * in * kh * kw`` plus ``out`` biases when ``bias``."""
    conv = nn.Conv2d(in_channels, out_channels, pair(kernel_size), bias=bias, device="meta")
    return int(sum(p.numel() for p in conv.parameters()))


def layer_output_shapes(
    layers: Sequence[nn.Module], input_shape: Sequence[int]
) -> list[tuple[int, ...]]:
    """Shapes (no batch axis) after each layer, by running copies of the layers on zeros."""
    shapes: list[tuple[int, ...]] = []
    x = torch.zeros((1, *input_shape), dtype=torch.float32)
    with torch.no_grad():
        for layer in layers:
            x = copy.deepcopy(layer).eval()(x)
            shapes.append(tuple(int(s) for s in x.shape[1:]))
    return shapes


# ---------------------------------------------------------------------------------------------
# backprop
# ---------------------------------------------------------------------------------------------


def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx = dout where x > 0, else 0."""
    return _np(course_lib.relu_backward(_t(dout), _t(x)))


def max_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: Pair, stride: Pair | None = None
) -> np.ndarray:
    """dx shaped like x; ties go to the first maximum of a window, overlaps add up."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.max_pool2d_backward(_t(dout), _t(x), pair(kernel_size), pair(stride)))


def avg_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: Pair, stride: Pair | None = None
) -> np.ndarray:
    """dx shaped like x."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.avg_pool2d_backward(_t(dout), _t(x), pair(kernel_size), pair(stride)))


def conv2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair = 1,
    padding: Pair = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(dx, dw, db) of conv2d_forward(x, w, b, stride, padding); db is None when b is None."""
    bias = None if b is None else _t(b)
    dx, dw, db = course_lib.conv2d_backward(
        _t(dout), _t(x), _t(w), bias, stride=pair(stride), padding=pair(padding)
    )
    return _np(dx), _np(dw), None if b is None else _np(db)


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Centred differences ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for each entry of x."""

    def f_torch(t: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float(f(t.detach().cpu().numpy())), dtype=torch.float64)

    return _np(course_lib.numerical_gradient(f_torch, _t(x), h=h))
