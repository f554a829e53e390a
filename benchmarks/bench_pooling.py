"""Pooling speed: course_lib's max/avg pooling and their gradients against PyTorch, on the CPU.

Every figure is a ratio measured in this run: ours / torch (1.0 = as fast as PyTorch's own C++
kernels, 2.0 = twice as slow). Float32, NCHW.

The backward rows compare like with like as far as possible: PyTorch's max-pooling backward
reuses the argmax indices saved by its forward pass, while ``max_pool2d_backward`` takes only
``(dout, x)`` and finds the maxima again, so the "forward + backward" rows are the fairer
comparison for max pooling.

On a machine shared with other work, ``OMP_NUM_THREADS=1 python -m benchmarks pooling`` gives
steadier ratios (both sides then run on one thread).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.ops.pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_backward_naive,
    avg_pool2d_naive,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_backward_naive,
    max_pool2d_naive,
)

from ._timing import compare, print_table

SHAPES = [(64, 16, 32, 32), (32, 64, 56, 56)]
SETTINGS = [(2, 2), (3, 2)]  # (kernel_size, stride)
NAIVE_SHAPE = (8, 16, 16, 16)


def _torch_backward(torch_pool, x: torch.Tensor, dout: torch.Tensor, kernel_size, stride):
    """A function running PyTorch's backward pass alone (the forward is done once, here)."""
    x = x.clone().requires_grad_()
    out = torch_pool(x, kernel_size, stride)

    def run():
        return torch.autograd.grad(out, x, dout, retain_graph=True)

    return run


def _torch_forward_backward(torch_pool, x: torch.Tensor, dout: torch.Tensor, kernel_size, stride):
    x = x.clone().requires_grad_()

    def run():
        return torch.autograd.grad(torch_pool(x, kernel_size, stride), x, dout)

    return run


def _rows_for(x: torch.Tensor, kernel_size: int, stride: int, naive: bool, repeats: int):
    ours_max, ours_avg = (max_pool2d_naive, avg_pool2d_naive) if naive else (max_pool2d, avg_pool2d)
    ours_max_bw, ours_avg_bw = (
        (max_pool2d_backward_naive, avg_pool2d_backward_naive)
        if naive
        else (max_pool2d_backward, avg_pool2d_backward)
    )
    k, s = kernel_size, stride
    dout = torch.randn_like(F.max_pool2d(x, k, s))
    cases = {
        "max fwd": (lambda: ours_max(x, k, s), lambda: F.max_pool2d(x, k, s)),
        "avg fwd": (lambda: ours_avg(x, k, s), lambda: F.avg_pool2d(x, k, s)),
        "max bwd": (
            lambda: ours_max_bw(dout, x, k, s),
            _torch_backward(F.max_pool2d, x, dout, k, s),
        ),
        "avg bwd": (
            lambda: ours_avg_bw(dout, x, k, s),
            _torch_backward(F.avg_pool2d, x, dout, k, s),
        ),
        "max fwd+bwd": (
            lambda: (ours_max(x, k, s), ours_max_bw(dout, x, k, s)),
            _torch_forward_backward(F.max_pool2d, x, dout, k, s),
        ),
        "avg fwd+bwd": (
            lambda: (ours_avg(x, k, s), ours_avg_bw(dout, x, k, s)),
            _torch_forward_backward(F.avg_pool2d, x, dout, k, s),
        ),
    }
    shape = "x".join(str(n) for n in x.shape)
    rows = []
    for name, (ours, reference) in cases.items():
        ours_s, ref_s, ratio = compare(ours, reference, repeats=repeats)
        rows.append((f"{name:<11} {shape} k{k} s{s}", ours_s, ref_s, ratio))
    return rows


def main() -> None:
    torch.manual_seed(0)
    print(f"CPU, float32, {torch.get_num_threads()} threads; ratio = ours / torch")
    rows = []
    for shape in SHAPES:
        x = torch.randn(shape)
        for kernel_size, stride in SETTINGS:
            rows += _rows_for(x, kernel_size, stride, naive=False, repeats=7)
    print_table("vectorised pooling vs torch.nn.functional / autograd", rows)

    x = torch.randn(NAIVE_SHAPE)
    rows = []
    for kernel_size, stride in SETTINGS:
        rows += _rows_for(x, kernel_size, stride, naive=True, repeats=3)
    print_table("naive pooling (a Python loop over output windows) vs torch", rows)


if __name__ == "__main__":
    main()
