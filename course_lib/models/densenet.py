"""Densely connected networks (Huang, Liu, van der Maaten and Weinberger, 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.lenet import _check_sizes, init_weights

__all__ = ["DENSENET_LAYOUTS", "DenseBlock", "DenseLayer", "densenet", "transition"]


class DenseLayer(nn.Module):
    """BN → ReLU → 1×1 conv (``bn_size * growth_rate`` filters) → BN → ReLU → 3×3 conv
    (``growth_rate`` filters): the "DenseNet-B" layer. Its output is *appended* to its input.

    x: (N, C, H, W) -> (N, C + growth_rate, H, W)
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.norm1(x)))
        new = self.conv2(F.relu(self.norm2(new)))
        return torch.cat([x, new], dim=1)


class DenseBlock(nn.Sequential):
    """``num_layers`` dense layers: every layer sees the block's input and all earlier outputs.

    x: (N, C, H, W) -> (N, C + num_layers * growth_rate, H, W)
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4):
        super().__init__(
            *(
                DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size)
                for i in range(num_layers)
            )
        )
        self.out_channels = in_channels + num_layers * growth_rate


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """BN → ReLU → 1×1 conv → 2×2 average pool: between dense blocks, fewer and smaller maps.

    x: (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2)
    """
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )


# depth -> (growth rate, initial features, layers per block): the ImageNet models of the paper.
DENSENET_LAYOUTS: dict[int, tuple[int, int, tuple[int, ...]]] = {
    121: (32, 64, (6, 12, 24, 16)),
    169: (32, 64, (6, 12, 32, 32)),
    201: (32, 64, (6, 12, 48, 32)),
    161: (48, 96, (6, 12, 36, 24)),
}


def densenet(
    depth: int = 121,
    num_classes: int = 1000,
    in_channels: int = 3,
    growth_rate: int | None = None,
    block_layers: tuple[int, ...] | None = None,
    init_features: int | None = None,
    small: bool = False,
    compression: float = 0.5,
    stem_stride: int = 1,
) -> nn.Sequential:
    """DenseNet-BC: dense blocks of bottleneck layers, transitions halving the channels.

    x: (N, in_channels, H, W) -> logits: (N, num_classes)

    ``depth`` picks the paper's ImageNet layout (121, 161, 169, 201); ``growth_rate``,
    ``block_layers`` and ``init_features`` override it. ``small=False``: 7×7/2 convolution, batch
    norm, ReLU and 3×3/2 max pool as the stem (then the parameters line up one to one with
    ``torchvision.models.densenet{depth}``); ``small=True``: one 3×3 convolution, for 28×28 or
    32×32 images. A final batch norm and ReLU, global average pooling and a linear layer.
    """
    _check_sizes(num_classes, in_channels)
    if depth not in DENSENET_LAYOUTS:
        raise ValueError(f"depth must be one of {sorted(DENSENET_LAYOUTS)}, got {depth!r}")
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1], got {compression!r}")
    if stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
    if stem_stride != 1 and not small:
        raise ValueError("stem_stride applies to the small stem only (small=True)")
    k, features, layers = DENSENET_LAYOUTS[depth]
    k = growth_rate if growth_rate is not None else k
    layers = block_layers if block_layers is not None else layers
    channels = init_features if init_features is not None else features
    if small:
        stem = [nn.Conv2d(in_channels, channels, 3, stride=stem_stride, padding=1, bias=False)]
    else:
        stem = [
            nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
    modules: list[nn.Module] = [*stem]
    for i, num_layers in enumerate(layers):
        block = DenseBlock(num_layers, channels, k)
        modules.append(block)
        channels = block.out_channels
        if i != len(layers) - 1:
            reduced = int(channels * compression)
            modules.append(transition(channels, reduced))
            channels = reduced
    modules += [
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    ]
    return init_weights(nn.Sequential(*modules))
