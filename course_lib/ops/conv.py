"""1-D and 2-D convolution and cross-correlation, conv2d and conv_transpose2d, loop and fast.

Each operator comes twice. The ``*_naive`` version is the definition written as loops over the
output positions, to be read line by line. The version under the plain name gives the same numbers
(up to rounding) and is fast: it is built from matrix products (GEMMs), never from PyTorch's own
convolution routines.

The fast ``conv2d`` and ``conv_transpose2d`` check their arguments here and hand them to the
engine in :mod:`course_lib.ops._conv_engine`, whose docstring explains the method: every kernel
tap is a shifted view of the padded input, so a convolution is a sum of matrix products, one per
tap (or, for few input channels, one product with a column matrix of the windows, "im2col").
The gradients are in :mod:`course_lib.ops.conv_backward`. ``python -m benchmarks conv`` times
them against PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib._validate import (
    check_positive_int,
    check_same_device_dtype,
    check_tensor,
    int_or_pair,
    transposed_output_size,
    window_output_size,
)
from course_lib.ops._conv_engine import conv2d_forward, conv_transpose2d_forward
from course_lib.ops.padding import Padding4, pad2d, resolve_padding

__all__ = [
    "conv2d",
    "conv2d_naive",
    "conv_transpose2d",
    "conv_transpose2d_naive",
    "convolve1d",
    "convolve1d_naive",
    "convolve2d",
    "corr2d",
    "corr2d_naive",
    "correlate1d",
    "correlate1d_naive",
]

SIGNAL_MODES = ("valid", "same", "full")


# --------------------------------------------------------------------------------------------
# 1-D signals
# --------------------------------------------------------------------------------------------


def _check_signal(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> None:
    check_tensor(x, "x", 1, "(L,)")
    check_tensor(kernel, "kernel", 1, "(K,)")
    check_same_device_dtype(x=x, kernel=kernel)
    if mode not in SIGNAL_MODES:
        raise ValueError(f"mode must be one of {SIGNAL_MODES}, got {mode!r}")
    if x.shape[0] == 0 or kernel.shape[0] == 0:
        raise ValueError(
            f"x and kernel must not be empty, got x of length {x.shape[0]} "
            f"and kernel of length {kernel.shape[0]}"
        )
    if mode != "full" and kernel.shape[0] > x.shape[0]:
        raise ValueError(
            f"kernel of length {kernel.shape[0]} is longer than x of length {x.shape[0]}; "
            f"mode={mode!r} needs len(kernel) <= len(x) (mode='full' works for any length)"
        )


def _signal_padding(kernel_length: int, mode: str) -> tuple[int, int]:
    """(left, right) zeros for a 1-D correlation; "same" is centred like numpy's."""
    if mode == "valid":
        return (0, 0)
    if mode == "same":
        return (kernel_length // 2, (kernel_length - 1) // 2)
    return (kernel_length - 1, kernel_length - 1)


def correlate1d_naive(x: torch.Tensor, kernel: torch.Tensor, mode: str = "valid") -> torch.Tensor:
    """Cross-correlation of a signal with a kernel, one output at a time (as ``numpy.correlate``).

    x: (L,), kernel: (K,) -> (L - K + 1,) for "valid", (L,) for "same", (L + K - 1,) for "full".
    ``y[i] = sum_k x_padded[i + k] * kernel[k]``: the kernel slides over x without flipping.
    """
    _check_signal(x, kernel, mode)
    left, right = _signal_padding(kernel.shape[0], mode)
    x_padded = torch.cat([x.new_zeros(left), x, x.new_zeros(right)])
    kernel_length = kernel.shape[0]
    out_length = x_padded.shape[0] - kernel_length + 1
    out = x.new_zeros(out_length)
    for i in range(out_length):
        window = x_padded[i : i + kernel_length]
        out[i] = (window * kernel).sum()
    return out


def correlate1d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "valid") -> torch.Tensor:
    """Fast cross-correlation: all windows as a strided view, times the kernel.

    x: (L,), kernel: (K,); same output as :func:`correlate1d_naive`.
    """
    _check_signal(x, kernel, mode)
    left, right = _signal_padding(kernel.shape[0], mode)
    x_padded = torch.cat([x.new_zeros(left), x, x.new_zeros(right)])
    windows = x_padded.unfold(0, kernel.shape[0], 1)  # (L_out, K), a view
    return windows @ kernel


