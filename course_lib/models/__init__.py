"""The model zoo of the course, from LeNet-5 to ConvNeXt.

Each function builds a model with its sizes known (no lazy modules) and returns it initialised.
Where PyTorch's model zoo has the same network, the parameters line up one to one with it (the
tests copy torchvision's weights into ours and compare the outputs), so what the book computes
about these models holds for the ones used in practice.
"""

from course_lib.models.classic import VGG_CONFIGS, alexnet, nin, nin_block, vgg, vgg_block
from course_lib.models.convnext import CONVNEXT_VARIANTS, ConvNeXtBlock, LayerNorm2d, convnext
from course_lib.models.densenet import (
    DENSENET_LAYOUTS,
    DenseBlock,
    DenseLayer,
    densenet,
    transition,
)
from course_lib.models.googlenet import (
    GOOGLENET_INCEPTIONS,
    GOOGLENET_SMALL_INCEPTIONS,
    Inception,
    googlenet,
    googlenet_small,
)
from course_lib.models.lenet import fashion_mnist_cnn, init_weights, lenet5
from course_lib.models.resnet import (
    RESNET_LAYOUTS,
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet,
    resnet_cifar,
)

__all__ = [
    "CONVNEXT_VARIANTS",
    "DENSENET_LAYOUTS",
    "GOOGLENET_INCEPTIONS",
    "GOOGLENET_SMALL_INCEPTIONS",
    "RESNET_LAYOUTS",
    "VGG_CONFIGS",
    "BasicBlock",
    "Bottleneck",
    "ConvNeXtBlock",
    "DenseBlock",
    "DenseLayer",
    "Inception",
    "LayerNorm2d",
    "ResNet",
    "alexnet",
    "convnext",
    "densenet",
    "fashion_mnist_cnn",
    "googlenet",
    "googlenet_small",
    "init_weights",
    "lenet5",
    "nin",
    "nin_block",
    "resnet",
    "resnet_cifar",
    "transition",
    "vgg",
    "vgg_block",
]
