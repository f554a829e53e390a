"""Padding helpers: same, valid and full padding for a kernel, and zero padding of tensors."""

from __future__ import annotations

__all__: list[str] = []
