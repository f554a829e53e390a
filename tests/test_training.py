"""The training loop and its parts: schedules, groups, augmentation, early stopping, EMA,
checkpoints, seeds, targets that are not class labels."""

from __future__ import annotations

import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.data import DEFAULT_FASHION_MNIST_DIR, fashion_mnist_loaders
from course_lib.metrics import accuracy
from course_lib.models import ConvNeXtBlock, lenet5
from course_lib.training import (
    BatchAugmentation,
    ExponentialMovingAverage,
    History,
    TensorBatches,
    evaluate,
    fast_bfloat16,
    load_checkpoint,
    one_cycle,
    parameter_groups,
    plot_history,
    predict,
    random_crop,
    random_erasing,
    random_horizontal_flip,
    save_checkpoint,
    to_device,
    train,
    train_sgd_recipe,
    warmup_cosine,
)

# thousands of tiny operations: see the one_thread fixture in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def _toy_data(seed: int = 0, n: int = 128):
    """Two blobs of 4x4 images: class 1 is brighter in the top-left corner."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 4, 4, generator=g) * 0.5
    x[:, 0, :2, :2] += y[:, None, None].float() * 3
    return x, y


def _toy_loaders(seed: int = 0):
    x, y = _toy_data(seed)
    return TensorBatches(x, y, 16, shuffle=True, seed=seed), TensorBatches(x, y, 32)


def _toy_model(dropout: float = 0.0):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(16, 2),
    )


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def test_train_fills_history_and_learns_a_toy_problem():
    train_loader, val_loader = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train(
        model, train_loader, 4, optimizer, val_loader=val_loader, device="cpu", progress=False
    )
    assert isinstance(history, History)
    assert history.epochs == 4
    for values in (history.train_accuracy, history.val_loss, history.val_accuracy):
        assert len(values) == 4
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.9
    assert len(history.lr) == 4 * len(train_loader)
    loss, acc = evaluate(model, val_loader, device="cpu")
    assert loss == pytest.approx(history.val_loss[-1])
    assert acc == pytest.approx(history.val_accuracy[-1])
    table = history.as_table().splitlines()
    assert len(table) == 5
    assert "val acc" in table[0]
    assert History.from_dict(history.to_dict()) == history


def test_the_scheduler_is_stepped_after_every_batch():
    train_loader, _ = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    steps = 3 * len(train_loader)
    scheduler = one_cycle(optimizer, steps, warmup_fraction=0.3)
    history = train(model, train_loader, 3, optimizer, scheduler=scheduler, progress=False)
    reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    expected_schedule = one_cycle(reference, steps, warmup_fraction=0.3)
    expected = []
    for _ in range(steps):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        expected_schedule.step()
    assert history.lr == pytest.approx(expected)
    # within one epoch the rate changes: a scheduler stepped per epoch would keep it constant
    assert len(set(history.lr[: len(train_loader)])) == len(train_loader)


def test_a_per_epoch_scheduler_is_stepped_once_per_epoch():
    train_loader, _ = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train(
        model, train_loader, 3, optimizer, scheduler=scheduler, scheduler_step="epoch",
        progress=False,
    )  # fmt: skip
    per_epoch = len(train_loader)
    assert history.lr == pytest.approx([0.1] * per_epoch + [0.05] * per_epoch + [0.025] * per_epoch)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_one_cycle_and_warmup_cosine_shapes():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = one_cycle(optimizer, 100, warmup_fraction=0.2, start_factor=0.1, end_factor=0.0)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.1)
    assert max(lrs) == pytest.approx(1.0)
    assert lrs.index(max(lrs)) == 20
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a <= b for a, b in itertools.pairwise(lrs[:21]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[20:]))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    schedule = warmup_cosine(optimizer, 50, warmup_steps=9)
    lrs = []
    for _ in range(50):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.2)
    assert lrs[9] == pytest.approx(2.0)
    assert lrs[9 + 20] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 20 / 40)))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(optimizer, 10, warmup_steps=10)


def test_one_cycle_keeps_the_ratio_of_group_learning_rates():
    body, head = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [body], "lr": 0.01}, {"params": [head]}], lr=0.1)
    schedule = one_cycle(optimizer, 10)
    for _ in range(6):
        optimizer.step()
        schedule.step()
        body_lr, head_lr = (g["lr"] for g in optimizer.param_groups)
        assert head_lr == pytest.approx(10 * body_lr)


def test_label_smoothing_is_used_by_the_default_loss():
    x, y = _toy_data()
    batches = TensorBatches(x, y, 128)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        logits = model(x)
    log_p = torch.log_softmax(logits, dim=1)
    eps = 0.2
    expected = ((1 - eps) * -log_p[torch.arange(128), y] + eps * -log_p.mean(dim=1)).mean()
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay as they are
    history = train(
        model, batches, 1, frozen, label_smoothing=eps, mixed_precision=False, progress=False
    )
    assert history.train_loss[0] == pytest.approx(float(expected), rel=1e-5)
    plain = train(model, batches, 1, frozen, mixed_precision=False, progress=False)
    assert plain.train_loss[0] == pytest.approx(float(nn.functional.cross_entropy(logits, y)))


def test_mixed_precision_by_default_where_bfloat16_is_native():
    x, y = _toy_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = float(nn.functional.cross_entropy(model(x), y))
    with torch.no_grad():
        full = float(nn.functional.cross_entropy(model(x), y))
    assert low != full
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    history = train(model, [(x, y)], 1, frozen, device="cpu", progress=False)
    assert history.train_loss[0] == pytest.approx(low if fast_bfloat16("cpu") else full, rel=1e-6)


def test_gradient_clipping_bounds_the_step():
    x, y = _toy_data()
    model = _toy_model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train(model, [(x, y)], 1, optimizer, max_grad_norm=1e-3, progress=False)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-3)


def test_early_stopping_stops_and_restores_the_best_weights():
    train_loader, _ = _toy_loaders()
    model = _toy_model()
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.95, 0.99])
    snapshots = []

    def evaluate_fn(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"score": next(scores)}

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train(
        model, train_loader, 6, optimizer, evaluate_fn=evaluate_fn, early_stopping=2,
        progress=False,
    )  # fmt: skip
    assert history.epochs == 4  # 0.5, 0.9 (best), 0.7, 0.6: two epochs without improvement
    assert history.metrics["score"] == [0.5, 0.9, 0.7, 0.6]
    assert history.best_epoch == 1
    assert "early stopping" in history.stopped
    state = model.state_dict()
    assert all(torch.equal(state[k], snapshots[1][k]) for k in state)
    assert not all(torch.equal(state[k], snapshots[3][k]) for k in state)


def test_restore_best_on_validation_loss_without_stopping():
    train_loader, val_loader = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train(
        model, train_loader, 4, optimizer, val_loader=val_loader, restore_best=True,
        progress=False,
    )  # fmt: skip
    assert history.epochs == 4
    best = min(range(4), key=lambda i: history.val_loss[i])
    assert history.best_epoch == best
    loss, _ = evaluate(model, val_loader, device="cpu")
    assert loss == pytest.approx(history.val_loss[best])


def test_early_stopping_needs_something_to_watch():
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="val_loader or evaluate_fn"):
        train(model, [_toy_data()], 2, optimizer, early_stopping=1, progress=False)
    with pytest.raises(ValueError, match="cannot monitor 'map'"):
        train(
            model, [_toy_data()], 2, optimizer, val_loader=[_toy_data()], monitor="map",
            early_stopping=1, progress=False,
        )  # fmt: skip


def test_ema_follows_its_formula_and_ends_in_the_model():
    model = nn.Linear(2, 1, bias=False)
    ema = ExponentialMovingAverage(model, decay=0.9)
    expected = model.weight.detach().clone()
    for t in range(30):
        with torch.no_grad():
            model.weight.add_(1.0)
        ema.update(model)
        d = min(0.9, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * model.weight.detach()
    torch.testing.assert_close(ema.module.weight, expected)

    train_loader, val_loader = _toy_loaders()
    model = _toy_model()
    raw = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    raw_optimizer = torch.optim.SGD(raw.parameters(), lr=0.1)
    train(raw, train_loader, 2, raw_optimizer, progress=False, seed=1)
    history = train(
        model, train_loader, 2, optimizer, val_loader=val_loader, ema=0.99, progress=False, seed=1
    )
    assert not _same_weights(model, raw)  # the average, not the last weights
    loss, _ = evaluate(model, val_loader, device="cpu")
    assert loss == pytest.approx(history.val_loss[-1])  # validation measured the average


def test_time_budget_stops_after_the_current_batch():
    train_loader, _ = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train(model, train_loader, 5, optimizer, max_seconds=0.0, progress=False)
    assert history.epochs == 1
    assert len(history.lr) == 1
    assert "time budget" in history.stopped


def test_the_same_seed_repeats_a_run_bit_for_bit():
    def run(seed):
        x, y = _toy_data()
        batches = TensorBatches(x, y, 16, shuffle=True)
        augment = BatchAugmentation(crop_padding=1, flip=True, erase_p=0.5)
        model = _toy_model(dropout=0.3)
        optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=1e-2)
        train(model, batches, 2, optimizer, batch_transform=augment, progress=False, seed=seed)
        return model

    assert _same_weights(run(3), run(3))
    assert not _same_weights(run(3), run(4))


def test_resuming_from_a_checkpoint_ends_where_an_uninterrupted_run_ends(tmp_path):
    def setup():
        x, y = _toy_data()
        batches = TensorBatches(x, y, 16, shuffle=True)
        augment = BatchAugmentation(crop_padding=1, erase_p=0.5)
        model = _toy_model(dropout=0.3)
        optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-2)
        scheduler = one_cycle(optimizer, 3 * len(batches))
        return model, batches, augment, optimizer, scheduler

    def run(model, batches, augment, optimizer, scheduler, loss_fn=None, **kwargs):
        return train(
            model, batches, 3, optimizer, loss_fn=loss_fn, val_loader=batches, scheduler=scheduler,
            batch_transform=augment, ema=0.9, restore_best=True, progress=False, seed=7, **kwargs,
        )  # fmt: skip

    straight, *rest = setup()
    expected = run(straight, *rest)

    calls = []

    def interrupted_loss(outputs, targets):
        calls.append(1)
        if len(calls) > 2 * 16:  # 8 training + 8 validation batches an epoch
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(outputs, targets)

    path = tmp_path / "run.pt"
    first, *rest = setup()
    with pytest.raises(KeyboardInterrupt):
        run(first, *rest, loss_fn=interrupted_loss, checkpoint=path)
    assert load_checkpoint(path, _toy_model(0.3))["extra"]["epoch"] == 1

    resumed, *rest = setup()
    history = run(resumed, *rest, checkpoint=path, resume=True)
    assert _same_weights(resumed, straight)
    assert history.train_loss == expected.train_loss
    assert history.lr == expected.lr


def test_checkpoints_reload_bit_for_bit(tmp_path):
    train_loader, _ = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = train(model, train_loader, 1, optimizer, progress=False)
    path = save_checkpoint(tmp_path / "m.pt", model, optimizer, history=history, extra={"a": 1})
    fresh = _toy_model()
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    state = load_checkpoint(path, fresh, fresh_optimizer)
    assert _same_weights(fresh, model)
    x, _ = _toy_data()
    model.eval(), fresh.eval()
    assert torch.equal(fresh(x), model(x))
    assert state["extra"] == {"a": 1}
    assert state["history"] == history
    saved = optimizer.state_dict()["state"]
    loaded = fresh_optimizer.state_dict()["state"]
    assert all(torch.equal(saved[i]["exp_avg"], loaded[i]["exp_avg"]) for i in saved)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", fresh)
    with pytest.raises(ValueError, match="no scheduler"):
        load_checkpoint(path, fresh, scheduler=one_cycle(fresh_optimizer, 5))


def test_targets_that_are_not_class_labels_and_an_evaluate_fn():
    """A detector-like task: per-image lists of boxes in a dict, a loss of its own."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 4, 4, generator=g)
    targets = [{"boxes": torch.rand(int(k), 4, generator=g)} for k in torch.randint(1, 4, (12,))]

    class BoxCounter(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(16, 1)

        def forward(self, images):
            return {"count": self.linear(images.flatten(1)).squeeze(1)}

    def loss_fn(outputs, batch_targets):
        assert isinstance(batch_targets, list)
        assert all(t["boxes"].device == outputs["count"].device for t in batch_targets)
        counts = torch.tensor([float(len(t["boxes"])) for t in batch_targets])
        return nn.functional.mse_loss(outputs["count"], counts)

    def evaluate_fn(model):
        assert not model.training
        return {"mean_count": float(model(x)["count"].mean())}

    torch.manual_seed(0)
    model = BoxCounter()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = TensorBatches(x, targets, 4, shuffle=True)
    history = train(
        model, batches, 8, optimizer, loss_fn=loss_fn, evaluate_fn=evaluate_fn,
        early_stopping=8, monitor="mean_count", monitor_mode="max", progress=False,
    )  # fmt: skip
    assert history.train_accuracy == []
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(history.metrics["mean_count"]) == 8
    assert history.best_epoch == max(range(8), key=lambda i: history.metrics["mean_count"][i])


def test_to_device_walks_nested_targets():
    targets = ({"boxes": torch.zeros(2, 4), "name": "a"}, [torch.ones(1)], 3)
    moved = to_device(targets, "meta")
    assert moved[0]["boxes"].device.type == "meta"
    assert moved[0]["name"] == "a"
    assert moved[1][0].device.type == "meta"
    assert moved[2] == 3
    assert isinstance(moved, tuple)


def test_mixed_precision_and_channels_last_run_on_the_cpu():
    train_loader, val_loader = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train(
        model, train_loader, 3, optimizer, val_loader=val_loader, mixed_precision=True,
        channels_last=True, progress=False,
    )  # fmt: skip
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history.val_accuracy[-1] > 0.9


def test_progress_prints_clean_lines_when_headless(capsys):
    train_loader, val_loader = _toy_loaders()
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train(model, train_loader, 2, optimizer, val_loader=val_loader, device="cpu")
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["epoch", "train", "loss"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]
    assert "\r" not in captured.err  # no redrawn bar in a log


def test_the_sgd_recipe_is_chapter_8s_recipe_written_out():
    x, y = _toy_data()
    _, val_loader = _toy_loaders()

    def by_hand(augment, **options):
        model = _toy_model()
        batches = TensorBatches(x, y, 16, shuffle=True, seed=5)
        optimizer = torch.optim.SGD(
            parameter_groups(model, 0.05), lr=0.3, momentum=0.9, nesterov=True
        )
        scheduler = one_cycle(optimizer, total_steps=3 * len(batches))
        history = train(
            model,
            batches,
            3,
            optimizer,
            val_loader=val_loader,
            device="cpu",
            progress=False,
            scheduler=scheduler,
            batch_transform=augment,
            channels_last=True,
            seed=5,
            **options,
        )
        return model, history

    def recipe(**options):
        model = _toy_model()
        history = train_sgd_recipe(
            model,
            x,
            y,
            3,
            val_loader=val_loader,
            batch_size=16,
            max_lr=0.3,
            weight_decay=0.05,
            seed=5,
            device="cpu",
            progress=False,
            **options,
        )
        return model, history

    hand_model, hand_history = by_hand(BatchAugmentation(flip=True))
    model, history = recipe()
    assert _same_weights(model, hand_model)
    for name in ("train_loss", "val_loss", "val_accuracy", "batch_loss", "lr"):
        assert getattr(history, name) == getattr(hand_history, name), name
    assert history.lr == hand_history.lr and max(history.lr) == pytest.approx(0.3)
    # flips are part of the recipe: without them the run differs, and equals the unflipped one
    assert not _same_weights(recipe(flip=False)[0], hand_model)
    assert _same_weights(recipe(flip=False)[0], by_hand(None)[0])
    # a batch_transform takes the flips' place; other options reach train
    crop = BatchAugmentation(crop_padding=1)
    assert _same_weights(recipe(batch_transform=crop)[0], by_hand(BatchAugmentation(1))[0])
    smooth = recipe(label_smoothing=0.2)[0]
    assert _same_weights(smooth, by_hand(BatchAugmentation(flip=True), label_smoothing=0.2)[0])
    assert not _same_weights(smooth, hand_model)


def test_the_sgd_recipe_refuses_bad_arguments():
    x, y = _toy_data()
    model = _toy_model()
    with pytest.raises(ValueError, match=r"images \(N, C, H, W\), got \(128, 16\)"):
        train_sgd_recipe(model, x.flatten(1), y, 1, progress=False)
    with pytest.raises(ValueError, match="got list"):
        train_sgd_recipe(model, [1, 2], y, 1, progress=False)
    with pytest.raises(ValueError, match="max_lr must be > 0, got 0"):
        train_sgd_recipe(model, x, y, 1, max_lr=0.0, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train_sgd_recipe(model, x, y, 0, progress=False)
    with pytest.raises(ValueError, match="x has 128 examples but y has 3"):
        train_sgd_recipe(model, x, y[:3], 1, progress=False)


def test_train_refuses_bad_arguments():
    model = _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        train(model, [], 0, optimizer)
    with pytest.raises(ValueError, match="scheduler_step"):
        train(model, [], 1, optimizer, scheduler_step="step")
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        train(model, [], 1, optimizer, resume=True)
    with pytest.raises(ValueError, match="no batches"):
        train(model, [], 1, optimizer, progress=False)


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
    _, no_acc = evaluate(model, loader, device="cpu", track_accuracy=False)
    assert math.isnan(no_acc)


def test_plot_history_draws_the_curves_it_has():
    history = History([1.0, 0.5], [0.5, 0.8], [0.9, 0.6], [0.6, 0.7], [1.0, 1.0])
    history.lr = [0.1, 0.2, 0.1]
    fig = plot_history(history, lr=True)
    loss_ax, acc_ax, lr_ax = fig.axes
    assert len(loss_ax.lines) == 2
    assert list(acc_ax.lines[1].get_ydata()) == [0.6, 0.7]
    assert list(lr_ax.lines[0].get_ydata()) == [0.1, 0.2, 0.1]
    plt.close(fig)
    fig = plot_history(History(train_loss=[1.0, 0.5], seconds=[1.0, 1.0]))
    assert len(fig.axes) == 1  # no accuracy tracked: no accuracy panel
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plot_history(History())


# ---------------------------------------------------------------------------------------------
# data in memory
# ---------------------------------------------------------------------------------------------


def test_tensor_batches_cover_every_example_once_per_epoch():
    x = torch.arange(10.0)[:, None]
    y = torch.arange(10)
    batches = TensorBatches(x, y, 4, shuffle=True, seed=0)
    assert len(batches) == 3
    first = [b[1] for b in batches]
    second = [b[1] for b in batches]
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    assert torch.cat(first).tolist() != torch.cat(second).tolist()  # reshuffled
    for xb, yb in batches:
        assert torch.equal(xb[:, 0].long(), yb)
    again = TensorBatches(x, y, 4, shuffle=True, seed=0)
    assert [b[1].tolist() for b in again] == [b.tolist() for b in first]
    assert len(TensorBatches(x, y, 4, drop_last=True)) == 2
    assert len(batches.dataset) == 10


def test_tensor_batches_match_a_data_loader_in_order():
    x, y = _toy_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=24)
    fast = TensorBatches.from_loader(loader)
    for (xa, ya), (xb, yb) in zip(loader, fast, strict=True):
        assert torch.equal(xa, xb)
        assert torch.equal(ya, yb)
    with pytest.raises(ValueError, match="128 examples but y has 3"):
        TensorBatches(x, y[:3], 8)


def test_tensor_batches_with_per_example_targets():
    x = torch.arange(6.0)[:, None]
    boxes = [torch.full((i + 1, 4), float(i)) for i in range(6)]
    batches = TensorBatches(x, boxes, 4, shuffle=True)
    for xb, yb in batches:
        assert isinstance(yb, list)
        for xi, box in zip(xb, yb, strict=True):
            assert box.shape[0] == int(xi) + 1


# ---------------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------------


def test_random_crop_cuts_a_window_of_the_padded_image(gen):
    x = torch.randn(64, 2, 6, 5, generator=gen)
    out = random_crop(x, 2, torch.Generator().manual_seed(0), padding_mode="constant")
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for image, result in zip(padded, out, strict=True):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(image[:, dy : dy + 6, dx : dx + 5], result)
        ]
        assert matches, "every output is a window of the padded input"
        offsets.add(matches[0])
    assert len(offsets) > 10  # the offsets vary from image to image
    assert random_crop(x, 0) is x
    with pytest.raises(ValueError, match="4 dims"):
        random_crop(x[0], 2)


