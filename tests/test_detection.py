"""Boxes, IoU, NMS, anchors and average precision against torchvision and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection._utils import BoxCoder, Matcher

from course_lib.detection import (
    BACKGROUND,
    COCO_IOU_THRESHOLDS,
    IGNORED,
    average_precision,
    batched_nms,
    box_area,
    box_cxcywh_to_xyxy,
    box_iou,
    box_iou_naive,
    box_xyxy_to_cxcywh,
    decode_boxes,
    decode_detections,
    encode_boxes,
    generate_anchors,
    match_anchors,
    mean_average_precision,
    nms,
    precision_recall_curve,
    sigmoid_focal_loss,
)


def random_boxes(
    gen: torch.Generator,
    n: int,
    dtype: torch.dtype = torch.float32,
    integer: bool = False,
    degenerate: float = 0.0,
) -> torch.Tensor:
    """``n`` valid boxes in a 50×50 image. ``integer`` puts corners on a coarse grid, so that
    exact ties in IoU and duplicated boxes happen; ``degenerate`` is the fraction of boxes with
    zero width or zero height."""
    if integer:
        corners = torch.randint(0, 8, (n, 4), generator=gen).to(dtype) * 6
    else:
        corners = torch.rand(n, 4, generator=gen, dtype=dtype) * 50
    x1, x2 = (
        torch.minimum(corners[:, 0], corners[:, 2]),
        torch.maximum(corners[:, 0], corners[:, 2]),
    )
    y1, y2 = (
        torch.minimum(corners[:, 1], corners[:, 3]),
        torch.maximum(corners[:, 1], corners[:, 3]),
    )
    flat = torch.rand(n, generator=gen) < degenerate
    which = torch.rand(n, generator=gen) < 0.5
    x2 = torch.where(flat & which, x1, x2)
    y2 = torch.where(flat & ~which, y1, y2)
    return torch.stack([x1, y1, x2, y2], dim=1)


def pair_is_empty(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """(N, M) mask of pairs where both boxes have zero area (torchvision returns NaN there)."""
    a1 = torchvision.ops.box_area(boxes1) == 0
    a2 = torchvision.ops.box_area(boxes2) == 0
    return a1[:, None] & a2[None, :]


# --------------------------------------------------------------------------------------------
# Boxes and IoU
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("iou_fn", [box_iou, box_iou_naive], ids=["vectorised", "naive"])
@pytest.mark.parametrize("seed", range(30))
def test_box_iou_matches_torchvision(iou_fn, seed: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    n, m = seed % 7, (3 * seed) % 11  # includes empty inputs (n = 0 or m = 0)
    boxes1 = random_boxes(gen, n, dtype, integer=seed % 2 == 0, degenerate=0.2)
    boxes2 = random_boxes(gen, m, dtype, integer=seed % 2 == 0, degenerate=0.2)
    ours = iou_fn(boxes1, boxes2)
    expected = torchvision.ops.box_iou(boxes1, boxes2)
    assert ours.shape == (n, m) and ours.dtype == dtype
    empty = pair_is_empty(boxes1, boxes2)
    torch.testing.assert_close(ours[~empty], expected[~empty])
    assert (ours[empty] == 0).all()
    assert ((ours >= 0) & (ours <= 1)).all()


def test_box_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # identical: 1
            [5.0, 0.0, 15.0, 10.0],  # half overlap: 50 / 150
            [10.0, 0.0, 20.0, 10.0],  # touching edges: 0
            [2.0, 2.0, 4.0, 4.0],  # inside: 4 / 100
            [3.0, 3.0, 3.0, 8.0],  # zero width inside: 0
        ]
    )
    expected = torch.tensor([[1.0, 1 / 3, 0.0, 0.04, 0.0]])
    torch.testing.assert_close(box_iou(a, b), expected)
    torch.testing.assert_close(box_iou_naive(a, b), expected)
    # two identical zero-area boxes: 0/0 is defined as 0 (torchvision gives NaN)
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert box_iou(point, point).item() == 0.0 == box_iou_naive(point, point).item()


def test_box_iou_is_symmetric_and_follows_the_device(gen: torch.Generator) -> None:
    boxes1, boxes2 = random_boxes(gen, 6), random_boxes(gen, 4)
    torch.testing.assert_close(box_iou(boxes1, boxes2), box_iou(boxes2, boxes1).T)
    assert box_iou(boxes1, boxes2).device == boxes1.device


def test_box_area_and_conversions_match_torchvision(gen: torch.Generator, dtype) -> None:
    boxes = random_boxes(gen, 20, dtype, degenerate=0.3)
    torch.testing.assert_close(box_area(boxes), torchvision.ops.box_area(boxes))
    cxcywh = box_xyxy_to_cxcywh(boxes)
    torch.testing.assert_close(cxcywh, torchvision.ops.box_convert(boxes, "xyxy", "cxcywh"))
    torch.testing.assert_close(box_cxcywh_to_xyxy(cxcywh), boxes)
    assert box_xyxy_to_cxcywh(torch.zeros(0, 4)).shape == (0, 4)


# --------------------------------------------------------------------------------------------
# Non-maximum suppression
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_nms_matches_torchvision(seed: int) -> None:
    gen = torch.Generator().manual_seed(100 + seed)
    n = [0, 1, 2, 5, 20, 60][seed % 6]
    dtype = torch.float64 if seed % 5 == 0 else torch.float32
    boxes = random_boxes(gen, n, dtype, integer=seed % 2 == 0, degenerate=0.1 * (seed % 3))
    if seed % 3 == 0:
        scores = torch.randint(0, 3, (n,), generator=gen).to(dtype)  # many tied scores
    else:
        scores = torch.rand(n, generator=gen, dtype=dtype)
    threshold = [0.0, 0.3, 0.5, 0.7, 1.0][seed % 5]
    keep = nms(boxes, scores, threshold)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, torchvision.ops.nms(boxes, scores, threshold))


def test_nms_known_case() -> None:
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 0.0, 11.0, 10.0],  # IoU 9/11 with box 0
            [20.0, 20.0, 30.0, 30.0],  # far away
            [0.0, 0.0, 10.0, 10.0],  # exact duplicate of box 0, same score
        ]
    )
    scores = torch.tensor([0.9, 0.95, 0.5, 0.9])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    # an IoU equal to the threshold does not suppress (only IoU > threshold does)
    assert nms(boxes[:2], scores[:2], 9 / 11 + 1e-6).tolist() == [1, 0]
    assert nms(boxes, scores, 1.0).tolist() == [1, 0, 3, 2]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


@pytest.mark.parametrize("seed", range(20))
def test_batched_nms_matches_torchvision(seed: int) -> None:
    gen = torch.Generator().manual_seed(500 + seed)
    n = [0, 3, 30, 80][seed % 4]
    boxes = random_boxes(gen, n, integer=seed % 2 == 0)
    scores = torch.randint(0, 4, (n,), generator=gen).float() + 0.1 * (seed % 2)
    labels = torch.randint(0, 3, (n,), generator=gen)
    keep = batched_nms(boxes, scores, labels, 0.4)
    assert torch.equal(keep, torchvision.ops.batched_nms(boxes, scores, labels, 0.4))


def test_batched_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert batched_nms(boxes, scores, torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([2, 2]), 0.5).tolist() == [0]


# --------------------------------------------------------------------------------------------
# Anchors and box encoding
# --------------------------------------------------------------------------------------------


def test_anchor_count_centres_sizes_and_order() -> None:
    sizes, ratios = (32, 64, 128), (0.5, 1.0, 2.0)
    anchors = generate_anchors((3, 5), stride=(16, 8), sizes=sizes, aspect_ratios=ratios)
    a = len(sizes) * len(ratios)
    assert anchors.shape == (3 * 5 * a, 4)
    cx, cy, w, h = box_xyxy_to_cxcywh(anchors).reshape(3, 5, a, 4).unbind(dim=-1)
    for i in range(3):
        for j in range(5):
            assert torch.allclose(cx[i, j], torch.full((a,), (j + 0.5) * 8.0))
            assert torch.allclose(cy[i, j], torch.full((a,), (i + 0.5) * 16.0))
    expected_area = torch.tensor([s * s for s in sizes for _ in ratios], dtype=torch.float32)
    expected_ratio = torch.tensor([r for _ in sizes for r in ratios], dtype=torch.float32)
    torch.testing.assert_close((w * h)[1, 2], expected_area)
    torch.testing.assert_close((h / w)[1, 2], expected_ratio)


def test_anchors_match_torchvision_base_anchor_shapes() -> None:
    """torchvision's AnchorGenerator rounds its base anchors and puts the first centre at 0;
    the widths and heights must still agree up to that rounding."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes, ratios = (32, 64), (0.5, 1.0, 2.0)
    reference = AnchorGenerator(sizes=(sizes,), aspect_ratios=(ratios,)).cell_anchors[0]
    ours = generate_anchors(1, 1, sizes, ratios)
    ref_wh = (reference[:, 2:] - reference[:, :2]).float()
    ours_wh = ours[:, 2:] - ours[:, :2]
    # torchvision orders ratio-major, we order size-major
    ref_wh = ref_wh.reshape(len(ratios), len(sizes), 2).transpose(0, 1).reshape(-1, 2)
    assert (ours_wh - ref_wh).abs().max() <= 1.0