def convolve1d_naive(x: torch.Tensor, kernel: torch.Tensor, mode: str = "valid") -> torch.Tensor:
    """True convolution, one output at a time (as ``numpy.convolve``).

    x: (L,), kernel: (K,). The full convolution is ``y[n] = sum_k x[n - k] * kernel[k]`` for
    ``n = 0 .. L + K - 2``; "valid" keeps the outputs where the kernel lies inside x and "same"
    the ``L`` outputs centred in the full result.
    """
    _check_signal(x, kernel, mode)
    length, kernel_length = x.shape[0], kernel.shape[0]
    full = x.new_zeros(length + kernel_length - 1)
    for n in range(full.shape[0]):
        total = x.new_zeros(())
        for k in range(kernel_length):
            if 0 <= n - k < length:
                total = total + x[n - k] * kernel[k]
        full[n] = total
    if mode == "full":
        return full
    if mode == "valid":
        return full[kernel_length - 1 : length]
    start = (kernel_length - 1) // 2
    return full[start : start + length]


def convolve1d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "valid") -> torch.Tensor:
    """Fast true convolution: a cross-correlation with the kernel reversed.

    x: (L,), kernel: (K,); same output as :func:`convolve1d_naive` and ``numpy.convolve``.
    """
    _check_signal(x, kernel, mode)
    return correlate1d(x, kernel.flip(0), mode)


# --------------------------------------------------------------------------------------------
# 2-D, one channel
# --------------------------------------------------------------------------------------------


def _check_image_and_kernel(x: torch.Tensor, kernel: torch.Tensor) -> None:
    check_tensor(x, "x", 2, "(H, W)")
    check_tensor(kernel, "kernel", 2, "(kh, kw)")
    check_same_device_dtype(x=x, kernel=kernel)
    if kernel.shape[0] == 0 or kernel.shape[1] == 0:
        raise ValueError(f"kernel must not be empty, got shape {tuple(kernel.shape)}")


def _check_kernel_fits(x: torch.Tensor, kernel: torch.Tensor) -> None:
    if kernel.shape[0] > x.shape[0] or kernel.shape[1] > x.shape[1]:
        raise ValueError(
            f"kernel of size {tuple(kernel.shape)} is larger than the input of size "
            f"{tuple(x.shape)}; pad the input or use a smaller kernel"
        )


def corr2d_naive(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid 2-D cross-correlation, one output pixel at a time.

    x: (H, W), kernel: (kh, kw) -> (H - kh + 1, W - kw + 1), with
    ``y[i, j] = sum_{a, b} x[i + a, j + b] * kernel[a, b]``.
    """
    _check_image_and_kernel(x, kernel)
    _check_kernel_fits(x, kernel)
    kh, kw = kernel.shape
    out = x.new_zeros(x.shape[0] - kh + 1, x.shape[1] - kw + 1)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i : i + kh, j : j + kw] * kernel).sum()
    return out


def corr2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Fast valid 2-D cross-correlation: all windows as a strided view, contracted with the kernel.

    x: (H, W), kernel: (kh, kw) -> (H - kh + 1, W - kw + 1).
    """
    _check_image_and_kernel(x, kernel)
    _check_kernel_fits(x, kernel)
    kh, kw = kernel.shape
    windows = x.unfold(0, kh, 1).unfold(1, kw, 1)  # (H_out, W_out, kh, kw), a view
    return torch.tensordot(windows, kernel, dims=([2, 3], [0, 1]))


def convolve2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "valid") -> torch.Tensor:
    """True 2-D convolution (kernel flipped in both axes), like ``scipy.signal.convolve2d``.

    x: (H, W), kernel: (kh, kw) -> (H - kh + 1, W - kw + 1) for "valid", (H, W) for "same",
    (H + kh - 1, W + kw - 1) for "full". Compare with :func:`corr2d`, which does not flip.
    """
    _check_image_and_kernel(x, kernel)
    if mode not in SIGNAL_MODES:
        raise ValueError(f"mode must be one of {SIGNAL_MODES}, got {mode!r}")
    if mode == "valid":
        _check_kernel_fits(x, kernel)
    kh, kw = kernel.shape
    top, bottom = _signal_padding(kh, mode)
    left, right = _signal_padding(kw, mode)
    x_padded = pad2d(x, (top, bottom, left, right))
    return corr2d(x_padded, kernel.flip(0, 1))


