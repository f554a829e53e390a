"""The ``architectures`` assignment: batch normalisation (forward, backward, folding into a
convolution), a residual block and a dense block, with NumPy."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .. import diagnoses as dg
from ..diagnoses import Diagnosis, Variant
from ._base import (
    NO_LITERAL,
    PASS,
    Assignment,
    Chapter,
    Exercise,
    HiddenTest,
    Inputs,
    Part,
    Raised,
    Trial,
    Verdict,
    Visible,
    dims,
    expect_value_error,
    fail,
    raised,
    judge_array,
    judge_parts,
    keep_different,
    normal,
)
from ._base import ref as reference
from ._policy import BATCH_NORM_OPERATORS, COURSE_LIB, NUMPY_AND_STDLIB, WINDOW_OPERATORS

FORBIDDEN = WINDOW_OPERATORS + BATCH_NORM_OPERATORS + COURSE_LIB
POLICY: dict[str, Any] = {"allowed_imports": NUMPY_AND_STDLIB, "forbidden_names": FORBIDDEN}

# ---------------------------------------------------------------------------------------------
# misconceptions
# ---------------------------------------------------------------------------------------------

BN_WRONG_AXES = Diagnosis(
    "bn_wrong_axes",
    "the batch statistics are taken over the wrong axes",
    "each channel has one mean and one variance, over the batch and both spatial axes: "
    "x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))",
)
BN_UNBIASED_NORMALISATION = Diagnosis(
    "bn_unbiased_normalisation",
    "the output is normalised with the unbiased variance",
    "normalise with the biased batch variance (divide by m = N * H * W, np.var's default); "
    "only the running variance takes the unbiased one",
)
RUNNING_VAR_BIASED = Diagnosis(
    "running_var_biased",
    "the running variance is updated with the biased batch variance",
    "PyTorch's rule: the running variance averages in the unbiased batch variance, "
    "var * m / (m - 1) with m = N * H * W",
)
MOMENTUM_REVERSED = Diagnosis(
    "momentum_reversed",
    "momentum weighs the old running statistics instead of the new batch ones",
    "new = (1 - momentum) * old + momentum * batch: with momentum = 0.1 the batch counts for 10 %",
)
RUNNING_NOT_UPDATED = Diagnosis(
    "running_not_updated",
    "the running statistics are not updated in training",
    "in training, return (1 - momentum) * old + momentum * batch for both running statistics",
)
RUNNING_REPLACED = Diagnosis(
    "running_replaced",
    "the running statistics are replaced by the batch statistics",
    "average them in: (1 - momentum) * old + momentum * batch",
)
EVAL_USES_BATCH_STATISTICS = Diagnosis(
    "eval_uses_batch_statistics",
    "evaluation mode normalises with the batch statistics",
    "with training=False normalise with running_mean and running_var and return them unchanged",
)
EVAL_UPDATES_RUNNING = Diagnosis(
    "eval_updates_running",
    "evaluation mode updates the running statistics",
    "with training=False the running statistics stay as they are (returned as new arrays)",
)
TRAINING_USES_RUNNING = Diagnosis(
    "training_uses_running",
    "training mode normalises with the running statistics",
    "in training, normalise with the mean and variance of the batch itself",
)
GAMMA_BETA_SWAPPED = Diagnosis(
    "gamma_beta_swapped",
    "gamma and beta are swapped or left out",
    "out = gamma * x_hat + beta: gamma scales, beta shifts",
)
BN_BACKWARD_CONSTANT_STATISTICS = Diagnosis(
    "bn_backward_constant_statistics",
    "the batch mean and variance are treated as constants in the backward pass",
    "the mean and the variance depend on every x too: "
    "dx = gamma / sqrt(var + eps) * (dout - mean(dout) - x_hat * mean(dout * x_hat))",
)
BN_BACKWARD_TERM_MISSING = Diagnosis(
    "bn_backward_term_missing",
    "one of the two correction terms of dx is missing (the mean's or the variance's)",
    "dx = gamma / sqrt(var + eps) * (dout - mean(dout) - x_hat * mean(dout * x_hat)), the means "
    "over N, H and W of each channel",
)
BN_COUNT_WRONG = Diagnosis(
    "bn_count_wrong",
    "the number of values per channel m is taken as N instead of N * H * W",
    "every mean in the batch-norm gradient is over the N * H * W values of a channel",
)
GAMMA_MISSING_IN_DX = Diagnosis(
    "gamma_missing_in_dx",
    "dx is not multiplied by gamma",
    "out = gamma * x_hat + beta, so the gradient flowing into x_hat is gamma * dout",
)
DGAMMA_USES_X = Diagnosis(
    "dgamma_uses_x",
    "dgamma multiplies dout by x instead of the normalised x_hat",
    "dgamma = sum over N, H, W of dout * x_hat, with x_hat = (x - mean) / sqrt(var + eps)",
)
BN_GRAD_WRONG_AXES = Diagnosis(
    "bn_grad_wrong_axes",
    "dgamma or dbeta is summed over the wrong axes",
    "gamma and beta are per channel: sum over the batch and both spatial axes, axis=(0, 2, 3)",
)
DGAMMA_DBETA_SWAPPED = Diagnosis(
    "dgamma_dbeta_swapped",
    "dgamma and dbeta are swapped",
    "return (dx, dgamma, dbeta) in that order: dbeta = sum(dout), dgamma = sum(dout * x_hat)",
)
FOLD_SCALE_WRONG_AXIS = Diagnosis(
    "fold_scale_wrong_axis",
    "the scale gamma / sqrt(var + eps) multiplies the wrong axis of w",
    "each output channel f is scaled by its own factor: w * scale[:, None, None, None]",
)
FOLD_NO_SQRT = Diagnosis(
    "fold_no_sqrt",
    "the scale divides by the variance instead of the standard deviation",
    "the scale is gamma / sqrt(running_var + eps)",
)
FOLD_BIAS_NOT_SCALED = Diagnosis(
    "fold_bias_not_scaled",
    "b - running_mean is not multiplied by the scale",
    "b_folded = scale * (b - running_mean) + beta",
)
FOLD_BIAS_IGNORED = Diagnosis(
    "fold_bias_ignored",
    "the convolution's own bias b is left out of the folded bias",
    "b_folded = scale * (b - running_mean) + beta, with b = 0 only when b is None",
)
FOLD_BETA_SCALED = Diagnosis(
    "fold_beta_scaled",
    "beta is multiplied by the scale",
    "beta is added after the scaling: b_folded = scale * (b - running_mean) + beta",
)
FOLD_BIAS_NONE = Diagnosis(
    "fold_bias_none",
    "b_folded is None when b is None",
    "the folded convolution always has a bias: use b = 0 when b is None",
)
FINAL_RELU_MISSING = Diagnosis(
    "final_relu_missing",
    "the ReLU after the addition is missing",
    "the block returns relu(y + shortcut)",
)
RELU_BEFORE_ADD = Diagnosis(
    "relu_before_add",
    "the ReLU is applied to y before the shortcut is added",
    "add first, then apply the ReLU: relu(y + shortcut)",
)
INNER_RELU_MISSING = Diagnosis(
    "inner_relu_missing",
    "the ReLU between the two convolutions is missing",
    "h = relu(conv(x, w1, stride, padding=1)), then y = conv(h, w2, 1, padding=1)",
)
STRIDE_ON_SECOND_CONV = Diagnosis(
    "stride_on_second_conv",
    "the stride is applied by the wrong convolution",
    "the first convolution (w1) has the stride; the second (w2) always has stride 1",
)
PROJECTION_IGNORED = Diagnosis(
    "projection_ignored",
    "w_proj is ignored: the shortcut is x even when w_proj is given",
    "with w_proj the shortcut is conv(x, w_proj, stride, padding=0), a 1x1 convolution",
)
SHORTCUT_UNCHECKED = Diagnosis(
    "shortcut_unchecked",
    "a shortcut of the wrong shape is not rejected (NumPy broadcasts it silently)",
    "when w_proj is None, compare x.shape with y.shape and raise ValueError if they differ",
)
CONV_PADDING_MISSING = Diagnosis(
    "conv_padding_missing",
    "the 3x3 convolutions are not padded",
    "both 3x3 convolutions use padding=1, so that stride 1 keeps H and W",
)
DENSE_ORDER_REVERSED = Diagnosis(
    "dense_order_reversed",
    "the features are concatenated in the wrong order",
    "concatenate x first, then the layers' outputs in the order they were made",
)
DENSE_RELU_MISSING = Diagnosis(
    "dense_relu_missing",
    "the ReLU before each convolution is missing",
    "layer l computes conv(relu(features), weights[l]): the ReLU comes first",
)
DENSE_RELU_AFTER_CONV = Diagnosis(
    "dense_relu_after_conv",
    "the ReLU is applied after the convolution instead of before it",
    "DenseNet's layers are pre-activation: conv(relu(features)), not relu(conv(features))",
)
DENSE_RELU_KEPT = Diagnosis(
    "dense_relu_kept",
    "the ReLU is applied to the stored features themselves",
    "relu(features) is only the input of the next convolution: concatenate the features as "
    "they are",
)
DENSE_MISSING_FEATURES = Diagnosis(
    "dense_missing_features",
    "the output leaves out x or the earlier layers' outputs",
    "return the concatenation of x and of every layer's output: (N, C + L * k, H, W)",
)

# ---------------------------------------------------------------------------------------------
# batch norm: buggy versions
# ---------------------------------------------------------------------------------------------


def _c(v: np.ndarray) -> np.ndarray:
    return np.asarray(v).reshape(1, -1, 1, 1)


def _normalise(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    eps_inside: bool = True,
) -> np.ndarray:
    denom = np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps
    return _c(gamma) * (x - mean) / denom + _c(beta)


def _batch_stats(x: np.ndarray, axes: tuple[int, ...] = (0, 2, 3), ddof: int = 0):
    return x.mean(axis=axes, keepdims=True), x.var(axis=axes, ddof=ddof, keepdims=True)


def _bn_out_variants(t: Trial) -> list[Variant]:
    x, gamma, beta = t.a["x"], t.a["gamma"], t.a["beta"]
    rm, rv, eps = t.a["running_mean"], t.a["running_var"], t.a["eps"]
    mean, var = _batch_stats(x)
    found = []
    if t.a["training"]:
        for axes in ((0,), (0, 1, 2, 3), (2, 3), (1, 2, 3), (0, 2), (0, 3), (1,)):
            m, v = _batch_stats(x, axes)
            found.append(Variant("bn_wrong_axes", _normalise(x, gamma, beta, m, v, eps)))
        found.append(Variant("eps_outside_sqrt", _normalise(x, gamma, beta, mean, var, eps, False)))
        found.append(
            Variant("bn_unbiased_normalisation", _normalise(x, gamma, beta, *_batch_stats(x, ddof=1), eps))
        )
        found.append(Variant("training_uses_running", _normalise(x, gamma, beta, _c(rm), _c(rv), eps)))
        new_rm, new_rv = t.expected[1], t.expected[2]
        found.append(Variant("training_uses_running", _normalise(x, gamma, beta, _c(new_rm), _c(new_rv), eps)))
        found.append(Variant("gamma_beta_swapped", _normalise(x, beta, gamma, mean, var, eps)))
        found.append(Variant("gamma_beta_swapped", (x - mean) / np.sqrt(var + eps)))
    else:
        found.append(Variant("eval_uses_batch_statistics", _normalise(x, gamma, beta, mean, var, eps)))
        found.append(
            Variant("eval_uses_batch_statistics", _normalise(x, gamma, beta, mean, var, eps, False))
        )
        found.append(Variant("eps_outside_sqrt", _normalise(x, gamma, beta, _c(rm), _c(rv), eps, False)))
        found.append(Variant("gamma_beta_swapped", _normalise(x, beta, gamma, _c(rm), _c(rv), eps)))
        found.append(Variant("gamma_beta_swapped", (x - _c(rm)) / np.sqrt(_c(rv) + eps)))
    return keep_different(found, t.expected[0])


def _running_variants(t: Trial, which: int) -> list[Variant]:
    x, momentum = t.a["x"], t.a["momentum"]
    old = t.a["running_mean"] if which == 1 else t.a["running_var"]
    axes = (0, 2, 3)
    found = []
    if which == 1:
        batches = [("momentum_reversed", x.mean(axis=axes))]
        batch = x.mean(axis=axes)
    else:
        batch = x.var(axis=axes, ddof=1)
        batches = [("momentum_reversed", batch), ("running_var_biased", x.var(axis=axes))]
    if t.a["training"]:
        for key, value in batches:
            found.append(Variant(key, momentum * old + (1 - momentum) * value))
        if which == 2:
            biased = x.var(axis=axes)
            found.append(Variant("running_var_biased", (1 - momentum) * old + momentum * biased))
            found.append(Variant("momentum_reversed", momentum * old + (1 - momentum) * biased))
            found.append(Variant("running_replaced", biased))
        found.append(Variant("running_not_updated", old))
        found.append(Variant("running_replaced", batch))
        for axes_wrong in ((0,), (0, 1, 2, 3), (1, 2, 3)):
            stat = x.mean(axis=axes_wrong) if which == 1 else x.var(axis=axes_wrong, ddof=1)
            if stat.shape == old.shape:
                found.append(Variant("bn_wrong_axes", (1 - momentum) * old + momentum * stat))
    else:
        found.append(Variant("eval_updates_running", (1 - momentum) * old + momentum * batch))
        if which == 2:
            found.append(Variant("eval_updates_running", (1 - momentum) * old + momentum * x.var(axis=axes)))
    return keep_different(found, t.expected[which])


def _judge_bn_forward(t: Trial, out: object) -> Verdict:
    return judge_parts(
        t,
        out,
        [
            Part("out", _bn_out_variants),
            Part("new_running_mean", lambda t: _running_variants(t, 1)),
            Part("new_running_var", lambda t: _running_variants(t, 2)),
        ],
    )


def _bn_inputs(
    rng: np.random.Generator, shape: tuple[int, int, int, int], small: bool = True
) -> tuple[np.ndarray, ...]:
    """x with a different scale and offset per channel (one channel of small variance), gamma,
    beta and running statistics."""
    n, c, h, w = shape
    scale = rng.uniform(0.5, 3.0, c)
    if small:
        scale[-1] = 0.01  # a small variance: where eps sits shows
    x = normal(rng, *shape) * scale[None, :, None, None] + rng.uniform(-2, 2, c)[None, :, None, None]
    gamma = rng.uniform(0.5, 2.0, c) * rng.choice([-1.0, 1.0], c)
    beta = rng.uniform(-1.0, 1.0, c)
    running_mean = rng.uniform(-1.0, 1.0, c)
    running_var = rng.uniform(0.5, 2.0, c)
    return x, gamma, beta, running_mean, running_var


def _bn_label(x: np.ndarray, **settings: object) -> str:
    parts = [f"x {dims(x)}"] + [f"{k}={v}" for k, v in settings.items()]
    return ", ".join(parts)


def _draw_bn(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for shape in ((4, 3, 2, 3), (2, 2, 3, 1), (3, 4, 2, 2), (1, 2, 3, 4)):
        args = _bn_inputs(rng, shape)
        found.append(Inputs(args, {}, _bn_label(args[0], training=True)))
    return found


def _draw_bn_running(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for shape, momentum, eps in (((2, 3, 2, 2), 0.3, 1e-3), ((3, 2, 1, 2), 0.05, 0.5), ((2, 2, 3, 3), 0.8, 1e-5)):
        args = _bn_inputs(rng, shape)
        kwargs = {"momentum": momentum, "eps": eps}
        found.append(Inputs(args, kwargs, _bn_label(args[0], training=True, **kwargs)))
    return found


def _draw_bn_eval(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for shape, eps in (((3, 2, 2, 3), 1e-5), ((2, 3, 1, 1), 0.1), ((1, 2, 3, 2), 1e-2)):
        args = _bn_inputs(rng, shape, small=False)
        kwargs = {"training": False} if eps == 1e-5 else {"training": False, "eps": eps}
        found.append(Inputs(args, kwargs, _bn_label(args[0], **kwargs)))
    return found


_BN_X = np.arange(8.0).reshape(2, 1, 2, 2)

BATCHNORM_FORWARD = Exercise(
    name="batchnorm_forward",
    summary="batch normalisation, training and evaluation mode, with the running statistics",
    tests=(
        HiddenTest(
            "test_batchnorm_forward",
            2.0,
            "training mode on batches with several channels of different scales, H != W",
            _draw_bn,
        ),
        HiddenTest(
            "test_batchnorm_forward_running",
            2.0,
            "the running statistics with momentum 0.3, 0.05 and 0.8 and eps up to 0.5",
            _draw_bn_running,
        ),
        HiddenTest(
            "test_batchnorm_forward_eval",
            1.0,
            "evaluation mode: the running statistics normalise, and come back unchanged as new arrays",
            _draw_bn_eval,
        ),
    ),
    judge=_judge_bn_forward,
    visible=(
        Visible(
            (_BN_X, np.array([2.0]), np.array([1.0]), np.array([0.0]), np.array([1.0])),
            {},
            "visible example: x = np.arange(8.0).reshape(2, 1, 2, 2), gamma [2], beta [1], "
            "running_mean [0], running_var [1], training",
            (2 * (_BN_X - 3.5) / np.sqrt(5.25 + 1e-5) + 1, np.array([0.35]), np.array([1.5])),
        ),
        Visible(
            (_BN_X, np.array([2.0]), np.array([1.0]), np.array([3.0]), np.array([4.0])),
            {"training": False},
            "visible example: the same x, gamma and beta, running_mean [3], running_var [4], "
            "training=False",
            (2 * (_BN_X - 3.0) / np.sqrt(4.0 + 1e-5) + 1, np.array([3.0]), np.array([4.0])),
        ),
    ),
    misconceptions=(
        BN_WRONG_AXES,
        dg.EPS_OUTSIDE_SQRT,
        BN_UNBIASED_NORMALISATION,
        RUNNING_VAR_BIASED,
        MOMENTUM_REVERSED,
        RUNNING_NOT_UPDATED,
        RUNNING_REPLACED,
        EVAL_USES_BATCH_STATISTICS,
        EVAL_UPDATES_RUNNING,
        TRAINING_USES_RUNNING,
        GAMMA_BETA_SWAPPED,
    ),
    new_arrays=True,
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# batchnorm_backward
# ---------------------------------------------------------------------------------------------


def _bn_backward_formula(
    dout: np.ndarray,
    x: np.ndarray,
    gamma: np.ndarray,
    eps: float,
    *,
    mean_term: bool = True,
    var_term: bool = True,
    ddof: int = 0,
    eps_inside: bool = True,
    with_gamma: bool = True,
    count: str = "all",
) -> np.ndarray:
    axes = (0, 2, 3)
    mean, var = _batch_stats(x, ddof=ddof)
    inv_std = 1 / (np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps)
    x_hat = (x - mean) * inv_std
    m = x.shape[0] * x.shape[2] * x.shape[3] if count == "all" else x.shape[0]
    dx = dout.copy()
    if mean_term:
        dx = dx - dout.sum(axis=axes, keepdims=True) / m
    if var_term:
        dx = dx - x_hat * (dout * x_hat).sum(axis=axes, keepdims=True) / m
    return (_c(gamma) if with_gamma else 1.0) * inv_std * dx


def _bn_dx_variants(t: Trial) -> list[Variant]:
    dout, x, gamma, eps = t.a["dout"], t.a["x"], t.a["gamma"], t.a["eps"]

    def variant(key: str, **options: Any) -> Variant:
        return Variant(key, _bn_backward_formula(dout, x, gamma, eps, **options))

    found = [
        variant("bn_backward_constant_statistics", mean_term=False, var_term=False),
        variant("bn_backward_term_missing", var_term=False),
        variant("bn_backward_term_missing", mean_term=False),
        variant("bn_unbiased_normalisation", ddof=1),
        variant("eps_outside_sqrt", eps_inside=False),
        variant("gamma_missing_in_dx", with_gamma=False),
        variant("bn_count_wrong", count="batch"),
    ]
    return keep_different(found, t.expected[0])


def _x_hat(x: np.ndarray, eps: float, ddof: int = 0, eps_inside: bool = True) -> np.ndarray:
    mean, var = _batch_stats(x, ddof=ddof)
    return (x - mean) / (np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps)


def _bn_dgamma_variants(t: Trial) -> list[Variant]:
    dout, x, eps = t.a["dout"], t.a["x"], t.a["eps"]
    axes = (0, 2, 3)
    x_hat = _x_hat(x, eps)
    found = [
        Variant("dgamma_dbeta_swapped", dout.sum(axis=axes)),
        Variant("dgamma_uses_x", (dout * x).sum(axis=axes)),
        Variant("eps_outside_sqrt", (dout * _x_hat(x, eps, eps_inside=False)).sum(axis=axes)),
        Variant("bn_unbiased_normalisation", (dout * _x_hat(x, eps, ddof=1)).sum(axis=axes)),
        Variant("bn_grad_wrong_axes", (dout * x_hat).mean(axis=axes)),
    ]
    for wrong in ((0,), (0, 1, 2, 3), (2, 3), (0, 2)):
        found.append(Variant("bn_grad_wrong_axes", (dout * x_hat).sum(axis=wrong)))
    return keep_different(found, t.expected[1])


def _bn_dbeta_variants(t: Trial) -> list[Variant]:
    dout, x, eps = t.a["dout"], t.a["x"], t.a["eps"]
    found = [Variant("dgamma_dbeta_swapped", (dout * _x_hat(x, eps)).sum(axis=(0, 2, 3)))]
    found.append(Variant("bn_grad_wrong_axes", dout.mean(axis=(0, 2, 3))))
    for wrong in ((0,), (0, 1, 2, 3), (2, 3), (0, 2)):
        found.append(Variant("bn_grad_wrong_axes", dout.sum(axis=wrong)))
    return keep_different(found, t.expected[2])


def _judge_bn_backward(t: Trial, out: object) -> Verdict:
    return judge_parts(
        t,
        out,
        [Part("dx", _bn_dx_variants), Part("dgamma", _bn_dgamma_variants), Part("dbeta", _bn_dbeta_variants)],
    )


def _draw_bn_backward(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for shape in ((4, 3, 2, 3), (2, 2, 3, 2), (3, 1, 2, 2), (2, 3, 1, 3)):
        x, gamma, *_ = _bn_inputs(rng, shape)
        dout = normal(rng, *shape)
        found.append(Inputs((dout, x, gamma), {}, _bn_label(x)))
    return found


def _draw_bn_backward_eps(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for shape, eps in (((3, 2, 2, 2), 0.1), ((2, 3, 2, 3), 1.0)):
        x, gamma, *_ = _bn_inputs(rng, shape)
        dout = normal(rng, *shape)
        found.append(Inputs((dout, x, gamma), {"eps": eps}, _bn_label(x, eps=eps)))
    return found


_BNB_X = np.array([2.0, 4.0]).reshape(2, 1, 1, 1)

BATCHNORM_BACKWARD = Exercise(
    name="batchnorm_backward",
    summary="gradients of training-mode batch normalisation: dx, dgamma, dbeta",
    tests=(
        HiddenTest(
            "test_batchnorm_backward",
            3.0,
            "batches with several channels of different scales, H != W, the default eps",
            _draw_bn_backward,
        ),
        HiddenTest("test_batchnorm_backward_eps", 1.0, "eps 0.1 and 1", _draw_bn_backward_eps),
    ),
    judge=_judge_bn_backward,
    visible=(
        Visible(
            (np.array([1.0, 0.0]).reshape(2, 1, 1, 1), _BNB_X, np.array([1.0])),
            {},
            "visible example: x = [2, 4] as (2, 1, 1, 1), dout = [1, 0], gamma [1]",
            (np.zeros((2, 1, 1, 1)), np.array([-1.0]), np.array([1.0])),
        ),
        Visible(
            (
                np.linspace(-1.0, 1.0, 24).reshape(2, 3, 2, 2),
                np.arange(24.0).reshape(2, 3, 2, 2) ** 1.5,
                np.array([1.0, 2.0, 3.0]),
            ),
            {},
            "visible example: x = np.arange(24.0).reshape(2, 3, 2, 2) ** 1.5, "
            "dout = np.linspace(-1, 1, 24) as (2, 3, 2, 2), gamma [1, 2, 3]",
            NO_LITERAL,
        ),
    ),
    misconceptions=(
        BN_BACKWARD_CONSTANT_STATISTICS,
        BN_BACKWARD_TERM_MISSING,
        BN_UNBIASED_NORMALISATION,
        dg.EPS_OUTSIDE_SQRT,
        GAMMA_MISSING_IN_DX,
        BN_COUNT_WRONG,
        DGAMMA_USES_X,
        DGAMMA_DBETA_SWAPPED,
        BN_GRAD_WRONG_AXES,
    ),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# fold_batchnorm
# ---------------------------------------------------------------------------------------------


def _fold_scale(t: Trial, kind: str = "right") -> np.ndarray:
    gamma, var, eps = t.a["gamma"], t.a["running_var"], t.a["eps"]
    if kind == "no_sqrt":
        return gamma / (var + eps)
    if kind == "eps_outside":
        return gamma / (np.sqrt(var) + eps)
    return gamma / np.sqrt(var + eps)


def _fold_w_variants(t: Trial) -> list[Variant]:
    w = t.a["w"]
    s = _fold_scale(t)
    found = [
        Variant("fold_no_sqrt", w * _fold_scale(t, "no_sqrt")[:, None, None, None]),
        Variant("eps_outside_sqrt", w * _fold_scale(t, "eps_outside")[:, None, None, None]),
        Variant("fold_scale_wrong_axis", w * (1 / s)[:, None, None, None]),
    ]
    with contextlib.suppress(ValueError):
        found.append(Variant("fold_scale_wrong_axis", w * s))
    with contextlib.suppress(ValueError):
        found.append(Variant("fold_scale_wrong_axis", w * s[:, None, None]))
    with contextlib.suppress(ValueError):
        found.append(Variant("fold_scale_wrong_axis", w * s[:, None]))
    found.append(Variant("fold_scale_wrong_axis", w.copy()))
    return keep_different(found, t.expected[0])


def _fold_b_variants(t: Trial) -> list[Variant]:
    b, beta, mean = t.a["b"], t.a["beta"], t.a["running_mean"]
    bias = np.zeros_like(beta) if b is None else b
    found = []
    for kind, key in (("right", None), ("no_sqrt", "fold_no_sqrt"), ("eps_outside", "eps_outside_sqrt")):
        s = _fold_scale(t, kind)
        if key is not None:
            found.append(Variant(key, s * (bias - mean) + beta))
            continue
        found += [
            Variant("fold_bias_not_scaled", bias - mean + beta),
            Variant("fold_bias_not_scaled", s * bias - mean + beta),
            Variant("fold_bias_not_scaled", bias - s * mean + beta),
            Variant("fold_bias_ignored", beta - s * mean),
            Variant("fold_beta_scaled", s * (bias - mean + beta)),
            Variant("fold_bias_not_scaled", s * (bias + mean) + beta),
        ]
    return keep_different(found, t.expected[1])


def _judge_fold(t: Trial, out: object) -> Verdict:
    if (
        isinstance(out, tuple | list)
        and len(out) == 2
        and out[1] is None
        and t.a["b"] is None
    ):
        verdict = judge_array(t.case, "w_folded", out[0], t.expected[0], lambda: _fold_w_variants(t))
        if not verdict.passed:
            return verdict
        return fail(t.case, "b_folded is None, expected an array of shape "
                    f"{t.expected[1].shape}", "fold_bias_none")
    return judge_parts(t, out, [Part("w_folded", _fold_w_variants), Part("b_folded", _fold_b_variants)])


def _draw_fold(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for (f, c, kh, kw), with_bias, eps in (
        ((3, 3, 3, 3), True, 1e-5),  # F = C = kh = kw: a scale on the wrong axis still broadcasts
        ((4, 2, 3, 1), True, 1e-3),
        ((2, 3, 1, 2), False, 1e-5),
        ((3, 2, 2, 3), True, 0.5),
    ):
        w = normal(rng, f, c, kh, kw)
        b = normal(rng, f) if with_bias else None
        gamma = rng.uniform(0.5, 2.0, f) * rng.choice([-1.0, 1.0], f)
        beta = rng.uniform(-1.0, 1.0, f)
        mean = rng.uniform(-1.0, 1.0, f)
        var = rng.uniform(0.01, 2.0, f)
        kwargs = {} if eps == 1e-5 else {"eps": eps}
        label = (
            f"w (F={f}, C={c}, kh={kh}, kw={kw}), b {'nonzero' if with_bias else 'None'}"
            + ("" if not kwargs else f", eps={eps}")
        )
        found.append(Inputs((w, b, gamma, beta, mean, var), kwargs, label))
    return found


FOLD_BATCHNORM = Exercise(
    name="fold_batchnorm",
    summary="fold evaluation-mode batch normalisation into the convolution before it",
    tests=(
        HiddenTest(
            "test_fold_batchnorm",
            2.0,
            "several filters, channels and non-square kernels, with and without b, eps up to 0.5",
            _draw_fold,
        ),
    ),
    judge=_judge_fold,
    visible=(
        Visible(
            (
                np.ones((2, 1, 1, 1)),
                np.array([1.0, 0.0]),
                np.array([2.0, 1.0]),
                np.array([0.0, 1.0]),
                np.array([1.0, 2.0]),
                np.array([3.0, 8.0]),
            ),
            {"eps": 1.0},
            "visible example: w = np.ones((2, 1, 1, 1)), b [1, 0], gamma [2, 1], beta [0, 1], "
            "running_mean [1, 2], running_var [3, 8], eps=1",
            (np.array([1.0, 1.0 / 3.0]).reshape(2, 1, 1, 1), np.array([0.0, 1.0 / 3.0])),
        ),
        Visible(
            (
                np.ones((2, 1, 1, 1)),
                None,
                np.array([2.0, 1.0]),
                np.array([0.0, 1.0]),
                np.array([1.0, 2.0]),
                np.array([3.0, 8.0]),
            ),
            {"eps": 1.0},
            "visible example: the same, with b None",
            (np.array([1.0, 1.0 / 3.0]).reshape(2, 1, 1, 1), np.array([-1.0, 1.0 / 3.0])),
        ),
    ),
    misconceptions=(
        FOLD_SCALE_WRONG_AXIS,
        FOLD_NO_SQRT,
        dg.EPS_OUTSIDE_SQRT,
        FOLD_BIAS_NOT_SCALED,
        FOLD_BIAS_IGNORED,
        FOLD_BETA_SCALED,
        FOLD_BIAS_NONE,
    ),
    new_arrays=True,
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# residual_block_forward
# ---------------------------------------------------------------------------------------------


def _conv(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    return reference("conv2d_forward")(x, w, None, stride, padding)


def _relu(v: np.ndarray) -> np.ndarray:
    return np.maximum(v, 0.0)


def _residual(
    x: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
    stride: int,
    w_proj: np.ndarray | None,
    *,
    final_relu: bool = True,
    relu_before_add: bool = False,
    inner_relu: bool = True,
    stride_first: bool = True,
    use_proj: bool = True,
    padding: int = 1,
    flip: bool = False,
) -> np.ndarray:
    if flip:
        w1, w2 = w1[..., ::-1, ::-1], w2[..., ::-1, ::-1]
    h = _conv(x, w1, stride if stride_first else 1, padding)
    if inner_relu:
        h = _relu(h)
    y = _conv(h, w2, 1 if stride_first else stride, padding)
    shortcut = x if (w_proj is None or not use_proj) else _conv(x, w_proj, stride, 0)
    if relu_before_add:
        y = _relu(y)
    total = y + shortcut
    return _relu(total) if final_relu else total


def _residual_variants(t: Trial) -> list[Variant]:
    a = t.a
    x, w1, w2, s, wp = a["x"], a["w1"], a["w2"], a["stride"], a["w_proj"]
    options = [
        ("final_relu_missing", {"final_relu": False}),
        ("relu_before_add", {"relu_before_add": True}),
        ("relu_before_add", {"relu_before_add": True, "final_relu": False}),
        ("inner_relu_missing", {"inner_relu": False}),
        ("stride_on_second_conv", {"stride_first": False}),
        ("projection_ignored", {"use_proj": False}),
        ("conv_padding_missing", {"padding": 0}),
        ("kernel_flipped", {"flip": True}),
    ]
    found = []
    for key, flags in options:
        with contextlib.suppress(ValueError):
            found.append(Variant(key, _residual(x, w1, w2, s, wp, **flags)))
    n, f = x.shape[0], w1.shape[0]
    expected = t.expected
    h1 = (x.shape[2] - 3) // s + 1
    w1_ = (x.shape[3] - 3) // s + 1
    found.append(Variant("conv_padding_missing", (n, f, h1 - 2, w1_ - 2), True))
    if s > 1:
        h2 = (expected.shape[2] - 1) // s + 1
        w2_ = (expected.shape[3] - 1) // s + 1
        found.append(Variant("stride_on_second_conv", (n, f, h2, w2_), True))
    return keep_different(found, expected)


def _judge_residual(t: Trial, out: object) -> Verdict:
    return judge_array(t.case, "the output", out, t.expected, lambda: _residual_variants(t))


def _residual_error_variants(t: Trial) -> list[Variant]:
    a = t.a
    with np.errstate(all="ignore"), contextlib.suppress(ValueError):
        x, w1, w2, s = a["x"], a["w1"], a["w2"], a["stride"]
        y = _conv(_relu(_conv(x, w1, s, 1)), w2, 1, 1)
        return [Variant("shortcut_unchecked", _relu(y + x))]
    return []


def _judge_residual_errors(t: Trial, out: object) -> Verdict:
    if isinstance(t.expected, Raised):
        return expect_value_error(t, out, _residual_error_variants(t), key="shortcut_unchecked")
    if isinstance(out, Raised):
        return raised(t, out)
    return _judge_residual(t, out)


def _residual_label(x: np.ndarray, f: int, stride: int, proj: bool) -> str:
    return f"x {dims(x)}, F={f}, stride {stride}, " + ("w_proj given" if proj else "w_proj None")


def _residual_inputs(rng: np.random.Generator, table: list[tuple]) -> list[Inputs]:
    found = []
    for shape, f, stride, proj in table:
        x = normal(rng, *shape)
        c = shape[1]
        w1 = normal(rng, f, c, 3, 3) / 3
        w2 = normal(rng, f, f, 3, 3) / 3
        args: tuple = (x, w1, w2)
        kwargs: dict[str, Any] = {}
        if stride != 1:
            kwargs["stride"] = stride
        if proj:
            kwargs["w_proj"] = normal(rng, f, c, 1, 1)
        found.append(Inputs(args, kwargs, _residual_label(x, f, stride, proj)))
    return found


def _draw_residual(rng: np.random.Generator) -> list[Inputs]:
    return _residual_inputs(rng, [((2, 3, 5, 6), 3, 1, False), ((1, 2, 4, 4), 2, 1, False), ((2, 1, 6, 3), 1, 1, False)])


def _draw_residual_projection(rng: np.random.Generator) -> list[Inputs]:
    return _residual_inputs(
        rng,
        [
            ((2, 2, 5, 4), 2, 1, True),  # F = C, stride 1: the projection still applies
            ((2, 2, 6, 8), 3, 2, True),
            ((1, 3, 7, 6), 4, 2, True),  # odd H: the sizes round down
            ((1, 2, 9, 7), 3, 3, True),
        ],
    )


def _draw_residual_errors(rng: np.random.Generator) -> list[Inputs]:
    return _residual_inputs(
        rng,
        [
            ((1, 1, 4, 5), 2, 1, False),  # (1, 2, 4, 5) + (1, 1, 4, 5) would broadcast
            ((2, 2, 2, 2), 2, 2, False),  # (2, 2, 1, 1) + (2, 2, 2, 2) would broadcast too
            ((1, 2, 6, 6), 2, 2, False),
            ((1, 3, 4, 4), 2, 1, False),
        ],
    )


_RB_X = np.array([[-1.0, 2.0], [3.0, -4.0]]).reshape(1, 1, 2, 2)
_CENTRE = np.zeros((1, 1, 3, 3))
_CENTRE[0, 0, 1, 1] = 1.0
_RB_X2 = np.arange(32.0).reshape(1, 2, 4, 4)

RESIDUAL_BLOCK_FORWARD = Exercise(
    name="residual_block_forward",
    summary="a basic residual block: two 3x3 convolutions and an identity or 1x1 shortcut",
    tests=(
        HiddenTest(
            "test_residual_block_forward",
            2.0,
            "identity shortcuts, stride 1, several channels, H != W",
            _draw_residual,
        ),
        HiddenTest(
            "test_residual_block_forward_projection",
            2.0,
            "1x1 projection shortcuts with strides 1, 2 and 3 and odd sizes",
            _draw_residual_projection,
        ),
        HiddenTest(
            "test_residual_block_forward_errors",
            1.0,
            "a shortcut of the wrong shape raises ValueError, also where NumPy would broadcast it",
            _draw_residual_errors,
        ),
    ),
    judge=_judge_residual_errors,
    visible=(
        Visible(
            (_RB_X, _CENTRE, -0.5 * _CENTRE),
            {},
            "visible example: x = [[-1, 2], [3, -4]] as (1, 1, 2, 2), w1 = the kernel that "
            "copies (1 in the centre), w2 = -0.5 times it",
            np.array([[[[0.0, 1.0], [1.5, 0.0]]]]),
        ),
        Visible(
            (_RB_X2, np.zeros((1, 2, 3, 3)), np.zeros((1, 1, 3, 3))),
            {"stride": 2, "w_proj": np.ones((1, 2, 1, 1))},
            "visible example: x = np.arange(32.0).reshape(1, 2, 4, 4), w1 and w2 zeros, stride 2, "
            "w_proj = np.ones((1, 2, 1, 1))",
            (_RB_X2[:, 0:1, ::2, ::2] + _RB_X2[:, 1:2, ::2, ::2]),
        ),
        Visible(
            (np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), np.ones((2, 2, 3, 3))),
            {},
            "visible example: x = np.ones((1, 1, 4, 4)) (C=1), F=2, w_proj None",
            Raised("ValueError", ""),
        ),
    ),
    misconceptions=(
        FINAL_RELU_MISSING,
        RELU_BEFORE_ADD,
        INNER_RELU_MISSING,
        STRIDE_ON_SECOND_CONV,
        PROJECTION_IGNORED,
        SHORTCUT_UNCHECKED,
        CONV_PADDING_MISSING,
        dg.KERNEL_FLIPPED,
    ),
    judges_errors=True,
    raised_hints=(("ValueError", "negative dimensions", "conv_padding_missing"),),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# dense_block_forward
# ---------------------------------------------------------------------------------------------


def _dense(
    x: np.ndarray,
    weights: list[np.ndarray],
    *,
    order: str = "forward",
    relu: str = "before",
    keep: str = "all",
    flip: bool = False,
) -> np.ndarray:
    features = [x]
    for w in weights:
        if flip:
            w = w[..., ::-1, ::-1]
        stacked = np.concatenate(features if order == "forward" else features[::-1], axis=1)
        if relu == "before":
            new = _conv(_relu(stacked), w, 1, 1)
        elif relu == "after":
            new = _relu(_conv(stacked, w, 1, 1))
        elif relu == "kept":
            features = [_relu(f) for f in features]
            stacked = np.concatenate(features if order == "forward" else features[::-1], axis=1)
            new = _conv(stacked, w, 1, 1)
        else:
            new = _conv(stacked, w, 1, 1)
        features.append(new)
    if keep == "new":
        features = features[1:]
    elif keep == "last":
        features = features[-1:]
    if order != "forward":
        features = features[::-1]
    return np.concatenate(features, axis=1)


def _dense_variants(t: Trial) -> list[Variant]:
    x, weights = t.a["x"], list(t.a["weights"])
    options = [
        ("dense_order_reversed", {"order": "reversed"}),
        ("dense_relu_missing", {"relu": "none"}),
        ("dense_relu_after_conv", {"relu": "after"}),
        ("dense_relu_kept", {"relu": "kept"}),
        ("kernel_flipped", {"flip": True}),
    ]
    found = []
    for key, flags in options:
        with contextlib.suppress(ValueError):
            found.append(Variant(key, _dense(x, weights, **flags)))
    if weights:
        found.append(Variant("dense_missing_features", _dense(x, weights, keep="new")))
        found.append(Variant("dense_missing_features", _dense(x, weights, keep="last")))
        found.append(Variant("dense_relu_kept", np.concatenate([_relu(x), t.expected[:, x.shape[1] :]], axis=1)))
    return keep_different(found, t.expected)


def _judge_dense(t: Trial, out: object) -> Verdict:
    return judge_array(t.case, "the output", out, t.expected, lambda: _dense_variants(t))


def _dense_inputs(rng: np.random.Generator, table: list[tuple]) -> list[Inputs]:
    found = []
    for shape, growth, layers in table:
        x = normal(rng, *shape)
        c = shape[1]
        weights = [normal(rng, growth, c + i * growth, 3, 3) / 3 for i in range(layers)]
        label = f"x {dims(x)}, L={layers} layers of growth k={growth}"
        found.append(Inputs((x, weights), {}, label))
    return found


def _draw_dense(rng: np.random.Generator) -> list[Inputs]:
    return _dense_inputs(rng, [((2, 3, 5, 4), 2, 3), ((1, 2, 4, 6), 3, 2)])


def _draw_dense_layers(rng: np.random.Generator) -> list[Inputs]:
    return _dense_inputs(
        rng, [((2, 1, 3, 5), 1, 4), ((1, 4, 4, 3), 2, 1), ((2, 2, 3, 3), 2, 0)]
    )


DENSE_BLOCK_FORWARD = Exercise(
    name="dense_block_forward",
    summary="a dense block: each layer sees the concatenation of all earlier features",
    tests=(
        HiddenTest(
            "test_dense_block_forward",
            2.0,
            "three and two layers of growth 2 and 3 on several channels, H != W",
            _draw_dense,
        ),
        HiddenTest(
            "test_dense_block_forward_layers",
            2.0,
            "four layers of growth 1, one layer, and no layer at all (x, as a new array)",
            _draw_dense_layers,
        ),
    ),
    judge=_judge_dense,
    visible=(
        Visible(
            (np.ones((1, 1, 2, 2)), [np.ones((1, 1, 3, 3))]),
            {},
            "visible example: x = np.ones((1, 1, 2, 2)), one layer of ones (1, 1, 3, 3)",
            np.concatenate([np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 4.0)], axis=1),
        ),
        Visible(
            (np.ones((1, 1, 2, 2)), [np.ones((1, 1, 3, 3)), np.ones((1, 2, 3, 3))]),
            {},
            "visible example: the same x, two layers of ones (1, 1, 3, 3) and (1, 2, 3, 3)",
            np.concatenate(
                [np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 4.0), np.full((1, 1, 2, 2), 20.0)], axis=1
            ),
        ),
    ),
    misconceptions=(
        DENSE_ORDER_REVERSED,
        DENSE_RELU_MISSING,
        DENSE_RELU_AFTER_CONV,
        DENSE_RELU_KEPT,
        DENSE_MISSING_FEATURES,
        dg.KERNEL_FLIPPED,
    ),
    new_arrays=True,
    **POLICY,
)

ASSIGNMENT = Assignment(
    name="architectures",
    title="Batch normalisation, residual and dense blocks",
    chapters=(
        Chapter(11, "Batch normalisation", "book/part2/batch-norm.md"),
        Chapter(12, "Residual and dense connections: ResNet and DenseNet", "book/part2/resnet-densenet.md"),
    ),
    functions=(BATCHNORM_FORWARD, BATCHNORM_BACKWARD, FOLD_BATCHNORM, RESIDUAL_BLOCK_FORWARD, DENSE_BLOCK_FORWARD),
    graded_on="batches with channels of very different scales, H != W, momentum and eps away "
    "from their defaults, evaluation mode, projection shortcuts with strides and odd sizes, "
    "shortcuts that must be rejected, and dense blocks of up to four layers",
)
