"""Activations and their gradients against torch.nn.functional and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.gradcheck import numerical_gradient, relative_error
from course_lib.ops.activations import (
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    tanh,
    tanh_backward,
)

SHAPES = [(7,), (4, 5), (2, 3, 4, 5)]


def sample(shape, dtype, gen, scale=3.0):
    """Random values, with some exact zeros and some far out in the tails."""
    x = torch.randn(shape, generator=gen, dtype=dtype) * scale
    flat = x.view(-1)
    flat[::5] = 0.0
    flat[1::7] = 40.0
    flat[2::7] = -40.0
    return x


@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_activations_match_torch(shape, dtype, gen):
    x = sample(shape, dtype, gen)
    assert torch.equal(relu(x), F.relu(x))
    assert torch.equal(leaky_relu(x), F.leaky_relu(x))
    assert torch.equal(leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))
    torch.testing.assert_close(sigmoid(x), torch.sigmoid(x))
    torch.testing.assert_close(tanh(x), torch.tanh(x))


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_softmax_and_log_softmax_match_torch(dim, dtype, gen):
    x = torch.randn(3, 4, 5, generator=gen, dtype=dtype) * 5
    torch.testing.assert_close(softmax(x, dim=dim), F.softmax(x, dim=dim))
    torch.testing.assert_close(log_softmax(x, dim=dim), F.log_softmax(x, dim=dim))
    torch.testing.assert_close(softmax(x, dim=dim).sum(dim), torch.ones_like(x.sum(dim)))


def test_softmax_is_stable_for_huge_logits(dtype):
    x = torch.tensor([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0], [-1000.0, -999.0, -1000.0]])
    x = x.to(dtype)
    for ours, theirs in [(softmax, F.softmax), (log_softmax, F.log_softmax)]:
        got = ours(x)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, theirs(x, dim=-1))
    torch.testing.assert_close(softmax(x)[1], torch.full((3,), 1 / 3, dtype=dtype))
    assert log_softmax(x)[0, 2].item() == pytest.approx(-2000.0)


def test_sigmoid_and_tanh_are_stable_in_the_tails(dtype):
    x = torch.tensor([-1000.0, -100.0, -30.0, -1e-8, 0.0, 1e-8, 30.0, 100.0, 1000.0], dtype=dtype)
    for ours, theirs in [(sigmoid, torch.sigmoid), (tanh, torch.tanh)]:
        got = ours(x)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, theirs(x))
    assert sigmoid(x)[0].item() == 0.0 and sigmoid(x)[-1].item() == 1.0
    # Near zero tanh(x) ~ x to full relative precision.
    assert tanh(x)[5].item() == pytest.approx(1e-8, rel=1e-6)


# (name, our forward, torch's forward, our backward called as backward(dout, x, out))
BACKWARD_CASES = [
    ("relu", relu, F.relu, lambda d, x, out: relu_backward(d, x)),
    ("leaky_relu", leaky_relu, F.leaky_relu, lambda d, x, out: leaky_relu_backward(d, x)),
    (
        "leaky_relu_0.3",
        lambda x: leaky_relu(x, 0.3),
        lambda x: F.leaky_relu(x, 0.3),
        lambda d, x, out: leaky_relu_backward(d, x, 0.3),
    ),
    ("sigmoid", sigmoid, torch.sigmoid, lambda d, x, out: sigmoid_backward(d, out)),
    ("tanh", tanh, torch.tanh, lambda d, x, out: tanh_backward(d, out)),
]
CASE_IDS = [c[0] for c in BACKWARD_CASES]


@pytest.mark.parametrize(
    ("forward", "torch_forward", "backward"), [c[1:] for c in BACKWARD_CASES], ids=CASE_IDS
)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_autograd(forward, torch_forward, backward, shape, dtype, gen):
    x = sample(shape, dtype, gen).requires_grad_()
    out = torch_forward(x)
    dout = torch.randn(shape, generator=gen, dtype=dtype)
    (expected,) = torch.autograd.grad(out, x, dout)
    got = backward(dout, x.detach(), forward(x.detach()))
    torch.testing.assert_close(got, expected)


def test_relu_gradient_at_zero_is_zero_like_torch():
    x = torch.zeros(4, requires_grad=True)
    F.relu(x).backward(torch.ones(4))
    assert torch.equal(relu_backward(torch.ones(4), x.detach()), x.grad)


@pytest.mark.parametrize(
    ("forward", "backward"), [(c[1], c[3]) for c in BACKWARD_CASES], ids=CASE_IDS
)
def test_backward_passes_numerical_gradient_check(forward, backward, gen):
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    x[x.abs() < 1e-3] = 0.5  # keep away from the kink of (leaky) ReLU
    dout = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    numerical = numerical_gradient(lambda t: (forward(t) * dout).sum(), x)
    analytic = backward(dout, x, forward(x))
    assert relative_error(analytic, numerical) < 1e-7


def test_inputs_are_not_modified(dtype, gen):
    x = sample((3, 4), dtype, gen)
    dout = torch.randn(3, 4, generator=gen, dtype=dtype)
    x_before, dout_before = x.clone(), dout.clone()
    for f in (relu, leaky_relu, sigmoid, tanh, softmax, log_softmax):
        out = f(x)
        assert out.dtype == dtype and out.device == x.device
    out = sigmoid(x)
    out_before = out.clone()
    relu_backward(dout, x)
    leaky_relu_backward(dout, x)
    sigmoid_backward(dout, out)
    tanh_backward(dout, out)
    assert torch.equal(x, x_before)
    assert torch.equal(dout, dout_before)
    assert torch.equal(out, out_before)
    assert relu(x).data_ptr() != x.data_ptr()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: relu([1.0, -1.0]), TypeError, "torch.Tensor"),
        (lambda: sigmoid(torch.tensor([1, 2])), TypeError, "float32 or float64"),
        (lambda: softmax(torch.randn(2, 3), dim=2), ValueError, "dim 2 is out of range"),
        (lambda: relu_backward(torch.randn(2, 3), torch.randn(3, 2)), ValueError, "shape"),
        (
            lambda: tanh_backward(torch.randn(2, 3), torch.randn(2, 3, dtype=torch.float64)),
            TypeError,
            "dtype",
        ),
        (
            lambda: sigmoid_backward(torch.randn(2, 3), torch.empty(2, 3, device="meta")),
            ValueError,
            "device",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_output_follows_the_input_device():
    # PyTorch's "meta" device runs shapes only: a tensor created on the wrong device would fail.
    x = torch.empty(2, 3, 4, device="meta")
    for f in (relu, leaky_relu, sigmoid, tanh, softmax, log_softmax):
        assert f(x).device.type == "meta"
    for backward in (relu_backward, leaky_relu_backward, sigmoid_backward, tanh_backward):
        assert backward(x, x).device.type == "meta"
