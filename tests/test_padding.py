"""Padding helpers: the (top, bottom, left, right) rules and zero padding of tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.ops.padding import full_padding, pad2d, resolve_padding, same_padding

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_resolve_padding_int_and_pair() -> None:
    assert resolve_padding(2, 3) == (2, 2, 2, 2)
    assert resolve_padding((1, 0), (3, 1)) == (1, 1, 0, 0)
    assert resolve_padding(0, 5, dilation=2) == (0, 0, 0, 0)


def test_resolve_padding_valid_is_zero() -> None:
    assert resolve_padding("valid", (4, 7), dilation=(2, 3)) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("kernel_size", "dilation", "expected"),
    [
        (3, 1, (1, 1, 1, 1)),
        (5, 1, (2, 2, 2, 2)),
        (4, 1, (1, 2, 1, 2)),  # even kernel: the extra row/column at the bottom/right
        ((2, 3), 1, (0, 1, 1, 1)),
        (3, 2, (2, 2, 2, 2)),
        (4, (1, 3), (1, 2, 4, 5)),
    ],
)
def test_same_padding(kernel_size, dilation, expected) -> None:
    assert same_padding(kernel_size, dilation) == expected
    assert resolve_padding("same", kernel_size, dilation) == expected


@pytest.mark.parametrize(
    ("kernel_size", "dilation", "expected"),
    [(3, 1, (2, 2, 2, 2)), ((2, 5), 1, (1, 1, 4, 4)), (3, (2, 1), (4, 4, 2, 2))],
)
def test_full_padding(kernel_size, dilation, expected) -> None:
    assert full_padding(kernel_size, dilation) == expected
    assert resolve_padding("full", kernel_size, dilation) == expected


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel_size", [(1, 1), (2, 2), (3, 4), (4, 3), (5, 2)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1), (1, 3)])
def test_same_padding_matches_pytorch(kernel_size, dilation) -> None:
    """Padding by same_padding then a valid conv equals PyTorch's padding='same'."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 9, 8, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 2, *kernel_size, generator=gen, dtype=torch.float64)
    top, bottom, left, right = same_padding(kernel_size, dilation)
    ours = F.conv2d(F.pad(x, (left, right, top, bottom)), w, dilation=dilation)
    expected = F.conv2d(x, w, padding="same", dilation=dilation)
    assert ours.shape == (x.shape[0], 3, *x.shape[2:])
    torch.testing.assert_close(ours, expected)


def test_full_padding_gives_every_overlap() -> None:
    """With full padding the output is H + dilation*(k - 1) rows: every partial overlap."""
    x = torch.ones(1, 1, 5, 6, dtype=torch.float64)
    w = torch.ones(1, 1, 3, 2, dtype=torch.float64)
    top, bottom, left, right = full_padding((3, 2))
    out = F.conv2d(F.pad(x, (left, right, top, bottom)), w)
    assert out.shape == (1, 1, 7, 7)
    assert out[0, 0, 0, 0] == 1.0  # the corner: only one pixel overlaps
    assert out[0, 0, 3, 3] == 6.0  # the middle: the whole kernel overlaps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "padding", [0, 1, (2, 0), (0, 3), (1, 2, 3, 0), (0, 0, 0, 4)], ids=lambda p: str(p)
)
def test_pad2d_matches_torch_pad(padding, device, dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=dtype).to(device)
    before = x.clone()
    if isinstance(padding, int):
        top = bottom = left = right = padding
    elif len(padding) == 2:
        (top, left), (bottom, right) = padding, padding
    else:
        top, bottom, left, right = padding
    out = pad2d(x, padding, value=-1.5)
    expected = F.pad(x, (left, right, top, bottom), value=-1.5)
    torch.testing.assert_close(out, expected)
    assert out.device == x.device and out.dtype == x.dtype
    torch.testing.assert_close(x, before)  # input left unmodified


def test_pad2d_returns_a_new_tensor() -> None:
    x = torch.zeros(3, 3)
    out = pad2d(x, 0)
    out += 1.0
    assert torch.all(x == 0)


def test_pad2d_pads_only_the_last_two_axes() -> None:
    assert pad2d(torch.ones(2, 3), (1, 2)).shape == (4, 7)
    assert pad2d(torch.ones(5, 1, 2, 3), 1).shape == (5, 1, 4, 5)


def test_pad2d_default_value_is_zero() -> None:
    out = pad2d(torch.ones(2, 2), 1)
    assert out.sum() == 4.0 and out[0, 0] == 0.0


@pytest.mark.parametrize(
    ("padding", "error", "match"),
    [
        (-1, ValueError, "padding must be non-negative"),
        ((1, -2), ValueError, "padding must be non-negative"),
        ((0, 0, -1, 0), ValueError, "padding must be non-negative"),
        ((1, 2, 3), TypeError, "padding must be an int, a pair"),
        ("same", TypeError, "padding must be an int, a pair"),
    ],
)
def test_pad2d_rejects_bad_padding(padding, error, match) -> None:
    with pytest.raises(error, match=match):
        pad2d(torch.zeros(2, 2), padding)


def test_pad2d_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"expected x with at least 2 dims \(\.\.\., H, W\)"):
        pad2d(torch.zeros(5), 1)
    with pytest.raises(TypeError, match=r"expected x to be a torch\.Tensor"):
        pad2d([[1.0]], 1)


def test_resolve_padding_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match=r"one of .*'valid', 'same', 'full'.*got 'half'"):
        resolve_padding("half", 3)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        resolve_padding((1, -1), 3)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        resolve_padding("same", 0)
    with pytest.raises(ValueError, match="dilation must be positive"):
        resolve_padding(1, 3, dilation=0)
    with pytest.raises(TypeError, match="padding must be an int or a pair"):
        resolve_padding(1.5, 3)
