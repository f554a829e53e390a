"""The training loop, evaluation, prediction and the classification metrics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.data import DEFAULT_FASHION_MNIST_DIR, fashion_mnist_loaders
from course_lib.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    plot_confusion_matrix,
    precision_recall_f1,
)
from course_lib.models import lenet5
from course_lib.training import History, evaluate, plot_history, predict, train

# thousands of tiny operations: see the one_thread fixture in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


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


# ---------------------------------------------------------------------------------------------
# training loop
# ---------------------------------------------------------------------------------------------


def _toy_loaders(seed: int = 0):
    """Two blobs of 4x4 images: class 1 is brighter in the top-left corner."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (128,), generator=g)
    x = torch.randn(128, 1, 4, 4, generator=g) * 0.5
    x[:, 0, :2, :2] += y[:, None, None].float() * 3
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=16, shuffle=True, generator=g), DataLoader(data, 32)


def _toy_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))


def test_train_fills_history_and_learns_a_toy_problem():
    train_loader, val_loader = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train(
        model,
        train_loader,
        epochs=4,
        optimizer=optimizer,
        val_loader=val_loader,
        device="cpu",
        progress=False,
        scheduler=scheduler,
    )
    assert isinstance(history, History)
    assert history.epochs == 4
    for values in (history.val_loss, history.val_accuracy, history.seconds):
        assert len(values) == 4
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.9
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)
    loss, acc = evaluate(model, val_loader, device="cpu")
    assert loss == pytest.approx(history.val_loss[-1])
    assert acc == pytest.approx(history.val_accuracy[-1])
    table = history.as_table().splitlines()
    assert len(table) == 5
    assert "val acc" in table[0]


def test_evaluate_and_predict_agree_and_restore_the_mode():
    _, loader = _toy_loaders()
    model = _toy_model()
    model.train()
    y_true, y_pred, probs = predict(model, loader, device="cpu")
    assert model.training
    assert probs.shape == (128, 2)
    torch.testing.assert_close(probs.sum(1), torch.ones(128))
    _, acc = evaluate(model, loader, device="cpu")
    assert acc == pytest.approx(accuracy(y_true, y_pred))
    assert model.training


def test_progress_bar_and_table_are_printed(capsys):
    train_loader, _ = _toy_loaders()
    model = _toy_model()
    train(model, train_loader, 1, torch.optim.SGD(model.parameters(), lr=0.01), device="cpu")
    captured = capsys.readouterr()
    assert "train loss" in captured.out
    assert "epoch 1/1" in captured.err  # the tqdm bar


def test_train_refuses_bad_epochs():
    model = _toy_model()
    with pytest.raises(ValueError, match="epochs"):
        train(model, [], 0, torch.optim.SGD(model.parameters(), lr=0.1))


def test_plot_history_draws_both_curves():
    history = History([1.0, 0.5], [0.5, 0.8], [0.9, 0.6], [0.6, 0.7], [1.0, 1.0])
    fig = plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2
    assert list(acc_ax.lines[1].get_ydata()) == [0.6, 0.7]
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plot_history(History())


@pytest.mark.skipif(
    not (DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
@pytest.mark.timeout(60)
def test_lenet_on_a_few_hundred_fashion_mnist_images():
    loaders = fashion_mnist_loaders(batch_size=32, limit=600, val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    model = lenet5("modern")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before, _ = evaluate(model, loaders.train, device="cpu")
    history = train(
        model,
        loaders.train,
        epochs=1,
        optimizer=optimizer,
        val_loader=loaders.val,
        device="cpu",
        progress=False,
    )
    after, _ = evaluate(model, loaders.train, device="cpu")
    assert after < before
    assert history.epochs == 1
    assert history.val_accuracy[0] > 0.3  # chance is 0.1
    assert history.seconds[0] > 0
