"""ReLU, leaky ReLU, sigmoid, tanh, softmax and log-softmax, with their backward passes."""

from __future__ import annotations

__all__: list[str] = []
