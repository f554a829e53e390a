"""1-D and 2-D convolution and cross-correlation, conv2d and conv_transpose2d, loop and fast."""

from __future__ import annotations

__all__: list[str] = []