def test_encode_decode_round_trip_and_torchvision(gen: torch.Generator, dtype) -> None:
    anchors = random_boxes(gen, 40, dtype)
    anchors[:, 2:] += 1  # positive width and height
    boxes = random_boxes(gen, 40, dtype)
    boxes[:, 2:] += 0.5
    for weights in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        deltas = encode_boxes(boxes, anchors, weights)
        coder = BoxCoder(weights)
        torch.testing.assert_close(deltas, coder.encode_single(boxes, anchors))
        torch.testing.assert_close(decode_boxes(deltas, anchors, weights), boxes)
        torch.testing.assert_close(
            decode_boxes(deltas, anchors, weights), coder.decode_single(deltas, anchors)
        )
    # an anchor encodes itself as zeros
    torch.testing.assert_close(encode_boxes(anchors, anchors), torch.zeros_like(anchors))


def test_decode_clips_huge_scales() -> None:
    anchors = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    boxes = decode_boxes(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), anchors)
    assert torch.isfinite(boxes).all()
    torch.testing.assert_close(boxes[0, 2] - boxes[0, 0], torch.tensor(1000.0))


# --------------------------------------------------------------------------------------------
# Average precision
# --------------------------------------------------------------------------------------------

GT = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])


def ap(det_boxes, det_scores, gt_boxes=GT, **kwargs) -> float:
    return average_precision(
        [torch.tensor(det_boxes, dtype=torch.float32).reshape(-1, 4)],
        [torch.tensor(det_scores, dtype=torch.float32)],
        [gt_boxes],
        **kwargs,
    )