# --------------------------------------------------------------------------------------------
# conv2d and conv_transpose2d, the loop versions
# --------------------------------------------------------------------------------------------


def conv2d_naive(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution (cross-correlation, as in deep learning), one output value at a time.

    x: (N, C_in, H, W), weight: (C_out, C_in/groups, kh, kw), bias: (C_out,) or None
    -> (N, C_out, H_out, W_out) with ``H_out = (H + pad_h - dilation*(kh - 1) - 1) // stride + 1``.
    ``padding`` is an int, a pair, "valid", "same" or "full". With ``groups`` the channels are
    split into groups and filter ``f`` only sees the input channels of its group.
    """
    (sh, sw), pads, (dh, dw), groups = check_conv2d_args(
        x, weight, bias, stride, padding, dilation, groups
    )
    x_padded = pad2d(x, pads)
    n_batch, _, padded_h, padded_w = x_padded.shape
    c_out, c_per_group, kh, kw = weight.shape
    filters_per_group = c_out // groups
    out_h = window_output_size(padded_h, kh, sh, 0, dh)
    out_w = window_output_size(padded_w, kw, sw, 0, dw)
    out = x.new_zeros(n_batch, c_out, out_h, out_w)
    for n in range(n_batch):
        for f in range(c_out):
            group = f // filters_per_group
            channels = slice(group * c_per_group, (group + 1) * c_per_group)
            for i in range(out_h):
                for j in range(out_w):
                    # the pixels the kernel sees at this position: (C_in/groups, kh, kw)
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                    window = x_padded[n, channels, rows, cols]
                    out[n, f, i, j] = (window * weight[f]).sum()
            if bias is not None:
                out[n, f] += bias[f]
    return out


def conv_transpose2d_naive(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Transposed convolution, one input value at a time: each input pixel stamps the kernel.

    x: (N, C_in, H, W), weight: (C_in, C_out/groups, kh, kw), bias: (C_out,) or None
    -> (N, C_out, H_out, W_out) with
    ``H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``.
    Input pixel ``(i, j)`` adds ``x[n, c, i, j] * weight[c]`` at rows ``i*stride + a*dilation``
    and columns ``j*stride + b*dilation`` of a large canvas; overlapping stamps add up. The
    canvas is then cropped by ``padding`` on each side (``output_padding`` extra at the end).
    """
    (sh, sw), pads, (dh, dw), groups, (out_h, out_w) = check_conv_transpose2d_args(
        x, weight, bias, stride, padding, output_padding, dilation, groups
    )
    n_batch, c_in, height, width = x.shape
    _, c_out_per_group, kh, kw = weight.shape
    c_in_per_group = c_in // groups
    top, left = pads[0], pads[2]
    canvas_h = max(top + out_h, (height - 1) * sh + dh * (kh - 1) + 1)
    canvas_w = max(left + out_w, (width - 1) * sw + dw * (kw - 1) + 1)
    canvas = x.new_zeros(n_batch, c_out_per_group * groups, canvas_h, canvas_w)
    for n in range(n_batch):
        for c in range(c_in):
            group = c // c_in_per_group
            out_channels = slice(group * c_out_per_group, (group + 1) * c_out_per_group)
            for i in range(height):
                for j in range(width):
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                    canvas[n, out_channels, rows, cols] += x[n, c, i, j] * weight[c]
    out = canvas[:, :, top : top + out_h, left : left + out_w].clone()
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


# --------------------------------------------------------------------------------------------
# conv2d and conv_transpose2d, the fast versions
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Fast 2-D convolution with the semantics of ``torch.nn.functional.conv2d``.

    x: (N, C_in, H, W), weight: (C_out, C_in/groups, kh, kw), bias: (C_out,) or None
    -> (N, C_out, H_out, W_out). ``padding`` is an int, a pair, "valid", "same" or "full";
    ``groups=C_in`` gives a depthwise convolution; :mod:`course_lib.ops._conv_engine` explains
    the method. The result carries no autograd history
    (:func:`course_lib.ops.conv_backward.conv2d_backward` computes the gradients), so
    parameters that require grad can be passed as they are.
    """
    stride_hw, pads, dilation_hw, groups = check_conv2d_args(
        x, weight, bias, stride, padding, dilation, groups
    )
    return conv2d_forward(x, weight, bias, stride_hw, pads, dilation_hw, groups)


@torch.no_grad()
def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Fast transposed convolution with the semantics of ``torch.nn.functional.conv_transpose2d``.

    x: (N, C_in, H, W), weight: (C_in, C_out/groups, kh, kw), bias: (C_out,) or None
    -> (N, C_out, H_out, W_out), ``H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1)
    + output_padding + 1``. It is the input gradient of a conv2d that maps (N, C_out, H_out,
    W_out) to x's shape with the same weight, computed by the same shifted GEMMs.
    """
    stride_hw, pads, dilation_hw, groups, out_hw = check_conv_transpose2d_args(
        x, weight, bias, stride, padding, output_padding, dilation, groups
    )
    out = conv_transpose2d_forward(x, weight, stride_hw, pads, dilation_hw, groups, out_hw)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


# --------------------------------------------------------------------------------------------
# Checks for conv2d and conv_transpose2d (shared with course_lib.ops.conv_backward)
# --------------------------------------------------------------------------------------------


def check_conv2d_args(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int] | str,
    dilation: int | Sequence[int],
    groups: int,
) -> tuple[tuple[int, int], Padding4, tuple[int, int], int]:
    """Validate the arguments of conv2d; return (stride, (top, bottom, left, right), dilation,
    groups)."""
    check_tensor(x, "x", 4, "(N, C, H, W)")
    check_tensor(weight, "weight", 4, "(C_out, C_in/groups, kh, kw)")
    if bias is not None:
        check_tensor(bias, "bias", 1, "(C_out,)")
    check_same_device_dtype(x=x, weight=weight, bias=bias)
    stride_hw = int_or_pair(stride, "stride", minimum=1)
    dilation_hw = int_or_pair(dilation, "dilation", minimum=1)
    groups = check_positive_int(groups, "groups")
    c_in = x.shape[1]
    c_out, c_per_group, kh, kw = weight.shape
    if c_out == 0 or kh == 0 or kw == 0:
        raise ValueError(f"weight must not be empty, got shape {tuple(weight.shape)}")
    if c_in % groups != 0:
        raise ValueError(f"groups={groups} must divide the input channels, but x has C_in={c_in}")
    if c_out % groups != 0:
        raise ValueError(
            f"groups={groups} must divide the output channels, but weight has C_out={c_out}"
        )
    if c_per_group * groups != c_in:
        raise ValueError(
            f"channel mismatch: x has C_in={c_in} channels, so with groups={groups} the weight "
            f"needs C_in/groups={c_in // groups} input channels per filter, "
            f"got weight of shape {tuple(weight.shape)}"
        )
    if bias is not None and bias.shape[0] != c_out:
        raise ValueError(
            f"expected bias of shape (C_out,) = ({c_out},), got shape {tuple(bias.shape)}"
        )
    if isinstance(padding, str) and padding == "same" and stride_hw != (1, 1):
        raise ValueError(f"padding='same' needs stride 1, got stride={stride_hw}")
    pads = resolve_padding(padding, (kh, kw), dilation_hw)
    padded_h = x.shape[2] + pads[0] + pads[1]
    padded_w = x.shape[3] + pads[2] + pads[3]
    extent_h = dilation_hw[0] * (kh - 1) + 1
    extent_w = dilation_hw[1] * (kw - 1) + 1
    if extent_h > padded_h or extent_w > padded_w:
        raise ValueError(
            f"the kernel of size ({kh}, {kw}) with dilation {dilation_hw} covers "
            f"({extent_h}, {extent_w}) pixels, larger than the padded input of size "
            f"({padded_h}, {padded_w}); use a smaller kernel or more padding"
        )
    return stride_hw, pads, dilation_hw, groups


