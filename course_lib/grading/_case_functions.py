"""Scalar functions the hidden tests of ``numerical_gradient`` differentiate.

They live in a module of their own that imports only NumPy: the grader passes them as arguments
to the student's function, and the sandbox, which sees NumPy alone, loads this file to call them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cubic_sum", "neighbour_products", "sin_times_square", "softplus_weighted"]


def cubic_sum(x: np.ndarray) -> float:
    """sum(x**3): its centred difference is 3x^2 + h^2, so the step h shows."""
    return float(np.sum(x**3))


def neighbour_products(x: np.ndarray) -> float:
    """Sum of products of horizontal neighbours: depends on the layout of x."""
    return float(np.sum(x[..., :-1] * x[..., 1:]))


def softplus_weighted(x: np.ndarray) -> float:
    """sum(log(1 + exp(w * x))) with fixed weights w from -1 to 1 over the entries."""
    weights = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    return float(np.sum(np.log1p(np.exp(weights * x))))


def sin_times_square(x: np.ndarray) -> float:
    """sum(sin(x) * x**2)."""
    return float(np.sum(np.sin(x) * x**2))
