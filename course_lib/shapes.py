"""Output sizes, receptive fields, parameter counts, shape traces and per-layer cost estimates."""

from __future__ import annotations

__all__: list[str] = []
