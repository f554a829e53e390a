"""The analytical shape trace against finding the shapes by running the model.

``shape_trace`` reads the layers' settings; the reference runs a forward pass of one image
through each layer and reads the output shapes. The ratio says how much cheaper the analysis is
(it does not grow with the image size or the number of channels).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks._timing import compare, print_table
from course_lib import shape_trace
from course_lib.models import fashion_mnist_cnn, lenet5


def _run_shapes(model: nn.Sequential, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            shapes.append(tuple(x.shape))
    return shapes


def _vgg_like(width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for out in (width, 2 * width, 4 * width, 8 * width, 8 * width):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    layers += [nn.Flatten(), nn.Linear(channels * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10)]
    return nn.Sequential(*layers).eval()


def main() -> None:
    torch.manual_seed(0)
    cases = [
        ("lenet5 28x28", lenet5("modern").eval(), (1, 1, 28, 28)),
        ("fashion_mnist_cnn 28x28", fashion_mnist_cnn().eval(), (1, 1, 28, 28)),
        ("vgg-like width 16, 224x224", _vgg_like(16), (1, 3, 224, 224)),
    ]
    rows = []
    for name, model, shape in cases:
        x = torch.randn(shape)
        traced = [r.output_shape for r in shape_trace(model, shape)]
        assert traced == _run_shapes(model, x), name
        ours, ref, ratio = compare(
            lambda m=model, s=shape: shape_trace(m, s),
            lambda m=model, x=x: _run_shapes(m, x),
            repeats=5,
        )
        rows.append((name, ours, ref, ratio))
    print_table("shape_trace (analysis) vs a forward pass (torch) to read the shapes", rows)
    for name, ours, ref, _ in rows:
        print(f"{name}: the forward pass takes {ref / ours:.0f}x as long as the analysis")


if __name__ == "__main__":
    main()
