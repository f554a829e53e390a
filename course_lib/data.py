"""Data sets of the course, offline first."""

from __future__ import annotations

__all__: list[str] = []
