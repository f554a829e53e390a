"""Training loops with progress bars and recorded histories.

The loop is written out in full, as the book explains it: ``model.train()``, then for every
batch ``zero_grad → forward → loss → backward → step``; evaluation runs under
``torch.no_grad()`` with ``model.eval()``, and nothing is ever back-propagated there. Progress
is a text progress bar (tqdm), which works in a notebook, a terminal and a grader's log alike;
the numbers themselves are kept in a :class:`History`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from ._validate import check_positive_int
from .device import pick_device

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["History", "train", "evaluate", "predict", "plot_history"]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class History:
    """What happened in each epoch of :func:`train`.

    Lists indexed by epoch: mean training loss and accuracy (over the epoch's batches, weighted
    by batch size, measured while the weights change), validation loss and accuracy (after the
    epoch; empty when there was no validation loader), and wall-clock seconds.
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_table(self) -> str:
        """A plain-text table, one line per epoch."""
        has_val = bool(self.val_loss)
        header = f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}"
        if has_val:
            header += f"  {'val loss':>10}  {'val acc':>9}"
        header += f"  {'seconds':>7}"
        lines = [header]
        for i in range(self.epochs):
            line = f"{i + 1:>5}  {self.train_loss[i]:>10.4f}  {self.train_accuracy[i]:>9.4f}"
            if has_val:
                line += f"  {self.val_loss[i]:>10.4f}  {self.val_accuracy[i]:>9.4f}"
            line += f"  {self.seconds[i]:>7.1f}"
            lines.append(line)
        return "\n".join(lines)


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return pick_device()


def train(
    model: nn.Module,
    train_loader: Batches,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    val_loader: Batches | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History`.

    Batches are ``(x, y)`` with x ``(B, C, H, W)`` and y ``(B,)`` class indices; the model maps
    x to logits ``(B, num_classes)``. ``loss_fn`` defaults to cross-entropy. The model is moved
    to ``device`` (default: :func:`course_lib.pick_device`) — create the optimizer from its
    parameters before or after, both work since moving keeps the parameter objects. A
    ``scheduler`` is stepped once per epoch. ``progress=False`` turns off the progress bar.
    """
    check_positive_int(epochs, "epochs")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    device = _resolve_device(device)
    model.to(device)
    history = History()
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        batches = tqdm(
            train_loader,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            batch = y.shape[0]
            total_loss += loss.item() * batch
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += batch
            batches.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
        if seen == 0:
            raise ValueError("train_loader gave no batches")
        history.train_loss.append(total_loss / seen)
        history.train_accuracy.append(correct / seen)
        if val_loader is not None:
            val_loss, val_accuracy = evaluate(model, val_loader, device, loss_fn)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        if scheduler is not None:
            scheduler.step()
        history.seconds.append(time.perf_counter() - start)
        if progress:
            table = history.as_table().splitlines()
            if epoch == 0:
                tqdm.write(table[0])
            tqdm.write(table[-1])
    return history


def evaluate(
    model: nn.Module,
    loader: Batches,
    device: torch.device | str | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[float, float]:
    """Mean loss (cross-entropy by default) and accuracy of ``model`` over ``loader``.

    Runs in ``model.eval()`` mode under ``torch.no_grad()``; the model's train/eval mode is
    restored afterwards.
    """
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    device = _resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            total_loss += float(loss_fn(logits, y)) * y.shape[0]
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += y.shape[0]
    model.train(was_training)
    if seen == 0:
        raise ValueError("loader gave no batches")
    return total_loss / seen, correct / seen


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
            logits = model(x.to(device))
            probabilities.append(torch.softmax(logits, dim=1).cpu())
            labels.append(y.cpu())
    model.train(was_training)
    if not labels:
        raise ValueError("loader gave no batches")
    probs = torch.cat(probabilities)
    return torch.cat(labels).long(), probs.argmax(dim=1), probs


def plot_history(history: History) -> Figure:
    """Loss and accuracy curves per epoch (training, and validation when recorded)."""
    import matplotlib.pyplot as plt

    if history.epochs == 0:
        raise ValueError("history is empty: train for at least one epoch first")
    epochs = range(1, history.epochs + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history.train_loss, marker="o", label="train")
    ax_acc.plot(epochs, history.train_accuracy, marker="o", label="train")
    if history.val_loss:
        ax_loss.plot(epochs, history.val_loss, marker="s", label="validation")
        ax_acc.plot(epochs, history.val_accuracy, marker="s", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
        ax.set_xticks(list(epochs))
    fig.tight_layout()
    return fig