def test_random_flip_mirrors_about_half_of_the_images(gen):
    x = torch.randn(400, 1, 3, 3, generator=gen)
    out = random_horizontal_flip(x, 0.5, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert bool((flipped | kept).all())
    assert 150 < int(flipped.sum()) < 250


def test_random_erasing_blanks_one_rectangle(gen):
    x = torch.rand(200, 3, 20, 20, generator=gen) + 1.0  # no zeros in the input
    out = random_erasing(x, p=0.5, scale=(0.05, 0.2), generator=torch.Generator().manual_seed(0))
    erased_images = 0
    for image in out:
        mask = image == 0.0
        assert torch.equal(mask[0], mask[1]) and torch.equal(mask[0], mask[2])
        if mask.any():
            erased_images += 1
            rows = mask[0].any(dim=1).nonzero().flatten()
            cols = mask[0].any(dim=0).nonzero().flatten()
            box = mask[0][rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert bool(box.all()), "the erased pixels form a rectangle"
            assert int(mask[0].sum()) <= 0.2 * 400 * 1.3
    assert 70 < erased_images < 130
    assert torch.equal(random_erasing(x, p=0.0), x)


def test_batch_augmentation_repeats_with_its_seed():
    x = torch.randn(8, 1, 10, 10)
    a = BatchAugmentation(crop_padding=2, flip=True, erase_p=0.5, seed=1)
    b = BatchAugmentation(crop_padding=2, flip=True, erase_p=0.5, seed=1)
    first, _ = a(x, None)
    assert torch.equal(first, b(x, None)[0])
    assert not torch.equal(a(x, None)[0], first)  # the next batch is augmented differently
    with pytest.raises(ValueError, match="erase_p"):
        BatchAugmentation(erase_p=2.0)


def test_flips_limited_to_some_classes():
    x = torch.randn(300, 1, 4, 4)
    y = torch.arange(300) % 3
    out, same_y = BatchAugmentation(flip=True, flip_classes=[0, 2])(x, y)
    assert same_y is y
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert bool((flipped | kept).all())
    assert not bool(flipped[y == 1].any())  # class 1 is never mirrored
    assert 30 < int(flipped[y == 0].sum()) < 70


# ---------------------------------------------------------------------------------------------
# parameter groups
# ---------------------------------------------------------------------------------------------


def test_parameter_groups_leave_biases_and_norms_without_weight_decay():
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)))
    model.add_module("norm", nn.LayerNorm(4))
    model.add_module("classifier", nn.Linear(4, 2))
    model.features[0].weight.requires_grad_(False)
    groups = parameter_groups(model, 0.05)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model.classifier.weight)}
    not_decayed = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    expected = {
        id(p)
        for p in (
            model.features[0].bias,
            model.features[1].weight,
            model.features[1].bias,
            model.norm.weight,
            model.norm.bias,
            model.classifier.bias,
        )
    }
    assert not_decayed == expected  # the frozen conv weight is in no group

    groups = parameter_groups(model, 0.05, lr={"features": 1e-4, "classifier": 1e-2})
    lr_of = {id(p): g.get("lr") for g in groups for p in g["params"]}
    assert lr_of[id(model.features[1].weight)] == 1e-4
    assert lr_of[id(model.classifier.weight)] == 1e-2
    assert lr_of[id(model.norm.weight)] is None  # the optimiser's own lr
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    assert {g["lr"] for g in optimizer.param_groups} == {1e-4, 1e-2, 1e-3}
    with pytest.raises(ValueError, match="no trainable parameter is named after"):
        parameter_groups(model, 0.05, lr={"head": 1e-3})


