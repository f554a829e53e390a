"""GoogLeNet (Szegedy et al., 2015), its Inception module, and a small GoogLeNet for 28×28."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from course_lib.models.lenet import _check_sizes, init_weights

__all__ = [
    "Inception",
    "googlenet",
    "googlenet_small",
    "GOOGLENET_INCEPTIONS",
    "GOOGLENET_SMALL_INCEPTIONS",
]


def _conv_relu(
    in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool = False, **kwargs
) -> nn.Sequential:
    """Convolution and ReLU; with ``batch_norm``, a bias-free convolution, batch norm, ReLU."""
    if batch_norm:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
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
    ``batch_norm=True`` puts a batch normalisation between every convolution (then without
    bias) and its ReLU, as torchvision's GoogLeNet does; the paper's module has none.
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c3: tuple[int, int],
        c5: tuple[int, int],
        pool_proj: int,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        bn = batch_norm
        self.branch1 = _conv_relu(in_channels, c1, 1, bn)
        self.branch3 = nn.Sequential(
            _conv_relu(in_channels, c3[0], 1, bn), _conv_relu(c3[0], c3[1], 3, bn, padding=1)
        )
        self.branch5 = nn.Sequential(
            _conv_relu(in_channels, c5[0], 1, bn), _conv_relu(c5[0], c5[1], 5, bn, padding=2)
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            _conv_relu(in_channels, pool_proj, 1, bn),
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


# The same columns for googlenet_small: 14 × 14 after the stem, 7 × 7 after the pool that
# follows "a" (output channels 64, 128, 128).
GOOGLENET_SMALL_INCEPTIONS = (
    ("a", 16, (24, 32), (4, 8), 8),
    ("b", 32, (32, 64), (8, 16), 16),
    ("c", 32, (48, 64), (8, 16), 16),
)


def googlenet_small(
    num_classes: int = 10, in_channels: int = 1, dropout: float = 0.4, batch_norm: bool = True
) -> nn.Sequential:
    """A small GoogLeNet for 28×28 grey images such as Fashion-MNIST.

    x: (N, in_channels, 28, 28) -> logits: (N, num_classes)

    The layout of :func:`googlenet`, scaled down: a stem of one 3×3 convolution with 32
    filters (28×28) and a 3×3/2 max pool (14×14); Inception module "a" (64 channels out), a
    3×3/2 max pool (7×7), modules "b" and "c" (128 channels each, ``GOOGLENET_SMALL_INCEPTIONS``),
    global average pooling (128), dropout and one linear layer. Shapes, for a 28×28 input:

    ``stem (32, 28, 28) -> pool1 (32, 14, 14) -> inception_a (64, 14, 14) -> pool2 (64, 7, 7)
    -> inception_b (128, 7, 7) -> inception_c (128, 7, 7) -> gap/flatten (128) -> fc (10)``

    ``batch_norm=True`` (the default) puts a batch normalisation after every convolution, as
    torchvision's GoogLeNet does, so that the network trains at a large learning rate within a
    few epochs: 83,330 parameters for 10 classes and 1 channel. ``batch_norm=False`` gives the
    plain convolutions of the 2015 paper: 82,854 parameters. There is no auxiliary classifier.
    Global average pooling makes it accept inputs of other sizes, but it was sized for 28×28.
    """
    _check_sizes(num_classes, in_channels)
    layers: list[tuple[str, nn.Module]] = [
        ("stem", _conv_relu(in_channels, 32, 3, batch_norm, padding=1)),
        ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
    ]
    channels = 32
    for name, c1, c3, c5, pool_proj in GOOGLENET_SMALL_INCEPTIONS:
        module = Inception(channels, c1, c3, c5, pool_proj, batch_norm)
        layers.append((f"inception_{name}", module))
        channels = module.out_channels
        if name == "a":
            layers.append(("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)))
    layers += [
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(dropout)),
        ("fc", nn.Linear(channels, num_classes)),
    ]
    return init_weights(nn.Sequential(OrderedDict(layers)))
