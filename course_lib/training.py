"""One training loop for the whole book, with the pieces of a modern recipe.

The loop is the one Chapter 8 writes out by hand; :func:`train` adds, each optional and each
off unless asked for:

- a learning-rate schedule stepped after every batch (:func:`one_cycle`,
  :func:`warmup_cosine`, or any PyTorch scheduler);
- optimiser parameter groups without weight decay on biases and normalisation layers
  (:func:`parameter_groups`);
- label smoothing;
- a batch-transform hook for augmentation on whole batches of tensors
  (:class:`BatchAugmentation`: random crop with padding, horizontal flip, random erasing);
- early stopping on a validation measure, with the best weights restored;
- checkpoints that resume a run exactly (:func:`save_checkpoint`, :func:`load_checkpoint`);
- a wall-clock budget, an exponential moving average of the weights
  (:class:`ExponentialMovingAverage`), mixed precision on CUDA, ``channels_last``;
- seeds that make a run repeat bit for bit.

:func:`train_sgd_recipe` is Chapter 8's recipe in one call (SGD with Nesterov momentum, the
one-cycle schedule, weight decay on weights only, flips), as the later chapters use it.

Batches may be anything :func:`to_device` can move: tensors, or lists, tuples and dicts of
them, so a detector whose targets are per-image boxes trains through the same loop with its own
``loss_fn(outputs, targets)``. Data sets that fit in memory are fastest as one tensor
(:class:`TensorBatches`): slicing a tensor costs far less per batch than a ``DataLoader``
indexing and stacking images one at a time.

Progress is a tqdm bar in a terminal or notebook and one line per epoch in a log; the numbers
themselves are kept in a :class:`History`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._validate import check_positive_int
from .device import pick_device

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "History",
    "TensorBatches",
    "BatchAugmentation",
    "ExponentialMovingAverage",
    "random_crop",
    "random_horizontal_flip",
    "random_erasing",
    "to_device",
    "seed_everything",
    "fast_bfloat16",
    "parameter_groups",
    "one_cycle",
    "warmup_cosine",
    "train",
    "train_sgd_recipe",
    "evaluate",
    "predict",
    "save_checkpoint",
    "load_checkpoint",
    "plot_history",
]

Batches = Iterable[tuple[Any, Any]]
LossFn = Callable[[Any, Any], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------


@dataclass
class History:
    """What happened in each epoch of :func:`train`.

    Lists indexed by epoch: mean training loss and accuracy (over the epoch's batches, weighted
    by batch size, measured while the weights change), validation loss and accuracy (after the
    epoch; empty without validation data, and the accuracies empty when accuracy is not
    tracked), and wall-clock seconds. ``metrics`` holds the measures returned by an
    ``evaluate_fn``, one list per name. ``lr`` and ``batch_loss`` are the learning rate of the
    first parameter group and the training loss at every optimiser step. ``best_epoch``
    (0-based) is the epoch whose weights were kept when early stopping or ``restore_best``
    chose them, and ``stopped`` says why training ended before its last epoch (``""`` when it
    did not).
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    lr: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped: str = ""

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        """The history as plain Python data (lists of floats), e.g. for a JSON file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        return cls(**{k: copy.deepcopy(v) for k, v in data.items()})

    def as_table(self) -> str:
        """A plain-text table, one line per epoch."""
        lines = [self._header()]
        lines += [self._row(i) for i in range(self.epochs)]
        return "\n".join(lines)

    def _columns(self) -> list[tuple[str, list[float], str]]:
        columns = [("train loss", self.train_loss, ".4f")]
        if self.train_accuracy:
            columns.append(("train acc", self.train_accuracy, ".4f"))
        if self.val_loss:
            columns.append(("val loss", self.val_loss, ".4f"))
        if self.val_accuracy:
            columns.append(("val acc", self.val_accuracy, ".4f"))
        columns += [(name, values, ".4f") for name, values in self.metrics.items()]
        columns.append(("seconds", self.seconds, ".1f"))
        return columns

    def _header(self) -> str:
        return f"{'epoch':>5}" + "".join(
            f"  {name:>{max(9, len(name))}}" for name, _, _ in self._columns()
        )

    def _row(self, i: int) -> str:
        cells = []
        for name, values, fmt in self._columns():
            width = max(9, len(name))
            cells.append(f"  {values[i]:>{width}{fmt}}" if i < len(values) else " " * (width + 2))
        return f"{i + 1:>5}" + "".join(cells)


# ---------------------------------------------------------------------------------------------
# Data in memory, moved to a device
# ---------------------------------------------------------------------------------------------


def _take(items: Any, index: torch.Tensor) -> Any:
    """``items`` restricted to the examples in ``index``, for a tensor, sequence or dict."""
    if isinstance(items, torch.Tensor):
        return items[index]
    if isinstance(items, Mapping):
        return {key: _take(value, index) for key, value in items.items()}
    if isinstance(items, Sequence) and not isinstance(items, str):
        return [items[i] for i in index.tolist()]
    raise TypeError(f"cannot take examples from a {type(items).__name__}")


def _length(items: Any) -> int:
    if isinstance(items, Mapping):
        lengths = {_length(v) for v in items.values()}
        if len(lengths) != 1:
            raise ValueError(f"the entries of a dict of targets differ in length: {lengths}")
        return lengths.pop()
    return len(items)


class TensorBatches:
    """Batches ``(x, y)`` sliced from tensors held in memory, reshuffled every epoch.

    x: (N, ...) tensor; y: (N, ...) tensor, or a sequence of N per-example targets (for
    instance a list of box tensors), or a dict of those. Iterating gives
    ``(x[idx], y[idx])`` for consecutive blocks ``idx`` of ``batch_size`` indices, in a new
    random order each epoch when ``shuffle=True`` (drawn from ``generator``, seeded with
    ``seed``). ``drop_last=True`` leaves out a last, smaller batch.

    It does what a ``DataLoader`` over a ``TensorDataset`` does, without indexing and stacking
    the examples one at a time (several times faster for small images). ``dataset`` gives the
    ``TensorDataset`` view, so ``len(batches.dataset)`` is the number of examples.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: Any,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        check_positive_int(batch_size, "batch_size")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected x to be a tensor (N, ...), got {type(x).__name__}")
        if _length(y) != x.shape[0]:
            raise ValueError(f"x has {x.shape[0]} examples but y has {_length(y)}")
        if x.shape[0] == 0:
            raise ValueError("expected at least one example, got an empty x")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def dataset(self) -> torch.utils.data.Dataset:
        if isinstance(self.y, torch.Tensor):
            return torch.utils.data.TensorDataset(self.x, self.y)
        return _PairDataset(self.x, self.y)

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Any]]:
        n = self.x.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, len(self) * self.batch_size, self.batch_size):
                index = order[start : start + self.batch_size]
                yield self.x[index], _take(self.y, index)
        else:
            for start in range(0, len(self) * self.batch_size, self.batch_size):
                stop = min(start + self.batch_size, n)
                index = torch.arange(start, stop)
                y = self.y[start:stop] if isinstance(self.y, torch.Tensor) else _take(self.y, index)
                yield self.x[start:stop], y

    @classmethod
    def from_loader(
        cls, loader: torch.utils.data.DataLoader, shuffle: bool | None = None, seed: int = 0
    ) -> TensorBatches:
        """The same batches as ``loader`` (a ``DataLoader`` over a ``TensorDataset``) gives.

        The batch size and ``drop_last`` are the loader's; ``shuffle`` defaults to whether the
        loader shuffles.
        """
        dataset = loader.dataset
        if not isinstance(dataset, torch.utils.data.TensorDataset) or len(dataset.tensors) != 2:
            raise TypeError(
                "expected a DataLoader over a TensorDataset of (x, y), "
                f"got one over a {type(dataset).__name__}"
            )
        if shuffle is None:
            shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
        x, y = dataset.tensors
        return cls(x, y, loader.batch_size or 1, shuffle, seed, loader.drop_last)