def test_perfect_detector_has_ap_one() -> None:
    for interpolation in ("all-point", "11-point", "101-point"):
        assert ap(GT.tolist(), [0.9, 0.8], interpolation=interpolation) == pytest.approx(1.0)


def test_duplicates_are_false_positives() -> None:
    duplicate = [[0.5, 0.0, 10.5, 10.0]]
    # ranks: TP, duplicate (FP), TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    value = ap([GT[0].tolist(), *duplicate, GT[1].tolist()], [0.9, 0.8, 0.7])
    assert value == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    curve = precision_recall_curve(
        [torch.tensor([GT[0].tolist(), *duplicate, GT[1].tolist()])],
        [torch.tensor([0.9, 0.8, 0.7])],
        [GT],
    )
    assert curve.is_true_positive.tolist() == [True, False, True]
    torch.testing.assert_close(curve.recall, torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64))


def test_missed_object_lowers_recall_and_ap() -> None:
    assert ap([GT[0].tolist()], [0.9]) == pytest.approx(0.5)
    assert ap([GT[0].tolist()], [0.9], interpolation="11-point") == pytest.approx(6 / 11)
    assert ap([GT[0].tolist()], [0.9], interpolation="101-point") == pytest.approx(51 / 101)


def test_score_order_matters() -> None:
    false_positive = [40.0, 40.0, 50.0, 50.0]
    # the false positive ranked first: precision 0 then 1/2 (recall 1/2) then 2/3 (recall 1)
    assert ap([false_positive, *GT.tolist()], [0.99, 0.9, 0.8]) == pytest.approx(2 / 3)
    # ranked last it costs nothing: all the recall is reached before it
    assert ap([false_positive, *GT.tolist()], [0.1, 0.9, 0.8]) == pytest.approx(1.0)


