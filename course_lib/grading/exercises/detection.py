"""The ``detection`` assignment: box IoU, non-maximum suppression, matching detections to
ground truth, average precision and the box encoding of anchor-based detectors, with NumPy."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from .. import diagnoses as dg
from ..diagnoses import Diagnosis, Variant
from ._base import (
    Assignment,
    Chapter,
    Exercise,
    HiddenTest,
    Inputs,
    Raised,
    Trial,
    Verdict,
    Visible,
    expect_value_error,
    judge_array,
    judge_float,
    keep_different,
)
from ._policy import BOX_OPERATORS, COURSE_LIB, NUMPY_AND_STDLIB

FORBIDDEN = BOX_OPERATORS + COURSE_LIB
POLICY: dict[str, Any] = {"allowed_imports": NUMPY_AND_STDLIB, "forbidden_names": FORBIDDEN}

# ---------------------------------------------------------------------------------------------
# misconceptions
# ---------------------------------------------------------------------------------------------

IOU_WRONG_DENOMINATOR = Diagnosis(
    "iou_wrong_denominator",
    "the intersection is divided by something other than the union",
    "union = area1 + area2 - intersection (the overlap is counted once), IoU = intersection / "
    "union",
)
IOU_ENCLOSING_BOX = Diagnosis(
    "iou_enclosing_box",
    "the intersection's corners take the outer corners (the box enclosing both)",
    "the intersection runs from max(x1, x1') to min(x2, x2'), and the same for y",
)
IOU_TRANSPOSED = Diagnosis(
    "iou_transposed",
    "the IoU matrix is transposed",
    "row i is boxes1[i], column j is boxes2[j]: the result has shape (N, M)",
)
IOU_XYWH = Diagnosis(
    "iou_xywh",
    "the boxes are read as (x, y, width, height)",
    "a box is (x1, y1, x2, y2), two corners: its width is x2 - x1",
)
NMS_INVERTED = Diagnosis(
    "nms_inverted",
    "the boxes that overlap little are suppressed instead of those that overlap much",
    "drop the remaining boxes whose IoU with the kept box is greater than iou_threshold",
)
NMS_SUPPRESSED_STILL_SUPPRESS = Diagnosis(
    "nms_suppressed_still_suppress",
    "a box that was suppressed still suppresses other boxes",
    "only kept boxes suppress: skip a box that is already suppressed before comparing it with "
    "the others",
)
NMS_INDEX_ORDER = Diagnosis(
    "nms_index_order",
    "the kept indices are returned in index order, not by decreasing score",
    "append each kept index as you keep it, visiting the boxes by decreasing score",
)
EMPTY_FLOAT_ARRAY = Diagnosis(
    "empty_float_array",
    "an empty result has dtype float64 (np.array([]) is a float array)",
    "create the result with an explicit dtype: np.array(keep, dtype=np.int64)",
)
BATCHED_LABELS_IGNORED = Diagnosis(
    "batched_labels_ignored",
    "boxes of different labels suppress each other",
    "a box only suppresses boxes with the same label: compare labels[i] == labels[j] too",
)
BATCHED_GROUPED_BY_LABEL = Diagnosis(
    "batched_grouped_by_label",
    "the kept indices are grouped by label instead of ordered by score over all labels",
    "after suppressing per label, sort all kept indices by decreasing score (ties: lower index)",
)
BATCHED_LOCAL_INDICES = Diagnosis(
    "batched_local_indices",
    "the kept indices count within each label's subset, not in the original arrays",
    "map back: members = np.flatnonzero(labels == c); keep members[kept_in_subset]",
)
MATCH_GT_REUSED = Diagnosis(
    "match_gt_reused",
    "a ground-truth box is matched more than once",
    "mark a ground-truth box as matched and leave it out for the later predictions: a second "
    "detection of the same object is a false positive",
)
MATCH_STRICT = Diagnosis(
    "match_strict",
    "an IoU equal to the threshold does not match (> instead of >=)",
    "COCO's rule matches when IoU >= iou_threshold",
)
MATCH_BEST_OVERALL = Diagnosis(
    "match_best_overall",
    "a prediction is compared only with the ground-truth box it overlaps most, matched or not",
    "take the best among the ground-truth boxes NOT yet matched (COCO's rule): a prediction "
    "whose best box is taken may still match another one",
)
MATCH_FIRST_ABOVE = Diagnosis(
    "match_first_above",
    "a prediction is matched to the first ground-truth box above the threshold, not the best",
    "among the unmatched ground-truth boxes with IoU >= iou_threshold, take the one with the "
    "highest IoU",
)
MATCH_FLAGS_SORTED = Diagnosis(
    "match_flags_sorted",
    "the flags are returned in score order, not in the order of the predictions",
    "flags[p] is about pred_boxes[p]: write each flag at the prediction's own index",
)
AP_NO_ENVELOPE = Diagnosis(
    "ap_no_envelope",
    "the precision is not interpolated (no envelope)",
    "at each detection use the highest precision at that recall or any higher one: a running "
    "maximum from the last detection back to the first",
)
AP_RECALL_DENOMINATOR = Diagnosis(
    "ap_recall_denominator",
    "recall is divided by the number of detections or of true positives, not num_ground_truth",
    "recall = true positives so far / num_ground_truth (objects never detected lower the recall)",
)
AP_ELEVEN_POINT = Diagnosis(
    "ap_eleven_point",
    "the 11-point (or 101-point) average is computed instead of the all-point area",
    "AP = sum over detections of (recall gained) x (interpolated precision there)",
)
AP_NUM_GROUND_TRUTH = Diagnosis(
    "ap_num_ground_truth_unchecked",
    "num_ground_truth < 1 is not rejected with ValueError",
    "AP is undefined without objects: if num_ground_truth < 1: raise ValueError(...)",
)
AP_TRAPEZOID = Diagnosis(
    "ap_trapezoid",
    "the area under the precision-recall curve is taken with trapezoids",
    "each detection adds a rectangle: (recall gained) x (interpolated precision at it)",
)
ENCODE_ARGUMENTS_SWAPPED = Diagnosis(
    "encode_arguments_swapped",
    "the anchors and the boxes are swapped",
    "the offsets describe the box relative to its anchor: divide by the anchor's size, "
    "log(w / w_a)",
)
ENCODE_CORNERS = Diagnosis(
    "encode_corners",
    "the offsets use the corners instead of the centres",
    "tx = (cx - cx_a) / w_a with the centres cx = (x1 + x2) / 2",
)
ENCODE_NOT_NORMALISED = Diagnosis(
    "encode_not_normalised",
    "the centre offsets are not divided by the anchor's width and height",
    "tx = (cx - cx_a) / w_a, ty = (cy - cy_a) / h_a",
)
ENCODE_NO_LOG = Diagnosis(
    "encode_no_log",
    "the size offsets are ratios (or differences) instead of log-ratios",
    "tw = log(w / w_a), th = log(h / h_a)",
)
WIDTH_HEIGHT_SWAPPED = Diagnosis(
    "width_height_swapped",
    "x offsets go with the height (or y offsets with the width)",
    "x goes with widths (tx uses w_a, tw the widths), y with heights",
)
DECODE_NO_EXP = Diagnosis(
    "decode_no_exp",
    "the size offsets are not exponentiated",
    "w = w_a * exp(tw), h = h_a * exp(th): the inverse of the logarithm",
)
DECODE_CENTRE_FORMAT = Diagnosis(
    "decode_centre_format",
    "the result is (cx, cy, w, h) instead of corners",
    "return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)",
)
DECODE_NOT_SCALED = Diagnosis(
    "decode_not_scaled",
    "the centre offsets are not multiplied by the anchor's width and height",
    "cx = cx_a + tx * w_a, cy = cy_a + ty * h_a",
)
DECODE_HALF_MISSING = Diagnosis(
    "decode_half_missing",
    "the corners are the centre plus or minus the whole width (or height)",
    "the corners are cx - w / 2 and cx + w / 2",
)
DECODE_ARGUMENTS_SWAPPED = Diagnosis(
    "decode_arguments_swapped",
    "the anchors and the offsets are swapped",
    "decode_boxes(anchors, deltas): the first argument holds the anchors' corners",
)
TRANSPOSED_OUTPUT = Diagnosis(
    "transposed_output",
    "the output is (4, N) instead of (N, 4)",
    "stack the four columns along the last axis: np.stack([...], axis=1)",
)

# ---------------------------------------------------------------------------------------------
# buggy versions written with NumPy
# ---------------------------------------------------------------------------------------------


def _iou(a: np.ndarray, b: np.ndarray, *, plus_one: float = 0.0, clamp: bool = True,
         denominator: str = "union", enclosing: bool = False, xywh: bool = False) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if xywh:
        a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
        b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    area_a = (a[:, 2] - a[:, 0] + plus_one) * (a[:, 3] - a[:, 1] + plus_one)
    area_b = (b[:, 2] - b[:, 0] + plus_one) * (b[:, 3] - b[:, 1] + plus_one)
    if enclosing:
        lo = np.minimum(a[:, None, :2], b[None, :, :2])
        hi = np.maximum(a[:, None, 2:], b[None, :, 2:])
    else:
        lo = np.maximum(a[:, None, :2], b[None, :, :2])
        hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    sides = hi - lo + plus_one
    if clamp:
        sides = np.maximum(sides, 0.0)
    inter = sides[..., 0] * sides[..., 1]
    if denominator == "sum":
        union = area_a[:, None] + area_b[None, :]
    elif denominator == "first":
        union = np.broadcast_to(area_a[:, None], inter.shape)
    elif denominator == "min":
        union = np.minimum(area_a[:, None], area_b[None, :])
    else:
        union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(all="ignore"):
        return inter / union


def _order(scores: np.ndarray, rule: str) -> np.ndarray:
    if rule == "index":
        return np.arange(len(scores))
    if rule == "reversed":  # what np.argsort(scores)[::-1] gives (ties in no set order)
        return np.argsort(scores)[::-1]
    if rule == "reversed_stable":
        return np.argsort(scores, kind="stable")[::-1]
    return np.argsort(-np.asarray(scores), kind="stable")


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, iou: np.ndarray | None = None,
         order: str = "stable", ge: bool = False, inverted: bool = False,
         suppressed_suppress: bool = False, output: str = "score") -> np.ndarray:
    iou = _iou(boxes, boxes) if iou is None else iou
    n = len(scores)
    removed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for i in _order(scores, order):
        if removed[i] and not suppressed_suppress:
            continue
        if not removed[i]:
            keep.append(int(i))
        if inverted:
            over = iou[i] <= threshold
        else:
            over = iou[i] >= threshold if ge else iou[i] > threshold
        over[i] = True
        removed |= over
    if output == "index":
        keep = sorted(keep)
    return np.array(keep, dtype=np.int64)


def _batched(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float, *,
             output: str = "score", local: bool = False, **nms_options: Any) -> np.ndarray:
    kept: list[int] = []
    groups = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        inner = _nms(boxes[members], scores[members], threshold, **nms_options)
        chosen = inner if local else members[inner]
        groups.append([int(i) for i in chosen])
        kept += groups[-1]
    if output == "grouped":
        return np.array(kept, dtype=np.int64)
    keep = np.array(sorted(kept), dtype=np.int64)
    if local:
        return np.array(kept, dtype=np.int64)
    return keep[np.argsort(-scores[keep], kind="stable")] if len(keep) else keep


def _match(preds: np.ndarray, scores: np.ndarray, gts: np.ndarray, threshold: float, *,
           order: str = "stable", reuse: bool = False, strict: bool = False,
           rule: str = "coco", sorted_flags: bool = False, plus_one: float = 0.0) -> np.ndarray:
    flags = np.zeros(len(preds), dtype=bool)
    if len(preds) == 0 or len(gts) == 0:
        return flags
    iou = _iou(preds, gts, plus_one=plus_one)
    matched = np.zeros(len(gts), dtype=bool)
    ranked = _order(scores, order)
    result = []
    for p in ranked:
        ok = (lambda v: v > threshold) if strict else (lambda v: v >= threshold)
        hit = False
        if rule == "best_overall":
            best = int(np.argmax(iou[p]))
            if ok(iou[p, best]) and (reuse or not matched[best]):
                matched[best], hit = True, True
        elif rule == "first_above":
            for g in range(len(gts)):
                if (reuse or not matched[g]) and ok(iou[p, g]):
                    matched[g], hit = True, True
                    break
        else:
            candidates = iou[p].copy()
            if not reuse:
                candidates[matched] = -1.0
            best = int(np.argmax(candidates))
            if ok(candidates[best]):
                matched[best], hit = True, True
        flags[p] = hit
        result.append(hit)
    return np.array(result, dtype=bool) if sorted_flags else flags


def _ap(scores: np.ndarray, hits: np.ndarray, num_gt: int, *, order: str = "stable",
        envelope: bool = True, recall: str = "gt", integral: str = "rectangles") -> float:
    ranked = np.asarray(hits, dtype=np.float64)[_order(scores, order)]
    if ranked.size == 0:
        return 0.0
    tp = np.cumsum(ranked)
    precision = tp / np.arange(1, ranked.size + 1)
    if recall == "detections":
        rec = tp / ranked.size
    elif recall == "true_positives":
        rec = tp / max(tp[-1], 1.0)
    else:
        rec = tp / num_gt
    if envelope:
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    if integral == "eleven" or integral == "hundred":
        points = np.linspace(0, 1, 11 if integral == "eleven" else 101)
        return float(np.mean([precision[rec >= t - 1e-12].max() if (rec >= t - 1e-12).any() else 0.0 for t in points]))
    if integral == "trapezoid":  # np.trapezoid(precision, recall): the curve's points joined
        return float(np.sum(np.diff(rec) * (precision[1:] + precision[:-1]) / 2))
    previous = np.concatenate([[0.0], rec[:-1]])
    return float(np.sum((rec - previous) * precision))


def _centres(boxes: np.ndarray, plus_one: float = 0.0) -> tuple[np.ndarray, ...]:
    w = boxes[:, 2] - boxes[:, 0] + plus_one
    h = boxes[:, 3] - boxes[:, 1] + plus_one
    return boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h


def _encode(anchors: np.ndarray, boxes: np.ndarray, *, corners: bool = False, normalised: bool = True,
            size: str = "log", swap_wh: bool = False, plus_one: float = 0.0) -> np.ndarray:
    cxa, cya, wa, ha = _centres(anchors, plus_one)
    cx, cy, w, h = _centres(boxes, plus_one)
    if corners:
        cx, cy, cxa, cya = boxes[:, 0], boxes[:, 1], anchors[:, 0], anchors[:, 1]
    da, db = (ha, wa) if swap_wh else (wa, ha)
    tx = (cx - cxa) / (da if normalised else 1.0)
    ty = (cy - cya) / (db if normalised else 1.0)
    if size == "ratio":
        tw, th = w / wa, h / ha
    elif size == "difference":
        tw, th = w - wa, h - ha
    elif size == "log_difference":
        tw, th = np.log(w) - wa, np.log(h) - ha
    else:
        tw, th = np.log(w / wa), np.log(h / ha)
    return np.stack([tx, ty, tw, th], axis=1)


def _decode(anchors: np.ndarray, deltas: np.ndarray, *, exp: bool = True, centre_format: bool = False,
            scaled: bool = True, half: bool = True, swap_wh: bool = False, plus_one: float = 0.0) -> np.ndarray:
    cxa, cya, wa, ha = _centres(anchors, plus_one)
    tx, ty, tw, th = deltas.T
    if swap_wh:
        tx, ty, tw, th = ty, tx, th, tw
    cx = cxa + tx * (wa if scaled else 1.0)
    cy = cya + ty * (ha if scaled else 1.0)
    w = wa * np.exp(tw) if exp else wa * tw
    h = ha * np.exp(th) if exp else ha * th
    if centre_format:
        return np.stack([cx, cy, w, h], axis=1)
    f = 0.5 if half else 1.0
    return np.stack([cx - f * w, cy - f * h, cx + f * w - plus_one, cy + f * h - plus_one], axis=1)


# ---------------------------------------------------------------------------------------------
# random boxes
# ---------------------------------------------------------------------------------------------


def _random_boxes(rng: np.random.Generator, n: int, extent: float = 10.0) -> np.ndarray:
    corner = rng.uniform(0.0, extent, (n, 2))
    size = rng.uniform(0.5, 4.0, (n, 2))
    return np.concatenate([corner, corner + size], axis=1)


def _jitter(rng: np.random.Generator, box: np.ndarray, n: int, amount: float = 0.3) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    offsets = rng.uniform(-amount, amount, (n, 4)) * np.array([w, h, w, h])
    boxes = box[None, :] + offsets
    boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0] + 0.1)
    boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1] + 0.1)
    return boxes


def _clusters(rng: np.random.Generator, centres: int, per: int) -> np.ndarray:
    seeds = _random_boxes(rng, centres, extent=20.0)
    return np.concatenate([_jitter(rng, s, per) for s in seeds], axis=0)


def _shuffle(rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    order = rng.permutation(len(arrays[0]))
    return tuple(a[order] for a in arrays)


# ---------------------------------------------------------------------------------------------
# box_iou
# ---------------------------------------------------------------------------------------------

_SPECIAL_1 = np.array([[0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 11.0, 13.0], [3.0, 3.0, 4.0, 6.0]])
_SPECIAL_2 = np.array(
    [
        [2.0, 0.0, 4.0, 2.0],  # touches the first box's right edge
        [0.0, 0.0, 2.0, 2.0],  # the first box itself
        [12.0, 14.0, 13.0, 15.0],  # apart from the second box along both axes
        [3.5, 1.0, 7.0, 2.0],  # apart from the third box along y only
        [0.5, 0.5, 1.5, 1.0],  # inside the first box
    ]
)


def _draw_iou(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for n, m in ((5, 4), (3, 6)):
        a, b = _random_boxes(rng, n), _random_boxes(rng, m)
        found.append(Inputs((a, b), {}, f"{n} and {m} random boxes"))
    a = np.concatenate([_SPECIAL_1, _random_boxes(rng, 2)])
    b = np.concatenate([_SPECIAL_2, _random_boxes(rng, 1)])
    found.insert(0, Inputs((a, b), {}, "boxes that touch, coincide, nest and lie apart along one or both axes"))
    return found


def _draw_iou_empty(rng: np.random.Generator) -> list[Inputs]:
    one = _random_boxes(rng, 1)
    return [
        Inputs((np.zeros((0, 4)), _random_boxes(rng, 3)), {}, "N=0 boxes against 3"),
        Inputs((_random_boxes(rng, 4), np.zeros((0, 4))), {}, "4 boxes against M=0"),
        Inputs((np.zeros((0, 4)), np.zeros((0, 4))), {}, "N=0 against M=0"),
        Inputs((one, _jitter(rng, one[0], 1, 0.2)), {}, "one box against one that overlaps it"),
    ]


def _judge_iou(t: Trial, out: object) -> Verdict:
    a, b = t.a["boxes1"], t.a["boxes2"]

    def variants() -> list[Variant]:
        found = [
            Variant("iou_plus_one", _iou(a, b, plus_one=1.0)),
            Variant("iou_unclamped", _iou(a, b, clamp=False)),
            Variant("iou_unclamped", _iou(a, b, clamp=False, plus_one=1.0)),
            Variant("iou_wrong_denominator", _iou(a, b, denominator="sum")),
            Variant("iou_wrong_denominator", _iou(a, b, denominator="first")),
            Variant("iou_wrong_denominator", _iou(a, b, denominator="min")),
            Variant("iou_enclosing_box", _iou(a, b, enclosing=True)),
            Variant("iou_xywh", _iou(a, b, xywh=True)),
            Variant("iou_transposed", t.expected.T),
        ]
        if len(a) != len(b):
            found.append(Variant("iou_transposed", (len(b), len(a)), True))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the IoU matrix", out, t.expected, variants)


BOX_IOU = Exercise(
    name="box_iou",
    summary="intersection over union of every pair of boxes",
    tests=(
        HiddenTest(
            "test_box_iou",
            2.0,
            "random boxes, and boxes that touch, coincide, nest and lie apart along one or both axes",
            _draw_iou,
        ),
        HiddenTest("test_box_iou_empty", 1.0, "no boxes on one side or both, one box each", _draw_iou_empty),
    ),
    judge=_judge_iou,
    visible=(
        Visible(
            (np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 2.0]])),
            {},
            "visible example: [[0, 0, 2, 2]] against an overlapping, a touching and the same box",
            np.array([[1.0 / 7.0, 0.0, 1.0]]),
        ),
        Visible(
            (np.zeros((0, 4)), np.array([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 2.0]])),
            {},
            "visible example: no boxes against three",
            np.zeros((0, 3)),
        ),
    ),
    misconceptions=(
        dg.IOU_PLUS_ONE,
        dg.IOU_UNCLAMPED,
        IOU_WRONG_DENOMINATOR,
        IOU_ENCLOSING_BOX,
        IOU_TRANSPOSED,
        IOU_XYWH,
    ),
    new_arrays=True,
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# nms
# ---------------------------------------------------------------------------------------------


def _draw_nms(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for centres, per, threshold in ((3, 4, 0.5), (4, 3, 0.3), (2, 5, 0.7)):
        boxes = _clusters(rng, centres, per)
        scores = rng.uniform(0.05, 1.0, len(boxes))
        boxes, scores = _shuffle(rng, boxes, scores)
        found.append(
            Inputs((boxes, scores, threshold), {}, f"{centres} clusters of {per} boxes, iou_threshold {threshold}")
        )
    return found


#: A chain: A overlaps B, B overlaps C, A and C apart; the best box is A.
_CHAIN = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0], [2.0, 0.0, 4.0, 2.0]])
#: IoU exactly 0.5: [0, 3] x [0, 1] and [1, 4] x [0, 1] share 2 of 4 units of area.
_HALF = np.array([[0.0, 0.0, 3.0, 1.0], [1.0, 0.0, 4.0, 1.0]])


def _draw_nms_rules(rng: np.random.Generator) -> list[Inputs]:
    tied_boxes = np.concatenate([_jitter(rng, np.array([0.0, 0.0, 4.0, 4.0]), 3, 0.05), _random_boxes(rng, 3) + 20.0])
    tied_scores = np.array([0.5, 0.5, 0.5, 0.8, 0.8, 0.2])
    return [
        Inputs((_CHAIN, np.array([0.9, 0.8, 0.7]), 0.3), {}, "a chain A-B-C where only neighbours overlap, iou_threshold 0.3"),
        Inputs((_CHAIN[::-1].copy(), np.array([0.7, 0.8, 0.9]), 0.3), {}, "the same chain given in reverse"),
        Inputs((_HALF, np.array([0.9, 0.6]), 0.5), {}, "two boxes whose IoU is exactly iou_threshold 0.5"),
        Inputs((tied_boxes, tied_scores, 0.5), {}, "tied scores, among overlapping and apart boxes"),
        Inputs((np.zeros((0, 4)), np.zeros(0), 0.5), {}, "no boxes (N=0)"),
    ]


def _judge_nms(t: Trial, out: object) -> Verdict:
    boxes, scores, threshold = t.a["boxes"], t.a["scores"], t.a["iou_threshold"]

    def variants() -> list[Variant]:
        options = [
            ("nms_greater_equal", {"ge": True}),
            ("not_sorted_by_score", {"order": "index"}),
            ("ties_reversed", {"order": "reversed"}),
            ("ties_reversed", {"order": "reversed_stable"}),
            ("nms_suppressed_still_suppress", {"suppressed_suppress": True}),
            ("nms_index_order", {"output": "index"}),
            ("nms_inverted", {"inverted": True}),
            ("iou_plus_one", {"iou": _iou(boxes, boxes, plus_one=1.0)}),
            ("iou_unclamped", {"iou": _iou(boxes, boxes, clamp=False)}),
        ]
        found = [Variant(key, _nms(boxes, scores, threshold, **flags)) for key, flags in options]
        found.append(Variant("nms_index_order", np.sort(t.expected)))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the kept indices", out, t.expected, variants)


_NMS_BOXES = np.array([[0.0, 0.0, 2.0, 2.0], [0.2, 0.0, 2.2, 2.0], [1.0, 0.0, 3.0, 2.0], [0.1, 0.1, 2.1, 2.1]])

NMS_DIAGNOSES = (
    dg.GREATER_EQUAL,
    dg.NOT_SORTED_BY_SCORE,
    dg.TIES_REVERSED,
    NMS_SUPPRESSED_STILL_SUPPRESS,
    NMS_INDEX_ORDER,
    NMS_INVERTED,
    EMPTY_FLOAT_ARRAY,
    dg.IOU_PLUS_ONE,
    dg.IOU_UNCLAMPED,
)

NMS = Exercise(
    name="nms",
    summary="greedy non-maximum suppression",
    tests=(
        HiddenTest(
            "test_nms",
            2.0,
            "clusters of overlapping boxes in random order, iou_threshold 0.3, 0.5 and 0.7",
            _draw_nms,
        ),
        HiddenTest(
            "test_nms_rules",
            2.0,
            "a chain of overlaps, an IoU equal to the threshold, tied scores, no boxes",
            _draw_nms_rules,
        ),
    ),
    judge=_judge_nms,
    visible=(
        Visible(
            (_NMS_BOXES, np.array([0.9, 0.8, 0.7, 0.95]), 0.5),
            {},
            "visible example: four overlapping boxes, iou_threshold 0.5",
            np.array([3, 2], dtype=np.int64),
        ),
        Visible(
            (_HALF, np.array([0.9, 0.8]), 0.5),
            {},
            "visible example: two boxes with IoU exactly 0.5, iou_threshold 0.5",
            np.array([0, 1], dtype=np.int64),
        ),
        Visible(
            (np.zeros((0, 4)), np.zeros(0), 0.5),
            {},
            "visible example: no boxes",
            np.zeros(0, dtype=np.int64),
        ),
    ),
    misconceptions=NMS_DIAGNOSES,
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# batched_nms
# ---------------------------------------------------------------------------------------------


def _draw_batched(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for centres, per, labels_count, threshold in ((3, 4, 2, 0.5), (2, 6, 3, 0.4)):
        boxes = _clusters(rng, centres, per)
        scores = rng.uniform(0.05, 1.0, len(boxes))
        labels = rng.integers(0, labels_count, len(boxes))
        boxes, scores, labels = _shuffle(rng, boxes, scores, labels)
        found.append(
            Inputs(
                (boxes, scores, labels, threshold),
                {},
                f"{centres} clusters of {per} boxes with {labels_count} labels, iou_threshold {threshold}",
            )
        )
    same = _jitter(rng, np.array([0.0, 0.0, 3.0, 3.0]), 4, 0.05)
    found.append(
        Inputs(
            (same, np.array([0.6, 0.6, 0.3, 0.6]), np.array([1, 0, 0, 1]), 0.5),
            {},
            "four overlapping boxes of two labels with tied scores, within and across labels",
        )
    )
    found.append(Inputs((np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64), 0.5), {}, "no boxes (N=0)"))
    return found


def _judge_batched(t: Trial, out: object) -> Verdict:
    boxes, scores, labels = t.a["boxes"], t.a["scores"], np.asarray(t.a["labels"])
    threshold = t.a["iou_threshold"]

    def variants() -> list[Variant]:
        found = [
            Variant("batched_labels_ignored", _nms(boxes, scores, threshold)),

            Variant("batched_local_indices", _batched(boxes, scores, labels, threshold, local=True)),
            Variant("nms_greater_equal", _batched(boxes, scores, labels, threshold, ge=True)),
            Variant("ties_reversed", _batched(boxes, scores, labels, threshold, order="reversed")),
            Variant("ties_reversed", _batched(boxes, scores, labels, threshold, order="reversed_stable")),
            Variant("not_sorted_by_score", _batched(boxes, scores, labels, threshold, order="index")),
            Variant(
                "nms_suppressed_still_suppress",
                _batched(boxes, scores, labels, threshold, suppressed_suppress=True),
            ),
        ]
        if len(scores):
            keep = t.expected
            found.append(Variant("ties_reversed", keep[np.argsort(scores[keep], kind="stable")[::-1]]))
            found.append(Variant("ties_reversed", np.sort(keep)[np.argsort(scores[np.sort(keep)])[::-1]]))
        found += [
            Variant("batched_grouped_by_label", _batched(boxes, scores, labels, threshold, output="grouped")),
            Variant("nms_index_order", np.sort(t.expected)),
        ]
        return keep_different(found, t.expected)

    return judge_array(t.case, "the kept indices", out, t.expected, variants)


BATCHED_NMS = Exercise(
    name="batched_nms",
    summary="non-maximum suppression within each label",
    tests=(
        HiddenTest(
            "test_batched_nms",
            2.0,
            "overlapping boxes of different labels, tied scores across labels, no boxes",
            _draw_batched,
        ),
    ),
    judge=_judge_batched,
    visible=(
        Visible(
            (
                np.array([[0.0, 0.0, 2.0, 2.0], [0.1, 0.0, 2.1, 2.0], [0.0, 0.1, 2.0, 2.1]]),
                np.array([0.9, 0.8, 0.7]),
                np.array([0, 1, 0]),
                0.5,
            ),
            {},
            "visible example: three overlapping boxes, labels [0, 1, 0], iou_threshold 0.5",
            np.array([0, 1], dtype=np.int64),
        ),
    ),
    misconceptions=(BATCHED_LABELS_IGNORED, BATCHED_GROUPED_BY_LABEL, BATCHED_LOCAL_INDICES, *NMS_DIAGNOSES),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# match_detections
# ---------------------------------------------------------------------------------------------


def _draw_match(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for gts_count, threshold in ((4, 0.5), (3, 0.7)):
        gts = _random_boxes(rng, gts_count, extent=30.0)
        near = np.concatenate([_jitter(rng, g, int(rng.integers(1, 4)), 0.15) for g in gts])
        preds = np.concatenate([near, _random_boxes(rng, 3, extent=30.0)])
        scores = rng.uniform(0.05, 1.0, len(preds))
        preds, scores = _shuffle(rng, preds, scores)
        label = f"{len(preds)} predictions near and away from {gts_count} objects, iou_threshold {threshold}"
        found.append(Inputs((preds, scores, gts), {} if threshold == 0.5 else {"iou_threshold": threshold}, label))
    return found


#: Two objects side by side; the first prediction overlaps both, most the first one.
_GT_PAIR = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]])
_PRED_PAIR = np.array([[0.1, 0.0, 2.1, 2.0], [0.2, 0.0, 2.2, 2.0]])
#: Two objects half a unit apart.
_GT_NEAR = np.array([[1.0, 0.0, 3.0, 2.0], [1.5, 0.0, 3.5, 2.0]])


def _draw_match_rules(rng: np.random.Generator) -> list[Inputs]:
    twice = _random_boxes(rng, 1)
    copies = _jitter(rng, twice[0], 2, 0.03)
    return [
        Inputs(
            (_PRED_PAIR, np.array([0.9, 0.8]), _GT_PAIR),
            {"iou_threshold": 0.3},
            "the second prediction's best object is taken, another one is free (COCO's rule), "
            "iou_threshold 0.3",
        ),
        Inputs((copies, np.array([0.4, 0.9]), twice), {}, "two predictions of one object, the better one second"),
        Inputs(
            (np.array([[1.4, 0.0, 3.4, 2.0], [0.6, 0.0, 2.6, 2.0]]), np.array([0.9, 0.8]), _GT_NEAR),
            {},
            "the first object above the threshold is not the best one",
        ),
        Inputs(
            (np.array([[1.0, 0.0, 4.0, 1.0], [10.0, 10.0, 11.0, 11.0]]), np.array([0.9, 0.5]), np.array([[0.0, 0.0, 3.0, 1.0]])),
            {},
            "an IoU exactly equal to iou_threshold 0.5",
        ),
        Inputs((_random_boxes(rng, 3), rng.uniform(0, 1, 3), np.zeros((0, 4))), {}, "no objects (G=0)"),
        Inputs((np.zeros((0, 4)), np.zeros(0), _random_boxes(rng, 2)), {}, "no predictions (P=0)"),
        Inputs(
            (np.concatenate([copies, copies]), np.array([0.5, 0.5, 0.5, 0.5]), twice),
            {},
            "four predictions of one object with tied scores",
        ),
    ]


def _judge_match(t: Trial, out: object) -> Verdict:
    preds, scores, gts, threshold = t.a["pred_boxes"], t.a["pred_scores"], t.a["gt_boxes"], t.a["iou_threshold"]

    def variants() -> list[Variant]:
        options = [
            ("match_gt_reused", {"reuse": True}),
            ("not_sorted_by_score", {"order": "index"}),
            ("ties_reversed", {"order": "reversed"}),
            ("ties_reversed", {"order": "reversed_stable"}),
            ("match_strict", {"strict": True}),
            ("match_best_overall", {"rule": "best_overall"}),
            ("match_first_above", {"rule": "first_above"}),
            ("match_flags_sorted", {"sorted_flags": True}),
            ("iou_plus_one", {"plus_one": 1.0}),
        ]
        return keep_different(
            [Variant(key, _match(preds, scores, gts, threshold, **flags)) for key, flags in options], t.expected
        )

    return judge_array(t.case, "the flags", out, t.expected, variants)


MATCH_DETECTIONS = Exercise(
    name="match_detections",
    summary="which predictions are true positives (COCO's greedy matching)",
    tests=(
        HiddenTest(
            "test_match_detections",
            2.0,
            "predictions near and away from the objects in random order, iou_threshold 0.5 and 0.7",
            _draw_match,
        ),
        HiddenTest(
            "test_match_detections_rules",
            2.0,
            "objects claimed twice, a taken best object with another one free, an IoU equal to the "
            "threshold, tied scores, no objects, no predictions",
            _draw_match_rules,
        ),
    ),
    judge=_judge_match,
    visible=(
        Visible(
            (
                np.array([[0.0, 0.0, 2.0, 2.2], [0.1, 0.0, 2.0, 2.0], [4.0, 4.0, 6.0, 5.0]]),
                np.array([0.6, 0.9, 0.8]),
                np.array([[0.0, 0.0, 2.0, 2.0], [4.0, 4.0, 6.0, 6.0]]),
            ),
            {},
            "visible example: two predictions of the first object, one of the second with IoU 0.5",
            np.array([False, True, True]),
        ),
        Visible(
            (np.zeros((0, 4)), np.zeros(0), np.array([[0.0, 0.0, 2.0, 2.0]])),
            {},
            "visible example: no predictions",
            np.zeros(0, dtype=bool),
        ),
    ),
    misconceptions=(
        MATCH_GT_REUSED,
        MATCH_STRICT,
        MATCH_BEST_OVERALL,
        MATCH_FIRST_ABOVE,
        MATCH_FLAGS_SORTED,
        dg.NOT_SORTED_BY_SCORE,
        dg.TIES_REVERSED,
        dg.IOU_PLUS_ONE,
    ),
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# average_precision
# ---------------------------------------------------------------------------------------------


def _draw_ap(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for detections, extra in ((8, 2), (12, 0), (6, 5)):
        scores = rng.uniform(0.0, 1.0, detections)
        hits = rng.random(detections) < 0.6
        hits[int(np.argmin(scores))] = True  # at least one true positive, and not only first
        num_gt = int(hits.sum()) + extra
        found.append(
            Inputs((scores, hits, num_gt), {}, f"{detections} detections, {int(hits.sum())} true, num_ground_truth {num_gt}")
        )
    return found


def _draw_ap_rules(rng: np.random.Generator) -> list[Inputs]:
    high, tied, low = np.sort(rng.uniform(0.05, 0.95, 3))[::-1]
    first, last = np.sort(rng.uniform(0.05, 0.95, 2))
    return [
        Inputs(
            (np.array([high, tied, tied, tied, low]), np.array([True, False, True, False, True]), 4),
            {},
            "tied scores with different outcomes (ties: the lower index first)",
        ),
        Inputs(
            (np.array([first, 1.0, last]), np.array([True, False, True]), 2),
            {},
            "a false positive ranked first",
        ),
        Inputs((rng.uniform(0, 1, 2), np.array([False, False]), 3), {}, "no true positive"),
        Inputs((np.zeros(0), np.zeros(0, dtype=bool), 2), {}, "no detections"),
        Inputs((rng.uniform(0, 1, 1), np.array([True]), 0), {}, "num_ground_truth 0 (ValueError)"),
    ]


def _judge_ap(t: Trial, out: object) -> Verdict:
    scores, hits, num_gt = t.a["scores"], t.a["is_true_positive"], t.a["num_ground_truth"]
    if isinstance(t.expected, Raised):
        return expect_value_error(t, out, key="ap_num_ground_truth_unchecked")

    def variants() -> list[Variant]:
        options = [
            ("ap_no_envelope", {"envelope": False}),
            ("ap_recall_denominator", {"recall": "detections"}),
            ("ap_recall_denominator", {"recall": "true_positives"}),
            ("not_sorted_by_score", {"order": "index"}),
            ("ties_reversed", {"order": "reversed"}),
            ("ties_reversed", {"order": "reversed_stable"}),
            ("ap_eleven_point", {"integral": "eleven"}),
            ("ap_eleven_point", {"integral": "hundred"}),
            ("ap_trapezoid", {"integral": "trapezoid"}),
            ("ap_trapezoid", {"integral": "trapezoid", "envelope": False}),
            ("ap_recall_denominator", {"recall": "detections", "envelope": False}),
        ]
        found = []
        for key, flags in options:
            with contextlib.suppress(ValueError, ZeroDivisionError):
                value = _ap(scores, hits, num_gt, **flags)
                if not math.isclose(value, t.expected, rel_tol=1e-9, abs_tol=1e-12):
                    found.append(Variant(key, value))
        return found

    return judge_float(t.case, out, t.expected, variants)


AVERAGE_PRECISION = Exercise(
    name="average_precision",
    summary="all-point interpolated average precision",
    tests=(
        HiddenTest(
            "test_average_precision",
            2.0,
            "random scores and outcomes, objects that are never detected",
            _draw_ap,
        ),
        HiddenTest(
            "test_average_precision_rules",
            1.0,
            "tied scores, a false positive first, no true positive, no detections, "
            "num_ground_truth 0",
            _draw_ap_rules,
        ),
    ),
    judge=_judge_ap,
    visible=(
        Visible(
            (np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, False, True, False]), 3),
            {},
            "visible example: scores [0.9, 0.8, 0.7, 0.6], true positives [T, F, T, F], 3 objects",
            5.0 / 9.0,
        ),
        Visible(
            (np.array([0.9, 0.8, 0.7]), np.array([False, True, True]), 2),
            {},
            "visible example: scores [0.9, 0.8, 0.7], true positives [F, T, T], 2 objects",
            2.0 / 3.0,
        ),
        Visible((np.array([0.5]), np.array([True]), 0), {}, "visible example: num_ground_truth 0", Raised("ValueError", "")),
    ),
    misconceptions=(
        AP_NO_ENVELOPE,
        AP_RECALL_DENOMINATOR,
        AP_ELEVEN_POINT,
        AP_TRAPEZOID,
        AP_NUM_GROUND_TRUTH,
        dg.NOT_SORTED_BY_SCORE,
        dg.TIES_REVERSED,
    ),
    judges_errors=True,
    **POLICY,
)

# ---------------------------------------------------------------------------------------------
# encode_boxes and decode_boxes
# ---------------------------------------------------------------------------------------------


def _draw_encode(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for n in (6, 3):
        anchors = _random_boxes(rng, n)
        boxes = np.concatenate([_jitter(rng, a, 1, 0.4) for a in anchors])
        found.append(Inputs((anchors, boxes), {}, f"{n} anchors and boxes of different widths and heights"))
    found.append(Inputs((np.zeros((0, 4)), np.zeros((0, 4))), {}, "no boxes (N=0)"))
    return found


def _judge_encode(t: Trial, out: object) -> Verdict:
    anchors, boxes = t.a["anchors"], t.a["boxes"]

    def variants() -> list[Variant]:
        options = [
            ("encode_corners", {"corners": True}),
            ("encode_not_normalised", {"normalised": False}),
            ("encode_no_log", {"size": "ratio"}),
            ("encode_no_log", {"size": "difference"}),
            ("encode_no_log", {"size": "log_difference"}),
            ("width_height_swapped", {"swap_wh": True}),
            ("iou_plus_one", {"plus_one": 1.0}),
        ]
        found = [Variant(key, _encode(anchors, boxes, **flags)) for key, flags in options]
        found.append(Variant("encode_arguments_swapped", _encode(boxes, anchors)))
        found.append(Variant("transposed_output", t.expected.T))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the offsets", out, t.expected, variants)


def _draw_decode(rng: np.random.Generator) -> list[Inputs]:
    found = []
    for n in (6, 3):
        anchors = _random_boxes(rng, n)
        deltas = rng.uniform(-1.0, 1.0, (n, 4))
        found.append(Inputs((anchors, deltas), {}, f"{n} anchors of different widths and heights, offsets in [-1, 1]"))
    found.append(Inputs((np.zeros((0, 4)), np.zeros((0, 4))), {}, "no boxes (N=0)"))
    return found


def _judge_decode(t: Trial, out: object) -> Verdict:
    anchors, deltas = t.a["anchors"], t.a["deltas"]

    def variants() -> list[Variant]:
        options = [
            ("decode_no_exp", {"exp": False}),
            ("decode_centre_format", {"centre_format": True}),
            ("decode_not_scaled", {"scaled": False}),
            ("decode_half_missing", {"half": False}),
            ("width_height_swapped", {"swap_wh": True}),
            ("iou_plus_one", {"plus_one": 1.0}),
        ]
        found = [Variant(key, _decode(anchors, deltas, **flags)) for key, flags in options]
        with np.errstate(all="ignore"):
            found.append(Variant("decode_arguments_swapped", _decode(deltas, anchors)))
        found.append(Variant("transposed_output", t.expected.T))
        return keep_different(found, t.expected)

    return judge_array(t.case, "the boxes", out, t.expected, variants)


ENCODE_BOXES = Exercise(
    name="encode_boxes",
    summary="offsets of boxes relative to anchors (Faster R-CNN)",
    tests=(
        HiddenTest("test_encode_boxes", 2.0, "random anchors and boxes, no boxes", _draw_encode),
    ),
    judge=_judge_encode,
    visible=(
        Visible(
            (np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 5.0]])),
            {},
            "visible example: anchor [0, 0, 2, 2], box [1, 1, 3, 5]",
            np.array([[0.5, 1.0, 0.0, math.log(2.0)]]),
        ),
    ),
    misconceptions=(
        ENCODE_ARGUMENTS_SWAPPED,
        ENCODE_CORNERS,
        ENCODE_NOT_NORMALISED,
        ENCODE_NO_LOG,
        WIDTH_HEIGHT_SWAPPED,
        TRANSPOSED_OUTPUT,
        dg.IOU_PLUS_ONE,
    ),
    new_arrays=True,
    **POLICY,
)

DECODE_BOXES = Exercise(
    name="decode_boxes",
    summary="boxes from offsets relative to anchors: the inverse of `encode_boxes`",
    tests=(
        HiddenTest("test_decode_boxes", 2.0, "random anchors and offsets, no boxes", _draw_decode),
    ),
    judge=_judge_decode,
    visible=(
        Visible(
            (np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[0.5, 1.0, 0.0, math.log(2.0)]])),
            {},
            "visible example: anchor [0, 0, 2, 2], offsets [0.5, 1, 0, log 2]",
            np.array([[1.0, 1.0, 3.0, 5.0]]),
        ),
    ),
    misconceptions=(
        DECODE_NO_EXP,
        DECODE_CENTRE_FORMAT,
        DECODE_NOT_SCALED,
        DECODE_HALF_MISSING,
        DECODE_ARGUMENTS_SWAPPED,
        WIDTH_HEIGHT_SWAPPED,
        TRANSPOSED_OUTPUT,
        dg.IOU_PLUS_ONE,
    ),
    new_arrays=True,
    **POLICY,
)

ASSIGNMENT = Assignment(
    name="detection",
    title="Boxes, suppression and evaluation",
    chapters=(Chapter(15, "Object detection", "book/part3/detection.md"),),
    functions=(BOX_IOU, NMS, BATCHED_NMS, MATCH_DETECTIONS, AVERAGE_PRECISION, ENCODE_BOXES, DECODE_BOXES),
    graded_on="random boxes in random order, boxes that touch, coincide, nest or lie apart, IoUs "
    "exactly at the threshold, tied scores, chains of overlaps, objects claimed twice, and no "
    "boxes at all",
)