class _PairDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: Any) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        return self.x[i], _take(self.y, torch.tensor([i]))


def to_device(items: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """``items`` with every tensor in it moved to ``device``.

    Walks lists, tuples and dicts (and leaves other values, such as strings, as they are), so
    targets like ``[{"boxes": (K, 4), "labels": (K,)}, ...]`` move as a whole.
    """
    if isinstance(items, torch.Tensor):
        return items.to(device, non_blocking=non_blocking)
    if isinstance(items, Mapping):
        return type(items)((k, to_device(v, device, non_blocking)) for k, v in items.items())
    if isinstance(items, tuple) and hasattr(items, "_fields"):  # a NamedTuple
        return type(items)(*(to_device(v, device, non_blocking) for v in items))
    if isinstance(items, list | tuple):
        return type(items)(to_device(v, device, non_blocking) for v in items)
    return items


def _batch_size(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.shape[0]
    if isinstance(x, Mapping):
        return _batch_size(next(iter(x.values())))
    return len(x)


# ---------------------------------------------------------------------------------------------
# Augmentation on whole batches of tensors
# ---------------------------------------------------------------------------------------------


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected images x with 4 dims (N, C, H, W), got {shape}")


def random_crop(
    x: torch.Tensor,
    padding: int,
    generator: torch.Generator | None = None,
    padding_mode: str = "replicate",
) -> torch.Tensor:
    """Pad every image by ``padding`` pixels and cut out an ``H × W`` window at a random place.

    x: (N, C, H, W) -> (N, C, H, W). Each image gets its own offsets, uniform in
    ``0..2·padding`` along each axis, so it moves by up to ``padding`` pixels.
    ``padding_mode`` is that of ``torch.nn.functional.pad``: ``"replicate"`` (the default)
    repeats the border, which for pictures on a plain background is the background;
    ``"constant"`` pads with zeros, ``"reflect"`` mirrors.
    """
    _check_images(x)
    if padding == 0:
        return x
    check_positive_int(padding, "padding")
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (padding, padding, padding, padding), mode=padding_mode)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_horizontal_flip(
    x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``. x: (N, C, H, W) -> (N, C, H, W)."""
    _check_images(x)
    flip = torch.rand(x.shape[0], generator=generator).to(x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_erasing(
    x: torch.Tensor,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.25),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random erasing (Zhong et al., 2020): blank out one random rectangle in some images.

    x: (N, C, H, W) -> (N, C, H, W). With probability ``p`` an image gets a rectangle of area
    ``s·H·W`` (``s`` uniform in ``scale``) and aspect ratio ``r`` (log-uniform in ``ratio``),
    clipped to the image, set to ``value`` in every channel (0 is the mean pixel of
    standardised data).
    """
    _check_images(x)
    n, _, h, w = x.shape
    rand = torch.rand(n, 5, generator=generator)
    area = (scale[0] + (scale[1] - scale[0]) * rand[:, 0]) * h * w
    log_ratio = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * rand[:, 1]
    aspect = torch.exp(log_ratio)
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    top = (rand[:, 2] * (h - eh + 1)).floor()
    left = (rand[:, 3] * (w - ew + 1)).floor()
    erase = rand[:, 4] < p
    rows = torch.arange(h)[None, :]
    cols = torch.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])  # (N, W)
    mask = (in_rows[:, :, None] & in_cols[:, None, :]) & erase[:, None, None]  # (N, H, W)
    return x.masked_fill(mask[:, None].to(x.device), value)


