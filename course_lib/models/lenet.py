"""The model zoo of the course: LeNet-5 (original and modern) and the Fashion-MNIST network.

Every model is an ``nn.Sequential`` with named layers, so that :func:`course_lib.shape_trace`
can print it layer by layer and ``model.conv1`` reads like the book's figures. All layers are
built with their sizes known (no lazy modules), so their initialisation really happens.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from course_lib._validate import check_positive_int
from course_lib.shapes import conv_output_size, pool_output_size

__all__ = ["lenet5", "fashion_mnist_cnn", "init_weights"]


def init_weights(model: nn.Module, nonlinearity: str = "relu") -> nn.Module:
    """Initialise the convolution and linear layers of ``model`` in place; return it.

    Kaiming (He) normal for ``nonlinearity="relu"``, Xavier (Glorot) uniform for ``"tanh"``;
    biases start at zero, batch-norm scales at one. Refuses lazy (unmaterialised) modules, whose
    initialisation would silently do nothing.
    """
    if nonlinearity not in ("relu", "tanh"):
        raise ValueError(f"nonlinearity must be 'relu' or 'tanh', got {nonlinearity!r}")
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.lazy.LazyModuleMixin):
            raise TypeError(
                f"layer {name!r} is a lazy module ({type(module).__name__}); run a forward pass "
                "to materialise it before initialising, or give it its sizes"
            )
        if isinstance(module, nn.Conv2d | nn.Linear):
            if nonlinearity == "relu":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain("tanh"))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _check_sizes(num_classes: int, in_channels: int) -> None:
    for value, name in ((num_classes, "num_classes"), (in_channels, "in_channels")):
        check_positive_int(value, name)


def lenet5(variant: str = "original", num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) for 28×28 inputs.

    x: (N, in_channels, 28, 28) -> logits: (N, num_classes)

    ``variant="original"``: the 28×28 image is zero-padded by 2 to the paper's 32×32 input,
    then C1 (6 maps 5×5, 28×28) → tanh → S2 (2×2 average subsampling, 14×14) → C3 (16 maps 5×5,
    10×10) → tanh → S4 (5×5) → C5 (120 maps 5×5, 1×1) → tanh → F6 (84) → tanh → output.
    Simplifications, stated in the book: C3 connects to all six S2 maps (the paper used a
    partial connection table), S2/S4 are plain averages (the paper's had a trainable coefficient
    and bias per map), the paper's scaled tanh ``1.7159 tanh(2x/3)`` is a plain tanh, and the
    output is a linear layer trained with cross-entropy instead of the paper's RBF units.

    ``variant="modern"``: the same sizes with ReLU, 2×2 max pooling, padding 2 in the first
    convolution instead of a separate padding layer, and a flatten before the dense layers.
    """
    _check_sizes(num_classes, in_channels)
    if variant == "original":
        layers = OrderedDict(
            [
                ("pad", nn.ZeroPad2d(2)),
                ("c1", nn.Conv2d(in_channels, 6, kernel_size=5)),
                ("tanh1", nn.Tanh()),
                ("s2", nn.AvgPool2d(kernel_size=2, stride=2)),
                ("c3", nn.Conv2d(6, 16, kernel_size=5)),
                ("tanh3", nn.Tanh()),
                ("s4", nn.AvgPool2d(kernel_size=2, stride=2)),
                ("c5", nn.Conv2d(16, 120, kernel_size=5)),
                ("tanh5", nn.Tanh()),
                ("flatten", nn.Flatten()),
                ("f6", nn.Linear(120, 84)),
                ("tanh6", nn.Tanh()),
                ("output", nn.Linear(84, num_classes)),
            ]
        )
        return init_weights(nn.Sequential(layers), nonlinearity="tanh")
    if variant == "modern":
        layers = OrderedDict(
            [
                ("conv1", nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(kernel_size=2, stride=2)),
                ("conv2", nn.Conv2d(6, 16, kernel_size=5)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(kernel_size=2, stride=2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(16 * 5 * 5, 120)),
                ("relu3", nn.ReLU()),
                ("fc2", nn.Linear(120, 84)),
                ("relu4", nn.ReLU()),
                ("fc3", nn.Linear(84, num_classes)),
            ]
        )
        return init_weights(nn.Sequential(layers), nonlinearity="relu")
    raise ValueError(f"variant must be 'original' or 'modern', got {variant!r}")


def fashion_mnist_cnn(
    num_classes: int = 10,
    in_channels: int = 1,
    channels: tuple[int, int] = (16, 32),
    image_size: int = 28,
) -> nn.Sequential:
    """The Fashion-MNIST network worked through in the notes.

    x: (N, in_channels, image_size, image_size) -> logits: (N, num_classes)

    Two blocks CONV (5×5, stride 1, padding 2) → BATCH NORM → ReLU → MAX POOL (2×2, stride 2),
    with 16 and 32 filters, then one fully connected layer. The convolutions keep the size
    (``(28 - 5 + 2·2)/1 + 1 = 28``), each pool halves it, so the FC layer sees
    ``32 × 7 × 7`` features for a 28×28 image; that number is computed here, not typed in.
    """
    _check_sizes(num_classes, in_channels)
    size = image_size
    for _ in range(2):
        size = pool_output_size(conv_output_size(size, 5, stride=1, padding=2), 2, stride=2)
    c1, c2 = channels
    layers = OrderedDict(
        [
            ("conv1", nn.Conv2d(in_channels, c1, kernel_size=5, stride=1, padding=2)),
            ("bn1", nn.BatchNorm2d(c1)),
            ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(kernel_size=2, stride=2)),
            ("conv2", nn.Conv2d(c1, c2, kernel_size=5, stride=1, padding=2)),
            ("bn2", nn.BatchNorm2d(c2)),
            ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(kernel_size=2, stride=2)),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(c2 * size * size, num_classes)),
        ]
    )
    return init_weights(nn.Sequential(layers), nonlinearity="relu")