def test_parameter_groups_leave_convnext_layer_scales_without_weight_decay():
    # The layer scale is stored as (C, 1, 1) to broadcast over the image: three dimensions, but
    # a vector. A linear layer with one input keeps its weight decay although its weight is
    # (out, 1).
    model = nn.Sequential(ConvNeXtBlock(8), nn.Flatten(), nn.Linear(1, 3))
    assert model[0].layer_scale.ndim == 3
    groups = parameter_groups(model, 0.05)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    block = model[0]
    weights = (block.dwconv.weight, block.pwconv1.weight, block.pwconv2.weight, model[2].weight)
    assert decayed == {id(p) for p in weights}
    assert id(block.layer_scale) not in decayed


# ---------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    not (DEFAULT_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
@pytest.mark.timeout(120)
def test_lenet_learns_a_few_hundred_fashion_mnist_images():
    loaders = fashion_mnist_loaders(batch_size=32, limit=600, val_fraction=0.2, seed=0)
    train_batches = TensorBatches.from_loader(loaders.train)
    torch.manual_seed(0)
    model = lenet5("modern")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before, _ = evaluate(model, train_batches, device="cpu")
    history = train(
        model, train_batches, 2, optimizer, val_loader=loaders.val, device="cpu", progress=False
    )
    after, _ = evaluate(model, train_batches, device="cpu")
    assert after < before
    assert history.val_accuracy[-1] > 0.5  # chance is 0.1