class BatchAugmentation:
    """Augmentation of a whole batch on its device: crop, flip, erase, in that order.

    ``crop_padding`` > 0 turns on :func:`random_crop`, ``flip=True``
    :func:`random_horizontal_flip` (for pictures that mean the same mirrored, such as clothes;
    not for digits or text), ``erase_p`` > 0 :func:`random_erasing`. ``flip_classes`` limits
    the flips to the images whose class label ``y`` is in it (for a data set where some
    classes always face one way). The random numbers come
    from ``generator`` (seeded with ``seed``), so the same seed gives the same augmented
    batches. Called as ``batch_transform(x, y) -> (x, y)`` by :func:`train`; only ``x``
    changes.
    """

    def __init__(
        self,
        crop_padding: int = 0,
        flip: bool = False,
        erase_p: float = 0.0,
        erase_scale: tuple[float, float] = (0.02, 0.25),
        seed: int = 0,
        padding_mode: str = "replicate",
        flip_classes: Sequence[int] | None = None,
    ) -> None:
        if crop_padding != 0:
            check_positive_int(crop_padding, "crop_padding")
        if not 0.0 <= erase_p <= 1.0:
            raise ValueError(f"erase_p must be a probability in [0, 1], got {erase_p}")
        self.crop_padding = crop_padding
        self.flip = flip
        self.flip_classes = None if flip_classes is None else torch.tensor(list(flip_classes))
        if self.flip_classes is not None and not flip:
            raise ValueError("flip_classes given but flip=False")
        self.erase_p = erase_p
        self.erase_scale = erase_scale
        self.padding_mode = padding_mode
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor, y: Any) -> tuple[torch.Tensor, Any]:
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, self.generator, self.padding_mode)
        if self.flip and self.flip_classes is None:
            x = random_horizontal_flip(x, 0.5, self.generator)
        elif self.flip:
            allowed = torch.isin(y, self.flip_classes.to(y.device))
            flip = (torch.rand(x.shape[0], generator=self.generator).to(x.device) < 0.5) & allowed
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.erase_p:
            x = random_erasing(x, self.erase_p, self.erase_scale, generator=self.generator)
        return x, y

    def __repr__(self) -> str:
        return (
            f"BatchAugmentation(crop_padding={self.crop_padding}, flip={self.flip}, "
            f"erase_p={self.erase_p})"
        )


