"""Training speed: ``course_lib.training.train`` against a minimal PyTorch loop, and the time
the book's recipes take to reach their accuracy.

1. Throughput. The same model, the same in-memory data, the same batch size and float32
   throughout, trained for one pass over 10,240 images by ``train`` and by the shortest
   correct loop PyTorch allows (``zero_grad, forward, loss, backward, step``, batches sliced
   from the tensors). The two alternate, so that both see the same load on the machine; the
   ratio of their images per second is what ``train`` costs (1.0: nothing).
2. The book's settings (bfloat16 autocast where the CPU computes it natively, ``channels_last``)
   against that float32 loop: what the defaults and flags of ``train`` buy.
3. Time to accuracy. LeNet-5 with Chapter 8's recipe and the case-study network with
   Chapter 16's, on all the training images but the validation split; after every epoch the
   full test set is evaluated (not counted in the time). Prints the training seconds at the
   first epoch whose test accuracy reaches 91% and 93.5%.

``python -m benchmarks training``; ``python -m benchmarks.bench_training --quick`` skips part 3.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from benchmarks._timing import compare
from course_lib.data import FASHION_MNIST_CLASSES, fashion_mnist_loaders
from course_lib.models import init_weights, lenet5
from course_lib.models.resnet import BasicBlock, ResNet
from course_lib.training import (
    BatchAugmentation,
    TensorBatches,
    evaluate,
    fast_bfloat16,
    one_cycle,
    parameter_groups,
    train,
)

N_IMAGES = 10_240
BATCH_SIZE = 256


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def plain_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer, batch_size: int):
    """The reference: one epoch of the shortest correct training loop."""
    model.train()
    for index in torch.randperm(len(y)).split(batch_size):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        optimizer.step()


def throughput(name: str, make_model: Callable[[], nn.Module], x, y) -> list[str]:
    torch.manual_seed(0)
    ours_model, reference_model = make_model(), make_model()
    ours_optimizer = torch.optim.SGD(ours_model.parameters(), lr=0.01, momentum=0.9)
    reference_optimizer = torch.optim.SGD(reference_model.parameters(), lr=0.01, momentum=0.9)
    batches = TensorBatches(x, y, BATCH_SIZE, shuffle=True)

    def ours() -> None:
        train(
            ours_model,
            batches,
            1,
            ours_optimizer,
            device="cpu",
            progress=False,
            mixed_precision=False,
        )

    def reference() -> None:
        plain_loop(reference_model, x, y, reference_optimizer, BATCH_SIZE)

    ours_s, reference_s, _ = compare(ours, reference, repeats=5)
    rows = [
        f"{name + ', float32':<34} {len(y) / ours_s:>10.0f} {len(y) / reference_s:>10.0f} "
        f"{reference_s / ours_s:>7.3f}"
    ]
    fast_model = make_model()
    fast_optimizer = torch.optim.SGD(fast_model.parameters(), lr=0.01, momentum=0.9)

    def fast() -> None:
        train(
            fast_model, batches, 1, fast_optimizer, device="cpu", progress=False, channels_last=True
        )

    fast_s, reference_s, _ = compare(fast, reference, repeats=5)
    settings = "bf16 + channels_last" if fast_bfloat16("cpu") else "channels_last"
    rows.append(
        f"{name + ', ' + settings:<34} {len(y) / fast_s:>10.0f} {len(y) / reference_s:>10.0f} "
        f"{reference_s / fast_s:>7.3f}"
    )
    return rows


def time_to_accuracy(
    name: str,
    model: nn.Module,
    data,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    target: float,
    batch_transform=None,
    label_smoothing: float = 0.0,
) -> str:
    """Train with a recipe; seconds of training until the test accuracy first reaches target."""
    batches = TensorBatches.from_loader(data.train)
    batches.batch_size = batch_size
    test = TensorBatches.from_loader(data.test)
    test.batch_size = 1000
    scheduler = one_cycle(optimizer, epochs * len(batches))
    reached, accuracies, elapsed = None, [], 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        train(
            model,
            batches,
            1,
            optimizer,
            scheduler=scheduler,
            batch_transform=batch_transform,
            label_smoothing=label_smoothing,
            channels_last=True,
            device="cpu",
            progress=False,
        )
        elapsed += time.perf_counter() - start
        accuracies.append(evaluate(model, test, device="cpu")[1])
        if reached is None and accuracies[-1] >= target:
            reached = (epoch + 1, elapsed)
    best = max(accuracies)
    where = f"epoch {reached[0]}, {reached[1]:.0f} s" if reached else "not reached"
    return (
        f"{name:<28} target {target:.1%}: {where}; final {accuracies[-1]:.2%} (best {best:.2%}) "
        f"after {epochs} epochs, {elapsed:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    print(
        f"CPU: {cpu_name()}, {torch.get_num_threads()} PyTorch threads; "
        f"bfloat16 native: {fast_bfloat16('cpu')}"
    )
    # Chapter 16's split: 55,000 training images, 5,000 for validation.
    data = fashion_mnist_loaders(batch_size=BATCH_SIZE, val_fraction=CASE_VAL / 60_000, seed=0)
    x, y = data.train.dataset.tensors
    x, y = x[:N_IMAGES], y[:N_IMAGES]
    print(f"\nthroughput, {N_IMAGES:,} images, batch {BATCH_SIZE} (median of 5, alternating)")
    print(f"{'model, settings':<34} {'train im/s':>10} {'plain im/s':>10} {'ratio':>7}")
    for name, make in (
        ("LeNet-5", lambda: lenet5("modern")),
        ("case-study network", case_study_network),
    ):
        for row in throughput(name, make, x, y):
            print(row, flush=True)
    if "--quick" in argv:
        return
    print("\ntime to accuracy (full test set after every epoch, not counted)")
    torch.manual_seed(0)
    lenet = lenet5("modern")
    print(
        time_to_accuracy(
            "LeNet-5, Chapter 8's recipe",
            lenet,
            data,
            epochs=LENET_EPOCHS,
            optimizer=torch.optim.SGD(
                parameter_groups(lenet, 5e-4), lr=LENET_LR, momentum=0.9, nesterov=True
            ),
            batch_size=LENET_BATCH,
            target=0.91,
            batch_transform=BatchAugmentation(flip=True),
        ),
        flush=True,
    )
    torch.manual_seed(0)
    network = case_study_network()
    print(
        time_to_accuracy(
            "case study, Chapter 16's",
            network,
            data,
            epochs=CASE_EPOCHS,
            optimizer=torch.optim.SGD(
                parameter_groups(network, 5e-4), lr=CASE_LR, momentum=0.9, nesterov=True
            ),
            batch_size=CASE_BATCH,
            target=0.935,
            batch_transform=BatchAugmentation(
                crop_padding=CASE_CROP_PADDING, flip=True, flip_classes=CASE_FLIPPABLE
            ),
            label_smoothing=CASE_LABEL_SMOOTHING,
        ),
        flush=True,
    )


# The recipes of the chapters (keep in step with book/part1/training.md and
# book/part3/case-study.md).
LENET_EPOCHS, LENET_LR, LENET_BATCH = 20, 0.1, 128
CASE_EPOCHS, CASE_LR, CASE_BATCH, CASE_LABEL_SMOOTHING = 14, 0.1, 128, 0.1
CASE_VAL, CASE_CROP_PADDING = 5_000, 2
CASE_WIDTHS, CASE_BLOCKS = (32, 64, 128), (2, 1, 1)
# Garments and bags are mirrored, footwear is not (Chapter 16, section 4).
CASE_FLIPPABLE = [
    c
    for c, name in enumerate(FASHION_MNIST_CLASSES)
    if name not in ("Sandal", "Sneaker", "Ankle boot")
]


def case_study_network() -> nn.Module:
    """Chapter 16's small ResNet (327,722 parameters): a 3x3 stem at 28x28, stages of 2, 1
    and 1 basic blocks with 32, 64 and 128 channels, each starting with stride 2. The page
    standardises inside the model; here the loaders standardise the images, the same map.
    x: (N, 1, 28, 28) -> logits (N, 10)."""
    stem = nn.Sequential(
        nn.Conv2d(1, CASE_WIDTHS[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(CASE_WIDTHS[0]),
        nn.ReLU(inplace=True),
    )
    stages, channels = [], CASE_WIDTHS[0]
    for width, count in zip(CASE_WIDTHS, CASE_BLOCKS, strict=True):
        stage = [BasicBlock(channels, width, stride=2, shortcut="B")]
        stage += [BasicBlock(width, width, stride=1) for _ in range(count - 1)]
        stages.append(nn.Sequential(*stage))
        channels = width
    return init_weights(ResNet(stem, stages, channels, len(FASHION_MNIST_CLASSES)))


if __name__ == "__main__":
    main()