def test_iou_threshold_decides_a_match() -> None:
    shifted = [[0.0, 0.0, 10.0, 7.2]]  # IoU 0.72 with GT[0]
    assert ap(shifted, [0.9], gt_boxes=GT[:1], iou_threshold=0.5) == pytest.approx(1.0)
    assert ap(shifted, [0.9], gt_boxes=GT[:1], iou_threshold=0.75) == pytest.approx(0.0)


def test_detections_match_only_objects_of_their_own_image() -> None:
    boxes = [torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.zeros(0, 4)]
    scores = [torch.tensor([0.9]), torch.zeros(0)]
    assert average_precision(boxes, scores, [torch.zeros(0, 4), GT[:1]]) == 0.0
    assert average_precision(boxes, scores, [GT[:1], torch.zeros(0, 4)]) == 1.0


def test_no_objects_gives_nan_and_no_detections_gives_zero() -> None:
    assert math.isnan(ap([[0.0, 0.0, 1.0, 1.0]], [0.5], gt_boxes=torch.zeros(0, 4)))
    assert ap([], []) == 0.0


def voc_ap_reference(tp: np.ndarray, num_gt: int) -> float:
    """The PASCAL VOC development kit's all-point AP, written independently from the flags."""
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(1 - tp)
    rec = tp_cum / num_gt
    prec = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@pytest.mark.parametrize("seed", range(15))
def test_all_point_ap_matches_voc_reference_on_random_sets(seed: int) -> None:
    gen = torch.Generator().manual_seed(900 + seed)
    gts, boxes, scores = [], [], []
    for _ in range(5):
        g = random_boxes(gen, int(torch.randint(0, 4, (1,), generator=gen)))
        g[:, 2:] += 5
        jitter = g + torch.randn(g.shape, generator=gen) * 2
        jitter[:, 2:] = torch.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        noise = random_boxes(gen, int(torch.randint(0, 4, (1,), generator=gen)))
        d = torch.cat([jitter, jitter[:1], noise])
        gts.append(g)
        boxes.append(d)
        scores.append(torch.rand(d.shape[0], generator=gen))
    curve = precision_recall_curve(boxes, scores, gts, 0.5)
    if curve.num_ground_truths == 0:
        pytest.skip("no objects drawn")
    expected = voc_ap_reference(
        curve.is_true_positive.numpy().astype(float), curve.num_ground_truths
    )
    assert average_precision(boxes, scores, gts, 0.5) == pytest.approx(expected)


def test_mean_average_precision_over_classes_and_coco_thresholds() -> None:
    targets = [
        {"boxes": GT, "labels": torch.tensor([0, 1])},
        {"boxes": GT[:1], "labels": torch.tensor([2])},
    ]
    predictions = [
        {
            "boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 27.2]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([0, 1]),  # class 0 perfect, class 1 IoU 0.72
        },
        {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)},
    ]  # class 2 missed
    voc = mean_average_precision(predictions, targets)
    assert voc.per_class == pytest.approx({0: 1.0, 1: 1.0, 2: 0.0})
    assert voc.map == pytest.approx(2 / 3)
    coco = mean_average_precision(predictions, targets, COCO_IOU_THRESHOLDS, "101-point")
    assert len(COCO_IOU_THRESHOLDS) == 10 and COCO_IOU_THRESHOLDS[-1] == 0.95
    # IoU 0.72 is a match at 0.50, 0.55, 0.60, 0.65, 0.70: five thresholds of ten
    assert coco.per_class == pytest.approx({0: 1.0, 1: 0.5, 2: 0.0})
    assert coco.map == pytest.approx(0.5)
    assert coco.per_threshold[0.5] == pytest.approx(2 / 3)
    assert coco.per_threshold[0.75] == pytest.approx(1 / 3)
    assert coco.ap.shape == (10, 3)


