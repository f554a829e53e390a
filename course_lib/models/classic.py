"""The first deep CNNs of the ImageNet era: AlexNet, VGG and Network in Network.

Each model is an ``nn.Sequential`` of named layers, so that :func:`course_lib.shape_trace`
lists it layer by layer and ``model.conv1`` reads like the book's tables.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from course_lib._validate import check_positive_int
from course_lib.models.lenet import _check_sizes, init_weights

__all__ = ["VGG_CONFIGS", "alexnet", "nin", "nin_block", "vgg", "vgg_block"]


def _paper_lrn() -> nn.LocalResponseNorm:
    """The paper's normalisation: ``b = a / (k + alpha * sum of a^2 over n channels)^beta`` with
    k = 2, n = 5, alpha = 1e-4, beta = 0.75. PyTorch's layer multiplies the sum by ``alpha / n``
    instead, so it gets ``n * alpha``."""
    size = 5
    return nn.LocalResponseNorm(size=size, alpha=size * 1e-4, beta=0.75, k=2.0)


def alexnet(
    variant: str = "torchvision",
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float = 0.5,
) -> nn.Sequential:
    """AlexNet (Krizhevsky, Sutskever and Hinton, 2012).

    x: (N, in_channels, H, W) -> logits: (N, num_classes)

    ``variant="paper"``: the network of the paper for a 227×227 input: five convolutions with
    96, 256, 384, 384 and 256 filters, local response normalisation after the first two, 3×3
    max pools with stride 2 (overlapping), and three fully connected layers. The paper split the
    network over two GPUs, and the second, fourth and fifth convolutions saw only the half of
    the previous layer's maps on their own GPU: here that is ``groups=2``.

    ``variant="torchvision"``: the one-GPU version that PyTorch's model zoo uses (64, 192, 384,
    256 and 256 filters, no normalisation, padding 2 in the first convolution, an adaptive
    average pool to 6×6 before the classifier); its parameters line up one to one with
    ``torchvision.models.alexnet``.
    """
    _check_sizes(num_classes, in_channels)
    if variant == "paper":
        widths, conv1 = (96, 256, 384, 384, 256), {"padding": 0}
        groups = (1, 2, 1, 2, 2)
    elif variant == "torchvision":
        widths, conv1 = (64, 192, 384, 256, 256), {"padding": 2}
        groups = (1, 1, 1, 1, 1)
    else:
        raise ValueError(f"variant must be 'paper' or 'torchvision', got {variant!r}")
    c1, c2, c3, c4, c5 = widths
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, **conv1)),
        ("relu1", nn.ReLU(inplace=True)),
    ]
    if variant == "paper":
        layers.append(("norm1", _paper_lrn()))
    layers += [
        ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv2", nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=groups[1])),
        ("relu2", nn.ReLU(inplace=True)),
    ]
    if variant == "paper":
        layers.append(("norm2", _paper_lrn()))
    layers += [
        ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv3", nn.Conv2d(c2, c3, kernel_size=3, padding=1, groups=groups[2])),
        ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=groups[3])),
        ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=groups[4])),
        ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(kernel_size=3, stride=2)),
    ]
    if variant == "torchvision":
        layers.append(("avgpool", nn.AdaptiveAvgPool2d((6, 6))))
    layers += [
        ("flatten", nn.Flatten()),
        ("dropout6", nn.Dropout(dropout)),
        ("fc6", nn.Linear(c5 * 6 * 6, 4096)),
        ("relu6", nn.ReLU(inplace=True)),
        ("dropout7", nn.Dropout(dropout)),
        ("fc7", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU(inplace=True)),
        ("fc8", nn.Linear(4096, num_classes)),
    ]
    return init_weights(nn.Sequential(OrderedDict(layers)))


# Filters per convolution, "M" for a 2×2 max pool; the letters are the columns of the VGG paper's
# Table 1 (A = VGG-11, B = VGG-13, D = VGG-16, E = VGG-19).
VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (
        *(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"),
        *(512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
    ),
}


def vgg_block(
    num_convs: int, in_channels: int, out_channels: int, batch_norm: bool = False
) -> nn.Sequential:
    """A VGG block: ``num_convs`` 3×3 convolutions (padding 1) with ReLU, then a 2×2 max pool.

    x: (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2)
    """
    for value, name in ((num_convs, "num_convs"), (in_channels, "in_channels")):
        check_positive_int(value, name)
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers.append(
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1)
        )
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(
    depth: int = 16,
    batch_norm: bool = False,
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float = 0.5,
) -> nn.Sequential:
    """VGG-11/13/16/19 (Simonyan and Zisserman, 2015), as in PyTorch's model zoo.

    x: (N, in_channels, H, W) -> logits: (N, num_classes)

    Stacks of 3×3 convolutions (``VGG_CONFIGS[depth]``) with five 2×2 max pools, an adaptive
    average pool to 7×7 (a no-op for 224×224 images), and three fully connected layers. With
    ``batch_norm=True`` every convolution is followed by batch normalisation (the ``*_bn``
    models). The parameters line up one to one with ``torchvision.models.vgg{depth}[_bn]``.
    """
    _check_sizes(num_classes, in_channels)
    if depth not in VGG_CONFIGS:
        raise ValueError(f"depth must be one of {sorted(VGG_CONFIGS)}, got {depth!r}")
    layers: list[nn.Module] = []
    channels = in_channels
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, int(item), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(item)
    layers += [
        nn.AdaptiveAvgPool2d((7, 7)),
        nn.Flatten(),
        nn.Linear(channels * 7 * 7, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    ]
    return init_weights(nn.Sequential(*layers))


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> nn.Sequential:
    """A Network-in-Network block (Lin, Chen and Yan, 2014): one convolution followed by two
    1×1 convolutions, each with ReLU. The 1×1 convolutions are a small fully connected network
    applied at every pixel ("mlpconv").

    x: (N, in_channels, H, W) -> (N, out_channels, H', W'), H' from the first convolution.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
    )


