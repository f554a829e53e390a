"""Numerical gradients by centred differences and the relative-error measure."""

from __future__ import annotations

__all__: list[str] = []
