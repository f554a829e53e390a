"""NumPy-in, NumPy-out reference answers for the autograded functions.

Each function here has the signature of the exercise it answers and computes the answer with
course_lib's PyTorch operators or PyTorch's own layers (``nn.BatchNorm2d``, autograd), in
float64; the box operations are course_lib's, which give torchvision.ops' results. The hidden
tests compare a student's output with these.
Nothing here is meant for students: while a student's code runs, these are switched off by
:func:`course_lib.grading.guard.forbid_ready_made`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

import course_lib

__all__ = [
    "corr2d",
    "pad2d",
    "conv2d_forward",
    "max_pool2d_forward",
    "avg_pool2d_forward",
    "conv_output_size",
    "pool_output_size",
    "conv2d_output_shape",
    "conv2d_num_params",
    "layer_output_shapes",
    "relu_backward",
    "max_pool2d_backward",
    "avg_pool2d_backward",
    "conv2d_backward",
    "numerical_gradient",
    "batchnorm_forward",
    "batchnorm_backward",
    "fold_batchnorm",
    "residual_block_forward",
    "dense_block_forward",
    "box_iou",
    "nms",
    "batched_nms",
    "match_detections",
    "average_precision",
    "encode_boxes",
    "decode_boxes",
    "pair",
]

Pair = int | Sequence[int]


def pair(value: Pair) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(2, 1) -> (2, 1)``."""
    if isinstance(value, int | np.integer):
        return (int(value), int(value))
    first, second = value
    return (int(first), int(second))


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float64, copy=True))


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float64, copy=True)


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """x: (H, W), k: (kh, kw) -> (H - kh + 1, W - kw + 1)."""
    return _np(course_lib.corr2d(_t(x), _t(k)))


def pad2d(x: np.ndarray, padding: Pair) -> np.ndarray:
    """Zero-pad the last two axes of x by ``padding`` on each side."""
    return _np(course_lib.pad2d(_t(x), pair(padding)))


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair = 1, padding: Pair = 0
) -> np.ndarray:
    """x: (N, C, H, W), w: (F, C, kh, kw), b: (F,) or None -> (N, F, H', W')."""
    bias = None if b is None else _t(b)
    out = course_lib.conv2d(_t(x), _t(w), bias, stride=pair(stride), padding=pair(padding))
    return _np(out)


def max_pool2d_forward(x: np.ndarray, kernel_size: Pair, stride: Pair | None = None) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'), floor mode, no padding."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.max_pool2d(_t(x), pair(kernel_size), stride=pair(stride)))


def avg_pool2d_forward(x: np.ndarray, kernel_size: Pair, stride: Pair | None = None) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'), the mean of each window."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.avg_pool2d(_t(x), pair(kernel_size), stride=pair(stride)))


# ---------------------------------------------------------------------------------------------
# output shapes
# ---------------------------------------------------------------------------------------------


def _check_range(kernel_size: int, stride: int, padding: int, dilation: int) -> None:
    if kernel_size < 1 or stride < 1 or padding < 0 or dilation < 1:
        raise ValueError(
            f"out of range: kernel_size={kernel_size}, stride={stride}, padding={padding}, "
            f"dilation={dilation}"
        )


