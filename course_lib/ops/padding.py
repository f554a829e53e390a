"""Padding helpers: same, valid and full padding for a kernel, and zero padding of tensors.

Every helper returns the padding as four numbers ``(top, bottom, left, right)``: the rows added
above and below the input and the columns added on its left and right.

* ``"valid"``: no padding; the kernel only visits positions where it fits entirely.
* ``"same"``: with stride 1 the output has the input's size. The dilated kernel covers
  ``dilation * (kernel_size - 1) + 1`` pixels, so ``dilation * (kernel_size - 1)`` rows are added
  in total. For an even kernel that total is odd; like PyTorch we put the extra row at the bottom
  and the extra column on the right.
* ``"full"``: ``dilation * (kernel_size - 1)`` on every side, so that every position where the
  kernel overlaps the input by at least one pixel gives an output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib._validate import check_int, int_or_pair

__all__ = ["full_padding", "pad2d", "resolve_padding", "same_padding"]

Padding4 = tuple[int, int, int, int]
PADDING_MODES = ("valid", "same", "full")


def _kernel_and_dilation(
    kernel_size: int | Sequence[int], dilation: int | Sequence[int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    kernel_hw = int_or_pair(kernel_size, "kernel_size", minimum=1)
    dilation_hw = int_or_pair(dilation, "dilation", minimum=1)
    return kernel_hw, dilation_hw


def same_padding(kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1) -> Padding4:
    """Padding ``(top, bottom, left, right)`` that keeps the size at stride 1.

    >>> same_padding(3)
    (1, 1, 1, 1)
    >>> same_padding((4, 2))  # even kernels: the extra row/column goes at the bottom/right
    (1, 2, 0, 1)
    """
    (kh, kw), (dh, dw) = _kernel_and_dilation(kernel_size, dilation)
    total_h = dh * (kh - 1)
    total_w = dw * (kw - 1)
    top, left = total_h // 2, total_w // 2
    return (top, total_h - top, left, total_w - left)


def full_padding(kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1) -> Padding4:
    """Padding ``(top, bottom, left, right)`` of ``dilation * (kernel_size - 1)`` on each side.

    >>> full_padding((3, 2))
    (2, 2, 1, 1)
    """
    (kh, kw), (dh, dw) = _kernel_and_dilation(kernel_size, dilation)
    return (dh * (kh - 1), dh * (kh - 1), dw * (kw - 1), dw * (kw - 1))


def resolve_padding(
    padding: int | Sequence[int] | str,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
) -> Padding4:
    """Turn ``padding`` into ``(top, bottom, left, right)``.

    ``padding`` is an int (the same on all sides), a pair ``(rows, columns)`` (top and bottom
    get ``rows``, left and right get ``columns``), or one of ``"valid"``, ``"same"``, ``"full"``.

    >>> resolve_padding(2, 3)
    (2, 2, 2, 2)
    >>> resolve_padding((1, 0), 3)
    (1, 1, 0, 0)
    >>> resolve_padding("same", (5, 4), dilation=2)
    (4, 4, 3, 3)
    """
    if isinstance(padding, str):
        if padding == "valid":
            _kernel_and_dilation(kernel_size, dilation)
            return (0, 0, 0, 0)
        if padding == "same":
            return same_padding(kernel_size, dilation)
        if padding == "full":
            return full_padding(kernel_size, dilation)
        raise ValueError(
            f"padding must be an int, a pair of ints or one of {PADDING_MODES}, got {padding!r}"
        )
    _kernel_and_dilation(kernel_size, dilation)
    ph, pw = int_or_pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def _as_padding4(padding: int | Sequence[int]) -> Padding4:
    """int, pair ``(rows, columns)`` or 4-tuple ``(top, bottom, left, right)``."""
    try:
        if isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) == 4:
            top, bottom, left, right = (check_int(p, "padding") for p in padding)
            if min(top, bottom, left, right) < 0:
                raise ValueError(f"padding must be non-negative (>= 0), got {padding!r}")
            return (top, bottom, left, right)
        ph, pw = int_or_pair(padding, "padding", minimum=0)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            "padding must be an int, a pair (rows, columns) or a 4-tuple "
            f"(top, bottom, left, right), got {padding!r}"
        ) from None
    return (ph, ph, pw, pw)


def pad2d(x: torch.Tensor, padding: int | Sequence[int], value: float = 0.0) -> torch.Tensor:
    """Pad the last two axes of ``x`` with ``value`` (zero by default).

    x: (..., H, W) -> (..., H + top + bottom, W + left + right), a new tensor on x's device.
    ``padding`` is an int, a pair ``(rows, columns)`` or ``(top, bottom, left, right)``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected x to be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"expected x with at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
    top, bottom, left, right = _as_padding4(padding)
    *batch, height, width = x.shape
    out = x.new_full((*batch, height + top + bottom, width + left + right), value)
    out[..., top : top + height, left : left + width] = x
    return out
