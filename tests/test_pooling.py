"""Pooling operators and their gradients against torch.nn.functional and autograd."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from course_lib.gradcheck import numerical_gradient, relative_error
from course_lib.ops.pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_backward_naive,
    avg_pool2d_naive,
    global_avg_pool2d,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_backward_naive,
    max_pool2d_naive,
    min_pool2d,
)

MAX_FORWARD = [max_pool2d, max_pool2d_naive]
AVG_FORWARD = [avg_pool2d, avg_pool2d_naive]
MAX_BACKWARD = [max_pool2d_backward, max_pool2d_backward_naive]
AVG_BACKWARD = [avg_pool2d_backward, avg_pool2d_backward_naive]


def pool_cases(seed: int, count: int) -> list[dict]:
    """Random pooling settings within PyTorch's limits: non-square inputs and kernels, strides
    1-3 that need not divide the size, padding up to half the kernel, ceil_mode on and off."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        kh, kw = rng.randint(1, 4), rng.randint(1, 4)
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        ph, pw = rng.randint(0, min(2, kh // 2)), rng.randint(0, min(2, kw // 2))
        cases.append(
            {
                "shape": (
                    rng.randint(1, 3),
                    rng.randint(1, 3),
                    rng.randint(max(1, kh - 2 * ph), 9),
                    rng.randint(max(1, kw - 2 * pw), 9),
                ),
                "kernel_size": (kh, kw),
                "stride": (sh, sw),
                "padding": (ph, pw),
                "ceil_mode": rng.random() < 0.5,
            }
        )
    return cases


def settings(case: dict) -> dict:
    return {k: case[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}


# Hand-picked settings that a weak implementation tends to get wrong.
NAMED_CASES = [
    {"shape": (2, 3, 7, 9), "kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 1)},
    {"shape": (2, 2, 8, 6), "kernel_size": 3, "stride": 1, "padding": 1},  # overlapping
    {"shape": (1, 3, 7, 7), "kernel_size": 3, "stride": 2, "padding": 0, "ceil_mode": True},
    {"shape": (2, 1, 5, 8), "kernel_size": (4, 2), "stride": (3, 1), "padding": (2, 1)},
    {"shape": (3, 2, 6, 5), "kernel_size": 2, "stride": None, "padding": 0, "ceil_mode": True},
    {"shape": (1, 1, 4, 4), "kernel_size": 4, "stride": 1, "padding": 0},  # one window
    {"shape": (2, 2, 5, 4), "kernel_size": 1, "stride": 2, "padding": 0},
]


def torch_settings(case: dict) -> dict:
    out = {
        "kernel_size": case["kernel_size"],
        "padding": case.get("padding", 0),
        "ceil_mode": case.get("ceil_mode", False),
    }
    if case.get("stride") is not None:
        out["stride"] = case["stride"]
    return out


def all_cases(seed: int, count: int) -> list[dict]:
    named = [{"stride": None, "padding": 0, "ceil_mode": False, **c} for c in NAMED_CASES]
    return named + pool_cases(seed, count)


def make_input(shape: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator, kind: str):
    if kind == "random":
        return torch.randn(shape, generator=gen, dtype=dtype)
    if kind == "ties":  # many equal values: the tie rule matters
        return torch.randint(0, 3, shape, generator=gen).to(dtype)
    return torch.full(shape, 1.5, dtype=dtype)  # every window is all-equal


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("max_pool", MAX_FORWARD, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", ["random", "ties"])
def test_max_pool2d_matches_torch(max_pool, kind, dtype, gen):
    for case in all_cases(seed=1, count=20):
        x = make_input(case["shape"], dtype, gen, kind)
        expected = F.max_pool2d(x, **torch_settings(case))
        got = max_pool(x, **settings(case))
        assert got.dtype == dtype
        assert torch.equal(got, expected), case


@pytest.mark.parametrize("avg_pool", AVG_FORWARD, ids=lambda f: f.__name__)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_matches_torch(avg_pool, count_include_pad, dtype, gen):
    for case in all_cases(seed=2, count=20):
        x = torch.randn(case["shape"], generator=gen, dtype=dtype)
        expected = F.avg_pool2d(x, **torch_settings(case), count_include_pad=count_include_pad)
        got = avg_pool(x, **settings(case), count_include_pad=count_include_pad)
        assert got.shape == expected.shape, case
        torch.testing.assert_close(got, expected, msg=str(case))


def test_stride_defaults_to_kernel_size(gen):
    x = torch.randn(2, 3, 9, 7, generator=gen)
    for pool, reference in [(max_pool2d, F.max_pool2d), (avg_pool2d, F.avg_pool2d)]:
        got = pool(x, (3, 2))
        assert got.shape == (2, 3, 3, 3)
        torch.testing.assert_close(got, reference(x, (3, 2)))


def test_max_pool2d_worked_example():
    x = torch.tensor([[1.0, 3, 2, 0], [4, 2, 1, 5], [0, 1, 7, 2], [6, 2, 3, 1]]).view(1, 1, 4, 4)
    expected = torch.tensor([[4.0, 5], [6, 7]]).view(1, 1, 2, 2)
    assert torch.equal(max_pool2d(x, 2), expected)
    assert torch.equal(max_pool2d_naive(x, 2), expected)
    assert torch.equal(min_pool2d(x, 2), torch.tensor([[1.0, 0], [0, 1]]).view(1, 1, 2, 2))
    assert torch.equal(avg_pool2d(x, 2), torch.tensor([[2.5, 2], [2.25, 3.25]]).view(1, 1, 2, 2))


def test_min_pool2d_is_minus_max_of_minus(dtype, gen):
    for case in all_cases(seed=3, count=20):
        x = torch.randn(case["shape"], generator=gen, dtype=dtype)
        expected = -F.max_pool2d(-x, **torch_settings(case))
        assert torch.equal(min_pool2d(x, **settings(case)), expected), case


def test_max_pool2d_propagates_minus_infinity_like_torch():
    x = torch.full((1, 1, 4, 5), float("-inf"))
    x[0, 0, 3, 4] = 2.0
    for pool in MAX_FORWARD:
        assert torch.equal(pool(x, 3, 1, 1, True), F.max_pool2d(x, 3, 1, 1, ceil_mode=True))


@pytest.mark.parametrize("output_size", [1, (3, 4), (5, 7), (7, 10), (4, 3), (9, 12), (2, 1)])
def test_adaptive_pools_match_torch(output_size, dtype, gen):
    x = torch.randn(2, 3, 7, 10, generator=gen, dtype=dtype)
    torch.testing.assert_close(
        adaptive_avg_pool2d(x, output_size), F.adaptive_avg_pool2d(x, output_size)
    )
    assert torch.equal(adaptive_max_pool2d(x, output_size), F.adaptive_max_pool2d(x, output_size))


def test_global_avg_pool2d_returns_n_by_c(dtype, gen):
    x = torch.randn(4, 6, 5, 3, generator=gen, dtype=dtype)
    got = global_avg_pool2d(x)
    assert got.shape == (4, 6)
    torch.testing.assert_close(got, F.adaptive_avg_pool2d(x, 1).flatten(1))


# ---------------------------------------------------------------- backward


@pytest.mark.parametrize("backward", MAX_BACKWARD, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", ["random", "ties", "all_equal"])
def test_max_pool2d_backward_matches_autograd(backward, kind, dtype, gen):
    for case in all_cases(seed=4, count=20):
        x = make_input(case["shape"], dtype, gen, kind).requires_grad_()
        out = F.max_pool2d(x, **torch_settings(case))
        dout = torch.randn(out.shape, generator=gen, dtype=dtype)
        (expected,) = torch.autograd.grad(out, x, dout)
        got = backward(dout, x.detach(), **settings(case))
        # Overlapping windows may add in another order: equal up to rounding.
        torch.testing.assert_close(got, expected, msg=str(case))


def test_max_pool2d_backward_ties_go_to_first_maximum_in_row_major_order():
    x = torch.tensor([[0.0, 2, 2], [2, 1, 2], [2, 2, 0]]).view(1, 1, 3, 3)
    dout = torch.tensor([[1.0, 10], [100, 1000]]).view(1, 1, 2, 2)
    # Windows (stride 1): top-left -> (0, 1); top-right -> (0, 1); bottom-left -> (1, 0);
    # bottom-right -> (1, 2).
    expected = torch.tensor([[0.0, 11, 0], [100, 0, 1000], [0, 0, 0]]).view(1, 1, 3, 3)
    for backward in MAX_BACKWARD:
        assert torch.equal(backward(dout, x, 2, 1), expected)


def test_max_pool2d_backward_minus_infinity_goes_to_first_input_entry():
    x = torch.full((2, 1, 4, 4), float("-inf"))
    x[:, 0, 3, 3] = 1.0
    x.requires_grad_()
    out = F.max_pool2d(x, 3, 1, 1)
    dout = torch.ones_like(out)
    (expected,) = torch.autograd.grad(out, x, dout)
    for backward in MAX_BACKWARD:
        assert torch.equal(backward(dout, x.detach(), 3, 1, 1), expected)


@pytest.mark.parametrize("backward", AVG_BACKWARD, ids=lambda f: f.__name__)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_backward_matches_autograd(backward, count_include_pad, dtype, gen):
    for case in all_cases(seed=5, count=20):
        x = torch.randn(case["shape"], generator=gen, dtype=dtype, requires_grad=True)
        out = F.avg_pool2d(x, **torch_settings(case), count_include_pad=count_include_pad)
        dout = torch.randn(out.shape, generator=gen, dtype=dtype)
        (expected,) = torch.autograd.grad(out, x, dout)
        got = backward(dout, x.detach(), **settings(case), count_include_pad=count_include_pad)
        torch.testing.assert_close(got, expected, msg=str(case))


@pytest.mark.parametrize(
    ("forward", "backward", "extra"),
    [
        (max_pool2d, max_pool2d_backward, {}),
        (max_pool2d_naive, max_pool2d_backward_naive, {}),
        (avg_pool2d, avg_pool2d_backward, {"count_include_pad": False}),
        (avg_pool2d_naive, avg_pool2d_backward_naive, {"count_include_pad": True}),
    ],
    ids=["max", "max_naive", "avg", "avg_naive"],
)
def test_pool_backward_passes_numerical_gradient_check(forward, backward, extra, gen):
    for case in all_cases(seed=6, count=0)[:4]:
        x = torch.randn(case["shape"], generator=gen, dtype=torch.float64)
        out = forward(x, **settings(case), **extra)
        dout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        numerical = numerical_gradient(
            lambda t, c=case, d=dout: (forward(t, **settings(c), **extra) * d).sum(), x
        )
        analytic = backward(dout, x, **settings(case), **extra)
        assert relative_error(analytic, numerical) < 1e-7, case


# ---------------------------------------------------------------- contracts


ALL_CALLS = [
    ("max_pool2d", lambda x, d: max_pool2d(x, 3, 2, 1, True)),
    ("max_pool2d_naive", lambda x, d: max_pool2d_naive(x, 3, 2, 1, True)),
    ("avg_pool2d", lambda x, d: avg_pool2d(x, 3, 2, 1, True, False)),
    ("avg_pool2d_naive", lambda x, d: avg_pool2d_naive(x, 3, 2, 1, True, False)),
    ("min_pool2d", lambda x, d: min_pool2d(x, 3, 2, 1, True)),
    ("adaptive_avg_pool2d", lambda x, d: adaptive_avg_pool2d(x, (2, 3))),
    ("adaptive_max_pool2d", lambda x, d: adaptive_max_pool2d(x, (2, 3))),
    ("global_avg_pool2d", lambda x, d: global_avg_pool2d(x)),
    ("max_pool2d_backward", lambda x, d: max_pool2d_backward(d, x, 3, 2, 1, True)),
    ("max_pool2d_backward_naive", lambda x, d: max_pool2d_backward_naive(d, x, 3, 2, 1, True)),
    ("avg_pool2d_backward", lambda x, d: avg_pool2d_backward(d, x, 3, 2, 1, True)),
    ("avg_pool2d_backward_naive", lambda x, d: avg_pool2d_backward_naive(d, x, 3, 2, 1, True)),
]


@pytest.mark.parametrize("call", [c for _, c in ALL_CALLS], ids=[n for n, _ in ALL_CALLS])
def test_inputs_are_not_modified_and_output_follows_input(call, dtype, gen):
    x = torch.randint(0, 3, (2, 3, 5, 5), generator=gen).to(dtype)
    dout = torch.randn(2, 3, 3, 3, generator=gen, dtype=dtype)
    x_before, dout_before = x.clone(), dout.clone()
    out = call(x, dout)
    assert torch.equal(x, x_before)
    assert torch.equal(dout, dout_before)
    assert out.dtype == dtype and out.device == x.device
    assert out.data_ptr() != x.data_ptr()


def test_kernel_one_returns_a_copy_not_the_input():
    x = torch.randn(1, 2, 3, 3)
    x_before = x.clone()
    for pool in [max_pool2d, avg_pool2d, min_pool2d]:
        out = pool(x, 1)
        assert torch.equal(out, x)
        out += 1  # writing to the result must leave x alone
        assert torch.equal(x, x_before)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: max_pool2d(torch.randn(3, 8, 8), 2), ValueError, r"4 dims \(N, C, H, W\)"),
        (lambda: avg_pool2d(torch.randn(1, 1, 3, 8), 4), ValueError, "larger than the padded"),
        (
            lambda: max_pool2d_naive(torch.randn(1, 1, 3, 3), (2, 6), 1, (0, 1)),
            ValueError,
            "larger than the padded",
        ),
        (lambda: max_pool2d(torch.randn(1, 1, 8, 8), 2, 0), ValueError, "stride must be positive"),
        (lambda: avg_pool2d(torch.randn(1, 1, 8, 8), 0), ValueError, "kernel_size must be"),
        (lambda: max_pool2d(torch.randn(1, 1, 8, 8), 3, 1, 2), ValueError, "at most half"),
        (lambda: avg_pool2d(torch.randn(1, 1, 8, 8), 2, 1, -1), ValueError, "non-negative"),
        (lambda: max_pool2d(torch.randn(1, 1, 8, 8), 2.5), TypeError, "kernel_size must be an int"),
        (lambda: max_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int64), 2), TypeError, "float32"),
        (lambda: max_pool2d([[1.0]], 2), TypeError, "torch.Tensor"),
        (lambda: adaptive_avg_pool2d(torch.randn(2, 5, 5), 2), ValueError, r"\(N, C, H, W\)"),
        (lambda: adaptive_max_pool2d(torch.randn(1, 2, 5, 5), 0), ValueError, "output_size"),
        (lambda: global_avg_pool2d(torch.randn(2, 5)), ValueError, "4 dims"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("backward", MAX_BACKWARD + AVG_BACKWARD, ids=lambda f: f.__name__)
def test_backward_checks_dout(backward):
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3, 3, 3\).*\(2, 3, 4, 4\)"):
        backward(torch.randn(2, 3, 3, 3), x, 2)
    with pytest.raises(ValueError, match="4 dims"):
        backward(torch.randn(2, 3, 16), x, 2)
    with pytest.raises(TypeError, match="dtype"):
        backward(torch.randn(2, 3, 4, 4, dtype=torch.float64), x, 2)
    with pytest.raises(ValueError, match="device"):
        backward(torch.empty(2, 3, 4, 4, device="meta"), x, 2)


@pytest.mark.parametrize("call", [c for _, c in ALL_CALLS], ids=[n for n, _ in ALL_CALLS])
def test_output_follows_the_input_device(call):
    # PyTorch's "meta" device runs shapes only: a tensor created on the wrong device would fail.
    x = torch.empty(2, 3, 5, 5, device="meta")
    dout = torch.empty(2, 3, 3, 3, device="meta")
    assert call(x, dout).device.type == "meta"


@pytest.mark.parametrize("call", [c for _, c in ALL_CALLS], ids=[n for n, _ in ALL_CALLS])
def test_non_contiguous_inputs(call, gen):
    x = torch.randn(2, 3, 5, 5, generator=gen).to(memory_format=torch.channels_last)
    dout = torch.randn(2, 3, 3, 3, generator=gen).transpose(2, 3)
    torch.testing.assert_close(call(x, dout), call(x.contiguous(), dout.contiguous()))
