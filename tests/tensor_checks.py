"""Comparisons of tensors shared by the operator tests."""

from __future__ import annotations

import torch

#: The devices the operator tests run on: the CPU, and CUDA where there is a GPU.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def assert_tensors_close(
    actual: torch.Tensor, expected: torch.Tensor, float32_tol: float = 2e-5
) -> None:
    """Equal up to rounding: same shape, dtype and device, tolerances scaled by the values."""
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype and actual.device == expected.device
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    tol = float32_tol if expected.dtype == torch.float32 else 1e-11
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale)
