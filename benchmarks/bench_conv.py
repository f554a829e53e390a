"""conv2d forward and backward on the CPU: course_lib against PyTorch, as ratios ours/torch.

PyTorch's side is ``torch.nn.functional.conv2d`` and, for the backward pass, the
``aten.convolution_backward`` operator that autograd calls for it (dx, dw and db). Ratios below 1
mean course_lib is faster. Targets: forward <= 1.5, backward <= 2.0. The loop versions
(``*_naive``) are timed on a small problem to show what the vectorisation buys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks._timing import compare, print_table
from course_lib.ops.conv import conv2d, conv2d_naive
from course_lib.ops.conv_backward import conv2d_backward, conv2d_backward_naive

# (batch, channels, height, width), filters, stride; 3x3 kernels, padding 1, float32
CASES = [
    ((64, 3, 32, 32), 16, 1),
    ((64, 3, 32, 32), 16, 2),
    ((32, 64, 56, 56), 64, 1),
    ((32, 64, 56, 56), 64, 2),
]
NAIVE_CASE = ((2, 3, 12, 12), 4, 1)
FORWARD_TARGET, BACKWARD_TARGET = 1.5, 2.0


def _problem(shape, filters, stride, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    weight = torch.randn(filters, shape[1], 3, 3, generator=gen) * (2.0 / (9 * shape[1])) ** 0.5
    bias = torch.randn(filters, generator=gen)
    out_size = (shape[2] + 2 - 3) // stride + 1, (shape[3] + 2 - 3) // stride + 1
    dout = torch.randn(shape[0], filters, *out_size, generator=gen)
    return x, weight, bias, dout


def _torch_backward(dout, x, weight, stride):
    return torch.ops.aten.convolution_backward(
        dout,
        x,
        weight,
        [weight.shape[0]],
        [stride, stride],
        [1, 1],
        [1, 1],
        False,
        [0, 0],
        1,
        [True, True, True],
    )


def _check(ours, reference, what: str) -> None:
    for a, b in zip(ours, reference, strict=True):
        scale = max(1.0, b.abs().max().item())
        if not torch.allclose(a, b, rtol=1e-3, atol=1e-3 * scale):
            raise AssertionError(f"{what}: course_lib and torch disagree before timing")


def _name(shape, filters, stride) -> str:
    return f"{tuple(shape)} x {filters} filters 3x3, stride {stride}"


def _measure(repeats_scale: float = 1.0) -> tuple[list, list]:
    """Forward and backward rows (case, ours_s, torch_s, ratio) for every case in CASES."""
    forward_rows, backward_rows = [], []
    for shape, filters, stride in CASES:
        x, weight, bias, dout = _problem(shape, filters, stride)
        _check(
            [conv2d(x, weight, bias, stride, 1)],
            [F.conv2d(x, weight, bias, stride, 1)],
            "forward",
        )
        _check(
            conv2d_backward(dout, x, weight, bias, stride, 1),
            _torch_backward(dout, x, weight, stride),
            "backward",
        )
        repeats = max(3, round((15 if shape[1] < 16 else 5) * repeats_scale))
        forward_rows.append(
            (
                _name(shape, filters, stride),
                *compare(
                    lambda x=x, w=weight, b=bias, s=stride: conv2d(x, w, b, s, 1),
                    lambda x=x, w=weight, b=bias, s=stride: F.conv2d(x, w, b, s, 1),
                    repeats=repeats,
                ),
            )
        )
        backward_rows.append(
            (
                _name(shape, filters, stride),
                *compare(
                    lambda d=dout, x=x, w=weight, b=bias, s=stride: conv2d_backward(
                        d, x, w, b, s, 1
                    ),
                    lambda d=dout, x=x, w=weight, s=stride: _torch_backward(d, x, w, s),
                    repeats=repeats,
                ),
            )
        )
    return forward_rows, backward_rows


def main() -> None:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    print(f"CPU, float32, {threads} threads (torch default)")
    with torch.no_grad():
        forward_rows, backward_rows = _measure()
        shape, filters, stride = NAIVE_CASE
        x, weight, bias, dout = _problem(shape, filters, stride)
        naive_rows = [
            (
                "conv2d_naive " + _name(shape, filters, stride),
                *compare(
                    lambda: conv2d_naive(x, weight, bias, stride, 1),
                    lambda: F.conv2d(x, weight, bias, stride, 1),
                    repeats=5,
                ),
            ),
            (
                "conv2d_backward_naive " + _name(shape, filters, stride),
                *compare(
                    lambda: conv2d_backward_naive(dout, x, weight, bias, stride, 1),
                    lambda: _torch_backward(dout, x, weight, stride),
                    repeats=5,
                ),
            ),
        ]
    print_table(f"conv2d forward: ours / F.conv2d (target <= {FORWARD_TARGET})", forward_rows)
    print_table(
        f"conv2d backward (dx, dw, db): ours / aten.convolution_backward "
        f"(target <= {BACKWARD_TARGET})",
        backward_rows,
    )
    print_table("loop versions on a small problem: ours / torch", naive_rows)
    worst_forward = max(r[3] for r in forward_rows)
    worst_backward = max(r[3] for r in backward_rows)
    print(
        f"\nworst forward ratio {worst_forward:.2f} "
        f"({'meets' if worst_forward <= FORWARD_TARGET else 'misses'} the target), "
        f"worst backward ratio {worst_backward:.2f} "
        f"({'meets' if worst_backward <= BACKWARD_TARGET else 'misses'} the target)"
    )
    if threads > 1:
        # On a busy machine every multi-threaded call waits for its threads to be scheduled,
        # and ours makes more calls than torch's single convolution; one thread shows the
        # arithmetic alone. The figures above (default threads) are the ones the targets use.
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                forward_1, backward_1 = _measure(repeats_scale=0.6)
        finally:
            torch.set_num_threads(threads)
        print_table("for comparison, 1 thread: forward", forward_1)
        print_table("for comparison, 1 thread: backward", backward_1)


if __name__ == "__main__":
    main()
