"""Backward pass of conv2d: dx, dw and db, and the input gradient as a transposed convolution."""

from __future__ import annotations

__all__: list[str] = []