def conv_output_size(
    n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """``(n + 2p - d(k-1) - 1) // s + 1``; ValueError when out of range or < 1."""
    _check_range(kernel_size, stride, padding, dilation)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return int(course_lib.conv_output_size(n, kernel_size, stride, padding, dilation))


def pool_output_size(n: int, kernel_size: int, stride: int | None = None, padding: int = 0) -> int:
    """Pooling output size in floor mode; stride defaults to kernel_size."""
    stride = kernel_size if stride is None else stride
    _check_range(kernel_size, stride, padding, 1)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    # The exercise's rule is the convolution's rule; PyTorch's extra limit on pooling padding
    # (at most half the kernel) is not part of the contract, so the conv formula answers here.
    return int(course_lib.conv_output_size(n, kernel_size, stride, padding, 1))


def conv2d_output_shape(
    input_shape: Sequence[int],
    out_channels: int,
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
) -> tuple[int, int, int]:
    """input_shape (C, H, W) -> (out_channels, H', W')."""
    _, height, width = input_shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    return (
        int(out_channels),
        conv_output_size(height, kh, sh, ph),
        conv_output_size(width, kw, sw, pw),
    )


def conv2d_num_params(
    in_channels: int, out_channels: int, kernel_size: Pair, bias: bool = True
) -> int:
    """Weights ``out * in * kh * kw`` plus ``out`` biases when ``bias``."""
    conv = nn.Conv2d(in_channels, out_channels, pair(kernel_size), bias=bias, device="meta")
    return int(sum(p.numel() for p in conv.parameters()))


def layer_output_shapes(
    layers: Sequence[nn.Module], input_shape: Sequence[int]
) -> list[tuple[int, ...]]:
    """Shapes (no batch axis) after each layer, by running copies of the layers on zeros."""
    shapes: list[tuple[int, ...]] = []
    x = torch.zeros((1, *input_shape), dtype=torch.float32)
    with torch.no_grad():
        for layer in layers:
            x = copy.deepcopy(layer).eval()(x)
            shapes.append(tuple(int(s) for s in x.shape[1:]))
    return shapes


# ---------------------------------------------------------------------------------------------
# backprop
# ---------------------------------------------------------------------------------------------


def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx = dout where x > 0, else 0."""
    return _np(course_lib.relu_backward(_t(dout), _t(x)))


def max_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: Pair, stride: Pair | None = None
) -> np.ndarray:
    """dx shaped like x; ties go to the first maximum of a window, overlaps add up."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.max_pool2d_backward(_t(dout), _t(x), pair(kernel_size), pair(stride)))


def avg_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: Pair, stride: Pair | None = None
) -> np.ndarray:
    """dx shaped like x."""
    stride = kernel_size if stride is None else stride
    return _np(course_lib.avg_pool2d_backward(_t(dout), _t(x), pair(kernel_size), pair(stride)))


