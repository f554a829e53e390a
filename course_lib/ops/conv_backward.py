"""Backward pass of conv2d: dx, dw and db, and the input gradient as a transposed convolution.

For ``out = conv2d(x, weight, bias, ...)`` and an upstream gradient ``dout = dL/dout``:

* ``db[f] = sum over n, i, j of dout[n, f, i, j]``;
* ``dw[f]`` adds up, over the batch and all output positions, ``dout[n, f, i, j]`` times the input
  window that produced ``out[n, f, i, j]``;
* ``dx`` receives ``dout[n, f, i, j] * weight[f]`` on that same window; windows overlap, so the
  contributions add up. This scatter is exactly a transposed convolution of ``dout`` with the same
  kernel, and at stride 1 it is a "full" correlation of ``dout`` with the kernel flipped in both
  spatial axes and its input and output channels swapped.
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
from course_lib.ops._conv_engine import conv2d_gradients
from course_lib.ops.conv import check_conv2d_args, conv2d, conv_transpose2d
from course_lib.ops.padding import full_padding, pad2d

__all__ = [
    "conv2d_backward",
    "conv2d_backward_naive",
    "conv2d_input_grad_via_flipped_kernel",
    "conv2d_input_grad_via_transpose",
]

Grads = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def _check_dout(dout: torch.Tensor, expected: tuple[int, int, int, int], x: torch.Tensor) -> None:
    check_tensor(dout, "dout", 4, "(N, C_out, H_out, W_out)")
    check_same_device_dtype(x=x, dout=dout)
    if tuple(dout.shape) != expected:
        raise ValueError(
            f"expected dout of shape (N, C_out, H_out, W_out) = {expected}, the shape of the "
            f"convolution's output, got shape {tuple(dout.shape)}"
        )


def _conv_output_hw(
    in_hw: tuple[int, int],
    weight: torch.Tensor,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """(H_out, W_out) of the conv2d whose gradient is taken, on checked arguments."""
    kh, kw = weight.shape[2:]
    return (
        window_output_size(in_hw[0], kh, stride[0], (pads[0], pads[1]), dilation[0]),
        window_output_size(in_hw[1], kw, stride[1], (pads[2], pads[3]), dilation[1]),
    )


def _check_backward_args(dout, x, weight, bias, stride, padding, dilation, groups):
    stride_hw, pads, dilation_hw, groups = check_conv2d_args(
        x, weight, bias, stride, padding, dilation, groups
    )
    out_h, out_w = _conv_output_hw((x.shape[2], x.shape[3]), weight, stride_hw, pads, dilation_hw)
    _check_dout(dout, (x.shape[0], weight.shape[0], out_h, out_w), x)
    return stride_hw, pads, dilation_hw, groups


def conv2d_backward_naive(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Grads:
    """Gradients of ``conv2d(x, weight, bias, stride, padding, dilation, groups)``, with loops.

    dout: (N, C_out, H_out, W_out), x: (N, C_in, H, W), weight: (C_out, C_in/groups, kh, kw)
    -> dx: (N, C_in, H, W), dw: (C_out, C_in/groups, kh, kw), db: (C_out,) or None when ``bias``
    is None. Each output gradient is sent back through the window that produced the output.
    """
    (sh, sw), pads, (dh, dw_), groups = _check_backward_args(
        dout, x, weight, bias, stride, padding, dilation, groups
    )
    x_padded = pad2d(x, pads)
    dx_padded = torch.zeros_like(x_padded)
    dw = torch.zeros_like(weight)
    n_batch, c_out, out_h, out_w = dout.shape
    c_per_group, kh, kw = weight.shape[1:]
    filters_per_group = c_out // groups
    for n in range(n_batch):
        for f in range(c_out):
            group = f // filters_per_group
            channels = slice(group * c_per_group, (group + 1) * c_per_group)
            for i in range(out_h):
                for j in range(out_w):
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw_ * (kw - 1) + 1, dw_)
                    g = dout[n, f, i, j]
                    # out[n, f, i, j] = sum(window * weight[f]) + bias[f], so:
                    dx_padded[n, channels, rows, cols] += g * weight[f]
                    dw[f] += g * x_padded[n, channels, rows, cols]
    top, left = pads[0], pads[2]
    dx = dx_padded[:, :, top : top + x.shape[2], left : left + x.shape[3]].clone()
    db = dout.sum(dim=(0, 2, 3)) if bias is not None else None
    return dx, dw, db


@torch.no_grad()
def conv2d_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Grads:
    """Fast gradients of ``conv2d``; same arguments and results as :func:`conv2d_backward_naive`.

    dx is the transposed convolution of dout (shifted GEMMs scattered back onto the padded
    input), dw a sum over kernel taps of GEMMs ``dout @ shifted_input.T``, db a sum.
    """
    stride_hw, pads, dilation_hw, groups = _check_backward_args(
        dout, x, weight, bias, stride, padding, dilation, groups
    )
    dx, dw = conv2d_gradients(dout, x, weight, stride_hw, pads, dilation_hw, groups)
    db = dout.sum(dim=(0, 2, 3)) if bias is not None else None
    return dx, dw, db


def _check_input_grad_args(dout, weight, input_size, stride, padding, dilation, groups):
    check_tensor(dout, "dout", 4, "(N, C_out, H_out, W_out)")
    check_tensor(weight, "weight", 4, "(C_out, C_in/groups, kh, kw)")
    check_same_device_dtype(dout=dout, weight=weight)
    height, width = int_or_pair(input_size, "input_size", minimum=1)
    groups = check_positive_int(groups, "groups")
    if weight.shape[0] % groups != 0:
        raise ValueError(
            f"groups={groups} must divide the output channels, but weight has "
            f"C_out={weight.shape[0]}"
        )
    if dout.shape[1] != weight.shape[0]:
        raise ValueError(
            f"channel mismatch: dout has {dout.shape[1]} channels but weight of shape "
            f"{tuple(weight.shape)} has C_out={weight.shape[0]}"
        )
    # Reuse conv2d's checks on an input of the requested size (no data is read).
    probe = dout.new_empty(0, weight.shape[1] * groups, height, width)
    stride_hw, pads, dilation_hw, groups = check_conv2d_args(
        probe, weight, None, stride, padding, dilation, groups
    )
    out_h, out_w = _conv_output_hw((height, width), weight, stride_hw, pads, dilation_hw)
    if tuple(dout.shape[2:]) != (out_h, out_w):
        raise ValueError(
            f"dout has spatial size {tuple(dout.shape[2:])}, but a conv2d of an input of size "
            f"{(height, width)} gives ({out_h}, {out_w})"
        )
    return (height, width), stride_hw, pads, dilation_hw, groups


def conv2d_input_grad_via_transpose(
    dout: torch.Tensor,
    weight: torch.Tensor,
    input_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """dx of ``conv2d`` computed as ``conv_transpose2d(dout, weight)``.

    dout: (N, C_out, H_out, W_out), weight: (C_out, C_in/groups, kh, kw), input_size (H, W)
    -> dx: (N, C_in, H, W). Several input sizes give the same H_out when stride > 1; the
    ``output_padding`` of the transposed convolution adds the rows and columns needed to get
    back to exactly ``input_size``. The padding must be the same on opposite sides
    (an int, a pair, "valid", "full", or "same" with an odd dilated kernel).
    """
    (height, width), (sh, sw), pads, (dh, dw), groups = _check_input_grad_args(
        dout, weight, input_size, stride, padding, dilation, groups
    )
    top, bottom, left, right = pads
    if top != bottom or left != right:
        raise ValueError(
            f"conv_transpose2d needs the same padding on opposite sides, got (top, bottom, "
            f"left, right) = {pads}; use conv2d_backward for asymmetric padding"
        )
    kh, kw = weight.shape[2:]
    out_h, out_w = dout.shape[2:]
    # The size conv_transpose2d reaches without output_padding, and what is missing.
    reached_h = transposed_output_size(out_h, kh, sh, top, dh)
    reached_w = transposed_output_size(out_w, kw, sw, left, dw)
    output_padding = (height - reached_h, width - reached_w)
    return conv_transpose2d(
        dout,
        weight,
        stride=(sh, sw),
        padding=(top, left),
        output_padding=output_padding,
        dilation=(dh, dw),
        groups=groups,
    )


def _pad_or_crop(x: torch.Tensor, amounts: tuple[int, int, int, int]) -> torch.Tensor:
    """Add (positive) or remove (negative) rows/columns: (top, bottom, left, right)."""
    x = pad2d(x, tuple(max(0, a) for a in amounts))
    top, bottom, left, right = (max(0, -a) for a in amounts)
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


def conv2d_input_grad_via_flipped_kernel(
    dout: torch.Tensor,
    weight: torch.Tensor,
    input_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """dx of a stride-1 ``conv2d`` as a "full" correlation with the flipped kernel.

    dout: (N, C_out, H_out, W_out), weight: (C_out, C_in/groups, kh, kw), input_size (H, W)
    -> dx: (N, C_in, H, W). The kernel is flipped in both spatial axes and its input and
    output channels are swapped (within each group); dout is padded by the "full" padding
    ``dilation * (k - 1)`` minus the forward padding on each side.
    """
    (height, width), stride_hw, pads, dilation_hw, groups = _check_input_grad_args(
        dout, weight, input_size, stride, padding, dilation, groups
    )
    if stride_hw != (1, 1):
        raise ValueError(
            f"the flipped-kernel form of the input gradient needs stride 1, got stride="
            f"{stride_hw}; use conv2d_input_grad_via_transpose for strided convolutions"
        )
    c_out, c_per_group, kh, kw = weight.shape
    filters_per_group = c_out // groups
    # (C_out, C_in/g, kh, kw) -> (C_in, C_out/g, kh, kw): swap channels inside each group, flip.
    swapped = (
        weight.reshape(groups, filters_per_group, c_per_group, kh, kw)
        .transpose(1, 2)
        .reshape(groups * c_per_group, filters_per_group, kh, kw)
    )
    flipped = swapped.flip(-2, -1)
    full = full_padding((kh, kw), dilation_hw)
    amounts = (full[0] - pads[0], full[1] - pads[1], full[2] - pads[2], full[3] - pads[3])
    dout_padded = _pad_or_crop(dout, amounts)
    dx = conv2d(dout_padded, flipped, dilation=dilation_hw, groups=groups)
    assert dx.shape[2:] == (height, width)
    return dx