def nin(
    num_classes: int = 1000, in_channels: int = 3, small: bool = False, dropout: float = 0.5
) -> nn.Sequential:
    """Network in Network: mlpconv blocks and global average pooling instead of dense layers.

    x: (N, in_channels, H, W) -> logits: (N, num_classes)

    ``small=False``: for 224×224 images, blocks with AlexNet's first kernel sizes (11×11 stride
    4, 5×5, 3×3; 96, 256, 384 channels) and 3×3 max pools with stride 2. ``small=True``: for
    28×28 images such as Fashion-MNIST (5×5, 3×3, 3×3 kernels; 32, 64, 128 channels). Either
    way the last block has ``num_classes`` channels, one map per class, and a global average
    pool turns each map into its class score: no fully connected layer at all.
    """
    _check_sizes(num_classes, in_channels)
    # (filters, kernel size, stride, padding) of the first three blocks; the pools' (size, stride)
    if small:
        spec, pool = ((32, 5, 1, 2), (64, 3, 1, 1), (128, 3, 1, 1)), (2, 2)
    else:
        spec, pool = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1)), (3, 2)
    blocks: list[tuple[str, nn.Module]] = []
    channels = in_channels
    for i, (width, kernel_size, stride, padding) in enumerate(spec, start=1):
        blocks.append((f"block{i}", nin_block(channels, width, kernel_size, stride, padding)))
        blocks.append((f"pool{i}", nn.MaxPool2d(kernel_size=pool[0], stride=pool[1])))
        channels = width
    blocks += [
        ("dropout", nn.Dropout(dropout)),
        ("block4", nin_block(channels, num_classes, kernel_size=3, padding=1)),
    ]
    blocks += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
    return init_weights(nn.Sequential(OrderedDict(blocks)))
