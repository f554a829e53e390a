"""Choosing where tensors live: CUDA when there is a GPU, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: ``cuda``, then ``mps``, then ``cpu``.

    ``prefer`` forces a device (for example ``"cpu"`` to reproduce a result exactly); it must be
    available.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' but no CUDA device is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("prefer='mps' but the MPS backend is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
