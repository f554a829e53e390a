"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix."""

from __future__ import annotations

__all__: list[str] = []
