"""Plans and buffers that the fast operators reuse from one call to the next.

A fast convolution copies its input into a padded buffer and a column or phase buffer before
its matrix products. Setting those up afresh on every call costs more than one would think: new
memory is handed out page by page as it is first touched, the zero border of a padded buffer has
to be written again, and the Python that works out the views of the buffers takes tens of
microseconds, as long as the arithmetic of a small convolution. So an operator keeps a *plan*
per problem size (its buffers, already zeroed where they must be zero, and the views into them)
and runs the same plan again when the same sizes come back, as they do in every step of a
training loop.

Plans are kept per thread, the most recently used first, up to ``KEEP_BYTES`` of buffers in all;
a plan larger than that is used once and dropped. :func:`release` frees them all (for this
thread).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import torch

KEEP_BYTES = 64 * 2**20

Plan = TypeVar("Plan")


class _Plans(threading.local):
    def __init__(self) -> None:
        self.entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self.nbytes = 0


_plans = _Plans()


def buffers_nbytes(*buffers: torch.Tensor) -> int:
    """Bytes held by the given buffers."""
    return sum(b.numel() * b.element_size() for b in buffers)


def reuse(key: Hashable, build: Callable[[], Plan], nbytes: Callable[[Plan], int]) -> Plan:
    """The plan kept under ``key``, or a new one from ``build()`` (kept if it is small enough).

    ``key`` must hold everything the plan depends on (sizes, dtype, device, ...); ``nbytes``
    tells how many bytes of buffers a plan holds.
    """
    plans = _plans
    entry = plans.entries.get(key)
    if entry is not None:
        plans.entries.move_to_end(key)
        return entry[0]  # type: ignore[return-value]
    plan = build()
    size = nbytes(plan)
    if size <= KEEP_BYTES:
        plans.entries[key] = (plan, size)
        plans.nbytes += size
        while plans.nbytes > KEEP_BYTES:
            _, (_, dropped) = plans.entries.popitem(last=False)
            plans.nbytes -= dropped
    return plan


def release() -> None:
    """Free the plans and buffers kept for this thread."""
    _plans.entries.clear()
    _plans.nbytes = 0


def kept_bytes() -> int:
    """Bytes of buffers kept for this thread."""
    return _plans.nbytes
