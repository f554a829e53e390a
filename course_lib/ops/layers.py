"""Dropout, flatten, linear, batch normalisation, softmax cross-entropy and their gradients.

Shapes follow ``torch.nn.functional``: a linear layer's weight is ``(out_features,
in_features)``, batch normalisation works per channel on ``(N, C)`` or ``(N, C, H, W)``, and
cross-entropy takes raw logits ``(N, num_classes)`` and integer class indices ``(N,)``.
"""

from __future__ import annotations

import torch

from .._validate import check_same_device_dtype, check_tensor
from .activations import log_softmax, softmax

__all__ = [
    "dropout",
    "dropout_backward",
    "flatten",
    "linear",
    "linear_backward",
    "batch_norm",
    "batch_norm_backward",
    "cross_entropy",
    "softmax_cross_entropy_backward",
]


def _check_p(p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}")


def _check_same_shape(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} has shape {tuple(a.shape)} but {b_name} has shape {tuple(b.shape)}; "
            "they must match"
        )


# --------------------------------------------------------------------------------------------
# Dropout and flatten
# --------------------------------------------------------------------------------------------


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inverted dropout. x: any shape -> (out, mask), out shaped like x.

    At training time each entry is zeroed with probability ``p`` and the kept entries are
    scaled by ``1 / (1 - p)``, so the expected value of every entry is unchanged and nothing
    needs rescaling at test time. ``mask`` (bool, shaped like x) is True where an entry was
    kept; pass it to :func:`dropout_backward`. At evaluation (``training=False``) dropout is
    the identity: ``out`` is a copy of x and ``mask`` is ``None``.

    ``generator`` (a ``torch.Generator``) makes the mask reproducible.
    """
    check_tensor(x, "x")
    _check_p(p)
    if not training:
        return x.clone(), None
    device = generator.device if generator is not None else x.device
    uniform = torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype)
    mask = (uniform >= p).to(x.device)
    return x * mask / (1 - p), mask


def dropout_backward(dout: torch.Tensor, mask: torch.Tensor | None, p: float = 0.5) -> torch.Tensor:
    """Gradient of :func:`dropout`. dout: shaped like x; mask: from the forward pass.

    dx = ``dout * mask / (1 - p)`` (the kept entries pass their gradient, scaled like the
    forward pass); with ``mask=None`` (evaluation mode) dx is a copy of dout.
    """
    check_tensor(dout, "dout")
    _check_p(p)
    if mask is None:
        return dout.clone()
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"expected mask to be a torch.Tensor or None, got {type(mask).__name__}")
    _check_same_shape(dout, "dout", mask, "mask")
    if mask.device != dout.device:
        raise ValueError(f"mask is on {mask.device} but dout is on {dout.device}")
    return dout * mask / (1 - p)


def flatten(x: torch.Tensor, start_dim: int = 1) -> torch.Tensor:
    """Merge the axes from ``start_dim`` to the last into one.

    x: (N, C, H, W) -> (N, C*H*W) with the default ``start_dim=1`` (the batch axis stays).
    Returns a view when possible, like ``torch.flatten``.
    """
    check_tensor(x, "x")
    if not -x.dim() <= start_dim < max(x.dim(), 1):
        raise ValueError(f"start_dim {start_dim} is out of range for x of shape {tuple(x.shape)}")
    start_dim = start_dim % max(x.dim(), 1)
    return x.reshape(*x.shape[:start_dim], -1)


# --------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------


def _check_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    check_tensor(x, "x", ndim=2, layout="(N, in_features)")
    check_tensor(weight, "weight", ndim=2, layout="(out_features, in_features)")
    if bias is not None:
        check_tensor(bias, "bias", ndim=1, layout="(out_features,)")
    check_same_device_dtype(x=x, weight=weight, bias=bias)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} features but weight {tuple(weight.shape)} expects "
            f"in_features = {weight.shape[1]}"
        )
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise ValueError(
            f"bias has shape {tuple(bias.shape)} but weight {tuple(weight.shape)} has "
            f"out_features = {weight.shape[0]}"
        )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Fully connected layer ``x @ weight.T + bias``.

    x: (N, in_features); weight: (out_features, in_features); bias: (out_features,) or None
    -> (N, out_features).
    """
    _check_linear(x, weight, bias)
    out = x @ weight.T
    return out + bias if bias is not None else out


def linear_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`linear`: returns (dx, dweight, dbias).

    dout: (N, out_features); x: (N, in_features); weight: (out_features, in_features).
    dx = dout @ weight: (N, in_features); dweight = dout.T @ x: (out_features, in_features);
    dbias = dout summed over the batch: (out_features,), or ``None`` when ``bias`` is None
    (the layer had no bias).
    """
    _check_linear(x, weight, bias)
    check_tensor(dout, "dout", ndim=2, layout="(N, out_features)")
    check_same_device_dtype(x=x, dout=dout)
    expected = (x.shape[0], weight.shape[0])
    if tuple(dout.shape) != expected:
        raise ValueError(
            f"dout has shape {tuple(dout.shape)} but the layer's output has shape {expected}"
        )
    dx = dout @ weight
    dweight = dout.T @ x
    dbias = dout.sum(dim=0) if bias is not None else None
    return dx, dweight, dbias


# --------------------------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------------------------


def _channel_axes(x: torch.Tensor) -> tuple[int, ...]:
    """The axes batch norm averages over: all but the channel axis 1."""
    return (0,) if x.dim() == 2 else (0, 2, 3)


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (C,) tensor shaped to broadcast against x: (1, C) or (1, C, 1, 1)."""
    return t.view(1, -1) if x.dim() == 2 else t.view(1, -1, 1, 1)