def conv2d_backward(
    dout: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair = 1,
    padding: Pair = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(dx, dw, db) of conv2d_forward(x, w, b, stride, padding); db is None when b is None."""
    bias = None if b is None else _t(b)
    dx, dw, db = course_lib.conv2d_backward(
        _t(dout), _t(x), _t(w), bias, stride=pair(stride), padding=pair(padding)
    )
    return _np(dx), _np(dw), None if b is None else _np(db)


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Centred differences ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for each entry of x."""

    def f_torch(t: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float(f(t.detach().cpu().numpy())), dtype=torch.float64)

    return _np(course_lib.numerical_gradient(f_torch, _t(x), h=h))


# ---------------------------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------------------------


def _batch_norm_layer(
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float,
    eps: float,
) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(len(gamma), eps=eps, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(_t(gamma))
        bn.bias.copy_(_t(beta))
        bn.running_mean.copy_(_t(running_mean))
        bn.running_var.copy_(_t(running_var))
    return bn


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(out, new_running_mean, new_running_var) of ``nn.BatchNorm2d`` in the given mode."""
    bn = _batch_norm_layer(gamma, beta, running_mean, running_var, momentum, eps)
    bn.train(bool(training))
    with torch.no_grad():
        out = bn(_t(x))
    return _np(out), _np(bn.running_mean), _np(bn.running_var)


def batchnorm_backward(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) of training-mode batch norm, by autograd."""
    xt = _t(x).requires_grad_(True)
    weight = _t(gamma).requires_grad_(True)
    bias = torch.zeros_like(weight, requires_grad=True)
    out = torch.nn.functional.batch_norm(xt, None, None, weight, bias, training=True, eps=eps)
    dx, dgamma, dbeta = torch.autograd.grad(out, (xt, weight, bias), _t(dout))
    return _np(dx), _np(dgamma), _np(dbeta)


def fold_batchnorm(
    w: np.ndarray,
    b: np.ndarray | None,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """(w_folded, b_folded) of ``course_lib.fold_batch_norm`` for a convolution with w, b."""
    f, c, kh, kw = w.shape
    conv = nn.Conv2d(c, f, (kh, kw), bias=b is not None, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(_t(w))
        if b is not None:
            conv.bias.copy_(_t(b))
    bn = _batch_norm_layer(gamma, beta, running_mean, running_var, 0.1, eps).eval()
    folded = course_lib.fold_batch_norm(conv, bn)
    return _np(folded.weight), _np(folded.bias)


def residual_block_forward(
    x: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
    stride: int = 1,
    w_proj: np.ndarray | None = None,
) -> np.ndarray:
    """relu(conv(relu(conv(x, w1, stride, 1)), w2, 1, 1) + shortcut), without biases."""
    conv = torch.nn.functional.conv2d
    xt = _t(x)
    h = torch.relu(conv(xt, _t(w1), stride=stride, padding=1))
    y = conv(h, _t(w2), stride=1, padding=1)
    shortcut = xt if w_proj is None else conv(xt, _t(w_proj), stride=stride)
    if shortcut.shape != y.shape:
        raise ValueError(
            f"the shortcut has shape {tuple(shortcut.shape)} but the block's output "
            f"{tuple(y.shape)}: give w_proj"
        )
    return _np(torch.relu(y + shortcut))


def dense_block_forward(x: np.ndarray, weights: Sequence[np.ndarray]) -> np.ndarray:
    """The concatenation of x and every layer's conv(relu(features), w, padding=1)."""
    features = [_t(x)]
    for w in weights:
        inputs = torch.relu(torch.cat(features, dim=1))
        features.append(torch.nn.functional.conv2d(inputs, _t(w), padding=1))
    return _np(torch.cat(features, dim=1))


# ---------------------------------------------------------------------------------------------
# detection
# ---------------------------------------------------------------------------------------------


def _boxes(boxes: np.ndarray) -> torch.Tensor:
    return _t(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) IoU of every pair, by ``course_lib.detection.box_iou``.

    course_lib's box operations give torchvision.ops' results (tests/test_checks.py compares
    them); they are used here because they need no compiled extension in the grader's kernel.
    """
    from course_lib import detection

    return _np(detection.box_iou(_boxes(boxes1), _boxes(boxes2)))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Kept indices (K,) int64 by decreasing score (``torchvision.ops.nms``'s result)."""
    from course_lib import detection

    keep = detection.nms(_boxes(boxes), _t(scores), float(iou_threshold))
    return keep.numpy().astype(np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Kept indices (K,) int64 by decreasing score (``torchvision.ops.batched_nms``'s result)."""
    from course_lib import detection

    labels_t = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    keep = detection.batched_nms(_boxes(boxes), _t(scores), labels_t, float(iou_threshold))
    return keep.numpy().astype(np.int64)


def match_detections(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    gt_boxes: np.ndarray,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """(P,) bool: true positives by COCO's greedy rule (best not yet matched box, IoU >= t)."""
    from course_lib import detection

    preds, gts = _boxes(pred_boxes), _boxes(gt_boxes)
    flags = np.zeros(preds.shape[0], dtype=bool)
    if preds.shape[0] == 0 or gts.shape[0] == 0:
        return flags
    iou = detection.box_iou(preds, gts)
    order = torch.sort(_t(pred_scores), descending=True, stable=True).indices
    matched = torch.zeros(gts.shape[0], dtype=torch.bool)
    for p in order.tolist():
        candidates = iou[p].masked_fill(matched, -1.0)
        best = int(torch.argmax(candidates))
        if float(candidates[best]) >= iou_threshold:
            matched[best] = True
            flags[p] = True
    return flags


def average_precision(
    scores: np.ndarray, is_true_positive: np.ndarray, num_ground_truth: int
) -> float:
    """All-point interpolated AP of detections sorted by decreasing score (ties by index)."""
    from course_lib.detection import _ap_from_curve

    if num_ground_truth < 1:
        raise ValueError(f"num_ground_truth must be >= 1, got {num_ground_truth}")
    order = torch.sort(_t(scores), descending=True, stable=True).indices
    hits = torch.from_numpy(np.asarray(is_true_positive, dtype=bool))[order].to(torch.float64)
    if hits.numel() == 0:
        return 0.0
    tp = torch.cumsum(hits, dim=0)
    precision = tp / torch.arange(1, hits.numel() + 1, dtype=torch.float64)
    recall = tp / num_ground_truth
    return float(_ap_from_curve(precision, recall, "all-point"))


def encode_boxes(anchors: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 4) offsets (tx, ty, tw, th) of boxes relative to anchors (Faster R-CNN)."""
    from course_lib.detection import encode_boxes as encode

    return _np(encode(_boxes(boxes), _boxes(anchors)))


def decode_boxes(anchors: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """(N, 4) corners of the boxes that the offsets describe relative to anchors."""
    from course_lib.detection import decode_boxes as decode

    return _np(decode(_t(np.asarray(deltas, dtype=np.float64).reshape(-1, 4)), _boxes(anchors)))