# ---------------------------------------------------------------------------------------------
# Seeds, optimiser groups, schedules, the moving average of the weights
# ---------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator that np.random.* uses)
    torch.manual_seed(seed)


_NORM_LAYERS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORM_LAYERS) or "Norm" in type(module).__name__


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    lr: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Optimiser parameter groups with weight decay only where it belongs.

    Weight decay pulls weights towards zero; on a bias or on the scale and shift of a
    normalisation layer that does not regularise anything useful (a batch-norm scale shrunk
    towards zero just switches its channel off), so they get ``weight_decay=0``: every
    parameter of a normalisation layer and every parameter with fewer than two dimensions
    (biases, ConvNeXt's layer scales). Frozen parameters (``requires_grad=False``) are left
    out.

    ``lr`` maps name prefixes to learning rates, e.g. ``{"features": 1e-4, "classifier": 1e-3}``
    for a pretrained network whose body should move less than its new head; a parameter takes
    the longest prefix of its name that matches, and parameters that match none use the
    optimiser's own ``lr``. Returns a list of dicts for ``torch.optim.AdamW(groups, ...)``;
    empty groups are dropped.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    lr = dict(lr or {})
    no_decay: set[int] = set()
    layer_weights: set[int] = set()  # the kernels and matrices of convolutions and linear layers
    for module in model.modules():
        if _is_norm(module):
            no_decay.update(id(p) for p in module.parameters(recurse=False))
        elif isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
            layer_weights.add(id(module.weight))
    groups: dict[tuple[str | None, bool], dict[str, Any]] = {}
    matched: set[str] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        prefixes = [p for p in lr if name == p or name.startswith(p.rstrip(".") + ".")]
        prefix = max(prefixes, key=len) if prefixes else None
        if prefix is not None:
            matched.add(prefix)
        # A scale stored as (C, 1, 1) to broadcast over an image (ConvNeXt's layer scale) is a
        # vector however many dimensions it has: only one of them is longer than 1.
        vector = sum(size > 1 for size in param.shape) <= 1 and id(param) not in layer_weights
        decay = param.ndim >= 2 and not vector and id(param) not in no_decay
        key = (prefix, decay)
        if key not in groups:
            group: dict[str, Any] = {"params": [], "weight_decay": weight_decay if decay else 0.0}
            if prefix is not None:
                group["lr"] = lr[prefix]
            groups[key] = group
        groups[key]["params"].append(param)
    unmatched = set(lr) - matched
    if unmatched:
        names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise ValueError(
            f"no trainable parameter is named after {sorted(unmatched)}; "
            f"the model's top-level names are {names}"
        )
    return list(groups.values())


def one_cycle(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.25,
    start_factor: float = 0.04,
    end_factor: float = 1e-3,
) -> torch.optim.lr_scheduler.LambdaLR:
    """The one-cycle schedule (Smith and Topin, 2019), to be stepped after every batch.

    Each group's learning rate ``lr`` rises linearly from ``start_factor·lr`` to ``lr`` over the
    first ``warmup_fraction`` of the ``total_steps`` steps, then falls along a half cosine to
    ``end_factor·lr`` at the last step. Groups with different learning rates keep their ratio.
    """
    check_positive_int(total_steps, "total_steps")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    warmup = round(warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return start_factor + (1.0 - start_factor) * step / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - 1 - warmup))
        return end_factor + (1.0 - end_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    end_factor: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 to ``lr`` in ``warmup_steps`` steps, then a cosine decay to
    ``end_factor·lr`` at step ``total_steps - 1``; stepped after every batch."""
    check_positive_int(total_steps, "total_steps")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"warmup_steps must be in [0, total_steps), got {warmup_steps} of {total_steps}"
        )

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps))
        return end_factor + (1.0 - end_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class ExponentialMovingAverage:
    """An exponential moving average of a model's weights, updated after every step.

    ``average ← d·average + (1 − d)·weights`` for every floating-point parameter and buffer
    (batch-norm statistics included), with ``d = min(decay, (1 + t)/(10 + t))`` at update
    ``t``, so that the first updates, when the average still holds the random start, count
    less. ``module`` is the averaged copy of the model, evaluated like any model;
    :meth:`copy_to` loads the average into a model.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        averaged = self.module.state_dict()
        for name, value in model.state_dict().items():
            target = averaged[name]
            if target.dtype.is_floating_point:
                target.lerp_(value.detach().to(target.device), 1.0 - d)
            else:
                target.copy_(value)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.decay = state["decay"]
        self.updates = state["updates"]
        self.module.load_state_dict(state["module"])


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def _generator_of(thing: object) -> torch.Generator | None:
    generator = getattr(thing, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    ema: ExponentialMovingAverage | None = None,
    history: History | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save what is needed to reload a model exactly, or to resume its training.

    The file (written with ``torch.save`` to a temporary name, then renamed, so an interrupted
    save never leaves a broken file) holds the model's ``state_dict`` and, when given, the
    optimiser's, the scheduler's, the moving average's, the history and ``extra`` (any other
    picklable data, e.g. the epoch and random-generator states). Returns the path.
    """
    path = Path(path)
    state: dict[str, Any] = {"model": model.state_dict()}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if ema is not None:
        state["ema"] = ema.state_dict()
    if history is not None:
        state["history"] = history.to_dict()
    if extra is not None:
        state["extra"] = dict(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    ema: ExponentialMovingAverage | None = None,
    map_location: torch.device | str | None = "cpu",
) -> dict[str, Any]:
    """Load a file written by :func:`save_checkpoint` into ``model`` (and the others given).

    The weights come back bit for bit. Returns the whole saved dict (with ``history`` as a
    :class:`History` when there is one), for its ``extra`` entries.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint (no 'model')")
    model.load_state_dict(state["model"])
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("ema", ema)):
        if target is not None:
            if name not in state:
                raise ValueError(f"{path} holds no {name} state to load")
            target.load_state_dict(state[name])
    if "history" in state:
        state["history"] = History.from_dict(state["history"])
    return state


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return pick_device()


