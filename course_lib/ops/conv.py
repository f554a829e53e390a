"""Convolution and cross-correlation in 1-D and 2-D, multi-channel conv2d and conv_transpose2d: a clear loop version and a fast vectorised version of each."""

from __future__ import annotations

__all__: list[str] = []
