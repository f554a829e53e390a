"""Residual networks (He, Zhang, Ren and Sun, 2016): the ImageNet models and the CIFAR family."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib._validate import check_positive_int
from course_lib.models.lenet import _check_sizes, init_weights

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "RESNET_LAYOUTS", "resnet", "resnet_cifar"]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm, and a shortcut added before the last ReLU.

    x: (N, in_channels, H, W) -> (N, channels, H / stride, W / stride)

    ``y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``. The shortcut is the identity
    when the shape does not change; otherwise ``shortcut="B"`` projects with a strided 1×1
    convolution and batch norm, and ``shortcut="A"`` subsamples and pads the new channels with
    zeros (no parameters, the paper's CIFAR-10 choice). ``shortcut=None`` drops the shortcut:
    the "plain" network the paper compares against.
    """

    expansion = 1

    def __init__(
        self, in_channels: int, channels: int, stride: int = 1, shortcut: str | None = "B"
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = _shortcut(in_channels, channels, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4), each with batch norm, plus the shortcut.

    x: (N, in_channels, H, W) -> (N, 4 * channels, H / stride, W / stride)

    The stride sits on the 3×3 convolution (the arrangement of PyTorch's model zoo, sometimes
    called ResNet v1.5; the paper put it on the first 1×1).
    """

    expansion = 4

    def __init__(
        self, in_channels: int, channels: int, stride: int = 1, shortcut: str | None = "B"
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class _ZeroPadShortcut(nn.Module):
    """Option A: take every ``stride``-th pixel and append zero channels."""

    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels, self.stride = extra_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


def _shortcut(
    in_channels: int, out_channels: int, stride: int, kind: str | None
) -> nn.Module | None:
    if kind not in ("A", "B", None):
        raise ValueError(f"shortcut must be 'A', 'B' or None, got {kind!r}")
    if kind is None:
        return None
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "A":
        if out_channels < in_channels:
            raise ValueError("shortcut 'A' can only add channels")
        return _ZeroPadShortcut(out_channels - in_channels, stride)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ResNet(nn.Module):
    """A stem, stages of residual blocks, global average pooling and a linear classifier.

    x: (N, in_channels, H, W) -> logits: (N, num_classes). ``stem``, ``stages`` (one
    ``nn.Sequential`` of blocks per stage) and ``fc`` are attributes, to be read or replaced.
    """

    def __init__(
        self, stem: nn.Module, stages: list[nn.Sequential], features: int, num_classes: int
    ):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


# depth -> (block, blocks per stage): Table 1 of the ResNet paper.
RESNET_LAYOUTS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _stages(block, counts, widths, in_channels, shortcut, first_stride) -> tuple[list, int]:
    stages = []
    channels = in_channels
    for index, (count, width) in enumerate(zip(counts, widths, strict=True)):
        blocks = []
        for i in range(count):
            stride = (first_stride if index == 0 else 2) if i == 0 else 1
            blocks.append(block(channels, width, stride, shortcut))
            channels = width * block.expansion
        stages.append(nn.Sequential(*blocks))
    return stages, channels


def resnet(depth: int = 18, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18/34/50/101/152 for ImageNet-sized images.

    x: (N, in_channels, H, W) -> logits: (N, num_classes)

    Stem: 7×7/2 convolution (64 filters), batch norm, ReLU, 3×3/2 max pool; four stages of
    64, 128, 256 and 512 (×4 for bottlenecks) channels, the first block of stages 2-4 halving
    the size; projection shortcuts (option B) where the shape changes. The parameters line up
    one to one with ``torchvision.models.resnet{depth}``.
    """
    _check_sizes(num_classes, in_channels)
    if depth not in RESNET_LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(RESNET_LAYOUTS)}, got {depth!r}")
    block, counts = RESNET_LAYOUTS[depth]
    stem = nn.Sequential(
        nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    stages, channels = _stages(block, counts, (64, 128, 256, 512), 64, "B", 1)
    return init_weights(ResNet(stem, stages, channels, num_classes))


def resnet_cifar(
    n: int = 3,
    num_classes: int = 10,
    in_channels: int = 3,
    widths: tuple[int, int, int] = (16, 32, 64),
    shortcut: str | None = "A",
) -> ResNet:
    """The paper's network for small images (CIFAR-10, section 4.2): ``6n + 2`` layers.

    x: (N, in_channels, H, W) -> logits: (N, num_classes); made for 32×32 (or 28×28) images.

    A 3×3 convolution with 16 filters, then three stages of ``n`` basic blocks with 16, 32 and
    64 filters (sizes 32, 16, 8), global average pooling and a linear layer: n = 3, 5, 7, 9
    give ResNet-20, 32, 44, 56. ``shortcut="A"`` (zero-padding, no parameters) as in the paper;
    ``shortcut=None`` gives the plain network of the same depth.
    """
    _check_sizes(num_classes, in_channels)
    check_positive_int(n, "n", " (6n + 2 layers)")
    stem = nn.Sequential(
        nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    )
    stages, channels = _stages(BasicBlock, (n, n, n), widths, widths[0], shortcut, 1)
    return init_weights(ResNet(stem, stages, channels, num_classes))
