"""Gradients of conv2d against torch.autograd: loop and fast versions, and the two dx identities."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from tensor_checks import DEVICES, assert_tensors_close

import course_lib.ops._conv_engine as conv_engine
from course_lib.ops.conv_backward import (
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_input_grad_via_flipped_kernel,
    conv2d_input_grad_via_transpose,
)
from course_lib.ops.padding import resolve_padding

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Gradients sum more products than the forward pass: a looser float32 tolerance."""
    assert_tensors_close(actual, expected, float32_tol=3e-5)


def random_case(rnd: random.Random, small: bool = False) -> dict:
    """Non-square sizes and kernels, stride 1-3, padding, dilation, groups, bias or not."""
    groups = rnd.choice([1, 1, 2, 3])
    c_per_group = rnd.choice([1, 2, 3] if small else [1, 2, 3, 16, 18])
    filters_per_group = rnd.choice([1, 2] if small else [1, 2, 4])
    kernel = (rnd.randint(1, 4), rnd.randint(1, 4))
    dilation = (rnd.randint(1, 2), rnd.randint(1, 2))
    padding = rnd.choice([0, 1, 2, (1, 0), "valid", "same", "full"])
    stride = (1, 1) if padding == "same" else (rnd.randint(1, 3), rnd.randint(1, 3))
    extent = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    max_size = 6 if small else 10
    size = tuple(rnd.randint(e, max(e, max_size)) for e in extent)
    return {
        "batch": rnd.randint(1, 2 if small else 3),
        "c_in": groups * c_per_group,
        "c_out": groups * filters_per_group,
        "size": size,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": rnd.random() < 0.6,
    }


def torch_padding(case: dict):
    if case["padding"] == "full":
        top, _, left, _ = resolve_padding("full", case["kernel"], case["dilation"])
        return (top, left)
    return case["padding"]


def conv_args(case: dict) -> dict:
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


def autograd_case(case: dict, dtype: torch.dtype, seed: int, device: str = "cpu"):
    """Random x, weight, bias, dout and the gradients torch.autograd gives for them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case["batch"], case["c_in"], *case["size"], generator=gen, dtype=dtype)
    w = torch.randn(
        case["c_out"], case["c_in"] // case["groups"], *case["kernel"], generator=gen, dtype=dtype
    )
    b = torch.randn(case["c_out"], generator=gen, dtype=dtype) if case["bias"] else None
    x, w = x.to(device), w.to(device)
    b = None if b is None else b.to(device)
    leaves = [t.clone().requires_grad_() for t in (x, w)]
    b_leaf = None if b is None else b.clone().requires_grad_()
    out = F.conv2d(
        leaves[0],
        leaves[1],
        b_leaf,
        case["stride"],
        torch_padding(case),
        case["dilation"],
        case["groups"],
    )
    dout = torch.randn(out.shape, generator=gen, dtype=dtype).to(device)
    inputs = [*leaves] + ([b_leaf] if b_leaf is not None else [])
    grads = torch.autograd.grad(out, inputs, dout)
    expected = (grads[0], grads[1], grads[2] if b_leaf is not None else None)
    return (x, w, b, dout), expected


def check_grads(fn, case: dict, dtype: torch.dtype, seed: int) -> tuple:
    (x, w, b, dout), (dx_ref, dw_ref, db_ref) = autograd_case(case, dtype, seed)
    before = [t.clone() for t in (x, w, dout)]
    dx, dw, db = fn(dout, x, w, b, **conv_args(case))
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    if b is None:
        assert db is None
    else:
        assert_close(db, db_ref)
    for tensor, copy in zip((x, w, dout), before, strict=True):
        torch.testing.assert_close(tensor, copy, rtol=0, atol=0)  # inputs unmodified
    return dx, dw, db


def test_conv2d_backward_fast_matches_autograd(dtype: torch.dtype) -> None:
    rnd = random.Random(30)
    for seed in range(40):
        check_grads(conv2d_backward, random_case(rnd), dtype, seed)


def test_conv2d_backward_naive_matches_autograd_and_fast(dtype: torch.dtype) -> None:
    rnd = random.Random(31)
    for seed in range(12):
        case = random_case(rnd, small=True)
        dx, dw, db = check_grads(conv2d_backward_naive, case, dtype, seed)
        (x, w, b, dout), _ = autograd_case(case, dtype, seed)
        fast = conv2d_backward(dout, x, w, b, **conv_args(case))
        assert_close(fast[0], dx)
        assert_close(fast[1], dw)
        if db is not None:
            assert_close(fast[2], db)


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_backward(stride: int, dtype: torch.dtype) -> None:
    case = {
        "batch": 2,
        "c_in": 6,
        "c_out": 12,
        "size": (9, 8),
        "kernel": (7, 7),
        "stride": (stride, stride),
        "padding": 3,
        "dilation": (1, 1),
        "groups": 6,
        "bias": True,
    }
    check_grads(conv2d_backward, case, dtype, seed=stride)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_backward_many_channels(stride: int, dtype: torch.dtype) -> None:
    """The per-tap GEMM path (many channels per group), with sizes the stride doesn't divide."""
    case = {
        "batch": 3,
        "c_in": 40,
        "c_out": 6,
        "size": (12, 9),
        "kernel": (3, 2),
        "stride": (stride, stride),
        "padding": (1, 0),
        "dilation": (1, 2),
        "groups": 2,
        "bias": True,
    }
    check_grads(conv2d_backward, case, dtype, seed=stride)


