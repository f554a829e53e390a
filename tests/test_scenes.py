"""The synthetic detection scenes: deterministic for a seed, and boxes and classes are exactly
what was pasted."""

from __future__ import annotations

import pytest
import torch

from course_lib.detection import box_iou
from course_lib.scenes import collate_scenes, make_scenes, resize_object, scene_loader


@pytest.fixture(scope="module")
def source() -> tuple[torch.Tensor, torch.Tensor]:
    """Forty random 'items': a bright rectangle of random size and place in a 28×28 frame,
    on a dim noisy background below the visibility threshold, with a class each."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=gen) * 0.05
    for k in range(40):
        h, w = (int(v) for v in torch.randint(6, 21, (2,), generator=gen))
        y, x = (int(v) for v in torch.randint(0, 28 - 20 + 1, (2,), generator=gen))
        images[k, 0, y : y + h, x : x + w] = 0.5 + 0.5 * torch.rand(h, w, generator=gen)
    labels = torch.arange(40) % 7
    return images, labels


def test_same_seed_same_scenes_other_seed_other_scenes(source) -> None:
    images, labels = source
    a = make_scenes(images, labels, 30, seed=5)
    b = make_scenes(images, labels, 30, seed=5)
    c = make_scenes(images, labels, 30, seed=6)
    assert torch.equal(a.images, b.images)
    for field in ("boxes", "labels", "sources", "frames"):
        assert all(
            torch.equal(x, y) for x, y in zip(getattr(a, field), getattr(b, field), strict=True)
        )
    assert not torch.equal(a.images, c.images)


def test_boxes_and_classes_are_what_was_pasted(source) -> None:
    images, labels = source
    visible = 0.1
    scenes = make_scenes(
        images, labels, 40, canvas_size=48, objects_per_scene=(1, 5), object_size=(12, 30),
        max_overlap=0.3, visible=visible, seed=1,
    )  # fmt: skip
    assert scenes.num_objects > 60
    overlapping_pairs = 0
    for k in range(len(scenes)):
        canvas = scenes.images[k, 0]
        boxes, classes, sources, frames = (
            scenes.boxes[k], scenes.labels[k], scenes.sources[k], scenes.frames[k]
        )  # fmt: skip
        assert boxes.shape == (len(classes), 4) == frames.shape
        assert torch.equal(classes, labels[sources])  # the class of the image pasted
        covered = torch.zeros_like(canvas, dtype=torch.bool)
        for box, src, frame in zip(boxes.tolist(), sources.tolist(), frames.tolist(), strict=True):
            x, y, x_end, y_end = (int(v) for v in frame)
            side = x_end - x
            assert side == y_end - y and 12 <= side <= 30
            assert 0 <= x and x_end <= 48 and 0 <= y and y_end <= 48
            # the resized image is on the canvas (the canvas keeps the brighter pixel) ...
            item = resize_object(images[src], side)[0]
            assert (canvas[y:y_end, x:x_end] >= item).all()
            # ... and the box is the tight box of its visible pixels, in canvas pixels
            rows = (item > visible).any(dim=1).nonzero().flatten()
            cols = (item > visible).any(dim=0).nonzero().flatten()
            expected = [x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1]
            assert box == [float(v) for v in expected]
            x1, y1, x2, y2 = (int(v) for v in box)
            covered[y1:y2, x1:x2] = True
        # nothing visible lies outside every box
        assert not (canvas[~covered] > visible).any()
        if len(boxes) > 1:
            iou = box_iou(boxes, boxes)
            iou.fill_diagonal_(0)
            assert iou.max() <= 0.3 + 1e-6
            overlapping_pairs += int((iou > 0).sum()) // 2
    assert overlapping_pairs > 0  # "some overlapping": the rule allows it and it happens


def test_a_single_object_on_an_empty_canvas(source) -> None:
    images, labels = source
    scenes = make_scenes(images, labels, 5, canvas_size=40, objects_per_scene=1, seed=2)
    for k in range(5):
        x, y, x_end, y_end = (int(v) for v in scenes.frames[k][0])
        expected = torch.zeros(40, 40)
        expected[y:y_end, x:x_end] = resize_object(images[int(scenes.sources[k][0])], x_end - x)
        assert torch.equal(scenes.images[k, 0], expected)


def test_crowded_canvas_drops_objects_that_do_not_fit(source) -> None:
    images, labels = source
    scenes = make_scenes(
        images, labels, 10, canvas_size=32, objects_per_scene=8, object_size=30,
        max_overlap=0.0, seed=3,
    )  # fmt: skip
    counts = [len(c) for c in scenes.labels]
    assert max(counts) < 8 and min(counts) >= 1


def test_loader_batches_images_and_keeps_targets_per_image(source) -> None:
    images, labels = source
    scenes = make_scenes(images, labels, 10, seed=4)
    x, targets = next(iter(scene_loader(scenes, batch_size=4)))
    assert x.shape == (4, 1, 64, 64)
    assert [t["labels"].tolist() for t in targets] == [c.tolist() for c in scenes.labels[:4]]
    again = collate_scenes([scenes[0], scenes[1]])
    assert torch.equal(again[0], scenes.images[:2])
    order = [
        [t["boxes"].tolist() for t in batch]
        for _, batch in scene_loader(scenes, batch_size=5, shuffle=True, seed=9)
    ]
    assert order == [
        [t["boxes"].tolist() for t in batch]
        for _, batch in scene_loader(scenes, batch_size=5, shuffle=True, seed=9)
    ]


def test_bad_inputs_have_clear_messages(source) -> None:
    images, labels = source
    with pytest.raises(ValueError, match=r"\(M, 1, h, w\)"):
        make_scenes(images[:, 0], labels, 2)
    with pytest.raises(ValueError, match="one per image"):
        make_scenes(images, labels[:3], 2)
    with pytest.raises(ValueError, match="integer classes"):
        make_scenes(images, labels.float(), 2)
    with pytest.raises(ValueError, match="larger than the canvas"):
        make_scenes(images, labels, 2, canvas_size=20, object_size=(10, 30))
    with pytest.raises(ValueError, match="objects_per_scene"):
        make_scenes(images, labels, 2, objects_per_scene=(3, 1))
    with pytest.raises(ValueError, match="max_overlap"):
        make_scenes(images, labels, 2, max_overlap=1.5)
