"""Max, average and min pooling, adaptive and global pooling, and the backward passes."""

from __future__ import annotations

__all__: list[str] = []
