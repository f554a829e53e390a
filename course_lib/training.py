"""Training loops with progress bars and recorded histories."""

from __future__ import annotations

__all__: list[str] = []
