"""Numerical gradients, the relative error and check_gradient."""

from __future__ import annotations

import pytest
import torch

from course_lib.gradcheck import (
    GradCheckResult,
    check_gradient,
    numerical_gradient,
    relative_error,
)


def test_numerical_gradient_of_known_functions(gen):
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    a = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(numerical_gradient(lambda t: (a * t).sum(), x), a)
    torch.testing.assert_close(numerical_gradient(lambda t: (t**3).sum(), x), 3 * x**2)
    torch.testing.assert_close(
        numerical_gradient(lambda t: torch.sin(t).sum(), x), torch.cos(x), rtol=1e-8, atol=1e-9
    )


def test_numerical_gradient_matches_autograd_on_a_small_network(gen):
    x = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(5, 3, generator=gen, dtype=torch.float64)

    def f(t):
        return torch.log_softmax(torch.tanh(t @ w), dim=1)[:, 0].sum()

    x_auto = x.clone().requires_grad_()
    f(x_auto).backward()
    assert relative_error(numerical_gradient(f, x), x_auto.grad) < 1e-8


def test_numerical_gradient_accepts_python_numbers_and_keeps_shape_dtype():
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    grad = numerical_gradient(lambda t: float((t**2).sum()), x)
    assert grad.shape == x.shape and grad.dtype == torch.float64
    torch.testing.assert_close(grad, 2 * x)


def test_numerical_gradient_works_in_float32_too():
    x = torch.tensor([0.5, -1.25, 2.0])
    grad = numerical_gradient(lambda t: (t**2).sum(), x, h=1e-2)
    assert grad.dtype == torch.float32
    torch.testing.assert_close(grad, 2 * x, rtol=1e-3, atol=1e-3)


def test_numerical_gradient_on_a_non_contiguous_input(gen):
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64).T
    a = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(numerical_gradient(lambda t: (a * t).sum(), x), a)


def test_numerical_gradient_leaves_x_as_it_was(gen):
    x = torch.randn(5, generator=gen, dtype=torch.float64) * 1e3
    before = x.clone()
    numerical_gradient(lambda t: (t * t).sum(), x, h=0.1)
    assert torch.equal(x, before)


def test_numerical_gradient_leaves_x_as_it_was_when_f_raises():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    before = x.clone()
    seen = []

    def f(t):
        seen.append(t)
        if len(seen) == 4:
            raise RuntimeError("boom")
        return t.sum()

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    assert torch.equal(x, before)
    assert torch.equal(seen[-1], before)  # even the working copy was put back


def test_numerical_gradient_says_when_f_is_not_scalar():
    x = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"f must return a scalar.*shape \(3,\)"):
        numerical_gradient(lambda t: t * 2, x)
    with pytest.raises(TypeError, match="f must return a scalar"):
        numerical_gradient(lambda t: "nope", x)
    with pytest.raises(ValueError, match="h must be a positive number"):
        numerical_gradient(lambda t: t.sum(), x, h=0)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        numerical_gradient(lambda t: t.sum(), [1.0, 2.0])


def test_relative_error_formula():
    a = torch.tensor([1.0, 0.0, 2.0, 0.0], dtype=torch.float64)
    b = torch.tensor([1.1, 0.0, 2.0, 1e-12], dtype=torch.float64)
    # elementwise |a-b| / max(|a|+|b|, 1e-8): 0.1/2.1, 0 (0/1e-8), 0, 1e-12/1e-8 = 1e-4
    assert relative_error(a, b) == pytest.approx(0.1 / 2.1)
    assert relative_error(a[1:], b[1:]) == pytest.approx(1e-4)
    assert relative_error(a, a) == 0.0
    assert relative_error(a, -a) == 1.0
    assert relative_error(a[1:], b[1:], floor=1e-3) == pytest.approx(1e-9)
    assert relative_error(torch.zeros(0), torch.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        relative_error(torch.zeros(3), torch.zeros(4))


def test_check_gradient_accepts_a_correct_gradient_and_rejects_a_wrong_one(gen):
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 2, generator=gen, dtype=torch.float64)

    def f(x, w):
        return ((x @ w) ** 2).sum()

    dx, dw = 2 * (x @ w) @ w.T, 2 * x.T @ (x @ w)
    good = check_gradient(f, {"x": x, "w": w}, {"x": dx, "w": dw})
    assert isinstance(good, GradCheckResult)
    assert good.passed and bool(good)
    assert set(good.errors) == {"x", "w"} and max(good.errors.values()) < 1e-8
    assert "passed" in str(good) and "x" in str(good) and "w" in str(good)

    bad = check_gradient(f, {"x": x, "w": w}, {"x": dx, "w": dw * 1.01})
    assert not bad.passed
    assert bad.errors["x"] < 1e-8 and bad.errors["w"] > 1e-3
    assert "FAILED" in str(bad) and "too large" in str(bad)

    only_x = check_gradient(f, {"x": x, "w": w}, {"x": dx})
    assert set(only_x.errors) == {"x"} and only_x.passed


def test_check_gradient_leaves_inputs_as_they_were(gen):
    x = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    before = x.clone()
    check_gradient(lambda x: (x**2).sum(), {"x": x}, {"x": 2 * x})
    assert torch.equal(x, before)


def test_check_gradient_bad_arguments():
    x = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(KeyError, match="not among the inputs"):
        check_gradient(lambda x: x.sum(), {"x": x}, {"y": x})
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        check_gradient(lambda x: x.sum(), {"x": x}, {"x": torch.zeros(3)})
    with pytest.raises(ValueError, match="analytic is empty"):
        check_gradient(lambda x: x.sum(), {"x": x}, {})
