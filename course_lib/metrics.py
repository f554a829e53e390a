"""Classification metrics: accuracy, precision, recall, F1 and the confusion matrix.

Labels are integer class indices ``0..num_classes-1`` given as tensors, NumPy arrays or lists.
Zero-division rule: a precision (recall) whose denominator is zero, i.e. a class that is never
predicted (never present), is defined as 0.0, and so is its F1 — the same as scikit-learn's
``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from ._validate import check_positive_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "classification_report",
    "most_confused_pairs",
    "plot_confusion_matrix",
    "RunSummary",
    "summarize_runs",
]

ArrayLike = torch.Tensor | np.ndarray | Sequence[int]


def _labels(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"expected {name} with 1 dim (N,), got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise TypeError(f"expected {name} to hold integer class labels, got {array.dtype}")
    return array.astype(np.int64)


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    true = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {true.shape[0]} and {pred.shape[0]}"
        )
    if true.size == 0:
        raise ValueError("y_true and y_pred are empty")
    return true, pred


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predictions equal to the true label.

    ``y_pred`` may also be logits or probabilities ``(N, num_classes)``: the arg-max is used.
    """
    if isinstance(y_pred, torch.Tensor) and y_pred.dim() == 2:
        y_pred = y_pred.argmax(dim=1)
    elif isinstance(y_pred, np.ndarray) and y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    true, pred = _pair(y_true, y_pred)
    return float(np.mean(true == pred))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts ``cm[i, j]`` of examples of true class ``i`` predicted as class ``j``.

    Returns an int64 array ``(num_classes, num_classes)``; rows are true classes, columns
    predictions (scikit-learn's convention).
    """
    true, pred = _pair(y_true, y_pred)
    check_positive_int(num_classes, "num_classes")
    for array, name in ((true, "y_true"), (pred, "y_pred")):
        if array.min() < 0 or array.max() >= num_classes:
            raise ValueError(
                f"{name} has labels in [{array.min()}, {array.max()}], "
                f"expected 0..{num_classes - 1}"
            )
    flat = true * num_classes + pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0 (the zero-division rule)."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int, average: str | None = None
) -> tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float]:
    """Precision, recall and F1 per class, or averaged.

    ``average=None``: three arrays ``(num_classes,)``. ``"macro"``: the unweighted mean over
    all ``num_classes`` classes (a class absent from both ``y_true`` and ``y_pred`` counts as
    0). ``"micro"``: computed from the total true positives, false positives and false
    negatives; for single-label classification all three equal the accuracy.
    """
    if average not in (None, "macro", "micro"):
        raise ValueError(f"average must be None, 'macro' or 'micro', got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    if average == "micro":
        precision = float(_safe_divide(tp.sum(), predicted.sum()))
        recall = float(_safe_divide(tp.sum(), actual.sum()))
        f1 = float(_safe_divide(2 * precision * recall, precision + recall))
        return precision, recall, f1
    precision_c = _safe_divide(tp, predicted)
    recall_c = _safe_divide(tp, actual)
    f1_c = _safe_divide(2 * precision_c * recall_c, precision_c + recall_c)
    if average == "macro":
        return float(precision_c.mean()), float(recall_c.mean()), float(f1_c.mean())
    return precision_c, recall_c, f1_c


def classification_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    digits: int = 3,
) -> str:
    """A plain-text table: precision, recall, F1 and support per class, then accuracy and the
    macro averages."""
    true, pred = _pair(y_true, y_pred)
    names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise ValueError(f"expected {num_classes} class_names, got {len(names)}")
    precision, recall, f1 = precision_recall_f1(true, pred, num_classes)
    support = np.bincount(true, minlength=num_classes)
    width = max(len(n) for n in [*names, "macro avg"])
    header = f"{'':<{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>7}"
    lines = [header]
    for i, name in enumerate(names):
        lines.append(
            f"{name:<{width}}  {precision[i]:>9.{digits}f}  {recall[i]:>9.{digits}f}  "
            f"{f1[i]:>9.{digits}f}  {support[i]:>7d}"
        )
    lines.append("")
    acc = accuracy(true, pred)
    lines.append(f"{'accuracy':<{width}}  {'':>9}  {'':>9}  {acc:>9.{digits}f}  {true.size:>7d}")
    mp, mr, mf = precision_recall_f1(true, pred, num_classes, average="macro")
    lines.append(
        f"{'macro avg':<{width}}  {mp:>9.{digits}f}  {mr:>9.{digits}f}  {mf:>9.{digits}f}  "
        f"{true.size:>7d}"
    )
    return "\n".join(lines)


def most_confused_pairs(
    cm: np.ndarray | torch.Tensor, k: int = 5, symmetric: bool = False
) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal counts of a confusion matrix, largest first.

    Returns ``(true_class, predicted_class, count)`` triples. With ``symmetric=True`` the two
    directions of a pair are added (``cm[i, j] + cm[j, i]``, reported once with ``i < j``):
    which two classes the model mixes up, whichever way. Ties are broken by class index.
    """
    matrix = cm.detach().cpu().numpy() if isinstance(cm, torch.Tensor) else np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square confusion matrix, got shape {matrix.shape}")
    check_positive_int(k, "k")
    n = matrix.shape[0]
    if symmetric:
        pairs = [
            (i, j, int(matrix[i, j] + matrix[j, i])) for i in range(n) for j in range(i + 1, n)
        ]
    else:
        pairs = [(i, j, int(matrix[i, j])) for i in range(n) for j in range(n) if i != j]
    pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    return pairs[:k]


class RunSummary(NamedTuple):
    """Mean, sample standard deviation and a confidence interval of repeated runs."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (n={self.n})"


def summarize_runs(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> RunSummary:
    """Summarise one measurement repeated over several seeds.

    ``std`` is the sample standard deviation (divided by ``n - 1``); ``low, high`` is the
    Student-t confidence interval of the mean, ``mean ± t·std/√n`` with ``t`` the
    ``(1 + confidence)/2`` quantile for ``n - 1`` degrees of freedom: with 3 seeds the interval
    is about 2.5 standard deviations wide on each side, an honest reminder of how little three
    runs pin down.
    """
    from scipy import stats

    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"expected at least 2 values in a 1-D sequence, got shape {array.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = array.size
    mean = float(array.mean())
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / np.sqrt(n)
    return RunSummary(mean, std, mean - half, mean + half, n)


def plot_confusion_matrix(
    cm: np.ndarray | torch.Tensor,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
    title: str = "Confusion matrix",
) -> Figure:
    """A matplotlib figure of a confusion matrix (rows: true class, columns: prediction).

    ``normalize=True`` shows each row as fractions of that class's examples. Every cell is
    annotated with its value.
    """
    import matplotlib.pyplot as plt

    matrix = cm.detach().cpu().numpy() if isinstance(cm, torch.Tensor) else np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square confusion matrix, got shape {matrix.shape}")
    k = matrix.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise ValueError(f"expected {k} class_names, got {len(names)}")
    values = matrix.astype(np.float64)
    if normalize:
        values = _safe_divide(values, values.sum(axis=1, keepdims=True))
    size = max(4.0, 0.6 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(values, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    threshold = values.max() / 2 if values.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if values[i, j] > threshold else "black",
                fontsize=8,
            )
    fig.tight_layout()
    return fig