# --------------------------------------------------------------------------------------------
# One-stage detector: anchor matching, focal loss, decoding
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_match_anchors_matches_torchvision_matcher(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    anchors = generate_anchors((6, 6), 8, sizes=(8, 16), aspect_ratios=(0.5, 1.0, 2.0))
    corners = torch.rand(5, 2, generator=gen) * 36
    gt = torch.cat([corners, corners + 4 + torch.rand(5, 2, generator=gen) * 20], dim=1)
    for best in (True, False):
        ours = match_anchors(anchors, gt, 0.5, 0.4, best_anchor_per_object=best)
        theirs = Matcher(0.5, 0.4, allow_low_quality_matches=best)(box_iou(gt, anchors))
        assert torch.equal(ours, theirs)
    matched = match_anchors(anchors, gt)
    assert ((matched >= 0) | (matched == BACKGROUND) | (matched == IGNORED)).all()
    assert set(matched[matched >= 0].tolist()) == set(range(5))  # every object has an anchor


def test_match_anchors_known_case_and_no_objects() -> None:
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 6.0],
            [20.0, 20.0, 30.0, 30.0],
            [2.0, 0.0, 12.0, 10.0],
        ]
    )
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [22.0, 22.0, 26.0, 26.0]])
    # anchor 0: IoU 1 with object 0; 1: IoU 0.6 -> positive; 2: IoU 0.16 with object 1 but its
    # best anchor -> positive by the second rule; 3: IoU 8/12 = 0.667 -> positive at 0.5
    assert match_anchors(anchors, gt).tolist() == [0, 0, 1, 0]
    assert match_anchors(anchors, gt, best_anchor_per_object=False).tolist() == [0, 0, -1, 0]
    assert match_anchors(anchors, gt, 0.7, 0.62).tolist() == [0, -1, 1, -2]
    assert match_anchors(anchors, torch.zeros(0, 4)).tolist() == [BACKGROUND] * 4
    with pytest.raises(ValueError, match="must not exceed positive_iou"):
        match_anchors(anchors, gt, 0.4, 0.5)


@pytest.mark.parametrize("gamma, alpha", [(2.0, 0.25), (0.0, None), (1.5, 0.6), (5.0, None)])
def test_sigmoid_focal_loss_matches_torchvision(gamma: float, alpha: float | None) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 7, generator=gen, dtype=torch.float64) * 4
    targets = (torch.rand(50, 7, generator=gen) < 0.2).double()
    for reduction in ("none", "mean", "sum"):
        ours = sigmoid_focal_loss(logits, targets, gamma, alpha, reduction)
        theirs = torchvision.ops.sigmoid_focal_loss(
            logits, targets, -1 if alpha is None else alpha, gamma, reduction
        )
        torch.testing.assert_close(ours, theirs)
    # gamma 0 without alpha is the binary cross-entropy; gamma > 0 shrinks easy examples most
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, 0.0, None, "none"), bce)
    easy = torch.tensor([[-6.0]]), torch.tensor([[0.0]])
    hard = torch.tensor([[2.0]]), torch.tensor([[0.0]])
    ratio_easy = F.binary_cross_entropy_with_logits(*easy) / sigmoid_focal_loss(*easy, 2.0, None)
    ratio_hard = F.binary_cross_entropy_with_logits(*hard) / sigmoid_focal_loss(*hard, 2.0, None)
    assert ratio_easy > 100 * ratio_hard
    with pytest.raises(ValueError, match="targets of the shape of logits"):
        sigmoid_focal_loss(logits, targets[:, :3])


