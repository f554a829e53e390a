"""Convolution operators against numpy, scipy and torch.nn.functional, loop and fast versions."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from tensor_checks import DEVICES
from tensor_checks import assert_tensors_close as assert_close

import course_lib.ops._conv_engine as conv_engine
import course_lib.ops._workspace as workspace
from course_lib.ops.conv import (
    conv2d,
    conv2d_naive,
    conv_transpose2d,
    conv_transpose2d_naive,
    convolve1d,
    convolve1d_naive,
    convolve2d,
    corr2d,
    corr2d_naive,
    correlate1d,
    correlate1d_naive,
)
from course_lib.ops.padding import resolve_padding

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def random_conv_case(rnd: random.Random, small: bool = False) -> dict:
    """A random conv2d problem: non-square sizes and kernels, stride, padding, dilation, groups."""
    groups = rnd.choice([1, 1, 2, 3])
    per_group_choices = [1, 2, 3] if small else [1, 2, 3, 16, 20]
    c_per_group = rnd.choice(per_group_choices)
    filters_per_group = rnd.choice([1, 2] if small else [1, 2, 5])
    kh, kw = rnd.randint(1, 4), rnd.randint(1, 4)
    dilation = (rnd.randint(1, 2), rnd.randint(1, 2))
    padding = rnd.choice([0, 1, 2, (2, 0), (0, 1), "valid", "same", "full"])
    stride = (1, 1) if padding == "same" else (rnd.randint(1, 3), rnd.randint(1, 3))
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    max_size = 7 if small else 11
    height = rnd.randint(extent[0], max(extent[0], max_size))
    width = rnd.randint(extent[1], max(extent[1], max_size))
    return {
        "batch": rnd.randint(1, 2 if small else 3),
        "c_in": groups * c_per_group,
        "c_out": groups * filters_per_group,
        "size": (height, width),
        "kernel": (kh, kw),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": rnd.random() < 0.6,
    }


def make_tensors(case: dict, dtype: torch.dtype, seed: int, device: str = "cpu"):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case["batch"], case["c_in"], *case["size"], generator=gen, dtype=dtype)
    c_per_group = case["c_in"] // case["groups"]
    w = torch.randn(case["c_out"], c_per_group, *case["kernel"], generator=gen, dtype=dtype)
    b = torch.randn(case["c_out"], generator=gen, dtype=dtype) if case["bias"] else None
    return x.to(device), w.to(device), None if b is None else b.to(device)


def torch_padding(case: dict):
    """F.conv2d knows "same" and "valid"; "full" becomes the pair it stands for."""
    if case["padding"] == "full":
        top, _, left, _ = resolve_padding("full", case["kernel"], case["dilation"])
        return (top, left)
    return case["padding"]


def conv_args(case: dict) -> dict:
    keys = ("stride", "padding", "dilation", "groups")
    return {k: case[k] for k in keys}


# --------------------------------------------------------------------------------------------
# 1-D
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_correlate1d_and_convolve1d_match_numpy(mode: str, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(0)
    for _ in range(12):
        length = int(rng.integers(1, 20))
        kernel_length = int(rng.integers(1, length + 1))
        x_np, k_np = rng.standard_normal(length), rng.standard_normal(kernel_length)
        x, kernel = torch.tensor(x_np, dtype=dtype), torch.tensor(k_np, dtype=dtype)
        expected_corr = torch.tensor(np.correlate(x_np, k_np, mode), dtype=dtype)
        expected_conv = torch.tensor(np.convolve(x_np, k_np, mode), dtype=dtype)
        assert_close(correlate1d(x, kernel, mode), expected_corr)
        assert_close(correlate1d_naive(x, kernel, mode), expected_corr)
        assert_close(convolve1d(x, kernel, mode), expected_conv)
        assert_close(convolve1d_naive(x, kernel, mode), expected_conv)


def test_full_mode_accepts_a_kernel_longer_than_the_signal() -> None:
    x, kernel = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0, -1.0, 3.0])
    expected = torch.tensor(np.convolve([1.0, 2.0], [1.0, 0.0, -1.0, 3.0]), dtype=torch.float32)
    assert_close(convolve1d(x, kernel, "full"), expected)


def test_convolution_flips_the_kernel() -> None:
    """With an asymmetric kernel, convolution and correlation differ by the flip."""
    x = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])  # an impulse
    kernel = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(convolve1d(x, kernel, "same"), torch.tensor([0.0, 1.0, 2.0, 3.0, 0.0]))
    assert torch.equal(correlate1d(x, kernel, "same"), torch.tensor([0.0, 3.0, 2.0, 1.0, 0.0]))


def test_1d_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"expected x with 1 dims \(L,\), got shape \(2, 3\)"):
        correlate1d(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="kernel of length 4 is longer than x of length 3"):
        convolve1d(torch.zeros(3), torch.zeros(4), "valid")
    with pytest.raises(ValueError, match="mode must be one of"):
        correlate1d_naive(torch.zeros(3), torch.zeros(2), "circular")
    with pytest.raises(TypeError, match=r"kernel has dtype torch\.float64 but x has"):
        convolve1d(torch.zeros(3), torch.zeros(2, dtype=torch.float64))


# --------------------------------------------------------------------------------------------
# 2-D single channel
# --------------------------------------------------------------------------------------------


def test_corr2d_matches_conv2d(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    for height, width, kh, kw in [(5, 7, 2, 3), (6, 4, 3, 1), (4, 4, 4, 4), (9, 3, 2, 2)]:
        x = torch.randn(height, width, generator=gen, dtype=dtype)
        kernel = torch.randn(kh, kw, generator=gen, dtype=dtype)
        expected = F.conv2d(x[None, None], kernel[None, None])[0, 0]
        assert_close(corr2d(x, kernel), expected)
        assert_close(corr2d_naive(x, kernel), expected)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_convolve2d_matches_scipy(mode: str, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(4)
    for height, width, kh, kw in [(5, 7, 2, 3), (6, 4, 3, 1), (8, 8, 4, 4), (7, 5, 3, 2)]:
        x_np, k_np = rng.standard_normal((height, width)), rng.standard_normal((kh, kw))
        expected = torch.tensor(scipy.signal.convolve2d(x_np, k_np, mode), dtype=dtype)
        out = convolve2d(torch.tensor(x_np, dtype=dtype), torch.tensor(k_np, dtype=dtype), mode)
        assert_close(out, expected)


def test_convolve2d_is_corr2d_with_the_flipped_kernel() -> None:
    x = torch.arange(20.0).reshape(4, 5)
    kernel = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    assert_close(convolve2d(x, kernel), corr2d(x, kernel.flip(0, 1)))
    assert not torch.allclose(convolve2d(x, kernel), corr2d(x, kernel))


def test_2d_single_channel_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"expected x with 2 dims \(H, W\), got shape \(1, 4, 4\)"):
        corr2d(torch.zeros(1, 4, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"kernel of size \(3, 2\) is larger than the input"):
        corr2d_naive(torch.zeros(2, 5), torch.zeros(3, 2))


# --------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------


def test_conv2d_fast_matches_torch_on_random_cases(dtype: torch.dtype) -> None:
    rnd = random.Random(10)
    for seed in range(40):
        case = random_conv_case(rnd)
        x, w, b = make_tensors(case, dtype, seed)
        before = (x.clone(), w.clone(), None if b is None else b.clone())
        out = conv2d(x, w, b, **conv_args(case))
        expected = F.conv2d(
            x, w, b, case["stride"], torch_padding(case), case["dilation"], case["groups"]
        )
        assert_close(out, expected)
        torch.testing.assert_close(x, before[0], rtol=0, atol=0)  # inputs unmodified
        torch.testing.assert_close(w, before[1], rtol=0, atol=0)
        if b is not None:
            torch.testing.assert_close(b, before[2], rtol=0, atol=0)


def test_conv2d_naive_matches_torch_and_fast(dtype: torch.dtype) -> None:
    rnd = random.Random(11)
    for seed in range(15):
        case = random_conv_case(rnd, small=True)
        x, w, b = make_tensors(case, dtype, seed)
        before = x.clone()
        out = conv2d_naive(x, w, b, **conv_args(case))
        expected = F.conv2d(
            x, w, b, case["stride"], torch_padding(case), case["dilation"], case["groups"]
        )
        assert_close(out, expected)
        assert_close(conv2d(x, w, b, **conv_args(case)), out)
        torch.testing.assert_close(x, before, rtol=0, atol=0)


@pytest.mark.parametrize("kernel_size", [3, 7])
def test_depthwise_conv2d(kernel_size: int, dtype: torch.dtype) -> None:
    """groups = C_in (ConvNeXt's depthwise 7x7), also with a channel multiplier of 2."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 6, 10, 9, generator=gen, dtype=dtype)
    for multiplier in (1, 2):
        w = torch.randn(6 * multiplier, 1, kernel_size, kernel_size, generator=gen, dtype=dtype)
        b = torch.randn(6 * multiplier, generator=gen, dtype=dtype)
        pad = kernel_size // 2
        expected = F.conv2d(x, w, b, padding=pad, groups=6)
        assert_close(conv2d(x, w, b, padding=pad, groups=6), expected)
        assert_close(conv2d(x, w, b, padding="same", groups=6), expected)
    small = x[:1, :, :5, :5]
    w = torch.randn(6, 1, 3, 3, generator=gen, dtype=dtype)
    assert_close(conv2d_naive(small, w, groups=6), F.conv2d(small, w, groups=6))


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv2d_many_channels_uses_the_shifted_gemm_path(stride: int, dtype: torch.dtype) -> None:
    """Enough channels per group for the per-tap GEMMs; batch of several samples."""
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(3, 40, 13, 11, generator=gen, dtype=dtype)
    w = torch.randn(12, 20, 3, 2, generator=gen, dtype=dtype)
    b = torch.randn(12, generator=gen, dtype=dtype)
    expected = F.conv2d(x, w, b, stride, (1, 2), (2, 1), 2)
    assert_close(conv2d(x, w, b, stride, (1, 2), (2, 1), 2), expected)


@pytest.mark.parametrize(
    ("shape", "stride", "padding"),
    [
        ((2, 16, 2, 2), 3, 2),  # tiny input: some stride phases hold no pixel at all
        ((2, 16, 1, 3), (3, 2), (2, 1)),
        ((3, 32, 9, 8), 2, 1),  # many channels, stride 2, with bias
    ],
)
def test_conv2d_tiny_inputs_and_empty_stride_phases(shape, stride, padding, dtype) -> None:
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(*shape, generator=gen, dtype=dtype)
    w = torch.randn(6, shape[1], 3, 3, generator=gen, dtype=dtype)
    b = torch.randn(6, generator=gen, dtype=dtype)
    assert_close(conv2d(x, w, b, stride, padding), F.conv2d(x, w, b, stride, padding))
    assert_close(conv2d(x, w, None, stride, padding), F.conv2d(x, w, None, stride, padding))


@pytest.mark.parametrize("chunk_bytes", [64, 20_000, 50_000])
@pytest.mark.parametrize("channels", [3, 32])
def test_conv2d_does_not_depend_on_the_chunking(monkeypatch, channels: int, chunk_bytes) -> None:
    """The work is split in cache-sized pieces: bands of rows of one sample (64 bytes), one
    sample per piece by im2col (20 kB) or by shifted GEMMs (50 kB, 32 channels). Tiny pieces
    give the same result."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, channels, 9, 10, generator=gen, dtype=torch.float64)
    w = torch.randn(5, channels, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(5, generator=gen, dtype=torch.float64)
    expected = F.conv2d(x, w, b, stride=(1, 2), padding=1)
    workspace.release()  # plans made with the usual piece size would be reused otherwise
    monkeypatch.setattr(conv_engine, "_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_engine, "_MIN_CHUNK", 7)
    try:
        assert_close(conv2d(x, w, b, stride=(1, 2), padding=1), expected)
        assert_close(conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
        assert_close(conv2d(x[:2], w, b, stride=2), F.conv2d(x[:2], w, b, stride=2))
    finally:
        workspace.release()


@pytest.mark.parametrize("sw", [1, 2, 3, 4])
@pytest.mark.parametrize("dw", [1, 2, 3])
def test_column_tap_groups_cover_every_kernel_column_once(sw: int, dw: int) -> None:
    """Each group of kernel columns is one strided view: kj and its offset q step evenly."""
    for kw in range(1, 8):
        seen = {}
        for b, kj_slice, count, q0, q_step in conv_engine._column_tap_groups(kw, dw, sw):
            kjs = list(range(kw))[kj_slice]
            assert len(kjs) == count
            for index, kj in enumerate(kjs):
                assert divmod(kj * dw, sw) == (q0 + index * q_step, b)
                seen[kj] = b
        assert sorted(seen) == list(range(kw))


def test_conv2d_plans_are_reused_with_new_values() -> None:
    """Sizes that come back reuse their plan (buffers, zero padding, views); the values are
    new each time, and other sizes in between do not disturb it."""
    workspace.release()
    gen = torch.Generator().manual_seed(12)
    w = torch.randn(6, 3, 3, 3, generator=gen)
    b = torch.randn(6, generator=gen)
    kept = []
    for step in range(4):
        for shape, stride in (((4, 3, 11, 10), 2), ((2, 3, 7, 7), 1), ((4, 3, 11, 10), 2)):
            x = torch.randn(*shape, generator=gen) * (step + 1)
            bias = b if step % 2 else None
            out = conv2d(x, w, bias, stride, 1)
            assert_close(out, F.conv2d(x, w, bias, stride, 1))
        kept.append(workspace.kept_bytes())
    # Steps 0 and 1 make the plans (without and with a bias); steps 2 and 3 only reuse them.
    assert 0 < kept[0] < kept[1] == kept[2] == kept[3]
    # The output is the caller's own tensor, not a view of a kept buffer.
    first = conv2d(x, w, b, 2, 1)
    copy = first.clone()
    conv2d(torch.randn(4, 3, 11, 10, generator=gen), w, b, 2, 1)
    torch.testing.assert_close(first, copy, rtol=0, atol=0)
    workspace.release()
    assert workspace.kept_bytes() == 0


def test_kept_buffers_stay_within_their_limit(monkeypatch) -> None:
    workspace.release()
    monkeypatch.setattr(workspace, "KEEP_BYTES", 40_000)
    gen = torch.Generator().manual_seed(13)
    w = torch.randn(4, 2, 3, 3, generator=gen)
    try:
        for size in range(6, 30, 3):
            x = torch.randn(3, 2, size, size, generator=gen)
            assert_close(conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))
            assert workspace.kept_bytes() <= 40_000
    finally:
        workspace.release()


def test_conv2d_in_several_threads_at_once() -> None:
    """Each thread has its own plans: concurrent calls on the same sizes do not mix."""
    gen = torch.Generator().manual_seed(14)
    w = torch.randn(5, 3, 3, 3, generator=gen)
    inputs = [torch.randn(3, 3, 12, 12, generator=gen) for _ in range(4)]
    expected = [F.conv2d(x, w, None, 2, 1) for x in inputs]
    failures = []

    def work(index: int) -> None:
        for _ in range(30):
            out = conv2d(inputs[index], w, None, 2, 1)
            if not torch.allclose(out, expected[index], atol=1e-5):
                failures.append(index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_fast_operators_accept_tensors_that_require_grad() -> None:
    """Parameters of a model require grad; the fast operators compute values without autograd
    history (the backward functions give the gradients) instead of failing inside a GEMM."""
    gen = torch.Generator().manual_seed(15)
    x = torch.randn(2, 3, 8, 9, generator=gen).requires_grad_()
    w = torch.randn(4, 3, 3, 3, generator=gen).requires_grad_()
    b = torch.randn(4, generator=gen).requires_grad_()
    out = conv2d(x, w, b, 2, 1)
    assert not out.requires_grad
    assert_close(out, F.conv2d(x, w, b, 2, 1).detach())
    up = conv_transpose2d(out, w, stride=2)
    assert_close(up, F.conv_transpose2d(out, w, stride=2).detach())


def test_conv2d_on_non_contiguous_tensors(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(16)
    x = torch.randn(3, 4, 10, 9, generator=gen, dtype=dtype)
    w = torch.randn(6, 4, 3, 3, generator=gen, dtype=dtype)
    for x_view, w_view in (
        (x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)),
        (x.transpose(2, 3), w.transpose(2, 3)),
        (x[:, :, ::2], w.flip(3)),
    ):
        for stride in (1, 2):
            expected = F.conv2d(x_view, w_view, None, stride, 1)
            assert_close(conv2d(x_view, w_view, None, stride, 1), expected)


def test_conv2d_known_values() -> None:
    """A hand-checkable case: a 2x2 box filter with stride 2 sums disjoint blocks."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    w = torch.ones(1, 1, 2, 2)
    out = conv2d(x, w, bias=torch.tensor([0.5]), stride=2)
    assert torch.equal(out, torch.tensor([[[[10.5, 18.5], [42.5, 50.5]]]]))


@pytest.mark.parametrize("device", DEVICES)
def test_fast_output_follows_the_input_device(device: str) -> None:
    x = torch.randn(2, 3, 6, 5, device=device)
    w = torch.randn(4, 3, 3, 2, device=device)
    out = conv2d(x, w, torch.randn(4, device=device), stride=2, padding=1)
    assert out.device == x.device
    assert conv_transpose2d(out, w, stride=2).device == x.device
    signal = torch.randn(9, device=device)
    assert convolve1d(signal, signal[:3], "same").device == signal.device
    assert convolve2d(x[0, 0], w[0, 0], "full").device == x.device


@pytest.mark.parametrize("device", DEVICES)
def test_naive_output_follows_the_input_device(device: str) -> None:
    x = torch.randn(1, 2, 4, 4, device=device)
    w = torch.randn(3, 2, 2, 2, device=device)
    assert conv2d_naive(x, w).device == x.device
    assert conv_transpose2d_naive(x, w.transpose(0, 1)).device == x.device


# --------------------------------------------------------------------------------------------
# conv_transpose2d
# --------------------------------------------------------------------------------------------


def random_transpose_case(rnd: random.Random, small: bool = False) -> dict:
    groups = rnd.choice([1, 1, 2, 3])
    stride = (rnd.randint(1, 3), rnd.randint(1, 3))
    dilation = (rnd.randint(1, 2), rnd.randint(1, 2))
    kernel = (rnd.randint(1, 4), rnd.randint(1, 4))
    padding = (rnd.randint(0, 2), rnd.randint(0, 2))
    output_padding = tuple(
        rnd.randint(0, max(s, d) - 1) for s, d in zip(stride, dilation, strict=True)
    )
    size = (rnd.randint(2, 5 if small else 8), rnd.randint(2, 5 if small else 8))
    out_size = [
        (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        for n, s, p, d, k, op in zip(
            size, stride, padding, dilation, kernel, output_padding, strict=True
        )
    ]
    if min(out_size) < 1:
        padding = (0, 0)
    c_per_group = rnd.choice([1, 2] if small else [1, 2, 17])
    return {
        "batch": rnd.randint(1, 2),
        "c_in": groups * c_per_group,
        "c_out_per_group": rnd.choice([1, 2, 3]),
        "size": size,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
        "bias": rnd.random() < 0.5,
    }


def run_transpose_case(case: dict, dtype: torch.dtype, seed: int, fn) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case["batch"], case["c_in"], *case["size"], generator=gen, dtype=dtype)
    w = torch.randn(
        case["c_in"], case["c_out_per_group"], *case["kernel"], generator=gen, dtype=dtype
    )
    c_out = case["c_out_per_group"] * case["groups"]
    b = torch.randn(c_out, generator=gen, dtype=dtype) if case["bias"] else None
    before = x.clone()
    args = (case["stride"], case["padding"], case["output_padding"])
    expected = F.conv_transpose2d(x, w, b, *args, case["groups"], case["dilation"])
    out = fn(x, w, b, *args, case["dilation"], case["groups"])
    assert_close(out, expected)
    torch.testing.assert_close(x, before, rtol=0, atol=0)


def test_conv_transpose2d_fast_matches_torch(dtype: torch.dtype) -> None:
    rnd = random.Random(20)
    for seed in range(30):
        run_transpose_case(random_transpose_case(rnd), dtype, seed, conv_transpose2d)


def test_conv_transpose2d_naive_matches_torch(dtype: torch.dtype) -> None:
    rnd = random.Random(21)
    for seed in range(12):
        case = random_transpose_case(rnd, small=True)
        run_transpose_case(case, dtype, seed, conv_transpose2d_naive)


def test_conv_transpose2d_upsamples() -> None:
    """Stride 2, a 2x2 kernel of ones: every input pixel becomes a 2x2 block."""
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = conv_transpose2d(x, torch.ones(1, 1, 2, 2), stride=2)
    expected = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(out, expected)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [conv2d, conv2d_naive])
