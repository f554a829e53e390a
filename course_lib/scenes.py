"""Synthetic detection scenes: small images pasted on a larger canvas, with their boxes and classes.

A *scene* is a canvas ``(1, H, W)`` with a few objects on it. Each object is one of the given
images (Fashion-MNIST items in the book), resized to a random square frame and pasted at a random
place; where two objects overlap the canvas keeps the brighter pixel (``torch.maximum``), so both
stay visible. The ground-truth box of an object is the tight box around the pixels of its resized
image brighter than ``visible``, in canvas pixels as ``(x1, y1, x2, y2)`` (the convention of
:mod:`course_lib.detection`: the box covers pixel columns ``x1 .. x2 - 1``). Its class is the
label of the image it was cut from.

Everything is drawn from one ``torch.Generator`` seeded with ``seed``: the same call gives the same
scenes, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ._validate import check_positive_int, check_tensor
from .detection import box_iou

__all__ = ["Scenes", "make_scenes", "resize_object", "collate_scenes", "scene_loader"]


@dataclass
class Scenes(Dataset):
    """Canvases and what is on them; a PyTorch data set of ``(image, target)`` pairs.

    images: ``(N, 1, H, W)`` in ``[0, 1]``; boxes: one ``(G_k, 4)`` float tensor per scene, the
    tight boxes ``(x1, y1, x2, y2)``; labels: one ``(G_k,)`` int64 tensor per scene, the classes;
    sources: one ``(G_k,)`` int64 tensor per scene, the index of each object's image in the
    images given to :func:`make_scenes`; frames: one ``(G_k, 4)`` float tensor per scene, the
    square each resized image was pasted into (the box lies inside it).

    ``scenes[k]`` is ``(images[k], {"boxes": boxes[k], "labels": labels[k]})``, the target format
    of :func:`course_lib.detection.mean_average_precision`.
    """

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    sources: list[torch.Tensor]
    frames: list[torch.Tensor]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[k], {"boxes": self.boxes[k], "labels": self.labels[k]}

    def targets(self) -> list[dict[str, torch.Tensor]]:
        """One ``{"boxes": (G_k, 4), "labels": (G_k,)}`` dict per scene."""
        return [{"boxes": b, "labels": c} for b, c in zip(self.boxes, self.labels, strict=True)]

    @property
    def num_objects(self) -> int:
        return sum(int(c.numel()) for c in self.labels)


def resize_object(image: torch.Tensor, size: int) -> torch.Tensor:
    """The object as it is pasted: ``image`` ``(1, h, w)`` resized to ``(1, size, size)``.

    Bilinear interpolation with antialiasing (so that shrinking does not alias), clamped to
    ``[0, 1]``.
    """
    resized = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True)
    return resized[0].clamp(0, 1)


def _tight_box(item: torch.Tensor, visible: float) -> tuple[int, int, int, int] | None:
    """Tight box (x1, y1, x2, y2) of the pixels of ``item`` (1, s, s) brighter than ``visible``."""
    bright = item[0] > visible
    rows = bright.any(dim=1).nonzero().flatten()
    cols = bright.any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def _int_range(value: object, name: str, low: int = 1) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not low <= value[0] <= value[1]
    ):
        raise ValueError(
            f"{name} must be an int >= {low} or a pair (min, max) with {low} <= min <= max, "
            f"got {value!r}"
        )
    return int(value[0]), int(value[1])


def make_scenes(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_scenes: int,
    canvas_size: int = 64,
    objects_per_scene: int | tuple[int, int] = (1, 4),
    object_size: int | tuple[int, int] = (16, 32),
    max_overlap: float = 0.3,
    visible: float = 0.1,
    attempts: int = 20,
    seed: int = 0,
) -> Scenes:
    """Paste randomly chosen ``images`` on ``num_scenes`` empty canvases.

    images: ``(M, 1, h, w)`` in ``[0, 1]``; labels: ``(M,)`` their classes. Each scene gets a
    number of objects drawn uniformly from ``objects_per_scene = (min, max)``; each object a
    random image (with replacement), a side drawn uniformly from ``object_size = (min, max)``
    pixels and a random position on the ``canvas_size × canvas_size`` canvas. A position is
    accepted when the object's box has IoU at most ``max_overlap`` with every box already on the
    canvas (so objects may overlap, but not hide each other); after ``attempts`` rejected
    positions the object is left out, so a crowded scene can have fewer objects than drawn.

    Returns :class:`Scenes`. Deterministic for a given ``seed``.
    """
    check_tensor(images, "images", ndim=4, layout="(M, 1, h, w)")
    if images.shape[1] != 1:
        raise ValueError(f"expected images (M, 1, h, w) with 1 channel, got {tuple(images.shape)}")
    if (
        not isinstance(labels, torch.Tensor)
        or labels.shape != (images.shape[0],)
        or labels.dtype.is_floating_point
        or labels.dtype == torch.bool
    ):
        raise ValueError(
            f"expected labels (M,) = ({images.shape[0]},) of integer classes, one per image, "
            f"got {_describe(labels)}"
        )
    if images.shape[0] == 0:
        raise ValueError("images is empty: expected at least one image to paste")
    check_positive_int(num_scenes, "num_scenes")
    check_positive_int(canvas_size, "canvas_size")
    check_positive_int(attempts, "attempts")
    min_objects, max_objects = _int_range(objects_per_scene, "objects_per_scene", low=0)
    min_side, max_side = _int_range(object_size, "object_size")
    if max_side > canvas_size:
        raise ValueError(f"object_size {max_side} is larger than the canvas ({canvas_size} pixels)")
    for value, name in ((max_overlap, "max_overlap"), (visible, "visible")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")

    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(min_objects, max_objects + 1, (num_scenes,), generator=gen)
    total = int(counts.sum())
    sources = torch.randint(0, images.shape[0], (total,), generator=gen)
    sides = torch.randint(min_side, max_side + 1, (total,), generator=gen)

    # resize all objects of one side together (one interpolate call per side)
    items: list[torch.Tensor] = [torch.empty(0)] * total
    for side in sides.unique().tolist():
        index = (sides == side).nonzero().flatten()
        resized = F.interpolate(
            images[sources[index]].float(), size=(side, side), mode="bilinear", antialias=True
        ).clamp(0, 1)
        for k, i in enumerate(index.tolist()):
            items[i] = resized[k]

    canvases = torch.zeros(num_scenes, 1, canvas_size, canvas_size)
    all_boxes, all_labels, all_sources, all_frames = [], [], [], []
    first = 0
    for scene, count in enumerate(counts.tolist()):
        boxes: list[list[float]] = []
        kept: list[int] = []
        frames: list[list[float]] = []
        for i in range(first, first + count):
            item, side = items[i], int(sides[i])
            tight = _tight_box(item, visible)
            positions = torch.randint(0, canvas_size - side + 1, (attempts, 2), generator=gen)
            if tight is None:
                continue  # nothing visible to detect
            for x, y in positions.tolist():
                box = [x + tight[0], y + tight[1], x + tight[2], y + tight[3]]
                if boxes:
                    iou = box_iou(torch.tensor([box], dtype=torch.float32), torch.tensor(boxes))
                    if float(iou.max()) > max_overlap:
                        continue
                region = canvases[scene, :, y : y + side, x : x + side]
                torch.maximum(region, item, out=region)
                boxes.append([float(v) for v in box])
                frames.append([float(x), float(y), float(x + side), float(y + side)])
                kept.append(i)
                break
        first += count
        all_boxes.append(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        index = torch.tensor(kept, dtype=torch.int64)
        all_sources.append(sources[index])
        all_labels.append(labels[sources[index]].to(torch.int64))
        all_frames.append(torch.tensor(frames, dtype=torch.float32).reshape(-1, 4))
    return Scenes(canvases, all_boxes, all_labels, all_sources, all_frames)


def collate_scenes(
    batch: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Stack the images of a batch ``(B, 1, H, W)`` and keep the targets as a list of B dicts
    (the scenes hold different numbers of objects, so their boxes cannot be stacked)."""
    images = torch.stack([image for image, _ in batch])
    return images, [target for _, target in batch]


def scene_loader(
    scenes: Scenes, batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """A DataLoader over ``scenes`` giving ``(images (B, 1, H, W), [target dict] * B)``;
    with ``shuffle`` the order is drawn from a generator seeded with ``seed``."""
    check_positive_int(batch_size, "batch_size")
    return DataLoader(
        scenes,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_scenes,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )
