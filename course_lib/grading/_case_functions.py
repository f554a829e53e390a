"""Scalar functions that test cases hand to ``numerical_gradient``.

They are top-level functions so that a case holding one pickles by reference, and this module
imports NumPy only: the process that runs a student's code unpickles the cases with NumPy and
this file, nothing else of the course.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cubic_sum",
    "neighbour_products",
    "softplus_weighted",
    "sin_times_square",
    "square_sum",
    "product_of_first_two",
    "weighted_squares",
]


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


def square_sum(x: np.ndarray) -> float:
    """sum(x**2): the gradient is 2x (the notebook's first visible example)."""
    return float(np.sum(x**2))


def product_of_first_two(x: np.ndarray) -> float:
    """x[0] * x[1] of a 1-D x: the gradient is (x[1], x[0]) (the second visible example)."""
    return float(x[0] * x[1])


def weighted_squares(x: np.ndarray) -> float:
    """sum(w * x**2) with weights 1, 2, 3, ... over the entries in row-major order."""
    weights = np.arange(1.0, x.size + 1.0).reshape(x.shape)
    return float(np.sum(weights * x**2))
