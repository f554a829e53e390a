"""The model zoo of the course."""

from __future__ import annotations

__all__: list[str] = []
