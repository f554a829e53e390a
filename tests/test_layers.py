"""Dropout, flatten, linear, batch norm and cross-entropy against torch and autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.gradcheck import check_gradient
from course_lib.ops.layers import (
    batch_norm,
    batch_norm_backward,
    cross_entropy,
    dropout,
    dropout_backward,
    flatten,
    linear,
    linear_backward,
    softmax_cross_entropy_backward,
)

# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_at_train_time(p, dtype, gen):
    x = torch.full((200, 500), 2.0, dtype=dtype)
    out, mask = dropout(x, p, training=True, generator=gen)
    assert mask.shape == x.shape and mask.dtype == torch.bool
    dropped = 1 - mask.double().mean().item()
    assert dropped == pytest.approx(p, abs=0.01)  # 100 000 draws: std of the fraction < 0.002
    assert out.mean().item() == pytest.approx(2.0, rel=0.03)  # inverted dropout keeps the mean
    kept_value = torch.tensor(2.0 / (1 - p), dtype=dtype)
    torch.testing.assert_close(out, torch.where(mask, kept_value, torch.zeros((), dtype=dtype)))


def test_dropout_is_identity_at_eval_time(dtype, gen):
    x = torch.randn(4, 3, 5, 5, generator=gen, dtype=dtype)
    out, mask = dropout(x, 0.5, training=False)
    assert mask is None
    assert torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr()
    assert torch.equal(dropout_backward(x, None, 0.5), x)


def test_dropout_with_p_zero_keeps_everything(gen):
    x = torch.randn(10, 10, generator=gen)
    out, mask = dropout(x, 0.0, generator=gen)
    assert mask.all() and torch.equal(out, x)


def test_dropout_is_reproducible_with_a_generator():
    x = torch.randn(6, 7)
    out1, mask1 = dropout(x, 0.3, generator=torch.Generator().manual_seed(7))
    out2, mask2 = dropout(x, 0.3, generator=torch.Generator().manual_seed(7))
    out3, _ = dropout(x, 0.3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(mask1, mask2) and torch.equal(out1, out2)
    assert not torch.equal(out1, out3)


def test_dropout_backward_matches_autograd(dtype, gen):
    x = torch.randn(3, 4, 5, generator=gen, dtype=dtype, requires_grad=True)
    out, mask = dropout(x, 0.4, generator=gen)
    dout = torch.randn(3, 4, 5, generator=gen, dtype=dtype)
    (expected,) = torch.autograd.grad(out, x, dout)
    torch.testing.assert_close(dropout_backward(dout, mask, 0.4), expected)
    # and the same as torch's own dropout with that mask: dout * mask / (1 - p)
    torch.testing.assert_close(expected, dout * mask.to(dtype) / 0.6)


def test_dropout_backward_passes_numerical_gradient_check(gen):
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    _, mask = dropout(x, 0.5, generator=gen)
    dout = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    result = check_gradient(
        lambda x: (x * mask / 0.5 * dout).sum(), {"x": x}, {"x": dropout_backward(dout, mask, 0.5)}
    )
    assert result.passed, str(result)


# ---------------------------------------------------------------- flatten and linear


def test_flatten_matches_torch(gen):
    x = torch.randn(2, 3, 4, 5, generator=gen)
    assert torch.equal(flatten(x), torch.flatten(x, 1))
    assert flatten(x).shape == (2, 60)
    assert torch.equal(flatten(x, 2), torch.flatten(x, 2))
    assert torch.equal(flatten(x, 0), torch.flatten(x))
    assert torch.equal(flatten(x, -2), torch.flatten(x, -2))


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_and_backward_match_torch(with_bias, dtype, gen):
    x = torch.randn(5, 7, generator=gen, dtype=dtype, requires_grad=True)
    weight = torch.randn(3, 7, generator=gen, dtype=dtype, requires_grad=True)
    bias = torch.randn(3, generator=gen, dtype=dtype, requires_grad=True) if with_bias else None
    expected = F.linear(x, weight, bias)
    torch.testing.assert_close(linear(x, weight, bias), expected)
    dout = torch.randn(5, 3, generator=gen, dtype=dtype)
    wrt = [x, weight] + ([bias] if with_bias else [])
    grads = torch.autograd.grad(expected, wrt, dout)
    dx, dweight, dbias = linear_backward(dout, x.detach(), weight.detach(), bias)
    torch.testing.assert_close(dx, grads[0])
    torch.testing.assert_close(dweight, grads[1])
    if with_bias:
        torch.testing.assert_close(dbias, grads[2])
    else:
        assert dbias is None


def test_linear_backward_passes_numerical_gradient_check(gen):
    x = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64)
    dout = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    dx, dw, db = linear_backward(dout, x, w, b)
    result = check_gradient(
        lambda x, w, b: (linear(x, w, b) * dout).sum(),
        {"x": x, "w": w, "b": b},
        {"x": dx, "w": dw, "b": db},
    )
    assert result.passed, str(result)


# ---------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_and_running_stats_match_torch(shape, affine, dtype, gen):
    C = shape[1]
    weight = torch.randn(C, generator=gen, dtype=dtype) if affine else None
    bias = torch.randn(C, generator=gen, dtype=dtype) if affine else None
    ours_mean, ours_var = torch.zeros(C, dtype=dtype), torch.ones(C, dtype=dtype)
    torch_mean, torch_var = ours_mean.clone(), ours_var.clone()
    for step in range(5):
        x = torch.randn(shape, generator=gen, dtype=dtype) * (step + 1) + step
        got = batch_norm(x, weight, bias, ours_mean, ours_var, True, momentum=0.2, eps=1e-4)
        expected = F.batch_norm(x, torch_mean, torch_var, weight, bias, True, 0.2, 1e-4)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(ours_mean, torch_mean)
        torch.testing.assert_close(ours_var, torch_var)
    # evaluation mode uses (and leaves alone) the running statistics
    x = torch.randn(shape, generator=gen, dtype=dtype)
    mean_before, var_before = ours_mean.clone(), ours_var.clone()
    got = batch_norm(x, weight, bias, ours_mean, ours_var, False, eps=1e-4)
    expected = F.batch_norm(x, torch_mean, torch_var, weight, bias, False, 0.1, 1e-4)
    torch.testing.assert_close(got, expected)
    assert torch.equal(ours_mean, mean_before) and torch.equal(ours_var, var_before)


def test_batch_norm_running_var_is_unbiased():
    x = torch.tensor([[1.0], [3.0]])  # batch variance 1, unbiased variance 2
    running_mean, running_var = torch.zeros(1), torch.zeros(1)
    batch_norm(x, None, None, running_mean, running_var, True, momentum=1.0)
    assert running_mean.item() == 2.0 and running_var.item() == 2.0


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 3, 5)])
def test_batch_norm_backward_matches_autograd(shape, dtype, gen):
    C = shape[1]
    x = torch.randn(shape, generator=gen, dtype=dtype, requires_grad=True)
    weight = torch.randn(C, generator=gen, dtype=dtype, requires_grad=True)
    bias = torch.randn(C, generator=gen, dtype=dtype, requires_grad=True)
    out = F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)
    dout = torch.randn(shape, generator=gen, dtype=dtype)
    expected = torch.autograd.grad(out, [x, weight, bias], dout)
    got = batch_norm_backward(dout, x.detach(), weight.detach(), eps=1e-5)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_batch_norm_backward_passes_numerical_gradient_check(gen):
    x = torch.randn(3, 2, 2, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(2, generator=gen, dtype=torch.float64)
    b = torch.randn(2, generator=gen, dtype=torch.float64)
    dout = torch.randn(3, 2, 2, 3, generator=gen, dtype=torch.float64)
    dx, dw, db = batch_norm_backward(dout, x, w)
    result = check_gradient(
        lambda x, w, b: (batch_norm(x, w, b, None, None, True) * dout).sum(),
        {"x": x, "w": w, "b": b},
        {"x": dx, "w": dw, "b": db},
    )
    assert result.passed, str(result)


# ---------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction, dtype, gen):
    logits = torch.randn(6, 5, generator=gen, dtype=dtype) * 4
    target = torch.randint(0, 5, (6,), generator=gen)
    torch.testing.assert_close(
        cross_entropy(logits, target, reduction),
        F.cross_entropy(logits, target, reduction=reduction),
    )


def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    target = torch.tensor([1, 2])
    got = cross_entropy(logits, target, "none")
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, F.cross_entropy(logits, target, reduction="none"))


def test_softmax_cross_entropy_backward_matches_autograd(dtype, gen):
    logits = torch.randn(7, 4, generator=gen, dtype=dtype, requires_grad=True)
    target = torch.randint(0, 4, (7,), generator=gen)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, target), logits)
    logits_before = logits.detach().clone()
    got = softmax_cross_entropy_backward(logits.detach(), target)
    torch.testing.assert_close(got, expected)
    assert torch.equal(logits.detach(), logits_before)


def test_softmax_cross_entropy_backward_passes_numerical_gradient_check(gen):
    logits = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 3, (5,), generator=gen)
    result = check_gradient(
        lambda logits: cross_entropy(logits, target),
        {"logits": logits},
        {"logits": softmax_cross_entropy_backward(logits, target)},
    )
    assert result.passed, str(result)


# ---------------------------------------------------------------- contracts


def test_inputs_are_not_modified(gen):
    x = torch.randn(4, 3, generator=gen)
    w, b = torch.randn(2, 3, generator=gen), torch.randn(2, generator=gen)
    dout = torch.randn(4, 2, generator=gen)
    gamma, beta = torch.randn(3, generator=gen), torch.randn(3, generator=gen)
    target = torch.tensor([0, 1, 2, 0])
    tensors = [x, w, b, dout, gamma, beta, target]
    before = [t.clone() for t in tensors]
    dropout(x, 0.5, generator=gen)
    flatten(x)
    linear(x, w, b)
    linear_backward(dout, x, w, b)
    batch_norm(x, gamma, beta, None, None, True)
    batch_norm_backward(x, x, gamma)
    cross_entropy(x, target)
    softmax_cross_entropy_backward(x, target)
    for t, t_before in zip(tensors, before, strict=True):
        assert torch.equal(t, t_before)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: dropout(torch.randn(3), 1.0), ValueError, r"p must be in \[0, 1\)"),
        (lambda: dropout(torch.randn(3), -0.1), ValueError, r"p must be in \[0, 1\)"),
        (
            lambda: dropout_backward(torch.randn(3), torch.ones(3, dtype=torch.bool), 1.5),
            ValueError,
            r"\[0, 1\)",
        ),
        (
            lambda: dropout_backward(torch.randn(3), torch.ones(4, dtype=torch.bool)),
            ValueError,
            "shape",
        ),
        (lambda: linear(torch.randn(2, 3), torch.randn(4, 5)), ValueError, "in_features = 5"),
        (
            lambda: linear(torch.randn(2, 3, 4), torch.randn(4, 4)),
            ValueError,
            r"2 dims \(N, in_features\)",
        ),
        (
            lambda: linear(torch.randn(2, 3), torch.randn(4, 3), torch.randn(5)),
            ValueError,
            "out_features = 4",
        ),
        (
            lambda: linear(torch.randn(2, 3), torch.randn(4, 3, dtype=torch.float64)),
            TypeError,
            "dtype",
        ),
        (
            lambda: linear_backward(torch.randn(2, 5), torch.randn(2, 3), torch.randn(4, 3)),
            ValueError,
            r"dout has shape \(2, 5\).*\(2, 4\)",
        ),
        (
            lambda: batch_norm(torch.randn(2, 3, 4), None, None, None, None, True),
            ValueError,
            r"\(N, C\) or 4 dims \(N, C, H, W\)",
        ),
        (
            lambda: batch_norm(torch.randn(1, 3), None, None, None, None, True),
            ValueError,
            "more than 1 value per channel",
        ),
        (
            lambda: batch_norm(torch.randn(4, 3), torch.ones(2), None, None, None, True),
            ValueError,
            "3 channels",
        ),
        (
            lambda: batch_norm(torch.randn(4, 3), None, None, None, None, False),
            ValueError,
            "running_mean and running_var",
        ),
        (
            lambda: batch_norm_backward(torch.randn(4, 2), torch.randn(4, 3), None),
            ValueError,
            "shape",
        ),
        (
            lambda: cross_entropy(torch.randn(3, 4), torch.tensor([0, 1, 4])),
            ValueError,
            r"outside \[0, 4\)",
        ),
        (
            lambda: cross_entropy(torch.randn(3, 4), torch.tensor([0.0, 1.0, 2.0])),
            TypeError,
            "int64",
        ),
        (
            lambda: cross_entropy(torch.randn(3, 4), torch.tensor([0, 1])),
            ValueError,
            r"shape \(N,\) = \(3,\)",
        ),
        (
            lambda: cross_entropy(torch.randn(3, 4), torch.tensor([0, 1, 2]), "avg"),
            ValueError,
            "reduction",
        ),
        (lambda: flatten(torch.randn(2, 3), 2), ValueError, "start_dim 2 is out of range"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_output_follows_the_input_device():
    # PyTorch's "meta" device runs shapes only: a tensor created on the wrong device would fail.
    def meta(*shape):
        return torch.empty(*shape, device="meta")

    x, c = meta(2, 3, 4, 5), meta(3)
    out, mask = dropout(x, 0.3)
    outputs = [
        out,
        mask,
        dropout_backward(x, mask, 0.3),
        flatten(x),
        linear(meta(4, 5), meta(3, 5), meta(3)),
        *linear_backward(meta(4, 3), meta(4, 5), meta(3, 5), meta(3)),
        batch_norm(x, c, c, meta(3), meta(3), True),
        batch_norm(x, c, c, meta(3), meta(3), False),
        *batch_norm_backward(x, x, c),
    ]
    assert all(t.device.type == "meta" for t in outputs)
