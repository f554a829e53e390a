"""Shared fixtures: seeded random generators and the torch dtypes every operator supports."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="module")
def one_thread():
    """One PyTorch thread for the module's tests, restored afterwards.

    Modules that run thousands of tiny operations use it: for them, waking a pool of threads
    costs far more than the work.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


CHROMIUM = Path("/usr/bin/chromium")
# Flags for a headless Chromium on a machine with no display and no outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's package), driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; `make test` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep what a person may want to look at (screenshots); git-ignored."""
    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path
