"""Dropout, flatten, linear, batch normalisation, softmax cross-entropy and their gradients."""

from __future__ import annotations

__all__: list[str] = []