def _check_batch_norm_input(x: torch.Tensor) -> None:
    check_tensor(x, "x")
    if x.dim() not in (2, 4):
        raise ValueError(
            f"expected x with 2 dims (N, C) or 4 dims (N, C, H, W), got shape {tuple(x.shape)}"
        )


def _check_channel_vector(t: torch.Tensor | None, name: str, x: torch.Tensor) -> None:
    if t is None:
        return
    check_tensor(t, name, ndim=1, layout="(C,)")
    if t.shape[0] != x.shape[1]:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)} but x has C = {x.shape[1]} channels; "
            f"expected ({x.shape[1]},)"
        )


def batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalisation per channel, like ``F.batch_norm``.

    x: (N, C) or (N, C, H, W); weight (gamma), bias (beta), running_mean, running_var: (C,)
    or None (no scale / no shift / no running statistics). Returns a tensor shaped like x.

    Training: normalise with the batch mean and the biased batch variance over all axes but
    the channel, then, if given, update the running statistics **in place**:
    ``running = (1 - momentum) * running + momentum * batch_statistic``, where the running
    variance takes the *unbiased* batch variance (divided by m - 1, m = values per channel).
    Evaluation: normalise with running_mean and running_var (both required).
    """
    _check_batch_norm_input(x)
    for name, t in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        _check_channel_vector(t, name, x)
    check_same_device_dtype(
        x=x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var
    )
    axes = _channel_axes(x)
    if training:
        count = x.numel() // x.shape[1]
        if count < 2:
            raise ValueError(
                f"batch norm in training needs more than 1 value per channel, got x of shape "
                f"{tuple(x.shape)}"
            )
        mean = x.mean(dim=axes)
        var = x.var(dim=axes, unbiased=False)
        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(momentum * mean)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch norm in evaluation needs running_mean and running_var")
        mean, var = running_mean, running_var
    out = (x - _per_channel(mean, x)) / torch.sqrt(_per_channel(var, x) + eps)
    if weight is not None:
        out = out * _per_channel(weight, x)
    if bias is not None:
        out = out + _per_channel(bias, x)
    return out


def batch_norm_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`batch_norm` in training mode: returns (dx, dweight, dbias).

    dout, x: (N, C) or (N, C, H, W); weight: (C,) or None (a scale of 1). The batch mean and
    variance are recomputed from x. With ``x_hat = (x - mean) / sqrt(var + eps)`` and ``m``
    values per channel (sums run over all axes but the channel):

    * dbias = sum(dout), dweight = sum(dout * x_hat), both (C,);
    * dx = weight / sqrt(var + eps) * (dout - dbias / m - x_hat * dweight / m), shaped like x.
    """
    _check_batch_norm_input(x)
    check_tensor(dout, "dout")
    _check_same_shape(dout, "dout", x, "x")
    _check_channel_vector(weight, "weight", x)
    check_same_device_dtype(x=x, dout=dout, weight=weight)
    axes = _channel_axes(x)
    count = x.numel() // x.shape[1]
    mean = x.mean(dim=axes)
    inv_std = 1 / torch.sqrt(x.var(dim=axes, unbiased=False) + eps)
    x_hat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
    dbias = dout.sum(dim=axes)
    dweight = (dout * x_hat).sum(dim=axes)
    scale = inv_std if weight is None else weight * inv_std
    dx = _per_channel(scale, x) * (
        dout - _per_channel(dbias / count, x) - x_hat * _per_channel(dweight / count, x)
    )
    return dx, dweight, dbias


# --------------------------------------------------------------------------------------------
# Softmax cross-entropy
# --------------------------------------------------------------------------------------------


