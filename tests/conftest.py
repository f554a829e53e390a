"""Shared fixtures: seeded random generators and the torch dtypes every operator supports."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed, fresh for each test."""
    return np.random.default_rng(2024)


@pytest.fixture
def gen() -> torch.Generator:
    """A torch generator with a fixed seed, fresh for each test."""
    return torch.Generator().manual_seed(2024)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param