def _interactive() -> bool:
    """A terminal or a notebook front end, where a redrawn progress bar reads well."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        return True  # a notebook kernel (merely importing ipykernel does not make one)
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def fast_bfloat16(device: torch.device | str) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU, or a CPU with
    AVX-512 BF16 or AMX instructions (there convolutions run about 1.5-2 times faster in
    bfloat16; elsewhere they would be emulated, and slower than in float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _is_classification(outputs: Any, targets: Any) -> bool:
    return (
        isinstance(outputs, torch.Tensor)
        and isinstance(targets, torch.Tensor)
        and outputs.dim() == 2
        and targets.dim() == 1
        and outputs.shape[0] == targets.shape[0]
        and not targets.dtype.is_floating_point
    )


class _Monitor:
    """Which epoch was best so far for the measure early stopping watches."""

    def __init__(self, name: str, mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"monitor_mode must be 'min' or 'max', got {mode!r}")
        self.name, self.mode = name, mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best


def _value_of(history: History, name: str) -> float:
    lists = {
        "val_loss": history.val_loss,
        "val_accuracy": history.val_accuracy,
        "train_loss": history.train_loss,
        **history.metrics,
    }
    if name not in lists or not lists[name]:
        raise ValueError(
            f"cannot monitor {name!r}: available are "
            f"{[k for k, v in lists.items() if v] or 'none (give val_loader or evaluate_fn)'}"
        )
    return lists[name][-1]


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def train(
    model: nn.Module,
    train_loader: Batches,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn | None = None,
    val_loader: Batches | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    scheduler: Any = None,
    *,
    scheduler_step: str = "batch",
    label_smoothing: float = 0.0,
    batch_transform: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    track_accuracy: bool | None = None,
    evaluate_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    monitor: str | None = None,
    monitor_mode: str | None = None,
    early_stopping: int | None = None,
    restore_best: bool | None = None,
    ema: ExponentialMovingAverage | float | None = None,
    max_seconds: float | None = None,
    max_grad_norm: float | None = None,
    mixed_precision: bool | None = None,
    channels_last: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History`.

    Every batch: ``x, y = batch_transform(x, y)`` (when given), ``optimizer.zero_grad()``,
    ``loss = loss_fn(model(x), y)``, ``loss.backward()``, gradient clipping to
    ``max_grad_norm`` (when given), ``optimizer.step()``, ``scheduler.step()``, update of the
    moving average. After every epoch the model is evaluated on ``val_loader`` and by
    ``evaluate_fn``.

    Data. ``train_loader`` and ``val_loader`` give batches ``(x, y)``: a ``DataLoader``, a
    :class:`TensorBatches`, a list. Both are moved to ``device`` (default:
    :func:`course_lib.pick_device`) with :func:`to_device`, so they may be tensors or lists
    and dicts of tensors. For classification x is ``(B, C, H, W)``, y ``(B,)`` class indices,
    the model gives logits ``(B, num_classes)``, and ``loss_fn`` defaults to cross-entropy
    with ``label_smoothing``. Any other task passes its own ``loss_fn(outputs, targets)``.
    ``track_accuracy`` (default: when outputs and targets look like logits and labels)
    records training and validation accuracy.

    Schedule. ``scheduler`` is stepped after every batch (``scheduler_step="batch"``, what
    :func:`one_cycle` and :func:`warmup_cosine` expect) or after every epoch (``"epoch"``, for
    a ``StepLR`` counted in epochs).

    Validation. ``evaluate_fn(model) -> {name: value}`` runs after each epoch in
    ``model.eval()`` under ``torch.no_grad()`` (for measures such as a detector's mAP); its
    values go to ``history.metrics``. ``monitor`` names the measure that early stopping and
    ``restore_best`` watch: ``"val_loss"`` (the default with a ``val_loader``),
    ``"val_accuracy"`` or a name from ``evaluate_fn`` (the default without ``val_loader``:
    its first one); ``monitor_mode`` is ``"min"`` for names containing "loss", else
    ``"max"``. ``early_stopping=k`` stops after ``k`` epochs without improvement;
    ``restore_best`` (default: on with early stopping) loads the best epoch's weights at the
    end.

    Extras. ``ema``: an :class:`ExponentialMovingAverage` or its decay; validation then
    measures the averaged weights, which are loaded into ``model`` at the end.
    ``max_seconds``: stop (after the current batch) once training has run that long; the
    result then depends on the machine's speed. ``mixed_precision``: forward pass and loss
    under ``torch.autocast`` in bfloat16 (float16 with gradient scaling on a GPU without
    bfloat16), the weights and their updates staying in float32; the default is on where
    :func:`fast_bfloat16` says the device computes bfloat16 natively, and ``False`` gives
    float32 throughout. ``channels_last``: model and images in the ``channels_last`` memory
    layout, which speeds up many convolutions on CPUs and on GPUs with mixed precision
    (measure: not all).
    ``checkpoint``: a file saved after every epoch; with ``resume=True`` a run restarts from
    it and, with the same arguments, ends with the very weights an uninterrupted run gets.
    ``seed``: seeds PyTorch's generator (dropout, ...) and the generators of
    ``train_loader`` and ``batch_transform`` (data order, augmentation), so that a run
    repeats bit for bit. ``progress=False`` prints nothing; otherwise a tqdm bar (in a
    terminal or notebook) and one line per epoch.
    """
    check_positive_int(epochs, "epochs")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
    if early_stopping is not None:
        check_positive_int(early_stopping, "early_stopping")
    if max_seconds is not None and max_seconds < 0:
        raise ValueError(f"max_seconds must be >= 0, got {max_seconds}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    device = _resolve_device(device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing) if loss_fn is None else loss_fn
    if mixed_precision is None:
        mixed_precision = fast_bfloat16(device)
    scaler = torch.amp.GradScaler(
        "cuda",
        enabled=mixed_precision and device.type == "cuda" and not torch.cuda.is_bf16_supported(),
    )
    if channels_last:
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    if isinstance(ema, float):
        ema = ExponentialMovingAverage(model, ema)
    if ema is not None:
        ema.module.to(device)
    final = ema.module if ema is not None else model  # the weights validation measures

    if monitor is None:
        if val_loader is not None:
            monitor = "val_loss"
        elif evaluate_fn is not None:
            monitor = ""  # the first name evaluate_fn returns
    if restore_best is None:
        restore_best = early_stopping is not None
    if (early_stopping is not None or restore_best) and monitor is None:
        raise ValueError("early stopping and restore_best need val_loader or evaluate_fn")
    watcher: _Monitor | None = None

    if seed is not None:
        torch.manual_seed(seed)
        for offset, thing in enumerate((train_loader, batch_transform), start=1):
            generator = _generator_of(thing)
            if generator is not None:
                generator.manual_seed(seed + offset)

    history = History()
    first_epoch = 0
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, ema, map_location=device)
        history = state["history"]
        extra = state["extra"]
        first_epoch = extra["epoch"] + 1
        torch.set_rng_state(extra["rng_cpu"])
        if device.type == "cuda" and extra.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(extra["rng_cuda"], device)
        for key, thing in (("rng_loader", train_loader), ("rng_transform", batch_transform)):
            generator = _generator_of(thing)
            if generator is not None and extra.get(key) is not None:
                generator.set_state(extra[key])
        if extra.get("monitor") is not None:
            watcher = _Monitor(extra["monitor"], extra["monitor_mode"])
            watcher.best, watcher.best_epoch = extra["best"], extra["best_epoch"]
            watcher.best_state = extra["best_state"]
        if history.stopped:
            first_epoch = epochs  # that run had already finished

    show_bar = progress and _interactive()
    started = time.perf_counter()
    for epoch in range(first_epoch, epochs):
        epoch_start = time.perf_counter()
        model.train()
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        batch_losses = []
        tracking = track_accuracy
        out_of_time = False
        batches = tqdm(
            train_loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not show_bar, leave=False
        )
        for step, (x, y) in enumerate(batches):
            x, y = to_device(x, device), to_device(y, device)
            if batch_transform is not None:
                x, y = batch_transform(x, y)
            if channels_last and isinstance(x, torch.Tensor) and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, mixed_precision):
                outputs = model(x)
                loss = loss_fn(outputs, y)
            if not loss.requires_grad:
                raise ValueError("loss_fn returned a loss that does not depend on the weights")
            scaler.scale(loss).backward()
            if max_grad_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            history.lr.append(optimizer.param_groups[0]["lr"])
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            if ema is not None:
                ema.update(model)
            batch = _batch_size(x)
            batch_losses.append(loss.detach().float())
            total_loss += batch_losses[-1] * batch
            if tracking is None:
                tracking = _is_classification(outputs, y)
            if tracking:
                correct += (outputs.detach().argmax(dim=1) == y).sum()
            seen += batch
            if show_bar and step % 20 == 0:
                batches.set_postfix(loss=f"{float(total_loss) / seen:.4f}")
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                out_of_time = True
                break
        batches.close()
        if seen == 0:
            raise ValueError("train_loader gave no batches")
        history.train_loss.append(float(total_loss) / seen)
        history.batch_loss += torch.stack(batch_losses).tolist()
        if tracking:
            history.train_accuracy.append(int(correct) / seen)
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        if val_loader is not None:
            val_loss, val_accuracy = evaluate(
                final, val_loader, device, loss_fn, track_accuracy=tracking
            )
            history.val_loss.append(val_loss)
            if tracking:
                history.val_accuracy.append(val_accuracy)
        if evaluate_fn is not None:
            was_training = final.training
            final.eval()
            with torch.no_grad():
                measures = dict(evaluate_fn(final))
            final.train(was_training)
            for name, value in measures.items():
                history.metrics.setdefault(name, []).append(float(value))
        history.seconds.append(time.perf_counter() - epoch_start)

        stop = ""
        if monitor is not None:
            if watcher is None:
                name = monitor or next(iter(history.metrics), "")
                mode = monitor_mode or ("min" if "loss" in name else "max")
                watcher = _Monitor(name, mode)
            value = _value_of(history, watcher.name)
            if watcher.improved(value):
                watcher.best, watcher.best_epoch = value, epoch
                if restore_best:
                    watcher.best_state = _cpu_state(final)
            elif early_stopping is not None and epoch - watcher.best_epoch >= early_stopping:
                stop = f"early stopping: no better {watcher.name} for {early_stopping} epochs"
        if out_of_time:
            stop = f"time budget of {max_seconds:g} s reached"
        if stop:
            history.stopped = stop
        if progress:
            if epoch == first_epoch:
                print(history._header(), flush=True)
            print(history._row(epoch), flush=True)
            if stop:
                print(stop, flush=True)
        if checkpoint is not None:
            extra = {
                "epoch": epoch,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "rng_loader": _state_of(_generator_of(train_loader)),
                "rng_transform": _state_of(_generator_of(batch_transform)),
                "monitor": watcher.name if watcher else None,
                "monitor_mode": watcher.mode if watcher else None,
                "best": watcher.best if watcher else None,
                "best_epoch": watcher.best_epoch if watcher else None,
                "best_state": watcher.best_state if watcher else None,
            }
            save_checkpoint(checkpoint, model, optimizer, scheduler, ema, history, extra)
        if stop:
            break

    if watcher is not None:
        history.best_epoch = watcher.best_epoch
    if ema is not None:
        ema.copy_to(model)
    if restore_best and watcher is not None and watcher.best_state is not None:
        model.load_state_dict(watcher.best_state)
    return history


