"""Checks at the public boundary of course_lib.

Every public operator validates its arguments here and says what was wrong and what was
expected; the code behind the boundary then trusts its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "as_pair",
    "check_positive_int",
    "check_positive",
    "check_non_negative",
    "check_tensor",
    "check_same_device_dtype",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


def as_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Turn an int or a pair of ints into ``(height, width)`` values.

    >>> as_pair(3, "kernel_size")
    (3, 3)
    >>> as_pair((2, 1), "stride")
    (2, 1)
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def check_positive_int(value: object, name: str, note: str = "") -> int:
    """Return ``value`` if it is an int >= 1 (a bool is not); raise ``ValueError`` naming it.

    ``note`` is added after "positive int" in the message, e.g. ``" (6n + 2 layers)"``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{note}, got {value!r}")
    return value


def check_positive(value: tuple[int, ...] | int, name: str) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is >= 1."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v < 1 for v in values):
        raise ValueError(f"{name} must be positive (>= 1), got {value}")


def check_non_negative(value: tuple[int, ...] | int, name: str) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is >= 0."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v < 0 for v in values):
        raise ValueError(f"{name} must be non-negative (>= 0), got {value}")


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
