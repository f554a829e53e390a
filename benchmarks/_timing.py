"""Timing helpers shared by the benchmarks: every figure is a ratio measured in one run."""

from __future__ import annotations

import ctypes
import ctypes.util
import statistics
import sys
import time
from collections.abc import Callable

# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def steady_allocator() -> str:
    """Keep freed memory in the process, as it is after the first steps of a training loop.

    With glibc's defaults a block of a few MB is mapped afresh from the system on each
    allocation and returned when freed, so every call that allocates one pays for faulting
    its pages in again, until the process happens to free a larger block and glibc raises its
    thresholds. Which calls pay depends on what ran before, and the reference's times moved by
    up to 5x between runs. Fixing the thresholds puts both sides of every comparison in the
    same steady state. Returns a line saying what was done.
    """
    if not sys.platform.startswith("linux"):
        return "allocator: left as it is (not Linux)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and libc.mallopt(
            _M_TRIM_THRESHOLD, 512 * 2**20
        )
    except (OSError, AttributeError):
        ok = 0
    if not ok:
        return "allocator: left as it is (no glibc mallopt)"
    return "allocator: blocks up to 32 MB are reused, not returned to the system"


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(
    ours: Callable[[], object], reference: Callable[[], object], repeats: int = 7
) -> tuple[float, float, float]:
    """Time ``ours`` and ``reference`` in alternation; return (ours_s, reference_s, ratio).

    Alternating the two runs exposes both to the same load on the machine, so the ratio stays
    meaningful even when the absolute times drift.
    """
    for _ in range(2):
        ours()
        reference()
    ours_times, reference_times = [], []
    for _ in range(repeats):
        for fn, times in ((ours, ours_times), (reference, reference_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ours_s = statistics.median(ours_times)
    reference_s = statistics.median(reference_times)
    return ours_s, reference_s, ours_s / reference_s


def print_table(title: str, rows: list[tuple[str, float, float, float]]) -> None:
    """Print rows of (case, ours_s, reference_s, ratio) under ``title``."""
    print(f"\n{title}")
    width = max([len(r[0]) for r in rows] + [4])
    print(f"{'case':<{width}}  {'ours ms':>10}  {'torch ms':>10}  {'ratio':>7}")
    for name, ours_s, ref_s, ratio in rows:
        print(f"{name:<{width}}  {ours_s * 1e3:>10.2f}  {ref_s * 1e3:>10.2f}  {ratio:>7.2f}")