def test_decode_detections_known_case() -> None:
    anchors = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [30.0, 30.0, 40.0, 40.0]]
    )
    logits = torch.full((1, 3, 2), -10.0)
    logits[0, 0, 0] = 3.0  # anchor 0, class 0: the best
    logits[0, 1, 0] = 2.0  # anchor 1, class 0: a duplicate of it (IoU 0.82) -> suppressed
    logits[0, 1, 1] = 1.0  # anchor 1, class 1: another class -> kept
    logits[0, 2, 1] = -1.0  # anchor 2, class 1: below a 0.3 score -> dropped
    deltas = torch.zeros(1, 3, 4)
    deltas[0, 0] = torch.tensor([0.5, 0.0, math.log(2.0), 0.0])  # move right, twice as wide
    (out,) = decode_detections(logits, deltas, anchors, score_threshold=0.3, image_size=(12, 12))
    assert out["labels"].tolist() == [0, 1]
    torch.testing.assert_close(out["scores"], torch.sigmoid(torch.tensor([3.0, 1.0])))
    # anchor 0 decoded: centre x 5 + 0.5 * 10 = 10, width 20 -> (0, 0, 20, 10), clipped at 12
    torch.testing.assert_close(
        out["boxes"], torch.tensor([[0.0, 0.0, 12.0, 10.0], [1.0, 0.0, 11.0, 10.0]])
    )
    two = decode_detections(logits.repeat(2, 1, 1), deltas.repeat(2, 1, 1), anchors, 0.3, 0.5, 1)
    assert [len(d["scores"]) for d in two] == [1, 1]
    with pytest.raises(ValueError, match=r"expected box_deltas \(N, A, 4\)"):
        decode_detections(logits, deltas[:, :2], anchors)


def test_decode_detections_agrees_with_torchvision_postprocessing() -> None:
    """The same candidates, decoding and per-class NMS as torchvision's ops, for random outputs."""
    gen = torch.Generator().manual_seed(3)
    anchors = generate_anchors((8, 8), 8, sizes=(12, 24))
    logits = torch.randn(3, anchors.shape[0], 4, generator=gen) * 2 - 2
    deltas = torch.randn(3, anchors.shape[0], 4, generator=gen) * 0.3
    ours = decode_detections(logits, deltas, anchors, 0.2, 0.5, 100, 300)
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    for k in range(3):
        scores = torch.sigmoid(logits[k]).flatten()
        index = (scores > 0.2).nonzero().flatten()
        index = index[scores[index].topk(min(300, len(index))).indices]
        boxes = coder.decode_single(deltas[k][index // 4], anchors[index // 4])
        keep = torchvision.ops.batched_nms(boxes, scores[index], index % 4, 0.5)[:100]
        torch.testing.assert_close(ours[k]["boxes"], boxes[keep])
        assert torch.equal(ours[k]["labels"], index[keep] % 4)


def test_coco_matching_gives_a_second_object_its_chance() -> None:
    """A detection whose best object is already taken: a false positive under VOC's rule, a
    match with the next object under COCO's."""
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [4.0, 0.0, 14.0, 10.0]])
    first = [0.0, 0.0, 10.0, 10.0]  # object 0 exactly
    between = [2.0, 0.0, 12.0, 10.0]  # IoU 0.667 with both objects; object 0 listed first
    boxes, scores = [torch.tensor([first, between])], [torch.tensor([0.9, 0.8])]
    voc = precision_recall_curve(boxes, scores, [gt], 0.5, matching="voc")
    coco = precision_recall_curve(boxes, scores, [gt], 0.5, matching="coco")
    assert voc.is_true_positive.tolist() == [True, False]
    assert coco.is_true_positive.tolist() == [True, True]
    assert average_precision(boxes, scores, [gt], 0.5, "101-point", "coco") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="matching must be one of"):
        average_precision(boxes, scores, [gt], matching="pascal")