def train_sgd_recipe(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    *,
    val_loader: Batches | None = None,
    batch_size: int = 128,
    max_lr: float = 0.1,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    flip: bool = True,
    batch_transform: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    channels_last: bool = True,
    **train_options: Any,
) -> History:
    """Train ``model`` on the images ``x`` (N, C, H, W) and labels ``y`` (N,) with the recipe of
    Chapter 8, and return the :class:`History`.

    The recipe: batches of ``batch_size`` in a new random order every epoch
    (:class:`TensorBatches`); SGD with Nesterov momentum ``momentum``; weight decay
    ``weight_decay`` on the weights of convolutions and linear layers only
    (:func:`parameter_groups`); a :func:`one_cycle` schedule peaking at ``max_lr``, stepped after
    every batch; random left-right flips (``flip=True``), or ``batch_transform`` in their place
    when it is given; ``channels_last``. ``seed`` fixes the data order and the augmentation, so
    a run repeats bit for bit. Everything else (``label_smoothing``, ``early_stopping``,
    ``mixed_precision``, ...) goes to :func:`train` through ``train_options``.
    """
    check_positive_int(epochs, "epochs")
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of images (N, C, H, W), got {got}")
    if max_lr <= 0:
        raise ValueError(f"max_lr must be > 0, got {max_lr}")
    batches = TensorBatches(x, y, batch_size, shuffle=True, seed=seed)
    optimizer = torch.optim.SGD(
        parameter_groups(model, weight_decay), lr=max_lr, momentum=momentum, nesterov=True
    )
    scheduler = one_cycle(optimizer, total_steps=epochs * len(batches))
    if batch_transform is None and flip:
        batch_transform = BatchAugmentation(flip=True)
    return train(
        model,
        batches,
        epochs,
        optimizer,
        val_loader=val_loader,
        device=device,
        progress=progress,
        scheduler=scheduler,
        batch_transform=batch_transform,
        channels_last=channels_last,
        seed=seed,
        **train_options,
    )


