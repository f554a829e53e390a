"""Classification metrics, checked against scikit-learn, and the summary of repeated runs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from scipy import stats

from course_lib.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    most_confused_pairs,
    plot_confusion_matrix,
    precision_recall_f1,
    summarize_runs,
)

# ---------------------------------------------------------------------------------------------
# metrics against scikit-learn
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def labels(rng):
    k = 5
    y_true = rng.integers(0, k, size=200)
    y_pred = rng.integers(0, k, size=200)
    y_pred[y_pred == 3] = 1  # class 3 is never predicted
    return y_true, y_pred, k


def test_accuracy_and_confusion_matrix_match_sklearn(labels):
    y_true, y_pred, k = labels
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    cm = confusion_matrix(torch.from_numpy(y_true), torch.from_numpy(y_pred), k)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=range(k)))
    assert cm[:, 3].sum() == 0


def test_accuracy_accepts_logits():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0]])
    assert accuracy(torch.tensor([0, 1, 1]), logits) == pytest.approx(2 / 3)


@pytest.mark.parametrize("average", [None, "macro", "micro"])
def test_precision_recall_f1_match_sklearn_with_a_never_predicted_class(labels, average):
    y_true, y_pred, k = labels
    got = precision_recall_f1(y_true, y_pred, k, average=average)
    expected = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(k)), average=average, zero_division=0
    )[:3]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e)
    if average is None:
        precision, _, f1 = got
        assert precision[3] == 0.0  # the zero-division rule: never predicted -> 0
        assert f1[3] == 0.0


def test_micro_average_equals_accuracy(labels):
    y_true, y_pred, k = labels
    p, r, f = precision_recall_f1(y_true, y_pred, k, average="micro")
    assert p == pytest.approx(accuracy(y_true, y_pred))
    assert r == pytest.approx(p)
    assert f == pytest.approx(p)


def test_a_class_absent_from_both_counts_zero_in_the_macro_average():
    y_true = np.array([0, 1, 0, 1])
    y_pred = np.array([0, 1, 1, 1])
    macro = precision_recall_f1(y_true, y_pred, 3, average="macro")
    expected = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], average="macro", zero_division=0
    )[:3]
    np.testing.assert_allclose(macro, expected)


def test_metric_argument_checks():
    with pytest.raises(ValueError, match="same length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match=r"expected 0\.\.2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="average"):
        precision_recall_f1([0], [0], 2, average="weighted")
    with pytest.raises(TypeError, match="integer class labels"):
        accuracy([0.5, 1.0], [0, 1])


def test_classification_report_text(labels):
    y_true, y_pred, k = labels
    names = ["a", "b", "c", "d", "e"]
    text = classification_report(y_true, y_pred, k, class_names=names)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    _, recall, _ = precision_recall_f1(y_true, y_pred, k)
    row_d = lines[1 + 3].split()
    assert row_d[0] == "d"
    assert float(row_d[1]) == 0.0
    assert float(row_d[2]) == pytest.approx(recall[3], abs=5e-4)
    assert int(row_d[4]) == int((y_true == 3).sum())
    acc_line = next(line for line in lines if line.startswith("accuracy"))
    assert float(acc_line.split()[1]) == pytest.approx(accuracy(y_true, y_pred), abs=5e-4)


def test_plot_confusion_matrix_draws_every_cell():
    cm = np.array([[5, 1], [2, 7]])
    fig = plot_confusion_matrix(cm, ["cat", "dog"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(texts) == sorted(["5", "1", "2", "7"])
    plt.close(fig)
    fig = plot_confusion_matrix(cm, normalize=True)
    assert "0.83" in [t.get_text() for t in fig.axes[0].texts]  # 5 of 6
    plt.close(fig)


def test_most_confused_pairs_one_way_and_both_ways():
    cm = np.array([[50, 7, 1], [2, 40, 9], [0, 9, 30]])
    assert most_confused_pairs(cm, k=2) == [(1, 2, 9), (2, 1, 9)]
    assert most_confused_pairs(cm, k=2, symmetric=True) == [(1, 2, 18), (0, 1, 9)]
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([1, 1, 1, 0, 2, 1])
    sk = skm.confusion_matrix(y_true, y_pred)
    assert most_confused_pairs(confusion_matrix(y_true, y_pred, 3), k=1) == [(0, 1, sk[0, 1])]
    with pytest.raises(ValueError, match="square"):
        most_confused_pairs(np.zeros((2, 3)))


def test_summarize_runs_gives_the_student_t_interval():
    values = [0.90, 0.92, 0.91, 0.95]
    summary = summarize_runs(values)
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert (summary.low, summary.high) == pytest.approx((low, high))
    assert summary.n == 4
    # three runs: t(0.975, 2) = 4.303, so the half-width is 4.303 std / sqrt(3)
    three = summarize_runs([1.0, 2.0, 3.0])
    assert three.high - three.mean == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        summarize_runs([1.0])
