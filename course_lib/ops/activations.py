"""ReLU, leaky ReLU, sigmoid, tanh, softmax and log-softmax, with their backward passes.

The activations work on tensors of any shape, elementwise (softmax and log-softmax along one
axis), and match ``torch.nn.functional``. The backward functions take ``dout``, the gradient of
the loss with respect to the activation's output, and return the gradient with respect to its
input. ReLU and leaky ReLU need the forward *input* ``x``; sigmoid and tanh are cheaper from the
forward *output* ``out``, so that is what they take (each docstring says which).
"""

from __future__ import annotations

import torch

from .._validate import check_same_device_dtype, check_tensor

__all__ = [
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "relu_backward",
    "leaky_relu_backward",
    "sigmoid_backward",
    "tanh_backward",
]


def _check_backward(dout: torch.Tensor, saved: torch.Tensor, saved_name: str) -> None:
    check_tensor(dout, "dout")
    check_tensor(saved, saved_name)
    check_same_device_dtype(**{saved_name: saved, "dout": dout})
    if dout.shape != saved.shape:
        raise ValueError(
            f"dout has shape {tuple(dout.shape)} but {saved_name} has shape "
            f"{tuple(saved.shape)}; they must match (elementwise activation)"
        )


def _check_dim(x: torch.Tensor, dim: int) -> None:
    if x.dim() == 0 or not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim {dim} is out of range for x of shape {tuple(x.shape)}")


def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU: ``max(x, 0)`` elementwise. x: any shape -> same shape."""
    check_tensor(x, "x")
    return torch.clamp(x, min=0)


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Leaky ReLU: ``x`` where ``x > 0``, else ``negative_slope * x``. Any shape -> same shape."""
    check_tensor(x, "x")
    return torch.where(x > 0, x, x * negative_slope)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for large ``|x|``. Any shape -> same shape.

    ``exp(-x)`` overflows for very negative x, so there we use the equal form
    ``exp(x) / (1 + exp(x))``; both branches only ever exponentiate ``-|x|`` (at most 1).
    """
    check_tensor(x, "x")
    e = torch.exp(-x.abs())  # in (0, 1]: never overflows
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent, stable and accurate for all x. Any shape -> same shape.

    ``tanh(x) = sign(x) * (1 - e) / (1 + e)`` with ``e = exp(-2|x|)`` (never overflows);
    ``1 - e`` is computed as ``-expm1(-2|x|)`` to keep full precision near 0.
    """
    check_tensor(x, "x")
    m = torch.expm1(-2 * x.abs())  # e - 1, in (-1, 0]
    return torch.sign(x) * (-m / (2 + m))


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax along ``dim``: ``exp(x) / sum(exp(x))``. Any shape -> same shape.

    The maximum along ``dim`` is subtracted first (it cancels out), so every exponent is <= 0
    and nothing overflows, even for logits like 1000.
    """
    check_tensor(x, "x")
    _check_dim(x, dim)
    shifted = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(shifted)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Log of the softmax along ``dim``: ``x - log(sum(exp(x)))``. Any shape -> same shape.

    Computed as ``(x - m) - log(sum(exp(x - m)))`` with ``m`` the maximum along ``dim``: no
    overflow, and no ``log(0)`` for very negative logits like -1000.
    """
    check_tensor(x, "x")
    _check_dim(x, dim)
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def relu_backward(dout: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`relu`; takes the forward **input** x.

    dout, x: same shape -> dx: same shape, ``dout`` where ``x > 0``, else 0 (also at x = 0,
    as PyTorch does).
    """
    _check_backward(dout, x, "x")
    return torch.where(x > 0, dout, torch.zeros_like(dout))


def leaky_relu_backward(
    dout: torch.Tensor, x: torch.Tensor, negative_slope: float = 0.01
) -> torch.Tensor:
    """Gradient of :func:`leaky_relu`; takes the forward **input** x.

    dout, x: same shape -> dx: ``dout`` where ``x > 0``, else ``negative_slope * dout``.
    """
    _check_backward(dout, x, "x")
    return torch.where(x > 0, dout, dout * negative_slope)


def sigmoid_backward(dout: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`sigmoid`; takes the forward **output** ``out = sigmoid(x)``.

    dout, out: same shape -> dx = ``dout * out * (1 - out)``.
    """
    _check_backward(dout, out, "out")
    return dout * out * (1 - out)


def tanh_backward(dout: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`tanh`; takes the forward **output** ``out = tanh(x)``.

    dout, out: same shape -> dx = ``dout * (1 - out**2)``.
    """
    _check_backward(dout, out, "out")
    return dout * (1 - out * out)