@pytest.mark.parametrize("channels", [2, 24])
def test_backward_does_not_depend_on_the_chunking(monkeypatch, channels: int) -> None:
    monkeypatch.setattr(conv_engine, "_CHUNK_BYTES", 64)
    monkeypatch.setattr(conv_engine, "_MIN_CHUNK", 5)
    case = {
        "batch": 3,
        "c_in": channels,
        "c_out": 4,
        "size": (7, 8),
        "kernel": (3, 3),
        "stride": (2, 1),
        "padding": 1,
        "dilation": (1, 1),
        "groups": 1,
        "bias": False,
    }
    check_grads(conv2d_backward, case, torch.float64, seed=0)


def test_overlapping_windows_add_up() -> None:
    """1x4 input, 1x2 kernel of ones, stride 1: the middle pixels are in two windows."""
    x = torch.zeros(1, 1, 1, 4)
    w = torch.ones(1, 1, 1, 2)
    dout = torch.ones(1, 1, 1, 3)
    for fn in (conv2d_backward, conv2d_backward_naive):
        dx, _, _ = fn(dout, x, w)
        assert torch.equal(dx, torch.tensor([[[[1.0, 2.0, 2.0, 1.0]]]]))


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_follow_the_input_device(device: str) -> None:
    case = random_case(random.Random(2)) | {"bias": True}
    (x, w, b, dout), _ = autograd_case(case, torch.float32, 0, device)
    for fn in (conv2d_backward, conv2d_backward_naive):
        if fn is conv2d_backward_naive and x.numel() > 2000:
            continue
        grads = fn(dout, x, w, b, **conv_args(case))
        assert all(g.device == x.device for g in grads)


# --------------------------------------------------------------------------------------------
# dx as a transposed convolution and as a full correlation with the flipped kernel
# --------------------------------------------------------------------------------------------


def test_input_grad_via_transpose_matches_autograd(dtype: torch.dtype) -> None:
    """Strides 1-3 with sizes the stride doesn't divide: output_padding restores the size."""
    rnd = random.Random(40)
    for seed in range(25):
        case = random_case(rnd)
        if case["padding"] == "same" and any(k % 2 == 0 for k in case["kernel"]):
            case["padding"] = "valid"  # even "same" kernels pad asymmetrically
        (x, w, _, dout), (dx_ref, _, _) = autograd_case(case, dtype, seed)
        dx = conv2d_input_grad_via_transpose(dout, w, x.shape[2:], **conv_args(case))
        assert_close(dx, dx_ref)


def test_input_grad_via_flipped_kernel_matches_autograd(dtype: torch.dtype) -> None:
    rnd = random.Random(41)
    for seed in range(25):
        case = random_case(rnd) | {"stride": (1, 1)}
        (x, w, _, dout), (dx_ref, _, _) = autograd_case(case, dtype, seed)
        dx = conv2d_input_grad_via_flipped_kernel(dout, w, x.shape[2:], **conv_args(case))
        assert_close(dx, dx_ref)


def test_flipped_kernel_with_padding_wider_than_the_kernel() -> None:
    """padding > dilation*(k - 1): dout is cropped instead of padded."""
    case = {
        "batch": 1,
        "c_in": 2,
        "c_out": 3,
        "size": (4, 5),
        "kernel": (1, 2),
        "stride": (1, 1),
        "padding": 2,
        "dilation": (1, 1),
        "groups": 1,
        "bias": False,
    }
    (x, w, _, dout), (dx_ref, _, _) = autograd_case(case, torch.float64, 3)
    dx = conv2d_input_grad_via_flipped_kernel(dout, w, x.shape[2:], padding=2)
    assert_close(dx, dx_ref)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [conv2d_backward, conv2d_backward_naive])
def test_backward_bad_inputs(fn) -> None:
    x, w = torch.zeros(2, 4, 6, 6), torch.zeros(3, 4, 3, 3)
    dout = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"expected dout of shape .* = \(2, 3, 4, 4\)"):
        fn(torch.zeros(2, 3, 5, 4), x, w)
    with pytest.raises(ValueError, match=r"expected dout with 4 dims"):
        fn(torch.zeros(3, 4, 4), x, w)
    with pytest.raises(ValueError, match=r"expected x with 4 dims \(N, C, H, W\)"):
        fn(dout, torch.zeros(4, 6, 6), w)
    with pytest.raises(ValueError, match="channel mismatch: x has C_in=4 channels"):
        fn(dout, x, torch.zeros(3, 2, 3, 3))
    with pytest.raises(TypeError, match=r"dout has dtype torch\.float64 but x has torch\.float32"):
        fn(dout.double(), x, w)
    with pytest.raises(ValueError, match="larger than the padded input"):
        fn(dout, x, torch.zeros(3, 4, 7, 7))


def test_input_grad_bad_inputs() -> None:
    w = torch.zeros(3, 4, 3, 3)
    dout = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="needs stride 1, got stride=\\(2, 2\\)"):
        conv2d_input_grad_via_flipped_kernel(torch.zeros(2, 3, 2, 2), w, (6, 6), stride=2)
    with pytest.raises(ValueError, match="same padding on opposite sides"):
        conv2d_input_grad_via_transpose(
            torch.zeros(2, 3, 6, 6), torch.zeros(3, 4, 2, 2), (6, 6), padding="same"
        )
    with pytest.raises(ValueError, match=r"dout has spatial size \(4, 4\).*gives \(5, 5\)"):
        conv2d_input_grad_via_transpose(dout, w, (7, 7))
    with pytest.raises(ValueError, match="channel mismatch: dout has 3 channels"):
        conv2d_input_grad_via_transpose(dout, torch.zeros(5, 4, 3, 3), (6, 6))
    with pytest.raises(ValueError, match="input_size must be positive"):
        conv2d_input_grad_via_transpose(dout, w, (0, 6))
