"""course_lib's COCO mAP@[.5:.95], AP50 and AP75 against COCO's own evaluator (pycocotools).

With ``matching="coco"``, ``interpolation="101-point"`` and ``COCO_IOU_THRESHOLDS``,
``mean_average_precision`` must give the numbers of ``pycocotools.cocoeval.COCOeval``: on
detections simulated on the synthetic scenes the book's detector trains on (jittered boxes,
duplicates, wrong classes, misses, false alarms, overlapping objects) and on the decoded outputs
of an untrained one-stage head (a hundred boxes per image).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from course_lib.detection import (
    COCO_IOU_THRESHOLDS,
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    decode_detections,
    generate_anchors,
    mean_average_precision,
)
from course_lib.scenes import make_scenes

NUM_CLASSES = 5
CANVAS = 64


def coco_evaluate(predictions, targets) -> COCOeval:
    """Run COCOeval on course_lib-style records (boxes as x1, y1, x2, y2)."""
    images, annotations, detections = [], [], []
    for k, (p, t) in enumerate(zip(predictions, targets, strict=True)):
        images.append({"id": k, "width": CANVAS, "height": CANVAS})
        for (x1, y1, x2, y2), c in zip(t["boxes"].tolist(), t["labels"].tolist(), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k,
                    "category_id": c,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        for (x1, y1, x2, y2), s, c in zip(
            p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True
        ):
            detections.append(
                {"image_id": k, "category_id": c, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
            )
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c} for c in range(NUM_CLASSES)],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


@pytest.fixture(scope="module")
def scenes():
    """Scenes of random bright rectangles, as the book's generator pastes them."""
    gen = torch.Generator().manual_seed(0)
    items = torch.rand(60, 1, 28, 28, generator=gen) * 0.05
    for k in range(60):
        h, w = (int(v) for v in torch.randint(5, 22, (2,), generator=gen))
        items[k, 0, 2 : 2 + h, 3 : 3 + w] = 0.8
    return make_scenes(
        items, torch.arange(60) % NUM_CLASSES, 120, CANVAS, (1, 5), (12, 32), 0.4, seed=1
    )


def simulate_detector(targets, seed: int):
    """A detector that finds most objects with jittered boxes, sometimes twice or with the
    wrong class, and adds false alarms; its scores only loosely follow the box quality."""
    gen = torch.Generator().manual_seed(seed)
    predictions = []
    for t in targets:
        boxes, scores, labels = [], [], []
        for box, label in zip(t["boxes"], t["labels"].tolist(), strict=True):
            if torch.rand(1, generator=gen) < 0.15:
                continue  # missed
            copies = 1 + int(torch.rand(1, generator=gen) < 0.25)
            for _ in range(copies):
                cxcywh = box_xyxy_to_cxcywh(box[None])
                noise = torch.randn(1, 4, generator=gen) * 0.12
                cxcywh[:, :2] += noise[:, :2] * cxcywh[:, 2:]
                cxcywh[:, 2:] *= torch.exp(noise[:, 2:])
                boxes.append(box_cxcywh_to_xyxy(cxcywh).clamp(0, CANVAS))
                scores.append(torch.rand(1, generator=gen))
                wrong = torch.rand(1, generator=gen) < 0.2
                labels.append((label + 1) % NUM_CLASSES if wrong else label)
        for _ in range(int(torch.randint(0, 4, (1,), generator=gen))):
            corner = torch.rand(1, 2, generator=gen) * 40
            boxes.append(torch.cat([corner, corner + 5 + 20 * torch.rand(1, 2, generator=gen)], 1))
            scores.append(0.6 * torch.rand(1, generator=gen))
            labels.append(int(torch.randint(0, NUM_CLASSES, (1,), generator=gen)))
        predictions.append(
            {
                "boxes": torch.cat(boxes) if boxes else torch.zeros(0, 4),
                "scores": torch.cat(scores) if scores else torch.zeros(0),
                "labels": torch.tensor(labels, dtype=torch.int64),
            }
        )
    return predictions


def assert_same_as_pycocotools(predictions, targets) -> None:
    ours = mean_average_precision(
        predictions, targets, COCO_IOU_THRESHOLDS, "101-point", matching="coco"
    )
    theirs = coco_evaluate(predictions, targets)
    # stats: mAP@[.5:.95], AP50, AP75 over all areas with at most 100 detections per image
    assert ours.map == pytest.approx(theirs.stats[0], abs=1e-12)
    assert ours.per_threshold[0.5] == pytest.approx(theirs.stats[1], abs=1e-12)
    assert ours.per_threshold[0.75] == pytest.approx(theirs.stats[2], abs=1e-12)
    # and every AP of every class at every threshold (precision: T, R, K, areas, max dets)
    precision = theirs.eval["precision"][:, :, :, 0, -1]
    per_class = np.where(precision > -1, precision, np.nan).mean(axis=1)  # (T, K)
    present = [c for c in range(NUM_CLASSES) if c in ours.classes]
    np.testing.assert_allclose(ours.ap.numpy(), per_class[:, present], atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_coco_map_equals_pycocotools_on_simulated_detections(scenes, seed: int) -> None:
    targets = scenes.targets()
    predictions = simulate_detector(targets, seed)
    assert sum(len(p["scores"]) for p in predictions) > scenes.num_objects  # duplicates, alarms
    assert_same_as_pycocotools(predictions, targets)


def test_coco_map_equals_pycocotools_on_an_untrained_detector_head(scenes) -> None:
    gen = torch.Generator().manual_seed(7)
    anchors = generate_anchors((16, 16), 4, sizes=(8, 16, 24))
    n = 40
    logits = torch.randn(n, anchors.shape[0], NUM_CLASSES, generator=gen) - 1
    deltas = torch.randn(n, anchors.shape[0], 4, generator=gen) * 0.2
    predictions = decode_detections(logits, deltas, anchors, 0.2, 0.5, 100, 300, (64, 64))
    assert max(len(p["scores"]) for p in predictions) == 100
    assert_same_as_pycocotools(predictions, scenes.targets()[:n])