def _check_classification(logits: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor(logits, "logits", ndim=2, layout="(N, num_classes)")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"expected target to be a torch.Tensor, got {type(target).__name__}")
    if target.dim() != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"expected target of shape (N,) = ({logits.shape[0]},) with one class index per "
            f"row of logits, got shape {tuple(target.shape)}"
        )
    if target.dtype != torch.int64:
        raise TypeError(f"expected target to hold class indices (torch.int64), got {target.dtype}")
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits is on {logits.device}")
    if logits.shape[0] == 0:
        raise ValueError("expected at least one example, got an empty batch")
    num_classes = logits.shape[1]
    if bool(((target < 0) | (target >= num_classes)).any()):
        raise ValueError(
            f"target holds class indices outside [0, {num_classes}) for {num_classes} classes"
        )


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Softmax cross-entropy from raw scores, like ``F.cross_entropy``.

    logits: (N, num_classes), unnormalised scores; target: (N,) int64 class indices.
    The loss of example i is ``-log_softmax(logits[i])[target[i]]`` (computed stably).
    reduction: ``"mean"`` (a scalar, the default), ``"sum"`` (a scalar) or ``"none"`` ((N,)).
    """
    _check_classification(logits, target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    losses = -log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def softmax_cross_entropy_backward(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient of ``cross_entropy(logits, target)`` (mean reduction) with respect to logits.

    logits: (N, num_classes); target: (N,) int64 -> dlogits: (N, num_classes),
    ``(softmax(logits) - one_hot(target)) / N``.
    """
    _check_classification(logits, target)
    n = logits.shape[0]
    dlogits = softmax(logits, dim=1)
    dlogits[torch.arange(n, device=logits.device), target] -= 1
    return dlogits / n


# --------------------------------------------------------------------------------------------
# Folding batch normalisation into the preceding convolution
# --------------------------------------------------------------------------------------------


def fold_batch_norm(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.nn.Conv2d:
    """A new convolution that computes ``bn(conv(x))`` with bn in evaluation mode.

    conv: ``nn.Conv2d`` with weight (C_out, C_in / groups, kH, kW) and bias (C_out,) or None;
    bn: ``nn.BatchNorm2d`` over C_out channels with running statistics. For an input
    x: (N, C_in, H, W) the returned ``nn.Conv2d`` (same kernel size, stride, padding, dilation,
    groups and padding mode, always with a bias) gives the (N, C_out, H_out, W_out) output of
    ``bn.eval()`` applied to ``conv(x)``. With ``s = gamma / sqrt(running_var + eps)`` per output
    channel (gamma = 1, beta = 0 when bn has no affine parameters, b = 0 when conv has no bias):

    * folded weight = ``s * weight`` (each output channel's filter scaled by its ``s``);
    * folded bias = ``s * (b - running_mean) + beta``.

    The arithmetic is done in float64 and the result has the dtype and device of conv's
    weight. Neither conv nor bn is changed. bn's training flag does not matter (the running
    statistics are used either way), but a bn without running statistics
    (``track_running_stats=False``) normalises with each batch's own statistics and cannot be
    folded.
    """
    if not isinstance(conv, torch.nn.Conv2d):
        raise TypeError(f"expected conv to be a torch.nn.Conv2d, got {type(conv).__name__}")
    if not isinstance(bn, torch.nn.BatchNorm2d):
        raise TypeError(f"expected bn to be a torch.nn.BatchNorm2d, got {type(bn).__name__}")
    for name, module in (("conv", conv), ("bn", bn)):
        if isinstance(module, torch.nn.modules.lazy.LazyModuleMixin) and (
            module.has_uninitialized_params()
        ):
            raise ValueError(
                f"{name} is a lazy module whose parameters are not materialised yet; run a "
                "forward pass (or give it its sizes) before folding"
            )
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"bn normalises {bn.num_features} channels but conv has out_channels = "
            f"{conv.out_channels}; expected a BatchNorm2d({conv.out_channels}) after this conv"
        )
    if bn.running_mean is None or bn.running_var is None:
        mode = "training" if bn.training else "evaluation"
        raise ValueError(
            f"bn (in {mode} mode) has no running statistics (track_running_stats=False), so it "
            "normalises every batch with that batch's own mean and variance, which no fixed "
            "convolution can reproduce; expected a BatchNorm2d with running statistics"
        )
    device = conv.weight.device
    for name, t in (
        ("bn.running_mean", bn.running_mean),
        ("bn.running_var", bn.running_var),
        ("bn.weight", bn.weight),
        ("bn.bias", bn.bias),
    ):
        if t is not None and t.device != device:
            raise ValueError(
                f"{name} is on {t.device} but conv.weight is on {device}; "
                "move them to the same device"
            )
    with torch.no_grad():
        wide = torch.float64
        var = bn.running_var.to(wide)
        if bool((var < 0).any()):
            raise ValueError("bn.running_var has negative entries; expected variances >= 0")
        gamma = bn.weight.to(wide) if bn.weight is not None else torch.ones_like(var)
        beta = bn.bias.to(wide) if bn.bias is not None else torch.zeros_like(var)
        scale = gamma / torch.sqrt(var + bn.eps)  # (C_out,)
        bias = conv.bias.to(wide) if conv.bias is not None else torch.zeros_like(var)
        folded_weight = conv.weight.to(wide) * scale.view(-1, 1, 1, 1)
        folded_bias = (bias - bn.running_mean.to(wide)) * scale + beta
        folded = torch.nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            kernel_size=conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=True,
            padding_mode=conv.padding_mode,
            device=device,
            dtype=conv.weight.dtype,
        )
        folded.weight.copy_(folded_weight)
        folded.bias.copy_(folded_bias)
    folded.train(conv.training)
    return folded


__all__.append("fold_batch_norm")
