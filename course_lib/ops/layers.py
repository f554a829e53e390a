"""Dropout, flatten, linear, batch normalisation and softmax cross-entropy, with their backward passes."""

from __future__ import annotations

__all__: list[str] = []
