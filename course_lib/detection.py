"""Object detection: boxes, IoU, non-maximum suppression, anchors and average precision.

Boxes are float tensors of shape ``(N, 4)`` in **corner format** ``(x1, y1, x2, y2)``: the
top-left and bottom-right corners in pixels, with ``x1 <= x2`` and ``y1 <= y2``; the width of
a box is ``x2 - x1`` (no "+1"), as in torchvision. Boxes of zero width or height are allowed
(their area is 0); boxes with ``x2 < x1`` or ``y2 < y1`` are rejected.

Each computation comes first as the clearest correct version; :func:`box_iou_naive` (a double
loop) sits beside the vectorised :func:`box_iou`. Tests compare them with ``torchvision.ops``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ._validate import check_positive_int, check_tensor, int_or_pair

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "box_area",
    "box_iou_naive",
    "box_iou",
    "box_xyxy_to_cxcywh",
    "box_cxcywh_to_xyxy",
    "nms",
    "batched_nms",
    "generate_anchors",
    "encode_boxes",
    "decode_boxes",
    "BACKGROUND",
    "IGNORED",
    "match_anchors",
    "sigmoid_focal_loss",
    "decode_detections",
    "PrecisionRecall",
    "precision_recall_curve",
    "average_precision",
    "MeanAveragePrecision",
    "mean_average_precision",
    "draw_boxes",
]

#: The ten IoU thresholds 0.50, 0.55, ..., 0.95 over which COCO averages its AP.
COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

Interpolation = Literal["all-point", "11-point", "101-point"]
_INTERPOLATIONS = ("all-point", "11-point", "101-point")
# The recall points of the interpolated APs, as the reference evaluators compute them in floating
# point (VOC 2007's development kit: arange(0, 1.1, 0.1); COCO's: linspace(0, 1, 101)), so that a
# recall that lands on a point (3/10 against 0.30000000000000004) is judged as they judge it.
_RECALL_POINTS = {
    "11-point": np.arange(0.0, 1.1, 0.1).tolist(),
    "101-point": np.linspace(0.0, 1.0, 101).tolist(),
}
Matching = Literal["voc", "coco"]
_MATCHINGS = ("voc", "coco")

# The largest log-scale a decoded box may have relative to its anchor (as in torchvision):
# stops exp() from overflowing for wild predictions early in training.
_MAX_LOG_SCALE = math.log(1000.0 / 16)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _check_boxes(boxes: object, name: str, fmt: str = "xyxy") -> torch.Tensor:
    """``boxes`` must be a float tensor ``(N, 4)``; in corner format also ``x1 <= x2, y1 <= y2``."""
    layout = "(N, 4) as (x1, y1, x2, y2)" if fmt == "xyxy" else "(N, 4) as (cx, cy, w, h)"
    check_tensor(boxes, name, ndim=2, layout=layout)
    assert isinstance(boxes, torch.Tensor)
    if boxes.shape[1] != 4:
        raise ValueError(f"expected {name} with shape {layout}, got shape {tuple(boxes.shape)}")
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    if fmt == "xyxy":
        bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(
                f"{name}[{i}] = {boxes[i].tolist()} has x2 < x1 or y2 < y1; expected corner "
                "format (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2"
            )
    else:
        if (boxes[:, 2:] < 0).any():
            i = int((boxes[:, 2:] < 0).any(dim=1).nonzero()[0])
            raise ValueError(f"{name}[{i}] = {boxes[i].tolist()} has a negative width or height")
    return boxes


def _check_scores(scores: object, name: str, n: int) -> torch.Tensor:
    check_tensor(scores, name, ndim=1, layout="(N,)")
    assert isinstance(scores, torch.Tensor)
    if scores.shape[0] != n:
        raise ValueError(
            f"expected {name} with one score per box ({n},), got {tuple(scores.shape)}"
        )
    if torch.isnan(scores).any():
        raise ValueError(f"{name} contains NaN")
    return scores


def _check_threshold(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Boxes and IoU
# ---------------------------------------------------------------------------------------------


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of boxes.

    boxes: ``(N, 4)`` as ``(x1, y1, x2, y2)``. Returns ``(N,)``: ``(x2 - x1) * (y2 - y1)``.
    """
    boxes = _check_boxes(boxes, "boxes")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou_naive(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair of boxes, one pair at a time (the clear version).

    boxes1: ``(N, 4)``, boxes2: ``(M, 4)``, both ``(x1, y1, x2, y2)``. Returns ``(N, M)`` with
    ``iou[i, j] = area(b1_i ∩ b2_j) / area(b1_i ∪ b2_j)``, in ``[0, 1]``. Where the union is
    empty (two boxes of zero area) the IoU is defined as 0.
    """
    boxes1 = _check_boxes(boxes1, "boxes1")
    boxes2 = _check_boxes(boxes2, "boxes2")
    iou = torch.zeros(boxes1.shape[0], boxes2.shape[0], dtype=boxes1.dtype, device=boxes1.device)
    for i, (ax1, ay1, ax2, ay2) in enumerate(boxes1.tolist()):
        for j, (bx1, by1, bx2, by2) in enumerate(boxes2.tolist()):
            # the intersection is the box between the larger top-left and the smaller
            # bottom-right corner; it is empty when those corners cross
            width = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            height = max(0.0, min(ay2, by2) - max(ay1, by1))
            intersection = width * height
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - intersection
            iou[i, j] = intersection / union if union > 0 else 0.0
    return iou


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair of boxes, vectorised by broadcasting.

    boxes1: ``(N, 4)``, boxes2: ``(M, 4)``, both ``(x1, y1, x2, y2)``. Returns ``(N, M)``;
    same values as :func:`box_iou_naive` (0 where the union is empty).
    """
    return _box_iou(_check_boxes(boxes1, "boxes1"), _check_boxes(boxes2, "boxes2"))


def _box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """:func:`box_iou` on boxes already checked (the inner loops of NMS and AP call it often)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)
    intersection = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=torch.finfo(union.dtype).tiny), 0)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """Corner format to centre format.

    boxes: ``(N, 4)`` as ``(x1, y1, x2, y2)``. Returns ``(N, 4)`` as ``(cx, cy, w, h)``.
    """
    boxes = _check_boxes(boxes, "boxes")
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=1)


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Centre format to corner format.

    boxes: ``(N, 4)`` as ``(cx, cy, w, h)`` with ``w, h >= 0``. Returns ``(N, 4)`` as
    ``(x1, y1, x2, y2)``.
    """
    boxes = _check_boxes(boxes, "boxes", fmt="cxcywh")
    cx, cy, w, h = boxes.unbind(dim=1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


# ---------------------------------------------------------------------------------------------
# Non-maximum suppression
# ---------------------------------------------------------------------------------------------


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    boxes: ``(N, 4)`` as ``(x1, y1, x2, y2)``; scores: ``(N,)``. Visits the boxes from the
    highest score down (equal scores in index order); a box is kept unless its IoU with an
    already kept box is *greater* than ``iou_threshold``. Returns the indices of the kept boxes,
    ``(K,)`` int64, by decreasing score (the same result as ``torchvision.ops.nms``).
    """
    boxes = _check_boxes(boxes, "boxes")
    scores = _check_scores(scores, "scores", boxes.shape[0])
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold")
    return _nms(boxes, scores, iou_threshold)


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """:func:`nms` on inputs already checked."""
    order = torch.sort(scores, descending=True, stable=True).indices
    # which boxes overlap which (compared in float64, as torchvision does): (N, N)
    overlapping = _box_iou(boxes, boxes).to(torch.float64) > iou_threshold
    suppressed = [False] * boxes.shape[0]
    keep: list[int] = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)  # the best box left: keep it ...
        for j in overlapping[i].nonzero().flatten().tolist():  # ... and suppress its overlaps
            suppressed[j] = True
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Non-maximum suppression separately for each class.

    boxes: ``(N, 4)``; scores: ``(N,)``; labels: ``(N,)`` integer class of each box. A box only
    suppresses boxes of its own class. Returns the kept indices ``(K,)`` int64 by decreasing
    score (equal scores in index order), like ``torchvision.ops.batched_nms``.
    """
    boxes = _check_boxes(boxes, "boxes")
    scores = _check_scores(scores, "scores", boxes.shape[0])
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError(f"expected labels as a 1-D tensor (N,), got {_describe(labels)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"expected labels with an integer dtype, got {labels.dtype}")
    if labels.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"expected one label per box ({boxes.shape[0]},), got {tuple(labels.shape)}"
        )
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold")
    kept = [
        members[_nms(boxes[members], scores[members], iou_threshold)]
        for members in (torch.nonzero(labels == c).flatten() for c in labels.unique())
    ]
    if not kept:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    keep = torch.cat(kept).sort().values  # index order, so that ties stay in index order
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Anchors and box encoding
# ---------------------------------------------------------------------------------------------


def _positive_numbers(values: object, name: str) -> list[float]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of positive numbers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{name} must contain positive numbers, got {values!r}")
        out.append(float(v))
    return out


def generate_anchors(
    feature_size: int | Sequence[int],
    stride: int | Sequence[int],
    sizes: Sequence[float],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Anchor boxes for every cell of a feature map, in image pixels.

    feature_size: ``(H, W)`` of the feature map (or one int for a square map); stride: how many
    image pixels one feature-map cell spans, ``(stride_y, stride_x)`` or one int. Every cell
    ``(i, j)`` gets ``A = len(sizes) * len(aspect_ratios)`` anchors centred at the centre of its
    patch, ``((j + 0.5) * stride_x, (i + 0.5) * stride_y)``. An anchor of size ``s`` and aspect
    ratio ``r = h / w`` has area ``s**2``: ``w = s / sqrt(r)``, ``h = s * sqrt(r)``.

    Returns ``(H * W * A, 4)`` as ``(x1, y1, x2, y2)``; anchor ``a = k * len(aspect_ratios) + q``
    (size ``k``, ratio ``q``) of cell ``(i, j)`` is row ``(i * W + j) * A + a``, the order in
    which a head's output ``(N, A * 4, H, W)`` reads after ``permute(0, 2, 3, 1)``.
    """
    height, width = int_or_pair(feature_size, "feature_size", minimum=1)
    stride_y, stride_x = int_or_pair(stride, "stride", minimum=1)
    size_list = _positive_numbers(sizes, "sizes")
    ratio_list = _positive_numbers(aspect_ratios, "aspect_ratios")

    # the A base anchors, centred at (0, 0): size-major, ratio-minor
    base = []
    for s in size_list:
        for r in ratio_list:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            base.append([-w / 2, -h / 2, w / 2, h / 2])
    base_anchors = torch.tensor(base, dtype=dtype, device=device)  # (A, 4)

    cy = (torch.arange(height, dtype=dtype, device=device) + 0.5) * stride_y
    cx = (torch.arange(width, dtype=dtype, device=device) + 0.5) * stride_x
    grid_y, grid_x = torch.meshgrid(cy, cx, indexing="ij")  # (H, W) each
    centres = torch.stack([grid_x, grid_y, grid_x, grid_y], dim=-1).reshape(-1, 1, 4)
    return (centres + base_anchors[None]).reshape(-1, 4)  # (H * W * A, 4)


def _check_weights(weights: Sequence[float]) -> tuple[float, float, float, float]:
    values = _positive_numbers(
        list(weights) if isinstance(weights, Sequence) else weights, "weights"
    )
    if len(values) != 4:
        raise ValueError(f"weights must be 4 positive numbers (wx, wy, ww, wh), got {weights!r}")
    return values[0], values[1], values[2], values[3]


def encode_boxes(
    boxes: torch.Tensor,
    anchors: torch.Tensor,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> torch.Tensor:
    """Regression targets of boxes relative to their anchors (the Faster R-CNN parameterisation).

    boxes, anchors: ``(N, 4)`` as ``(x1, y1, x2, y2)``, box ``i`` paired with anchor ``i``,
    both with positive width and height. With centres ``(x, y)``, sizes ``(w, h)`` and anchor
    values marked ``a``, returns ``(N, 4)`` ``(tx, ty, tw, th)`` =
    ``(wx (x - xa) / wa, wy (y - ya) / ha, ww log(w / wa), wh log(h / ha))``;
    ``weights = (wx, wy, ww, wh)`` only rescale the targets (torchvision's detectors use
    ``(10, 10, 5, 5)`` for the second stage).
    """
    boxes = _check_boxes(boxes, "boxes")
    anchors = _check_boxes(anchors, "anchors")
    if boxes.shape != anchors.shape:
        raise ValueError(
            f"expected one anchor per box: boxes {tuple(boxes.shape)}, anchors "
            f"{tuple(anchors.shape)}"
        )
    for t, name in ((boxes, "boxes"), (anchors, "anchors")):
        if ((t[:, 2:] - t[:, :2]) <= 0).any():
            raise ValueError(f"{name} must have positive width and height to be encoded")
    wx, wy, ww, wh = _check_weights(weights)
    x, y, w, h = box_xyxy_to_cxcywh(boxes).unbind(dim=1)
    xa, ya, wa, ha = box_xyxy_to_cxcywh(anchors).unbind(dim=1)
    return torch.stack(
        [wx * (x - xa) / wa, wy * (y - ya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)],
        dim=1,
    )


def decode_boxes(
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> torch.Tensor:
    """Boxes from regression outputs relative to anchors: the inverse of :func:`encode_boxes`.

    deltas: ``(N, 4)`` ``(tx, ty, tw, th)``; anchors: ``(N, 4)`` as ``(x1, y1, x2, y2)``.
    Returns ``(N, 4)`` boxes as ``(x1, y1, x2, y2)``. ``tw / ww`` and ``th / wh`` are clipped
    at ``log(1000 / 16)`` before the exponential, as in torchvision, so that a wild prediction
    cannot overflow.
    """
    check_tensor(deltas, "deltas", ndim=2, layout="(N, 4) as (tx, ty, tw, th)")
    anchors = _check_boxes(anchors, "anchors")
    if deltas.shape != anchors.shape:
        raise ValueError(
            f"expected one anchor per row of deltas: deltas {tuple(deltas.shape)}, anchors "
            f"{tuple(anchors.shape)}"
        )
    wx, wy, ww, wh = _check_weights(weights)
    xa, ya, wa, ha = box_xyxy_to_cxcywh(anchors).unbind(dim=1)
    tx, ty, tw, th = deltas.unbind(dim=1)
    x = xa + tx / wx * wa
    y = ya + ty / wy * ha
    w = wa * torch.exp((tw / ww).clamp(max=_MAX_LOG_SCALE))
    h = ha * torch.exp((th / wh).clamp(max=_MAX_LOG_SCALE))
    return torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], dim=1)


# ---------------------------------------------------------------------------------------------
# Training and running a one-stage detector: anchor matching, focal loss, decoding
# ---------------------------------------------------------------------------------------------

#: :func:`match_anchors` marks an anchor with this index when it is background (a negative) ...
BACKGROUND = -1
#: ... and with this one when its IoU falls between the two thresholds (ignored in the loss).
IGNORED = -2


def match_anchors(
    anchors: torch.Tensor,
    gt_boxes: torch.Tensor,
    positive_iou: float = 0.5,
    negative_iou: float = 0.4,
    best_anchor_per_object: bool = True,
) -> torch.Tensor:
    """Assign every anchor to an object, to the background or to neither.

    anchors: ``(A, 4)``; gt_boxes: ``(G, 4)``, both ``(x1, y1, x2, y2)``. An anchor whose best
    IoU with the objects is at least ``positive_iou`` is matched to that object (a positive);
    one below ``negative_iou`` is :data:`BACKGROUND` (-1, a negative); one in between is
    :data:`IGNORED` (-2). With ``best_anchor_per_object`` the anchors that overlap an object
    best (ties included) are positives too, matched to *their* best object, so that no object
    with any overlap is left without an anchor (Faster R-CNN's second rule; the same as
    torchvision's ``Matcher(..., allow_low_quality_matches=True)``).

    Returns ``(A,)`` int64: the index of the matched object, -1 or -2. With no object, every
    anchor is background.
    """
    anchors = _check_boxes(anchors, "anchors")
    gt_boxes = _check_boxes(gt_boxes, "gt_boxes")
    positive_iou = _check_threshold(positive_iou, "positive_iou")
    negative_iou = _check_threshold(negative_iou, "negative_iou")
    if negative_iou > positive_iou:
        raise ValueError(
            f"negative_iou ({negative_iou}) must not exceed positive_iou ({positive_iou})"
        )
    if gt_boxes.shape[0] == 0:
        return torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.int64, device=anchors.device)
    iou = box_iou(gt_boxes, anchors)  # (G, A)
    best_iou, best_object = iou.max(dim=0)  # (A,): each anchor's best object
    matches = best_object.clone()
    matches[best_iou < negative_iou] = BACKGROUND
    matches[(best_iou >= negative_iou) & (best_iou < positive_iou)] = IGNORED
    if best_anchor_per_object:
        best_per_object = iou.max(dim=1, keepdim=True).values  # (G, 1)
        is_best = (iou == best_per_object) & (best_per_object > 0)  # (G, A)
        rescued = is_best.any(dim=0)
        matches[rescued] = best_object[rescued]
    return matches


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    reduction: Literal["none", "mean", "sum"] = "sum",
) -> torch.Tensor:
    """The focal loss of RetinaNet on independent sigmoid outputs.

    logits, targets: the same shape, e.g. ``(A, C)``: one logit per anchor and class, and a 0/1
    target (1 for the class of the anchor's object, all 0 for a background anchor). With
    ``p = sigmoid(logits)`` and ``p_t`` the probability given to the right answer
    (``p`` where the target is 1, ``1 - p`` where it is 0), each element is

        ``- alpha_t * (1 - p_t) ** gamma * log(p_t)``,

    where ``alpha_t`` is ``alpha`` for targets 1 and ``1 - alpha`` for targets 0 (``alpha=None``
    leaves it out). ``gamma = 0`` and ``alpha = None`` give the binary cross-entropy. The same
    values as ``torchvision.ops.sigmoid_focal_loss``.
    """
    check_tensor(logits, "logits")
    check_tensor(targets, "targets")
    if logits.shape != targets.shape:
        raise ValueError(
            f"expected targets of the shape of logits {tuple(logits.shape)}, got "
            f"{tuple(targets.shape)}"
        )
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    # log(p_t), computed stably from the logits
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = cross_entropy * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def decode_detections(
    class_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    anchors: torch.Tensor,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
    candidates: int = 1000,
    image_size: tuple[int, int] | None = None,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> list[dict[str, torch.Tensor]]:
    """Turn a one-stage detector's raw outputs into a list of detections per image.

    class_logits: ``(N, A, C)``, one sigmoid logit per anchor and class; box_deltas:
    ``(N, A, 4)``, the anchor offsets ``(tx, ty, tw, th)`` of :func:`encode_boxes`; anchors:
    ``(A, 4)``. For each image: every (anchor, class) pair with a score ``sigmoid(logit)``
    above ``score_threshold`` is a candidate; the ``candidates`` best are decoded into boxes
    (clipped to ``image_size = (H, W)`` when given); non-maximum suppression per class
    (:func:`batched_nms`) removes duplicates; the ``max_detections`` best remain.

    Returns one dict per image with ``"boxes"`` ``(D, 4)``, ``"scores"`` ``(D,)`` and
    ``"labels"`` ``(D,)`` int64, by decreasing score: the input format of
    :func:`mean_average_precision`.
    """
    check_tensor(class_logits, "class_logits", ndim=3, layout="(N, A, C)")
    check_tensor(box_deltas, "box_deltas", ndim=3, layout="(N, A, 4)")
    anchors = _check_boxes(anchors, "anchors")
    n, num_anchors, num_classes = class_logits.shape
    if box_deltas.shape != (n, num_anchors, 4) or anchors.shape[0] != num_anchors:
        raise ValueError(
            f"expected box_deltas (N, A, 4) = ({n}, {num_anchors}, 4) and anchors (A, 4) = "
            f"({num_anchors}, 4) to match class_logits (N, A, C) = {tuple(class_logits.shape)}, "
            f"got {tuple(box_deltas.shape)} and {tuple(anchors.shape)}"
        )
    score_threshold = _check_threshold(score_threshold, "score_threshold")
    check_positive_int(max_detections, "max_detections")
    check_positive_int(candidates, "candidates")
    results = []
    for logits, deltas in zip(class_logits, box_deltas, strict=True):
        scores = torch.sigmoid(logits).flatten()  # (A * C,): anchor-major, class-minor
        index = (scores > score_threshold).nonzero().flatten()
        if index.numel() > candidates:
            index = index[scores[index].topk(candidates).indices]
        anchor_index, labels = index // num_classes, index % num_classes
        boxes = decode_boxes(deltas[anchor_index], anchors[anchor_index], weights)
        if image_size is not None:
            height, width = image_size
            boxes = torch.stack(
                [
                    boxes[:, 0].clamp(0, width),
                    boxes[:, 1].clamp(0, height),
                    boxes[:, 2].clamp(0, width),
                    boxes[:, 3].clamp(0, height),
                ],
                dim=1,
            )
        scores = scores[index]
        keep = batched_nms(boxes, scores, labels, iou_threshold)[:max_detections]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results


# ---------------------------------------------------------------------------------------------
# Average precision
# ---------------------------------------------------------------------------------------------


@dataclass
class PrecisionRecall:
    """Detections of one class sorted by decreasing score, and the curve they trace.

    scores: ``(D,)``; is_true_positive: ``(D,)`` bool; precision, recall: ``(D,)``, the values
    after the first ``k + 1`` detections; num_ground_truths: the number of objects.
    """

    scores: torch.Tensor
    is_true_positive: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor
    num_ground_truths: int


def _per_image_lists(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
) -> None:
    for value, name in (
        (pred_boxes, "pred_boxes"),
        (pred_scores, "pred_scores"),
        (gt_boxes, "gt_boxes"),
    ):
        if isinstance(value, torch.Tensor) or not isinstance(value, Sequence):
            raise TypeError(
                f"{name} must be a list with one tensor per image, got {type(value).__name__}"
            )
    if not len(pred_boxes) == len(pred_scores) == len(gt_boxes):
        raise ValueError(
            "pred_boxes, pred_scores and gt_boxes must list the same images, got "
            f"{len(pred_boxes)}, {len(pred_scores)} and {len(gt_boxes)} entries"
        )
    for k, (boxes, scores, gts) in enumerate(zip(pred_boxes, pred_scores, gt_boxes, strict=True)):
        _check_boxes(boxes, f"pred_boxes[{k}]")
        _check_scores(scores, f"pred_scores[{k}]", boxes.shape[0])
        _check_boxes(gts, f"gt_boxes[{k}]")


def precision_recall_curve(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    iou_threshold: float = 0.5,
    matching: Matching = "voc",
) -> PrecisionRecall:
    """Match the detections of one class to its objects and trace precision against recall.

    pred_boxes: one ``(D_k, 4)`` tensor per image; pred_scores: one ``(D_k,)`` per image;
    gt_boxes: one ``(G_k, 4)`` per image (all ``(x1, y1, x2, y2)``). Detections are visited by
    decreasing score (all images together) and matched to an object of its image:

    - ``matching="voc"`` (PASCAL VOC's development kit): the object it overlaps most; it is a
      true positive if that IoU is at least ``iou_threshold`` and the object was not matched
      before, otherwise a false positive (a second detection of the same object is a false
      positive, even when it also overlaps another, unmatched object);
    - ``matching="coco"`` (COCO's evaluation): the object it overlaps most *among those not yet
      matched*; a true positive if that IoU is at least ``iou_threshold``.

    The two rules differ only when a detection overlaps two objects. An IoU exactly equal to
    the threshold counts as a match, as in COCO's evaluation (VOC's development kit asks for
    more than the threshold; the two differ only on exact ties).

    Returns a :class:`PrecisionRecall`; with no detection at all its tensors are empty.
    """
    _per_image_lists(pred_boxes, pred_scores, gt_boxes)
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold")
    if matching not in _MATCHINGS:
        raise ValueError(f"matching must be one of {_MATCHINGS}, got {matching!r}")
    return _curves(pred_boxes, pred_scores, gt_boxes, [iou_threshold], matching)[0]


def _curves(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    iou_thresholds: Sequence[float],
    matching: Matching,
) -> list[PrecisionRecall]:
    """:func:`precision_recall_curve` at several thresholds, on validated inputs; the IoUs are
    computed once and the matching runs on Python floats (the loop visits every detection)."""
    num_gt = sum(int(g.shape[0]) for g in gt_boxes)
    entries = [
        (float(score), k, d)
        for k, scores in enumerate(pred_scores)
        for d, score in enumerate(scores.tolist())
    ]
    # decreasing score; ties keep the order of the images and of the detections
    entries.sort(key=lambda entry: -entry[0])
    scores = torch.tensor([e[0] for e in entries], dtype=torch.float64)
    ious: list[list[list[float]] | None] = [
        _box_iou(boxes, gts).tolist() if boxes.shape[0] and gts.shape[0] else None
        for boxes, gts in zip(pred_boxes, gt_boxes, strict=True)
    ]
    curves = []
    for iou_threshold in iou_thresholds:
        matched = [[False] * int(g.shape[0]) for g in gt_boxes]
        is_tp = []
        for _, k, d in entries:
            hit = False
            overlaps = ious[k]
            if overlaps is not None:
                row, taken = overlaps[d], matched[k]
                if matching == "coco":  # objects already matched are out of the race
                    row = [-1.0 if t else v for v, t in zip(row, taken, strict=True)]
                best = max(range(len(row)), key=row.__getitem__)  # the first of equal maxima
                if row[best] >= iou_threshold and not taken[best]:
                    taken[best] = True
                    hit = True
            is_tp.append(hit)
        tp_flags = torch.tensor(is_tp, dtype=torch.bool)
        tp = torch.cumsum(tp_flags.to(torch.float64), dim=0)
        fp = torch.cumsum((~tp_flags).to(torch.float64), dim=0)
        precision = tp / (tp + fp).clamp(min=1)
        recall = tp / num_gt if num_gt > 0 else torch.full_like(tp, float("nan"))
        curves.append(
            PrecisionRecall(
                scores=scores,
                is_true_positive=tp_flags,
                precision=precision,
                recall=recall,
                num_ground_truths=num_gt,
            )
        )
    return curves


def _ap_from_curve(
    precision: torch.Tensor, recall: torch.Tensor, interpolation: Interpolation
) -> float:
    """Area under the interpolated precision-recall curve (see :func:`average_precision`)."""
    if interpolation == "all-point":
        # envelope: p_interp(r) = max precision at any recall >= r (right to left running max)
        r = torch.cat([torch.zeros(1, dtype=torch.float64), recall])
        p = torch.cat([precision, torch.zeros(1, dtype=torch.float64)])
        p = torch.flip(torch.cummax(torch.flip(p, [0]), dim=0).values, [0])
        # sum of rectangles: each recall step times the envelope at its right end
        return float(((r[1:] - r[:-1]) * p[:-1]).sum())
    points = _RECALL_POINTS[interpolation]
    total = 0.0
    for t in points:
        reached = recall >= t
        total += float(precision[reached].max()) if reached.any() else 0.0
    return total / len(points)


def average_precision(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    iou_threshold: float = 0.5,
    interpolation: Interpolation = "all-point",
    matching: Matching = "voc",
) -> float:
    """Average precision of one class at one IoU threshold.

    pred_boxes, pred_scores, gt_boxes: one tensor per image, as in
    :func:`precision_recall_curve`. The precision is first made monotone,
    ``p_interp(r) = max over r' >= r of p(r')``; then

    - ``"all-point"`` (PASCAL VOC since 2010): the exact area under ``p_interp``;
    - ``"11-point"`` (VOC 2007): the mean of ``p_interp`` at recall 0, 0.1, ..., 1;
    - ``"101-point"`` (COCO): the mean of ``p_interp`` at recall 0, 0.01, ..., 1.

    ``matching`` chooses VOC's or COCO's rule for matching detections to objects (see
    :func:`precision_recall_curve`).

    Returns a float in ``[0, 1]``; ``nan`` when the class has no object in any image (the
    average is then undefined; :func:`mean_average_precision` leaves such classes out).
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    curve = precision_recall_curve(pred_boxes, pred_scores, gt_boxes, iou_threshold, matching)
    if curve.num_ground_truths == 0:
        return float("nan")
    if curve.scores.numel() == 0:
        return 0.0
    return _ap_from_curve(curve.precision, curve.recall, interpolation)


@dataclass
class MeanAveragePrecision:
    """The result of :func:`mean_average_precision`.

    map: the mean over classes and IoU thresholds; per_class: ``{label: AP}`` averaged over the
    thresholds; per_threshold: ``{threshold: mAP}`` averaged over the classes; ap: ``(T, C)``
    tensor of every AP, rows in the order of ``iou_thresholds``, columns of ``classes``.
    """

    map: float
    per_class: dict[int, float] = field(default_factory=dict)
    per_threshold: dict[float, float] = field(default_factory=dict)
    ap: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    classes: list[int] = field(default_factory=list)


def _check_records(records: object, name: str, keys: tuple[str, ...]) -> None:
    if isinstance(records, (Mapping, torch.Tensor)) or not isinstance(records, Sequence):
        raise TypeError(
            f"{name} must be a list with one dict per image, got {type(records).__name__}"
        )
    for k, record in enumerate(records):
        if not isinstance(record, Mapping) or any(key not in record for key in keys):
            raise ValueError(f"{name}[{k}] must be a dict with keys {keys}")
        n = _check_boxes(record["boxes"], f"{name}[{k}]['boxes']").shape[0]
        labels = record["labels"]
        if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
            raise ValueError(f"{name}[{k}]['labels'] must be a tensor ({n},), one label per box")
        if "scores" in keys:
            _check_scores(record["scores"], f"{name}[{k}]['scores']", n)


def mean_average_precision(
    predictions: Sequence[Mapping[str, torch.Tensor]],
    targets: Sequence[Mapping[str, torch.Tensor]],
    iou_thresholds: float | Sequence[float] = 0.5,
    interpolation: Interpolation = "all-point",
    matching: Matching = "voc",
) -> MeanAveragePrecision:
    """Mean average precision over classes (and over IoU thresholds, COCO-style).

    predictions: one dict per image with ``"boxes"`` ``(D, 4)``, ``"scores"`` ``(D,)`` and
    ``"labels"`` ``(D,)`` (the output format of torchvision's detectors); targets: one dict per
    image with ``"boxes"`` ``(G, 4)`` and ``"labels"`` ``(G,)``. The classes are those with at
    least one object in ``targets``. ``iou_thresholds=0.5`` gives VOC's mAP;
    ``COCO_IOU_THRESHOLDS`` with ``interpolation="101-point"`` and ``matching="coco"`` gives
    COCO's mAP@[.5:.95] (the same number as pycocotools' ``COCOeval`` when no image has more
    than 100 detections of a class and no object is marked crowd).
    """
    _check_records(predictions, "predictions", ("boxes", "scores", "labels"))
    _check_records(targets, "targets", ("boxes", "labels"))
    if len(predictions) != len(targets):
        raise ValueError(
            f"predictions and targets must list the same images, got {len(predictions)} and "
            f"{len(targets)}"
        )
    if isinstance(iou_thresholds, (int, float)) and not isinstance(iou_thresholds, bool):
        iou_thresholds = [iou_thresholds]
    thresholds = [_check_threshold(t, "iou_thresholds") for t in iou_thresholds]
    if not thresholds:
        raise ValueError("iou_thresholds must not be empty")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if matching not in _MATCHINGS:
        raise ValueError(f"matching must be one of {_MATCHINGS}, got {matching!r}")
    classes = sorted({int(c) for t in targets for c in t["labels"].tolist()})
    ap = torch.full((len(thresholds), len(classes)), float("nan"), dtype=torch.float64)
    for j, c in enumerate(classes):
        boxes = [p["boxes"][p["labels"] == c] for p in predictions]
        scores = [p["scores"][p["labels"] == c] for p in predictions]
        gts = [t["boxes"][t["labels"] == c] for t in targets]
        for i, curve in enumerate(_curves(boxes, scores, gts, thresholds, matching)):
            if curve.scores.numel() == 0:
                ap[i, j] = 0.0
            else:
                ap[i, j] = _ap_from_curve(curve.precision, curve.recall, interpolation)
    if not classes:
        return MeanAveragePrecision(map=float("nan"), ap=ap, classes=classes)
    return MeanAveragePrecision(
        map=float(ap.mean()),
        per_class={c: float(ap[:, j].mean()) for j, c in enumerate(classes)},
        per_threshold={t: float(ap[i].mean()) for i, t in enumerate(thresholds)},
        ap=ap,
        classes=classes,
    )


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def draw_boxes(
    ax: Axes,
    boxes: torch.Tensor,
    labels: Sequence[str] | None = None,
    color: str = "C1",
    linewidth: float = 2.0,
    linestyle: str = "-",
    fontsize: float = 8.0,
) -> None:
    """Draw boxes ``(N, 4)`` as ``(x1, y1, x2, y2)`` on a matplotlib axes (image coordinates),
    with an optional text label above each box."""
    from matplotlib.patches import Rectangle

    boxes = _check_boxes(boxes, "boxes")
    if labels is not None and len(labels) != boxes.shape[0]:
        raise ValueError(f"expected {boxes.shape[0]} labels, one per box, got {len(labels)}")
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        ax.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=False,
                edgecolor=color,
                linewidth=linewidth,
                linestyle=linestyle,
            )
        )
        if labels is not None:
            ax.text(
                x1,
                y1,
                labels[i],
                color="white",
                fontsize=fontsize,
                va="bottom",
                ha="left",
                bbox={"facecolor": color, "edgecolor": "none", "pad": 1.0, "alpha": 0.85},
            )