def test_interpolated_ap_uses_the_reference_recall_points() -> None:
    """Recall 3/10 falls just short of VOC 2007's point 0.30000000000000004 (arange(0, 1.1,
    0.1)); the development kit then uses the precision of the next recall."""
    gt = torch.tensor([[10.0 * i, 0.0, 10.0 * i + 8, 8.0] for i in range(10)])
    # three hits then a false positive then the rest: precision 1 up to recall 0.3, then 3/4 ...
    hits = [*gt[:3].tolist(), [200.0, 200.0, 210.0, 210.0], *gt[3:].tolist()]
    scores = torch.linspace(1.0, 0.5, len(hits))
    value = average_precision([torch.tensor(hits)], [scores], [gt], 0.5, "11-point")
    precision_after = [1.0, 1.0, 1.0, 0.75] + [(4 + i) / (5 + i) for i in range(7)]
    recall_after = [1 / 10, 2 / 10, 3 / 10, 3 / 10] + [(4 + i) / 10 for i in range(7)]
    envelope = [max(p for p, r in zip(precision_after, recall_after, strict=True) if r >= t)
                for t in np.arange(0.0, 1.1, 0.1)]  # fmt: skip
    assert value == pytest.approx(sum(envelope) / 11)
    # the point 0.3 is not reached by recall 3/10 (precision 1): it takes the best later one
    assert envelope[3] == pytest.approx(10 / 11)


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


def test_bad_inputs_have_clear_messages() -> None:
    good = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    with pytest.raises(ValueError, match=r"expected boxes1 with 2 dims \(N, 4\).*got shape \(4,\)"):
        box_iou(torch.tensor([0.0, 0.0, 1.0, 1.0]), good)
    with pytest.raises(
        ValueError, match=r"expected boxes2 with shape \(N, 4\).*got shape \(1, 3\)"
    ):
        box_iou(good, torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"boxes\[1\] = \[5.0, 0.0, 1.0, 1.0\] has x2 < x1"):
        box_area(torch.tensor([[0.0, 0.0, 1.0, 1.0], [5.0, 0.0, 1.0, 1.0]]))
    with pytest.raises(TypeError, match=r"float32 or float64, got torch\.int64"):
        box_iou_naive(torch.zeros(1, 4, dtype=torch.int64), good)
    with pytest.raises(ValueError, match="NaN or infinite"):
        box_area(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="negative width or height"):
        box_cxcywh_to_xyxy(torch.tensor([[0.0, 0.0, -1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"one score per box \(1,\), got \(2,\)"):
        nms(good, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"iou_threshold must be between 0 and 1, got 1\.5"):
        nms(good, torch.zeros(1), 1.5)
    with pytest.raises(TypeError, match="integer dtype"):
        batched_nms(good, torch.zeros(1), torch.zeros(1), 0.5)
    with pytest.raises(ValueError, match="sizes must contain positive numbers"):
        generate_anchors(4, 16, sizes=[32, 0])
    with pytest.raises(ValueError, match=r"feature_size must be positive \(>= 1\), got \(4, 0\)"):
        generate_anchors((4, 0), 16, sizes=[32])
    with pytest.raises(ValueError, match="anchors must have positive width and height"):
        encode_boxes(good, torch.tensor([[0.0, 0.0, 0.0, 2.0]]))
    with pytest.raises(ValueError, match=r"one anchor per box: boxes \(1, 4\), anchors \(2, 4\)"):
        encode_boxes(good, torch.cat([good, good]))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        average_precision([good], [torch.ones(1)], [good], interpolation="voc")
    with pytest.raises(ValueError, match="same images, got 1, 1 and 2 entries"):
        average_precision([good], [torch.ones(1)], [good, good])
    with pytest.raises(TypeError, match="one tensor per image"):
        average_precision(good, torch.ones(1), good)
    with pytest.raises(ValueError, match=r"targets\[0\] must be a dict with keys"):
        mean_average_precision([], [{"boxes": good}])