def _state_of(generator: torch.Generator | None) -> torch.Tensor | None:
    return None if generator is None else generator.get_state()


def evaluate(
    model: nn.Module,
    loader: Batches,
    device: torch.device | str | None = None,
    loss_fn: LossFn | None = None,
    track_accuracy: bool | None = None,
) -> tuple[float, float]:
    """Mean loss (cross-entropy by default) and accuracy of ``model`` over ``loader``.

    Runs in ``model.eval()`` mode under ``torch.no_grad()``; the model's train/eval mode is
    restored afterwards. The accuracy is ``nan`` when it is not tracked (``track_accuracy``
    defaults to whether outputs and targets look like logits and class labels).
    """
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    device = _resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = to_device(x, device), to_device(y, device)
            outputs = model(x)
            batch = _batch_size(x)
            total_loss += loss_fn(outputs, y).double() * batch
            if track_accuracy is None:
                track_accuracy = _is_classification(outputs, y)
            if track_accuracy:
                correct += (outputs.argmax(dim=1) == y).sum()
            seen += batch
    model.train(was_training)
    if seen == 0:
        raise ValueError("loader gave no batches")
    accuracy = int(correct) / seen if track_accuracy else math.nan
    return float(total_loss) / seen, accuracy


def predict(
    model: nn.Module, loader: Batches, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels, predictions and class probabilities over ``loader``, on the CPU.

    Returns ``y_true`` ``(N,)`` int64, ``y_pred`` ``(N,)`` int64 and ``probs``
    ``(N, num_classes)`` (softmax of the logits).
    """
    device = _resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    labels, probabilities = [], []
    with torch.no_grad():
        for x, y in loader:
            logits = model(to_device(x, device))
            probabilities.append(torch.softmax(logits.float(), dim=1).cpu())
            labels.append(y.cpu())
    model.train(was_training)
    if not labels:
        raise ValueError("loader gave no batches")
    probs = torch.cat(probabilities)
    return torch.cat(labels).long(), probs.argmax(dim=1), probs


def plot_history(history: History, lr: bool = False) -> Figure:
    """Loss and accuracy curves per epoch (training, and validation when recorded).

    The accuracy panel is left out when no accuracy was tracked; ``lr=True`` adds a panel with
    the learning rate at every step.
    """
    import matplotlib.pyplot as plt

    if history.epochs == 0:
        raise ValueError("history is empty: train for at least one epoch first")
    epochs = range(1, history.epochs + 1)
    panels = 1 + bool(history.train_accuracy or history.val_accuracy) + bool(lr and history.lr)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    axes = list(axes[0])
    ax_loss = axes.pop(0)
    ax_loss.plot(epochs, history.train_loss, marker="o", label="train")
    if history.val_loss:
        ax_loss.plot(epochs, history.val_loss, marker="s", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    used = [ax_loss]
    if history.train_accuracy or history.val_accuracy:
        ax_acc = axes.pop(0)
        if history.train_accuracy:
            ax_acc.plot(epochs, history.train_accuracy, marker="o", label="train")
        if history.val_accuracy:
            ax_acc.plot(epochs, history.val_accuracy, marker="s", label="validation")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        used.append(ax_acc)
    for ax in used:
        ax.legend()
        ax.grid(alpha=0.3)
        if history.epochs <= 20:
            ax.set_xticks(list(epochs))
    if axes:
        ax_lr = axes.pop(0)
        ax_lr.plot(np.arange(1, len(history.lr) + 1), history.lr)
        ax_lr.set(xlabel="step (batch)", ylabel="learning rate", title="Learning rate")
        ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    return fig