def test_conv2d_bad_inputs(fn) -> None:
    x, w = torch.zeros(2, 4, 8, 8), torch.zeros(6, 2, 3, 3)
    with pytest.raises(
        ValueError, match=r"expected x with 4 dims \(N, C, H, W\), got shape \(3, 32, 32\)"
    ):
        fn(torch.zeros(3, 32, 32), w)
    with pytest.raises(ValueError, match=r"expected weight with 4 dims"):
        fn(x, torch.zeros(6, 4, 3))
    with pytest.raises(ValueError, match="channel mismatch: x has C_in=4 channels"):
        fn(x, torch.zeros(6, 3, 3, 3))
    with pytest.raises(ValueError, match=r"with groups=2 the weight needs C_in/groups=2"):
        fn(x, torch.zeros(6, 4, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"groups=3 must divide the input channels.*C_in=4"):
        fn(x, torch.zeros(6, 1, 3, 3), groups=3)
    with pytest.raises(ValueError, match=r"groups=4 must divide the output channels.*C_out=6"):
        fn(x, torch.zeros(6, 1, 3, 3), groups=4)
    with pytest.raises(ValueError, match="groups must be a positive int, got 0"):
        fn(x, w, groups=0)
    with pytest.raises(ValueError, match=r"covers \(9, 9\) pixels, larger than the padded input"):
        fn(x, torch.zeros(6, 4, 9, 9))
    with pytest.raises(ValueError, match=r"covers \(9, 9\) pixels.*\(8, 8\)"):
        fn(x, torch.zeros(6, 4, 5, 5), dilation=2)
    with pytest.raises(ValueError, match="stride must be positive"):
        fn(x, torch.zeros(6, 4, 3, 3), stride=0)
    with pytest.raises(ValueError, match="dilation must be positive"):
        fn(x, torch.zeros(6, 4, 3, 3), dilation=(1, -1))
    with pytest.raises(ValueError, match="padding must be non-negative"):
        fn(x, torch.zeros(6, 4, 3, 3), padding=-1)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        fn(x, torch.zeros(6, 4, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"expected bias of shape \(C_out,\) = \(6,\)"):
        fn(x, torch.zeros(6, 4, 3, 3), torch.zeros(5))
    with pytest.raises(TypeError, match=r"weight has dtype torch\.float64 but x has"):
        fn(x, torch.zeros(6, 4, 3, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="expected x to be float32 or float64"):
        fn(x.long(), torch.zeros(6, 4, 3, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_conv2d_rejects_mixed_devices() -> None:
    with pytest.raises(ValueError, match="weight is on cuda"):
        conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2, device="cuda"))


def test_conv2d_rejects_mixed_devices_on_meta() -> None:
    """Two devices without a GPU: the 'meta' device holds shapes only."""
    with pytest.raises(ValueError, match="weight is on meta but x is on cpu"):
        conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2, device="meta"))


@pytest.mark.parametrize("fn", [conv_transpose2d, conv_transpose2d_naive])
def test_conv_transpose2d_bad_inputs(fn) -> None:
    x, w = torch.zeros(1, 4, 5, 5), torch.zeros(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"expected x with 4 dims \(N, C_in, H, W\)"):
        fn(torch.zeros(4, 5, 5), w)
    with pytest.raises(ValueError, match="channel mismatch: x has C_in=4 channels"):
        fn(x, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="output_padding must be smaller than stride or dilation"):
        fn(x, w, stride=2, output_padding=2)
    with pytest.raises(TypeError, match="takes padding as an int or a pair"):
        fn(x, w, padding="same")
    with pytest.raises(ValueError, match="the output of conv_transpose2d would have size"):
        fn(x, w, padding=4)
    with pytest.raises(ValueError, match="groups=3 must divide the input channels"):
        fn(x, w, groups=3)
    with pytest.raises(ValueError, match=r"expected bias of shape \(C_out,\) = \(6,\)"):
        fn(x, torch.zeros(4, 3, 3, 3), torch.zeros(3), groups=2)