def check_conv_transpose2d_args(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    output_padding: int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
) -> tuple[tuple[int, int], Padding4, tuple[int, int], int, tuple[int, int]]:
    """Validate conv_transpose2d; return (stride, pads, dilation, groups, output (H, W))."""
    check_tensor(x, "x", 4, "(N, C_in, H, W)")
    check_tensor(weight, "weight", 4, "(C_in, C_out/groups, kh, kw)")
    if bias is not None:
        check_tensor(bias, "bias", 1, "(C_out,)")
    check_same_device_dtype(x=x, weight=weight, bias=bias)
    stride_hw = int_or_pair(stride, "stride", minimum=1)
    dilation_hw = int_or_pair(dilation, "dilation", minimum=1)
    if isinstance(padding, str):
        raise TypeError(
            "conv_transpose2d takes padding as an int or a pair of ints (height, width), not a "
            f"mode such as 'same'; got {padding!r}"
        )
    padding_hw = int_or_pair(padding, "padding", minimum=0)
    output_padding_hw = int_or_pair(output_padding, "output_padding", minimum=0)
    groups = check_positive_int(groups, "groups")
    c_in = x.shape[1]
    c_in_weight, c_out_per_group, kh, kw = weight.shape
    if c_out_per_group == 0 or kh == 0 or kw == 0:
        raise ValueError(f"weight must not be empty, got shape {tuple(weight.shape)}")
    if c_in % groups != 0:
        raise ValueError(f"groups={groups} must divide the input channels, but x has C_in={c_in}")
    if c_in_weight != c_in:
        raise ValueError(
            f"channel mismatch: x has C_in={c_in} channels but weight of shape "
            f"{tuple(weight.shape)} expects {c_in_weight} (weight is (C_in, C_out/groups, kh, kw))"
        )
    c_out = c_out_per_group * groups
    if bias is not None and bias.shape[0] != c_out:
        raise ValueError(
            f"expected bias of shape (C_out,) = ({c_out},), got shape {tuple(bias.shape)}"
        )
    for name, op, s, d in zip("HW", output_padding_hw, stride_hw, dilation_hw, strict=True):
        if op >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got output_padding "
                f"{op} with stride {s} and dilation {d} along {name}"
            )
    out_hw = tuple(
        transposed_output_size(size, k, s, p, d, op)
        for size, k, s, p, d, op in zip(
            x.shape[2:],
            (kh, kw),
            stride_hw,
            padding_hw,
            dilation_hw,
            output_padding_hw,
            strict=True,
        )
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"the output of conv_transpose2d would have size {out_hw}; the padding "
            f"{padding_hw} removes more than the transposed convolution produces"
        )
    pads = (padding_hw[0], padding_hw[0], padding_hw[1], padding_hw[1])
    return stride_hw, pads, dilation_hw, groups, (int(out_hw[0]), int(out_hw[1]))
