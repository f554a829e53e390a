"""GoogLeNet (Szegedy et al., 2015) and its Inception module."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from course_lib.models.lenet import _check_sizes, init_weights

__all__ = ["Inception", "googlenet", "GOOGLENET_INCEPTIONS"]


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs), nn.ReLU(inplace=True)
    )


class Inception(nn.Module):
    """The Inception module: four parallel branches whose outputs are stacked along channels.

    x: (N, in_channels, H, W) -> (N, c1 + c3[1] + c5[1] + pool_proj, H, W)

    1. a 1×1 convolution with ``c1`` filters;
    2. a 1×1 "reduction" to ``c3[0]`` channels, then a 3×3 convolution with ``c3[1]`` filters;
    3. a 1×1 reduction to ``c5[0]`` channels, then a 5×5 convolution with ``c5[1]`` filters;
    4. a 3×3 max pool (stride 1), then a 1×1 convolution with ``pool_proj`` filters.

    Every convolution is followed by ReLU; paddings keep H and W, so the branches can be
    concatenated. The 1×1 reductions are what keeps the 3×3 and 5×5 branches affordable.
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c3: tuple[int, int],
        c5: tuple[int, int],
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1 = _conv_relu(in_channels, c1, 1)
        self.branch3 = nn.Sequential(
            _conv_relu(in_channels, c3[0], 1), _conv_relu(c3[0], c3[1], 3, padding=1)
        )
        self.branch5 = nn.Sequential(
            _conv_relu(in_channels, c5[0], 1), _conv_relu(c5[0], c5[1], 5, padding=2)
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1), _conv_relu(in_channels, pool_proj, 1)
        )
        self.out_channels = c1 + c3[1] + c5[1] + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


# (name, c1, (3x3 reduce, 3x3), (5x5 reduce, 5x5), pool proj): Table 1 of the GoogLeNet paper.
GOOGLENET_INCEPTIONS = (
    ("3a", 64, (96, 128), (16, 32), 32),
    ("3b", 128, (128, 192), (32, 96), 64),
    ("4a", 192, (96, 208), (16, 48), 64),
    ("4b", 160, (112, 224), (24, 64), 64),
    ("4c", 128, (128, 256), (24, 64), 64),
    ("4d", 112, (144, 288), (32, 64), 64),
    ("4e", 256, (160, 320), (32, 128), 128),
    ("5a", 256, (160, 320), (32, 128), 128),
    ("5b", 384, (192, 384), (48, 128), 128),
)


def googlenet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.4) -> nn.Sequential:
    """GoogLeNet as in Table 1 of the paper, for 224×224 images.

    x: (N, in_channels, 224, 224) -> logits: (N, num_classes)

    Stem (7×7/2 convolution, 3×3/2 max pool, 1×1 and 3×3 convolutions, 3×3/2 max pool), nine
    Inception modules with 3×3/2 max pools after 3b and 4e, global average pooling, dropout
    and one linear layer. Left out, as most later re-implementations do: the local response
    normalisation of the stem and the two auxiliary classifiers used only during training.
    Pools use ceil mode, as in the paper's Caffe model, so that 112 → 56 → 28 → 14 → 7.
    """
    _check_sizes(num_classes, in_channels)
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", _conv_relu(in_channels, 64, 7, stride=2, padding=3)),
        ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ("conv2_reduce", _conv_relu(64, 64, 1)),
        ("conv2", _conv_relu(64, 192, 3, padding=1)),
        ("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
    ]
    channels = 192
    for name, c1, c3, c5, pool_proj in GOOGLENET_INCEPTIONS:
        module = Inception(channels, c1, c3, c5, pool_proj)
        layers.append((f"inception{name}", module))
        channels = module.out_channels
        if name in ("3b", "4e"):
            layers.append((f"pool{name[0]}", nn.MaxPool2d(3, stride=2, ceil_mode=True)))
    layers += [
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(dropout)),
        ("fc", nn.Linear(channels, num_classes)),
    ]
    return init_weights(nn.Sequential(OrderedDict(layers)))
