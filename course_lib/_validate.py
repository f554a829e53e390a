"""Checks at the public boundary of course_lib, and the sliding-window arithmetic they share.

Every public operator validates its arguments here and says what was wrong and what was
expected (``TypeError`` for a value of the wrong type, ``ValueError`` for a wrong value, the
argument named); the code behind the boundary then trusts its inputs. The output size of a
sliding window is computed here once, for the operators, the shape calculations and the figures.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "check_int",
    "int_or_pair",
    "window_output_size",
    "transposed_output_size",
    "check_positive_int",
    "check_tensor",
    "check_same_device_dtype",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


def _is_int(value: object) -> bool:
    """An int or a NumPy integer; not a bool (``True`` is no kernel size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _at_least(minimum: int) -> str:
    return {0: "non-negative (>= 0)", 1: "positive (>= 1)"}.get(minimum, f">= {minimum}")


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an int; the check for a size, stride, padding or dilation of one axis.

    ``TypeError`` naming ``name`` unless ``value`` is an int (a NumPy integer counts, a bool or a
    float does not); ``ValueError`` naming it when ``value < minimum``.

    >>> check_int(3, "kernel_size", minimum=1)
    3
    """
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be {_at_least(minimum)}, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def int_or_pair(value: int | Sequence[int], name: str, *, minimum: int) -> tuple[int, int]:
    """Turn an int or a pair of ints into ``(height, width)`` values, each at least ``minimum``.

    The one check for every ``kernel_size``, ``stride``, ``padding``, ``dilation`` (and
    ``input_size``, ``output_size``) given as an int or a pair: ``TypeError`` naming ``name`` for a
    value of the wrong type (a float, a bool, a string, a 3-tuple), ``ValueError`` naming it for an
    entry below ``minimum`` (1 for sizes, strides and dilations, 0 for paddings).

    >>> int_or_pair(3, "kernel_size", minimum=1)
    (3, 3)
    >>> int_or_pair((2, 1), "stride", minimum=1)
    (2, 1)
    """
    if _is_int(value):
        pair = (value, value)
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(_is_int(v) for v in value)
    ):
        pair = (value[0], value[1])
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")
    if pair[0] < minimum or pair[1] < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be {_at_least(minimum)}, got {value!r}")
    return (int(pair[0]), int(pair[1]))  # type: ignore[call-overload]


def window_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """How many positions a sliding window takes along one axis: the output size of a
    convolution or a pooling layer there. Trusts its (already checked) arguments.

    ``padding`` is the same on both sides (an int) or ``(before, after)``. The dilated kernel
    spans ``dilation*(kernel_size - 1) + 1`` cells of the padded axis, so the result is
    ``floor((size + before + after - dilation*(kernel_size - 1) - 1) / stride) + 1``, the rule of
    ``torch.nn.Conv2d``. With ``ceil_mode`` the division rounds up, but a last window that would
    start beyond the input and the padding before it is dropped (the rule of ``MaxPool2d``). A
    result below 1 means that the window does not fit; the caller says so.

    >>> window_output_size(7, kernel_size=3, stride=2)
    3
    >>> window_output_size(5, kernel_size=2, stride=2, ceil_mode=True)
    3
    """
    before, after = (padding, padding) if isinstance(padding, int) else padding
    span = size + before + after - (dilation * (kernel_size - 1) + 1)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def transposed_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> int:
    """Output size of a transposed convolution along one axis, on checked arguments:
    ``(size - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``, the
    largest input size of the convolution it transposes (plus ``output_padding``).
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def check_positive_int(value: object, name: str, note: str = "") -> int:
    """Return ``value`` if it is an int >= 1 (a bool is not); raise ``ValueError`` naming it.

    ``note`` is added after "positive int" in the message, e.g. ``" (6n + 2 layers)"``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{note}, got {value!r}")
    return value


def check_tensor(x: object, name: str, ndim: int | None = None, layout: str = "") -> torch.Tensor:
    """Check that ``x`` is a float32/float64 tensor with ``ndim`` dimensions.

    ``layout`` names the axes for the message, e.g. ``"(N, C, H, W)"``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        where = f" {layout}" if layout else ""
        raise ValueError(f"expected {name} with {ndim} dims{where}, got shape {tuple(x.shape)}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"expected {name} to be float32 or float64, got {x.dtype}")
    return x


def check_same_device_dtype(**tensors: torch.Tensor | None) -> None:
    """Raise when the given tensors (``None`` skipped) differ in device or dtype."""
    present = {name: t for name, t in tensors.items() if t is not None}
    if not present:
        return
    first_name, first = next(iter(present.items()))
    for name, t in present.items():
        if t.device != first.device:
            raise ValueError(
                f"{name} is on {t.device} but {first_name} is on {first.device}; "
                "move them to the same device"
            )
        if t.dtype != first.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {first_name} has {first.dtype}; "
                "use the same dtype for all tensors"
            )
