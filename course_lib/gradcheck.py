"""Numerical gradients by centred differences and the relative-error measure.

A hand-written backward pass is checked against the definition of the derivative: nudge one
entry of the input by ``+h`` and ``-h``, and the slope ``(f(x + h) - f(x - h)) / (2h)``
approximates the partial derivative with an error of order ``h**2``. Use float64: in float32
the rounding error of ``f`` divided by ``2h`` swamps the result.

Typical use, for a layer with a backward function, is to reduce its output to a scalar with a
fixed random upstream gradient ``dout``: ``f = lambda x: (layer(x) * dout).sum()`` has gradient
``layer_backward(dout, x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from ._validate import check_tensor

__all__ = ["numerical_gradient", "relative_error", "check_gradient", "GradCheckResult"]


def _as_float(value: object) -> float:
    """The value of a scalar result of f, or a clear error when it is not a scalar."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                "f must return a scalar (a number or a one-element tensor), got a tensor of "
                f"shape {tuple(value.shape)}; reduce it, e.g. (out * dout).sum()"
            )
        return float(value.item())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(
        f"f must return a scalar (a number or a one-element tensor), got {type(value).__name__}"
    )


def numerical_gradient(
    f: Callable[[torch.Tensor], object], x: torch.Tensor, h: float = 1e-5
) -> torch.Tensor:
    """Gradient of the scalar function ``f`` at ``x`` by centred differences.

    x: any shape (float64 recommended) -> a tensor shaped like x (same dtype and device) with
    entry i equal to ``(f(x + h e_i) - f(x - h e_i)) / (2 h)``, e_i the i-th unit tensor.
    f is evaluated ``2 * x.numel()`` times, on a private copy of x; x itself is never
    modified, even if f raises.
    """
    check_tensor(x, "x")
    if not isinstance(h, int | float) or isinstance(h, bool) or not h > 0:
        raise ValueError(f"step h must be a positive number, got {h!r}")
    point = x.detach().clone(memory_format=torch.contiguous_format)
    flat = point.view(-1)  # shares memory with point
    grad = torch.zeros(flat.shape, dtype=torch.float64)
    for i in range(flat.numel()):
        original = flat[i].item()
        try:
            flat[i] = original + h
            x_plus = flat[i].item()  # the value stored (rounded to x's dtype)
            f_plus = _as_float(f(point))
            flat[i] = original - h
            x_minus = flat[i].item()
            f_minus = _as_float(f(point))
        finally:
            flat[i] = original  # back to exactly the value it had
        # Divide by the step actually taken: 2h, up to rounding to x's dtype.
        grad[i] = (f_plus - f_minus) / (x_plus - x_minus)
    return grad.view(x.shape).to(dtype=x.dtype, device=x.device)


def relative_error(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-8) -> float:
    """The largest elementwise relative error between two gradients (CS231n's measure).

    ``max_i |a_i - b_i| / max(|a_i| + |b_i|, floor)``

    The ``floor`` keeps entries where both gradients are (nearly) zero from dividing by zero;
    there the error is the absolute difference over ``floor``. As a rule of thumb in float64,
    below 1e-7 is a correct gradient, above 1e-2 a wrong one. a, b: same shape -> a float
    (0.0 for empty tensors).
    """
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"expected {name} to be a torch.Tensor, got {type(t).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"a has shape {tuple(a.shape)} but b has shape {tuple(b.shape)}")
    if a.numel() == 0:
        return 0.0
    a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
    denominator = torch.clamp(a64.abs() + b64.abs(), min=floor)
    return float(((a64 - b64).abs() / denominator).max())


@dataclass
class GradCheckResult:
    """Outcome of :func:`check_gradient`: the relative error for each input checked."""

    errors: dict[str, float]
    tol: float
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.passed = all(error <= self.tol for error in self.errors.values())

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        lines = [f"gradient check {verdict} (tolerance {self.tol:.1e})"]
        width = max((len(name) for name in self.errors), default=0)
        for name, error in self.errors.items():
            status = "ok" if error <= self.tol else "too large"
            lines.append(f"  {name:<{width}}  relative error {error:.2e}  {status}")
        return "\n".join(lines)


def check_gradient(
    f: Callable[..., object],
    inputs: Mapping[str, torch.Tensor],
    analytic: Mapping[str, torch.Tensor],
    h: float = 1e-5,
    tol: float = 1e-6,
) -> GradCheckResult:
    """Compare analytic gradients with numerical ones for a scalar function of named tensors.

    f: called as ``f(**inputs)``, returns a scalar. inputs: name -> tensor (float64
    recommended). analytic: name -> the gradient of f with respect to that input, shaped like
    it; only the names given here are checked (each must be in ``inputs``). Returns a
    :class:`GradCheckResult` whose ``passed`` is True when every
    :func:`relative_error` is at most ``tol``; ``print`` it for a readable summary.

    Example::

        dout = torch.randn(4, 3, dtype=torch.float64)
        dx, dw, db = linear_backward(dout, x, w, b)
        result = check_gradient(
            lambda x, w, b: (linear(x, w, b) * dout).sum(),
            {"x": x, "w": w, "b": b},
            {"x": dx, "w": dw, "b": db},
        )
        assert result.passed, str(result)
    """
    missing = [name for name in analytic if name not in inputs]
    if missing:
        raise KeyError(
            f"analytic gradients given for {missing}, which are not among the inputs {list(inputs)}"
        )
    if not analytic:
        raise ValueError("analytic is empty: give the gradient of at least one input")
    errors: dict[str, float] = {}
    for name, gradient in analytic.items():
        x = inputs[name]
        if not isinstance(gradient, torch.Tensor) or gradient.shape != x.shape:
            shape = tuple(gradient.shape) if isinstance(gradient, torch.Tensor) else gradient
            raise ValueError(
                f"analytic gradient for {name!r} must be a tensor of shape {tuple(x.shape)}, "
                f"got {shape}"
            )

        def f_of_one(value: torch.Tensor, name: str = name) -> object:
            return f(**{**inputs, name: value})

        errors[name] = relative_error(gradient, numerical_gradient(f_of_one, x, h=h))
    return GradCheckResult(errors=errors, tol=tol)
